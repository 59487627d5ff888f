//! The lobby's per-tick work, as the lobby task does it: queue one input
//! packet per player, step the lobby, drain its outbox, encode every
//! player's snapshot.
//!
//! `cargo bench -p trespasser-server --bench lobby`
//!
//! Players are bots on the default arena: each walks in a direction that
//! changes every 16 ticks, turns its aim and holds fire (the cooldown
//! decides when a shot leaves), sending its last four frames per packet
//! and acknowledging the newest snapshot, so snapshots go out as deltas.
//! The kill target is out of reach, so the match never ends.
//!
//! Before measuring, each scenario's heap allocations per tick are counted
//! (by a counting global allocator) and printed.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use protocol::control::{Cosmetics, LobbyState};
use protocol::datagram::{Buttons, InputFrame, InputPacket};
use protocol::map::Map;
use server::lobby::core::{ChatConfig, Joiner, LobbyConfig, LobbyCore};
use server::sim::SimConfig;

#[path = "../../protocol/benches/support/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

const TICK_RATE: u16 = 20;
const TICK_MS: u64 = 1_000 / TICK_RATE as u64;
/// Ticks run before measuring: everyone spawned, moving and acknowledged.
const WARM_TICKS: u32 = 60;

/// The node's defaults (`trespasser game` without flags) except the kill
/// target, which is out of reach so the match never ends mid-benchmark.
fn config(max_players: u8) -> LobbyConfig {
    LobbyConfig {
        node_id: "bench".into(),
        mode: "deathmatch".into(),
        map_name: "arena".into(),
        max_players,
        tick_rate: TICK_RATE,
        vote_ticks: 15 * TICK_RATE as u32,
        grace_ticks: 15 * TICK_RATE as u32,
        chat: ChatConfig { enabled: true, max_chars: 200, burst: 5, refill_ticks: 2 * TICK_RATE as u32 },
        sim: SimConfig::for_tick_rate(TICK_RATE, u16::MAX, 200),
    }
}

#[derive(Clone, Copy)]
struct Bots {
    players: u8,
    /// Whether clients acknowledge snapshots (deltas) or never do (full snapshots).
    ack: bool,
}

/// A lobby full of bots and the input packets they send, rewritten in
/// place every tick.
struct Bench {
    bots: Bots,
    core: LobbyCore<u32>,
    packets: Vec<InputPacket>,
    seq: u32,
    now_ms: u64,
}

impl Bench {
    fn new(bots: Bots) -> Bench {
        let map = Arc::new(Map::builtin_arena());
        let mut core = LobbyCore::new(7, config(bots.players), map, 42, 1_000);
        for n in 0..bots.players {
            let joiner = Joiner {
                account: uuid::Uuid::from_u128(n as u128 + 1),
                name: format!("bot{n}"),
                cosmetics: Cosmetics::default(),
            };
            let joined = core.join(joiner, n as u64, n as u32).expect("a slot is free");
            assert_eq!(joined.player, n);
        }
        core.outbox().for_each(drop);
        let packets =
            (0..bots.players).map(|_| InputPacket { ack_tick: 0, first_seq: 1, frames: Default::default() }).collect();
        let mut bench = Bench { bots, core, packets, seq: 0, now_ms: 1_000 };
        for _ in 0..WARM_TICKS {
            bench.tick();
        }
        bench
    }

    fn frame(&self, player: u8, seq: u32) -> InputFrame {
        // Walk the way loadgen's bots do.
        const DIRS: [u8; 8] = loadgen::bot::HEADINGS;
        let dir = DIRS[(player as usize * 3 + seq as usize / 16) % DIRS.len()];
        InputFrame {
            buttons: Buttons(dir | Buttons::FIRE),
            aim: (player as u16).wrapping_mul(8_191).wrapping_add((seq as u16).wrapping_mul(700)),
            view_tick: self.core.tick_count().saturating_sub(2),
        }
    }

    /// Each bot sends its newest frame and up to three repeats.
    fn send_inputs(&mut self) {
        self.seq += 1;
        let first = self.seq.saturating_sub(3).max(1);
        let ack_tick = if self.bots.ack { self.core.tick_count() } else { 0 };
        for player in 0..self.bots.players {
            let frames: [InputFrame; 4] = std::array::from_fn(|i| self.frame(player, first + i as u32));
            let p = &mut self.packets[player as usize];
            p.ack_tick = ack_tick;
            p.first_seq = first;
            p.frames.clear();
            p.frames.extend_from_slice(&frames[..(self.seq - first + 1) as usize]);
            let pushed = self.core.input(player, player as u64, p);
            debug_assert!(pushed.is_some());
        }
    }

    /// One whole tick as the lobby task runs it.
    fn tick(&mut self) {
        self.send_inputs();
        self.now_ms += TICK_MS;
        self.core.tick(self.now_ms);
        self.core.outbox().for_each(drop);
        self.core.snapshots(|link, bytes| {
            black_box((link, bytes));
        });
    }

    fn snapshots_only(&mut self) {
        self.core.snapshots(|link, bytes| {
            black_box((link, bytes));
        });
    }
}

/// Runs `iters` ticks, replacing the lobby (untimed) should its match ever end.
fn timed_ticks(bench: &mut Bench, iters: u64) -> Duration {
    let mut total = Duration::ZERO;
    let mut start = Instant::now();
    for _ in 0..iters {
        if bench.core.state() != LobbyState::Playing {
            total += start.elapsed();
            *bench = Bench::new(bench.bots);
            start = Instant::now();
        }
        bench.tick();
    }
    total + start.elapsed()
}

fn report_allocs(name: &str, bench: &mut Bench, mut f: impl FnMut(&mut Bench)) {
    const RUNS: u64 = 1_000;
    let kills = |b: &Bench| (0..b.bots.players).filter_map(|id| b.core.world().score(id)).map(|s| s.kills).sum::<u16>();
    let kills_before = kills(bench);
    let before = counting_alloc::allocations();
    for _ in 0..RUNS {
        f(bench);
    }
    let per_run = (counting_alloc::allocations() - before) as f64 / RUNS as f64;
    let c = bench.core.take_counters();
    eprintln!(
        "allocations per call: {name}: {per_run:.2} (over {RUNS} calls: {} delta / {} full snapshots, {} inputs applied, {} repeated, {} late, {} kills)",
        c.snapshots_delta,
        c.snapshots_full,
        c.inputs_applied,
        c.inputs_repeated,
        c.inputs_late,
        kills(bench) - kills_before
    );
}

fn lobby_tick(c: &mut Criterion) {
    let mut g = c.benchmark_group("lobby_tick");
    for bots in [Bots { players: 8, ack: true }, Bots { players: 8, ack: false }, Bots { players: 32, ack: true }] {
        let name = format!("{}_players{}", bots.players, if bots.ack { "" } else { "_no_acks" });
        let mut bench = Bench::new(bots);
        report_allocs(&format!("lobby_tick/{name}"), &mut bench, Bench::tick);
        g.throughput(Throughput::Elements(bots.players as u64));
        g.bench_function(name, |b| b.iter_custom(|iters| timed_ticks(&mut bench, iters)));
    }
    g.finish();
}

/// Encoding alone: the world stands still between calls, every player
/// acknowledged the previous tick, so each gets a delta of one tick's change.
fn snapshots(c: &mut Criterion) {
    let mut g = c.benchmark_group("lobby_snapshots");
    for bots in [Bots { players: 8, ack: true }, Bots { players: 8, ack: false }, Bots { players: 32, ack: true }] {
        let name = format!("{}_players_{}", bots.players, if bots.ack { "deltas" } else { "full" });
        let mut bench = Bench::new(bots);
        bench.core.take_counters();
        report_allocs(&format!("lobby_snapshots/{name}"), &mut bench, Bench::snapshots_only);
        g.throughput(Throughput::Elements(bots.players as u64));
        g.bench_function(name, |b| b.iter(|| bench.snapshots_only()));
    }
    g.finish();
}

criterion_group!(benches, lobby_tick, snapshots);
criterion_main!(benches);
