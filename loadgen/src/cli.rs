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
use clap::{ArgAction, Parser, Subcommand, ValueEnum};
use protocol::defaults::{DEFAULT_DATA_DIR, DEFAULT_MODE, DEFAULT_NODE_ID, DEFAULT_QUIC_ADDR};

use crate::client::DEFAULT_CLIENT_NAME;
use crate::impair::{Impairment, parse_loss};
use crate::scenario::{Phase, Scenario, ScenarioError, Shard};

/// Bots without `--bots` and without phases.
pub const DEFAULT_BOTS: u32 = 10;
/// Run length without `--duration`.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(30);
/// Run length of `--soak` without `--duration`: the plan's hour.
pub const DEFAULT_SOAK_DURATION: Duration = Duration::from_secs(3600);

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
                  minted from its data dir's key.\n\n\
                  Load comes in phases (--phase, --scenario) or, without them, as --bots \
                  joining over --ramp and playing until --duration. `loadgen merge` combines \
                  the JSON reports of a run split with --shard.",
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Bots alive at once at most [default: 10 without phases, no cap with them].
    /// Without phases, this many bots join evenly over --ramp.
    #[arg(long, env = "LOADGEN_BOTS", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub bots: Option<u32>,

    /// Length of the run, ramp included (e.g. 30s, 5m) [default: 30s, 1h with --soak];
    /// the bots' API accounts sign in before it starts. Ignored with phases.
    #[arg(long, env = "LOADGEN_DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,

    /// A load phase NAME:DURATION:RATE[:RAMP_TO]: RATE new bots per second,
    /// changing linearly to RAMP_TO over the phase (repeatable, in order;
    /// e.g. --phase ramp:60s:0:40 --phase sustained:5m:0). A phase named
    /// "sustained" is the window steady-state figures are taken over.
    #[arg(long = "phase", env = "LOADGEN_PHASES", value_delimiter = ',', value_parser = Phase::parse_flag, conflicts_with = "scenario")]
    pub phases: Vec<Phase>,

    /// A TOML scenario: [[phase]] tables (name, duration, arrival_rate,
    /// ramp_to or arrival_count) and an optional [limits] table.
    #[arg(long, env = "LOADGEN_SCENARIO")]
    pub scenario: Option<PathBuf>,

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

    /// Mean time between one bot's chat messages (randomized); 0 turns chat off.
    #[arg(long, env = "LOADGEN_CHAT_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub chat_interval: Duration,

    /// Share of playing bots that leave their lobby each minute (0.1 or 10%)
    /// and come back after --rejoin-delay through matchmaking.
    #[arg(long, env = "LOADGEN_CHURN", default_value = "0", value_parser = parse_churn)]
    pub churn: f64,

    /// How long a churned bot stays away.
    #[arg(long, env = "LOADGEN_REJOIN_DELAY", default_value = "5s", value_parser = humantime::parse_duration)]
    pub rejoin_delay: Duration,

    /// Datagrams dropped on the bots' side, each way independently (5% or 0.05).
    #[arg(long, env = "LOADGEN_LOSS", default_value = "0", value_parser = parse_loss)]
    pub loss: f64,

    /// Round-trip time added on the bots' side, half each way.
    #[arg(long, env = "LOADGEN_LATENCY", default_value = "0s", value_parser = humantime::parse_duration)]
    pub latency: Duration,

    /// Spread of the added round trip: each one-way delay is latency/2 ± jitter/2.
    #[arg(long, env = "LOADGEN_JITTER", default_value = "0s", value_parser = humantime::parse_duration)]
    pub jitter: Duration,

    /// Override a verdict's limit: NAME=VALUE, or NAME=off to skip it
    /// (repeatable; names as in the report's "verdicts").
    #[arg(long = "limit", env = "LOADGEN_LIMITS", value_delimiter = ',')]
    pub limits: Vec<String>,

    /// Exit with status 1 if any verdict fails.
    #[arg(long, env = "LOADGEN_FAIL_ON_VERDICT", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub fail_on_verdict: bool,

    /// Run only this shard's bots, I/N: those whose index is I modulo N
    /// (merge the shards' reports with `loadgen merge`).
    #[arg(long, env = "LOADGEN_SHARD", value_parser = clap::value_parser!(Shard))]
    pub shard: Option<Shard>,

    /// Start the run clock at this Unix time in milliseconds, so shards on
    /// several machines begin together (API sign-in happens before it).
    #[arg(long, env = "LOADGEN_START_AT")]
    pub start_at: Option<u64>,

    /// The node's Prometheus page, scraped before, every second during and
    /// after the run [default: <api>/metrics; with --direct http://127.0.0.1:8080/metrics].
    #[arg(long, env = "LOADGEN_METRICS_URL")]
    pub metrics_url: Option<String>,

    /// Do not scrape the node's metrics.
    #[arg(long, env = "LOADGEN_NO_SCRAPE", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new(), conflicts_with = "metrics_url")]
    pub no_scrape: bool,

    /// A soak run: one hour by default (see --duration), node memory sampled
    /// and its trend after --soak-warmup checked for growth.
    #[arg(long, env = "LOADGEN_SOAK", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub soak: bool,

    /// Memory samples before this time are left out of the soak trend.
    #[arg(long, env = "LOADGEN_SOAK_WARMUP", default_value = "5m", value_parser = humantime::parse_duration)]
    pub soak_warmup: Duration,

    /// Write a self-contained HTML report here.
    #[arg(long, env = "LOADGEN_HTML")]
    pub html: Option<PathBuf>,

    /// How the bots' QUIC connections are driven: `loop` (quic-loop drivers,
    /// one task per socket ticking all its bots) or `quinn` (quinn's async
    /// API, a task per bot and per connection) [default: loop; quinn when
    /// --loss, --latency or --jitter impair the sockets, which only quinn
    /// sockets can].
    #[arg(long, env = "LOADGEN_QUIC_IO", value_enum)]
    pub quic_io: Option<QuicIo>,

    /// How bots connect: `quic` (native, as the game client) or
    /// `webtransport` (an HTTP/3 WebTransport session on the same port, as
    /// browsers; needs `--quic-io loop`, so no impairment).
    #[arg(long, env = "LOADGEN_TRANSPORT", value_enum, default_value_t = Transport::Quic)]
    pub transport: Transport,

    /// How late the quic-loop drivers' connection timers may fire. The
    /// node acks a bot's input up to 25 ms plus its own slack later, riding
    /// on its next snapshot; with none here, the bot's probe timer (about
    /// 25 ms plus RTT on loopback) would fire just before that ack arrives
    /// and send a probe packet. Only `--quic-io loop` uses it.
    #[arg(long, env = "LOADGEN_TIMER_SLACK", default_value = "10ms", value_parser = humantime::parse_duration)]
    pub timer_slack: Duration,

    /// Runtime worker threads of a multi-threaded runtime; 0 picks: one per
    /// core this process may run on (taskset), and on a single core the
    /// single-threaded runtime, which is cheaper per wake-up.
    #[arg(long, env = "LOADGEN_THREADS", default_value_t = 0)]
    pub threads: usize,
}

/// What `loadgen` does besides a run.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Merges the JSON reports of a sharded run into one (counters summed,
    /// histograms merged, percentiles and verdicts recomputed).
    Merge(MergeArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct MergeArgs {
    /// The shards' JSON reports.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,

    /// Write the merged JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Write the merged HTML report here.
    #[arg(long)]
    pub html: Option<PathBuf>,

    /// Override a verdict's limit (NAME=VALUE or NAME=off), as for a run.
    #[arg(long = "limit", value_delimiter = ',')]
    pub limits: Vec<String>,

    /// Exit with status 1 if any verdict fails.
    #[arg(long, action = ArgAction::SetTrue)]
    pub fail_on_verdict: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuicIoError {
    #[error("--quic-io loop cannot impair its sockets: drop --loss/--latency/--jitter or use --quic-io quinn")]
    LoopImpaired,
    #[error(
        "--transport webtransport runs on --quic-io loop, which cannot impair its sockets: drop --loss/--latency/--jitter or --quic-io quinn"
    )]
    WebTransportNeedsLoop,
}

/// A share of bots per minute, as a fraction (`0.1`) or a percentage
/// (`10%`); above 100 % is allowed (every bot leaves more than once a minute).
pub fn parse_churn(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (number, scale) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (t, 1.0),
    };
    match number.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v / scale),
        _ => Err(format!("{text:?} is not a share per minute like 10% or 0.1")),
    }
}

impl Args {
    /// The cap on bots alive at once, if any.
    pub fn bot_cap(&self) -> Option<u32> {
        match (self.bots, self.phases.is_empty() && self.scenario.is_none()) {
            (Some(n), _) => Some(n),
            (None, true) => Some(DEFAULT_BOTS),
            (None, false) => None,
        }
    }

    /// How long a run without phases lasts.
    pub fn run_duration(&self) -> Duration {
        self.duration.unwrap_or(if self.soak { DEFAULT_SOAK_DURATION } else { DEFAULT_DURATION })
    }

    /// The scenario the flags describe: the phases, the file, or today's
    /// `--bots` over `--ramp` held until `--duration`.
    pub fn scenario(&self) -> Result<Scenario, ScenarioError> {
        if let Some(path) = &self.scenario {
            return Scenario::from_toml_file(path);
        }
        if !self.phases.is_empty() {
            return Scenario::new(self.phases.clone());
        }
        Ok(Scenario::ramp_and_hold(self.bots.unwrap_or(DEFAULT_BOTS), self.ramp, self.run_duration()))
    }

    pub fn impairment(&self) -> Impairment {
        Impairment { loss: self.loss, latency: self.latency, jitter: self.jitter }
    }

    /// The QUIC I/O this run uses: the impairment wraps quinn sockets, so
    /// asking for `loop` with it is an error, and leaving `--quic-io` out
    /// picks quinn for it.
    pub fn quic_io(&self) -> Result<QuicIo, QuicIoError> {
        let impaired = !self.impairment().is_none();
        if self.transport == Transport::Webtransport {
            return match (self.quic_io, impaired) {
                (None | Some(QuicIo::Loop), false) => Ok(QuicIo::Loop),
                _ => Err(QuicIoError::WebTransportNeedsLoop),
            };
        }
        match (self.quic_io, impaired) {
            (Some(QuicIo::Loop), true) => Err(QuicIoError::LoopImpaired),
            (Some(io), _) => Ok(io),
            (None, true) => Ok(QuicIo::Quinn),
            (None, false) => Ok(QuicIo::Loop),
        }
    }

    /// Mean time between a bot's chats, `None` when chat is off.
    pub fn chat_every(&self) -> Option<Duration> {
        (!self.chat_interval.is_zero()).then_some(self.chat_interval)
    }
}

/// How bots reach the node (`--transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Transport {
    /// Native QUIC (ALPN `trespasser/1`), as the game client connects.
    #[default]
    Quic,
    /// A WebTransport session over HTTP/3, as browsers connect.
    Webtransport,
}

/// The bots' QUIC I/O (`--quic-io`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QuicIo {
    Loop,
    Quinn,
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
        assert_eq!((a.bots, a.run_duration(), a.ramp), (Some(200), Duration::from_secs(20), Duration::from_secs(5)));
        assert!(a.command.is_none());
        assert_eq!((a.chat_every(), a.churn, a.impairment().is_none()), (Some(Duration::from_secs(60)), 0.0, true));
        assert_eq!(a.api, format!("http://{}", protocol::defaults::DEFAULT_HTTP_ADDR));
        assert!(!a.direct && a.account_prefix.is_none());
        assert_eq!(a.server, DEFAULT_QUIC_ADDR.parse().unwrap());
        assert_eq!((a.node_id.as_str(), a.mode.as_str()), ("local", "deathmatch"));
        assert_eq!(a.vote.restart(), Some(true));
        assert!(!a.insecure && !a.fail_on_error);
        assert_eq!(a.quic_io(), Ok(QuicIo::Loop));
        assert!(Args::try_parse_from(["loadgen", "--bots", "0"]).is_err());
        let a = Args::try_parse_from(["loadgen", "--quic-io", "quinn"]).unwrap();
        assert_eq!(a.quic_io(), Ok(QuicIo::Quinn));
        let a = Args::try_parse_from(["loadgen", "--quic-io", "loop", "--loss", "1%"]).unwrap();
        assert_eq!(a.quic_io(), Err(QuicIoError::LoopImpaired));
        assert!(Args::try_parse_from(["loadgen", "--quic-io", "tcp"]).is_err());
        assert_eq!((a.transport, a.timer_slack), (Transport::Quic, Duration::from_millis(10)));
        let a = Args::try_parse_from(["loadgen", "--transport", "webtransport"]).unwrap();
        assert_eq!(a.quic_io(), Ok(QuicIo::Loop));
        for impaired in [&["--loss", "1%"][..], &["--quic-io", "quinn"]] {
            let a = Args::try_parse_from([&["loadgen", "--transport", "webtransport"][..], impaired].concat()).unwrap();
            assert_eq!(a.quic_io(), Err(QuicIoError::WebTransportNeedsLoop), "{impaired:?}");
        }
        let a = Args::try_parse_from(["loadgen", "--insecure", "--fail-on-error", "--vote", "no"]).unwrap();
        assert!(a.insecure && a.fail_on_error);
        assert_eq!(a.vote.restart(), Some(false));
        let a = Args::try_parse_from(["loadgen"]).unwrap();
        assert_eq!((a.bot_cap(), a.run_duration()), (Some(DEFAULT_BOTS), DEFAULT_DURATION));
        let a = Args::try_parse_from(["loadgen", "--soak"]).unwrap();
        assert_eq!(a.run_duration(), DEFAULT_SOAK_DURATION);
    }

    #[test]
    fn phases_shards_impairment_and_limits_parse() {
        let a = Args::try_parse_from([
            "loadgen",
            "--phase",
            "ramp:10s:1:5",
            "--phase",
            "sustained:20s:0",
            "--shard",
            "1/2",
            "--loss",
            "5%",
            "--latency",
            "80ms",
            "--jitter",
            "20ms",
            "--churn",
            "10%",
            "--limit",
            "rtt_p99_ms=80",
            "--chat-interval",
            "0s",
        ])
        .unwrap();
        let s = a.scenario().unwrap();
        assert_eq!(s.phases.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), ["ramp", "sustained"]);
        assert_eq!((s.duration(), a.bot_cap()), (Duration::from_secs(30), None), "phases: no cap unless --bots");
        assert_eq!(a.shard, Some(Shard { index: 1, count: 2 }));
        let i = a.impairment();
        assert_eq!((i.loss, i.latency, i.jitter), (0.05, Duration::from_millis(80), Duration::from_millis(20)));
        assert_eq!(a.quic_io(), Ok(QuicIo::Quinn), "impairment picks quinn");
        assert_eq!((a.churn, a.chat_every(), a.limits.as_slice()), (0.1, None, &["rtt_p99_ms=80".to_owned()][..]));

        // Without phases: today's flags as a scenario.
        let a = Args::try_parse_from(["loadgen", "--bots", "4", "--ramp", "2s", "--duration", "10s"]).unwrap();
        assert_eq!(a.scenario().unwrap(), Scenario::ramp_and_hold(4, Duration::from_secs(2), Duration::from_secs(10)));

        for bad in [
            &["--phase", "nope"][..],
            &["--shard", "2/2"],
            &["--loss", "150%"],
            &["--phase", "a:1s:1", "--scenario", "s.toml"],
            &["--no-scrape", "--metrics-url", "http://x/metrics"],
        ] {
            let mut argv = vec!["loadgen"];
            argv.extend_from_slice(bad);
            assert!(Args::try_parse_from(&argv).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn merge_is_a_subcommand_that_keeps_run_flags_working() {
        let a =
            Args::try_parse_from(["loadgen", "merge", "a.json", "b.json", "--json", "out.json", "--html", "o.html"])
                .unwrap();
        let Some(Command::Merge(m)) = a.command else { panic!("not a merge") };
        assert_eq!(m.reports, [PathBuf::from("a.json"), PathBuf::from("b.json")]);
        assert_eq!((m.json, m.html), (Some("out.json".into()), Some("o.html".into())));
        assert!(Args::try_parse_from(["loadgen", "merge"]).is_err(), "needs reports");
        assert_eq!((parse_churn("600%"), parse_churn("0.25"), parse_churn(" 5 % ")), (Ok(6.0), Ok(0.25), Ok(0.05)));
        for bad in ["-1%", "x", "inf", ""] {
            assert!(parse_churn(bad).is_err(), "{bad}");
        }
        assert!(
            Args::try_parse_from(["loadgen", "--bots", "3", "merge", "a.json"]).is_err(),
            "run flags do not mix in"
        );
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
