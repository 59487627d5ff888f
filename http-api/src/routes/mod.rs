//! HTTP handlers, one module per resource.

pub mod auth;
pub mod lobbies;
pub mod me;
pub mod ops;
pub mod players;
