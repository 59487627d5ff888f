//! Shared harness for the node's end-to-end tests: a real node on loopback
//! (QUIC and HTTP on ephemeral ports), real clients from the `loadgen`
//! library, and tickets minted with the node's key.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use loadgen::{ClientConfig, ClientError, DevTicketMinter, GameClient, Trust};
use protocol::control::{ErrorCode, LobbyJoined, ServerControl};
use protocol::datagram::{Snapshot, angle_to_wire};
use protocol::movement::Pos;
use protocol::ticket::JoinTarget;
use protocol::{AccountId, PlayerId};
use server::config::{Cli, Command};
use server::node::{Node, NodeOptions, Role};
use server::results::MemorySink;

pub const KEY_HEX: &str = "7465737420746963686574206b6579207468617420697320333220627974657321";
pub const KEY_ID: &str = "test";
pub const WAIT: Duration = Duration::from_secs(10);

pub struct TestNode {
    pub node: Node,
    pub minter: DevTicketMinter,
    pub endpoint: quinn::Endpoint,
    pub sink: Arc<MemorySink>,
    pub data_dir: PathBuf,
}

pub fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

impl TestNode {
    /// Starts a node with test defaults plus `extra` flags.
    pub async fn start(extra: &[&str]) -> TestNode {
        let data_dir = std::env::temp_dir().join(format!("trespasser-test-{}", uuid::Uuid::new_v4()));
        let dir = data_dir.to_string_lossy().to_string();
        let mut argv = vec![
            "trespasser",
            "serve",
            "--quic-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--data-dir",
            &dir,
            "--ticket-key",
            KEY_HEX,
            "--ticket-key-id",
            KEY_ID,
            "--node-id",
            "test-node",
        ];
        argv.extend_from_slice(extra);
        let Some(Command::Serve(serve)) = Cli::parse_from(argv).command else { unreachable!() };
        let args = serve.node;
        let sink = Arc::new(MemorySink::default());
        let node =
            Node::start(&args, Role::Embedded, NodeOptions::standalone(sink.clone())).await.expect("node starts");
        let secret = protocol::defaults::from_hex(KEY_HEX).expect("hex");
        let minter = DevTicketMinter::new(protocol::ticket::TicketKey::new(KEY_ID, secret).expect("key"), "test-node");
        let endpoint = loadgen::client_endpoint(&Trust::Cert(node.cert_der.clone())).expect("client endpoint");
        TestNode { node, minter, endpoint, sink, data_dir }
    }

    pub fn http(&self) -> std::net::SocketAddr {
        self.node.http_addr.expect("standalone nodes serve HTTP")
    }

    pub fn config(&self) -> ClientConfig {
        ClientConfig::new(self.node.quic_addr, Trust::Cert(self.node.cert_der.clone()))
    }

    pub async fn connect(&self) -> GameClient {
        GameClient::connect_with(&self.endpoint, &self.config()).await.expect("connect")
    }

    pub fn ticket(&self, account: AccountId, name: &str) -> String {
        self.minter.mint(account, name, JoinTarget::Mode("deathmatch".into())).expect("mint")
    }

    /// Connects and joins a deathmatch lobby as a new account.
    pub async fn player(&self, name: &str) -> (GameClient, LobbyJoined, AccountId) {
        let account = uuid::Uuid::new_v4();
        let mut c = self.connect().await;
        let joined = c.join(&self.ticket(account, name)).await.expect("join");
        (c, joined, account)
    }

    /// Reads the node's /metrics and returns the value of one sample line.
    pub async fn metric(&self, sample: &str) -> f64 {
        let body = http_get(self.http(), "/metrics").await;
        body.lines()
            .find_map(|l| l.strip_prefix(sample).and_then(|rest| rest.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("no metric {sample} in:\n{body}"))
            .trim()
            .parse()
            .expect("metric value")
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A minimal HTTP/1.1 GET (the tests need no HTTP client crate).
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("http connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.unwrap();
    buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
}

/// Waits for the first event matching `pred`, skipping others.
pub async fn wait_event<F: FnMut(&ServerControl) -> bool>(c: &mut GameClient, mut pred: F) -> ServerControl {
    tokio::time::timeout(WAIT, async {
        loop {
            let ev = c.next_event().await.expect("event");
            if pred(&ev) {
                return ev;
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
}

pub async fn expect_refused(result: Result<LobbyJoined, ClientError>, code: ErrorCode) {
    match result {
        Err(ClientError::Server { code: got, message }) => {
            assert_eq!(got, code, "message: {message}");
            assert!(!message.is_empty());
        }
        other => panic!("expected {code}, got {other:?}"),
    }
}

pub async fn next_snapshot(c: &mut GameClient) -> Snapshot {
    tokio::time::timeout(WAIT, c.next_snapshot()).await.expect("snapshot in time").expect("snapshot")
}

pub fn pos(s: &Snapshot, id: PlayerId) -> Option<Pos> {
    s.players.iter().find(|p| p.id == id).map(|p| Pos::from_wire(p.x, p.y))
}

/// The aim from `from` towards `to`, in wire units.
pub fn aim_at(from: Pos, to: Pos) -> u16 {
    angle_to_wire(((to.y - from.y) as f32).atan2((to.x - from.x) as f32))
}
