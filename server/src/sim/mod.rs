//! The deathmatch simulation of one lobby: pure, deterministic, tick driven.
//!
//! [`World`] knows nothing about sockets, clocks or sessions. The lobby feeds
//! it at most one [`protocol::datagram::InputFrame`] per player per tick and
//! reads back snapshots and [`SimEvent`]s; the same seed and inputs always give
//! the same game, which is what the tests here rely on.
//!
//! Ticks label states: `World::tick()` is the tick of the state the world holds
//! now, and a snapshot taken now should carry it. A client that saw the
//! snapshot of tick `T` sends `view_tick = T`, and its shots are judged
//! against where targets were at `T` (lag compensation, see [`history`]).
//!
//! Files: [`config`] (tuning in ticks), [`world`] (players and the public
//! API), `step` (one tick: movement, firing, damage, respawn), `spawn` (where
//! players appear), [`hitscan`] (ray geometry), [`history`] (rewind buffer),
//! [`rng`] (seeded choices).

pub mod config;
pub mod history;
pub mod hitscan;
pub mod rng;
mod spawn;
mod step;
pub mod world;

pub use config::SimConfig;
pub use world::World;

use protocol::PlayerId;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlayerScore {
    pub kills: u16,
    pub deaths: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SimEvent {
    Kill {
        killer: PlayerId,
        victim: PlayerId,
    },
    /// Sent once per match, right after the winning kill.
    MatchWon {
        winner: PlayerId,
    },
}

#[cfg(test)]
mod tests;
