//! ZIP batches (rule 8): the archive's central directory is checked before any
//! byte is expanded — entry count, declared sizes and compression ratios, unsafe paths,
//! links, encrypted entries, names that collide when case is ignored — so a zip bomb is
//! refused from its directory, not after filling a disk. Entries are then expanded one
//! at a time as a stream (nothing is written out) with the declared-size limits
//! enforced on the actual bytes, each typed by its magic bytes. A batch holding a
//! `DICOMDIR` is validated as a DICOMDIR set.

use std::collections::HashMap;
use std::io::{self, Read};

use super::dicomdir::{self, SetFacts, SetFiles};
use super::{MediaType, Plaintext, sniff};
use crate::checks::{Check, Severity};

#[derive(Debug, Clone, Copy)]
pub struct ZipLimits {
    pub max_entries: usize,
    pub max_total_bytes: u64,
    /// Largest expanded : compressed ratio of one entry.
    pub max_ratio: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    pub name: String,
    pub size: u64,
    pub media_type: &'static str,
}

#[derive(Debug, Default)]
pub struct ZipFacts {
    pub entries: Vec<Entry>,
    pub set: Option<SetFacts>,
}

fn err(code: &str, msg: impl Into<String>, detail: serde_json::Value) -> Check {
    Check::new(code, Severity::Error, msg).with_detail(detail)
}

fn unsafe_path(name: &str) -> bool {
    name.starts_with('/')
        || name.contains('\\')
        || name.contains('\0')
        || name.as_bytes().get(1) == Some(&b':')
        || name.split('/').any(|c| c == "..")
}

type Archive<'a> = ::zip::ZipArchive<&'a mut dyn Plaintext>;

/// Inspects the archive; `allowed` says whether an entry's type is accepted.
pub fn inspect(
    src: &mut dyn Plaintext,
    limits: ZipLimits,
    dicom_limits: super::dicom::HeaderLimits,
    allowed: &dyn Fn(MediaType) -> bool,
) -> io::Result<(ZipFacts, Vec<Check>)> {
    let mut facts = ZipFacts::default();
    let declared = super::zip_eocd::declared(src)?;
    if let Some(d) = declared {
        // A directory entry is at least 46 bytes and at most 46 + three 64 KiB fields.
        let most = limits.max_entries as u64 * (46 + 3 * 65_535);
        if d.entries > limits.max_entries as u64 || d.directory_bytes > most {
            let c = err(
                "zip.bomb",
                format!(
                    "the archive declares {} entries in a {}-byte directory (at most {} entries)",
                    d.entries, d.directory_bytes, limits.max_entries
                ),
                serde_json::json!({ "entries": d.entries, "directory_bytes": d.directory_bytes }),
            );
            return Ok((facts, vec![c]));
        }
    }
    let mut archive = match ::zip::ZipArchive::new(src) {
        Ok(a) => a,
        Err(::zip::result::ZipError::Io(e)) if e.kind() == io::ErrorKind::InvalidData => {
            return Err(e);
        }
        Err(e) => {
            return Ok((
                facts,
                vec![err(
                    "zip.invalid",
                    format!("not a readable ZIP archive: {e}"),
                    serde_json::Value::Null,
                )],
            ));
        }
    };
    // The zip crate keeps one entry per name: an archive listing a name twice (which
    // copy would be indexed?) shows fewer entries than its end record declares.
    if let Some(d) = declared
        && d.entries > archive.len() as u64
    {
        let c = err(
            "zip.duplicate_name",
            format!(
                "the directory lists {} entries but only {} distinct names",
                d.entries,
                archive.len()
            ),
            serde_json::json!({ "declared": d.entries, "distinct": archive.len() }),
        );
        return Ok((facts, vec![c]));
    }
    let checks = directory_checks(&mut archive, limits);
    if !checks.is_empty() {
        return Ok((facts, checks));
    }
    let mut checks = Vec::new();
    let mut refused = Vec::new();
    let mut dicomdir_at = None;
    for i in 0..archive.len() {
        let mut f = match archive.by_index(i) {
            Ok(f) => f,
            Err(e) => {
                return Ok((
                    facts,
                    vec![err(
                        "zip.invalid",
                        format!("entry {i}: {e}"),
                        serde_json::Value::Null,
                    )],
                ));
            }
        };
        if f.is_dir() {
            continue;
        }
        let name = f.name().map(|n| n.into_owned()).unwrap_or_default();
        let declared = f.size();
        let mut head = Vec::with_capacity(4096);
        let expanded = (&mut f).take(4096).read_to_end(&mut head).and_then(|n| {
            let rest = io::copy(
                &mut (&mut f).take(declared.saturating_sub(n as u64) + 1),
                &mut io::sink(),
            )?;
            Ok(n as u64 + rest)
        });
        match expanded {
            Ok(n) if n == declared => {}
            Ok(n) => {
                return Ok((
                    facts,
                    vec![err(
                        "zip.bomb",
                        format!("`{name}` expands past its declared {declared} bytes"),
                        serde_json::json!({ "entry": name, "declared": declared, "at_least": n }),
                    )],
                ));
            }
            Err(e)
                if e.kind() == io::ErrorKind::InvalidData
                    && e.get_ref()
                        .is_some_and(|x| x.is::<crate::sealed::SealedError>()) =>
            {
                return Err(e);
            }
            Err(e) => {
                return Ok((
                    facts,
                    vec![err(
                        "zip.invalid",
                        format!("`{name}` does not expand: {e}"),
                        serde_json::json!({ "entry": name }),
                    )],
                ));
            }
        }
        let base = name.rsplit('/').next().unwrap_or(&name);
        let t = if base.eq_ignore_ascii_case("DICOMDIR") {
            dicomdir_at = Some(i);
            MediaType::Dicom
        } else {
            sniff(&head)
        };
        if !allowed(t) {
            refused.push(serde_json::json!({ "entry": name, "media_type": t.mime() }));
        }
        facts.entries.push(Entry {
            name,
            size: declared,
            media_type: t.mime(),
        });
    }
    if !refused.is_empty() {
        checks.push(err(
            "zip.entry_not_allowed",
            format!(
                "{} entr(ies) of a type this profile does not accept",
                refused.len()
            ),
            serde_json::json!({ "entries": refused }),
        ));
    }
    if let Some(i) = dicomdir_at {
        let (set, set_checks) = validate_set(&mut archive, i, dicom_limits)?;
        facts.set = Some(set);
        checks.extend(set_checks);
    }
    if checks.iter().all(|c| c.severity != Severity::Error) {
        let total: u64 = facts.entries.iter().map(|e| e.size).sum();
        checks.insert(
            0,
            Check::new(
                "zip.valid",
                Severity::Info,
                format!(
                    "ZIP batch: {} file(s), {total} bytes expanded",
                    facts.entries.len()
                ),
            ),
        );
    }
    Ok((facts, checks))
}

/// Everything decidable from the central directory alone.
fn directory_checks(archive: &mut Archive<'_>, limits: ZipLimits) -> Vec<Check> {
    if archive.len() > limits.max_entries {
        return vec![err(
            "zip.bomb",
            format!(
                "{} entries; at most {} are accepted",
                archive.len(),
                limits.max_entries
            ),
            serde_json::json!({ "entries": archive.len() }),
        )];
    }
    let mut total = 0u64;
    let mut folded: HashMap<String, String> = HashMap::new();
    let (mut unsafe_names, mut links, mut encrypted, mut collisions) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for i in 0..archive.len() {
        let Ok(f) = archive.by_index_raw(i) else {
            return vec![err(
                "zip.invalid",
                format!("entry {i} of the central directory is unreadable"),
                serde_json::Value::Null,
            )];
        };
        let name = f.name().map(|n| n.into_owned()).unwrap_or_default();
        if unsafe_path(&name) {
            unsafe_names.push(name.clone());
        }
        if f.is_symlink() {
            links.push(name.clone());
        }
        if f.encrypted() {
            encrypted.push(name.clone());
        }
        total = total.saturating_add(f.size());
        if f.size() > f.compressed_size().max(1).saturating_mul(limits.max_ratio)
            && f.size() > 1 << 20
        {
            return vec![err(
                "zip.bomb",
                format!(
                    "`{name}` would expand {}× ({} bytes)",
                    f.size() / f.compressed_size().max(1),
                    f.size()
                ),
                serde_json::json!({ "entry": name, "size": f.size(), "compressed": f.compressed_size() }),
            )];
        }
        if !f.is_dir()
            && let Some(first) = folded.insert(name.to_lowercase(), name.clone())
        {
            collisions.push(serde_json::json!([first, name]));
        }
    }
    if total > limits.max_total_bytes {
        return vec![err(
            "zip.bomb",
            format!(
                "the entries declare {total} bytes; at most {} are accepted",
                limits.max_total_bytes
            ),
            serde_json::json!({ "declared": total }),
        )];
    }
    let found = [
        (
            "zip.unsafe_path",
            "absolute or `..` paths (zip-slip)",
            unsafe_names.len(),
            serde_json::json!(unsafe_names),
        ),
        (
            "zip.link",
            "symbolic links are not accepted in a batch",
            links.len(),
            serde_json::json!(links),
        ),
        (
            "zip.encrypted_entry",
            "encrypted entries cannot be checked; seal the whole batch instead",
            encrypted.len(),
            serde_json::json!(encrypted),
        ),
        (
            "zip.case_collision",
            "names that differ only in case collide on most file systems",
            collisions.len(),
            serde_json::json!(collisions),
        ),
    ];
    found
        .into_iter()
        .filter(|(_, _, n, _)| *n > 0)
        .map(|(code, msg, _, entries)| err(code, msg, serde_json::json!({ "entries": entries })))
        .collect()
}

/// The set is the DICOMDIR's folder inside the archive.
fn validate_set(
    archive: &mut Archive<'_>,
    dicomdir_index: usize,
    limits: super::dicom::HeaderLimits,
) -> io::Result<(SetFacts, Vec<Check>)> {
    let (prefix, bytes) = {
        let mut f = archive.by_index(dicomdir_index).map_err(io::Error::other)?;
        let name = f.name().map(|n| n.into_owned()).unwrap_or_default();
        let prefix = name
            .rsplit_once('/')
            .map(|(d, _)| format!("{d}/"))
            .unwrap_or_default();
        let mut bytes = Vec::new();
        (&mut f).take(limits.max_bytes).read_to_end(&mut bytes)?;
        (prefix, bytes)
    };
    let mut files = ZipSet { archive, prefix };
    Ok(dicomdir::validate(&bytes, &mut files, limits))
}

struct ZipSet<'a, 'b> {
    archive: &'a mut Archive<'b>,
    prefix: String,
}

impl SetFiles for ZipSet<'_, '_> {
    fn paths(&self) -> Vec<String> {
        self.archive
            .file_names()
            .filter_map(Result::ok)
            .filter(|n| !n.ends_with('/'))
            .filter_map(|n| n.strip_prefix(self.prefix.as_str()).map(str::to_owned))
            .filter(|n| {
                !n.rsplit('/')
                    .next()
                    .unwrap_or(n)
                    .eq_ignore_ascii_case("DICOMDIR")
            })
            .collect()
    }

    fn open(&mut self, path: &str) -> io::Result<Box<dyn Read + '_>> {
        let full = format!("{}{path}", self.prefix);
        let f = self.archive.by_name(&full).map_err(io::Error::other)?;
        Ok(Box::new(f))
    }
}
