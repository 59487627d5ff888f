//! The match-result queue: the stream `P:results` read through the consumer
//! group `api`. A claim is a delivery to a consumer; the entry stays in the
//! group's pending list until acknowledged, and one left there longer than
//! the claim timeout is claimed again by whoever asks next. Acknowledging
//! deletes the entry, so the stream holds only what is not stored yet.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use ::redis::aio::ConnectionManager;
use ::redis::streams::{StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamReadOptions, StreamReadReply};
use ::redis::{AsyncCommands, RedisResult, Script};
use protocol::results::MatchResult;

use super::{RedisDirectory, decode, encode, millis};
use crate::{ClaimedResult, DirectoryError};

const GROUP: &str = "api";
const FIELD: &str = "result";
/// One claim returns at most this many results; a bigger reply would not
/// fit the operation timeout anyway, and callers claim in a loop.
const MAX_CLAIM: usize = 10_000;
/// Pending entries XAUTOCLAIM examines per call is ten times its count;
/// this keeps each call short while the cursor walks a long pending list.
const AUTOCLAIM_STEP: usize = 1_000;
/// Results are never dropped, so the only bound is the API storing them;
/// a warning is logged each time the backlog crosses a multiple of this.
const RESULT_BACKLOG_WARNING: usize = 10_000;
/// Entries that did not parse are moved aside, approximately this many kept.
const DEAD_LETTER_CAP: usize = 10_000;
/// How often one directory instance removes idle consumers from the group.
const SWEEP_INTERVAL: Duration = Duration::from_secs(600);

/// Removes consumers that hold no pending entry and have been idle for
/// ARGV[2] ms. Each API replica that ever claimed leaves a consumer behind;
/// without this the group would grow with every restart under a new name.
/// It runs as a script so no entry can be delivered to a consumer between
/// the check and the removal (removing a consumer drops its pending
/// entries). Removing one that is still polling is harmless: the next read
/// creates it again.
const SWEEP_LUA: &str = r"
local removed = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do
    f[c[i]] = c[i + 1]
  end
  if f['pending'] == 0 and f['idle'] >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    removed = removed + 1
  end
end
return removed
";

static SWEEP: LazyLock<Script> = LazyLock::new(|| Script::new(SWEEP_LUA));

/// Creates the group (and the stream) unless they exist. The group starts
/// at the stream's beginning so results pushed before any API started are
/// delivered too.
async fn create(con: &mut ConnectionManager, key: &str) -> RedisResult<()> {
    match con.xgroup_create_mkstream::<_, _, _, ()>(key, GROUP, "0").await {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

pub(super) async fn create_group(d: &RedisDirectory) -> Result<(), DirectoryError> {
    let key = d.key("results");
    d.0.conn.run(|mut con| async move { create(&mut con, &key).await }).await
}

pub(super) async fn push(d: &RedisDirectory, result: &MatchResult) -> Result<(), DirectoryError> {
    let key = d.key("results");
    let mut pipe = ::redis::pipe();
    pipe.cmd("XADD").arg(&key).arg("*").arg(FIELD).arg(encode(result)).ignore().xlen(&key);
    let (backlog,): (usize,) = d.0.conn.run(|mut con| async move { pipe.query_async(&mut con).await }).await?;
    if backlog % RESULT_BACKLOG_WARNING == 0 {
        tracing::warn!(backlog, "match results are not being stored");
    }
    Ok(())
}

pub(super) async fn claim(
    d: &RedisDirectory,
    consumer: &str,
    max: usize,
) -> Result<Vec<ClaimedResult>, DirectoryError> {
    let max = max.min(MAX_CLAIM);
    if max == 0 {
        // XREADGROUP reads COUNT 0 as "no limit".
        return Ok(Vec::new());
    }
    if sweep_due(d) {
        // In the background: housekeeping must not add to this call's time.
        let d = d.clone();
        tokio::spawn(async move {
            if let Err(e) = sweep(&d).await {
                tracing::warn!(error = %e, "could not remove idle result consumers");
            }
        });
    }
    let (key, consumer, idle_ms) = (d.key("results"), consumer.to_owned(), millis(d.0.claim_timeout));
    let entries = d.0.conn.run(|mut con| async move { read_or_regroup(&mut con, &key, &consumer, max, idle_ms).await });
    let entries = entries.await?;
    let mut claimed = Vec::with_capacity(entries.len());
    for entry in entries {
        match entry.get::<String>(FIELD).map(|json| decode::<MatchResult>("match result", &json)) {
            Some(Ok(result)) => claimed.push(ClaimedResult { receipt: entry.id, result }),
            Some(Err(e)) => dead_letter(d, &entry, &e.to_string()).await?,
            None => dead_letter(d, &entry, "no result field").await?,
        }
    }
    Ok(claimed)
}

async fn read_or_regroup(
    con: &mut ConnectionManager,
    key: &str,
    consumer: &str,
    max: usize,
    idle_ms: u64,
) -> RedisResult<Vec<StreamId>> {
    match read(con, key, consumer, max, idle_ms).await {
        // The stream was deleted under us (an operator, FLUSHDB): start a
        // new group rather than fail every claim from now on.
        Err(e) if e.code() == Some("NOGROUP") => {
            create(con, key).await?;
            read(con, key, consumer, max, idle_ms).await
        }
        other => other,
    }
}

/// Overdue pending entries first (oldest first), then new ones: the same
/// order as the in-process queue, since every pending entry is older than
/// every undelivered one.
async fn read(
    con: &mut ConnectionManager,
    key: &str,
    consumer: &str,
    max: usize,
    idle_ms: u64,
) -> RedisResult<Vec<StreamId>> {
    let mut out = Vec::new();
    let mut cursor = "0-0".to_owned();
    while out.len() < max {
        let step = StreamAutoClaimOptions::default().count((max - out.len()).min(AUTOCLAIM_STEP));
        let reply: StreamAutoClaimReply = con.xautoclaim_options(key, GROUP, consumer, idle_ms, &cursor, step).await?;
        out.extend(reply.claimed);
        cursor = reply.next_stream_id;
        if cursor == "0-0" {
            break;
        }
    }
    if out.len() < max {
        // No BLOCK: the caller polls, and a blocking read would tie up the
        // shared multiplexed connection.
        let options = StreamReadOptions::default().group(GROUP, consumer).count(max - out.len());
        let reply: Option<StreamReadReply> = con.xread_options(&[key], &[">"], &options).await?;
        out.extend(reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids));
    }
    Ok(out)
}

/// An entry that cannot be parsed would otherwise be redelivered forever;
/// keep it for a human and take it out of the queue.
async fn dead_letter(d: &RedisDirectory, entry: &StreamId, why: &str) -> Result<(), DirectoryError> {
    tracing::error!(id = %entry.id, why, "unreadable match result moved to the dead-letter stream");
    let (key, dead) = (d.key("results"), d.key("results:dead"));
    let raw = entry.get::<String>(FIELD).unwrap_or_default();
    let mut pipe = ::redis::pipe();
    pipe.atomic()
        .cmd("XADD")
        .arg(&dead)
        .arg("MAXLEN")
        .arg("~")
        .arg(DEAD_LETTER_CAP)
        .arg("*")
        .arg("id")
        .arg(&entry.id)
        .arg("raw")
        .arg(raw)
        .arg("error")
        .arg(why)
        .ignore()
        .xack(&key, GROUP, &[&entry.id])
        .ignore()
        .xdel(&key, &[&entry.id])
        .ignore();
    d.0.conn.run(|mut con| async move { pipe.query_async::<()>(&mut con).await }).await
}

pub(super) async fn ack(d: &RedisDirectory, receipt: &str) -> Result<(), DirectoryError> {
    // Like the in-process queue, an unknown receipt is not an error; one
    // that is not even a stream id would make Redis fail the transaction.
    if !is_stream_id(receipt) {
        tracing::warn!(receipt, "ignoring an acknowledgement with a malformed receipt");
        return Ok(());
    }
    let key = d.key("results");
    let mut pipe = ::redis::pipe();
    pipe.atomic().xack(&key, GROUP, &[receipt]).ignore().xdel(&key, &[receipt]).ignore();
    d.0.conn.run(|mut con| async move { pipe.query_async::<()>(&mut con).await }).await
}

fn is_stream_id(s: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    s.split_once('-').is_some_and(|(ms, seq)| digits(ms) && digits(seq))
}

fn sweep_due(d: &RedisDirectory) -> bool {
    let mut last = d.0.last_sweep.lock().unwrap_or_else(|e| e.into_inner());
    if last.is_some_and(|at| at.elapsed() < SWEEP_INTERVAL) {
        return false;
    }
    *last = Some(Instant::now());
    true
}

/// Removes consumers that hold nothing and have been idle for a claim
/// timeout (by then an abandoned claim would be taken over anyway).
async fn sweep(d: &RedisDirectory) -> Result<usize, DirectoryError> {
    let mut call = SWEEP.prepare_invoke();
    call.key(d.key("results")).arg(GROUP).arg(millis(d.0.claim_timeout));
    d.0.conn.run(|mut con| async move { call.invoke_async::<usize>(&mut con).await }).await
}

#[cfg(test)]
mod tests {
    use super::is_stream_id;

    #[test]
    fn receipts_are_checked_before_reaching_redis() {
        assert!(is_stream_id("1700000000000-0"));
        assert!(!is_stream_id("17"));
        assert!(!is_stream_id("-1"));
        assert!(!is_stream_id("1-x"));
        assert!(!is_stream_id("1-2-3"));
    }
}
