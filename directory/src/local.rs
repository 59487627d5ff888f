//! The in-process directory: the same semantics as the Redis one (expiry,
//! redelivery of unacknowledged results), held in memory, bounded.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use protocol::LobbyId;
use protocol::directory::{LobbySummary, NodeCommand, NodeStatus};
use protocol::results::MatchResult;

use crate::ClaimedResult;

/// Commands kept per node before the oldest are dropped (a node that never
/// polls must not grow memory).
const MAX_COMMANDS_PER_NODE: usize = 1024;
/// Results are never dropped (they are players' stats), so the queue is
/// bounded only by what the API has not stored yet; a warning is logged
/// when the backlog reaches this size.
const RESULT_BACKLOG_WARNING: usize = 10_000;

struct NodeEntry {
    status: NodeStatus,
    lobbies: Vec<LobbySummary>,
    seen: Instant,
}

struct Pending {
    result: MatchResult,
    claimed: Option<Instant>,
}

#[derive(Default)]
struct State {
    nodes: HashMap<String, NodeEntry>,
    commands: HashMap<String, VecDeque<NodeCommand>>,
    results: VecDeque<(u64, Pending)>,
    next_receipt: u64,
}

pub struct LocalDirectory {
    ttl: Duration,
    claim_timeout: Duration,
    state: Mutex<State>,
}

impl LocalDirectory {
    pub fn new(ttl: Duration, claim_timeout: Duration) -> LocalDirectory {
        LocalDirectory { ttl, claim_timeout, state: Mutex::new(State::default()) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn live<'a>(&self, s: &'a mut State) -> impl Iterator<Item = &'a NodeEntry> {
        let ttl = self.ttl;
        s.nodes.retain(|_, n| n.seen.elapsed() < ttl);
        s.nodes.values()
    }

    pub fn heartbeat(&self, status: &NodeStatus, lobbies: &[LobbySummary]) {
        let entry = NodeEntry { status: status.clone(), lobbies: lobbies.to_vec(), seen: Instant::now() };
        self.state().nodes.insert(status.node_id.clone(), entry);
    }

    pub fn remove_node(&self, node_id: &str) {
        let mut s = self.state();
        s.nodes.remove(node_id);
        s.commands.remove(node_id);
    }

    pub fn push_result(&self, result: &MatchResult) {
        let mut s = self.state();
        s.next_receipt += 1;
        let receipt = s.next_receipt;
        s.results.push_back((receipt, Pending { result: result.clone(), claimed: None }));
        if s.results.len() == RESULT_BACKLOG_WARNING {
            tracing::warn!(backlog = s.results.len(), "match results are not being stored");
        }
    }

    pub fn take_commands(&self, node_id: &str) -> Vec<NodeCommand> {
        self.state().commands.remove(node_id).map(Vec::from).unwrap_or_default()
    }

    pub fn nodes(&self) -> Vec<NodeStatus> {
        let mut s = self.state();
        let mut v: Vec<_> = self.live(&mut s).map(|n| n.status.clone()).collect();
        v.sort_by(|a, b| a.node_id.cmp(&b.node_id));
        v
    }

    pub fn lobbies(&self, mode: Option<&str>) -> Vec<LobbySummary> {
        let mut s = self.state();
        let mut v: Vec<_> = self
            .live(&mut s)
            .flat_map(|n| n.lobbies.iter())
            .filter(|l| mode.is_none_or(|m| l.mode == m))
            .cloned()
            .collect();
        v.sort_by(|a, b| a.node_id.cmp(&b.node_id).then(a.id.cmp(&b.id)));
        v
    }

    pub fn lobby(&self, id: LobbyId) -> Option<LobbySummary> {
        let mut s = self.state();
        self.live(&mut s).flat_map(|n| n.lobbies.iter()).find(|l| l.id == id).cloned()
    }

    pub fn send_command(&self, node_id: &str, command: &NodeCommand) {
        let mut s = self.state();
        let q = s.commands.entry(node_id.to_owned()).or_default();
        if q.len() >= MAX_COMMANDS_PER_NODE {
            q.pop_front();
        }
        q.push_back(command.clone());
    }

    pub fn claim_results(&self, _consumer: &str, max: usize) -> Vec<ClaimedResult> {
        let timeout = self.claim_timeout;
        let mut s = self.state();
        let now = Instant::now();
        s.results
            .iter_mut()
            .filter(|(_, p)| p.claimed.is_none_or(|at| now.duration_since(at) >= timeout))
            .take(max)
            .map(|(receipt, p)| {
                p.claimed = Some(now);
                ClaimedResult { receipt: receipt.to_string(), result: p.result.clone() }
            })
            .collect()
    }

    pub fn ack_result(&self, receipt: &str) {
        let Ok(receipt) = receipt.parse::<u64>() else { return };
        self.state().results.retain(|(r, _)| *r != receipt);
    }

    /// Results queued and not yet acknowledged.
    pub fn backlog(&self) -> usize {
        self.state().results.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(id: &str) -> NodeStatus {
        NodeStatus {
            node_id: id.into(),
            public_host: "127.0.0.1".into(),
            public_port: 4433,
            cert_sha256: String::new(),
            modes: vec!["deathmatch".into()],
            max_lobbies: 10,
            players_per_lobby: 8,
            lobbies: 0,
            players: 0,
            connections: 0,
            draining: false,
            overloaded: false,
            sent_at_ms: 0,
        }
    }

    fn lobby(node: &str, id: u64) -> LobbySummary {
        LobbySummary {
            node_id: node.into(),
            id,
            mode: "deathmatch".into(),
            players: 1,
            max_players: 8,
            state: "playing".into(),
        }
    }

    fn result(n: u128) -> MatchResult {
        MatchResult {
            match_id: uuid::Uuid::from_u128(n),
            lobby_id: 1,
            node_id: "a".into(),
            mode: "deathmatch".into(),
            map: "arena".into(),
            started_at_ms: 0,
            ended_at_ms: 1,
            winner: None,
            kill_target: 50,
            players: vec![],
        }
    }

    #[test]
    fn heartbeats_expire() {
        let d = LocalDirectory::new(Duration::from_millis(50), Duration::from_secs(30));
        d.heartbeat(&status("a"), &[lobby("a", 1)]);
        assert_eq!(d.nodes().len(), 1);
        assert_eq!(d.lobby(1).unwrap().node_id, "a");
        std::thread::sleep(Duration::from_millis(60));
        assert!(d.nodes().is_empty());
        assert!(d.lobbies(None).is_empty());
    }

    #[test]
    fn unacknowledged_results_are_delivered_again() {
        let d = LocalDirectory::new(Duration::from_secs(10), Duration::from_millis(30));
        d.push_result(&result(1));
        d.push_result(&result(2));
        let first = d.claim_results("api", 10);
        assert_eq!(first.len(), 2);
        assert!(d.claim_results("api", 10).is_empty(), "claimed results are invisible for a while");
        d.ack_result(&first[0].receipt);
        std::thread::sleep(Duration::from_millis(40));
        let again = d.claim_results("api", 10);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].result.match_id, uuid::Uuid::from_u128(2));
        d.ack_result(&again[0].receipt);
        assert_eq!(d.backlog(), 0);
    }

    #[test]
    fn commands_are_taken_once_and_bounded() {
        let d = LocalDirectory::new(Duration::from_secs(10), Duration::from_secs(30));
        for _ in 0..MAX_COMMANDS_PER_NODE + 5 {
            d.send_command("a", &NodeCommand::Drain { reason: "x".into() });
        }
        assert_eq!(d.take_commands("a").len(), MAX_COMMANDS_PER_NODE);
        assert!(d.take_commands("a").is_empty());
    }
}
