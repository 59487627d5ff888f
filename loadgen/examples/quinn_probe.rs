//! Bare quinn probe: what plain quinn 0.11 costs a server per player-second
//! with no game logic at all, so the game node's CPU can be compared against
//! it on the same host in the same session (`loadgen/scripts/quinn-probe.sh`).
//!
//! ```sh
//! quinn_probe server 127.0.0.1:4633 --cert /tmp/probe-cert.der
//! quinn_probe client 127.0.0.1:4633 --players 1000 --seconds 60 --cert /tmp/probe-cert.der
//! ```
//!
//! The traffic is the game's shape without its content: every player sends a
//! 40-byte datagram at 20 Hz (an input), and one 20 Hz server tick sends every
//! player a 120-byte datagram (a snapshot). No streams, no tickets, no
//! lobbies. Both sides run on a tokio current-thread runtime, so the server's
//! CPU is one core's worth at most, like a node pinned to one core.
//!
//! The transport settings mirror the game's, so that the difference between
//! the two measurements is the game and its QUIC loop, not a configuration:
//! - server: `server/src/transport.rs` (`server_config`) and the `serve`
//!   defaults in `server/src/config.rs`: idle timeout 10 s, handshake timeout
//!   5 s, datagram buffers 16 KiB each way, the same ack-frequency request
//!   (threshold 4, max delay 75 ms), the same stream limits, ALPN, TLS 1.3 on
//!   the ring provider, 4 MiB UDP socket buffers (`--udp-buffer`), and path
//!   MTU discovery off (`--mtu-discovery` turns it back on);
//! - client: the bots' own endpoint and config (`loadgen::tls`), so keep-alive,
//!   idle timeout, datagram buffers and socket buffers are exactly theirs.
//!
//! Not mirrored: the node moves packets with its own loop over `quinn-proto`
//! (`quic-loop`), sharded, with timer slack; this probe uses stock `quinn`,
//! whose per-connection driver tasks are what is being calibrated.

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use clap::{Parser, Subcommand};
use loadgen::tls::Trust;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::time::{Instant, MissedTickBehavior};

/// The game's tick: 20 Hz, both for inputs and snapshots.
const TICK: Duration = Duration::from_millis(50);
/// Payload of every server -> client datagram (about a small snapshot).
const SNAPSHOT_BYTES: usize = 120;
/// Payload of every client -> server datagram (about an input).
const INPUT_BYTES: usize = 40;
/// UDP socket buffers of the server, as the node's `--udp-buffer` default
/// (the kernel caps them at `net.core.{r,w}mem_max`; the server reports what
/// it got on stderr).
const SOCKET_BUFFER_BYTES: usize = 4 << 20;
/// As the node's `--idle-timeout` default. The bots ask for 15 s; the
/// smaller of the two applies.
const SERVER_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// As the node's `--handshake-timeout` default.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// As `server/src/transport.rs`: clients may hold their acknowledgements for
/// a few packets and a tick and a half, so most ride on the next input.
const ACK_ELICITING_THRESHOLD: u8 = 4;
const MAX_ACK_DELAY: Duration = Duration::from_millis(75);
/// The name in the self-signed certificate, and the one the client asks for.
const SERVER_NAME: &str = "localhost";
/// How long the client waits for its endpoints to send their closes.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

#[derive(Parser)]
#[command(about = "Bare quinn probe: plain quinn server cost per player-second, no game logic")]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// A quinn server that drops every datagram it receives and sends every
    /// connection a 120-byte datagram at 20 Hz. Prints `ready` once
    /// listening; runs until killed.
    Server {
        addr: SocketAddr,
        /// Where to write the self-signed certificate (DER) clients trust.
        #[arg(long)]
        cert: PathBuf,
        /// Run quinn's path MTU discovery (the node turns it off).
        #[arg(long)]
        mtu_discovery: bool,
    },
    /// N connections, each sending a 40-byte datagram at 20 Hz (send phases
    /// spread evenly over the tick) and reading the server's. Prints a JSON
    /// summary after `--seconds`.
    Client {
        addr: SocketAddr,
        #[arg(long)]
        players: u32,
        /// Total run time, ramp included.
        #[arg(long)]
        seconds: f64,
        /// The server's certificate (DER), as its `--cert` wrote it.
        #[arg(long)]
        cert: PathBuf,
        /// New connections per second at most, so handshakes do not pile up.
        #[arg(long, default_value_t = 200.0)]
        rate: f64,
        /// Client endpoints (UDP sockets) the connections are spread over.
        #[arg(long, default_value_t = 1)]
        endpoints: usize,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // One thread: the server's cost must be one core's, as the pinned node's.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    match cli.mode {
        Mode::Server { addr, cert, mtu_discovery } => runtime.block_on(serve(addr, &cert, mtu_discovery)),
        Mode::Client { addr, players, seconds, cert, rate, endpoints } => {
            anyhow::ensure!(rate.is_finite() && rate > 0.0, "--rate must be positive");
            anyhow::ensure!(endpoints > 0, "--endpoints must be at least 1");
            let run = Duration::try_from_secs_f64(seconds).context("--seconds must be a non-negative number")?;
            let der = std::fs::read(&cert).with_context(|| format!("reading the certificate {}", cert.display()))?;
            let summary = runtime.block_on(client(addr, players, run, Trust::Cert(der), rate, endpoints))?;
            println!("{summary}");
            Ok(())
        }
    }
}

// ---------------------------------------------------------------- server

/// Live connections by id, for the tick. A plain mutex: everything runs on
/// one thread, it is never held across an await, so it is never contended.
type Live = Arc<Mutex<HashMap<u64, quinn::Connection>>>;

async fn serve(addr: SocketAddr, cert_path: &Path, mtu_discovery: bool) -> anyhow::Result<()> {
    let (cert, key) = self_signed(cert_path)?;
    let socket = udp_socket(addr).with_context(|| format!("binding {addr}"))?;
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(server_config(cert, key, mtu_discovery)?),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .context("creating the QUIC endpoint")?;

    let live: Live = Arc::default();
    tokio::spawn(tick(live.clone()));

    // The script waits for this line before it starts the client.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "ready")?;
    stdout.flush()?;
    drop(stdout);

    let mut next_id = 0u64;
    // Ends only if the endpoint closes, which nothing here does: the server
    // runs until killed.
    while let Some(incoming) = endpoint.accept().await {
        next_id += 1;
        tokio::spawn(connection(incoming, next_id, live.clone()));
    }
    Ok(())
}

/// One connection: through its handshake, into the tick's list, then read
/// and drop its datagrams until it goes away.
async fn connection(incoming: quinn::Incoming, id: u64, live: Live) {
    let conn = match tokio::time::timeout(HANDSHAKE_TIMEOUT, incoming).await {
        Ok(Ok(conn)) => conn,
        // Failed or timed out: dropping it closes it; nothing to count here
        // (the client reports its failures).
        _ => return,
    };
    lock(&live).insert(id, conn.clone());
    // Receiving is the half of the cost that inputs bring; the content is
    // not looked at.
    while conn.read_datagram().await.is_ok() {}
    lock(&live).remove(&id);
}

/// The one 20 Hz tick: a 120-byte datagram to every live connection.
async fn tick(live: Live) {
    // Shared, reference-counted: a send costs quinn its framing, not a copy
    // of the payload made here.
    let snapshot = Bytes::from_static(&[0u8; SNAPSHOT_BYTES]);
    let mut interval = tokio::time::interval(TICK);
    // An overloaded server sends fewer snapshots rather than bursts of late
    // ones; the script's packet rate shows it.
    interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        interval.tick().await;
        for conn in lock(&live).values() {
            // A lost connection is removed by its reader; a full send buffer
            // drops the oldest datagram, as it would drop a stale snapshot.
            let _ = conn.send_datagram(snapshot.clone());
        }
    }
}

fn lock(live: &Live) -> std::sync::MutexGuard<'_, HashMap<u64, quinn::Connection>> {
    live.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A fresh self-signed certificate for [`SERVER_NAME`], its DER written to
/// `path` (through a temporary file, so a client never reads half of it).
fn self_signed(path: &Path) -> anyhow::Result<(CertificateDer<'static>, PrivateKeyDer<'static>)> {
    let ck = rcgen::generate_simple_self_signed(vec![SERVER_NAME.to_string()]).context("generating a certificate")?;
    let der = ck.cert.der().clone();
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, &der).with_context(|| format!("writing {}", Path::new(&tmp).display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok((der, PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()).into()))
}

/// As `server/src/transport.rs::server_config` with the `serve` defaults
/// (native QUIC only, no WebTransport).
fn server_config(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    mtu_discovery: bool,
) -> anyhow::Result<quinn::ServerConfig> {
    // An explicit provider: the process-wide default is ambiguous when more
    // than one rustls backend is compiled into the workspace.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 configuration")?
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .context("the certificate and key do not form a valid identity")?;
    // The bots' client config offers the game's ALPN only.
    tls.alpn_protocols = vec![protocol::ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).context("QUIC TLS configuration")?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_idle_timeout(Some(SERVER_IDLE_TIMEOUT.try_into().context("idle timeout too large")?))
        // The node's limits; the probe's clients open no streams at all.
        .max_concurrent_bidi_streams(1u8.into())
        .max_concurrent_uni_streams(0u8.into())
        .datagram_receive_buffer_size(Some(16 * 1024))
        .datagram_send_buffer_size(16 * 1024);
    if !mtu_discovery {
        // As the node: its probes cost packets at every join and bookkeeping
        // on every acknowledgement, for datagrams that fit 1200 bytes anyway.
        transport.mtu_discovery_config(None);
    }
    // Mirrored because it changes the packet count, and so the cost: without
    // it, quinn clients acknowledge every second packet on its own.
    let mut acks = quinn::AckFrequencyConfig::default();
    acks.ack_eliciting_threshold(ACK_ELICITING_THRESHOLD.into()).max_ack_delay(Some(MAX_ACK_DELAY));
    transport.ack_frequency_config(Some(acks));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

fn udp_socket(bind: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(bind), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort, as the node: the kernel may cap them, which shows up as
    // drops under load. Reported so a capped run can be recognised.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    eprintln!(
        "quinn_probe: socket buffers asked {SOCKET_BUFFER_BYTES} B, got recv {} B, send {} B (Linux reports double)",
        socket.recv_buffer_size().unwrap_or(0),
        socket.send_buffer_size().unwrap_or(0),
    );
    socket.bind(&bind.into())?;
    Ok(socket.into())
}

// ---------------------------------------------------------------- client

/// What one player saw.
#[derive(Default)]
struct PlayerStats {
    connected: bool,
    /// The connection closed before the end of the run.
    lost: bool,
    sent: u64,
    send_errors: u64,
    received: u64,
    /// Seconds from the end of its handshake to the end of the run.
    seconds: f64,
}

async fn client(
    addr: SocketAddr,
    players: u32,
    run: Duration,
    trust: Trust,
    rate: f64,
    endpoints: usize,
) -> anyhow::Result<serde_json::Value> {
    // The bots' endpoints: their socket buffers, transport config and ALPN.
    let endpoints =
        (0..endpoints).map(|_| loadgen::tls::client_endpoint_for(&trust, addr)).collect::<anyhow::Result<Vec<_>>>()?;
    let start = Instant::now();
    let deadline = start + run;

    let mut ramp = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    // A late connect is not made up for with a burst: at most `rate`.
    ramp.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut tasks = Vec::with_capacity(players as usize);
    for i in 0..players {
        tokio::select! {
            _ = ramp.tick() => {}
            _ = tokio::time::sleep_until(deadline) => break,
        }
        // Player i sends at offset i/N of the tick, on a grid shared by all,
        // so the server sees a steady stream rather than 20 bursts a second.
        let phase = TICK.mul_f64(f64::from(i) / f64::from(players));
        let connecting = endpoints[i as usize % endpoints.len()].connect(addr, SERVER_NAME);
        tasks.push(tokio::spawn(player(connecting, start + phase, deadline)));
    }

    // Every task ends by the deadline, so these joins are bounded.
    let (mut connected, mut failed, mut lost) = (0u64, 0u64, 0u64);
    let (mut sent, mut send_errors, mut received, mut player_seconds) = (0u64, 0u64, 0u64, 0f64);
    for task in tasks {
        let p = task.await.context("a player task panicked")?;
        if p.connected {
            connected += 1;
        } else {
            failed += 1;
        }
        lost += u64::from(p.lost);
        sent += p.sent;
        send_errors += p.send_errors;
        received += p.received;
        player_seconds += p.seconds;
    }
    let elapsed = start.elapsed().as_secs_f64();

    // Let the closes reach the server so it drops its state, but do not wait
    // long for a server that is gone.
    for endpoint in &endpoints {
        endpoint.close(0u32.into(), b"done");
    }
    for endpoint in &endpoints {
        let _ = tokio::time::timeout(CLOSE_GRACE, endpoint.wait_idle()).await;
    }

    let per_player_s = |n: u64| (player_seconds > 0.0).then(|| round2(n as f64 / player_seconds));
    Ok(serde_json::json!({
        "players": players,
        "players_connected": connected,
        "players_failed": failed,
        "players_lost": lost,
        "seconds": round2(elapsed),
        "player_seconds": round2(player_seconds),
        "datagrams_sent_per_player_s": per_player_s(sent),
        "datagrams_received_per_player_s": per_player_s(received),
        "send_errors": send_errors,
    }))
}

/// One player: its handshake, then an input every tick on its phase and
/// every snapshot read, until the deadline.
async fn player(
    connecting: Result<quinn::Connecting, quinn::ConnectError>,
    phase: Instant,
    deadline: Instant,
) -> PlayerStats {
    let mut stats = PlayerStats::default();
    let Ok(connecting) = connecting else { return stats };
    let conn = match tokio::time::timeout_at(deadline, connecting).await {
        Ok(Ok(conn)) => conn,
        _ => return stats,
    };
    stats.connected = true;
    let connected_at = Instant::now();

    let input = Bytes::from_static(&[0u8; INPUT_BYTES]);
    let mut send = tokio::time::interval_at(next_slot(phase, connected_at), TICK);
    // Stay on the phase grid if the runtime falls behind.
    send.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let end = tokio::time::sleep_until(deadline);
    tokio::pin!(end);
    loop {
        tokio::select! {
            biased;
            _ = &mut end => break,
            _ = send.tick() => match conn.send_datagram(input.clone()) {
                Ok(()) => stats.sent += 1,
                Err(_) => stats.send_errors += 1,
            },
            // Cancel-safe: a datagram not yet taken stays queued.
            read = conn.read_datagram() => match read {
                Ok(_) => stats.received += 1,
                Err(_) => {
                    stats.lost = true;
                    break;
                }
            },
        }
    }
    stats.seconds = (Instant::now().min(deadline) - connected_at).as_secs_f64();
    conn.close(0u32.into(), b"done");
    stats
}

/// The first instant at or after `now` that is `phase` plus a whole number of
/// ticks.
fn next_slot(phase: Instant, now: Instant) -> Instant {
    if phase >= now {
        return phase;
    }
    let tick = TICK.as_nanos();
    let ticks = (now - phase).as_nanos().div_ceil(tick);
    // At most a run's length in ticks: fits a u32 for any sane --seconds.
    phase + TICK * u32::try_from(ticks).unwrap_or(u32::MAX)
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
