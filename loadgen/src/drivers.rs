//! quic-loop drivers shared by many bots: one UDP socket, one
//! `quinn_proto::Endpoint` and one task each, the quic-loop counterpart of
//! [`crate::tls::EndpointPool`] (used when no impairment wraps the sockets).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use quic_loop::{Driver, DriverConfig, LoopHandle};

use crate::tls::bind_addr_for;

/// Socket buffers asked of the kernel, as for the quinn endpoints:
/// thousands of bots share a socket, and bursts of snapshots all land at once.
const SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error("binding a UDP socket on {bind}: {source}")]
    Bind {
        bind: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// One driver of the pool.
#[derive(Clone)]
pub struct PooledDriver {
    /// Distinct within the pool: what a bot scheduler is keyed by.
    pub id: usize,
    pub handle: LoopHandle,
}

impl std::fmt::Debug for PooledDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledDriver").field("id", &self.id).field("local", &self.handle.local_addr()).finish()
    }
}

/// Byte and packet totals of a driver's socket, both directions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketCounts {
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub packets_in: u64,
}

impl PooledDriver {
    pub fn counts(&self) -> SocketCounts {
        let s = self.handle.stats();
        SocketCounts {
            bytes_out: s.bytes_out.load(Ordering::Relaxed),
            bytes_in: s.bytes_in.load(Ordering::Relaxed),
            packets_out: s.packets_out.load(Ordering::Relaxed),
            packets_in: s.packets_in.load(Ordering::Relaxed),
        }
    }
}

/// Drivers created on first use for each local bind address
/// ([`bind_addr_for`]), `per_bind` of them, each running as a task on the
/// runtime that first asked.
#[derive(Debug)]
pub struct DriverPool {
    per_bind: usize,
    timer_slack: Duration,
    sets: Mutex<HashMap<SocketAddr, Vec<PooledDriver>>>,
}

impl DriverPool {
    pub fn new(per_bind: usize) -> DriverPool {
        DriverPool { per_bind: per_bind.max(1), timer_slack: Duration::ZERO, sets: Mutex::new(HashMap::new()) }
    }

    /// How late the drivers' connection timers may fire (see
    /// `quic_loop::DriverConfig::timer_slack`).
    pub fn with_timer_slack(mut self, slack: Duration) -> DriverPool {
        self.timer_slack = slack;
        self
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SocketAddr, Vec<PooledDriver>>> {
        self.sets.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Driver `slot` (modulo the set size) of those that reach `server`.
    /// Must be called inside a tokio runtime.
    pub fn driver_for(&self, server: SocketAddr, slot: usize) -> Result<PooledDriver, DriverError> {
        let bind = bind_addr_for(server);
        let mut sets = self.lock();
        let first_id: usize = sets.values().map(Vec::len).sum();
        let set = match sets.entry(bind) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let mut set = Vec::with_capacity(self.per_bind);
                for i in 0..self.per_bind {
                    let mut config = DriverConfig::new(bind, None);
                    config.udp_buffer_bytes = SOCKET_BUFFER_BYTES;
                    config.timer_slack = self.timer_slack;
                    let driver =
                        Driver::bind(config, None, None).map_err(|source| DriverError::Bind { bind, source })?;
                    let handle = driver.handle();
                    tokio::spawn(async move {
                        if let Err(e) = driver.run().await {
                            tracing::error!(error = %e, "a quic-loop driver stopped on a socket error");
                        }
                    });
                    set.push(PooledDriver { id: first_id + i, handle });
                }
                e.insert(set)
            }
        };
        Ok(set[slot % set.len()].clone())
    }

    /// Every driver started so far.
    pub fn drivers(&self) -> Vec<PooledDriver> {
        self.lock().values().flatten().cloned().collect()
    }

    /// Waits up to `drain` for close frames of connections still closing,
    /// then stops every driver.
    pub async fn shutdown(&self, drain: Duration) {
        for driver in self.drivers() {
            let _ = tokio::time::timeout(drain, driver.handle.wait_idle()).await;
            driver.handle.stop();
        }
    }
}
