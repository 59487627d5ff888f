//! Snapshot delta compression: a snapshot encoded against one the client
//! has acknowledged (the `ack_tick` of its input packets), carrying only the
//! players and fields that changed since.
//!
//! Each changed player is its id, a bit mask of the fields present, and
//! those fields: positions and aim as differences from the base (signed
//! zigzag varints, one byte for a tick's movement), health and flags as new
//! values. A player missing from the base is encoded against an all-zero
//! player, so every non-zero field is present. A player of the base that is
//! gone has the `GONE` bit and nothing else. Players of the base that are not
//! listed are unchanged. Players are listed in increasing id order, so the
//! client rebuilds the whole snapshot with one merge.

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};

use crate::datagram::{PlayerSnap, ServerDatagram, Snapshot};
use crate::{MAX_PLAYERS_PER_LOBBY, PlayerId};

/// How many ticks back a delta's base may lie. The node keeps this many
/// snapshots; a client whose newest acknowledged snapshot is older gets a
/// full snapshot.
pub const MAX_BASE_AGE: u32 = 32;

/// Field bits of [`PlayerDelta::mask`].
pub mod fields {
    pub const X: u8 = 1;
    pub const Y: u8 = 2;
    pub const AIM: u8 = 4;
    pub const HEALTH: u8 = 8;
    pub const FLAGS: u8 = 16;
    /// The player was in the base and has left; no fields follow.
    pub const GONE: u8 = 32;
    pub(crate) const KNOWN: u8 = 63;
}

/// One player's change against the base.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlayerDelta {
    pub id: PlayerId,
    pub mask: u8,
    /// Subunits moved along x since the base (present with `fields::X`).
    pub dx: i32,
    pub dy: i32,
    /// Wrapping difference of the aim, as a signed turn fraction.
    pub daim: i16,
    pub health: u8,
    pub flags: u8,
}

impl PlayerDelta {
    /// The change from `base` (an all-zero player when absent) to `now`;
    /// `None` when nothing changed.
    pub fn between(base: Option<&PlayerSnap>, now: &PlayerSnap) -> Option<PlayerDelta> {
        let zero = PlayerSnap { id: now.id, ..PlayerSnap::default() };
        let base = base.unwrap_or(&zero);
        let mut d = PlayerDelta { id: now.id, ..PlayerDelta::default() };
        if now.x != base.x {
            d.mask |= fields::X;
            d.dx = now.x as i32 - base.x as i32;
        }
        if now.y != base.y {
            d.mask |= fields::Y;
            d.dy = now.y as i32 - base.y as i32;
        }
        if now.aim != base.aim {
            d.mask |= fields::AIM;
            d.daim = now.aim.wrapping_sub(base.aim) as i16;
        }
        if now.health != base.health {
            d.mask |= fields::HEALTH;
            d.health = now.health;
        }
        if now.flags != base.flags {
            d.mask |= fields::FLAGS;
            d.flags = now.flags;
        }
        (d.mask != 0).then_some(d)
    }

    pub fn gone(id: PlayerId) -> PlayerDelta {
        PlayerDelta { id, mask: fields::GONE, ..PlayerDelta::default() }
    }

    fn has(&self, bit: u8) -> bool {
        self.mask & bit != 0
    }

    /// Applies this change to `base` (an all-zero player when absent).
    /// `None` for a `GONE` change or a position that leaves the `u16` range.
    fn apply(&self, base: Option<&PlayerSnap>) -> Result<Option<PlayerSnap>, DeltaError> {
        if self.has(fields::GONE) {
            return if base.is_some() { Ok(None) } else { Err(DeltaError::GoneUnknown(self.id)) };
        }
        let mut p = base.copied().unwrap_or(PlayerSnap { id: self.id, ..PlayerSnap::default() });
        let shift = |v: u16, d: i32| u16::try_from(v as i32 + d).map_err(|_| DeltaError::OutOfRange(self.id));
        if self.has(fields::X) {
            p.x = shift(p.x, self.dx)?;
        }
        if self.has(fields::Y) {
            p.y = shift(p.y, self.dy)?;
        }
        if self.has(fields::AIM) {
            p.aim = p.aim.wrapping_add(self.daim as u16);
        }
        if self.has(fields::HEALTH) {
            p.health = self.health;
        }
        if self.has(fields::FLAGS) {
            p.flags = self.flags;
        }
        Ok(Some(p))
    }
}

/// Why a delta could not be applied to the base the client holds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    #[error("player {0} is marked gone but is not in the base")]
    GoneUnknown(PlayerId),
    #[error("player {0} moves outside the map's coordinate range")]
    OutOfRange(PlayerId),
    #[error("the result has more than {MAX_PLAYERS_PER_LOBBY} players")]
    TooManyPlayers,
}

/// The changes that turn `base` into `now` (both in increasing id order),
/// appended to `out` in increasing id order.
pub fn diff(base: &[PlayerSnap], now: &[PlayerSnap], out: &mut Vec<PlayerDelta>) {
    let (mut b, mut n) = (base.iter().peekable(), now.iter().peekable());
    loop {
        match (b.peek(), n.peek()) {
            (Some(bp), Some(np)) if bp.id == np.id => {
                out.extend(PlayerDelta::between(Some(bp), np));
                b.next();
                n.next();
            }
            (Some(bp), Some(np)) if bp.id < np.id => {
                out.push(PlayerDelta::gone(bp.id));
                b.next();
            }
            (Some(bp), None) => {
                out.push(PlayerDelta::gone(bp.id));
                b.next();
            }
            (_, Some(np)) => {
                out.extend(PlayerDelta::between(None, np));
                n.next();
            }
            (None, None) => break,
        }
    }
}

/// Rebuilds a snapshot's players from `base` (increasing id order) and a
/// decoded delta's changes (increasing id order, checked when decoding),
/// into `out` (cleared first).
pub fn apply(base: &[PlayerSnap], changes: &[PlayerDelta], out: &mut Vec<PlayerSnap>) -> Result<(), DeltaError> {
    out.clear();
    let (mut b, mut c) = (base.iter().peekable(), changes.iter().peekable());
    loop {
        let step = match (b.peek(), c.peek()) {
            (Some(bp), Some(cd)) if bp.id == cd.id => {
                let p = cd.apply(Some(bp))?;
                b.next();
                c.next();
                p
            }
            (Some(bp), Some(cd)) if bp.id < cd.id => b.next().copied(),
            (Some(_), None) => b.next().copied(),
            (_, Some(cd)) => {
                let p = cd.apply(None)?;
                c.next();
                p
            }
            (None, None) => break,
        };
        if let Some(p) = step {
            if out.len() == MAX_PLAYERS_PER_LOBBY {
                return Err(DeltaError::TooManyPlayers);
            }
            out.push(p);
        }
    }
    Ok(())
}

/// Recent snapshots' players by tick: the node's bases for encoding deltas
/// and a client's for rebuilding them. Buffers are allocated once.
#[derive(Debug, Clone)]
pub struct History {
    /// `(tick, players)`; tick 0 marks an empty entry (ticks start at 1).
    entries: Vec<(u32, Vec<PlayerSnap>)>,
}

const HISTORY_SLOTS: usize = MAX_BASE_AGE as usize + 1;

impl History {
    pub fn new(max_players: usize) -> History {
        History { entries: (0..HISTORY_SLOTS).map(|_| (0, Vec::with_capacity(max_players))).collect() }
    }

    /// Keeps `players` as the snapshot of `tick`, replacing the one
    /// [`MAX_BASE_AGE`] + 1 ticks older.
    pub fn push(&mut self, tick: u32, players: &[PlayerSnap]) {
        let (t, kept) = &mut self.entries[tick as usize % HISTORY_SLOTS];
        *t = tick;
        kept.clear();
        kept.extend_from_slice(players);
    }

    /// The players of `tick`, if kept and 1 to [`MAX_BASE_AGE`] ticks before `now`.
    pub fn get(&self, tick: u32, now: u32) -> Option<&[PlayerSnap]> {
        if tick == 0 || tick >= now || now - tick > MAX_BASE_AGE {
            return None;
        }
        let (t, players) = &self.entries[tick as usize % HISTORY_SLOTS];
        (*t == tick).then_some(players.as_slice())
    }
}

/// Why a received delta could not be turned into a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RebuildError {
    #[error("the delta's base (tick {0}) is no longer held")]
    MissingBase(u32),
    #[error(transparent)]
    Invalid(#[from] DeltaError),
}

/// A client's side of delta compression: keeps the snapshots it received
/// and turns each datagram, full or delta, into a whole [`Snapshot`].
#[derive(Debug, Clone)]
pub struct Rebuilder {
    history: History,
}

impl Default for Rebuilder {
    fn default() -> Rebuilder {
        Rebuilder { history: History::new(MAX_PLAYERS_PER_LOBBY) }
    }
}

impl Rebuilder {
    /// The whole snapshot a datagram stands for. Call it for every
    /// snapshot datagram that arrives, in any order: later deltas may be
    /// based on any of them.
    pub fn rebuild(&mut self, datagram: ServerDatagram) -> Result<Snapshot, RebuildError> {
        let snap = match datagram {
            ServerDatagram::Snapshot(s) => s,
            ServerDatagram::Delta(d) => {
                let base = self.history.get(d.base_tick(), d.tick).ok_or(RebuildError::MissingBase(d.base_tick()))?;
                let mut players = Vec::with_capacity(base.len() + d.players.len());
                apply(base, &d.players, &mut players)?;
                Snapshot { tick: d.tick, ack_seq: d.ack_seq, players }
            }
        };
        self.history.push(snap.tick, &snap.players);
        Ok(snap)
    }
}

/// Wire order: id, mask, then the fields the mask names in bit order. The
/// tuple's length is the number of elements actually written; postcard does
/// not encode tuple lengths, so the reader learns it from the mask.
impl Serialize for PlayerDelta {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let present = (self.mask & (fields::KNOWN & !fields::GONE)).count_ones() as usize;
        let mut t = s.serialize_tuple(2 + present)?;
        t.serialize_element(&self.id)?;
        t.serialize_element(&self.mask)?;
        if self.has(fields::X) {
            t.serialize_element(&self.dx)?;
        }
        if self.has(fields::Y) {
            t.serialize_element(&self.dy)?;
        }
        if self.has(fields::AIM) {
            t.serialize_element(&self.daim)?;
        }
        if self.has(fields::HEALTH) {
            t.serialize_element(&self.health)?;
        }
        if self.has(fields::FLAGS) {
            t.serialize_element(&self.flags)?;
        }
        t.end()
    }
}

impl<'de> Deserialize<'de> for PlayerDelta {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PlayerDelta, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PlayerDelta;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a player delta")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PlayerDelta, A::Error> {
                fn next<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(seq: &mut A) -> Result<T, A::Error> {
                    seq.next_element()?.ok_or_else(|| de::Error::custom("player delta ends early"))
                }
                let mut p = PlayerDelta { id: next(&mut seq)?, mask: next(&mut seq)?, ..PlayerDelta::default() };
                if p.mask & !fields::KNOWN != 0 {
                    return Err(de::Error::custom("unknown player delta field"));
                }
                if p.has(fields::GONE) && p.mask != fields::GONE {
                    return Err(de::Error::custom("a gone player carries fields"));
                }
                if p.has(fields::X) {
                    p.dx = next(&mut seq)?;
                }
                if p.has(fields::Y) {
                    p.dy = next(&mut seq)?;
                }
                if p.has(fields::AIM) {
                    p.daim = next(&mut seq)?;
                }
                if p.has(fields::HEALTH) {
                    p.health = next(&mut seq)?;
                }
                if p.has(fields::FLAGS) {
                    p.flags = next(&mut seq)?;
                }
                Ok(p)
            }
        }
        // The most elements a delta can have; postcard reads only as many as
        // the visitor asks for.
        d.deserialize_tuple(7, V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datagram::flags;

    fn p(id: PlayerId, x: u16, y: u16, aim: u16, health: u8, flags: u8) -> PlayerSnap {
        PlayerSnap { id, x, y, aim, health, flags }
    }

    fn roundtrip(base: &[PlayerSnap], now: &[PlayerSnap]) -> Vec<PlayerDelta> {
        let mut changes = Vec::new();
        diff(base, now, &mut changes);
        let bytes = postcard::to_stdvec(&changes).unwrap();
        let decoded: Vec<PlayerDelta> = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(decoded, changes);
        let mut rebuilt = Vec::new();
        apply(base, &decoded, &mut rebuilt).unwrap();
        assert_eq!(rebuilt, now);
        changes
    }

    #[test]
    fn unchanged_players_cost_nothing_and_movement_costs_a_byte_per_axis() {
        let a = flags::ALIVE;
        let base = [p(0, 1600, 1600, 0, 100, a), p(1, 24000, 9600, 32768, 35, a), p(2, 50, 60, 7, 100, a)];
        let mut now = base;
        now[1].x += 5;
        now[1].y -= 9;
        let changes = roundtrip(&base, &now);
        assert_eq!(changes.len(), 1);
        assert_eq!(postcard::to_stdvec(&changes[0]).unwrap(), [1, fields::X | fields::Y, 10, 17]);
        assert!(roundtrip(&base, &base).is_empty());
    }

    #[test]
    fn joins_leaves_and_wrapping_aim() {
        let a = flags::ALIVE;
        let base = [p(0, 10, 10, 65530, 100, a), p(3, 500, 500, 0, 100, a)];
        let now = [p(0, 10, 10, 4, 90, a | flags::FIRED), p(1, 64000, 0, 0, 100, 0), p(5, 1, 2, 3, 4, 5)];
        let changes = roundtrip(&base, &now);
        let ids: Vec<_> = changes.iter().map(|c| (c.id, c.mask)).collect();
        assert_eq!(
            ids,
            [
                (0, fields::AIM | fields::HEALTH | fields::FLAGS),
                (1, fields::X | fields::HEALTH),
                (3, fields::GONE),
                (5, fields::KNOWN & !fields::GONE)
            ]
        );
        assert_eq!(changes[0].daim, 10, "the short way round");
        roundtrip(&[], &now);
        roundtrip(&now, &[]);
    }

    #[test]
    fn hostile_changes_are_refused() {
        let base = [p(0, 10, 10, 0, 100, 1)];
        let mut out = Vec::new();
        let left = PlayerDelta { id: 0, mask: fields::X, dx: -11, ..PlayerDelta::default() };
        assert_eq!(apply(&base, &[left], &mut out), Err(DeltaError::OutOfRange(0)));
        assert_eq!(apply(&base, &[PlayerDelta::gone(4)], &mut out), Err(DeltaError::GoneUnknown(4)));
        let many: Vec<_> =
            (0..40).map(|id| PlayerDelta { id, mask: fields::HEALTH, health: 1, ..Default::default() }).collect();
        assert_eq!(apply(&[], &many, &mut out), Err(DeltaError::TooManyPlayers));
        for bad in [&[0u8, 64][..], &[0, fields::GONE | fields::X, 1], &[0, fields::X]] {
            assert!(postcard::from_bytes::<PlayerDelta>(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn history_keeps_the_last_ticks_and_refuses_older_or_future_ones() {
        let players = |n: u8| (0..n).map(|id| p(id, 0, 0, 0, 0, 0)).collect::<Vec<_>>();
        let mut h = History::new(8);
        for tick in 1..=100 {
            h.push(tick, &players((tick % 8) as u8));
        }
        assert_eq!(h.get(99, 100).map(|p| p.len()), Some(3));
        assert_eq!(h.get(100 - MAX_BASE_AGE, 100).map(|p| p.len()), Some(4));
        assert_eq!(h.get(100 - MAX_BASE_AGE - 1, 100), None, "too old");
        assert_eq!(h.get(100, 100), None, "a base is older than now");
        assert_eq!(h.get(0, 100), None);
        let mut gappy = History::new(8);
        gappy.push(5, &players(1));
        let later = 5 + HISTORY_SLOTS as u32;
        assert_eq!(gappy.get(later, later + 1), None, "a tick never pushed is not found in its slot");
    }

    #[test]
    fn rebuilder_follows_a_node_through_loss_and_reordering() {
        let a = flags::ALIVE;
        let states: Vec<Vec<PlayerSnap>> =
            (0..40u16).map(|t| vec![p(0, 100 + t, 100, t * 300, 100, a), p(1, 500, 500 - t, 0, 100, a)]).collect();
        let mut node = History::new(8);
        let mut client = Rebuilder::default();
        let mut acked = 0u32;
        for (i, players) in states.iter().enumerate() {
            let tick = i as u32 + 1;
            let msg = match node.get(acked, tick) {
                Some(base) => {
                    let mut changes = Vec::new();
                    diff(base, players, &mut changes);
                    ServerDatagram::Delta(crate::datagram::DeltaSnapshot {
                        tick,
                        base_age: (tick - acked) as u8,
                        ack_seq: 0,
                        players: changes,
                    })
                }
                None => ServerDatagram::Snapshot(Snapshot { tick, ack_seq: 0, players: players.clone() }),
            };
            node.push(tick, players);
            // Every third datagram is lost; the client acks what it got.
            if tick % 3 == 0 {
                continue;
            }
            let snap = client.rebuild(msg).unwrap();
            assert_eq!(&snap.players, players);
            acked = tick;
        }
        let orphan = ServerDatagram::Delta(crate::datagram::DeltaSnapshot {
            tick: 200,
            base_age: 3,
            ack_seq: 0,
            players: vec![],
        });
        assert_eq!(client.rebuild(orphan), Err(RebuildError::MissingBase(197)));
    }
}
