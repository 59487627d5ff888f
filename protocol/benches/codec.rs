//! Datagram hot paths: input decode (node), snapshot encode, full and delta
//! (node, once per player per tick), and the client's rebuild of a delta.
//!
//! `cargo bench -p trespasser-protocol --bench codec`
//!
//! Before measuring, each path's heap allocations per call are counted (by a
//! counting global allocator) and printed, since these paths are meant not to
//! allocate in steady state.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use protocol::codec;
use protocol::datagram::{
    Buttons, ClientDatagram, DeltaSnapshot, InputFrame, InputPacket, MAX_INPUT_BYTES, MAX_SNAPSHOT_BYTES, PlayerSnap,
    ServerDatagram, Snapshot, flags,
};
use protocol::delta::{self, Rebuilder};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

#[global_allocator]
static GLOBAL: counting_alloc::Counting = counting_alloc::Counting;

/// Prints the allocation calls per run of `f` (averaged over 1,000 runs
/// after one warm-up run).
fn report_allocs(name: &str, mut f: impl FnMut()) {
    f();
    let before = counting_alloc::allocations();
    for _ in 0..1_000 {
        f();
    }
    let per_run = (counting_alloc::allocations() - before) as f64 / 1_000.0;
    eprintln!("allocations per call: {name}: {per_run}");
}

/// A client 250 ticks into a match, moving up-right and aiming, repeating
/// its last four frames (the default redundancy).
fn input_packet() -> InputPacket {
    let frames = (0..4u16)
        .map(|i| InputFrame {
            buttons: Buttons(Buttons::UP | Buttons::RIGHT | if i == 3 { Buttons::FIRE } else { 0 }),
            aim: 12_000 + i * 150,
            view_tick: 246 + i as u32,
        })
        .collect();
    InputPacket { ack_tick: 249, first_seq: 247, frames }
}

/// `n` players spread over a 1600x1200 arena (in subunits), alive, at
/// varied health.
fn players(n: u8) -> Vec<PlayerSnap> {
    (0..n)
        .map(|id| PlayerSnap {
            id,
            x: 1_600 + id as u16 * 2_900,
            y: 1_600 + (id as u16 % 4) * 4_300,
            aim: id as u16 * 8_000,
            health: 100 - id * 5,
            flags: flags::ALIVE,
        })
        .collect()
}

/// The same players one tick later: everyone moved a tick's worth (about
/// 7 subunits at 20 Hz) and turned a little; one fired.
fn one_tick_later(before: &[PlayerSnap]) -> Vec<PlayerSnap> {
    before
        .iter()
        .map(|p| PlayerSnap {
            x: p.x + 7,
            y: p.y - 5,
            aim: p.aim.wrapping_add(300),
            flags: if p.id == 2 { p.flags | flags::FIRED } else { p.flags },
            ..*p
        })
        .collect()
}

/// A fixed pseudo-random buffer (xorshift), the shape of hostile garbage.
fn garbage(len: usize) -> Vec<u8> {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s as u8
        })
        .collect()
}

fn input_decode(c: &mut Criterion) {
    let valid = codec::encode(&ClientDatagram::Input(input_packet()), MAX_INPUT_BYTES).unwrap();
    // Hostile: random bytes; a valid prefix claiming 200 frames; a tag of 0
    // then a length that does not fit; and an over-size datagram.
    let random = garbage(MAX_INPUT_BYTES);
    let mut too_many = vec![0u8, 0xf9, 0x01, 0xf7, 0x01, 0xc8, 0x01];
    too_many.resize(MAX_INPUT_BYTES, 0x01);
    let truncated = valid[..valid.len() - 3].to_vec();
    let oversize = vec![0u8; MAX_INPUT_BYTES + 1];
    for (name, bytes) in [("random", &random), ("200_frames_claimed", &too_many), ("truncated", &truncated)] {
        assert!(codec::decode::<ClientDatagram>(bytes, MAX_INPUT_BYTES).is_err(), "{name} must be refused");
    }

    report_allocs("input_decode/valid_4_frames", || {
        black_box(codec::decode::<ClientDatagram>(black_box(&valid), MAX_INPUT_BYTES).unwrap());
    });
    report_allocs("input_decode/garbage_random", || {
        let _ = black_box(codec::decode::<ClientDatagram>(black_box(&random), MAX_INPUT_BYTES));
    });

    let mut g = c.benchmark_group("input_decode");
    g.throughput(Throughput::Elements(1));
    g.bench_function(format!("valid_4_frames_{}B", valid.len()), |b| {
        b.iter(|| codec::decode::<ClientDatagram>(black_box(&valid), MAX_INPUT_BYTES).unwrap())
    });
    let hostile = [
        ("garbage_random_128B", &random),
        ("garbage_200_frames_claimed", &too_many),
        ("garbage_truncated", &truncated),
        ("garbage_oversize_129B", &oversize),
    ];
    for (name, bytes) in hostile {
        g.bench_function(name, |b| b.iter(|| codec::decode::<ClientDatagram>(black_box(bytes), MAX_INPUT_BYTES)));
    }
    g.finish();
}

fn snapshot_encode(c: &mut Criterion) {
    let base = players(8);
    let now = one_tick_later(&base);
    let mut buf = Vec::with_capacity(MAX_SNAPSHOT_BYTES);
    let mut changes = Vec::with_capacity(8);

    // As the node does it: the players' buffer moves into the message and
    // back out, so nothing is cloned or allocated per receiver.
    let mut full_players = now.clone();
    let mut encode_full = |buf: &mut Vec<u8>| {
        let players = std::mem::take(&mut full_players);
        let msg = ServerDatagram::Snapshot(Snapshot { tick: 251, ack_seq: 250, players });
        codec::encode_into(black_box(&msg), buf, MAX_SNAPSHOT_BYTES).unwrap();
        let ServerDatagram::Snapshot(s) = msg else { unreachable!() };
        full_players = s.players;
    };
    encode_full(&mut buf);
    let full_len = buf.len();
    report_allocs("snapshot_encode/full_8_players", || encode_full(&mut buf));

    let encode_delta = |buf: &mut Vec<u8>, changes: &mut Vec<_>| {
        let mut players = std::mem::take(changes);
        players.clear();
        delta::diff(black_box(&base), black_box(&now), &mut players);
        let msg = ServerDatagram::Delta(DeltaSnapshot { tick: 251, base_age: 1, ack_seq: 250, players });
        codec::encode_into(&msg, buf, MAX_SNAPSHOT_BYTES).unwrap();
        let ServerDatagram::Delta(d) = msg else { unreachable!() };
        *changes = d.players;
    };
    encode_delta(&mut buf, &mut changes);
    let delta_len = buf.len();
    report_allocs("snapshot_encode/delta_8_players", || encode_delta(&mut buf, &mut changes));
    eprintln!("sizes: full snapshot of 8 players {full_len} B, delta after one tick {delta_len} B");

    let mut g = c.benchmark_group("snapshot_encode");
    g.throughput(Throughput::Bytes(full_len as u64));
    g.bench_function("full_8_players", |b| b.iter(|| encode_full(&mut buf)));
    g.throughput(Throughput::Bytes(delta_len as u64));
    g.bench_function("delta_8_players_moved_1_tick", |b| b.iter(|| encode_delta(&mut buf, &mut changes)));
    g.finish();
}

fn client_rebuild(c: &mut Criterion) {
    let base = players(8);
    let now = one_tick_later(&base);
    let mut changes = Vec::new();
    delta::diff(&base, &now, &mut changes);
    let delta_msg = ServerDatagram::Delta(DeltaSnapshot { tick: 251, base_age: 1, ack_seq: 250, players: changes });
    let bytes = codec::encode(&delta_msg, MAX_SNAPSHOT_BYTES).unwrap();

    let mut rebuilder = Rebuilder::default();
    rebuilder.rebuild(ServerDatagram::Snapshot(Snapshot { tick: 250, ack_seq: 249, players: base })).unwrap();
    assert_eq!(rebuilder.rebuild(delta_msg.clone()).unwrap().players, now);

    report_allocs("client/delta_decode_and_rebuild_8_players", || {
        let msg = codec::decode::<ServerDatagram>(black_box(&bytes), MAX_SNAPSHOT_BYTES).unwrap();
        black_box(rebuilder.rebuild(msg).unwrap());
    });

    let mut g = c.benchmark_group("client");
    g.throughput(Throughput::Elements(1));
    // Rebuilding the same delta again is the same work: its base (tick
    // 250) stays in the history, tick 251 is overwritten.
    g.bench_function("rebuild_delta_8_players", |b| {
        b.iter_batched(|| delta_msg.clone(), |msg| rebuilder.rebuild(msg).unwrap(), BatchSize::SmallInput)
    });
    g.bench_function("delta_decode_8_players", |b| {
        b.iter(|| codec::decode::<ServerDatagram>(black_box(&bytes), MAX_SNAPSHOT_BYTES).unwrap())
    });
    g.finish();
}

criterion_group!(benches, input_decode, snapshot_encode, client_rebuild);
criterion_main!(benches);
