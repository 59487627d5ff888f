//! `loadgen`: bot players against a game node; see `loadgen --help`.

use std::io::IsTerminal as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser as _;
use loadgen::cli::Args;
use loadgen::report::Report;

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
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
    if let Some(path) = &args.json
        && let Err(e) = write_report(path, &report)
    {
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
    ExitCode::SUCCESS
}

/// Writes through a temporary file, so a reader never sees half a report.
fn write_report(path: &Path, report: &Report) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, report.to_json() + "\n").with_context(|| format!("writing {}", Path::new(&tmp).display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}
