//! age X25519 keys: `AGE-SECRET-KEY-1…` identities and `age1…` recipients (bech32).
//!
//! X25519 comes from `x25519-dalek`, not `ring`: ring only offers ephemeral X25519
//! private keys and cannot import a stored scalar, which an identity is.

use std::fmt;
use std::str::FromStr;

use bech32::{Bech32, Hrp};
use ring::rand::{SecureRandom, SystemRandom};
use x25519_dalek::{PublicKey, StaticSecret};

use super::error::{Result, SealedError};

const RECIPIENT_HRP: &str = "age";
const IDENTITY_HRP: &str = "age-secret-key-";

/// Somebody a file can be sealed to: an X25519 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct Recipient(pub(crate) PublicKey);

/// The secret that opens files sealed to its [`Recipient`].
#[derive(Clone)]
pub struct Identity(pub(crate) StaticSecret);

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| SealedError::Random)?;
    Ok(b)
}

impl Identity {
    pub fn generate() -> Result<Identity> {
        Ok(Identity(StaticSecret::from(random_bytes::<32>()?)))
    }

    pub fn to_public(&self) -> Recipient {
        Recipient(PublicKey::from(&self.0))
    }

    /// The `AGE-SECRET-KEY-1…` form (upper case, as age-keygen writes it).
    pub fn to_secret_string(&self) -> String {
        encode(IDENTITY_HRP, &self.0.to_bytes()).to_ascii_uppercase()
    }

    /// Reads an identity file as age-keygen writes it: `#` comments and one key line.
    pub fn from_file_text(text: &str) -> Result<Identity> {
        let mut keys = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        let first = keys
            .next()
            .ok_or_else(|| SealedError::BadKey("identity file holds no key".into()))?;
        if keys.next().is_some() {
            return Err(SealedError::BadKey(
                "identity file holds more than one key".into(),
            ));
        }
        first.parse()
    }

    /// The identity in age-keygen's file layout.
    pub fn to_file_text(&self, created: &str) -> String {
        format!(
            "# created: {created}\n# public key: {}\n{}\n",
            self.to_public(),
            self.to_secret_string()
        )
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({})", self.to_public())
    }
}

impl FromStr for Identity {
    type Err = SealedError;
    fn from_str(s: &str) -> Result<Identity> {
        let bytes = decode(IDENTITY_HRP, s)?;
        Ok(Identity(StaticSecret::from(bytes)))
    }
}

impl Recipient {
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&encode(RECIPIENT_HRP, self.0.as_bytes()))
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Recipient({self})")
    }
}

impl FromStr for Recipient {
    type Err = SealedError;
    fn from_str(s: &str) -> Result<Recipient> {
        Ok(Recipient(PublicKey::from(decode(RECIPIENT_HRP, s)?)))
    }
}

fn encode(hrp: &str, data: &[u8; 32]) -> String {
    // Both HRPs are valid constants, so neither call can fail.
    let hrp = Hrp::parse(hrp).expect("constant HRP");
    bech32::encode::<Bech32>(hrp, data).expect("32 bytes fit in a bech32 string")
}

fn decode(expected_hrp: &str, s: &str) -> Result<[u8; 32]> {
    let bad = |why: &str| SealedError::BadKey(format!("`{}`: {why}", abbreviate(s)));
    let checked = bech32::primitives::decode::CheckedHrpstring::new::<Bech32>(s.trim())
        .map_err(|e| bad(&e.to_string()))?;
    if !checked.hrp().as_str().eq_ignore_ascii_case(expected_hrp) {
        return Err(bad(&format!("expected the `{expected_hrp}1…` prefix")));
    }
    let data: Vec<u8> = checked.byte_iter().collect();
    data.try_into().map_err(|_| bad("wrong key length"))
}

fn abbreviate(s: &str) -> String {
    let s = s.trim();
    if s.starts_with("AGE-SECRET-KEY-") || s.starts_with("age-secret-key-") {
        return "AGE-SECRET-KEY-1…".into(); // never echo a secret
    }
    if s.len() > 20 {
        format!("{}…", &s[..s.floor_char_boundary(20)])
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_identity_and_recipient() {
        let id = Identity::generate().unwrap();
        let s = id.to_secret_string();
        assert!(s.starts_with("AGE-SECRET-KEY-1"));
        let back: Identity = s.parse().unwrap();
        assert_eq!(back.to_public(), id.to_public());
        let r = id.to_public().to_string();
        assert!(r.starts_with("age1"));
        assert_eq!(r.parse::<Recipient>().unwrap(), id.to_public());
        let file = id.to_file_text("2026-01-01T00:00:00Z");
        assert_eq!(
            Identity::from_file_text(&file).unwrap().to_public(),
            id.to_public()
        );
    }

    #[test]
    fn rejects_wrong_prefix_and_checksum() {
        let id = Identity::generate().unwrap();
        let r = id.to_public().to_string();
        assert!(r.parse::<Identity>().is_err());
        assert!(id.to_secret_string().parse::<Recipient>().is_err());
        let mut broken = r.clone();
        let last = broken.pop().unwrap();
        broken.push(if last == 'q' { 'p' } else { 'q' });
        let e = broken.parse::<Recipient>().unwrap_err();
        assert_eq!(e.code(), "sealed.bad_key");
    }
}
