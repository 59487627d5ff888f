//! The node's side of the directory: heartbeats with lobby summaries, match
//! results pushed for the API (retried until accepted, never dropped) and
//! commands from the API (kick, drain).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use directory::{Directory, LobbySummary, NodeCommand, NodeStatus};
use protocol::results::MatchResult;
use tokio::sync::mpsc;

use crate::load::NodeLoad;
use crate::lobby::LobbyManager;
use crate::results::MatchResultSink;

/// How often a node renews its heartbeat (well inside the directory's TTL).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);

/// Where clients reach this node, as announced in heartbeats.
#[derive(Debug, Clone)]
pub struct Announce {
    pub node_id: String,
    pub public_host: String,
    pub public_port: u16,
    pub cert_sha256: String,
}

/// Hands results to a background task that pushes them to the directory.
pub struct DirectorySink {
    tx: mpsc::UnboundedSender<MatchResult>,
}

impl MatchResultSink for DirectorySink {
    fn submit(&self, result: MatchResult) {
        if let Ok(json) = serde_json::to_string(&result) {
            tracing::info!(target: "match_result", %json, "match finished");
        }
        if self.tx.send(result).is_err() {
            tracing::error!("match result pusher stopped; result lost");
        }
    }
}

/// Starts the result pusher. Results stay in memory until the directory
/// takes them: a directory outage delays results, it does not lose them
/// (only the node dying with a backlog does; it logs each result first).
pub fn result_sink(directory: Directory) -> DirectorySink {
    let (tx, mut rx) = mpsc::unbounded_channel::<MatchResult>();
    tokio::spawn(async move {
        let mut backlog: VecDeque<MatchResult> = VecDeque::new();
        let mut wait = Duration::from_millis(100);
        loop {
            if backlog.is_empty() {
                match rx.recv().await {
                    Some(r) => backlog.push_back(r),
                    None => return,
                }
            }
            while let Ok(r) = rx.try_recv() {
                backlog.push_back(r);
            }
            while let Some(r) = backlog.front() {
                match directory.push_result(r).await {
                    Ok(()) => {
                        backlog.pop_front();
                        wait = Duration::from_millis(100);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, backlog = backlog.len(), "cannot push match results; retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(5));
                        break;
                    }
                }
            }
        }
    });
    DirectorySink { tx }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The node's current status and lobbies.
pub fn snapshot(manager: &LobbyManager, announce: &Announce, load: &NodeLoad) -> (NodeStatus, Vec<LobbySummary>) {
    let lobbies: Vec<LobbySummary> =
        manager.list(None).iter().map(|l| LobbySummary::from_info(&announce.node_id, l)).collect();
    let settings = manager.settings();
    let status = NodeStatus {
        node_id: announce.node_id.clone(),
        public_host: announce.public_host.clone(),
        public_port: announce.public_port,
        cert_sha256: announce.cert_sha256.clone(),
        modes: settings.modes.clone(),
        max_lobbies: settings.max_lobbies as u32,
        players_per_lobby: settings.lobby.max_players,
        lobbies: lobbies.len() as u32,
        players: manager.account_count() as u32,
        connections: manager.metrics().connections.get().max(0) as u32,
        draining: manager.is_draining(),
        overloaded: load.overloaded(),
        sent_at_ms: now_ms(),
    };
    (status, lobbies)
}

/// Heartbeats and command polling until the task is aborted.
pub async fn run(directory: Directory, manager: Arc<LobbyManager>, announce: Announce, load: Arc<NodeLoad>) {
    let mut tick = tokio::time::interval(HEARTBEAT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (status, lobbies) = snapshot(&manager, &announce, &load);
        if let Err(e) = directory.heartbeat(&status, &lobbies).await {
            tracing::warn!(error = %e, "heartbeat failed");
        }
        match directory.take_commands(&announce.node_id).await {
            Ok(commands) => {
                for c in commands {
                    apply(&manager, c).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read node commands"),
        }
    }
}

async fn apply(manager: &LobbyManager, command: NodeCommand) {
    match command {
        NodeCommand::Kick { account, reason } => {
            let found = manager.kick(account, &reason);
            tracing::info!(%account, found, "kick command");
        }
        NodeCommand::Drain { reason } => {
            tracing::info!(%reason, "drain command");
            manager.drain(&reason).await;
        }
    }
}
