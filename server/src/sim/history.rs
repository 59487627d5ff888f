//! Lag compensation: where every player was over the last few ticks.
//!
//! A ring of `max_rewind_ticks + 1` frames, one per tick, allocated once. Each
//! frame holds, per slot, the position and the *life* (a number that changes on
//! every spawn) of a living player, or life 0 for an empty slot or a dead
//! player. A rewound position only counts when its life is the target's current
//! one, so a shot never hits a respawned player where their previous life died.

use protocol::MAX_PLAYERS_PER_LOBBY;
use protocol::movement::Pos;

/// Upper bound on rewinding, whatever the configuration says, so a lobby's
/// history stays small (1 s at 60 Hz, 3 s at 20 Hz).
pub const MAX_REWIND_TICKS_CAP: u32 = 60;

/// Life number of "nobody here".
pub const NO_LIFE: u32 = 0;

#[derive(Debug, Clone, Copy)]
struct Frame {
    /// The tick this frame describes; 0 for a frame never written.
    tick: u32,
    pos: [Pos; MAX_PLAYERS_PER_LOBBY],
    life: [u32; MAX_PLAYERS_PER_LOBBY],
}

const EMPTY: Frame =
    Frame { tick: 0, pos: [Pos { x: 0, y: 0 }; MAX_PLAYERS_PER_LOBBY], life: [NO_LIFE; MAX_PLAYERS_PER_LOBBY] };

#[derive(Debug, Clone)]
pub struct History {
    frames: Vec<Frame>,
    max_rewind: u32,
}

impl History {
    pub fn new(max_rewind_ticks: u32) -> History {
        let max_rewind = max_rewind_ticks.min(MAX_REWIND_TICKS_CAP);
        History { frames: vec![EMPTY; max_rewind as usize + 1], max_rewind }
    }

    /// Frames held; never changes after construction.
    pub fn capacity(&self) -> usize {
        self.frames.len()
    }

    /// The tick a shot fired at `now` with `view_tick` is judged at: what the
    /// shooter saw, but never in the future, never more than the bound back,
    /// and never before the first tick (1).
    pub fn rewind_tick(&self, now: u32, view_tick: u32) -> u32 {
        let oldest = now.saturating_sub(self.max_rewind).max(1);
        view_tick.clamp(oldest, now.max(1))
    }

    /// Records slot `slot` at `tick`. Writing a tick the ring has moved past
    /// starts that frame afresh, so stale slots never leak into a new tick.
    pub fn record(&mut self, tick: u32, slot: usize, pos: Pos, life: u32) {
        let frame = self.frame_for_write(tick);
        frame.pos[slot] = pos;
        frame.life[slot] = life;
    }

    /// Where `slot` was at `tick` and in which life, if the frame is still
    /// held and the slot held a living player.
    pub fn get(&self, tick: u32, slot: usize) -> Option<(Pos, u32)> {
        let frame = &self.frames[self.index(tick)];
        if frame.tick != tick || tick == 0 || frame.life[slot] == NO_LIFE {
            return None;
        }
        Some((frame.pos[slot], frame.life[slot]))
    }

    /// Drops `slot` from every frame (the player left).
    pub fn forget(&mut self, slot: usize) {
        for frame in &mut self.frames {
            frame.life[slot] = NO_LIFE;
        }
    }

    fn index(&self, tick: u32) -> usize {
        (tick as usize) % self.frames.len()
    }

    fn frame_for_write(&mut self, tick: u32) -> &mut Frame {
        let i = self.index(tick);
        let frame = &mut self.frames[i];
        if frame.tick != tick {
            *frame = EMPTY;
            frame.tick = tick;
        }
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_exactly_the_last_bound_plus_one_ticks() {
        let mut h = History::new(4);
        assert_eq!(h.capacity(), 5);
        for t in 1..=100u32 {
            h.record(t, 3, Pos { x: t as i32, y: 0 }, 9);
        }
        assert_eq!(h.capacity(), 5);
        for t in 96..=100 {
            assert_eq!(h.get(t, 3), Some((Pos { x: t as i32, y: 0 }, 9)));
        }
        assert_eq!(h.get(95, 3), None);
        assert_eq!(h.get(101, 3), None);
        assert_eq!(h.get(100, 4), None);
    }

    #[test]
    fn rewind_is_clamped_to_the_bound_and_to_now() {
        let h = History::new(4);
        assert_eq!(h.rewind_tick(100, 98), 98);
        assert_eq!(h.rewind_tick(100, 90), 96);
        assert_eq!(h.rewind_tick(100, 0), 96);
        assert_eq!(h.rewind_tick(100, 150), 100);
        assert_eq!(h.rewind_tick(2, 0), 1);
        assert_eq!(History::new(0).rewind_tick(100, 99), 100);
    }

    #[test]
    fn bound_is_capped() {
        assert_eq!(History::new(u32::MAX).capacity(), MAX_REWIND_TICKS_CAP as usize + 1);
    }

    #[test]
    fn a_reused_frame_does_not_leak_old_slots() {
        let mut h = History::new(1);
        h.record(1, 0, Pos { x: 1, y: 1 }, 5);
        h.record(3, 1, Pos { x: 2, y: 2 }, 6);
        assert_eq!(h.get(3, 0), None);
        assert_eq!(h.get(3, 1), Some((Pos { x: 2, y: 2 }, 6)));
    }

    #[test]
    fn forget_clears_every_frame() {
        let mut h = History::new(2);
        for t in 1..=3 {
            h.record(t, 7, Pos::default(), 2);
        }
        h.forget(7);
        assert!((1..=3).all(|t| h.get(t, 7).is_none()));
    }
}
