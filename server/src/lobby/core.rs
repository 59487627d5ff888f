//! One lobby as a pure state machine: players and their slots, the
//! simulation, the match, the restart vote, chat and reconnect grace.
//!
//! No IO and no clock: the lobby task feeds it messages and ticks (with the
//! wall-clock time only for match timestamps) and carries out what it leaves
//! in its outbox. `L` is the task's handle to a player's connection.

use std::sync::Arc;

use protocol::codec;
use protocol::control::{
    Cosmetics, ErrorCode, LobbyInfo, LobbyJoined, LobbyState, MatchEnded, RosterEntry, ScoreLine, ServerControl,
    VoteState,
};
use protocol::datagram::{
    DeltaSnapshot, InputFrame, InputPacket, MAX_SNAPSHOT_BYTES, PlayerSnap, ServerDatagram, Snapshot,
};
use protocol::delta::{self, History, PlayerDelta};
use protocol::map::Map;
use protocol::results::{MatchResult, PlayerResult};
use protocol::{AccountId, LobbyId, MAX_PLAYERS_PER_LOBBY, PlayerId};

use super::input_queue::{InputQueue, PushOutcome};

use crate::sim::{SimConfig, SimEvent, World};

/// Identifies one connection's session, so messages from a connection that
/// was replaced (reconnect) are ignored.
pub type SessionId = u64;

#[derive(Debug, Clone)]
pub struct ChatConfig {
    pub enabled: bool,
    pub max_chars: usize,
    /// Messages a player may send in a burst, and ticks to earn one more.
    pub burst: u32,
    pub refill_ticks: u32,
}

#[derive(Debug, Clone)]
pub struct LobbyConfig {
    pub node_id: String,
    pub mode: String,
    pub map_name: String,
    pub max_players: u8,
    pub tick_rate: u16,
    pub vote_ticks: u32,
    pub grace_ticks: u32,
    pub chat: ChatConfig,
    pub sim: SimConfig,
}

/// Who is joining, from the verified ticket.
#[derive(Debug, Clone)]
pub struct Joiner {
    pub account: AccountId,
    pub name: String,
    pub cosmetics: Cosmetics,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Joined {
    pub player: PlayerId,
    pub resumed: bool,
}

/// What the lobby asks its task to do.
#[derive(Debug)]
pub enum Out<L> {
    /// Send a control message to one player's connection.
    Send(L, ServerControl),
    /// The connection no longer belongs to this lobby (after a final
    /// `LobbyClosed` or `Kicked` message, or a replaced session).
    Detach(L),
    /// An account now holds a slot here, or no longer does.
    AccountJoined(AccountId),
    AccountLeft(AccountId),
    MatchStarted,
    MatchFinished(Box<MatchResult>),
}

/// Counters of what happened since the last [`LobbyCore::take_counters`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub inputs_applied: u64,
    pub inputs_repeated: u64,
    pub inputs_dropped: u64,
    pub inputs_late: u64,
    pub inputs_duplicate: u64,
    pub inputs_ahead: u64,
    pub snapshots_oversize: u64,
    /// Snapshots sent as deltas against an acknowledged snapshot, and in full.
    pub snapshots_delta: u64,
    pub snapshots_full: u64,
}

struct Slot<L> {
    joiner: Joiner,
    session: SessionId,
    link: L,
    connected: bool,
    /// Tick at which a disconnected player's slot is released.
    grace_until: u32,
    inputs: InputQueue,
    /// Newest snapshot tick the client says it received: its delta base.
    acked_tick: u32,
    chat_tokens: u32,
    chat_refilled_at: u32,
    vote: Option<bool>,
}

enum Phase {
    Playing,
    Voting { deadline: u32 },
    Closed,
}

pub struct LobbyCore<L> {
    id: LobbyId,
    cfg: LobbyConfig,
    world: World,
    slots: Vec<Option<Slot<L>>>,
    phase: Phase,
    match_id: uuid::Uuid,
    match_started_ms: u64,
    id_rng: u64,
    out: Vec<Out<L>>,
    counters: Counters,
    frames: Vec<(PlayerId, InputFrame)>,
    events: Vec<SimEvent>,
    /// This tick's players, and the changes for one receiver.
    snap_players: Vec<PlayerSnap>,
    delta_players: Vec<PlayerDelta>,
    ring: History,
    encode_buf: Vec<u8>,
}

impl<L: Clone> LobbyCore<L> {
    pub fn new(id: LobbyId, cfg: LobbyConfig, map: Arc<Map>, seed: u64, now_ms: u64) -> LobbyCore<L> {
        let max = (cfg.max_players as usize).min(MAX_PLAYERS_PER_LOBBY);
        let world = World::new(map, cfg.sim.clone(), seed);
        let mut core = LobbyCore {
            id,
            world,
            slots: (0..max).map(|_| None).collect(),
            phase: Phase::Playing,
            match_id: uuid::Uuid::nil(),
            match_started_ms: now_ms,
            id_rng: seed | 1,
            out: Vec::new(),
            counters: Counters::default(),
            frames: Vec::with_capacity(max),
            events: Vec::new(),
            snap_players: Vec::with_capacity(max),
            delta_players: Vec::with_capacity(max),
            ring: History::new(max),
            encode_buf: Vec::with_capacity(MAX_SNAPSHOT_BYTES),
            cfg,
        };
        core.match_id = core.next_match_id();
        core
    }

    /// Match ids are the idempotency key of results, so they must be unique
    /// across lobbies and nodes: drawn from the lobby's random seed.
    fn next_match_id(&mut self) -> uuid::Uuid {
        let mut word = || {
            self.id_rng ^= self.id_rng << 13;
            self.id_rng ^= self.id_rng >> 7;
            self.id_rng ^= self.id_rng << 17;
            self.id_rng
        };
        let bytes = ((word() as u128) << 64 | word() as u128).to_be_bytes();
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    pub fn id(&self) -> LobbyId {
        self.id
    }

    pub fn world(&self) -> &World {
        &self.world
    }

    pub fn tick_count(&self) -> u32 {
        self.world.tick()
    }

    pub fn state(&self) -> LobbyState {
        match self.phase {
            Phase::Playing => LobbyState::Playing,
            Phase::Voting { .. } => LobbyState::Voting,
            Phase::Closed => LobbyState::Closing,
        }
    }

    pub fn info(&self) -> LobbyInfo {
        LobbyInfo {
            id: self.id,
            mode: self.cfg.mode.clone(),
            players: self.player_count() as u8,
            max_players: self.slots.len() as u8,
            state: self.state(),
        }
    }

    /// Whether `info` still describes this lobby, without building a new
    /// one (the lobby task asks every tick; `info` clones the mode).
    pub fn info_is(&self, info: &LobbyInfo) -> bool {
        info.id == self.id
            && info.players as usize == self.player_count()
            && info.max_players as usize == self.slots.len()
            && info.state == self.state()
            && info.mode == self.cfg.mode
    }

    /// Players holding a slot, connected or within their grace period.
    pub fn player_count(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    pub fn connected_count(&self) -> usize {
        self.slots.iter().flatten().filter(|s| s.connected).count()
    }

    pub fn is_empty(&self) -> bool {
        self.player_count() == 0
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    pub fn outbox(&mut self) -> std::vec::Drain<'_, Out<L>> {
        self.out.drain(..)
    }

    pub fn take_counters(&mut self) -> Counters {
        std::mem::take(&mut self.counters)
    }

    fn slot_of(&self, account: AccountId) -> Option<PlayerId> {
        self.slots.iter().position(|s| s.as_ref().is_some_and(|s| s.joiner.account == account)).map(|i| i as PlayerId)
    }

    /// Connected players: id, session and link.
    pub fn connected(&self) -> impl Iterator<Item = (PlayerId, SessionId, &L)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(id, s)| s.as_ref().filter(|s| s.connected).map(|s| (id as PlayerId, s.session, &s.link)))
    }

    fn session_slot(&mut self, player: PlayerId, session: SessionId) -> Option<&mut Slot<L>> {
        self.slots.get_mut(player as usize)?.as_mut().filter(|s| s.session == session && s.connected)
    }

    /// Adds a player, or resumes the slot their account already holds.
    pub fn join(&mut self, joiner: Joiner, session: SessionId, link: L) -> Result<Joined, (ErrorCode, String)> {
        if let Some(id) = self.slot_of(joiner.account) {
            let tick = self.world.tick();
            let slot = self.slots[id as usize].as_mut().expect("slot of account exists");
            if slot.connected {
                // A second connection for the same account replaces the first.
                let old = slot.link.clone();
                self.out.push(Out::Send(
                    old.clone(),
                    ServerControl::Kicked { reason: "replaced by a newer connection".into() },
                ));
                self.out.push(Out::Detach(old));
            }
            slot.session = session;
            slot.link = link;
            slot.connected = true;
            slot.joiner.name = joiner.name;
            slot.joiner.cosmetics = joiner.cosmetics;
            slot.inputs = InputQueue::default();
            slot.acked_tick = 0;
            slot.chat_refilled_at = tick;
            self.world.set_away(id, false);
            self.after_join(id, true);
            return Ok(Joined { player: id, resumed: true });
        }
        if !matches!(self.phase, Phase::Playing) {
            return Err((ErrorCode::LobbyFull, "the match in this lobby has ended".into()));
        }
        let Some(id) = self.slots.iter().position(Option::is_none) else {
            return Err((ErrorCode::LobbyFull, "the lobby is full".into()));
        };
        let id = id as PlayerId;
        let account = joiner.account;
        self.slots[id as usize] = Some(Slot {
            joiner,
            session,
            link,
            connected: true,
            grace_until: 0,
            inputs: InputQueue::default(),
            acked_tick: 0,
            chat_tokens: self.cfg.chat.burst,
            chat_refilled_at: self.world.tick(),
            vote: None,
        });
        self.world.add_player(id);
        self.out.push(Out::AccountJoined(account));
        self.after_join(id, false);
        Ok(Joined { player: id, resumed: false })
    }

    fn after_join(&mut self, id: PlayerId, resumed: bool) {
        let roster = self.roster();
        let slot = self.slots[id as usize].as_ref().expect("joined slot");
        let joined = LobbyJoined {
            lobby: self.info(),
            you: id,
            map: self.cfg.map_name.clone(),
            match_id: self.match_id,
            kill_target: self.cfg.sim.kill_target,
            resumed,
            roster: roster.clone(),
        };
        self.out.push(Out::Send(slot.link.clone(), ServerControl::LobbyJoined(joined)));
        if let Phase::Voting { .. } = self.phase {
            let vote = self.vote_state();
            self.out.push(Out::Send(slot.link.clone(), ServerControl::VoteState(vote)));
        }
        self.broadcast_except(id, ServerControl::Roster { players: roster });
    }

    fn roster(&self) -> Vec<RosterEntry> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let s = s.as_ref()?;
                let score = self.world.score(i as PlayerId).unwrap_or_default();
                Some(RosterEntry {
                    id: i as PlayerId,
                    account: s.joiner.account,
                    name: s.joiner.name.clone(),
                    cosmetics: s.joiner.cosmetics.clone(),
                    kills: score.kills,
                    deaths: score.deaths,
                    connected: s.connected,
                })
            })
            .collect()
    }

    fn broadcast(&mut self, msg: ServerControl) {
        self.broadcast_except(PlayerId::MAX, msg)
    }

    fn broadcast_except(&mut self, except: PlayerId, msg: ServerControl) {
        for (i, s) in self.slots.iter().enumerate() {
            if let Some(s) = s
                && s.connected
                && i != except as usize
            {
                self.out.push(Out::Send(s.link.clone(), msg.clone()));
            }
        }
    }

    fn send_error(&mut self, player: PlayerId, code: ErrorCode, message: &str) {
        if let Some(s) = self.slots[player as usize].as_ref() {
            self.out.push(Out::Send(s.link.clone(), ServerControl::Error { code, message: message.into() }));
        }
    }

    pub fn input(&mut self, player: PlayerId, session: SessionId, packet: &InputPacket) -> Option<PushOutcome> {
        let now = self.world.tick();
        let slot = self.session_slot(player, session)?;
        // Only ticks that were sent can be bases; a claim from the future
        // is ignored (it could only make this client's deltas unreadable).
        if packet.ack_tick > slot.acked_tick && packet.ack_tick <= now {
            slot.acked_tick = packet.ack_tick;
        }
        let o = slot.inputs.push(packet);
        self.counters.inputs_late += o.late as u64;
        self.counters.inputs_duplicate += o.duplicate as u64;
        self.counters.inputs_ahead += o.ahead as u64;
        Some(o)
    }

    pub fn chat(&mut self, player: PlayerId, session: SessionId, text: &str) {
        let chat = self.cfg.chat.clone();
        let tick = self.world.tick();
        let Some(slot) = self.session_slot(player, session) else { return };
        if !chat.enabled {
            return self.send_error(player, ErrorCode::ChatDisabled, "chat is disabled on this server");
        }
        let text = text.trim();
        let chars = text.chars().count();
        if chars == 0 || chars > chat.max_chars || text.chars().any(char::is_control) {
            let msg = format!("chat messages must be 1 to {} characters without control characters", chat.max_chars);
            return self.send_error(player, ErrorCode::ChatInvalid, &msg);
        }
        let earned = tick.saturating_sub(slot.chat_refilled_at) / chat.refill_ticks.max(1);
        if earned > 0 {
            slot.chat_tokens = (slot.chat_tokens + earned).min(chat.burst);
            slot.chat_refilled_at += earned * chat.refill_ticks.max(1);
        }
        if slot.chat_tokens == 0 {
            return self.send_error(player, ErrorCode::ChatRateLimited, "you are sending messages too fast");
        }
        slot.chat_tokens -= 1;
        let name = slot.joiner.name.clone();
        self.broadcast(ServerControl::Chat { from: player, name, text: text.to_owned() });
    }

    pub fn vote(&mut self, player: PlayerId, session: SessionId, restart: bool, now_ms: u64) {
        let voting = matches!(self.phase, Phase::Voting { .. });
        let Some(slot) = self.session_slot(player, session) else { return };
        if !voting {
            return self.send_error(player, ErrorCode::NoVoteOpen, "no restart vote is open");
        }
        slot.vote = Some(restart);
        self.resolve_vote(false, now_ms);
    }

    /// Leaves for good: the slot is freed at once.
    pub fn leave(&mut self, player: PlayerId, session: SessionId, now_ms: u64) {
        if self.session_slot(player, session).is_none() {
            return;
        }
        self.remove_slot(player);
        self.after_departure(now_ms);
    }

    /// The connection dropped: the slot and score are kept for the grace period.
    pub fn disconnect(&mut self, player: PlayerId, session: SessionId, now_ms: u64) {
        let until = self.world.tick().saturating_add(self.cfg.grace_ticks);
        let Some(slot) = self.session_slot(player, session) else { return };
        slot.connected = false;
        slot.grace_until = until;
        slot.vote = None;
        self.world.set_away(player, true);
        let roster = self.roster();
        self.broadcast(ServerControl::Roster { players: roster });
        self.after_departure(now_ms);
    }

    /// Removes an account's player (admin kick or ban).
    pub fn kick(&mut self, account: AccountId, reason: &str, now_ms: u64) -> bool {
        let Some(id) = self.slot_of(account) else { return false };
        if let Some(s) = self.slots[id as usize].as_ref()
            && s.connected
        {
            let link = s.link.clone();
            self.out.push(Out::Send(link.clone(), ServerControl::Kicked { reason: reason.into() }));
            self.out.push(Out::Detach(link));
        }
        self.remove_slot(id);
        self.after_departure(now_ms);
        true
    }

    fn remove_slot(&mut self, id: PlayerId) {
        if let Some(slot) = self.slots[id as usize].take() {
            self.world.remove_player(id);
            self.out.push(Out::AccountLeft(slot.joiner.account));
        }
    }

    fn after_departure(&mut self, now_ms: u64) {
        if self.is_empty() {
            self.phase = Phase::Closed;
            return;
        }
        let roster = self.roster();
        self.broadcast(ServerControl::Roster { players: roster });
        if matches!(self.phase, Phase::Voting { .. }) {
            self.resolve_vote(false, now_ms);
        }
    }

    fn vote_state(&self) -> VoteState {
        let present = self.connected_count() as u8;
        let (mut yes, mut no) = (0u8, 0u8);
        for s in self.slots.iter().flatten().filter(|s| s.connected) {
            match s.vote {
                Some(true) => yes += 1,
                Some(false) => no += 1,
                None => {}
            }
        }
        let remaining_ticks = match self.phase {
            Phase::Voting { deadline } => deadline.saturating_sub(self.world.tick()),
            _ => 0,
        };
        VoteState {
            yes,
            no,
            present,
            needed: present / 2 + 1,
            remaining_ms: (remaining_ticks as u64 * 1000 / self.cfg.tick_rate as u64) as u32,
        }
    }

    /// Restarts on a yes majority of present players; closes when the
    /// deadline passed or everyone voted without one.
    fn resolve_vote(&mut self, deadline_passed: bool, now_ms: u64) {
        let v = self.vote_state();
        if v.present > 0 && v.yes >= v.needed {
            self.restart(now_ms);
        } else if deadline_passed || v.present == 0 || v.yes + v.no >= v.present {
            self.close("the restart vote failed; find a new match");
        } else {
            self.broadcast(ServerControl::VoteState(v));
        }
    }

    fn restart(&mut self, now_ms: u64) {
        self.world.reset_match();
        self.match_id = self.next_match_id();
        self.match_started_ms = now_ms;
        self.phase = Phase::Playing;
        for s in self.slots.iter_mut().flatten() {
            s.vote = None;
        }
        self.out.push(Out::MatchStarted);
        let (match_id, kill_target) = (self.match_id, self.cfg.sim.kill_target);
        self.broadcast(ServerControl::MatchStarted { match_id, kill_target });
        let roster = self.roster();
        self.broadcast(ServerControl::Roster { players: roster });
    }

    /// Closes the lobby: everyone is told to matchmake again and every slot is freed.
    pub fn close(&mut self, reason: &str) {
        for i in 0..self.slots.len() {
            if let Some(s) = self.slots[i].as_ref() {
                if s.connected {
                    let link = s.link.clone();
                    self.out.push(Out::Send(link.clone(), ServerControl::LobbyClosed { reason: reason.into() }));
                    self.out.push(Out::Detach(link));
                }
                self.remove_slot(i as PlayerId);
            }
        }
        self.phase = Phase::Closed;
    }

    fn end_match(&mut self, winner: PlayerId, now_ms: u64) {
        let mut scoreboard: Vec<ScoreLine> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let s = s.as_ref()?;
                let score = self.world.score(i as PlayerId).unwrap_or_default();
                Some(ScoreLine {
                    id: i as PlayerId,
                    account: s.joiner.account,
                    name: s.joiner.name.clone(),
                    kills: score.kills,
                    deaths: score.deaths,
                })
            })
            .collect();
        scoreboard.sort_by(|a, b| b.kills.cmp(&a.kills).then(a.deaths.cmp(&b.deaths)).then(a.id.cmp(&b.id)));
        let result = MatchResult {
            match_id: self.match_id,
            lobby_id: self.id,
            node_id: self.cfg.node_id.clone(),
            mode: self.cfg.mode.clone(),
            map: self.cfg.map_name.clone(),
            started_at_ms: self.match_started_ms,
            ended_at_ms: now_ms,
            winner: self.slots[winner as usize].as_ref().map(|s| s.joiner.account),
            kill_target: self.cfg.sim.kill_target,
            players: scoreboard
                .iter()
                .map(|l| PlayerResult { account: l.account, name: l.name.clone(), kills: l.kills, deaths: l.deaths })
                .collect(),
        };
        self.out.push(Out::MatchFinished(Box::new(result)));
        let vote_seconds = (self.cfg.vote_ticks / self.cfg.tick_rate as u32) as u16;
        self.phase = Phase::Voting { deadline: self.world.tick() + self.cfg.vote_ticks };
        for s in self.slots.iter_mut().flatten() {
            s.vote = None;
        }
        let match_id = self.match_id;
        self.broadcast(ServerControl::MatchEnded(MatchEnded { match_id, winner, scoreboard, vote_seconds }));
        let v = self.vote_state();
        self.broadcast(ServerControl::VoteState(v));
    }

    /// Advances the lobby by one tick.
    pub fn tick(&mut self, now_ms: u64) {
        if self.is_closed() {
            return;
        }
        self.frames.clear();
        for (i, s) in self.slots.iter_mut().enumerate() {
            let Some(s) = s else { continue };
            if !s.connected {
                continue;
            }
            let t = s.inputs.take();
            self.counters.inputs_dropped += t.dropped as u64;
            if t.repeated {
                self.counters.inputs_repeated += 1;
            } else {
                self.counters.inputs_applied += 1;
            }
            self.frames.push((i as PlayerId, t.frame));
        }
        self.events.clear();
        self.world.step(&self.frames, &mut self.events);
        let events = std::mem::take(&mut self.events);
        for ev in &events {
            match *ev {
                SimEvent::Kill { killer, victim } => self.broadcast(ServerControl::Kill { killer, victim }),
                SimEvent::MatchWon { winner } => self.end_match(winner, now_ms),
            }
        }
        self.events = events;

        let tick = self.world.tick();
        for i in 0..self.slots.len() {
            if self.slots[i].as_ref().is_some_and(|s| !s.connected && tick >= s.grace_until) {
                self.remove_slot(i as PlayerId);
                self.after_departure(now_ms);
            }
        }
        if let Phase::Voting { deadline } = self.phase
            && tick >= deadline
        {
            self.resolve_vote(true, now_ms);
        }
    }

    /// Encodes this tick's snapshot for every connected player and hands
    /// each datagram to `send`: a delta against the newest snapshot the
    /// player acknowledged while the lobby still holds it, else in full.
    /// Buffers move in and out of the messages, so this does not allocate
    /// in steady state.
    pub fn snapshots(&mut self, mut send: impl FnMut(&L, &[u8])) {
        let tick = self.world.tick();
        self.world.snapshot(&mut self.snap_players);
        for s in self.slots.iter().flatten() {
            if !s.connected {
                continue;
            }
            let ack_seq = s.inputs.ack_seq();
            let encoded = match self.ring.get(s.acked_tick, tick) {
                Some(base) => {
                    let mut players = std::mem::take(&mut self.delta_players);
                    players.clear();
                    delta::diff(base, &self.snap_players, &mut players);
                    let base_age = (tick - s.acked_tick) as u8;
                    let msg = ServerDatagram::Delta(DeltaSnapshot { tick, base_age, ack_seq, players });
                    let r = codec::encode_into(&msg, &mut self.encode_buf, MAX_SNAPSHOT_BYTES);
                    let ServerDatagram::Delta(d) = msg else { unreachable!("built as a delta") };
                    self.delta_players = d.players;
                    self.counters.snapshots_delta += 1;
                    r
                }
                None => {
                    let players = std::mem::take(&mut self.snap_players);
                    let msg = ServerDatagram::Snapshot(Snapshot { tick, ack_seq, players });
                    let r = codec::encode_into(&msg, &mut self.encode_buf, MAX_SNAPSHOT_BYTES);
                    let ServerDatagram::Snapshot(f) = msg else { unreachable!("built as a snapshot") };
                    self.snap_players = f.players;
                    self.counters.snapshots_full += 1;
                    r
                }
            };
            match encoded {
                Ok(()) => send(&s.link, &self.encode_buf),
                Err(_) => self.counters.snapshots_oversize += 1,
            }
        }
        self.ring.push(tick, &self.snap_players);
    }
}

#[cfg(test)]
#[path = "core_tests.rs"]
mod tests;
