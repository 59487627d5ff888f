//! The driver's UDP socket: enlarged kernel buffers, optional SO_REUSEPORT,
//! and quinn-udp's batched receive (recvmmsg, GRO) and segmented send (GSO).

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;

use quinn_udp::{RecvMeta, Transmit, UdpSocketState};

use crate::steering::ShardSteering;

/// Largest UDP payload accepted from the network (what quinn allows).
const MAX_PAYLOAD: usize = 65_527;

pub(crate) struct Socket {
    io: tokio::net::UdpSocket,
    state: UdpSocketState,
    /// One receive buffer, cut into `quinn_udp::BATCH_SIZE` slots.
    recv_buf: Box<[u8]>,
    slot: usize,
    metas: Vec<RecvMeta>,
}

impl Socket {
    /// Binds `addr`. `buffer` sizes the kernel's send and receive buffers
    /// (the default receive buffer drops inputs from a few hundred clients
    /// up); `reuse_port` lets several drivers share one port, and `steering`
    /// delivers each packet to the one that owns its connection.
    pub(crate) fn bind(
        addr: SocketAddr,
        buffer: usize,
        reuse_port: bool,
        steering: Option<&ShardSteering>,
    ) -> io::Result<Socket> {
        let domain = if addr.is_ipv4() { socket2::Domain::IPV4 } else { socket2::Domain::IPV6 };
        let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
        if let Err(e) = socket.set_recv_buffer_size(buffer) {
            tracing::warn!(error = %e, "could not enlarge the UDP receive buffer");
        }
        if let Err(e) = socket.set_send_buffer_size(buffer) {
            tracing::warn!(error = %e, "could not enlarge the UDP send buffer");
        }
        if reuse_port || steering.is_some() {
            socket.set_reuse_port(true)?;
        }
        socket.bind(&addr.into())?;
        if let Some(steering) = steering
            && let Err(e) = steering.attach(&socket)
        {
            // Still correct, only as the kernel's address hash spreads
            // clients: a client whose address changes may lose its
            // connection, and one address's connections share a shard.
            tracing::warn!(error = %e, shards = steering.shards(), "could not steer packets by connection id; the kernel will pick shards by address");
        }
        socket.set_nonblocking(true)?;
        let std: std::net::UdpSocket = socket.into();
        let state = UdpSocketState::new((&std).into())?;
        let io = tokio::net::UdpSocket::from_std(std)?;
        // A GRO buffer holds up to `gro_segments` datagrams of one flow.
        let slot = (1500 * state.gro_segments()).clamp(1500, MAX_PAYLOAD);
        Ok(Socket {
            io,
            state,
            recv_buf: vec![0u8; slot * quinn_udp::BATCH_SIZE].into_boxed_slice(),
            slot,
            metas: vec![RecvMeta::default(); quinn_udp::BATCH_SIZE],
        })
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    pub(crate) fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    pub(crate) async fn readable(&self) -> io::Result<()> {
        self.io.readable().await
    }

    /// Receives one batch without waiting and hands each datagram (split
    /// out of GRO buffers) to `each`. Returns false when the socket had
    /// nothing left.
    pub(crate) fn recv_batch(&mut self, mut each: impl FnMut(&RecvMeta, &[u8])) -> io::Result<bool> {
        let Socket { io, state, recv_buf, slot, metas } = self;
        let io: &tokio::net::UdpSocket = io;
        let mut slots = recv_buf.chunks_mut(*slot);
        let mut iovs: [IoSliceMut<'_>; quinn_udp::BATCH_SIZE] =
            std::array::from_fn(|_| IoSliceMut::new(slots.next().unwrap_or_default()));
        let got = io.try_io(tokio::io::Interest::READABLE, || state.recv(io.into(), &mut iovs, metas));
        let count = match got {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            // ICMP errors surface as ECONNRESET/ECONNREFUSED on some
            // kernels; they say nothing QUIC trusts.
            Err(e) if matches!(e.kind(), io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused) => {
                return Ok(true);
            }
            Err(e) => return Err(e),
        };
        for (meta, iov) in metas.iter().zip(iovs.iter()).take(count) {
            let data = &iov[..meta.len];
            let stride = meta.stride.max(1);
            for datagram in data.chunks(stride) {
                each(meta, datagram);
            }
        }
        Ok(true)
    }

    /// Sends one transmit now. A full kernel buffer drops it (QUIC's loss
    /// recovery resends what mattered) and reports false.
    pub(crate) fn send(&self, transmit: &Transmit<'_>) -> bool {
        // A plain non-blocking sendmsg: the driver never waits for
        // writability, so tokio's readiness tracking is not involved.
        match self.state.try_send((&self.io).into(), transmit) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) => {
                tracing::debug!(error = %e, destination = %transmit.destination, "UDP send failed");
                false
            }
        }
    }
}
