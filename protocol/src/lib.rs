//! Every wire type Trespasser speaks, with no IO.
//!
//! * [`control`]: reliable messages on the per-connection control stream
//!   (length-prefixed postcard frames, see [`codec`]).
//! * [`datagram`]: unreliable QUIC datagrams: client inputs and server snapshots.
//! * [`delta`]: snapshot delta compression against an acknowledged snapshot.
//! * [`ticket`]: the signed join ticket the API (or the dev minting path) issues
//!   and a game node verifies.
//! * [`results`]: records a node reports upward (match results).
//! * [`map`] and [`movement`]: arena definitions and the deterministic movement
//!   step that clients run for prediction and the node runs for truth.
//!
//! The encoding is postcard (serde). Enum variants are encoded by position, so
//! variants are only ever appended; the golden vectors in `tests/golden.rs`
//! pin the bytes and are the contract for clients in other languages.

pub mod codec;
pub mod control;
pub mod datagram;
pub mod defaults;
pub mod delta;
pub mod directory;
pub mod map;
pub mod movement;
pub mod results;
pub mod ticket;

/// Version of the client-node protocol. Bumped on any incompatible change;
/// the node refuses a `Hello` with another version with
/// [`control::ErrorCode::VersionMismatch`].
pub const PROTOCOL_VERSION: u16 = 3;

/// ALPN id of the native QUIC protocol.
pub const ALPN: &[u8] = b"trespasser/1";

/// Where browsers open their WebTransport session on a node's QUIC port
/// (`https://host:port/play`). The session's first bidirectional stream
/// carries the control frames and its datagrams the game datagrams,
/// exactly as on a native connection.
pub const WEBTRANSPORT_PATH: &str = "/play";

/// Most players a lobby can ever hold; the configured size is at most this.
/// Bounded so that a full snapshot always fits in one datagram (see
/// [`datagram::MAX_SNAPSHOT_BYTES`]).
pub const MAX_PLAYERS_PER_LOBBY: usize = 32;

/// Player ids inside a lobby are slots `0..MAX_PLAYERS_PER_LOBBY`.
pub type PlayerId = u8;

/// Lobby ids are random 53-bit integers so they stay exact in JSON numbers
/// and are unique across nodes without coordination.
pub type LobbyId = u64;

/// Account ids are UUIDs (issued by the API).
pub type AccountId = uuid::Uuid;
