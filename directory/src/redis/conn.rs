//! The connection to Redis: one multiplexed [`ConnectionManager`] shared by
//! every operation, and the rule that no operation waits longer than
//! [`OP_TIMEOUT`].

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::io::tcp::TcpSettings;
use ::redis::{Client, ErrorKind, RedisError, RedisResult};

use crate::DirectoryError;

/// The most one directory call may take, connecting included. Callers are
/// request handlers and node loops: a slow answer is as bad as none.
pub(super) const OP_TIMEOUT: Duration = Duration::from_secs(2);
/// Shorter than [`OP_TIMEOUT`] so that the library notices first and
/// reports its own error, which carries more detail.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(1500);

pub(super) struct Conn {
    client: Client,
    current: Arc<Mutex<ConnectionManager>>,
    /// Set while a replacement connection is being built in the background.
    replacing: Arc<AtomicBool>,
}

fn config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(CONNECT_TIMEOUT)
        .set_response_timeout(RESPONSE_TIMEOUT)
        // No retry loop inside the manager: its first delay is a whole
        // second. A failed reconnect is retried by the next operation, so
        // a dead Redis costs each call one quick refusal, not a wait.
        .set_number_of_retries(0)
        .set_max_delay(1000)
        // The directory's small requests must not sit behind Nagle's timer.
        .set_tcp_settings(TcpSettings::default().set_nodelay(true))
}

async fn connect(client: Client) -> Result<ConnectionManager, DirectoryError> {
    match tokio::time::timeout(OP_TIMEOUT, ConnectionManager::new_with_config(client, config())).await {
        Ok(Ok(manager)) => Ok(manager),
        Ok(Err(e)) => Err(DirectoryError::Unavailable(format!("cannot connect to redis: {e}"))),
        Err(_) => Err(unanswered()),
    }
}

fn unanswered() -> DirectoryError {
    DirectoryError::Unavailable(format!("redis did not answer within {OP_TIMEOUT:?}"))
}

impl Conn {
    pub(super) async fn open(url: &str) -> Result<Conn, DirectoryError> {
        let client = Client::open(url).map_err(|e| DirectoryError::Unavailable(format!("invalid redis url: {e}")))?;
        let manager = connect(client.clone()).await?;
        Ok(Conn { client, current: Arc::new(Mutex::new(manager)), replacing: Arc::new(AtomicBool::new(false)) })
    }

    fn manager(&self) -> ConnectionManager {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs `op` on the shared connection within [`OP_TIMEOUT`].
    pub(super) async fn run<T, F, Fut>(&self, op: F) -> Result<T, DirectoryError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        match tokio::time::timeout(OP_TIMEOUT, op(self.manager())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                if e.is_timeout() {
                    self.replace();
                }
                Err(map_error(e))
            }
            Err(_) => {
                self.replace();
                Err(unanswered())
            }
        }
    }

    /// The manager reconnects by itself when a connection breaks, but not
    /// when it merely stops answering (a stalled server, a black-holed
    /// route): its requests time out one by one forever. After a timeout,
    /// build a fresh manager in the background and swap it in.
    fn replace(&self) {
        if self.replacing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (client, current, replacing) = (self.client.clone(), self.current.clone(), self.replacing.clone());
        tokio::spawn(async move {
            match connect(client).await {
                Ok(manager) => *current.lock().unwrap_or_else(|e| e.into_inner()) = manager,
                Err(e) => tracing::debug!(error = %e, "redis connection not replaced yet"),
            }
            replacing.store(false, Ordering::Release);
        });
    }
}

/// Replies that do not have the expected shape mean someone else wrote to
/// our keys; everything else is Redis being unreachable or unwell.
fn map_error(e: RedisError) -> DirectoryError {
    match e.kind() {
        ErrorKind::TypeError | ErrorKind::ParseError => DirectoryError::Corrupt(format!("redis: {e}")),
        _ if e.code() == Some("WRONGTYPE") => DirectoryError::Corrupt(format!("redis: {e}")),
        _ => DirectoryError::Unavailable(format!("redis: {e}")),
    }
}
