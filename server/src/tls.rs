//! Certificates: a self-signed development certificate generated at start
//! (embedded mode), or a certificate chain and key from PEM files
//! (production).

use std::path::Path;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// A fresh self-signed certificate for `localhost` and the loopback
    /// addresses. Clients of a local node trust it by its DER copy.
    pub fn self_signed() -> anyhow::Result<Identity> {
        let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
        let ck = rcgen::generate_simple_self_signed(names).context("generating the development certificate")?;
        Ok(Identity {
            chain: vec![ck.cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()).into(),
        })
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
