//! Cross-cutting request handling: rate limits, metrics, security headers.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::extract::{ClientIp, bearer, verify_access};
use crate::metrics::{ClassLabels, RequestLabels, RouteLabels};
use crate::ratelimit::Class;
use crate::state::AppState;

/// The rate-limit class of a route.
fn class_of(method: &axum::http::Method, route: &str) -> Class {
    match (method.as_str(), route) {
        ("POST", "/v1/auth/register" | "/v1/auth/login" | "/v1/auth/refresh" | "/v1/me/password") => Class::Auth,
        ("POST", "/v1/matchmake" | "/v1/lobbies/{id}/join") => Class::Matchmake,
        _ => Class::General,
    }
}

fn class_name(c: Class) -> &'static str {
    match c {
        Class::General => "general",
        Class::Auth => "auth",
        Class::Matchmake => "matchmake",
    }
}

/// Applies the rate limits: per IP always, per account when a valid token
/// is present. A verified token is kept for the handler.
pub async fn rate_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    let route = parts.extensions.get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let class = class_of(&parts.method, &route);
    let ip = ClientIp::from_parts(&parts, &state).0;
    let account = match bearer(&parts) {
        Ok(Some(token)) => match verify_access(&state, token) {
            Ok(claims) => {
                let sub = claims.sub;
                parts.extensions.insert(claims);
                Some(sub)
            }
            Err(_) => None,
        },
        _ => None,
    };
    if let Err(wait) = state.limiter.check(class, ip, account) {
        state.metrics.rate_limited.get_or_create(&ClassLabels { class: class_name(class) }).inc();
        return ApiError::rate_limited(wait).into_response();
    }
    next.run(Request::from_parts(parts, body)).await
}

/// Counts requests by route and status and observes latency.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let m = &state.metrics;
    m.requests.get_or_create(&RequestLabels { method, route: route.clone(), status }).inc();
    m.latency.get_or_create(&RouteLabels { route }).observe(started.elapsed().as_secs_f64());
    resp
}
