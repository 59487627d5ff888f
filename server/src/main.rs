//! The `trespasser` binary: `serve` (default), `game`, `api`, `migrate`, `ticket`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Parser;
use directory::Directory;
use http_api::{Api, ApiOptions};
use protocol::control::Cosmetics;
use protocol::ticket::{JoinClaims, JoinTarget};
use server::config::{
    ApiRoleArgs, Cli, Command, DirectoryArgs, GameArgs, LogFormat, MigrateArgs, ServeArgs, TicketArgs, dev_ticket_key,
    parse_ticket_key,
};
use server::directory_link;
use server::node::{Node, NodeOptions, Role, ticket_keys};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // No arguments: serve with defaults (flags still come from env vars).
    let command = match cli.command {
        Some(c) => c,
        None => Cli::parse_from(["trespasser", "serve"]).command.context("serve is the default")?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match command {
        Command::Serve(args) => {
            init_logging(args.node.log_format);
            runtime.block_on(serve(args))
        }
        Command::Game(args) => {
            init_logging(args.node.log_format);
            runtime.block_on(game(args))
        }
        Command::Api(args) => {
            init_logging(args.log_format);
            runtime.block_on(api(args))
        }
        Command::Migrate(args) => {
            init_logging(LogFormat::Text);
            runtime.block_on(migrate(args))
        }
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

/// API and one game node in one process, on one HTTP listener.
async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let directory = Directory::local();
    let keys = ticket_keys(&args.node, Role::Embedded)?;
    let sink = Arc::new(directory_link::result_sink(directory.clone()));
    let opts = NodeOptions { sink, directory: Some(directory.clone()), http: false };
    let node = Node::start(&args.node, Role::Embedded, opts).await?;
    let api_opts = ApiOptions {
        role: http_api::Role::Embedded,
        data_dir: args.node.data_dir.clone(),
        ticket_key: keys[0].clone(),
        directory,
    };
    let api = Api::build(&args.api, api_opts).await?;
    let router = api.router(vec![node.registry.clone()]);
    let listener = tokio::net::TcpListener::bind(args.node.http_addr)
        .await
        .with_context(|| format!("binding HTTP {}", args.node.http_addr))?;
    let http_addr = listener.local_addr()?;
    println!(
        "trespasser node {} ready: QUIC {} (udp), HTTP http://{} (API /v1, /health, /ready, /metrics)",
        node.node_id, node.quic_addr, http_addr
    );
    println!(
        "data dir {}: dev certificate {}, ticket key {} (mint a ticket: trespasser ticket --name you)",
        args.node.data_dir.display(),
        protocol::defaults::DEV_CERT_FILE,
        protocol::defaults::TICKET_KEY_FILE
    );
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("HTTP server")?;
    tracing::info!("shutting down");
    node.shutdown("the server is shutting down").await;
    api.shutdown().await;
    Ok(())
}

async fn connect_directory(args: &DirectoryArgs) -> anyhow::Result<Directory> {
    Directory::redis(&args.redis_url, &args.directory_prefix, args.node_ttl, directory::DEFAULT_CLAIM_TIMEOUT)
        .await
        .context("connecting to the Redis directory")
}

async fn game(args: GameArgs) -> anyhow::Result<()> {
    let directory = connect_directory(&args.directory).await?;
    let sink = Arc::new(directory_link::result_sink(directory.clone()));
    let node =
        Node::start(&args.node, Role::Production, NodeOptions { sink, directory: Some(directory), http: true }).await?;
    println!("trespasser game node {} ready: QUIC {} (udp)", node.node_id, node.quic_addr);
    shutdown_signal().await;
    tracing::info!("shutting down");
    node.shutdown("the server is shutting down").await;
    Ok(())
}

async fn api(args: ApiRoleArgs) -> anyhow::Result<()> {
    let directory = connect_directory(&args.directory).await?;
    let ticket_key = parse_ticket_key(&args.ticket_key_id, &args.ticket_key)?;
    let opts = ApiOptions { role: http_api::Role::Production, data_dir: args.data_dir.clone(), ticket_key, directory };
    let api = Api::build(&args.api, opts).await?;
    let router = api.router(vec![Arc::new(server::metrics::process_registry())]);
    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .with_context(|| format!("binding HTTP {}", args.http_addr))?;
    println!("trespasser api ready: http://{}", listener.local_addr()?);
    axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("HTTP server")?;
    api.shutdown().await;
    Ok(())
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    let store = http_api::store::Store::connect(&args.database_url, 2).await.context("connecting to the store")?;
    store.migrate().await.context("applying migrations")?;
    println!("migrations applied");
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "no SIGTERM handler; stopping on ctrl-c only");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
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
