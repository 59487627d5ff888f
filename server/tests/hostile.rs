//! Bad input of every kind: tickets, versions, frames and datagrams. Each
//! gets a clear error or a silent, counted drop; the node keeps serving.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use protocol::codec::{self, MAX_CLIENT_FRAME};
use protocol::control::{ClientControl, ErrorCode, ServerControl};
use protocol::datagram::{Buttons, ClientDatagram, InputFrame, InputPacket};
use protocol::ticket::{JoinClaims, JoinTarget, TicketKey};

fn claims(t: &TestNode) -> JoinClaims {
    t.minter.claims(uuid::Uuid::new_v4(), "mallory", JoinTarget::Mode("deathmatch".into()))
}

#[tokio::test]
async fn bad_tickets_are_refused_with_clear_codes() {
    let t = TestNode::start(&[]).await;
    let mut c = t.connect().await;

    let forged = TicketKey::new(KEY_ID, vec![9u8; 32]).unwrap().mint(&claims(&t)).unwrap();
    expect_refused(c.join(&forged).await, ErrorCode::BadTicket).await;

    let mut old = claims(&t);
    old.iat -= 120;
    old.exp = old.iat + 30;
    expect_refused(c.join(&t.minter.sign(&old).unwrap()).await, ErrorCode::TicketExpired).await;

    let mut elsewhere = claims(&t);
    elsewhere.aud = "other-node".into();
    expect_refused(c.join(&t.minter.sign(&elsewhere).unwrap()).await, ErrorCode::WrongNode).await;

    expect_refused(c.join("not.a.ticket").await, ErrorCode::BadTicket).await;

    // A valid ticket works once; its replay is refused, even on another connection.
    let good = t.minter.sign(&claims(&t)).unwrap();
    let mut d = t.connect().await;
    d.join(&good).await.expect("first use");
    let mut e = t.connect().await;
    expect_refused(e.join(&good).await, ErrorCode::TicketReused).await;
    assert_eq!(t.metric("trespasser_join_refusals_total{code=\"TICKET_REUSED\"}").await, 1.0);
}

#[tokio::test]
async fn repeated_bad_joins_close_the_connection() {
    let t = TestNode::start(&[]).await;
    let mut c = t.connect().await;
    for _ in 0..4 {
        expect_refused(c.join("garbage").await, ErrorCode::BadTicket).await;
    }
    let last = c.join("garbage").await;
    assert!(last.is_err());
    tokio::time::timeout(WAIT, c.connection().closed()).await.expect("connection closed after too many failures");
}

/// Opens a raw control stream and sends `bytes` as-is, returning the node's
/// first frame (if any).
async fn raw_exchange(t: &TestNode, bytes: &[u8]) -> (quinn::Connection, Option<ServerControl>) {
    let conn = t.endpoint.connect(t.node.quic_addr, "localhost").unwrap().await.expect("quic handshake");
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(bytes).await.unwrap();
    let reply = tokio::time::timeout(WAIT, async {
        let mut header = [0u8; 2];
        recv.read_exact(&mut header).await.ok()?;
        let len = codec::frame_len(header, codec::MAX_SERVER_FRAME).ok()?;
        let mut body = vec![0u8; len];
        recv.read_exact(&mut body).await.ok()?;
        codec::decode::<ServerControl>(&body, codec::MAX_SERVER_FRAME).ok()
    })
    .await
    .expect("reply or close in time");
    (conn, reply)
}

#[tokio::test]
async fn a_version_mismatch_gets_a_clear_error_not_a_hang() {
    let t = TestNode::start(&[]).await;
    let hello =
        codec::encode_frame(&ClientControl::Hello { version: 99, client: "old".into() }, MAX_CLIENT_FRAME).unwrap();
    let (conn, reply) = raw_exchange(&t, &hello).await;
    match reply {
        Some(ServerControl::Error { code: ErrorCode::VersionMismatch, message }) => {
            assert!(
                message.contains("v99") && message.contains(&format!("v{}", protocol::PROTOCOL_VERSION)),
                "{message}"
            )
        }
        other => panic!("expected VersionMismatch, got {other:?}"),
    }
    tokio::time::timeout(WAIT, conn.closed()).await.expect("closed after the error");
}

#[tokio::test]
async fn malformed_and_oversized_control_frames_are_refused() {
    let t = TestNode::start(&[]).await;
    // Garbage body.
    let (_c, reply) = raw_exchange(&t, &[0, 3, 0xff, 0xff, 0xff]).await;
    assert!(matches!(reply, Some(ServerControl::Error { code: ErrorCode::ProtocolViolation, .. })), "{reply:?}");
    // A length prefix beyond the limit: refused before reading the body.
    let (_c, reply) = raw_exchange(&t, &[0xff, 0xff, 1, 2, 3]).await;
    assert!(matches!(reply, Some(ServerControl::Error { code: ErrorCode::ProtocolViolation, .. })), "{reply:?}");
    // A first frame that is not Hello.
    let join = codec::encode_frame(&ClientControl::Join { ticket: "x".into() }, MAX_CLIENT_FRAME).unwrap();
    let (_c, reply) = raw_exchange(&t, &join).await;
    assert!(matches!(reply, Some(ServerControl::Error { code: ErrorCode::ProtocolViolation, .. })), "{reply:?}");
    // Messages that need a lobby, before joining.
    let mut c = t.connect().await;
    c.chat("hi").await.unwrap();
    assert!(matches!(c.next_event().await.unwrap(), ServerControl::Error { code: ErrorCode::NotInLobby, .. }));
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_handshake_timeout() {
    let t = TestNode::start(&["--handshake-timeout", "300ms"]).await;
    let conn = t.endpoint.connect(t.node.quic_addr, "localhost").unwrap().await.expect("quic handshake");
    tokio::time::timeout(WAIT, conn.closed()).await.expect("closed by the node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversized_and_flooding_datagrams_are_dropped_without_harm() {
    let t = TestNode::start(&["--datagram-rate", "60", "--datagram-burst", "30"]).await;
    let (mut a, ja, _) = t.player("alice").await;
    let (mut b, _, _) = t.player("bob").await;

    // Garbage, an oversized datagram, packets violating field limits.
    a.send_raw_datagram(Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef])).unwrap();
    a.send_raw_datagram(Bytes::from(vec![0u8; 1000])).unwrap();
    let too_many =
        ClientDatagram::Input(InputPacket { ack_tick: 0, first_seq: 1, frames: vec![InputFrame::default(); 9].into() });
    a.send_raw_datagram(Bytes::from(postcard::to_stdvec(&too_many).unwrap())).unwrap();
    let zero_seq =
        ClientDatagram::Input(InputPacket { ack_tick: 0, first_seq: 0, frames: vec![InputFrame::default()].into() });
    a.send_raw_datagram(Bytes::from(postcard::to_stdvec(&zero_seq).unwrap())).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(t.metric("trespasser_datagrams_dropped_total{reason=\"malformed\"}").await >= 3.0);
    assert!(t.metric("trespasser_datagrams_dropped_total{reason=\"size\"}").await >= 1.0);
    // Far-ahead inputs are dropped too.
    let ahead = ClientDatagram::Input(InputPacket {
        ack_tick: 0,
        first_seq: 1_000_000,
        frames: vec![InputFrame::default()].into(),
    });
    // A flood well beyond the per-connection rate.
    for i in 0..2_000u32 {
        let p = ClientDatagram::Input(InputPacket {
            ack_tick: 0,
            first_seq: 1 + i,
            frames: vec![InputFrame { buttons: Buttons(Buttons::RIGHT), aim: 0, view_tick: 0 }].into(),
        });
        let _ = a.send_raw_datagram(Bytes::from(postcard::to_stdvec(&p).unwrap()));
        if i == 0 {
            let _ = a.send_raw_datagram(Bytes::from(postcard::to_stdvec(&ahead).unwrap()));
        }
        if i % 200 == 0 {
            tokio::task::yield_now().await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The node counted the flood's excess (the connection's inbox drops the
    // oldest of a burst before the lobby's rate limit sees the rest)...
    let excess = t.metric("trespasser_datagrams_dropped_total{reason=\"rate\"}").await
        + t.metric("trespasser_datagrams_dropped_total{reason=\"queue_full\"}").await;
    assert!(excess >= 1.0, "none of the flood was counted as dropped");
    // ...and both players are still in the game: snapshots keep coming and
    // Alice's connection still works for control messages.
    let s1 = next_snapshot(&mut b).await.tick;
    let s2 = loop {
        let s = next_snapshot(&mut b).await;
        if s.tick > s1 + 5 {
            break s;
        }
    };
    assert_eq!(s2.players.len(), 2);
    a.chat("still here").await.unwrap();
    wait_event(&mut b, |e| matches!(e, ServerControl::Chat { from, .. } if *from == ja.you)).await;
    assert!(a.closed_reason().is_none());
}
