//! The Trespasser client library and load generator.
//!
//! * [`client`]: [`GameClient`], one player's QUIC connection to a game node
//!   (handshake, join, inputs with redundancy, snapshots, control events).
//!   The node's tests use it as their client.
//! * [`api`]: [`ApiClient`], the typed HTTP API client (accounts, placements).
//! * [`tls`]: client endpoints and certificate trust (a DER copy or a SHA-256 pin).
//! * [`drivers`]: quic-loop drivers shared by many clients (the default I/O).
//! * [`ticket`]: join tickets minted with a node's development key (`--direct`).
//! * [`input`]: the input redundancy window and round-trip matching, no IO.
//! * [`bot`]: the bot's brain (no IO) and its play loop.
//! * [`impair`]: loss, latency and jitter on the bots' sockets.
//! * [`scenario`]: load phases and which bot starts when (pure).
//! * [`stats`], [`report`], [`verdict`]: measurements of a run, the JSON
//!   report and its pass/fail limits; [`merge`] combines shards' reports.
//! * [`sampler`], [`prom`], [`timeline`], [`trend`], [`html`]: the
//!   once-a-second timeline, the node's metrics, the soak memory trend and
//!   the HTML report.
//! * [`cli`], [`run`]: the `loadgen` binary's flags and the run itself.

pub mod api;
pub mod bot;
pub mod cli;
pub mod client;
pub mod drivers;
pub mod html;
pub mod impair;
pub mod input;
pub mod merge;
pub mod prom;
pub mod report;
pub mod run;
pub mod sampler;
pub mod scenario;
pub mod stats;
pub mod ticket;
pub mod timeline;
pub mod tls;
pub mod trend;
pub mod verdict;

pub use api::{ApiClient, ApiError, Placement, Tokens};
pub use client::{ClientConfig, ClientError, ClientStats, GameClient, Welcome};
pub use drivers::{DriverPool, PooledDriver};
pub use report::Report;
pub use ticket::DevTicketMinter;
pub use tls::{
    ClientConfigs, EndpointPool, Trust, client_endpoint, client_endpoint_for, quic_client_config,
    webtransport_client_config,
};
