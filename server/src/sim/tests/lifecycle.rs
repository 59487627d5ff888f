//! Moving, dying, respawning, leaving, coming back and what snapshots show.

use super::*;

#[test]
fn movement_is_applied_and_a_missing_input_repeats_the_last() {
    let mut w = world_with(cfg(), &[u(100, 700)]);
    let len = step_len(20);
    let start = pos_of(&w, 0);
    step(&mut w, &[(0, press(Buttons::RIGHT))]);
    assert_eq!(pos_of(&w, 0), Pos { x: start.x + len, y: start.y });
    step(&mut w, &[]);
    assert_eq!(pos_of(&w, 0), Pos { x: start.x + 2 * len, y: start.y });
    step(&mut w, &[(0, InputFrame { buttons: Buttons(Buttons::DOWN), aim: 1234, view_tick: 0 })]);
    assert_eq!(pos_of(&w, 0), Pos { x: start.x + 2 * len, y: start.y + len });
    assert_eq!(of(&w, 0).aim, 1234);
    assert_eq!(w.tick(), 4);
}

#[test]
fn the_dead_respawn_after_the_delay_with_full_health_and_protection() {
    let c = SimConfig { damage: 100, ..SimConfig::default() };
    let (respawn, protection) = (c.respawn_ticks, c.protection_ticks);
    let (a, b) = (u(100, 700), u(300, 700));
    let mut w = world_with(c, &[a, b]);
    w.unprotect(1);
    // B keeps walking and shooting: the repeated input must do nothing while dead.
    let events = step(&mut w, &[(0, fire(aim_at(a, b), NOW)), (1, press(Buttons::DOWN | Buttons::FIRE))]);
    assert_eq!(events, vec![SimEvent::Kill { killer: 0, victim: 1 }]);
    let (died, fell) = (w.tick(), pos_of(&w, 1));
    for i in 0..respawn {
        let s = of(&w, 1);
        assert_eq!((s.flags & flags::ALIVE, s.health), (0, 0), "dead at tick {}", w.tick());
        if i > 0 {
            assert_eq!(s.flags & flags::FIRED, 0, "the dead do not shoot");
        }
        assert_eq!(pos_of(&w, 1), fell, "the dead do not move");
        step(&mut w, &[(0, fire(aim_at(a, b), NOW))]);
    }
    assert_eq!(w.tick(), died + respawn);
    let s = of(&w, 1);
    assert_eq!(s.health, 100);
    assert_eq!(s.flags & (flags::ALIVE | flags::PROTECTED), flags::ALIVE | flags::PROTECTED);
    let at = pos_of(&w, 1);
    assert!(w.map().spawns.iter().any(|p| Pos::from_units(p.x, p.y) == at));
    for _ in 0..protection {
        step(&mut w, &[(1, press(0))]);
    }
    assert_eq!(of(&w, 1).flags & flags::PROTECTED, 0);
}

#[test]
fn away_players_are_frozen_unhittable_and_keep_their_score() {
    let (a, b) = (u(100, 700), u(300, 700));
    let mut w = world_with(SimConfig::default(), &[a, b]);
    w.unprotect(0);
    w.unprotect(1);
    w.player_mut(1).unwrap().score = PlayerScore { kills: 3, deaths: 2 };
    step(&mut w, &[(1, press(Buttons::RIGHT))]);
    let moved = pos_of(&w, 1);
    w.set_away(1, true);
    for _ in 0..20 {
        step(&mut w, &[(0, fire(aim_at(a, moved), NOW)), (1, press(Buttons::DOWN | Buttons::FIRE))]);
    }
    let s = of(&w, 1);
    assert_eq!((s.health, pos_of(&w, 1)), (100, moved));
    assert_eq!(s.flags, flags::ALIVE | flags::AWAY);
    assert_eq!(w.score(1), Some(PlayerScore { kills: 3, deaths: 2 }));
    assert_eq!(w.player_count(), 2);

    // Back: protected for a while, and standing still until new input arrives.
    w.set_away(1, false);
    assert_eq!(of(&w, 1).flags, flags::ALIVE | flags::PROTECTED);
    step(&mut w, &[]);
    assert_eq!(pos_of(&w, 1), moved);
}

#[test]
fn reset_match_zeroes_scores_respawns_everyone_and_clears_the_winner() {
    let c = SimConfig { damage: 100, kill_target: 1, respawn_ticks: 1000, ..SimConfig::default() };
    let (a, b) = (u(100, 700), u(300, 700));
    let mut w = world_with(c, &[a, b]);
    w.unprotect(1);
    step(&mut w, &[(0, fire(aim_at(a, b), NOW))]);
    assert_eq!(w.winner(), Some(0));
    w.reset_match();
    assert_eq!(w.winner(), None);
    for id in 0..2 {
        assert_eq!(w.score(id), Some(PlayerScore::default()));
        let s = of(&w, id);
        assert_eq!((s.health, s.flags), (100, flags::ALIVE | flags::PROTECTED));
    }
    assert_ne!(pos_of(&w, 0), pos_of(&w, 1), "spread over the spawn points");
    // Kills count again in the new match.
    w.place(0, a);
    w.place(1, b);
    w.unprotect(1);
    let events = step(&mut w, &[(0, fire(aim_at(a, b), NOW))]);
    assert_eq!(events, vec![SimEvent::Kill { killer: 0, victim: 1 }, SimEvent::MatchWon { winner: 0 }]);
}

#[test]
fn remove_player_frees_the_slot_and_its_history() {
    let mut w = world_with(cfg(), &[u(100, 700), u(300, 700)]);
    step(&mut w, &[]);
    step(&mut w, &[]);
    w.add_player(1);
    w.add_player(200);
    assert_eq!(w.player_count(), 2, "re-adding and out-of-range ids are ignored");
    w.player_mut(1).unwrap().score.kills = 7;
    w.remove_player(1);
    w.remove_player(1);
    w.remove_player(31);
    assert_eq!(w.player_count(), 1);
    assert!(!w.contains(1));
    assert_eq!(w.score(1), None);
    assert!(snap(&w).iter().all(|s| s.id != 1));
    assert!((1..=w.tick()).all(|t| w.history.get(t, 1).is_none()));

    // The slot comes back fresh, and a rewound shot at where its previous
    // owner stood hits nothing.
    w.add_player(1);
    assert_eq!(w.score(1), Some(PlayerScore::default()));
    w.place(1, u(300, 900));
    step(&mut w, &[(0, fire(0, 1))]);
    assert_eq!(of(&w, 1).health, 100);
    assert_eq!(w.player_count(), 2);
}

#[test]
fn snapshot_is_sorted_flagged_and_reuses_the_buffer() {
    let mut w = World::new(test_map(), SimConfig { damage: 100, ..cfg() }, 3);
    for id in [9, 2, 5] {
        w.add_player(id);
    }
    w.place(2, u(100, 700));
    w.place(5, u(300, 700));
    w.set_away(9, true);
    step(&mut w, &[(2, fire(0, NOW))]);
    let mut out = Vec::with_capacity(protocol::MAX_PLAYERS_PER_LOBBY);
    let buf = out.as_ptr();
    w.snapshot(&mut out);
    w.snapshot(&mut out);
    assert_eq!(out.as_ptr(), buf, "no reallocation");
    assert_eq!(out.iter().map(|s| s.id).collect::<Vec<_>>(), vec![2, 5, 9]);
    assert_eq!(out[0].flags, flags::ALIVE | flags::FIRED);
    assert_eq!((out[1].flags, out[1].health), (0, 0));
    assert_eq!(out[2].flags, flags::ALIVE | flags::AWAY);
    assert_eq!(out[0].aim, 0);
    assert_eq!(Pos::from_wire(out[1].x, out[1].y), u(300, 700), "the dead show where they fell");
}

#[test]
fn spawns_prefer_the_point_farthest_from_living_players() {
    let mut w = World::new(test_map(), cfg(), 5);
    w.add_player(0);
    w.place(0, u(100, 100));
    w.add_player(1);
    assert_eq!(pos_of(&w, 1), u(900, 900));
}
