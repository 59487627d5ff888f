//! Operational endpoints: liveness, readiness, metrics, the OpenAPI document.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::state::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub status: &'static str,
    pub store: &'static str,
    pub directory: &'static str,
}

#[utoipa::path(get, path = "/health", tag = "ops", responses((status = 200, body = Health)))]
pub async fn health() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

#[utoipa::path(get, path = "/ready", tag = "ops", responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, axum::Json<Readiness>) {
    let store = state.store.ping().await.is_ok();
    let directory = state.directory.ping().await.is_ok();
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    let status = if store && directory { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(Readiness { status: word(store && directory), store: word(store), directory: word(directory) }))
}

/// Renders the given registries (API, and the node's in `serve`).
pub fn render_metrics(state: &AppState, registries: &[Arc<Registry>]) -> impl IntoResponse + use<> {
    let pool = state.store.pool_stats();
    state.metrics.pool_size.set(pool.size as i64);
    state.metrics.pool_idle.set(pool.idle as i64);
    state.metrics.pool_max.set(pool.max as i64);
    let mut out = String::new();
    for r in registries {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, r).is_ok() {
            // Each encoding ends with "# EOF"; only the last may.
            out.push_str(text.trim_end().trim_end_matches("# EOF"));
        }
    }
    out.push_str("# EOF\n");
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], out)
}
