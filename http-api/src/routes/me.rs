//! The signed-in account: profile, sessions, password.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, Authed};
use crate::state::AppState;
use crate::store::Role;

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Me {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionView {
    /// The session family id (stable across refreshes).
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// True for the session of the token making this request.
    pub current: bool,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionList {
    pub sessions: Vec<SessionView>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

#[utoipa::path(get, path = "/v1/me", tag = "me", responses((status = 200, body = Me), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn me(State(state): State<AppState>, Authed(claims): Authed) -> ApiResult<axum::Json<Me>> {
    let a = state
        .store
        .account_by_id(claims.sub)
        .await?
        .ok_or_else(|| ApiError::unauthorized("INVALID_TOKEN", "the account no longer exists"))?;
    let role = if a.role == Role::Admin { "admin" } else { "player" };
    Ok(axum::Json(Me {
        id: a.id,
        username: a.username,
        display_name: a.display_name,
        role: role.into(),
        created_at: a.created_at,
    }))
}

#[utoipa::path(get, path = "/v1/me/sessions", tag = "me", responses((status = 200, body = SessionList)),
    security(("bearer" = [])))]
pub async fn sessions(State(state): State<AppState>, Authed(claims): Authed) -> ApiResult<axum::Json<SessionList>> {
    let sessions = state
        .store
        .active_sessions(claims.sub, Utc::now())
        .await?
        .into_iter()
        .map(|s| SessionView {
            id: s.family_id,
            created_at: s.created_at,
            expires_at: s.expires_at,
            current: s.family_id == claims.sid,
            user_agent: s.user_agent,
            ip: s.ip,
        })
        .collect();
    Ok(axum::Json(SessionList { sessions }))
}

#[utoipa::path(delete, path = "/v1/me/sessions/{id}", tag = "me",
    params(("id" = Uuid, Path, description = "session id from GET /v1/me/sessions")),
    responses((status = 204), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
pub async fn revoke_session(
    State(state): State<AppState>,
    Authed(claims): Authed,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<StatusCode> {
    let now = Utc::now();
    let mine = state.store.active_sessions(claims.sub, now).await?.into_iter().any(|s| s.family_id == id);
    if !mine {
        return Err(ApiError::not_found("SESSION_NOT_FOUND", "no such active session on your account"));
    }
    state.store.revoke_family(id, now).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/me/password", tag = "me", request_body = PasswordChange,
    responses((status = 204), (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn change_password(
    State(state): State<AppState>,
    Authed(claims): Authed,
    ApiJson(body): ApiJson<PasswordChange>,
) -> ApiResult<StatusCode> {
    let account = state
        .store
        .account_by_id(claims.sub)
        .await?
        .ok_or_else(|| ApiError::unauthorized("INVALID_TOKEN", "the account no longer exists"))?;
    if body.current_password.len() > 512
        || !auth::verify_password_async(body.current_password, account.password_hash.clone()).await
    {
        return Err(ApiError::unauthorized("INVALID_CREDENTIALS", "the current password is wrong"));
    }
    auth::validate_password(&body.new_password, &account.username)
        .map_err(|e| ApiError::validation("new_password", e.code, e.message))?;
    let hash = auth::hash_password_async(body.new_password).await.map_err(ApiError::internal)?;
    state.store.set_password(account.id, &hash).await?;
    // Every other device must sign in again; this session stays.
    let now = Utc::now();
    for s in state.store.active_sessions(account.id, now).await? {
        if s.family_id != claims.sid {
            state.store.revoke_family(s.family_id, now).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}
