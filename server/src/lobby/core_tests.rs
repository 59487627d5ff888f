use std::sync::Arc;

use protocol::control::{Cosmetics, ErrorCode, LobbyState, ServerControl};
use protocol::datagram::{Buttons, InputFrame, InputPacket, angle_to_wire};
use protocol::map::{Map, Point};
use protocol::movement::Pos;

use super::*;

fn open_map() -> Arc<Map> {
    Arc::new(Map {
        name: "open".into(),
        width: 800,
        height: 600,
        walls: vec![],
        spawns: vec![Point { x: 100, y: 300 }, Point { x: 700, y: 300 }, Point { x: 400, y: 100 }],
    })
}

fn config(max_players: u8, kill_target: u16) -> LobbyConfig {
    let mut sim = SimConfig::for_tick_rate(20, kill_target, 200);
    sim.damage = 100;
    sim.fire_cooldown_ticks = 1;
    sim.respawn_ticks = 1;
    sim.protection_ticks = 0;
    LobbyConfig {
        node_id: "n".into(),
        mode: "deathmatch".into(),
        map_name: "open".into(),
        max_players,
        tick_rate: 20,
        vote_ticks: 300,
        grace_ticks: 100,
        chat: ChatConfig { enabled: true, max_chars: 20, burst: 2, refill_ticks: 40 },
        sim,
    }
}

fn joiner(n: u128) -> Joiner {
    Joiner { account: uuid::Uuid::from_u128(n), name: format!("p{n}"), cosmetics: Cosmetics::default() }
}

type Core = LobbyCore<u32>;

fn lobby(max_players: u8, kill_target: u16) -> Core {
    LobbyCore::new(7, config(max_players, kill_target), open_map(), 42, 1_000)
}

/// Messages sent to `link` since the outbox was last drained.
fn sent(out: &[Out<u32>], link: u32) -> Vec<ServerControl> {
    out.iter()
        .filter_map(|o| match o {
            Out::Send(l, m) if *l == link => Some(m.clone()),
            _ => None,
        })
        .collect()
}

fn drain(core: &mut Core) -> Vec<Out<u32>> {
    core.outbox().collect()
}

fn pos_of(core: &Core, id: PlayerId) -> Pos {
    let mut snaps = Vec::new();
    core.world().snapshot(&mut snaps);
    let s = snaps.iter().find(|s| s.id == id).expect("player in snapshot");
    Pos::from_wire(s.x, s.y)
}

/// One tick in which `shooter` aims at `target` and fires; everyone else idles.
fn shoot_tick(core: &mut Core, shooter: PlayerId, session: SessionId, target: PlayerId, seq: &mut u32) {
    let (a, b) = (pos_of(core, shooter), pos_of(core, target));
    let aim = angle_to_wire(((b.y - a.y) as f32).atan2((b.x - a.x) as f32));
    let frame = InputFrame { buttons: Buttons(Buttons::FIRE), aim, view_tick: core.tick_count() };
    core.input(
        shooter,
        session,
        &InputPacket { ack_tick: core.tick_count(), first_seq: *seq, frames: vec![frame].into() },
    );
    *seq += 1;
    core.tick(2_000);
}

#[test]
fn joins_fill_slots_and_everyone_gets_the_roster() {
    let mut core = lobby(2, 50);
    assert_eq!(core.join(joiner(1), 1, 1).unwrap(), Joined { player: 0, resumed: false });
    let out = drain(&mut core);
    assert!(matches!(&sent(&out, 1)[0], ServerControl::LobbyJoined(j) if j.you == 0 && j.roster.len() == 1));
    assert!(out.iter().any(|o| matches!(o, Out::AccountJoined(a) if *a == uuid::Uuid::from_u128(1))));
    core.join(joiner(2), 2, 2).unwrap();
    let out = drain(&mut core);
    assert!(matches!(&sent(&out, 2)[0], ServerControl::LobbyJoined(j) if j.you == 1 && j.roster.len() == 2));
    assert!(matches!(&sent(&out, 1)[0], ServerControl::Roster { players } if players.len() == 2));
    let err = core.join(joiner(3), 3, 3).unwrap_err();
    assert_eq!(err.0, ErrorCode::LobbyFull);
    assert_eq!(core.info().players, 2);
}

#[test]
fn info_is_tells_when_the_published_info_went_stale() {
    let mut core = lobby(2, 50);
    let empty = core.info();
    assert!(core.info_is(&empty));
    core.join(joiner(1), 1, 1).unwrap();
    assert!(!core.info_is(&empty), "a player joined");
    let one = core.info();
    assert!(core.info_is(&one));
    assert!(!core.info_is(&LobbyInfo { mode: "other".into(), ..one.clone() }));
    assert!(!core.info_is(&LobbyInfo { id: one.id + 1, ..one }));
}

#[test]
fn fifty_kills_end_the_match_with_a_correct_scoreboard_and_result() {
    let mut core = lobby(8, 50);
    core.join(joiner(1), 1, 1).unwrap();
    core.join(joiner(2), 2, 2).unwrap();
    drain(&mut core);
    let mut seq = 1;
    let mut out = Vec::new();
    for _ in 0..2_000 {
        shoot_tick(&mut core, 0, 1, 1, &mut seq);
        out.extend(drain(&mut core));
        if core.state() == LobbyState::Voting {
            break;
        }
    }
    assert_eq!(core.state(), LobbyState::Voting);
    let kills = sent(&out, 2).iter().filter(|m| matches!(m, ServerControl::Kill { killer: 0, victim: 1 })).count();
    assert_eq!(kills, 50);
    let ended: Vec<_> = sent(&out, 2)
        .into_iter()
        .filter_map(|m| match m {
            ServerControl::MatchEnded(e) => Some(e),
            _ => None,
        })
        .collect();
    assert_eq!(ended.len(), 1);
    let e = &ended[0];
    assert_eq!(e.winner, 0);
    assert_eq!((e.scoreboard[0].id, e.scoreboard[0].kills, e.scoreboard[0].deaths), (0, 50, 0));
    assert_eq!((e.scoreboard[1].id, e.scoreboard[1].kills, e.scoreboard[1].deaths), (1, 0, 50));
    assert_eq!(e.vote_seconds, 15);
    let results: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Out::MatchFinished(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].winner, Some(uuid::Uuid::from_u128(1)));
    assert_eq!(results[0].players.len(), 2);
    assert_eq!(results[0].match_id, e.match_id);
    // No new players during the vote.
    assert_eq!(core.join(joiner(3), 3, 3).unwrap_err().0, ErrorCode::LobbyFull);
}

fn ended_lobby(players: u128) -> Core {
    let mut core = lobby(8, 1);
    for n in 1..=players {
        core.join(joiner(n), n as u64, n as u32).unwrap();
    }
    let mut seq = 1;
    while core.state() == LobbyState::Playing {
        shoot_tick(&mut core, 0, 1, 1, &mut seq);
    }
    drain(&mut core);
    core
}

#[test]
fn a_yes_majority_restarts_the_match_in_the_same_lobby() {
    let mut core = ended_lobby(3);
    let old_match = core.match_id;
    core.vote(0, 1, true, 5_000);
    assert_eq!(core.state(), LobbyState::Voting, "one of three is not a majority");
    let out = drain(&mut core);
    assert!(matches!(&sent(&out, 3)[0], ServerControl::VoteState(v) if v.yes == 1 && v.needed == 2 && v.present == 3));
    core.vote(2, 3, true, 5_000);
    assert_eq!(core.state(), LobbyState::Playing);
    let out = drain(&mut core);
    assert!(
        sent(&out, 2)
            .iter()
            .any(|m| matches!(m, ServerControl::MatchStarted { match_id, .. } if *match_id != old_match))
    );
    assert_eq!(core.world().score(0).unwrap().kills, 0, "scores reset");
    assert_eq!(core.player_count(), 3);
}

#[test]
fn a_failed_vote_closes_the_lobby_and_frees_every_slot() {
    let mut core = ended_lobby(2);
    core.vote(0, 1, true, 5_000);
    core.vote(1, 2, false, 5_000);
    assert!(core.is_closed());
    let out = drain(&mut core);
    for link in [1, 2] {
        assert!(sent(&out, link).iter().any(|m| matches!(m, ServerControl::LobbyClosed { .. })));
        assert!(out.iter().any(|o| matches!(o, Out::Detach(l) if *l == link)));
    }
    assert_eq!(out.iter().filter(|o| matches!(o, Out::AccountLeft(_))).count(), 2);
    assert_eq!(core.player_count(), 0);
    assert_eq!(core.world().player_count(), 0);
}

#[test]
fn an_unanswered_vote_closes_at_the_deadline() {
    let mut core = ended_lobby(2);
    for _ in 0..299 {
        core.tick(5_000);
    }
    assert_eq!(core.state(), LobbyState::Voting);
    core.tick(5_000);
    assert!(core.is_closed());
}

#[test]
fn a_disconnected_player_resumes_their_slot_and_score_within_the_grace_period() {
    let mut core = lobby(8, 50);
    core.join(joiner(1), 1, 1).unwrap();
    core.join(joiner(2), 2, 2).unwrap();
    let mut seq = 1;
    while core.world().score(0).unwrap().kills == 0 {
        shoot_tick(&mut core, 0, 1, 1, &mut seq);
    }
    core.disconnect(0, 1, 0);
    let out = drain(&mut core);
    assert!(sent(&out, 2).iter().any(|m| matches!(m, ServerControl::Roster { players } if !players[0].connected)));
    for _ in 0..50 {
        core.tick(0);
    }
    assert_eq!(core.player_count(), 2, "slot held during grace");
    // Messages from the dead session are ignored.
    assert!(
        core.input(0, 1, &InputPacket { ack_tick: 0, first_seq: 1, frames: vec![InputFrame::default()].into() })
            .is_none()
    );
    let j = core.join(joiner(1), 10, 10).unwrap();
    assert_eq!(j, Joined { player: 0, resumed: true });
    let out = drain(&mut core);
    assert!(matches!(&sent(&out, 10)[0], ServerControl::LobbyJoined(j) if j.resumed && j.roster[0].kills == 1));
    assert_eq!(core.world().score(0).unwrap().kills, 1);
}

#[test]
fn the_slot_is_released_when_the_grace_period_ends() {
    let mut core = lobby(8, 50);
    core.join(joiner(1), 1, 1).unwrap();
    core.join(joiner(2), 2, 2).unwrap();
    core.disconnect(1, 2, 0);
    drain(&mut core);
    for _ in 0..100 {
        core.tick(0);
    }
    let out = drain(&mut core);
    assert!(out.iter().any(|o| matches!(o, Out::AccountLeft(a) if *a == uuid::Uuid::from_u128(2))));
    assert_eq!(core.player_count(), 1);
    assert_eq!(core.world().player_count(), 1);
    // The last player leaving closes the lobby.
    core.leave(0, 1, 0);
    assert!(core.is_closed() && core.is_empty());
}

#[test]
fn a_second_connection_for_the_same_account_replaces_the_first() {
    let mut core = lobby(8, 50);
    core.join(joiner(1), 1, 1).unwrap();
    drain(&mut core);
    assert!(core.join(joiner(1), 5, 5).unwrap().resumed);
    let out = drain(&mut core);
    assert!(matches!(&sent(&out, 1)[0], ServerControl::Kicked { .. }));
    assert!(out.iter().any(|o| matches!(o, Out::Detach(1))));
    assert_eq!(core.player_count(), 1);
}

#[test]
fn chat_is_broadcast_validated_and_rate_limited() {
    let mut core = lobby(8, 50);
    core.join(joiner(1), 1, 1).unwrap();
    core.join(joiner(2), 2, 2).unwrap();
    drain(&mut core);
    core.chat(0, 1, "  gg  ");
    let out = drain(&mut core);
    assert!(matches!(&sent(&out, 2)[0], ServerControl::Chat { from: 0, text, .. } if text == "gg"));
    core.chat(0, 1, &"x".repeat(21));
    core.chat(0, 1, "bad\u{7}bell");
    core.chat(0, 1, "   ");
    let out = drain(&mut core);
    let codes: Vec<_> = sent(&out, 1)
        .into_iter()
        .filter_map(|m| match m {
            ServerControl::Error { code, .. } => Some(code),
            _ => None,
        })
        .collect();
    assert_eq!(codes, vec![ErrorCode::ChatInvalid; 3]);
    core.chat(0, 1, "two");
    core.chat(0, 1, "three");
    let out = drain(&mut core);
    assert!(matches!(sent(&out, 1).last(), Some(ServerControl::Error { code: ErrorCode::ChatRateLimited, .. })));
    for _ in 0..40 {
        core.tick(0);
    }
    core.chat(0, 1, "again");
    let out = drain(&mut core);
    assert!(matches!(&sent(&out, 2)[0], ServerControl::Chat { .. }), "a token is earned back");
}

#[test]
fn chat_can_be_switched_off() {
    let mut cfg = config(8, 50);
    cfg.chat.enabled = false;
    let mut core: Core = LobbyCore::new(1, cfg, open_map(), 1, 0);
    core.join(joiner(1), 1, 1).unwrap();
    drain(&mut core);
    core.chat(0, 1, "hello");
    let out = drain(&mut core);
    assert!(matches!(&sent(&out, 1)[0], ServerControl::Error { code: ErrorCode::ChatDisabled, .. }));
}

#[test]
fn snapshots_carry_each_players_ack_and_every_player() {
    let mut core = lobby(8, 50);
    core.join(joiner(1), 1, 1).unwrap();
    core.join(joiner(2), 2, 2).unwrap();
    let frames = vec![InputFrame::default(); 3];
    core.input(0, 1, &InputPacket { ack_tick: 0, first_seq: 1, frames: frames.into() });
    core.tick(0);
    let mut got = Vec::new();
    core.snapshots(|link, bytes| {
        let d: protocol::datagram::ServerDatagram = protocol::codec::decode(bytes, 2048).unwrap();
        got.push((*link, d));
    });
    assert_eq!(got.len(), 2);
    for (link, d) in got {
        let protocol::datagram::ServerDatagram::Snapshot(s) = d else { panic!("nothing acknowledged yet: {d:?}") };
        assert_eq!(s.players.len(), 2);
        assert_eq!(s.tick, core.tick_count());
        assert_eq!(s.ack_seq, if link == 1 { 1 } else { 0 });
    }
}

#[test]
fn votes_outside_a_vote_are_refused() {
    let mut core = lobby(8, 50);
    core.join(joiner(1), 1, 1).unwrap();
    drain(&mut core);
    core.vote(0, 1, true, 0);
    let out = drain(&mut core);
    assert!(matches!(&sent(&out, 1)[0], ServerControl::Error { code: ErrorCode::NoVoteOpen, .. }));
}

#[test]
fn snapshots_are_deltas_against_the_acknowledged_tick_and_rebuild_exactly() {
    use protocol::datagram::ServerDatagram;
    use protocol::delta::Rebuilder;
    let mut core = lobby(8, 50);
    core.join(joiner(1), 1, 1).unwrap();
    core.join(joiner(2), 2, 2).unwrap();
    let mut rebuilders = [Rebuilder::default(), Rebuilder::default()];
    let mut acked = [0u32; 2];
    let mut kinds = Vec::new();
    for round in 0..60u32 {
        // Player 0 walks right and acknowledges everything; player 1 stands
        // still and acknowledges nothing (its snapshots stay full), until it
        // acknowledges a tick from the future (ignored) and later a real one.
        let frame = InputFrame {
            buttons: protocol::datagram::Buttons(protocol::datagram::Buttons::RIGHT),
            aim: 0,
            view_tick: 0,
        };
        core.input(0, 1, &InputPacket { ack_tick: acked[0], first_seq: round + 1, frames: vec![frame].into() });
        let claim = match round {
            0..30 => 0,
            30..40 => 1_000_000,
            _ => acked[1],
        };
        core.input(
            1,
            2,
            &InputPacket { ack_tick: claim, first_seq: round + 1, frames: vec![InputFrame::default()].into() },
        );
        core.tick(0);
        let mut got = Vec::new();
        core.snapshots(|link, bytes| {
            got.push((*link, protocol::codec::decode::<ServerDatagram>(bytes, 2048).unwrap()))
        });
        let mut truth = Vec::new();
        core.world().snapshot(&mut truth);
        for (link, d) in got {
            let i = (link - 1) as usize;
            kinds.push((i, round, matches!(d, ServerDatagram::Delta(_))));
            // Player 0 loses every fifth snapshot, so it acknowledges an older one.
            if i == 0 && round % 5 == 4 {
                continue;
            }
            let snap = rebuilders[i].rebuild(d).unwrap();
            assert_eq!(snap.players, truth, "player {i} round {round}");
            acked[i] = snap.tick;
        }
    }
    let deltas = |who: usize, rounds: std::ops::Range<u32>| {
        kinds.iter().filter(|(i, r, d)| *i == who && rounds.contains(r) && *d).count()
    };
    assert_eq!(deltas(0, 1..60), 59, "every snapshot after the first is a delta");
    assert_eq!(deltas(1, 0..40), 0, "no real acknowledgement, no delta");
    assert_eq!(deltas(1, 40..60), 20);
    let c = core.take_counters();
    assert_eq!((c.snapshots_delta + c.snapshots_full, c.snapshots_oversize), (120, 0));
}
