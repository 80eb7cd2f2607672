//! Thin wrappers over `ring` for the handful of primitives age uses.

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};
use ring::{hkdf as rhkdf, hmac};

/// Plaintext bytes per STREAM chunk.
pub const CHUNK: usize = 64 * 1024;
/// Poly1305 tag bytes per chunk.
pub const TAG: usize = 16;
/// Ciphertext bytes of a full chunk.
pub const SEALED_CHUNK: usize = CHUNK + TAG;
/// The random nonce between header and payload.
pub const PAYLOAD_NONCE: usize = 16;

/// The 128-bit key every stanza wraps.
pub struct FileKey(pub [u8; 16]);

impl std::fmt::Debug for FileKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FileKey(<secret>)")
    }
}

struct Len(usize);
impl rhkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA-256 with a single `info` string.
pub fn hkdf<const N: usize>(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let info = [info];
    // expand/fill only fail for outputs longer than 255 hash lengths; N ≤ 32 here.
    rhkdf::Salt::new(rhkdf::HKDF_SHA256, salt)
        .extract(ikm)
        .expand(&info, Len(N))
        .and_then(|okm| okm.fill(&mut out))
        .expect("HKDF output of at most 32 bytes");
    out
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

pub fn hmac_verify(key: &[u8], data: &[u8], mac: &[u8]) -> bool {
    hmac::verify(&hmac::Key::new(hmac::HMAC_SHA256, key), data, mac).is_ok()
}

fn aead_key(key: &[u8; 32]) -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, key).expect("32-byte ChaCha20 key"))
}

/// Opens `ct ‖ tag` in place; returns the plaintext slice, or `None` if it does not verify.
pub fn chacha_open<'a>(
    key: &[u8; 32],
    nonce: &[u8; 12],
    buf: &'a mut [u8],
) -> Option<&'a mut [u8]> {
    aead_key(key)
        .open_in_place(Nonce::assume_unique_for_key(*nonce), Aad::empty(), buf)
        .ok()
}

pub fn chacha_seal(key: &[u8; 32], nonce: &[u8; 12], plaintext: &[u8]) -> Vec<u8> {
    let mut buf = plaintext.to_vec();
    aead_key(key)
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(*nonce), Aad::empty(), &mut buf)
        .expect("plaintext within ChaCha20-Poly1305 limits");
    buf
}

/// The STREAM key of a payload, with the per-chunk nonce rule.
pub struct PayloadKey(LessSafeKey);

impl PayloadKey {
    pub fn derive(file_key: &FileKey, nonce: &[u8; PAYLOAD_NONCE]) -> PayloadKey {
        PayloadKey::from_bytes(&Self::derive_bytes(file_key, nonce))
    }

    /// The raw key, for handing one file's payload key to an inspector worker (which
    /// never sees the gateway's identity).
    pub fn derive_bytes(file_key: &FileKey, nonce: &[u8; PAYLOAD_NONCE]) -> [u8; 32] {
        hkdf::<32>(nonce, &file_key.0, b"payload")
    }

    pub fn from_bytes(key: &[u8; 32]) -> PayloadKey {
        PayloadKey(aead_key(key))
    }

    fn nonce(index: u64, last: bool) -> Nonce {
        // 11-byte big-endian counter ‖ final flag; a u64 counter fills the low 8 bytes.
        let mut n = [0u8; 12];
        n[3..11].copy_from_slice(&index.to_be_bytes());
        n[11] = u8::from(last);
        Nonce::assume_unique_for_key(n)
    }

    /// Decrypts chunk `index` in place. `buf` holds ciphertext and tag; on success its
    /// first `len - TAG` bytes are plaintext. On failure `buf` holds garbage.
    pub fn open(&self, index: u64, last: bool, buf: &mut [u8]) -> bool {
        self.0
            .open_in_place(Self::nonce(index, last), Aad::empty(), buf)
            .is_ok()
    }

    /// Decrypts `ct` (without tag) in place, verifying against `tag`.
    pub fn open_separate(&self, index: u64, last: bool, ct: &mut [u8], tag: &[u8; TAG]) -> bool {
        self.0
            .open_in_place_separate_tag(
                Self::nonce(index, last),
                Aad::empty(),
                Tag::from(*tag),
                ct,
                0..,
            )
            .is_ok()
    }

    /// Authenticates a chunk without keeping the plaintext (diagnostics only).
    pub fn verifies(&self, index: u64, last: bool, chunk: &[u8]) -> bool {
        let mut scratch = chunk.to_vec();
        self.open(index, last, &mut scratch)
    }

    /// Encrypts `buf[..len - TAG]` in place and writes the tag into the last TAG bytes.
    pub fn seal(&self, index: u64, last: bool, buf: &mut [u8]) {
        let (pt, tag_out) = buf.split_at_mut(buf.len() - TAG);
        let tag = self
            .0
            .seal_in_place_separate_tag(Self::nonce(index, last), Aad::empty(), pt)
            .expect("chunk within ChaCha20-Poly1305 limits");
        tag_out.copy_from_slice(tag.as_ref());
    }
}
