//! A bot player: the [`Brain`] decides each tick's input from the latest
//! snapshot (pure, testable), and [`run_bot`] plays a whole session over a
//! [`GameClient`] the way a person would: sign in and matchmake through the
//! API, join, move, aim, shoot, vote, leave, and matchmake again after a lost
//! connection or a closed lobby.
//!
//! On the quic-loop transport a playing bot is not a task of its own: its
//! task hands the session to the [`Schedulers`] entry of its driver, one task
//! that wakes every few milliseconds and ticks the bots whose tick is due
//! (each keeps its random phase), then waits for the session's end. The
//! inputs of all bots ticked in one wake-up leave in one driver wake-up, and
//! no received packet wakes anything.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protocol::PlayerId;
use protocol::control::{ClientControl, ErrorCode, ServerControl};
use protocol::datagram::{Buttons, PlayerSnap, Snapshot, angle_to_wire, flags};
use protocol::ticket::JoinTarget;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::{MissedTickBehavior, sleep_until};

use crate::api::{ApiClient, ApiError, Placement, Tokens};
use crate::client::{ClientConfig, ClientError, ClientStats, GameClient};
use crate::drivers::{DriverPool, PooledDriver, SocketCounts};
use crate::report::{IPV4_UDP_HEADER, IPV6_UDP_HEADER};
use crate::stats::{Stats, Traffic};
use crate::ticket::DevTicketMinter;
use crate::tls::{ClientConfigs, EndpointPool, Trust};

/// The eight directions a bot walks in.
pub const HEADINGS: [u8; 8] = [
    Buttons::UP,
    Buttons::UP | Buttons::RIGHT,
    Buttons::RIGHT,
    Buttons::DOWN | Buttons::RIGHT,
    Buttons::DOWN,
    Buttons::DOWN | Buttons::LEFT,
    Buttons::LEFT,
    Buttons::UP | Buttons::LEFT,
];
/// Ticks without moving while walking before the bot assumes a wall.
const STUCK_TICKS: u32 = 4;
/// How often a bot folds its measurements into the shared stats.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Shortest sleep of a scheduler: the bots due within it are ticked
/// together, at most this late, and their inputs leave in one driver wake-up.
const SCHEDULER_GRAIN: Duration = Duration::from_millis(2);
/// Pause before reconnecting after a lost connection.
const RECONNECT_DELAY: Duration = Duration::from_millis(500);
/// An access token with less life left than this is renewed before use, so
/// it cannot expire between the check and the API reading it.
const TOKEN_RENEW_MARGIN: Duration = Duration::from_secs(60);
/// Longest wait drawn for a random event, in means: the exponential tail is
/// long, and one bot silent for an hour says nothing useful.
const MAX_DRAW_MEANS: f64 = 20.0;
/// What bots say in chat.
const CHAT_LINES: [&str; 8] = ["gg", "nice shot", "lag?", "wp", "one more", "where is everyone", "glhf", "close one"];

/// A random wait with the given mean, exponentially distributed (the gap
/// between events that happen independently at a steady rate), capped at
/// [`MAX_DRAW_MEANS`] means.
pub fn exponential_wait(rng: &mut impl Rng, mean: Duration) -> Duration {
    let u: f64 = rng.random();
    mean.mul_f64((-(1.0 - u).ln()).min(MAX_DRAW_MEANS))
}

/// How long a bot plays before leaving under churn: `per_minute` is the
/// share of playing bots that leave each minute, so the mean stay is
/// `60 s / per_minute`. `None` without churn.
pub fn churn_stay(rng: &mut impl Rng, per_minute: f64) -> Option<Duration> {
    (per_minute > 0.0 && per_minute.is_finite())
        .then(|| exponential_wait(rng, Duration::from_secs_f64(60.0 / per_minute)))
}

/// One tick's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub buttons: Buttons,
    pub aim: u16,
    pub target: Option<PlayerId>,
}

/// Wanders in straight lines, turning every one to three seconds or when
/// blocked, and shoots at the nearest living player.
#[derive(Debug, Clone)]
pub struct Brain {
    rng: SmallRng,
    tick_rate: u32,
    heading: u8,
    ticks_to_turn: u32,
    last_pos: Option<(u16, u16)>,
    still_ticks: u32,
    aim: u16,
}

impl Brain {
    pub fn new(seed: u64, tick_rate: u16) -> Brain {
        let mut brain = Brain {
            rng: SmallRng::seed_from_u64(seed),
            tick_rate: tick_rate.max(1) as u32,
            heading: 0,
            ticks_to_turn: 0,
            last_pos: None,
            still_ticks: 0,
            aim: 0,
        };
        brain.turn();
        brain
    }

    fn turn(&mut self) {
        // Now and then stand still, as players do.
        self.heading = if self.rng.random_bool(0.1) { 0 } else { HEADINGS[self.rng.random_range(0..HEADINGS.len())] };
        self.ticks_to_turn = self.rng.random_range(self.tick_rate..=3 * self.tick_rate);
        self.still_ticks = 0;
    }

    /// The input for this tick. `snap` is the newest snapshot (if any) and
    /// `me` the bot's player id in it.
    pub fn decide(&mut self, me: PlayerId, snap: Option<&Snapshot>) -> Decision {
        let mine = snap.and_then(|s| s.players.iter().find(|p| p.id == me));
        let alive = mine.is_some_and(|p| p.flags & flags::ALIVE != 0);

        self.ticks_to_turn = self.ticks_to_turn.saturating_sub(1);
        if let Some(p) = mine.filter(|_| alive) {
            if self.last_pos == Some((p.x, p.y)) && self.heading != 0 {
                self.still_ticks += 1;
            } else {
                self.still_ticks = 0;
            }
            self.last_pos = Some((p.x, p.y));
        }
        if self.ticks_to_turn == 0 || self.still_ticks >= STUCK_TICKS {
            self.turn();
        }

        let target = match (mine, snap) {
            (Some(me), Some(snap)) if alive => nearest_target(me, snap),
            _ => None,
        };
        let mut buttons = Buttons(self.heading);
        match target {
            Some(t) => {
                self.aim = aim_at(mine.map(|p| (p.x, p.y)).unwrap_or_default(), (t.x, t.y));
                // Shots at a spawn-protected player are wasted; aim, but hold fire.
                if t.flags & flags::PROTECTED == 0 {
                    buttons = buttons.with(Buttons::FIRE);
                }
            }
            None if self.heading != 0 => self.aim = aim_at((1, 1), heading_vector(self.heading)),
            None => {}
        }
        Decision { buttons, aim: self.aim, target: target.map(|t| t.id) }
    }
}

/// The nearest other player who is alive and connected.
pub fn nearest_target(me: &PlayerSnap, snap: &Snapshot) -> Option<PlayerSnap> {
    snap.players
        .iter()
        .filter(|p| p.id != me.id && p.flags & flags::ALIVE != 0 && p.flags & flags::AWAY == 0)
        .min_by_key(|p| {
            let dx = p.x as i64 - me.x as i64;
            let dy = p.y as i64 - me.y as i64;
            (dx * dx + dy * dy, p.id)
        })
        .copied()
}

/// The wire aim from one position (subunits) towards another.
pub fn aim_at(from: (u16, u16), to: (u16, u16)) -> u16 {
    let dx = to.0 as f32 - from.0 as f32;
    let dy = to.1 as f32 - from.1 as f32;
    angle_to_wire(dy.atan2(dx))
}

/// A point one step along a heading, from (1, 1) so it stays in `u16`
/// (screen axes: down is +y, as in the movement step).
fn heading_vector(heading: u8) -> (u16, u16) {
    let b = Buttons(heading);
    let x = 1 + b.has(Buttons::RIGHT) as u16 - b.has(Buttons::LEFT) as u16;
    let y = 1 + b.has(Buttons::DOWN) as u16 - b.has(Buttons::UP) as u16;
    (x, y)
}

/// One bot's part in a run.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// The account's username with the API; the player name in direct tickets.
    pub name: String,
    /// Sent in `Hello`.
    pub client_name: String,
    pub target: JoinTarget,
    /// Restart vote cast at match end; `None` abstains.
    pub vote: Option<bool>,
    pub seed: u64,
    /// When to start connecting (spreads joins over the ramp).
    pub start_at: Instant,
    /// When to leave.
    pub stop_at: Instant,
    /// Reconnects allowed after lost connections.
    pub max_reconnects: u32,
    /// Which of the shared endpoints this bot's connections use.
    pub endpoint_slot: usize,
    /// API tokens from signing in before the run, and when they came.
    pub account: Option<(Tokens, Instant)>,
    /// Mean time between a bot's chat messages; `None` never chats.
    pub chat_every: Option<Duration>,
    /// Share of playing bots that leave per minute and come back after
    /// `rejoin_delay` (0: nobody leaves early).
    pub churn_per_minute: f64,
    pub rejoin_delay: Duration,
}

/// How bots get a ticket and where they take it.
#[derive(Debug)]
pub enum Matchmaker {
    /// Through the HTTP API: an account per bot, a placement (node address,
    /// certificate hash, ticket) per join.
    Api {
        api: ApiClient,
        password: String,
        /// Accept any node certificate instead of pinning the placement's hash.
        insecure: bool,
    },
    /// Tickets minted with one node's key, for a node without an API.
    Direct { minter: DevTicketMinter, server: SocketAddr, server_name: String, trust: Trust },
}

/// The bots' sockets and how their connections are driven.
#[derive(Debug, Clone)]
pub enum BotIo {
    /// quinn endpoints (needed for impaired sockets): a task per bot and
    /// quinn's own per-connection tasks.
    Quinn(Arc<EndpointPool>),
    /// quic-loop drivers, with one scheduler task per driver ticking its bots.
    Loop { drivers: Arc<DriverPool>, schedulers: Arc<Schedulers> },
}

/// What every bot of a run shares.
#[derive(Debug, Clone)]
pub struct BotEnv {
    pub matchmaker: Arc<Matchmaker>,
    pub io: BotIo,
    pub quic_configs: Arc<ClientConfigs>,
    /// Bots connect as browsers do (`--transport webtransport`).
    pub webtransport: bool,
    pub stats: Arc<Stats>,
    /// Bounds concurrent joins (account, matchmake, handshake, join).
    pub connect_gate: Arc<Semaphore>,
}

/// Why a session ended.
#[derive(Debug)]
enum SessionEnd {
    Stopped,
    LobbyClosed,
    Kicked,
    /// Left on purpose, to come back later (`--churn`).
    Churned,
    Lost(ClientError),
}

/// Totals across a bot's sessions, for its snapshot rate.
#[derive(Debug, Default)]
struct Playing {
    time: Duration,
    snapshots: u64,
}

/// Plays until `stop_at`, then leaves. Every failure is counted in the
/// shared stats by kind; none is returned.
pub async fn run_bot(cfg: BotConfig, env: BotEnv) {
    if cfg.start_at >= cfg.stop_at {
        env.stats.error("not_started");
        return;
    }
    sleep_until(cfg.start_at.into()).await;
    // One account for the whole run, so a reconnect resumes the held slot.
    let mut account = Account::new(cfg.account.clone());
    let mut joins = 0u32;
    let mut reconnects = 0u32;
    let mut playing = Playing::default();
    // Chat and churn dice, apart from the brain's so either can change
    // without moving the other.
    let mut rng = SmallRng::seed_from_u64(cfg.seed ^ 0xc4a7_c4a7_c4a7_c4a7);
    let mut churned = false;

    while Instant::now() < cfg.stop_at {
        let attempt =
            tokio::time::timeout_at(cfg.stop_at.into(), connect_and_join(&cfg, &env, &mut account, joins == 0));
        let (mut client, driver) = match attempt.await {
            Ok(Ok(joined)) => joined,
            Ok(Err(kind)) => {
                // A rejoin that the end of the run interrupted is no fault.
                if joins == 0 || Instant::now() < cfg.stop_at {
                    env.stats.error(&kind);
                }
                break;
            }
            // Still connecting when the run ended: for a first join the
            // node (or the API) was too slow; a rejoin was merely late, and
            // its own timeouts would have counted a real hang before now.
            Err(_) => {
                if joins == 0 {
                    env.stats.error("timeout");
                }
                break;
            }
        };
        joins += 1;
        if std::mem::take(&mut churned) {
            env.stats.churn_rejoined();
        }

        let seed = cfg.seed.wrapping_add(joins as u64);
        let end = match (&env.io, driver) {
            (BotIo::Loop { schedulers, .. }, Some(driver)) => {
                let (back, end) =
                    play_scheduled(client, &cfg, &env.stats, schedulers, &driver, seed, &mut rng, &mut playing).await;
                match back {
                    Some(back) => client = back,
                    // The scheduler is gone: the run is being torn down.
                    None => break,
                }
                end
            }
            _ => play(&mut client, &cfg, &env, seed, &mut rng, &mut playing).await,
        };
        match end {
            SessionEnd::Stopped => {
                let grace = Duration::from_secs(2);
                let _ = tokio::time::timeout(grace, client.leave()).await;
                client.shutdown(grace).await;
                break;
            }
            SessionEnd::LobbyClosed => {
                // Matchmake again (a fresh placement and ticket) on a fresh
                // connection, as a player would.
                env.stats.lobby_closed();
                client.shutdown(Duration::from_millis(500)).await;
            }
            SessionEnd::Kicked => {
                env.stats.error("kicked");
                client.close();
                break;
            }
            SessionEnd::Churned => {
                // Leave as a player closing the game does, then come back.
                env.stats.churn_left();
                let grace = Duration::from_secs(2);
                let _ = tokio::time::timeout(grace, client.leave()).await;
                client.shutdown(grace).await;
                let back_at = Instant::now() + cfg.rejoin_delay;
                if back_at >= cfg.stop_at {
                    break;
                }
                sleep_until(back_at.into()).await;
                churned = true;
            }
            SessionEnd::Lost(e) => {
                env.stats.error(&e.kind());
                env.stats.disconnected();
                drop(client);
                if reconnects >= cfg.max_reconnects {
                    break;
                }
                reconnects += 1;
                tokio::time::sleep(RECONNECT_DELAY).await;
            }
        }
    }
    env.stats.snapshot_rate(playing.snapshots, playing.time);
}

/// A bot's identity across its sessions: a random account id for direct
/// tickets, or the API account's tokens.
#[derive(Debug)]
struct Account {
    direct_id: uuid::Uuid,
    tokens: Option<(Tokens, Instant)>,
}

impl Account {
    fn new(tokens: Option<(Tokens, Instant)>) -> Account {
        Account { direct_id: uuid::Uuid::new_v4(), tokens }
    }

    /// A usable access token: the current one while it has
    /// [`TOKEN_RENEW_MARGIN`] left, else a refreshed one, else one from
    /// registering or logging in.
    async fn access_token(&mut self, api: &ApiClient, username: &str, password: &str) -> Result<String, ApiError> {
        if let Some((tokens, at)) = &self.tokens {
            let lifetime = Duration::from_secs(tokens.expires_in);
            // Half the lifetime at most, so short-lived tokens are still used.
            if at.elapsed() + TOKEN_RENEW_MARGIN.min(lifetime / 2) < lifetime {
                return Ok(tokens.access_token.clone());
            }
        }
        let refreshed = match self.tokens.take() {
            Some((old, _)) => api.refresh(&old.refresh_token).await.ok(),
            None => None,
        };
        let tokens = match refreshed {
            Some(tokens) => tokens,
            None => api.register_or_login(username, password).await?,
        };
        let token = tokens.access_token.clone();
        self.tokens = Some((tokens, Instant::now()));
        Ok(token)
    }

    /// Forgets the tokens after the API refused them.
    fn forget(&mut self) {
        self.tokens = None;
    }
}

/// Where one join goes: the node, how to trust it and the ticket.
struct Destination {
    server: SocketAddr,
    server_name: String,
    trust: Trust,
    ticket: String,
}

/// Gets a destination, connects and joins, within the connect gate; an error
/// is returned as its kind for counting. Join time runs from the matchmake
/// request (or the ticket mint) to `LobbyJoined`; logging in is not part of it.
async fn connect_and_join(
    cfg: &BotConfig,
    env: &BotEnv,
    account: &mut Account,
    first: bool,
) -> Result<(GameClient, Option<PooledDriver>), String> {
    let _permit = tokio::select! {
        permit = env.connect_gate.acquire() => permit.map_err(|_| "not_started".to_owned())?,
        _ = sleep_until(cfg.stop_at.into()) => return Err("not_started".into()),
    };
    let (started, dest) = match &*env.matchmaker {
        Matchmaker::Direct { minter, server, server_name, trust } => {
            let started = Instant::now();
            let ticket =
                minter.mint(account.direct_id, &cfg.name, cfg.target.clone()).map_err(|_| "ticket".to_owned())?;
            (started, Destination { server: *server, server_name: server_name.clone(), trust: trust.clone(), ticket })
        }
        Matchmaker::Api { api, password, insecure } => {
            let (started, placement) = place(cfg, api, password, account).await.map_err(|e| e.kind())?;
            let server = placement.socket_addr().await.map_err(|e| {
                tracing::debug!(bot = %cfg.name, host = %placement.host, error = %e, "cannot resolve the node");
                "resolve".to_owned()
            })?;
            let trust =
                if *insecure { Trust::Insecure } else { placement.trust().map_err(|_| "cert_hash".to_owned())? };
            (started, Destination { server, server_name: placement.host, trust, ticket: placement.ticket })
        }
    };

    let quic = env.quic_configs.get(&dest.trust).map_err(|_| "tls_config".to_owned())?;
    let client_cfg = ClientConfig {
        server: dest.server,
        server_name: dest.server_name,
        trust: dest.trust,
        client_name: cfg.client_name.clone(),
        webtransport: env.webtransport,
    };
    let (mut client, driver) = match &env.io {
        BotIo::Quinn(endpoints) => {
            let endpoint = endpoints.endpoint_for(dest.server, cfg.endpoint_slot).map_err(|e| {
                tracing::warn!(error = %format!("{e:#}"), "no client endpoint");
                "endpoint".to_owned()
            })?;
            (GameClient::connect_with_config(&endpoint, &client_cfg, quic).await.map_err(|e| e.kind())?, None)
        }
        BotIo::Loop { drivers, .. } => {
            let driver = drivers.driver_for(dest.server, cfg.endpoint_slot).map_err(|e| {
                tracing::warn!(error = %e, "no quic-loop driver");
                "endpoint".to_owned()
            })?;
            let client = GameClient::connect_loop(&driver.handle, &client_cfg, quic).await.map_err(|e| e.kind())?;
            (client, Some(driver))
        }
    };
    client.join(&dest.ticket).await.map_err(|e| e.kind())?;
    env.stats.joined(started.elapsed(), first, client.welcome().tick_rate);
    Ok((client, driver))
}

/// Matchmakes (or asks for the configured lobby) through the API; returns
/// when the request was sent and the placement. Tokens the API refuses
/// (expired, revoked) are renewed once.
async fn place(
    cfg: &BotConfig,
    api: &ApiClient,
    password: &str,
    account: &mut Account,
) -> Result<(Instant, Placement), ApiError> {
    let mut renewed = false;
    loop {
        let token = account.access_token(api, &cfg.name, password).await?;
        let started = Instant::now();
        let placed = match &cfg.target {
            JoinTarget::Mode(mode) => api.matchmake(&token, mode).await,
            JoinTarget::Lobby(id) => api.join_lobby(&token, *id).await,
        };
        match placed {
            Err(e) if e.status() == Some(StatusCode::UNAUTHORIZED) && !renewed => {
                tracing::debug!(bot = %cfg.name, error = %e, "access token refused; signing in again");
                account.forget();
                renewed = true;
            }
            other => return other.map(|p| (started, p)),
        }
    }
}

async fn play(
    client: &mut GameClient,
    cfg: &BotConfig,
    env: &BotEnv,
    seed: u64,
    rng: &mut SmallRng,
    playing: &mut Playing,
) -> SessionEnd {
    let me = client.lobby().map_or(0, |j| j.you);
    let tick_rate = client.welcome().tick_rate.max(1);
    let period = Duration::from_secs(1) / tick_rate as u32;
    let mut brain = Brain::new(seed, tick_rate);
    // A random phase, so thousands of bots do not send in the same millisecond.
    let phase = period.mul_f64(SmallRng::seed_from_u64(seed).random::<f64>());
    let mut ticker = tokio::time::interval_at((Instant::now() + phase).into(), period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);

    let started = Instant::now();
    let base = client.stats();
    let mut meter = Meter::new(client, started);
    let mut last_flush = started;
    let mut snap: Option<Snapshot> = None;
    let mut vote_in_flight = false;
    let mut current_match = client.lobby().map(|j| j.match_id);
    if let Some(id) = current_match {
        env.stats.match_started(id);
    }
    // Chat and churn are checked on the input tick: no timer of their own.
    let mut chat_at = cfg.chat_every.map(|mean| started + exponential_wait(rng, mean));
    let leave_at = churn_stay(rng, cfg.churn_per_minute).map(|stay| started + stay);
    let stop = sleep_until(cfg.stop_at.into());
    tokio::pin!(stop);
    env.stats.playing(1);

    let end = loop {
        tokio::select! {
            _ = &mut stop => break SessionEnd::Stopped,
            event = client.next_event() => match event {
                Ok(event) => match react(&env.stats, cfg.vote, &cfg.name, &mut vote_in_flight, &mut current_match, event) {
                    Reaction::Carry => {}
                    Reaction::End(end) => break end,
                    Reaction::Vote(restart) => {
                        if let Err(e) = client.vote(restart).await {
                            break SessionEnd::Lost(e);
                        }
                        vote_in_flight = true;
                    }
                },
                Err(e) => break SessionEnd::Lost(e),
            },
            _ = ticker.tick() => {
                if let Some(newest) = client.latest_snapshot() {
                    snap = Some(newest);
                }
                let d = brain.decide(me, snap.as_ref());
                if let Err(e) = client.send_input(d.buttons, d.aim) {
                    break SessionEnd::Lost(e);
                }
                let now = Instant::now();
                if leave_at.is_some_and(|at| now >= at) {
                    break SessionEnd::Churned;
                }
                if let Some(at) = chat_at.filter(|at| now >= *at) {
                    let line = CHAT_LINES[rng.random_range(0..CHAT_LINES.len())];
                    if let Err(e) = client.chat(line).await {
                        break SessionEnd::Lost(e);
                    }
                    env.stats.chat_sent();
                    chat_at = cfg.chat_every.map(|mean| at.max(now) + exponential_wait(rng, mean));
                }
                if now - last_flush >= FLUSH_EVERY {
                    meter.flush(client, &env.stats);
                    last_flush = now;
                }
            }
        }
    };

    meter.flush(client, &env.stats);
    env.stats.playing(-1);
    if let (SessionEnd::Stopped, Some(id)) = (&end, current_match) {
        env.stats.match_open_at_stop(id);
    }
    playing.time += started.elapsed();
    playing.snapshots += client.stats().snapshots_received - base.snapshots_received;
    end
}

/// What a session's connection did up to the last flush, so each flush
/// moves only the difference into the shared stats.
struct Meter {
    client: ClientStats,
    /// quinn's per-connection UDP counters; quic-loop has none, and its
    /// scheduler counts each driver's socket instead.
    udp: Option<quinn::ConnectionStats>,
    at: Instant,
    /// Newest snapshot tick at the last flush, once one arrived.
    tick: Option<u32>,
    /// UDP plus IP header bytes per datagram on this path.
    header: u64,
}

impl Meter {
    fn new(client: &GameClient, at: Instant) -> Meter {
        let header = udp_header(client.remote_address());
        let udp = client.quinn_connection().map(quinn::Connection::stats);
        Meter { client: client.stats(), udp, at, tick: client.newest_tick(), header }
    }

    /// Moves the client's new counters and round trips into the shared stats.
    fn flush(&mut self, client: &mut GameClient, shared: &Stats) {
        shared.rtts(&client.take_rtt_samples());
        let now = Instant::now();
        let stats = client.stats();
        let udp = client.quinn_connection().map(quinn::Connection::stats);
        let tick = client.newest_tick();
        let snapshots = stats.snapshots_received - self.client.snapshots_received;
        let (ticks_expected, ticks_received) = match (self.tick, tick) {
            (Some(before), Some(after)) => (after.wrapping_sub(before) as u64, snapshots),
            // No baseline yet: the first snapshot starts the count.
            _ => (0, 0),
        };
        let socket = match (&self.udp, &udp) {
            (Some(before), Some(after)) => SocketCounts {
                bytes_out: after.udp_tx.bytes - before.udp_tx.bytes,
                bytes_in: after.udp_rx.bytes - before.udp_rx.bytes,
                packets_out: after.udp_tx.datagrams - before.udp_tx.datagrams,
                packets_in: after.udp_rx.datagrams - before.udp_rx.datagrams,
            },
            _ => SocketCounts::default(),
        };
        shared.traffic(&Traffic {
            inputs: stats.inputs_sent - self.client.inputs_sent,
            snapshots,
            joined: now - self.at,
            ticks_expected,
            ticks_received,
            ..wire_traffic(socket, self.header)
        });
        *self = Meter { client: stats, udp, at: now, tick: tick.or(self.tick), header: self.header };
    }
}

/// UDP plus IP header bytes per datagram towards `remote`.
fn udp_header(remote: SocketAddr) -> u64 {
    if remote.is_ipv4() { IPV4_UDP_HEADER } else { IPV6_UDP_HEADER }
}

/// Socket counts as wire traffic (headers included).
fn wire_traffic(c: SocketCounts, header: u64) -> Traffic {
    Traffic {
        bytes_up: c.bytes_out + c.packets_out * header,
        bytes_down: c.bytes_in + c.packets_in * header,
        datagrams_up: c.packets_out,
        datagrams_down: c.packets_in,
        ..Traffic::default()
    }
}

/// What a bot does about a control event while playing.
enum Reaction {
    Carry,
    End(SessionEnd),
    /// Cast this restart vote (the match ended).
    Vote(bool),
}

fn react(
    stats: &Stats,
    vote: Option<bool>,
    name: &str,
    vote_in_flight: &mut bool,
    current_match: &mut Option<uuid::Uuid>,
    event: ServerControl,
) -> Reaction {
    match event {
        ServerControl::MatchStarted { match_id, .. } => {
            stats.match_started(match_id);
            *current_match = Some(match_id);
            Reaction::Carry
        }
        ServerControl::MatchEnded(ended) => {
            stats.match_ended(ended.match_id);
            *current_match = None;
            vote.map_or(Reaction::Carry, Reaction::Vote)
        }
        ServerControl::LobbyClosed { reason } => {
            tracing::debug!(bot = %name, %reason, "lobby closed");
            Reaction::End(SessionEnd::LobbyClosed)
        }
        // The node settles a vote as soon as the outcome is certain, so a
        // vote sent at match end can arrive after it closed (even after the
        // next MatchStarted): not a fault.
        ServerControl::Error { code: ErrorCode::NoVoteOpen, .. } if *vote_in_flight => {
            *vote_in_flight = false;
            Reaction::Carry
        }
        ServerControl::Kicked { reason } => {
            tracing::debug!(bot = %name, %reason, "kicked");
            Reaction::End(SessionEnd::Kicked)
        }
        ServerControl::Error { code, message } => {
            tracing::debug!(bot = %name, %code, %message, "node error while playing");
            stats.error(&format!("server:{code}"));
            Reaction::Carry
        }
        _ => Reaction::Carry,
    }
}

/// Plays one session on the scheduler of `driver`; returns the client (None
/// if the scheduler is gone, which happens only while the run is torn down)
/// and why the session ended.
#[allow(clippy::too_many_arguments)]
async fn play_scheduled(
    client: GameClient,
    cfg: &BotConfig,
    stats: &Arc<Stats>,
    schedulers: &Schedulers,
    driver: &PooledDriver,
    seed: u64,
    rng: &mut SmallRng,
    playing: &mut Playing,
) -> (Option<GameClient>, SessionEnd) {
    let (reply, done) = oneshot::channel();
    let seat = Seat::new(client, cfg, stats, seed, rng.clone(), reply);
    schedulers.seat(driver, seat);
    match done.await {
        Ok(done) => {
            *rng = done.rng;
            playing.time += done.time;
            playing.snapshots += done.snapshots;
            (Some(done.client), done.end)
        }
        Err(_) => (None, SessionEnd::Stopped),
    }
}

/// What a scheduler hands back when a session ends.
struct SeatDone {
    client: GameClient,
    end: SessionEnd,
    /// The bot's chat and churn dice, moved on.
    rng: SmallRng,
    time: Duration,
    snapshots: u64,
}

/// A playing bot as a scheduler holds it: what [`play`] keeps on its stack.
struct Seat {
    client: GameClient,
    name: String,
    vote: Option<bool>,
    stop_at: Instant,
    chat_every: Option<Duration>,
    me: PlayerId,
    brain: Brain,
    period: Duration,
    /// When the next tick is due.
    due: Instant,
    snap: Option<Snapshot>,
    vote_in_flight: bool,
    current_match: Option<uuid::Uuid>,
    chat_at: Option<Instant>,
    leave_at: Option<Instant>,
    started: Instant,
    base_snapshots: u64,
    meter: Meter,
    last_flush: Instant,
    rng: SmallRng,
    reply: oneshot::Sender<SeatDone>,
}

impl Seat {
    /// Does what [`play`] does before its loop.
    fn new(
        client: GameClient,
        cfg: &BotConfig,
        stats: &Stats,
        seed: u64,
        mut rng: SmallRng,
        reply: oneshot::Sender<SeatDone>,
    ) -> Seat {
        let me = client.lobby().map_or(0, |j| j.you);
        let tick_rate = client.welcome().tick_rate.max(1);
        let period = Duration::from_secs(1) / tick_rate as u32;
        // A random phase, so thousands of bots do not send in the same millisecond.
        let phase = period.mul_f64(SmallRng::seed_from_u64(seed).random::<f64>());
        let started = Instant::now();
        let current_match = client.lobby().map(|j| j.match_id);
        if let Some(id) = current_match {
            stats.match_started(id);
        }
        let chat_at = cfg.chat_every.map(|mean| started + exponential_wait(&mut rng, mean));
        let leave_at = churn_stay(&mut rng, cfg.churn_per_minute).map(|stay| started + stay);
        stats.playing(1);
        Seat {
            base_snapshots: client.stats().snapshots_received,
            meter: Meter::new(&client, started),
            client,
            name: cfg.name.clone(),
            vote: cfg.vote,
            stop_at: cfg.stop_at,
            chat_every: cfg.chat_every,
            me,
            brain: Brain::new(seed, tick_rate),
            period,
            due: started + phase,
            snap: None,
            vote_in_flight: false,
            current_match,
            chat_at,
            leave_at,
            started,
            last_flush: started,
            rng,
            reply,
        }
    }

    /// One input tick (the body of [`play`]'s loop, events included: they
    /// wait for the bot's next tick instead of waking anything). Returns why
    /// the session ended, if it did; else `due` is the next tick.
    fn tick(&mut self, now: Instant, stats: &Stats) -> Option<SessionEnd> {
        if now >= self.stop_at {
            return Some(SessionEnd::Stopped);
        }
        for event in self.client.events_pending() {
            let reaction =
                react(stats, self.vote, &self.name, &mut self.vote_in_flight, &mut self.current_match, event);
            match reaction {
                Reaction::Carry => {}
                Reaction::End(end) => return Some(end),
                Reaction::Vote(restart) => {
                    if let Err(e) = self.client.send_control_now(&ClientControl::Vote { restart }) {
                        return Some(SessionEnd::Lost(e));
                    }
                    self.vote_in_flight = true;
                }
            }
        }
        if let Some(e) = self.client.closed_reason() {
            return Some(SessionEnd::Lost(e));
        }
        if let Some(newest) = self.client.latest_snapshot() {
            self.snap = Some(newest);
        }
        let d = self.brain.decide(self.me, self.snap.as_ref());
        if let Err(e) = self.client.send_input(d.buttons, d.aim) {
            return Some(SessionEnd::Lost(e));
        }
        if self.leave_at.is_some_and(|at| now >= at) {
            return Some(SessionEnd::Churned);
        }
        if let Some(at) = self.chat_at.filter(|at| now >= *at) {
            let text = CHAT_LINES[self.rng.random_range(0..CHAT_LINES.len())].to_owned();
            if let Err(e) = self.client.send_control_now(&ClientControl::Chat { text }) {
                return Some(SessionEnd::Lost(e));
            }
            stats.chat_sent();
            self.chat_at = self.chat_every.map(|mean| at.max(now) + exponential_wait(&mut self.rng, mean));
        }
        if now - self.last_flush >= FLUSH_EVERY {
            self.meter.flush(&mut self.client, stats);
            self.last_flush = now;
        }
        self.due = next_input_due(self.due, self.client.newest_snapshot_at(), now, self.period);
        None
    }

    /// Does what [`play`] does after its loop, and hands the client back.
    fn finish(mut self, end: SessionEnd, stats: &Stats) {
        self.meter.flush(&mut self.client, stats);
        stats.playing(-1);
        if let (SessionEnd::Stopped, Some(id)) = (&end, self.current_match) {
            stats.match_open_at_stop(id);
        }
        let done = SeatDone {
            snapshots: self.client.stats().snapshots_received - self.base_snapshots,
            time: self.started.elapsed(),
            client: self.client,
            end,
            rng: self.rng,
        };
        // A bot cut off at the hard deadline no longer listens; dropping
        // the client closes its connection.
        let _ = self.reply.send(done);
    }
}

/// How long after a snapshot arrives the bot sends its next input. Each
/// QUIC side acknowledges a packet within 25 ms, in a packet of its own if
/// it has nothing else to send; an input sent inside that window carries
/// the acknowledgement of the snapshot, and reaches the node ahead of its
/// next tick (the way shooter clients time inputs to the server's tick).
const INPUT_AFTER_SNAPSHOT: Duration = Duration::from_millis(20);

/// When the next input is due: a fixed time after the newest snapshot's
/// arrival, a tick period apart, at least half a period from now; before
/// any snapshot, the bot's own phase (missed ticks skipped).
fn next_input_due(due: Instant, snapshot_at: Option<Instant>, now: Instant, period: Duration) -> Instant {
    let mut next = match snapshot_at {
        Some(at) => at + INPUT_AFTER_SNAPSHOT,
        None => due,
    };
    let earliest = if snapshot_at.is_some() { now + period / 2 } else { now + Duration::from_nanos(1) };
    while next < earliest {
        next += period;
    }
    next
}

/// One scheduler task per quic-loop driver, started with its first bot.
#[derive(Debug)]
pub struct Schedulers {
    stats: Arc<Stats>,
    running: Mutex<HashMap<usize, Scheduler>>,
}

/// A running scheduler: where its new seats go, and its task.
type Scheduler = (mpsc::UnboundedSender<Seat>, JoinHandle<()>);

impl std::fmt::Debug for Seat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seat").field("name", &self.name).field("due", &self.due).finish_non_exhaustive()
    }
}

impl Schedulers {
    pub fn new(stats: Arc<Stats>) -> Schedulers {
        Schedulers { stats, running: Mutex::new(HashMap::new()) }
    }

    fn seat(&self, driver: &PooledDriver, seat: Seat) {
        let mut running = self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (tx, _) = running.entry(driver.id).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            (tx, tokio::spawn(schedule(rx, driver.clone(), self.stats.clone())))
        });
        if let Err(mpsc::error::SendError(seat)) = tx.send(seat) {
            // Closed already: the seat's reply drops, and its bot stops.
            drop(seat);
        }
    }

    /// Lets every scheduler end once its bots have, and waits for them:
    /// call when no bot will start another session.
    pub async fn finish(&self) {
        let running = std::mem::take(&mut *self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        for (tx, task) in running.into_values() {
            drop(tx);
            let _ = task.await;
        }
    }
}

/// Ticks the bots of one driver, each at its own phase, and once a second
/// counts the driver's socket traffic (quic-loop keeps no per-connection
/// UDP counters).
async fn schedule(mut arrivals: mpsc::UnboundedReceiver<Seat>, driver: PooledDriver, stats: Arc<Stats>) {
    let mut seats: Vec<Option<Seat>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut due: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::new();
    let header = udp_header(driver.handle.local_addr());
    let mut counted = driver.counts();
    let mut next_count = Instant::now() + FLUSH_EVERY;
    let mut last_wake = Instant::now();
    let mut open = true;
    loop {
        let next = due.peek().map_or(next_count, |Reverse((at, _))| (*at).min(next_count));
        let wake = next.max(last_wake + SCHEDULER_GRAIN);
        tokio::select! {
            seat = arrivals.recv(), if open => match seat {
                Some(seat) => {
                    let key = free.pop().unwrap_or_else(|| {
                        seats.push(None);
                        seats.len() - 1
                    });
                    due.push(Reverse((seat.due, key)));
                    seats[key] = Some(seat);
                }
                None => open = false,
            },
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
        let now = Instant::now();
        last_wake = now;
        while let Some(&Reverse((at, key))) = due.peek() {
            if at > now {
                break;
            }
            due.pop();
            let Some(seat) = seats[key].as_mut() else { continue };
            match seat.tick(now, &stats) {
                None => due.push(Reverse((seat.due, key))),
                Some(end) => {
                    if let Some(seat) = seats[key].take() {
                        seat.finish(end, &stats);
                    }
                    free.push(key);
                }
            }
        }
        let idle = !open && due.is_empty();
        if now >= next_count || idle {
            let counts = driver.counts();
            let delta = SocketCounts {
                bytes_out: counts.bytes_out - counted.bytes_out,
                bytes_in: counts.bytes_in - counted.bytes_in,
                packets_out: counts.packets_out - counted.packets_out,
                packets_in: counts.packets_in - counted.packets_in,
            };
            stats.traffic(&wire_traffic(delta, header));
            counted = counts;
            next_count = now + FLUSH_EVERY;
        }
        if idle {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn inputs_follow_snapshot_arrivals_and_keep_the_phase_without_them() {
        use std::time::{Duration, Instant};
        let p = Duration::from_millis(50);
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        // The input for the snapshot of 100 went out at 118: the next is due
        // 20 ms after the next snapshot (expected at 150).
        assert_eq!(super::next_input_due(ms(0), Some(ms(100)), ms(118), p), ms(170));
        // An input went out at 101: the next keeps half a period away.
        assert_eq!(super::next_input_due(ms(0), Some(ms(100)), ms(101), p), ms(170));
        assert_eq!(super::next_input_due(ms(0), Some(ms(60)), ms(90), p), ms(130));
        // Snapshots stopped: keep stepping a period after the last arrival.
        assert_eq!(super::next_input_due(ms(0), Some(ms(100)), ms(300), p), ms(370));
        // None yet: the bot's own phase, missed ticks skipped.
        assert_eq!(super::next_input_due(ms(10), None, ms(10), p), ms(60));
        assert_eq!(super::next_input_due(ms(10), None, ms(125), p), ms(160));
    }

    use super::*;
    use protocol::datagram::wire_to_angle;

    fn player(id: PlayerId, x: u16, y: u16, flags: u8) -> PlayerSnap {
        PlayerSnap { id, x, y, aim: 0, health: 100, flags }
    }

    fn close_to(aim: u16, radians: f32) -> bool {
        let d = (wire_to_angle(aim) - radians).rem_euclid(std::f32::consts::TAU);
        d.min(std::f32::consts::TAU - d) < 0.001
    }

    #[test]
    fn aims_along_the_wire_convention() {
        use std::f32::consts::{FRAC_PI_2, PI};
        assert_eq!(aim_at((100, 100), (200, 100)), 0);
        assert!(close_to(aim_at((100, 100), (100, 200)), FRAC_PI_2), "+y is a quarter turn");
        assert!(close_to(aim_at((100, 100), (0, 100)), PI));
        assert!(close_to(aim_at((100, 100), (100, 0)), 3.0 * FRAC_PI_2));
        assert!(close_to(aim_at((0, 0), (10, 10)), PI / 4.0));
    }

    #[test]
    fn targets_the_nearest_living_connected_other_player() {
        let alive = flags::ALIVE;
        let me = player(0, 1000, 1000, alive);
        let snap = Snapshot {
            tick: 5,
            ack_seq: 0,
            players: vec![
                me,
                player(1, 1100, 1000, 0),                   // dead
                player(2, 1000, 1050, alive | flags::AWAY), // disconnected
                player(3, 1000, 1300, alive),
                player(4, 800, 1000, alive),
            ],
        };
        assert_eq!(nearest_target(&me, &snap).map(|p| p.id), Some(4));
        let alone = Snapshot { tick: 5, ack_seq: 0, players: vec![me] };
        assert_eq!(nearest_target(&me, &alone), None);
    }

    #[test]
    fn fires_at_a_target_and_holds_fire_otherwise() {
        let alive = flags::ALIVE;
        let mut brain = Brain::new(7, 20);
        let snap =
            Snapshot { tick: 1, ack_seq: 0, players: vec![player(0, 1000, 1000, alive), player(1, 1000, 2000, alive)] };
        let d = brain.decide(0, Some(&snap));
        assert_eq!(d.target, Some(1));
        assert!(d.buttons.has(Buttons::FIRE));
        assert!(close_to(d.aim, std::f32::consts::FRAC_PI_2));

        let protected = Snapshot {
            players: vec![player(0, 1000, 1000, alive), player(1, 1000, 2000, alive | flags::PROTECTED)],
            ..snap.clone()
        };
        let d = brain.decide(0, Some(&protected));
        assert_eq!(d.target, Some(1));
        assert!(!d.buttons.has(Buttons::FIRE));

        let dead = Snapshot { players: vec![player(0, 1000, 1000, 0), player(1, 1000, 2000, alive)], ..snap };
        let d = brain.decide(0, Some(&dead));
        assert_eq!((d.target, d.buttons.has(Buttons::FIRE)), (None, false));
        assert!(!brain.decide(0, None).buttons.has(Buttons::FIRE));
    }

    #[test]
    fn random_waits_have_their_mean_and_a_cap() {
        let mut rng = SmallRng::seed_from_u64(3);
        let mean = Duration::from_secs(60);
        let waits: Vec<f64> = (0..20_000).map(|_| exponential_wait(&mut rng, mean).as_secs_f64()).collect();
        let avg = waits.iter().sum::<f64>() / waits.len() as f64;
        assert!((avg - 60.0).abs() < 2.0, "mean {avg}");
        assert!(waits.iter().all(|&w| (0.0..=60.0 * MAX_DRAW_MEANS).contains(&w)));
        // Memoryless: about e^-1 of the waits exceed the mean.
        let over = waits.iter().filter(|&&w| w > 60.0).count() as f64 / waits.len() as f64;
        assert!((over - (-1.0f64).exp()).abs() < 0.02, "{over}");

        // 30 % churn a minute: a mean stay of 200 s; none without churn.
        let stays: Vec<f64> = (0..20_000).map(|_| churn_stay(&mut rng, 0.3).unwrap().as_secs_f64()).collect();
        let avg = stays.iter().sum::<f64>() / stays.len() as f64;
        assert!((avg - 200.0).abs() < 7.0, "mean stay {avg}");
        assert_eq!(churn_stay(&mut rng, 0.0), None);
        assert_eq!(churn_stay(&mut rng, f64::NAN), None);
    }

    #[test]
    fn wanders_and_turns_when_blocked() {
        let mut brain = Brain::new(1, 20);
        let mut headings = std::collections::HashSet::new();
        for _ in 0..2000 {
            headings.insert(brain.decide(0, None).buttons.0 & !Buttons::FIRE);
        }
        assert!(headings.len() >= 6, "changes direction over time: {headings:?}");

        // Standing against a wall: the position stops changing while walking.
        let mut brain = Brain::new(2, 20);
        let snap = Snapshot { tick: 1, ack_seq: 0, players: vec![player(0, 500, 500, flags::ALIVE)] };
        let mut changes = 0;
        let mut last = brain.decide(0, Some(&snap)).buttons;
        for _ in 0..3 * STUCK_TICKS {
            let b = brain.decide(0, Some(&snap)).buttons;
            changes += (b != last) as u32;
            last = b;
        }
        assert!(changes >= 1, "a stuck bot picks another direction");
    }
}
