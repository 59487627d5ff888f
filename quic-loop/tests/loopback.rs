//! Real sockets on loopback: quic-loop servers against quic-loop clients and
//! against stock quinn clients.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use quic_loop::{Admit, Conn, ConnEvent, ConnectionError, Driver, DriverConfig, LoopHandle};
use tokio::sync::mpsc;

#[tokio::test]
async fn control_bytes_and_datagrams_round_trip_between_two_loops() {
    let (server, client_cfg, _) = tls_pair();
    let server = echo_server(server, None);
    let client = client_loop();
    let conn = client.connect(client_cfg, server.local_addr(), "localhost");
    tokio::time::timeout(WAIT, conn.established()).await.unwrap().unwrap();
    assert!(conn.max_datagram_size().unwrap() >= 1000);

    conn.send_control(Bytes::from_static(b"hello "));
    conn.send_control(Bytes::from_static(b"world"));
    let (got, _) = read_control(&conn, 11).await;
    assert_eq!(got, b"hello world");

    datagram_echo(&conn, b"input").await;

    // Finishing the stream comes back as a finish from the echo.
    conn.finish_control();
    let (_, finished) = read_control(&conn, 0).await;
    assert!(finished);
    tokio::time::timeout(WAIT, conn.control_flushed()).await.expect("the finish is acknowledged");
    assert!(server.stats().packets_in.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

#[tokio::test]
async fn a_large_control_transfer_survives_flow_control_and_a_slow_reader() {
    let (server, client_cfg, _) = tls_pair();
    let server = echo_server(server, None);
    let client = client_loop();
    let conn = client.connect(client_cfg, server.local_addr(), "localhost");
    conn.established().await.unwrap();
    let payload: Vec<u8> = (0..600_000u32).map(|i| (i % 251) as u8).collect();
    for chunk in payload.chunks(7_000) {
        conn.send_control(Bytes::copy_from_slice(chunk));
    }
    // Let the echo fill our inbound buffer before reading anything.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (got, _) = read_control(&conn, payload.len()).await;
    assert_eq!(got.len(), payload.len());
    assert!(got == payload, "bytes arrive in order and intact");
}

/// A server loop and a client loop with one established connection: the
/// client's end and the server's.
async fn connected_pair() -> (LoopHandle, LoopHandle, Conn, Conn) {
    let (server_cfg, client_cfg, _) = tls_pair();
    let (tx, mut rx) = mpsc::unbounded_channel::<Conn>();
    let driver = Driver::bind(DriverConfig::new(loopback(), Some(Arc::new(server_cfg))), None, Some(tx)).unwrap();
    let server = driver.handle();
    tokio::spawn(driver.run());
    let client = client_loop();
    let conn = client.connect(client_cfg, server.local_addr(), "localhost");
    conn.established().await.unwrap();
    let accepted = rx.recv().await.unwrap();
    (server, client, conn, accepted)
}

#[tokio::test]
async fn closes_reach_the_peer_with_their_code_and_reason() {
    let (server, client, conn, accepted) = connected_pair().await;
    assert_eq!(accepted.remote_address(), client.local_addr());

    conn.close(7, b"bye");
    assert!(matches!(conn.close_reason(), None | Some(ConnectionError::LocallyClosed)));
    let reason = tokio::time::timeout(WAIT, accepted.closed()).await.unwrap();
    match reason {
        ConnectionError::ApplicationClosed(close) => {
            assert_eq!(close.error_code.into_inner(), 7);
            assert_eq!(&close.reason[..], b"bye");
        }
        other => panic!("unexpected close: {other:?}"),
    }
    assert!(accepted.send_datagram(Bytes::from_static(b"late")).is_err());
    // Both loops forget the connection once it has drained.
    tokio::time::timeout(WAIT, server.wait_idle()).await.unwrap();
    tokio::time::timeout(WAIT, client.wait_idle()).await.unwrap();
}

#[tokio::test]
async fn refused_attempts_fail_the_handshake() {
    let (server, client_cfg, _) = tls_pair();
    let server = echo_server(server, Some(Box::new(|_| Admit::Refuse)));
    let client = client_loop();
    let conn = client.connect(client_cfg, server.local_addr(), "localhost");
    let err = tokio::time::timeout(WAIT, conn.established()).await.unwrap().unwrap_err();
    assert!(matches!(err, ConnectionError::ConnectionClosed(_)), "{err:?}");
}

#[tokio::test]
async fn two_hundred_connections_share_one_loop_and_close_all_drains_them() {
    let (server, client_cfg, _) = tls_pair();
    let server = echo_server(server, None);
    let client = client_loop();
    let mut conns = Vec::new();
    for _ in 0..200 {
        conns.push(client.connect(client_cfg.clone(), server.local_addr(), "localhost"));
    }
    let mut tasks = Vec::new();
    for (i, conn) in conns.iter().cloned().enumerate() {
        tasks.push(tokio::spawn(async move {
            conn.established().await.unwrap();
            let msg = format!("conn {i}");
            conn.send_control(Bytes::from(msg.clone()));
            let (got, _) = read_control(&conn, msg.len()).await;
            assert_eq!(got, msg.as_bytes());
        }));
    }
    for t in tasks {
        tokio::time::timeout(WAIT, t).await.unwrap().unwrap();
    }
    assert_eq!(server.connections(), 200);
    server.close(0, b"shutting down");
    tokio::time::timeout(WAIT, server.wait_idle()).await.unwrap();
    for conn in &conns {
        let reason = tokio::time::timeout(WAIT, conn.closed()).await.unwrap();
        assert!(matches!(reason, ConnectionError::ApplicationClosed(_)), "{reason:?}");
    }
}

#[tokio::test]
async fn a_stock_quinn_client_talks_to_a_loop_server() {
    let (server, _, quinn_client) = tls_pair();
    let server = echo_server(server, None);
    let mut endpoint = quinn::Endpoint::client(loopback()).unwrap();
    endpoint.set_default_client_config(quinn_client);
    let conn = endpoint.connect(server.local_addr(), "localhost").unwrap().await.unwrap();
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(b"over quinn").await.unwrap();
    let mut buf = [0u8; 10];
    tokio::time::timeout(WAIT, recv.read_exact(&mut buf)).await.unwrap().unwrap();
    assert_eq!(&buf, b"over quinn");
    let mut back = None;
    for _ in 0..50 {
        conn.send_datagram(Bytes::from_static(b"dgram")).unwrap();
        if let Ok(Ok(d)) = tokio::time::timeout(Duration::from_millis(200), conn.read_datagram()).await {
            back = Some(d);
            break;
        }
    }
    assert_eq!(&back.expect("an echoed datagram")[..], b"dgram");
    send.finish().unwrap();
    let rest = tokio::time::timeout(WAIT, recv.read_to_end(1024)).await.unwrap().unwrap();
    assert!(rest.is_empty());
    conn.close(0u32.into(), b"done");
    tokio::time::timeout(WAIT, server.wait_idle()).await.unwrap();
}

/// A lobby queues a snapshot and wakes a session task that queues a kill
/// message for the same connection: both leave in one packet, because the
/// loop lets the other woken tasks run before it flushes.
#[tokio::test]
async fn work_queued_by_tasks_woken_together_leaves_in_one_packet() {
    use std::sync::atomic::Ordering::Relaxed;
    let (server, _client, conn, accepted) = connected_pair().await;
    conn.wake_on_datagrams(true);
    // Open the control stream (the client's first bytes) and let the
    // acknowledgements settle.
    conn.send_control(Bytes::from_static(b"hello"));
    assert_eq!(read_control(&accepted, 5).await.0, b"hello");
    tokio::time::sleep(Duration::from_millis(300)).await;

    // A round can pick up a packet of the connection's own (a loss probe
    // when the test machine is slow to acknowledge), so it gets a few
    // tries; with the two flushed apart every round counts two or more.
    let mut counts = Vec::new();
    for round in 0..5u8 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent_before = server.stats().packets_out.load(Relaxed);
        let (wake_session, mut woken) = mpsc::unbounded_channel::<()>();
        let session = accepted.clone();
        let message = Bytes::from(format!("kill feed {round}"));
        let expected = message.clone();
        tokio::spawn(async move {
            woken.recv().await;
            session.send_control(message);
        });
        tokio::task::yield_now().await;
        accepted.send_datagram(Bytes::from_static(b"snapshot")).unwrap();
        wake_session.send(()).unwrap();

        let (mut got_datagram, mut got_control) = (false, Vec::new());
        let mut inbox = Vec::new();
        while !got_datagram || got_control.len() < expected.len() {
            match tokio::time::timeout(WAIT, conn.next_event()).await.expect("both in time") {
                ConnEvent::Datagrams => got_datagram |= conn.recv_datagrams(&mut inbox, 4) > 0,
                ConnEvent::Control(b) => got_control.extend_from_slice(&b),
                ConnEvent::Closed(e) => panic!("closed: {e}"),
                _ => {}
            }
        }
        assert_eq!(&got_control[..], &expected[..]);
        // Let any packet of its own (an acknowledgement) have left, too.
        tokio::time::sleep(Duration::from_millis(100)).await;
        counts.push(server.stats().packets_out.load(Relaxed) - sent_before);
        if counts.last() == Some(&1) {
            return;
        }
    }
    panic!("the datagram and the control bytes never shared a packet: packets per round {counts:?}");
}
