//! Arena definitions: size, walls and spawn points, in map units.
//!
//! Maps are TOML files (see `maps/README.md` for the format). [`Map::parse`]
//! validates everything the simulation relies on, so a loaded map can never
//! make the movement step tunnel through a wall or spawn a player inside one.

use serde::{Deserialize, Serialize};

use crate::movement::{PLAYER_HALF_SIZE, SUBUNITS};

/// Smallest and largest side of an arena. The upper bound keeps positions in
/// subunits inside the snapshot's `u16`.
pub const MIN_SIDE: i32 = 256;
pub const MAX_SIDE: i32 = 4000;
/// Walls at least this thick: more than a player moves in one tick at the
/// lowest tick rate, so movement cannot pass through a wall.
pub const MIN_WALL_THICKNESS: i32 = 16;
pub const MAX_WALLS: usize = 256;
pub const MIN_SPAWNS: usize = 2;
pub const MAX_SPAWNS: usize = 64;

/// An axis-aligned rectangle in map units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

impl Rect {
    /// The rectangle in subunits as (min_x, min_y, max_x, max_y).
    pub fn sub_bounds(&self) -> (i32, i32, i32, i32) {
        (self.x * SUBUNITS, self.y * SUBUNITS, (self.x + self.w) * SUBUNITS, (self.y + self.h) * SUBUNITS)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Point {
    pub x: i32,
    pub y: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Map {
    pub name: String,
    pub width: i32,
    pub height: i32,
    #[serde(default)]
    pub walls: Vec<Rect>,
    pub spawns: Vec<Point>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MapError {
    #[error("map is not valid TOML: {0}")]
    Syntax(String),
    #[error("map name {0:?} must be 1-32 characters of a-z, 0-9, '-' or '_'")]
    Name(String),
    #[error("map size {width}x{height} is outside {MIN_SIDE}..={MAX_SIDE} units per side")]
    Size { width: i32, height: i32 },
    #[error("map has {0} walls; at most {MAX_WALLS} are allowed")]
    TooManyWalls(usize),
    #[error("wall #{index} {rect:?} is thinner than {MIN_WALL_THICKNESS} units or outside the map")]
    Wall { index: usize, rect: Rect },
    #[error("map has {0} spawn points; it needs {MIN_SPAWNS}..={MAX_SPAWNS}")]
    SpawnCount(usize),
    #[error("spawn point #{index} ({x}, {y}) is too close to the edge or inside a wall")]
    Spawn { index: usize, x: i32, y: i32 },
}

impl Map {
    /// Parses and validates a TOML map.
    pub fn parse(text: &str) -> Result<Map, MapError> {
        let map: Map = toml::from_str(text).map_err(|e| MapError::Syntax(e.to_string()))?;
        map.validate()?;
        Ok(map)
    }

    pub fn validate(&self) -> Result<(), MapError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 32
            && self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !name_ok {
            return Err(MapError::Name(self.name.clone()));
        }
        let side_ok = |s: i32| (MIN_SIDE..=MAX_SIDE).contains(&s);
        if !side_ok(self.width) || !side_ok(self.height) {
            return Err(MapError::Size { width: self.width, height: self.height });
        }
        if self.walls.len() > MAX_WALLS {
            return Err(MapError::TooManyWalls(self.walls.len()));
        }
        for (index, w) in self.walls.iter().enumerate() {
            // Subtracting from the (small) map size cannot overflow where
            // `x + w` could, for hostile coordinates near `i32::MAX`.
            let inside = w.x >= 0 && w.y >= 0 && w.w <= self.width - w.x && w.h <= self.height - w.y;
            if w.w < MIN_WALL_THICKNESS || w.h < MIN_WALL_THICKNESS || !inside {
                return Err(MapError::Wall { index, rect: *w });
            }
        }
        if !(MIN_SPAWNS..=MAX_SPAWNS).contains(&self.spawns.len()) {
            return Err(MapError::SpawnCount(self.spawns.len()));
        }
        for (index, s) in self.spawns.iter().enumerate() {
            // Checked in map units first so the conversion to subunits cannot overflow.
            if !(0..=self.width).contains(&s.x) || !(0..=self.height).contains(&s.y) {
                return Err(MapError::Spawn { index, x: s.x, y: s.y });
            }
            let pos = crate::movement::Pos::from_units(s.x, s.y);
            let h = PLAYER_HALF_SIZE;
            let in_bounds = pos.x - h >= 0
                && pos.y - h >= 0
                && pos.x + h <= self.width * SUBUNITS
                && pos.y + h <= self.height * SUBUNITS;
            if !in_bounds || self.blocked(pos) {
                return Err(MapError::Spawn { index, x: s.x, y: s.y });
            }
        }
        Ok(())
    }

    /// Whether a player box centred on `pos` overlaps any wall.
    pub fn blocked(&self, pos: crate::movement::Pos) -> bool {
        let h = PLAYER_HALF_SIZE;
        self.walls.iter().any(|w| {
            let (x0, y0, x1, y1) = w.sub_bounds();
            pos.x + h > x0 && pos.x - h < x1 && pos.y + h > y0 && pos.y - h < y1
        })
    }

    /// The built-in default arena, also shipped as `maps/arena.toml`.
    pub fn builtin_arena() -> Map {
        Map::parse(include_str!("../../maps/arena.toml")).expect("built-in arena is valid")
    }
}
