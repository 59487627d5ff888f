//! Unreliable datagrams: client inputs up, snapshots down.
//!
//! Inputs carry consecutive sequence numbers; every packet repeats the last
//! few frames (`frames[i]` has sequence `first_seq + i`, newest last), so a
//! lost datagram loses no input. The packet also names the newest snapshot
//! tick the client has received, because QUIC does not tell the application
//! which datagrams arrived.
//!
//! Snapshots carry the node tick and, for the receiving client, the last input
//! sequence the node applied, so the client can reconcile its prediction.
//! Positions are quantized to 1/16 of a map unit ([`crate::movement::SUBUNITS`]).

use serde::de::{self, DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::codec::Bounded;
use crate::delta::{MAX_BASE_AGE, PlayerDelta};
use crate::{MAX_PLAYERS_PER_LOBBY, PlayerId};

/// Most input frames one packet may carry (the newest and its repeats).
pub const MAX_INPUT_FRAMES: usize = 8;
/// Frames a well-behaved client repeats per packet (newest included).
pub const DEFAULT_INPUT_REDUNDANCY: usize = 4;
/// Largest input datagram the node accepts; anything larger is dropped.
pub const MAX_INPUT_BYTES: usize = 128;
/// Largest snapshot payload. QUIC guarantees at least 1200 bytes of UDP
/// payload; a full lobby's snapshot stays well below after QUIC overhead.
pub const MAX_SNAPSHOT_BYTES: usize = 1024;

/// Input buttons as a bit set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Buttons(pub u8);

impl Buttons {
    pub const UP: u8 = 1;
    pub const DOWN: u8 = 2;
    pub const LEFT: u8 = 4;
    pub const RIGHT: u8 = 8;
    pub const FIRE: u8 = 16;
    const KNOWN: u8 = 31;

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
    pub fn with(self, bit: u8) -> Buttons {
        Buttons(self.0 | bit)
    }
}

/// One input sample: what the player pressed and where they aimed, and the
/// newest snapshot tick they saw when they pressed it (for lag compensation).
///
/// On the wire (inside an [`InputPacket`]) a frame is `buttons: u8`, `aim`
/// as two little-endian bytes (aims are spread over the whole turn, so a
/// varint would take 3 bytes for three values in four) and `view_tick` as
/// a varint of its age behind the packet's `ack_tick` (0-3 in steady play:
/// one byte instead of two or three).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputFrame {
    pub buttons: Buttons,
    /// Aim angle, a full turn mapped onto `0..=u16::MAX` (0 = +x, counter-clockwise
    /// towards +y).
    pub aim: u16,
    pub view_tick: u32,
}

/// An input packet's frames, inline: the node decodes 20 of these per
/// player-second, and a decoded packet never holds more than
/// [`MAX_INPUT_FRAMES`], so decoding allocates nothing. (A hand-built
/// packet may hold more; it spills to the heap and the node refuses it.)
pub type InputFrames = SmallVec<[InputFrame; MAX_INPUT_FRAMES]>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputPacket {
    /// Newest snapshot tick received so far.
    pub ack_tick: u32,
    /// Sequence number of `frames[0]`; sequences start at 1.
    pub first_seq: u32,
    pub frames: InputFrames,
}

/// A frame as it travels: see [`InputFrame`]. `view_age` is
/// `ack_tick - view_tick` (wrapping), so every `u32` round-trips.
#[derive(Serialize, Deserialize)]
struct WireFrame {
    buttons: Buttons,
    aim: [u8; 2],
    view_age: u32,
}

impl WireFrame {
    fn new(f: &InputFrame, ack_tick: u32) -> WireFrame {
        WireFrame { buttons: f.buttons, aim: f.aim.to_le_bytes(), view_age: ack_tick.wrapping_sub(f.view_tick) }
    }

    fn frame(&self, ack_tick: u32) -> InputFrame {
        InputFrame {
            buttons: self.buttons,
            aim: u16::from_le_bytes(self.aim),
            view_tick: ack_tick.wrapping_sub(self.view_age),
        }
    }
}

/// Serializes an input packet's frames relative to its `ack_tick`, without
/// building a second vector (clients encode one packet per tick).
struct WireFrames<'a> {
    frames: &'a [InputFrame],
    ack_tick: u32,
}

impl Serialize for WireFrames<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.frames.iter().map(|f| WireFrame::new(f, self.ack_tick)))
    }
}

impl Serialize for InputPacket {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("InputPacket", 3)?;
        st.serialize_field("ack_tick", &self.ack_tick)?;
        st.serialize_field("first_seq", &self.first_seq)?;
        st.serialize_field("frames", &WireFrames { frames: &self.frames, ack_tick: self.ack_tick })?;
        st.end()
    }
}

impl<'de> Deserialize<'de> for InputPacket {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<InputPacket, D::Error> {
        d.deserialize_struct("InputPacket", &["ack_tick", "first_seq", "frames"], PacketVisitor)
    }
}

struct PacketVisitor;

impl<'de> Visitor<'de> for PacketVisitor {
    type Value = InputPacket;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an input packet")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<InputPacket, A::Error> {
        let missing = |i| de::Error::invalid_length(i, &"3 fields");
        let ack_tick: u32 = seq.next_element()?.ok_or_else(|| missing(0))?;
        let first_seq: u32 = seq.next_element()?.ok_or_else(|| missing(1))?;
        let frames = seq.next_element_seed(FramesSeed { ack_tick })?.ok_or_else(|| missing(2))?;
        Ok(InputPacket { ack_tick, first_seq, frames })
    }
}

/// Reads the frames straight into `InputFrame`s, inline (at most
/// [`MAX_INPUT_FRAMES`] elements whatever length the prefix claims).
struct FramesSeed {
    ack_tick: u32,
}

impl<'de> DeserializeSeed<'de> for FramesSeed {
    type Value = InputFrames;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<InputFrames, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for FramesSeed {
    type Value = InputFrames;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a sequence of at most {MAX_INPUT_FRAMES} input frames")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<InputFrames, A::Error> {
        let hint = seq.size_hint().unwrap_or(0);
        if hint > MAX_INPUT_FRAMES {
            return Err(de::Error::invalid_length(hint, &self));
        }
        let mut out = InputFrames::new();
        while let Some(w) = seq.next_element::<WireFrame>()? {
            if out.len() == MAX_INPUT_FRAMES {
                return Err(de::Error::invalid_length(MAX_INPUT_FRAMES + 1, &self));
            }
            out.push(w.frame(self.ack_tick));
        }
        Ok(out)
    }
}

impl InputPacket {
    /// Sequence number of the newest frame.
    pub fn last_seq(&self) -> u32 {
        self.first_seq.wrapping_add(self.frames.len().saturating_sub(1) as u32)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientDatagram {
    Input(InputPacket),
}

/// Player flags in a snapshot.
pub mod flags {
    pub const ALIVE: u8 = 1;
    /// Recently spawned and not damageable.
    pub const PROTECTED: u8 = 2;
    /// Fired a shot this tick.
    pub const FIRED: u8 = 4;
    /// Disconnected, slot held.
    pub const AWAY: u8 = 8;
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerSnap {
    pub id: PlayerId,
    /// Position in subunits (1/16 map unit).
    pub x: u16,
    pub y: u16,
    pub aim: u16,
    pub health: u8,
    pub flags: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub tick: u32,
    /// Last input sequence the node applied for the receiving player (0: none yet).
    pub ack_seq: u32,
    #[serde(deserialize_with = "crate::codec::bounded_vec::<_, _, MAX_PLAYERS_PER_LOBBY>")]
    pub players: Vec<PlayerSnap>,
}

/// A snapshot encoded against an earlier one the client acknowledged (see
/// [`crate::delta`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaSnapshot {
    pub tick: u32,
    /// The base is the snapshot of tick `tick - base_age`, 1 to
    /// [`crate::delta::MAX_BASE_AGE`] ticks back.
    pub base_age: u8,
    pub ack_seq: u32,
    /// Changed players in increasing id order.
    #[serde(deserialize_with = "crate::codec::bounded_vec::<_, _, MAX_PLAYERS_PER_LOBBY>")]
    pub players: Vec<PlayerDelta>,
}

impl DeltaSnapshot {
    pub fn base_tick(&self) -> u32 {
        self.tick.wrapping_sub(self.base_age as u32)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerDatagram {
    Snapshot(Snapshot),
    Delta(DeltaSnapshot),
}

impl Bounded for ClientDatagram {
    fn validate(&self) -> Result<(), &'static str> {
        let ClientDatagram::Input(p) = self;
        if p.frames.is_empty() || p.frames.len() > MAX_INPUT_FRAMES {
            return Err("input frame count");
        }
        if p.first_seq == 0 || p.first_seq.checked_add(p.frames.len() as u32).is_none() {
            return Err("input sequence");
        }
        if p.frames.iter().any(|f| f.buttons.0 & !Buttons::KNOWN != 0) {
            return Err("input buttons");
        }
        Ok(())
    }
}

impl Bounded for ServerDatagram {
    fn validate(&self) -> Result<(), &'static str> {
        match self {
            ServerDatagram::Snapshot(s) => {
                if s.players.len() > MAX_PLAYERS_PER_LOBBY {
                    return Err("snapshot player count");
                }
                if !increasing_ids(s.players.iter().map(|p| p.id)) {
                    return Err("snapshot player order");
                }
            }
            ServerDatagram::Delta(d) => {
                if d.base_age == 0 || d.base_age as u32 > MAX_BASE_AGE || d.base_age as u32 > d.tick {
                    return Err("delta base age");
                }
                if d.players.len() > MAX_PLAYERS_PER_LOBBY {
                    return Err("snapshot player count");
                }
                if !increasing_ids(d.players.iter().map(|p| p.id)) {
                    return Err("snapshot player order");
                }
            }
        }
        Ok(())
    }
}

/// Player ids strictly increasing and below the lobby maximum: what the
/// client's merge of a delta with its base relies on.
fn increasing_ids(ids: impl Iterator<Item = PlayerId>) -> bool {
    let mut last: Option<PlayerId> = None;
    for id in ids {
        if id as usize >= MAX_PLAYERS_PER_LOBBY || last.is_some_and(|l| id <= l) {
            return false;
        }
        last = Some(id);
    }
    true
}

/// Quantizes an angle in radians onto the wire's `u16` turn.
pub fn angle_to_wire(radians: f32) -> u16 {
    let turns = radians / std::f32::consts::TAU;
    let frac = turns - turns.floor();
    ((frac * 65536.0) as u32 & 0xffff) as u16
}

/// The angle in radians of a wire `u16` turn.
pub fn wire_to_angle(aim: u16) -> f32 {
    aim as f32 * (std::f32::consts::TAU / 65536.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec;

    /// Four redundant frames 15 minutes into a match, as every client sends
    /// 20 times a second: 24 bytes, where protocol v2 took 36.
    #[test]
    fn a_steady_input_packet_costs_four_bytes_per_frame() {
        let ack_tick = 18_000;
        let frames = (0..4)
            .map(|i| InputFrame {
                buttons: Buttons(Buttons::FIRE),
                aim: 40_000 + i,
                view_tick: ack_tick - 3 + i as u32,
            })
            .collect();
        let packet = ClientDatagram::Input(InputPacket { ack_tick, first_seq: 17_990, frames });
        let bytes = codec::encode(&packet, MAX_INPUT_BYTES).unwrap();
        assert_eq!(bytes.len(), 1 + 3 + 3 + 1 + 4 * 4);
        assert_eq!(codec::decode::<ClientDatagram>(&bytes, MAX_INPUT_BYTES).unwrap(), packet);
    }

    /// A view tick ahead of the acknowledged tick, or from before a wrap,
    /// still comes back exactly (the age wraps in `u32`).
    #[test]
    fn view_ticks_round_trip_whatever_their_distance_from_the_ack() {
        for (ack_tick, view_tick) in [(0, u32::MAX), (5, 9), (u32::MAX, 0), (1000, 0)] {
            let frames = vec![InputFrame { buttons: Buttons(0), aim: 0, view_tick }];
            let packet = ClientDatagram::Input(InputPacket { ack_tick, first_seq: 1, frames: frames.into() });
            let bytes = codec::encode(&packet, MAX_INPUT_BYTES).unwrap();
            assert_eq!(codec::decode::<ClientDatagram>(&bytes, MAX_INPUT_BYTES).unwrap(), packet);
        }
    }
}
