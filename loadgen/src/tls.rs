//! QUIC client endpoints: TLS trust, transport settings and sockets.
//!
//! One endpoint (one UDP socket, one driver task) serves many connections, so
//! a load run creates a handful and spreads its bots over them. Connections
//! to different nodes can share an endpoint: each connection may carry its
//! own trust ([`quic_client_config`], [`ClientConfigs`]).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use quinn::crypto::rustls::QuicClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest as _, Sha256};

use crate::impair::{ImpairStats, ImpairedSocket, Impairment};

/// Keep-alive well inside the node's ~10 s idle timeout, so a quiet client
/// (no inputs, e.g. between matches) is not dropped.
pub const KEEP_ALIVE: Duration = Duration::from_secs(2);
/// Our side of the idle timeout; the effective one is the smaller of both peers'.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Socket buffers asked of the kernel (it may cap them at `net.core.rmem_max`):
/// thousands of bots share a socket, and bursts of snapshots all land at once.
const SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// Distinct trusts [`ClientConfigs`] keeps built; one per game node in practice.
const MAX_CACHED_CONFIGS: usize = 256;

/// How a client decides to trust the node's certificate.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Trust {
    /// Trust exactly this (self-signed) certificate, DER encoded.
    Cert(Vec<u8>),
    /// Trust exactly the leaf certificate whose DER encoding has this SHA-256
    /// (what the HTTP API's placements carry as `cert_sha256`).
    Sha256([u8; 32]),
    /// Accept any certificate. For local load tests only.
    Insecure,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trust::Cert(der) => write!(f, "Trust::Cert({} bytes)", der.len()),
            Trust::Sha256(hash) => write!(f, "Trust::Sha256({})", protocol::defaults::to_hex(hash)),
            Trust::Insecure => f.write_str("Trust::Insecure"),
        }
    }
}

impl Trust {
    /// Trusts the development certificate a local node wrote into its data dir.
    pub fn from_data_dir(data_dir: &Path) -> anyhow::Result<Trust> {
        let path = data_dir.join(protocol::defaults::DEV_CERT_FILE);
        Trust::from_der_file(&path)
    }

    pub fn from_der_file(path: &Path) -> anyhow::Result<Trust> {
        let der = std::fs::read(path).with_context(|| {
            format!("reading the node certificate {} (is the node running? or pass --insecure)", path.display())
        })?;
        Ok(Trust::Cert(der))
    }

    /// Pins a certificate by the hex SHA-256 of its DER encoding (64 hex
    /// digits, either case).
    pub fn sha256_hex(hex: &str) -> anyhow::Result<Trust> {
        let bytes = protocol::defaults::from_hex(hex).context("the certificate hash is not hex")?;
        let hash: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| anyhow::anyhow!("the certificate hash has {} bytes, not 32", b.len()))?;
        Ok(Trust::Sha256(hash))
    }

    /// Pins the certificate `der` by its hash.
    pub fn sha256_of(der: &[u8]) -> Trust {
        Trust::Sha256(Sha256::digest(der).into())
    }
}

/// A client endpoint on an ephemeral IPv4 port (`0.0.0.0:0`), trusting `trust`.
/// Must be called inside a tokio runtime.
pub fn client_endpoint(trust: &Trust) -> anyhow::Result<quinn::Endpoint> {
    client_endpoint_bound(trust, (Ipv4Addr::UNSPECIFIED, 0).into())
}

/// A client endpoint bound to a port of the address family (and, for
/// loopback, the interface) that reaches `server`.
pub fn client_endpoint_for(trust: &Trust, server: SocketAddr) -> anyhow::Result<quinn::Endpoint> {
    client_endpoint_bound(trust, bind_addr_for(server))
}

/// The local address (ephemeral port) a client endpoint for `server` binds:
/// the server's address family, and the loopback interface for a loopback server.
pub fn bind_addr_for(server: SocketAddr) -> SocketAddr {
    match (server.is_ipv4(), server.ip().is_loopback()) {
        (true, true) => (Ipv4Addr::LOCALHOST, 0).into(),
        (true, false) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        (false, true) => (Ipv6Addr::LOCALHOST, 0).into(),
        (false, false) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

/// A client endpoint on `bind`, trusting `trust`.
pub fn client_endpoint_bound(trust: &Trust, bind: SocketAddr) -> anyhow::Result<quinn::Endpoint> {
    let mut endpoint = bare_endpoint(bind)?;
    endpoint.set_default_client_config(quic_client_config(trust)?);
    Ok(endpoint)
}

/// An endpoint without a default client config: every connection names its
/// own (`quinn::Endpoint::connect_with`).
fn bare_endpoint(bind: SocketAddr) -> anyhow::Result<quinn::Endpoint> {
    let socket = udp_socket(bind).with_context(|| format!("binding a UDP socket on {bind}"))?;
    quinn::Endpoint::new(quinn::EndpointConfig::default(), None, socket, Arc::new(quinn::TokioRuntime))
        .context("creating the QUIC endpoint")
}

/// Like [`bare_endpoint`], on a socket that impairs its traffic.
fn impaired_endpoint(bind: SocketAddr, impair: &Impair, seed: u64) -> anyhow::Result<quinn::Endpoint> {
    use quinn::Runtime as _;
    let socket = udp_socket(bind).with_context(|| format!("binding a UDP socket on {bind}"))?;
    let inner = quinn::TokioRuntime.wrap_udp_socket(socket).context("registering the UDP socket")?;
    let socket = ImpairedSocket::new(inner, impair.config, seed, impair.stats.clone());
    quinn::Endpoint::new_with_abstract_socket(
        quinn::EndpointConfig::default(),
        None,
        Arc::new(socket),
        Arc::new(quinn::TokioRuntime),
    )
    .context("creating the QUIC endpoint")
}

/// The impairment an [`EndpointPool`] applies to its sockets.
#[derive(Debug, Clone)]
pub struct Impair {
    pub config: Impairment,
    /// Each socket's dice start from this seed and its number.
    pub seed: u64,
    pub stats: Arc<ImpairStats>,
}

fn udp_socket(bind: SocketAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(bind), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: a smaller buffer only means more drops under heavy load,
    // which the report shows as missing snapshots.
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    socket.bind(&bind.into())?;
    Ok(socket.into())
}

/// The QUIC client configuration (TLS 1.3, ALPN, transport settings) that
/// trusts `trust`.
pub fn quic_client_config(trust: &Trust) -> anyhow::Result<quinn::ClientConfig> {
    client_config_for(trust, false)
}

/// The client configuration of a WebTransport session: ALPN `h3`, and room
/// for the server's HTTP/3 control stream.
pub fn webtransport_client_config(trust: &Trust) -> anyhow::Result<quinn::ClientConfig> {
    client_config_for(trust, true)
}

fn client_config_for(trust: &Trust, webtransport: bool) -> anyhow::Result<quinn::ClientConfig> {
    // An explicit provider: the process-wide default is ambiguous when more
    // than one rustls backend is compiled into the workspace.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 is not supported by the crypto provider")?;
    let mut tls = match trust {
        Trust::Cert(der) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(CertificateDer::from(der.clone())).context("the node certificate is not valid DER")?;
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Sha256(hash) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedSha256 {
                hash: *hash,
                algorithms: provider.signature_verification_algorithms,
            }))
            .with_no_client_auth(),
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider.signature_verification_algorithms)))
            .with_no_client_auth(),
    };
    tls.alpn_protocols =
        vec![if webtransport { quic_loop::webtransport::ALPN.to_vec() } else { protocol::ALPN.to_vec() }];

    let mut config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?));
    let mut transport = transport_config();
    if webtransport {
        // The server's HTTP/3 control stream.
        transport.max_concurrent_uni_streams(1u32.into());
    }
    config.transport_config(Arc::new(transport));
    Ok(config)
}

fn transport_config() -> quinn::TransportConfig {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(KEEP_ALIVE));
    t.max_idle_timeout(Some(IDLE_TIMEOUT.try_into().expect("idle timeout fits a VarInt")));
    // The node never opens streams towards a client.
    t.max_concurrent_uni_streams(0u32.into());
    t.max_concurrent_bidi_streams(0u32.into());
    // Snapshots are drained promptly; a small buffer bounds memory per bot.
    t.datagram_receive_buffer_size(Some(64 * 1024));
    t.datagram_send_buffer_size(16 * 1024);
    t
}

/// Client configs by trust, each built once: a run connects thousands of
/// times, to the few nodes the API places it on.
#[derive(Debug, Default)]
pub struct ClientConfigs {
    webtransport: bool,
    built: Mutex<HashMap<Trust, quinn::ClientConfig>>,
}

impl ClientConfigs {
    pub fn new() -> ClientConfigs {
        ClientConfigs::default()
    }

    /// Configs for WebTransport sessions ([`webtransport_client_config`]).
    pub fn webtransport() -> ClientConfigs {
        ClientConfigs { webtransport: true, ..ClientConfigs::default() }
    }

    /// The config for `trust`, built on first use.
    pub fn get(&self, trust: &Trust) -> anyhow::Result<quinn::ClientConfig> {
        let mut built = self.built.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(config) = built.get(trust) {
            return Ok(config.clone());
        }
        // Bounded in case an API hands out a new certificate per placement;
        // rebuilding is cheap, an ever-growing map is not.
        if built.len() >= MAX_CACHED_CONFIGS {
            built.clear();
        }
        let config = client_config_for(trust, self.webtransport)?;
        built.insert(trust.clone(), config.clone());
        Ok(config)
    }
}

/// Client endpoints shared by many connections, created on first use for
/// each local bind address ([`bind_addr_for`]): where the API places a bot,
/// and so which address family it needs, is only known at run time.
#[derive(Debug)]
pub struct EndpointPool {
    per_bind: usize,
    sets: Mutex<HashMap<SocketAddr, Vec<quinn::Endpoint>>>,
    impair: Option<Impair>,
}

impl EndpointPool {
    /// `per_bind` endpoints (at least one) for each bind address used.
    pub fn new(per_bind: usize) -> EndpointPool {
        EndpointPool { per_bind: per_bind.max(1), sets: Mutex::new(HashMap::new()), impair: None }
    }

    /// Endpoints whose sockets drop and delay datagrams as `impair` says;
    /// with no impairment to apply, plain sockets as [`EndpointPool::new`].
    pub fn impaired(per_bind: usize, impair: Impair) -> EndpointPool {
        let impair = (!impair.config.is_none()).then_some(impair);
        EndpointPool { impair, ..EndpointPool::new(per_bind) }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SocketAddr, Vec<quinn::Endpoint>>> {
        self.sets.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Endpoint `slot` (modulo the set size) of those that reach `server`.
    /// Must be called inside a tokio runtime. The endpoints have no default
    /// client config: connect with an explicit one.
    pub fn endpoint_for(&self, server: SocketAddr, slot: usize) -> anyhow::Result<quinn::Endpoint> {
        let bind = bind_addr_for(server);
        let mut sets = self.lock();
        let set = match sets.entry(bind) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let make = |i: usize| match &self.impair {
                    None => bare_endpoint(bind),
                    Some(impair) => impaired_endpoint(bind, impair, impair.seed.wrapping_add(i as u64)),
                };
                e.insert((0..self.per_bind).map(make).collect::<anyhow::Result<Vec<_>>>()?)
            }
        };
        Ok(set[slot % set.len()].clone())
    }

    /// Every endpoint created so far.
    pub fn endpoints(&self) -> Vec<quinn::Endpoint> {
        self.lock().values().flatten().cloned().collect()
    }
}

/// Accepts exactly the leaf certificate with the pinned SHA-256, whatever its
/// name, issuer or validity dates: the hash came from the API over a channel
/// we already trust, which is how browsers pin self-signed WebTransport
/// certificates (`serverCertificateHashes`). The handshake signature is still
/// verified against that certificate, so only the holder of its key passes.
#[derive(Debug)]
struct PinnedSha256 {
    hash: [u8; 32],
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedSha256 {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if <[u8; 32]>::from(Sha256::digest(end_entity.as_ref())) == self.hash {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The config offers TLS 1.3 only (QUIC requires it), so this never runs.
        Err(rustls::Error::General("TLS 1.2 is not offered".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Skips certificate checks but still verifies the handshake signatures, so
/// the connection is encrypted, just not authenticated.
#[derive(Debug)]
struct AcceptAnyCert(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quinn::crypto::rustls::QuicServerConfig;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::server::{ClientHello, ResolvesServerCert};
    use rustls::sign::CertifiedKey;

    fn self_signed() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        (ck.cert.der().clone(), PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()).into())
    }

    /// Presents whatever certificate and key it was given, matching or not.
    #[derive(Debug)]
    struct Present(Arc<CertifiedKey>);

    impl ResolvesServerCert for Present {
        fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
            Some(self.0.clone())
        }
    }

    /// A QUIC server on loopback presenting `cert` and signing with `key`;
    /// it accepts connections until dropped.
    fn server(cert: CertificateDer<'static>, key: PrivateKeyDer<'static>) -> quinn::Endpoint {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let signer = provider.key_provider.load_private_key(key).unwrap();
        let certified = Arc::new(CertifiedKey::new(vec![cert], signer));
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Present(certified)));
        tls.alpn_protocols = vec![protocol::ALPN.to_vec()];
        let config = quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls).unwrap()));
        let endpoint = quinn::Endpoint::server(config, (Ipv4Addr::LOCALHOST, 0).into()).unwrap();
        let accepting = endpoint.clone();
        tokio::spawn(async move {
            while let Some(incoming) = accepting.accept().await {
                tokio::spawn(async move {
                    if let Ok(conn) = incoming.await {
                        conn.closed().await;
                    }
                });
            }
        });
        endpoint
    }

    async fn handshake(trust: &Trust, server: &quinn::Endpoint) -> Result<(), String> {
        let addr = server.local_addr().unwrap();
        // One shared endpoint, the trust per connection, as a load run does.
        let pool = EndpointPool::new(1);
        let endpoint = pool.endpoint_for(addr, 0).unwrap();
        let config = ClientConfigs::new().get(trust).unwrap();
        // The name is deliberately not the certificate's: a pin ignores names.
        let connecting = endpoint.connect_with(config, addr, "node.example").unwrap();
        match tokio::time::timeout(Duration::from_secs(10), connecting).await {
            Ok(Ok(conn)) => {
                conn.close(0u32.into(), b"done");
                Ok(())
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    #[test]
    fn hashes_parse_from_hex() {
        let hash: [u8; 32] = std::array::from_fn(|i| i as u8 * 7);
        let hex = protocol::defaults::to_hex(&hash);
        assert_eq!(Trust::sha256_hex(&hex).unwrap(), Trust::Sha256(hash));
        assert_eq!(Trust::sha256_hex(&hex.to_uppercase()).unwrap(), Trust::Sha256(hash));
        assert!(Trust::sha256_hex(&hex[..62]).is_err(), "31 bytes");
        assert!(Trust::sha256_hex(&format!("{hex}00")).is_err(), "33 bytes");
        assert!(Trust::sha256_hex(&"zz".repeat(32)).is_err());
        assert!(format!("{:?}", Trust::Sha256(hash)).contains(&hex));
    }

    #[test]
    fn the_pin_accepts_exactly_the_hashed_certificate() {
        let (cert, _) = self_signed();
        let (other, _) = self_signed();
        let Trust::Sha256(hash) = Trust::sha256_of(&cert) else { unreachable!() };
        let provider = rustls::crypto::ring::default_provider();
        let pin = PinnedSha256 { hash, algorithms: provider.signature_verification_algorithms };
        let name = ServerName::try_from("anything.example").unwrap();
        let verify = |c: &CertificateDer<'_>| pin.verify_server_cert(c, &[], &name, &[], UnixTime::now());
        assert!(verify(&cert).is_ok());
        assert_eq!(
            verify(&other).unwrap_err(),
            rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
        );
        // Chains do not matter: only the leaf is pinned.
        assert!(pin.verify_server_cert(&other, std::slice::from_ref(&cert), &name, &[], UnixTime::now()).is_err());
    }

    #[tokio::test]
    async fn a_pinned_handshake_succeeds_only_with_the_certificate_and_its_key() {
        let (cert, key) = self_signed();
        let (other_cert, other_key) = self_signed();
        let honest = server(cert.clone(), key);
        assert_eq!(handshake(&Trust::sha256_of(&cert), &honest).await, Ok(()));
        assert!(handshake(&Trust::sha256_of(&other_cert), &honest).await.is_err(), "another certificate's hash");

        // A server that shows the pinned certificate without holding its key
        // fails the handshake signature check.
        let impostor = server(cert.clone(), other_key);
        let err = handshake(&Trust::sha256_of(&cert), &impostor).await.unwrap_err();
        assert!(err.to_lowercase().contains("signature"), "{err}");
    }
}
