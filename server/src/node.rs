//! Wires a game node together: certificate, ticket keys, lobby manager,
//! QUIC endpoint, HTTP listener. Used by the binary and by the tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use protocol::map::Map;
use tokio::task::JoinHandle;

use crate::config::{NodeArgs, dev_ticket_key, parse_ticket_key, write_private};
use crate::http;
use crate::lobby::core::{ChatConfig, LobbyConfig};
use crate::lobby::{LobbyManager, LobbySettings};
use crate::metrics::{self, NodeMetrics};
use crate::results::MatchResultSink;
use crate::session::{SessionConfig, SessionCtx};
use crate::sim::SimConfig;
use crate::tickets::TicketVerifier;
use crate::tls::Identity;
use crate::transport::{self, TransportLimits};

/// Embedded (serve: generated certificate and key allowed) or production (game).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Embedded,
    Production,
}

/// A running node.
pub struct Node {
    pub node_id: String,
    pub quic_addr: SocketAddr,
    pub http_addr: SocketAddr,
    /// The leaf certificate (DER) clients of this node can pin.
    pub cert_der: Vec<u8>,
    pub manager: Arc<LobbyManager>,
    pub metrics: NodeMetrics,
    endpoint: quinn::Endpoint,
    accept: JoinHandle<()>,
    http: JoinHandle<()>,
}

fn ticks(d: Duration, tick_rate: u16) -> u32 {
    ((d.as_secs_f64() * tick_rate as f64).ceil() as u32).max(1)
}

fn ticks_or_zero(d: Duration, tick_rate: u16) -> u32 {
    (d.as_secs_f64() * tick_rate as f64).round() as u32
}

impl Node {
    pub async fn start(args: &NodeArgs, role: Role, sink: Arc<dyn MatchResultSink>) -> anyhow::Result<Node> {
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("creating the data dir {}", args.data_dir.display()))?;
        let identity = match (&args.tls_cert, &args.tls_key, role) {
            (Some(cert), Some(key), _) => Identity::from_pem_files(cert, key)?,
            (_, _, Role::Embedded) => Identity::self_signed()?,
            _ => anyhow::bail!("the game role needs --tls-cert and --tls-key"),
        };
        let cert_der = identity.leaf_der().to_vec();
        if role == Role::Embedded {
            write_private(&args.data_dir.join(protocol::defaults::DEV_CERT_FILE), &cert_der)?;
        }
        let mut keys = match (&args.ticket_key, role) {
            (Some(hex), _) => vec![parse_ticket_key(&args.ticket_key_id, hex)?],
            (None, Role::Embedded) => vec![dev_ticket_key(&args.data_dir, true)?],
            (None, Role::Production) => anyhow::bail!("the game role needs --ticket-key"),
        };
        if let Some(prev) = &args.ticket_key_previous {
            let (kid, hex) = prev.split_once(':').context("--ticket-key-previous must be kid:hex")?;
            keys.push(parse_ticket_key(kid, hex)?);
        }
        let map = match &args.map {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("reading map {}", path.display()))?;
                Map::parse(&text).with_context(|| format!("invalid map {}", path.display()))?
            }
            None => Map::builtin_arena(),
        };
        anyhow::ensure!(!args.modes.is_empty(), "at least one game mode is needed");
        let rate = args.tick_rate;
        let mut sim = SimConfig::for_tick_rate(rate, args.kill_target, args.max_rewind.as_millis() as u32);
        sim.damage = args.damage;
        sim.fire_cooldown_ticks = ticks(args.fire_cooldown, rate);
        sim.respawn_ticks = ticks_or_zero(args.respawn_delay, rate);
        sim.protection_ticks = ticks_or_zero(args.spawn_protection, rate);
        let lobby = LobbyConfig {
            node_id: args.node_id.clone(),
            mode: String::new(),
            map_name: map.name.clone(),
            max_players: args.players_per_lobby,
            tick_rate: rate,
            vote_ticks: ticks(args.vote_duration, rate),
            grace_ticks: ticks(args.reconnect_grace, rate),
            chat: ChatConfig {
                enabled: args.chat,
                max_chars: args.chat_max_chars as usize,
                burst: args.chat_burst.max(1),
                refill_ticks: ticks(args.chat_interval, rate),
            },
            sim,
        };
        let settings =
            LobbySettings { modes: args.modes.clone(), max_lobbies: args.max_lobbies, map: Arc::new(map), lobby };
        let (metrics, registry) = metrics::new_metrics();
        let manager = LobbyManager::new(settings, metrics.clone(), sink);
        let session_cfg = SessionConfig {
            node_id: args.node_id.clone(),
            tick_rate: rate,
            handshake_timeout: args.handshake_timeout,
            join_timeout: args.join_timeout,
            datagram_rate: args.datagram_rate,
            datagram_burst: args.datagram_burst,
        };
        let ctx = Arc::new(SessionCtx::new(
            session_cfg,
            manager.clone(),
            TicketVerifier::new(keys, args.node_id.clone()),
            metrics.clone(),
        ));
        let limits = TransportLimits {
            max_connections: args.max_connections,
            conn_rate_per_ip: args.conn_rate_per_ip,
            conn_burst_per_ip: args.conn_burst_per_ip,
            handshake_timeout: args.handshake_timeout,
            idle_timeout: args.idle_timeout,
            udp_buffer_bytes: args.udp_buffer,
        };
        let server_cfg = transport::server_config(identity, &limits)?;
        let endpoint = transport::bind(args.quic_addr, server_cfg, limits.udp_buffer_bytes)?;
        let quic_addr = endpoint.local_addr()?;
        let accept = tokio::spawn(transport::accept_loop(endpoint.clone(), limits, ctx));

        let listener = tokio::net::TcpListener::bind(args.http_addr)
            .await
            .with_context(|| format!("binding HTTP {}", args.http_addr))?;
        let http_addr = listener.local_addr()?;
        let router = http::router(http::HttpState {
            registry: Arc::new(registry),
            manager: manager.clone(),
            node_id: args.node_id.clone(),
        });
        let http = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "HTTP listener failed");
            }
        });
        tracing::info!(node = %args.node_id, %quic_addr, %http_addr, "game node started");
        Ok(Node {
            node_id: args.node_id.clone(),
            quic_addr,
            http_addr,
            cert_der,
            manager,
            metrics,
            endpoint,
            accept,
            http,
        })
    }

    /// Closes every lobby (players are told why), then the endpoint.
    pub async fn shutdown(self, reason: &str) {
        self.manager.drain(reason).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while self.manager.lobby_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.endpoint.close(quinn::VarInt::from_u32(0), b"node shutting down");
        let _ = tokio::time::timeout(Duration::from_secs(2), self.endpoint.wait_idle()).await;
        self.accept.abort();
        self.http.abort();
    }
}
