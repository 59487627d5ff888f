//! HTTP handlers, one module per resource.

pub mod admin;
pub mod auth;
pub mod cosmetics;
pub mod donations;
pub mod lobbies;
pub mod me;
pub mod ops;
pub mod players;
