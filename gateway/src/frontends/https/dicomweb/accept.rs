//! Content negotiation for WADO-RS (PS3.18 §8.7): what an `Accept` header allows, so
//! that a request for something the gateway cannot produce — another transfer syntax
//! (it never transcodes), XML metadata — is answered 406 instead of a default body.
//!
//! Hand-written rather than with a crate: the DICOM parameters (`type`,
//! `transfer-syntax`) are what matters here, and the grammar is one split per comma and
//! semicolon; the `mime` crate would still leave the DICOM rules to us.

use axum::http::{HeaderMap, header};

/// One media range: its type (lower case) and parameters (names lower case, values
/// unquoted).
#[derive(Debug)]
struct Range {
    kind: String,
    params: Vec<(String, String)>,
}

impl Range {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `q=0` means "not this".
    fn refused(&self) -> bool {
        self.param("q")
            .and_then(|q| q.parse::<f32>().ok())
            .is_some_and(|q| q <= 0.0)
    }
}

/// The media ranges of `Accept`; none (or an empty header) means anything.
fn ranges(headers: &HeaderMap) -> Vec<Range> {
    let all: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let mut out = Vec::new();
    for value in all {
        for part in split_unquoted(value, ',') {
            let mut pieces = split_unquoted(part, ';').into_iter();
            let kind = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            if kind.is_empty() {
                continue;
            }
            let params = pieces
                .filter_map(|p| {
                    let (n, v) = p.split_once('=')?;
                    Some((
                        n.trim().to_ascii_lowercase(),
                        v.trim().trim_matches('"').to_string(),
                    ))
                })
                .collect();
            out.push(Range { kind, params });
        }
    }
    if out.is_empty() {
        out.push(Range {
            kind: "*/*".into(),
            params: Vec::new(),
        });
    }
    out
}

/// Splits at `sep` outside double quotes (a `type="a,b"` stays whole).
fn split_unquoted(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            out.push(&s[start..i]);
            start = i + 1;
        }
    }
    out.push(&s[start..]);
    out
}

/// Which stored transfer syntaxes an instance retrieval may send.
#[derive(Debug, PartialEq)]
pub enum Syntaxes {
    /// Any: the instance as stored.
    Any,
    /// Only these (the gateway sends bytes as stored, so an instance stored in another
    /// syntax cannot be sent).
    Only(Vec<String>),
}

impl Syntaxes {
    pub fn allows(&self, ts: &str) -> bool {
        match self {
            Syntaxes::Any => true,
            Syntaxes::Only(list) => list.iter().any(|t| t == ts),
        }
    }
}

/// What instance retrieval (`multipart/related; type="application/dicom"`) may send,
/// or `None` if the header allows nothing the gateway produces. A range without a
/// `transfer-syntax` takes the instance as stored (PS3.18 would have Explicit VR Little
/// Endian; the gateway does not transcode, docs/dicomweb.md says so).
pub fn instances(headers: &HeaderMap) -> Option<Syntaxes> {
    let mut only = Vec::new();
    for r in ranges(headers).iter().filter(|r| !r.refused()) {
        let dicom_parts = match r.kind.as_str() {
            "*/*" | "multipart/*" => true,
            "multipart/related" => r
                .param("type")
                .is_none_or(|t| matches!(t, "application/dicom" | "application/*" | "*/*")),
            _ => false,
        };
        if !dicom_parts {
            continue;
        }
        match r.param("transfer-syntax") {
            None | Some("*") => return Some(Syntaxes::Any),
            Some(ts) => only.push(ts.to_string()),
        }
    }
    (!only.is_empty()).then_some(Syntaxes::Only(only))
}

/// Whether metadata may be answered (DICOM JSON only: no `application/dicom+xml`).
pub fn metadata(headers: &HeaderMap) -> bool {
    ranges(headers).iter().filter(|r| !r.refused()).any(|r| {
        matches!(
            r.kind.as_str(),
            "*/*" | "application/*" | "application/dicom+json" | "application/json"
        )
    })
}

/// Whether bulk data may be answered (`application/octet-stream` parts).
pub fn bulk(headers: &HeaderMap) -> bool {
    ranges(headers)
        .iter()
        .filter(|r| !r.refused())
        .any(|r| match r.kind.as_str() {
            "*/*" | "multipart/*" | "application/octet-stream" => true,
            "multipart/related" => r
                .param("type")
                .is_none_or(|t| matches!(t, "application/octet-stream" | "*/*")),
            _ => false,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, v.parse().unwrap());
        h
    }

    #[test]
    fn instance_retrieval_takes_dicom_parts_as_stored_or_in_a_named_syntax() {
        assert_eq!(instances(&HeaderMap::new()), Some(Syntaxes::Any));
        assert_eq!(instances(&accept("*/*")), Some(Syntaxes::Any));
        assert_eq!(
            instances(&accept(r#"multipart/related; type="application/dicom""#)),
            Some(Syntaxes::Any)
        );
        assert_eq!(
            instances(&accept(
                r#"multipart/related; type="application/dicom"; transfer-syntax=*"#
            )),
            Some(Syntaxes::Any)
        );
        let jpeg = r#"multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50"#;
        let only = instances(&accept(jpeg)).unwrap();
        assert!(only.allows("1.2.840.10008.1.2.4.50"));
        assert!(!only.allows("1.2.840.10008.1.2.1"));
        assert_eq!(instances(&accept("application/dicom+xml")), None);
        assert_eq!(
            instances(&accept(
                r#"multipart/related; type="application/octet-stream""#
            )),
            None
        );
        assert_eq!(instances(&accept("*/*; q=0")), None);
        // A later range may widen an earlier one.
        assert_eq!(
            instances(&accept(&format!("{jpeg}, */*;q=0.1"))),
            Some(Syntaxes::Any)
        );
    }

    #[test]
    fn metadata_is_dicom_json_only() {
        assert!(metadata(&HeaderMap::new()));
        assert!(metadata(&accept("application/dicom+json")));
        assert!(metadata(&accept("application/json, text/plain")));
        assert!(!metadata(&accept("application/dicom+xml")));
        assert!(!metadata(&accept(
            r#"multipart/related; type="application/dicom+xml""#
        )));
    }
}
