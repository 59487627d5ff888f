//! Node metrics in Prometheus text format.
//!
//! Labelled counters are resolved once at start-up and kept as plain
//! handles, so the hot path only does atomic adds.

use std::sync::atomic::AtomicU64;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Dir {
    dir: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Shard {
    shard: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Code {
    code: &'static str,
}

/// Why an incoming datagram was dropped.
#[derive(Clone, Debug)]
pub struct DatagramDrops {
    pub rate: Counter,
    pub size: Counter,
    pub malformed: Counter,
    pub not_joined: Counter,
    pub queue_full: Counter,
}

#[derive(Clone, Debug)]
pub struct InputCounters {
    pub applied: Counter,
    pub repeated: Counter,
    pub late: Counter,
    pub duplicate: Counter,
    pub ahead: Counter,
    pub dropped: Counter,
}

#[derive(Clone, Debug)]
pub struct ConnRefusals {
    pub max_connections: Counter,
    /// The shard was past `--max-shard-load`.
    pub overloaded: Counter,
    pub ip_rate: Counter,
    pub draining: Counter,
    pub handshake_failed: Counter,
    pub handshake_timeout: Counter,
}

/// Every metric of a node. Cheap to clone (handles are shared).
#[derive(Clone, Debug)]
pub struct NodeMetrics {
    pub lobbies: Gauge,
    pub players: Gauge,
    pub connections: Gauge,
    pub ticks: Counter,
    pub tick_duration: Histogram,
    /// How late each lobby tick started after it was due.
    pub tick_lateness: Histogram,
    pub datagrams_in: Counter,
    pub datagrams_out: Counter,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    pub datagrams_dropped: DatagramDrops,
    pub snapshots_unsent: Counter,
    /// Snapshots encoded as deltas against an acknowledged one, and in full.
    pub snapshots_delta: Counter,
    pub snapshots_full: Counter,
    pub inputs: InputCounters,
    pub matches_started: Counter,
    pub matches_completed: Counter,
    pub connections_accepted: Counter,
    /// Accepted connections that are browsers' WebTransport sessions.
    pub webtransport_sessions: Counter,
    pub connections_refused: ConnRefusals,
    join_refusals: Family<Code, Counter>,
    shard_connections: Family<Shard, Gauge>,
    shard_load: Family<Shard, Gauge<f64, AtomicU64>>,
    pub chat_messages: Counter,
    pub control_frames_in: Counter,
    pub udp: UdpCounters,
}

/// The QUIC loops' socket traffic (every packet: handshakes, acks and
/// retransmissions included), copied from the loops once a second.
#[derive(Clone, Debug)]
pub struct UdpCounters {
    pub packets_in: Counter,
    pub packets_out: Counter,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    /// Packets dropped because the socket's send buffer was full.
    pub send_drops: Counter,
    /// Times a loop woke up (each wake-up handles a batch of work).
    pub loop_wakeups: Counter,
}

impl NodeMetrics {
    pub fn join_refused(&self, code: protocol::control::ErrorCode) {
        self.join_refusals.get_or_create(&Code { code: code.as_str() }).inc();
    }

    /// The open connections of one QUIC shard (its loop sets it).
    pub fn shard_connections(&self, shard: u16) -> Gauge {
        self.shard_connections.get_or_create(&Shard { shard }).clone()
    }

    /// One QUIC shard's load (see `crate::load`).
    pub fn shard_load(&self, shard: u16) -> Gauge<f64, AtomicU64> {
        self.shard_load.get_or_create(&Shard { shard }).clone()
    }
}

/// Builds the metrics and the registry that renders them: the node's own
/// under `trespasser_`, and the process's CPU time and memory under the
/// conventional unprefixed `process_` names.
pub fn new_metrics() -> (NodeMetrics, Registry) {
    let mut root = Registry::default();
    root.register_collector(Box::new(ProcessCollector));
    let r = root.sub_registry_with_prefix("trespasser");
    let drops = Family::<Reason, Counter>::default();
    let inputs = Family::<Outcome, Counter>::default();
    let refused = Family::<Reason, Counter>::default();
    let d = |reason| drops.get_or_create(&Reason { reason }).clone();
    let i = |outcome| inputs.get_or_create(&Outcome { outcome }).clone();
    let c = |reason| refused.get_or_create(&Reason { reason }).clone();
    let snapshots = Family::<Kind, Counter>::default();
    let udp_packets = Family::<Dir, Counter>::default();
    let udp_bytes = Family::<Dir, Counter>::default();
    // Each lookup's guard must end before the next (one lock per family).
    let up = |dir| udp_packets.get_or_create(&Dir { dir }).clone();
    let ub = |dir| udp_bytes.get_or_create(&Dir { dir }).clone();
    let k = |kind| snapshots.get_or_create(&Kind { kind }).clone();
    let m = NodeMetrics {
        lobbies: Gauge::default(),
        players: Gauge::default(),
        connections: Gauge::default(),
        ticks: Counter::default(),
        // 50 us .. ~100 ms
        tick_duration: Histogram::new(exponential_buckets(0.00005, 2.0, 12)),
        tick_lateness: Histogram::new(exponential_buckets(0.0005, 2.0, 12)),
        datagrams_in: Counter::default(),
        datagrams_out: Counter::default(),
        bytes_in: Counter::default(),
        bytes_out: Counter::default(),
        datagrams_dropped: DatagramDrops {
            rate: d("rate"),
            size: d("size"),
            malformed: d("malformed"),
            not_joined: d("not_joined"),
            queue_full: d("queue_full"),
        },
        snapshots_unsent: Counter::default(),
        snapshots_delta: k("delta"),
        snapshots_full: k("full"),
        inputs: InputCounters {
            applied: i("applied"),
            repeated: i("repeated"),
            late: i("late"),
            duplicate: i("duplicate"),
            ahead: i("ahead"),
            dropped: i("dropped"),
        },
        matches_started: Counter::default(),
        matches_completed: Counter::default(),
        connections_accepted: Counter::default(),
        webtransport_sessions: Counter::default(),
        connections_refused: ConnRefusals {
            max_connections: c("max_connections"),
            overloaded: c("overloaded"),
            ip_rate: c("ip_rate"),
            draining: c("draining"),
            handshake_failed: c("handshake_failed"),
            handshake_timeout: c("handshake_timeout"),
        },
        join_refusals: Family::default(),
        shard_connections: Family::default(),
        shard_load: Family::default(),
        chat_messages: Counter::default(),
        control_frames_in: Counter::default(),
        udp: UdpCounters {
            packets_in: up("in"),
            packets_out: up("out"),
            bytes_in: ub("in"),
            bytes_out: ub("out"),
            send_drops: Counter::default(),
            loop_wakeups: Counter::default(),
        },
    };
    r.register("lobbies", "Lobbies open on this node", m.lobbies.clone());
    r.register("players", "Players holding a lobby slot (connected or in grace)", m.players.clone());
    r.register("connections", "Open QUIC connections", m.connections.clone());
    r.register("ticks", "Lobby simulation ticks run", m.ticks.clone());
    r.register("tick_duration_seconds", "Time to run one lobby tick including snapshot send", m.tick_duration.clone());
    r.register(
        "tick_lateness_seconds",
        "How late each lobby tick started after it was due (a busy or CPU-starved shard shows here first)",
        m.tick_lateness.clone(),
    );
    r.register("datagrams_in", "Datagrams received from clients", m.datagrams_in.clone());
    r.register("datagrams_out", "Datagrams sent to clients", m.datagrams_out.clone());
    r.register("datagram_bytes_in", "Datagram payload bytes received", m.bytes_in.clone());
    r.register("datagram_bytes_out", "Datagram payload bytes sent", m.bytes_out.clone());
    r.register("datagrams_dropped", "Incoming datagrams dropped, by reason", drops);
    r.register(
        "snapshots_unsent",
        "Snapshots not sent (too large for the path or connection gone)",
        m.snapshots_unsent.clone(),
    );
    r.register("snapshots", "Snapshots sent, by encoding (delta against an acknowledged snapshot, or full)", snapshots);
    r.register("inputs", "Input frames by outcome (applied, repeated, late, duplicate, ahead, dropped)", inputs);
    r.register("matches_started", "Matches started", m.matches_started.clone());
    r.register("matches_completed", "Matches that reached the kill target", m.matches_completed.clone());
    r.register("connections_accepted", "QUIC connections accepted", m.connections_accepted.clone());
    r.register(
        "webtransport_sessions",
        "Accepted connections that are WebTransport sessions (browsers)",
        m.webtransport_sessions.clone(),
    );
    r.register("connections_refused", "Connection attempts refused, by reason", refused);
    r.register("join_refusals", "Join requests refused, by error code", m.join_refusals.clone());
    r.register(
        "quic_shard_connections",
        "Open QUIC connections per shard (how evenly the shards share the players)",
        m.shard_connections.clone(),
    );
    r.register(
        "quic_shard_load",
        "Share of wall time each QUIC shard's thread is busy, smoothed (new connections are refused past --max-shard-load)",
        m.shard_load.clone(),
    );
    r.register("chat_messages", "Chat messages received", m.chat_messages.clone());
    r.register("control_frames_in", "Control frames received", m.control_frames_in.clone());
    r.register("udp_packets", "UDP packets through the QUIC loops, by direction", udp_packets);
    r.register("udp_bytes", "UDP payload bytes through the QUIC loops, by direction", udp_bytes);
    r.register(
        "udp_send_drops",
        "UDP packets dropped because the socket send buffer was full",
        m.udp.send_drops.clone(),
    );
    r.register(
        "quic_loop_wakeups",
        "Wake-ups of the QUIC loops (each handles a batch of packets)",
        m.udp.loop_wakeups.clone(),
    );
    (m, root)
}

/// A registry holding only the process metrics, for roles without a node
/// (the `api` role).
pub fn process_registry() -> Registry {
    let mut r = Registry::default();
    r.register_collector(Box::new(ProcessCollector));
    r
}

/// CPU time (user + system) and resident memory of this process, read from
/// /proc at scrape time. Capacity figures (CPU per player-second, memory per
/// player) are computed from these by the load generator and by dashboards.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(p) = process::read() else { return Ok(()) };
        let cpu = ConstCounter::new(p.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let rss = ConstGauge::new(p.rss_bytes as i64);
        rss.encode(encoder.encode_descriptor(
            "process_resident_memory_bytes",
            "Resident memory size in bytes",
            None,
            rss.metric_type(),
        )?)?;
        if let Some(anon) = p.anon_bytes {
            let anon = ConstGauge::new(anon as i64);
            anon.encode(encoder.encode_descriptor(
                "process_resident_anonymous_memory_bytes",
                "Resident memory not backed by files (heap, stacks), in bytes: the process's own, without its mapped code",
                None,
                anon.metric_type(),
            )?)?;
        }
        let threads = ConstGauge::new(p.threads as i64);
        threads.encode(encoder.encode_descriptor("process_threads", "OS threads", None, threads.metric_type())?)?;
        Ok(())
    }
}

mod process {
    /// `sysconf(_SC_CLK_TCK)` is 100 on every Linux architecture we target.
    const CLK_TCK: f64 = 100.0;
    const PAGE_SIZE: u64 = 4096;

    pub struct Process {
        pub cpu_seconds: f64,
        pub rss_bytes: u64,
        /// Resident pages not shared with files: most of an idle node's RSS
        /// is its own binary's code and data pages, which say nothing about
        /// what players cost.
        pub anon_bytes: Option<u64>,
        pub threads: u64,
    }

    pub fn read() -> Option<Process> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let mut p = parse_stat(&stat)?;
        p.anon_bytes = std::fs::read_to_string("/proc/self/statm").ok().and_then(|s| parse_statm(&s));
        Some(p)
    }

    /// `size resident shared ...` in pages; `shared` counts the resident
    /// file-backed (and shmem) pages.
    pub fn parse_statm(statm: &str) -> Option<u64> {
        let mut f = statm.split_whitespace().map(|v| v.parse::<u64>().ok());
        let (_size, resident, shared) = (f.next()??, f.next()??, f.next()??);
        Some(resident.saturating_sub(shared) * PAGE_SIZE)
    }

    /// Fields after the command name (which may hold spaces and parentheses,
    /// hence the last ')'): utime and stime are fields 14 and 15, threads 20,
    /// rss (pages) 24.
    pub fn parse_stat(stat: &str) -> Option<Process> {
        let rest = &stat[stat.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| f.get(n - 3).and_then(|v| v.parse::<u64>().ok());
        Some(Process {
            cpu_seconds: (field(14)? + field(15)?) as f64 / CLK_TCK,
            threads: field(20)?,
            rss_bytes: field(24)? * PAGE_SIZE,
            anon_bytes: None,
        })
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn parses_proc_stat_with_a_hostile_command_name() {
            let stat = "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 130 0 0 20 0 7 0 12345 \
                        987654321 2048 18446744073709551615 1 1 0 0 0 0 0 4096 17920 0 0 0 17 1 0 0 0 0 0";
            let p = super::parse_stat(stat).unwrap();
            assert_eq!(p.cpu_seconds, 3.8);
            assert_eq!(p.threads, 7);
            assert_eq!(p.rss_bytes, 2048 * 4096);
            assert!(super::parse_stat("garbage").is_none());
            assert!(super::parse_stat("1 (x) S 1").is_none());
        }

        #[test]
        fn reads_this_process() {
            let p = super::read().expect("/proc/self/stat");
            assert!(p.rss_bytes > 0 && p.threads >= 1);
            let anon = p.anon_bytes.expect("/proc/self/statm");
            assert!(anon > 0 && anon < p.rss_bytes, "{anon} of {}", p.rss_bytes);
        }

        #[test]
        fn parses_proc_statm() {
            assert_eq!(super::parse_statm("5000 3000 2500 100 0 900 0\n"), Some(500 * 4096));
            assert_eq!(super::parse_statm("5000 3000"), None);
            assert_eq!(super::parse_statm("a b c"), None);
        }
    }
}

/// Renders the registry in Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry).expect("writing to a String cannot fail");
    out
}
