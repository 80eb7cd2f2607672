//! The age v1 header: parsing (incrementally, as bytes arrive), policy checks,
//! unwrapping the file key with our identity, MAC verification, and writing.
//!
//! ```text
//! age-encryption.org/v1
//! -> X25519 <base64 ephemeral share>
//! <base64 wrapped file key, lines of 64 columns, the last one shorter>
//! --- <base64 HMAC-SHA-256 of everything above, up to and including "---">
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use x25519_dalek::{PublicKey, StaticSecret};

use super::error::{Result, SealedError};
use super::keys::{Identity, Recipient, random_bytes};
use super::primitives::{FileKey, chacha_open, chacha_seal, hkdf, hmac_sha256, hmac_verify};

const VERSION_LINE: &[u8] = b"age-encryption.org/v1\n";
const X25519_INFO: &[u8] = b"age-encryption.org/v1/X25519";
const COLUMNS: usize = 64;

/// Limits applied before any cryptography, so a hostile header costs little.
#[derive(Debug, Clone)]
pub struct HeaderPolicy {
    pub max_header_bytes: usize,
    pub max_stanzas: usize,
    /// Accept files also sealed to other X25519 recipients (e.g. the hospital's own
    /// archive key). Off by default: a file for the gateway names only the gateway.
    pub allow_other_recipients: bool,
}

impl Default for HeaderPolicy {
    fn default() -> Self {
        HeaderPolicy {
            max_header_bytes: 16 * 1024,
            max_stanzas: 16,
            allow_other_recipients: false,
        }
    }
}

#[derive(Debug)]
struct Stanza {
    kind: String,
    args: Vec<String>,
    body: Vec<u8>,
}

/// A parsed, not yet verified header.
#[derive(Debug)]
pub struct Header {
    stanzas: Vec<Stanza>,
    /// Bytes covered by the MAC: from the version line through `---`.
    mac_input_len: usize,
    mac: [u8; 32],
    /// Total header length including the MAC line's newline.
    pub len: usize,
}

fn malformed(why: impl Into<String>) -> SealedError {
    SealedError::MalformedHeader(why.into())
}

/// Parses a header from the start of `buf`. `Ok(None)` means more bytes are needed.
pub fn parse(buf: &[u8], policy: &HeaderPolicy) -> Result<Option<Header>> {
    let n = buf.len().min(VERSION_LINE.len());
    if buf[..n] != VERSION_LINE[..n] {
        return Err(SealedError::NotAgeFile);
    }
    if n < VERSION_LINE.len() {
        return Ok(None);
    }
    let mut pos = VERSION_LINE.len();
    let mut stanzas = Vec::new();
    loop {
        let Some(line) = next_line(buf, pos, policy)? else {
            return Ok(None);
        };
        let text = std::str::from_utf8(line).map_err(|_| malformed("non-ASCII header line"))?;
        if let Some(rest) = text.strip_prefix("--- ") {
            let mac = decode_b64(rest)?;
            let mac: [u8; 32] = mac
                .try_into()
                .map_err(|_| malformed("header MAC must be 32 bytes"))?;
            let len = pos + line.len() + 1;
            return Ok(Some(Header {
                stanzas,
                mac_input_len: pos + 3,
                mac,
                len,
            }));
        }
        let rest = text
            .strip_prefix("-> ")
            .ok_or_else(|| malformed("expected a `-> ` stanza or the `--- ` MAC line"))?;
        let mut args = rest.split(' ').map(str::to_owned);
        let kind = args.next().unwrap_or_default();
        let args: Vec<String> = args.collect();
        if kind.is_empty() || args.iter().any(|a| a.is_empty()) || !is_vchar(rest) {
            return Err(malformed("empty or invalid stanza argument"));
        }
        pos += line.len() + 1;
        let Some((body, body_len)) = parse_body(buf, pos, policy)? else {
            return Ok(None);
        };
        pos += body_len;
        stanzas.push(Stanza { kind, args, body });
        if stanzas.len() > policy.max_stanzas {
            return Err(SealedError::TooManyStanzas {
                count: stanzas.len(),
                limit: policy.max_stanzas,
            });
        }
    }
}

fn is_vchar(s: &str) -> bool {
    s.bytes().all(|b| b == b' ' || (0x21..=0x7e).contains(&b))
}

/// The line starting at `pos`, without its `\n`; `None` if it has not fully arrived.
fn next_line<'a>(buf: &'a [u8], pos: usize, policy: &HeaderPolicy) -> Result<Option<&'a [u8]>> {
    let limit = policy.max_header_bytes;
    let window = &buf[pos.min(buf.len())..buf.len().min(limit)];
    match window.iter().position(|&b| b == b'\n') {
        Some(i) => Ok(Some(&window[..i])),
        None if buf.len() >= limit => Err(SealedError::HeaderTooLarge { limit }),
        None => Ok(None),
    }
}

/// A stanza body: full 64-column lines, then one shorter (possibly empty) line.
fn parse_body(buf: &[u8], start: usize, policy: &HeaderPolicy) -> Result<Option<(Vec<u8>, usize)>> {
    let mut pos = start;
    let mut encoded = String::new();
    loop {
        let Some(line) = next_line(buf, pos, policy)? else {
            return Ok(None);
        };
        if line.len() > COLUMNS {
            return Err(malformed("stanza body line longer than 64 columns"));
        }
        let text = std::str::from_utf8(line).map_err(|_| malformed("non-ASCII stanza body"))?;
        encoded.push_str(text);
        pos += line.len() + 1;
        if line.len() < COLUMNS {
            return Ok(Some((decode_b64(&encoded)?, pos - start)));
        }
    }
}

fn decode_b64(s: &str) -> Result<Vec<u8>> {
    // STANDARD_NO_PAD refuses padding and non-canonical trailing bits, as age requires.
    B64.decode(s).map_err(|_| malformed("invalid base64"))
}

impl Header {
    /// Applies the policy, finds our stanza, unwraps the file key and checks the MAC.
    pub fn unwrap_key(
        &self,
        buf: &[u8],
        identity: &Identity,
        policy: &HeaderPolicy,
    ) -> Result<FileKey> {
        let mut x25519 = 0usize;
        for s in &self.stanzas {
            match s.kind.as_str() {
                "X25519" => x25519 += 1,
                "scrypt" => return Err(SealedError::PassphraseNotAccepted),
                // Random "-grease" stanzas keep parsers honest (rage/pyrage add one);
                // the age spec says to ignore stanzas one does not recognise.
                k if k.ends_with("-grease") => {}
                other => return Err(SealedError::UnknownStanza(other.to_owned())),
            }
        }
        let ours = identity.to_public();
        let file_key = self
            .stanzas
            .iter()
            .filter(|s| s.kind == "X25519")
            .find_map(|s| unwrap_x25519(s, identity, &ours).transpose())
            .transpose()?
            .ok_or(SealedError::NotARecipient)?;
        if x25519 > 1 && !policy.allow_other_recipients {
            return Err(SealedError::ExtraRecipients { others: x25519 - 1 });
        }
        let mac_key = hkdf::<32>(&[], &file_key.0, b"header");
        if !hmac_verify(&mac_key, &buf[..self.mac_input_len], &self.mac) {
            return Err(SealedError::BadHeaderMac);
        }
        Ok(file_key)
    }
}

/// `Ok(None)` when the stanza is for somebody else.
fn unwrap_x25519(s: &Stanza, identity: &Identity, ours: &Recipient) -> Result<Option<FileKey>> {
    if s.args.len() != 1 {
        return Err(malformed("X25519 stanza needs exactly one argument"));
    }
    let share: [u8; 32] = decode_b64(&s.args[0])?
        .try_into()
        .map_err(|_| malformed("X25519 share must be 32 bytes"))?;
    if s.body.len() != 32 {
        return Err(malformed("X25519 stanza body must be 32 bytes"));
    }
    let shared = identity.0.diffie_hellman(&PublicKey::from(share));
    if !shared.was_contributory() {
        return Err(malformed("X25519 share is a low-order point"));
    }
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(&share);
    salt[32..].copy_from_slice(ours.as_bytes());
    let wrap_key = hkdf::<32>(&salt, shared.as_bytes(), X25519_INFO);
    let mut body = s.body.clone();
    match chacha_open(&wrap_key, &[0u8; 12], &mut body) {
        Some(key) => Ok(Some(FileKey(
            key.try_into().map_err(|_| malformed("bad file key"))?,
        ))),
        None => Ok(None),
    }
}

/// Writes a header sealing `file_key` to every recipient.
pub fn write(file_key: &FileKey, recipients: &[Recipient]) -> Result<Vec<u8>> {
    write_with(file_key, recipients, &mut |_| random_bytes::<32>())
}

/// [`write`] with the ephemeral X25519 secret for recipient `i` from `ephemeral(i)`:
/// deterministic sealing (see `source.rs`) passes derived secrets.
pub(crate) fn write_with(
    file_key: &FileKey,
    recipients: &[Recipient],
    ephemeral: &mut dyn FnMut(usize) -> Result<[u8; 32]>,
) -> Result<Vec<u8>> {
    let mut out = VERSION_LINE.to_vec();
    for (i, r) in recipients.iter().enumerate() {
        let ephemeral = StaticSecret::from(ephemeral(i)?);
        let share = PublicKey::from(&ephemeral);
        let shared = ephemeral.diffie_hellman(&r.0);
        let mut salt = [0u8; 64];
        salt[..32].copy_from_slice(share.as_bytes());
        salt[32..].copy_from_slice(r.as_bytes());
        let wrap_key = hkdf::<32>(&salt, shared.as_bytes(), X25519_INFO);
        let body = chacha_seal(&wrap_key, &[0u8; 12], &file_key.0);
        out.extend_from_slice(format!("-> X25519 {}\n", B64.encode(share.as_bytes())).as_bytes());
        write_body(&mut out, &body);
    }
    out.extend_from_slice(b"---");
    let mac_key = hkdf::<32>(&[], &file_key.0, b"header");
    let mac = hmac_sha256(&mac_key, &out);
    out.extend_from_slice(format!(" {}\n", B64.encode(mac)).as_bytes());
    Ok(out)
}

fn write_body(out: &mut Vec<u8>, body: &[u8]) {
    let encoded = B64.encode(body);
    let mut lines = encoded.as_bytes().chunks(COLUMNS).peekable();
    let mut last_len = 0;
    while let Some(line) = lines.next() {
        out.extend_from_slice(line);
        out.push(b'\n');
        last_len = line.len();
        if lines.peek().is_none() {
            break;
        }
    }
    // A body ends with a line shorter than 64 columns, empty if need be.
    if encoded.is_empty() || last_len == COLUMNS {
        out.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed_header(recipients: &[Recipient]) -> (Vec<u8>, FileKey) {
        let key = FileKey(random_bytes::<16>().unwrap());
        (write(&key, recipients).unwrap(), key)
    }

    #[test]
    fn roundtrip_and_incremental() {
        let id = Identity::generate().unwrap();
        let (h, key) = sealed_header(&[id.to_public()]);
        let p = HeaderPolicy::default();
        for cut in 0..h.len() {
            assert!(parse(&h[..cut], &p).unwrap().is_none(), "cut {cut}");
        }
        let parsed = parse(&h, &p).unwrap().unwrap();
        assert_eq!(parsed.len, h.len());
        assert_eq!(parsed.unwrap_key(&h, &id, &p).unwrap().0, key.0);
    }

    #[test]
    fn policy_errors() {
        let id = Identity::generate().unwrap();
        let other = Identity::generate().unwrap();
        let p = HeaderPolicy::default();
        let (h, _) = sealed_header(&[other.to_public()]);
        let e = parse(&h, &p)
            .unwrap()
            .unwrap()
            .unwrap_key(&h, &id, &p)
            .unwrap_err();
        assert_eq!(e.code(), "sealed.not_a_recipient");

        let (h, _) = sealed_header(&[other.to_public(), id.to_public()]);
        let e = parse(&h, &p)
            .unwrap()
            .unwrap()
            .unwrap_key(&h, &id, &p)
            .unwrap_err();
        assert_eq!(e.code(), "sealed.extra_recipients");
        let lenient = HeaderPolicy {
            allow_other_recipients: true,
            ..p.clone()
        };
        assert!(
            parse(&h, &lenient)
                .unwrap()
                .unwrap()
                .unwrap_key(&h, &id, &lenient)
                .is_ok()
        );

        let scrypt = b"age-encryption.org/v1\n-> scrypt c2FsdHNhbHRzYWx0c2FsdA 18\nAAAA\n--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";
        let e = parse(scrypt, &p)
            .unwrap()
            .unwrap()
            .unwrap_key(scrypt, &id, &p)
            .unwrap_err();
        assert_eq!(e.code(), "sealed.passphrase_not_accepted");

        let piv = b"age-encryption.org/v1\n-> piv-p256 abc\nAAAA\n--- AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n";
        let e = parse(piv, &p)
            .unwrap()
            .unwrap()
            .unwrap_key(piv, &id, &p)
            .unwrap_err();
        assert_eq!(e.code(), "sealed.unknown_stanza");
    }

    #[test]
    fn limits_and_garbage() {
        let p = HeaderPolicy {
            max_header_bytes: 200,
            max_stanzas: 2,
            ..Default::default()
        };
        assert_eq!(
            parse(b"%PDF-1.7\n", &p).unwrap_err().code(),
            "sealed.not_age_file"
        );
        let mut long = VERSION_LINE.to_vec();
        long.extend(std::iter::repeat_n(b'a', 300));
        assert_eq!(
            parse(&long, &p).unwrap_err().code(),
            "sealed.header_too_large"
        );
        let ids: Vec<_> = (0..3)
            .map(|_| Identity::generate().unwrap().to_public())
            .collect();
        let (h, _) = sealed_header(&ids);
        let wide = HeaderPolicy {
            max_header_bytes: 4096,
            ..p
        };
        assert_eq!(
            parse(&h, &wide).unwrap_err().code(),
            "sealed.too_many_stanzas"
        );
        let bad = b"age-encryption.org/v1\nhello\n";
        assert_eq!(
            parse(bad, &wide).unwrap_err().code(),
            "sealed.malformed_header"
        );
    }

    #[test]
    fn any_flipped_header_bit_is_refused() {
        let id = Identity::generate().unwrap();
        let (h, _) = sealed_header(&[id.to_public()]);
        let p = HeaderPolicy::default();
        for i in 0..h.len() {
            for bit in 0..8 {
                let mut m = h.clone();
                m[i] ^= 1 << bit;
                let ok = parse(&m, &p)
                    .and_then(|o| o.ok_or(SealedError::Truncated { verified: 0 }))
                    .and_then(|hd| hd.unwrap_key(&m, &id, &p));
                assert!(ok.is_err(), "byte {i} bit {bit} accepted");
            }
        }
    }
}
