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
    cosmetics_catalog_is_seeded,
    free_cosmetics_are_owned_by_everyone,
    loadout_equips_only_what_is_owned,
    donation_ledger_rows,
    completed_event_grants_supporter_items_once,
    same_event_five_times_applies_once,
    two_events_for_one_checkout_make_one_donation,
    completed_event_for_unknown_account_records_nothing,
    refund_with_revoke_policy_revokes_and_unequips,
    refund_with_keep_policy_keeps,
    refund_keeps_entitlements_while_another_donation_is_completed,
    dispute_marks_the_donation,
    refund_for_unknown_payment_is_recorded_once,
    concurrent_deliveries_grant_once,
    loadout_changes_racing_a_refund_never_keep_unowned_items,
    revenue_summary_adds_up,
    active_players_counts_distinct_accounts,
    payment_event_on_a_closed_store_changes_nothing,
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

// ---- cosmetics ----

/// The seeded supporter items, sorted by id.
const SUPPORTER_ITEMS: [&str; 4] = ["cyan", "gold", "supporter", "violet"];
const FREE_COLORS: [&str; 4] = ["white", "red", "blue", "green"];

fn loadout(badge: Option<&str>, name_color: Option<&str>) -> Loadout {
    Loadout { badge: badge.map(str::to_owned), name_color: name_color.map(str::to_owned) }
}

/// What `account` owns that only a donation grants, sorted.
async fn supporter_items(store: &Store, account: Uuid) -> Vec<String> {
    let mut ids: Vec<String> = store
        .owned_cosmetics(account)
        .await
        .unwrap()
        .into_iter()
        .filter(|owned| owned.cosmetic.supporter)
        .map(|owned| owned.cosmetic.id)
        .collect();
    ids.sort();
    ids
}

async fn cosmetics_catalog_is_seeded(store: &Store) {
    let catalog = store.cosmetics().await.unwrap();
    let summary: Vec<_> = catalog.iter().map(|c| (c.id.as_str(), c.kind, c.value.as_str(), c.supporter)).collect();
    assert_eq!(
        summary,
        vec![
            ("supporter", CosmeticKind::Badge, "★", true),
            ("white", CosmeticKind::NameColor, "#ffffff", false),
            ("red", CosmeticKind::NameColor, "#ff5555", false),
            ("blue", CosmeticKind::NameColor, "#5599ff", false),
            ("green", CosmeticKind::NameColor, "#55dd77", false),
            ("gold", CosmeticKind::NameColor, "#ffcc33", true),
            ("violet", CosmeticKind::NameColor, "#bb77ff", true),
            ("cyan", CosmeticKind::NameColor, "#33dddd", true),
        ]
    );
    assert_eq!(catalog[0].name, "Supporter");
    assert_eq!(catalog[5].name, "Gold");
    // Positions increase within each kind.
    assert!(catalog[1..].windows(2).all(|w| w[0].sort < w[1].sort), "{catalog:?}");
}

async fn free_cosmetics_are_owned_by_everyone(store: &Store) {
    let a = account(store, "freebie").await;
    for who in [a.id, Uuid::new_v4()] {
        let owned = store.owned_cosmetics(who).await.unwrap();
        let ids: Vec<_> = owned.iter().map(|o| o.cosmetic.id.as_str()).collect();
        assert_eq!(ids, FREE_COLORS, "free colors in catalog order, nothing else");
        assert!(owned.iter().all(|o| o.source == OwnedCosmetic::FREE && o.granted_at.is_none()), "{owned:?}");
    }
    assert_eq!(store.loadout(a.id).await.unwrap(), Loadout::default(), "nothing equipped until chosen");
}

async fn loadout_equips_only_what_is_owned(store: &Store) {
    let a = account(store, "dresser").await;
    let other = account(store, "bystander").await;
    store.set_loadout(a.id, &loadout(None, Some("red"))).await.unwrap();
    assert_eq!(store.loadout(a.id).await.unwrap(), loadout(None, Some("red")));

    // Each refusal names the offending id and changes nothing.
    let refused = [
        (loadout(None, Some("gold")), "gold"), // a supporter color, not owned
        (loadout(Some("supporter"), Some("blue")), "supporter"), // a supporter badge, not owned
        (loadout(None, Some("supporter")), "supporter"), // a badge in the color slot
        (loadout(Some("white"), None), "white"), // a color in the badge slot
        (loadout(None, Some("no-such-color")), "no-such-color"),
        (loadout(None, Some("RED")), "RED"), // ids are exact
        (loadout(None, Some("red' OR '1'='1")), "red' OR '1'='1"),
    ];
    for (wanted, id) in refused {
        assert_eq!(store.set_loadout(a.id, &wanted).await, Err(StoreError::NotOwned(id.to_owned())), "{wanted:?}");
        assert_eq!(store.loadout(a.id).await.unwrap(), loadout(None, Some("red")));
    }

    store.set_loadout(a.id, &loadout(None, Some("green"))).await.unwrap();
    assert_eq!(store.loadout(a.id).await.unwrap(), loadout(None, Some("green")));
    store.set_loadout(a.id, &Loadout::default()).await.unwrap();
    assert_eq!(store.loadout(a.id).await.unwrap(), Loadout::default());
    assert_eq!(store.loadout(other.id).await.unwrap(), Loadout::default(), "other accounts untouched");
    assert_eq!(store.set_loadout(Uuid::new_v4(), &loadout(None, Some("red"))).await, Err(StoreError::NotFound));
}

// ---- donations ----

const USD_5: i64 = 500;

fn new_donation(account_id: Uuid, session: &str, created_at: DateTime<Utc>) -> NewDonation {
    NewDonation {
        id: Uuid::new_v4(),
        account_id,
        checkout_session_id: session.to_owned(),
        amount_cents: USD_5,
        currency: "USD".to_owned(),
        created_at,
    }
}

fn event(event_id: &str, event_type: &str, effect: PaymentEffect, received_at: DateTime<Utc>) -> PaymentEvent {
    PaymentEvent { event_id: event_id.to_owned(), event_type: event_type.to_owned(), effect, received_at }
}

/// The payment intent Stripe would attach to checkout `session` in these tests.
fn intent_of(session: &str) -> String {
    format!("pi_{session}")
}

/// `checkout.session.completed` for a $5 donation of `account` through `session`.
fn completed(event_id: &str, account: Uuid, session: &str, at: DateTime<Utc>) -> PaymentEvent {
    completed_amount(event_id, account, session, USD_5, "usd", at)
}

fn completed_amount(
    event_id: &str,
    account: Uuid,
    session: &str,
    amount_cents: i64,
    currency: &str,
    at: DateTime<Utc>,
) -> PaymentEvent {
    let effect = PaymentEffect::Completed {
        checkout_session_id: session.to_owned(),
        payment_intent_id: Some(intent_of(session)),
        account_id: account,
        amount_cents,
        currency: currency.to_owned(),
        at,
    };
    event(event_id, "checkout.session.completed", effect, at)
}

fn refunded(event_id: &str, session: &str, at: DateTime<Utc>) -> PaymentEvent {
    let effect = PaymentEffect::Refunded { payment_intent_id: intent_of(session), at };
    event(event_id, "charge.refunded", effect, at)
}

fn disputed(event_id: &str, session: &str, at: DateTime<Utc>) -> PaymentEvent {
    let effect = PaymentEffect::Disputed { payment_intent_id: intent_of(session), at };
    event(event_id, "charge.dispute.created", effect, at)
}

async fn apply(store: &Store, event: &PaymentEvent) -> EventOutcome {
    store.apply_payment_event(event, RevokePolicy::Revoke).await.unwrap()
}

async fn count(store: &Store, sql: &str) -> i64 {
    with_pool!(store, |pool| sqlx::query_scalar::<_, i64>(sql).fetch_one(pool).await).unwrap()
}

async fn entitlement_rows(store: &Store, account: Uuid) -> i64 {
    const SQL: &str = "SELECT COUNT(*) FROM entitlements WHERE account_id = $1";
    with_pool!(store, |pool| sqlx::query_scalar::<_, i64>(SQL).bind(account).fetch_one(pool).await).unwrap()
}

/// The recorded outcome of `event_id`, if the event was recorded.
async fn recorded_outcome(store: &Store, event_id: &str) -> Option<String> {
    const SQL: &str = "SELECT outcome FROM stripe_events WHERE event_id = $1";
    with_pool!(store, |pool| sqlx::query_scalar::<_, String>(SQL).bind(event_id).fetch_optional(pool).await).unwrap()
}

async fn donation_ledger_rows(store: &Store) {
    let a = account(store, "ledger").await;
    let first = new_donation(a.id, "cs_ledger_1", t(0));
    let second = new_donation(a.id, "cs_ledger_2", t(60));
    store.create_donation(&first).await.unwrap();
    store.create_donation(&second).await.unwrap();

    let row = store.donation_by_session("cs_ledger_1").await.unwrap().unwrap();
    assert_eq!(
        row,
        Donation {
            id: first.id,
            account_id: a.id,
            checkout_session_id: "cs_ledger_1".into(),
            payment_intent_id: None,
            amount_cents: USD_5,
            currency: "usd".into(),
            status: DonationStatus::Pending,
            created_at: micros(t(0)),
            completed_at: None,
            refunded_at: None,
            disputed_at: None,
        }
    );
    let ids: Vec<Uuid> = store.donations_for(a.id).await.unwrap().iter().map(|d| d.id).collect();
    assert_eq!(ids, vec![second.id, first.id], "newest first");
    assert!(store.donations_for(Uuid::new_v4()).await.unwrap().is_empty());
    assert_eq!(store.donation_by_session("cs_missing").await.unwrap(), None);

    let same_session = new_donation(a.id, "cs_ledger_1", t(120));
    assert_eq!(store.create_donation(&same_session).await, Err(StoreError::Conflict("checkout_session_id")));
    let same_id = NewDonation { checkout_session_id: "cs_ledger_3".into(), ..first.clone() };
    assert_eq!(store.create_donation(&same_id).await, Err(StoreError::Conflict("id")));
    let orphan = new_donation(Uuid::new_v4(), "cs_orphan", t(0));
    assert_eq!(store.create_donation(&orphan).await, Err(StoreError::NotFound));
    // A payment intent belongs to one donation.
    assert!(matches!(
        apply(store, &completed("evt_l1", a.id, "cs_ledger_1", t(200))).await,
        EventOutcome::Granted { .. }
    ));
    let mut clash = completed("evt_l2", a.id, "cs_ledger_2", t(210));
    if let PaymentEffect::Completed { payment_intent_id, .. } = &mut clash.effect {
        *payment_intent_id = Some(intent_of("cs_ledger_1"));
    }
    assert_eq!(
        store.apply_payment_event(&clash, RevokePolicy::Revoke).await,
        Err(StoreError::Conflict("payment_intent_id"))
    );
    assert_eq!(recorded_outcome(store, "evt_l2").await, None, "a failed event is not recorded");
    assert_eq!(store.donation_by_session("cs_ledger_2").await.unwrap().unwrap().status, DonationStatus::Pending);
}

async fn completed_event_grants_supporter_items_once(store: &Store) {
    let a = account(store, "patron").await;
    let bystander = account(store, "bystander").await;
    store.create_donation(&new_donation(a.id, "cs_patron", t(0))).await.unwrap();
    assert_eq!(
        store.set_loadout(a.id, &loadout(Some("supporter"), Some("gold"))).await,
        Err(StoreError::NotOwned("supporter".into()))
    );

    let outcome = apply(store, &completed("evt_patron", a.id, "cs_patron", t(30))).await;
    let donation = store.donation_by_session("cs_patron").await.unwrap().unwrap();
    assert_eq!(outcome, EventOutcome::Granted { donation_id: donation.id, account_id: a.id });
    assert_eq!(donation.status, DonationStatus::Completed);
    assert_eq!(donation.payment_intent_id, Some(intent_of("cs_patron")));
    assert_eq!(donation.completed_at, Some(micros(t(30))));
    assert_eq!(donation.created_at, micros(t(0)), "the pending row was completed, not replaced");
    assert_eq!(recorded_outcome(store, "evt_patron").await.as_deref(), Some("granted"));

    assert_eq!(supporter_items(store, a.id).await, SUPPORTER_ITEMS);
    let owned = store.owned_cosmetics(a.id).await.unwrap();
    assert_eq!(owned.len(), 8, "everything in the catalog");
    for o in owned.iter().filter(|o| o.cosmetic.supporter) {
        assert_eq!((o.source.as_str(), o.granted_at), (OwnedCosmetic::DONATION, Some(micros(t(30)))), "{o:?}");
    }
    assert!(supporter_items(store, bystander.id).await.is_empty(), "only the donor");

    store.set_loadout(a.id, &loadout(Some("supporter"), Some("gold"))).await.unwrap();
    assert_eq!(store.loadout(a.id).await.unwrap(), loadout(Some("supporter"), Some("gold")));
    assert_eq!(
        store.set_loadout(bystander.id, &loadout(None, Some("gold"))).await,
        Err(StoreError::NotOwned("gold".into()))
    );
}

async fn same_event_five_times_applies_once(store: &Store) {
    let a = account(store, "repeat").await;
    store.create_donation(&new_donation(a.id, "cs_repeat", t(0))).await.unwrap();
    let delivery = completed("evt_repeat", a.id, "cs_repeat", t(10));
    let mut outcomes = Vec::new();
    for i in 0..5 {
        // Later deliveries arrive later; the event is still the same one.
        let redelivered = PaymentEvent { received_at: t(10 + i * 60), ..delivery.clone() };
        outcomes.push(apply(store, &redelivered).await);
    }
    assert!(matches!(outcomes[0], EventOutcome::Granted { account_id, .. } if account_id == a.id), "{outcomes:?}");
    assert_eq!(
        outcomes[1..],
        [EventOutcome::Duplicate, EventOutcome::Duplicate, EventOutcome::Duplicate, EventOutcome::Duplicate]
    );
    assert_eq!(store.donations_for(a.id).await.unwrap().len(), 1);
    assert_eq!(entitlement_rows(store, a.id).await, 4);
    assert_eq!(count(store, "SELECT COUNT(*) FROM stripe_events").await, 1);
}

async fn two_events_for_one_checkout_make_one_donation(store: &Store) {
    // No pending row: this checkout was not created through us.
    let a = account(store, "twice").await;
    let first = apply(store, &completed("evt_twice_1", a.id, "cs_twice", t(10))).await;
    let mut second = completed("evt_twice_2", a.id, "cs_twice", t(20));
    second.event_type = "checkout.session.async_payment_succeeded".into();
    assert_eq!(apply(store, &second).await, first, "the same donation, granted");

    let donations = store.donations_for(a.id).await.unwrap();
    assert_eq!(donations.len(), 1);
    let d = &donations[0];
    assert_eq!((d.status, d.amount_cents, d.currency.as_str()), (DonationStatus::Completed, USD_5, "usd"));
    assert_eq!((d.created_at, d.completed_at), (micros(t(10)), Some(micros(t(10)))), "the first completion holds");
    assert_eq!(entitlement_rows(store, a.id).await, 4);
    assert_eq!(count(store, "SELECT COUNT(*) FROM stripe_events").await, 2);

    // What was paid is what the ledger shows, whatever the pending row said.
    let b = account(store, "repriced").await;
    store.create_donation(&new_donation(b.id, "cs_repriced", t(0))).await.unwrap();
    apply(store, &completed_amount("evt_repriced", b.id, "cs_repriced", 700, "EUR", t(5))).await;
    let d = store.donation_by_session("cs_repriced").await.unwrap().unwrap();
    assert_eq!((d.amount_cents, d.currency.as_str()), (700, "eur"));
}

async fn completed_event_for_unknown_account_records_nothing(store: &Store) {
    let ghost = new_account("ghost");
    let delivery = completed("evt_ghost", ghost.id, "cs_ghost", t(10));
    assert_eq!(store.apply_payment_event(&delivery, RevokePolicy::Revoke).await, Err(StoreError::NotFound));
    assert_eq!(recorded_outcome(store, "evt_ghost").await, None);
    assert_eq!(store.donation_by_session("cs_ghost").await.unwrap(), None);

    // Nothing was recorded, so Stripe's retry applies it once the account exists.
    store.create_account(&ghost).await.unwrap();
    assert!(matches!(apply(store, &delivery).await, EventOutcome::Granted { .. }));
    assert_eq!(supporter_items(store, ghost.id).await, SUPPORTER_ITEMS);
}

async fn refund_with_revoke_policy_revokes_and_unequips(store: &Store) {
    let a = account(store, "refunder").await;
    let b = account(store, "refunder2").await;
    apply(store, &completed("evt_r_a", a.id, "cs_r_a", t(0))).await;
    apply(store, &completed("evt_r_b", b.id, "cs_r_b", t(0))).await;
    store.set_loadout(a.id, &loadout(Some("supporter"), Some("gold"))).await.unwrap();
    store.set_loadout(b.id, &loadout(Some("supporter"), Some("red"))).await.unwrap();

    let outcome = apply(store, &refunded("evt_r_a_refund", "cs_r_a", t(100))).await;
    let donation = store.donation_by_session("cs_r_a").await.unwrap().unwrap();
    assert_eq!(outcome, EventOutcome::Revoked { donation_id: donation.id, account_id: a.id, entitlements_removed: 4 });
    assert_eq!((donation.status, donation.refunded_at), (DonationStatus::Refunded, Some(micros(t(100)))));
    assert_eq!(recorded_outcome(store, "evt_r_a_refund").await.as_deref(), Some("revoked"));
    assert!(supporter_items(store, a.id).await.is_empty());
    assert_eq!(store.loadout(a.id).await.unwrap(), Loadout::default(), "supporter items un-equipped");
    assert_eq!(store.set_loadout(a.id, &loadout(None, Some("gold"))).await, Err(StoreError::NotOwned("gold".into())));

    apply(store, &refunded("evt_r_b_refund", "cs_r_b", t(100))).await;
    assert_eq!(store.loadout(b.id).await.unwrap(), loadout(None, Some("red")), "free items stay equipped");

    // A late completion for the refunded checkout must not grant again.
    let late = completed("evt_r_a_late", a.id, "cs_r_a", t(200));
    assert_eq!(apply(store, &late).await, EventOutcome::Recorded);
    assert_eq!(store.donation_by_session("cs_r_a").await.unwrap().unwrap().status, DonationStatus::Refunded);
    assert!(supporter_items(store, a.id).await.is_empty());
    // A second refund event (Stripe sends one per partial refund) keeps the first time.
    let again = apply(store, &refunded("evt_r_a_refund2", "cs_r_a", t(300))).await;
    assert_eq!(again, EventOutcome::Revoked { donation_id: donation.id, account_id: a.id, entitlements_removed: 0 });
    assert_eq!(store.donation_by_session("cs_r_a").await.unwrap().unwrap().refunded_at, Some(micros(t(100))));
}

async fn refund_with_keep_policy_keeps(store: &Store) {
    let a = account(store, "keeper").await;
    apply(store, &completed("evt_k", a.id, "cs_k", t(0))).await;
    store.set_loadout(a.id, &loadout(Some("supporter"), Some("violet"))).await.unwrap();
    let outcome =
        store.apply_payment_event(&refunded("evt_k_refund", "cs_k", t(50)), RevokePolicy::Keep).await.unwrap();
    let donation = store.donation_by_session("cs_k").await.unwrap().unwrap();
    assert_eq!(outcome, EventOutcome::Marked { donation_id: donation.id });
    assert_eq!(donation.status, DonationStatus::Refunded);
    assert_eq!(supporter_items(store, a.id).await, SUPPORTER_ITEMS);
    assert_eq!(store.loadout(a.id).await.unwrap(), loadout(Some("supporter"), Some("violet")));
    assert_eq!(recorded_outcome(store, "evt_k_refund").await.as_deref(), Some("marked"));
}

async fn refund_keeps_entitlements_while_another_donation_is_completed(store: &Store) {
    let a = account(store, "regular").await;
    apply(store, &completed("evt_m1", a.id, "cs_m1", t(0))).await;
    apply(store, &completed("evt_m2", a.id, "cs_m2", t(10))).await;
    assert_eq!(entitlement_rows(store, a.id).await, 4, "one row per item however many donations");
    store.set_loadout(a.id, &loadout(Some("supporter"), Some("cyan"))).await.unwrap();
    let (first, second) = (
        store.donation_by_session("cs_m1").await.unwrap().unwrap(),
        store.donation_by_session("cs_m2").await.unwrap().unwrap(),
    );

    // The first donation granted the items; refunding it leaves the second paying.
    assert_eq!(
        apply(store, &refunded("evt_m1_refund", "cs_m1", t(20))).await,
        EventOutcome::Marked { donation_id: first.id }
    );
    assert_eq!(supporter_items(store, a.id).await, SUPPORTER_ITEMS);
    assert_eq!(store.loadout(a.id).await.unwrap(), loadout(Some("supporter"), Some("cyan")));
    const BY_SECOND: &str = "SELECT COUNT(*) FROM entitlements WHERE donation_id = $1";
    let repointed =
        with_pool!(store, |pool| sqlx::query_scalar::<_, i64>(BY_SECOND).bind(second.id).fetch_one(pool).await);
    assert_eq!(repointed.unwrap(), 4, "the remaining donation now pays for them");

    // Refunding the last one revokes.
    let outcome = apply(store, &refunded("evt_m2_refund", "cs_m2", t(30))).await;
    assert_eq!(outcome, EventOutcome::Revoked { donation_id: second.id, account_id: a.id, entitlements_removed: 4 });
    assert_eq!(store.loadout(a.id).await.unwrap(), Loadout::default());
}

async fn dispute_marks_the_donation(store: &Store) {
    let a = account(store, "disputer").await;
    let b = account(store, "disputer2").await;
    apply(store, &completed("evt_d_a", a.id, "cs_d_a", t(0))).await;
    apply(store, &completed("evt_d_b", b.id, "cs_d_b", t(0))).await;

    let outcome =
        store.apply_payment_event(&disputed("evt_d_a_dispute", "cs_d_a", t(40)), RevokePolicy::Keep).await.unwrap();
    let donation = store.donation_by_session("cs_d_a").await.unwrap().unwrap();
    assert_eq!(outcome, EventOutcome::Marked { donation_id: donation.id });
    assert_eq!((donation.status, donation.disputed_at), (DonationStatus::Disputed, Some(micros(t(40)))));
    assert_eq!(donation.refunded_at, None);
    assert_eq!(supporter_items(store, a.id).await, SUPPORTER_ITEMS);

    let outcome = apply(store, &disputed("evt_d_b_dispute", "cs_d_b", t(40))).await;
    assert!(matches!(outcome, EventOutcome::Revoked { entitlements_removed: 4, .. }), "{outcome:?}");
    assert!(supporter_items(store, b.id).await.is_empty());

    // A refund after a dispute wins; a dispute after a refund only adds its time.
    apply(store, &refunded("evt_d_a_refund", "cs_d_a", t(50))).await;
    let donation = store.donation_by_session("cs_d_a").await.unwrap().unwrap();
    assert_eq!((donation.status, donation.disputed_at), (DonationStatus::Refunded, Some(micros(t(40)))));
    apply(store, &disputed("evt_d_a_dispute2", "cs_d_a", t(60))).await;
    let donation = store.donation_by_session("cs_d_a").await.unwrap().unwrap();
    assert_eq!((donation.status, donation.disputed_at), (DonationStatus::Refunded, Some(micros(t(40)))));
}

async fn refund_for_unknown_payment_is_recorded_once(store: &Store) {
    let a = account(store, "innocent").await;
    apply(store, &completed("evt_i", a.id, "cs_i", t(0))).await;
    let stray = refunded("evt_stray", "cs_never_seen", t(10));
    assert_eq!(apply(store, &stray).await, EventOutcome::UnknownDonation);
    assert_eq!(apply(store, &stray).await, EventOutcome::Duplicate);
    assert_eq!(recorded_outcome(store, "evt_stray").await.as_deref(), Some("unknown_donation"));
    let stray_dispute = disputed("evt_stray_dispute", "cs_never_seen", t(20));
    assert_eq!(apply(store, &stray_dispute).await, EventOutcome::UnknownDonation);
    assert_eq!(count(store, "SELECT COUNT(*) FROM stripe_events").await, 3);
    assert_eq!(supporter_items(store, a.id).await, SUPPORTER_ITEMS, "nobody else's items move");

    let ignored = event("evt_other", "customer.created", PaymentEffect::Ignored, t(30));
    assert_eq!(apply(store, &ignored).await, EventOutcome::Recorded);
    assert_eq!(apply(store, &ignored).await, EventOutcome::Duplicate);
    assert_eq!(recorded_outcome(store, "evt_other").await.as_deref(), Some("recorded"));
}

async fn concurrent_deliveries_grant_once(store: &Store) {
    let a = account(store, "racer").await;
    store.create_donation(&new_donation(a.id, "cs_race", t(0))).await.unwrap();
    let delivery = completed("evt_race", a.id, "cs_race", t(10));
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (store, delivery) = (store.clone(), delivery.clone());
            tokio::spawn(async move { store.apply_payment_event(&delivery, RevokePolicy::Revoke).await })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap().unwrap());
    }
    let granted = outcomes.iter().filter(|o| matches!(o, EventOutcome::Granted { .. })).count();
    let duplicates = outcomes.iter().filter(|o| **o == EventOutcome::Duplicate).count();
    assert_eq!((granted, duplicates), (1, 5), "{outcomes:?}");
    assert_eq!(store.donations_for(a.id).await.unwrap().len(), 1);
    assert_eq!(entitlement_rows(store, a.id).await, 4);

    // Refunds racing the same way revoke once.
    let refund = refunded("evt_race_refund", "cs_race", t(20));
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (store, refund) = (store.clone(), refund.clone());
            tokio::spawn(async move { store.apply_payment_event(&refund, RevokePolicy::Revoke).await })
        })
        .collect();
    let mut revoked = 0;
    for task in tasks {
        revoked += usize::from(matches!(task.await.unwrap().unwrap(), EventOutcome::Revoked { .. }));
    }
    assert_eq!(revoked, 1);
    assert_eq!(entitlement_rows(store, a.id).await, 0);
}

async fn loadout_changes_racing_a_refund_never_keep_unowned_items(store: &Store) {
    for round in 0..5 {
        let a = account(store, &format!("fickle{round}")).await;
        let session = format!("cs_fickle{round}");
        apply(store, &completed(&format!("evt_fickle{round}"), a.id, &session, t(0))).await;
        let refund = refunded(&format!("evt_fickle{round}_refund"), &session, t(10));
        let mut tasks = Vec::new();
        for i in 0..6 {
            let handle = store.clone();
            let wanted =
                if i % 2 == 0 { loadout(Some("supporter"), Some("gold")) } else { loadout(None, Some("violet")) };
            tasks.push(tokio::spawn(async move {
                handle.set_loadout(a.id, &wanted).await.map(|()| EventOutcome::Recorded)
            }));
            if i == 2 {
                let (handle, refund) = (store.clone(), refund.clone());
                tasks
                    .push(tokio::spawn(async move { handle.apply_payment_event(&refund, RevokePolicy::Revoke).await }));
            }
        }
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) | Err(StoreError::NotOwned(_)) => {}
                Err(err) => panic!("round {round}: {err:?}"),
            }
        }
        // Whichever order they ran in, nothing unowned stays equipped.
        assert!(supporter_items(store, a.id).await.is_empty());
        assert_eq!(store.loadout(a.id).await.unwrap(), Loadout::default(), "round {round}");
    }
}

async fn revenue_summary_adds_up(store: &Store) {
    let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    let (a, b, c, d) = (
        account(store, "rev_a").await,
        account(store, "rev_b").await,
        account(store, "rev_c").await,
        account(store, "rev_d").await,
    );
    let from = at("2026-11-30T00:00:00Z");
    let to = at("2026-12-02T00:00:00Z");
    // In range: two days (Nov 30, Dec 1), two months, two currencies.
    apply(store, &completed_amount("evt_s1", a.id, "cs_s1", 500, "usd", at("2026-11-30T10:00:00Z"))).await;
    apply(store, &completed_amount("evt_s2", b.id, "cs_s2", 500, "usd", at("2026-11-30T23:59:59.999999Z"))).await;
    apply(store, &completed_amount("evt_s3", c.id, "cs_s3", 700, "eur", at("2026-12-01T00:00:00Z"))).await;
    apply(store, &completed_amount("evt_s4", a.id, "cs_s4", 500, "usd", at("2026-12-01T12:00:00Z"))).await;
    apply(store, &refunded("evt_s2_refund", "cs_s2", at("2026-12-01T08:00:00Z"))).await;
    // Completed before the range, refunded inside it: a refund, not a donation or donor.
    apply(store, &completed_amount("evt_s0", d.id, "cs_s0", 300, "usd", at("2026-11-29T23:59:59Z"))).await;
    apply(store, &refunded("evt_s0_refund", "cs_s0", at("2026-12-01T09:00:00Z"))).await;
    // Outside the range: at its end (exclusive), and refunded after it.
    apply(store, &completed_amount("evt_s5", d.id, "cs_s5", 900, "usd", to)).await;
    apply(store, &completed_amount("evt_s6", c.id, "cs_s6", 1100, "usd", at("2026-11-20T00:00:00Z"))).await;
    apply(store, &refunded("evt_s6_refund", "cs_s6", to + chrono::Duration::days(1))).await;
    // Pending checkouts are not revenue.
    store.create_donation(&new_donation(d.id, "cs_pending", at("2026-11-30T12:00:00Z"))).await.unwrap();

    let summary = store.revenue_summary(from, to).await.unwrap();
    assert_eq!((summary.from, summary.to), (from, to));
    assert_eq!(
        summary.currency_totals,
        vec![
            CurrencyTotal {
                currency: "eur".into(),
                gross_cents: 700,
                refunded_cents: 0,
                net_cents: 700,
                donations: 1,
                refunds: 0
            },
            CurrencyTotal {
                currency: "usd".into(),
                gross_cents: 1500,
                refunded_cents: 800,
                net_cents: 700,
                donations: 3,
                refunds: 2
            },
        ]
    );
    let bucket = |period: &str, currency: &str, donations, gross_cents, refunded_cents| RevenueBucket {
        period: period.into(),
        currency: currency.into(),
        donations,
        gross_cents,
        refunded_cents,
    };
    assert_eq!(
        summary.by_day,
        vec![
            bucket("2026-11-30", "usd", 2, 1000, 0),
            bucket("2026-12-01", "eur", 1, 700, 0),
            bucket("2026-12-01", "usd", 1, 500, 800),
        ]
    );
    assert_eq!(
        summary.by_month,
        vec![
            bucket("2026-11", "usd", 2, 1000, 0),
            bucket("2026-12", "eur", 1, 700, 0),
            bucket("2026-12", "usd", 1, 500, 800)
        ]
    );
    assert_eq!(summary.donors, 3, "a, b and c donated in range (b's was refunded); d's donation was not in range");
    // The buckets add up to the totals.
    for total in &summary.currency_totals {
        for buckets in [&summary.by_day, &summary.by_month] {
            let mine = buckets.iter().filter(|b| b.currency == total.currency);
            let (donations, gross, refunded) =
                mine.fold((0, 0, 0), |(n, g, r), b| (n + b.donations, g + b.gross_cents, r + b.refunded_cents));
            assert_eq!((donations, gross, refunded), (total.donations, total.gross_cents, total.refunded_cents));
        }
    }

    let empty = store.revenue_summary(to + chrono::Duration::days(30), to + chrono::Duration::days(31)).await.unwrap();
    assert!(empty.currency_totals.is_empty() && empty.by_day.is_empty() && empty.by_month.is_empty());
    assert_eq!(empty.donors, 0);
}

async fn active_players_counts_distinct_accounts(store: &Store) {
    let (p1, p2, p3, p4) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    for m in [
        match_result(t(0), Some(p4), &[(p4, "Old", 50, 0), (p1, "One", 0, 50)]),
        match_result(t(1000), Some(p1), &[(p1, "One", 50, 0), (p2, "Two", 0, 50)]),
        match_result(t(2000), Some(p1), &[(p1, "One", 50, 0), (p3, "Three", 0, 50)]),
    ] {
        assert!(store.record_match(&m).await.unwrap());
    }
    assert_eq!(store.active_players(t(-1)).await.unwrap(), 4);
    // Match end times are stored in milliseconds: t(1000) itself counts.
    assert_eq!(store.active_players(t(1000).trunc_subsecs(3)).await.unwrap(), 3, "p1 counted once");
    assert_eq!(store.active_players(t(1500)).await.unwrap(), 2);
    assert_eq!(store.active_players(t(3000)).await.unwrap(), 0);
}

// ---- payment outages ----

async fn payment_event_on_a_closed_store_changes_nothing(store: &testing::TestStore) {
    let a = account(store, "offline").await;
    store.create_donation(&new_donation(a.id, "cs_offline", t(0))).await.unwrap();
    let delivery = completed("evt_offline", a.id, "cs_offline", t(10));
    let other_handle = store.store().clone();
    store.close().await;
    let err = other_handle.apply_payment_event(&delivery, RevokePolicy::Revoke).await.unwrap_err();
    assert!(err.is_unavailable(), "{err:?}");
    assert!(other_handle.set_loadout(a.id, &loadout(None, Some("red"))).await.unwrap_err().is_unavailable());
    assert!(other_handle.revenue_summary(t(0), t(100)).await.unwrap_err().is_unavailable());
    assert!(other_handle.owned_cosmetics(a.id).await.unwrap_err().is_unavailable());

    // The database comes back (a new pool on the same database): nothing was
    // recorded, and Stripe's retry grants exactly once.
    let reopened = Store::connect(store.url(), 2).await.unwrap();
    assert_eq!(recorded_outcome(&reopened, "evt_offline").await, None);
    assert_eq!(reopened.donation_by_session("cs_offline").await.unwrap().unwrap().status, DonationStatus::Pending);
    assert!(matches!(apply(&reopened, &delivery).await, EventOutcome::Granted { .. }));
    assert_eq!(apply(&reopened, &delivery).await, EventOutcome::Duplicate);
    assert_eq!(supporter_items(&reopened, a.id).await, SUPPORTER_ITEMS);
    reopened.close().await;
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
