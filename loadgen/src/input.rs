//! The client's side of input delivery, free of IO so it can be tested
//! exactly: the redundancy window that builds each input datagram, and the
//! matching of sent inputs to the snapshots that acknowledge them.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use protocol::datagram::{Buttons, InputFrame, InputFrames, InputPacket, MAX_INPUT_FRAMES};

/// Numbers inputs and keeps the newest few, so every packet repeats the
/// frames before it and one lost datagram loses no input.
#[derive(Debug, Clone)]
pub struct InputWindow {
    frames: VecDeque<InputFrame>,
    redundancy: usize,
    /// Sequence number of the newest frame (0 before the first).
    last_seq: u32,
}

impl InputWindow {
    /// `redundancy` frames per packet, newest included (clamped to 1..=MAX_INPUT_FRAMES).
    pub fn new(redundancy: usize) -> InputWindow {
        let redundancy = redundancy.clamp(1, MAX_INPUT_FRAMES);
        InputWindow { frames: VecDeque::with_capacity(redundancy), redundancy, last_seq: 0 }
    }

    /// Adds the next input (sampled while `view_tick` was the newest snapshot)
    /// and returns the packet to send: the newest frames, oldest first.
    pub fn push(&mut self, buttons: Buttons, aim: u16, view_tick: u32, ack_tick: u32) -> InputPacket {
        self.last_seq += 1;
        if self.frames.len() == self.redundancy {
            self.frames.pop_front();
        }
        self.frames.push_back(InputFrame { buttons, aim, view_tick });
        let frames: InputFrames = self.frames.iter().copied().collect();
        let first_seq = self.last_seq + 1 - frames.len() as u32;
        InputPacket { ack_tick, first_seq, frames }
    }

    /// Sequence number of the newest input (0 before the first).
    pub fn last_seq(&self) -> u32 {
        self.last_seq
    }
}

/// Remembers when each input was sent and turns snapshot acknowledgements
/// into round-trip samples: input `s` sent at `t` is answered by the first
/// snapshot with `ack_seq >= s`.
#[derive(Debug, Clone)]
pub struct RttTracker {
    /// Unacknowledged inputs in sequence order.
    pending: VecDeque<(u32, Instant)>,
    capacity: usize,
    /// Inputs forgotten unanswered because `capacity` was exceeded.
    pub expired: u64,
}

impl RttTracker {
    /// Tracks at most `capacity` unanswered inputs; older ones are forgotten,
    /// so a node that never acknowledges cannot grow this without bound.
    pub fn new(capacity: usize) -> RttTracker {
        // Not preallocated: normally only a few inputs are in flight, and
        // thousands of clients share one process.
        RttTracker { pending: VecDeque::new(), capacity: capacity.max(1), expired: 0 }
    }

    pub fn on_send(&mut self, seq: u32, at: Instant) {
        if self.pending.back().is_some_and(|&(last, _)| seq <= last) {
            return;
        }
        if self.pending.len() == self.capacity {
            self.pending.pop_front();
            self.expired += 1;
        }
        self.pending.push_back((seq, at));
    }

    /// Acknowledges every input up to `ack_seq`, calling `sample` with the
    /// round trip of each one not acknowledged before.
    pub fn on_ack(&mut self, ack_seq: u32, at: Instant, mut sample: impl FnMut(Duration)) {
        while let Some(&(seq, sent)) = self.pending.front() {
            if seq > ack_seq {
                break;
            }
            self.pending.pop_front();
            sample(at.saturating_duration_since(sent));
        }
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_repeats_the_newest_frames_oldest_first() {
        let mut w = InputWindow::new(4);
        let p = w.push(Buttons(Buttons::UP), 10, 0, 0);
        assert_eq!((p.first_seq, p.frames.len(), p.last_seq()), (1, 1, 1));
        assert_eq!(p.frames[0], InputFrame { buttons: Buttons(Buttons::UP), aim: 10, view_tick: 0 });

        for i in 2..=6u32 {
            let p = w.push(Buttons(0), i as u16 * 10, 100 + i, 100 + i);
            assert_eq!(p.last_seq(), i);
            assert_eq!(p.ack_tick, 100 + i);
            assert_eq!(p.frames.len(), (i as usize).min(4));
            assert_eq!(p.first_seq, i + 1 - p.frames.len() as u32);
            // frames[k] has sequence first_seq + k, and kept its own view tick
            // and aim from when it was sampled.
            for (k, f) in p.frames.iter().enumerate() {
                let seq = p.first_seq + k as u32;
                assert_eq!(f.aim, seq as u16 * 10);
                if seq > 1 {
                    assert_eq!(f.view_tick, 100 + seq);
                }
            }
        }
        assert_eq!(w.last_seq(), 6);
    }

    #[test]
    fn window_packets_decode_within_the_node_limits() {
        let mut w = InputWindow::new(usize::MAX);
        for _ in 0..20 {
            let p = w.push(Buttons(Buttons::FIRE | Buttons::LEFT), u16::MAX, u32::MAX, u32::MAX);
            assert!(p.frames.len() <= MAX_INPUT_FRAMES);
            let msg = protocol::datagram::ClientDatagram::Input(p);
            let bytes = protocol::codec::encode(&msg, protocol::datagram::MAX_INPUT_BYTES).unwrap();
            let back: protocol::datagram::ClientDatagram =
                protocol::codec::decode(&bytes, protocol::datagram::MAX_INPUT_BYTES).unwrap();
            assert_eq!(back, msg);
        }
        assert_eq!(InputWindow::new(0).push(Buttons(0), 0, 0, 0).frames.len(), 1);
    }

    #[test]
    fn rtt_matches_each_input_to_the_first_ack_covering_it() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut r = RttTracker::new(64);
        r.on_send(1, ms(0));
        r.on_send(2, ms(50));
        r.on_send(3, ms(100));

        let mut got = Vec::new();
        r.on_ack(0, ms(20), |d| got.push(d));
        assert!(got.is_empty());
        // One ack may cover several inputs (a lost snapshot, or a node that
        // applies two at once): each is answered at this arrival.
        r.on_ack(2, ms(120), |d| got.push(d));
        assert_eq!(got, vec![Duration::from_millis(120), Duration::from_millis(70)]);
        // A repeated or older ack answers nothing twice.
        got.clear();
        r.on_ack(2, ms(130), |d| got.push(d));
        r.on_ack(1, ms(140), |d| got.push(d));
        assert!(got.is_empty());
        r.on_ack(9, ms(160), |d| got.push(d));
        assert_eq!(got, vec![Duration::from_millis(60)]);
        assert_eq!(r.pending(), 0);
    }

    #[test]
    fn rtt_tracker_is_bounded_and_ignores_reused_sequences() {
        let t0 = Instant::now();
        let mut r = RttTracker::new(3);
        for s in 1..=5 {
            r.on_send(s, t0);
        }
        r.on_send(5, t0);
        r.on_send(2, t0);
        assert_eq!((r.pending(), r.expired), (3, 2));
        let mut n = 0;
        r.on_ack(5, t0, |_| n += 1);
        assert_eq!(n, 3);
    }
}
