//! Command-line flags of the `loadgen` binary; each has an environment
//! variable fallback (`LOADGEN_*`) for CI and containers.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser, ValueEnum};
use protocol::defaults::{DEFAULT_DATA_DIR, DEFAULT_MODE, DEFAULT_NODE_ID, DEFAULT_QUIC_ADDR};

use crate::client::DEFAULT_CLIENT_NAME;

#[derive(Debug, Clone, Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Runs bot players against a Trespasser game node over real QUIC and reports join time, \
             input round trip, snapshot rate and errors."
)]
pub struct Args {
    /// Number of bots.
    #[arg(long, env = "LOADGEN_BOTS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub bots: u32,

    /// Length of the run, ramp included (e.g. 30s, 5m).
    #[arg(long, env = "LOADGEN_DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub duration: Duration,

    /// Joins are spread evenly over this time from the start.
    #[arg(long, env = "LOADGEN_RAMP", default_value = "5s", value_parser = humantime::parse_duration)]
    pub ramp: Duration,

    /// The game node's QUIC address.
    #[arg(long, env = "LOADGEN_SERVER", default_value = DEFAULT_QUIC_ADDR)]
    pub server: SocketAddr,

    /// TLS server name the node's certificate is issued for.
    #[arg(long, env = "LOADGEN_SERVER_NAME", default_value = "localhost")]
    pub server_name: String,

    /// The node's data dir, for its ticket key and development certificate.
    #[arg(long, env = "LOADGEN_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,

    /// Node id the join tickets are issued for (their audience).
    #[arg(long, env = "LOADGEN_NODE_ID", default_value = DEFAULT_NODE_ID)]
    pub node_id: String,

    /// Game mode the bots matchmake into.
    #[arg(long, env = "LOADGEN_MODE", default_value = DEFAULT_MODE)]
    pub mode: String,

    /// Join this lobby id instead of matchmaking by mode.
    #[arg(long, env = "LOADGEN_LOBBY")]
    pub lobby: Option<u64>,

    /// Skip verification of the node's certificate.
    #[arg(long, env = "LOADGEN_INSECURE", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub insecure: bool,

    /// The node's certificate (DER) [default: <data-dir>/dev-cert.der].
    #[arg(long, env = "LOADGEN_CERT")]
    pub cert: Option<PathBuf>,

    /// Ticket key as hex [default: read from <data-dir>/ticket-key].
    #[arg(long, env = "LOADGEN_TICKET_KEY", hide_env_values = true)]
    pub ticket_key: Option<String>,

    /// Key id of --ticket-key (the node's --ticket-key-id).
    #[arg(long, env = "LOADGEN_TICKET_KEY_ID", default_value = "k1")]
    pub ticket_key_id: String,

    /// Most handshakes and joins in flight at once.
    #[arg(long, env = "LOADGEN_CONNECT_CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub connect_concurrency: u32,

    /// QUIC endpoints (UDP sockets) the bots share; 0 picks one per 500 bots.
    #[arg(long, env = "LOADGEN_ENDPOINTS", default_value_t = 0)]
    pub endpoints: u32,

    /// How bots vote when a match ends.
    #[arg(long, env = "LOADGEN_VOTE", value_enum, default_value_t = Vote::Yes)]
    pub vote: Vote,

    /// Reconnects per bot after a lost connection.
    #[arg(long, env = "LOADGEN_MAX_RECONNECTS", default_value_t = 3)]
    pub max_reconnects: u32,

    /// Time after the run for bots to leave before they are cut off.
    #[arg(long, env = "LOADGEN_GRACE", default_value = "5s", value_parser = humantime::parse_duration)]
    pub grace: Duration,

    /// Write the JSON report here.
    #[arg(long, env = "LOADGEN_JSON")]
    pub json: Option<PathBuf>,

    /// Exit with status 1 if any error occurred or any bot failed to join.
    #[arg(long, env = "LOADGEN_FAIL_ON_ERROR", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub fail_on_error: bool,

    /// Seed for the bots' movement (random if unset).
    #[arg(long, env = "LOADGEN_SEED")]
    pub seed: Option<u64>,

    /// No live progress line.
    #[arg(long, short, env = "LOADGEN_QUIET", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub quiet: bool,

    /// Client name sent in the handshake.
    #[arg(long, env = "LOADGEN_CLIENT_NAME", default_value = DEFAULT_CLIENT_NAME)]
    pub client_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Vote {
    Yes,
    No,
    Abstain,
}

impl Vote {
    pub fn restart(self) -> Option<bool> {
        match self {
            Vote::Yes => Some(true),
            Vote::No => Some(false),
            Vote::Abstain => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_parse_with_defaults() {
        Args::command().debug_assert();
        let a = Args::try_parse_from(["loadgen", "--bots", "200", "--duration", "20s", "--json", "r.json"]).unwrap();
        assert_eq!((a.bots, a.duration, a.ramp), (200, Duration::from_secs(20), Duration::from_secs(5)));
        assert_eq!(a.server, DEFAULT_QUIC_ADDR.parse().unwrap());
        assert_eq!((a.node_id.as_str(), a.mode.as_str()), ("local", "deathmatch"));
        assert_eq!(a.vote.restart(), Some(true));
        assert!(!a.insecure && !a.fail_on_error);
        assert!(Args::try_parse_from(["loadgen", "--bots", "0"]).is_err());
        let a = Args::try_parse_from(["loadgen", "--insecure", "--fail-on-error", "--vote", "no"]).unwrap();
        assert!(a.insecure && a.fail_on_error);
        assert_eq!(a.vote.restart(), Some(false));
    }
}
