//! Lobbies: the pure per-lobby state machine ([`core`]), input ordering
//! ([`input_queue`]), the task that runs one lobby's loop ([`task`]) and the
//! node-wide registry that routes players to lobbies ([`manager`]).

pub mod core;
pub mod input_queue;
pub mod manager;
pub mod task;

pub use manager::{LobbyHandle, LobbyManager, LobbySettings};
pub use task::{LobbyMsg, SessionLink, ToSession};
