//! Gameplay tuning, stated in ticks so the simulation never reads a clock.

use protocol::movement::{MAX_TICK_RATE, MIN_TICK_RATE};

pub const DEFAULT_TICK_RATE: u16 = 20;
pub const DEFAULT_KILL_TARGET: u16 = 50;
pub const DEFAULT_MAX_REWIND_MS: u32 = 200;
pub const DEFAULT_MAX_HEALTH: u8 = 100;
pub const DEFAULT_DAMAGE: u8 = 25;
/// Durations the tick counts are derived from, so that changing the tick
/// rate keeps the game feeling the same.
pub const FIRE_COOLDOWN_MS: u32 = 250;
pub const RESPAWN_MS: u32 = 2000;
pub const PROTECTION_MS: u32 = 1500;
/// Longer than the diagonal of the largest valid map (4000 x 4000 units), so
/// in practice only walls and map edges stop a shot.
pub const DEFAULT_SHOT_RANGE: f32 = 6000.0;

#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Ticks per second, `MIN_TICK_RATE..=MAX_TICK_RATE`.
    pub tick_rate: u16,
    pub max_health: u8,
    /// Health removed per hit.
    pub damage: u8,
    /// Ticks between two shots of one player.
    pub fire_cooldown_ticks: u32,
    /// Ticks a dead player stays dead.
    pub respawn_ticks: u32,
    /// Ticks after a spawn during which the player takes no damage.
    pub protection_ticks: u32,
    /// How far back lag compensation may rewind targets. Capped at
    /// [`super::history::MAX_REWIND_TICKS_CAP`].
    pub max_rewind_ticks: u32,
    /// In map units.
    pub shot_range: f32,
    /// First player to this many kills wins the match.
    pub kill_target: u16,
}

impl SimConfig {
    /// Defaults for `tick_rate` (clamped into the supported range), with the
    /// durations above converted to ticks.
    pub fn for_tick_rate(tick_rate: u16, kill_target: u16, max_rewind_ms: u32) -> SimConfig {
        let rate = tick_rate.clamp(MIN_TICK_RATE, MAX_TICK_RATE);
        SimConfig {
            tick_rate: rate,
            max_health: DEFAULT_MAX_HEALTH,
            damage: DEFAULT_DAMAGE,
            fire_cooldown_ticks: ms_to_ticks_rounded(FIRE_COOLDOWN_MS, rate).max(1),
            respawn_ticks: ms_to_ticks_rounded(RESPAWN_MS, rate),
            protection_ticks: ms_to_ticks_rounded(PROTECTION_MS, rate),
            // Rounded down: the bound is a promise to the victim that they are
            // never hit for being somewhere longer ago than this.
            max_rewind_ticks: ms_to_ticks_floor(max_rewind_ms, rate),
            shot_range: DEFAULT_SHOT_RANGE,
            kill_target,
        }
    }
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig::for_tick_rate(DEFAULT_TICK_RATE, DEFAULT_KILL_TARGET, DEFAULT_MAX_REWIND_MS)
    }
}

fn ms_to_ticks_rounded(ms: u32, rate: u16) -> u32 {
    ((ms as u64 * rate as u64 + 500) / 1000).min(u32::MAX as u64) as u32
}

fn ms_to_ticks_floor(ms: u32, rate: u16) -> u32 {
    (ms as u64 * rate as u64 / 1000).min(u32::MAX as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_at_20_hz() {
        let c = SimConfig::default();
        assert_eq!(c.tick_rate, 20);
        assert_eq!(c.fire_cooldown_ticks, 5);
        assert_eq!(c.respawn_ticks, 40);
        assert_eq!(c.protection_ticks, 30);
        assert_eq!(c.max_rewind_ticks, 4);
        assert_eq!(c.kill_target, 50);
        assert_eq!((c.max_health, c.damage), (100, 25));
    }

    #[test]
    fn scales_with_tick_rate_and_clamps_it() {
        let c = SimConfig::for_tick_rate(60, 10, 200);
        assert_eq!((c.fire_cooldown_ticks, c.respawn_ticks), (15, 120));
        assert_eq!((c.protection_ticks, c.max_rewind_ticks), (90, 12));
        assert_eq!(SimConfig::for_tick_rate(5, 10, 200).tick_rate, 20);
        assert_eq!(SimConfig::for_tick_rate(500, 10, 200).tick_rate, 60);
        // A rewind bound that is not a whole number of ticks rounds down.
        assert_eq!(SimConfig::for_tick_rate(20, 10, 99).max_rewind_ticks, 1);
        assert_eq!(SimConfig::for_tick_rate(20, 10, u32::MAX).max_rewind_ticks, 85_899_345);
    }
}
