//! Register, login, refresh (rotation with reuse detection) and logout.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::{self, hash_refresh_token, new_refresh_token};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ClientIp};
use crate::state::AppState;
use crate::store::{Account, NewAccount, NewSession, Role, StoreError};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// Shown in game; defaults to the username (register only).
    #[serde(default)]
    pub display_name: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LogoutRequest {
    /// The session to end; without it, the session of the access token.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    pub token_type: String,
    pub account_id: Uuid,
}

const MAX_PASSWORD_BYTES: usize = 512;

fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers.get(axum::http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(200).collect())
}

/// Creates a refresh session in `family` and the tokens for it.
async fn open_session(
    state: &AppState,
    account: &Account,
    family: Uuid,
    ip: ClientIp,
    headers: &HeaderMap,
    rotate_from: Option<Uuid>,
) -> ApiResult<TokenResponse> {
    let now = Utc::now();
    let refresh = new_refresh_token();
    let session = NewSession {
        id: Uuid::new_v4(),
        account_id: account.id,
        family_id: family,
        token_hash: refresh.hash.clone(),
        created_at: now,
        expires_at: now + state.settings.refresh_ttl,
        user_agent: user_agent(headers),
        ip: Some(ip.0.to_string()),
    };
    match rotate_from {
        None => state.store.create_session(&session).await?,
        Some(old) => {
            if !state.store.rotate_session(old, &session, now).await? {
                // Lost a race with another refresh of the same token: reuse.
                state.store.revoke_family(family, now).await?;
                return Err(ApiError::unauthorized(
                    "REFRESH_TOKEN_REUSED",
                    "this refresh token was already used; sign in again",
                ));
            }
        }
    }
    let role = match account.role {
        Role::Admin => "admin",
        Role::Player => "player",
    };
    let ttl = state.settings.access_ttl;
    let (access_token, _) = state
        .access
        .issue(account.id, &account.display_name, role, family, ttl, now.timestamp())
        .map_err(ApiError::internal)?;
    Ok(TokenResponse {
        access_token,
        refresh_token: refresh.token,
        expires_in: ttl.as_secs(),
        token_type: "Bearer".into(),
        account_id: account.id,
    })
}

/// Refuses banned accounts with a clear reason.
pub(crate) async fn ensure_not_banned(state: &AppState, account: Uuid) -> ApiResult<()> {
    if let Some(ban) = state.store.active_ban(account, Utc::now()).await? {
        let until = ban.expires_at.map(|t| format!(" until {}", t.to_rfc3339())).unwrap_or_default();
        return Err(ApiError::forbidden("ACCOUNT_BANNED", format!("this account is banned{until}: {}", ban.reason)));
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/auth/register", tag = "auth", request_body = Credentials,
    responses((status = 201, body = TokenResponse), (status = 409, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
pub async fn register(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<(StatusCode, axum::Json<TokenResponse>)> {
    let username = auth::validate_username(&body.username).map_err(validation)?;
    let display = body.display_name.as_deref().unwrap_or(&body.username);
    let display_name = auth::validate_display_name(display).map_err(validation)?;
    if body.password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::validation("password", "too_long", "the password is too long"));
    }
    auth::validate_password(&body.password, &username).map_err(validation)?;
    let password_hash = auth::hash_password_async(body.password).await.map_err(ApiError::internal)?;
    let role = if state.settings.admins.contains(&username) { Role::Admin } else { Role::Player };
    let new = NewAccount { id: Uuid::new_v4(), username, display_name, password_hash, role, created_at: Utc::now() };
    let account = match state.store.create_account(&new).await {
        Ok(a) => a,
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::conflict("USERNAME_TAKEN", "that username is taken"));
        }
        Err(e) => return Err(e.into()),
    };
    let tokens = open_session(&state, &account, Uuid::new_v4(), ip, &headers, None).await?;
    Ok((StatusCode::CREATED, axum::Json(tokens)))
}

fn validation(e: auth::ValidationError) -> ApiError {
    ApiError::validation(e.field, e.code, e.message)
}

#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = Credentials,
    responses((status = 200, body = TokenResponse), (status = 401, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
pub async fn login(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Credentials>,
) -> ApiResult<axum::Json<TokenResponse>> {
    let invalid = || ApiError::unauthorized("INVALID_CREDENTIALS", "wrong username or password");
    if body.password.len() > MAX_PASSWORD_BYTES || body.username.len() > 64 {
        return Err(invalid());
    }
    let username = body.username.trim().to_lowercase();
    let account = state.store.account_by_username(&username).await?;
    let Some(account) = account else {
        // Same cost as a real check, so timing does not reveal which usernames exist.
        let pw = body.password;
        let _ = tokio::task::spawn_blocking(move || auth::dummy_verify(&pw)).await;
        return Err(invalid());
    };
    if !auth::verify_password_async(body.password, account.password_hash.clone()).await {
        return Err(invalid());
    }
    ensure_not_banned(&state, account.id).await?;
    state.store.record_login(account.id, Utc::now()).await?;
    let tokens = open_session(&state, &account, Uuid::new_v4(), ip, &headers, None).await?;
    Ok(axum::Json(tokens))
}

#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = crate::error::Problem)))]
pub async fn refresh(
    State(state): State<AppState>,
    ip: ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> ApiResult<axum::Json<TokenResponse>> {
    let invalid = || ApiError::unauthorized("INVALID_REFRESH_TOKEN", "the refresh token is invalid or expired");
    let now = Utc::now();
    let session = state.store.session_by_hash(&hash_refresh_token(&body.refresh_token)).await?.ok_or_else(invalid)?;
    if session.revoked_at.is_some() || session.expires_at <= now {
        return Err(invalid());
    }
    if session.rotated_at.is_some() {
        // A rotated token came back: someone holds a copy. End the whole family.
        state.store.revoke_family(session.family_id, now).await?;
        tracing::warn!(account = %session.account_id, family = %session.family_id, "refresh token reuse; family revoked");
        return Err(ApiError::unauthorized(
            "REFRESH_TOKEN_REUSED",
            "this refresh token was already used; sign in again",
        ));
    }
    let account = state.store.account_by_id(session.account_id).await?.ok_or_else(invalid)?;
    ensure_not_banned(&state, account.id).await?;
    let tokens = open_session(&state, &account, session.family_id, ip, &headers, Some(session.id)).await?;
    Ok(axum::Json(tokens))
}

#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", request_body = LogoutRequest,
    responses((status = 204), (status = 401, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn logout(
    State(state): State<AppState>,
    crate::extract::Authed(claims): crate::extract::Authed,
    body: axum::body::Bytes,
) -> ApiResult<StatusCode> {
    let now = Utc::now();
    // The body is optional, so it is parsed only when present.
    let request: LogoutRequest = if body.iter().all(u8::is_ascii_whitespace) {
        LogoutRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request("MALFORMED_JSON", e.to_string()))?
    };
    let family = match request.refresh_token {
        Some(token) => match state.store.session_by_hash(&hash_refresh_token(&token)).await? {
            Some(s) if s.account_id == claims.sub => s.family_id,
            _ => return Err(ApiError::unauthorized("INVALID_REFRESH_TOKEN", "that refresh token is not yours")),
        },
        None => claims.sid,
    };
    state.store.revoke_family(family, now).await?;
    Ok(StatusCode::NO_CONTENT)
}
