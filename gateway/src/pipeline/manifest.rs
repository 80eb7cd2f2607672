//! Batch manifests: `<batch>.manifest.json` lists the files of the batch folder
//! `<batch>/` with their plaintext size and SHA-256, so that the check result of the
//! manifest names every file that is missing, altered or extra.
//!
//! ```json
//! { "files": [ { "name": "12A03123345.pdf", "size": 204800, "sha256": "9f2c…",
//!                "record_date": "2026-10-01" } ] }
//! ```
//!
//! `record_date` (optional) is the date of the record a file holds. For the
//! `emr-download` profile it is checked against the request window (rule 3) —
//! the way to date records whose PDF is encrypted with a password the gateway lacks.
//! `request_id` (optional) is the request the file answers (rule 20): validated like
//! any request id, recorded on the file, and the file's window counts from its date.
//!
//! Names are relative to the batch folder (`case-7.manifest.json` describes
//! `case-7/…`). Checks run in arrival order, so the manifest is compared with the files
//! accepted *before* it: send it last, like a DICOMDIR. Files are compared by their
//! current version (a re-upload supersedes the earlier one).

use std::collections::BTreeMap;
use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::backends::catalog::CurrentFile;
use crate::checks::{Check, Severity};
use crate::pipeline::request::{RecordWindow, Request, RequestRules, Source};

pub const SUFFIX: &str = ".manifest.json";
/// Larger manifests are refused rather than read: 4 MiB lists ~30,000 files.
pub const MAX_BYTES: u64 = 4 << 20;

#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub files: Vec<Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
    #[serde(default)]
    pub record_date: Option<String>,
    #[serde(default)]
    pub request_id: Option<String>,
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date.
fn date_days(d: &str) -> Option<i64> {
    let b = d.as_bytes();
    if d.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    crate::pipeline::inspect::pdf::pdf_date_days(&format!("D:{}{}{}", &d[..4], &d[5..7], &d[8..]))
}

/// The request ids a manifest gives its files, validated: (entry name, request) for
/// each valid one, and a finding per invalid one.
pub fn requests(
    m: &Manifest,
    rules: &RequestRules,
    profile: crate::tenants::Profile,
    tenant: &str,
) -> (Vec<(String, Request)>, Vec<Check>) {
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    for e in &m.files {
        let Some(id) = &e.request_id else { continue };
        match rules.validate(profile, tenant, id, Source::Manifest) {
            Ok(r) => ok.push((e.name.clone(), r)),
            Err(mut c) => {
                c.message = format!("{}: {}", e.name, c.message);
                bad.push(c);
            }
        }
    }
    (ok, bad)
}

/// The records of a manifest older than their window allows: `window` gives an
/// entry's (from its request's date, or the upload's).
pub fn window_check(m: &Manifest, window: impl Fn(&Entry) -> RecordWindow) -> Option<Check> {
    let old: Vec<serde_json::Value> = m
        .files
        .iter()
        .filter_map(|e| {
            let days = date_days(e.record_date.as_deref()?)?;
            let w = window(e);
            w.too_old(days).then(|| {
                serde_json::json!({
                    "name": e.name,
                    "record_date": e.record_date,
                    "earliest": crate::pipeline::request::day_string(w.earliest_day),
                    "basis": w.basis,
                })
            })
        })
        .collect();
    (!old.is_empty()).then(|| {
        Check::new(
            "manifest.record_too_old",
            Severity::Error,
            format!(
                "{} record(s) older than the request window allows",
                old.len()
            ),
        )
        .with_detail(serde_json::json!({ "files": old }))
    })
}

/// The folder prefix (`case-7/`) a manifest upload describes, if `name` is a manifest.
pub fn batch_prefix(name: &str) -> Option<String> {
    let stem = name.strip_suffix(SUFFIX)?;
    (!stem.is_empty() && !stem.ends_with('/')).then(|| format!("{stem}/"))
}

fn invalid(why: impl Into<String>) -> Check {
    Check::new("manifest.invalid", Severity::Error, why)
}

/// Reads and validates a manifest; a finding explains what is wrong with it.
pub fn read(plaintext: &mut dyn Read) -> std::io::Result<Result<Manifest, Check>> {
    let mut buf = Vec::new();
    plaintext.take(MAX_BYTES + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > MAX_BYTES {
        return Ok(Err(invalid(format!(
            "the manifest is larger than {MAX_BYTES} bytes"
        ))));
    }
    let m: Manifest = match serde_json::from_slice(&buf) {
        Ok(m) => m,
        Err(e) => return Ok(Err(invalid(format!("not a valid manifest: {e}")))),
    };
    let mut seen = std::collections::HashSet::new();
    for e in &m.files {
        if crate::session::names::check(&e.name).is_err() {
            return Ok(Err(invalid(format!(
                "`{}` is not a valid file name",
                e.name
            ))));
        }
        if e.sha256.len() != 64 || !e.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Err(invalid(format!(
                "the sha256 of `{}` is not 64 hex digits",
                e.name
            ))));
        }
        if let Some(d) = &e.record_date
            && date_days(d).is_none()
        {
            return Ok(Err(invalid(format!(
                "the record_date of `{}` is not a YYYY-MM-DD date",
                e.name
            ))));
        }
        if !seen.insert(e.name.as_str()) {
            return Ok(Err(invalid(format!("`{}` is listed twice", e.name))));
        }
    }
    Ok(Ok(m))
}

/// Compares the manifest with the batch's current files (full names, under `prefix`).
pub fn compare(m: &Manifest, prefix: &str, current: &[CurrentFile]) -> Vec<Check> {
    let have: BTreeMap<&str, &CurrentFile> = current
        .iter()
        .filter_map(|f| Some((f.name.strip_prefix(prefix)?, f)))
        .collect();
    let listed: BTreeMap<&str, &Entry> = m.files.iter().map(|e| (e.name.as_str(), e)).collect();
    let missing: Vec<&str> = listed
        .keys()
        .filter(|n| !have.contains_key(*n))
        .copied()
        .collect();
    let extra: Vec<&str> = have
        .keys()
        .filter(|n| !listed.contains_key(*n))
        .copied()
        .collect();
    let altered: Vec<serde_json::Value> = listed
        .iter()
        .filter_map(|(n, e)| {
            let f = have.get(n)?;
            (f.size != e.size || !f.sha256.eq_ignore_ascii_case(&e.sha256)).then(|| {
                serde_json::json!({
                    "name": n,
                    "expected": { "size": e.size, "sha256": e.sha256.to_ascii_lowercase() },
                    "received": { "size": f.size, "sha256": f.sha256, "file_id": f.file_id },
                })
            })
        })
        .collect();
    let mut checks = Vec::new();
    if !missing.is_empty() {
        checks.push(
            Check::new(
                "manifest.missing",
                Severity::Error,
                format!(
                    "{} listed file(s) not received: {}",
                    missing.len(),
                    list(&missing)
                ),
            )
            .with_detail(serde_json::json!({ "files": missing })),
        );
    }
    if !altered.is_empty() {
        let names: Vec<&str> = altered.iter().filter_map(|a| a["name"].as_str()).collect();
        checks.push(
            Check::new(
                "manifest.altered",
                Severity::Error,
                format!(
                    "{} file(s) differ from the manifest: {}",
                    altered.len(),
                    list(&names)
                ),
            )
            .with_detail(serde_json::json!({ "files": altered })),
        );
    }
    if !extra.is_empty() {
        checks.push(
            Check::new(
                "manifest.extra",
                Severity::Warning,
                format!(
                    "{} file(s) in the batch are not listed: {}",
                    extra.len(),
                    list(&extra)
                ),
            )
            .with_detail(serde_json::json!({ "files": extra })),
        );
    }
    if checks.iter().all(|c| c.severity != Severity::Error) {
        checks.insert(
            0,
            Check::new(
                "manifest.matched",
                Severity::Info,
                format!("all {} listed files received intact", listed.len()),
            ),
        );
    }
    checks
}

/// The first few names, for a message; the detail carries them all.
fn list(names: &[&str]) -> String {
    let mut s = names
        .iter()
        .take(10)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > 10 {
        s.push_str(&format!(" and {} more", names.len() - 10));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(name: &str, size: u64, sha: char) -> CurrentFile {
        CurrentFile {
            file_id: format!("f-{name}"),
            name: name.into(),
            size,
            sha256: sha.to_string().repeat(64),
        }
    }

    fn manifest(json: &str) -> Result<Manifest, Check> {
        read(&mut json.as_bytes()).unwrap()
    }

    #[test]
    fn record_dates_are_checked_against_the_window() {
        let m = manifest(&format!(
            r#"{{"files":[{{"name":"new.pdf","size":1,"sha256":"{a}","record_date":"2026-10-01"}},
                {{"name":"old.pdf","size":1,"sha256":"{a}","record_date":"2025-01-31"}},
                {{"name":"undated.pdf","size":1,"sha256":"{a}"}}]}}"#,
            a = "a".repeat(64)
        ))
        .unwrap();
        let now = 20_780 * 86_400; // 2026-11-23
        let rules = RequestRules::compile(&Default::default()).unwrap();
        let c = window_check(&m, |_| rules.window(None, now)).unwrap();
        assert_eq!(c.code, "manifest.record_too_old");
        assert_eq!(c.detail["files"][0]["name"], "old.pdf");
        assert_eq!(c.detail["files"][0]["earliest"], "2026-05-23");
        // Counted from a request of 2025-03-01 instead, the old record is in.
        let req = rules
            .validate(
                crate::tenants::Profile::EmrDownload,
                "3501200000",
                "35012000002025030100001",
                Source::Manifest,
            )
            .unwrap();
        assert!(window_check(&m, |_| rules.window(Some(&req), now)).is_none());
        let bad = format!(
            r#"{{"files":[{{"name":"a","size":1,"sha256":"{}","record_date":"2026-13-01"}}]}}"#,
            "a".repeat(64)
        );
        assert!(manifest(&bad).unwrap_err().message.contains("record_date"));
    }

    #[test]
    fn request_ids_of_entries_are_validated() {
        let m = manifest(&format!(
            r#"{{"files":[{{"name":"a.pdf","size":1,"sha256":"{a}","request_id":"35012000002026100100001"}},
                {{"name":"b.pdf","size":1,"sha256":"{a}","request_id":"nonsense"}},
                {{"name":"c.pdf","size":1,"sha256":"{a}"}}]}}"#,
            a = "a".repeat(64)
        ))
        .unwrap();
        let rules = RequestRules::compile(&Default::default()).unwrap();
        let (ok, bad) = requests(
            &m,
            &rules,
            crate::tenants::Profile::EmrDownload,
            "3501200000",
        );
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].0, "a.pdf");
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].code, "request.invalid_id");
        assert!(bad[0].message.starts_with("b.pdf"));
    }

    #[test]
    fn batch_prefix_is_the_sibling_folder() {
        assert_eq!(
            batch_prefix("case-7.manifest.json").as_deref(),
            Some("case-7/")
        );
        assert_eq!(batch_prefix("a/b.manifest.json").as_deref(), Some("a/b/"));
        assert_eq!(batch_prefix(".manifest.json"), None);
        assert_eq!(batch_prefix("case-7.json"), None);
    }

    #[test]
    fn bad_manifests_are_named() {
        for (json, why) in [
            ("{", "not a valid manifest"),
            (
                r#"{"files":[{"name":"a.pdf","size":1}]}"#,
                "not a valid manifest",
            ),
            (
                r#"{"files":[{"name":"../a","size":1,"sha256":"aa"}]}"#,
                "not a valid file name",
            ),
            (
                r#"{"files":[{"name":"a","size":1,"sha256":"zz"}]}"#,
                "64 hex digits",
            ),
        ] {
            let c = manifest(json).unwrap_err();
            assert_eq!(c.code, "manifest.invalid");
            assert!(c.message.contains(why), "{json}: {}", c.message);
        }
        let twice = format!(
            r#"{{"files":[{{"name":"a","size":1,"sha256":"{0}"}},{{"name":"a","size":1,"sha256":"{0}"}}]}}"#,
            "a".repeat(64)
        );
        assert!(manifest(&twice).unwrap_err().message.contains("twice"));
    }

    #[test]
    fn missing_altered_and_extra_files_are_each_named() {
        let m = manifest(&format!(
            r#"{{"files":[
                {{"name":"ok.pdf","size":10,"sha256":"{a}"}},
                {{"name":"gone.pdf","size":10,"sha256":"{a}"}},
                {{"name":"changed.pdf","size":10,"sha256":"{a}"}}]}}"#,
            a = "A".repeat(64)
        ))
        .unwrap();
        let current = [
            cur("b/ok.pdf", 10, 'a'),
            cur("b/changed.pdf", 10, 'c'),
            cur("b/surprise.pdf", 3, 'd'),
        ];
        let checks = compare(&m, "b/", &current);
        let codes: Vec<&str> = checks.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(
            codes,
            ["manifest.missing", "manifest.altered", "manifest.extra"]
        );
        assert_eq!(checks[0].detail["files"], serde_json::json!(["gone.pdf"]));
        assert_eq!(checks[1].detail["files"][0]["name"], "changed.pdf");
        assert_eq!(
            checks[2].detail["files"],
            serde_json::json!(["surprise.pdf"])
        );
        assert_eq!(checks[2].severity, Severity::Warning);

        let all_there = compare(
            &m,
            "b/",
            &[
                cur("b/ok.pdf", 10, 'a'),
                cur("b/gone.pdf", 10, 'a'),
                cur("b/changed.pdf", 10, 'a'),
            ],
        );
        assert_eq!(all_there.len(), 1);
        assert_eq!(all_there[0].code, "manifest.matched");
    }
}
