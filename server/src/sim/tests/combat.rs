//! Firing: damage, the fire-rate limit, walls, protection, winning.

use super::*;

#[test]
fn a_held_trigger_kills_in_health_over_damage_hits_at_the_fire_rate() {
    let (a, b) = (u(100, 700), u(300, 700));
    let mut w = world_with(cfg(), &[a, b]);
    let c = w.config().clone();
    let shots = (c.max_health / c.damage) as u32;
    let mut kill_step = None;
    for i in 1..=40u32 {
        let events = step(&mut w, &[(0, fire(aim_at(a, b), NOW))]);
        let fired = of(&w, 0).flags & flags::FIRED != 0;
        assert_eq!(fired, (i - 1) % c.fire_cooldown_ticks == 0, "step {i}");
        if !events.is_empty() {
            assert_eq!(events, vec![SimEvent::Kill { killer: 0, victim: 1 }]);
            assert!(kill_step.is_none(), "one kill only");
            kill_step = Some(i);
        }
        if kill_step.is_none() {
            let hits_so_far = (i - 1) / c.fire_cooldown_ticks + 1;
            assert_eq!(of(&w, 1).health as u32, c.max_health as u32 - hits_so_far * c.damage as u32);
        }
    }
    assert_eq!(kill_step, Some((shots - 1) * c.fire_cooldown_ticks + 1));
    assert_eq!(w.score(0), Some(PlayerScore { kills: 1, deaths: 0 }));
    assert_eq!(w.score(1), Some(PlayerScore { kills: 0, deaths: 1 }));
}

#[test]
fn cooldown_limits_the_fire_rate() {
    let mut w = world_with(cfg(), &[u(100, 700)]);
    let cooldown = w.config().fire_cooldown_ticks;
    let mut fired = 0;
    for _ in 0..cooldown * 4 {
        step(&mut w, &[(0, fire(0, NOW))]);
        fired += (of(&w, 0).flags & flags::FIRED != 0) as u32;
    }
    assert_eq!(fired, 4);
}

#[test]
fn walls_block_shots() {
    let (a, behind_wall, before_wall) = (u(300, 200), u(700, 200), u(450, 200));
    let mut w = world_with(cfg(), &[a, behind_wall]);
    for _ in 0..20 {
        step(&mut w, &[(0, fire(0, NOW))]);
    }
    assert_eq!(of(&w, 1).health, 100);
    w.place(1, before_wall);
    for _ in 0..5 {
        step(&mut w, &[(0, fire(0, NOW))]);
    }
    assert_eq!(of(&w, 1).health, 75);
}

#[test]
fn spawn_protection_absorbs_hits_until_it_expires_and_firing_ends_it() {
    let c = SimConfig::default();
    let protection = c.protection_ticks;
    let (a, b) = (u(100, 700), u(300, 700));
    let mut w = world_with(c, &[a, b]);
    let until = w.tick() + protection;
    assert!(snap(&w).iter().all(|s| s.flags & flags::PROTECTED != 0));
    step(&mut w, &[(0, fire(aim_at(a, b), NOW))]);
    assert_eq!(of(&w, 0).flags & flags::PROTECTED, 0, "the shooter gave up protection");
    assert_ne!(of(&w, 1).flags & flags::PROTECTED, 0);
    while w.tick() < until {
        assert_eq!(of(&w, 1).health, 100);
        assert_ne!(of(&w, 1).flags & flags::PROTECTED, 0);
        step(&mut w, &[(0, fire(aim_at(a, b), NOW))]);
    }
    assert_eq!(of(&w, 1).flags & flags::PROTECTED, 0);
    // Protection ended on a firing tick (protection is a multiple of the cooldown).
    assert_eq!(protection % w.config().fire_cooldown_ticks, 0);
    step(&mut w, &[(0, fire(aim_at(a, b), NOW))]);
    assert_eq!(of(&w, 1).health, 75);
}

#[test]
fn shots_pass_through_protected_players() {
    let (a, protected, behind) = (u(100, 700), u(300, 700), u(500, 700));
    let mut w = world_with(cfg(), &[a, protected, behind]);
    w.player_mut(1).unwrap().protected_until = 1000;
    step(&mut w, &[(0, fire(0, NOW))]);
    assert_eq!((of(&w, 1).health, of(&w, 2).health), (100, 75));
}

#[test]
fn reaching_the_kill_target_wins_once_and_stops_damage() {
    let c = SimConfig { damage: 100, kill_target: 2, respawn_ticks: 1000, ..cfg() };
    let (a, b, c_pos) = (u(100, 700), u(300, 700), u(300, 800));
    let mut w = world_with(c, &[a, b, c_pos]);
    let mut all = Vec::new();
    all.extend(step(&mut w, &[(0, fire(aim_at(a, b), NOW))]));
    assert_eq!(w.winner(), None);
    for _ in 0..5 {
        all.extend(step(&mut w, &[(0, fire(aim_at(a, c_pos), NOW))]));
    }
    assert_eq!(
        all,
        vec![
            SimEvent::Kill { killer: 0, victim: 1 },
            SimEvent::Kill { killer: 0, victim: 2 },
            SimEvent::MatchWon { winner: 0 }
        ]
    );
    assert_eq!(w.winner(), Some(0));
    // A fresh target in the line of fire takes nothing once the match is won.
    w.add_player(3);
    w.place(3, c_pos);
    w.unprotect(3);
    for _ in 0..20 {
        assert!(step(&mut w, &[(0, fire(aim_at(a, c_pos), NOW))]).is_empty());
    }
    assert_eq!(of(&w, 3).health, 100);
    assert_eq!(w.score(0), Some(PlayerScore { kills: 2, deaths: 0 }));
}

#[test]
fn two_players_can_kill_each_other_in_the_same_tick() {
    let c = SimConfig { damage: 100, ..cfg() };
    let (a, b) = (u(100, 700), u(300, 700));
    let mut w = world_with(c, &[a, b]);
    let events = step(&mut w, &[(0, fire(aim_at(a, b), NOW)), (1, fire(aim_at(b, a), NOW))]);
    assert_eq!(events, vec![SimEvent::Kill { killer: 0, victim: 1 }, SimEvent::Kill { killer: 1, victim: 0 }]);
    assert!(snap(&w).iter().all(|s| s.flags & flags::ALIVE == 0));
}
