//! Golden byte vectors: the wire contract for clients in other languages.
//!
//! Every message type and every enum variant is pinned here as hex. A failing
//! test means the encoding changed: that breaks every client and needs a
//! `PROTOCOL_VERSION` bump, not a new vector. `GOLDEN.md` documents the format
//! and lists the same vectors; `golden_md_lists_every_vector` keeps the two in
//! step.
//!
//! Hex strings are spaced by field for reading; spaces are not significant.

use std::collections::BTreeMap;
use std::fmt::Debug;

use protocol::codec::{self, Bounded, CodecError, MAX_CLIENT_FRAME, MAX_SERVER_FRAME};
use protocol::control::{
    ClientControl, Cosmetics, ErrorCode, LobbyInfo, LobbyJoined, LobbyState, MatchEnded, RosterEntry, ScoreLine,
    ServerControl, VoteState,
};
use protocol::datagram::DeltaSnapshot;
use protocol::datagram::{
    Buttons, ClientDatagram, InputFrame, InputPacket, MAX_INPUT_BYTES, MAX_SNAPSHOT_BYTES, PlayerSnap, ServerDatagram,
    Snapshot, flags,
};
use protocol::defaults::{from_hex, to_hex};
use protocol::delta::{PlayerDelta, fields};
use protocol::ticket::{self, JoinClaims, JoinTarget, TicketKey};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

const MATCH: Uuid = Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff);
const ALICE: Uuid = Uuid::from_u128(0xa11c_e000_0000_4000_8000_0000_0000_0001);
const BOB: Uuid = Uuid::from_u128(0xb0b0_0000_0000_4000_8000_0000_0000_0002);

/// A named value and its expected encoding.
struct Vector<T> {
    name: &'static str,
    value: T,
    hex: &'static str,
}

fn compact(hex: &str) -> String {
    hex.split_whitespace().collect()
}

/// Encodes `value` and compares with `hex`, then decodes `hex` back to `value`.
fn check<T>(name: &str, value: &T, hex: &str, max: usize)
where
    T: Serialize + DeserializeOwned + Bounded + PartialEq + Debug,
{
    let want = compact(hex);
    let got = to_hex(&codec::encode(value, max).unwrap());
    assert_eq!(got, want, "{name}: the encoding changed");
    let back: T = codec::decode(&from_hex(&want).unwrap(), max).unwrap();
    assert_eq!(&back, value, "{name}: decoding the golden bytes");
}

fn alice() -> RosterEntry {
    RosterEntry {
        id: 0,
        account: ALICE,
        name: "alice".into(),
        cosmetics: Cosmetics { badge: Some("supporter".into()), name_color: Some("#ff8800".into()) },
        kills: 3,
        deaths: 0,
        connected: true,
    }
}

fn bob() -> RosterEntry {
    RosterEntry {
        id: 1,
        account: BOB,
        name: "bob".into(),
        cosmetics: Cosmetics::default(),
        kills: 0,
        deaths: 200,
        connected: false,
    }
}

// The roster entries above, as the vectors below spell them out.
macro_rules! alice_hex {
    () => {
        "00 10a11ce000000040008000000000000001 05616c696365 01 09737570706f72746572 01 0723666638383030 03 00 01"
    };
}
macro_rules! bob_hex {
    () => {
        "01 10b0b00000000040008000000000000002 03626f62 00 00 00 c801 00"
    };
}

fn client_control() -> Vec<Vector<ClientControl>> {
    vec![
        Vector {
            name: "ClientControl::Hello",
            value: ClientControl::Hello { version: 3, client: "loadgen/0.1".into() },
            hex: "00 03 0b6c6f616467656e2f302e31",
        },
        Vector {
            name: "ClientControl::Join",
            value: ClientControl::Join { ticket: "aaa.bbb.ccc".into() },
            hex: "01 0b6161612e6262622e636363",
        },
        Vector { name: "ClientControl::Chat", value: ClientControl::Chat { text: "gg".into() }, hex: "02 026767" },
        Vector { name: "ClientControl::Vote(yes)", value: ClientControl::Vote { restart: true }, hex: "03 01" },
        Vector { name: "ClientControl::Vote(no)", value: ClientControl::Vote { restart: false }, hex: "03 00" },
        Vector { name: "ClientControl::Leave", value: ClientControl::Leave, hex: "04" },
    ]
}

fn server_control() -> Vec<Vector<ServerControl>> {
    vec![
        Vector {
            name: "ServerControl::Welcome",
            value: ServerControl::Welcome { version: 3, node_id: "local".into(), tick_rate: 20 },
            hex: "00 03 056c6f63616c 14",
        },
        Vector {
            name: "ServerControl::Error",
            value: ServerControl::Error { code: ErrorCode::VersionMismatch, message: "v1 only".into() },
            hex: "01 00 077631206f6e6c79",
        },
        Vector {
            name: "ServerControl::LobbyJoined",
            value: ServerControl::LobbyJoined(LobbyJoined {
                lobby: LobbyInfo {
                    id: 300,
                    mode: "deathmatch".into(),
                    players: 2,
                    max_players: 8,
                    state: LobbyState::Playing,
                },
                you: 1,
                map: "arena".into(),
                match_id: MATCH,
                kill_target: 50,
                resumed: true,
                roster: vec![alice(), bob()],
            }),
            hex: concat!(
                "02 ac02 0a64656174686d61746368 02 08 00 01 056172656e61 1000112233445566778899aabbccddeeff 32 01 02 ",
                alice_hex!(),
                " ",
                bob_hex!()
            ),
        },
        Vector {
            name: "ServerControl::Roster",
            value: ServerControl::Roster { players: vec![alice(), bob()] },
            hex: concat!("03 02 ", alice_hex!(), " ", bob_hex!()),
        },
        Vector { name: "ServerControl::Roster(empty)", value: ServerControl::Roster { players: vec![] }, hex: "03 00" },
        Vector { name: "ServerControl::Kill", value: ServerControl::Kill { killer: 0, victim: 1 }, hex: "04 00 01" },
        Vector {
            name: "ServerControl::MatchStarted",
            value: ServerControl::MatchStarted { match_id: MATCH, kill_target: 50 },
            hex: "05 1000112233445566778899aabbccddeeff 32",
        },
        Vector {
            name: "ServerControl::MatchEnded",
            value: ServerControl::MatchEnded(MatchEnded {
                match_id: MATCH,
                winner: 0,
                scoreboard: vec![
                    ScoreLine { id: 0, account: ALICE, name: "alice".into(), kills: 50, deaths: 7 },
                    ScoreLine { id: 1, account: BOB, name: "bob".into(), kills: 7, deaths: 50 },
                ],
                vote_seconds: 15,
            }),
            hex: concat!(
                "06 1000112233445566778899aabbccddeeff 00 02 ",
                "00 10a11ce000000040008000000000000001 05616c696365 32 07 ",
                "01 10b0b00000000040008000000000000002 03626f62 07 32 ",
                "0f"
            ),
        },
        Vector {
            name: "ServerControl::VoteState",
            value: ServerControl::VoteState(VoteState { yes: 3, no: 1, present: 5, needed: 3, remaining_ms: 12000 }),
            hex: "07 03 01 05 03 e05d",
        },
        Vector {
            name: "ServerControl::LobbyClosed",
            value: ServerControl::LobbyClosed { reason: "vote failed".into() },
            hex: "08 0b766f7465206661696c6564",
        },
        Vector {
            name: "ServerControl::Chat",
            value: ServerControl::Chat { from: 1, name: "bob".into(), text: "gg".into() },
            hex: "09 01 03626f62 026767",
        },
        Vector {
            name: "ServerControl::Kicked",
            value: ServerControl::Kicked { reason: "banned".into() },
            hex: "0a 0662616e6e6564",
        },
    ]
}

fn client_datagram() -> Vec<Vector<ClientDatagram>> {
    vec![Vector {
        name: "ClientDatagram::Input",
        value: ClientDatagram::Input(InputPacket {
            ack_tick: 1000,
            first_seq: 41,
            frames: vec![
                InputFrame {
                    buttons: Buttons(Buttons::UP | Buttons::RIGHT | Buttons::FIRE),
                    aim: 16384,
                    view_tick: 998,
                },
                InputFrame { buttons: Buttons(Buttons::UP | Buttons::RIGHT), aim: 16500, view_tick: 1000 },
            ]
            .into(),
        }),
        hex: "00 e807 29 02 19 0040 02 09 7440 00",
    }]
}

fn server_datagram() -> Vec<Vector<ServerDatagram>> {
    vec![
        Vector {
            name: "ServerDatagram::Snapshot",
            value: ServerDatagram::Snapshot(Snapshot {
                tick: 1000,
                ack_seq: 42,
                players: vec![
                    PlayerSnap { id: 0, x: 1600, y: 1600, aim: 0, health: 100, flags: flags::ALIVE | flags::PROTECTED },
                    PlayerSnap { id: 1, x: 24000, y: 9600, aim: 32768, health: 35, flags: flags::ALIVE | flags::FIRED },
                ],
            }),
            hex: "00 e807 2a 02 00 c00c c00c 00 64 03 01 c0bb01 804b 808002 23 05",
        },
        Vector {
            name: "ServerDatagram::Snapshot(empty)",
            value: ServerDatagram::Snapshot(Snapshot { tick: 1, ack_seq: 0, players: vec![] }),
            hex: "00 01 00 00",
        },
        Vector {
            name: "ServerDatagram::Delta",
            value: ServerDatagram::Delta(DeltaSnapshot {
                tick: 1001,
                base_age: 1,
                ack_seq: 43,
                players: vec![
                    PlayerDelta { id: 0, mask: fields::X | fields::Y, dx: 5, dy: -9, ..PlayerDelta::default() },
                    PlayerDelta {
                        id: 1,
                        mask: fields::AIM | fields::HEALTH | fields::FLAGS,
                        daim: -300,
                        health: 0,
                        flags: 0,
                        ..PlayerDelta::default()
                    },
                    PlayerDelta::gone(2),
                ],
            }),
            hex: "01 e907 01 2b 03 00 03 0a 11 01 1c d704 00 00 02 20",
        },
    ]
}

#[test]
fn client_control_vectors() {
    for v in client_control() {
        check(v.name, &v.value, v.hex, MAX_CLIENT_FRAME);
    }
}

#[test]
fn server_control_vectors() {
    for v in server_control() {
        check(v.name, &v.value, v.hex, MAX_SERVER_FRAME);
    }
}

#[test]
fn datagram_vectors() {
    for v in client_datagram() {
        check(v.name, &v.value, v.hex, MAX_INPUT_BYTES);
    }
    for v in server_datagram() {
        check(v.name, &v.value, v.hex, MAX_SNAPSHOT_BYTES);
    }
}

/// The vectors above cover every variant: adding a variant without a vector
/// fails to compile here.
#[test]
fn every_variant_has_a_vector() {
    let mut seen = [false; 5];
    for v in client_control() {
        let i = match v.value {
            ClientControl::Hello { .. } => 0,
            ClientControl::Join { .. } => 1,
            ClientControl::Chat { .. } => 2,
            ClientControl::Vote { .. } => 3,
            ClientControl::Leave => 4,
        };
        seen[i] = true;
    }
    assert!(seen.iter().all(|s| *s), "ClientControl variants without a vector: {seen:?}");
    let mut seen = [false; 11];
    for v in server_control() {
        let i = match v.value {
            ServerControl::Welcome { .. } => 0,
            ServerControl::Error { .. } => 1,
            ServerControl::LobbyJoined(_) => 2,
            ServerControl::Roster { .. } => 3,
            ServerControl::Kill { .. } => 4,
            ServerControl::MatchStarted { .. } => 5,
            ServerControl::MatchEnded(_) => 6,
            ServerControl::VoteState(_) => 7,
            ServerControl::LobbyClosed { .. } => 8,
            ServerControl::Chat { .. } => 9,
            ServerControl::Kicked { .. } => 10,
        };
        seen[i] = true;
    }
    assert!(seen.iter().all(|s| *s), "ServerControl variants without a vector: {seen:?}");
    for v in client_datagram() {
        let ClientDatagram::Input(_) = v.value;
    }
    let mut seen = [false; 2];
    for v in server_datagram() {
        seen[match v.value {
            ServerDatagram::Snapshot(_) => 0,
            ServerDatagram::Delta(_) => 1,
        }] = true;
    }
    assert!(seen.iter().all(|s| *s), "ServerDatagram variants without a vector: {seen:?}");
}

/// Error codes are the variant index; their names never change either.
const ERROR_CODES: [(u8, &str); 19] = [
    (0, "VERSION_MISMATCH"),
    (1, "PROTOCOL_VIOLATION"),
    (2, "BAD_TICKET"),
    (3, "TICKET_EXPIRED"),
    (4, "TICKET_REUSED"),
    (5, "WRONG_NODE"),
    (6, "NODE_AT_CAPACITY"),
    (7, "UNKNOWN_MODE"),
    (8, "LOBBY_NOT_FOUND"),
    (9, "LOBBY_FULL"),
    (10, "NOT_IN_LOBBY"),
    (11, "ALREADY_JOINED"),
    (12, "CHAT_DISABLED"),
    (13, "CHAT_RATE_LIMITED"),
    (14, "CHAT_INVALID"),
    (15, "NO_VOTE_OPEN"),
    (16, "TIMEOUT"),
    (17, "SHUTTING_DOWN"),
    (18, "INTERNAL"),
];

#[test]
fn every_error_code() {
    assert_eq!(ErrorCode::ALL.len(), ERROR_CODES.len(), "a new error code needs a golden entry");
    for (code, (index, name)) in ErrorCode::ALL.into_iter().zip(ERROR_CODES) {
        assert_eq!(code.as_str(), name);
        assert_eq!(code.to_string(), name);
        assert_eq!(codec::encode(&code, 1).unwrap(), [index], "{name}");
        assert_eq!(postcard::from_bytes::<ErrorCode>(&[index]).unwrap(), code);
        let msg = ServerControl::Error { code, message: String::new() };
        check(name, &msg, &format!("01 {index:02x} 00"), MAX_SERVER_FRAME);
    }
    // One past the last code is not a code.
    assert!(postcard::from_bytes::<ErrorCode>(&[ERROR_CODES.len() as u8]).is_err());
}

#[test]
fn every_lobby_state() {
    for (state, byte, name) in
        [(LobbyState::Playing, 0u8, "playing"), (LobbyState::Voting, 1, "voting"), (LobbyState::Closing, 2, "closing")]
    {
        assert_eq!(codec::encode(&state, 1).unwrap(), [byte]);
        assert_eq!(postcard::from_bytes::<LobbyState>(&[byte]).unwrap(), state);
        assert_eq!(state.as_str(), name);
    }
}

#[test]
fn framed_vectors() {
    let hello = ClientControl::Hello { version: 3, client: "loadgen/0.1".into() };
    let framed = codec::encode_frame(&hello, MAX_CLIENT_FRAME).unwrap();
    assert_eq!(to_hex(&framed), "000e00030b6c6f616467656e2f302e31");
    let (back, used) = codec::decode_frame::<ClientControl>(&framed, MAX_CLIENT_FRAME).unwrap().unwrap();
    assert_eq!((back, used), (hello, framed.len()));

    // Two frames back to back, read one at a time.
    let stream = from_hex("0003040001 0001 04".split_whitespace().collect::<String>().as_str()).unwrap();
    let (kill, used) = codec::decode_frame::<ServerControl>(&stream, MAX_SERVER_FRAME).unwrap().unwrap();
    assert_eq!(kill, ServerControl::Kill { killer: 0, victim: 1 });
    assert_eq!(used, 5);
    let (leave, used) = codec::decode_frame::<ClientControl>(&stream[5..], MAX_CLIENT_FRAME).unwrap().unwrap();
    assert_eq!((leave, used), (ClientControl::Leave, 3));
}

/// Bytes every decoder must refuse (and how), so other implementations can
/// match the node's behaviour.
#[test]
fn refused_vectors() {
    let bytes = |h: &str| from_hex(&compact(h)).unwrap();
    let malformed = |r: Result<ClientControl, CodecError>| matches!(r, Err(CodecError::Malformed(_)));
    // Unknown variant index.
    assert!(malformed(codec::decode(&bytes("05"), MAX_CLIENT_FRAME)));
    // Truncated: Hello whose string claims 11 bytes but has 2.
    assert!(malformed(codec::decode(&bytes("00 01 0b 6c6f"), MAX_CLIENT_FRAME)));
    // Invalid UTF-8 in a string.
    assert!(malformed(codec::decode(&bytes("02 01 ff"), MAX_CLIENT_FRAME)));
    // A bool other than 0 or 1.
    assert!(malformed(codec::decode(&bytes("03 02"), MAX_CLIENT_FRAME)));
    // Bytes after a complete message.
    assert_eq!(codec::decode::<ClientControl>(&bytes("04 00"), MAX_CLIENT_FRAME), Err(CodecError::Trailing));
    // A control character in the client name breaks a field limit.
    assert_eq!(
        codec::decode::<ClientControl>(&bytes("00 01 01 07"), MAX_CLIENT_FRAME),
        Err(CodecError::Invalid("client name"))
    );
    // A varint longer than its type (u16 version of three bytes above 0xffff).
    assert!(malformed(codec::decode(&bytes("00 ffff07 00"), MAX_CLIENT_FRAME)));

    // Frames: a length above the limit is refused from the header alone.
    assert_eq!(
        codec::decode_frame::<ClientControl>(&bytes("1001"), MAX_CLIENT_FRAME),
        Err(CodecError::TooLarge { len: 0x1001, max: MAX_CLIENT_FRAME })
    );
    assert!(matches!(
        codec::decode_frame::<ClientControl>(&bytes("0000"), MAX_CLIENT_FRAME),
        Err(CodecError::Malformed(_))
    ));
    // An incomplete frame waits for more bytes.
    assert_eq!(codec::decode_frame::<ClientControl>(&bytes("0003 0400"), MAX_CLIENT_FRAME), Ok(None));
    assert_eq!(codec::decode_frame::<ClientControl>(&bytes("00"), MAX_CLIENT_FRAME), Ok(None));

    // Inputs: no frames, sequence 0, unknown button bits, more than 8 frames.
    let input = |h: &str| codec::decode::<ClientDatagram>(&bytes(h), MAX_INPUT_BYTES);
    assert_eq!(input("00 00 01 00"), Err(CodecError::Invalid("input frame count")));
    assert_eq!(input("00 00 00 01 00000000"), Err(CodecError::Invalid("input sequence")));
    assert_eq!(input("00 00 01 01 20000000"), Err(CodecError::Invalid("input buttons")));
    assert!(matches!(input(&format!("00 00 01 09 {}", "00000000".repeat(9))), Err(CodecError::Malformed(_))));
    // Snapshots: more than 32 players.
    let snap = codec::decode::<ServerDatagram>(&bytes(&format!("00 01 00 21 {}", "00".repeat(33 * 9))), 2048);
    assert!(matches!(snap, Err(CodecError::Malformed(_))), "{snap:?}");
    // Snapshots and deltas list players in increasing id order; a delta's
    // base is 1 to 32 ticks back.
    let server = |h: &str| codec::decode::<ServerDatagram>(&bytes(h), MAX_SNAPSHOT_BYTES);
    assert_eq!(
        server("00 01 00 02 01 00 00 00 00 00 00 00 00 00 00 00"),
        Err(CodecError::Invalid("snapshot player order"))
    );
    assert_eq!(server("01 05 00 00 00"), Err(CodecError::Invalid("delta base age")));
    assert_eq!(server("01 05 21 00 00"), Err(CodecError::Invalid("delta base age")));
    assert_eq!(server("01 05 01 00 02 01 08 00 00 08 00"), Err(CodecError::Invalid("snapshot player order")));
    assert!(matches!(server("01 05 01 00 01 00 40"), Err(CodecError::Malformed(_))), "unknown field bit");
}

/// The limits GOLDEN.md states.
#[test]
fn documented_limits() {
    use protocol::control::*;
    use protocol::datagram::*;
    assert_eq!(protocol::PROTOCOL_VERSION, 3);
    assert_eq!(protocol::delta::MAX_BASE_AGE, 32);
    assert_eq!(protocol::ALPN, b"trespasser/1");
    assert_eq!(protocol::MAX_PLAYERS_PER_LOBBY, 32);
    assert_eq!((MAX_CLIENT_FRAME, MAX_SERVER_FRAME, codec::FRAME_HEADER), (4096, 16384, 2));
    assert_eq!((MAX_INPUT_BYTES, MAX_SNAPSHOT_BYTES, MAX_INPUT_FRAMES, DEFAULT_INPUT_REDUNDANCY), (128, 1024, 8, 4));
    assert_eq!(
        (MAX_CHAT_BYTES, MAX_NAME_BYTES, MAX_TICKET_BYTES, MAX_ID_BYTES, MAX_MESSAGE_BYTES),
        (200, 32, 2048, 32, 256)
    );
    assert_eq!((Buttons::UP, Buttons::DOWN, Buttons::LEFT, Buttons::RIGHT, Buttons::FIRE), (1, 2, 4, 8, 16));
    assert_eq!((flags::ALIVE, flags::PROTECTED, flags::FIRED, flags::AWAY), (1, 2, 4, 8));
    assert_eq!(protocol::movement::SUBUNITS, 16);
}

#[test]
fn quantization() {
    use protocol::datagram::{angle_to_wire, wire_to_angle};
    use protocol::movement::Pos;
    use std::f32::consts::{FRAC_PI_2, PI};
    assert_eq!(Pos::from_units(100, 600).to_wire(), (1600, 9600));
    assert_eq!(Pos::from_wire(24000, 9600).to_f32(), (1500.0, 600.0));
    assert_eq!(angle_to_wire(0.0), 0);
    assert_eq!(angle_to_wire(FRAC_PI_2), 16384);
    assert_eq!(angle_to_wire(PI), 32768);
    assert_eq!(angle_to_wire(-FRAC_PI_2), 49152);
    assert_eq!(wire_to_angle(16384), FRAC_PI_2);
}

fn claims() -> JoinClaims {
    JoinClaims {
        sub: ALICE,
        name: "alice".into(),
        cosmetics: Cosmetics { badge: Some("supporter".into()), name_color: None },
        target: JoinTarget::Mode("deathmatch".into()),
        aud: "local".into(),
        iat: 1_700_000_000,
        exp: 1_700_000_030,
        jti: Uuid::from_u128(0x5eed_0000_0000_4000_8000_0000_0000_0003),
    }
}

const CLAIMS_JSON: &str = concat!(
    r#"{"sub":"a11ce000-0000-4000-8000-000000000001","name":"alice","#,
    r#""cosmetics":{"badge":"supporter","name_color":null},"target":{"mode":"deathmatch"},"#,
    r#""aud":"local","iat":1700000000,"exp":1700000030,"jti":"5eed0000-0000-4000-8000-000000000003"}"#
);

/// HS256 over the claims above with key id `k1` and the 32-byte ASCII secret
/// `0123456789abcdef0123456789abcdef`, as another language's minter may
/// produce it (header `{"alg":"HS256","typ":"JWT","kid":"k1"}`).
const GOLDEN_TICKET: &str = concat!(
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.",
    "eyJzdWIiOiJhMTFjZTAwMC0wMDAwLTQwMDAtODAwMC0wMDAwMDAwMDAwMDEiLCJuYW1lIjoiYWxpY2UiLCJjb3NtZXRpY3MiOnsiYmFkZ2UiOiJzdXBwb3J0ZXIiLCJuYW1lX2NvbG9yIjpudWxsfSwidGFyZ2V0Ijp7Im1vZGUiOiJkZWF0aG1hdGNoIn0sImF1ZCI6ImxvY2FsIiwiaWF0IjoxNzAwMDAwMDAwLCJleHAiOjE3MDAwMDAwMzAsImp0aSI6IjVlZWQwMDAwLTAwMDAtNDAwMC04MDAwLTAwMDAwMDAwMDAwMyJ9.",
    "pgn2Sh4M8czyROr_C7wwf4MPaeXr3j7lmP6gdwK6Msw"
);

#[test]
fn join_claims_json_shape() {
    assert_eq!(serde_json::to_string(&claims()).unwrap(), CLAIMS_JSON);
    assert_eq!(serde_json::from_str::<JoinClaims>(CLAIMS_JSON).unwrap(), claims());
    let lobby = JoinTarget::Lobby(300);
    assert_eq!(serde_json::to_string(&lobby).unwrap(), r#"{"lobby":300}"#);
    assert_eq!(serde_json::from_str::<JoinTarget>(r#"{"lobby":300}"#).unwrap(), lobby);
    // Minters may omit cosmetics, order fields freely and add registered
    // claims the node does not use.
    let minimal = r#"{"jti":"5eed0000-0000-4000-8000-000000000003","exp":1700000030,"iat":1700000000,
        "aud":"local","target":{"mode":"deathmatch"},"name":"alice","nbf":1700000000,
        "sub":"a11ce000-0000-4000-8000-000000000001"}"#;
    let parsed: JoinClaims = serde_json::from_str(minimal).unwrap();
    assert_eq!(parsed, JoinClaims { cosmetics: Cosmetics::default(), ..claims() });
}

#[test]
fn golden_ticket_verifies() {
    let key = TicketKey::new("k1", b"0123456789abcdef0123456789abcdef".to_vec()).unwrap();
    let verify = |now| ticket::verify(GOLDEN_TICKET, std::slice::from_ref(&key), "local", now);
    // The window GOLDEN.md states: iat - 5 <= now < exp + 5.
    for now in [1_699_999_995, 1_700_000_010, 1_700_000_034] {
        assert_eq!(verify(now), Ok(claims()), "at {now}");
    }
    assert_eq!(verify(1_699_999_994), Err(ticket::TicketError::Invalid));
    assert_eq!(verify(1_700_000_035), Err(ticket::TicketError::Expired));
    assert_eq!(
        ticket::verify(GOLDEN_TICKET, &[key], "other", 1_700_000_010),
        Err(ticket::TicketError::WrongNode("local".into()))
    );
}

/// GOLDEN.md's vectors: every `#### name` heading followed by a ```hex block.
fn doc_vectors(doc: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut name = None;
    let mut hex: Option<String> = None;
    for line in doc.lines() {
        if let Some(n) = line.strip_prefix("#### `").and_then(|l| l.strip_suffix('`')) {
            name = Some(n.to_string());
        } else if line.trim() == "```hex" {
            hex = Some(String::new());
        } else if line.trim() == "```" && hex.is_some() {
            let n = name.take().expect("a ```hex block follows a #### `name` heading");
            assert!(out.insert(n.clone(), hex.take().unwrap()).is_none(), "{n} listed twice");
        } else if let Some(h) = hex.as_mut() {
            h.push_str(&compact(line));
        }
    }
    out
}

#[test]
fn golden_md_lists_every_vector() {
    let doc = include_str!("../GOLDEN.md");
    let mut want = BTreeMap::new();
    for v in client_control() {
        want.insert(v.name.to_string(), compact(v.hex));
    }
    for v in server_control() {
        want.insert(v.name.to_string(), compact(v.hex));
    }
    for v in client_datagram() {
        want.insert(v.name.to_string(), compact(v.hex));
    }
    for v in server_datagram() {
        want.insert(v.name.to_string(), compact(v.hex));
    }
    assert_eq!(doc_vectors(doc), want, "GOLDEN.md and tests/golden.rs disagree");
    for (index, name) in ERROR_CODES {
        let row = format!("| {index} | `{name}` |");
        assert!(doc.contains(&row), "GOLDEN.md lacks the error code row {row}");
    }
    assert!(doc.contains(CLAIMS_JSON), "GOLDEN.md lacks the claims JSON");
    assert!(doc.contains(GOLDEN_TICKET), "GOLDEN.md lacks the golden ticket");
}
