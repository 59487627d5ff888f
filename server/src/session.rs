//! One client connection: the control-stream handshake (version, then a
//! join ticket), routing into a lobby, then relaying control frames both
//! ways until the connection ends. Once joined, the lobby reads the
//! connection's input datagrams itself.
//!
//! Connection close codes: 0 normal, 1 refused or protocol error (the
//! control stream carried an `Error` first when it could), 2 the client
//! could not keep up with its control stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use protocol::codec::{self, MAX_CLIENT_FRAME, MAX_SERVER_FRAME};
use protocol::control::{ClientControl, ErrorCode, ServerControl};
use protocol::{PROTOCOL_VERSION, PlayerId};
use quic_loop::{Conn, ConnEvent, ConnectionError};
use tokio::sync::mpsc;

use crate::lobby::{LobbyHandle, LobbyManager, LobbyMsg, SessionLink, ToSession};
use crate::metrics::NodeMetrics;
use crate::tickets::{Refusal, TicketVerifier};

/// Control messages queued for one session before the client is considered
/// too slow.
const SESSION_QUEUE: usize = 128;
/// Failed joins tolerated on one connection before it is closed.
const MAX_FAILED_JOINS: u32 = 5;
/// How long a refusal's error frame is given to reach the client before
/// the connection closes.
const REFUSAL_LINGER: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub node_id: String,
    pub tick_rate: u16,
    /// Time for the client to open the control stream and say Hello.
    pub handshake_timeout: Duration,
    /// Time a connection may stay open without being in a lobby.
    pub join_timeout: Duration,
}

/// What every session shares.
pub struct SessionCtx {
    pub cfg: SessionConfig,
    pub manager: Arc<LobbyManager>,
    pub tickets: std::sync::Mutex<TicketVerifier>,
    pub metrics: NodeMetrics,
    next_session: AtomicU64,
}

impl SessionCtx {
    pub fn new(
        cfg: SessionConfig,
        manager: Arc<LobbyManager>,
        tickets: TicketVerifier,
        metrics: NodeMetrics,
    ) -> SessionCtx {
        SessionCtx { cfg, manager, tickets: std::sync::Mutex::new(tickets), metrics, next_session: AtomicU64::new(1) }
    }
}

#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error("connection lost: {0}")]
    Connection(#[from] ConnectionError),
    #[error("control stream: {0}")]
    Stream(String),
    #[error("refused: {0}")]
    Refused(ErrorCode),
}

struct Joined {
    lobby: LobbyHandle,
    player: PlayerId,
}

/// Runs one established connection to its end.
pub async fn run(conn: Conn, ctx: Arc<SessionCtx>) {
    ctx.metrics.connections.inc();
    let remote = conn.remote_address();
    match serve(&conn, &ctx).await {
        Ok(()) => conn.close(0, b"bye"),
        Err(SessionError::Refused(code)) => {
            tracing::debug!(%remote, %code, "session refused");
            conn.close(1, code.as_str().as_bytes());
        }
        Err(e) => {
            tracing::debug!(%remote, error = %e, "session ended");
            conn.close(1, b"session error");
        }
    }
    ctx.metrics.connections.dec();
}

fn write_frame(conn: &Conn, msg: &ServerControl) -> Result<(), SessionError> {
    let bytes = codec::encode_frame(msg, MAX_SERVER_FRAME).map_err(|e| SessionError::Stream(e.to_string()))?;
    conn.send_control(Bytes::from(bytes));
    Ok(())
}

async fn refuse(conn: &Conn, code: ErrorCode, message: String) -> SessionError {
    let _ = write_frame(conn, &ServerControl::Error { code, message });
    conn.finish_control();
    // Give the error frame a moment to leave before the connection closes.
    let _ = tokio::time::timeout(REFUSAL_LINGER, conn.control_flushed()).await;
    SessionError::Refused(code)
}

/// Cuts the control stream's bytes into frames (a 2-byte length, then the
/// message).
#[derive(Default)]
struct FrameReader {
    buf: BytesMut,
}

impl FrameReader {
    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if one has arrived.
    fn next(&mut self) -> Option<Result<ClientControl, codec::CodecError>> {
        if self.buf.len() < codec::FRAME_HEADER {
            return None;
        }
        let header = [self.buf[0], self.buf[1]];
        let len = match codec::frame_len(header, MAX_CLIENT_FRAME) {
            Ok(len) => len,
            Err(e) => return Some(Err(e)),
        };
        if self.buf.len() < codec::FRAME_HEADER + len {
            return None;
        }
        self.buf.advance(codec::FRAME_HEADER);
        let body = self.buf.split_to(len);
        Some(codec::decode(&body, MAX_CLIENT_FRAME))
    }
}

/// What the connection brought the session.
enum Incoming {
    Frame(ClientControl),
    Malformed(codec::CodecError),
    /// The client finished or reset its control stream.
    StreamEnded,
    Closed(ConnectionError),
    DatagramsWaiting,
}

/// The connection's next event for the session, decoded into frames.
struct Inbox {
    frames: FrameReader,
}

impl Inbox {
    async fn next(&mut self, conn: &Conn) -> Incoming {
        loop {
            if let Some(frame) = self.frames.next() {
                return match frame {
                    Ok(msg) => Incoming::Frame(msg),
                    Err(e) => Incoming::Malformed(e),
                };
            }
            match conn.next_event().await {
                ConnEvent::Control(bytes) => self.frames.push(&bytes),
                ConnEvent::ControlFinished | ConnEvent::ControlReset(_) => return Incoming::StreamEnded,
                ConnEvent::Closed(e) => return Incoming::Closed(e),
                ConnEvent::Datagrams => return Incoming::DatagramsWaiting,
                ConnEvent::Established => {}
            }
        }
    }
}

async fn serve(conn: &Conn, ctx: &SessionCtx) -> Result<(), SessionError> {
    let cfg = &ctx.cfg;
    let mut inbox = Inbox { frames: FrameReader::default() };
    // Datagrams before a join wake the session so they are counted and
    // dropped; once joined, the lobby takes them each tick.
    conn.wake_on_datagrams(true);
    let deadline = tokio::time::Instant::now() + cfg.handshake_timeout;
    let hello = loop {
        match tokio::time::timeout_at(deadline, inbox.next(conn)).await {
            Err(_) => {
                return Err(refuse(conn, ErrorCode::Timeout, "no Hello within the handshake timeout".into()).await);
            }
            Ok(Incoming::DatagramsWaiting) => drop_unjoined_datagrams(conn, &ctx.metrics),
            Ok(other) => break other,
        }
    };
    match hello {
        Incoming::StreamEnded => return Ok(()),
        Incoming::Closed(e) => return Err(e.into()),
        Incoming::DatagramsWaiting => unreachable!("handled above"),
        Incoming::Malformed(e) => return Err(refuse(conn, ErrorCode::ProtocolViolation, e.to_string()).await),
        Incoming::Frame(ClientControl::Hello { version, .. }) if version == PROTOCOL_VERSION => {}
        Incoming::Frame(ClientControl::Hello { version, .. }) => {
            let message =
                format!("client speaks protocol v{version}, this node speaks v{PROTOCOL_VERSION}; update the client");
            return Err(refuse(conn, ErrorCode::VersionMismatch, message).await);
        }
        Incoming::Frame(_) => {
            return Err(refuse(conn, ErrorCode::ProtocolViolation, "the first frame must be Hello".into()).await);
        }
    }
    ctx.metrics.control_frames_in.inc();
    let welcome =
        ServerControl::Welcome { version: PROTOCOL_VERSION, node_id: cfg.node_id.clone(), tick_rate: cfg.tick_rate };
    write_frame(conn, &welcome)?;

    let (events_tx, mut events) = mpsc::channel(SESSION_QUEUE);
    let link = SessionLink {
        session: ctx.next_session.fetch_add(1, Ordering::Relaxed),
        conn: conn.clone(),
        events: events_tx,
    };
    let mut session = Session { ctx, link, joined: None, failed_joins: 0, conn };
    let mut join_deadline = tokio::time::Instant::now() + cfg.join_timeout;

    let result = loop {
        tokio::select! {
            // The connection first: a client that sends Leave and then
            // closes has its Leave handled before the close.
            biased;
            incoming = inbox.next(conn) => match incoming {
                Incoming::StreamEnded => break Ok(()),
                Incoming::Closed(e) => break Err(e.into()),
                Incoming::Malformed(e) => break Err(refuse(conn, ErrorCode::ProtocolViolation, e.to_string()).await),
                Incoming::DatagramsWaiting => drop_unjoined_datagrams(conn, &ctx.metrics),
                Incoming::Frame(msg) => {
                    ctx.metrics.control_frames_in.inc();
                    if let Err(e) = session.control(msg).await {
                        break Err(e);
                    }
                }
            },
            ev = events.recv() => match ev {
                Some(ToSession::Control(msg)) => {
                    let kicked = matches!(*msg, ServerControl::Kicked { .. });
                    write_frame(conn, &msg)?;
                    if kicked {
                        session.set_joined(None);
                        conn.finish_control();
                        let _ = tokio::time::timeout(REFUSAL_LINGER, conn.control_flushed()).await;
                        break Ok(());
                    }
                }
                Some(ToSession::Detached) => {
                    session.set_joined(None);
                    join_deadline = tokio::time::Instant::now() + cfg.join_timeout;
                }
                None => break Ok(()),
            },
            _ = tokio::time::sleep_until(join_deadline), if session.joined.is_none() => {
                break Err(refuse(conn, ErrorCode::Timeout, "no lobby joined within the join timeout".into()).await);
            }
        }
    };
    if let Some(j) = session.joined.take() {
        let _ = j.lobby.tx.send(LobbyMsg::Disconnect { player: j.player, session: session.link.session }).await;
    }
    result
}

/// Datagrams that arrive before a join: counted and dropped.
fn drop_unjoined_datagrams(conn: &Conn, metrics: &NodeMetrics) {
    let mut taken = Vec::new();
    conn.recv_datagrams(&mut taken, usize::MAX);
    for bytes in taken {
        metrics.datagrams_in.inc();
        metrics.bytes_in.inc_by(bytes.len() as u64);
        metrics.datagrams_dropped.not_joined.inc();
    }
}

struct Session<'a> {
    ctx: &'a SessionCtx,
    link: SessionLink,
    joined: Option<Joined>,
    failed_joins: u32,
    conn: &'a Conn,
}

impl Session<'_> {
    async fn error(&mut self, code: ErrorCode, message: impl Into<String>) -> Result<(), SessionError> {
        write_frame(self.conn, &ServerControl::Error { code, message: message.into() })
    }

    /// Joined or not; a session in a lobby leaves its datagrams to the lobby.
    fn set_joined(&mut self, joined: Option<Joined>) {
        self.conn.wake_on_datagrams(joined.is_none());
        self.joined = joined;
    }

    async fn control(&mut self, msg: ClientControl) -> Result<(), SessionError> {
        let session = self.link.session;
        match (msg, &self.joined) {
            (ClientControl::Hello { .. }, _) => {
                self.error(ErrorCode::ProtocolViolation, "Hello was already received").await
            }
            (ClientControl::Join { .. }, Some(_)) => {
                self.error(ErrorCode::AlreadyJoined, "already in a lobby; Leave first").await
            }
            (ClientControl::Join { ticket }, None) => self.join(&ticket).await,
            (ClientControl::Chat { text }, Some(j)) => {
                let _ = j.lobby.tx.send(LobbyMsg::Chat { player: j.player, session, text }).await;
                Ok(())
            }
            (ClientControl::Vote { restart }, Some(j)) => {
                let _ = j.lobby.tx.send(LobbyMsg::Vote { player: j.player, session, restart }).await;
                Ok(())
            }
            (ClientControl::Leave, Some(j)) => {
                let _ = j.lobby.tx.send(LobbyMsg::Leave { player: j.player, session }).await;
                self.set_joined(None);
                Ok(())
            }
            (ClientControl::Chat { .. } | ClientControl::Vote { .. } | ClientControl::Leave, None) => {
                self.error(ErrorCode::NotInLobby, "join a lobby first").await
            }
        }
    }

    async fn join(&mut self, ticket: &str) -> Result<(), SessionError> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let verified = self.ctx.tickets.lock().unwrap_or_else(|e| e.into_inner()).verify(ticket, now);
        let result = match verified {
            Ok(claims) => self.ctx.manager.join(&claims, self.link.clone()).await,
            Err(r) => Err(r),
        };
        match result {
            Ok((lobby, joined)) => {
                self.set_joined(Some(Joined { lobby, player: joined.player }));
                Ok(())
            }
            Err(Refusal { code, message }) => {
                self.ctx.metrics.join_refused(code);
                self.failed_joins += 1;
                if self.failed_joins >= MAX_FAILED_JOINS {
                    return Err(refuse(self.conn, code, message).await);
                }
                self.error(code, message).await
            }
        }
    }
}
