//! The cosmetics catalog, what an account owns, and its loadout.

use axum::extract::State;
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, Authed};
use crate::state::AppState;
use crate::store::{Cosmetic, Loadout, StoreError};

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CosmeticView {
    pub id: String,
    /// `badge` or `name_color`.
    pub kind: String,
    pub name: String,
    /// Badge label, or the color as `#rrggbb`.
    pub value: String,
    /// Granted by donating (otherwise free for everyone).
    pub supporter: bool,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Catalog {
    pub cosmetics: Vec<CosmeticView>,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OwnedView {
    pub cosmetic: CosmeticView,
    /// `free` or `donation`.
    pub source: String,
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MyCosmetics {
    pub owned: Vec<OwnedView>,
    pub loadout: LoadoutBody,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadoutBody {
    /// Badge id to show next to the name, or null.
    #[serde(default)]
    pub badge: Option<String>,
    /// Name color id, or null for the default.
    #[serde(default)]
    pub name_color: Option<String>,
}

pub fn view(c: Cosmetic) -> CosmeticView {
    CosmeticView { id: c.id, kind: c.kind.as_str().to_string(), name: c.name, value: c.value, supporter: c.supporter }
}

#[utoipa::path(get, path = "/v1/cosmetics", tag = "cosmetics", responses((status = 200, body = Catalog)))]
pub async fn catalog(State(state): State<AppState>) -> ApiResult<axum::Json<Catalog>> {
    let cosmetics = state.store.cosmetics().await?.into_iter().map(view).collect();
    Ok(axum::Json(Catalog { cosmetics }))
}

#[utoipa::path(get, path = "/v1/me/cosmetics", tag = "cosmetics", responses((status = 200, body = MyCosmetics)),
    security(("bearer" = [])))]
pub async fn mine(State(state): State<AppState>, Authed(claims): Authed) -> ApiResult<axum::Json<MyCosmetics>> {
    let owned = state
        .store
        .owned_cosmetics(claims.sub)
        .await?
        .into_iter()
        .map(|o| OwnedView { cosmetic: view(o.cosmetic), source: o.source })
        .collect();
    let l = state.store.loadout(claims.sub).await?;
    Ok(axum::Json(MyCosmetics { owned, loadout: LoadoutBody { badge: l.badge, name_color: l.name_color } }))
}

#[utoipa::path(get, path = "/v1/me/loadout", tag = "cosmetics", responses((status = 200, body = LoadoutBody)),
    security(("bearer" = [])))]
pub async fn get_loadout(State(state): State<AppState>, Authed(claims): Authed) -> ApiResult<axum::Json<LoadoutBody>> {
    let l = state.store.loadout(claims.sub).await?;
    Ok(axum::Json(LoadoutBody { badge: l.badge, name_color: l.name_color }))
}

#[utoipa::path(put, path = "/v1/me/loadout", tag = "cosmetics", request_body = LoadoutBody,
    responses((status = 200, body = LoadoutBody), (status = 403, body = crate::error::Problem),
              (status = 422, body = crate::error::Problem)),
    security(("bearer" = [])))]
pub async fn put_loadout(
    State(state): State<AppState>,
    Authed(claims): Authed,
    ApiJson(body): ApiJson<LoadoutBody>,
) -> ApiResult<axum::Json<LoadoutBody>> {
    for (field, id) in [("badge", &body.badge), ("name_color", &body.name_color)] {
        if let Some(id) = id
            && (id.is_empty() || id.len() > 32)
        {
            return Err(ApiError::validation(field, "invalid_chars", "cosmetic ids are 1-32 characters"));
        }
    }
    let loadout = Loadout { badge: body.badge.clone(), name_color: body.name_color.clone() };
    match state.store.set_loadout(claims.sub, &loadout).await {
        Ok(()) => Ok(axum::Json(body)),
        Err(StoreError::NotOwned(id)) => Err(ApiError::forbidden(
            "COSMETIC_NOT_OWNED",
            format!("you do not own {id:?} (or it is not that kind of cosmetic); donate to unlock supporter items"),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The equipped cosmetics as a join ticket carries them: the badge id and
/// the name color as `#rrggbb`, so game clients can render without the catalog.
pub async fn ticket_cosmetics(state: &AppState, account: uuid::Uuid) -> ApiResult<protocol::control::Cosmetics> {
    let l = state.store.loadout(account).await?;
    let name_color = match l.name_color {
        Some(id) => state.store.cosmetics().await?.into_iter().find(|c| c.id == id).map(|c| c.value),
        None => None,
    };
    Ok(protocol::control::Cosmetics { badge: l.badge, name_color })
}
