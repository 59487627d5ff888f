//! Request extractors that turn every client mistake into a clear problem
//! response: JSON bodies, bearer tokens and the client address.

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::auth::{AccessClaims, AuthError};
use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body whose rejections are problem responses.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    let detail = r.body_text();
    match r {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send the body as JSON with Content-Type: application/json",
        ),
        JsonRejection::JsonSyntaxError(_) => ApiError::bad_request("MALFORMED_JSON", detail),
        JsonRejection::JsonDataError(_) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY", detail),
        JsonRejection::BytesRejection(_) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "BODY_TOO_LARGE", "the request body is too large")
        }
        _ => ApiError::bad_request("BAD_REQUEST", detail),
    }
}

/// An authenticated caller (a valid access token in `Authorization: Bearer`).
pub struct Authed(pub AccessClaims);

impl<S> FromRequestParts<S> for Authed
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if let Some(claims) = parts.extensions.get::<AccessClaims>() {
            return Ok(Authed(claims.clone()));
        }
        let state = AppState::from_ref(state);
        let token = bearer(parts)?.ok_or_else(|| {
            ApiError::unauthorized("MISSING_TOKEN", "send an access token: Authorization: Bearer <token>")
        })?;
        verify_access(&state, token).map(Authed)
    }
}

/// The bearer token in the request, if any (`Err` when the header is malformed).
pub fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) else { return Ok(None) };
    let value =
        value.to_str().map_err(|_| ApiError::unauthorized("INVALID_TOKEN", "malformed Authorization header"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::unauthorized("INVALID_TOKEN", "the Authorization header must be `Bearer <token>`")),
    }
}

pub fn verify_access(state: &AppState, token: &str) -> Result<AccessClaims, ApiError> {
    state.access.verify(token, chrono::Utc::now().timestamp()).map_err(|e| match e {
        AuthError::Expired => ApiError::unauthorized("TOKEN_EXPIRED", "the access token has expired; refresh it"),
        _ => ApiError::unauthorized("INVALID_TOKEN", "the access token is invalid"),
    })
}

/// The client's address: the peer, or the first untrusted hop of
/// X-Forwarded-For when the peer is a trusted proxy.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    pub fn from_parts(parts: &Parts, state: &AppState) -> ClientIp {
        let peer =
            parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()).unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let trusted = &state.settings.trusted_proxies;
        if trusted.is_empty() || !trusted.iter().any(|c| c.contains(peer)) {
            return ClientIp(peer);
        }
        let forwarded = parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()).unwrap_or("");
        // Walk from the nearest hop back; the first address not ours is the client.
        for hop in forwarded.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) if trusted.iter().any(|c| c.contains(ip)) => continue,
                Ok(ip) => return ClientIp(ip),
                Err(_) => break,
            }
        }
        ClientIp(peer)
    }
}

impl<S> FromRequestParts<S> for ClientIp
where
    AppState: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Ok(ClientIp::from_parts(parts, &AppState::from_ref(state)))
    }
}

/// Query parameters whose rejections are problem responses.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|r| ApiError::bad_request("INVALID_QUERY", r.body_text()))
    }
}

/// Path parameters whose rejections are problem responses.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|r| ApiError::bad_request("INVALID_PATH", r.body_text()))
    }
}
