//! Orders one player's inputs: each sequence number is applied at most once,
//! in order, one per tick.
//!
//! Policy, chosen for low latency over completeness:
//! * a frame older than the next expected sequence is stale: `duplicate` if it
//!   was applied, `late` if its tick already passed without it;
//! * a frame more than [`MAX_AHEAD`] beyond the next expected sequence is
//!   dropped (`ahead`), so a client cannot run ahead of the node;
//! * each tick takes the next expected frame; if it has not arrived the last
//!   input repeats and that sequence is given up (it will be `late`);
//! * if more than [`MAX_BUFFERED`] frames wait (a client whose clock runs
//!   fast), the oldest are skipped (`dropped`), which bounds input latency.

use protocol::datagram::{InputFrame, InputPacket};

/// Furthest a frame may be ahead of the next expected sequence.
pub const MAX_AHEAD: u32 = 16;
/// Most frames kept waiting; beyond this the oldest are skipped.
pub const MAX_BUFFERED: usize = 3;

const WINDOW: usize = MAX_AHEAD as usize;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PushOutcome {
    pub accepted: u32,
    pub duplicate: u32,
    pub late: u32,
    pub ahead: u32,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TakeOutcome {
    /// The frame to apply this tick (the last one repeated when missing).
    pub frame: InputFrame,
    /// True when the expected frame was missing and the last one repeated.
    pub repeated: bool,
    /// Frames skipped because too many were waiting.
    pub dropped: u32,
}

#[derive(Debug, Clone)]
pub struct InputQueue {
    /// Next sequence to apply; 0 until the first packet arrives.
    next: u32,
    slots: [Option<(u32, InputFrame)>; WINDOW],
    buffered: usize,
    /// Bit i set: sequence `next - 1 - i` was applied (not repeated over).
    applied_bits: u64,
    last: InputFrame,
}

impl Default for InputQueue {
    fn default() -> Self {
        InputQueue { next: 0, slots: [None; WINDOW], buffered: 0, applied_bits: 0, last: InputFrame::default() }
    }
}

impl InputQueue {
    /// Last sequence consumed (applied or given up), 0 if none: the
    /// snapshot's `ack_seq`.
    pub fn ack_seq(&self) -> u32 {
        self.next.saturating_sub(1)
    }

    pub fn buffered(&self) -> usize {
        self.buffered
    }

    pub fn push(&mut self, packet: &InputPacket) -> PushOutcome {
        let mut out = PushOutcome::default();
        if self.next == 0 {
            self.next = packet.first_seq;
        }
        for (i, frame) in packet.frames.iter().enumerate() {
            let seq = packet.first_seq.wrapping_add(i as u32);
            if seq < self.next {
                let back = self.next - 1 - seq;
                if back < 64 && self.applied_bits & (1 << back) != 0 {
                    out.duplicate += 1;
                } else {
                    out.late += 1;
                }
                continue;
            }
            if seq - self.next >= MAX_AHEAD {
                out.ahead += 1;
                continue;
            }
            let slot = &mut self.slots[seq as usize % WINDOW];
            match slot {
                Some((s, _)) if *s == seq => out.duplicate += 1,
                _ => {
                    if slot.is_none() {
                        self.buffered += 1;
                    }
                    *slot = Some((seq, *frame));
                    out.accepted += 1;
                }
            }
        }
        out
    }

    /// The input for this tick. Before the first packet arrives the player
    /// stands still (the default frame).
    pub fn take(&mut self) -> TakeOutcome {
        let mut dropped = 0;
        if self.next == 0 {
            return TakeOutcome { frame: self.last, repeated: true, dropped };
        }
        while self.buffered > MAX_BUFFERED {
            self.consume(false);
            dropped += 1;
        }
        let applied = self.consume(true);
        TakeOutcome { frame: self.last, repeated: !applied, dropped }
    }

    /// Consumes sequence `next`: returns whether its frame was present. When
    /// `apply` it becomes the last input.
    fn consume(&mut self, apply: bool) -> bool {
        let slot = &mut self.slots[self.next as usize % WINDOW];
        let present = match slot.take() {
            Some((s, f)) if s == self.next => {
                self.buffered -= 1;
                if apply {
                    self.last = f;
                }
                true
            }
            other => {
                *slot = other;
                false
            }
        };
        self.applied_bits = (self.applied_bits << 1) | (present && apply) as u64;
        self.next = self.next.wrapping_add(1);
        present
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::datagram::Buttons;

    fn frame(b: u8) -> InputFrame {
        InputFrame { buttons: Buttons(b), aim: b as u16, view_tick: 0 }
    }

    fn packet(first: u32, bs: &[u8]) -> InputPacket {
        InputPacket { ack_tick: 0, first_seq: first, frames: bs.iter().map(|b| frame(*b)).collect() }
    }

    #[test]
    fn applies_in_order_exactly_once_with_redundancy() {
        let mut q = InputQueue::default();
        assert_eq!(q.push(&packet(1, &[1])).accepted, 1);
        assert_eq!(q.take().frame, frame(1));
        // Redundant packet repeats seq 1 (already applied) and carries 2.
        let o = q.push(&packet(1, &[1, 2]));
        assert_eq!((o.accepted, o.duplicate), (1, 1));
        // The same packet again: all duplicates.
        let o = q.push(&packet(1, &[1, 2]));
        assert_eq!((o.accepted, o.duplicate), (0, 2));
        let t = q.take();
        assert_eq!((t.frame, t.repeated), (frame(2), false));
        assert_eq!(q.ack_seq(), 2);
    }

    #[test]
    fn missing_input_repeats_last_and_later_arrival_is_late() {
        let mut q = InputQueue::default();
        q.push(&packet(1, &[1]));
        q.take();
        let t = q.take();
        assert!(t.repeated);
        assert_eq!(t.frame, frame(1));
        assert_eq!(q.push(&packet(2, &[2])).late, 1);
    }

    #[test]
    fn lost_packet_recovered_from_redundancy() {
        let mut q = InputQueue::default();
        q.push(&packet(1, &[1]));
        q.take();
        // Packet with seq 2 lost; next packet carries 2 and 3.
        q.push(&packet(2, &[2, 3]));
        assert_eq!(q.take().frame, frame(2));
        assert_eq!(q.take().frame, frame(3));
    }

    #[test]
    fn far_ahead_is_dropped_and_backlog_is_bounded() {
        let mut q = InputQueue::default();
        q.push(&packet(1, &[1]));
        assert_eq!(q.push(&packet(2 + MAX_AHEAD, &[9])).ahead, 1);
        q.push(&packet(2, &[2, 3, 4, 5, 6]));
        let t = q.take();
        assert_eq!(t.dropped, 3);
        assert_eq!(t.frame, frame(4));
        assert!(q.buffered() <= MAX_BUFFERED);
    }

    #[test]
    fn stands_still_before_first_input() {
        let mut q = InputQueue::default();
        let t = q.take();
        assert!(t.repeated);
        assert_eq!(t.frame, InputFrame::default());
        assert_eq!(q.ack_seq(), 0);
    }
}
