//! QUIC shards: the node's UDP port is served by one or more `quic_loop`
//! drivers bound with SO_REUSEPORT, each on its own thread running a
//! current-thread runtime. A shard's packets, connections, sessions and the
//! lobbies created through them run on that thread, so the hot path (packet
//! in, tick, snapshot out) takes no cross-thread hops for most players and
//! a node scales with the shards it is given. The HTTP listener, the API and
//! the directory link stay on the main runtime. With several shards, each
//! packet reaches the shard that owns its connection by connection id
//! (`quic_loop::ShardSteering`), so new connections spread evenly whatever
//! their address and a client whose address changes keeps its connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use prometheus_client::metrics::gauge::Gauge;
use quic_loop::{Driver, DriverConfig, LoopHandle};
use tokio::sync::{mpsc, oneshot};

use crate::load::{LoadMeter, NodeLoad};
use crate::metrics::UdpCounters;
use crate::session::SessionCtx;
use crate::transport::{self, Admission, TransportLimits};

struct Shard {
    handle: LoopHandle,
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
        load: Arc<NodeLoad>,
    ) -> anyhow::Result<Shards> {
        let admission = Arc::new(Admission::new(&limits));
        let mut shards = Shards { shards: Vec::with_capacity(count as usize), addr };
        for i in 0..count {
            let (ready_tx, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<LoopHandle>>();
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            let (config, limits, ctx, admission, load) =
                (config.clone(), limits.clone(), ctx.clone(), admission.clone(), load.clone());
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
                        let mut cfg = DriverConfig::new(bind_addr, Some(Arc::new(config)));
                        cfg.udp_buffer_bytes = limits.udp_buffer_bytes;
                        cfg.timer_slack = limits.timer_slack;
                        cfg.endpoint = Arc::new(endpoint_config());
                        cfg.webtransport_path = limits.webtransport.then(|| protocol::WEBTRANSPORT_PATH.to_string());
                        cfg.reuse_port = count > 1;
                        // One shard needs no steering; several are steered by
                        // connection id (quic_loop::ShardSteering).
                        cfg.steering = quic_loop::ShardSteering::new(i, count, CONNECTION_ID_LEN);
                        let (accepted_tx, accepted_rx) = mpsc::unbounded_channel();
                        let admit = {
                            let (admission, ctx, max, load) =
                                (admission.clone(), ctx.clone(), limits.max_connections, load.clone());
                            Box::new(move |remote| {
                                let overloaded = load.shard_overloaded(i as usize);
                                admission.admit(remote, max, ctx.manager.is_draining(), overloaded, &ctx.metrics)
                            })
                        };
                        let driver = match Driver::bind(cfg, Some(admit), Some(accepted_tx)) {
                            Ok(d) => d,
                            Err(e) => {
                                let e = anyhow::Error::new(e).context(format!("binding UDP {bind_addr}"));
                                let _ = ready_tx.send(Err(e));
                                return;
                            }
                        };
                        let handle = driver.handle();
                        let _ = ready_tx.send(Ok(handle.clone()));
                        let shard_connections = ctx.metrics.shard_connections(i);
                        let stats =
                            tokio::spawn(copy_stats(handle.clone(), ctx.metrics.udp.clone(), shard_connections));
                        let watch = tokio::spawn(watch_load(i, load, ctx.metrics.shard_load(i)));
                        let accept = tokio::spawn(transport::accept_loop(accepted_rx, limits, ctx, admission));
                        let run = tokio::spawn(driver.run());
                        // Until shutdown, or until the node is dropped.
                        let _ = stop_rx.await;
                        handle.stop();
                        accept.abort();
                        stats.abort();
                        watch.abort();
                        if let Ok(Err(e)) = run.await {
                            tracing::error!(error = %e, "QUIC shard socket failed");
                        }
                    });
                })
                .context("starting a QUIC shard thread")?;
            // Shards bind one after another, so shard i is socket i of the
            // port's reuseport group: the index the steering program picks.
            let handle = ready_rx.recv().context("the QUIC shard thread stopped while starting")??;
            if i == 0 {
                shards.addr = handle.local_addr();
            }
            shards.shards.push(Shard { handle, stop: Some(stop_tx), thread: Some(thread) });
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
            s.handle.close(0, b"node shutting down");
        }
        for s in &self.shards {
            let _ = tokio::time::timeout(wait, s.handle.wait_idle()).await;
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

/// Copies a loop's counters into the node's metrics once a second (the loop
/// keeps plain atomics so its hot path never touches the registry).
async fn copy_stats(handle: LoopHandle, udp: UdpCounters, connections: Gauge) {
    let mut seen = [0u64; 6];
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        every.tick().await;
        connections.set(handle.connections() as i64);
        let s = handle.stats();
        let now = [&s.packets_in, &s.packets_out, &s.bytes_in, &s.bytes_out, &s.send_drops, &s.wakeups]
            .map(|a| a.load(Ordering::Relaxed));
        let counters =
            [&udp.packets_in, &udp.packets_out, &udp.bytes_in, &udp.bytes_out, &udp.send_drops, &udp.loop_wakeups];
        for ((c, now), seen) in counters.iter().zip(now).zip(seen.iter_mut()) {
            c.inc_by(now.saturating_sub(*seen));
            *seen = now;
        }
    }
}

/// Samples this shard's thread's CPU time (the task runs on the shard's
/// current-thread runtime, so the calling thread is the shard's).
async fn watch_load(shard: u16, load: Arc<NodeLoad>, gauge: Gauge<f64, AtomicU64>) {
    let mut meter = LoadMeter::default();
    let mut every = tokio::time::interval(crate::load::SAMPLE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(cpu) = crate::load::thread_cpu_time() else { return };
        let l = meter.sample(cpu, std::time::Instant::now());
        load.set(shard as usize, l);
        gauge.set(l);
    }
}

/// Length of the connection ids this node issues. Clients put one in every
/// packet they send, and a node's endpoint only needs them unique among its
/// own connections (quinn-proto draws again on a collision; with several
/// shards the first byte names the shard, leaving the ids of one shard
/// unique among that shard's connections): 4 bytes instead of quinn's 8
/// take 4 bytes off every input packet (80 B/s per player).
const CONNECTION_ID_LEN: usize = 4;

fn endpoint_config() -> quic_loop::EndpointConfig {
    let mut config = quic_loop::EndpointConfig::default();
    config.cid_generator(|| Box::new(quic_loop::RandomConnectionIdGenerator::new(CONNECTION_ID_LEN)));
    config
}
