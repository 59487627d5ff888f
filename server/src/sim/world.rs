//! The world: every player's state, and the API the lobby drives.

use std::sync::Arc;

use protocol::datagram::{InputFrame, PlayerSnap, flags};
use protocol::map::Map;
use protocol::movement::Pos;
use protocol::{MAX_PLAYERS_PER_LOBBY, PlayerId};

use super::history::{History, NO_LIFE};
use super::rng::Rng;
use super::{PlayerScore, SimConfig, SimEvent};

/// One occupied slot.
#[derive(Debug, Clone, Copy)]
pub(super) struct Player {
    pub pos: Pos,
    pub aim: u16,
    pub health: u8,
    pub alive: bool,
    /// Disconnected with the slot held: frozen, not hittable, keeps score.
    pub away: bool,
    /// Fired during the last step (the FIRED flag).
    pub fired: bool,
    /// The newest input; repeated on ticks when none arrives.
    pub input: InputFrame,
    /// First tick at which the player may fire again.
    pub next_fire_tick: u32,
    /// Not damageable while the world's tick is below this.
    pub protected_until: u32,
    /// Tick at which a dead player comes back.
    pub respawn_at: u32,
    /// Changes on every spawn; ties rewound positions to one life.
    pub life: u32,
    pub score: PlayerScore,
}

impl Player {
    pub fn protected_at(&self, tick: u32) -> bool {
        tick < self.protected_until
    }

    /// Whether a shot judged at `tick` may damage this player.
    pub fn hittable_at(&self, tick: u32) -> bool {
        self.alive && !self.away && !self.protected_at(tick)
    }
}

pub struct World {
    pub(super) map: Arc<Map>,
    pub(super) cfg: SimConfig,
    pub(super) tick: u32,
    /// Indexed by player id; always `MAX_PLAYERS_PER_LOBBY` long, so a step
    /// never allocates.
    pub(super) players: Vec<Option<Player>>,
    pub(super) count: usize,
    pub(super) history: History,
    pub(super) rng: Rng,
    pub(super) next_life: u32,
    pub(super) winner: Option<PlayerId>,
}

impl World {
    /// A world on `map` (assumed validated, see [`Map::validate`]); `seed`
    /// drives the spawn choices.
    pub fn new(map: Arc<Map>, cfg: SimConfig, seed: u64) -> World {
        let history = History::new(cfg.max_rewind_ticks);
        World {
            map,
            cfg,
            tick: 1,
            players: vec![None; MAX_PLAYERS_PER_LOBBY],
            count: 0,
            history,
            rng: Rng::new(seed),
            next_life: NO_LIFE + 1,
            winner: None,
        }
    }

    /// The tick of the current state; starts at 1 and grows by one per step.
    pub fn tick(&self) -> u32 {
        self.tick
    }

    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    pub fn map(&self) -> &Arc<Map> {
        &self.map
    }

    /// Adds a player at the spawn point farthest from the others, alive and
    /// protected. An id out of range or already present is ignored, so
    /// calling it twice cannot reset a player.
    pub fn add_player(&mut self, id: PlayerId) {
        let slot = id as usize;
        if slot >= MAX_PLAYERS_PER_LOBBY || self.players[slot].is_some() {
            return;
        }
        self.players[slot] = Some(Player {
            pos: Pos::default(),
            aim: 0,
            health: 0,
            alive: false,
            away: false,
            fired: false,
            input: InputFrame::default(),
            next_fire_tick: 0,
            protected_until: 0,
            respawn_at: 0,
            life: NO_LIFE,
            score: PlayerScore::default(),
        });
        self.count += 1;
        self.spawn(slot, self.tick);
        self.record_slot(slot);
    }

    /// Frees the slot and everything kept for it, rewind history included.
    pub fn remove_player(&mut self, id: PlayerId) {
        let slot = id as usize;
        if self.players.get_mut(slot).and_then(Option::take).is_some() {
            self.count -= 1;
            self.history.forget(slot);
        }
    }

    /// Marks a player away (disconnected, slot held) or back. Away players
    /// stand still and cannot be hit; a returning player gets spawn
    /// protection so they are not shot before their client has caught up.
    pub fn set_away(&mut self, id: PlayerId, away: bool) {
        let tick = self.tick;
        let protection = self.cfg.protection_ticks;
        let Some(p) = self.player_mut(id) else { return };
        if p.away == away {
            return;
        }
        p.away = away;
        if away {
            // Forget held buttons: on return the player must not keep running.
            p.input = InputFrame::default();
            p.fired = false;
        } else if p.alive {
            p.protected_until = tick + protection;
        }
    }

    /// Players in slots, away ones included.
    pub fn player_count(&self) -> usize {
        self.count
    }

    pub fn contains(&self, id: PlayerId) -> bool {
        self.player(id).is_some()
    }

    pub fn score(&self, id: PlayerId) -> Option<PlayerScore> {
        self.player(id).map(|p| p.score)
    }

    pub fn winner(&self) -> Option<PlayerId> {
        self.winner
    }

    /// Every player's quantized state, sorted by id. Dead players keep their
    /// last position with health 0.
    pub fn snapshot(&self, out: &mut Vec<PlayerSnap>) {
        out.clear();
        for (slot, p) in self.players.iter().enumerate() {
            let Some(p) = p else { continue };
            let mut f = 0;
            if p.alive {
                f |= flags::ALIVE;
            }
            if p.alive && p.protected_at(self.tick) {
                f |= flags::PROTECTED;
            }
            if p.fired {
                f |= flags::FIRED;
            }
            if p.away {
                f |= flags::AWAY;
            }
            let (x, y) = p.pos.to_wire();
            let health = if p.alive { p.health } else { 0 };
            out.push(PlayerSnap { id: slot as PlayerId, x, y, aim: p.aim, health, flags: f });
        }
    }

    /// Starts a new match in place: scores zeroed, winner cleared, everyone
    /// respawned with protection. Ticks keep counting (snapshots stay ordered).
    pub fn reset_match(&mut self) {
        self.winner = None;
        for p in self.players.iter_mut().flatten() {
            p.score = PlayerScore::default();
            // Dead for the spawn choice below, so each player is placed away
            // from those already respawned rather than from old positions.
            p.alive = false;
            p.fired = false;
            p.next_fire_tick = 0;
        }
        for slot in 0..self.players.len() {
            if self.players[slot].is_some() {
                self.spawn(slot, self.tick);
            }
        }
        self.record_all();
    }

    /// Advances one tick; see `step.rs`.
    pub fn step(&mut self, inputs: &[(PlayerId, InputFrame)], events: &mut Vec<SimEvent>) {
        self.run_step(inputs, events);
    }

    pub(super) fn player(&self, id: PlayerId) -> Option<&Player> {
        self.players.get(id as usize)?.as_ref()
    }

    pub(super) fn player_mut(&mut self, id: PlayerId) -> Option<&mut Player> {
        self.players.get_mut(id as usize)?.as_mut()
    }

    /// Writes `slot` into the rewind frame of the current tick.
    pub(super) fn record_slot(&mut self, slot: usize) {
        let (pos, life) = match &self.players[slot] {
            Some(p) if p.alive => (p.pos, p.life),
            _ => (Pos::default(), NO_LIFE),
        };
        self.history.record(self.tick, slot, pos, life);
    }

    pub(super) fn record_all(&mut self) {
        for slot in 0..self.players.len() {
            self.record_slot(slot);
        }
    }

    /// Test hook: puts a player somewhere and rewrites the current rewind frame.
    #[cfg(test)]
    pub(crate) fn place(&mut self, id: PlayerId, pos: Pos) {
        self.player_mut(id).expect("player present").pos = pos;
        self.record_slot(id as usize);
    }

    /// Test hook: ends a player's spawn protection now.
    #[cfg(test)]
    pub(crate) fn unprotect(&mut self, id: PlayerId) {
        self.player_mut(id).expect("player present").protected_until = 0;
    }
}
