//! Docs and codes agree: every stable code the gateway's source can emit is listed in
//! `docs/` (in backticks), and every code the docs list is still in the source. A code
//! is a string literal `family.name` (lowercase, digits, `_`) of a known family; what
//! has that shape without being a code (file names, configuration keys, a subject
//! prefix) is named in [`NOT_CODES`] or found in `config/gateway.toml`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const FAMILIES: &[&str] = &[
    "admin",
    "auth",
    "cab",
    "catalog",
    "check",
    "config",
    "dicom",
    "dicomdir",
    "dicomweb",
    "download",
    "duplicate",
    "file",
    "gateway",
    "http",
    "ingest",
    "inspect",
    "manifest",
    "naming",
    "objects",
    "outbox",
    "pdf",
    "precheck",
    "proxy",
    "push",
    "request",
    "sealed",
    "sftp",
    "ssh",
    "tenants",
    "tus",
    "type",
    "upload",
    "zip",
];

/// Code-shaped literals that are not codes, and why.
const NOT_CODES: &[(&str, &str)] = &[
    ("gateway.events", "the default NATS subject prefix"),
    (
        "ingest.quota",
        "the prefix STOW-RS matches `ingest.quota_bytes` and `_files` by",
    ),
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, ext, out);
        } else if p.extension().is_some_and(|x| x == ext) {
            out.push(p);
        }
    }
}

/// `family.name` tokens in `text` that start right after `open` and end at a character
/// in `close`.
fn tokens(text: &str, open: char, close: &[char]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, _) in text.match_indices(open) {
        let rest = &text[i + 1..];
        let end = rest
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '.'))
            .unwrap_or(rest.len());
        let word = &rest[..end];
        let next = rest[end..].chars().next();
        let Some((family, name)) = word.split_once('.') else {
            continue;
        };
        let file_name = ["rs", "md", "svg", "toml", "json", "py", "sh", "db"].contains(&name);
        if FAMILIES.contains(&family)
            && !file_name
            && !name.is_empty()
            && !name.contains('.')
            && next.is_some_and(|c| close.contains(&c))
        {
            out.push(word.to_string());
        }
    }
    out
}

/// The source of the gateway and its leaf crates, without test modules (a
/// `#[cfg(test)]` module ends its file here) or the catalog contract suites.
fn source_codes() -> BTreeMap<String, String> {
    let mut paths = Vec::new();
    for krate in ["gateway", "sealed", "push"] {
        files(&root().join(krate).join("src"), "rs", &mut paths);
    }
    let mut out = BTreeMap::new();
    for p in paths {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let contract = p.components().any(|c| c.as_os_str() == "contract");
        if name == "tests.rs" || name == "testing.rs" || contract {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        for t in tokens(text, '"', &['"', ':', ' ']) {
            out.entry(t).or_insert_with(|| p.display().to_string());
        }
    }
    out
}

fn doc_codes() -> BTreeSet<String> {
    let mut paths = Vec::new();
    files(&root().join("docs"), "md", &mut paths);
    paths.push(root().join("README.md"));
    let mut out = BTreeSet::new();
    for p in paths {
        let text = std::fs::read_to_string(&p).unwrap();
        out.extend(tokens(&text, '`', &['`']));
    }
    out
}

/// `section.key` of every key documented in `config/gateway.toml`.
fn config_keys() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("config/gateway.toml")).unwrap();
    let mut section = String::new();
    let mut out = BTreeSet::new();
    for line in text.lines() {
        let l = line.trim_start_matches('#').trim();
        if let Some(s) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s.trim_start_matches('[').trim_end_matches(']').to_string();
        } else if let Some((k, _)) = l.split_once('=') {
            let k = k.trim();
            if !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                out.insert(format!("{section}.{k}"));
            }
        }
    }
    out
}

#[test]
fn every_code_the_source_emits_is_documented_and_every_documented_code_exists() {
    let source = source_codes();
    let docs = doc_codes();
    let config = config_keys();
    let not_codes: BTreeSet<&str> = NOT_CODES.iter().map(|(c, _)| *c).collect();
    assert!(
        source.len() > 100,
        "the scan found the codes: {}",
        source.len()
    );
    let undocumented: Vec<String> = source
        .iter()
        .filter(|(c, _)| {
            !docs.contains(*c) && !config.contains(*c) && !not_codes.contains(c.as_str())
        })
        .map(|(c, at)| format!("{c} ({at})"))
        .collect();
    assert!(
        undocumented.is_empty(),
        "codes the source emits that no page in docs/ lists (see docs/codes.md):\n{}",
        undocumented.join("\n")
    );
    let stale: Vec<&String> = docs
        .iter()
        .filter(|c| !source.contains_key(*c) && !config.contains(*c))
        .collect();
    assert!(
        stale.is_empty(),
        "codes the docs list that the source no longer has: {stale:?}"
    );
}
