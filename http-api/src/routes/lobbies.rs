//! The lobby browser and matchmaking: where to connect, with a join ticket.

use axum::extract::State;
use chrono::Utc;
use directory::{LobbySummary, NodeStatus};
use protocol::ticket::{JoinClaims, JoinTarget};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::auth::ensure_not_banned;
use crate::auth::AccessClaims;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Authed};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LobbyQuery {
    /// Only lobbies of this game mode.
    pub mode: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LobbyView {
    pub id: u64,
    pub node_id: String,
    pub mode: String,
    pub players: u8,
    pub max_players: u8,
    /// `playing`, `voting` or `closing`.
    pub state: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LobbyList {
    pub lobbies: Vec<LobbyView>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchmakeRequest {
    /// Game mode, e.g. `deathmatch`.
    pub mode: String,
}

/// Where to connect and the ticket to present there.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Placement {
    pub node_id: String,
    /// UDP host and port of the game node (QUIC, ALPN `trespasser/1`).
    pub host: String,
    pub port: u16,
    /// SHA-256 of the node's certificate (hex), for browsers pinning a self-signed one.
    pub cert_sha256: String,
    pub ticket: String,
    /// Seconds the ticket stays valid; it is single use.
    pub ticket_expires_in: u64,
    pub mode: Option<String>,
    pub lobby_id: Option<u64>,
}

fn view(l: LobbySummary) -> LobbyView {
    LobbyView {
        id: l.id,
        node_id: l.node_id,
        mode: l.mode,
        players: l.players,
        max_players: l.max_players,
        state: l.state,
    }
}

fn check_mode(mode: &str) -> ApiResult<()> {
    let ok = !mode.is_empty()
        && mode.len() <= 32
        && mode.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation("mode", "invalid_chars", "mode must be 1-32 letters, digits, '-' or '_'"))
    }
}

#[utoipa::path(get, path = "/v1/lobbies", tag = "lobbies", params(LobbyQuery),
    responses((status = 200, body = LobbyList), (status = 503, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<LobbyQuery>,
) -> ApiResult<axum::Json<LobbyList>> {
    if let Some(m) = &q.mode {
        check_mode(m)?;
    }
    let lobbies = state.directory.lobbies(q.mode.as_deref()).await?.into_iter().map(view).collect();
    Ok(axum::Json(LobbyList { lobbies }))
}

#[utoipa::path(get, path = "/v1/lobbies/{id}", tag = "lobbies", params(("id" = u64, Path, description = "lobby id")),
    responses((status = 200, body = LobbyView), (status = 404, body = crate::error::Problem)))]
pub async fn get(State(state): State<AppState>, ApiPath(id): ApiPath<u64>) -> ApiResult<axum::Json<LobbyView>> {
    let lobby = state.directory.lobby(id).await?.ok_or_else(lobby_not_found)?;
    Ok(axum::Json(view(lobby)))
}

fn lobby_not_found() -> ApiError {
    ApiError::not_found("LOBBY_NOT_FOUND", "no such lobby (it may have closed)")
}

/// Picks the node for a new player of `mode`: the node with the fullest open
/// lobby (fill lobbies before opening new ones), else the least loaded node
/// that may create one.
fn choose_node<'a>(nodes: &'a [NodeStatus], lobbies: &[LobbySummary], mode: &str) -> ApiResult<&'a NodeStatus> {
    let serving: Vec<&NodeStatus> = nodes.iter().filter(|n| n.modes.iter().any(|m| m == mode)).collect();
    if nodes.is_empty() {
        return Err(ApiError::unavailable("NO_GAME_SERVERS", "no game server is online; try again shortly"));
    }
    if serving.is_empty() {
        return Err(ApiError::not_found("UNKNOWN_MODE", format!("no game server offers the mode {mode:?}")));
    }
    let fullest_open = lobbies
        .iter()
        .filter(|l| l.mode == mode && l.is_open())
        .filter_map(|l| serving.iter().find(|n| n.node_id == l.node_id && n.takes_players()).map(|n| (l.players, *n)))
        .max_by_key(|(players, _)| *players);
    if let Some((_, node)) = fullest_open {
        return Ok(node);
    }
    serving
        .into_iter()
        .filter(|n| n.can_create(mode))
        .min_by_key(|n| (n.players, n.lobbies))
        .ok_or_else(|| ApiError::unavailable("NODE_AT_CAPACITY", "every game server is full; try again shortly"))
}

async fn placement(
    state: &AppState,
    node: &NodeStatus,
    claims: &AccessClaims,
    target: JoinTarget,
) -> ApiResult<Placement> {
    // The loadout applies from the next join: it travels in the ticket.
    let cosmetics = super::cosmetics::ticket_cosmetics(state, claims.sub).await?;
    let now = Utc::now().timestamp().max(0) as u64;
    let ttl = state.settings.ticket_ttl.as_secs().clamp(1, protocol::ticket::MAX_TICKET_LIFETIME_SECS);
    let join = JoinClaims {
        sub: claims.sub,
        name: claims.name.clone(),
        cosmetics,
        target: target.clone(),
        aud: node.node_id.clone(),
        iat: now,
        exp: now + ttl,
        jti: Uuid::new_v4(),
    };
    let ticket = state.tickets.mint(&join).map_err(ApiError::internal)?;
    state.metrics.tickets_issued.inc();
    let (mode, lobby_id) = match target {
        JoinTarget::Mode(m) => (Some(m), None),
        JoinTarget::Lobby(id) => (None, Some(id)),
    };
    Ok(Placement {
        node_id: node.node_id.clone(),
        host: node.public_host.clone(),
        port: node.public_port,
        cert_sha256: node.cert_sha256.clone(),
        ticket,
        ticket_expires_in: ttl,
        mode,
        lobby_id,
    })
}

#[utoipa::path(post, path = "/v1/matchmake", tag = "lobbies", request_body = MatchmakeRequest,
    responses((status = 200, body = Placement), (status = 401, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem), (status = 503, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn matchmake(
    State(state): State<AppState>,
    Authed(claims): Authed,
    ApiJson(body): ApiJson<MatchmakeRequest>,
) -> ApiResult<axum::Json<Placement>> {
    check_mode(&body.mode)?;
    ensure_not_banned(&state, claims.sub).await?;
    let nodes = state.directory.nodes().await?;
    let lobbies = state.directory.lobbies(Some(&body.mode)).await?;
    let node = choose_node(&nodes, &lobbies, &body.mode)?;
    Ok(axum::Json(placement(&state, node, &claims, JoinTarget::Mode(body.mode)).await?))
}

#[utoipa::path(post, path = "/v1/lobbies/{id}/join", tag = "lobbies", params(("id" = u64, Path, description = "lobby id")),
    responses((status = 200, body = Placement), (status = 404, body = crate::error::Problem),
              (status = 409, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn join(
    State(state): State<AppState>,
    Authed(claims): Authed,
    ApiPath(id): ApiPath<u64>,
) -> ApiResult<axum::Json<Placement>> {
    ensure_not_banned(&state, claims.sub).await?;
    let lobby = state.directory.lobby(id).await?.ok_or_else(lobby_not_found)?;
    if !lobby.is_open() {
        return Err(ApiError::conflict("LOBBY_FULL", "that lobby is full or its match has ended"));
    }
    let nodes = state.directory.nodes().await?;
    let node = nodes.iter().find(|n| n.node_id == lobby.node_id).ok_or_else(lobby_not_found)?;
    Ok(axum::Json(placement(&state, node, &claims, JoinTarget::Lobby(id)).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, players: u32, lobbies: u32) -> NodeStatus {
        NodeStatus {
            node_id: id.into(),
            public_host: "127.0.0.1".into(),
            public_port: 4433,
            cert_sha256: String::new(),
            modes: vec!["deathmatch".into()],
            max_lobbies: 2,
            players_per_lobby: 8,
            lobbies,
            players,
            connections: players,
            draining: false,
            overloaded: false,
            sent_at_ms: 0,
        }
    }

    fn lobby(node: &str, players: u8) -> LobbySummary {
        LobbySummary {
            node_id: node.into(),
            id: 1,
            mode: "deathmatch".into(),
            players,
            max_players: 8,
            state: "playing".into(),
        }
    }

    #[test]
    fn prefers_the_fullest_open_lobby_then_the_least_loaded_node() {
        let nodes = vec![node("a", 3, 1), node("b", 9, 2)];
        let lobbies = vec![lobby("a", 3), lobby("b", 7)];
        assert_eq!(choose_node(&nodes, &lobbies, "deathmatch").unwrap().node_id, "b");
        let full = vec![lobby("a", 8), lobby("b", 8)];
        assert_eq!(choose_node(&nodes, &full, "deathmatch").unwrap().node_id, "a");
    }

    #[test]
    fn overloaded_nodes_get_no_new_players() {
        let mut busy = node("b", 9, 1);
        busy.overloaded = true;
        let nodes = vec![node("a", 3, 1), busy];
        // b's open lobby is the fullest, but b is overloaded.
        let lobbies = vec![lobby("a", 3), lobby("b", 7)];
        assert_eq!(choose_node(&nodes, &lobbies, "deathmatch").unwrap().node_id, "a");
        // Nor does it open lobbies, even as the emptier node.
        let mut idle_but_busy = node("c", 0, 0);
        idle_but_busy.overloaded = true;
        let nodes = vec![node("a", 16, 2), idle_but_busy];
        assert_eq!(choose_node(&nodes, &[lobby("a", 8)], "deathmatch").unwrap_err().code, "NODE_AT_CAPACITY");
    }

    #[test]
    fn clear_errors_when_nothing_fits() {
        assert_eq!(choose_node(&[], &[], "deathmatch").unwrap_err().code, "NO_GAME_SERVERS");
        let nodes = vec![node("a", 16, 2)];
        assert_eq!(choose_node(&nodes, &[lobby("a", 8)], "deathmatch").unwrap_err().code, "NODE_AT_CAPACITY");
        assert_eq!(choose_node(&nodes, &[], "ctf").unwrap_err().code, "UNKNOWN_MODE");
    }
}
