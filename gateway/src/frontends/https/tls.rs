//! TLS for the HTTPS listener: our certificate, TLS 1.2+ with rustls's default
//! (strong-only) suites, ALPN h2 and http/1.1, and — when `[https]
//! client_certificates` is on — an optional client certificate a hospital may
//! present instead of an API token.
//!
//! Two ways to trust a client certificate:
//! - **pinned** (no `client_ca_file`): any certificate is accepted at the TLS layer as
//!   long as the client proves it holds the private key; it identifies a tenant only
//!   when its SHA-256 fingerprint is registered in that tenant's `client_cert_sha256`,
//!   like an SSH public key. Hospitals can use a self-signed certificate.
//! - **CA** (`client_ca_file` set): the certificate must also chain to that CA and be
//!   within its validity dates (full X.509 validation by webpki), and is still mapped
//!   to a tenant by fingerprint.
//!
//! Either way the certificate is optional: a client without one authenticates with
//! its bearer token, so browsers and token clients keep working.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use crate::config::HttpsConfig;

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read {path}: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("{path} holds no certificate")]
    NoCertificate { path: PathBuf },
    #[error("client CA {path}: {message}")]
    ClientCa { path: PathBuf, message: String },
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The rustls server configuration for the HTTPS listener.
pub fn server_config(
    cert_pem: &Path,
    key_pem: &Path,
    cfg: &HttpsConfig,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let provider = Arc::new(provider());
    let certs = read_certs(cert_pem)?;
    let key = PrivateKeyDer::from_pem_file(key_pem).map_err(|e| TlsSetupError::Pem {
        path: key_pem.to_owned(),
        message: e.to_string(),
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = if cfg.client_certificates {
        builder.with_client_cert_verifier(client_verifier(cfg, provider)?)
    } else {
        builder.with_no_client_auth()
    };
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ignore_client_order = true;
    Ok(Arc::new(config))
}

/// ring's suites with AES-128-GCM first (and the server's order deciding): every
/// suite offered is strong, and AES-128-GCM costs about a quarter less CPU per byte than
/// AES-256-GCM, which clients otherwise pick — measurable when one core encrypts a 1 GiB
/// download while the other decrypts it (bench/RESULTS.md).
fn provider() -> rustls::crypto::CryptoProvider {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites.sort_by_key(|s| {
        let name = format!("{:?}", s.suite());
        (
            s.version() != &rustls::version::TLS13,
            !name.contains("AES_128_GCM"),
        )
    });
    p
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsSetupError::Pem {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

fn client_verifier(
    cfg: &HttpsConfig,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsSetupError> {
    if cfg.client_ca_file.as_os_str().is_empty() {
        return Ok(Arc::new(Pinned {
            algorithms: provider.signature_verification_algorithms,
        }));
    }
    let path = &cfg.client_ca_file;
    let ca_err = |message: String| TlsSetupError::ClientCa {
        path: path.clone(),
        message,
    };
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|e| ca_err(e.to_string()))
}

/// Accepts any client certificate whose key signs the handshake; which tenant (if
/// any) it names is decided per request from its fingerprint (see `auth.rs`).
#[derive(Debug)]
struct Pinned {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for Pinned {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Trust comes from the registered fingerprint, not from an issuer; possession
        // of the key is proven by the handshake signature checked below.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
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
