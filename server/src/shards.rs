//! QUIC shards: the node's UDP port is served by one or more endpoints
//! bound with SO_REUSEPORT, each on its own thread running a
//! current-thread runtime. A shard's connections, their sessions and the
//! lobbies created through them run on that thread, so the hot path (packet
//! in, tick, snapshot out) takes no cross-thread hops for most players and
//! a node scales with the shards it is given. The HTTP listener, the API and
//! the directory link stay on the main runtime.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::oneshot;

use crate::session::SessionCtx;
use crate::transport::{self, Admission, TransportLimits};

struct Shard {
    endpoint: quinn::Endpoint,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// The running shards. Dropping them stops every shard thread (their
/// connections and lobbies end with their runtimes).
pub struct Shards {
    shards: Vec<Shard>,
    addr: SocketAddr,
}

impl Shards {
    /// Starts `count` shards on `addr` (a port of 0 picks one free port that
    /// every shard then shares).
    pub fn start(
        count: u16,
        addr: SocketAddr,
        config: quinn::ServerConfig,
        limits: TransportLimits,
        ctx: Arc<SessionCtx>,
    ) -> anyhow::Result<Shards> {
        let admission = Arc::new(Admission::new(&limits));
        let mut shards = Shards { shards: Vec::with_capacity(count as usize), addr };
        for i in 0..count {
            let (ready_tx, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<quinn::Endpoint>>();
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            let (config, limits, ctx, admission) = (config.clone(), limits.clone(), ctx.clone(), admission.clone());
            let bind_addr = shards.addr;
            let thread = std::thread::Builder::new()
                .name(format!("quic-shard-{i}"))
                .spawn(move || {
                    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = ready_tx.send(Err(anyhow::Error::new(e).context("shard runtime")));
                            return;
                        }
                    };
                    runtime.block_on(async move {
                        let buffer = limits.udp_buffer_bytes;
                        let endpoint = match transport::bind(bind_addr, config, buffer, count > 1) {
                            Ok(e) => e,
                            Err(e) => {
                                let _ = ready_tx.send(Err(e));
                                return;
                            }
                        };
                        let _ = ready_tx.send(Ok(endpoint.clone()));
                        let accept = tokio::spawn(transport::accept_loop(endpoint, limits, ctx, admission));
                        // Until shutdown, or until the node is dropped.
                        let _ = stop_rx.await;
                        accept.abort();
                    });
                })
                .context("starting a QUIC shard thread")?;
            let endpoint = ready_rx.recv().context("the QUIC shard thread stopped while starting")??;
            if i == 0 {
                shards.addr = endpoint.local_addr().context("the QUIC endpoint's address")?;
            }
            shards.shards.push(Shard { endpoint, stop: Some(stop_tx), thread: Some(thread) });
        }
        Ok(shards)
    }

    /// The UDP address every shard serves.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every endpoint, waits (up to `wait`) for the close frames to
    /// leave, then stops the shard threads.
    pub async fn shutdown(mut self, wait: Duration) {
        for s in &self.shards {
            s.endpoint.close(quinn::VarInt::from_u32(0), b"node shutting down");
        }
        for s in &self.shards {
            let _ = tokio::time::timeout(wait, s.endpoint.wait_idle()).await;
        }
        let threads: Vec<_> = self.shards.iter_mut().filter_map(|s| s.thread.take()).collect();
        self.stop();
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }

    fn stop(&mut self) {
        for s in &mut self.shards {
            if let Some(stop) = s.stop.take() {
                let _ = stop.send(());
            }
        }
    }
}

impl Drop for Shards {
    fn drop(&mut self) {
        // Not joined: a drop may happen on an async thread.
        self.stop();
    }
}
