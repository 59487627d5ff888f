//! Network impairment on the bots' side: a [`quinn::AsyncUdpSocket`] that
//! drops and delays datagrams in both directions, so a run shows how the
//! game holds up on a bad network without touching the node or the kernel.
//!
//! Conventions (per datagram, independently in each direction):
//! * `loss`: the probability that the datagram is dropped;
//! * `latency`: round-trip time added, half on the way up and half down;
//! * `jitter`: the spread of that round trip, so each one-way delay is
//!   uniform in `latency/2 ± jitter/2` (never below zero). Jitter reorders
//!   datagrams, as it does on real paths.
//!
//! Every bot's path gets these parameters, since the decision is per
//! datagram and bots share sockets. Delayed datagrams wait in one queue per
//! direction and socket, drained by the endpoint's own receive polling
//! (downstream) and by one task per socket (upstream): never a task or a
//! timer per datagram. A run without impairment uses the plain socket.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use quinn::udp::{EcnCodepoint, RecvMeta, Transmit};
use quinn::{AsyncUdpSocket, UdpPoller};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// Datagrams held back per direction and socket; beyond it they are dropped
/// (and counted), as an overflowing router queue would, so a huge latency
/// cannot grow memory without bound.
const MAX_QUEUED: usize = 65_536;

/// What to do to the network, per datagram and direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Impairment {
    /// Probability of dropping a datagram, 0 to 1.
    pub loss: f64,
    /// Round-trip time added (half each way).
    #[serde(with = "millis")]
    pub latency: Duration,
    /// Spread of the added round trip (each way: ± half of it).
    #[serde(with = "millis")]
    pub jitter: Duration,
}

impl Impairment {
    /// Nothing to do: the plain socket serves.
    pub fn is_none(&self) -> bool {
        self.loss <= 0.0 && self.latency.is_zero() && self.jitter.is_zero()
    }

    /// The fate of one datagram in one direction: `None` drops it, else the
    /// delay before it goes on.
    pub fn decide(&self, rng: &mut impl Rng) -> Option<Duration> {
        if self.loss > 0.0 && rng.random::<f64>() < self.loss {
            return None;
        }
        let base = self.latency.as_secs_f64() / 2.0;
        let spread = self.jitter.as_secs_f64() / 2.0;
        let delay = if spread > 0.0 { base + rng.random_range(-spread..=spread) } else { base };
        Some(Duration::from_secs_f64(delay.max(0.0)))
    }
}

impl fmt::Display for Impairment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loss {:.1} % each way, latency {} ms, jitter {} ms (round trip)",
            self.loss * 100.0,
            self.latency.as_millis(),
            self.jitter.as_millis()
        )
    }
}

/// `5%` or `0.05`: a loss probability.
pub fn parse_loss(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (number, scale) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (t, 1.0),
    };
    let v = number.parse::<f64>().map_err(|_| format!("{text:?} is not a loss like 5% or 0.05"))? / scale;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("{text:?}: loss must be between 0 % and 100 %"));
    }
    Ok(v)
}

/// What the impaired sockets did, summed over sockets.
#[derive(Debug, Default)]
pub struct ImpairStats {
    pub dropped_up: AtomicU64,
    pub dropped_down: AtomicU64,
    pub delayed_up: AtomicU64,
    pub delayed_down: AtomicU64,
}

/// The impairment and what it did, for the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ImpairmentReport {
    #[serde(flatten)]
    pub config: Impairment,
    pub dropped_up: u64,
    pub dropped_down: u64,
}

impl ImpairStats {
    pub fn report(&self, config: Impairment) -> ImpairmentReport {
        ImpairmentReport {
            config,
            dropped_up: self.dropped_up.load(Relaxed),
            dropped_down: self.dropped_down.load(Relaxed),
        }
    }
}

impl fmt::Display for ImpairmentReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} dropped up, {} down)", self.config, self.dropped_up, self.dropped_down)
    }
}

/// A datagram waiting for its time.
#[derive(Debug)]
struct Held {
    due: Instant,
    /// Tie-break, so equal times keep arrival order.
    seq: u64,
    peer: SocketAddr,
    ecn: Option<EcnCodepoint>,
    /// The destination IP of an incoming datagram, or the source IP of an outgoing one.
    local_ip: Option<IpAddr>,
    bytes: Vec<u8>,
}

impl PartialEq for Held {
    fn eq(&self, other: &Held) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Held {}
impl PartialOrd for Held {
    fn partial_cmp(&self, other: &Held) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Held {
    fn cmp(&self, other: &Held) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// One direction's queue and dice.
#[derive(Debug)]
struct Lane {
    rng: SmallRng,
    held: BinaryHeap<Reverse<Held>>,
    seq: u64,
}

impl Lane {
    fn new(seed: u64) -> Lane {
        Lane { rng: SmallRng::seed_from_u64(seed), held: BinaryHeap::new(), seq: 0 }
    }

    fn hold(&mut self, mut held: Held) -> bool {
        if self.held.len() >= MAX_QUEUED {
            return false;
        }
        held.seq = self.seq;
        self.seq += 1;
        self.held.push(Reverse(held));
        true
    }

    fn next_due(&self) -> Option<Instant> {
        self.held.peek().map(|r| r.0.due)
    }

    fn pop_due(&mut self, now: Instant) -> Option<Held> {
        if self.next_due()? <= now { self.held.pop().map(|r| r.0) } else { None }
    }
}

#[derive(Debug)]
struct Down {
    lane: Lane,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

#[derive(Debug)]
struct Shared {
    up: Mutex<Lane>,
    up_ready: Notify,
    closed: AtomicBool,
}

/// A UDP socket that impairs what passes through it; see the module docs.
#[derive(Debug)]
pub struct ImpairedSocket {
    inner: Arc<dyn AsyncUdpSocket>,
    impairment: Impairment,
    down: Mutex<Down>,
    shared: Arc<Shared>,
    stats: Arc<ImpairStats>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Only queues live behind these locks; a panic elsewhere leaves them usable.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ImpairedSocket {
    /// Wraps `inner`; spawns the upstream drain task, so it must be called
    /// inside a tokio runtime. `seed` makes the dice reproducible.
    pub fn new(
        inner: Arc<dyn AsyncUdpSocket>,
        impairment: Impairment,
        seed: u64,
        stats: Arc<ImpairStats>,
    ) -> ImpairedSocket {
        let shared = Arc::new(Shared {
            up: Mutex::new(Lane::new(seed ^ 0x5555_5555_5555_5555)),
            up_ready: Notify::new(),
            closed: AtomicBool::new(false),
        });
        tokio::spawn(drain_up(inner.clone(), shared.clone()));
        ImpairedSocket {
            inner,
            impairment,
            down: Mutex::new(Down { lane: Lane::new(seed), timer: None }),
            shared,
            stats,
        }
    }

    /// Sends one datagram of `transmit` (`contents`) now, later or never.
    fn send_one(&self, transmit: &Transmit<'_>, contents: &[u8]) -> io::Result<()> {
        let mut up = lock(&self.shared.up);
        let Some(delay) = self.impairment.decide(&mut up.rng) else {
            self.stats.dropped_up.fetch_add(1, Relaxed);
            return Ok(());
        };
        // Nothing queued ahead of it: it may go straight out. (A datagram
        // with zero delay behind held ones waits its turn, as on a wire.)
        if delay.is_zero() && up.held.is_empty() {
            drop(up);
            return self.inner.try_send(&Transmit { contents, segment_size: None, ..*transmit });
        }
        let held = Held {
            due: Instant::now() + delay,
            seq: 0,
            peer: transmit.destination,
            ecn: transmit.ecn,
            local_ip: transmit.src_ip,
            bytes: contents.to_vec(),
        };
        if up.hold(held) {
            self.stats.delayed_up.fetch_add(1, Relaxed);
        } else {
            self.stats.dropped_up.fetch_add(1, Relaxed);
        }
        drop(up);
        self.shared.up_ready.notify_one();
        Ok(())
    }
}

impl Drop for ImpairedSocket {
    fn drop(&mut self) {
        self.shared.closed.store(true, Relaxed);
        self.shared.up_ready.notify_one();
    }
}

/// Sends held upstream datagrams when they are due. One per socket; it ends
/// when the socket is dropped.
async fn drain_up(socket: Arc<dyn AsyncUdpSocket>, shared: Arc<Shared>) {
    let mut poller = socket.clone().create_io_poller();
    loop {
        if shared.closed.load(Relaxed) {
            return;
        }
        let now = Instant::now();
        let (ready, next) = {
            let mut up = lock(&shared.up);
            let mut ready = Vec::new();
            while let Some(h) = up.pop_due(now) {
                ready.push(h);
            }
            (ready, up.next_due())
        };
        for h in ready {
            let t = Transmit {
                destination: h.peer,
                ecn: h.ecn,
                contents: &h.bytes,
                segment_size: None,
                src_ip: h.local_ip,
            };
            // A full socket buffer gets one wait for room; after that the
            // datagram is lost, as a congested link would lose it.
            if let Err(e) = socket.try_send(&t)
                && e.kind() == io::ErrorKind::WouldBlock
            {
                let _ = std::future::poll_fn(|cx| poller.as_mut().poll_writable(cx)).await;
                let _ = socket.try_send(&t);
            }
        }
        // A notification between the read above and this wait is kept as a
        // permit (notify_one), so a datagram queued meanwhile is not missed.
        let notified = shared.up_ready.notified();
        match next {
            Some(due) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(due.into()) => {}
                    _ = notified => {}
                }
            }
            None => notified.await,
        }
    }
}

impl AsyncUdpSocket for ImpairedSocket {
    fn create_io_poller(self: Arc<Self>) -> Pin<Box<dyn UdpPoller>> {
        self.inner.clone().create_io_poller()
    }

    fn try_send(&self, transmit: &Transmit) -> io::Result<()> {
        match transmit.segment_size {
            // One datagram per transmit is what `max_transmit_segments`
            // asks for; split anyway if a batch comes.
            Some(size) if size > 0 && size < transmit.contents.len() => {
                for chunk in transmit.contents.chunks(size) {
                    self.send_one(transmit, chunk)?;
                }
                Ok(())
            }
            _ => self.send_one(transmit, transmit.contents),
        }
    }

    fn poll_recv(
        &self,
        cx: &mut Context,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let mut down = lock(&self.down);
        loop {
            // Due datagrams first, one per buffer.
            let now = Instant::now();
            let mut n = 0;
            while n < bufs.len().min(meta.len()) {
                let Some(h) = down.lane.pop_due(now) else { break };
                let len = h.bytes.len().min(bufs[n].len());
                bufs[n][..len].copy_from_slice(&h.bytes[..len]);
                meta[n] = RecvMeta { addr: h.peer, len, stride: len, ecn: h.ecn, dst_ip: h.local_ip };
                n += 1;
            }
            if n > 0 {
                return Poll::Ready(Ok(n));
            }
            // Then whatever the socket has, through the dice into the queue.
            match self.inner.poll_recv(cx, bufs, meta) {
                Poll::Ready(Ok(count)) => {
                    let at = Instant::now();
                    for (buf, m) in bufs.iter().zip(meta.iter()).take(count) {
                        let stride = if m.stride == 0 { m.len } else { m.stride };
                        for datagram in buf[..m.len.min(buf.len())].chunks(stride.max(1)) {
                            let Some(delay) = self.impairment.decide(&mut down.lane.rng) else {
                                self.stats.dropped_down.fetch_add(1, Relaxed);
                                continue;
                            };
                            let held = Held {
                                due: at + delay,
                                seq: 0,
                                peer: m.addr,
                                ecn: m.ecn,
                                local_ip: m.dst_ip,
                                bytes: datagram.to_vec(),
                            };
                            if !down.lane.hold(held) {
                                self.stats.dropped_down.fetch_add(1, Relaxed);
                            } else if !delay.is_zero() {
                                self.stats.delayed_down.fetch_add(1, Relaxed);
                            }
                        }
                    }
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    // The socket will wake us for new datagrams; the timer
                    // for the earliest held one.
                    let Some(due) = down.lane.next_due() else { return Poll::Pending };
                    let timer = down.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due.into())));
                    timer.as_mut().reset(due.into());
                    if timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_transmit_segments(&self) -> usize {
        1
    }

    fn max_receive_segments(&self) -> usize {
        self.inner.max_receive_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64() * 1000.0)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let ms = f64::deserialize(d)?;
        Duration::try_from_secs_f64(ms / 1000.0).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imp(loss: f64, latency_ms: u64, jitter_ms: u64) -> Impairment {
        Impairment { loss, latency: Duration::from_millis(latency_ms), jitter: Duration::from_millis(jitter_ms) }
    }

    #[test]
    fn loss_drops_about_its_share_and_delays_stay_in_bounds() {
        let mut rng = SmallRng::seed_from_u64(7);
        let i = imp(0.05, 80, 20);
        let fates: Vec<Option<Duration>> = (0..100_000).map(|_| i.decide(&mut rng)).collect();
        let dropped = fates.iter().filter(|f| f.is_none()).count();
        assert!((4_500..5_500).contains(&dropped), "5 % of 100k dropped: {dropped}");
        let delays: Vec<f64> = fates.iter().flatten().map(|d| d.as_secs_f64() * 1000.0).collect();
        // One way: 40 ms ± 10 ms, uniform.
        assert!(delays.iter().all(|&d| (30.0 - 1e-6..=50.0 + 1e-6).contains(&d)), "out of 30..=50 ms");
        let mean = delays.iter().sum::<f64>() / delays.len() as f64;
        assert!((mean - 40.0).abs() < 0.2, "mean {mean}");
        assert!(delays.iter().any(|&d| d < 31.0) && delays.iter().any(|&d| d > 49.0), "the spread is used");

        // The same seed makes the same decisions.
        let again: Vec<_> = {
            let mut rng = SmallRng::seed_from_u64(7);
            (0..1000).map(|_| i.decide(&mut rng)).collect()
        };
        assert_eq!(again, fates[..1000]);
    }

    #[test]
    fn edge_cases_never_go_negative_or_drop_without_loss() {
        let mut rng = SmallRng::seed_from_u64(1);
        // Jitter wider than the latency: clamped at zero, never negative.
        let wide = imp(0.0, 10, 100);
        assert!((0..10_000).all(|_| wide.decide(&mut rng).is_some_and(|d| d <= Duration::from_millis(55))));
        assert!((0..10_000).any(|_| wide.decide(&mut rng) == Some(Duration::ZERO)));
        assert!((0..1000).all(|_| imp(1.0, 0, 0).decide(&mut rng).is_none()), "100 % loss drops all");
        assert!((0..1000).all(|_| imp(0.0, 0, 0).decide(&mut rng) == Some(Duration::ZERO)));
        assert!(imp(0.0, 0, 0).is_none() && !imp(0.01, 0, 0).is_none() && !imp(0.0, 0, 5).is_none());
    }

    #[test]
    fn loss_parses_as_percent_or_fraction() {
        assert_eq!(parse_loss("5%"), Ok(0.05));
        assert_eq!(parse_loss(" 12.5 % "), Ok(0.125));
        assert_eq!(parse_loss("0.1"), Ok(0.1));
        assert_eq!(parse_loss("0"), Ok(0.0));
        for bad in ["", "x", "101%", "-1%", "1.5", "NaN"] {
            assert!(parse_loss(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lanes_release_in_due_order_and_are_bounded() {
        let mut lane = Lane::new(0);
        let t0 = Instant::now();
        let held = |ms: u64, tag: u8| Held {
            due: t0 + Duration::from_millis(ms),
            seq: 0,
            peer: "127.0.0.1:1".parse().unwrap(),
            ecn: None,
            local_ip: None,
            bytes: vec![tag],
        };
        assert!(lane.hold(held(30, 1)) && lane.hold(held(10, 2)) && lane.hold(held(10, 3)) && lane.hold(held(20, 4)));
        assert_eq!(lane.next_due(), Some(t0 + Duration::from_millis(10)));
        assert!(lane.pop_due(t0).is_none(), "nothing due yet");
        let order: Vec<u8> =
            std::iter::from_fn(|| lane.pop_due(t0 + Duration::from_millis(25))).map(|h| h.bytes[0]).collect();
        assert_eq!(order, [2, 3, 4], "by due time, ties in arrival order; 30 ms not yet");
        for _ in 0..MAX_QUEUED - 1 {
            assert!(lane.hold(held(1, 0)));
        }
        assert!(!lane.hold(held(1, 0)), "full");
    }

    #[tokio::test]
    async fn an_impaired_socket_delays_and_drops_real_datagrams() {
        let runtime = quinn::TokioRuntime;
        let raw = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let inner = quinn::Runtime::wrap_udp_socket(&runtime, raw).unwrap();
        let stats = Arc::new(ImpairStats::default());
        let socket = Arc::new(ImpairedSocket::new(inner, imp(0.0, 100, 0), 1, stats.clone()));

        // Upstream: a 50 ms one-way delay.
        let sent = Instant::now();
        let to = peer.local_addr().unwrap();
        socket
            .try_send(&Transmit { destination: to, ecn: None, contents: b"up", segment_size: None, src_ip: None })
            .unwrap();
        let mut buf = [0u8; 64];
        let peer_clone = peer.try_clone().unwrap();
        let (n, _) = tokio::task::spawn_blocking(move || peer_clone.recv_from(&mut buf).map(|(n, a)| ((n, buf), a)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&n.1[..n.0], b"up");
        assert!(sent.elapsed() >= Duration::from_millis(45), "held for half the latency: {:?}", sent.elapsed());

        // Downstream: delayed too, then delivered by polling.
        let local = socket.local_addr().unwrap();
        let sent = Instant::now();
        peer.send_to(b"down", local).unwrap();
        let mut storage = vec![0u8; 1500];
        let mut metas = [RecvMeta::default(); 1];
        let got = std::future::poll_fn(|cx| {
            let mut bufs = [IoSliceMut::new(&mut storage)];
            socket.poll_recv(cx, &mut bufs, &mut metas)
        })
        .await
        .unwrap();
        assert_eq!((got, &storage[..metas[0].len]), (1, &b"down"[..]));
        assert!(sent.elapsed() >= Duration::from_millis(45), "{:?}", sent.elapsed());
        assert_eq!(stats.delayed_down.load(Relaxed), 1);
    }
}
