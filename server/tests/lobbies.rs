//! Lobby management on a real node: many lobbies at once, churn that frees
//! everything, the capacity error and the lobby list.

mod common;

use std::time::Duration;

use common::*;
use protocol::control::ErrorCode;
use protocol::datagram::Buttons;
use protocol::ticket::JoinTarget;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_lobbies_run_at_once() {
    let t = TestNode::start(&["--players-per-lobby", "2"]).await;
    let mut clients = Vec::new();
    for i in 0..200 {
        let (c, j, _) = t.player(&format!("p{i}")).await;
        clients.push((c, j));
    }
    assert_eq!(t.node.manager.lobby_count(), 100);
    let list = t.node.manager.list(Some("deathmatch"));
    assert_eq!(list.len(), 100);
    assert!(list.iter().all(|l| l.players == 2 && l.max_players == 2));
    // Every lobby ticks: every player gets snapshots showing both players.
    for (c, _) in clients.iter_mut() {
        c.send_input(Buttons(Buttons::UP), 0).unwrap();
    }
    for (c, j) in clients.iter_mut() {
        let s = loop {
            let s = next_snapshot(c).await;
            if s.players.len() == 2 {
                break s;
            }
        };
        assert!(s.players.iter().any(|p| p.id == j.you));
    }
    assert_eq!(t.metric("trespasser_lobbies").await, 100.0);
    assert_eq!(t.metric("trespasser_players").await, 200.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_joins_and_leaves_free_every_resource() {
    let t = TestNode::start(&[]).await;
    const CLIENTS: usize = 40;
    const CYCLES: usize = 50;
    let mut tasks = Vec::new();
    for i in 0..CLIENTS {
        let mut c = t.connect().await;
        let minter = t.minter.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..CYCLES {
                let account = uuid::Uuid::new_v4();
                let ticket = minter.mint(account, &format!("c{i}-{n}"), JoinTarget::Mode("deathmatch".into())).unwrap();
                c.join(&ticket).await.expect("join");
                c.send_input(Buttons(Buttons::LEFT), 0).unwrap();
                c.leave().await.unwrap();
                // The node handles Leave before the next Join (same stream, in order).
            }
            c.shutdown(Duration::from_secs(2)).await;
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    tokio::time::timeout(WAIT, async {
        loop {
            let zero = t.node.manager.lobby_count() == 0
                && t.node.manager.account_count() == 0
                && t.metric("trespasser_connections").await == 0.0;
            if zero {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("every count back at zero");
    assert_eq!(t.metric("trespasser_lobbies").await, 0.0);
    assert_eq!(t.metric("trespasser_players").await, 0.0);
    assert!(t.metric("trespasser_matches_started_total").await >= 1.0);
}

#[tokio::test]
async fn the_capacity_error_appears_when_max_lobbies_is_reached() {
    let t = TestNode::start(&["--players-per-lobby", "2", "--max-lobbies", "2"]).await;
    let mut keep = Vec::new();
    for i in 0..4 {
        keep.push(t.player(&format!("p{i}")).await);
    }
    let mut c = t.connect().await;
    expect_refused(c.join(&t.ticket(uuid::Uuid::new_v4(), "late")).await, ErrorCode::NodeAtCapacity).await;
    assert_eq!(t.metric("trespasser_join_refusals_total{code=\"NODE_AT_CAPACITY\"}").await, 1.0);
    // A freed slot is usable again.
    let (mut first, _, _) = keep.remove(0);
    first.leave().await.unwrap();
    first.shutdown(Duration::from_secs(1)).await;
    tokio::time::timeout(WAIT, async {
        loop {
            if c.join(&t.ticket(uuid::Uuid::new_v4(), "late")).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("joins again once a slot frees");
}

#[tokio::test]
async fn lobby_list_and_direct_lobby_joins() {
    let t = TestNode::start(&["--modes", "deathmatch,duel"]).await;
    let (_a, ja, _) = t.player("alice").await;
    let body = http_get(t.http(), "/lobbies?mode=deathmatch").await;
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["lobbies"][0]["id"], ja.lobby.id);
    assert_eq!(v["lobbies"][0]["players"], 1);
    assert_eq!(v["lobbies"][0]["state"], "playing");
    let none: serde_json::Value = serde_json::from_str(&http_get(t.http(), "/lobbies?mode=duel").await).unwrap();
    assert_eq!(none["lobbies"].as_array().unwrap().len(), 0);

    // Join the listed lobby by id; unknown ids and modes are refused.
    let mut c = t.connect().await;
    let by_id = t.minter.mint(uuid::Uuid::new_v4(), "bob", JoinTarget::Lobby(ja.lobby.id)).unwrap();
    assert_eq!(c.join(&by_id).await.unwrap().lobby.id, ja.lobby.id);
    let mut d = t.connect().await;
    let missing = t.minter.mint(uuid::Uuid::new_v4(), "carol", JoinTarget::Lobby(12345)).unwrap();
    expect_refused(d.join(&missing).await, ErrorCode::LobbyNotFound).await;
    let bad_mode = t.minter.mint(uuid::Uuid::new_v4(), "carol", JoinTarget::Mode("ctf".into())).unwrap();
    expect_refused(d.join(&bad_mode).await, ErrorCode::UnknownMode).await;
    let health: serde_json::Value = serde_json::from_str(&http_get(t.http(), "/health").await).unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["players"], 2);
}
