//! The file tree a tenant sees over SFTP — a chroot built from the catalog, never from
//! host paths:
//!
//! ```text
//! /            the tenant's root (".." here stays here)
//! /inbox/…     uploads: write, resume, list; case folders allowed
//! /precheck/…  pre-checks (rule 21): checked in full, never indexed, removed
//!              after a day; their results under /results/precheck/
//! /results/…   read-only: <name>.json and <name>.txt per finished upload
//! ```
//!
//! A pre-check is the upload named `precheck/<path>`, so `/precheck/<path>` is
//! `Place::Inbox("precheck/<path>")`: writing, resuming, renaming and listing work the
//! same in both folders. `/inbox/precheck/…` is refused, or a hospital's case folder of
//! that name would silently never be submitted.

use crate::backends::catalog::{UploadRow, UploadState};
use crate::checks::CheckResult;

use super::protocol::{Attrs, Entry};

/// Where a client path points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Root,
    /// `/inbox` itself (empty) or a path below it, relative (`case-7/a.pdf`).
    Inbox(String),
    Results(String),
    /// `/inbox/precheck…`: the pre-check folder's name, reserved.
    Reserved,
    Elsewhere,
}

/// Resolves `path` (absolute, or relative to the root) without ever leaving the root.
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

pub fn place(path: &str) -> Place {
    let norm = normalize(path);
    let mut it = norm.trim_start_matches('/').splitn(2, '/');
    match (it.next(), it.next()) {
        (Some(""), None) => Place::Root,
        (Some("inbox"), Some(rest)) if reserved(rest) => Place::Reserved,
        (Some("inbox"), rest) => Place::Inbox(rest.unwrap_or("").to_string()),
        (Some("precheck"), rest) => Place::Inbox(match rest {
            Some(r) => crate::session::names::precheck(r),
            None => crate::session::names::PRECHECK
                .trim_end_matches('/')
                .to_string(),
        }),
        (Some("results"), rest) => Place::Results(rest.unwrap_or("").to_string()),
        _ => Place::Elsewhere,
    }
}

/// Whether the first component of inbox path `rel` is the reserved pre-check folder.
fn reserved(rel: &str) -> bool {
    let first = rel.split('/').next().unwrap_or_default();
    first.eq_ignore_ascii_case(crate::session::names::PRECHECK.trim_end_matches('/'))
}

/// Why `path` cannot be used for what was asked: `otherwise`, unless it is the reserved
/// pre-check folder inside `/inbox`, which gets a message of its own.
pub fn refusal(path: &str, otherwise: &str) -> String {
    if place(path) == Place::Reserved {
        "ingest.name_not_allowed: /inbox/precheck is reserved; pre-checks go to /precheck/".into()
    } else {
        otherwise.into()
    }
}

/// How a client sees the inbox place `rel`: `/precheck/a.pdf` or `/inbox/a.pdf`.
pub fn shown(rel: &str) -> String {
    match rel.strip_prefix(crate::session::names::PRECHECK) {
        Some(r) => format!("/precheck/{r}"),
        None if rel == "precheck" => "/precheck".into(),
        None => format!("/inbox/{rel}"),
    }
}

/// Whether an upload shows in `/inbox`: bytes are there or on their way.
pub fn visible_in_inbox(u: &UploadRow) -> bool {
    matches!(
        u.state,
        UploadState::Receiving
            | UploadState::Accepted
            | UploadState::Checking
            | UploadState::Indexed
            | UploadState::Prechecked
    )
}

/// Whether an upload has a result file: from its acceptance on, showing `checking`
/// (檢核中, rule 11) until its checks are over.
pub fn has_result(u: &UploadRow) -> bool {
    matches!(
        u.state,
        UploadState::Accepted
            | UploadState::Checking
            | UploadState::Indexed
            | UploadState::Rejected
            | UploadState::Expired
            | UploadState::Prechecked
    )
}

/// Bytes on the gateway: the durable offset while receiving, the full length after.
pub fn upload_attrs(u: &UploadRow, mtime: u32) -> Attrs {
    Attrs::file(u.durable_offset, mtime)
}

/// The direct children of folder `dir` (relative, "" for the top) among `names`:
/// files (name, index into `names`) and sub-folders.
pub fn children<'a>(
    dir: &str,
    names: impl Iterator<Item = &'a str>,
) -> (Vec<(String, &'a str)>, Vec<String>) {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let (mut files, mut dirs) = (Vec::new(), Vec::new());
    for n in names {
        let Some(rest) = n.strip_prefix(&prefix) else {
            continue;
        };
        match rest.split_once('/') {
            None => files.push((rest.to_string(), n)),
            Some((d, _)) => {
                if dirs.last().is_none_or(|l: &String| l != d) && !dirs.iter().any(|x| x == d) {
                    dirs.push(d.to_string());
                }
            }
        }
    }
    (files, dirs)
}

pub fn dir_entry(name: &str, mtime: u32) -> Entry {
    Entry {
        name: name.into(),
        attrs: Attrs::dir(mtime),
    }
}

/// The machine-readable result file.
pub fn result_json(r: &CheckResult) -> Vec<u8> {
    let mut v = serde_json::to_vec_pretty(r).unwrap_or_default();
    v.push(b'\n');
    v
}

/// The human-readable error report (檢核錯誤明細表).
pub fn result_text(r: &CheckResult) -> Vec<u8> {
    r.to_text().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_never_leave_the_root() {
        assert_eq!(normalize("/inbox/../../etc/passwd"), "/etc/passwd");
        assert_eq!(place("/inbox/../../etc/passwd"), Place::Elsewhere);
        assert_eq!(place("../../inbox/a.pdf"), Place::Inbox("a.pdf".into()));
        assert_eq!(
            place("/inbox/./case-7//a.pdf"),
            Place::Inbox("case-7/a.pdf".into())
        );
        assert_eq!(place("/"), Place::Root);
        assert_eq!(place(".."), Place::Root);
        assert_eq!(place("/results"), Place::Results(String::new()));
        assert_eq!(place("/inbox"), Place::Inbox(String::new()));
        assert_eq!(
            place("/precheck/a.pdf"),
            Place::Inbox("precheck/a.pdf".into())
        );
        assert_eq!(place("/precheck"), Place::Inbox("precheck".into()));
        assert_eq!(place("/inbox/precheck/a.pdf"), Place::Reserved);
        assert_eq!(place("/inbox/PRECHECK"), Place::Reserved);
        assert_eq!(
            place("/inbox/prechecks/a.pdf"),
            Place::Inbox("prechecks/a.pdf".into())
        );
        assert_eq!(shown("precheck/a.pdf"), "/precheck/a.pdf");
        assert_eq!(shown("a.pdf"), "/inbox/a.pdf");
    }

    #[test]
    fn children_split_files_and_folders() {
        let names = ["a.pdf", "case-7/b.pdf", "case-7/c/d.dcm", "case-8/e.pdf"];
        let (files, dirs) = children("", names.iter().copied());
        assert_eq!(
            files.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
            ["a.pdf"]
        );
        assert_eq!(dirs, ["case-7", "case-8"]);
        let (files, dirs) = children("case-7", names.iter().copied());
        assert_eq!(
            files.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
            ["b.pdf"]
        );
        assert_eq!(dirs, ["c"]);
    }
}
