//! One tick, in a fixed order: inputs, movement and aim, firing, damage and
//! deaths, respawns, then the new state is recorded for lag compensation.
//!
//! Shots are resolved in two phases so the outcome does not depend on player
//! ids: every shot is traced against the state at the start of the firing
//! phase, then the hits are applied. Two players may therefore kill each other
//! in the same tick. A target killed by one hit ignores later hits of the same
//! tick, and hits are applied in shooter id order, which only decides who gets
//! the kill when several shots land on the last health together.

use protocol::datagram::{Buttons, InputFrame};
use protocol::movement;
use protocol::{MAX_PLAYERS_PER_LOBBY, PlayerId};

use super::hitscan::{Ray, trace};
use super::{SimEvent, World};

/// The shot each player landed this tick, by shooter id.
type Hits = [Option<PlayerId>; MAX_PLAYERS_PER_LOBBY];

impl World {
    pub(super) fn run_step(&mut self, inputs: &[(PlayerId, InputFrame)], events: &mut Vec<SimEvent>) {
        let now = self.tick;
        // Saturating: at 60 Hz a u32 tick lasts over two years.
        let next = now.saturating_add(1);
        self.take_inputs(inputs);
        self.move_players();
        let mut hits: Hits = [None; MAX_PLAYERS_PER_LOBBY];
        self.fire(now, &mut hits);
        self.apply_hits(&hits, next, events);
        self.respawn_due(next);
        self.tick = next;
        self.record_all();
    }

    fn take_inputs(&mut self, inputs: &[(PlayerId, InputFrame)]) {
        for (id, frame) in inputs {
            match self.player_mut(*id) {
                // Away players are frozen; a late datagram must not move them.
                Some(p) if !p.away => p.input = *frame,
                _ => {}
            }
        }
    }

    fn move_players(&mut self) {
        for p in self.players.iter_mut().flatten() {
            p.fired = false;
            if !p.alive || p.away {
                continue;
            }
            p.pos = movement::step(p.pos, p.input.buttons, &self.map, self.cfg.tick_rate);
            p.aim = p.input.aim;
        }
    }

    /// Traces every shot fired this tick into `hits`.
    fn fire(&mut self, now: u32, hits: &mut Hits) {
        // Fixed before anyone fires, so a protected shooter losing protection
        // by firing becomes hittable next tick whatever the id order.
        let mut hittable = [false; MAX_PLAYERS_PER_LOBBY];
        for (h, p) in hittable.iter_mut().zip(&self.players) {
            *h = p.as_ref().is_some_and(|p| p.hittable_at(now));
        }
        for (shooter, hit) in hits.iter_mut().enumerate() {
            let Some(p) = self.players[shooter].as_mut() else {
                continue;
            };
            if !p.alive || p.away || !p.input.buttons.has(Buttons::FIRE) || now < p.next_fire_tick {
                continue;
            }
            p.fired = true;
            p.next_fire_tick = now.saturating_add(self.cfg.fire_cooldown_ticks);
            // Standard rule: whoever shoots gives up their spawn protection.
            p.protected_until = 0;
            if self.winner.is_some() {
                // The match is decided; shots still show, but do no damage.
                continue;
            }
            let ray = Ray::shot(p.pos, p.aim, self.cfg.shot_range);
            let at = self.history.rewind_tick(now, p.input.view_tick);
            let (players, history) = (&self.players, &self.history);
            let targets = (0..MAX_PLAYERS_PER_LOBBY).filter(|&t| t != shooter && hittable[t]).filter_map(|t| {
                let life = players[t].as_ref()?.life;
                let (pos, then) = history.get(at, t)?;
                (then == life).then_some((t as PlayerId, pos))
            });
            *hit = trace(&self.map, &ray, targets);
        }
    }

    fn apply_hits(&mut self, hits: &Hits, next: u32, events: &mut Vec<SimEvent>) {
        for (shooter, victim) in hits.iter().enumerate() {
            let Some(victim) = *victim else { continue };
            if self.winner.is_some() {
                break;
            }
            let Some(v) = self.players[victim as usize].as_mut() else {
                continue;
            };
            if !v.alive {
                continue;
            }
            v.health = v.health.saturating_sub(self.cfg.damage);
            if v.health > 0 {
                continue;
            }
            v.alive = false;
            v.respawn_at = next.saturating_add(self.cfg.respawn_ticks);
            v.score.deaths = v.score.deaths.saturating_add(1);
            let Some(k) = self.players[shooter].as_mut() else {
                continue;
            };
            k.score.kills = k.score.kills.saturating_add(1);
            let killer = shooter as PlayerId;
            events.push(SimEvent::Kill { killer, victim });
            if k.score.kills >= self.cfg.kill_target {
                self.winner = Some(killer);
                events.push(SimEvent::MatchWon { winner: killer });
            }
        }
    }

    fn respawn_due(&mut self, next: u32) {
        for slot in 0..MAX_PLAYERS_PER_LOBBY {
            let due = self.players[slot].as_ref().is_some_and(|p| !p.alive && p.respawn_at <= next);
            if due {
                self.spawn(slot, next);
            }
        }
    }
}
