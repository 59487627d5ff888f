//! The Trespasser HTTP API: accounts and sessions, the lobby browser,
//! matchmaking (join tickets for game nodes), match results and stats.
//! The API owns all durable data (the store); game nodes reach it only
//! through the directory.

pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod jobs;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod payments;
pub mod ratelimit;
pub mod routes;
pub mod state;
pub mod store;

pub use app::{Api, ApiOptions, Role};
pub use config::ApiArgs;
