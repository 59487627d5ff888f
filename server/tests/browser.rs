//! A real Chromium plays on the node over WebTransport, on the same UDP
//! port as native clients: session with a pinned certificate hash, Hello
//! and Join on the session's stream, inputs and snapshots as datagrams.
//!
//! Needs Chromium (`/usr/bin/chromium`, or `CHROMIUM`) and the npm package
//! in `tests/browser` (`npm ci` there); `.ci/run` installs both. Without
//! them the test fails under `CI=true` and is skipped, loudly, elsewhere.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use protocol::codec::{self, MAX_CLIENT_FRAME, MAX_SERVER_FRAME};
use protocol::control::{ClientControl, ServerControl};
use protocol::datagram::{
    Buttons, ClientDatagram, InputFrame, InputPacket, MAX_INPUT_BYTES, MAX_SNAPSHOT_BYTES, ServerDatagram,
};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Chromium and the npm package, or why they are missing.
fn browser() -> Result<PathBuf, String> {
    let chromium = std::env::var_os("CHROMIUM").map(PathBuf::from).unwrap_or_else(|| "/usr/bin/chromium".into());
    if !chromium.exists() {
        return Err(format!("no Chromium at {} (apt-get install chromium, or set CHROMIUM)", chromium.display()));
    }
    if !browser_dir().join("node_modules/playwright-core").exists() {
        return Err(format!("playwright-core is not installed (npm ci in {})", browser_dir().display()));
    }
    Ok(chromium)
}

fn hex(bytes: &[u8]) -> String {
    protocol::defaults::to_hex(bytes)
}

/// Chromium, or None when the test should be skipped (outside CI).
fn chromium_or_skip(test: &str) -> Option<PathBuf> {
    match browser() {
        Ok(c) => Some(c),
        Err(why) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("CI=true needs a browser: {why}"),
        Err(why) => {
            eprintln!("SKIPPED {test}: {why}");
            None
        }
    }
}

/// Runs the browser script against `node`: writes `control` on the
/// session's stream, sends `inputs` as datagrams, listens for `ms`.
async fn run_browser(chromium: PathBuf, node: &TestNode, control: &[u8], inputs: &[Vec<u8>], ms: u64) -> Value {
    let args = serde_json::json!({
        "url": format!("https://127.0.0.1:{}{}", node.node.quic_addr.port(), protocol::WEBTRANSPORT_PATH),
        "certHash": hex(&Sha256::digest(&node.node.cert_der)),
        "control": hex(control),
        "inputs": inputs.iter().map(|d| hex(d)).collect::<Vec<_>>(),
        "ms": ms,
    });
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("webtransport.mjs")
            .arg(args.to_string())
            .current_dir(browser_dir())
            .env("CHROMIUM", chromium)
            .output()
            .expect("running node")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the browser script failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let result: Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(result["ready"], true, "{result:#}");
    result
}

fn hello_and_join(ticket: String) -> Vec<u8> {
    let hello = ClientControl::Hello { version: protocol::PROTOCOL_VERSION, client: "chromium".into() };
    let mut control = codec::encode_frame(&hello, MAX_CLIENT_FRAME).unwrap();
    control.extend(codec::encode_frame(&ClientControl::Join { ticket }, MAX_CLIENT_FRAME).unwrap());
    control
}

/// The control frames the browser received.
fn frames(result: &Value) -> Vec<ServerControl> {
    let bytes = protocol::defaults::from_hex(result["control"].as_str().unwrap()).expect("hex");
    let mut frames = Vec::new();
    let mut at = 0;
    while let Some((msg, used)) = codec::decode_frame::<ServerControl>(&bytes[at..], MAX_SERVER_FRAME).unwrap() {
        frames.push(msg);
        at += used;
    }
    frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_joins_and_plays_over_webtransport_on_the_quic_port() {
    let Some(chromium) = chromium_or_skip("chromium_joins_and_plays_over_webtransport_on_the_quic_port") else {
        return;
    };
    // Four shards on the port: Chromium's packets reach the shard that owns
    // its connection by connection id, like every client's.
    let node = TestNode::start(&["--quic-shards", "4"]).await;
    let control = hello_and_join(node.ticket(uuid::Uuid::new_v4(), "browser"));
    let inputs: Vec<Vec<u8>> = (1..=20u32)
        .map(|seq| {
            let frame = InputFrame { buttons: Buttons(Buttons::RIGHT), aim: 0, view_tick: 0 };
            let packet = InputPacket { ack_tick: 0, first_seq: seq, frames: vec![frame].into() };
            codec::encode(&ClientDatagram::Input(packet), MAX_INPUT_BYTES).unwrap()
        })
        .collect();
    let result = run_browser(chromium, &node, &control, &inputs, 2500).await;
    assert_eq!(result["error"], Value::Null, "{result:#}");

    // The session's stream carried Welcome and LobbyJoined.
    let frames = frames(&result);
    assert!(matches!(frames.first(), Some(ServerControl::Welcome { .. })), "{frames:?}");
    let Some(ServerControl::LobbyJoined(joined)) = frames.get(1) else { panic!("no LobbyJoined: {frames:?}") };

    // Snapshots came as datagrams, and they acknowledge the inputs sent.
    let snapshots: Vec<ServerDatagram> = result["datagrams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let d = protocol::defaults::from_hex(d.as_str().unwrap()).expect("hex");
            codec::decode(&d, MAX_SNAPSHOT_BYTES).expect("a snapshot")
        })
        .collect();
    assert!(snapshots.len() >= 20, "{} snapshots in 2.5 s", snapshots.len());
    let acked = snapshots
        .iter()
        .map(|s| match s {
            ServerDatagram::Snapshot(s) => s.ack_seq,
            ServerDatagram::Delta(d) => d.ack_seq,
        })
        .max();
    assert!(acked >= Some(10), "inputs reached the lobby (newest ack {acked:?})");
    assert!(
        snapshots
            .iter()
            .any(|s| matches!(s, ServerDatagram::Snapshot(s) if s.players.iter().any(|p| p.id == joined.you))),
        "the browser's player is in the snapshots"
    );
    assert_eq!(node.metric("trespasser_webtransport_sessions_total").await, 1.0);
    assert_eq!(node.metric("trespasser_connections_accepted_total").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_hears_why_the_node_refused_it() {
    let Some(chromium) = chromium_or_skip("chromium_hears_why_the_node_refused_it") else { return };
    let node = TestNode::start(&[]).await;
    let hello = ClientControl::Hello { version: protocol::PROTOCOL_VERSION + 1, client: "chromium".into() };
    let result = run_browser(chromium, &node, &codec::encode_frame(&hello, MAX_CLIENT_FRAME).unwrap(), &[], 2000).await;

    // The game's Error frame, then the session closed with the node's close
    // code and the error's stable code as the reason.
    let frames = frames(&result);
    let Some(ServerControl::Error { code, .. }) = frames.first() else { panic!("no Error: {frames:?}") };
    assert_eq!(*code, protocol::control::ErrorCode::VersionMismatch);
    assert_eq!(result["closed"]["closeCode"], 1, "{result:#}");
    assert_eq!(result["closed"]["reason"], code.as_str(), "{result:#}");
}
