//! The client library and the `loadgen` binary against a real game node
//! (`trespasser serve`) over QUIC on loopback.
//!
//! The node binary comes from `TRESPASSER_BIN`, or from the same target dir
//! as `loadgen` (`cargo test --workspace` builds both). When neither exists
//! the tests say so and pass, so `cargo test -p loadgen` alone still works.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use loadgen::{ClientConfig, ClientError, DevTicketMinter, GameClient, Trust, client_endpoint_for};
use protocol::control::{ErrorCode, LobbyState, ServerControl};
use protocol::datagram::{Buttons, Snapshot, flags};
use protocol::ticket::JoinTarget;

/// A node process in its own data dir, killed when dropped.
struct Node {
    child: Child,
    quic: SocketAddr,
    data_dir: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
}

impl Node {
    /// Starts a node, or returns `None` when no node binary is available.
    fn start(extra_args: &[&str]) -> Option<Node> {
        let bin = node_binary()?;
        let data_dir = std::env::temp_dir().join(format!("loadgen-e2e-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&data_dir).unwrap();
        let mut child = Command::new(&bin)
            .arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--quic-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            .args(extra_args)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));

        // Both pipes are drained for the node's whole life: a full pipe
        // would block its logging and with it the node.
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = mpsc::channel();
        for (pipe, ready) in [
            (Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>, Some(ready_tx)),
            (Box::new(child.stderr.take().unwrap()), None),
        ] {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Some(tx) = &ready
                        && let Some(addr) = quic_addr_in(&line)
                    {
                        let _ = tx.send(addr);
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let Ok(quic) = ready_rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!("the node did not report its QUIC address; its output:\n{}", log.lock().unwrap().join("\n"));
        };
        Some(Node { child, quic, data_dir, log })
    }

    fn trust(&self) -> Trust {
        Trust::from_data_dir(&self.data_dir).unwrap()
    }

    fn client_config(&self) -> ClientConfig {
        ClientConfig::new(self.quic, self.trust())
    }

    fn minter(&self) -> DevTicketMinter {
        DevTicketMinter::from_data_dir(&self.data_dir, protocol::defaults::DEFAULT_NODE_ID).unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- node output ---\n{}", self.log.lock().unwrap().join("\n"));
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn node_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("TRESPASSER_BIN") {
        return Some(bin.into());
    }
    let beside =
        Path::new(env!("CARGO_BIN_EXE_loadgen")).with_file_name(format!("trespasser{}", std::env::consts::EXE_SUFFIX));
    if beside.exists() {
        return Some(beside);
    }
    eprintln!("skipping: no node binary (set TRESPASSER_BIN or build the workspace: cargo build --workspace)");
    None
}

/// The address in the node's "ready: QUIC <addr> (udp)" line.
fn quic_addr_in(line: &str) -> Option<SocketAddr> {
    let rest = &line[line.find("QUIC ")? + "QUIC ".len()..];
    rest.split_whitespace().next()?.trim_end_matches(',').parse().ok()
}

fn mode() -> JoinTarget {
    JoinTarget::Mode(protocol::defaults::DEFAULT_MODE.into())
}

/// Sends inputs at 20 Hz until `done` accepts a snapshot, or fails after `limit`.
async fn play_until(
    client: &mut GameClient,
    buttons: Buttons,
    limit: Duration,
    mut done: impl FnMut(&Snapshot) -> bool,
) -> Snapshot {
    let deadline = Instant::now() + limit;
    let mut ticker = tokio::time::interval(Duration::from_millis(50));
    loop {
        ticker.tick().await;
        client.send_input(buttons, 0).unwrap();
        if let Some(snap) = client.latest_snapshot()
            && done(&snap)
        {
            return snap;
        }
        assert!(Instant::now() < deadline, "condition not reached within {limit:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_joins_plays_and_leaves() {
    let Some(node) = Node::start(&[]) else { return };
    let mut client = GameClient::connect(&node.client_config()).await.unwrap();
    assert_eq!(client.welcome().version, protocol::PROTOCOL_VERSION);
    assert_eq!(client.welcome().node_id, "local");
    assert!(client.welcome().tick_rate >= 20);

    let ticket = node.minter().mint(uuid::Uuid::new_v4(), "solo", mode()).unwrap();
    let joined = client.join(&ticket).await.unwrap();
    assert_eq!(joined.lobby.mode, "deathmatch");
    assert_eq!(joined.lobby.state, LobbyState::Playing);
    assert!(!joined.resumed);
    assert!(joined.roster.iter().any(|p| p.id == joined.you && p.name == "solo"));

    // Inputs are applied and acknowledged; our player appears alive.
    let me = joined.you;
    let snap = play_until(&mut client, Buttons(Buttons::RIGHT), Duration::from_secs(10), |s| {
        s.ack_seq >= 10 && s.players.iter().any(|p| p.id == me && p.flags & flags::ALIVE != 0)
    })
    .await;
    assert!(snap.tick > 0);
    let stats = client.stats();
    assert!(stats.inputs_sent >= 10 && stats.snapshots_received >= 1, "{stats:?}");
    assert!(stats.last_ack_seq >= 10);
    assert_eq!(stats.datagrams_malformed, 0);
    let rtts = client.take_rtt_samples();
    assert!(!rtts.is_empty() && rtts.iter().all(|d| *d < Duration::from_secs(5)));
    assert!(client.newest_tick().unwrap() >= snap.tick);
    let next = tokio::time::timeout(Duration::from_secs(5), client.next_snapshot()).await.unwrap().unwrap();
    assert!(next.tick > snap.tick);

    client.leave().await.unwrap();
    client.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_on_one_endpoint_share_a_lobby_and_see_each_other_move() {
    let Some(node) = Node::start(&[]) else { return };
    // The insecure trust also reaches the node (the handshake still verifies
    // signatures, just not the certificate).
    let endpoint = client_endpoint_for(&Trust::Insecure, node.quic).unwrap();
    let cfg = ClientConfig::new(node.quic, Trust::Insecure);
    let minter = node.minter();
    let mut a = GameClient::connect_with(&endpoint, &cfg).await.unwrap();
    let mut b = GameClient::connect_with(&endpoint, &cfg).await.unwrap();
    let ja = a.join(&minter.mint(uuid::Uuid::new_v4(), "alice", mode()).unwrap()).await.unwrap();
    let jb = b.join(&minter.mint(uuid::Uuid::new_v4(), "bob", mode()).unwrap()).await.unwrap();
    assert_eq!(ja.lobby.id, jb.lobby.id, "matchmaking fills the first lobby");
    assert_ne!(ja.you, jb.you);

    // A hears about B through a roster update.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline.into(), a.next_event()).await.unwrap().unwrap();
        if let ServerControl::Roster { players } = event
            && players.iter().any(|p| p.id == jb.you)
        {
            break;
        }
    }

    let alice = ja.you;
    let start = play_until(&mut b, Buttons(0), Duration::from_secs(10), |s| {
        s.players.iter().any(|p| p.id == alice && p.flags & flags::ALIVE != 0)
    })
    .await;
    let x0 = start.players.iter().find(|p| p.id == alice).unwrap().x;
    let y0 = start.players.iter().find(|p| p.id == alice).unwrap().y;
    // A walks; B sees A's position change.
    let mut ticker = tokio::time::interval(Duration::from_millis(50));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen_moving = false;
    while Instant::now() < deadline && !seen_moving {
        ticker.tick().await;
        a.send_input(Buttons(Buttons::DOWN | Buttons::RIGHT), 0).unwrap();
        b.send_input(Buttons(0), 0).unwrap();
        if let Some(s) = b.latest_snapshot()
            && let Some(p) = s.players.iter().find(|p| p.id == alice)
        {
            seen_moving = (p.x, p.y) != (x0, y0);
        }
    }
    assert!(seen_moving, "B never saw A move");
    a.close();
    assert!(matches!(a.send_input(Buttons(0), 0), Err(ClientError::Closed(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_tickets_come_back_as_server_errors() {
    let Some(node) = Node::start(&[]) else { return };
    let cfg = node.client_config();
    let code = |r: Result<_, ClientError>| match r {
        Err(ClientError::Server { code, .. }) => code,
        other => panic!("expected a server error, got {other:?}"),
    };

    let mut c = GameClient::connect(&cfg).await.unwrap();
    assert_eq!(code(c.join("not a ticket").await), ErrorCode::BadTicket);

    let elsewhere = DevTicketMinter::new(node.minter().key().clone(), "elsewhere");
    let mut c = GameClient::connect(&cfg).await.unwrap();
    let t = elsewhere.mint(uuid::Uuid::new_v4(), "lost", mode()).unwrap();
    assert_eq!(code(c.join(&t).await), ErrorCode::WrongNode);

    let minter = node.minter();
    let mut claims = minter.claims(uuid::Uuid::new_v4(), "late", mode());
    claims.iat -= 120;
    claims.exp -= 120;
    let mut c = GameClient::connect(&cfg).await.unwrap();
    assert_eq!(code(c.join(&minter.sign(&claims).unwrap()).await), ErrorCode::TicketExpired);

    let ticket = minter.mint(uuid::Uuid::new_v4(), "once", mode()).unwrap();
    let mut first = GameClient::connect(&cfg).await.unwrap();
    first.join(&ticket).await.unwrap();
    let mut second = GameClient::connect(&cfg).await.unwrap();
    assert_eq!(code(second.join(&ticket).await), ErrorCode::TicketReused);

    let mut c = GameClient::connect(&cfg).await.unwrap();
    let t = minter.mint(uuid::Uuid::new_v4(), "lost", JoinTarget::Mode("no-such-mode".into())).unwrap();
    assert_eq!(code(c.join(&t).await), ErrorCode::UnknownMode);
}

#[test]
fn loadgen_runs_200_bots_for_20s_without_errors() {
    let Some(node) = Node::start(&[]) else { return };
    let report_path = node.data_dir.join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--bots", "200", "--duration", "20s", "--ramp", "5s", "--fail-on-error", "--quiet"])
        .arg("--server")
        .arg(node.quic.to_string())
        .arg("--data-dir")
        .arg(&node.data_dir)
        .arg("--json")
        .arg(&report_path)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "loadgen failed ({}):\n{stdout}\n{stderr}", out.status);

    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    assert_eq!(report["bots_requested"], 200);
    assert_eq!(report["bots_joined"], 200, "{report:#}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report:#}");
    for key in ["join_ms", "rtt_ms"] {
        for p in ["p50", "p99"] {
            assert!(report[key][p].as_f64().is_some_and(|v| v > 0.0), "{key}.{p}: {report:#}");
        }
    }
    assert!(report["snapshots_per_sec"]["mean"].as_f64().is_some_and(|v| v > 0.0), "{report:#}");
    assert!(report["snapshots_per_sec"]["min"].as_f64().is_some(), "{report:#}");
    assert!(stdout.contains("bots joined"), "the final table is printed: {stdout}");
}
