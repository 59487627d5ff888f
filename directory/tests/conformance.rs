//! One suite, two directories: every case runs against the in-process
//! directory and against Redis (a fresh key prefix per test), so the two
//! cannot drift apart. Redis-only behaviour (failures, key layout) is in
//! `redis.rs`.
//!
//! Without Redis at `REDIS_URL` the Redis half is skipped with a warning,
//! or fails when `CI=true`.

mod support;

use std::time::Duration;

use directory::{ClaimedResult, Directory, NodeCommand};
use support::{Backend, drain, lobby, result, status};

/// A node TTL or claim timeout a test waits out.
const SHORT: Duration = Duration::from_millis(400);
/// Long enough never to pass during a test.
const LONG: Duration = Duration::from_secs(60);

/// Waits until something that lives for [`SHORT`] is surely gone.
async fn outlive_short() {
    tokio::time::sleep(SHORT + Duration::from_millis(250)).await;
}

/// Generates `<case>::local` and `<case>::redis` for each case.
macro_rules! conformance {
    ($($case:ident(node_ttl: $ttl:expr, claim_timeout: $claim:expr);)*) => {$(
        mod $case {
            use super::*;

            #[tokio::test]
            async fn local() {
                let b = Backend::local($ttl, $claim);
                super::$case(&b.open().await, &b).await;
            }

            #[tokio::test]
            async fn redis() {
                let Some(b) = Backend::redis($ttl, $claim) else { return };
                super::$case(&b.open().await, &b).await;
            }
        }
    )*};
}

conformance! {
    ping(node_ttl: LONG, claim_timeout: LONG);
    heartbeat_visible_then_expires(node_ttl: SHORT, claim_timeout: LONG);
    heartbeats_keep_a_node_alive(node_ttl: SHORT, claim_timeout: LONG);
    lobbies_are_replaced_not_accumulated(node_ttl: LONG, claim_timeout: LONG);
    lobby_lookup(node_ttl: LONG, claim_timeout: LONG);
    listings_are_sorted_and_filtered_by_mode(node_ttl: LONG, claim_timeout: LONG);
    remove_node(node_ttl: LONG, claim_timeout: LONG);
    claimed_results_are_invisible_until_acked(node_ttl: LONG, claim_timeout: LONG);
    unacked_result_is_redelivered_to_another_consumer(node_ttl: LONG, claim_timeout: SHORT);
    ack_is_final(node_ttl: LONG, claim_timeout: SHORT);
    results_survive_until_acked(node_ttl: LONG, claim_timeout: SHORT);
    commands_are_bounded_and_taken_once(node_ttl: LONG, claim_timeout: LONG);
}

fn ids(claimed: &[ClaimedResult]) -> Vec<u128> {
    claimed.iter().map(|c| c.result.match_id.as_u128()).collect()
}

async fn ping(d: &Directory, _: &Backend) {
    d.ping().await.unwrap();
}

async fn heartbeat_visible_then_expires(d: &Directory, _: &Backend) {
    d.heartbeat(&status("a"), &[lobby("a", 1, "deathmatch")]).await.unwrap();
    assert_eq!(d.nodes().await.unwrap(), vec![status("a")]);
    assert_eq!(d.lobbies(None).await.unwrap(), vec![lobby("a", 1, "deathmatch")]);
    outlive_short().await;
    assert!(d.nodes().await.unwrap().is_empty(), "a node without heartbeats disappears by itself");
    assert!(d.lobbies(None).await.unwrap().is_empty(), "and its lobbies with it");
    assert_eq!(d.lobby(1).await.unwrap(), None);
}

async fn heartbeats_keep_a_node_alive(d: &Directory, b: &Backend) {
    let until = tokio::time::Instant::now() + b.node_ttl * 2;
    while tokio::time::Instant::now() < until {
        d.heartbeat(&status("a"), &[lobby("a", 1, "deathmatch")]).await.unwrap();
        tokio::time::sleep(b.node_ttl / 4).await;
        assert_eq!(d.nodes().await.unwrap().len(), 1);
        assert_eq!(d.lobbies(None).await.unwrap().len(), 1);
    }
}

async fn lobbies_are_replaced_not_accumulated(d: &Directory, _: &Backend) {
    d.heartbeat(&status("a"), &[lobby("a", 1, "deathmatch"), lobby("a", 2, "deathmatch")]).await.unwrap();
    d.heartbeat(&status("a"), &[lobby("a", 3, "deathmatch")]).await.unwrap();
    assert_eq!(d.lobbies(None).await.unwrap(), vec![lobby("a", 3, "deathmatch")]);
    assert_eq!(d.lobby(1).await.unwrap(), None);
    d.heartbeat(&status("a"), &[]).await.unwrap();
    assert!(d.lobbies(None).await.unwrap().is_empty());
    assert_eq!(d.nodes().await.unwrap().len(), 1, "a node with no lobbies is still listed");
}

async fn lobby_lookup(d: &Directory, _: &Backend) {
    d.heartbeat(&status("a"), &[lobby("a", 1, "deathmatch"), lobby("a", 2, "ctf")]).await.unwrap();
    d.heartbeat(&status("b"), &[lobby("b", 7, "deathmatch")]).await.unwrap();
    assert_eq!(d.lobby(7).await.unwrap(), Some(lobby("b", 7, "deathmatch")));
    assert_eq!(d.lobby(2).await.unwrap(), Some(lobby("a", 2, "ctf")));
    assert_eq!(d.lobby(99).await.unwrap(), None);
}

async fn listings_are_sorted_and_filtered_by_mode(d: &Directory, _: &Backend) {
    let b_lobbies = [lobby("b", 5, "deathmatch"), lobby("b", 3, "ctf"), lobby("b", 4, "deathmatch")];
    d.heartbeat(&status("b"), &b_lobbies).await.unwrap();
    d.heartbeat(&status("a"), &[lobby("a", 9, "deathmatch")]).await.unwrap();
    let node_ids: Vec<_> = d.nodes().await.unwrap().into_iter().map(|n| n.node_id).collect();
    assert_eq!(node_ids, ["a", "b"]);
    let all =
        [lobby("a", 9, "deathmatch"), lobby("b", 3, "ctf"), lobby("b", 4, "deathmatch"), lobby("b", 5, "deathmatch")];
    assert_eq!(d.lobbies(None).await.unwrap(), all);
    let deathmatch = [lobby("a", 9, "deathmatch"), lobby("b", 4, "deathmatch"), lobby("b", 5, "deathmatch")];
    assert_eq!(d.lobbies(Some("deathmatch")).await.unwrap(), deathmatch);
    assert_eq!(d.lobbies(Some("ctf")).await.unwrap(), [lobby("b", 3, "ctf")]);
    assert!(d.lobbies(Some("racing")).await.unwrap().is_empty());
}

async fn remove_node(d: &Directory, _: &Backend) {
    d.heartbeat(&status("a"), &[lobby("a", 1, "deathmatch")]).await.unwrap();
    d.heartbeat(&status("b"), &[lobby("b", 2, "deathmatch")]).await.unwrap();
    d.send_command("a", &drain(1)).await.unwrap();
    d.remove_node("a").await.unwrap();
    assert_eq!(d.nodes().await.unwrap(), vec![status("b")]);
    assert_eq!(d.lobbies(None).await.unwrap(), vec![lobby("b", 2, "deathmatch")]);
    assert_eq!(d.lobby(1).await.unwrap(), None);
    assert!(d.take_commands("a").await.unwrap().is_empty(), "a removed node's commands go with it");
    d.remove_node("never-seen").await.unwrap();
}

async fn claimed_results_are_invisible_until_acked(d: &Directory, _: &Backend) {
    for n in 1..=3 {
        d.push_result(&result(n)).await.unwrap();
    }
    let first = d.claim_results("api-1", 2).await.unwrap();
    assert_eq!(ids(&first), [1, 2], "oldest first, at most max");
    assert_eq!(first[0].result, result(1), "the result arrives intact");
    d.ack_result(&first[0].receipt).await.unwrap();
    let second = d.claim_results("api-1", 10).await.unwrap();
    assert_eq!(ids(&second), [3], "the unacknowledged claim is not handed out again before its timeout");
    assert!(d.claim_results("api-2", 10).await.unwrap().is_empty(), "not to another consumer either");
    assert!(d.claim_results("api-2", 0).await.unwrap().is_empty());
}

async fn unacked_result_is_redelivered_to_another_consumer(d: &Directory, _: &Backend) {
    d.push_result(&result(1)).await.unwrap();
    assert_eq!(ids(&d.claim_results("api-1", 10).await.unwrap()), [1]);
    assert!(d.claim_results("api-2", 10).await.unwrap().is_empty());
    outlive_short().await;
    let again = d.claim_results("api-2", 10).await.unwrap();
    assert_eq!(ids(&again), [1], "api-1 never acknowledged it, so api-2 gets it");
    d.ack_result(&again[0].receipt).await.unwrap();
    outlive_short().await;
    assert!(d.claim_results("api-3", 10).await.unwrap().is_empty());
}

async fn ack_is_final(d: &Directory, _: &Backend) {
    d.push_result(&result(1)).await.unwrap();
    d.push_result(&result(2)).await.unwrap();
    let claimed = d.claim_results("api-1", 10).await.unwrap();
    assert_eq!(ids(&claimed), [1, 2]);
    for c in &claimed {
        d.ack_result(&c.receipt).await.unwrap();
        d.ack_result(&c.receipt).await.unwrap(); // a repeated ack is harmless
    }
    d.ack_result("not-a-receipt").await.unwrap();
    d.ack_result("1-1").await.unwrap();
    outlive_short().await;
    assert!(d.claim_results("api-1", 10).await.unwrap().is_empty());
    assert!(d.claim_results("api-2", 10).await.unwrap().is_empty());
}

async fn results_survive_until_acked(d: &Directory, b: &Backend) {
    d.push_result(&result(1)).await.unwrap();
    d.push_result(&result(2)).await.unwrap();
    assert_eq!(ids(&d.claim_results("api-1", 1).await.unwrap()), [1]);
    // The API that claimed result 1 dies before acknowledging it; another
    // one (for Redis: a new connection) takes over.
    let other = b.reopen(d).await;
    assert_eq!(ids(&other.claim_results("api-2", 10).await.unwrap()), [2]);
    outlive_short().await;
    let redelivered = other.claim_results("api-2", 10).await.unwrap();
    assert_eq!(ids(&redelivered), [1, 2], "both unacknowledged results come back, oldest first");
    for c in &redelivered {
        other.ack_result(&c.receipt).await.unwrap();
    }
    let third = b.reopen(d).await;
    outlive_short().await;
    assert!(third.claim_results("api-3", 10).await.unwrap().is_empty());
}

async fn commands_are_bounded_and_taken_once(d: &Directory, _: &Backend) {
    let kick = NodeCommand::Kick { account: uuid::Uuid::from_u128(5), reason: "cheating".into() };
    d.send_command("b", &kick).await.unwrap();
    for i in 0..1030 {
        d.send_command("a", &drain(i)).await.unwrap();
    }
    let taken = d.take_commands("a").await.unwrap();
    assert_eq!(taken.len(), 1024, "bounded");
    assert_eq!((taken.first(), taken.last()), (Some(&drain(6)), Some(&drain(1029))), "the oldest are dropped");
    assert!(d.take_commands("a").await.unwrap().is_empty(), "taken once");
    assert_eq!(d.take_commands("b").await.unwrap(), [kick], "each node has its own queue");
}

/// Handlers and node loops run on a multi-threaded runtime: every call's
/// future must be `Send`, whichever directory it is.
#[test]
fn directory_futures_are_send() {
    fn send<T: Send>(_: T) {}
    let d = Directory::local();
    let (s, l, r, c) = (status("a"), [lobby("a", 1, "deathmatch")], result(1), drain(1));
    send(d.ping());
    send(d.heartbeat(&s, &l));
    send(d.remove_node("a"));
    send(d.push_result(&r));
    send(d.take_commands("a"));
    send(d.nodes());
    send(d.lobbies(None));
    send(d.lobby(1));
    send(d.send_command("a", &c));
    send(d.claim_results("api", 1));
    send(d.ack_result("1-0"));
    send(Directory::redis("redis://127.0.0.1:1", "p", LONG, LONG));
}
