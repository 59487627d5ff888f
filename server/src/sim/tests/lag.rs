//! Lag compensation: shots judged where targets were when the shooter saw them.

use super::*;

/// B stands in A's line of fire at tick 1, then walks out of it.
fn walk_out_of_line(cfg: SimConfig, ticks: u32) -> World {
    let mut w = world_with(cfg, &[u(100, 700), u(300, 700)]);
    for _ in 0..ticks {
        step(&mut w, &[(1, press(Buttons::DOWN))]);
    }
    // Out of line now: B's box no longer reaches y = 700.
    assert!(pos_of(&w, 1).y - PLAYER_HALF_SIZE > u(0, 700).y);
    w
}

#[test]
fn lag_compensation_hits_where_the_target_was_when_the_shooter_saw_it() {
    let mut w = walk_out_of_line(cfg(), 3);
    step(&mut w, &[(0, fire(0, 1))]);
    assert_eq!(of(&w, 1).health, 75);

    // Without rewinding the same shot misses.
    let mut w = walk_out_of_line(cfg(), 3);
    step(&mut w, &[(0, fire(0, NOW))]);
    assert_eq!(of(&w, 1).health, 100);
}

#[test]
fn lag_compensation_does_not_rewind_beyond_its_bound() {
    let c = cfg();
    assert_eq!(c.max_rewind_ticks, 4);
    // Out of line for more than the bound: the shot is judged 4 ticks back, a miss.
    let mut w = walk_out_of_line(c.clone(), 6);
    step(&mut w, &[(0, fire(0, 1))]);
    assert_eq!(of(&w, 1).health, 100);
    // A larger bound reaches back far enough.
    let mut w = walk_out_of_line(SimConfig { max_rewind_ticks: 10, ..c }, 6);
    step(&mut w, &[(0, fire(0, 1))]);
    assert_eq!(of(&w, 1).health, 75);
}

#[test]
fn a_view_tick_in_the_future_counts_as_now() {
    let mut w = world_with(cfg(), &[u(100, 700), u(300, 700)]);
    w.step(&[(0, fire(0, 1_000_000))], &mut Vec::new());
    assert_eq!(of(&w, 1).health, 75);
}

#[test]
fn rewinding_never_hits_a_later_life_where_an_earlier_one_stood() {
    let c = SimConfig { damage: 100, fire_cooldown_ticks: 1, respawn_ticks: 1, ..cfg() };
    let mut w = world_with(c, &[u(100, 700), u(300, 700)]);
    assert_eq!(step(&mut w, &[(0, fire(0, 1))]).len(), 1);
    step(&mut w, &[(0, press(0))]);
    assert_ne!(of(&w, 1).flags & flags::ALIVE, 0, "respawned elsewhere");
    w.unprotect(1);
    assert!(step(&mut w, &[(0, fire(0, 1))]).is_empty());
    assert_eq!(of(&w, 1).health, 100);
}
