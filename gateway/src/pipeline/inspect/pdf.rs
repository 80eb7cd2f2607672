//! PDF inspection with `lopdf`: structure, pages, version, `/Info`, outline, the PDF's
//! own encryption, and active content.
//!
//! lopdf parses a document from memory only (`load_from` reads the whole source into a
//! buffer first), so a PDF is inspected only up to `inspect.pdf_max_bytes`; a larger one
//! fails with `pdf.too_large` rather than being held in memory whole. PDFs encrypted with
//! a user password the gateway does not know are still checked for their encryption
//! parameters; their content (pages, outline, scripts) cannot be read and is reported so.

use std::io::Read;

use lopdf::{Dictionary, Document, Object};

use crate::checks::{Check, Severity};

pub use super::pdf_nesting::too_deep_at;

/// What the PDF policy of a profile asks for.
#[derive(Debug, Clone, Copy)]
pub struct PdfPolicy {
    /// A bookmark tree is required (category-A review records, rule 9).
    pub require_outline: bool,
    /// The PDF itself must be encrypted (`emr-download`).
    pub require_encryption: bool,
    /// Deepest nesting of arrays and dictionaries read (`inspect.pdf_max_depth`).
    pub max_depth: u32,
}

impl Default for PdfPolicy {
    fn default() -> Self {
        PdfPolicy {
            require_outline: false,
            require_encryption: false,
            max_depth: crate::config::InspectConfig::default().pdf_max_depth,
        }
    }
}

/// What is indexed about a PDF.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PdfFacts {
    pub version: String,
    pub pages: Option<usize>,
    pub title: Option<String>,
    pub author: Option<String>,
    pub producer: Option<String>,
    pub creation_date: Option<String>,
    pub outline: Vec<OutlineEntry>,
    pub encryption: Option<Encryption>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct OutlineEntry {
    pub title: String,
    pub level: usize,
}

#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct Encryption {
    pub filter: String,
    pub v: i64,
    pub r: i64,
    /// The default stream crypt filter's method (`AESV2`, `AESV3`, `V2` = RC4), V4+.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub method: String,
    /// Whether the gateway could open the content (empty user password).
    pub content_readable: bool,
}

pub fn inspect(
    src: &mut dyn Read,
    len: u64,
    max_bytes: u64,
    policy: PdfPolicy,
) -> std::io::Result<(PdfFacts, Vec<Check>)> {
    let mut facts = PdfFacts::default();
    if len > max_bytes {
        let c = Check::new(
            "pdf.too_large",
            Severity::Error,
            format!("PDFs are inspected up to {max_bytes} bytes; this one has {len}"),
        );
        return Ok((facts, vec![c]));
    }
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    src.read_to_end(&mut buf)?;
    if let Some(at) = too_deep_at(&buf, policy.max_depth) {
        let c = Check::new(
            "pdf.too_deep",
            Severity::Error,
            format!(
                "arrays or dictionaries are nested more than {} levels deep",
                policy.max_depth
            ),
        )
        .with_detail(serde_json::json!({ "offset": at, "max_depth": policy.max_depth }));
        return Ok((facts, vec![c]));
    }
    let doc = match Document::load_mem(&buf) {
        Ok(d) => d,
        Err(e) => {
            let c = Check::new(
                "pdf.invalid",
                Severity::Error,
                format!("the PDF does not parse: {e}"),
            );
            return Ok((facts, vec![c]));
        }
    };
    drop(buf);
    facts.version = doc.version.clone();
    facts.encryption = encryption(&doc);
    let readable = facts.encryption.as_ref().is_none_or(|e| e.content_readable);
    let mut checks = Vec::new();
    checks.extend(encryption_checks(facts.encryption.as_ref(), policy));
    if readable {
        read_content(&doc, &mut facts, &mut checks, policy);
    } else {
        checks.push(Check::new(
            "pdf.content_unreadable",
            Severity::Info,
            "the PDF is encrypted with a user password: pages, outline and scripts were not checked",
        ));
    }
    if checks.iter().all(|c| c.severity != Severity::Error) {
        checks.insert(
            0,
            Check::new(
                "pdf.structure",
                Severity::Info,
                format!(
                    "PDF {}{}",
                    facts.version,
                    facts
                        .pages
                        .map(|p| format!(", {p} page(s)"))
                        .unwrap_or_default()
                ),
            ),
        );
    }
    Ok((facts, checks))
}

fn encryption(doc: &Document) -> Option<Encryption> {
    if let Some(state) = &doc.encryption_state {
        // Opened with the empty user password: lopdf decrypted it and keeps the parameters.
        let method = state
            .crypt_filters()
            .get(state.default_stream_filter())
            .map(|f| String::from_utf8_lossy(f.method()).into_owned())
            .unwrap_or_default();
        return Some(Encryption {
            filter: "Standard".into(),
            v: state.version(),
            r: state.revision(),
            method,
            content_readable: true,
        });
    }
    let dict = doc.get_encrypted().ok()?;
    let int = |k: &[u8]| dict.get(k).and_then(Object::as_i64).unwrap_or(0);
    Some(Encryption {
        filter: name(dict, b"Filter").unwrap_or_default(),
        v: int(b"V"),
        r: int(b"R"),
        method: stream_method(dict).unwrap_or_default(),
        content_readable: false,
    })
}

/// `/CF /<StmF> /CFM` of an encryption dictionary (V4 and later).
fn stream_method(dict: &Dictionary) -> Option<String> {
    let filter = dict.get(b"StmF").and_then(Object::as_name).ok()?;
    let filters = dict.get(b"CF").and_then(Object::as_dict).ok()?;
    let entry = filters.get(filter).and_then(Object::as_dict).ok()?;
    name(entry, b"CFM")
}

fn name(dict: &Dictionary, key: &[u8]) -> Option<String> {
    dict.get(key)
        .and_then(Object::as_name)
        .ok()
        .map(|n| String::from_utf8_lossy(n).into_owned())
}

fn encryption_checks(enc: Option<&Encryption>, policy: PdfPolicy) -> Vec<Check> {
    match enc {
        None if policy.require_encryption => vec![Check::new(
            "pdf.not_encrypted",
            Severity::Error,
            "this profile requires the PDF itself to be encrypted (AES-256)",
        )],
        None => Vec::new(),
        Some(e) => {
            let detail = serde_json::json!({ "filter": e.filter, "v": e.v, "r": e.r });
            if e.filter == "Standard" && e.v == 5 && e.r == 6 {
                vec![
                    Check::new(
                        "pdf.encryption",
                        Severity::Info,
                        "PDF encrypted with AES-256 (V5 R6)",
                    )
                    .with_detail(detail),
                ]
            } else if e.filter == "Standard" && e.v == 4 && e.r == 4 && e.method == "AESV2" {
                // What Acrobat 7–9 and many hospital systems still write: AES, with a
                // 128-bit key. Accepted, but the hospital hears that AES-256 is wanted.
                vec![
                    Check::new(
                        "pdf.aes128",
                        Severity::Warning,
                        "PDF encrypted with AES-128 (V4 R4): accepted; AES-256 (V5 R6) is recommended",
                    )
                    .with_detail(detail),
                ]
            } else {
                vec![Check::new(
                    "pdf.weak_encryption",
                    Severity::Error,
                    format!(
                        "PDF encryption {} V{} R{} {} is not accepted: AES-256 (V5 R6), or AES-128 (V4 R4) with a warning; RC4 and earlier revisions are refused",
                        e.filter, e.v, e.r, e.method
                    ),
                )
                .with_detail(detail)]
            }
        }
    }
}

fn read_content(doc: &Document, facts: &mut PdfFacts, checks: &mut Vec<Check>, policy: PdfPolicy) {
    let pages = doc.get_pages().len();
    facts.pages = Some(pages);
    if pages == 0 {
        checks.push(Check::new(
            "pdf.no_pages",
            Severity::Error,
            "the PDF has no pages",
        ));
    }
    if let Ok(info) = doc
        .trailer
        .get_deref(b"Info", doc)
        .and_then(Object::as_dict)
    {
        let text = |k: &[u8]| {
            info.get_deref(k, doc)
                .ok()
                .and_then(|o| lopdf::decode_text_string(o).ok())
        };
        facts.title = text(b"Title");
        facts.author = text(b"Author");
        facts.producer = text(b"Producer");
        facts.creation_date = text(b"CreationDate");
    }
    if let Ok(toc) = doc.get_toc() {
        facts.outline = toc
            .toc
            .into_iter()
            .map(|t| OutlineEntry {
                title: t.title,
                level: t.level,
            })
            .collect();
    }
    if facts.outline.is_empty() && policy.require_outline {
        checks.push(Check::new(
            "pdf.outline_missing",
            Severity::Error,
            "category-A review records need bookmarks (an outline) in the prescribed order",
        ));
    }
    let active = active_content(doc);
    if !active.is_empty() {
        checks.push(
            Check::new(
                "pdf.active_content",
                Severity::Error,
                format!("the PDF carries active content: {}", active.join(", ")),
            )
            .with_detail(serde_json::json!({ "found": active })),
        );
    }
}

/// Scripts, launch actions, embedded files and automatic actions, anywhere in the file.
fn active_content(doc: &Document) -> Vec<&'static str> {
    let mut found = std::collections::BTreeSet::new();
    for obj in doc.objects.values() {
        let dict = match obj {
            Object::Dictionary(d) => d,
            Object::Stream(s) => &s.dict,
            _ => continue,
        };
        if dict.has(b"JS") || name(dict, b"S").as_deref() == Some("JavaScript") {
            found.insert("/JavaScript");
        }
        if name(dict, b"S").as_deref() == Some("Launch") {
            found.insert("/Launch");
        }
        if dict.has(b"EmbeddedFiles") || name(dict, b"Type").as_deref() == Some("EmbeddedFile") {
            found.insert("/EmbeddedFiles");
        }
        if dict.has(b"OpenAction") || dict.has(b"AA") {
            // An automatic action is only a concern when it runs something: a
            // /GoTo to page 1 is what most viewers' "open at" settings write.
            let runs = [b"OpenAction".as_slice(), b"AA"].iter().any(|k| {
                dict.get_deref(k, doc)
                    .ok()
                    .and_then(|o| o.as_dict().ok())
                    .is_some_and(|a| {
                        a.has(b"JS")
                            || matches!(name(a, b"S").as_deref(), Some("JavaScript" | "Launch"))
                    })
            });
            if runs {
                found.insert("/OpenAction");
            }
        }
    }
    found.into_iter().collect()
}

/// `emr-download`: the record (the PDF's CreationDate) must lie within the request
/// window (rule 3: calendar months before the request date, or the upload's).
/// An encrypted PDF whose date cannot be read gets a warning, not a failure: the
/// gateway is not given the citizens' passwords.
pub fn record_date_check(
    creation_date: Option<&str>,
    window: &crate::pipeline::request::RecordWindow,
) -> Check {
    let Some(raw) = creation_date else {
        return Check::new(
            "pdf.record_date_unknown",
            Severity::Warning,
            "the record date (CreationDate) could not be read; the 6-month window was not checked",
        );
    };
    let Some(days) = pdf_date_days(raw) else {
        return Check::new(
            "pdf.record_date_unknown",
            Severity::Warning,
            format!("the record date `{raw}` is not a PDF date"),
        );
    };
    let dated = crate::pipeline::request::day_string(days);
    if window.too_old(days) {
        Check::new(
            "pdf.record_too_old",
            Severity::Error,
            format!(
                "the record is dated {dated}; this profile takes {}",
                window.describe()
            ),
        )
        .with_detail(serde_json::json!({
            "creation_date": raw,
            "earliest": crate::pipeline::request::day_string(window.earliest_day),
            "basis": window.basis,
        }))
    } else {
        Check::new(
            "pdf.record_date",
            Severity::Info,
            format!(
                "record dated {dated}, within the window ({})",
                window.describe()
            ),
        )
    }
}

/// Days since 1970-01-01 of a PDF date `D:YYYYMMDD…` (the time of day is ignored).
pub(crate) fn pdf_date_days(s: &str) -> Option<i64> {
    let d = s.strip_prefix("D:").unwrap_or(s);
    let num = |r: std::ops::Range<usize>| d.get(r)?.parse::<i64>().ok();
    let (y, m, day) = (num(0..4)?, num(4..6).unwrap_or(1), num(6..8).unwrap_or(1));
    crate::util::days_from_civil(y, m, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_fixtures::pdf::sample;

    #[test]
    fn sample_pdfs_show_their_outline_scripts_and_info() {
        let policy = PdfPolicy {
            require_outline: true,
            ..PdfPolicy::default()
        };
        let plain = sample("BT ET", true, false);
        let (facts, checks) =
            inspect(&mut plain.as_slice(), plain.len() as u64, 1 << 20, policy).unwrap();
        assert_eq!(checks[0].code, "pdf.structure", "{checks:?}");
        assert_eq!(
            (facts.pages, facts.title.as_deref()),
            (Some(1), Some("Test record"))
        );
        assert_eq!(facts.outline[0].title, "Discharge summary");
        let bad = sample("BT ET", false, true);
        let (_, checks) = inspect(&mut bad.as_slice(), bad.len() as u64, 1 << 20, policy).unwrap();
        let codes: Vec<&str> = checks.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(codes, ["pdf.outline_missing", "pdf.active_content"]);
        let (_, checks) = inspect(&mut bad.as_slice(), bad.len() as u64, 100, policy).unwrap();
        assert_eq!(checks[0].code, "pdf.too_large");
    }

    #[test]
    fn pdf_dates_count_days_since_the_epoch() {
        assert_eq!(pdf_date_days("D:19700101000000Z"), Some(0));
        assert_eq!(pdf_date_days("D:20261123"), Some(20_780));
        assert_eq!(pdf_date_days("D:20000229"), Some(11_016));
        assert_eq!(pdf_date_days("garbage"), None);
        let rules = crate::pipeline::request::RequestRules::compile(&Default::default()).unwrap();
        let window = rules.window(None, 20_780 * 86_400);
        assert_eq!(
            record_date_check(Some("D:20261001"), &window).code,
            "pdf.record_date"
        );
        assert_eq!(
            record_date_check(Some("D:20250101"), &window).code,
            "pdf.record_too_old"
        );
        assert_eq!(
            record_date_check(None, &window).code,
            "pdf.record_date_unknown"
        );
    }
}
