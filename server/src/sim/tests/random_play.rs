//! Random play on the built-in arena: nothing panics, nobody ends up inside a
//! wall or outside the map, and the world's buffers stay bounded.

use std::sync::Arc;

use proptest::prelude::*;
use protocol::PlayerId;
use protocol::datagram::{Buttons, InputFrame, PlayerSnap};
use protocol::map::Map;
use protocol::movement::{PLAYER_HALF_SIZE, Pos, SUBUNITS};

use super::{SimConfig, SimEvent, World};

const PLAYERS: usize = 8;
const TICKS: usize = 300;

/// Per tick and player: buttons, aim, how many ticks old the view is, and
/// whether the input arrives at all.
type Frame = (u8, u16, u32, bool);

/// Lobby-side disturbances between ticks.
#[derive(Debug, Clone, Copy)]
enum Op {
    Nothing,
    ToggleAway(PlayerId),
    Rejoin(PlayerId),
    ResetMatch,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        20 => Just(Op::Nothing),
        1 => (0..PLAYERS as u8).prop_map(Op::ToggleAway),
        1 => (0..PLAYERS as u8).prop_map(Op::Rejoin),
        1 => Just(Op::ResetMatch),
    ]
}

fn tick_frames() -> impl Strategy<Value = [Frame; PLAYERS]> {
    prop::array::uniform8((0u8..32, any::<u16>(), 0u32..12, prop::bool::weighted(0.8)))
}

fn check(map: &Map, cfg: &SimConfig, snaps: &[PlayerSnap]) {
    let h = PLAYER_HALF_SIZE;
    for s in snaps {
        let p = Pos::from_wire(s.x, s.y);
        assert!(p.x >= h && p.y >= h, "{s:?} outside the map");
        assert!(p.x <= map.width * SUBUNITS - h && p.y <= map.height * SUBUNITS - h, "{s:?} outside the map");
        assert!(!map.blocked(p), "{s:?} inside a wall");
        assert!(s.health <= cfg.max_health);
    }
    assert!(snaps.windows(2).all(|w| w[0].id < w[1].id), "sorted by id");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_play_keeps_every_invariant(
        seed in any::<u64>(),
        rate in 20u16..=60,
        kill_target in 1u16..6,
        ticks in prop::collection::vec((tick_frames(), op()), TICKS),
    ) {
        let map = Arc::new(Map::builtin_arena());
        let cfg = SimConfig::for_tick_rate(rate, kill_target, 200);
        let mut w = World::new(map.clone(), cfg.clone(), seed);
        for id in 0..PLAYERS as u8 {
            w.add_player(id);
        }
        let (mut inputs, mut events, mut snaps) = (Vec::new(), Vec::new(), Vec::with_capacity(PLAYERS));
        let mut match_won = 0;
        for (frames, op) in ticks {
            match op {
                Op::Nothing => {}
                Op::ToggleAway(id) => {
                    let away = snaps.iter().any(|s: &PlayerSnap| s.id == id && s.flags & protocol::datagram::flags::AWAY != 0);
                    w.set_away(id, !away);
                }
                Op::Rejoin(id) => {
                    w.remove_player(id);
                    w.add_player(id);
                }
                Op::ResetMatch => {
                    w.reset_match();
                    match_won = 0;
                }
            }
            inputs.clear();
            for (id, &(buttons, aim, age, arrives)) in frames.iter().enumerate() {
                if arrives {
                    let view_tick = w.tick().saturating_sub(age);
                    inputs.push((id as PlayerId, InputFrame { buttons: Buttons(buttons), aim, view_tick }));
                }
            }
            events.clear();
            w.step(&inputs, &mut events);
            match_won += events.iter().filter(|e| matches!(e, SimEvent::MatchWon { .. })).count();
            prop_assert!(match_won <= 1, "one winner per match");
            w.snapshot(&mut snaps);
            prop_assert_eq!(snaps.len(), PLAYERS);
            check(&map, &cfg, &snaps);
        }
        prop_assert_eq!(w.history.capacity(), cfg.max_rewind_ticks as usize + 1);
        prop_assert_eq!(w.player_count(), PLAYERS);
    }
}
