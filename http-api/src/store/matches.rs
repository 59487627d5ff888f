//! Match results, per-player history, running stats and the leaderboard.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use protocol::results::MatchResult;
use uuid::Uuid;

use super::{
    LeaderboardRow, MatchRecord, PlayerMatch, PlayerResultRow, PlayerStats, Pool, Store, StoreError, db_time,
    db_time_opt, sql_count,
};

macro_rules! stats_columns {
    () => {
        "account_id, display_name, matches, wins, kills, deaths"
    };
}

macro_rules! player_match_select {
    () => {
        "SELECT mp.match_id, m.mode, m.map, m.started_at, m.ended_at, mp.kills, mp.deaths, mp.won, \
         m.player_count AS players \
         FROM match_players mp JOIN matches m ON m.id = mp.match_id \
         WHERE mp.account_id = $1 "
    };
}

/// The latest instant SQLite's text timestamps still order correctly (4-digit years).
const MAX_TIMESTAMP_MS: u64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z

/// A match's player as it will be written: duplicates merged, outcome resolved.
struct PlayerLine<'a> {
    account: Uuid,
    name: &'a str,
    kills: i64,
    deaths: i64,
    won: bool,
}

impl Store {
    /// Persists a finished match exactly once: inserts the match, one row per player
    /// and adds to each player's stats, all in one transaction. Returns false and
    /// changes nothing if a match with this id was already recorded, so a node (or
    /// the directory's queue) may report the same result any number of times.
    ///
    /// Players need no row in `accounts` (dev tickets). A player listed twice is
    /// counted once, with kills and deaths summed.
    pub async fn record_match(&self, result: &MatchResult) -> Result<bool, StoreError> {
        const INSERT_MATCH: &str = "INSERT INTO matches \
            (id, lobby_id, node_id, mode, map, started_at, ended_at, winner, kill_target, player_count) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO NOTHING";
        const INSERT_PLAYER: &str = "INSERT INTO match_players \
            (match_id, account_id, display_name, kills, deaths, won, ended_at) \
            VALUES ($1, $2, $3, $4, $5, $6, $7)";
        // Results may arrive out of order: the stored name is the one from the
        // player's latest match by end time, not the latest report.
        const UPSERT_STATS: &str = "INSERT INTO player_stats \
            (account_id, display_name, matches, wins, kills, deaths, last_match_at) \
            VALUES ($1, $2, 1, $3, $4, $5, $6) \
            ON CONFLICT (account_id) DO UPDATE SET \
            matches = player_stats.matches + 1, \
            wins = player_stats.wins + excluded.wins, \
            kills = player_stats.kills + excluded.kills, \
            deaths = player_stats.deaths + excluded.deaths, \
            display_name = CASE WHEN excluded.last_match_at >= player_stats.last_match_at \
                THEN excluded.display_name ELSE player_stats.display_name END, \
            last_match_at = CASE WHEN excluded.last_match_at >= player_stats.last_match_at \
                THEN excluded.last_match_at ELSE player_stats.last_match_at END";

        let started_at = time_from_ms(result.started_at_ms, "started_at_ms")?;
        let ended_at = time_from_ms(result.ended_at_ms, "ended_at_ms")?;
        let lobby_id = i64::try_from(result.lobby_id)
            .map_err(|_| StoreError::Database(format!("lobby id {} out of range", result.lobby_id)))?;
        let players = player_lines(result);
        let player_count = i64::try_from(players.len()).unwrap_or(i64::MAX);

        let recorded = with_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            // The insert comes first so that, on SQLite, the transaction takes the
            // write lock before reading anything (no lock upgrade, no SQLITE_BUSY),
            // and on Postgres a concurrent duplicate waits here and then inserts nothing.
            let inserted = sqlx::query(INSERT_MATCH)
                .bind(result.match_id)
                .bind(lobby_id)
                .bind(&result.node_id)
                .bind(&result.mode)
                .bind(&result.map)
                .bind(started_at)
                .bind(ended_at)
                .bind(result.winner)
                .bind(i32::from(result.kill_target))
                .bind(player_count)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if inserted == 0 {
                tx.rollback().await?;
                false
            } else {
                for p in &players {
                    sqlx::query(INSERT_PLAYER)
                        .bind(result.match_id)
                        .bind(p.account)
                        .bind(p.name)
                        .bind(p.kills)
                        .bind(p.deaths)
                        .bind(p.won)
                        .bind(ended_at)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(UPSERT_STATS)
                        .bind(p.account)
                        .bind(p.name)
                        .bind(i64::from(p.won))
                        .bind(p.kills)
                        .bind(p.deaths)
                        .bind(ended_at)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                true
            }
        });
        Ok(recorded)
    }

    pub async fn player_stats(&self, account_id: Uuid) -> Result<Option<PlayerStats>, StoreError> {
        const SQL: &str = concat!("SELECT ", stats_columns!(), " FROM player_stats WHERE account_id = $1");
        Ok(with_pool!(self, |pool| sqlx::query_as::<_, PlayerStats>(SQL).bind(account_id).fetch_optional(pool).await)?)
    }

    /// A player's matches, newest first. Pages by `ended_at`: pass the last row's
    /// `ended_at` as `before` to get the next page.
    pub async fn player_matches(
        &self,
        account_id: Uuid,
        limit: u32,
        before: Option<DateTime<Utc>>,
    ) -> Result<Vec<PlayerMatch>, StoreError> {
        // Two texts rather than `($2 IS NULL OR ...)`, so each plans as a plain range
        // scan of match_players_history_idx.
        const FIRST_PAGE: &str =
            concat!(player_match_select!(), "ORDER BY mp.ended_at DESC, mp.match_id DESC LIMIT $2");
        const NEXT_PAGE: &str = concat!(
            player_match_select!(),
            "AND mp.ended_at < $3 ORDER BY mp.ended_at DESC, mp.match_id DESC LIMIT $2"
        );
        let sql = if before.is_some() { NEXT_PAGE } else { FIRST_PAGE };
        Ok(with_pool!(self, |pool| {
            let mut query = sqlx::query_as::<_, PlayerMatch>(sql).bind(account_id).bind(sql_count(limit));
            if let Some(before) = db_time_opt(before) {
                query = query.bind(before);
            }
            query.fetch_all(pool).await
        })?)
    }

    /// One page of the leaderboard (wins, then kills, then fewest deaths; ties broken
    /// by account id so pages never overlap) and the number of ranked players.
    pub async fn leaderboard(&self, limit: u32, offset: u32) -> Result<(Vec<LeaderboardRow>, u64), StoreError> {
        const PAGE: &str = concat!(
            "SELECT ",
            stats_columns!(),
            " FROM player_stats ORDER BY wins DESC, kills DESC, deaths ASC, account_id ASC LIMIT $1 OFFSET $2"
        );
        const COUNT: &str = "SELECT COUNT(*) FROM player_stats";
        let (rows, total) = with_pool!(self, |pool| {
            let rows = sqlx::query_as::<_, PlayerStats>(PAGE)
                .bind(sql_count(limit))
                .bind(sql_count(offset))
                .fetch_all(pool)
                .await?;
            let total: i64 = sqlx::query_scalar(COUNT).fetch_one(pool).await?;
            (rows, total)
        });
        let rows = rows
            .into_iter()
            .zip(u64::from(offset) + 1..)
            .map(|(s, rank)| LeaderboardRow {
                rank,
                account_id: s.account_id,
                display_name: s.display_name,
                matches: s.matches,
                wins: s.wins,
                kills: s.kills,
                deaths: s.deaths,
            })
            .collect();
        Ok((rows, u64::try_from(total).unwrap_or(0)))
    }

    /// Distinct accounts that finished a match at or after `since`: the active
    /// players the donation conversion rate is measured against.
    pub async fn active_players(&self, since: DateTime<Utc>) -> Result<i64, StoreError> {
        const SQL: &str = "SELECT COUNT(DISTINCT account_id) FROM match_players WHERE ended_at >= $1";
        Ok(with_pool!(self, |pool| sqlx::query_scalar::<_, i64>(SQL).bind(db_time(since)).fetch_one(pool).await)?)
    }

    /// A match with its players, best first.
    pub async fn match_by_id(&self, id: Uuid) -> Result<Option<MatchRecord>, StoreError> {
        const MATCH: &str = "SELECT id, lobby_id, node_id, mode, map, started_at, ended_at, winner, kill_target \
            FROM matches WHERE id = $1";
        const PLAYERS: &str = "SELECT account_id, display_name, kills, deaths FROM match_players \
            WHERE match_id = $1 ORDER BY kills DESC, deaths ASC, account_id ASC";
        let record = with_pool!(self, |pool| {
            match sqlx::query_as::<_, MatchRecord>(MATCH).bind(id).fetch_optional(pool).await? {
                None => None,
                Some(mut record) => {
                    record.players = sqlx::query_as::<_, PlayerResultRow>(PLAYERS).bind(id).fetch_all(pool).await?;
                    Some(record)
                }
            }
        });
        Ok(record)
    }
}

fn time_from_ms(ms: u64, field: &str) -> Result<DateTime<Utc>, StoreError> {
    let out_of_range = || StoreError::Database(format!("match result {field} {ms} out of range"));
    if ms > MAX_TIMESTAMP_MS {
        return Err(out_of_range());
    }
    let ms = i64::try_from(ms).map_err(|_| out_of_range())?;
    DateTime::from_timestamp_millis(ms).map(db_time).ok_or_else(out_of_range)
}

/// One line per distinct account, in first-seen order. A node should never list a
/// player twice; if one does, the result is still recorded rather than lost.
fn player_lines(result: &MatchResult) -> Vec<PlayerLine<'_>> {
    let mut lines: Vec<PlayerLine<'_>> = Vec::with_capacity(result.players.len());
    let mut index: HashMap<Uuid, usize> = HashMap::with_capacity(result.players.len());
    for p in &result.players {
        match index.get(&p.account) {
            Some(&i) => {
                lines[i].kills += i64::from(p.kills);
                lines[i].deaths += i64::from(p.deaths);
            }
            None => {
                index.insert(p.account, lines.len());
                lines.push(PlayerLine {
                    account: p.account,
                    name: &p.name,
                    kills: i64::from(p.kills),
                    deaths: i64::from(p.deaths),
                    won: result.winner == Some(p.account),
                });
            }
        }
    }
    lines
}
