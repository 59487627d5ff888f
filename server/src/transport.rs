//! The QUIC transport's policy: TLS and transport configuration, admission
//! limits (connection cap, per-IP rate) and the handshake timeout on the way
//! into a session. The loop that moves the packets is `quic_loop`'s, one per
//! shard ([`crate::shards`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use quic_loop::{Admit, Conn};
use tokio::sync::mpsc;

use crate::metrics::NodeMetrics;
use crate::ratelimit::IpRateLimiter;
use crate::session::{self, SessionCtx};
use crate::tls::Identity;

/// Packets a client may receive before it must acknowledge them (a few
/// snapshots), and how long it may wait (a tick and a half at 20 Hz).
const ACK_ELICITING_THRESHOLD: u8 = 4;
const MAX_ACK_DELAY: Duration = Duration::from_millis(75);

/// Most source addresses the per-IP limiter tracks.
const MAX_TRACKED_IPS: usize = 100_000;

#[derive(Debug, Clone)]
pub struct TransportLimits {
    pub max_connections: usize,
    /// New connections per second per source IP, and the burst allowed.
    pub conn_rate_per_ip: f64,
    pub conn_burst_per_ip: f64,
    pub handshake_timeout: Duration,
    pub idle_timeout: Duration,
    pub udp_buffer_bytes: usize,
    /// How late connection timers may fire (see `quic_loop::DriverConfig`).
    pub timer_slack: Duration,
    /// Accept WebTransport sessions (ALPN `h3`) at
    /// [`protocol::WEBTRANSPORT_PATH`].
    pub webtransport: bool,
}

pub fn server_config(identity: Identity, limits: &TransportLimits) -> anyhow::Result<quinn::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 configuration")?
        .with_no_client_auth()
        .with_single_cert(identity.chain, identity.key)
        .context("the certificate and key do not form a valid identity")?;
    tls.alpn_protocols = vec![protocol::ALPN.to_vec()];
    if limits.webtransport {
        tls.alpn_protocols.push(quic_loop::webtransport::ALPN.to_vec());
    }
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).context("QUIC TLS configuration")?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_idle_timeout(Some(limits.idle_timeout.try_into().context("idle timeout too large")?))
        // One control stream per connection, opened by the client; a
        // WebTransport session also needs its CONNECT stream and the
        // browser's HTTP/3 control and QPACK streams.
        .max_concurrent_bidi_streams(if limits.webtransport { 2u8 } else { 1 }.into())
        .max_concurrent_uni_streams(if limits.webtransport { 3u8 } else { 0 }.into())
        .datagram_receive_buffer_size(Some(16 * 1024))
        .datagram_send_buffer_size(16 * 1024)
        // Path MTU discovery buys nothing here: snapshots stay below 1 KiB
        // and every QUIC path carries 1200 bytes, while its probes cost
        // packets at every join and bookkeeping on every acknowledgement.
        .mtu_discovery_config(None);
    // Ask clients to hold their acknowledgements for up to a tick and a
    // half so they ride on the next input instead of going out as packets
    // of their own (every packet costs the node a receive). quinn lowers the
    // delay to the path's RTT, but not below 25 ms, so on short paths about
    // half the acknowledgements still travel alone.
    let mut acks = quinn::AckFrequencyConfig::default();
    acks.ack_eliciting_threshold(ACK_ELICITING_THRESHOLD.into()).max_ack_delay(Some(MAX_ACK_DELAY));
    transport.ack_frequency_config(Some(acks));
    cfg.transport_config(Arc::new(transport));
    Ok(cfg)
}

/// Connection admission shared by every shard of a node: the connection cap
/// and the per-IP rate apply to the node as a whole.
pub struct Admission {
    live: AtomicUsize,
    per_ip: Mutex<IpRateLimiter>,
}

impl Admission {
    pub fn new(limits: &TransportLimits) -> Admission {
        Admission {
            live: AtomicUsize::new(0),
            per_ip: Mutex::new(IpRateLimiter::new(limits.conn_rate_per_ip, limits.conn_burst_per_ip, MAX_TRACKED_IPS)),
        }
    }

    /// Decides on one connection attempt (the decision is counted).
    pub fn admit(
        &self,
        remote: SocketAddr,
        max_connections: usize,
        draining: bool,
        overloaded: bool,
        metrics: &NodeMetrics,
    ) -> Admit {
        let refused = &metrics.connections_refused;
        if draining {
            refused.draining.inc();
            return Admit::Refuse;
        }
        if self.live.load(Ordering::Relaxed) >= max_connections {
            refused.max_connections.inc();
            return Admit::Refuse;
        }
        if overloaded {
            refused.overloaded.inc();
            return Admit::Refuse;
        }
        if !self.per_ip.lock().unwrap_or_else(|e| e.into_inner()).allow(remote.ip(), Instant::now()) {
            // Silently ignored: answering a flood would amplify it.
            refused.ip_rate.inc();
            return Admit::Ignore;
        }
        Admit::Accept
    }
}

/// Takes each accepted connection through its handshake (within the
/// handshake timeout) and into a session, until the shard stops.
pub async fn accept_loop(
    mut accepted: mpsc::UnboundedReceiver<Conn>,
    limits: TransportLimits,
    ctx: Arc<SessionCtx>,
    admission: Arc<Admission>,
) {
    while let Some(conn) = accepted.recv().await {
        admission.live.fetch_add(1, Ordering::Relaxed);
        let (ctx, admission, timeout) = (ctx.clone(), admission.clone(), limits.handshake_timeout);
        tokio::spawn(async move {
            let metrics = ctx.metrics.clone();
            match tokio::time::timeout(timeout, conn.established()).await {
                Ok(Ok(())) => {
                    metrics.connections_accepted.inc();
                    if conn.is_webtransport() {
                        metrics.webtransport_sessions.inc();
                    }
                    session::run(conn, ctx).await;
                }
                Ok(Err(_)) => {
                    metrics.connections_refused.handshake_failed.inc();
                }
                Err(_) => {
                    metrics.connections_refused.handshake_timeout.inc();
                    conn.close(1, b"handshake timeout");
                }
            }
            admission.live.fetch_sub(1, Ordering::Relaxed);
        });
    }
}
