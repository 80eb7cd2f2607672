//! tus's `Upload-Metadata` (the file name, the upload's intent) and `Upload-Checksum`
//! headers, parsed.

use axum::http::{HeaderMap, StatusCode};
use base64::Engine;

use crate::frontends::https::{Https, Problem};

use super::header;

/// Parses `Upload-Metadata` (`key base64,key base64`); returns the file name.
pub(super) fn file_name(headers: &HeaderMap) -> Result<String, Problem> {
    let meta = header(headers, "upload-metadata").unwrap_or("");
    metadata_file_name(meta)
        .map_err(|detail| Problem::new(StatusCode::BAD_REQUEST, "tus.bad_metadata", detail))
}

/// The file name an `Upload-Metadata` value carries, or why it carries none.
pub fn metadata_file_name(meta: &str) -> Result<String, &'static str> {
    for key in ["filename", "name"] {
        if let Some(v) = metadata_value(meta, key)? {
            return Ok(v);
        }
    }
    Err("Upload-Metadata must carry the file name as `filename` (or `name`)")
}

/// The value of `key` in an `Upload-Metadata` value: `None` if absent, `Some("")` for
/// a key given without a value (tus allows that), or why the value is unreadable.
pub fn metadata_value(meta: &str, key: &str) -> Result<Option<String>, &'static str> {
    for pair in meta.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, value) = pair.split_once(' ').unwrap_or((pair, ""));
        if k == key {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(value.trim())
                .map_err(|_| "Upload-Metadata values must be base64")?;
            return String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| "Upload-Metadata values must be UTF-8 (and names ASCII)");
        }
    }
    Ok(None)
}

/// What `Upload-Metadata` asks besides the name: a pre-check (key `precheck`, any
/// value or none; rule 21) and the request the upload answers (`request_id`,
/// rule 20), validated for the tenant's profile before anything is created.
pub(super) fn upload_intent(
    s: &Https,
    tenant: &str,
    headers: &HeaderMap,
) -> Result<(bool, Option<String>), Problem> {
    let meta = header(headers, "upload-metadata").unwrap_or("");
    let bad = |detail| Problem::new(StatusCode::BAD_REQUEST, "tus.bad_metadata", detail);
    let precheck = metadata_value(meta, "precheck").map_err(bad)?.is_some();
    let Some(id) = metadata_value(meta, "request_id").map_err(bad)? else {
        return Ok((precheck, None));
    };
    let profile = s
        .app
        .ingest
        .tenants()
        .snapshot()
        .tenant(tenant)
        .map(|t| t.profile)
        .unwrap_or(crate::tenants::Profile::Generic);
    let rules = &s.app.ingest.settings().requests;
    rules
        .validate(
            profile,
            tenant,
            &id,
            crate::pipeline::request::Source::Upload,
        )
        .map(|r| (precheck, Some(r.id)))
        .map_err(|c| Problem::new(StatusCode::BAD_REQUEST, &c.code, &c.message))
}

/// The algorithm and expected digest of an `Upload-Checksum` value, or its refusal
/// (code, detail).
pub fn checksum_spec(
    spec: &str,
) -> Result<(&'static ring::digest::Algorithm, Vec<u8>), (&'static str, &'static str)> {
    let (algo, expected) = spec.split_once(' ').ok_or((
        "tus.bad_checksum",
        "Upload-Checksum is `<algorithm> <base64>`",
    ))?;
    let algorithm = match algo {
        "sha256" => &ring::digest::SHA256,
        "sha1" => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        _ => return Err(("tus.checksum_algorithm", "supported: sha256, sha1")),
    };
    let expected = base64::engine::general_purpose::STANDARD
        .decode(expected.trim())
        .map_err(|_| ("tus.bad_checksum", "the checksum must be base64"))?;
    Ok((algorithm, expected))
}
