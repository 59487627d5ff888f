//! The Trespasser game node: QUIC transport, sessions, lobbies and the
//! simulation. See ARCHITECTURE.md for the map.

pub mod config;
pub mod directory_link;
pub mod http;
pub mod load;
pub mod lobby;
pub mod metrics;
pub mod node;
pub mod ratelimit;
pub mod results;
pub mod session;
pub mod shards;
pub mod sim;
pub mod tickets;
pub mod tls;
pub mod transport;
