//! QUIC client endpoints: TLS trust, transport settings and sockets.
//!
//! One endpoint (one UDP socket, one driver task) serves many connections, so
//! a load run creates a handful and spreads its bots over them.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use quinn::crypto::rustls::QuicClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Keep-alive well inside the node's ~10 s idle timeout, so a quiet client
/// (no inputs, e.g. between matches) is not dropped.
pub const KEEP_ALIVE: Duration = Duration::from_secs(2);
/// Our side of the idle timeout; the effective one is the smaller of both peers'.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Socket buffers asked of the kernel (it may cap them at `net.core.rmem_max`):
/// thousands of bots share a socket, and bursts of snapshots all land at once.
const SOCKET_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// How a client decides to trust the node's certificate.
#[derive(Clone, PartialEq, Eq)]
pub enum Trust {
    /// Trust exactly this (self-signed) certificate, DER encoded.
    Cert(Vec<u8>),
    /// Accept any certificate. For local load tests only.
    Insecure,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Trust::Cert(der) => write!(f, "Trust::Cert({} bytes)", der.len()),
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
}

/// A client endpoint on an ephemeral IPv4 port (`0.0.0.0:0`), trusting `trust`.
/// Must be called inside a tokio runtime.
pub fn client_endpoint(trust: &Trust) -> anyhow::Result<quinn::Endpoint> {
    client_endpoint_bound(trust, (Ipv4Addr::UNSPECIFIED, 0).into())
}

/// A client endpoint bound to a port of the address family (and, for
/// loopback, the interface) that reaches `server`.
pub fn client_endpoint_for(trust: &Trust, server: SocketAddr) -> anyhow::Result<quinn::Endpoint> {
    let bind: SocketAddr = match (server.is_ipv4(), server.ip().is_loopback()) {
        (true, true) => (Ipv4Addr::LOCALHOST, 0).into(),
        (true, false) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        (false, true) => (Ipv6Addr::LOCALHOST, 0).into(),
        (false, false) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    client_endpoint_bound(trust, bind)
}

/// A client endpoint on `bind`, trusting `trust`.
pub fn client_endpoint_bound(trust: &Trust, bind: SocketAddr) -> anyhow::Result<quinn::Endpoint> {
    let socket = udp_socket(bind).with_context(|| format!("binding a UDP socket on {bind}"))?;
    let mut endpoint =
        quinn::Endpoint::new(quinn::EndpointConfig::default(), None, socket, Arc::new(quinn::TokioRuntime))
            .context("creating the QUIC endpoint")?;
    endpoint.set_default_client_config(client_config(trust)?);
    Ok(endpoint)
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

fn client_config(trust: &Trust) -> anyhow::Result<quinn::ClientConfig> {
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
        Trust::Insecure => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider.signature_verification_algorithms)))
            .with_no_client_auth(),
    };
    tls.alpn_protocols = vec![protocol::ALPN.to_vec()];

    let mut config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?));
    config.transport_config(Arc::new(transport_config()));
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
