//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Trespasser API", description = "Accounts, sessions, lobby browser, matchmaking and stats."),
    paths(
        routes::auth::register, routes::auth::login, routes::auth::refresh, routes::auth::logout,
        routes::me::me, routes::me::sessions, routes::me::revoke_session, routes::me::change_password,
        routes::lobbies::list, routes::lobbies::get, routes::lobbies::matchmake, routes::lobbies::join,
        routes::players::player, routes::players::matches, routes::players::leaderboard,
        routes::cosmetics::catalog, routes::cosmetics::mine, routes::cosmetics::get_loadout, routes::cosmetics::put_loadout,
        routes::donations::checkout, routes::donations::mine, routes::donations::stripe_webhook,
        routes::admin::revenue,
        routes::ops::health, routes::ops::ready,
    ),
    components(schemas(crate::error::Problem)),
    modifiers(&BearerAuth),
    tags((name = "auth"), (name = "me"), (name = "lobbies"), (name = "players"), (name = "cosmetics"),
         (name = "donations"), (name = "admin"), (name = "ops"))
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// Every route the API serves, as (method, path) in OpenAPI notation; the
/// router is built from the same handlers and a test checks both agree.
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/auth/register"),
    ("post", "/v1/auth/login"),
    ("post", "/v1/auth/refresh"),
    ("post", "/v1/auth/logout"),
    ("get", "/v1/me"),
    ("get", "/v1/me/sessions"),
    ("delete", "/v1/me/sessions/{id}"),
    ("post", "/v1/me/password"),
    ("get", "/v1/lobbies"),
    ("get", "/v1/lobbies/{id}"),
    ("post", "/v1/matchmake"),
    ("post", "/v1/lobbies/{id}/join"),
    ("get", "/v1/players/{id}"),
    ("get", "/v1/players/{id}/matches"),
    ("get", "/v1/leaderboard"),
    ("get", "/v1/cosmetics"),
    ("get", "/v1/me/cosmetics"),
    ("get", "/v1/me/loadout"),
    ("put", "/v1/me/loadout"),
    ("post", "/v1/donations/checkout"),
    ("get", "/v1/me/donations"),
    ("post", "/v1/webhooks/stripe"),
    ("get", "/v1/admin/revenue"),
    ("get", "/health"),
    ("get", "/ready"),
];
