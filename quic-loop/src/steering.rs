//! Steering each packet to the driver that owns its connection when several
//! drivers share one UDP port (SO_REUSEPORT).
//!
//! Left to itself the kernel picks a socket of the group by hashing the
//! packet's addresses. That breaks QUIC in two ways: a client whose address
//! changes (NAT rebinding, a phone moving between networks) is sent to a
//! driver that does not know its connection, which answers with a
//! stateless reset; and every connection behind one client address lands
//! on one driver however many there are.
//!
//! With steering, driver `shard` of `shards` issues only connection IDs whose
//! first byte is `shard` modulo `shards`, and a classic BPF program on the
//! group picks the socket from the first byte of each packet's destination
//! connection ID. A client's first Initial carries a random destination ID
//! (so new connections spread evenly, whatever their address); from the
//! server's first reply on, the client addresses the ID its driver issued,
//! from any address.

use std::io;

use quinn_proto::{ConnectionId, ConnectionIdGenerator, InvalidCid};

/// Offset of the destination connection ID in a short-header packet
/// (after the first byte) and in a long-header one (first byte, version,
/// ID length).
const SHORT_DCID: u32 = 1;
const LONG_DCID: u32 = 6;
/// The long-header bit of a QUIC packet's first byte (RFC 9000, 17.2).
const LONG_HEADER: u32 = 0x80;
/// Longest connection ID QUIC v1 allows.
const MAX_CID_LEN: usize = 20;

/// One driver's place among the drivers sharing a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardSteering {
    shard: u16,
    shards: u16,
    cid_len: usize,
}

impl ShardSteering {
    /// Driver `shard` of `shards` (2 to 256 of them: the shard lives in one
    /// byte), issuing connection IDs of `cid_len` bytes (1 to 20).
    pub fn new(shard: u16, shards: u16, cid_len: usize) -> Option<ShardSteering> {
        let valid = (2..=256).contains(&shards) && shard < shards && (1..=MAX_CID_LEN).contains(&cid_len);
        valid.then_some(ShardSteering { shard, shards, cid_len })
    }

    pub fn shards(&self) -> u16 {
        self.shards
    }

    /// The shard the kernel program sends `packet` (a UDP payload) to: what
    /// the BPF program computes, for tests and diagnostics. None where the
    /// program would read past the end (the kernel then picks socket 0).
    pub fn shard_of(shards: u16, packet: &[u8]) -> Option<u16> {
        let first = *packet.first()? as u32;
        let at = if first & LONG_HEADER != 0 { LONG_DCID } else { SHORT_DCID };
        packet.get(at as usize).map(|&b| b as u16 % shards)
    }

    /// The generator of this shard's connection IDs.
    pub fn cid_generator(&self) -> ShardCidGenerator {
        ShardCidGenerator { steering: *self, random: quinn_proto::RandomConnectionIdGenerator::new(self.cid_len) }
    }

    /// Whether `cid` is one this shard may have issued.
    fn owns(&self, cid: &[u8]) -> bool {
        cid.len() == self.cid_len && cid[0] as u16 % self.shards == self.shard
    }

    /// The program: the first byte of the destination connection ID,
    /// modulo the number of sockets, is the index of the socket to deliver
    /// to (sockets are numbered in the order they joined the group; an
    /// index past the last falls back to the address hash).
    #[cfg(target_os = "linux")]
    fn program(&self) -> [libc::sock_filter; 7] {
        // Classic BPF opcodes (linux/filter.h); the program sees the UDP
        // payload from offset 0.
        const LD_B_ABS: u16 = 0x10 | 0x20; // BPF_LD (0) | BPF_B | BPF_ABS
        const JSET_K: u16 = 0x05 | 0x40; // BPF_JMP | BPF_JSET | BPF_K
        const JA: u16 = 0x05; // BPF_JMP | BPF_JA
        const MOD_K: u16 = 0x04 | 0x90; // BPF_ALU | BPF_MOD | BPF_K
        const RET_A: u16 = 0x06 | 0x10; // BPF_RET | BPF_A
        let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
        [
            op(LD_B_ABS, 0, 0, 0),               // A = first byte
            op(JSET_K, 2, 0, LONG_HEADER),       // long header: to 4
            op(LD_B_ABS, 0, 0, SHORT_DCID),      // A = short header DCID[0]
            op(JA, 0, 0, 1),                     // to 5
            op(LD_B_ABS, 0, 0, LONG_DCID),       // A = long header DCID[0]
            op(MOD_K, 0, 0, self.shards as u32), // A %= shards
            op(RET_A, 0, 0, 0),                  // socket index A
        ]
    }

    /// Attaches the program to the reuseport group `socket` belongs to (the
    /// same program for every shard: attaching again replaces it).
    #[cfg(target_os = "linux")]
    pub(crate) fn attach(&self, socket: &socket2::Socket) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        // asm-generic/socket.h; the libc crate exports it for some targets only.
        const SO_ATTACH_REUSEPORT_CBPF: libc::c_int = 51;
        let mut program = self.program();
        let fprog = libc::sock_fprog { len: program.len() as u16, filter: program.as_mut_ptr() };
        // SAFETY: `fprog` points at `program`, alive across the call; the
        // kernel copies the program and keeps no pointer.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_ATTACH_REUSEPORT_CBPF,
                (&fprog as *const libc::sock_fprog).cast(),
                std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
            )
        };
        if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
    }

    #[cfg(not(target_os = "linux"))]
    pub(crate) fn attach(&self, _socket: &socket2::Socket) -> io::Result<()> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "reuseport steering needs Linux"))
    }
}

/// Random connection IDs whose first byte names their shard.
pub struct ShardCidGenerator {
    steering: ShardSteering,
    random: quinn_proto::RandomConnectionIdGenerator,
}

impl ConnectionIdGenerator for ShardCidGenerator {
    fn generate_cid(&mut self) -> ConnectionId {
        let cid = self.random.generate_cid();
        let mut bytes = [0u8; MAX_CID_LEN];
        bytes[..cid.len()].copy_from_slice(&cid);
        // The first byte stays as random as the shard allows: one of the
        // values congruent to `shard`, picked by the random byte.
        let (shard, shards) = (self.steering.shard as u32, self.steering.shards as u32);
        let choices = (256 - shard).div_ceil(shards);
        bytes[0] = (shard + shards * (bytes[0] as u32 % choices)) as u8;
        ConnectionId::new(&bytes[..cid.len()])
    }

    /// A short-header packet for an unknown ID of another shard (the kernel
    /// fell back to the address hash) is dropped instead of answered with a
    /// stateless reset that would end the connection on its own shard.
    fn validate(&self, cid: &ConnectionId) -> Result<(), InvalidCid> {
        if self.steering.owns(cid) { Ok(()) } else { Err(InvalidCid) }
    }

    fn cid_len(&self) -> usize {
        self.steering.cid_len
    }

    fn cid_lifetime(&self) -> Option<std::time::Duration> {
        None
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
    use std::time::Duration;

    use super::*;

    #[test]
    fn ids_name_their_shard_and_only_theirs_validate() {
        for shards in [2u16, 3, 6, 7, 16, 255, 256] {
            for shard in [0, 1, shards / 2, shards - 1] {
                let steering = ShardSteering::new(shard, shards, 4).expect("valid");
                let mut g = steering.cid_generator();
                let mut firsts = std::collections::HashSet::new();
                for _ in 0..200 {
                    let cid = g.generate_cid();
                    assert_eq!(cid.len(), 4);
                    assert_eq!(cid[0] as u16 % shards, shard, "{shards} shards, shard {shard}");
                    assert!(g.validate(&cid).is_ok());
                    // A packet addressed to it goes to this shard.
                    let mut short = vec![0x40];
                    short.extend_from_slice(&cid);
                    assert_eq!(ShardSteering::shard_of(shards, &short), Some(shard));
                    firsts.insert(cid[0]);
                }
                // The first byte keeps what randomness the shard allows.
                let possible = (256 - shard as usize).div_ceil(shards as usize);
                assert!(firsts.len() >= possible.min(8), "{shards}/{shard}: {firsts:?}");
                let other = ShardSteering::new((shard + 1) % shards, shards, 4).expect("valid");
                let foreign = other.cid_generator().generate_cid();
                assert!(g.validate(&foreign).is_err());
            }
        }
        assert!(ShardSteering::new(0, 1, 4).is_none());
        assert!(ShardSteering::new(2, 2, 4).is_none());
        assert!(ShardSteering::new(0, 257, 4).is_none());
        assert!(ShardSteering::new(0, 2, 0).is_none());
    }

    #[test]
    fn shard_of_reads_the_destination_id_of_either_header() {
        // Long header: flags, version, DCID length, DCID.
        assert_eq!(ShardSteering::shard_of(4, &[0xc0, 0, 0, 0, 1, 8, 0x07, 1, 2]), Some(3));
        assert_eq!(ShardSteering::shard_of(4, &[0x41, 0x06, 9, 9]), Some(2));
        assert_eq!(ShardSteering::shard_of(4, &[0xc0, 0, 0]), None);
        assert_eq!(ShardSteering::shard_of(4, &[]), None);
    }

    /// The real kernel: three sockets share a port with the program
    /// attached, one client sends packets with chosen destination IDs, and
    /// each arrives at the socket its ID names, from one client address.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_kernel_delivers_by_destination_id() {
        let shards = 3u16;
        let mut servers: Vec<UdpSocket> = Vec::new();
        let mut addr = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        for shard in 0..shards {
            let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).expect("socket");
            s.set_reuse_port(true).expect("reuseport");
            s.bind(&addr.into()).expect("bind");
            ShardSteering::new(shard, shards, 4).expect("valid").attach(&s).expect("attach");
            let s: UdpSocket = s.into();
            s.set_nonblocking(true).expect("nonblocking");
            addr = s.local_addr().expect("addr");
            servers.push(s);
        }
        let client = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("client");
        for b in 0u8..=255 {
            let short = [0x40, b, 0xaa, 0xbb, 0xcc, 0x01];
            let long = [0xc3, 0, 0, 0, 1, 8, b, 1, 2, 3, 4, 5, 6, 7];
            for packet in [&short[..], &long[..]] {
                client.send_to(packet, addr).expect("send");
                let want = ShardSteering::shard_of(shards, packet).expect("long enough");
                assert_eq!(want, b as u16 % shards);
                let mut buf = [0u8; 64];
                let mut got = None;
                for _ in 0..1000 {
                    for (i, s) in servers.iter().enumerate() {
                        if let Ok(n) = s.recv(&mut buf) {
                            assert_eq!(&buf[..n], packet);
                            assert_eq!(got.replace(i as u16), None, "delivered twice");
                        }
                    }
                    if got.is_some() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                assert_eq!(got, Some(want), "packet {packet:02x?}");
            }
        }
    }
}
