//! One loop per core driving QUIC connections without quinn's async layer.
//!
//! quinn's async API gives every connection a driver task and a timer and
//! hops each packet through a channel between the endpoint task and that
//! connection's task. With thousands of connections sending 20 small
//! datagrams a second each, those wake-ups cost more than the protocol work
//! itself. Here one [`Driver`] owns a UDP socket, a `quinn_proto::Endpoint`
//! and every connection of that endpoint: it receives in batches
//! (`recvmmsg`/GRO through quinn-udp), feeds each packet straight to its
//! connection, keeps all connection timers in one ordered set, and flushes
//! what the application queued once per wake-up instead of once per packet.
//!
//! The application side sees each connection as a [`Conn`]: a cheap,
//! cloneable handle, usable from any thread, with
//! - unreliable datagrams: [`Conn::send_datagram`] queues one for the driver,
//!   [`Conn::recv_datagrams`] takes what arrived, without waiting (a game
//!   loop drains them once per tick, so an incoming datagram wakes no task);
//! - one bidirectional *control stream* (opened by the client, accepted by
//!   the server) carried as raw bytes: [`Conn::send_control`],
//!   [`Conn::next_event`];
//! - close and its reason.
//!
//! A connection wakes its application task only for control data, closes,
//! the end of the handshake, and (when asked to) datagrams.
//!
//! Browsers reach the same application over WebTransport: a server loop
//! with [`DriverConfig::webtransport_path`] answers connections that
//! negotiate HTTP/3 (ALPN `h3`) with SETTINGS, accepts the extended CONNECT
//! at that path, and maps the session's first WebTransport stream and its
//! HTTP datagrams onto the same [`Conn`] API ([`Conn::is_webtransport`] tells
//! them apart); [`LoopHandle::connect_webtransport`] is the client side.
//!
//! Several server drivers can share one port, one per core: with
//! [`DriverConfig::steering`] each packet reaches the driver that owns its
//! connection by connection ID, not by address (see [`ShardSteering`]).

mod conn;
mod driver;
mod socket;
mod steering;
mod timers;
pub mod webtransport;
mod wt_streams;

pub use conn::{Conn, ConnEvent, SendDatagramError};
pub use driver::{Admit, Driver, DriverConfig, DriverStats, LoopHandle};
pub use quinn_proto::{
    ClientConfig, ConnectionError, EndpointConfig, RandomConnectionIdGenerator, ServerConfig, TransportConfig, VarInt,
};
pub use steering::{ShardCidGenerator, ShardSteering};
