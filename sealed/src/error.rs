//! Every way a sealed file can fail, each with the stable code hospitals see.

/// A failure to open (or seal) an age v1 file. [`SealedError::code`] is stable API:
/// it appears in check results and `docs/sealed-files.md` lists every value.
#[derive(Debug, thiserror::Error)]
pub enum SealedError {
    #[error("not an age v1 file: the first line must be `age-encryption.org/v1`")]
    NotAgeFile,
    #[error("malformed age header: {0}")]
    MalformedHeader(String),
    #[error("age header is larger than the {limit}-byte limit")]
    HeaderTooLarge { limit: usize },
    #[error("age header has {count} recipient stanzas, more than the limit of {limit}")]
    TooManyStanzas { count: usize, limit: usize },
    #[error(
        "the file is sealed with a passphrase (scrypt); seal it to the gateway's age1… recipient instead"
    )]
    PassphraseNotAccepted,
    #[error("unsupported recipient type `{0}`; only X25519 (age1…) recipients are accepted")]
    UnknownStanza(String),
    #[error("the file is also sealed to {others} other recipient(s), which policy refuses")]
    ExtraRecipients { others: usize },
    #[error("the file is not sealed to the gateway's recipient")]
    NotARecipient,
    #[error("the header MAC does not verify: the header was altered")]
    BadHeaderMac,
    #[error("the file ends before its final chunk ({verified} plaintext bytes verified so far)")]
    Truncated { verified: u64 },
    #[error(
        "chunk {index} failed authentication: the file was altered, reordered, or cut short inside this chunk"
    )]
    ChunkAuthFailed { index: u64 },
    #[error("chunk {index} is an empty final chunk, which only an empty file may have")]
    EmptyFinalChunk { index: u64 },
    #[error("data follows the final chunk ({extra} byte(s) at least)")]
    TrailingData { extra: u64 },
    #[error("malformed ASCII armor: {0}")]
    BadArmor(String),
    #[error("invalid key: {0}")]
    BadKey(String),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("the system random number generator failed")]
    Random,
}

impl SealedError {
    /// The stable machine code of this failure.
    pub fn code(&self) -> &'static str {
        match self {
            SealedError::NotAgeFile => "sealed.not_age_file",
            SealedError::BadArmor(_) => "sealed.bad_armor",
            SealedError::MalformedHeader(_) => "sealed.malformed_header",
            SealedError::HeaderTooLarge { .. } => "sealed.header_too_large",
            SealedError::TooManyStanzas { .. } => "sealed.too_many_stanzas",
            SealedError::PassphraseNotAccepted => "sealed.passphrase_not_accepted",
            SealedError::UnknownStanza(_) => "sealed.unknown_stanza",
            SealedError::ExtraRecipients { .. } => "sealed.extra_recipients",
            SealedError::NotARecipient => "sealed.not_a_recipient",
            SealedError::BadHeaderMac => "sealed.bad_header_mac",
            SealedError::Truncated { .. } => "sealed.truncated",
            SealedError::ChunkAuthFailed { .. } => "sealed.chunk_auth_failed",
            SealedError::EmptyFinalChunk { .. } => "sealed.empty_final_chunk",
            SealedError::TrailingData { .. } => "sealed.trailing_data",
            SealedError::BadKey(_) => "sealed.bad_key",
            SealedError::Io(_) => "sealed.io",
            SealedError::Random => "sealed.random",
        }
    }

    /// Every code, for documentation checks.
    pub const ALL_CODES: &'static [&'static str] = &[
        "sealed.not_age_file",
        "sealed.malformed_header",
        "sealed.header_too_large",
        "sealed.too_many_stanzas",
        "sealed.passphrase_not_accepted",
        "sealed.unknown_stanza",
        "sealed.extra_recipients",
        "sealed.not_a_recipient",
        "sealed.bad_header_mac",
        "sealed.truncated",
        "sealed.chunk_auth_failed",
        "sealed.empty_final_chunk",
        "sealed.trailing_data",
        "sealed.bad_key",
        "sealed.io",
        "sealed.random",
    ];
}

pub type Result<T, E = SealedError> = std::result::Result<T, E>;
