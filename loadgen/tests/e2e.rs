//! The client library and the `loadgen` binary against a real
//! `trespasser serve` (HTTP API and game node in one process) over HTTP and
//! QUIC on loopback.
//!
//! The node binary comes from `TRESPASSER_BIN`, or from the same target dir
//! as `loadgen` (`cargo build --workspace --bins` builds both; `cargo test`
//! alone does not build another package's binary). Without it the tests fail:
//! a missing server is a broken setup, not a pass.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use loadgen::{
    ApiClient, ClientConfig, ClientError, DevTicketMinter, DriverPool, GameClient, Trust, client_endpoint_for,
    quic_client_config, webtransport_client_config,
};
use protocol::control::{ErrorCode, LobbyState, ServerControl};
use protocol::datagram::{Buttons, Snapshot, flags};
use protocol::ticket::JoinTarget;

/// The heavy runs of the `loadgen` binary take turns: two at once on a
/// small CI machine would measure each other.
static LOADGEN_RUNS: Mutex<()> = Mutex::new(());

/// A node process in its own data dir, killed when dropped.
struct Node {
    child: Child,
    quic: SocketAddr,
    /// The API's base URL, `http://<addr>`.
    api: String,
    data_dir: PathBuf,
    log: Arc<Mutex<Vec<String>>>,
}

impl Node {
    /// Starts a node from the built `trespasser` binary.
    fn start(extra_args: &[&str]) -> Node {
        let bin = node_binary();
        let data_dir = std::env::temp_dir().join(format!("loadgen-e2e-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&data_dir).unwrap();
        let mut child = Command::new(&bin)
            .arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--quic-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
            // These tests are about the load generator, not admission: a
            // debug-build node under 200 bots on a slow machine could pass
            // the default load threshold and refuse bots (server/tests
            // covers shedding).
            .args(["--max-shard-load", "1"])
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
                        && let Some(addrs) = ready_addrs_in(&line)
                    {
                        let _ = tx.send(addrs);
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let Ok((quic, api)) = ready_rx.recv_timeout(Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!("the node did not report its addresses; its output:\n{}", log.lock().unwrap().join("\n"));
        };
        Node { child, quic, api, data_dir, log }
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

fn node_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("TRESPASSER_BIN") {
        return bin.into();
    }
    let beside =
        Path::new(env!("CARGO_BIN_EXE_loadgen")).with_file_name(format!("trespasser{}", std::env::consts::EXE_SUFFIX));
    if beside.exists() {
        return beside;
    }
    // A missing binary is a broken setup, not a reason to pass.
    panic!(
        "no node binary at {}: build it first (cargo build -p trespasser-server --bin trespasser) or set TRESPASSER_BIN",
        beside.display()
    );
}

/// The QUIC address and the API URL in the node's ready line:
/// "... ready: QUIC <addr> (udp), HTTP http://<addr> (API /v1, ...)".
fn ready_addrs_in(line: &str) -> Option<(SocketAddr, String)> {
    let after = |marker: &str| Some(line[line.find(marker)? + marker.len()..].split_whitespace().next()?.to_owned());
    let quic = after("QUIC ")?.trim_end_matches(',').parse().ok()?;
    let http: SocketAddr = after("HTTP http://")?.parse().ok()?;
    Some((quic, format!("http://{http}")))
}

#[test]
fn the_ready_line_gives_both_addresses() {
    let line = "trespasser node local ready: QUIC 127.0.0.1:40001 (udp), HTTP http://127.0.0.1:40002 \
                (API /v1, /health, /ready, /metrics)";
    let (quic, api) = ready_addrs_in(line).unwrap();
    assert_eq!((quic.port(), api.as_str()), (40001, "http://127.0.0.1:40002"));
    assert_eq!(ready_addrs_in("trespasser game node local ready: QUIC 127.0.0.1:1 (udp)"), None);
}

/// Runs the `loadgen` binary; returns its stdout and the JSON report.
fn run_loadgen(node: &Node, args: &[&str]) -> (String, serde_json::Value) {
    let _turn = LOADGEN_RUNS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let report_path = node.data_dir.join(format!("report-{}.json", uuid::Uuid::new_v4()));
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .args(["--fail-on-error", "--quiet", "--json"])
        .arg(&report_path)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Shown with --nocapture: the numbers of the run.
    eprintln!("{stdout}");
    assert!(out.status.success(), "loadgen failed ({}):\n{stdout}\n{stderr}", out.status);
    let report = serde_json::from_slice(&std::fs::read(&report_path).unwrap()).unwrap();
    (stdout, report)
}

/// What every clean run shows, whichever way the bots joined.
fn assert_clean_run(report: &serde_json::Value, bots: u64, stdout: &str) {
    assert_eq!(report["bots_requested"], bots);
    assert_eq!(report["bots_joined"], bots, "{report:#}");
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
    let node = Node::start(&[]);
    let client = GameClient::connect(&node.client_config()).await.unwrap();
    assert!(client.quinn_connection().is_some());
    joins_plays_and_leaves(&node, client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_on_a_quic_loop_driver_joins_plays_and_leaves() {
    let node = Node::start(&[]);
    let drivers = DriverPool::new(1);
    let driver = drivers.driver_for(node.quic, 0).unwrap();
    let cfg = node.client_config();
    let quic = quic_client_config(&cfg.trust).unwrap();
    let client = GameClient::connect_loop(&driver.handle, &cfg, quic).await.unwrap();
    assert!(client.quinn_connection().is_none() && client.loop_connection().is_some());
    joins_plays_and_leaves(&node, client).await;
    // The clean shutdown reached the node, and the driver forgot the connection.
    tokio::time::timeout(Duration::from_secs(5), driver.handle.wait_idle()).await.unwrap();
}

async fn joins_plays_and_leaves(node: &Node, mut client: GameClient) {
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
    // Cancelled waits lose nothing: snapshots keep coming afterwards.
    for _ in 0..5 {
        let _ = tokio::time::timeout(Duration::from_millis(1), client.next_snapshot()).await;
        let _ = tokio::time::timeout(Duration::from_millis(1), client.next_event()).await;
    }
    let later = tokio::time::timeout(Duration::from_secs(5), client.next_snapshot()).await.unwrap().unwrap();
    assert!(later.tick > next.tick);
    assert_eq!(client.closed_reason(), None);

    client.leave().await.unwrap();
    client.shutdown(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_on_one_endpoint_share_a_lobby_and_see_each_other_move() {
    let node = Node::start(&[]);
    // The insecure trust also reaches the node (the handshake still verifies
    // signatures, just not the certificate).
    let endpoint = client_endpoint_for(&Trust::Insecure, node.quic).unwrap();
    let cfg = ClientConfig::new(node.quic, Trust::Insecure);
    let a = GameClient::connect_with(&endpoint, &cfg).await.unwrap();
    let b = GameClient::connect_with(&endpoint, &cfg).await.unwrap();
    share_a_lobby_and_see_each_other_move(&node, a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_on_one_quic_loop_driver_share_a_lobby_and_see_each_other_move() {
    let node = Node::start(&[]);
    let drivers = DriverPool::new(1);
    let driver = drivers.driver_for(node.quic, 0).unwrap();
    let cfg = ClientConfig::new(node.quic, Trust::Insecure);
    let quic = quic_client_config(&Trust::Insecure).unwrap();
    let a = GameClient::connect_loop(&driver.handle, &cfg, quic.clone()).await.unwrap();
    let b = GameClient::connect_loop(&driver.handle, &cfg, quic).await.unwrap();
    share_a_lobby_and_see_each_other_move(&node, a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webtransport_client_joins_plays_and_leaves() {
    let node = Node::start(&[]);
    let drivers = DriverPool::new(1);
    let driver = drivers.driver_for(node.quic, 0).unwrap();
    let cfg = ClientConfig { webtransport: true, ..node.client_config() };
    let quic = webtransport_client_config(&cfg.trust).unwrap();
    let client = GameClient::connect_loop(&driver.handle, &cfg, quic).await.unwrap();
    assert!(client.loop_connection().unwrap().is_webtransport());
    joins_plays_and_leaves(&node, client).await;
    tokio::time::timeout(Duration::from_secs(5), driver.handle.wait_idle()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_like_client_and_a_native_one_share_a_lobby_on_one_port() {
    let node = Node::start(&[]);
    let drivers = DriverPool::new(1);
    let driver = drivers.driver_for(node.quic, 0).unwrap();
    let native = ClientConfig::new(node.quic, Trust::Insecure);
    let web = ClientConfig { webtransport: true, ..native.clone() };
    let a =
        GameClient::connect_loop(&driver.handle, &native, quic_client_config(&Trust::Insecure).unwrap()).await.unwrap();
    let b = GameClient::connect_loop(&driver.handle, &web, webtransport_client_config(&Trust::Insecure).unwrap())
        .await
        .unwrap();
    share_a_lobby_and_see_each_other_move(&node, a, b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_webtransport_turns_browsers_away() {
    let node = Node::start(&["--webtransport", "false"]);
    let drivers = DriverPool::new(1);
    let driver = drivers.driver_for(node.quic, 0).unwrap();
    let cfg = ClientConfig { webtransport: true, ..node.client_config() };
    let quic = webtransport_client_config(&cfg.trust).unwrap();
    let err = GameClient::connect_loop(&driver.handle, &cfg, quic).await.unwrap_err();
    assert_eq!(err.kind(), "connect", "{err:?}");
}

async fn share_a_lobby_and_see_each_other_move(node: &Node, mut a: GameClient, mut b: GameClient) {
    let minter = node.minter();
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
    let node = Node::start(&[]);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_placement_pins_the_node_and_its_ticket_is_single_use() {
    let node = Node::start(&[]);
    let api = ApiClient::new(&node.api).unwrap();
    let name = format!("e2e_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let tokens = api.register_or_login(&name, "lg-Strong-Bot-Pass-9c41e7").await.unwrap();
    // The same name again logs in to the same account.
    let again = api.register_or_login(&name, "lg-Strong-Bot-Pass-9c41e7").await.unwrap();
    assert_eq!(again.account_id, tokens.account_id);
    let wrong = api.login(&name, "not-the-password-3x").await.unwrap_err();
    assert_eq!((wrong.status().map(|s| s.as_u16()), wrong.code()), (Some(401), Some("INVALID_CREDENTIALS")));

    let placement = api.matchmake(&tokens.access_token, "deathmatch").await.unwrap();
    assert_eq!(placement.port, node.quic.port());
    let dev_cert = std::fs::read(node.data_dir.join(protocol::defaults::DEV_CERT_FILE)).unwrap();
    assert_eq!(placement.trust().unwrap(), Trust::sha256_of(&dev_cert), "the hash is the node's certificate's");
    let addr = placement.socket_addr().await.unwrap();

    // Another hash fails the handshake; the returned one connects, and the
    // ticket joins once.
    let wrong_pin = ClientConfig::new(addr, Trust::Sha256([7; 32]));
    assert!(matches!(GameClient::connect(&wrong_pin).await, Err(ClientError::Connect(_))));
    let cfg = ClientConfig::new(addr, placement.trust().unwrap());
    let mut client = GameClient::connect(&cfg).await.unwrap();
    let joined = client.join(&placement.ticket).await.unwrap();
    assert_eq!(joined.lobby.mode, "deathmatch");
    assert!(joined.roster.iter().any(|p| p.id == joined.you && p.name == name));
    let mut second = GameClient::connect(&cfg).await.unwrap();
    match second.join(&placement.ticket).await {
        Err(ClientError::Server { code, .. }) => assert_eq!(code, ErrorCode::TicketReused),
        other => panic!("a reused ticket must be refused, got {other:?}"),
    }

    // Asking for the lobby by id places the player there, once the node's
    // lobby summary has reached the directory (it reports periodically).
    let deadline = Instant::now() + Duration::from_secs(15);
    let by_id = loop {
        match api.join_lobby(&tokens.access_token, joined.lobby.id).await {
            Ok(placement) => break placement,
            Err(e) if e.code() == Some("LOBBY_NOT_FOUND") && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("joining lobby {} through the API: {e}", joined.lobby.id),
        }
    };
    assert_eq!(by_id.lobby_id, Some(joined.lobby.id));
    // Past the per-account matchmake burst, the API answers 429 with
    // Retry-After; the client waits and every call still succeeds.
    for _ in 0..8 {
        api.matchmake(&tokens.access_token, "deathmatch").await.unwrap();
    }
    let http = api.stats().report();
    for endpoint in ["register", "login", "matchmake", "join_lobby"] {
        assert!(http[endpoint].count >= 1, "{endpoint}: {http:?}");
    }
    assert!(http["matchmake"].rate_limited >= 1, "the matchmake limit never tripped: {http:?}");
    assert_eq!(http["matchmake"].errors, 0, "{http:?}");
    client.leave().await.unwrap();
    client.shutdown(Duration::from_secs(2)).await;
}

#[test]
fn loadgen_runs_200_bots_for_20s_through_the_api_without_errors() {
    let node = Node::start(&[]);
    let (stdout, report) =
        run_loadgen(&node, &["--bots", "200", "--duration", "20s", "--ramp", "5s", "--api", node.api.as_str()]);
    assert_clean_run(&report, 200, &stdout);
    let http = &report["http"];
    for endpoint in ["register", "matchmake"] {
        let row = &http[endpoint];
        assert!(row["count"].as_u64().is_some_and(|n| n >= 200), "{endpoint}: {report:#}");
        assert_eq!(row["errors"], 0, "{endpoint}: {report:#}");
        for p in ["p50_ms", "p99_ms"] {
            assert!(row[p].as_f64().is_some_and(|v| v > 0.0), "{endpoint}.{p}: {report:#}");
        }
    }
    assert!(stdout.contains("http matchmake"), "the table shows the HTTP rows: {stdout}");
}

#[test]
fn bots_matchmake_again_through_the_api_when_their_lobby_closes() {
    // One-kill matches and a failing restart vote close lobbies every few
    // seconds; each bot then asks the API for a new placement and ticket.
    let node = Node::start(&["--kill-target", "1", "--damage", "100", "--vote-duration", "1s"]);
    let args = ["--bots", "16", "--duration", "10s", "--ramp", "1s", "--vote", "no", "--api", node.api.as_str()];
    let (stdout, report) = run_loadgen(&node, &args);
    assert_clean_run(&report, 16, &stdout);
    let rejoins = report["rejoins"].as_u64().unwrap();
    assert!(report["lobbies_closed"].as_u64().unwrap() >= 1 && rejoins >= 1, "{report:#}");
    // Every join, first or not, took one successful matchmake; a bot whose
    // lobby closed just before the run stopped may hold one placement it
    // never used.
    let mm = &report["http"]["matchmake"];
    let placed = mm["count"].as_u64().unwrap() - mm["errors"].as_u64().unwrap() - mm["rate_limited"].as_u64().unwrap();
    assert!((16 + rejoins..=16 + rejoins + 16).contains(&placed), "placed {placed}, rejoins {rejoins}: {report:#}");
}

#[test]
fn every_transport_and_quic_io_plays_cleanly_with_snapshots_and_round_trips() {
    let node = Node::start(&[]);
    let quic = node.quic.to_string();
    let data_dir = node.data_dir.to_str().unwrap();
    for (io, transport) in [("loop", "quic"), ("quinn", "quic"), ("loop", "webtransport")] {
        let args = [
            "--direct",
            "--bots",
            "12",
            "--duration",
            "6s",
            "--ramp",
            "1s",
            "--server",
            &quic,
            "--data-dir",
            data_dir,
            "--no-scrape",
            "--quic-io",
            io,
            "--transport",
            transport,
        ];
        let (stdout, report) = run_loadgen(&node, &args);
        assert_clean_run(&report, 12, &stdout);
        assert_eq!(report["transport"], transport);
        assert!(report["rtt_ms"]["count"].as_u64().is_some_and(|n| n > 100), "{io}: {report:#}");
        assert!(report["snapshots_received"].as_u64().is_some_and(|n| n > 12 * 20), "{io}: {report:#}");
        assert!(report["snapshots_per_sec"]["min"].as_f64().is_some_and(|v| v > 10.0), "{io}: {report:#}");
        for key in ["up_bytes_per_bot_sec", "down_bytes_per_bot_sec"] {
            assert!(report["bandwidth"][key].as_f64().is_some_and(|v| v > 100.0), "{io} {key}: {report:#}");
        }
    }
}

#[test]
fn webtransport_refuses_impairment() {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--direct", "--transport", "webtransport", "--latency", "50ms", "--no-scrape", "--quiet"])
        .args(["--data-dir", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--transport webtransport"), "{stderr}");
}

#[test]
fn loop_io_refuses_impairment() {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--direct", "--quic-io", "loop", "--loss", "5%", "--no-scrape", "--quiet", "--data-dir", "/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--quic-io"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn loadgen_direct_joins_one_node_with_minted_tickets() {
    let node = Node::start(&[]);
    let quic = node.quic.to_string();
    let data_dir = node.data_dir.to_str().unwrap();
    let args =
        ["--direct", "--bots", "16", "--duration", "6s", "--ramp", "1s", "--server", &quic, "--data-dir", data_dir];
    let (stdout, report) = run_loadgen(&node, &args);
    assert_clean_run(&report, 16, &stdout);
    assert_eq!(report["http"], serde_json::json!({}), "no API calls: {report:#}");
}

/// Runs `loadgen` with `args` (no `--fail-on-error`, output and report
/// files of its own), returning the exit status, stdout and report.
fn spawn_loadgen(args: &[&str], report: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .args(["--quiet", "--json"])
        .arg(report)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn phases_churn_and_chat_through_the_api_with_server_figures_and_html() {
    let node = Node::start(&["--chat-interval", "100ms"]);
    let html = node.data_dir.join("report.html");
    let args = [
        "--phase",
        "ramp:2s:6",
        "--phase",
        "sustained:8s:0",
        "--churn",
        "600%",
        "--rejoin-delay",
        "500ms",
        "--chat-interval",
        "2s",
        "--api",
        node.api.as_str(),
        "--html",
        html.to_str().unwrap(),
    ];
    let (stdout, report) = run_loadgen(&node, &args);
    assert_clean_run(&report, 12, &stdout);
    let phases: Vec<(&str, u64)> = report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["arrivals"].as_u64().unwrap()))
        .collect();
    assert_eq!(phases, [("ramp", 12), ("sustained", 0)]);
    assert_eq!(
        (report["sustained"]["start_s"].as_f64(), report["sustained"]["end_s"].as_f64()),
        (Some(2.0), Some(10.0))
    );
    // A 10 s mean stay: a dozen bots over 8 s leave and come back.
    let churn = &report["churn"];
    assert!(churn["leaves"].as_u64().unwrap() >= 1 && churn["rejoins"].as_u64().unwrap() >= 1, "{report:#}");
    assert!(report["chats"].as_u64().unwrap() >= 1, "{report:#}");
    // Bandwidth with headers, loss from tick gaps, the node's own figures.
    for key in ["up_bytes_per_bot_sec", "down_bytes_per_bot_sec"] {
        assert!(report["bandwidth"][key].as_f64().is_some_and(|v| v > 100.0), "{key}: {report:#}");
    }
    assert!(report["snapshot_loss"]["expected"].as_u64().unwrap() > 0, "{report:#}");
    assert!(report["server"]["cpu_seconds"].as_f64().is_some(), "scraped <api>/metrics: {report:#}");
    assert!(report["server"]["tick_p99_ms"].as_f64().is_some(), "{report:#}");
    assert!(
        report["loadgen"]["cpu_s"].as_f64().unwrap() > 0.0 && report["loadgen"]["peak_rss_bytes"].as_u64().unwrap() > 0
    );
    let verdicts = report["verdicts"].as_array().unwrap();
    for name in ["rtt_p99_ms", "errors", "node_tick_p99_ms", "down_bytes_per_bot_sec"] {
        assert!(verdicts.iter().any(|v| v["name"] == name), "verdict {name}: {report:#}");
    }
    let timeline = report["timeline"].as_array().unwrap();
    assert!(timeline.len() >= 8, "a sample a second: {}", timeline.len());
    assert!(timeline.iter().any(|s| s["phase"] == "sustained" && s["players"].as_u64().unwrap() > 0));
    assert!(report["merge"]["histograms"]["join"].as_str().is_some_and(|h| !h.is_empty()));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>") && page.contains("<svg") && page.contains("Verdicts"));
}

#[test]
fn bots_still_play_through_10_percent_loss_and_added_latency() {
    // A handshake that loses three flights in a row takes 1 + 2 + 4 s of
    // retransmission timeouts: more than the node's 5 s default, which
    // once closed a bot here. The test is about play under loss, so the
    // node waits as long as the client does (10 s) and the run lasts long
    // enough for such a bot to join.
    let node = Node::start(&["--handshake-timeout", "15s"]);
    let quic = node.quic.to_string();
    let metrics = format!("{}/metrics", node.api);
    let data_dir = node.data_dir.to_str().unwrap();
    let args = [
        "--direct",
        "--bots",
        "8",
        "--duration",
        "12s",
        "--ramp",
        "1s",
        "--server",
        &quic,
        "--data-dir",
        data_dir,
        "--metrics-url",
        &metrics,
        "--loss",
        "10%",
        "--latency",
        "40ms",
        "--jitter",
        "10ms",
    ];
    let (stdout, report) = run_loadgen(&node, &args);
    assert_clean_run(&report, 8, &stdout);
    let imp = &report["impairment"];
    assert_eq!((imp["loss"].as_f64(), imp["latency"].as_f64()), (Some(0.1), Some(40.0)), "{report:#}");
    assert!(imp["dropped_down"].as_u64().unwrap() > 0 && imp["dropped_up"].as_u64().unwrap() > 0, "{report:#}");
    // About a tenth of the snapshots go missing, and the rest keep coming.
    let loss = report["snapshot_loss"]["rate"].as_f64().unwrap();
    assert!((0.04..0.25).contains(&loss), "snapshot loss {loss}: {report:#}");
    assert!(report["snapshots_per_sec"]["mean"].as_f64().unwrap() > 12.0, "{report:#}");
    // 40 ms of added round trip shows in the measured one.
    assert!(report["rtt_ms"]["p50"].as_f64().unwrap() >= 35.0, "{report:#}");
}

#[test]
fn sharded_runs_start_together_and_merge_into_one_report() {
    let node = Node::start(&[]);
    let _turn = LOADGEN_RUNS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let quic = node.quic.to_string();
    let data_dir = node.data_dir.to_str().unwrap().to_owned();
    let start_at =
        (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 2000).to_string();
    let paths: Vec<PathBuf> = (0..2).map(|i| node.data_dir.join(format!("shard-{i}.json"))).collect();
    let children: Vec<Child> = (0..2)
        .map(|i| {
            let shard = format!("{i}/2");
            let args = [
                "--direct",
                "--bots",
                "9",
                "--duration",
                "5s",
                "--ramp",
                "1s",
                "--server",
                &quic,
                "--data-dir",
                &data_dir,
                "--shard",
                &shard,
                "--start-at",
                &start_at,
                "--no-scrape",
                "--seed",
                "7",
            ];
            spawn_loadgen(&args, &paths[i])
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let shards: Vec<serde_json::Value> =
        paths.iter().map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()).collect();
    // 9 bots: indices 0, 2, 4, 6, 8 and 1, 3, 5, 7.
    assert_eq!((shards[0]["bots_requested"].as_u64(), shards[1]["bots_requested"].as_u64()), (Some(5), Some(4)));

    let merged_path = node.data_dir.join("merged.json");
    let html = node.data_dir.join("merged.html");
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("merge")
        .args(&paths)
        .arg("--json")
        .arg(&merged_path)
        .arg("--html")
        .arg(&html)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let merged: serde_json::Value = serde_json::from_slice(&std::fs::read(&merged_path).unwrap()).unwrap();
    assert_clean_run(&merged, 9, &stdout);
    assert_eq!(merged["processes"], 2);
    let joins = |r: &serde_json::Value| r["join_ms"]["count"].as_u64().unwrap();
    assert_eq!(joins(&merged), joins(&shards[0]) + joins(&shards[1]), "histograms merged, not averaged");
    assert!(stdout.contains("shards merged"), "{stdout}");
    assert!(std::fs::read_to_string(&html).unwrap().contains("<svg"));
}
