//! The application's side of a connection: queues shared with the driver
//! under one uncontended lock, and a wake-up for the task that owns it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use quinn_proto::{ConnectionError, VarInt};
use tokio::sync::Notify;

use crate::driver::LoopShared;

/// Control-stream bytes buffered for the application before the driver
/// stops reading (the stream's flow control then holds the peer back).
const CONTROL_IN_LIMIT: usize = 64 * 1024;

/// Why a datagram could not be queued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendDatagramError {
    #[error("the connection is closed")]
    Closed,
    #[error("the datagram is larger than the path allows ({0} bytes at most)")]
    TooLarge(usize),
    #[error("the peer does not accept datagrams")]
    Unsupported,
}

/// What a connection has for its application task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnEvent {
    /// The handshake completed.
    Established,
    /// Bytes of the control stream, in order.
    Control(Bytes),
    /// The peer finished the control stream (no more bytes will come).
    ControlFinished,
    /// The peer reset the control stream.
    ControlReset(u64),
    /// Datagrams are waiting (only reported while [`Conn::wake_on_datagrams`]
    /// is on).
    Datagrams,
    /// The connection is closed; nothing more will arrive.
    Closed(ConnectionError),
}

/// A connection handle. Cloning is cheap; every clone refers to the same
/// connection, and the connection lives until closed (dropping handles
/// does not close it).
#[derive(Clone)]
pub struct Conn {
    pub(crate) shared: Arc<ConnShared>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("id", &self.shared.id).field("remote", &self.shared.remote).finish()
    }
}

pub(crate) struct ConnShared {
    pub(crate) id: u64,
    pub(crate) remote: SocketAddr,
    pub(crate) state: Mutex<ConnState>,
    pub(crate) app: Notify,
    pub(crate) lp: Arc<LoopShared>,
}

#[derive(Default)]
pub(crate) struct ConnState {
    /// The driver's key for this connection, once it has one.
    pub(crate) key: Option<usize>,
    /// Queued for the driver's attention already.
    pub(crate) dirty: bool,
    // Application → driver.
    pub(crate) out_datagrams: Vec<Bytes>,
    pub(crate) out_control: Vec<Bytes>,
    pub(crate) finish_control: bool,
    pub(crate) close: Option<(VarInt, Bytes)>,
    // Driver → application.
    pub(crate) established: bool,
    pub(crate) established_seen: bool,
    /// Received datagrams with the time the loop read them off the socket.
    pub(crate) in_datagrams: VecDeque<(Instant, Bytes)>,
    pub(crate) in_datagram_limit: usize,
    pub(crate) datagrams_dropped: u64,
    pub(crate) wake_on_datagrams: bool,
    pub(crate) in_control: VecDeque<Bytes>,
    pub(crate) in_control_bytes: usize,
    /// The driver stopped reading the control stream until the application
    /// catches up.
    pub(crate) control_throttled: bool,
    pub(crate) control_end: Option<ConnEvent>,
    pub(crate) control_end_seen: bool,
    /// Every control byte sent, and the finish, was acknowledged.
    pub(crate) control_acked: bool,
    pub(crate) max_datagram: Option<usize>,
    /// The connection carries a WebTransport session.
    pub(crate) webtransport: bool,
    pub(crate) closed: Option<ConnectionError>,
}

impl ConnState {
    pub(crate) fn control_room(&self) -> bool {
        self.in_control_bytes < CONTROL_IN_LIMIT
    }
}

impl ConnShared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, ConnState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks the driver to look at this connection (once until it does).
    fn poke(&self, st: &mut ConnState) {
        if !st.dirty {
            st.dirty = true;
            if let Some(key) = st.key {
                self.lp.mark_dirty(key);
            }
        }
    }
}

impl Conn {
    /// A number unique to this connection within the process.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    pub fn remote_address(&self) -> SocketAddr {
        self.shared.remote
    }

    /// Whether this is a WebTransport session (HTTP/3) rather than a native
    /// QUIC connection. Known once the handshake completed.
    pub fn is_webtransport(&self) -> bool {
        self.shared.lock().webtransport
    }

    /// The largest datagram the path takes now (None before the handshake,
    /// or when the peer refuses datagrams).
    pub fn max_datagram_size(&self) -> Option<usize> {
        self.shared.lock().max_datagram
    }

    /// Queues an unreliable datagram. It leaves with the driver's next
    /// flush; when QUIC's datagram send buffer is full the oldest waiting
    /// datagram is dropped, which is what a game wants of stale state.
    pub fn send_datagram(&self, data: Bytes) -> Result<(), SendDatagramError> {
        let mut st = self.shared.lock();
        if st.closed.is_some() {
            return Err(SendDatagramError::Closed);
        }
        match st.max_datagram {
            Some(max) if data.len() > max => return Err(SendDatagramError::TooLarge(max)),
            None if st.established => return Err(SendDatagramError::Unsupported),
            _ => {}
        }
        st.out_datagrams.push(data);
        self.shared.poke(&mut st);
        Ok(())
    }

    /// Moves up to `max` received datagrams into `out`, oldest first;
    /// returns how many. Never waits.
    pub fn recv_datagrams(&self, out: &mut Vec<Bytes>, max: usize) -> usize {
        let mut st = self.shared.lock();
        let n = st.in_datagrams.len().min(max);
        out.extend(st.in_datagrams.drain(..n).map(|(_, d)| d));
        n
    }

    /// Like [`Conn::recv_datagrams`], with the time each datagram was read
    /// off the socket (for round-trip measurements that must not depend on
    /// when the application looked).
    pub fn recv_datagrams_at(&self, out: &mut Vec<(Instant, Bytes)>, max: usize) -> usize {
        let mut st = self.shared.lock();
        let n = st.in_datagrams.len().min(max);
        out.extend(st.in_datagrams.drain(..n));
        n
    }

    /// Datagrams dropped because the application did not take them in time
    /// (the oldest go first), since the last call.
    pub fn take_datagrams_dropped(&self) -> u64 {
        std::mem::take(&mut self.shared.lock().datagrams_dropped)
    }

    /// Whether a datagram's arrival wakes [`Conn::next_event`] (off by
    /// default: a game loop polls them each tick instead).
    pub fn wake_on_datagrams(&self, on: bool) {
        self.shared.lock().wake_on_datagrams = on;
    }

    /// Appends bytes to the control stream (the client opens it with its
    /// first bytes; the server answers on the stream the client opened).
    pub fn send_control(&self, data: Bytes) {
        let mut st = self.shared.lock();
        if st.closed.is_some() || st.finish_control {
            return;
        }
        st.control_acked = false;
        st.out_control.push(data);
        self.shared.poke(&mut st);
    }

    /// Finishes the control stream once what was queued has been written.
    pub fn finish_control(&self) {
        let mut st = self.shared.lock();
        if st.closed.is_some() {
            return;
        }
        st.finish_control = true;
        self.shared.poke(&mut st);
    }

    /// Closes the connection with an application error code and reason.
    pub fn close(&self, code: u32, reason: &[u8]) {
        let mut st = self.shared.lock();
        if st.closed.is_some() || st.close.is_some() {
            return;
        }
        st.close = Some((VarInt::from_u32(code), Bytes::copy_from_slice(reason)));
        self.shared.poke(&mut st);
    }

    /// Why the connection closed, once it has.
    pub fn close_reason(&self) -> Option<ConnectionError> {
        self.shared.lock().closed.clone()
    }

    /// Waits for the next thing the application should handle. Each
    /// `Established`, `ControlFinished`/`ControlReset` and `Closed` is
    /// reported once; `Closed` comes after every control byte received
    /// before it.
    pub async fn next_event(&self) -> ConnEvent {
        loop {
            let notified = self.shared.app.notified();
            if let Some(ev) = self.poll_event() {
                return ev;
            }
            notified.await;
        }
    }

    /// The next event if one is ready, without waiting.
    pub fn try_event(&self) -> Option<ConnEvent> {
        self.poll_event()
    }

    fn poll_event(&self) -> Option<ConnEvent> {
        let mut st = self.shared.lock();
        if st.established && !st.established_seen {
            st.established_seen = true;
            return Some(ConnEvent::Established);
        }
        if let Some(bytes) = st.in_control.pop_front() {
            let was_full = !st.control_room();
            st.in_control_bytes -= bytes.len();
            if was_full && st.control_room() && st.control_throttled {
                self.shared.poke(&mut st);
            }
            return Some(ConnEvent::Control(bytes));
        }
        if !st.control_end_seen {
            if let Some(end) = st.control_end.clone() {
                st.control_end_seen = true;
                return Some(end);
            }
        }
        if st.wake_on_datagrams && !st.in_datagrams.is_empty() {
            return Some(ConnEvent::Datagrams);
        }
        st.closed.clone().map(ConnEvent::Closed)
    }

    /// Waits until the handshake completes (Ok) or the connection closes.
    pub async fn established(&self) -> Result<(), ConnectionError> {
        loop {
            let notified = self.shared.app.notified();
            {
                let st = self.shared.lock();
                if let Some(e) = &st.closed {
                    return Err(e.clone());
                }
                if st.established {
                    return Ok(());
                }
            }
            notified.await;
        }
    }

    /// Waits until the peer acknowledged every control byte sent and the
    /// finish (after [`Conn::finish_control`]), or the connection closed.
    pub async fn control_flushed(&self) {
        loop {
            let notified = self.shared.app.notified();
            {
                let st = self.shared.lock();
                if st.closed.is_some() || st.control_acked {
                    return;
                }
            }
            notified.await;
        }
    }

    /// Waits until the connection is closed.
    pub async fn closed(&self) -> ConnectionError {
        loop {
            let notified = self.shared.app.notified();
            if let Some(e) = self.close_reason() {
                return e;
            }
            notified.await;
        }
    }
}
