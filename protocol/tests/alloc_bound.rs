//! Decoding hostile bytes never allocates more than a small multiple of the
//! input.
//!
//! A counting global allocator tracks, per thread, the bytes currently
//! allocated and their peak. Each decode below is measured on its own: the
//! peak minus the bytes live before the call must stay under [`bound`].
//!
//! The bound is `input + 8 KiB`, because a decode can legitimately hold:
//! * every string of the message, copied out of the input once (at most the
//!   input's length in total);
//! * the vectors, whose capacity the codec caps at the protocol's element limit
//!   (at worst 32 roster entries of 96 bytes, 3 KiB, momentarily 4.5 KiB while
//!   a vector grows from 16 to 32 elements);
//! * the error message of a refused decode (a short `String`).
//!
//! Without the cap, serde preallocates whatever length a vector's prefix claims
//! (up to 1 MiB, or the remaining bytes times the element size), which is what
//! this test catches.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use protocol::codec::{self, Bounded, MAX_CLIENT_FRAME, MAX_SERVER_FRAME};
use protocol::control::{ClientControl, Cosmetics, LobbyInfo, LobbyJoined, LobbyState, RosterEntry, ServerControl};
use protocol::datagram::{ClientDatagram, MAX_INPUT_BYTES, MAX_SNAPSHOT_BYTES, PlayerSnap, ServerDatagram};
use serde::de::DeserializeOwned;

struct Counting;

thread_local! {
    static CURRENT: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn add(bytes: usize) {
    // `try_with` because the allocator also runs while thread locals are torn down.
    let _ = CURRENT.try_with(|c| {
        let now = c.get() + bytes;
        c.set(now);
        let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
    });
}

fn sub(bytes: usize) {
    let _ = CURRENT.try_with(|c| c.set(c.get().saturating_sub(bytes)));
}

// SAFETY: every call is forwarded to `System` unchanged; the counters only
// observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        sub(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Counted as a fresh allocation before the old one is freed, which is
        // the worst case of a moving realloc.
        add(new_size);
        sub(layout.size());
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn bound(input: usize) -> usize {
    input + 8 * 1024
}

/// Peak bytes allocated by `f` beyond what was live when it started.
fn peak_of<R>(f: impl FnOnce() -> R) -> usize {
    let base = CURRENT.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let out = f();
    let peak = PEAK.with(Cell::get);
    drop(out);
    peak - base
}

/// Tracks the worst decode seen for one message type.
struct Worst {
    what: &'static str,
    peak: usize,
    input: usize,
}

impl Worst {
    fn new(what: &'static str) -> Worst {
        Worst { what, peak: 0, input: 0 }
    }

    fn check<T: DeserializeOwned + Bounded>(&mut self, bytes: &[u8], max: usize) {
        let peak = peak_of(|| codec::decode::<T>(bytes, max));
        assert!(
            peak <= bound(bytes.len()),
            "{}: decoding {} bytes allocated {} bytes at peak (bound {}); input starts {:02x?}",
            self.what,
            bytes.len(),
            peak,
            bound(bytes.len()),
            &bytes[..bytes.len().min(16)]
        );
        let framed = frame(bytes);
        let framed_peak = peak_of(|| codec::decode_frame::<T>(&framed, max));
        assert!(framed_peak <= bound(framed.len()), "{}: framed decode allocated {framed_peak}", self.what);
        if peak > self.peak {
            self.peak = peak;
            self.input = bytes.len();
        }
    }
}

impl Drop for Worst {
    fn drop(&mut self) {
        eprintln!("{}: worst peak {} bytes for a {}-byte input", self.what, self.peak, self.input);
    }
}

fn frame(body: &[u8]) -> Vec<u8> {
    let len = body.len().min(u16::MAX as usize) as u16;
    let mut out = len.to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

/// xorshift64*: deterministic, allocation-free randomness.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Lengths a hostile prefix may claim: small, the exact remaining size, just
/// over the limits, huge, and overlong varints.
fn hostile_lengths(remaining: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for v in [33u64, remaining as u64, remaining as u64 / 2, 1 << 20, u32::MAX as u64, u64::MAX, usize::MAX as u64 / 2]
    {
        let mut b = Vec::new();
        varint(v, &mut b);
        out.push(b);
    }
    // Overlong varints (more continuation bytes than a u64 has).
    out.push(vec![0xff; 11]);
    out.push(vec![0x80; 10]);
    out
}

/// `prefix`, then a hostile length, then `filler` repeated up to `size` bytes.
fn hostile(prefix: &[u8], len: &[u8], filler: &[u8], size: usize) -> Vec<u8> {
    let mut out = prefix.to_vec();
    out.extend_from_slice(len);
    while out.len() < size {
        let take = filler.len().min(size - out.len());
        out.extend_from_slice(&filler[..take]);
    }
    out.truncate(size);
    out
}

fn entry() -> RosterEntry {
    RosterEntry {
        id: 1,
        account: uuid::Uuid::from_u128(7),
        name: "n".into(),
        cosmetics: Cosmetics::default(),
        kills: 0,
        deaths: 0,
        connected: true,
    }
}

fn enc<T: serde::Serialize>(v: &T) -> Vec<u8> {
    postcard::to_stdvec(v).unwrap()
}

/// Sizes to try for a hostile message: tiny, mid, and exactly the limit.
fn sizes(max: usize) -> [usize; 4] {
    [16, max / 4, max - 1, max]
}

#[test]
fn hostile_vector_and_string_lengths_stay_bounded() {
    // Server control: every vector and string position with lengths that
    // claim far more than the frame holds, followed by bytes that decode as
    // valid elements so the decoder keeps going as long as it can.
    let mut roster = Worst::new("ServerControl::Roster");
    let mut joined = Worst::new("ServerControl::LobbyJoined");
    let mut ended = Worst::new("ServerControl::MatchEnded");
    let mut text = Worst::new("ServerControl strings");
    let one_entry = enc(&entry());
    let lobby_joined_prefix = {
        let j = LobbyJoined {
            lobby: LobbyInfo { id: 1, mode: "m".into(), players: 1, max_players: 8, state: LobbyState::Playing },
            you: 0,
            map: "arena".into(),
            match_id: uuid::Uuid::nil(),
            kill_target: 50,
            resumed: false,
            roster: vec![],
        };
        let mut b = enc(&ServerControl::LobbyJoined(j));
        assert_eq!(b.pop(), Some(0), "roster length is the last byte");
        b
    };
    // MatchEnded: variant, match id (17 bytes), winner, then the scoreboard.
    let mut match_ended_prefix = vec![6u8];
    match_ended_prefix.extend(enc(&uuid::Uuid::nil()));
    match_ended_prefix.push(0);
    let one_line = {
        let mut b = vec![1u8];
        b.extend(enc(&uuid::Uuid::nil()));
        b.extend([1, b'n', 0, 0]);
        b
    };
    for size in sizes(MAX_SERVER_FRAME) {
        for len in hostile_lengths(size) {
            for filler in [&one_entry[..], &[0u8][..], &[0xffu8][..]] {
                roster.check::<ServerControl>(&hostile(&[3], &len, filler, size), MAX_SERVER_FRAME);
                joined.check::<ServerControl>(&hostile(&lobby_joined_prefix, &len, filler, size), MAX_SERVER_FRAME);
            }
            for filler in [&one_line[..], &[0u8][..]] {
                ended.check::<ServerControl>(&hostile(&match_ended_prefix, &len, filler, size), MAX_SERVER_FRAME);
            }
            // Strings: Welcome.node_id, Error.message, LobbyClosed, Chat, Kicked.
            for prefix in [&[0u8, 1][..], &[1, 0], &[8], &[9, 0], &[10]] {
                for filler in [&b"a"[..], &[0xff][..]] {
                    text.check::<ServerControl>(&hostile(prefix, &len, filler, size), MAX_SERVER_FRAME);
                }
            }
        }
    }

    let mut client = Worst::new("ClientControl strings");
    for size in sizes(MAX_CLIENT_FRAME) {
        for len in hostile_lengths(size) {
            for prefix in [&[0u8, 1][..], &[1], &[2]] {
                for filler in [&b"a"[..], &[0xff][..], &[0][..]] {
                    client.check::<ClientControl>(&hostile(prefix, &len, filler, size), MAX_CLIENT_FRAME);
                }
            }
        }
    }

    let mut input = Worst::new("ClientDatagram::Input");
    for size in sizes(MAX_INPUT_BYTES) {
        for len in hostile_lengths(size) {
            for filler in [&[1u8, 0, 0][..], &[0][..], &[0xff][..]] {
                input.check::<ClientDatagram>(&hostile(&[0, 0, 1], &len, filler, size), MAX_INPUT_BYTES);
            }
        }
    }

    let mut snapshot = Worst::new("ServerDatagram::Snapshot");
    let one_snap = enc(&PlayerSnap::default());
    for size in sizes(MAX_SNAPSHOT_BYTES) {
        for len in hostile_lengths(size) {
            for filler in [&one_snap[..], &[0][..], &[0xff][..]] {
                snapshot.check::<ServerDatagram>(&hostile(&[0, 1, 1], &len, filler, size), MAX_SNAPSHOT_BYTES);
            }
        }
    }
}

#[test]
fn random_bytes_stay_bounded() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut worst = [
        Worst::new("random ClientControl"),
        Worst::new("random ServerControl"),
        Worst::new("random ClientDatagram"),
        Worst::new("random ServerDatagram"),
    ];
    for _ in 0..3000 {
        let which = rng.below(4);
        let max = [MAX_CLIENT_FRAME, MAX_SERVER_FRAME, MAX_INPUT_BYTES, MAX_SNAPSHOT_BYTES][which];
        // Mostly short inputs (where the variant tag and first lengths are
        // random), some up to the limit.
        let len = if rng.below(4) == 0 { rng.below(max + 1) } else { rng.below(64) };
        let mut bytes = rng.bytes(len);
        // Valid variant tags reach deeper than uniformly random first bytes.
        if let Some(first) = bytes.first_mut() {
            *first %= [5, 11, 1, 1][which];
        }
        match which {
            0 => worst[0].check::<ClientControl>(&bytes, max),
            1 => worst[1].check::<ServerControl>(&bytes, max),
            2 => worst[2].check::<ClientDatagram>(&bytes, max),
            _ => worst[3].check::<ServerDatagram>(&bytes, max),
        }
    }
}

#[test]
fn valid_messages_at_the_limit_stay_bounded() {
    // Legitimate decodes must fit the same bound: a full lobby's roster with
    // maximal names and cosmetics is the largest real server message.
    let long = |n: usize| "x".repeat(n);
    let full = RosterEntry {
        name: long(32),
        cosmetics: Cosmetics { badge: Some(long(32)), name_color: Some(long(32)) },
        ..entry()
    };
    let msg = ServerControl::Roster { players: vec![full; protocol::MAX_PLAYERS_PER_LOBBY] };
    let bytes = codec::encode(&msg, MAX_SERVER_FRAME).unwrap();
    Worst::new("full roster").check::<ServerControl>(&bytes, MAX_SERVER_FRAME);

    let ticket = ClientControl::Join { ticket: long(protocol::control::MAX_TICKET_BYTES) };
    let bytes = codec::encode(&ticket, MAX_CLIENT_FRAME).unwrap();
    Worst::new("largest join").check::<ClientControl>(&bytes, MAX_CLIENT_FRAME);
}
