//! What only the Redis directory has: a network in the way, a key layout
//! other tools may inspect, and data it did not write itself. Behaviour
//! shared with the in-process directory is in `conformance.rs`.

mod support;

use std::future::Future;
use std::time::{Duration, Instant};

use directory::{Directory, DirectoryError};
use redis::AsyncCommands;
use support::proxy::{Mode, Proxy};
use support::{Backend, lobby, raw_redis, redis_url, result, status};

const SHORT: Duration = Duration::from_millis(400);
const LONG: Duration = Duration::from_secs(60);
/// "Within a couple of seconds": the operation timeout plus slack for a
/// loaded test machine.
const FAIL_FAST: Duration = Duration::from_secs(3);

async fn outlive_short() {
    tokio::time::sleep(SHORT + Duration::from_millis(250)).await;
}

/// Runs `op`, which must fail with `Unavailable` within [`FAIL_FAST`].
async fn fails_fast<T: std::fmt::Debug>(what: &str, op: impl Future<Output = Result<T, DirectoryError>>) {
    let started = Instant::now();
    let outcome = tokio::time::timeout(FAIL_FAST * 2, op).await;
    let elapsed = started.elapsed();
    match outcome {
        Ok(Err(DirectoryError::Unavailable(_))) => {}
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
    assert!(elapsed < FAIL_FAST, "{what} took {elapsed:?}");
}

/// Polls `ping` until it answers; the directory must heal by itself.
async fn recovers(d: &Directory, within: Duration) {
    let deadline = Instant::now() + within;
    while let Err(e) = d.ping().await {
        assert!(Instant::now() < deadline, "still failing after {within:?}: {e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn via_proxy(b: &Backend, proxy: &Proxy) -> Directory {
    let url = proxy.url(&redis_url());
    Directory::redis(&url, b.prefix().unwrap(), b.node_ttl, b.claim_timeout).await.unwrap()
}

fn key(b: &Backend, suffix: &str) -> String {
    format!("{}:{suffix}", b.prefix().unwrap())
}

/// Needs no Redis: nothing answers, or something answers nothing.
#[tokio::test]
async fn unreachable_redis_fails_fast_at_construction() {
    fails_fast("refused", Directory::redis("redis://127.0.0.1:1", "t", LONG, LONG)).await;
    let silent = Proxy::start("redis://127.0.0.1:1", Mode::Stall).await;
    fails_fast("silent", Directory::redis(&silent.url("redis://127.0.0.1:1"), "t", LONG, LONG)).await;
    fails_fast("bad url", Directory::redis("not a url", "t", LONG, LONG)).await;
}

#[tokio::test]
async fn closed_connections_fail_fast_then_recover() {
    let Some(b) = Backend::redis(LONG, LONG) else { return };
    let proxy = Proxy::start(&redis_url(), Mode::Forward).await;
    let d = via_proxy(&b, &proxy).await;
    d.heartbeat(&status("a"), &[]).await.unwrap();

    proxy.set(Mode::Close); // Redis restarting: connections closed, new ones refused
    fails_fast("after close", d.nodes()).await;
    fails_fast("while closed", d.heartbeat(&status("a"), &[])).await;

    proxy.set(Mode::Forward);
    recovers(&d, Duration::from_secs(5)).await;
    assert_eq!(d.nodes().await.unwrap(), vec![status("a")]);
}

#[tokio::test]
async fn a_silent_server_fails_fast_then_recovers() {
    let Some(b) = Backend::redis(LONG, LONG) else { return };
    let proxy = Proxy::start(&redis_url(), Mode::Forward).await;
    let d = via_proxy(&b, &proxy).await;
    d.heartbeat(&status("a"), &[]).await.unwrap();

    proxy.set(Mode::Stall); // connections stay open and nothing answers
    let pushed = result(1);
    tokio::join!(
        fails_fast("nodes", d.nodes()),
        fails_fast("claim", d.claim_results("api", 10)),
        fails_fast("push", d.push_result(&pushed)),
    );

    // The stalled connection is never going to answer; the directory must
    // replace it rather than time out on it forever.
    proxy.set(Mode::Forward);
    recovers(&d, Duration::from_secs(6)).await;
    assert_eq!(d.nodes().await.unwrap(), vec![status("a")]);
}

#[tokio::test]
async fn keys_follow_the_documented_layout() {
    let Some(b) = Backend::redis(Duration::from_secs(10), LONG) else { return };
    let d = b.open().await;
    let mut raw = raw_redis().await;
    d.heartbeat(&status("a"), &[lobby("a", 1, "deathmatch")]).await.unwrap();
    d.send_command("a", &support::drain(1)).await.unwrap();
    d.push_result(&result(1)).await.unwrap();

    let ttl = |k: String| {
        let mut raw = raw.clone();
        async move { raw.pttl::<_, i64>(k).await.unwrap() }
    };
    assert!((1..=10_000).contains(&ttl(key(&b, "node:a")).await));
    assert!((1..=10_000).contains(&ttl(key(&b, "lobbies:a")).await));
    assert!((1..=3_600_000).contains(&ttl(key(&b, "commands:a")).await));
    assert_eq!(raw.hlen::<_, usize>(key(&b, "lobbies:a")).await.unwrap(), 1);
    assert!(raw.sismember::<_, _, bool>(key(&b, "nodes"), "a").await.unwrap());
    assert_eq!(raw.llen::<_, usize>(key(&b, "commands:a")).await.unwrap(), 1);
    assert_eq!(raw.xlen::<_, usize>(key(&b, "results")).await.unwrap(), 1);

    let claimed = d.claim_results("api", 10).await.unwrap();
    d.ack_result(&claimed[0].receipt).await.unwrap();
    assert_eq!(raw.xlen::<_, usize>(key(&b, "results")).await.unwrap(), 0, "acknowledged results are deleted");
}

#[tokio::test]
async fn expired_nodes_are_pruned_from_the_index() {
    let Some(b) = Backend::redis(SHORT, LONG) else { return };
    let d = b.open().await;
    let mut raw = raw_redis().await;
    d.heartbeat(&status("a"), &[]).await.unwrap();
    d.heartbeat(&status("b"), &[]).await.unwrap();
    outlive_short().await;
    d.heartbeat(&status("b"), &[]).await.unwrap();
    assert_eq!(d.nodes().await.unwrap(), vec![status("b")]);
    let members: Vec<String> = raw.smembers(key(&b, "nodes")).await.unwrap();
    assert_eq!(members, ["b"]);
}

#[tokio::test]
async fn unreadable_results_are_moved_aside() {
    let Some(b) = Backend::redis(LONG, SHORT) else { return };
    let d = b.open().await;
    let mut raw = raw_redis().await;
    let _: String = raw.xadd(key(&b, "results"), "*", &[("result", "{not json")]).await.unwrap();
    d.push_result(&result(2)).await.unwrap();
    let claimed = d.claim_results("api", 10).await.unwrap();
    assert_eq!(claimed.iter().map(|c| c.result.clone()).collect::<Vec<_>>(), [result(2)]);
    d.ack_result(&claimed[0].receipt).await.unwrap();
    outlive_short().await;
    assert!(d.claim_results("api", 10).await.unwrap().is_empty(), "the bad entry does not come back");
    assert_eq!(raw.xlen::<_, usize>(key(&b, "results")).await.unwrap(), 0);
    assert_eq!(raw.xlen::<_, usize>(key(&b, "results:dead")).await.unwrap(), 1, "kept for a human");
}

#[tokio::test]
async fn a_deleted_results_stream_is_recreated() {
    let Some(b) = Backend::redis(LONG, LONG) else { return };
    let d = b.open().await;
    let mut raw = raw_redis().await;
    let _: () = raw.del(key(&b, "results")).await.unwrap(); // the consumer group goes with it
    d.push_result(&result(1)).await.unwrap();
    let claimed = d.claim_results("api", 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "results pushed before the group existed are delivered");
}

#[tokio::test]
async fn idle_consumers_are_removed() {
    let Some(b) = Backend::redis(LONG, SHORT) else { return };
    let d = b.open().await;
    for n in 1..=3 {
        d.push_result(&result(n)).await.unwrap();
    }
    let gone = d.claim_results("gone", 1).await.unwrap();
    d.ack_result(&gone[0].receipt).await.unwrap();
    assert_eq!(d.claim_results("holder", 2).await.unwrap().len(), 2);
    outlive_short().await;

    // A new instance sweeps (in the background) on its first claim. "gone"
    // holds nothing and is removed; "holder" still holds a result whatever
    // the order of sweep and claim, and is kept.
    let fresh = b.reopen(&d).await;
    assert_eq!(fresh.claim_results("fresh", 1).await.unwrap().len(), 1);
    let mut raw = raw_redis().await;
    let deadline = Instant::now() + FAIL_FAST;
    let names = loop {
        let info: redis::streams::StreamInfoConsumersReply =
            raw.xinfo_consumers(key(&b, "results"), "api").await.unwrap();
        let mut names: Vec<_> = info.consumers.into_iter().map(|c| c.name).collect();
        names.sort();
        if !names.iter().any(|n| n == "gone") || Instant::now() > deadline {
            break names;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(names, ["fresh", "holder"]);
    assert_eq!(fresh.claim_results("fresh", 10).await.unwrap().len(), 1, "what holder held is not lost");
}
