//! Behaviour of the whole simulation, driven tick by tick, with the helpers
//! the test files share.

mod combat;
mod determinism;
mod lag;
mod lifecycle;
mod random_play;

use std::sync::Arc;

use protocol::PlayerId;
use protocol::datagram::{Buttons, InputFrame, PlayerSnap, angle_to_wire, flags};
use protocol::map::{Map, Point, Rect};
use protocol::movement::{PLAYER_HALF_SIZE, Pos, step_len};

use super::rng::Rng;
use super::{PlayerScore, SimConfig, SimEvent, World};

/// 1000 x 1000 units with one wall, x 500..532 and y 0..400; the lower half is
/// open. No spawn lies on the y = 700 line most tests shoot along.
fn test_map() -> Arc<Map> {
    let map = Map {
        name: "test".into(),
        width: 1000,
        height: 1000,
        walls: vec![Rect { x: 500, y: 0, w: 32, h: 400 }],
        spawns: vec![
            Point { x: 100, y: 100 },
            Point { x: 900, y: 900 },
            Point { x: 100, y: 900 },
            Point { x: 900, y: 600 },
        ],
    };
    map.validate().expect("test map is valid");
    Arc::new(map)
}

/// Defaults at 20 Hz without spawn protection, so placed players are targets.
fn cfg() -> SimConfig {
    SimConfig { protection_ticks: 0, ..SimConfig::default() }
}

fn u(x: i32, y: i32) -> Pos {
    Pos::from_units(x, y)
}

/// A world with players `0..n`, placed at `spots`.
fn world_with(cfg: SimConfig, spots: &[Pos]) -> World {
    let mut w = World::new(test_map(), cfg, 1);
    for (id, &p) in spots.iter().enumerate() {
        w.add_player(id as PlayerId);
        w.place(id as PlayerId, p);
    }
    w
}

fn aim_at(from: Pos, to: Pos) -> u16 {
    angle_to_wire(((to.y - from.y) as f32).atan2((to.x - from.x) as f32))
}

fn fire(aim: u16, view_tick: u32) -> InputFrame {
    InputFrame { buttons: Buttons(Buttons::FIRE), aim, view_tick }
}

fn press(bits: u8) -> InputFrame {
    InputFrame { buttons: Buttons(bits), ..InputFrame::default() }
}

/// A `view_tick` that [`step`] replaces with the current tick: the shooter saw
/// the newest state.
const NOW: u32 = u32::MAX;

fn step(w: &mut World, inputs: &[(PlayerId, InputFrame)]) -> Vec<SimEvent> {
    let now = w.tick();
    let stamped: Vec<_> = inputs
        .iter()
        .map(|&(id, f)| (id, InputFrame { view_tick: if f.view_tick == NOW { now } else { f.view_tick }, ..f }))
        .collect();
    let mut events = Vec::new();
    w.step(&stamped, &mut events);
    events
}

fn snap(w: &World) -> Vec<PlayerSnap> {
    let mut out = Vec::new();
    w.snapshot(&mut out);
    out
}

fn of(w: &World, id: PlayerId) -> PlayerSnap {
    snap(w).into_iter().find(|s| s.id == id).expect("player in snapshot")
}

fn pos_of(w: &World, id: PlayerId) -> Pos {
    let s = of(w, id);
    Pos::from_wire(s.x, s.y)
}
