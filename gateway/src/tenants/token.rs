//! API tokens: minted once, shown once, stored only as a SHA-256 hash.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use base64::Engine;
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};

use super::file::TenantsError;

/// `sha256:<64 hex digits>` of a token or of a client certificate, optionally with
/// `;expires=<YYYY-MM-DDTHH:MM:SSZ>` (a token minted with `--days`). Tokens are 256-bit
/// random, so a plain hash is enough (no password stretching needed: nothing to
/// brute-force).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash([u8; 32], Option<i64>);

impl TokenHash {
    pub fn of(token: &str) -> TokenHash {
        TokenHash::of_bytes(token.as_bytes())
    }

    /// The hash of raw bytes (a client certificate's DER form: its fingerprint).
    pub fn of_bytes(bytes: &[u8]) -> TokenHash {
        let d = ring::digest::digest(&ring::digest::SHA256, bytes);
        let mut h = [0u8; 32];
        h.copy_from_slice(d.as_ref());
        TokenHash(h, None)
    }

    /// The same hash, valid until `at` (unix seconds).
    pub fn expiring(self, at: i64) -> TokenHash {
        TokenHash(self.0, Some(at))
    }

    /// When the token expires (unix seconds), if it was minted to.
    pub fn expires_at(&self) -> Option<i64> {
        self.1
    }

    /// The hash as 64 hex digits (without the expiry).
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Whether the token's expiry has passed at `now`.
    pub fn expired(&self, now: i64) -> bool {
        self.1.is_some_and(|at| now >= at)
    }

    /// Constant-time comparison against a presented token.
    pub fn matches(&self, token: &str) -> bool {
        self.same_as(&TokenHash::of(token))
    }

    /// Constant-time comparison of two hashes.
    pub fn same_as(&self, other: &TokenHash) -> bool {
        let diff = self
            .0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        diff == 0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({self})")
    }
}

impl fmt::Display for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", hex::encode(self.0))?;
        match self.1 {
            Some(at) => write!(f, ";expires={}", crate::util::rfc3339(at)),
            None => Ok(()),
        }
    }
}

impl FromStr for TokenHash {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (s, expires) = match s.split_once(';') {
            Some((h, rest)) => {
                let at = rest
                    .strip_prefix("expires=")
                    .and_then(crate::util::parse_instant)
                    .ok_or_else(|| format!("`{rest}` is not expires=YYYY-MM-DDTHH:MM:SSZ"))?;
                (h, Some(at))
            }
            None => (s, None),
        };
        let hexpart = s
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("hash `{s}` must start with `sha256:`"))?;
        let mut h = [0u8; 32];
        hex::decode_to_slice(hexpart, &mut h)
            .map_err(|_| format!("hash `{s}` must be sha256: and 64 hex digits"))?;
        Ok(TokenHash(h, expires))
    }
}

impl<'de> Deserialize<'de> for TokenHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for TokenHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// Mints a token for tenant `code`, adds its hash to the tenants file (keeping the
/// file's comments and layout) and returns the token, which is never stored.
pub fn mint_token(path: &Path, code: &str, days: Option<u32>) -> Result<String, TenantsError> {
    let mut raw = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| TenantsError::Invalid {
            path: path.to_owned(),
            message: "system random source failed".into(),
        })?;
    let token = format!(
        "gw_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let mut hash = TokenHash::of(&token);
    if let Some(d) = days {
        hash = hash.expiring(crate::util::unix_now() + i64::from(d) * 86_400);
    }
    append_to_tenant(path, code, "token_hashes", &hash.to_string())?;
    Ok(token)
}

/// Registers a client certificate (PEM or DER) for tenant `code`: its SHA-256
/// fingerprint goes into `client_cert_sha256`. Returns the fingerprint.
pub fn register_client_cert(
    path: &Path,
    code: &str,
    cert: &[u8],
) -> Result<TokenHash, TenantsError> {
    let der = cert_der(cert).ok_or_else(|| TenantsError::Invalid {
        path: path.to_owned(),
        message: "the certificate is neither PEM nor DER".into(),
    })?;
    let fingerprint = TokenHash::of_bytes(&der);
    append_to_tenant(path, code, "client_cert_sha256", &fingerprint.to_string())?;
    Ok(fingerprint)
}

/// The DER bytes of the first certificate in `bytes` (PEM), or `bytes` itself when
/// it already is DER (an ASN.1 SEQUENCE).
fn cert_der(bytes: &[u8]) -> Option<Vec<u8>> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    if bytes.first() == Some(&0x30) {
        return Some(bytes.to_vec());
    }
    CertificateDer::pem_slice_iter(bytes)
        .next()
        .and_then(Result::ok)
        .map(|c| c.to_vec())
}

/// Appends `value` to the string array `key` of tenant `code` in the tenants file,
/// keeping the file's comments and layout; validates, then replaces it atomically.
fn append_to_tenant(path: &Path, code: &str, key: &str, value: &str) -> Result<(), TenantsError> {
    let invalid = |message: String| TenantsError::Invalid {
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|source| TenantsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| invalid(format!("{e}")))?;
    let tenants = doc
        .get_mut("tenant")
        .and_then(|t| t.as_array_of_tables_mut())
        .ok_or_else(|| invalid("no [[tenant]] entries".into()))?;
    let tenant = tenants
        .iter_mut()
        .find(|t| t.get("code").and_then(|c| c.as_str()) == Some(code))
        .ok_or_else(|| invalid(format!("no tenant with code `{code}`")))?;
    let array = tenant
        .entry(key)
        .or_insert(toml_edit::value(toml_edit::Array::new()))
        .as_array_mut()
        .ok_or_else(|| invalid(format!("tenant `{code}`: {key} is not an array")))?;
    if array.iter().any(|v| v.as_str() == Some(value)) {
        return Ok(());
    }
    array.push(value);

    let updated = doc.to_string();
    super::TenantsFile::parse(&updated).map_err(invalid)?;
    let write_err = |e: std::io::Error| TenantsError::Write {
        path: path.to_owned(),
        message: e.to_string(),
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty());
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir.unwrap_or(Path::new("."))).map_err(write_err)?;
    std::io::Write::write_all(&mut tmp, updated.as_bytes()).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_roundtrip_and_match() {
        let h = TokenHash::of("gw_abc");
        let parsed: TokenHash = h.to_string().parse().unwrap();
        assert_eq!(parsed, h);
        assert!(h.matches("gw_abc"));
        assert!(!h.matches("gw_abd"));
        assert!("sha256:zz".parse::<TokenHash>().is_err());
        assert!("md5:00".parse::<TokenHash>().is_err());
    }

    #[test]
    fn minting_keeps_comments_and_stores_only_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tenants.toml");
        let text = "# institutions\n[[tenant]]\ncode = \"3501200000\" # Taipei\nname = \"A\"\nprofile = \"generic\"\n";
        std::fs::write(&p, text).unwrap();
        let token = mint_token(&p, "3501200000", None).unwrap();
        let after = std::fs::read_to_string(&p).unwrap();
        assert!(after.contains("# institutions") && after.contains("# Taipei"));
        assert!(!after.contains(&token));
        let f = crate::tenants::TenantsFile::read(&p).unwrap();
        assert!(f.tenants[0].token_hashes[0].matches(&token));
        assert!(mint_token(&p, "9999999999", None).is_err());
        let expiring = mint_token(&p, "3501200000", Some(30)).unwrap();
        let f = crate::tenants::TenantsFile::read(&p).unwrap();
        let h = &f.tenants[0].token_hashes[1];
        assert!(h.matches(&expiring) && !h.expired(crate::util::unix_now()));
        assert!(h.expired(crate::util::unix_now() + 31 * 86_400));
        assert!(h.to_string().contains(";expires="), "{h}");
    }
}
