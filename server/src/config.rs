//! The one typed configuration: CLI flags with environment-variable
//! fallbacks. Defaults are the embedded mode's; every production knob is
//! listed in the README.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use protocol::defaults;
use protocol::ticket::TicketKey;

#[derive(Debug, Parser)]
#[command(name = "trespasser", version, about = "Trespasser game backend")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

// Parsed once at start; boxing the big variants would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything in one process on the embedded default (what
    /// `trespasser` with no arguments does): the HTTP API on SQLite and one
    /// game node, an in-process directory, a generated development
    /// certificate and keys under --data-dir.
    Serve(ServeArgs),
    /// The production game-node role: certificate, key, ticket key and the
    /// Redis directory must be given.
    Game(GameArgs),
    /// The production API role: Postgres, the Redis directory and keys must be given.
    Api(ApiRoleArgs),
    /// Apply the store's migrations and exit.
    Migrate(MigrateArgs),
    /// Mint a development join ticket with the node's ticket key (prints the JWT).
    Ticket(TicketArgs),
}

/// A load threshold: more than 0, at most 1 (1 turns the limit off).
fn shard_load(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(v),
        _ => Err(format!("{s:?} is not a load in (0, 1]")),
    }
}

fn duration(s: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(s)
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub api: http_api::ApiArgs,
}

/// Where the shared directory lives (production roles).
#[derive(Debug, Clone, Args)]
pub struct DirectoryArgs {
    /// Redis URL of the directory shared by the API and the game nodes.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: String,
    /// Key prefix in Redis (one per deployment).
    #[arg(long, env = "TRESPASSER_DIRECTORY_PREFIX", default_value = "trespasser")]
    pub directory_prefix: String,
    /// How long a node stays listed without a heartbeat.
    #[arg(long, env = "TRESPASSER_NODE_TTL", default_value = "10s", value_parser = duration)]
    pub node_ttl: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct GameArgs {
    #[command(flatten)]
    pub node: NodeArgs,
    #[command(flatten)]
    pub directory: DirectoryArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ApiRoleArgs {
    /// TCP address of the HTTP API.
    #[arg(long, env = "TRESPASSER_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// Where the API may write files (none in production; kept for parity).
    #[arg(long, env = "TRESPASSER_DATA_DIR", default_value = defaults::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Join-ticket signing key, hex; the game nodes hold the same key.
    #[arg(long, env = "TRESPASSER_TICKET_KEY", hide_env_values = true)]
    pub ticket_key: String,
    /// Key id of --ticket-key.
    #[arg(long, env = "TRESPASSER_TICKET_KEY_ID", default_value = "k1")]
    pub ticket_key_id: String,
    #[command(flatten)]
    pub directory: DirectoryArgs,
    #[command(flatten)]
    pub api: http_api::ApiArgs,
    /// Log format: text or json.
    #[arg(long, env = "TRESPASSER_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// Store URL (`postgres://...` or `sqlite://path`).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// This node's id; join tickets must name it as their audience.
    #[arg(long, env = "TRESPASSER_NODE_ID", default_value = defaults::DEFAULT_NODE_ID)]
    pub node_id: String,
    /// UDP address of the QUIC endpoint.
    #[arg(long, env = "TRESPASSER_QUIC_ADDR", default_value = defaults::DEFAULT_QUIC_ADDR)]
    pub quic_addr: SocketAddr,
    /// TCP address of the HTTP listener (/health, /metrics, /lobbies).
    #[arg(long, env = "TRESPASSER_HTTP_ADDR", default_value = defaults::DEFAULT_HTTP_ADDR)]
    pub http_addr: SocketAddr,
    /// Host (or IP) players connect to, as announced to the API; the QUIC
    /// address's IP by default.
    #[arg(long, env = "TRESPASSER_PUBLIC_HOST")]
    pub public_host: Option<String>,
    /// UDP port players connect to, when a load balancer or NAT maps it.
    #[arg(long, env = "TRESPASSER_PUBLIC_PORT")]
    pub public_port: Option<u16>,
    /// Where the node writes its files (development certificate and ticket key).
    #[arg(long, env = "TRESPASSER_DATA_DIR", default_value = defaults::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// PEM certificate chain; without it (serve only) a self-signed one is generated.
    #[arg(long, env = "TRESPASSER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "TRESPASSER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Ticket signing key, hex (at least 32 bytes). Without it (serve only) one
    /// is generated into <data-dir>/ticket-key.
    #[arg(long, env = "TRESPASSER_TICKET_KEY", hide_env_values = true)]
    pub ticket_key: Option<String>,
    /// Key id (`kid`) of --ticket-key.
    #[arg(long, env = "TRESPASSER_TICKET_KEY_ID", default_value = "k1")]
    pub ticket_key_id: String,
    /// A previous ticket key still accepted during rotation, as `kid:hex`.
    #[arg(long, env = "TRESPASSER_TICKET_KEY_PREVIOUS", hide_env_values = true)]
    pub ticket_key_previous: Option<String>,
    /// Simulation ticks (and snapshots) per second.
    #[arg(long, env = "TRESPASSER_TICK_RATE", default_value_t = 20,
          value_parser = clap::value_parser!(u16).range(20..=60))]
    pub tick_rate: u16,
    /// Players per lobby (an emergency lever).
    #[arg(long, env = "TRESPASSER_PLAYERS_PER_LOBBY", default_value_t = 8,
          value_parser = clap::value_parser!(u8).range(2..=32))]
    pub players_per_lobby: u8,
    /// Most lobbies this node runs at once (an emergency lever).
    #[arg(long, env = "TRESPASSER_MAX_LOBBIES", default_value_t = 1000)]
    pub max_lobbies: usize,
    /// Kills that win a match.
    #[arg(long, env = "TRESPASSER_KILL_TARGET", default_value_t = 50,
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub kill_target: u16,
    /// Game modes this node serves, comma-separated.
    #[arg(long, env = "TRESPASSER_MODES", default_value = defaults::DEFAULT_MODE, value_delimiter = ',')]
    pub modes: Vec<String>,
    /// Arena file (TOML, see maps/README.md); the built-in arena by default.
    #[arg(long, env = "TRESPASSER_MAP")]
    pub map: Option<PathBuf>,
    /// How long a disconnected player's slot and score are kept.
    #[arg(long, env = "TRESPASSER_RECONNECT_GRACE", default_value = "15s", value_parser = duration)]
    pub reconnect_grace: Duration,
    /// How long the restart vote stays open after a match.
    #[arg(long, env = "TRESPASSER_VOTE_DURATION", default_value = "15s", value_parser = duration)]
    pub vote_duration: Duration,
    /// Furthest back lag compensation rewinds targets.
    #[arg(long, env = "TRESPASSER_MAX_REWIND", default_value = "200ms", value_parser = duration)]
    pub max_rewind: Duration,
    /// Health removed by one hit (players have 100).
    #[arg(long, env = "TRESPASSER_DAMAGE", default_value_t = 25, value_parser = clap::value_parser!(u8).range(1..=100))]
    pub damage: u8,
    /// Shortest time between two shots of one player.
    #[arg(long, env = "TRESPASSER_FIRE_COOLDOWN", default_value = "250ms", value_parser = duration)]
    pub fire_cooldown: Duration,
    /// Time a killed player waits before respawning.
    #[arg(long, env = "TRESPASSER_RESPAWN_DELAY", default_value = "2s", value_parser = duration)]
    pub respawn_delay: Duration,
    /// Time after a spawn during which a player cannot be damaged.
    #[arg(long, env = "TRESPASSER_SPAWN_PROTECTION", default_value = "1500ms", value_parser = duration)]
    pub spawn_protection: Duration,
    /// Lobby chat on or off.
    #[arg(long, env = "TRESPASSER_CHAT", default_value_t = true, action = clap::ArgAction::Set)]
    pub chat: bool,
    /// Longest chat message in characters.
    #[arg(long, env = "TRESPASSER_CHAT_MAX_CHARS", default_value_t = 200,
          value_parser = clap::value_parser!(u16).range(1..=200))]
    pub chat_max_chars: u16,
    /// Chat messages a player may send in a burst.
    #[arg(long, env = "TRESPASSER_CHAT_BURST", default_value_t = 5)]
    pub chat_burst: u32,
    /// Time to earn one more chat message after the burst.
    #[arg(long, env = "TRESPASSER_CHAT_INTERVAL", default_value = "2s", value_parser = duration)]
    pub chat_interval: Duration,
    /// Most simultaneous connections (handshakes included).
    #[arg(long, env = "TRESPASSER_MAX_CONNECTIONS", default_value_t = 20_000)]
    pub max_connections: usize,
    /// Load (the share of wall time a QUIC shard's thread is busy, smoothed
    /// over about a second) past which a shard refuses new connections and,
    /// on average over the shards, the node tells the directory it is
    /// overloaded so matchmaking sends players elsewhere. Keeps the players
    /// a node has at full quality instead of degrading all of them. 1 turns
    /// it off.
    #[arg(long, env = "TRESPASSER_MAX_SHARD_LOAD", default_value_t = 0.9, value_parser = shard_load)]
    pub max_shard_load: f64,
    /// New connections per second allowed from one IP address.
    #[arg(long, env = "TRESPASSER_CONN_RATE_PER_IP", default_value_t = 50.0)]
    pub conn_rate_per_ip: f64,
    /// Burst of new connections allowed from one IP address.
    #[arg(long, env = "TRESPASSER_CONN_BURST_PER_IP", default_value_t = 500.0)]
    pub conn_burst_per_ip: f64,
    /// Time for the QUIC handshake and for the client's Hello.
    #[arg(long, env = "TRESPASSER_HANDSHAKE_TIMEOUT", default_value = "5s", value_parser = duration)]
    pub handshake_timeout: Duration,
    /// Time a connection may stay open outside a lobby.
    #[arg(long, env = "TRESPASSER_JOIN_TIMEOUT", default_value = "30s", value_parser = duration)]
    pub join_timeout: Duration,
    /// A connection with no packets for this long is closed.
    #[arg(long, env = "TRESPASSER_IDLE_TIMEOUT", default_value = "10s", value_parser = duration)]
    pub idle_timeout: Duration,
    /// Datagrams per second accepted from one connection (excess is dropped).
    #[arg(long, env = "TRESPASSER_DATAGRAM_RATE", default_value_t = 120.0)]
    pub datagram_rate: f64,
    /// Datagram burst accepted from one connection.
    #[arg(long, env = "TRESPASSER_DATAGRAM_BURST", default_value_t = 60.0)]
    pub datagram_burst: f64,
    /// UDP socket send and receive buffer size in bytes.
    #[arg(long, env = "TRESPASSER_UDP_BUFFER", default_value_t = 4 << 20)]
    pub udp_buffer: usize,
    /// QUIC endpoints sharing the UDP port (SO_REUSEPORT), each on its own
    /// thread with its own connections and the lobbies created through them.
    /// One per core the node may use is the usual choice. Each packet goes
    /// to the shard that owns its connection (a kernel program reads the
    /// shard from the connection id), so new connections spread evenly and
    /// a client whose address changes keeps its connection.
    #[arg(long, env = "TRESPASSER_QUIC_SHARDS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub quic_shards: u16,
    /// How late QUIC connection timers may fire. An acknowledgement that
    /// falls due a few milliseconds before the lobby's next tick then rides
    /// on that tick's snapshot instead of going in a packet of its own
    /// (clients are acked at most 25 ms + slack after they send; real
    /// clients' probe timers allow for RTT variance above that). 0 disables.
    #[arg(long, env = "TRESPASSER_QUIC_TIMER_SLACK", default_value = "10ms", value_parser = duration)]
    pub quic_timer_slack: Duration,
    /// Serve browsers over WebTransport (HTTP/3, ALPN `h3`) on the QUIC
    /// port, at `/play`, next to native clients.
    #[arg(long, env = "TRESPASSER_WEBTRANSPORT", default_value_t = true, action = clap::ArgAction::Set)]
    pub webtransport: bool,
    /// Log format: text or json. Levels come from RUST_LOG (default info).
    #[arg(long, env = "TRESPASSER_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct TicketArgs {
    /// Data dir of the node whose generated ticket key signs the ticket.
    #[arg(long, env = "TRESPASSER_DATA_DIR", default_value = defaults::DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Sign with this hex key instead of the data dir's.
    #[arg(long, env = "TRESPASSER_TICKET_KEY", hide_env_values = true)]
    pub ticket_key: Option<String>,
    /// Key id of --ticket-key.
    #[arg(long, env = "TRESPASSER_TICKET_KEY_ID", default_value = "k1")]
    pub ticket_key_id: String,
    /// Node id the ticket is for.
    #[arg(long, env = "TRESPASSER_NODE_ID", default_value = defaults::DEFAULT_NODE_ID)]
    pub node_id: String,
    /// Display name.
    #[arg(long, default_value = "player")]
    pub name: String,
    /// Account id (random by default).
    #[arg(long)]
    pub account: Option<uuid::Uuid>,
    /// Game mode to matchmake into.
    #[arg(long, default_value = defaults::DEFAULT_MODE, conflicts_with = "lobby")]
    pub mode: String,
    /// Join this lobby instead of matchmaking.
    #[arg(long)]
    pub lobby: Option<u64>,
    /// Ticket lifetime (at most 60s).
    #[arg(long, default_value = "30s", value_parser = duration)]
    pub ttl: Duration,
    /// Equipped badge.
    #[arg(long)]
    pub badge: Option<String>,
    /// Equipped name color.
    #[arg(long)]
    pub name_color: Option<String>,
}

/// Parses `kid:hex` or a bare hex key with the given id.
pub fn parse_ticket_key(kid: &str, hex: &str) -> anyhow::Result<TicketKey> {
    let secret = defaults::from_hex(hex).context("the ticket key must be hex")?;
    TicketKey::new(kid, secret).context("invalid ticket key")
}

/// The development ticket key in `data_dir`, created on first use.
pub fn dev_ticket_key(data_dir: &std::path::Path, create: bool) -> anyhow::Result<TicketKey> {
    let path = data_dir.join(defaults::TICKET_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse_ticket_key(defaults::DEV_KEY_ID, &text).with_context(|| format!("in {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let secret: [u8; 32] = rand::random();
            write_private(&path, defaults::to_hex(&secret).as_bytes())?;
            Ok(TicketKey::new(defaults::DEV_KEY_ID, secret.to_vec())?)
        }
        Err(e) => Err(e).with_context(|| format!("reading the ticket key {}", path.display())),
    }
}

/// Writes a file readable only by its owner.
pub fn write_private(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path).with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    Ok(())
}
