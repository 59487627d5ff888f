//! Certificates: a self-signed development certificate generated at start
//! (embedded mode), or a certificate chain and key from PEM files
//! (production).

use std::path::Path;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// How long a development certificate stays valid after its start (an hour
/// before it was made, for clock skew): 13 days and 22 hours keeps the
/// whole span under the 14 days browsers accept for a pinned certificate.
const DEV_CERT_VALIDITY: time::Duration = time::Duration::hours(13 * 24 + 22);

pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// A fresh self-signed certificate for `localhost` and the loopback
    /// addresses. Native clients of a local node trust it by its DER copy;
    /// browsers pin its SHA-256 (WebTransport `serverCertificateHashes`),
    /// which they allow only for an ECDSA certificate valid for at most 14
    /// days: a development node is restarted more often than that.
    pub fn self_signed() -> anyhow::Result<Identity> {
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
        let mut params = rcgen::CertificateParams::new(names).context("development certificate names")?;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + DEV_CERT_VALIDITY;
        let key =
            rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).context("generating the development key")?;
        let cert = params.self_signed(&key).context("signing the development certificate")?;
        Ok(Identity { chain: vec![cert.der().clone()], key: PrivatePkcs8KeyDer::from(key.serialize_der()).into() })
    }

    /// Loads a PEM certificate chain and private key.
    pub fn from_pem_files(cert: &Path, key: &Path) -> anyhow::Result<Identity> {
        let chain = CertificateDer::pem_file_iter(cert)
            .with_context(|| format!("reading certificate {}", cert.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing certificate {}", cert.display()))?;
        anyhow::ensure!(!chain.is_empty(), "no certificate found in {}", cert.display());
        let key =
            PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading private key {}", key.display()))?;
        Ok(Identity { chain, key })
    }

    /// The leaf certificate in DER, which dev clients pin.
    pub fn leaf_der(&self) -> &[u8] {
        &self.chain[0]
    }
}
