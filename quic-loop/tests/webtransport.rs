//! WebTransport sessions on the same port as native connections: loop
//! clients, and a stock quinn client speaking HTTP/3 by hand (as a browser
//! would, byte for byte).

mod common;

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use common::*;
use quic_loop::webtransport::{self as wt, Parsed};
use quic_loop::{Conn, ConnectionError, Driver, DriverConfig, LoopHandle};
use tokio::sync::mpsc;

const PATH: &str = "/play";

fn wt_server(alpns: &[&[u8]]) -> (LoopHandle, quic_loop::ClientConfig, quic_loop::ClientConfig, quinn::ClientConfig) {
    let (server, mut clients) = tls_set(alpns, &[&[ALPN], &[wt::ALPN]]);
    let (h3, h3_quinn) = clients.pop().unwrap();
    let (native, _) = clients.pop().unwrap();
    let mut config = DriverConfig::new(loopback(), Some(Arc::new(server)));
    config.webtransport_path = Some(PATH.to_string());
    (echo_server_with(config, None), native, h3, h3_quinn)
}

/// A WebTransport server whose accepted connections come out of the
/// receiver, for tests that play the server side themselves.
fn accepting_server(server_cfg: quic_loop::ServerConfig) -> (LoopHandle, mpsc::UnboundedReceiver<Conn>) {
    let mut config = DriverConfig::new(loopback(), Some(Arc::new(server_cfg)));
    config.webtransport_path = Some(PATH.to_string());
    let (tx, rx) = mpsc::unbounded_channel::<Conn>();
    let driver = Driver::bind(config, None, Some(tx)).unwrap();
    let server = driver.handle();
    tokio::spawn(driver.run());
    (server, rx)
}

fn url(server: &LoopHandle, path: &str) -> String {
    format!("https://localhost:{}{path}", server.local_addr().port())
}

#[tokio::test]
async fn native_and_webtransport_clients_share_one_port() {
    let (server, native_cfg, h3_cfg, _) = wt_server(&[ALPN, wt::ALPN]);
    let client = client_loop();
    let native = client.connect(native_cfg, server.local_addr(), "localhost");
    let web = client.connect_webtransport(h3_cfg, server.local_addr(), "localhost", &url(&server, PATH));
    for (conn, name) in [(&native, "native"), (&web, "webtransport")] {
        tokio::time::timeout(WAIT, conn.established()).await.unwrap().unwrap();
        let msg = format!("hello over {name}");
        conn.send_control(Bytes::from(msg.clone()));
        let (got, _) = read_control(conn, msg.len()).await;
        assert_eq!(got, msg.as_bytes());
        datagram_echo(conn, b"input").await;
    }
    assert!(web.is_webtransport() && !native.is_webtransport());
    // The session prefix is taken off the path's datagram size.
    assert!(web.max_datagram_size().unwrap() < native.max_datagram_size().unwrap());

    web.finish_control();
    let (_, finished) = read_control(&web, 0).await;
    assert!(finished, "the echo finished its side of the session's stream");
    web.close(0, b"done");
    native.close(0, b"done");
    tokio::time::timeout(WAIT, server.wait_idle()).await.unwrap();
}

#[tokio::test]
async fn a_server_close_reaches_the_client_with_its_code_and_reason() {
    let (server_cfg, mut clients) = tls_set(&[wt::ALPN], &[&[wt::ALPN]]);
    let (h3_cfg, _) = clients.pop().unwrap();
    let (server, mut rx) = accepting_server(server_cfg);
    let client = client_loop();
    let web = client.connect_webtransport(h3_cfg, server.local_addr(), "localhost", &url(&server, PATH));
    tokio::time::timeout(WAIT, web.established()).await.unwrap().unwrap();
    let accepted = tokio::time::timeout(WAIT, rx.recv()).await.unwrap().unwrap();
    accepted.established().await.unwrap();

    accepted.close(7, b"kicked by an admin");
    match tokio::time::timeout(WAIT, web.closed()).await.unwrap() {
        ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code.into_inner(), 7);
            assert_eq!(&close.reason[..], b"kicked by an admin");
        }
        other => panic!("unexpected close: {other:?}"),
    }
    tokio::time::timeout(WAIT, server.wait_idle()).await.unwrap();
}

/// A peer that streams junk on its HTTP/3 control stream is cut off
/// instead of costing the node reads forever.
#[tokio::test]
async fn a_flood_on_the_http3_control_stream_closes_the_connection() {
    let (server, _, _, h3_quinn) = wt_server(&[wt::ALPN]);
    let mut endpoint = quinn::Endpoint::client(loopback()).unwrap();
    endpoint.set_default_client_config(h3_quinn);
    let conn = endpoint.connect(server.local_addr(), "localhost").unwrap().await.unwrap();
    let mut control = conn.open_uni().await.unwrap();
    control.write_all(&wt::control_stream_opening()).await.unwrap();
    let junk = vec![0x21u8; 16 * 1024];
    let flood = async {
        for _ in 0..64 {
            if control.write_all(&junk).await.is_err() {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(WAIT, flood).await;
    assert_closed_with(&conn, wt::h3_code::EXCESSIVE_LOAD).await;
}

#[tokio::test]
async fn a_session_at_an_unknown_path_is_refused_with_404() {
    let (server, _, h3_cfg, _) = wt_server(&[ALPN, wt::ALPN]);
    let client = client_loop();
    let web = client.connect_webtransport(h3_cfg, server.local_addr(), "localhost", &url(&server, "/elsewhere"));
    let err = tokio::time::timeout(WAIT, web.established()).await.unwrap().unwrap_err();
    match err {
        ConnectionError::ApplicationClosed(close) => {
            let reason = String::from_utf8_lossy(&close.reason).to_string();
            assert!(reason.contains("404"), "{reason}");
        }
        other => panic!("unexpected: {other:?}"),
    }
}

#[tokio::test]
async fn a_server_without_webtransport_does_not_negotiate_h3() {
    let (server, _, h3_cfg, _) = wt_server(&[ALPN]);
    let client = client_loop();
    let web = client.connect_webtransport(h3_cfg, server.local_addr(), "localhost", &url(&server, PATH));
    let err = tokio::time::timeout(WAIT, web.established()).await.unwrap().unwrap_err();
    assert!(matches!(err, ConnectionError::ConnectionClosed(_)), "no application protocol in common: {err:?}");
}

/// A stock quinn client that opened a WebTransport session by hand, the
/// way a browser does, and the server's side of the session. The HTTP/3
/// control streams are held: ending one is a connection error.
struct HandMade {
    _server: LoopHandle,
    _endpoint: quinn::Endpoint,
    _control: (quinn::SendStream, quinn::RecvStream),
    conn: quinn::Connection,
    connect_send: quinn::SendStream,
    connect_recv: quinn::RecvStream,
    accepted: Conn,
}

async fn hand_made_session() -> HandMade {
    let (server_cfg, _, h3_quinn) = tls_with(&[wt::ALPN], &[wt::ALPN]);
    let (server, mut rx) = accepting_server(server_cfg);

    let mut endpoint = quinn::Endpoint::client(loopback()).unwrap();
    endpoint.set_default_client_config(h3_quinn);
    let conn = endpoint.connect(server.local_addr(), "localhost").unwrap().await.unwrap();
    let mut control = conn.open_uni().await.unwrap();
    control.write_all(&wt::control_stream_opening()).await.unwrap();
    let (mut connect_send, mut connect_recv) = conn.open_bi().await.unwrap();
    connect_send.write_all(&wt::connect_request(&url(&server, PATH)).unwrap()).await.unwrap();
    let mut response = BytesMut::new();
    loop {
        let chunk = tokio::time::timeout(WAIT, connect_recv.read_chunk(1024, true)).await.unwrap().unwrap();
        response.extend_from_slice(&chunk.expect("a response").bytes);
        if let Parsed::Done((), _) = wt::parse_connect_response(&response).unwrap() {
            break;
        }
    }
    // The server's HTTP/3 control stream opens with SETTINGS.
    let mut server_control = tokio::time::timeout(WAIT, conn.accept_uni()).await.unwrap().unwrap();
    let mut settings = vec![0u8; wt::control_stream_opening().len()];
    server_control.read_exact(&mut settings).await.unwrap();

    let accepted = tokio::time::timeout(WAIT, rx.recv()).await.unwrap().unwrap();
    tokio::time::timeout(WAIT, accepted.established()).await.unwrap().unwrap();
    HandMade {
        _server: server,
        _endpoint: endpoint,
        _control: (control, server_control),
        conn,
        connect_send,
        connect_recv,
        accepted,
    }
}

/// Reads the CONNECT stream until a CLOSE_WEBTRANSPORT_SESSION capsule.
async fn read_close_capsule(connect_recv: &mut quinn::RecvStream) -> (u32, String) {
    let (mut buf, mut capsules) = (BytesMut::new(), BytesMut::new());
    loop {
        if let Some(wt::SessionMessage::Close { code, reason }) =
            wt::read_session_frames(&mut buf, &mut capsules).unwrap()
        {
            return (code, reason);
        }
        let chunk = tokio::time::timeout(WAIT, connect_recv.read_chunk(1024, true)).await.unwrap().unwrap();
        buf.extend_from_slice(&chunk.expect("the capsule before the stream ends").bytes);
    }
}

/// Waits for the server's CONNECTION_CLOSE with HTTP/3 error `code`.
async fn assert_closed_with(conn: &quinn::Connection, code: u32) {
    match tokio::time::timeout(WAIT, conn.closed()).await.unwrap() {
        quinn::ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code.into_inner(), u64::from(code));
        }
        other => panic!("unexpected close: {other:?}"),
    }
}

/// The server's close reaches the page only when the browser's HTTP/3
/// layer has handed the capsule on, which can be after its QUIC layer
/// acknowledged it and after it ended its side of the CONNECT stream: the
/// connection stays up a grace period, then closes cleanly.
#[tokio::test]
async fn a_server_close_leaves_the_peer_time_to_hand_it_to_the_page() {
    let mut s = hand_made_session().await;
    s.accepted.close(1, b"version_mismatch");
    assert_eq!(read_close_capsule(&mut s.connect_recv).await, (1, "version_mismatch".to_string()));
    // What a browser answers: the end of its side of the CONNECT stream.
    s.connect_send.finish().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(s.conn.close_reason().is_none(), "closed under the peer: {:?}", s.conn.close_reason());
    assert_closed_with(&s.conn, wt::h3_code::NO_ERROR).await;
}

/// A peer that never answers the close does not hold the connection open.
#[tokio::test]
async fn a_server_close_ends_the_connection_when_the_peer_never_answers() {
    let mut s = hand_made_session().await;
    s.accepted.close(1, b"kicked");
    assert_eq!(read_close_capsule(&mut s.connect_recv).await, (1, "kicked".to_string()));
    assert_closed_with(&s.conn, wt::h3_code::NO_ERROR).await;
}

/// What a browser does, spelled out over stock quinn: our control stream
/// with SETTINGS, the extended CONNECT, a WebTransport stream and prefixed
/// datagrams, then a CLOSE_WEBTRANSPORT_SESSION capsule.
#[tokio::test]
async fn a_hand_made_http3_client_opens_plays_and_closes_a_session() {
    let mut s = hand_made_session().await;
    let (conn, accepted, connect_send) = (&s.conn, &s.accepted, &mut s.connect_send);
    assert!(accepted.is_webtransport());

    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let mut first = BytesMut::from(&wt::stream_header(0)[..]);
    first.extend_from_slice(b"ping");
    send.write_all(&first).await.unwrap();
    let (mut got, mut inbox) = (Vec::new(), Vec::new());
    while got.len() < 4 {
        match tokio::time::timeout(WAIT, accepted.next_event()).await.unwrap() {
            quic_loop::ConnEvent::Control(b) => got.extend_from_slice(&b),
            quic_loop::ConnEvent::Established => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(got, b"ping", "the stream header is not the application's");
    accepted.send_control(Bytes::from_static(b"pong"));
    let mut pong = [0u8; 4];
    tokio::time::timeout(WAIT, recv.read_exact(&mut pong)).await.unwrap().unwrap();
    assert_eq!(&pong, b"pong", "the server's answer has no header");

    conn.send_datagram(wt::prefix_datagram(&wt::datagram_prefix(0), b"input")).unwrap();
    conn.send_datagram(Bytes::from_static(b"\x01not ours")).unwrap();
    accepted.send_datagram(Bytes::from_static(b"snapshot")).unwrap();
    let d = tokio::time::timeout(WAIT, conn.read_datagram()).await.unwrap().unwrap();
    assert_eq!(&d[..], b"\x00snapshot");
    tokio::time::timeout(WAIT, async {
        while accepted.recv_datagrams(&mut inbox, 8) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    assert_eq!(&inbox[0][..], b"input");

    connect_send.write_all(&wt::close_session_frame(42, "player left")).await.unwrap();
    let reason = tokio::time::timeout(WAIT, accepted.closed()).await.unwrap();
    match reason {
        ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code.into_inner(), 42);
            assert_eq!(&close.reason[..], b"player left");
        }
        other => panic!("unexpected close: {other:?}"),
    }
    assert_eq!(accepted.recv_datagrams(&mut inbox, 8), 0, "the stray session's datagram was dropped");
}
