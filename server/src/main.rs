//! The `trespasser` binary: `serve` (default), `game` and `ticket`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Parser;
use protocol::control::Cosmetics;
use protocol::ticket::{JoinClaims, JoinTarget};
use server::config::{Cli, Command, LogFormat, NodeArgs, TicketArgs, dev_ticket_key, parse_ticket_key};
use server::node::{Node, Role};
use server::results::LogSink;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or_else(|| {
        // No arguments: serve with defaults (flags still come from env vars).
        match Cli::parse_from(["trespasser", "serve"]).command {
            Some(c) => c,
            None => unreachable!("serve was given"),
        }
    });
    match command {
        Command::Serve(args) => run_node(args, Role::Embedded),
        Command::Game(args) => run_node(args, Role::Production),
        Command::Ticket(args) => mint(args),
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run_node(args: NodeArgs, role: Role) -> anyhow::Result<()> {
    init_logging(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let node = Node::start(&args, role, Arc::new(LogSink::default())).await?;
        println!(
            "trespasser node {} ready: QUIC {} (udp), HTTP http://{}",
            node.node_id, node.quic_addr, node.http_addr
        );
        if role == Role::Embedded {
            println!(
                "dev certificate: {}, ticket key: {} (mint a ticket: trespasser ticket --name you)",
                args.data_dir.join(protocol::defaults::DEV_CERT_FILE).display(),
                args.data_dir.join(protocol::defaults::TICKET_KEY_FILE).display()
            );
        }
        shutdown_signal().await;
        tracing::info!("shutting down");
        node.shutdown("the server is shutting down").await;
        anyhow::Ok(())
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

fn mint(args: TicketArgs) -> anyhow::Result<()> {
    let key = match &args.ticket_key {
        Some(hex) => parse_ticket_key(&args.ticket_key_id, hex)?,
        None => dev_ticket_key(&args.data_dir, false)
            .context("no ticket key: start `trespasser serve` once with this --data-dir, or pass --ticket-key")?,
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let target = match args.lobby {
        Some(id) => JoinTarget::Lobby(id),
        None => JoinTarget::Mode(args.mode),
    };
    let claims = JoinClaims {
        sub: args.account.unwrap_or_else(uuid::Uuid::new_v4),
        name: args.name,
        cosmetics: Cosmetics { badge: args.badge, name_color: args.name_color },
        target,
        aud: args.node_id,
        iat: now,
        exp: now + args.ttl.as_secs(),
        jti: uuid::Uuid::new_v4(),
    };
    println!("{}", key.mint(&claims)?);
    Ok(())
}
