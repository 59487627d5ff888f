//! A whole load run: set up the API client and sign every bot in (or trust
//! and tickets with `--direct`), then start the bots over the ramp, print
//! progress, and stop everyone by a hard deadline.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use protocol::ticket::JoinTarget;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::api::{ApiClient, Tokens};
use crate::bot::{BotConfig, BotEnv, Matchmaker, run_bot};
use crate::cli::Args;
use crate::report::Report;
use crate::stats::Stats;
use crate::ticket::DevTicketMinter;
use crate::tls::{ClientConfigs, EndpointPool, Trust};

/// Bots per endpoint when `--endpoints` is 0: one socket and driver task
/// comfortably carries this many 20 Hz connections.
const BOTS_PER_ENDPOINT: u32 = 500;
const MAX_AUTO_ENDPOINTS: u32 = 16;
/// How long close frames of the last connections get to leave the sockets.
const DRAIN: Duration = Duration::from_secs(2);
/// The API's longest username.
const USERNAME_MAX: usize = 20;

/// Runs the bots described by `args` and returns the report. Fails only if
/// the run cannot start (API unreachable, no certificate, no ticket key, no
/// socket, bad account names); errors during the run are counted in the report.
pub async fn run(args: &Args) -> anyhow::Result<Report> {
    let stats = Arc::new(Stats::new(args.bots as u64));
    let seed = args.seed.unwrap_or_else(rand::random);
    let endpoint_count = match args.endpoints {
        0 => args.bots.div_ceil(BOTS_PER_ENDPOINT).min(MAX_AUTO_ENDPOINTS),
        n => n.min(args.bots),
    };
    let endpoints = Arc::new(EndpointPool::new(endpoint_count as usize));
    let (matchmaker, names) = if args.direct {
        let matchmaker = direct_matchmaker(args)?;
        // Bind the sockets now, so a failure stops the run before it starts.
        endpoints.endpoint_for(args.server, 0)?;
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
        check_usernames(&prefix, args.bots)?;
        let matchmaker = Matchmaker::Api { api, password: args.account_password.clone(), insecure: args.insecure };
        (matchmaker, Names::Accounts(prefix))
    };
    let matchmaker = Arc::new(matchmaker);
    let quic_configs = Arc::new(ClientConfigs::new());
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
        Matchmaker::Api { api, password, .. } => Some(sign_in_all(api, password, &names, args, &stats).await),
        Matchmaker::Direct { .. } => None,
    };

    let started = Instant::now();
    let stop_at = started + args.duration;
    let deadline = stop_at + args.grace;
    let progress = (!args.quiet).then(|| tokio::spawn(print_progress(stats.clone(), started, args.bots)));

    let mut bots = JoinSet::new();
    for i in 0..args.bots {
        let account = match &signed_in {
            // Could not sign in (counted as an error): this bot sits the run out.
            Some(accounts) if accounts[i as usize].is_none() => continue,
            Some(accounts) => accounts[i as usize].clone(),
            None => None,
        };
        let cfg = BotConfig {
            name: names.of(i),
            client_name: args.client_name.clone(),
            target: target.clone(),
            vote: args.vote.restart(),
            // Distinct, reproducible streams per bot from one run seed.
            seed: seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            start_at: started + args.ramp.mul_f64(i as f64 / args.bots as f64),
            stop_at,
            max_reconnects: args.max_reconnects,
            endpoint_slot: i as usize,
            account,
        };
        let env = BotEnv {
            matchmaker: matchmaker.clone(),
            endpoints: endpoints.clone(),
            quic_configs: quic_configs.clone(),
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
    if let Some(task) = progress {
        task.abort();
    }
    for endpoint in endpoints.endpoints() {
        let _ = tokio::time::timeout(DRAIN, endpoint.wait_idle()).await;
    }
    Ok(stats.report(duration))
}

/// Registers or logs in every bot's account, at most `--connect-concurrency`
/// at a time; a failure is counted as an error and leaves that bot's entry
/// empty.
async fn sign_in_all(
    api: &ApiClient,
    password: &str,
    names: &Names,
    args: &Args,
    stats: &Stats,
) -> Vec<Option<(Tokens, Instant)>> {
    let gate = Arc::new(Semaphore::new(args.connect_concurrency as usize));
    let mut tasks = JoinSet::new();
    for i in 0..args.bots {
        let (api, password, name, gate) = (api.clone(), password.to_owned(), names.of(i), gate.clone());
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            (i, api.register_or_login(&name, &password).await.map(|tokens| (tokens, Instant::now())))
        });
    }
    let started = Instant::now();
    let mut ticker = tokio::time::interval_at((started + Duration::from_secs(1)).into(), Duration::from_secs(1));
    let mut accounts = vec![None; args.bots as usize];
    let (mut signed_in, mut failed) = (0, 0);
    loop {
        tokio::select! {
            finished = tasks.join_next() => match finished {
                Some(Ok((i, Ok(account)))) => {
                    accounts[i as usize] = Some(account);
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
                    args.bots
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

async fn print_progress(stats: Arc<Stats>, started: Instant, bots: u32) {
    let mut ticker = tokio::time::interval_at((started + Duration::from_secs(1)).into(), Duration::from_secs(1));
    let mut last_snapshots = 0;
    let mut last_at = started;
    loop {
        ticker.tick().await;
        let p = stats.progress();
        let now = Instant::now();
        let rate = (p.snapshots_received - last_snapshots) as f64 / (now - last_at).as_secs_f64().max(1e-3);
        (last_snapshots, last_at) = (p.snapshots_received, now);
        let rtt = p.rtt_p99_ms.map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1} ms"));
        let _ = writeln!(
            std::io::stderr().lock(),
            "[{:>4}s] joined {}/{}  active {}  snapshots/s {:.0}  rtt p99 {}  errors {}",
            started.elapsed().as_secs(),
            p.joined,
            bots,
            p.active,
            rate,
            rtt,
            p.errors
        );
    }
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
