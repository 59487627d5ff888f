//! The task that runs one lobby: a fixed-rate tick loop plus the messages
//! its players' sessions send. It owns the [`LobbyCore`] and carries out the
//! core's outbox (control messages, snapshots, registry updates).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use protocol::codec;
use protocol::control::{ErrorCode, ServerControl};
use protocol::datagram::{ClientDatagram, MAX_INPUT_BYTES};
use protocol::{AccountId, MAX_PLAYERS_PER_LOBBY, PlayerId};
use tokio::sync::{mpsc, oneshot};

use super::core::{Joined, Joiner, LobbyCore, Out, SessionId};
use super::manager::{LobbyManager, LobbySettings};
use crate::metrics::NodeMetrics;
use crate::ratelimit::TokenBucket;

/// Bytes reserved at a time for outgoing snapshots.
const ARENA_BYTES: usize = 8 * 1024;
/// Most datagrams taken from one connection per tick; the rest wait (and
/// the connection's bounded inbox drops the oldest of a flood).
const MAX_DATAGRAMS_PER_TICK: usize = 16;

/// How long a lobby may sit with no players before it closes (a lobby is
/// created for a joiner who might vanish before arriving).
const EMPTY_TIMEOUT: Duration = Duration::from_secs(5);

/// What the lobby sends to a session. Boxed: tokio allocates a session
/// channel's first block of 32 slots when the channel is made, so the slot
/// size is paid by every player whether or not anything is sent (32 x 112
/// bytes of `ServerControl` inline against 32 x 8 boxed).
#[derive(Debug)]
pub enum ToSession {
    Control(Box<ServerControl>),
    /// The session no longer belongs to the lobby (after `LobbyClosed` or `Kicked`).
    Detached,
}

/// A lobby's handle to one player's connection.
#[derive(Clone, Debug)]
pub struct SessionLink {
    pub session: SessionId,
    pub conn: quic_loop::Conn,
    pub events: mpsc::Sender<ToSession>,
}

pub type JoinReply = oneshot::Sender<Result<Joined, (ErrorCode, String)>>;

#[derive(Debug)]
pub enum LobbyMsg {
    Join { joiner: Joiner, link: SessionLink, reply: JoinReply },
    Chat { player: PlayerId, session: SessionId, text: String },
    Vote { player: PlayerId, session: SessionId, restart: bool },
    Leave { player: PlayerId, session: SessionId },
    Disconnect { player: PlayerId, session: SessionId },
    Kick { account: AccountId, reason: String },
    Close { reason: String },
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

pub(super) async fn run(
    mut core: LobbyCore<SessionLink>,
    mut rx: mpsc::Receiver<LobbyMsg>,
    manager: Arc<LobbyManager>,
    period: Duration,
) {
    let metrics = manager.metrics().clone();
    let mut inputs = InputDrain::new(manager.settings());
    let mut arena = BytesMut::new();
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut info = core.info();
    let mut empty_since: Option<Instant> = None;
    loop {
        tokio::select! {
            biased;
            due = interval.tick() => {
                let started = Instant::now();
                metrics.tick_lateness.observe(started.saturating_duration_since(due.into_std()).as_secs_f64());
                inputs.drain(&mut core, &metrics, started);
                core.tick(now_ms());
                core.snapshots(|link, bytes| {
                    if bytes.len() > link.conn.max_datagram_size().unwrap_or(0) {
                        metrics.snapshots_unsent.inc();
                        return;
                    }
                    // Snapshots are cut from one buffer, so a lobby allocates
                    // about once per 100 snapshots rather than per snapshot.
                    if arena.capacity() < bytes.len() {
                        arena.reserve(ARENA_BYTES.max(bytes.len()));
                    }
                    arena.extend_from_slice(bytes);
                    match link.conn.send_datagram(arena.split().freeze()) {
                        Ok(()) => {
                            metrics.datagrams_out.inc();
                            metrics.bytes_out.inc_by(bytes.len() as u64);
                        }
                        Err(_) => {
                            metrics.snapshots_unsent.inc();
                        }
                    }
                });
                let c = core.take_counters();
                let i = &metrics.inputs;
                i.applied.inc_by(c.inputs_applied);
                i.repeated.inc_by(c.inputs_repeated);
                i.late.inc_by(c.inputs_late);
                i.duplicate.inc_by(c.inputs_duplicate);
                i.ahead.inc_by(c.inputs_ahead);
                i.dropped.inc_by(c.inputs_dropped);
                metrics.snapshots_unsent.inc_by(c.snapshots_oversize);
                metrics.snapshots_delta.inc_by(c.snapshots_delta);
                metrics.snapshots_full.inc_by(c.snapshots_full);
                flush(&mut core, &manager);
                metrics.ticks.inc();
                metrics.tick_duration.observe(started.elapsed().as_secs_f64());
            }
            msg = rx.recv() => {
                let Some(msg) = msg else { break };
                // A join may have been routed here optimistically; publish
                // the true count even when the join failed.
                if matches!(msg, LobbyMsg::Join { .. }) {
                    info.players = u8::MAX;
                }
                handle(&mut core, msg, &manager);
                flush(&mut core, &manager);
            }
        }
        if core.is_empty() && !core.is_closed() {
            let since = *empty_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= EMPTY_TIMEOUT {
                core.close("the lobby was empty");
            }
        } else {
            empty_since = None;
        }
        if core.is_closed() {
            break;
        }
        if !core.info_is(&info) {
            info = core.info();
            manager.update_info(&info);
        }
    }
    manager.remove_lobby(core.id());
    // Messages that raced the close: joiners are told to retry elsewhere.
    rx.close();
    while let Ok(msg) = rx.try_recv() {
        if let LobbyMsg::Join { reply, .. } = msg {
            let _ = reply.send(Err((ErrorCode::LobbyNotFound, "the lobby closed".into())));
        }
    }
    tracing::debug!(lobby = core.id(), "lobby closed");
}

fn handle(core: &mut LobbyCore<SessionLink>, msg: LobbyMsg, manager: &LobbyManager) {
    let now = now_ms();
    match msg {
        LobbyMsg::Join { joiner, link, reply } => {
            let session = link.session;
            let result = core.join(joiner, session, link);
            let _ = reply.send(result);
        }
        LobbyMsg::Chat { player, session, text } => {
            manager.metrics().chat_messages.inc();
            core.chat(player, session, &text);
        }
        LobbyMsg::Vote { player, session, restart } => core.vote(player, session, restart, now),
        LobbyMsg::Leave { player, session } => core.leave(player, session, now),
        LobbyMsg::Disconnect { player, session } => core.disconnect(player, session, now),
        LobbyMsg::Kick { account, reason } => {
            core.kick(account, &reason, now);
        }
        LobbyMsg::Close { reason } => core.close(&reason),
    }
}

fn flush(core: &mut LobbyCore<SessionLink>, manager: &LobbyManager) {
    let lobby = core.id();
    for out in core.outbox() {
        match out {
            Out::Send(link, msg) => {
                if link.events.try_send(ToSession::Control(Box::new(msg))).is_err() {
                    // The client does not read its control stream; it cannot
                    // keep up with the game, so it is disconnected.
                    link.conn.close(2, b"control stream backlog");
                }
            }
            Out::Detach(link) => {
                if link.events.try_send(ToSession::Detached).is_err() {
                    link.conn.close(2, b"control stream backlog");
                }
            }
            Out::AccountJoined(account) => manager.account_joined(account, lobby),
            Out::AccountLeft(account) => manager.account_left(account, lobby),
            Out::MatchStarted => {
                manager.metrics().matches_started.inc();
            }
            Out::MatchFinished(result) => {
                manager.metrics().matches_completed.inc();
                manager.submit_result(*result);
            }
        }
    }
}

/// Takes the players' input datagrams straight from their connections once
/// per tick, so an input wakes no task: QUIC buffers it until the lobby
/// needs it. Per-player rate limits live here, keyed by session so a
/// reconnect starts afresh.
struct InputDrain {
    limiters: Vec<Option<(SessionId, TokenBucket)>>,
    taken: Vec<(PlayerId, SessionId, Bytes)>,
    buf: Vec<Bytes>,
    rate: f64,
    burst: f64,
}

impl InputDrain {
    fn new(settings: &LobbySettings) -> InputDrain {
        InputDrain {
            limiters: (0..MAX_PLAYERS_PER_LOBBY).map(|_| None).collect(),
            taken: Vec::with_capacity(MAX_PLAYERS_PER_LOBBY),
            buf: Vec::with_capacity(MAX_DATAGRAMS_PER_TICK),
            rate: settings.datagram_rate,
            burst: settings.datagram_burst,
        }
    }

    fn drain(&mut self, core: &mut LobbyCore<SessionLink>, metrics: &NodeMetrics, now: Instant) {
        let drops = &metrics.datagrams_dropped;
        for (player, session, link) in core.connected() {
            self.buf.clear();
            link.conn.recv_datagrams(&mut self.buf, MAX_DATAGRAMS_PER_TICK);
            self.taken.extend(self.buf.drain(..).map(|bytes| (player, session, bytes)));
            let overflow = link.conn.take_datagrams_dropped();
            if overflow > 0 {
                drops.queue_full.inc_by(overflow);
            }
        }
        for (player, session, bytes) in self.taken.drain(..) {
            metrics.datagrams_in.inc();
            metrics.bytes_in.inc_by(bytes.len() as u64);
            let limiter = match &mut self.limiters[player as usize] {
                Some((s, l)) if *s == session => l,
                entry => &mut entry.insert((session, TokenBucket::new(self.rate, self.burst, now))).1,
            };
            if !limiter.try_take(now) {
                drops.rate.inc();
                continue;
            }
            if bytes.len() > MAX_INPUT_BYTES {
                drops.size.inc();
                continue;
            }
            match codec::decode::<ClientDatagram>(&bytes, MAX_INPUT_BYTES) {
                Ok(ClientDatagram::Input(packet)) => {
                    core.input(player, session, &packet);
                }
                Err(_) => {
                    drops.malformed.inc();
                }
            }
        }
    }
}
