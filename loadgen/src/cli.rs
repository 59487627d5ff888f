//! Command-line flags of the `loadgen` binary; each has an environment
//! variable fallback (`LOADGEN_*`) for CI and containers.
//!
//! Bots go through the HTTP API by default (an account each, a placement per
//! join). `--direct` skips the API and mints tickets with a local node's key;
//! the flags that only make sense then require it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser, ValueEnum};
use protocol::defaults::{DEFAULT_DATA_DIR, DEFAULT_MODE, DEFAULT_NODE_ID, DEFAULT_QUIC_ADDR};

use crate::client::DEFAULT_CLIENT_NAME;

/// The API of `trespasser serve` with no flags (its `DEFAULT_HTTP_ADDR`).
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:8080";
/// The bots' password: long, not a common one, and without '_' so it never
/// contains a bot's username (which the API refuses).
pub const DEFAULT_ACCOUNT_PASSWORD: &str = "lg-Strong-Bot-Pass-9c41e7";

#[derive(Debug, Clone, Parser)]
#[command(
    name = "loadgen",
    version,
    about = "Runs bot players against Trespasser over real QUIC and reports join time, \
             input round trip, snapshot rate, HTTP API latency and errors.",
    long_about = "Runs bot players against Trespasser over real QUIC and reports join time, \
                  input round trip, snapshot rate, HTTP API latency and errors.\n\n\
                  Each bot registers (or logs in) through the HTTP API, matchmakes there and \
                  connects to the node it is placed on, pinning the certificate hash the API \
                  returned. With --direct, bots skip the API and join one node with tickets \
                  minted from its data dir's key."
)]
pub struct Args {
    /// Number of bots.
    #[arg(long, env = "LOADGEN_BOTS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub bots: u32,

    /// Length of the run, ramp included (e.g. 30s, 5m); the bots' API
    /// accounts sign in before it starts.
    #[arg(long, env = "LOADGEN_DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub duration: Duration,

    /// Joins are spread evenly over this time from the start.
    #[arg(long, env = "LOADGEN_RAMP", default_value = "5s", value_parser = humantime::parse_duration)]
    pub ramp: Duration,

    /// Base URL of the HTTP API.
    #[arg(long, env = "LOADGEN_API", default_value = DEFAULT_API_URL, conflicts_with = "direct")]
    pub api: String,

    /// Bots' usernames are <prefix>_<i> [default: bot_<letters from the run seed>].
    #[arg(long, env = "LOADGEN_ACCOUNT_PREFIX", conflicts_with = "direct")]
    pub account_prefix: Option<String>,

    /// Password of every bot account.
    #[arg(long, env = "LOADGEN_ACCOUNT_PASSWORD", default_value = DEFAULT_ACCOUNT_PASSWORD, hide_env_values = true)]
    pub account_password: String,

    /// Skip the API: join one node directly with tickets minted with its key.
    #[arg(long, env = "LOADGEN_DIRECT", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub direct: bool,

    /// The game node's QUIC address (--direct).
    #[arg(long, env = "LOADGEN_SERVER", default_value = DEFAULT_QUIC_ADDR, requires = "direct")]
    pub server: SocketAddr,

    /// TLS server name the node's certificate is issued for (--direct; API
    /// placements use the host they name).
    #[arg(long, env = "LOADGEN_SERVER_NAME", default_value = "localhost", requires = "direct")]
    pub server_name: String,

    /// The node's data dir, for its ticket key and development certificate (--direct).
    #[arg(long, env = "LOADGEN_DATA_DIR", default_value = DEFAULT_DATA_DIR, requires = "direct")]
    pub data_dir: PathBuf,

    /// Node id the join tickets are issued for, their audience (--direct).
    #[arg(long, env = "LOADGEN_NODE_ID", default_value = DEFAULT_NODE_ID, requires = "direct")]
    pub node_id: String,

    /// Game mode the bots matchmake into.
    #[arg(long, env = "LOADGEN_MODE", default_value = DEFAULT_MODE)]
    pub mode: String,

    /// Join this lobby id instead of matchmaking by mode.
    #[arg(long, env = "LOADGEN_LOBBY")]
    pub lobby: Option<u64>,

    /// Skip verification of the node's certificate (neither the API's pinned
    /// hash nor --cert is checked).
    #[arg(long, env = "LOADGEN_INSECURE", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub insecure: bool,

    /// The node's certificate, DER (--direct) [default: <data-dir>/dev-cert.der].
    #[arg(long, env = "LOADGEN_CERT", requires = "direct")]
    pub cert: Option<PathBuf>,

    /// Ticket key as hex (--direct) [default: read from <data-dir>/ticket-key].
    #[arg(long, env = "LOADGEN_TICKET_KEY", hide_env_values = true, requires = "direct")]
    pub ticket_key: Option<String>,

    /// Key id of --ticket-key, the node's --ticket-key-id (--direct).
    #[arg(long, env = "LOADGEN_TICKET_KEY_ID", default_value = "k1", requires = "direct")]
    pub ticket_key_id: String,

    /// Most joins in flight at once (account, matchmake, handshake, join).
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
        assert_eq!(a.api, format!("http://{}", protocol::defaults::DEFAULT_HTTP_ADDR));
        assert!(!a.direct && a.account_prefix.is_none());
        assert_eq!(a.server, DEFAULT_QUIC_ADDR.parse().unwrap());
        assert_eq!((a.node_id.as_str(), a.mode.as_str()), ("local", "deathmatch"));
        assert_eq!(a.vote.restart(), Some(true));
        assert!(!a.insecure && !a.fail_on_error);
        assert!(Args::try_parse_from(["loadgen", "--bots", "0"]).is_err());
        let a = Args::try_parse_from(["loadgen", "--insecure", "--fail-on-error", "--vote", "no"]).unwrap();
        assert!(a.insecure && a.fail_on_error);
        assert_eq!(a.vote.restart(), Some(false));
    }

    #[test]
    fn direct_only_flags_require_direct() {
        for flags in [
            &["--server", "127.0.0.1:5000"][..],
            &["--data-dir", "d"],
            &["--cert", "c.der"],
            &["--ticket-key", "00"],
            &["--node-id", "n"],
        ] {
            let mut argv = vec!["loadgen"];
            argv.extend_from_slice(flags);
            assert!(Args::try_parse_from(&argv).is_err(), "{flags:?} without --direct");
            argv.push("--direct");
            assert!(Args::try_parse_from(&argv).unwrap().direct, "{flags:?} with --direct");
        }
        assert!(Args::try_parse_from(["loadgen", "--direct", "--api", "http://h:1"]).is_err());
        assert!(Args::try_parse_from(["loadgen", "--direct", "--account-prefix", "x"]).is_err());
        let a = Args::try_parse_from(["loadgen", "--api", "http://h:1", "--account-prefix", "soak"]).unwrap();
        assert_eq!((a.api.as_str(), a.account_prefix.as_deref()), ("http://h:1", Some("soak")));
    }
}
