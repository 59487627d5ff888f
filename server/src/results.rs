//! Where finished matches go. The HTTP API will persist them (idempotently,
//! on the match id); until then the node logs and counts them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use protocol::results::MatchResult;

/// Receives match results. Implementations must not block: the lobby's
/// simulation loop calls `submit`.
pub trait MatchResultSink: Send + Sync {
    fn submit(&self, result: MatchResult);
}

/// Logs each result as one JSON line and counts them.
#[derive(Debug, Default)]
pub struct LogSink {
    submitted: AtomicU64,
}

impl LogSink {
    pub fn submitted(&self) -> u64 {
        self.submitted.load(Ordering::Relaxed)
    }
}

impl MatchResultSink for LogSink {
    fn submit(&self, result: MatchResult) {
        self.submitted.fetch_add(1, Ordering::Relaxed);
        match serde_json::to_string(&result) {
            Ok(json) => tracing::info!(target: "match_result", %json, "match finished"),
            Err(e) => tracing::error!(error = %e, "could not serialize match result"),
        }
    }
}

/// Keeps every result in memory; for tests.
#[derive(Debug, Default)]
pub struct MemorySink {
    pub results: std::sync::Mutex<Vec<MatchResult>>,
}

impl MatchResultSink for MemorySink {
    fn submit(&self, result: MatchResult) {
        self.results.lock().expect("sink lock").push(result);
    }
}

impl<T: MatchResultSink + ?Sized> MatchResultSink for Arc<T> {
    fn submit(&self, result: MatchResult) {
        (**self).submit(result)
    }
}
