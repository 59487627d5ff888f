//! The game over real QUIC on loopback: movement, shots, a whole match,
//! the restart vote, reconnects and chat.

mod common;

use std::time::Duration;

use common::*;
use protocol::control::{ErrorCode, ServerControl};
use protocol::datagram::{Buttons, flags};

/// Fast, deterministic combat on the wall-less fixture map.
fn combat(kill_target: &str) -> Vec<String> {
    [
        "--map",
        &fixture("open.toml"),
        "--kill-target",
        kill_target,
        "--damage",
        "100",
        "--spawn-protection",
        "0s",
        "--respawn-delay",
        "50ms",
        "--fire-cooldown",
        "50ms",
        "--tick-rate",
        "60",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[tokio::test]
async fn two_bots_in_one_lobby_see_each_other_move() {
    let t = TestNode::start(&[]).await;
    let (mut a, ja, _) = t.player("alice").await;
    let (mut b, jb, _) = t.player("bob").await;
    assert_eq!(ja.lobby.id, jb.lobby.id, "matchmaking fills the first lobby");
    assert_ne!(ja.you, jb.you);
    assert!(matches!(wait_event(&mut a, |e| matches!(e, ServerControl::Roster { .. })).await,
        ServerControl::Roster { players } if players.len() == 2));

    let start_b = loop {
        let s = next_snapshot(&mut a).await;
        if let Some(p) = pos(&s, jb.you) {
            break p;
        }
    };
    // Bob walks right for half a second; Alice must see it.
    for _ in 0..10 {
        b.send_input(Buttons(Buttons::RIGHT), 0).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let moved = tokio::time::timeout(WAIT, async {
        loop {
            let s = next_snapshot(&mut a).await;
            if pos(&s, jb.you).is_some_and(|p| p.x > start_b.x + 16 * 50) {
                return s;
            }
        }
    })
    .await
    .expect("alice sees bob move right");
    assert!(moved.players.iter().all(|p| p.flags & flags::ALIVE != 0));
    // Bob's own snapshots acknowledge all ten inputs.
    tokio::time::timeout(WAIT, async { while next_snapshot(&mut b).await.ack_seq < 10 {} })
        .await
        .expect("bob's inputs acknowledged");
}

/// Alice aims at Bob and fires every tick until `done` says stop.
async fn shoot_until(
    shooter: &mut loadgen::GameClient,
    me: u8,
    target: u8,
    mut done: impl FnMut(&ServerControl) -> bool,
) -> Vec<ServerControl> {
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let s = next_snapshot(shooter).await;
            if let (Some(from), Some(to)) = (pos(&s, me), pos(&s, target)) {
                shooter.send_input(Buttons(Buttons::FIRE), aim_at(from, to)).unwrap();
            }
            for ev in shooter.events_pending() {
                let stop = done(&ev);
                seen.push(ev);
                if stop {
                    return;
                }
            }
        }
    })
    .await
    .expect("shooting finished in time");
    seen
}

#[tokio::test]
async fn a_shot_kills() {
    let t = TestNode::start(&["--map", &fixture("open.toml"), "--damage", "100", "--spawn-protection", "0s"]).await;
    let (mut a, ja, _) = t.player("alice").await;
    let (mut b, jb, _) = t.player("bob").await;
    let events = shoot_until(&mut a, ja.you, jb.you, |e| matches!(e, ServerControl::Kill { .. })).await;
    assert!(
        matches!(events.last(), Some(ServerControl::Kill { killer, victim }) if *killer == ja.you && *victim == jb.you)
    );
    wait_event(&mut b, |e| matches!(e, ServerControl::Kill { victim, .. } if *victim == jb.you)).await;
}

#[tokio::test]
async fn fifty_kills_end_the_match_with_a_correct_scoreboard() {
    let v = combat("50");
    let t = TestNode::start(&args(&v)).await;
    let (mut a, ja, acc_a) = t.player("alice").await;
    let (mut b, jb, acc_b) = t.player("bob").await;
    let events = shoot_until(&mut a, ja.you, jb.you, |e| matches!(e, ServerControl::MatchEnded(_))).await;
    let kills = events.iter().filter(|e| matches!(e, ServerControl::Kill { .. })).count();
    assert_eq!(kills, 50);
    let Some(ServerControl::MatchEnded(end)) = events.last() else { unreachable!() };
    assert_eq!(end.winner, ja.you);
    assert_eq!(end.vote_seconds, 15);
    assert_eq!((end.scoreboard[0].account, end.scoreboard[0].kills, end.scoreboard[0].deaths), (acc_a, 50, 0));
    assert_eq!((end.scoreboard[1].account, end.scoreboard[1].kills, end.scoreboard[1].deaths), (acc_b, 0, 50));
    // Bob gets the same scoreboard, then the vote opens.
    let ServerControl::MatchEnded(end_b) = wait_event(&mut b, |e| matches!(e, ServerControl::MatchEnded(_))).await
    else {
        unreachable!()
    };
    assert_eq!(&end_b, end);
    assert!(matches!(wait_event(&mut b, |e| matches!(e, ServerControl::VoteState(_))).await,
        ServerControl::VoteState(v) if v.present == 2 && v.needed == 2 && v.yes == 0));
    // The result record went out once, with the winner.
    let results = t.sink.results.lock().unwrap().clone();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].winner, Some(acc_a));
    assert_eq!(results[0].match_id, end.match_id);
    assert_eq!(results[0].node_id, "test-node");
    assert_eq!(t.metric("trespasser_matches_completed_total").await, 1.0);
}

#[tokio::test]
async fn a_yes_majority_restarts_and_a_failed_vote_closes_the_lobby() {
    let v = combat("1");
    let t = TestNode::start(&args(&v)).await;
    let (mut a, ja, _) = t.player("alice").await;
    let (mut b, jb, _) = t.player("bob").await;
    shoot_until(&mut a, ja.you, jb.you, |e| matches!(e, ServerControl::MatchEnded(_))).await;
    wait_event(&mut b, |e| matches!(e, ServerControl::MatchEnded(_))).await;
    a.vote(true).await.unwrap();
    b.vote(true).await.unwrap();
    let ServerControl::MatchStarted { match_id, .. } =
        wait_event(&mut b, |e| matches!(e, ServerControl::MatchStarted { .. })).await
    else {
        unreachable!()
    };
    assert_eq!(t.node.manager.list(None)[0].state, protocol::control::LobbyState::Playing);

    // Second match: this time the vote fails.
    let events = shoot_until(&mut a, ja.you, jb.you, |e| matches!(e, ServerControl::MatchEnded(_))).await;
    let Some(ServerControl::MatchEnded(end)) = events.last() else { unreachable!() };
    assert_eq!(end.match_id, match_id, "the restarted match has the id MatchStarted announced");
    a.vote(true).await.unwrap();
    b.vote(false).await.unwrap();
    for c in [&mut a, &mut b] {
        wait_event(c, |e| matches!(e, ServerControl::LobbyClosed { .. })).await;
    }
    // Told to matchmake again: the same connection may join a new lobby.
    let ticket = t.ticket(uuid::Uuid::new_v4(), "alice2");
    let again = a.join(&ticket).await.expect("matchmake again on the same connection");
    assert_ne!(again.lobby.id, ja.lobby.id);
    assert_eq!(t.sink.results.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn an_unanswered_vote_closes_the_lobby_when_it_expires() {
    let mut v = combat("1");
    v.extend(["--vote-duration".to_string(), "1s".to_string()]);
    let t = TestNode::start(&args(&v)).await;
    let (mut a, ja, _) = t.player("alice").await;
    let (_b, jb, _) = t.player("bob").await;
    shoot_until(&mut a, ja.you, jb.you, |e| matches!(e, ServerControl::MatchEnded(_))).await;
    wait_event(&mut a, |e| matches!(e, ServerControl::LobbyClosed { .. })).await;
    tokio::time::timeout(WAIT, async {
        while t.node.manager.lobby_count() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("lobby removed");
}

#[tokio::test]
async fn a_reconnect_within_the_grace_period_resumes_the_slot_and_score() {
    let v = combat("50");
    let t = TestNode::start(&args(&v)).await;
    let (mut a, ja, acc_a) = t.player("alice").await;
    let (mut b, jb, _) = t.player("bob").await;
    shoot_until(&mut a, ja.you, jb.you, |e| matches!(e, ServerControl::Kill { .. })).await;
    a.close();
    // Bob sees Alice away, slot held.
    wait_event(&mut b, |e| matches!(e, ServerControl::Roster { players } if players.iter().any(|p| !p.connected)))
        .await;
    assert_eq!(t.node.manager.list(None)[0].players, 2);

    let mut a2 = t.connect().await;
    let back = a2.join(&t.ticket(acc_a, "alice")).await.expect("resume");
    assert!(back.resumed);
    assert_eq!(back.you, ja.you);
    assert_eq!(back.lobby.id, ja.lobby.id);
    let me = back.roster.iter().find(|p| p.id == ja.you).unwrap();
    assert!(me.kills >= 1, "score kept: {me:?}");
    wait_event(&mut b, |e| matches!(e, ServerControl::Roster { players } if players.iter().all(|p| p.connected))).await;
}

#[tokio::test]
async fn a_slot_is_released_after_the_grace_period() {
    let t = TestNode::start(&["--reconnect-grace", "300ms"]).await;
    let (a, _, _) = t.player("alice").await;
    let (_b, _, _) = t.player("bob").await;
    a.close();
    tokio::time::timeout(WAIT, async {
        while t.node.manager.list(None)[0].players != 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("slot released");
    assert_eq!(t.node.manager.account_count(), 1);
}

#[tokio::test]
async fn chat_reaches_the_lobby_and_is_rate_limited() {
    let t = TestNode::start(&["--chat-burst", "2"]).await;
    let (mut a, _, _) = t.player("alice").await;
    let (mut b, _, _) = t.player("bob").await;
    a.chat("hello bob").await.unwrap();
    assert!(matches!(wait_event(&mut b, |e| matches!(e, ServerControl::Chat { .. })).await,
        ServerControl::Chat { name, text, .. } if name == "alice" && text == "hello bob"));
    a.chat("two").await.unwrap();
    a.chat("three").await.unwrap();
    assert!(matches!(
        wait_event(&mut a, |e| matches!(e, ServerControl::Error { .. })).await,
        ServerControl::Error { code: ErrorCode::ChatRateLimited, .. }
    ));
    a.chat(&"x".repeat(201)).await.unwrap();
    assert!(matches!(
        wait_event(&mut a, |e| matches!(e, ServerControl::Error { .. })).await,
        ServerControl::Error { code: ErrorCode::ChatInvalid, .. }
            | ServerControl::Error { code: ErrorCode::ChatRateLimited, .. }
    ));
}

#[tokio::test]
async fn chat_can_be_switched_off() {
    let t = TestNode::start(&["--chat", "false"]).await;
    let (mut a, _, _) = t.player("alice").await;
    a.chat("hello").await.unwrap();
    assert!(matches!(
        wait_event(&mut a, |e| matches!(e, ServerControl::Error { .. })).await,
        ServerControl::Error { code: ErrorCode::ChatDisabled, .. }
    ));
}
