//! `loadgen`: bot players against a game node; see `loadgen --help`.
//! `loadgen merge` combines the reports of a sharded run.

use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;
use loadgen::cli::{Args, Command, MergeArgs};
use loadgen::report::Report;

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    if let Some(Command::Merge(merge)) = &args.command {
        return match merge_command(merge) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("loadgen merge: {e:#}");
                ExitCode::from(2)
            }
        };
    }

    // Follows the CPU affinity mask (taskset), not the machine's size.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut builder = match (args.threads, cores) {
        (0, 1) => tokio::runtime::Builder::new_current_thread(),
        (threads, _) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(if threads == 0 { cores } else { threads });
            b
        }
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadgen: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = runtime.block_on(loadgen::run::run(&args));
    runtime.shutdown_timeout(Duration::from_secs(1));

    let report = match result {
        Ok(report) => report,
        Err(e) => {
            eprintln!("loadgen: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = write_outputs(&report, args.json.as_deref(), args.html.as_deref()) {
        eprintln!("loadgen: {e:#}");
        return ExitCode::from(2);
    }
    print!("{}", report.table());
    if args.fail_on_error && report.failed() {
        eprintln!(
            "loadgen: failing: {} of {} bots joined, {} errors",
            report.bots_joined,
            report.bots_requested,
            report.error_count()
        );
        return ExitCode::from(1);
    }
    verdict_exit(&report, args.fail_on_verdict)
}

fn merge_command(args: &MergeArgs) -> anyhow::Result<ExitCode> {
    let reports = args
        .reports
        .iter()
        .map(|path| {
            let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_slice::<Report>(&text)
                .with_context(|| format!("{} is not a loadgen report", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut merged = loadgen::merge::merge_reports(&reports)?;
    if !args.limits.is_empty() {
        loadgen::verdict::apply_overrides(&mut merged.limits, args.limits.iter().map(String::as_str))?;
        merged.derive()?;
    }
    write_outputs(&merged, args.json.as_deref(), args.html.as_deref())?;
    print!("{}", merged.table());
    Ok(verdict_exit(&merged, args.fail_on_verdict))
}

fn verdict_exit(report: &Report, fail_on_verdict: bool) -> ExitCode {
    let failed: Vec<&str> = report.failed_verdicts().map(|v| v.name.as_str()).collect();
    if fail_on_verdict && !failed.is_empty() {
        eprintln!("loadgen: failing verdicts: {}", failed.join(", "));
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn write_outputs(report: &Report, json: Option<&Path>, html: Option<&Path>) -> anyhow::Result<()> {
    if let Some(path) = json {
        write_atomically(path, &(report.to_json() + "\n"))?;
    }
    if let Some(path) = html {
        write_atomically(path, &loadgen::report::html(report))?;
    }
    Ok(())
}

/// Writes through a temporary file, so a reader never sees half a report.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", Path::new(&tmp).display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
