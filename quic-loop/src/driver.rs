//! The loop: one UDP socket, one `quinn_proto::Endpoint`, every connection
//! of that endpoint, their timers, and the flush of what applications
//! queued. It runs as one task; applications reach it through
//! [`LoopHandle`] and [`Conn`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use quinn_proto::{
    ClientConfig, ConnectionError, ConnectionHandle, DatagramEvent, Dir, Endpoint, EndpointConfig, Event, ServerConfig,
    StreamEvent, StreamId, VarInt,
};
use tokio::sync::{Notify, mpsc};

use crate::conn::{Conn, ConnEvent, ConnShared, ConnState};
use crate::socket::Socket;
use crate::steering::ShardSteering;
use crate::timers::Timers;
use crate::webtransport;
use crate::wt_streams::{self, WtConn};

/// Bytes reserved at a time for received packets: each packet is copied out
/// of the socket buffer into this arena and split off, so a packet costs no
/// allocation of its own.
const RECV_ARENA: usize = 64 * 1024;
/// Most socket batches handled before the loop looks at its other work.
const RECV_BATCHES_PER_ROUND: usize = 8;
/// Most datagrams a connection holds for its application (oldest dropped).
const DEFAULT_INBOX: usize = 32;
/// Passes over a connection between refreshes of the largest datagram the
/// application may send while the path MTU stays put. Asking quinn-proto
/// touches both packet keys and the peer's parameters (cold cache lines,
/// ~3 % of a loaded node's CPU when done on every pass); the answer moves
/// with the path MTU, which is checked on every pass, and otherwise only if
/// the peer changes the length of its connection ids.
const MAX_DATAGRAM_REFRESH: u8 = 64;

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// What to do with a new connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Accept,
    /// Answer with a refusal (CONNECTION_REFUSED).
    Refuse,
    /// Drop silently (answering a flood would amplify it).
    Ignore,
}

type AdmitFn = Box<dyn FnMut(SocketAddr) -> Admit + Send>;

pub struct DriverConfig {
    pub addr: SocketAddr,
    /// None for a client-only endpoint.
    pub server: Option<Arc<ServerConfig>>,
    pub endpoint: Arc<EndpointConfig>,
    /// Kernel socket buffer size, both directions.
    pub udp_buffer_bytes: usize,
    /// Share the port with other drivers (SO_REUSEPORT).
    pub reuse_port: bool,
    /// This driver's place among the drivers sharing the port: its
    /// connection IDs name it and the kernel steers packets by them
    /// (implies `reuse_port`; replaces `endpoint`'s ID generator).
    pub steering: Option<ShardSteering>,
    /// Datagrams a connection keeps for its application before dropping the
    /// oldest.
    pub inbox_datagrams: usize,
    /// How late a connection's timers may fire. A game's peers each send
    /// once per tick, so an acknowledgement due between two ticks goes in a
    /// packet of its own; a few milliseconds of slack let it ride on the
    /// next tick's datagram instead (every packet carries pending acks, and
    /// sending one cancels the ack timer). Loss detection, idle timeouts
    /// and probes are late by as much, which costs nothing at 20 Hz.
    pub timer_slack: Duration,
    /// Serve WebTransport sessions at this path to connections that
    /// negotiate HTTP/3 (ALPN `h3`, which the server config must offer):
    /// their session's WebTransport stream and datagrams become the
    /// connection's control stream and datagrams, so the application
    /// cannot tell them from native ones. None closes such connections.
    pub webtransport_path: Option<String>,
}

impl DriverConfig {
    pub fn new(addr: SocketAddr, server: Option<Arc<ServerConfig>>) -> DriverConfig {
        DriverConfig {
            addr,
            server,
            endpoint: Arc::new(EndpointConfig::default()),
            udp_buffer_bytes: 4 * 1024 * 1024,
            reuse_port: false,
            steering: None,
            inbox_datagrams: DEFAULT_INBOX,
            timer_slack: Duration::ZERO,
            webtransport_path: None,
        }
    }
}

/// Counters of the loop's work, for metrics and reports.
#[derive(Debug, Default)]
pub struct DriverStats {
    pub packets_in: AtomicU64,
    pub packets_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Packets dropped because the kernel's send buffer was full.
    pub send_drops: AtomicU64,
    /// Socket receive calls (each may carry a batch).
    pub recv_calls: AtomicU64,
    /// Times the loop woke up.
    pub wakeups: AtomicU64,
}

struct Connect {
    config: ClientConfig,
    server_name: String,
    /// A WebTransport session URL (the config must offer ALPN `h3`).
    webtransport: Option<String>,
    shared: Arc<ConnShared>,
}

pub(crate) struct LoopShared {
    dirty: Mutex<Vec<usize>>,
    wake: Notify,
    connects: Mutex<Vec<Connect>>,
    close_all: Mutex<Option<(VarInt, Bytes)>>,
    live: AtomicUsize,
    idle: Notify,
    stop: Notify,
    local_addr: SocketAddr,
    pub(crate) stats: DriverStats,
}

impl LoopShared {
    pub(crate) fn mark_dirty(&self, key: usize) {
        let first = {
            let mut dirty = self.dirty.lock().unwrap_or_else(|e| e.into_inner());
            dirty.push(key);
            dirty.len() == 1
        };
        // One wake-up per batch: later marks find the loop already woken.
        if first {
            self.wake.notify_one();
        }
    }
}

/// A handle to a running loop, usable from any thread.
#[derive(Clone)]
pub struct LoopHandle {
    shared: Arc<LoopShared>,
}

impl LoopHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// Starts a connection to `remote`; the handshake runs in the loop
    /// (await [`Conn::established`]).
    pub fn connect(&self, config: ClientConfig, remote: SocketAddr, server_name: &str) -> Conn {
        self.start_connect(config, remote, server_name, None)
    }

    /// Starts a WebTransport session at `url` (`https://host:port/path`):
    /// a QUIC connection offering HTTP/3 (`config`'s ALPN must be `h3`),
    /// then the extended CONNECT. [`Conn::established`] completes when the
    /// server accepted the session; the control stream and datagrams then
    /// work as on a native connection.
    pub fn connect_webtransport(&self, config: ClientConfig, remote: SocketAddr, server_name: &str, url: &str) -> Conn {
        self.start_connect(config, remote, server_name, Some(url.to_string()))
    }

    fn start_connect(
        &self,
        config: ClientConfig,
        remote: SocketAddr,
        server_name: &str,
        webtransport: Option<String>,
    ) -> Conn {
        let shared = Arc::new(ConnShared {
            id: NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed),
            remote,
            state: Mutex::new(ConnState { in_datagram_limit: DEFAULT_INBOX, ..ConnState::default() }),
            app: Notify::new(),
            lp: self.shared.clone(),
        });
        self.shared.connects.lock().unwrap_or_else(|e| e.into_inner()).push(Connect {
            config,
            server_name: server_name.to_string(),
            webtransport,
            shared: shared.clone(),
        });
        self.shared.wake.notify_one();
        Conn { shared }
    }

    /// Closes every connection and refuses new ones.
    pub fn close(&self, code: u32, reason: &[u8]) {
        *self.shared.close_all.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((VarInt::from_u32(code), Bytes::copy_from_slice(reason)));
        self.shared.wake.notify_one();
    }

    /// Waits until no connection is left (their close frames have gone).
    pub async fn wait_idle(&self) {
        loop {
            let idle = self.shared.idle.notified();
            if self.shared.live.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }

    /// Connections in the loop, closing ones included.
    pub fn connections(&self) -> usize {
        self.shared.live.load(Ordering::Relaxed)
    }

    /// Stops the loop at once (connections vanish without a close frame;
    /// call [`LoopHandle::close`] and [`LoopHandle::wait_idle`] first).
    pub fn stop(&self) {
        self.shared.stop.notify_one();
    }

    pub fn stats(&self) -> &DriverStats {
        &self.shared.stats
    }
}

pub(crate) struct Entry {
    pub(crate) conn: quinn_proto::Connection,
    pub(crate) shared: Arc<ConnShared>,
    pub(crate) control: Option<StreamId>,
    /// Control bytes the stream has not taken yet (flow control).
    pub(crate) control_out: std::collections::VecDeque<Bytes>,
    finish_pending: bool,
    finished: bool,
    touched: bool,
    closed: bool,
    /// Passes left before the largest datagram size is asked again.
    max_datagram_refresh: u8,
    /// The path MTU the application's largest datagram was computed for.
    max_datagram_mtu: u16,
    /// HTTP/3 and WebTransport state, for WebTransport connections.
    pub(crate) wt: Option<Box<WtConn>>,
}

/// The loop. Create it on the runtime that will run it, then `run` it.
pub struct Driver {
    endpoint: Endpoint,
    socket: Socket,
    entries: Vec<Option<Entry>>,
    timers: Timers,
    shared: Arc<LoopShared>,
    server_config: Option<Arc<ServerConfig>>,
    admit: AdmitFn,
    accepted: Option<mpsc::UnboundedSender<Conn>>,
    touched: Vec<usize>,
    /// Swapped with the shared dirty list and with each connection's
    /// outgoing datagrams, so their capacity is reused: taking them would
    /// free a buffer per tick and allocate it again on the next push.
    dirty_spare: Vec<usize>,
    datagrams_spare: Vec<Bytes>,
    events: Vec<(SocketAddr, Option<DatagramEvent>, Vec<u8>)>,
    arena: BytesMut,
    response: Vec<u8>,
    send_buf: Vec<u8>,
    inbox: usize,
    timer_slack: Duration,
    webtransport_path: Option<String>,
    closing: bool,
}

impl Driver {
    /// Binds the socket. `accepted` receives each connection a server
    /// endpoint accepts (None for clients); `admit` decides on each attempt.
    pub fn bind(
        config: DriverConfig,
        admit: Option<AdmitFn>,
        accepted: Option<mpsc::UnboundedSender<Conn>>,
    ) -> std::io::Result<Driver> {
        let socket = Socket::bind(config.addr, config.udp_buffer_bytes, config.reuse_port, config.steering.as_ref())?;
        let local_addr = socket.local_addr()?;
        let endpoint_config = match config.steering {
            Some(steering) => {
                let mut c = (*config.endpoint).clone();
                c.cid_generator(move || Box::new(steering.cid_generator()));
                Arc::new(c)
            }
            None => config.endpoint.clone(),
        };
        let endpoint = Endpoint::new(endpoint_config, config.server.clone(), true, None);
        let shared = Arc::new(LoopShared {
            dirty: Mutex::new(Vec::new()),
            wake: Notify::new(),
            connects: Mutex::new(Vec::new()),
            close_all: Mutex::new(None),
            live: AtomicUsize::new(0),
            idle: Notify::new(),
            stop: Notify::new(),
            local_addr,
            stats: DriverStats::default(),
        });
        Ok(Driver {
            endpoint,
            socket,
            entries: Vec::new(),
            timers: Timers::default(),
            shared,
            server_config: config.server,
            admit: admit.unwrap_or_else(|| Box::new(|_| Admit::Accept)),
            accepted,
            touched: Vec::new(),
            dirty_spare: Vec::new(),
            datagrams_spare: Vec::new(),
            events: Vec::new(),
            arena: BytesMut::new(),
            response: Vec::new(),
            send_buf: Vec::new(),
            inbox: config.inbox_datagrams.max(1),
            timer_slack: config.timer_slack,
            webtransport_path: config.webtransport_path,
            closing: false,
        })
    }

    pub fn handle(&self) -> LoopHandle {
        LoopHandle { shared: self.shared.clone() }
    }

    /// Runs until [`LoopHandle::stop`] or a socket error.
    pub async fn run(mut self) -> std::io::Result<()> {
        let shared = self.shared.clone();
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(sleep);
        let mut armed: Option<Instant> = None;
        loop {
            let deadline = self.timers.next_deadline();
            if deadline != armed {
                armed = deadline;
                let at = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
                sleep.as_mut().reset(at.into());
            }
            tokio::select! {
                biased;
                _ = shared.stop.notified() => return Ok(()),
                r = self.socket.readable() => {
                    r?;
                    self.receive(Instant::now())?;
                }
                _ = shared.wake.notified() => {}
                _ = &mut sleep, if armed.is_some() => {
                    armed = None;
                }
            }
            // What an application queued (a lobby's snapshots, typically)
            // often comes with other tasks on this thread woken to queue
            // more for the same connections (its sessions' kill and chat
            // messages): let them run first, so it all leaves in one packet
            // per connection, whatever woke the loop.
            tokio::task::yield_now().await;
            shared.stats.wakeups.fetch_add(1, Ordering::Relaxed);
            let now = Instant::now();
            self.take_requests(now);
            while let Some(key) = self.timers.pop_expired(now) {
                if let Some(e) = self.entries.get_mut(key).and_then(Option::as_mut) {
                    e.conn.handle_timeout(now);
                    wt_streams::on_timeout(e, now);
                }
                self.touch(key);
            }
            self.process_touched(now);
        }
    }

    fn touch(&mut self, key: usize) {
        if let Some(e) = self.entries.get_mut(key).and_then(Option::as_mut) {
            if !e.touched {
                e.touched = true;
                self.touched.push(key);
            }
        }
    }

    /// Applications' requests: new client connections, a close of
    /// everything, and connections with queued work.
    fn take_requests(&mut self, now: Instant) {
        let connects = std::mem::take(&mut *self.shared.connects.lock().unwrap_or_else(|e| e.into_inner()));
        for c in connects {
            self.start_connect(now, c);
        }
        let close_all = self.shared.close_all.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((code, reason)) = close_all {
            self.closing = true;
            for key in 0..self.entries.len() {
                if let Some(e) = self.entries[key].as_mut() {
                    e.conn.close(now, code, reason.clone());
                    mark_closed(e, ConnectionError::LocallyClosed);
                    self.touch(key);
                }
            }
        }
        let mut dirty = std::mem::take(&mut self.dirty_spare);
        std::mem::swap(&mut dirty, &mut *self.shared.dirty.lock().unwrap_or_else(|e| e.into_inner()));
        for &key in &dirty {
            self.touch(key);
        }
        dirty.clear();
        self.dirty_spare = dirty;
    }

    fn start_connect(&mut self, now: Instant, c: Connect) {
        let Connect { config, server_name, webtransport, shared } = c;
        match self.endpoint.connect(now, config, shared.remote, &server_name) {
            Ok((ch, conn)) => self.insert(ch, conn, shared, webtransport.map(|url| Box::new(WtConn::client(url)))),
            Err(e) => {
                let mut st = shared.lock();
                st.closed = Some(ConnectionError::TransportError(quinn_proto::TransportError {
                    code: quinn_proto::TransportErrorCode::INTERNAL_ERROR,
                    frame: None,
                    reason: format!("connect: {e}"),
                }));
                drop(st);
                shared.app.notify_waiters();
            }
        }
    }

    fn insert(
        &mut self,
        ch: ConnectionHandle,
        conn: quinn_proto::Connection,
        shared: Arc<ConnShared>,
        wt: Option<Box<WtConn>>,
    ) {
        let key = ch.0;
        if self.entries.len() <= key {
            self.entries.resize_with(key + 1, || None);
        }
        {
            let mut st = shared.lock();
            st.key = Some(key);
            st.in_datagram_limit = self.inbox;
            st.webtransport = wt.is_some();
            // Work queued before the loop knew the connection.
            st.dirty = false;
        }
        self.entries[key] = Some(Entry {
            conn,
            shared,
            control: None,
            control_out: Default::default(),
            finish_pending: false,
            finished: false,
            touched: false,
            closed: false,
            max_datagram_refresh: 0,
            max_datagram_mtu: 0,
            wt,
        });
        self.shared.live.fetch_add(1, Ordering::AcqRel);
        self.touch(key);
    }

    fn receive(&mut self, now: Instant) -> std::io::Result<()> {
        for _ in 0..RECV_BATCHES_PER_ROUND {
            let Driver { socket, endpoint, arena, response, events, shared, .. } = self;
            let more = socket.recv_batch(|meta, datagram| {
                shared.stats.bytes_in.fetch_add(datagram.len() as u64, Ordering::Relaxed);
                if arena.capacity() < datagram.len() {
                    arena.reserve(RECV_ARENA.max(datagram.len()));
                }
                arena.extend_from_slice(datagram);
                let data = arena.split();
                response.clear();
                let ev = endpoint.handle(now, meta.addr, meta.dst_ip, meta.ecn.map(ecn), data, response);
                events.push((meta.addr, ev, std::mem::take(response)));
            })?;
            self.shared.stats.recv_calls.fetch_add(1, Ordering::Relaxed);
            let mut events = std::mem::take(&mut self.events);
            self.shared.stats.packets_in.fetch_add(events.len() as u64, Ordering::Relaxed);
            for (addr, ev, resp) in events.drain(..) {
                self.datagram_event(now, addr, ev, resp);
            }
            self.events = events;
            if !more {
                break;
            }
        }
        Ok(())
    }

    fn datagram_event(&mut self, now: Instant, addr: SocketAddr, ev: Option<DatagramEvent>, mut resp: Vec<u8>) {
        match ev {
            None => {}
            Some(DatagramEvent::ConnectionEvent(ch, event)) => {
                if let Some(e) = self.entries.get_mut(ch.0).and_then(Option::as_mut) {
                    e.conn.handle_event(event);
                    self.touch(ch.0);
                }
            }
            Some(DatagramEvent::Response(t)) => self.send_response(&t, &resp),
            Some(DatagramEvent::NewConnection(incoming)) => {
                let decision = if self.closing || self.accepted.is_none() { Admit::Refuse } else { (self.admit)(addr) };
                match decision {
                    Admit::Ignore => self.endpoint.ignore(incoming),
                    Admit::Refuse => {
                        resp.clear();
                        let t = self.endpoint.refuse(incoming, &mut resp);
                        self.send_response(&t, &resp);
                    }
                    Admit::Accept => {
                        resp.clear();
                        match self.endpoint.accept(incoming, now, &mut resp, self.server_config.clone()) {
                            Ok((ch, conn)) => {
                                let shared = Arc::new(ConnShared {
                                    id: NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed),
                                    remote: conn.remote_address(),
                                    state: Mutex::new(ConnState::default()),
                                    app: Notify::new(),
                                    lp: self.shared.clone(),
                                });
                                self.insert(ch, conn, shared.clone(), None);
                                if let Some(tx) = &self.accepted {
                                    let _ = tx.send(Conn { shared });
                                }
                            }
                            Err(e) => {
                                if let Some(t) = e.response {
                                    self.send_response(&t, &resp);
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    fn send_response(&self, t: &quinn_proto::Transmit, buf: &[u8]) {
        let transmit = udp_transmit(t, &buf[..t.size]);
        if self.socket.send(&transmit) {
            self.shared.stats.packets_out.fetch_add(1, Ordering::Relaxed);
        } else {
            self.shared.stats.send_drops.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn process_touched(&mut self, now: Instant) {
        // Processing may touch connections again (endpoint events); loop
        // until nothing is left.
        while !self.touched.is_empty() {
            let keys = std::mem::take(&mut self.touched);
            for key in &keys {
                self.process(*key, now);
            }
            let mut keys = keys;
            keys.clear();
            if self.touched.is_empty() {
                self.touched = keys;
            }
        }
    }

    /// Everything one connection needs after an event: the application's
    /// queued work in, protocol events out, packets sent, timer re-armed.
    fn process(&mut self, key: usize, now: Instant) {
        let max_segments = self.socket.max_gso_segments();
        let Some(e) = self.entries.get_mut(key).and_then(Option::as_mut) else { return };
        e.touched = false;
        let mut woke = apply_requests(e, now, &mut self.datagrams_spare);
        // Protocol events for the endpoint, and back.
        while let Some(ev) = e.conn.poll_endpoint_events() {
            if let Some(back) = self.endpoint.handle_event(ConnectionHandle(key), ev) {
                e.conn.handle_event(back);
            }
        }
        while let Some(ev) = e.conn.poll() {
            woke |= app_event(e, ev, now, self.webtransport_path.as_deref());
        }
        // Reading may have freed flow-control credit; sends carry it.
        loop {
            self.send_buf.clear();
            let Some(t) = e.conn.poll_transmit(now, max_segments, &mut self.send_buf) else { break };
            let transmit = udp_transmit(&t, &self.send_buf[..t.size]);
            let packets = t.segment_size.map_or(1, |s| t.size.div_ceil(s)) as u64;
            if self.socket.send(&transmit) {
                self.shared.stats.packets_out.fetch_add(packets, Ordering::Relaxed);
                self.shared.stats.bytes_out.fetch_add(t.size as u64, Ordering::Relaxed);
            } else {
                self.shared.stats.send_drops.fetch_add(packets, Ordering::Relaxed);
            }
        }
        let mut again = false;
        while let Some(ev) = e.conn.poll_endpoint_events() {
            if let Some(back) = self.endpoint.handle_event(ConnectionHandle(key), ev) {
                e.conn.handle_event(back);
                again = true;
            }
        }
        if again {
            e.touched = true;
            self.touched.push(key);
        }
        let timer = e.conn.poll_timeout().map(|t| t + self.timer_slack);
        let timer = timer.into_iter().chain(wt_streams::deadline(e)).min();
        self.timers.set(key, timer);
        if woke {
            e.shared.app.notify_waiters();
        }
        if e.conn.is_drained() {
            if !e.closed {
                mark_closed(e, ConnectionError::TimedOut);
            }
            let e = self.entries[key].take().expect("present");
            self.timers.set(key, None);
            {
                let mut st = e.shared.lock();
                st.key = None;
            }
            e.shared.app.notify_waiters();
            if self.shared.live.fetch_sub(1, Ordering::AcqRel) == 1 {
                self.shared.idle.notify_waiters();
            }
        }
    }
}

fn ecn(e: quinn_udp::EcnCodepoint) -> quinn_proto::EcnCodepoint {
    match e {
        quinn_udp::EcnCodepoint::Ect0 => quinn_proto::EcnCodepoint::Ect0,
        quinn_udp::EcnCodepoint::Ect1 => quinn_proto::EcnCodepoint::Ect1,
        quinn_udp::EcnCodepoint::Ce => quinn_proto::EcnCodepoint::Ce,
    }
}

fn udp_transmit<'a>(t: &quinn_proto::Transmit, contents: &'a [u8]) -> quinn_udp::Transmit<'a> {
    quinn_udp::Transmit {
        destination: t.destination,
        ecn: t.ecn.and_then(|e| quinn_udp::EcnCodepoint::from_bits(e as u8)),
        contents,
        segment_size: t.segment_size,
        src_ip: t.src_ip,
    }
}

/// Records the close for the application (once).
pub(crate) fn mark_closed(e: &mut Entry, reason: ConnectionError) {
    if e.closed {
        return;
    }
    e.closed = true;
    let mut st = e.shared.lock();
    if st.closed.is_none() {
        st.closed = Some(reason);
    }
    st.out_datagrams.clear();
    st.out_control.clear();
    drop(st);
    e.shared.app.notify_waiters();
}

/// Moves what the application queued into the connection. Returns whether
/// the application should wake (control bytes it made room for).
/// `datagrams` is an empty buffer to swap with the connection's queue.
fn apply_requests(e: &mut Entry, now: Instant, datagrams: &mut Vec<Bytes>) -> bool {
    let mtu = e.conn.current_mtu();
    let max = match e.max_datagram_refresh.checked_sub(1) {
        Some(left) if mtu == e.max_datagram_mtu => {
            e.max_datagram_refresh = left;
            None
        }
        _ => {
            e.max_datagram_refresh = MAX_DATAGRAM_REFRESH;
            e.max_datagram_mtu = mtu;
            Some(max_datagram(e))
        }
    };
    let (control, finish, close, unthrottled) = {
        let mut st = e.shared.lock();
        st.dirty = false;
        let unthrottled = st.control_throttled && st.control_room();
        if unthrottled {
            st.control_throttled = false;
        }
        // Refreshed here, under the lock taken anyway.
        if let Some(max) = max {
            st.max_datagram = max;
        }
        std::mem::swap(datagrams, &mut st.out_datagrams);
        let control = std::mem::take(&mut st.out_control);
        (control, st.finish_control, st.close.take(), unthrottled)
    };
    if e.closed {
        datagrams.clear();
        return false;
    }
    for d in datagrams.drain(..) {
        let d = match &e.wt {
            None => d,
            Some(w) if w.open => webtransport::prefix_datagram(&w.prefix, &d),
            Some(_) => continue,
        };
        // Oldest first out when the send buffer is full: stale state is
        // worth less than fresh.
        let _ = e.conn.datagrams().send(d, true);
    }
    if !control.is_empty() || finish {
        e.control_out.extend(control);
        e.finish_pending |= finish;
        open_client_stream(e);
        flush_control(e);
    }
    // The application made room for control bytes the loop stopped reading.
    let woke = unthrottled && read_control(e);
    if let Some((code, reason)) = close {
        if !wt_streams::close_session(e, code, &reason) {
            e.conn.close(now, code, reason);
        }
        mark_closed(e, ConnectionError::LocallyClosed);
    }
    woke
}

/// The client opens the control stream with its first bytes (once the
/// server's stream limit is known).
pub(crate) fn open_client_stream(e: &mut Entry) {
    if e.control.is_some() || !e.conn.side().is_client() || (e.control_out.is_empty() && !e.finish_pending) {
        return;
    }
    if e.wt.as_ref().is_some_and(|w| !w.open) {
        // The session's streams wait for the server's answer to CONNECT.
        return;
    }
    e.control = e.conn.streams().open(Dir::Bi);
    if e.control.is_some() {
        if let Some(header) = e.wt.as_ref().and_then(|w| w.control_header()) {
            e.control_out.push_front(header);
        }
    }
}

pub(crate) fn flush_control(e: &mut Entry) {
    let Some(id) = e.control else { return };
    while let Some(front) = e.control_out.front_mut() {
        match e.conn.send_stream(id).write(front) {
            Ok(n) if n == front.len() => {
                e.control_out.pop_front();
            }
            Ok(n) => {
                let _ = front.split_to(n);
                return;
            }
            Err(quinn_proto::WriteError::Blocked) => return,
            Err(_) => {
                e.control_out.clear();
                return;
            }
        }
    }
    if e.finish_pending && !e.finished {
        e.finished = true;
        let _ = e.conn.send_stream(id).finish();
    }
}

/// Reads the control stream into the application's queue while it has
/// room. Returns whether the application should wake.
pub(crate) fn read_control(e: &mut Entry) -> bool {
    let Some(id) = e.control else { return false };
    let mut st = e.shared.lock();
    if st.control_end.is_some() {
        return false;
    }
    if !st.control_room() {
        st.control_throttled = true;
        return false;
    }
    let mut recv = e.conn.recv_stream(id);
    let Ok(mut chunks) = recv.read(true) else { return false };
    let mut woke = false;
    loop {
        if !st.control_room() {
            st.control_throttled = true;
            break;
        }
        match chunks.next(usize::MAX) {
            Ok(Some(chunk)) => {
                st.in_control_bytes += chunk.bytes.len();
                st.in_control.push_back(chunk.bytes);
                woke = true;
            }
            Ok(None) => {
                st.control_end = Some(ConnEvent::ControlFinished);
                woke = true;
                break;
            }
            Err(quinn_proto::ReadError::Blocked) => break,
            Err(quinn_proto::ReadError::Reset(code)) => {
                st.control_end = Some(ConnEvent::ControlReset(code.into_inner()));
                woke = true;
                break;
            }
        }
    }
    drop(st);
    let _ = chunks.finalize();
    woke
}

/// The largest application datagram: the path's, less the WebTransport
/// session prefix.
pub(crate) fn max_datagram(e: &mut Entry) -> Option<usize> {
    let max = e.conn.datagrams().max_size()?;
    match &e.wt {
        None => Some(max),
        Some(w) => max.checked_sub(w.prefix.len().max(1)),
    }
}

/// The ALPN protocol the handshake settled on.
fn alpn(conn: &quinn_proto::Connection) -> Option<Vec<u8>> {
    let data = conn.crypto_session().handshake_data()?;
    data.downcast::<quinn_proto::crypto::rustls::HandshakeData>().ok()?.protocol
}

/// Handles one protocol event; returns whether the application should wake.
fn app_event(e: &mut Entry, ev: Event, now: Instant, webtransport_path: Option<&str>) -> bool {
    match ev {
        Event::HandshakeDataReady => false,
        Event::Connected => {
            if e.conn.side().is_server() && alpn(&e.conn).as_deref() == Some(webtransport::ALPN) {
                let Some(path) = webtransport_path else {
                    e.conn.close(
                        now,
                        VarInt::from_u32(webtransport::h3_code::NO_ERROR),
                        Bytes::from_static(b"no WebTransport here"),
                    );
                    mark_closed(e, ConnectionError::LocallyClosed);
                    return true;
                };
                e.wt = Some(Box::new(WtConn::server(Some(path.to_string()))));
                e.shared.lock().webtransport = true;
            }
            let max = max_datagram(e);
            let mut st = e.shared.lock();
            // A WebTransport connection is established when its session is.
            st.established = e.wt.is_none();
            st.max_datagram = max;
            drop(st);
            wt_streams::start(e);
            open_client_stream(e);
            flush_control(e);
            true
        }
        Event::Stream(StreamEvent::Available { dir: Dir::Bi }) => {
            open_client_stream(e);
            flush_control(e);
            false
        }
        Event::ConnectionLost { reason } => {
            mark_closed(e, reason);
            true
        }
        Event::Stream(StreamEvent::Opened { dir: Dir::Bi }) if e.wt.is_some() => wt_streams::accept_bi(e),
        Event::Stream(StreamEvent::Opened { dir: Dir::Uni }) if e.wt.is_some() => {
            wt_streams::accept_uni(e);
            false
        }
        Event::Stream(StreamEvent::Opened { dir: Dir::Bi }) => {
            while let Some(id) = e.conn.streams().accept(Dir::Bi) {
                if e.control.is_none() {
                    e.control = Some(id);
                    flush_control(e);
                } else {
                    // One control stream per connection.
                    let _ = e.conn.recv_stream(id).stop(VarInt::from_u32(0));
                }
            }
            read_control(e)
        }
        Event::Stream(StreamEvent::Opened { dir: Dir::Uni }) => {
            while let Some(id) = e.conn.streams().accept(Dir::Uni) {
                let _ = e.conn.recv_stream(id).stop(VarInt::from_u32(0));
            }
            false
        }
        Event::Stream(StreamEvent::Readable { id }) if Some(id) == e.control => read_control(e),
        Event::Stream(StreamEvent::Writable { id }) if Some(id) == e.control => {
            flush_control(e);
            false
        }
        Event::Stream(StreamEvent::Readable { id }) => wt_streams::readable(e, id),
        Event::Stream(StreamEvent::Writable { .. }) => {
            wt_streams::flush(e);
            false
        }
        Event::Stream(StreamEvent::Finished { id }) if Some(id) == e.control => {
            let mut st = e.shared.lock();
            if st.out_control.is_empty() && e.control_out.is_empty() {
                st.control_acked = true;
            }
            true
        }
        Event::Stream(StreamEvent::Finished { id }) if e.wt.is_some() => {
            wt_streams::finished(e, id, now);
            false
        }
        Event::Stream(StreamEvent::Stopped { id, .. }) if Some(id) == e.control => {
            e.control_out.clear();
            e.shared.lock().control_acked = true;
            true
        }
        Event::Stream(_) => false,
        Event::DatagramReceived => {
            let mut st = e.shared.lock();
            let mut got = false;
            while let Some(d) = e.conn.datagrams().recv() {
                let d = match &e.wt {
                    None => d,
                    Some(w) => match w.strip(&d) {
                        Some(d) => d,
                        None => continue,
                    },
                };
                if st.in_datagrams.len() >= st.in_datagram_limit.max(1) {
                    st.in_datagrams.pop_front();
                    st.datagrams_dropped += 1;
                }
                st.in_datagrams.push_back((now, d));
                got = true;
            }
            got && st.wake_on_datagrams
        }
        Event::DatagramsUnblocked => false,
    }
}
