//! A whole load run: set up the API client and sign every bot in (or trust
//! and tickets with `--direct`), then start the bots as the scenario's
//! phases bring them, sample the run every second (bots, node, loadgen),
//! and stop everyone by a hard deadline.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use protocol::ticket::JoinTarget;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::api::{ApiClient, Tokens};
use crate::bot::{BotConfig, BotEnv, BotIo, Matchmaker, Schedulers, run_bot};
use crate::cli::{Args, QuicIo, Transport};
use crate::drivers::DriverPool;
use crate::impair::ImpairStats;
use crate::report::{Report, Window};
use crate::sampler::{Samples, Scraper, own_cpu_seconds, own_peak_rss_bytes, sample_every_second};
use crate::scenario::Shard;
use crate::stats::Stats;
use crate::ticket::DevTicketMinter;
use crate::tls::{ClientConfigs, EndpointPool, Impair, Trust};

/// Bots per endpoint (or quic-loop driver) when `--endpoints` is 0: one
/// socket and driver task comfortably carries this many 20 Hz connections.
const BOTS_PER_ENDPOINT: u32 = 500;
const MAX_AUTO_ENDPOINTS: u32 = 16;
/// How long close frames of the last connections get to leave the sockets.
const DRAIN: Duration = Duration::from_secs(2);
/// Sign-ins (register or login) in flight at once.
const SIGN_IN_CONCURRENCY: usize = 8;
/// The API's longest username.
const USERNAME_MAX: usize = 20;
/// The node's metrics page with `--direct` (its default HTTP address).
const DIRECT_METRICS_URL: &str = "http://127.0.0.1:8080/metrics";
/// A start time this far ahead is a mistake (seconds for milliseconds), not a plan.
const MAX_START_WAIT: Duration = Duration::from_secs(24 * 3600);

/// Runs the bots described by `args` and returns the report. Fails only if
/// the run cannot start (bad scenario or limits, API unreachable, no
/// certificate, no ticket key, no socket, bad account names); errors during
/// the run are counted in the report.
pub async fn run(args: &Args) -> anyhow::Result<Report> {
    let scenario = args.scenario()?;
    let mut limits = crate::verdict::default_limits();
    for (name, value) in &scenario.limits {
        crate::verdict::set_limit(&mut limits, name, Some(&value.to_string()))?;
    }
    crate::verdict::apply_overrides(&mut limits, args.limits.iter().map(String::as_str))?;
    let shard = args.shard.unwrap_or(Shard::WHOLE);
    // The whole scenario's schedule, then this shard's share: bot indices
    // (and so account names) stay distinct across shards.
    let arrivals: Vec<(u32, Duration)> = scenario
        .arrivals()
        .into_iter()
        .enumerate()
        .filter(|&(i, _)| shard.owns(i as u64))
        .map(|(i, at)| (i as u32, at))
        .collect();
    let cap = args.bot_cap().map(|c| shard.share_of(c));
    let concurrent = cap.map_or(arrivals.len() as u32, |c| c.min(arrivals.len() as u32)).max(1);
    let spans = scenario.spans();
    let (sustained_start, sustained_end) = scenario.sustained_window();

    let stats = Arc::new(Stats::new(0));
    let seed = args.seed.unwrap_or_else(rand::random);
    let endpoint_count = match args.endpoints {
        0 => concurrent.div_ceil(BOTS_PER_ENDPOINT).min(MAX_AUTO_ENDPOINTS),
        n => n.min(concurrent),
    };
    let impair_stats = Arc::new(ImpairStats::default());
    let impairment = args.impairment();
    let quic_io = args.quic_io()?;
    if args.quic_io.is_none() && quic_io == QuicIo::Quinn && !args.quiet {
        let _ = writeln!(std::io::stderr().lock(), "note: impaired sockets need quinn; using --quic-io quinn");
    }
    let io = match quic_io {
        QuicIo::Quinn => BotIo::Quinn(Arc::new(EndpointPool::impaired(
            endpoint_count as usize,
            Impair { config: impairment, seed: seed ^ ((shard.index as u64) << 48), stats: impair_stats.clone() },
        ))),
        QuicIo::Loop => BotIo::Loop {
            drivers: Arc::new(DriverPool::new(endpoint_count as usize).with_timer_slack(args.timer_slack)),
            schedulers: Arc::new(Schedulers::new(stats.clone())),
        },
    };
    let (matchmaker, names) = if args.direct {
        let matchmaker = direct_matchmaker(args)?;
        // Bind the sockets now, so a failure stops the run before it starts.
        match &io {
            BotIo::Quinn(endpoints) => {
                endpoints.endpoint_for(args.server, 0)?;
            }
            BotIo::Loop { drivers, .. } => {
                drivers.driver_for(args.server, 0)?;
            }
        }
        (matchmaker, Names::Direct)
    } else {
        let api = ApiClient::new(&args.api)?.with_stats(stats.http());
        api.check_reachable().await.with_context(|| {
            format!("the HTTP API at {} (is `trespasser serve` running? --direct joins a node without it)", args.api)
        })?;
        let prefix = match &args.account_prefix {
            Some(prefix) => prefix.clone(),
            None => default_account_prefix(seed),
        };
        check_usernames(&prefix, arrivals.last().map_or(1, |&(i, _)| i + 1))?;
        let matchmaker = Matchmaker::Api { api, password: args.account_password.clone(), insecure: args.insecure };
        (matchmaker, Names::Accounts(prefix))
    };
    let scraper = match (&args.metrics_url, args.no_scrape, args.direct) {
        (_, true, _) => None,
        (Some(url), false, _) => Some(Scraper::new(url)?),
        (None, false, true) => Some(Scraper::new(DIRECT_METRICS_URL)?),
        (None, false, false) => Some(Scraper::new(&format!("{}/metrics", args.api.trim_end_matches('/')))?),
    };
    let matchmaker = Arc::new(matchmaker);
    let webtransport = args.transport == Transport::Webtransport;
    let quic_configs = Arc::new(if webtransport { ClientConfigs::webtransport() } else { ClientConfigs::new() });
    let gate = Arc::new(Semaphore::new(args.connect_concurrency as usize));
    let target = match args.lobby {
        Some(id) => JoinTarget::Lobby(id),
        None => JoinTarget::Mode(args.mode.clone()),
    };

    // API accounts sign in before the clock starts. Password hashing is by
    // far the API's most expensive work: done during the ramp it would starve
    // the joins being timed and, on a small machine, push bots past the end
    // of the run. Bots still sign in again when their tokens run out.
    let signed_in = match &*matchmaker {
        Matchmaker::Api { api, password, .. } => {
            let bots: Vec<u32> = arrivals.iter().map(|&(i, _)| i).collect();
            Some(sign_in_all(api, password, &names, &bots, args, &stats).await)
        }
        Matchmaker::Direct { .. } => None,
    };

    if let Some(at_ms) = args.start_at {
        wait_for_start(at_ms, args.quiet).await?;
    }
    // Stamped as the start: a slow scrape must not delay the first bots.
    let scrape_before = match &scraper {
        Some(s) => s.scrape(0.0).await,
        None => None,
    };
    let started = Instant::now();
    let stop_at = started + scenario.duration();
    let deadline = stop_at + args.grace;
    if let (Some(s), None) = (&scraper, &scrape_before) {
        tracing::warn!(url = %s.url(), "cannot read the node's metrics; the report will have no server figures");
    }
    let cpu_before = own_cpu_seconds();
    let samples =
        Arc::new(std::sync::Mutex::new(Samples { node: scrape_before.into_iter().collect(), ..Samples::default() }));
    let sampler = tokio::spawn(sample_every_second(
        stats.clone(),
        scraper.clone(),
        started,
        spans.clone(),
        arrivals.len() as u64,
        args.quiet,
        samples.clone(),
    ));

    let mut bots = JoinSet::new();
    for (slot, &(i, offset)) in arrivals.iter().enumerate() {
        let start_at = started + offset;
        if start_at >= stop_at {
            break;
        }
        tokio::time::sleep_until(start_at.into()).await;
        while bots.try_join_next().is_some() {}
        if cap.is_some_and(|cap| bots.len() >= cap as usize) {
            stats.arrival_skipped();
            continue;
        }
        stats.requested();
        let account = match &signed_in {
            // Could not sign in (counted as an error): this bot sits the run out.
            Some(accounts) if accounts[slot].is_none() => continue,
            Some(accounts) => accounts[slot].clone(),
            None => None,
        };
        let cfg = BotConfig {
            name: names.of(i),
            client_name: args.client_name.clone(),
            target: target.clone(),
            vote: args.vote.restart(),
            // Distinct, reproducible streams per bot from one run seed.
            seed: seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            start_at,
            stop_at,
            max_reconnects: args.max_reconnects,
            endpoint_slot: slot,
            account,
            chat_every: args.chat_every(),
            churn_per_minute: args.churn,
            rejoin_delay: args.rejoin_delay,
        };
        let env = BotEnv {
            matchmaker: matchmaker.clone(),
            io: io.clone(),
            quic_configs: quic_configs.clone(),
            webtransport,
            stats: stats.clone(),
            connect_gate: gate.clone(),
        };
        bots.spawn(run_bot(cfg, env));
    }

    let all_done = async { while bots.join_next().await.is_some() {} };
    if tokio::time::timeout_at(deadline.into(), all_done).await.is_err() {
        tracing::warn!(bots = bots.len(), "bots still running at the hard deadline; cutting them off");
        for _ in 0..bots.len() {
            stats.error("deadline");
        }
        bots.shutdown().await;
    }
    let duration = started.elapsed();
    sampler.abort();
    let _ = sampler.await;
    let cpu_after = own_cpu_seconds();
    match &io {
        BotIo::Quinn(endpoints) => {
            for endpoint in endpoints.endpoints() {
                let _ = tokio::time::timeout(DRAIN, endpoint.wait_idle()).await;
            }
        }
        BotIo::Loop { drivers, schedulers } => {
            // Their last traffic count lands before the report is made.
            let _ = tokio::time::timeout(DRAIN, schedulers.finish()).await;
            drivers.shutdown(DRAIN).await;
        }
    }
    let mut samples = samples.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
    if let Some(s) = &scraper
        && let Some(after) = s.scrape(started.elapsed().as_secs_f64()).await
    {
        samples.node.push(after);
    }

    let mut report = stats.report(duration);
    report.shard = args.shard;
    report.phases = spans;
    report.sustained = Window { start_s: sustained_start, end_s: sustained_end };
    report.transport = if webtransport { "webtransport" } else { "quic" }.into();
    report.impairment = (!impairment.is_none()).then(|| impair_stats.report(impairment));
    report.loadgen.cpu_s = match (cpu_before, cpu_after) {
        (Some(a), Some(b)) => ((b - a) * 1000.0).round() / 1000.0,
        _ => 0.0,
    };
    report.loadgen.peak_rss_bytes = own_peak_rss_bytes().unwrap_or(0);
    report.loadgen.sustained_cpu_cores = samples.own_cores(sustained_start, sustained_end);
    report.server = crate::prom::summarize(&samples.node, sustained_start, sustained_end);
    if args.soak {
        let tolerance = limits.get(crate::verdict::MEMORY_FLAT).copied().unwrap_or(5.0);
        report.soak = crate::trend::memory_trend(&samples.node_rss_points(), args.soak_warmup.as_secs_f64(), tolerance);
        if report.soak.is_none() {
            tracing::warn!("too few node memory samples after the warm-up for a soak trend");
        }
    }
    report.timeline = samples.timeline;
    report.limits = limits;
    report.derive()?;
    Ok(report)
}

/// Sleeps until the Unix time `at_ms`, so shards begin together.
async fn wait_for_start(at_ms: u64, quiet: bool) -> anyhow::Result<()> {
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    if at_ms <= now_ms {
        tracing::warn!(late_ms = now_ms - at_ms, "--start-at is already past; starting now");
        return Ok(());
    }
    let wait = Duration::from_millis(at_ms - now_ms);
    anyhow::ensure!(wait <= MAX_START_WAIT, "--start-at is {wait:?} away; it takes Unix milliseconds");
    if !quiet {
        let _ = writeln!(std::io::stderr().lock(), "waiting {:.1} s for --start-at", wait.as_secs_f64());
    }
    tokio::time::sleep(wait).await;
    Ok(())
}

/// Registers or logs in every bot's account, at most `--connect-concurrency`
/// at a time; a failure is counted as an error and leaves that bot's entry
/// empty.
/// Returns one entry per bot of `bots`, in that order.
async fn sign_in_all(
    api: &ApiClient,
    password: &str,
    names: &Names,
    bots: &[u32],
    args: &Args,
    stats: &Stats,
) -> Vec<Option<(Tokens, Instant)>> {
    // The API hashes passwords a few at a time (argon2 is meant to be slow):
    // more requests in flight only queue there, and long queues time out.
    let gate = Arc::new(Semaphore::new((args.connect_concurrency as usize).min(SIGN_IN_CONCURRENCY)));
    let mut tasks = JoinSet::new();
    for (slot, &i) in bots.iter().enumerate() {
        let (api, password, name, gate) = (api.clone(), password.to_owned(), names.of(i), gate.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            (slot, api.register_or_login(&name, &password).await.map(|tokens| (tokens, Instant::now())))
        });
    }
    let started = Instant::now();
    let mut ticker = tokio::time::interval_at((started + Duration::from_secs(1)).into(), Duration::from_secs(1));
    let mut accounts = vec![None; bots.len()];
    let (mut signed_in, mut failed) = (0, 0);
    loop {
        tokio::select! {
            finished = tasks.join_next() => match finished {
                Some(Ok((i, Ok(account)))) => {
                    accounts[i] = Some(account);
                    signed_in += 1;
                }
                Some(Ok((_, Err(e)))) => {
                    tracing::debug!(error = %e, "a bot could not sign in");
                    stats.error(&e.kind());
                    failed += 1;
                }
                // A sign-in task cannot panic short of a bug; count it like a failure.
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "a sign-in task failed");
                    stats.error("sign_in");
                    failed += 1;
                }
                None => break,
            },
            _ = ticker.tick(), if !args.quiet => {
                let _ = writeln!(
                    std::io::stderr().lock(),
                    "[{:>4}s] signed in {signed_in}/{}  errors {failed}",
                    started.elapsed().as_secs(),
                    bots.len()
                );
            }
        }
    }
    accounts
}

/// Tickets minted with the node's key, for the node at `--server`.
fn direct_matchmaker(args: &Args) -> anyhow::Result<Matchmaker> {
    let trust = match (&args.cert, args.insecure) {
        (_, true) => Trust::Insecure,
        (Some(path), false) => Trust::from_der_file(path)?,
        (None, false) => Trust::from_data_dir(&args.data_dir)?,
    };
    let minter = match &args.ticket_key {
        Some(hex) => DevTicketMinter::from_hex_key(&args.ticket_key_id, hex, &args.node_id)?,
        None => DevTicketMinter::from_data_dir(&args.data_dir, &args.node_id)?,
    };
    Ok(Matchmaker::Direct { minter, server: args.server, server_name: args.server_name.clone(), trust })
}

/// The bots' names.
enum Names {
    /// Player names in minted tickets, as before the API.
    Direct,
    /// API usernames `<prefix>_<i>`.
    Accounts(String),
}

impl Names {
    fn of(&self, i: u32) -> String {
        match self {
            Names::Direct => format!("bot-{i}"),
            Names::Accounts(prefix) => format!("{prefix}_{i}"),
        }
    }
}

/// `bot_` and seven letters derived from the run seed: runs with the same
/// `--seed` reuse their accounts (logging in), other runs get fresh ones.
/// Letters only, because the API compares names with digits and '_' removed
/// against reserved words, and "bot" is one.
pub fn default_account_prefix(seed: u64) -> String {
    let mut n = seed;
    let letters: String = (0..7)
        .map(|_| {
            let c = (b'a' + (n % 26) as u8) as char;
            n /= 26;
            c
        })
        .collect();
    format!("bot_{letters}")
}

/// Refuses a prefix that would give some bot a name the API rejects
/// (3 to 20 of a-z, 0-9 and '_', not starting with '_'), before any bot starts.
fn check_usernames(prefix: &str, bots: u32) -> anyhow::Result<()> {
    let longest = format!("{prefix}_{}", bots.saturating_sub(1));
    anyhow::ensure!(
        !prefix.is_empty()
            && !prefix.starts_with('_')
            && prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
        "the account prefix {prefix:?} must be a-z, 0-9 and '_', not starting with '_'"
    );
    anyhow::ensure!(
        (3..=USERNAME_MAX).contains(&longest.len()),
        "usernames like {longest:?} are longer than the API's {USERNAME_MAX} characters; use a shorter --account-prefix"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_are_valid_and_never_reserved() {
        for seed in [0, 1, 42, u64::MAX, 0x1234_5678] {
            let prefix = default_account_prefix(seed);
            assert_eq!(prefix.len(), 11, "{prefix}");
            check_usernames(&prefix, 100_000).unwrap();
            // Without digits and '_' (how the API compares with reserved
            // words) the name is "bot" plus seven letters, never "bot" or "bots".
            let skeleton: String = Names::Accounts(prefix).of(7).chars().filter(|c| c.is_ascii_lowercase()).collect();
            assert_eq!(skeleton.len(), 10);
        }
        assert_eq!(default_account_prefix(42), default_account_prefix(42));
        assert_ne!(default_account_prefix(42), default_account_prefix(43));
        assert_eq!(Names::Accounts("soak".into()).of(3), "soak_3");
        assert_eq!(Names::Direct.of(3), "bot-3");
    }

    #[test]
    fn bad_prefixes_are_refused_before_the_run() {
        assert!(check_usernames("ok", 10).is_ok());
        assert!(check_usernames("a_very_long_prefix", 1000).is_err(), "over 20 characters");
        assert!(check_usernames("_x", 1).is_err());
        assert!(check_usernames("Bots", 1).is_err());
        assert!(check_usernames("bo-t", 1).is_err());
        assert!(check_usernames("", 1).is_err());
    }
}
