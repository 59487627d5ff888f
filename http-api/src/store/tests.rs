//! The store suite. Each test is an async fn over a `&Store`; `both_backends!` runs
//! it unchanged on a fresh SQLite file and on a fresh Postgres schema
//! (`store::tests::<name>::{sqlite,postgres}`).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use protocol::results::{MatchResult, PlayerResult};
use uuid::Uuid;

use super::*;

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let store = super::testing::sqlite().await;
                super::$name(&store).await;
                store.cleanup().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(store) = super::testing::postgres().await else { return };
                super::$name(&store).await;
                store.cleanup().await;
            }
        }
    )*};
}

both_backends!(
    migrate_twice_is_a_no_op,
    ping_and_pool_stats,
    accounts_create_and_lookup,
    account_updates,
    duplicate_username_conflicts,
    sql_looking_input_is_stored_verbatim,
    accounts_by_ids_in_one_query,
    session_rotation_and_reuse,
    concurrent_rotations_have_one_winner,
    revoke_family_session_and_all,
    active_sessions_and_expired_cleanup,
    session_conflicts_and_missing_account,
    record_match_is_idempotent,
    concurrent_duplicate_reports_count_once,
    stats_sum_across_matches,
    player_history_pages_newest_first,
    leaderboard_order_and_ranks,
    bans_active_lifted_expired,
    audit_log_newest_first,
    closed_store_is_unavailable,
);

// ---- fixtures ----

/// A fixed instant with sub-microsecond digits, so every test also checks that both
/// backends store time identically (truncated to microseconds).
fn t(offset_secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 1, 2, 3, 4, 5).unwrap()
        + chrono::Duration::nanoseconds(123_456_789)
        + chrono::Duration::seconds(offset_secs)
}

fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(6)
}

fn new_account(username: &str) -> NewAccount {
    NewAccount {
        id: Uuid::new_v4(),
        username: username.to_owned(),
        display_name: format!("{username} the Great"),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_owned(),
        role: Role::Player,
        created_at: t(0),
    }
}

async fn account(store: &Store, username: &str) -> Account {
    store.create_account(&new_account(username)).await.expect("create account")
}

fn new_session(account_id: Uuid, family_id: Uuid, created_at: DateTime<Utc>) -> NewSession {
    NewSession {
        id: Uuid::new_v4(),
        account_id,
        family_id,
        token_hash: format!("hash-{}", Uuid::new_v4().simple()),
        created_at,
        expires_at: created_at + chrono::Duration::days(30),
        user_agent: Some("loadgen/1.0".to_owned()),
        ip: Some("203.0.113.7".to_owned()),
    }
}

fn ms(t: DateTime<Utc>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap()
}

/// A 5-minute match ending at `ended_at`; `players` are (account, name, kills, deaths).
fn match_result(ended_at: DateTime<Utc>, winner: Option<Uuid>, players: &[(Uuid, &str, u16, u16)]) -> MatchResult {
    MatchResult {
        match_id: Uuid::new_v4(),
        lobby_id: 42,
        node_id: "node-a".to_owned(),
        mode: "deathmatch".to_owned(),
        map: "warehouse".to_owned(),
        started_at_ms: ms(ended_at) - 300_000,
        ended_at_ms: ms(ended_at),
        winner,
        kill_target: 50,
        players: players
            .iter()
            .map(|&(account, name, kills, deaths)| PlayerResult { account, name: name.to_owned(), kills, deaths })
            .collect(),
    }
}

fn ids(n: usize) -> Vec<Uuid> {
    (0..n).map(|_| Uuid::new_v4()).collect()
}

// ---- basics ----

async fn migrate_twice_is_a_no_op(store: &Store) {
    store.migrate().await.expect("second migrate");
    assert!(store.account_by_username("nobody").await.unwrap().is_none());
}

async fn ping_and_pool_stats(store: &Store) {
    store.ping().await.unwrap();
    let stats = store.pool_stats();
    assert_eq!(stats.max, 5);
    assert!(stats.size >= 1 && stats.size <= stats.max, "{stats:?}");
    assert!(stats.idle <= stats.size, "{stats:?}");
}

// ---- accounts ----

async fn accounts_create_and_lookup(store: &Store) {
    let new = new_account("Alice_01");
    let created = store.create_account(&new).await.unwrap();
    assert_eq!(created.id, new.id);
    assert_eq!(created.username, "alice_01", "usernames are stored lower-case");
    assert_eq!(created.display_name, "Alice_01 the Great", "display names are kept as given");
    assert_eq!(created.password_hash, new.password_hash);
    assert_eq!(created.role, Role::Player);
    assert_eq!(created.created_at, micros(new.created_at));
    assert_eq!(created.last_login_at, None);

    for spelling in ["alice_01", "ALICE_01", "aLiCe_01"] {
        assert_eq!(store.account_by_username(spelling).await.unwrap().as_ref(), Some(&created), "{spelling}");
    }
    assert_eq!(store.account_by_id(new.id).await.unwrap(), Some(created));
    assert_eq!(store.account_by_username("alice").await.unwrap(), None);
    assert_eq!(store.account_by_id(Uuid::new_v4()).await.unwrap(), None);
}

async fn account_updates(store: &Store) {
    let a = account(store, "carol").await;
    store.record_login(a.id, t(60)).await.unwrap();
    store.set_password(a.id, "new-hash").await.unwrap();
    store.set_role(a.id, Role::Admin).await.unwrap();
    let updated = store.account_by_id(a.id).await.unwrap().unwrap();
    assert_eq!(updated.last_login_at, Some(micros(t(60))));
    assert_eq!(updated.password_hash, "new-hash");
    assert_eq!(updated.role, Role::Admin);

    let missing = Uuid::new_v4();
    assert_eq!(store.record_login(missing, t(0)).await, Err(StoreError::NotFound));
    assert_eq!(store.set_password(missing, "x").await, Err(StoreError::NotFound));
    assert_eq!(store.set_role(missing, Role::Admin).await, Err(StoreError::NotFound));
}

async fn duplicate_username_conflicts(store: &Store) {
    account(store, "bob").await;
    let err = store.create_account(&new_account("BOB")).await.unwrap_err();
    assert_eq!(err, StoreError::Conflict("username"));

    let mut same_id = new_account("bobby");
    let first = store.create_account(&same_id).await.unwrap();
    same_id.username = "robert".to_owned();
    assert_eq!(store.create_account(&same_id).await, Err(StoreError::Conflict("id")));
    assert_eq!(store.account_by_id(first.id).await.unwrap().unwrap().username, "bobby");
}

async fn sql_looking_input_is_stored_verbatim(store: &Store) {
    let hostile = "robert'); drop table accounts;--";
    let mut new = new_account(hostile);
    new.display_name = "\" OR 1=1; -- ünïcødé % _ \\ '".to_owned();
    let created = store.create_account(&new).await.unwrap();
    assert_eq!(created.username, hostile);
    assert_eq!(created.display_name, new.display_name);
    assert_eq!(store.account_by_username(hostile).await.unwrap(), Some(created));
    // Wildcards are data, not patterns.
    assert_eq!(store.account_by_username("%").await.unwrap(), None);
    assert_eq!(store.account_by_username("' OR '1'='1").await.unwrap(), None);
    // The table is still there and still works.
    account(store, "after").await;
}

async fn accounts_by_ids_in_one_query(store: &Store) {
    let a = account(store, "a1").await;
    let b = account(store, "b1").await;
    let c = account(store, "c1").await;
    let found = store.accounts_by_ids(&[c.id, Uuid::new_v4(), a.id, a.id]).await.unwrap();
    assert_eq!(found, vec![c.clone(), a.clone()], "existing accounts, once each, in the order asked");
    assert_eq!(store.accounts_by_ids(&[]).await.unwrap(), vec![]);

    // Longer than one IN list: still everything, still in order.
    let mut many = ids(1200);
    many[3] = b.id;
    many[777] = a.id;
    many[1199] = c.id;
    assert_eq!(store.accounts_by_ids(&many).await.unwrap(), vec![b, a, c]);
}

// ---- sessions ----

async fn session_rotation_and_reuse(store: &Store) {
    let acct = account(store, "dave").await;
    let family = Uuid::new_v4();
    let first = new_session(acct.id, family, t(0));
    store.create_session(&first).await.unwrap();
    let stored = store.session_by_hash(&first.token_hash).await.unwrap().unwrap();
    assert_eq!(stored.id, first.id);
    assert_eq!(stored.expires_at, micros(first.expires_at));
    assert_eq!(stored.user_agent.as_deref(), Some("loadgen/1.0"));
    assert!(stored.is_active(t(1)));

    let second = new_session(acct.id, family, t(10));
    assert!(store.rotate_session(first.id, &second, t(10)).await.unwrap());
    let old = store.session_by_hash(&first.token_hash).await.unwrap().unwrap();
    assert_eq!(old.rotated_at, Some(micros(t(10))));
    assert!(store.session_by_hash(&second.token_hash).await.unwrap().unwrap().is_active(t(11)));

    // Reuse: the rotated token is presented again. Nothing changes.
    let third = new_session(acct.id, family, t(20));
    assert!(!store.rotate_session(first.id, &third, t(20)).await.unwrap());
    assert_eq!(store.session_by_hash(&third.token_hash).await.unwrap(), None);
    assert_eq!(store.session_by_hash(&first.token_hash).await.unwrap().unwrap().rotated_at, Some(micros(t(10))));

    // The live token still rotates; one from another family or account does not.
    assert!(!store.rotate_session(second.id, &new_session(acct.id, Uuid::new_v4(), t(30)), t(30)).await.unwrap());
    assert!(store.rotate_session(second.id, &third, t(30)).await.unwrap());

    // Expired and revoked tokens don't rotate.
    let expired = new_session(acct.id, Uuid::new_v4(), t(0));
    store.create_session(&expired).await.unwrap();
    let after_expiry = expired.expires_at + chrono::Duration::seconds(1);
    let next = new_session(acct.id, expired.family_id, after_expiry);
    assert!(!store.rotate_session(expired.id, &next, after_expiry).await.unwrap());
    let revoked = new_session(acct.id, Uuid::new_v4(), t(0));
    store.create_session(&revoked).await.unwrap();
    store.revoke_family(revoked.family_id, t(1)).await.unwrap();
    assert!(!store.rotate_session(revoked.id, &new_session(acct.id, revoked.family_id, t(2)), t(2)).await.unwrap());
    // Unknown ids are simply not active.
    assert!(!store.rotate_session(Uuid::new_v4(), &new_session(acct.id, family, t(3)), t(3)).await.unwrap());
}

async fn concurrent_rotations_have_one_winner(store: &Store) {
    let acct = account(store, "erin").await;
    let family = Uuid::new_v4();
    let first = new_session(acct.id, family, t(0));
    store.create_session(&first).await.unwrap();
    let old_id = first.id;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            let next = new_session(acct.id, family, t(10 + i));
            tokio::spawn(async move { store.rotate_session(old_id, &next, t(10)).await })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap().unwrap());
    }
    assert_eq!(winners, 1);
    assert_eq!(store.active_sessions(acct.id, t(100)).await.unwrap().len(), 1);
}

async fn revoke_family_session_and_all(store: &Store) {
    let acct = account(store, "frank").await;
    let other = account(store, "grace").await;
    let (f1, f2, f3) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let s1 = new_session(acct.id, f1, t(0));
    let s2 = new_session(acct.id, f1, t(5));
    let s3 = new_session(acct.id, f2, t(6));
    let s4 = new_session(acct.id, f3, t(7));
    let theirs = new_session(other.id, Uuid::new_v4(), t(8));
    store.create_session(&s1).await.unwrap();
    assert!(store.rotate_session(s1.id, &s2, t(5)).await.unwrap());
    for s in [&s3, &s4, &theirs] {
        store.create_session(s).await.unwrap();
    }

    // Logging out one device revokes its whole family, rotated ancestors included.
    assert!(store.revoke_session(acct.id, s2.id, t(20)).await.unwrap());
    for s in [&s1, &s2] {
        assert_eq!(store.session_by_hash(&s.token_hash).await.unwrap().unwrap().revoked_at, Some(micros(t(20))));
    }
    // Again: still that account's session, and the first revocation time stays.
    assert!(store.revoke_session(acct.id, s1.id, t(25)).await.unwrap());
    assert_eq!(store.session_by_hash(&s1.token_hash).await.unwrap().unwrap().revoked_at, Some(micros(t(20))));
    // Not their session: nothing happens.
    assert!(!store.revoke_session(acct.id, theirs.id, t(30)).await.unwrap());
    assert!(!store.revoke_session(acct.id, Uuid::new_v4(), t(30)).await.unwrap());
    assert_eq!(store.active_sessions(other.id, t(31)).await.unwrap().len(), 1);

    assert_eq!(store.revoke_family(f2, t(40)).await.unwrap(), 1);
    assert_eq!(store.revoke_family(f2, t(41)).await.unwrap(), 0, "already revoked");
    let active: Vec<Uuid> = store.active_sessions(acct.id, t(42)).await.unwrap().iter().map(|s| s.id).collect();
    assert_eq!(active, vec![s4.id]);

    assert_eq!(store.revoke_all_sessions(acct.id, t(50)).await.unwrap(), 1);
    assert!(store.active_sessions(acct.id, t(51)).await.unwrap().is_empty());
    assert_eq!(store.active_sessions(other.id, t(51)).await.unwrap().len(), 1, "other accounts untouched");
}

async fn active_sessions_and_expired_cleanup(store: &Store) {
    let acct = account(store, "heidi").await;
    let old = new_session(acct.id, Uuid::new_v4(), t(0));
    let mut short = new_session(acct.id, Uuid::new_v4(), t(10));
    short.expires_at = t(100);
    let newest = new_session(acct.id, Uuid::new_v4(), t(20));
    for s in [&old, &short, &newest] {
        store.create_session(s).await.unwrap();
    }
    let rotated_to = new_session(acct.id, old.family_id, t(30));
    assert!(store.rotate_session(old.id, &rotated_to, t(30)).await.unwrap());

    let ids = |sessions: Vec<Session>| sessions.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(ids(store.active_sessions(acct.id, t(50)).await.unwrap()), vec![rotated_to.id, newest.id, short.id]);
    assert_eq!(ids(store.active_sessions(acct.id, t(100)).await.unwrap()), vec![rotated_to.id, newest.id], "expired");

    // Cleanup removes only what expired before the cutoff.
    assert_eq!(store.delete_expired_sessions(t(100)).await.unwrap(), 0, "expires_at == cutoff stays");
    assert_eq!(store.delete_expired_sessions(t(101)).await.unwrap(), 1);
    assert_eq!(store.session_by_hash(&short.token_hash).await.unwrap(), None);
    let after_old = old.expires_at + chrono::Duration::seconds(1);
    assert_eq!(store.delete_expired_sessions(after_old).await.unwrap(), 1, "rotated rows go too once expired");
    assert_eq!(store.session_by_hash(&old.token_hash).await.unwrap(), None);
    assert_eq!(ids(store.active_sessions(acct.id, t(50)).await.unwrap()), vec![rotated_to.id, newest.id]);
}

async fn session_conflicts_and_missing_account(store: &Store) {
    let acct = account(store, "ivan").await;
    let s = new_session(acct.id, Uuid::new_v4(), t(0));
    store.create_session(&s).await.unwrap();
    let mut dup = new_session(acct.id, Uuid::new_v4(), t(1));
    dup.token_hash = s.token_hash.clone();
    assert_eq!(store.create_session(&dup).await, Err(StoreError::Conflict("token_hash")));
    assert_eq!(
        store.create_session(&new_session(Uuid::new_v4(), Uuid::new_v4(), t(2))).await,
        Err(StoreError::NotFound)
    );
    // A rotation whose new token collides rolls back: the old one stays active.
    dup.family_id = s.family_id;
    assert_eq!(store.rotate_session(s.id, &dup, t(3)).await, Err(StoreError::Conflict("token_hash")));
    assert!(store.session_by_hash(&s.token_hash).await.unwrap().unwrap().is_active(t(4)));
}

// ---- matches and stats ----

async fn record_match_is_idempotent(store: &Store) {
    let (p1, p2) = (Uuid::new_v4(), Uuid::new_v4());
    let result = match_result(t(0), Some(p1), &[(p1, "One", 50, 10), (p2, "Two", 10, 50)]);
    assert!(store.record_match(&result).await.unwrap());
    assert!(!store.record_match(&result).await.unwrap(), "a second report changes nothing");
    // Even a "corrected" resend with the same id is ignored: the first report wins.
    let mut resent = result.clone();
    resent.players[0].kills = 49;
    assert!(!store.record_match(&resent).await.unwrap());

    let stats = store.player_stats(p1).await.unwrap().unwrap();
    assert_eq!(
        stats,
        PlayerStats { account_id: p1, display_name: "One".into(), matches: 1, wins: 1, kills: 50, deaths: 10 }
    );
    assert_eq!(store.player_matches(p2, 10, None).await.unwrap().len(), 1);

    let record = store.match_by_id(result.match_id).await.unwrap().unwrap();
    assert_eq!(record.id, result.match_id);
    assert_eq!(record.lobby_id, 42);
    assert_eq!(record.node_id, "node-a");
    assert_eq!((record.mode.as_str(), record.map.as_str()), ("deathmatch", "warehouse"));
    assert_eq!(record.started_at, t(-300).trunc_subsecs(3));
    assert_eq!(record.ended_at, t(0).trunc_subsecs(3));
    assert_eq!(record.winner, Some(p1));
    assert_eq!(record.kill_target, 50);
    let players: Vec<_> =
        record.players.iter().map(|p| (p.account_id, p.display_name.as_str(), p.kills, p.deaths)).collect();
    assert_eq!(players, vec![(p1, "One", 50, 10), (p2, "Two", 10, 50)]);
    assert_eq!(store.match_by_id(Uuid::new_v4()).await.unwrap(), None);

    // Out-of-range timestamps are refused, not stored wrongly.
    let mut bad = match_result(t(0), None, &[(p1, "One", 0, 0)]);
    bad.ended_at_ms = u64::MAX;
    assert!(matches!(store.record_match(&bad).await, Err(StoreError::Database(_))));
    assert_eq!(store.match_by_id(bad.match_id).await.unwrap(), None);
}

async fn concurrent_duplicate_reports_count_once(store: &Store) {
    let p = Uuid::new_v4();
    let result = match_result(t(0), Some(p), &[(p, "Racer", 50, 0), (Uuid::new_v4(), "Other", 0, 50)]);
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (store, result) = (store.clone(), result.clone());
            tokio::spawn(async move { store.record_match(&result).await })
        })
        .collect();
    let mut recorded = 0;
    for task in tasks {
        recorded += usize::from(task.await.unwrap().unwrap());
    }
    assert_eq!(recorded, 1);
    let stats = store.player_stats(p).await.unwrap().unwrap();
    assert_eq!((stats.matches, stats.wins, stats.kills), (1, 1, 50));
}

async fn stats_sum_across_matches(store: &Store) {
    let (a, b, c) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let m1 = match_result(t(0), Some(a), &[(a, "A-old", 50, 5), (b, "B", 20, 30)]);
    let m2 = match_result(t(1000), Some(b), &[(a, "A-new", 30, 20), (b, "B", 50, 12), (c, "C", 1, 2)]);
    let m3 = match_result(t(2000), None, &[(a, "A-new", 7, 8), (c, "C", 3, 4)]);
    // Reported out of order: the name still comes from the latest match by end time.
    for m in [&m2, &m3, &m1] {
        assert!(store.record_match(m).await.unwrap());
    }
    let stats = store.player_stats(a).await.unwrap().unwrap();
    assert_eq!(
        stats,
        PlayerStats { account_id: a, display_name: "A-new".into(), matches: 3, wins: 1, kills: 87, deaths: 33 }
    );
    let stats = store.player_stats(b).await.unwrap().unwrap();
    assert_eq!((stats.matches, stats.wins, stats.kills, stats.deaths), (2, 1, 70, 42));
    let stats = store.player_stats(c).await.unwrap().unwrap();
    assert_eq!((stats.matches, stats.wins, stats.kills, stats.deaths), (2, 0, 4, 6));
    assert_eq!(store.player_stats(Uuid::new_v4()).await.unwrap(), None);

    // A player listed twice counts once, with the lines summed.
    let d = Uuid::new_v4();
    assert!(store.record_match(&match_result(t(3000), Some(d), &[(d, "D", 5, 1), (d, "D", 6, 2)])).await.unwrap());
    let stats = store.player_stats(d).await.unwrap().unwrap();
    assert_eq!((stats.matches, stats.wins, stats.kills, stats.deaths), (1, 1, 11, 3));
}

async fn player_history_pages_newest_first(store: &Store) {
    let (me, rival) = (Uuid::new_v4(), Uuid::new_v4());
    let mut matches = Vec::new();
    for i in 0..5u16 {
        let winner = if i % 2 == 0 { me } else { rival };
        let result = match_result(t(i64::from(i) * 600), Some(winner), &[(me, "Me", i, 1), (rival, "Rival", 1, i)]);
        assert!(store.record_match(&result).await.unwrap());
        matches.push(result);
    }
    // Someone else's match never shows up in mine.
    assert!(store.record_match(&match_result(t(10_000), None, &[(rival, "Rival", 0, 0)])).await.unwrap());

    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store.player_matches(me, 2, before).await.unwrap();
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        before = Some(last.ended_at);
        seen.extend(page);
    }
    let expected_ids: Vec<Uuid> = matches.iter().rev().map(|m| m.match_id).collect();
    assert_eq!(seen.iter().map(|m| m.match_id).collect::<Vec<_>>(), expected_ids);

    let newest = &seen[0];
    assert_eq!(newest.ended_at, t(2400).trunc_subsecs(3));
    assert_eq!(newest.started_at, t(2100).trunc_subsecs(3));
    assert_eq!((newest.kills, newest.deaths, newest.won, newest.players), (4, 1, true, 2));
    assert_eq!((newest.mode.as_str(), newest.map.as_str()), ("deathmatch", "warehouse"));
    assert!(!seen[1].won);
    assert!(store.player_matches(me, 0, None).await.unwrap().is_empty());
    assert!(store.player_matches(Uuid::new_v4(), 10, None).await.unwrap().is_empty());
}

async fn leaderboard_order_and_ranks(store: &Store) {
    // Ids chosen so the last tie-break (account id) is predictable.
    let id = |n: u8| Uuid::from_bytes([n; 16]);
    let (top, tie_low, tie_high, fewer_kills, more_deaths, nobody) = (id(9), id(1), id(2), id(3), id(4), id(5));
    // top: 2 wins. tie_low/tie_high: 1 win, 60 kills, 5 deaths (tie to the id).
    // fewer_kills: 1 win, 59 kills. more_deaths: 1 win, 60 kills, 6 deaths. nobody: 0 wins.
    let results = [
        match_result(t(0), Some(top), &[(top, "Top", 50, 0)]),
        match_result(t(1), Some(top), &[(top, "Top", 50, 0)]),
        match_result(t(2), Some(tie_high), &[(tie_high, "TieHigh", 60, 5)]),
        match_result(t(3), Some(tie_low), &[(tie_low, "TieLow", 60, 5)]),
        match_result(t(4), Some(fewer_kills), &[(fewer_kills, "FewerKills", 59, 0)]),
        match_result(t(5), Some(more_deaths), &[(more_deaths, "MoreDeaths", 60, 6)]),
        match_result(t(6), None, &[(nobody, "Nobody", 99, 0)]),
    ];
    for r in &results {
        assert!(store.record_match(r).await.unwrap());
    }
    let expected = [top, tie_low, tie_high, more_deaths, fewer_kills, nobody];

    let (page, total) = store.leaderboard(10, 0).await.unwrap();
    assert_eq!(total, 6);
    assert_eq!(page.iter().map(|r| r.account_id).collect::<Vec<_>>(), expected);
    assert_eq!(page.iter().map(|r| r.rank).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5, 6]);
    assert_eq!(
        page[0],
        LeaderboardRow {
            rank: 1,
            account_id: top,
            display_name: "Top".into(),
            matches: 2,
            wins: 2,
            kills: 100,
            deaths: 0
        }
    );

    let (page, total) = store.leaderboard(2, 2).await.unwrap();
    assert_eq!(total, 6);
    assert_eq!(page.iter().map(|r| (r.rank, r.account_id)).collect::<Vec<_>>(), vec![(3, tie_high), (4, more_deaths)]);
    let (page, total) = store.leaderboard(10, 6).await.unwrap();
    assert!(page.is_empty());
    assert_eq!(total, 6);
}

// ---- bans and audit ----

async fn bans_active_lifted_expired(store: &Store) {
    let admin = account(store, "admin").await;
    let player = account(store, "mallory").await;
    assert_eq!(store.active_ban(player.id, t(0)).await.unwrap(), None);

    let temporary = NewBan {
        id: Uuid::new_v4(),
        account_id: player.id,
        reason: "spam".into(),
        created_by: Some(admin.id),
        created_at: t(0),
        expires_at: Some(t(3600)),
    };
    let ban = store.create_ban(&temporary).await.unwrap();
    assert_eq!(ban.lifted_at, None);
    assert_eq!(ban.expires_at, Some(micros(t(3600))));
    assert_eq!(store.active_ban(player.id, t(10)).await.unwrap(), Some(ban.clone()));
    assert_eq!(store.active_ban(player.id, t(3600)).await.unwrap(), None, "expired");
    assert_eq!(store.active_ban(admin.id, t(10)).await.unwrap(), None);

    let permanent =
        NewBan { id: Uuid::new_v4(), reason: "cheating".into(), created_at: t(20), expires_at: None, ..temporary };
    let perm = store.create_ban(&permanent).await.unwrap();
    assert_eq!(store.active_ban(player.id, t(30)).await.unwrap(), Some(perm.clone()), "newest of overlapping bans");
    assert_eq!(store.active_ban(player.id, t(1_000_000)).await.unwrap(), Some(perm.clone()));
    assert!(perm.is_active(t(1_000_000)));

    assert!(store.lift_ban(perm.id, t(40)).await.unwrap());
    assert!(!store.lift_ban(perm.id, t(41)).await.unwrap(), "already lifted");
    assert!(!store.lift_ban(Uuid::new_v4(), t(41)).await.unwrap());
    assert_eq!(store.active_ban(player.id, t(50)).await.unwrap(), Some(ban), "the temporary one still holds");
    assert_eq!(store.active_ban(player.id, t(5000)).await.unwrap(), None);

    let orphan = NewBan { id: Uuid::new_v4(), account_id: Uuid::new_v4(), ..permanent };
    assert_eq!(store.create_ban(&orphan).await, Err(StoreError::NotFound));
}

async fn audit_log_newest_first(store: &Store) {
    let actor = Uuid::new_v4();
    let entries: Vec<NewAudit> = (0..5)
        .map(|i| NewAudit {
            id: Uuid::new_v4(),
            actor: (i % 2 == 0).then_some(actor),
            action: format!("test.action{i}"),
            target: (i != 3).then(|| format!("account:{i}")),
            detail: serde_json::json!({ "i": i, "nested": { "list": [1, "two", null] }, "text": "it's \"quoted\"" }),
            at: t(i64::from(i) * 10),
        })
        .collect();
    // Appended out of order on purpose.
    for i in [2, 0, 4, 1, 3] {
        store.append_audit(&entries[i]).await.unwrap();
    }
    let expected: Vec<AuditEntry> = entries
        .iter()
        .rev()
        .map(|e| AuditEntry {
            id: e.id,
            actor: e.actor,
            action: e.action.clone(),
            target: e.target.clone(),
            detail: e.detail.clone(),
            at: micros(e.at),
        })
        .collect();
    assert_eq!(store.audit_log(100, None).await.unwrap(), expected);
    assert_eq!(store.audit_log(2, None).await.unwrap(), expected[..2]);
    assert_eq!(store.audit_log(2, Some(expected[1].at)).await.unwrap(), expected[2..4]);
    assert_eq!(store.audit_log(10, Some(expected[4].at)).await.unwrap(), vec![]);
    assert_eq!(store.append_audit(&entries[0]).await, Err(StoreError::Conflict("id")));
}

// ---- outages ----

async fn closed_store_is_unavailable(store: &Store) {
    let other_handle = store.clone();
    store.close().await;
    assert!(matches!(other_handle.ping().await, Err(StoreError::Unavailable(_))));
    assert!(matches!(other_handle.create_account(&new_account("late")).await, Err(StoreError::Unavailable(_))));
    assert!(matches!(other_handle.leaderboard(10, 0).await, Err(StoreError::Unavailable(_))));
}

#[tokio::test]
async fn postgres_on_a_closed_port_is_unavailable_quickly() {
    let started = Instant::now();
    let err = Store::connect_with_timeout("postgres://postgres@127.0.0.1:1/test", 2, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn sqlite_in_a_missing_directory_is_unavailable() {
    let url = format!("sqlite://{}/missing-dir-{}/db.sqlite", std::env::temp_dir().display(), Uuid::new_v4());
    let err = Store::connect_with_timeout(&url, 1, Duration::from_secs(1)).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
}

#[tokio::test]
async fn unsupported_url_is_refused() {
    let err = Store::connect("mysql://root:secret@localhost/db", 1).await.unwrap_err();
    assert!(matches!(&err, StoreError::Database(msg) if !msg.contains("secret")), "{err:?}");
}

#[tokio::test]
async fn sqlite_memory_keeps_its_data() {
    let store = Store::connect("sqlite::memory:", 8).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.migrate().await.unwrap();
    let a = account(&store, "memo").await;
    // Every query sees the same database, however many ran before.
    for _ in 0..3 {
        assert_eq!(store.account_by_id(a.id).await.unwrap().map(|x| x.id), Some(a.id));
    }
    assert_eq!(store.pool_stats().max, 1);
    store.close().await;
}

#[tokio::test]
async fn sqlite_file_persists_across_reopen() {
    let test_store = testing::sqlite().await;
    let url = test_store.url().to_owned();
    let a = account(&test_store, "durable").await;
    test_store.close().await;
    let reopened = Store::connect(&url, 2).await.unwrap();
    reopened.migrate().await.unwrap();
    assert_eq!(reopened.account_by_username("durable").await.unwrap().map(|x| x.id), Some(a.id));
    reopened.close().await;
    test_store.cleanup().await;
}

#[tokio::test]
async fn postgres_schemas_are_isolated() {
    let (Some(one), Some(two)) = (testing::postgres().await, testing::postgres().await) else { return };
    assert_eq!(one.backend(), Backend::Postgres);
    account(&one, "isolated").await;
    assert!(two.account_by_username("isolated").await.unwrap().is_none());
    account(&two, "isolated").await;
    let names: HashSet<_> = [one.url().to_owned(), two.url().to_owned()].into_iter().collect();
    assert_eq!(names.len(), 2);
    one.cleanup().await;
    two.cleanup().await;
}
