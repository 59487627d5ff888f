//! The directory connects the API and the game nodes without either
//! touching the other's storage:
//!
//! * nodes send heartbeats ([`NodeStatus`]) with their lobby summaries, which
//!   expire unless renewed, so a dead node disappears by itself;
//! * nodes push finished matches into a durable queue the API drains
//!   exactly once per match (claim, persist idempotently, then acknowledge;
//!   unacknowledged results are delivered again);
//! * the API sends [`NodeCommand`]s (kick, drain) to a node.
//!
//! [`Directory::local`] lives in one process (`trespasser serve`);
//! [`Directory::redis`] serves many nodes and API replicas. Both pass one
//! conformance suite (`tests/conformance.rs`). The Redis key layout is
//! documented in `src/redis/mod.rs`: per node a status string and a lobby
//! hash that expire together, a list of commands, and one stream with a
//! consumer group for match results.

mod local;
mod redis;

use std::sync::Arc;
use std::time::Duration;

pub use crate::redis::RedisDirectory;
pub use local::LocalDirectory;
use protocol::LobbyId;
pub use protocol::directory::{LobbySummary, NodeCommand, NodeStatus};
use protocol::results::MatchResult;

/// How long a node's heartbeat (and its lobbies) stay visible.
pub const DEFAULT_NODE_TTL: Duration = Duration::from_secs(10);
/// A claimed result not acknowledged within this time is delivered again.
pub const DEFAULT_CLAIM_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    #[error("directory data is corrupt: {0}")]
    Corrupt(String),
}

/// A match result taken from the queue; acknowledge it with its receipt once
/// it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedResult {
    pub receipt: String,
    pub result: MatchResult,
}

/// The directory, in-process or shared.
#[derive(Clone)]
pub enum Directory {
    /// In memory, for a single process (`trespasser serve`).
    Local(Arc<LocalDirectory>),
    /// In Redis, shared by every node and API replica.
    Redis(RedisDirectory),
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Directory::Local(_) => f.write_str("Directory::Local"),
            Directory::Redis(d) => write!(f, "Directory::Redis({:?})", d.prefix()),
        }
    }
}

impl Directory {
    /// An in-process directory with the default TTL and claim timeout.
    pub fn local() -> Directory {
        Directory::local_with(DEFAULT_NODE_TTL, DEFAULT_CLAIM_TIMEOUT)
    }

    /// An in-process directory with the given node TTL and claim timeout.
    pub fn local_with(node_ttl: Duration, claim_timeout: Duration) -> Directory {
        Directory::Local(Arc::new(LocalDirectory::new(node_ttl, claim_timeout)))
    }

    /// A directory in Redis at `url` (`redis://host:port/db`), every key
    /// under `prefix`. Fails with [`DirectoryError::Unavailable`] within a
    /// couple of seconds when Redis cannot be reached; afterwards it
    /// reconnects by itself, and no call waits longer than that either.
    pub async fn redis(
        url: &str,
        prefix: &str,
        node_ttl: Duration,
        claim_timeout: Duration,
    ) -> Result<Directory, DirectoryError> {
        Ok(Directory::Redis(RedisDirectory::connect(url, prefix, node_ttl, claim_timeout).await?))
    }

    /// Whether the directory answers (for readiness checks).
    pub async fn ping(&self) -> Result<(), DirectoryError> {
        match self {
            Directory::Local(_) => Ok(()),
            Directory::Redis(d) => d.ping().await,
        }
    }

    /// Node side: publishes the node's status and replaces its lobby list.
    pub async fn heartbeat(&self, status: &NodeStatus, lobbies: &[LobbySummary]) -> Result<(), DirectoryError> {
        match self {
            Directory::Local(d) => {
                d.heartbeat(status, lobbies);
                Ok(())
            }
            Directory::Redis(d) => d.heartbeat(status, lobbies).await,
        }
    }

    /// Node side: removes the node at once (clean shutdown).
    pub async fn remove_node(&self, node_id: &str) -> Result<(), DirectoryError> {
        match self {
            Directory::Local(d) => {
                d.remove_node(node_id);
                Ok(())
            }
            Directory::Redis(d) => d.remove_node(node_id).await,
        }
    }

    /// Node side: queues a finished match for the API.
    pub async fn push_result(&self, result: &MatchResult) -> Result<(), DirectoryError> {
        match self {
            Directory::Local(d) => {
                d.push_result(result);
                Ok(())
            }
            Directory::Redis(d) => d.push_result(result).await,
        }
    }

    /// Node side: takes the commands waiting for this node, oldest first.
    pub async fn take_commands(&self, node_id: &str) -> Result<Vec<NodeCommand>, DirectoryError> {
        match self {
            Directory::Local(d) => Ok(d.take_commands(node_id)),
            Directory::Redis(d) => d.take_commands(node_id).await,
        }
    }

    /// API side: nodes whose heartbeat has not expired.
    pub async fn nodes(&self) -> Result<Vec<NodeStatus>, DirectoryError> {
        match self {
            Directory::Local(d) => Ok(d.nodes()),
            Directory::Redis(d) => d.nodes().await,
        }
    }

    /// API side: lobbies of live nodes, optionally of one mode.
    pub async fn lobbies(&self, mode: Option<&str>) -> Result<Vec<LobbySummary>, DirectoryError> {
        match self {
            Directory::Local(d) => Ok(d.lobbies(mode)),
            Directory::Redis(d) => d.lobbies(mode).await,
        }
    }

    pub async fn lobby(&self, id: LobbyId) -> Result<Option<LobbySummary>, DirectoryError> {
        match self {
            Directory::Local(d) => Ok(d.lobby(id)),
            Directory::Redis(d) => d.lobby(id).await,
        }
    }

    /// API side: queues a command for a node.
    pub async fn send_command(&self, node_id: &str, command: &NodeCommand) -> Result<(), DirectoryError> {
        match self {
            Directory::Local(d) => {
                d.send_command(node_id, command);
                Ok(())
            }
            Directory::Redis(d) => d.send_command(node_id, command).await,
        }
    }

    /// API side: claims up to `max` results for `consumer`, including ones
    /// claimed earlier but not acknowledged within the claim timeout. Redis
    /// hands out at most 10,000 per call.
    pub async fn claim_results(&self, consumer: &str, max: usize) -> Result<Vec<ClaimedResult>, DirectoryError> {
        match self {
            Directory::Local(d) => Ok(d.claim_results(consumer, max)),
            Directory::Redis(d) => d.claim_results(consumer, max).await,
        }
    }

    /// API side: the result is stored; remove it from the queue.
    pub async fn ack_result(&self, receipt: &str) -> Result<(), DirectoryError> {
        match self {
            Directory::Local(d) => {
                d.ack_result(receipt);
                Ok(())
            }
            Directory::Redis(d) => d.ack_result(receipt).await,
        }
    }
}
