//! The gateway's own keys, generated on first start under `data_dir/keys/` and reused
//! after: the SSH host key, the self-signed TLS certificate, and the age identity
//! hospitals seal files to. Secret files are written 0600, atomically.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use russh::keys::ssh_key::{LineEnding, private::Ed25519Keypair};
use russh::keys::{HashAlg, PrivateKey};

use crate::sealed::{Identity, Recipient};

#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl KeysError {
    pub fn code(&self) -> &'static str {
        match self {
            KeysError::Io { .. } => "keys.io",
            KeysError::Invalid { .. } => "keys.invalid",
        }
    }
}

pub struct GatewayKeys {
    pub ssh_host_key: PrivateKey,
    pub tls_cert_pem: PathBuf,
    pub tls_key_pem: PathBuf,
    pub age_identity: Identity,
    /// The key web-console session cookies are signed with (`console-session.key`):
    /// copied with the rest of `keys/`, every node of a cluster accepts every cookie.
    pub console_key: [u8; 32],
}

impl GatewayKeys {
    pub fn age_recipient(&self) -> Recipient {
        self.age_identity.to_public()
    }

    pub fn ssh_fingerprint(&self) -> String {
        self.ssh_host_key.fingerprint(HashAlg::Sha256).to_string()
    }

    pub fn ssh_public_line(&self) -> String {
        self.ssh_host_key
            .public_key()
            .to_openssh()
            .unwrap_or_default()
    }

    /// SHA-256 of the DER certificate, as `openssl x509 -fingerprint -sha256` shows it.
    pub fn tls_fingerprint(&self) -> Result<String, KeysError> {
        let pem = read(&self.tls_cert_pem)?;
        let der =
            pem_body(&pem).ok_or_else(|| invalid(&self.tls_cert_pem, "no PEM certificate"))?;
        let d = ring::digest::digest(&ring::digest::SHA256, &der);
        Ok(d.as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":"))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeysError + '_ {
    move |source| KeysError::Io {
        path: path.to_owned(),
        source,
    }
}

fn invalid(path: &Path, message: impl Into<String>) -> KeysError {
    KeysError::Invalid {
        path: path.to_owned(),
        message: message.into(),
    }
}

fn read(path: &Path) -> Result<String, KeysError> {
    std::fs::read_to_string(path).map_err(io(path))
}

/// Writes `contents` to `path` with mode 0600 via a temporary file and rename.
fn write_secret(path: &Path, contents: &[u8]) -> Result<(), KeysError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(path))?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o600))
        .map_err(io(path))?;
    tmp.write_all(contents).map_err(io(path))?;
    tmp.as_file().sync_all().map_err(io(path))?;
    tmp.persist(path).map_err(|e| io(path)(e.error))?;
    // The rename is only durable once the directory is: without this a power loss
    // right after start-up could leave no key (a new identity on the next start, and
    // every file already sealed to the old one unreadable).
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(path))?;
    Ok(())
}

/// Loads every key from `dir`, generating the missing ones. `tls_override` is a
/// configured (cert, key) pair that replaces the self-signed certificate.
pub fn load_or_generate(
    dir: &Path,
    tls_override: Option<(&Path, &Path)>,
) -> Result<GatewayKeys, KeysError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    let ssh_host_key = ssh_host_key(&dir.join("ssh_host_ed25519_key"))?;
    let (tls_cert_pem, tls_key_pem) = match tls_override {
        Some((c, k)) => (c.to_owned(), k.to_owned()),
        None => self_signed_tls(&dir.join("tls-cert.pem"), &dir.join("tls-key.pem"))?,
    };
    let age_identity = age_identity(&dir.join("age-identity.txt"))?;
    let console_key = console_key(&dir.join("console-session.key"))?;
    Ok(GatewayKeys {
        ssh_host_key,
        tls_cert_pem,
        tls_key_pem,
        age_identity,
        console_key,
    })
}

fn ssh_host_key(path: &Path) -> Result<PrivateKey, KeysError> {
    if path.exists() {
        return PrivateKey::from_openssh(read(path)?).map_err(|e| invalid(path, e.to_string()));
    }
    let seed = crate::sealed::random_seed().map_err(|e| invalid(path, e.to_string()))?;
    let key = PrivateKey::from(Ed25519Keypair::from_seed(&seed));
    let pem = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| invalid(path, e.to_string()))?;
    write_secret(path, pem.as_bytes())?;
    let public = key.public_key().to_openssh().unwrap_or_default();
    std::fs::write(path.with_extension("pub"), format!("{public}\n")).map_err(io(path))?;
    tracing::info!(path = %path.display(), "generated SSH host key");
    Ok(key)
}

fn self_signed_tls(cert: &Path, key: &Path) -> Result<(PathBuf, PathBuf), KeysError> {
    if cert.exists() && key.exists() {
        return Ok((cert.to_owned(), key.to_owned()));
    }
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| invalid(cert, e.to_string()))?;
    write_secret(key, generated.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(cert, generated.cert.pem()).map_err(io(cert))?;
    tracing::info!(path = %cert.display(), "generated self-signed TLS certificate");
    Ok((cert.to_owned(), key.to_owned()))
}

fn age_identity(path: &Path) -> Result<Identity, KeysError> {
    if path.exists() {
        return Identity::from_file_text(&read(path)?).map_err(|e| invalid(path, e.to_string()));
    }
    let id = Identity::generate().map_err(|e| invalid(path, e.to_string()))?;
    write_secret(
        path,
        id.to_file_text(&crate::util::now_rfc3339()).as_bytes(),
    )?;
    tracing::info!(path = %path.display(), recipient = %id.to_public(), "generated age identity");
    Ok(id)
}

/// 32 random bytes, kept as 64 hex digits. Replacing the file signs every console user
/// out (their cookies no longer verify); nothing else depends on it.
fn console_key(path: &Path) -> Result<[u8; 32], KeysError> {
    if path.exists() {
        let text = read(path)?;
        let bytes = hex::decode(text.trim()).map_err(|e| invalid(path, e.to_string()))?;
        return bytes
            .try_into()
            .map_err(|_| invalid(path, "expected 64 hex digits (32 bytes)"));
    }
    let key = crate::sealed::random_seed().map_err(|e| invalid(path, e.to_string()))?;
    write_secret(path, format!("{}\n", hex::encode(key)).as_bytes())?;
    tracing::info!(path = %path.display(), "generated console session key");
    Ok(key)
}

/// The DER bytes of the first PEM block.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let start = pem.find("-----BEGIN")?;
    let body_start = start + pem[start..].find('\n')? + 1;
    let end = body_start + pem[body_start..].find("-----END")?;
    let b64: String = pem[body_start..end].split_whitespace().collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_generate(dir.path(), None).unwrap();
        let b = load_or_generate(dir.path(), None).unwrap();
        assert_eq!(a.ssh_fingerprint(), b.ssh_fingerprint());
        assert_eq!(a.age_recipient(), b.age_recipient());
        assert_eq!(a.tls_fingerprint().unwrap(), b.tls_fingerprint().unwrap());
        let mode = std::fs::metadata(dir.path().join("age-identity.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
