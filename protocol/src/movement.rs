//! The deterministic movement step shared by node and clients.
//!
//! Integer arithmetic only (positions in subunits of 1/16 map unit), so a
//! client predicting with this code reaches bit-for-bit the position the node
//! computes from the same inputs, on any platform.

use serde::{Deserialize, Serialize};

use crate::datagram::Buttons;
use crate::map::Map;

/// Subunits per map unit.
pub const SUBUNITS: i32 = 16;
/// Half the side of a player's square hit box, in subunits (14 units).
pub const PLAYER_HALF_SIZE: i32 = 14 * SUBUNITS;
/// Movement speed in subunits per second (256 units per second).
pub const SPEED: i32 = 256 * SUBUNITS;
/// Lowest and highest supported tick rates.
pub const MIN_TICK_RATE: u16 = 20;
pub const MAX_TICK_RATE: u16 = 60;

/// A position in subunits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pos {
    pub x: i32,
    pub y: i32,
}

impl Pos {
    pub fn from_units(x: i32, y: i32) -> Pos {
        Pos { x: x * SUBUNITS, y: y * SUBUNITS }
    }
    /// The position as sent in snapshots (clamped into `u16`).
    pub fn to_wire(self) -> (u16, u16) {
        (self.x.clamp(0, u16::MAX as i32) as u16, self.y.clamp(0, u16::MAX as i32) as u16)
    }
    pub fn from_wire(x: u16, y: u16) -> Pos {
        Pos { x: x as i32, y: y as i32 }
    }
    /// Centre in map units as floats (for rendering and hit tests).
    pub fn to_f32(self) -> (f32, f32) {
        (self.x as f32 / SUBUNITS as f32, self.y as f32 / SUBUNITS as f32)
    }
}

/// Distance moved along one axis per tick at `tick_rate`.
pub fn step_len(tick_rate: u16) -> i32 {
    SPEED / tick_rate.clamp(MIN_TICK_RATE, MAX_TICK_RATE) as i32
}

/// Advances `pos` by one tick of `buttons` inside `map`.
///
/// Each axis moves separately and stops flush against the first wall in the
/// way (walls are thicker than one step, see [`crate::map::MIN_WALL_THICKNESS`]),
/// so players slide along walls. Diagonal movement is scaled by 181/256
/// (about 1/sqrt 2) so it is not faster.
pub fn step(pos: Pos, buttons: Buttons, map: &Map, tick_rate: u16) -> Pos {
    let mut dx = (buttons.has(Buttons::RIGHT) as i32) - (buttons.has(Buttons::LEFT) as i32);
    let mut dy = (buttons.has(Buttons::DOWN) as i32) - (buttons.has(Buttons::UP) as i32);
    let len = step_len(tick_rate);
    if dx != 0 && dy != 0 {
        let diag = len * 181 / 256;
        dx *= diag;
        dy *= diag;
    } else {
        dx *= len;
        dy *= len;
    }
    let h = PLAYER_HALF_SIZE;
    let max_x = map.width * SUBUNITS - h;
    let max_y = map.height * SUBUNITS - h;

    let mut next = pos;
    if dx != 0 {
        next.x = (pos.x + dx).clamp(h, max_x);
        for w in &map.walls {
            let (x0, y0, x1, y1) = w.sub_bounds();
            let overlaps_y = next.y + h > y0 && next.y - h < y1;
            let overlaps_x = next.x + h > x0 && next.x - h < x1;
            if overlaps_x && overlaps_y {
                next.x = if dx > 0 { x0 - h } else { x1 + h };
            }
        }
    }
    if dy != 0 {
        next.y = (pos.y + dy).clamp(h, max_y);
        for w in &map.walls {
            let (x0, y0, x1, y1) = w.sub_bounds();
            let overlaps_x = next.x + h > x0 && next.x - h < x1;
            let overlaps_y = next.y + h > y0 && next.y - h < y1;
            if overlaps_x && overlaps_y {
                next.y = if dy > 0 { y0 - h } else { y1 + h };
            }
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_map() -> Map {
        Map {
            name: "open".into(),
            width: 1000,
            height: 1000,
            walls: vec![crate::map::Rect { x: 500, y: 0, w: 32, h: 1000 }],
            spawns: vec![crate::map::Point { x: 100, y: 100 }, crate::map::Point { x: 900, y: 900 }],
        }
    }

    #[test]
    fn moves_one_step_per_tick() {
        let m = open_map();
        let p = step(Pos::from_units(100, 100), Buttons(Buttons::RIGHT), &m, 20);
        assert_eq!(p, Pos { x: 1600 + 204, y: 1600 });
    }

    #[test]
    fn diagonal_is_not_faster() {
        let m = open_map();
        let p0 = Pos::from_units(100, 100);
        let p = step(p0, Buttons(Buttons::RIGHT | Buttons::DOWN), &m, 20);
        let d2 = ((p.x - p0.x) as i64).pow(2) + ((p.y - p0.y) as i64).pow(2);
        assert!(d2 <= 204 * 204);
    }

    #[test]
    fn stops_flush_at_wall_and_never_passes() {
        let m = open_map();
        let mut p = Pos::from_units(400, 300);
        for _ in 0..100 {
            p = step(p, Buttons(Buttons::RIGHT), &m, 20);
        }
        assert_eq!(p.x, 500 * SUBUNITS - PLAYER_HALF_SIZE);
        assert!(!m.blocked(p));
    }

    #[test]
    fn clamped_to_map_edges() {
        let m = open_map();
        let mut p = Pos::from_units(100, 100);
        for _ in 0..100 {
            p = step(p, Buttons(Buttons::UP | Buttons::LEFT), &m, 60);
        }
        assert_eq!(p, Pos { x: PLAYER_HALF_SIZE, y: PLAYER_HALF_SIZE });
    }
}
