//! Where players appear: the spawn point farthest from every living opponent,
//! ties broken by the seeded generator.

use protocol::map::MAX_SPAWNS;
use protocol::movement::Pos;

use super::World;

impl World {
    /// Brings `slot` to life at a spawn point with full health, protected
    /// from `tick` (the tick of the state it first appears in) for the
    /// configured number of ticks.
    pub(super) fn spawn(&mut self, slot: usize, tick: u32) {
        let pos = self.choose_spawn(slot);
        let life = self.next_life;
        // Wrapping skips NO_LIFE; a lobby would need 4 billion spawns to get here.
        self.next_life = self.next_life.checked_add(1).unwrap_or(1);
        let (max_health, protection) = (self.cfg.max_health, self.cfg.protection_ticks);
        let Some(p) = self.players[slot].as_mut() else {
            return;
        };
        p.pos = pos;
        p.alive = true;
        p.health = max_health;
        p.protected_until = tick.saturating_add(protection);
        p.respawn_at = 0;
        p.life = life;
    }

    fn choose_spawn(&mut self, slot: usize) -> Pos {
        let n = self.map.spawns.len().min(MAX_SPAWNS);
        if n == 0 {
            // Only an unvalidated map gets here; the centre is the least bad.
            return Pos::from_units(self.map.width / 2, self.map.height / 2);
        }
        let mut nearest = [0i64; MAX_SPAWNS];
        for (i, d) in nearest.iter_mut().enumerate().take(n) {
            *d = self.nearest_opponent(slot, self.spawn_point(i));
        }
        let nearest = &nearest[..n];
        let best = nearest.iter().copied().max().unwrap_or(i64::MAX);
        let ties = nearest.iter().filter(|&&d| d == best).count();
        let pick = self.rng.below(ties as u32) as usize;
        let chosen = (0..n).filter(|&i| nearest[i] == best).nth(pick).unwrap_or(0);
        self.spawn_point(chosen)
    }

    fn spawn_point(&self, i: usize) -> Pos {
        let s = self.map.spawns[i];
        Pos::from_units(s.x, s.y)
    }

    /// Squared distance from `at` to the nearest living, present player other
    /// than `slot`; `i64::MAX` when there is none. (i64: the square of a
    /// 64000-subunit span does not fit in i32.)
    fn nearest_opponent(&self, slot: usize, at: Pos) -> i64 {
        let others = self.players.iter().enumerate().filter(|&(i, _)| i != slot);
        others
            .filter_map(|(_, p)| p.as_ref().filter(|p| p.alive && !p.away))
            .map(|p| {
                let (dx, dy) = ((p.pos.x - at.x) as i64, (p.pos.y - at.y) as i64);
                dx * dx + dy * dy
            })
            .min()
            .unwrap_or(i64::MAX)
    }
}
