//! Property tests: hostile bytes never panic a decoder, every valid message
//! survives a round trip, the movement step keeps players out of walls and
//! inside the map, and input packets outside the rules are refused.
//!
//! The decode-anything properties run the same calls as the cargo-fuzz targets
//! in `protocol/fuzz`, so the stable toolchain covers them on every test run.

use proptest::prelude::*;
use proptest::test_runner::Config;

use protocol::codec::{self, CodecError, MAX_CLIENT_FRAME, MAX_SERVER_FRAME};
use protocol::control::{
    ClientControl, Cosmetics, ErrorCode, LobbyInfo, LobbyJoined, LobbyState, MAX_CHAT_BYTES, MAX_ID_BYTES,
    MAX_MESSAGE_BYTES, MAX_NAME_BYTES, MAX_TICKET_BYTES, MatchEnded, RosterEntry, ScoreLine, ServerControl, VoteState,
};
use protocol::datagram::{
    Buttons, ClientDatagram, DeltaSnapshot, InputFrame, InputPacket, MAX_INPUT_BYTES, MAX_INPUT_FRAMES,
    MAX_SNAPSHOT_BYTES, PlayerSnap, ServerDatagram, Snapshot,
};
use protocol::delta::{self, MAX_BASE_AGE};
use protocol::map::{MIN_WALL_THICKNESS, Map, Rect};
use protocol::movement::{self, MAX_TICK_RATE, MIN_TICK_RATE, PLAYER_HALF_SIZE, Pos, SUBUNITS};
use protocol::ticket::{self, TicketKey};
use protocol::{MAX_PLAYERS_PER_LOBBY, PlayerId};

// ---------------------------------------------------------------------------
// Decoding arbitrary bytes
// ---------------------------------------------------------------------------

/// Every decoder the node or a client runs on bytes from the network. Each
/// runs with the real limit and with a loose one, so long inputs also reach
/// the postcard decoder instead of stopping at the size check.
fn decode_everything(bytes: &[u8]) {
    for loose in [false, true] {
        let lim = |max: usize| if loose { 1 << 16 } else { max };
        let _ = codec::decode::<ClientControl>(bytes, lim(MAX_CLIENT_FRAME));
        let _ = codec::decode::<ServerControl>(bytes, lim(MAX_SERVER_FRAME));
        let _ = codec::decode::<ClientDatagram>(bytes, lim(MAX_INPUT_BYTES));
        let _ = codec::decode::<ServerDatagram>(bytes, lim(MAX_SNAPSHOT_BYTES));
        let _ = codec::decode_frame::<ClientControl>(bytes, lim(MAX_CLIENT_FRAME));
        let _ = codec::decode_frame::<ServerControl>(bytes, lim(MAX_SERVER_FRAME));
    }
    if bytes.len() >= codec::FRAME_HEADER {
        let _ = codec::frame_len([bytes[0], bytes[1]], MAX_CLIENT_FRAME);
    }
}

/// Bytes that look like messages: a valid variant tag in front of random
/// bytes, or a valid encoding with some bytes overwritten or cut off.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2000),
        (0u8..12, proptest::collection::vec(any::<u8>(), 0..300)).prop_map(|(tag, mut rest)| {
            rest.insert(0, tag);
            rest
        }),
        (
            any_message_bytes(),
            proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            any::<prop::sample::Index>()
        )
            .prop_map(|(mut bytes, edits, cut)| {
                for (at, b) in edits {
                    let i = at.index(bytes.len());
                    bytes[i] = b;
                }
                if cut.index(4) == 0 {
                    bytes.truncate(cut.index(bytes.len() + 1));
                }
                bytes
            }),
    ]
}

fn any_message_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        client_control().prop_map(|m| postcard::to_stdvec(&m).unwrap()),
        server_control().prop_map(|m| postcard::to_stdvec(&m).unwrap()),
        client_datagram().prop_map(|m| postcard::to_stdvec(&m).unwrap()),
        server_datagram().prop_map(|m| postcard::to_stdvec(&m).unwrap()),
    ]
}

proptest! {
    #![proptest_config(Config::with_cases(3000))]

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in hostile_bytes()) {
        decode_everything(&bytes);
    }

    #[test]
    fn decoding_a_framed_stream_never_panics(bytes in hostile_bytes(), len in 0u16..300) {
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        decode_everything(&framed);
    }

    #[test]
    fn parsing_arbitrary_maps_never_panics(text in ".{0,400}") {
        let _ = Map::parse(&text);
    }

    #[test]
    fn parsing_map_like_text_never_panics(text in map_like_text()) {
        let _ = Map::parse(&text);
    }

    #[test]
    fn verifying_arbitrary_tickets_never_panics(text in ticket_like_text()) {
        let key = TicketKey::new("dev", vec![7u8; 32]).unwrap();
        let _ = ticket::verify(&text, &[key], "local", 1_700_000_000);
    }
}

/// TOML fragments a map is made of, shuffled, so the parser gets past syntax
/// and the validator sees odd numbers.
fn map_like_text() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        Just("0".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<i32>().prop_map(|n| n.to_string()),
        (-20i32..5000).prop_map(|n| n.to_string()),
    ];
    let line = prop_oneof![
        "[a-z_-]{0,40}".prop_map(|n| format!("name = \"{n}\"")),
        number.clone().prop_map(|n| format!("width = {n}")),
        number.clone().prop_map(|n| format!("height = {n}")),
        proptest::collection::vec((number.clone(), number.clone(), number.clone(), number.clone()), 0..5).prop_map(
            |ws| {
                let ws: Vec<String> =
                    ws.into_iter().map(|(x, y, w, h)| format!("{{ x = {x}, y = {y}, w = {w}, h = {h} }}")).collect();
                format!("walls = [{}]", ws.join(", "))
            }
        ),
        proptest::collection::vec((number.clone(), number), 0..5).prop_map(|ps| {
            let ps: Vec<String> = ps.into_iter().map(|(x, y)| format!("{{ x = {x}, y = {y} }}")).collect();
            format!("spawns = [{}]", ps.join(", "))
        }),
        ".{0,20}",
    ];
    proptest::collection::vec(line, 0..8).prop_map(|lines| lines.join("\n"))
}

/// Strings shaped like compact JWTs (three base64url parts) as well as
/// arbitrary ones, including over-long ones.
fn ticket_like_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,300}",
        "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,60}",
        // Real headers in front of garbage, to get past the header check.
        "[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,60}"
            .prop_map(|rest| format!("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImRldiJ9.{rest}")),
        (0usize..5000).prop_map(|n| "a".repeat(n)),
    ]
}

// ---------------------------------------------------------------------------
// Strategies for valid messages (within every `Bounded` limit)
// ---------------------------------------------------------------------------

/// Text of at most `max_bytes` bytes with no control characters, including
/// multi-byte characters.
fn text(max_bytes: usize) -> impl Strategy<Value = String> {
    // `\PC` excludes all of Unicode's C categories, a superset of the control
    // characters `check_text` refuses.
    proptest::string::string_regex(&format!("\\PC{{0,{max_bytes}}}")).unwrap().prop_map(move |mut s| {
        while s.len() > max_bytes {
            s.pop();
        }
        s
    })
}

fn uuid() -> impl Strategy<Value = uuid::Uuid> {
    any::<u128>().prop_map(uuid::Uuid::from_u128)
}

fn player_id() -> impl Strategy<Value = PlayerId> {
    0..MAX_PLAYERS_PER_LOBBY as u8
}

fn cosmetics() -> impl Strategy<Value = Cosmetics> {
    (proptest::option::of(text(MAX_ID_BYTES)), proptest::option::of(text(MAX_ID_BYTES)))
        .prop_map(|(badge, name_color)| Cosmetics { badge, name_color })
}

fn roster_entry() -> impl Strategy<Value = RosterEntry> {
    (player_id(), uuid(), text(MAX_NAME_BYTES), cosmetics(), any::<u16>(), any::<u16>(), any::<bool>()).prop_map(
        |(id, account, name, cosmetics, kills, deaths, connected)| RosterEntry {
            id,
            account,
            name,
            cosmetics,
            kills,
            deaths,
            connected,
        },
    )
}

fn roster() -> impl Strategy<Value = Vec<RosterEntry>> {
    proptest::collection::vec(roster_entry(), 0..=MAX_PLAYERS_PER_LOBBY)
}

fn lobby_state() -> impl Strategy<Value = LobbyState> {
    prop_oneof![Just(LobbyState::Playing), Just(LobbyState::Voting), Just(LobbyState::Closing)]
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    proptest::sample::select(ErrorCode::ALL.to_vec())
}

fn client_control() -> impl Strategy<Value = ClientControl> {
    prop_oneof![
        (any::<u16>(), text(MAX_NAME_BYTES)).prop_map(|(version, client)| ClientControl::Hello { version, client }),
        text(MAX_TICKET_BYTES).prop_map(|ticket| ClientControl::Join { ticket }),
        // The codec's bound for chat is 4x the lobby's rule, for the lobby to
        // answer with a clear error.
        text(4 * MAX_CHAT_BYTES).prop_map(|text| ClientControl::Chat { text }),
        any::<bool>().prop_map(|restart| ClientControl::Vote { restart }),
        Just(ClientControl::Leave),
    ]
}

fn lobby_joined() -> impl Strategy<Value = LobbyJoined> {
    let lobby = (any::<u64>(), text(MAX_ID_BYTES), any::<u8>(), any::<u8>(), lobby_state())
        .prop_map(|(id, mode, players, max_players, state)| LobbyInfo { id, mode, players, max_players, state });
    (lobby, player_id(), text(MAX_ID_BYTES), uuid(), any::<u16>(), any::<bool>(), roster()).prop_map(
        |(lobby, you, map, match_id, kill_target, resumed, roster)| LobbyJoined {
            lobby,
            you,
            map,
            match_id,
            kill_target,
            resumed,
            roster,
        },
    )
}

fn match_ended() -> impl Strategy<Value = MatchEnded> {
    let line = (player_id(), uuid(), text(MAX_NAME_BYTES), any::<u16>(), any::<u16>())
        .prop_map(|(id, account, name, kills, deaths)| ScoreLine { id, account, name, kills, deaths });
    (uuid(), player_id(), proptest::collection::vec(line, 0..=MAX_PLAYERS_PER_LOBBY), any::<u16>()).prop_map(
        |(match_id, winner, scoreboard, vote_seconds)| MatchEnded { match_id, winner, scoreboard, vote_seconds },
    )
}

fn server_control() -> impl Strategy<Value = ServerControl> {
    prop_oneof![
        (any::<u16>(), text(2 * MAX_ID_BYTES), any::<u16>())
            .prop_map(|(version, node_id, tick_rate)| ServerControl::Welcome { version, node_id, tick_rate }),
        (error_code(), text(MAX_MESSAGE_BYTES)).prop_map(|(code, message)| ServerControl::Error { code, message }),
        lobby_joined().prop_map(ServerControl::LobbyJoined),
        roster().prop_map(|players| ServerControl::Roster { players }),
        (player_id(), player_id()).prop_map(|(killer, victim)| ServerControl::Kill { killer, victim }),
        (uuid(), any::<u16>())
            .prop_map(|(match_id, kill_target)| ServerControl::MatchStarted { match_id, kill_target }),
        match_ended().prop_map(ServerControl::MatchEnded),
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>(), any::<u32>()).prop_map(
            |(yes, no, present, needed, remaining_ms)| ServerControl::VoteState(VoteState {
                yes,
                no,
                present,
                needed,
                remaining_ms
            })
        ),
        text(MAX_MESSAGE_BYTES).prop_map(|reason| ServerControl::LobbyClosed { reason }),
        (player_id(), text(MAX_NAME_BYTES), text(MAX_CHAT_BYTES)).prop_map(|(from, name, text)| ServerControl::Chat {
            from,
            name,
            text
        }),
        text(MAX_MESSAGE_BYTES).prop_map(|reason| ServerControl::Kicked { reason }),
    ]
}

fn input_frame() -> impl Strategy<Value = InputFrame> {
    (0u8..32, any::<u16>(), any::<u32>()).prop_map(|(b, aim, view_tick)| InputFrame {
        buttons: Buttons(b),
        aim,
        view_tick,
    })
}

fn input_packet() -> impl Strategy<Value = InputPacket> {
    (
        any::<u32>(),
        1..=u32::MAX - MAX_INPUT_FRAMES as u32,
        proptest::collection::vec(input_frame(), 1..=MAX_INPUT_FRAMES),
    )
        .prop_map(|(ack_tick, first_seq, frames)| InputPacket { ack_tick, first_seq, frames: frames.into() })
}

fn client_datagram() -> impl Strategy<Value = ClientDatagram> {
    input_packet().prop_map(ClientDatagram::Input)
}

fn server_datagram() -> impl Strategy<Value = ServerDatagram> {
    let snap = (player_id(), any::<u16>(), any::<u16>(), any::<u16>(), any::<u8>(), 0u8..16)
        .prop_map(|(id, x, y, aim, health, flags)| PlayerSnap { id, x, y, aim, health, flags });
    let full = (any::<u32>(), any::<u32>(), proptest::collection::vec(snap, 0..=MAX_PLAYERS_PER_LOBBY)).prop_map(
        |(tick, ack_seq, players)| ServerDatagram::Snapshot(Snapshot { tick, ack_seq, players: by_id(players) }),
    );
    let delta = (any::<u32>(), 1..=MAX_BASE_AGE as u8, any::<u32>(), players(), players()).prop_map(
        |(tick, base_age, ack_seq, base, now)| {
            let mut changes = Vec::new();
            delta::diff(&base, &now, &mut changes);
            ServerDatagram::Delta(DeltaSnapshot {
                tick: tick.max(base_age as u32),
                base_age,
                ack_seq,
                players: changes,
            })
        },
    );
    prop_oneof![full, delta]
}

/// Players as a snapshot lists them: unique ids in increasing order.
fn by_id(mut players: Vec<PlayerSnap>) -> Vec<PlayerSnap> {
    players.sort_by_key(|p| p.id);
    players.dedup_by_key(|p| p.id);
    players
}

fn players() -> impl Strategy<Value = Vec<PlayerSnap>> {
    let snap = (player_id(), any::<u16>(), any::<u16>(), any::<u16>(), any::<u8>(), 0u8..16)
        .prop_map(|(id, x, y, aim, health, flags)| PlayerSnap { id, x, y, aim, health, flags });
    proptest::collection::vec(snap, 0..=MAX_PLAYERS_PER_LOBBY).prop_map(by_id)
}

proptest! {
    /// Whatever the base and the new state, the delta rebuilds the new state
    /// exactly, after a trip through the wire encoding.
    #[test]
    fn delta_rebuilds_any_snapshot(base in players(), now in players()) {
        let mut changes = Vec::new();
        delta::diff(&base, &now, &mut changes);
        let msg = ServerDatagram::Delta(DeltaSnapshot { tick: 100, base_age: 1, ack_seq: 0, players: changes });
        let bytes = codec::encode(&msg, MAX_SNAPSHOT_BYTES).unwrap();
        let ServerDatagram::Delta(back) = codec::decode::<ServerDatagram>(&bytes, MAX_SNAPSHOT_BYTES).unwrap() else {
            unreachable!("encoded a delta")
        };
        let mut rebuilt = Vec::new();
        delta::apply(&base, &back.players, &mut rebuilt).unwrap();
        prop_assert_eq!(rebuilt, now);
    }

    /// Applying arbitrary decoded changes to an arbitrary base never panics,
    /// and a success is a valid snapshot (unique ids in order, at most 32).
    #[test]
    fn hostile_deltas_never_panic(base in players(), bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(ServerDatagram::Delta(d)) = codec::decode::<ServerDatagram>(&bytes, MAX_SNAPSHOT_BYTES) {
            let mut out = Vec::new();
            if delta::apply(&base, &d.players, &mut out).is_ok() {
                prop_assert!(out.len() <= MAX_PLAYERS_PER_LOBBY);
                prop_assert!(out.windows(2).all(|w| w[0].id < w[1].id));
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------

/// Encodes, decodes, and checks that every strict prefix of the frame asks
/// for more bytes rather than failing or yielding a message.
fn round_trip<T>(msg: &T, max: usize) -> Result<(), TestCaseError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + codec::Bounded + PartialEq + std::fmt::Debug,
{
    let bytes = codec::encode(msg, max).map_err(|e| TestCaseError::fail(format!("encode: {e}")))?;
    prop_assert_eq!(&codec::decode::<T>(&bytes, max).unwrap(), msg);
    let frame = codec::encode_frame(msg, max).unwrap();
    prop_assert_eq!(&frame[2..], &bytes[..]);
    let (back, used) = codec::decode_frame::<T>(&frame, max).unwrap().unwrap();
    prop_assert_eq!(&back, msg);
    prop_assert_eq!(used, frame.len());
    for cut in [0, 1, frame.len() / 2, frame.len() - 1] {
        prop_assert_eq!(codec::decode_frame::<T>(&frame[..cut], max), Ok(None));
    }
    let mut buf = vec![0xaa; 7];
    codec::encode_into(msg, &mut buf, max).unwrap();
    prop_assert_eq!(buf, bytes);
    Ok(())
}

proptest! {
    #![proptest_config(Config::with_cases(500))]

    #[test]
    fn client_control_round_trips(msg in client_control()) {
        round_trip(&msg, MAX_CLIENT_FRAME)?;
    }

    #[test]
    fn server_control_round_trips(msg in server_control()) {
        round_trip(&msg, MAX_SERVER_FRAME)?;
    }

    #[test]
    fn client_datagram_round_trips(msg in client_datagram()) {
        round_trip(&msg, MAX_INPUT_BYTES)?;
    }

    #[test]
    fn server_datagram_round_trips(msg in server_datagram()) {
        round_trip(&msg, MAX_SNAPSHOT_BYTES)?;
    }
}

/// The largest valid message of each type fits its limit, so a node never
/// produces a message its peer refuses for size.
#[test]
fn largest_valid_messages_fit_their_limits() {
    let long = |n: usize| "\u{10348}".repeat(n / 4);
    let full_entry = RosterEntry {
        id: 31,
        account: uuid::Uuid::max(),
        name: long(MAX_NAME_BYTES),
        cosmetics: Cosmetics { badge: Some(long(MAX_ID_BYTES)), name_color: Some(long(MAX_ID_BYTES)) },
        kills: u16::MAX,
        deaths: u16::MAX,
        connected: true,
    };
    let joined = ServerControl::LobbyJoined(LobbyJoined {
        lobby: LobbyInfo {
            id: u64::MAX,
            mode: long(MAX_ID_BYTES),
            players: 32,
            max_players: 32,
            state: LobbyState::Closing,
        },
        you: 31,
        map: long(MAX_ID_BYTES),
        match_id: uuid::Uuid::max(),
        kill_target: u16::MAX,
        resumed: true,
        roster: vec![full_entry; MAX_PLAYERS_PER_LOBBY],
    });
    let size = codec::encode(&joined, MAX_SERVER_FRAME).unwrap().len();
    assert!(size <= MAX_SERVER_FRAME / 2, "LobbyJoined worst case {size} bytes");

    let join = ClientControl::Join { ticket: long(MAX_TICKET_BYTES) };
    assert!(codec::encode(&join, MAX_CLIENT_FRAME).is_ok());
    let chat = ClientControl::Chat { text: "x".repeat(4 * MAX_CHAT_BYTES) };
    assert!(codec::encode(&chat, MAX_CLIENT_FRAME).is_ok());

    let frame = InputFrame { buttons: Buttons(31), aim: u16::MAX, view_tick: u32::MAX };
    let input = ClientDatagram::Input(InputPacket {
        ack_tick: u32::MAX,
        first_seq: u32::MAX - MAX_INPUT_FRAMES as u32,
        frames: vec![frame; MAX_INPUT_FRAMES].into(),
    });
    let size = codec::encode(&input, MAX_INPUT_BYTES).unwrap().len();
    assert!(size <= MAX_INPUT_BYTES, "input worst case {size} bytes");

    let snap = PlayerSnap { id: 31, x: u16::MAX, y: u16::MAX, aim: u16::MAX, health: 255, flags: 255 };
    let snapshot = ServerDatagram::Snapshot(Snapshot {
        tick: u32::MAX,
        ack_seq: u32::MAX,
        players: vec![snap; MAX_PLAYERS_PER_LOBBY],
    });
    let size = codec::encode(&snapshot, MAX_SNAPSHOT_BYTES).unwrap().len();
    // QUIC guarantees 1200 bytes of UDP payload; short-header overhead plus
    // the datagram frame header is well under 100 bytes.
    assert!(size <= 1100 - 100, "snapshot worst case {size} bytes");

    let far = PlayerSnap { id: 0, x: u16::MAX, y: u16::MAX, aim: u16::MAX / 2, health: 255, flags: 255 };
    let mut changes = Vec::new();
    let (base, now): (Vec<_>, Vec<_>) = (0..MAX_PLAYERS_PER_LOBBY as u8)
        .map(|id| (PlayerSnap { id, ..PlayerSnap::default() }, PlayerSnap { id, ..far }))
        .unzip();
    delta::diff(&base, &now, &mut changes);
    let delta =
        ServerDatagram::Delta(DeltaSnapshot { tick: u32::MAX, base_age: 32, ack_seq: u32::MAX, players: changes });
    let size = codec::encode(&delta, MAX_SNAPSHOT_BYTES).unwrap().len();
    assert!(size <= 1100 - 100, "delta worst case {size} bytes");
}

// ---------------------------------------------------------------------------
// Movement
// ---------------------------------------------------------------------------

fn assert_inside(map: &Map, p: Pos) -> Result<(), TestCaseError> {
    let h = PLAYER_HALF_SIZE;
    prop_assert!(!map.blocked(p), "player at {:?} overlaps a wall", p);
    prop_assert!(p.x >= h && p.y >= h, "player at {:?} is past the top-left edge", p);
    prop_assert!(
        p.x <= map.width * SUBUNITS - h && p.y <= map.height * SUBUNITS - h,
        "player at {:?} is past the bottom-right edge",
        p
    );
    Ok(())
}

/// Runs `buttons` from `start`, checking every position; returns the path.
fn walk(map: &Map, start: Pos, buttons: &[u8], tick_rate: u16) -> Result<Vec<Pos>, TestCaseError> {
    let len = movement::step_len(tick_rate);
    let mut p = start;
    let mut path = Vec::with_capacity(buttons.len());
    for &b in buttons {
        let next = movement::step(p, Buttons(b), map, tick_rate);
        assert_inside(map, next)?;
        prop_assert!((next.x - p.x).abs() <= len && (next.y - p.y).abs() <= len, "moved more than one step");
        p = next;
        path.push(p);
    }
    Ok(path)
}

/// A start position: a spawn point, or any free spot in the map.
fn start_on(map: &'static Map) -> impl Strategy<Value = Pos> {
    let h = PLAYER_HALF_SIZE;
    prop_oneof![
        proptest::sample::select(map.spawns.clone()).prop_map(|s| Pos::from_units(s.x, s.y)),
        (h..=map.width * SUBUNITS - h, h..=map.height * SUBUNITS - h)
            .prop_map(|(x, y)| Pos { x, y })
            .prop_filter("start outside walls", |p| !map.blocked(*p)),
    ]
}

/// Buttons held for a few ticks at a time, as players do, so walks reach walls
/// and corners instead of jittering in place.
fn held_buttons() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec((0u8..=255, 1usize..40), 0..40)
        .prop_map(|runs| runs.into_iter().flat_map(|(b, n)| std::iter::repeat_n(b, n)).collect())
}

fn arena() -> &'static Map {
    static ARENA: std::sync::OnceLock<Map> = std::sync::OnceLock::new();
    ARENA.get_or_init(Map::builtin_arena)
}

fn duel() -> &'static Map {
    static DUEL: std::sync::OnceLock<Map> = std::sync::OnceLock::new();
    DUEL.get_or_init(|| Map::parse(include_str!("../../maps/duel.toml")).unwrap())
}

/// Any valid map: walls of at least the minimum thickness inside the map,
/// possibly overlapping or touching each other and the edges.
fn any_map() -> impl Strategy<Value = Map> {
    (256i32..=800, 256i32..=800)
        .prop_flat_map(|(width, height)| {
            let wall = (0..width - MIN_WALL_THICKNESS, 0..height - MIN_WALL_THICKNESS)
                .prop_flat_map(move |(x, y)| {
                    (Just(x), Just(y), MIN_WALL_THICKNESS..=width - x, MIN_WALL_THICKNESS..=height - y)
                })
                .prop_map(|(x, y, w, h)| Rect { x, y, w: w.min(120), h: h.min(120) });
            (Just(width), Just(height), proptest::collection::vec(wall, 0..12))
        })
        .prop_map(|(width, height, walls)| Map { name: "random".into(), width, height, walls, spawns: vec![] })
}

proptest! {
    #![proptest_config(Config::with_cases(300))]

    #[test]
    fn arena_walks_stay_free_and_inside(
        start in start_on(arena()),
        buttons in held_buttons(),
        tick_rate in MIN_TICK_RATE..=MAX_TICK_RATE,
    ) {
        let map = arena();
        let path = walk(map, start, &buttons, tick_rate)?;
        // Deterministic: the same inputs give the same positions.
        prop_assert_eq!(walk(map, start, &buttons, tick_rate)?, path);
    }

    #[test]
    fn duel_walks_stay_free_and_inside(
        start in start_on(duel()),
        buttons in held_buttons(),
        tick_rate in MIN_TICK_RATE..=MAX_TICK_RATE,
    ) {
        walk(duel(), start, &buttons, tick_rate)?;
    }

    #[test]
    fn walks_on_any_valid_map_stay_free_and_inside(
        map in any_map(),
        start in (any::<prop::sample::Index>(), any::<prop::sample::Index>()),
        buttons in held_buttons(),
        tick_rate in MIN_TICK_RATE..=MAX_TICK_RATE,
    ) {
        let h = PLAYER_HALF_SIZE;
        let p = Pos {
            x: h + start.0.index((map.width * SUBUNITS - 2 * h + 1) as usize) as i32,
            y: h + start.1.index((map.height * SUBUNITS - 2 * h + 1) as usize) as i32,
        };
        prop_assume!(!map.blocked(p));
        walk(&map, p, &buttons, tick_rate)?;
    }
}

#[test]
fn a_step_is_shorter_than_the_thinnest_wall() {
    // What makes tunnelling impossible: the longest step, at the lowest tick
    // rate, is shorter than a wall is thick.
    assert!(movement::step_len(MIN_TICK_RATE) < MIN_WALL_THICKNESS * SUBUNITS);
    assert!(movement::step_len(0) == movement::step_len(MIN_TICK_RATE), "tick rates are clamped");
}

// ---------------------------------------------------------------------------
// Input validation
// ---------------------------------------------------------------------------

fn decode_input(p: &InputPacket) -> Result<ClientDatagram, CodecError> {
    // Encoding does not validate, so it can produce what a hostile client sends.
    let bytes = postcard::to_stdvec(&ClientDatagram::Input(p.clone())).unwrap();
    codec::decode::<ClientDatagram>(&bytes, MAX_INPUT_BYTES)
}

proptest! {
    #![proptest_config(Config::with_cases(500))]

    #[test]
    fn valid_inputs_are_accepted(p in input_packet()) {
        prop_assert_eq!(decode_input(&p), Ok(ClientDatagram::Input(p.clone())));
        prop_assert_eq!(p.last_seq(), p.first_seq + p.frames.len() as u32 - 1);
    }

    #[test]
    fn too_many_frames_are_refused(p in input_packet(), extra in proptest::collection::vec(input_frame(), 1..=8)) {
        let mut p = p;
        while p.frames.len() <= MAX_INPUT_FRAMES {
            p.frames.extend_from_slice(&extra);
        }
        p.first_seq = 1;
        // Refused for size, or while decoding before the excess frames are stored.
        let refused = decode_input(&p);
        prop_assert!(matches!(refused, Err(CodecError::Malformed(_) | CodecError::TooLarge { .. })), "{:?}", refused);
    }

    #[test]
    fn no_frames_are_refused(p in input_packet()) {
        let p = InputPacket { frames: vec![].into(), ..p };
        prop_assert_eq!(decode_input(&p), Err(CodecError::Invalid("input frame count")));
    }

    #[test]
    fn sequence_zero_is_refused(p in input_packet()) {
        let p = InputPacket { first_seq: 0, ..p };
        prop_assert_eq!(decode_input(&p), Err(CodecError::Invalid("input sequence")));
    }

    #[test]
    fn wrapping_sequences_are_refused(p in input_packet(), back in 0u32..8) {
        let first_seq = u32::MAX - back.min(p.frames.len() as u32 - 1);
        let p = InputPacket { first_seq, ..p };
        prop_assert_eq!(decode_input(&p), Err(CodecError::Invalid("input sequence")));
    }

    #[test]
    fn unknown_button_bits_are_refused(p in input_packet(), at in any::<prop::sample::Index>(), bits in 32u8..=255) {
        let mut p = p;
        let i = at.index(p.frames.len());
        p.frames[i].buttons = Buttons(p.frames[i].buttons.0 | (bits & !31));
        prop_assert_eq!(decode_input(&p), Err(CodecError::Invalid("input buttons")));
    }
}
