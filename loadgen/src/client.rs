//! [`GameClient`]: one player's connection to a game node, over one of two
//! transports.
//!
//! * quinn's async API ([`GameClient::connect`], [`GameClient::connect_with`]):
//!   two background tasks per client read the control stream and the
//!   datagrams into bounded queues. Needed where the socket is a quinn
//!   `AsyncUdpSocket` (the impairment wrapper) or a caller wants the
//!   `quinn::Connection`.
//! * a [`quic_loop`] driver ([`GameClient::connect_loop`]): no task of the
//!   client's own. Control bytes are parsed into frames inside the receiving
//!   methods, and datagrams are taken from the driver whenever the client is
//!   looked at, stamped with when the driver read them off the socket. A bot
//!   ticked 20 times a second then costs no task wake per packet.
//!
//! Either way every receiving method is cancel-safe (it can sit in a
//! `select!`: partial frames stay buffered in the client) and a client that
//! stops reading holds a fixed amount of memory: control events apply
//! back-pressure to the node's stream, and snapshots drop the oldest (newest
//! wins anyway).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Buf as _, Bytes, BytesMut};
use protocol::codec::{self, MAX_CLIENT_FRAME, MAX_SERVER_FRAME};
use protocol::control::{ClientControl, ErrorCode, LobbyJoined, ServerControl};
use protocol::datagram::{
    Buttons, ClientDatagram, DEFAULT_INPUT_REDUNDANCY, MAX_INPUT_BYTES, MAX_SNAPSHOT_BYTES, ServerDatagram, Snapshot,
};
use protocol::delta::Rebuilder;
use quic_loop::{Conn, ConnEvent, LoopHandle, SendDatagramError};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use crate::input::{InputWindow, RttTracker};
use crate::tls::{Trust, client_endpoint_for};

/// QUIC handshake plus `Hello`/`Welcome`.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// `Join` to `LobbyJoined`.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Control events buffered before the reader stops reading the stream.
const EVENT_QUEUE: usize = 256;
/// Snapshots buffered for a slow reader (about 3 s at 20 Hz); older ones drop.
const SNAPSHOT_QUEUE: usize = 64;
/// Unacknowledged inputs remembered for round-trip matching (about 50 s at 20 Hz).
const RTT_PENDING: usize = 1024;
/// Round-trip samples held until [`GameClient::take_rtt_samples`] collects them.
const RTT_SAMPLES: usize = 4096;
/// Datagrams taken from a quic-loop driver per call (its inbox holds fewer).
const DATAGRAM_BATCH: usize = 64;
/// How often [`GameClient::next_snapshot`] looks for datagrams while the
/// control events queue is full (it cannot wait on the connection then
/// without reading past the queue's bound).
const FULL_QUEUE_POLL: Duration = Duration::from_millis(5);
/// Client name sent in `Hello` unless configured otherwise.
pub const DEFAULT_CLIENT_NAME: &str = "loadgen/0.1";

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub server: SocketAddr,
    /// TLS server name; the development certificate is issued for "localhost".
    pub server_name: String,
    pub trust: Trust,
    /// Sent in `Hello` (at most 32 bytes).
    pub client_name: String,
    /// Connect as a browser does: a WebTransport session at
    /// [`protocol::WEBTRANSPORT_PATH`] (quic-loop clients only, with a
    /// config from [`crate::tls::webtransport_client_config`]).
    pub webtransport: bool,
}

impl ClientConfig {
    /// A config for a local node: server name "localhost", client name "loadgen/0.1".
    pub fn new(server: SocketAddr, trust: Trust) -> ClientConfig {
        ClientConfig {
            server,
            server_name: "localhost".into(),
            trust,
            client_name: DEFAULT_CLIENT_NAME.into(),
            webtransport: false,
        }
    }
}

/// The node's answer to `Hello`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    pub version: u16,
    pub node_id: String,
    pub tick_rate: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The QUIC connection could not be established (unreachable, TLS, ALPN).
    #[error("could not connect: {0}")]
    Connect(String),
    /// The node refused a request with a stable error code.
    #[error("node refused with {code}: {message}")]
    Server { code: ErrorCode, message: String },
    /// The connection or the control stream ended.
    #[error("connection closed: {0}")]
    Closed(String),
    /// The node sent something this client does not understand, or a local
    /// message could not be sent as a datagram.
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("timed out")]
    Timeout,
}

impl ClientError {
    /// A short, stable label for counting errors by kind:
    /// `connect`, `closed`, `protocol`, `timeout` or `server:<CODE>`.
    pub fn kind(&self) -> String {
        match self {
            ClientError::Connect(_) => "connect".into(),
            ClientError::Server { code, .. } => format!("server:{code}"),
            ClientError::Closed(_) => "closed".into(),
            ClientError::Protocol(_) => "protocol".into(),
            ClientError::Timeout => "timeout".into(),
        }
    }
}

/// Counters of one client's traffic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientStats {
    pub inputs_sent: u64,
    /// Snapshots accepted (newer than every one before).
    pub snapshots_received: u64,
    /// Snapshots ignored because a newer tick had already arrived.
    pub snapshots_stale: u64,
    /// Snapshots dropped unread because the queue was full (on the
    /// quic-loop transport also datagrams the driver's inbox dropped).
    pub snapshots_overflowed: u64,
    /// Datagrams that did not decode as a snapshot.
    pub datagrams_malformed: u64,
    /// Deltas whose base the client no longer held, or that did not apply.
    pub snapshots_unresolved: u64,
    /// Round-trip samples discarded because nobody collected them.
    pub rtt_samples_dropped: u64,
    /// Newest input sequence the node acknowledged.
    pub last_ack_seq: u32,
}

/// One player's connection: the control stream plus datagrams.
pub struct GameClient {
    link: Link,
    welcome: Welcome,
    joined: Option<LobbyJoined>,
    /// Events read ahead while waiting for a specific answer (`join`).
    early_events: VecDeque<ServerControl>,
    down: Arc<Downlink>,
    window: InputWindow,
}

/// The transport under a [`GameClient`].
enum Link {
    Quinn(QuinnLink),
    Loop(LoopLink),
}

struct QuinnLink {
    conn: quinn::Connection,
    send: quinn::SendStream,
    events: mpsc::Receiver<Result<ServerControl, ClientError>>,
    events_ended: Option<ClientError>,
    tasks: [JoinHandle<()>; 2],
    /// Owned only by clients from [`GameClient::connect`], which made it.
    _own_endpoint: Option<quinn::Endpoint>,
}

struct LoopLink {
    conn: Conn,
    control: ControlReader,
    /// [`GameClient::close`] was called: the driver closes the connection
    /// on its next wake-up, but the client must refuse to send from now on.
    closing: AtomicBool,
}

impl std::fmt::Debug for GameClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (transport, remote) = match &self.link {
            Link::Quinn(q) => ("quinn", q.conn.remote_address()),
            Link::Loop(l) => ("quic-loop", l.conn.remote_address()),
        };
        f.debug_struct("GameClient")
            .field("transport", &transport)
            .field("remote", &remote)
            .field("welcome", &self.welcome)
            .field("you", &self.joined.as_ref().map(|j| j.you))
            .finish_non_exhaustive()
    }
}

/// The session URL of a node's WebTransport endpoint.
pub fn webtransport_url(server_name: &str, port: u16) -> String {
    let host = if server_name.contains(':') { format!("[{server_name}]") } else { server_name.to_string() };
    format!("https://{host}:{port}{}", protocol::WEBTRANSPORT_PATH)
}

impl GameClient {
    /// Connects with an endpoint of its own. Prefer [`GameClient::connect_with`]
    /// and a shared endpoint when running many clients.
    pub async fn connect(cfg: &ClientConfig) -> Result<GameClient, ClientError> {
        let endpoint =
            client_endpoint_for(&cfg.trust, cfg.server).map_err(|e| ClientError::Connect(format!("{e:#}")))?;
        let mut client = GameClient::connect_with(&endpoint, cfg).await?;
        if let Link::Quinn(q) = &mut client.link {
            q._own_endpoint = Some(endpoint);
        }
        Ok(client)
    }

    /// QUIC handshake, control stream, `Hello` and `Welcome`, within
    /// [`HANDSHAKE_TIMEOUT`], trusting what the endpoint's default client
    /// config trusts (`cfg.trust` is not consulted).
    pub async fn connect_with(endpoint: &quinn::Endpoint, cfg: &ClientConfig) -> Result<GameClient, ClientError> {
        tokio::time::timeout(HANDSHAKE_TIMEOUT, GameClient::handshake(endpoint, cfg, None))
            .await
            .unwrap_or(Err(ClientError::Timeout))
    }

    /// Like [`GameClient::connect_with`], with this connection's own QUIC
    /// config (see [`crate::tls::ClientConfigs`]), so one endpoint can serve
    /// connections to nodes with different certificates.
    pub async fn connect_with_config(
        endpoint: &quinn::Endpoint,
        cfg: &ClientConfig,
        quic: quinn::ClientConfig,
    ) -> Result<GameClient, ClientError> {
        tokio::time::timeout(HANDSHAKE_TIMEOUT, GameClient::handshake(endpoint, cfg, Some(quic)))
            .await
            .unwrap_or(Err(ClientError::Timeout))
    }

    /// Like [`GameClient::connect_with_config`], on a [`quic_loop`] driver
    /// (see [`crate::drivers::DriverPool`]): the client gets no task of its
    /// own, see the module documentation.
    pub async fn connect_loop(
        driver: &LoopHandle,
        cfg: &ClientConfig,
        quic: quinn::ClientConfig,
    ) -> Result<GameClient, ClientError> {
        let conn = if cfg.webtransport {
            let url = webtransport_url(&cfg.server_name, cfg.server.port());
            driver.connect_webtransport(quic, cfg.server, &cfg.server_name, &url)
        } else {
            driver.connect(quic, cfg.server, &cfg.server_name)
        };
        let result = tokio::time::timeout(HANDSHAKE_TIMEOUT, GameClient::loop_handshake(conn.clone(), cfg))
            .await
            .unwrap_or(Err(ClientError::Timeout));
        if result.is_err() {
            // Dropping a quic-loop handle leaves the connection open.
            conn.close(0, b"handshake failed");
        }
        result
    }

    async fn handshake(
        endpoint: &quinn::Endpoint,
        cfg: &ClientConfig,
        quic: Option<quinn::ClientConfig>,
    ) -> Result<GameClient, ClientError> {
        if cfg.webtransport {
            return Err(ClientError::Connect("WebTransport sessions run on quic-loop clients only".into()));
        }
        let connecting = match quic {
            Some(quic) => endpoint.connect_with(quic, cfg.server, &cfg.server_name),
            None => endpoint.connect(cfg.server, &cfg.server_name),
        }
        .map_err(|e| ClientError::Connect(e.to_string()))?;
        let conn = connecting.await.map_err(|e| ClientError::Connect(describe_close(&e)))?;
        let (mut send, mut recv) = conn.open_bi().await.map_err(|e| ClientError::Closed(describe_close(&e)))?;
        write_frame(&mut send, &hello(cfg)).await?;
        let welcome = welcome_from(read_frame(&mut recv).await?)?;

        let (tx, events) = mpsc::channel(EVENT_QUEUE);
        let down = Arc::new(Downlink::default());
        let tasks = [tokio::spawn(read_control(recv, tx)), tokio::spawn(read_datagrams(conn.clone(), down.clone()))];
        Ok(GameClient::new(
            Link::Quinn(QuinnLink { conn, send, events, events_ended: None, tasks, _own_endpoint: None }),
            welcome,
            down,
        ))
    }

    async fn loop_handshake(conn: Conn, cfg: &ClientConfig) -> Result<GameClient, ClientError> {
        conn.established().await.map_err(|e| ClientError::Connect(describe_close(&e)))?;
        let mut link = LoopLink { conn, control: ControlReader::default(), closing: AtomicBool::new(false) };
        let down = Arc::new(Downlink::default());
        link.send_frame(&hello(cfg))?;
        let welcome = welcome_from(link.recv_event(&down).await?)?;
        Ok(GameClient::new(Link::Loop(link), welcome, down))
    }

    fn new(link: Link, welcome: Welcome, down: Arc<Downlink>) -> GameClient {
        GameClient {
            link,
            welcome,
            joined: None,
            early_events: VecDeque::new(),
            down,
            window: InputWindow::new(DEFAULT_INPUT_REDUNDANCY),
        }
    }

    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// The answer to the last successful [`GameClient::join`].
    pub fn lobby(&self) -> Option<&LobbyJoined> {
        self.joined.as_ref()
    }

    /// The quinn connection of a client on the quinn transport.
    ///
    /// # Panics
    ///
    /// On the quic-loop transport ([`GameClient::connect_loop`]); see
    /// [`GameClient::quinn_connection`] and [`GameClient::loop_connection`].
    pub fn connection(&self) -> &quinn::Connection {
        self.quinn_connection().expect("GameClient::connection() needs the quinn transport")
    }

    /// The quinn connection, on the quinn transport.
    pub fn quinn_connection(&self) -> Option<&quinn::Connection> {
        match &self.link {
            Link::Quinn(q) => Some(&q.conn),
            Link::Loop(_) => None,
        }
    }

    /// The quic-loop connection, on that transport.
    pub fn loop_connection(&self) -> Option<&Conn> {
        match &self.link {
            Link::Quinn(_) => None,
            Link::Loop(l) => Some(&l.conn),
        }
    }

    pub fn remote_address(&self) -> SocketAddr {
        match &self.link {
            Link::Quinn(q) => q.conn.remote_address(),
            Link::Loop(l) => l.conn.remote_address(),
        }
    }

    /// Sends `Join` and waits (up to [`JOIN_TIMEOUT`]) for `LobbyJoined`; an
    /// `Error` from the node becomes [`ClientError::Server`]. Other events
    /// arriving first are kept for [`GameClient::next_event`].
    pub async fn join(&mut self, ticket: &str) -> Result<LobbyJoined, ClientError> {
        self.send_control(&ClientControl::Join { ticket: ticket.to_owned() }).await?;
        let wait = async {
            loop {
                match self.recv_event().await? {
                    ServerControl::LobbyJoined(joined) => return Ok(joined),
                    ServerControl::Error { code, message } => return Err(ClientError::Server { code, message }),
                    other => self.early_events.push_back(other),
                }
            }
        };
        let joined = tokio::time::timeout(JOIN_TIMEOUT, wait).await.unwrap_or(Err(ClientError::Timeout))?;
        self.joined = Some(joined.clone());
        Ok(joined)
    }

    /// Sends the next input. The datagram repeats the previous inputs and
    /// carries the newest snapshot tick seen; returns the input's sequence.
    pub fn send_input(&mut self, buttons: Buttons, aim: u16) -> Result<u32, ClientError> {
        // The acknowledged tick should be the newest that has arrived, not
        // the newest someone happened to look at.
        self.take_datagrams();
        let packet = {
            let mut st = self.down.lock();
            let tick = st.newest_tick.unwrap_or(0);
            let packet = self.window.push(buttons, aim, tick, tick);
            // Registered before sending so even an instant answer finds it.
            st.rtt.on_send(packet.last_seq(), Instant::now());
            st.stats.inputs_sent += 1;
            packet
        };
        let seq = packet.last_seq();
        let bytes = codec::encode(&ClientDatagram::Input(packet), MAX_INPUT_BYTES)
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.send_raw_datagram(Bytes::from(bytes))?;
        Ok(seq)
    }

    /// Sends arbitrary bytes as one datagram (for tests of hostile input).
    pub fn send_raw_datagram(&self, bytes: Bytes) -> Result<(), ClientError> {
        match &self.link {
            Link::Quinn(q) => q.conn.send_datagram(bytes).map_err(|e| match e {
                quinn::SendDatagramError::ConnectionLost(e) => ClientError::Closed(describe_close(&e)),
                other => ClientError::Protocol(other.to_string()),
            }),
            Link::Loop(l) => {
                l.check_open()?;
                l.conn.send_datagram(bytes).map_err(|e| match e {
                    SendDatagramError::Closed => l.closed_error(),
                    other => ClientError::Protocol(other.to_string()),
                })
            }
        }
    }

    /// Writes arbitrary bytes on the control stream (for tests of hostile input).
    pub async fn send_raw_frame(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        match &mut self.link {
            Link::Quinn(q) => q.send.write_all(bytes).await.map_err(write_error),
            Link::Loop(l) => l.send_bytes(Bytes::copy_from_slice(bytes)),
        }
    }

    pub async fn chat(&mut self, text: &str) -> Result<(), ClientError> {
        self.send_control(&ClientControl::Chat { text: text.to_owned() }).await
    }

    pub async fn vote(&mut self, restart: bool) -> Result<(), ClientError> {
        self.send_control(&ClientControl::Vote { restart }).await
    }

    /// Leaves the lobby for good. The connection stays open; see
    /// [`GameClient::shutdown`] to end it without losing this message.
    pub async fn leave(&mut self) -> Result<(), ClientError> {
        self.send_control(&ClientControl::Leave).await
    }

    /// Sends any control message.
    pub async fn send_control(&mut self, msg: &ClientControl) -> Result<(), ClientError> {
        match &mut self.link {
            Link::Quinn(q) => write_frame(&mut q.send, msg).await,
            Link::Loop(l) => l.send_frame(msg),
        }
    }

    /// Queues a control message without waiting, for callers that cannot
    /// await (a scheduler ticking many bots). Only the quic-loop transport
    /// can: its driver buffers the stream. On quinn it fails with
    /// [`ClientError::Protocol`] and sends nothing.
    pub fn send_control_now(&mut self, msg: &ClientControl) -> Result<(), ClientError> {
        match &mut self.link {
            Link::Quinn(_) => Err(ClientError::Protocol("send_control_now needs the quic-loop transport".into())),
            Link::Loop(l) => l.send_frame(msg),
        }
    }

    /// The next control event, in order. Cancel-safe. After the stream or the
    /// connection ends, returns that error on every call.
    pub async fn next_event(&mut self) -> Result<ServerControl, ClientError> {
        match self.early_events.pop_front() {
            Some(event) => Ok(event),
            None => self.recv_event().await,
        }
    }

    /// Every control event already received, without waiting. An ended stream
    /// shows up in [`GameClient::next_event`] and [`GameClient::closed_reason`].
    pub fn events_pending(&mut self) -> Vec<ServerControl> {
        let mut out: Vec<ServerControl> = self.early_events.drain(..).collect();
        match &mut self.link {
            Link::Quinn(q) => {
                while q.events_ended.is_none() {
                    match q.events.try_recv() {
                        Ok(Ok(event)) => out.push(event),
                        Ok(Err(e)) => q.events_ended = Some(e),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => q.events_ended = Some(q.closed_error()),
                    }
                }
            }
            Link::Loop(l) => loop {
                l.pump_control(&self.down);
                if l.control.events.is_empty() {
                    break;
                }
                out.extend(l.control.events.drain(..));
            },
        }
        out
    }

    async fn recv_event(&mut self) -> Result<ServerControl, ClientError> {
        match &mut self.link {
            Link::Quinn(q) => q.recv_event().await,
            Link::Loop(l) => l.recv_event(&self.down).await,
        }
    }

    /// Moves datagrams the quic-loop driver received into the downlink (a
    /// no-op on quinn, whose reader task does it as they come).
    fn take_datagrams(&self) {
        if let Link::Loop(l) = &self.link {
            self.down.take_from(&l.conn);
        }
    }

    /// The newest snapshot received since the last call (or since the last
    /// one [`GameClient::next_snapshot`] returned), discarding older ones.
    pub fn latest_snapshot(&mut self) -> Option<Snapshot> {
        self.take_datagrams();
        let mut st = self.down.lock();
        let newest = st.queue.pop_back();
        st.queue.clear();
        newest
    }

    /// The next snapshot in arrival order, waiting for one if none is queued.
    /// Cancel-safe. Fails once the connection is closed and the queue is empty.
    pub async fn next_snapshot(&mut self) -> Result<Snapshot, ClientError> {
        match &mut self.link {
            Link::Quinn(_) => loop {
                {
                    let mut st = self.down.lock();
                    if let Some(snap) = st.queue.pop_front() {
                        return Ok(snap);
                    }
                    if let Some(e) = &st.closed {
                        return Err(e.clone());
                    }
                }
                // A notification sent between the check above and this await is
                // kept as a permit, so no wakeup is lost.
                self.down.notify.notified().await;
            },
            Link::Loop(l) => {
                // Off again however this ends (a select! may drop it), so a
                // bot that only polls is not woken per datagram afterwards.
                let _wake = DatagramWake::on(&l.conn);
                loop {
                    self.down.take_from(&l.conn);
                    if let Some(snap) = self.down.lock().queue.pop_front() {
                        return Ok(snap);
                    }
                    if let Some(e) = l.conn.close_reason() {
                        return Err(ClientError::Closed(describe_close(&e)));
                    }
                    if l.control.events.len() >= EVENT_QUEUE {
                        tokio::time::sleep(FULL_QUEUE_POLL).await;
                        continue;
                    }
                    // Control bytes that come first are parsed, not lost;
                    // a datagram's arrival ends the wait.
                    let event = l.conn.next_event().await;
                    l.control.on_event(event);
                }
            }
        }
    }

    /// Round-trip times measured since the last call: for each input, from
    /// sending it to the arrival of the first snapshot acknowledging it.
    pub fn take_rtt_samples(&mut self) -> Vec<Duration> {
        self.take_datagrams();
        std::mem::take(&mut self.down.lock().rtt_samples)
    }

    /// When the newest snapshot arrived (read off the socket), if any has.
    pub fn newest_snapshot_at(&self) -> Option<Instant> {
        self.down.lock().newest_at
    }

    /// Newest snapshot tick received (what inputs report as `ack_tick`).
    pub fn newest_tick(&self) -> Option<u32> {
        self.take_datagrams();
        self.down.lock().newest_tick
    }

    pub fn stats(&self) -> ClientStats {
        self.take_datagrams();
        self.down.lock().stats
    }

    /// Why the connection or control stream ended, if it did.
    pub fn closed_reason(&self) -> Option<ClientError> {
        match &self.link {
            Link::Quinn(q) => q
                .events_ended
                .clone()
                .or_else(|| self.down.lock().closed.clone())
                .or_else(|| q.conn.close_reason().map(|e| ClientError::Closed(describe_close(&e)))),
            Link::Loop(l) => l.control.ended.clone().or_else(|| l.check_open().err()),
        }
    }

    /// Closes the connection at once, without leaving the lobby (the node
    /// sees a disconnect and holds the slot for its grace period).
    pub fn close(&self) {
        match &self.link {
            Link::Quinn(q) => q.conn.close(0u32.into(), b"client closed"),
            Link::Loop(l) => {
                l.closing.store(true, Ordering::Relaxed);
                l.conn.close(0, b"client closed");
            }
        }
    }

    /// Ends the connection cleanly: finishes the control stream, waits up to
    /// `wait` for the node to acknowledge everything sent (a `Leave` written
    /// just before would otherwise be lost), then closes.
    pub async fn shutdown(mut self, wait: Duration) {
        match &mut self.link {
            Link::Quinn(q) => {
                if q.send.finish().is_ok() {
                    let _ = tokio::time::timeout(wait, q.send.stopped()).await;
                }
                q.conn.close(0u32.into(), b"bye");
            }
            Link::Loop(l) => {
                l.conn.finish_control();
                let _ = tokio::time::timeout(wait, l.conn.control_flushed()).await;
                l.closing.store(true, Ordering::Relaxed);
                l.conn.close(0, b"bye");
            }
        }
    }
}

impl Drop for GameClient {
    fn drop(&mut self) {
        match &self.link {
            Link::Quinn(q) => {
                // The reader tasks hold their own handles to the connection,
                // which would otherwise keep it alive.
                q.conn.close(0u32.into(), b"client dropped");
                for task in &q.tasks {
                    task.abort();
                }
            }
            // A quic-loop connection lives until closed, handles or not.
            Link::Loop(l) => l.conn.close(0, b"client dropped"),
        }
    }
}

impl QuinnLink {
    async fn recv_event(&mut self) -> Result<ServerControl, ClientError> {
        if let Some(e) = &self.events_ended {
            return Err(e.clone());
        }
        let end = match self.events.recv().await {
            Some(Ok(event)) => return Ok(event),
            Some(Err(e)) => e,
            None => self.closed_error(),
        };
        self.events_ended = Some(end.clone());
        Err(end)
    }

    fn closed_error(&self) -> ClientError {
        match self.conn.close_reason() {
            Some(e) => ClientError::Closed(describe_close(&e)),
            None => ClientError::Closed("control stream ended".into()),
        }
    }
}

impl LoopLink {
    /// Fails once the connection is closed or closing.
    fn check_open(&self) -> Result<(), ClientError> {
        if let Some(e) = self.conn.close_reason() {
            return Err(ClientError::Closed(describe_close(&e)));
        }
        if self.closing.load(Ordering::Relaxed) {
            return Err(ClientError::Closed(describe_close(&quinn::ConnectionError::LocallyClosed)));
        }
        Ok(())
    }

    fn closed_error(&self) -> ClientError {
        self.check_open().err().unwrap_or_else(|| ClientError::Closed("connection closed".into()))
    }

    fn send_frame(&self, msg: &ClientControl) -> Result<(), ClientError> {
        let frame = codec::encode_frame(msg, MAX_CLIENT_FRAME).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.send_bytes(Bytes::from(frame))
    }

    fn send_bytes(&self, bytes: Bytes) -> Result<(), ClientError> {
        // The driver drops bytes queued on a closed connection silently.
        self.check_open()?;
        self.conn.send_control(bytes);
        Ok(())
    }

    /// Parses whatever control bytes the driver holds, without waiting,
    /// until the events queue is full (the driver then keeps the rest, and
    /// past its own limit stops reading the stream: flow control pushes back
    /// on the node).
    fn pump_control(&mut self, down: &Downlink) {
        while self.control.ended.is_none() && self.control.events.len() < EVENT_QUEUE {
            let Some(event) = self.conn.try_event() else { break };
            if event == ConnEvent::Datagrams {
                down.take_from(&self.conn);
            }
            self.control.on_event(event);
        }
    }

    /// Cancel-safe: an event is taken from the driver only when this future
    /// completes the wait for it, and is handled before anything else awaits.
    async fn recv_event(&mut self, down: &Downlink) -> Result<ServerControl, ClientError> {
        loop {
            if let Some(event) = self.control.events.pop_front() {
                return Ok(event);
            }
            if let Some(e) = &self.control.ended {
                return Err(e.clone());
            }
            let event = self.conn.next_event().await;
            if event == ConnEvent::Datagrams {
                down.take_from(&self.conn);
            }
            self.control.on_event(event);
        }
    }
}

/// Datagram wake-ups on for as long as it lives.
struct DatagramWake<'a>(&'a Conn);

impl<'a> DatagramWake<'a> {
    fn on(conn: &'a Conn) -> DatagramWake<'a> {
        conn.wake_on_datagrams(true);
        DatagramWake(conn)
    }
}

impl Drop for DatagramWake<'_> {
    fn drop(&mut self) {
        self.0.wake_on_datagrams(false);
    }
}

/// The control stream of a quic-loop connection as frames: bytes come in
/// chunks that need not end on a frame boundary, so a partial frame waits
/// here for the rest.
#[derive(Default)]
struct ControlReader {
    partial: BytesMut,
    events: VecDeque<ServerControl>,
    /// Why no more events will come (set after the last one was parsed).
    ended: Option<ClientError>,
}

impl ControlReader {
    fn on_event(&mut self, event: ConnEvent) {
        if self.ended.is_some() {
            return;
        }
        match event {
            ConnEvent::Control(bytes) => self.push(&bytes),
            ConnEvent::ControlFinished => {
                self.ended = Some(ClientError::Closed("the node finished the control stream".into()));
            }
            ConnEvent::ControlReset(code) => {
                self.ended = Some(ClientError::Closed(format!("the node reset the control stream (code {code})")));
            }
            ConnEvent::Closed(e) => self.ended = Some(ClientError::Closed(describe_close(&e))),
            ConnEvent::Established | ConnEvent::Datagrams => {}
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.partial.extend_from_slice(bytes);
        while self.ended.is_none() && self.partial.len() >= codec::FRAME_HEADER {
            let header = [self.partial[0], self.partial[1]];
            let len = match codec::frame_len(header, MAX_SERVER_FRAME) {
                Ok(len) => len,
                Err(e) => {
                    self.ended = Some(ClientError::Protocol(e.to_string()));
                    return;
                }
            };
            if self.partial.len() < codec::FRAME_HEADER + len {
                return;
            }
            self.partial.advance(codec::FRAME_HEADER);
            let body = self.partial.split_to(len);
            match codec::decode(&body, MAX_SERVER_FRAME) {
                Ok(event) => self.events.push_back(event),
                Err(e) => self.ended = Some(ClientError::Protocol(e.to_string())),
            }
        }
    }
}

fn hello(cfg: &ClientConfig) -> ClientControl {
    ClientControl::Hello { version: protocol::PROTOCOL_VERSION, client: cfg.client_name.clone() }
}

fn welcome_from(event: ServerControl) -> Result<Welcome, ClientError> {
    match event {
        ServerControl::Welcome { version, node_id, tick_rate } => Ok(Welcome { version, node_id, tick_rate }),
        ServerControl::Error { code, message } => Err(ClientError::Server { code, message }),
        other => Err(ClientError::Protocol(format!("expected Welcome, got {}", event_name(&other)))),
    }
}

/// The datagram side: filled by the reader task (quinn) or by whoever looks
/// at the client (quic-loop).
#[derive(Default)]
struct Downlink {
    state: Mutex<DownState>,
    notify: Notify,
}

struct DownState {
    queue: VecDeque<Snapshot>,
    newest_tick: Option<u32>,
    /// When the newest snapshot was read off the socket.
    newest_at: Option<Instant>,
    rebuilder: Rebuilder,
    rtt: RttTracker,
    rtt_samples: Vec<Duration>,
    closed: Option<ClientError>,
    stats: ClientStats,
    /// Reused for each batch taken from a quic-loop driver.
    inbox: Vec<(Instant, Bytes)>,
}

impl Default for DownState {
    fn default() -> DownState {
        DownState {
            queue: VecDeque::new(),
            newest_tick: None,
            newest_at: None,
            rebuilder: Rebuilder::default(),
            rtt: RttTracker::new(RTT_PENDING),
            rtt_samples: Vec::new(),
            closed: None,
            stats: ClientStats::default(),
            inbox: Vec::new(),
        }
    }
}

impl Downlink {
    fn lock(&self) -> MutexGuard<'_, DownState> {
        // A panic while holding this lock leaves only counters half-updated.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn on_datagram(&self, bytes: &[u8], at: Instant) {
        let queued = self.lock().on_datagram(bytes, at);
        if queued {
            self.notify.notify_one();
        }
    }

    /// Takes every datagram a quic-loop connection holds, with the times the
    /// driver read them (so round trips do not depend on when we looked).
    fn take_from(&self, conn: &Conn) {
        let mut st = self.lock();
        let mut inbox = std::mem::take(&mut st.inbox);
        loop {
            let n = conn.recv_datagrams_at(&mut inbox, DATAGRAM_BATCH);
            for (at, bytes) in inbox.drain(..) {
                st.on_datagram(&bytes, at);
            }
            if n < DATAGRAM_BATCH {
                break;
            }
        }
        st.inbox = inbox;
        st.stats.snapshots_overflowed += conn.take_datagrams_dropped();
    }

    fn close(&self, reason: ClientError) {
        self.lock().closed.get_or_insert(reason);
        self.notify.notify_one();
    }
}

impl DownState {
    /// Returns whether a snapshot was queued.
    fn on_datagram(&mut self, bytes: &[u8], at: Instant) -> bool {
        let datagram = match codec::decode::<ServerDatagram>(bytes, MAX_SNAPSHOT_BYTES) {
            Ok(d) => d,
            Err(_) => {
                self.stats.datagrams_malformed += 1;
                return false;
            }
        };
        let tick = match &datagram {
            ServerDatagram::Snapshot(s) => s.tick,
            ServerDatagram::Delta(d) => d.tick,
        };
        // The node bases deltas on the newest tick the client acknowledged,
        // so an older snapshot is needed neither to play nor as a base.
        if self.newest_tick.is_some_and(|newest| tick <= newest) {
            self.stats.snapshots_stale += 1;
            return false;
        }
        let snap = match self.rebuilder.rebuild(datagram) {
            Ok(snap) => snap,
            Err(_) => {
                self.stats.snapshots_unresolved += 1;
                return false;
            }
        };
        self.newest_tick = Some(snap.tick);
        self.newest_at = Some(at);
        self.stats.snapshots_received += 1;
        if snap.ack_seq > self.stats.last_ack_seq {
            self.stats.last_ack_seq = snap.ack_seq;
            let DownState { rtt, rtt_samples, stats, .. } = self;
            rtt.on_ack(snap.ack_seq, at, |d| {
                if rtt_samples.len() < RTT_SAMPLES {
                    rtt_samples.push(d);
                } else {
                    stats.rtt_samples_dropped += 1;
                }
            });
        }
        if self.queue.len() == SNAPSHOT_QUEUE {
            self.queue.pop_front();
            self.stats.snapshots_overflowed += 1;
        }
        self.queue.push_back(snap);
        true
    }
}

async fn read_control(mut recv: quinn::RecvStream, tx: mpsc::Sender<Result<ServerControl, ClientError>>) {
    loop {
        let frame = read_frame(&mut recv).await;
        let last = frame.is_err();
        // A full queue makes this wait, which stops reading the stream and
        // lets QUIC flow control push back on the node.
        if tx.send(frame).await.is_err() || last {
            return;
        }
    }
}

async fn read_datagrams(conn: quinn::Connection, down: Arc<Downlink>) {
    loop {
        match conn.read_datagram().await {
            Ok(bytes) => down.on_datagram(&bytes, Instant::now()),
            Err(e) => {
                down.close(ClientError::Closed(describe_close(&e)));
                return;
            }
        }
    }
}

async fn write_frame(send: &mut quinn::SendStream, msg: &ClientControl) -> Result<(), ClientError> {
    let frame = codec::encode_frame(msg, MAX_CLIENT_FRAME).map_err(|e| ClientError::Protocol(e.to_string()))?;
    send.write_all(&frame).await.map_err(write_error)
}

async fn read_frame(recv: &mut quinn::RecvStream) -> Result<ServerControl, ClientError> {
    let mut header = [0u8; codec::FRAME_HEADER];
    recv.read_exact(&mut header).await.map_err(read_error)?;
    let len = codec::frame_len(header, MAX_SERVER_FRAME).map_err(|e| ClientError::Protocol(e.to_string()))?;
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await.map_err(read_error)?;
    codec::decode(&body, MAX_SERVER_FRAME).map_err(|e| ClientError::Protocol(e.to_string()))
}

fn read_error(e: quinn::ReadExactError) -> ClientError {
    match e {
        quinn::ReadExactError::FinishedEarly(_) => ClientError::Closed("the node finished the control stream".into()),
        quinn::ReadExactError::ReadError(quinn::ReadError::ConnectionLost(e)) => {
            ClientError::Closed(describe_close(&e))
        }
        quinn::ReadExactError::ReadError(e) => ClientError::Closed(e.to_string()),
    }
}

fn write_error(e: quinn::WriteError) -> ClientError {
    match e {
        quinn::WriteError::ConnectionLost(e) => ClientError::Closed(describe_close(&e)),
        other => ClientError::Closed(other.to_string()),
    }
}

/// A readable close reason; the node's application close carries its code
/// and text, which is what a tester wants to see.
fn describe_close(e: &quinn::ConnectionError) -> String {
    match e {
        quinn::ConnectionError::ApplicationClosed(close) => {
            format!("closed by the node (code {}): {}", close.error_code, String::from_utf8_lossy(&close.reason))
        }
        quinn::ConnectionError::LocallyClosed => "closed locally".into(),
        other => other.to_string(),
    }
}

/// The variant name of an event, for messages that should not dump a whole roster.
pub fn event_name(event: &ServerControl) -> &'static str {
    match event {
        ServerControl::Welcome { .. } => "Welcome",
        ServerControl::Error { .. } => "Error",
        ServerControl::LobbyJoined(_) => "LobbyJoined",
        ServerControl::Roster { .. } => "Roster",
        ServerControl::Kill { .. } => "Kill",
        ServerControl::MatchStarted { .. } => "MatchStarted",
        ServerControl::MatchEnded(_) => "MatchEnded",
        ServerControl::VoteState(_) => "VoteState",
        ServerControl::LobbyClosed { .. } => "LobbyClosed",
        ServerControl::Chat { .. } => "Chat",
        ServerControl::Kicked { .. } => "Kicked",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::datagram::PlayerSnap;

    fn snapshot_bytes(tick: u32, ack_seq: u32) -> Vec<u8> {
        let snap = Snapshot { tick, ack_seq, players: vec![PlayerSnap::default()] };
        codec::encode(&ServerDatagram::Snapshot(snap), MAX_SNAPSHOT_BYTES).unwrap()
    }

    #[test]
    fn downlink_keeps_newest_ticks_and_measures_round_trips_on_arrival() {
        let down = Downlink::default();
        let t0 = Instant::now();
        down.lock().rtt.on_send(1, t0);
        down.lock().rtt.on_send(2, t0 + Duration::from_millis(50));

        down.on_datagram(&snapshot_bytes(10, 1), t0 + Duration::from_millis(30));
        down.on_datagram(&snapshot_bytes(9, 2), t0 + Duration::from_millis(60));
        down.on_datagram(&[0xff, 0xff, 0xff], t0);
        down.on_datagram(&snapshot_bytes(11, 2), t0 + Duration::from_millis(90));

        let st = down.lock();
        assert_eq!(st.newest_tick, Some(11));
        assert_eq!(st.queue.iter().map(|s| s.tick).collect::<Vec<_>>(), vec![10, 11]);
        // The stale tick 9 acknowledged seq 2 but is ignored; tick 11 answers it.
        assert_eq!(st.rtt_samples, vec![Duration::from_millis(30), Duration::from_millis(40)]);
        assert_eq!((st.stats.snapshots_received, st.stats.snapshots_stale, st.stats.datagrams_malformed), (2, 1, 1));
        assert_eq!(st.stats.last_ack_seq, 2);
    }

    #[test]
    fn downlink_queue_is_bounded_and_drops_the_oldest() {
        let down = Downlink::default();
        let now = Instant::now();
        for tick in 1..=(SNAPSHOT_QUEUE as u32 + 10) {
            down.on_datagram(&snapshot_bytes(tick, 0), now);
        }
        let st = down.lock();
        assert_eq!(st.queue.len(), SNAPSHOT_QUEUE);
        assert_eq!(st.queue.front().unwrap().tick, 11);
        assert_eq!(st.stats.snapshots_overflowed, 10);
    }

    #[test]
    fn error_kinds_are_stable_labels() {
        let e = ClientError::Server { code: ErrorCode::TicketReused, message: String::new() };
        assert_eq!(e.kind(), "server:TICKET_REUSED");
        assert_eq!(ClientError::Timeout.kind(), "timeout");
        assert_eq!(ClientError::Closed(String::new()).kind(), "closed");
    }
}
