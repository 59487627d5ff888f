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

use protocol::codec::{self, MAX_CLIENT_FRAME, MAX_SERVER_FRAME};
use protocol::control::{ClientControl, ErrorCode, ServerControl};
use protocol::{PROTOCOL_VERSION, PlayerId};
use tokio::sync::mpsc;

use crate::lobby::{LobbyHandle, LobbyManager, LobbyMsg, SessionLink, ToSession};
use crate::metrics::NodeMetrics;
use crate::tickets::{Refusal, TicketVerifier};

/// Control messages queued for one session before the client is considered
/// too slow.
const SESSION_QUEUE: usize = 128;
/// Failed joins tolerated on one connection before it is closed.
const MAX_FAILED_JOINS: u32 = 5;

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
    Connection(#[from] quinn::ConnectionError),
    #[error("control stream: {0}")]
    Stream(String),
    #[error("refused: {0}")]
    Refused(ErrorCode),
}

struct Joined {
    lobby: LobbyHandle,
    player: PlayerId,
}

/// Runs one connection to its end.
pub async fn run(conn: quinn::Connection, ctx: Arc<SessionCtx>) {
    ctx.metrics.connections.inc();
    let remote = conn.remote_address();
    match serve(&conn, &ctx).await {
        Ok(()) => conn.close(quinn::VarInt::from_u32(0), b"bye"),
        Err(SessionError::Refused(code)) => {
            tracing::debug!(%remote, %code, "session refused");
            conn.close(quinn::VarInt::from_u32(1), code.as_str().as_bytes());
        }
        Err(e) => {
            tracing::debug!(%remote, error = %e, "session ended");
            conn.close(quinn::VarInt::from_u32(1), b"session error");
        }
    }
    ctx.metrics.connections.dec();
}

async fn write_frame(send: &mut quinn::SendStream, msg: &ServerControl) -> Result<(), SessionError> {
    let bytes = codec::encode_frame(msg, MAX_SERVER_FRAME).map_err(|e| SessionError::Stream(e.to_string()))?;
    send.write_all(&bytes).await.map_err(|e| SessionError::Stream(e.to_string()))
}

async fn refuse(send: &mut quinn::SendStream, code: ErrorCode, message: String) -> SessionError {
    let _ = write_frame(send, &ServerControl::Error { code, message }).await;
    let _ = send.finish();
    // Give the error frame a moment to leave before the connection closes.
    let _ = tokio::time::timeout(Duration::from_millis(200), send.stopped()).await;
    SessionError::Refused(code)
}

async fn read_frame(recv: &mut quinn::RecvStream) -> Result<Option<ClientControl>, codec::CodecError> {
    let mut header = [0u8; codec::FRAME_HEADER];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(codec::CodecError::Malformed(e.to_string())),
    }
    let len = codec::frame_len(header, MAX_CLIENT_FRAME)?;
    let mut body = vec![0u8; len];
    recv.read_exact(&mut body).await.map_err(|e| codec::CodecError::Malformed(e.to_string()))?;
    codec::decode(&body, MAX_CLIENT_FRAME).map(Some)
}

/// Reads control frames on their own task so the session loop can select
/// on them safely (`read_exact` is not cancel-safe).
fn spawn_frame_reader(mut recv: quinn::RecvStream) -> mpsc::Receiver<Result<ClientControl, codec::CodecError>> {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            match read_frame(&mut recv).await {
                Ok(Some(msg)) => {
                    if tx.send(Ok(msg)).await.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    break;
                }
            }
        }
    });
    rx
}

async fn serve(conn: &quinn::Connection, ctx: &SessionCtx) -> Result<(), SessionError> {
    let cfg = &ctx.cfg;
    let (mut send, recv) = match tokio::time::timeout(cfg.handshake_timeout, conn.accept_bi()).await {
        Ok(r) => r?,
        Err(_) => return Err(SessionError::Refused(ErrorCode::Timeout)),
    };
    let mut frames = spawn_frame_reader(recv);
    match tokio::time::timeout(cfg.handshake_timeout, frames.recv()).await {
        Err(_) => {
            return Err(refuse(&mut send, ErrorCode::Timeout, "no Hello within the handshake timeout".into()).await);
        }
        Ok(None) => return Ok(()),
        Ok(Some(Err(e))) => return Err(refuse(&mut send, ErrorCode::ProtocolViolation, e.to_string()).await),
        Ok(Some(Ok(ClientControl::Hello { version, .. }))) if version == PROTOCOL_VERSION => {}
        Ok(Some(Ok(ClientControl::Hello { version, .. }))) => {
            let message =
                format!("client speaks protocol v{version}, this node speaks v{PROTOCOL_VERSION}; update the client");
            return Err(refuse(&mut send, ErrorCode::VersionMismatch, message).await);
        }
        Ok(Some(Ok(_))) => {
            return Err(refuse(&mut send, ErrorCode::ProtocolViolation, "the first frame must be Hello".into()).await);
        }
    }
    ctx.metrics.control_frames_in.inc();
    let welcome =
        ServerControl::Welcome { version: PROTOCOL_VERSION, node_id: cfg.node_id.clone(), tick_rate: cfg.tick_rate };
    write_frame(&mut send, &welcome).await?;

    let (events_tx, mut events) = mpsc::channel(SESSION_QUEUE);
    let link = SessionLink {
        session: ctx.next_session.fetch_add(1, Ordering::Relaxed),
        conn: conn.clone(),
        events: events_tx,
    };
    let mut session = Session { ctx, link, joined: None, failed_joins: 0, send };
    let mut join_deadline = tokio::time::Instant::now() + cfg.join_timeout;

    let result = loop {
        tokio::select! {
            // Frames first: a client that sends Leave and then closes has its
            // Leave (already read off the stream) handled before the close.
            biased;
            frame = frames.recv() => match frame {
                None => break Ok(()),
                Some(Err(e)) => break Err(refuse(&mut session.send, ErrorCode::ProtocolViolation, e.to_string()).await),
                Some(Ok(msg)) => {
                    ctx.metrics.control_frames_in.inc();
                    if let Err(e) = session.control(msg).await {
                        break Err(e);
                    }
                }
            },
            ev = events.recv() => match ev {
                Some(ToSession::Control(msg)) => {
                    let kicked = matches!(msg, ServerControl::Kicked { .. });
                    write_frame(&mut session.send, &msg).await?;
                    if kicked {
                        session.joined = None;
                        let _ = session.send.finish();
                        let _ = tokio::time::timeout(Duration::from_millis(200), session.send.stopped()).await;
                        break Ok(());
                    }
                }
                Some(ToSession::Detached) => {
                    session.joined = None;
                    join_deadline = tokio::time::Instant::now() + cfg.join_timeout;
                }
                None => break Ok(()),
            },
            // Once joined, the lobby takes the datagrams itself each tick.
            dg = conn.read_datagram(), if session.joined.is_none() => match dg {
                Ok(bytes) => session.datagram(&bytes),
                Err(e) => break Err(e.into()),
            },
            e = conn.closed(), if session.joined.is_some() => break Err(e.into()),
            _ = tokio::time::sleep_until(join_deadline), if session.joined.is_none() => {
                break Err(refuse(&mut session.send, ErrorCode::Timeout, "no lobby joined within the join timeout".into()).await);
            }
        }
    };
    if let Some(j) = session.joined.take() {
        let _ = j.lobby.tx.send(LobbyMsg::Disconnect { player: j.player, session: session.link.session }).await;
    }
    result
}

struct Session<'a> {
    ctx: &'a SessionCtx,
    link: SessionLink,
    joined: Option<Joined>,
    failed_joins: u32,
    send: quinn::SendStream,
}

impl Session<'_> {
    async fn error(&mut self, code: ErrorCode, message: impl Into<String>) -> Result<(), SessionError> {
        write_frame(&mut self.send, &ServerControl::Error { code, message: message.into() }).await
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
                self.joined = None;
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
                self.joined = Some(Joined { lobby, player: joined.player });
                Ok(())
            }
            Err(Refusal { code, message }) => {
                self.ctx.metrics.join_refused(code);
                self.failed_joins += 1;
                if self.failed_joins >= MAX_FAILED_JOINS {
                    return Err(refuse(&mut self.send, code, message).await);
                }
                self.error(code, message).await
            }
        }
    }

    /// A datagram before joining: counted and dropped.
    fn datagram(&mut self, bytes: &[u8]) {
        let m = &self.ctx.metrics;
        m.datagrams_in.inc();
        m.bytes_in.inc_by(bytes.len() as u64);
        m.datagrams_dropped.not_joined.inc();
    }
}
