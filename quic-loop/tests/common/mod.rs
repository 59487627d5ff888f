//! Helpers of the loopback tests: TLS pairs, echo servers, client loops.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quic_loop::{Admit, ClientConfig, Conn, ConnEvent, Driver, DriverConfig, LoopHandle, ServerConfig};
use tokio::sync::mpsc;

pub const ALPN: &[u8] = b"quic-loop-test";
pub const WAIT: Duration = Duration::from_secs(10);

pub fn tls_pair() -> (ServerConfig, ClientConfig, quinn::ClientConfig) {
    tls_with(&[ALPN], &[ALPN])
}

/// A server config offering `server_alpns` (and room for the streams
/// WebTransport opens) and client configs offering `client_alpns`.
pub fn tls_with(server_alpns: &[&[u8]], client_alpns: &[&[u8]]) -> (ServerConfig, ClientConfig, quinn::ClientConfig) {
    let (server, mut clients) = tls_set(server_alpns, &[client_alpns]);
    let (client, quinn_client) = clients.remove(0);
    (server, client, quinn_client)
}

/// One certificate: a server config offering `server_alpns`, and a client
/// config pair (quic-loop, quinn) per entry of `client_alpns`.
pub fn tls_set(
    server_alpns: &[&[u8]],
    client_alpns: &[&[&[u8]]],
) -> (ServerConfig, Vec<(ClientConfig, quinn::ClientConfig)>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    let der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![der.clone()], key)
        .unwrap();
    server.alpn_protocols = server_alpns.iter().map(|a| a.to_vec()).collect();
    let mut transport = quinn::TransportConfig::default();
    transport.max_concurrent_bidi_streams(2u8.into()).max_concurrent_uni_streams(3u8.into());
    let mut server_cfg =
        ServerConfig::with_crypto(Arc::new(quinn::crypto::rustls::QuicServerConfig::try_from(server).unwrap()));
    server_cfg.transport_config(Arc::new(transport));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).unwrap();
    let clients = client_alpns
        .iter()
        .map(|alpns| {
            let mut client = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[&rustls::version::TLS13])
                .unwrap()
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            client.alpn_protocols = alpns.iter().map(|a| a.to_vec()).collect();
            let crypto = Arc::new(quinn::crypto::rustls::QuicClientConfig::try_from(client).unwrap());
            (ClientConfig::new(crypto.clone()), quinn::ClientConfig::new(crypto))
        })
        .collect();
    (server_cfg, clients)
}

pub fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A server loop whose connections echo control bytes and datagrams.
pub fn echo_server(server: ServerConfig, admit: Option<Box<dyn FnMut(SocketAddr) -> Admit + Send>>) -> LoopHandle {
    echo_server_with(DriverConfig::new(loopback(), Some(Arc::new(server))), admit)
}

pub fn echo_server_with(config: DriverConfig, admit: Option<Box<dyn FnMut(SocketAddr) -> Admit + Send>>) -> LoopHandle {
    let (tx, mut rx) = mpsc::unbounded_channel::<Conn>();
    let driver = Driver::bind(config, admit, Some(tx)).unwrap();
    let handle = driver.handle();
    tokio::spawn(driver.run());
    tokio::spawn(async move {
        while let Some(conn) = rx.recv().await {
            tokio::spawn(echo(conn));
        }
    });
    handle
}

pub async fn echo(conn: Conn) {
    conn.wake_on_datagrams(true);
    let mut inbox = Vec::new();
    loop {
        match conn.next_event().await {
            ConnEvent::Control(bytes) => conn.send_control(bytes),
            ConnEvent::ControlFinished => conn.finish_control(),
            ConnEvent::Datagrams => {
                conn.recv_datagrams(&mut inbox, 64);
                for d in inbox.drain(..) {
                    let _ = conn.send_datagram(d);
                }
            }
            ConnEvent::Closed(_) => return,
            ConnEvent::Established | ConnEvent::ControlReset(_) => {}
        }
    }
}

pub fn client_loop() -> LoopHandle {
    let driver = Driver::bind(DriverConfig::new(loopback(), None), None, None).unwrap();
    let handle = driver.handle();
    tokio::spawn(driver.run());
    handle
}

/// Reads control bytes until `len` arrived (or the stream ended).
pub async fn read_control(conn: &Conn, len: usize) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let mut finished = false;
    while got.len() < len || !finished {
        match tokio::time::timeout(WAIT, conn.next_event()).await.expect("control bytes in time") {
            ConnEvent::Control(b) => got.extend_from_slice(&b),
            ConnEvent::ControlFinished => finished = true,
            ConnEvent::Closed(e) => panic!("closed while reading: {e}"),
            _ => {}
        }
        if got.len() >= len && !finished && len > 0 {
            // Not waiting for a finish the caller did not ask for.
            break;
        }
    }
    (got, finished)
}

pub async fn datagram_echo(conn: &Conn, payload: &'static [u8]) {
    conn.wake_on_datagrams(true);
    let mut inbox = Vec::new();
    // Datagrams may be lost; resend until one comes back.
    for _ in 0..50 {
        conn.send_datagram(Bytes::from_static(payload)).unwrap();
        let got = tokio::time::timeout(Duration::from_millis(200), async {
            loop {
                if let ConnEvent::Datagrams = conn.next_event().await {
                    conn.recv_datagrams(&mut inbox, 16);
                    return;
                }
            }
        })
        .await;
        if got.is_ok() {
            assert_eq!(&inbox[0][..], payload);
            return;
        }
    }
    panic!("no datagram came back");
}
