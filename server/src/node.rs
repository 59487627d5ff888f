//! Wires a game node together: certificate, ticket keys, lobby manager,
//! QUIC endpoint, HTTP listener. Used by the binary and by the tests.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use directory::Directory;
use prometheus_client::registry::Registry;
use protocol::map::Map;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use crate::config::{NodeArgs, dev_ticket_key, parse_ticket_key, write_private};
use crate::directory_link::{self, Announce};
use crate::http;
use crate::load::NodeLoad;
use crate::lobby::core::{ChatConfig, LobbyConfig};
use crate::lobby::{LobbyManager, LobbySettings};
use crate::metrics::{self, NodeMetrics};
use crate::results::MatchResultSink;
use crate::session::{SessionConfig, SessionCtx};
use crate::shards::Shards;
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

/// What the node is plugged into.
pub struct NodeOptions {
    /// Where finished matches go; with a directory, use
    /// [`crate::directory_link::result_sink`].
    pub sink: Arc<dyn MatchResultSink>,
    /// Announce this node and take commands through the directory.
    pub directory: Option<Directory>,
    /// Serve /health, /metrics and /lobbies on `--http-addr` (off when the
    /// API serves one combined listener in `serve`).
    pub http: bool,
}

impl NodeOptions {
    /// A standalone node with its own HTTP listener.
    pub fn standalone(sink: Arc<dyn MatchResultSink>) -> NodeOptions {
        NodeOptions { sink, directory: None, http: true }
    }
}

/// A running node.
pub struct Node {
    pub node_id: String,
    pub quic_addr: SocketAddr,
    /// The HTTP listener's address, when the node runs one.
    pub http_addr: Option<SocketAddr>,
    /// The node's metrics (rendered by its listener or by the API's).
    pub registry: Arc<Registry>,
    /// The leaf certificate (DER) clients of this node can pin.
    pub cert_der: Vec<u8>,
    pub manager: Arc<LobbyManager>,
    pub metrics: NodeMetrics,
    shards: Shards,
    tasks: Vec<JoinHandle<()>>,
    directory: Option<Directory>,
}

/// The node's ticket keys, current first: from the flags, or (serve only)
/// generated into the data dir.
pub fn ticket_keys(args: &NodeArgs, role: Role) -> anyhow::Result<Vec<protocol::ticket::TicketKey>> {
    let mut keys = match (&args.ticket_key, role) {
        (Some(hex), _) => vec![parse_ticket_key(&args.ticket_key_id, hex)?],
        (None, Role::Embedded) => {
            std::fs::create_dir_all(&args.data_dir)
                .with_context(|| format!("creating the data dir {}", args.data_dir.display()))?;
            vec![dev_ticket_key(&args.data_dir, true)?]
        }
        (None, Role::Production) => anyhow::bail!("the game role needs --ticket-key"),
    };
    if let Some(prev) = &args.ticket_key_previous {
        let (kid, hex) = prev.split_once(':').context("--ticket-key-previous must be kid:hex")?;
        keys.push(parse_ticket_key(kid, hex)?);
    }
    Ok(keys)
}

fn ticks(d: Duration, tick_rate: u16) -> u32 {
    ((d.as_secs_f64() * tick_rate as f64).ceil() as u32).max(1)
}

fn ticks_or_zero(d: Duration, tick_rate: u16) -> u32 {
    (d.as_secs_f64() * tick_rate as f64).round() as u32
}

impl Node {
    pub async fn start(args: &NodeArgs, role: Role, opts: NodeOptions) -> anyhow::Result<Node> {
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
        let keys = ticket_keys(args, role)?;
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
        let settings = LobbySettings {
            modes: args.modes.clone(),
            max_lobbies: args.max_lobbies,
            map: Arc::new(map),
            lobby,
            datagram_rate: args.datagram_rate,
            datagram_burst: args.datagram_burst,
        };
        let (metrics, registry) = metrics::new_metrics();
        let manager = LobbyManager::new(settings, metrics.clone(), opts.sink);
        let session_cfg = SessionConfig {
            node_id: args.node_id.clone(),
            tick_rate: rate,
            handshake_timeout: args.handshake_timeout,
            join_timeout: args.join_timeout,
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
            timer_slack: args.quic_timer_slack,
            webtransport: args.webtransport,
        };
        let server_cfg = transport::server_config(identity, &limits)?;
        let load = Arc::new(NodeLoad::new(args.quic_shards as usize, args.max_shard_load));
        let shards = Shards::start(args.quic_shards, args.quic_addr, server_cfg, limits, ctx, load.clone())?;
        let quic_addr = shards.addr();

        let registry = Arc::new(registry);
        let mut tasks = Vec::new();
        let http_addr = if opts.http {
            let listener = tokio::net::TcpListener::bind(args.http_addr)
                .await
                .with_context(|| format!("binding HTTP {}", args.http_addr))?;
            let addr = listener.local_addr()?;
            let state =
                http::HttpState { registry: registry.clone(), manager: manager.clone(), node_id: args.node_id.clone() };
            let router = http::router(state);
            tasks.push(tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::error!(error = %e, "HTTP listener failed");
                }
            }));
            Some(addr)
        } else {
            None
        };
        if let Some(dir) = &opts.directory {
            let announce = Announce {
                node_id: args.node_id.clone(),
                public_host: args.public_host.clone().unwrap_or_else(|| quic_addr.ip().to_string()),
                public_port: args.public_port.unwrap_or(quic_addr.port()),
                cert_sha256: protocol::defaults::to_hex(&Sha256::digest(&cert_der)),
            };
            tasks.push(tokio::spawn(directory_link::run(dir.clone(), manager.clone(), announce, load)));
        }
        tracing::info!(node = %args.node_id, %quic_addr, ?http_addr, "game node started");
        Ok(Node {
            node_id: args.node_id.clone(),
            quic_addr,
            http_addr,
            registry,
            cert_der,
            manager,
            metrics,
            shards,
            tasks,
            directory: opts.directory,
        })
    }

    /// Closes every lobby (players are told why), then the endpoint.
    pub async fn shutdown(self, reason: &str) {
        self.manager.drain(reason).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while self.manager.lobby_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.shards.shutdown(Duration::from_secs(2)).await;
        for t in self.tasks {
            t.abort();
        }
        if let Some(d) = &self.directory
            && let Err(e) = d.remove_node(&self.node_id).await
        {
            tracing::warn!(error = %e, "could not deregister from the directory");
        }
    }
}
