//! How busy each QUIC shard is: the share of wall time its thread spends on
//! a CPU (its loop, sessions and lobbies all run there), smoothed over about
//! a second. Past `--max-shard-load` a shard refuses new connections, so the
//! players it already has keep their 20 snapshots a second and their round
//! trip instead of every player degrading together; past it on average the
//! node tells the directory it is overloaded, and matchmaking sends new
//! players elsewhere.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// How often each shard samples its thread's CPU time.
pub const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// Weight of the newest sample: about a second of memory at 4 samples a
/// second, so one long tick does not refuse players and a real overload is
/// seen within a second or two.
const SMOOTHING: f64 = 0.3;

/// Smooths CPU-time samples into a load between 0 and 1. Pure: the caller
/// reads the clock.
#[derive(Debug, Default)]
pub struct LoadMeter {
    last: Option<(Duration, Instant)>,
    load: Option<f64>,
}

impl LoadMeter {
    /// Takes the thread's total CPU time at `now`; returns the smoothed load.
    pub fn sample(&mut self, cpu: Duration, now: Instant) -> f64 {
        if let Some((cpu0, t0)) = self.last {
            let wall = now.saturating_duration_since(t0).as_secs_f64();
            if wall > 0.0 {
                let busy = (cpu.saturating_sub(cpu0).as_secs_f64() / wall).clamp(0.0, 1.0);
                self.load = Some(match self.load {
                    Some(l) => l + SMOOTHING * (busy - l),
                    None => busy,
                });
            }
        }
        self.last = Some((cpu, now));
        self.load.unwrap_or(0.0)
    }
}

/// Every shard's load (shared between the shards' admission and the
/// directory link) and the threshold.
#[derive(Debug)]
pub struct NodeLoad {
    /// Per shard, in millionths.
    shards: Box<[AtomicU32]>,
    max: f64,
}

impl NodeLoad {
    /// `max` at 1 or above never refuses (a thread cannot be busier than 1).
    pub fn new(shards: usize, max: f64) -> NodeLoad {
        NodeLoad { shards: (0..shards.max(1)).map(|_| AtomicU32::new(0)).collect(), max }
    }

    pub fn set(&self, shard: usize, load: f64) {
        if let Some(s) = self.shards.get(shard) {
            s.store((load.clamp(0.0, 1.0) * 1e6) as u32, Ordering::Relaxed);
        }
    }

    pub fn get(&self, shard: usize) -> f64 {
        self.shards.get(shard).map_or(0.0, |s| s.load(Ordering::Relaxed) as f64 / 1e6)
    }

    /// Whether shard `shard` should refuse new connections.
    pub fn shard_overloaded(&self, shard: usize) -> bool {
        self.max < 1.0 && self.get(shard) >= self.max
    }

    /// Whether the node as a whole is past the threshold (the mean of its
    /// shards: a connection lands on a random one).
    pub fn overloaded(&self) -> bool {
        let mean = (0..self.shards.len()).map(|i| self.get(i)).sum::<f64>() / self.shards.len() as f64;
        self.max < 1.0 && mean >= self.max
    }
}

/// CPU time the calling thread has used.
pub fn thread_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_meter_follows_the_busy_share_smoothly() {
        let t0 = Instant::now();
        let mut m = LoadMeter::default();
        assert_eq!(m.sample(Duration::ZERO, t0), 0.0);
        // 125 ms of CPU in 250 ms: half busy.
        assert!((m.sample(125 * MS, t0 + 250 * MS) - 0.5).abs() < 1e-9);
        // Then fully busy: the load climbs towards 1 without jumping there.
        let mut cpu = 125 * MS;
        let mut last = 0.5;
        for i in 2..=12u32 {
            cpu += 250 * MS;
            let l = m.sample(cpu, t0 + 250 * MS * i);
            assert!(l > last && l <= 1.0, "{l} after {last}");
            last = l;
        }
        assert!(last > 0.98, "{last}");
        // Idle again: back down.
        for i in 13..=30u32 {
            last = m.sample(cpu, t0 + 250 * MS * i);
        }
        assert!(last < 0.01, "{last}");
        // A clock that did not move changes nothing.
        assert_eq!(m.sample(cpu, t0 + 250 * MS * 30), last);
    }

    #[test]
    fn shards_refuse_past_the_threshold_and_the_node_by_the_mean() {
        let load = NodeLoad::new(2, 0.9);
        load.set(0, 0.95);
        load.set(1, 0.5);
        assert!(load.shard_overloaded(0));
        assert!(!load.shard_overloaded(1));
        assert!(!load.overloaded());
        load.set(1, 0.9);
        assert!(load.overloaded());
        // At 1 the limit is off.
        let off = NodeLoad::new(1, 1.0);
        off.set(0, 1.0);
        assert!(!off.shard_overloaded(0) && !off.overloaded());
        assert!(thread_cpu_time().is_some());
    }
}
