//! A whole load run: set up trust, tickets and endpoints, start the bots
//! over the ramp, print progress, and stop everyone by a hard deadline.

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::ticket::JoinTarget;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::bot::{BotConfig, BotEnv, run_bot};
use crate::cli::Args;
use crate::client::ClientConfig;
use crate::report::Report;
use crate::stats::Stats;
use crate::ticket::DevTicketMinter;
use crate::tls::{Trust, client_endpoint_for};

/// Bots per endpoint when `--endpoints` is 0: one socket and driver task
/// comfortably carries this many 20 Hz connections.
const BOTS_PER_ENDPOINT: u32 = 500;
const MAX_AUTO_ENDPOINTS: u32 = 16;
/// How long close frames of the last connections get to leave the sockets.
const DRAIN: Duration = Duration::from_secs(2);

/// Runs the bots described by `args` and returns the report. Fails only if
/// the run cannot start (no certificate, no ticket key, no socket); errors
/// during the run are counted in the report.
pub async fn run(args: &Args) -> anyhow::Result<Report> {
    let trust = match (&args.cert, args.insecure) {
        (_, true) => Trust::Insecure,
        (Some(path), false) => Trust::from_der_file(path)?,
        (None, false) => Trust::from_data_dir(&args.data_dir)?,
    };
    let minter = Arc::new(match &args.ticket_key {
        Some(hex) => DevTicketMinter::from_hex_key(&args.ticket_key_id, hex, &args.node_id)?,
        None => DevTicketMinter::from_data_dir(&args.data_dir, &args.node_id)?,
    });
    let endpoint_count = match args.endpoints {
        0 => args.bots.div_ceil(BOTS_PER_ENDPOINT).min(MAX_AUTO_ENDPOINTS),
        n => n.min(args.bots),
    };
    let endpoints =
        (0..endpoint_count).map(|_| client_endpoint_for(&trust, args.server)).collect::<anyhow::Result<Vec<_>>>()?;

    let stats = Arc::new(Stats::new(args.bots as u64));
    let gate = Arc::new(Semaphore::new(args.connect_concurrency as usize));
    let target = match args.lobby {
        Some(id) => JoinTarget::Lobby(id),
        None => JoinTarget::Mode(args.mode.clone()),
    };
    let client = ClientConfig {
        server: args.server,
        server_name: args.server_name.clone(),
        trust,
        client_name: args.client_name.clone(),
    };
    let seed = args.seed.unwrap_or_else(rand::random);

    let started = Instant::now();
    let stop_at = started + args.duration;
    let deadline = stop_at + args.grace;
    let progress = (!args.quiet).then(|| tokio::spawn(print_progress(stats.clone(), started, args.bots)));

    let mut bots = JoinSet::new();
    for i in 0..args.bots {
        let cfg = BotConfig {
            name: format!("bot-{i}"),
            client: client.clone(),
            target: target.clone(),
            vote: args.vote.restart(),
            // Distinct, reproducible streams per bot from one run seed.
            seed: seed ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            start_at: started + args.ramp.mul_f64(i as f64 / args.bots as f64),
            stop_at,
            max_reconnects: args.max_reconnects,
        };
        let env = BotEnv {
            endpoint: endpoints[i as usize % endpoints.len()].clone(),
            minter: minter.clone(),
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
    for endpoint in &endpoints {
        let _ = tokio::time::timeout(DRAIN, endpoint.wait_idle()).await;
    }
    Ok(stats.report(duration))
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
