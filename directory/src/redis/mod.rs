//! The directory in Redis, shared by many game nodes and API replicas. The
//! semantics are [`LocalDirectory`](crate::LocalDirectory)'s; Redis supplies
//! the expiry (key TTLs) and the durable, redeliverable queue (a stream with
//! a consumer group).
//!
//! Key layout (`P` is the prefix given to [`Directory::redis`](crate::Directory::redis)):
//!
//! | key | type | contents |
//! | --- | --- | --- |
//! | `P:node:{node}` | string | [`NodeStatus`] JSON; expires after the node TTL |
//! | `P:lobbies:{node}` | hash | lobby id → [`LobbySummary`] JSON; replaced whole by each heartbeat, same TTL |
//! | `P:nodes` | set | ids of nodes that sent heartbeats; members whose `P:node:` key expired are pruned when listed |
//! | `P:commands:{node}` | list | [`NodeCommand`] JSON, oldest first, at most 1024, expires an hour after the last send |
//! | `P:results` | stream | field `result` = `MatchResult` JSON; consumer group `api`; entries deleted on ack |
//! | `P:results:dead` | stream | entries of `P:results` that did not parse, kept for inspection (capped) |
//!
//! Listing runs as Lua scripts that read keys named from the prefix, so
//! this layout suits a single Redis (or a primary with replicas), not
//! Redis Cluster.

mod commands;
mod conn;
mod nodes;
mod results;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protocol::LobbyId;
use protocol::directory::{LobbySummary, NodeCommand, NodeStatus};
use protocol::results::MatchResult;

use crate::{ClaimedResult, DirectoryError};
use conn::Conn;

/// A directory stored in Redis under one key prefix. Cheap to clone.
#[derive(Clone)]
pub struct RedisDirectory(Arc<Inner>);

struct Inner {
    conn: Conn,
    prefix: String,
    node_ttl: Duration,
    claim_timeout: Duration,
    /// When idle consumers were last removed from the results group.
    last_sweep: Mutex<Option<Instant>>,
}

impl RedisDirectory {
    /// Connects (within a couple of seconds or fails with `Unavailable`) and
    /// makes sure the results consumer group exists.
    pub async fn connect(
        url: &str,
        prefix: &str,
        node_ttl: Duration,
        claim_timeout: Duration,
    ) -> Result<RedisDirectory, DirectoryError> {
        let conn = Conn::open(url).await?;
        let inner = Inner { conn, prefix: prefix.to_owned(), node_ttl, claim_timeout, last_sweep: Mutex::new(None) };
        let d = RedisDirectory(Arc::new(inner));
        results::create_group(&d).await?;
        Ok(d)
    }

    pub fn prefix(&self) -> &str {
        &self.0.prefix
    }

    fn key(&self, kind: &str) -> String {
        format!("{}:{kind}", self.0.prefix)
    }

    fn node_key(&self, kind: &str, node_id: &str) -> String {
        format!("{}:{kind}:{node_id}", self.0.prefix)
    }

    pub async fn ping(&self) -> Result<(), DirectoryError> {
        self.0.conn.run(|mut con| async move { ::redis::cmd("PING").query_async::<String>(&mut con).await }).await?;
        Ok(())
    }

    // The operations themselves live in `nodes`, `results` and `commands`;
    // these forwarders keep the public surface in one place.

    pub async fn heartbeat(&self, status: &NodeStatus, lobbies: &[LobbySummary]) -> Result<(), DirectoryError> {
        nodes::heartbeat(self, status, lobbies).await
    }

    pub async fn remove_node(&self, node_id: &str) -> Result<(), DirectoryError> {
        nodes::remove(self, node_id).await
    }

    pub async fn nodes(&self) -> Result<Vec<NodeStatus>, DirectoryError> {
        nodes::list(self).await
    }

    pub async fn lobbies(&self, mode: Option<&str>) -> Result<Vec<LobbySummary>, DirectoryError> {
        nodes::lobbies(self, mode).await
    }

    pub async fn lobby(&self, id: LobbyId) -> Result<Option<LobbySummary>, DirectoryError> {
        nodes::lobby(self, id).await
    }

    pub async fn push_result(&self, result: &MatchResult) -> Result<(), DirectoryError> {
        results::push(self, result).await
    }

    pub async fn claim_results(&self, consumer: &str, max: usize) -> Result<Vec<ClaimedResult>, DirectoryError> {
        results::claim(self, consumer, max).await
    }

    pub async fn ack_result(&self, receipt: &str) -> Result<(), DirectoryError> {
        results::ack(self, receipt).await
    }

    pub async fn send_command(&self, node_id: &str, command: &NodeCommand) -> Result<(), DirectoryError> {
        commands::send(self, node_id, command).await
    }

    pub async fn take_commands(&self, node_id: &str) -> Result<Vec<NodeCommand>, DirectoryError> {
        commands::take(self, node_id).await
    }
}

/// Parses JSON written by another directory client.
fn decode<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T, DirectoryError> {
    serde_json::from_str(json).map_err(|e| DirectoryError::Corrupt(format!("{what}: {e}")))
}

fn encode<T: serde::Serialize>(value: &T) -> String {
    // Plain structs of strings and numbers: serialization cannot fail.
    serde_json::to_string(value).expect("directory types serialize")
}

/// Milliseconds for Redis, which refuses a zero expiry.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
