//! Background jobs of the API: storing match results from the directory,
//! and housekeeping of bounded state.

use std::time::Duration;

use chrono::Utc;

use crate::state::AppState;
use crate::store::StoreError;

/// How many results one pass claims.
const BATCH: usize = 64;

/// Drains the directory's match-result queue into the store, exactly once
/// per match: a result is acknowledged only after it is stored (or found
/// already stored); on a store failure it stays queued and comes back.
pub async fn store_results(state: AppState) {
    let consumer = format!("api-{}-{}", std::process::id(), uuid::Uuid::new_v4().simple());
    let mut idle = Duration::from_millis(100);
    loop {
        let stored = drain_once(&state, &consumer).await;
        idle = if stored > 0 { Duration::from_millis(10) } else { (idle * 2).min(Duration::from_millis(500)) };
        tokio::time::sleep(idle).await;
    }
}

/// One pass; returns how many results were handled.
pub async fn drain_once(state: &AppState, consumer: &str) -> usize {
    let claimed = match state.directory.claim_results(consumer, BATCH).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read match results from the directory");
            return 0;
        }
    };
    let mut handled = 0;
    for c in claimed {
        match state.store.record_match(&c.result).await {
            Ok(inserted) => {
                if inserted {
                    state.metrics.results_stored.inc();
                } else {
                    state.metrics.results_duplicate.inc();
                }
                if let Err(e) = state.directory.ack_result(&c.receipt).await {
                    // Not acknowledged: it will come back and be found stored.
                    tracing::warn!(error = %e, "cannot acknowledge a stored match result");
                }
                handled += 1;
            }
            Err(StoreError::Unavailable(e)) => {
                tracing::warn!(error = %e, match_id = %c.result.match_id, "store unavailable; match result kept for retry");
                break;
            }
            Err(e) => {
                tracing::error!(error = %e, match_id = %c.result.match_id, "cannot store match result; kept for retry");
            }
        }
    }
    handled
}

/// Keeps bounded state bounded: rate-limiter keys and expired sessions.
pub async fn housekeeping(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    let mut passes = 0u64;
    loop {
        tick.tick().await;
        state.limiter.cleanup();
        passes += 1;
        if passes % 60 == 1 {
            let cutoff = Utc::now() - chrono::Duration::days(1);
            match state.store.delete_expired_sessions(cutoff).await {
                Ok(n) if n > 0 => tracing::info!(deleted = n, "expired sessions removed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "session cleanup failed"),
            }
        }
    }
}
