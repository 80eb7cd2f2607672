//! API tokens: minted once, shown once, stored only as a SHA-256 hash.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use base64::Engine;
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};

use super::file::TenantsError;

/// `sha256:<64 hex digits>` of a token. Tokens are 256-bit random, so a plain hash is
/// enough (no password stretching needed: nothing to brute-force).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> TokenHash {
        let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        let mut h = [0u8; 32];
        h.copy_from_slice(d.as_ref());
        TokenHash(h)
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
        write!(f, "sha256:{}", hex::encode(self.0))
    }
}

impl FromStr for TokenHash {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hexpart = s
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("token hash `{s}` must start with `sha256:`"))?;
        let mut h = [0u8; 32];
        hex::decode_to_slice(hexpart, &mut h)
            .map_err(|_| format!("token hash `{s}` must be sha256: and 64 hex digits"))?;
        Ok(TokenHash(h))
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
pub fn mint_token(path: &Path, code: &str) -> Result<String, TenantsError> {
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

    let mut raw = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| invalid("system random source failed".into()))?;
    let token = format!(
        "gw_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let hash = TokenHash::of(&token).to_string();

    let hashes = tenant
        .entry("token_hashes")
        .or_insert(toml_edit::value(toml_edit::Array::new()));
    let array = hashes
        .as_array_mut()
        .ok_or_else(|| invalid(format!("tenant `{code}`: token_hashes is not an array")))?;
    array.push(hash);

    let updated = doc.to_string();
    // Validate before replacing, then replace atomically.
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
    Ok(token)
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
        let token = mint_token(&p, "3501200000").unwrap();
        let after = std::fs::read_to_string(&p).unwrap();
        assert!(after.contains("# institutions") && after.contains("# Taipei"));
        assert!(!after.contains(&token));
        let f = crate::tenants::TenantsFile::read(&p).unwrap();
        assert!(f.tenants[0].token_hashes[0].matches(&token));
        assert!(mint_token(&p, "9999999999").is_err());
    }
}
