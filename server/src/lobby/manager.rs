//! The node's lobby registry: find-or-create per mode, lobby lookup, the
//! lobby info list, capacity limits and which account sits in which lobby
//! (so a reconnecting player resumes their slot).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::control::{ErrorCode, LobbyInfo, LobbyState};
use protocol::map::Map;
use protocol::results::MatchResult;
use protocol::ticket::{JoinClaims, JoinTarget};
use protocol::{AccountId, LobbyId};
use tokio::sync::{mpsc, oneshot};

use super::core::{Joined, Joiner, LobbyConfig, LobbyCore};
use super::task::{self, LobbyMsg, SessionLink};
use crate::metrics::NodeMetrics;
use crate::results::MatchResultSink;
use crate::tickets::Refusal;

/// Messages a lobby's queue holds before inputs are dropped.
const LOBBY_QUEUE: usize = 512;
/// Attempts to place a player when lobbies fill or close under them.
const JOIN_ATTEMPTS: usize = 8;

/// What every lobby on this node is made from.
#[derive(Clone)]
pub struct LobbySettings {
    /// Game modes this node serves; each lobby is of one mode.
    pub modes: Vec<String>,
    pub max_lobbies: usize,
    pub map: Arc<Map>,
    /// Template for each lobby (its `mode` is set per lobby).
    pub lobby: LobbyConfig,
    /// Datagrams per second, and the burst, accepted from one player.
    pub datagram_rate: f64,
    pub datagram_burst: f64,
}

/// A routed player's way into their lobby.
#[derive(Clone, Debug)]
pub struct LobbyHandle {
    pub id: LobbyId,
    pub tx: mpsc::Sender<LobbyMsg>,
}

struct Entry {
    info: LobbyInfo,
    tx: mpsc::Sender<LobbyMsg>,
}

#[derive(Default)]
struct Registry {
    lobbies: HashMap<LobbyId, Entry>,
    /// Creation order, for "fill the first lobby with an open slot".
    order: Vec<LobbyId>,
    accounts: HashMap<AccountId, LobbyId>,
    draining: bool,
}

pub struct LobbyManager {
    settings: LobbySettings,
    registry: Mutex<Registry>,
    metrics: NodeMetrics,
    sink: Arc<dyn MatchResultSink>,
}

enum Route {
    Existing(LobbyHandle),
    Create(LobbyId),
}

impl LobbyManager {
    pub fn new(settings: LobbySettings, metrics: NodeMetrics, sink: Arc<dyn MatchResultSink>) -> Arc<LobbyManager> {
        Arc::new(LobbyManager { settings, registry: Mutex::new(Registry::default()), metrics, sink })
    }

    pub fn metrics(&self) -> &NodeMetrics {
        &self.metrics
    }

    pub fn settings(&self) -> &LobbySettings {
        &self.settings
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lobby info list for the lobby browser, optionally of one mode, in
    /// creation order.
    pub fn list(&self, mode: Option<&str>) -> Vec<LobbyInfo> {
        let r = self.registry();
        r.order
            .iter()
            .filter_map(|id| r.lobbies.get(id))
            .filter(|e| mode.is_none_or(|m| e.info.mode == m))
            .map(|e| e.info.clone())
            .collect()
    }

    pub fn get(&self, id: LobbyId) -> Option<LobbyInfo> {
        self.registry().lobbies.get(&id).map(|e| e.info.clone())
    }

    pub fn lobby_count(&self) -> usize {
        self.registry().lobbies.len()
    }

    /// Accounts holding a slot anywhere on this node.
    pub fn account_count(&self) -> usize {
        self.registry().accounts.len()
    }

    /// Places the ticket's player in a lobby: the lobby where their account
    /// already holds a slot (resume), the requested lobby, or the first open
    /// lobby of the requested mode, creating one if none has room.
    pub async fn join(
        self: &Arc<Self>,
        claims: &JoinClaims,
        link: SessionLink,
    ) -> Result<(LobbyHandle, Joined), Refusal> {
        let mut last = Refusal { code: ErrorCode::NodeAtCapacity, message: "no lobby could take the player".into() };
        for _ in 0..JOIN_ATTEMPTS {
            let handle = match self.route(claims)? {
                Route::Existing(h) => h,
                Route::Create(id) => self.spawn_lobby(id, claims)?,
            };
            let (reply, answer) = oneshot::channel();
            let joiner = Joiner { account: claims.sub, name: claims.name.clone(), cosmetics: claims.cosmetics.clone() };
            if handle.tx.send(LobbyMsg::Join { joiner, link: link.clone(), reply }).await.is_err() {
                continue;
            }
            match answer.await {
                Ok(Ok(joined)) => return Ok((handle, joined)),
                Ok(Err((code, message))) => {
                    let retry = matches!(code, ErrorCode::LobbyFull | ErrorCode::LobbyNotFound)
                        && matches!(claims.target, JoinTarget::Mode(_));
                    if !retry {
                        return Err(Refusal { code, message });
                    }
                    last = Refusal { code, message };
                }
                Err(_) => continue,
            }
            tokio::task::yield_now().await;
        }
        Err(last)
    }

    fn route(&self, claims: &JoinClaims) -> Result<Route, Refusal> {
        let mut r = self.registry();
        if r.draining {
            return Err(Refusal { code: ErrorCode::ShuttingDown, message: "the node is shutting down".into() });
        }
        if let Some(id) = r.accounts.get(&claims.sub).copied()
            && let Some(e) = r.lobbies.get(&id)
        {
            return Ok(Route::Existing(LobbyHandle { id, tx: e.tx.clone() }));
        }
        match &claims.target {
            JoinTarget::Lobby(id) => {
                let e = r.lobbies.get(id).ok_or_else(|| Refusal {
                    code: ErrorCode::LobbyNotFound,
                    message: format!("lobby {id} does not exist on this node"),
                })?;
                Ok(Route::Existing(LobbyHandle { id: *id, tx: e.tx.clone() }))
            }
            JoinTarget::Mode(mode) => {
                if !self.settings.modes.iter().any(|m| m == mode) {
                    return Err(Refusal {
                        code: ErrorCode::UnknownMode,
                        message: format!("unknown game mode {mode:?}; this node serves {:?}", self.settings.modes),
                    });
                }
                let reg = &mut *r;
                let open = reg.order.iter().copied().find(|id| {
                    reg.lobbies.get(id).is_some_and(|e| {
                        e.info.mode == *mode
                            && e.info.state == LobbyState::Playing
                            && e.info.players < e.info.max_players
                    })
                });
                if let Some(id) = open {
                    let e = reg.lobbies.get_mut(&id).expect("found above");
                    // Count the joiner now so a burst of joins spreads over
                    // lobbies instead of piling onto one; the lobby task
                    // overwrites this with the true count.
                    e.info.players += 1;
                    return Ok(Route::Existing(LobbyHandle { id, tx: e.tx.clone() }));
                }
                if reg.lobbies.len() >= self.settings.max_lobbies {
                    return Err(Refusal {
                        code: ErrorCode::NodeAtCapacity,
                        message: format!("node at capacity: all {} lobbies are full", self.settings.max_lobbies),
                    });
                }
                let mut id = new_lobby_id();
                while reg.lobbies.contains_key(&id) {
                    id = new_lobby_id();
                }
                Ok(Route::Create(id))
            }
        }
    }

    fn spawn_lobby(self: &Arc<Self>, id: LobbyId, claims: &JoinClaims) -> Result<LobbyHandle, Refusal> {
        let JoinTarget::Mode(mode) = &claims.target else { unreachable!("only mode targets create lobbies") };
        let mut cfg = self.settings.lobby.clone();
        cfg.mode = mode.clone();
        let period = Duration::from_secs_f64(1.0 / cfg.tick_rate as f64);
        let core = LobbyCore::new(id, cfg, self.settings.map.clone(), rand::random(), now_ms());
        let mut info = core.info();
        info.players = 1;
        let (tx, rx) = mpsc::channel(LOBBY_QUEUE);
        {
            let mut r = self.registry();
            if r.lobbies.len() >= self.settings.max_lobbies {
                return Err(Refusal {
                    code: ErrorCode::NodeAtCapacity,
                    message: format!("node at capacity: all {} lobbies are full", self.settings.max_lobbies),
                });
            }
            r.lobbies.insert(id, Entry { info, tx: tx.clone() });
            r.order.push(id);
            self.metrics.lobbies.set(r.lobbies.len() as i64);
        }
        self.metrics.matches_started.inc();
        tokio::spawn(task::run(core, rx, self.clone(), period));
        tracing::debug!(lobby = id, mode = %mode, "lobby created");
        Ok(LobbyHandle { id, tx })
    }

    pub(super) fn update_info(&self, info: &LobbyInfo) {
        if let Some(e) = self.registry().lobbies.get_mut(&info.id) {
            e.info = info.clone();
        }
    }

    pub(super) fn remove_lobby(&self, id: LobbyId) {
        let mut r = self.registry();
        r.lobbies.remove(&id);
        r.order.retain(|l| *l != id);
        let before = r.accounts.len();
        r.accounts.retain(|_, l| *l != id);
        let removed = before - r.accounts.len();
        self.metrics.players.dec_by(removed as i64);
        self.metrics.lobbies.set(r.lobbies.len() as i64);
    }

    pub(super) fn account_joined(&self, account: AccountId, lobby: LobbyId) {
        if self.registry().accounts.insert(account, lobby).is_none() {
            self.metrics.players.inc();
        }
    }

    pub(super) fn account_left(&self, account: AccountId, lobby: LobbyId) {
        let mut r = self.registry();
        if r.accounts.get(&account) == Some(&lobby) {
            r.accounts.remove(&account);
            self.metrics.players.dec();
        }
    }

    pub(super) fn submit_result(&self, result: MatchResult) {
        self.sink.submit(result);
    }

    /// Sends a message to the lobby holding `account`, if any (admin kick).
    pub fn kick(&self, account: AccountId, reason: &str) -> bool {
        let r = self.registry();
        let Some(e) = r.accounts.get(&account).and_then(|l| r.lobbies.get(l)) else { return false };
        e.tx.try_send(LobbyMsg::Kick { account, reason: reason.into() }).is_ok()
    }

    /// Stops placing players and closes every lobby.
    pub async fn drain(&self, reason: &str) {
        let senders: Vec<_> = {
            let mut r = self.registry();
            r.draining = true;
            r.lobbies.values().map(|e| e.tx.clone()).collect()
        };
        for tx in senders {
            let _ = tx.send(LobbyMsg::Close { reason: reason.into() }).await;
        }
    }

    pub fn is_draining(&self) -> bool {
        self.registry().draining
    }
}

/// Ids fit in 53 bits so they are exact as JSON numbers, and are random so
/// they do not collide across nodes or reveal lobby counts.
fn new_lobby_id() -> LobbyId {
    rand::random::<u64>() & ((1 << 53) - 1) | 1
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
