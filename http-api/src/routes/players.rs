//! Public player stats, match history and the leaderboard.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, ApiQuery};
use crate::state::AppState;

const MAX_PAGE: u32 = 100;

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PlayerView {
    pub id: Uuid,
    pub display_name: String,
    pub matches: i64,
    pub wins: i64,
    pub kills: i64,
    pub deaths: i64,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MatchView {
    pub match_id: Uuid,
    pub mode: String,
    pub map: String,
    pub started_at: DateTime<Utc>,
    pub ended_at: DateTime<Utc>,
    pub kills: i64,
    pub deaths: i64,
    pub won: bool,
    pub players: i64,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MatchPage {
    pub matches: Vec<MatchView>,
    /// Pass as `before` to get the next page; absent on the last page.
    pub next_before: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct MatchQuery {
    /// Page size, 1-100 (default 20).
    pub limit: Option<u32>,
    /// Only matches that ended before this time (RFC 3339).
    pub before: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LeaderboardEntry {
    pub rank: u64,
    pub id: Uuid,
    pub display_name: String,
    pub matches: i64,
    pub wins: i64,
    pub kills: i64,
    pub deaths: i64,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Leaderboard {
    pub entries: Vec<LeaderboardEntry>,
    pub total: u64,
    pub limit: u32,
    pub offset: u32,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// Page size, 1-100 (default 20).
    pub limit: Option<u32>,
    /// Entries to skip (at most 100000).
    pub offset: Option<u32>,
}

fn limit(l: Option<u32>) -> ApiResult<u32> {
    match l.unwrap_or(20) {
        n @ 1..=MAX_PAGE => Ok(n),
        _ => Err(ApiError::validation("limit", "out_of_range", format!("limit must be 1-{MAX_PAGE}"))),
    }
}

#[utoipa::path(get, path = "/v1/players/{id}", tag = "players", params(("id" = Uuid, Path, description = "account id")),
    responses((status = 200, body = PlayerView), (status = 404, body = crate::error::Problem)))]
pub async fn player(State(state): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> ApiResult<axum::Json<PlayerView>> {
    if let Some(s) = state.store.player_stats(id).await? {
        return Ok(axum::Json(PlayerView {
            id,
            display_name: s.display_name,
            matches: s.matches,
            wins: s.wins,
            kills: s.kills,
            deaths: s.deaths,
        }));
    }
    // A registered player who has not finished a match yet.
    let a = state
        .store
        .account_by_id(id)
        .await?
        .ok_or_else(|| ApiError::not_found("PLAYER_NOT_FOUND", "no such player"))?;
    Ok(axum::Json(PlayerView { id, display_name: a.display_name, matches: 0, wins: 0, kills: 0, deaths: 0 }))
}

#[utoipa::path(get, path = "/v1/players/{id}/matches", tag = "players",
    params(("id" = Uuid, Path, description = "account id"), MatchQuery),
    responses((status = 200, body = MatchPage)))]
pub async fn matches(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<MatchQuery>,
) -> ApiResult<axum::Json<MatchPage>> {
    let limit = limit(q.limit)?;
    let rows = state.store.player_matches(id, limit, q.before).await?;
    let next_before = if rows.len() == limit as usize { rows.last().map(|m| m.ended_at) } else { None };
    let matches = rows
        .into_iter()
        .map(|m| MatchView {
            match_id: m.match_id,
            mode: m.mode,
            map: m.map,
            started_at: m.started_at,
            ended_at: m.ended_at,
            kills: m.kills,
            deaths: m.deaths,
            won: m.won,
            players: m.players,
        })
        .collect();
    Ok(axum::Json(MatchPage { matches, next_before }))
}

#[utoipa::path(get, path = "/v1/leaderboard", tag = "players", params(PageQuery), responses((status = 200, body = Leaderboard)))]
pub async fn leaderboard(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> ApiResult<axum::Json<Leaderboard>> {
    let limit = limit(q.limit)?;
    let offset = q.offset.unwrap_or(0);
    if offset > 100_000 {
        return Err(ApiError::validation("offset", "out_of_range", "offset must be at most 100000"));
    }
    let (rows, total) = state.store.leaderboard(limit, offset).await?;
    let entries = rows
        .into_iter()
        .map(|r| LeaderboardEntry {
            rank: r.rank,
            id: r.account_id,
            display_name: r.display_name,
            matches: r.matches,
            wins: r.wins,
            kills: r.kills,
            deaths: r.deaths,
        })
        .collect();
    Ok(axum::Json(Leaderboard { entries, total, limit, offset }))
}
