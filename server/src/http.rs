//! The node's HTTP listener: liveness, Prometheus metrics and the lobby list.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::registry::Registry;
use serde::Deserialize;

use crate::lobby::LobbyManager;

#[derive(Clone)]
pub struct HttpState {
    pub registry: Arc<Registry>,
    pub manager: Arc<LobbyManager>,
    pub node_id: String,
}

pub fn router(state: HttpState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/lobbies", get(lobbies))
        .with_state(state)
}

async fn health(State(s): State<HttpState>) -> impl IntoResponse {
    let draining = s.manager.is_draining();
    let status = if draining { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
    let body = serde_json::json!({
        "status": if draining { "draining" } else { "ok" },
        "node_id": s.node_id,
        "lobbies": s.manager.lobby_count(),
        "players": s.manager.account_count(),
    });
    (status, Json(body))
}

async fn metrics(State(s): State<HttpState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        crate::metrics::render(&s.registry),
    )
}

#[derive(Deserialize)]
struct LobbyQuery {
    mode: Option<String>,
}

#[derive(serde::Serialize)]
struct LobbyView {
    id: u64,
    mode: String,
    players: u8,
    max_players: u8,
    state: &'static str,
}

async fn lobbies(State(s): State<HttpState>, Query(q): Query<LobbyQuery>) -> impl IntoResponse {
    let list: Vec<LobbyView> = s
        .manager
        .list(q.mode.as_deref())
        .into_iter()
        .map(|l| LobbyView {
            id: l.id,
            mode: l.mode,
            players: l.players,
            max_players: l.max_players,
            state: l.state.as_str(),
        })
        .collect();
    Json(serde_json::json!({ "lobbies": list }))
}
