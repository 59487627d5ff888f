//! A node with several QUIC shards on one port: packets reach the shard
//! that owns their connection by connection id, not by address.

mod common;

use std::time::{Duration, Instant};

use common::*;
use loadgen::GameClient;
use protocol::control::ServerControl;
use protocol::datagram::Buttons;

const SHARDS: usize = 4;
const PLAYERS: usize = 16;

/// Open connections per shard, from the node's /metrics.
async fn per_shard(t: &TestNode) -> Vec<f64> {
    let mut out = Vec::with_capacity(SHARDS);
    for shard in 0..SHARDS {
        out.push(t.metric(&format!("trespasser_quic_shard_connections{{shard=\"{shard}\"}}")).await);
    }
    out
}

/// Waits until `c` receives a snapshot at least `ticks` ticks newer than
/// its newest one now (so it was sent after this call), sending inputs so
/// the client's packets keep flowing too.
async fn fresh_snapshot(c: &mut GameClient, ticks: u32) {
    let target = c.newest_tick().unwrap_or(0) + ticks;
    tokio::time::timeout(WAIT, async {
        loop {
            c.send_input(Buttons::default(), 0).expect("input");
            let s = c.next_snapshot().await.expect("snapshot");
            if s.tick >= target {
                return;
            }
        }
    })
    .await
    .expect("a fresh snapshot in time");
}

#[tokio::test]
async fn connections_from_one_address_spread_and_survive_an_address_change() {
    let t = TestNode::start(&["--quic-shards", &SHARDS.to_string()]).await;
    // Every client shares one UDP socket: one address, which the kernel's
    // address hash would put on a single shard.
    let mut clients = Vec::new();
    for i in 0..PLAYERS {
        let (c, _, _) = t.player(&format!("p{i}")).await;
        clients.push(c);
    }
    let deadline = Instant::now() + WAIT;
    let counts = loop {
        let counts = per_shard(&t).await;
        if counts.iter().sum::<f64>() == PLAYERS as f64 || Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(counts.iter().sum::<f64>(), PLAYERS as f64, "per shard: {counts:?}");
    // The address hash puts them all on one shard. By random initial ids
    // that happens with probability 4^-15 (about 1e-9).
    let used = counts.iter().filter(|&&n| n > 0.0).count();
    assert!(used >= 2, "connections from one address should spread over the shards: {counts:?}");

    for c in &mut clients {
        fresh_snapshot(c, 1).await;
    }
    // The client's address changes under every connection at once (a NAT
    // rebinding): each keeps being served by its own shard.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("new socket");
    let new_addr = socket.local_addr().expect("addr");
    t.endpoint.rebind(socket).expect("rebind");
    // The node must hear each client at its new address: a chat line goes
    // up the control stream and comes back from the lobby, and snapshots
    // keep coming (quinn's client keeps its old socket open for a while,
    // so snapshots alone would not show that the node hears it).
    for (i, c) in clients.iter_mut().enumerate() {
        let text = format!("moved {i}");
        c.chat(&text).await.expect("chat");
        wait_event(c, |e| matches!(e, ServerControl::Chat { text: got, .. } if *got == text)).await;
        fresh_snapshot(c, 10).await;
        assert!(c.closed_reason().is_none(), "player {i} lost its connection: {:?}", c.closed_reason());
    }
    assert_eq!(t.endpoint.local_addr().expect("addr"), new_addr);
    // No connection was dropped or replaced along the way.
    assert_eq!(per_shard(&t).await.iter().sum::<f64>(), PLAYERS as f64);
    assert_eq!(t.metric("trespasser_connections_accepted_total").await, PLAYERS as f64);
}

/// The shard's load, from the node's /metrics.
async fn shard_load(t: &TestNode) -> f64 {
    t.metric("trespasser_quic_shard_load{shard=\"0\"}").await
}

#[tokio::test]
async fn a_busy_shard_refuses_new_connections_and_keeps_its_players() {
    let t = TestNode::start(&["--max-shard-load", "0.02"]).await;
    let (mut keeper, _, _) = t.player("keeper").await;
    // A storm of handshakes (each costs the node a TLS handshake), one
    // attempt every 10 ms until the shard refuses one: its load passes 2 %
    // within a second or two here (idle it is about 0.1 %). Bounded: 1,000
    // attempts at most.
    let refused_metric = "trespasser_connections_refused_total{reason=\"overloaded\"}";
    let mut attempts = tokio::task::JoinSet::new();
    let mut peak: f64 = 0.0;
    for i in 0..1000 {
        let (endpoint, cfg) = (t.endpoint.clone(), t.config());
        attempts.spawn(async move { GameClient::connect_with(&endpoint, &cfg).await.map(|c| c.close()) });
        tokio::time::sleep(Duration::from_millis(10)).await;
        if i % 20 == 19 {
            peak = peak.max(shard_load(&t).await);
            if t.metric(refused_metric).await > 0.0 {
                break;
            }
        }
    }
    let mut refused = 0;
    while let Some(r) = attempts.join_next().await {
        if r.expect("attempt task").is_err() {
            refused += 1;
        }
    }
    eprintln!("peak load {peak}, refused {refused}");
    assert!(refused > 0, "no attempt was refused (peak load {peak})");
    assert_eq!(t.metric(refused_metric).await, refused as f64);
    // The player it had kept playing through the storm.
    fresh_snapshot(&mut keeper, 5).await;
    assert!(keeper.closed_reason().is_none());
    // Once the storm is over the load falls and players get in again.
    let deadline = Instant::now() + WAIT;
    while shard_load(&t).await >= 0.02 {
        assert!(Instant::now() < deadline, "the load stayed at {}", shard_load(&t).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (mut late, _, _) = t.player("late").await;
    fresh_snapshot(&mut late, 1).await;
}
