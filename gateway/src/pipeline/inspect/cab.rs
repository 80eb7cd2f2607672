//! Microsoft Cabinet (CAB) archives: the packaging the review channel prescribes for
//! DICOMDIR sets (rule 16). Checked like a ZIP batch — from the directory before
//! anything is expanded (entry count, declared sizes against the archive's size, unsafe
//! and colliding names, spanned cabinets, compressions), then every file expanded once
//! as a stream with the declared sizes enforced on the actual bytes and each typed by
//! its magic; a cabinet holding a `DICOMDIR` is validated as a set.
//!
//! Decompression (MSZIP, LZX, stored) is the `cab` crate's. The directory is read here
//! ([`super::cab_dir`]) because the crate exposes no file offsets, and its per-file
//! reader decompresses a folder from its start for every file: 500 images in one folder
//! (how gcab and makecab pack them) would cost 500 × half the folder. So each folder is
//! handed to the crate as one file of a cabinet view ([`super::cab_dir::View`]) and read
//! once, front to back, split into its files here.

use std::collections::HashMap;
use std::io::{self, Read};

use super::cab_dir::{self, Directory};
use super::dicomdir::{self, SetFacts, SetFiles};
use super::zip::{Entry, ZipLimits};
use super::{MediaType, Plaintext, sniff};
use crate::checks::{Check, Severity};

#[derive(Debug, Default)]
pub struct CabFacts {
    pub entries: Vec<Entry>,
    pub set: Option<SetFacts>,
}

fn err(code: &str, msg: impl Into<String>, detail: serde_json::Value) -> Check {
    Check::new(code, Severity::Error, msg).with_detail(detail)
}

/// Bytes of each file kept for the set walk (a DICOM header before its pixel data is
/// rarely more); a header that runs longer is read on from the archive.
const KEPT: usize = 64 << 10;

/// Inspects the cabinet in `src` (`len` bytes); `allowed` says whether an entry's type
/// is accepted.
pub fn inspect(
    src: &mut dyn Plaintext,
    len: u64,
    limits: ZipLimits,
    dicom_limits: super::dicom::HeaderLimits,
    allowed: &dyn Fn(MediaType) -> bool,
) -> io::Result<(CabFacts, Vec<Check>)> {
    let mut facts = CabFacts::default();
    let dir = match cab_dir::read(src, len) {
        Ok(d) => d,
        Err(cab_dir::DirError::Io(e)) => return Err(e),
        Err(cab_dir::DirError::Refused(code, why)) => {
            return Ok((facts, vec![err(code, why, serde_json::Value::Null)]));
        }
    };
    let checks = directory_checks(&dir, len, limits);
    if !checks.is_empty() {
        return Ok((facts, checks));
    }
    // One pass over every folder: type each file, keep the heads the set walk needs.
    let mut heads: HashMap<String, Vec<u8>> = HashMap::new();
    let dicomdir_at = dir
        .files
        .iter()
        .position(|f| base(&f.name).eq_ignore_ascii_case("DICOMDIR"));
    let mut refused = Vec::new();
    let mut view = cab_dir::View::new(src, &dir)?;
    for (folder, files) in dir.by_folder() {
        let mut cabinet = match cab::Cabinet::new(&mut view) {
            Ok(c) => c,
            Err(e) if is_sealed_error(&e) => return Err(e),
            Err(e) => return Ok((facts, vec![invalid(&e.to_string())])),
        };
        let mut stream = match cabinet.read_file(&cab_dir::View::folder_name(folder)) {
            Ok(r) => r,
            Err(e) => return Ok((facts, vec![invalid(&format!("folder {folder}: {e}"))])),
        };
        for f in files {
            let mut head = Vec::with_capacity(KEPT.min(f.size as usize));
            let kept = (&mut stream)
                .take(f.size.min(KEPT as u64))
                .read_to_end(&mut head);
            let rest = kept.and_then(|n| {
                io::copy(
                    &mut (&mut stream).take(f.size.saturating_sub(n as u64)),
                    &mut io::sink(),
                )
                .map(|r| n as u64 + r)
            });
            match rest {
                Ok(n) if n == f.size => {}
                Ok(n) => {
                    let c = err(
                        "cab.invalid",
                        format!(
                            "`{}` expands to {n} of its declared {} bytes",
                            f.name, f.size
                        ),
                        serde_json::json!({ "entry": f.name }),
                    );
                    return Ok((facts, vec![c]));
                }
                Err(e) if is_sealed_error(&e) => return Err(e),
                Err(e) => {
                    return Ok((facts, vec![invalid(&format!("`{}`: {e}", f.name))]));
                }
            }
            let t = if base(&f.name).eq_ignore_ascii_case("DICOMDIR") {
                MediaType::Dicom
            } else {
                sniff(&head)
            };
            if !allowed(t) {
                refused.push(serde_json::json!({ "entry": f.name, "media_type": t.mime() }));
            }
            facts.entries.push(Entry {
                name: f.name.clone(),
                size: f.size,
                media_type: t.mime(),
            });
            if dicomdir_at.is_some() {
                heads.insert(f.name.clone(), head);
            }
        }
    }
    let mut checks = Vec::new();
    if !refused.is_empty() {
        checks.push(err(
            "cab.entry_not_allowed",
            format!(
                "{} entr(ies) of a type this profile does not accept",
                refused.len()
            ),
            serde_json::json!({ "entries": refused }),
        ));
    }
    if let Some(i) = dicomdir_at {
        let name = dir.files[i].name.clone();
        let prefix = name
            .rsplit_once('/')
            .map(|(d, _)| format!("{d}/"))
            .unwrap_or_default();
        let bytes = read_whole(&mut view, &dir, &name, &heads, dicom_limits.max_bytes)?;
        let mut files = CabSet {
            view: &mut view,
            dir: &dir,
            heads: &heads,
            prefix,
        };
        let (set, set_checks) = dicomdir::validate(&bytes, &mut files, dicom_limits);
        facts.set = Some(set);
        checks.extend(set_checks);
    }
    if checks.iter().all(|c| c.severity != Severity::Error) {
        let total: u64 = facts.entries.iter().map(|e| e.size).sum();
        checks.insert(
            0,
            Check::new(
                "cab.valid",
                Severity::Info,
                format!(
                    "CAB archive: {} file(s), {total} bytes expanded",
                    facts.entries.len()
                ),
            ),
        );
    }
    Ok((facts, checks))
}

fn invalid(why: &str) -> Check {
    err(
        "cab.invalid",
        format!("not a readable CAB archive: {why}"),
        serde_json::Value::Null,
    )
}

fn is_sealed_error(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidData
        && e.get_ref()
            .is_some_and(|x| x.is::<crate::sealed::SealedError>())
}

fn base(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

/// Everything decidable from the directory alone.
fn directory_checks(dir: &Directory, len: u64, limits: ZipLimits) -> Vec<Check> {
    if dir.files.len() > limits.max_entries {
        return vec![err(
            "cab.bomb",
            format!(
                "{} files; at most {} are accepted",
                dir.files.len(),
                limits.max_entries
            ),
            serde_json::json!({ "entries": dir.files.len() }),
        )];
    }
    let total: u64 = dir.files.iter().map(|f| f.size).sum();
    // A CAB's folders are compressed as wholes, so the ratio is the archive's.
    if total > limits.max_total_bytes || total > len.max(1).saturating_mul(limits.max_ratio) {
        return vec![err(
            "cab.bomb",
            format!(
                "the files declare {total} bytes from a {len}-byte archive (at most {} bytes, \
                 {}× the archive)",
                limits.max_total_bytes, limits.max_ratio
            ),
            serde_json::json!({ "declared": total, "archive": len }),
        )];
    }
    let mut unsafe_names = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    let (mut duplicates, mut collisions) = (Vec::new(), Vec::new());
    for f in &dir.files {
        let n = &f.name;
        if n.is_empty()
            || n.starts_with('/')
            || n.contains('\0')
            || n.as_bytes().get(1) == Some(&b':')
            || n.split('/').any(|c| c == ".." || c.is_empty())
        {
            unsafe_names.push(n.clone());
        }
        if let Some(first) = seen.insert(n.to_lowercase(), n.clone()) {
            if first == *n {
                duplicates.push(n.clone());
            } else {
                collisions.push(serde_json::json!([first, n]));
            }
        }
    }
    [
        (
            "cab.unsafe_path",
            "absolute, empty or `..` paths",
            serde_json::json!(unsafe_names),
            unsafe_names.len(),
        ),
        (
            "cab.duplicate_name",
            "the same name more than once (which copy would be checked?)",
            serde_json::json!(duplicates),
            duplicates.len(),
        ),
        (
            "cab.case_collision",
            "names that differ only in case collide on most file systems",
            serde_json::json!(collisions),
            collisions.len(),
        ),
    ]
    .into_iter()
    .filter(|(.., n)| *n > 0)
    .map(|(code, msg, entries, _)| err(code, msg, serde_json::json!({ "entries": entries })))
    .collect()
}

/// Up to `max` bytes of the file `name`: its kept head, and the rest from the archive
/// when the head was not all of it.
fn read_whole<R: Read + io::Seek>(
    view: &mut R,
    dir: &Directory,
    name: &str,
    heads: &HashMap<String, Vec<u8>>,
    max: u64,
) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    open_file(view, dir, name, heads)?
        .take(max)
        .read_to_end(&mut out)?;
    Ok(out)
}

/// A reader over the file `name`: its kept head, then (only if read that far) the rest
/// from the archive, for the rare header longer than [`KEPT`].
fn open_file<'a, R: Read + io::Seek>(
    view: &'a mut R,
    dir: &'a Directory,
    name: &str,
    heads: &'a HashMap<String, Vec<u8>>,
) -> io::Result<Box<dyn Read + 'a>> {
    let head = heads
        .get(name)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_string()))?;
    let size = dir
        .files
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.size)
        .unwrap_or(0);
    if head.len() as u64 >= size {
        return Ok(Box::new(&head[..]));
    }
    let rest = Rest {
        view,
        dir,
        name: name.to_string(),
        from: head.len() as u64,
        data: None,
    };
    Ok(Box::new((&head[..]).chain(rest)))
}

/// The part of a file past its kept head, read from the archive on first use.
struct Rest<'a, R> {
    view: &'a mut R,
    dir: &'a Directory,
    name: String,
    from: u64,
    data: Option<io::Cursor<Vec<u8>>>,
}

impl<R: Read + io::Seek> Read for Rest<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data.is_none() {
            // Bounded by the caller's `take` (the header limit) through `buf` sizes:
            // only the next megabyte past the head is fetched.
            let f = self
                .dir
                .files
                .iter()
                .find(|f| f.name == self.name)
                .ok_or_else(|| io::Error::other("file gone from the directory"))?;
            let mut cabinet = cab::Cabinet::new(&mut *self.view)?;
            let mut r = cabinet.read_file(&cab_dir::View::folder_name(f.folder))?;
            io::Seek::seek(&mut r, io::SeekFrom::Start(f.offset + self.from))?;
            let want = (f.size - self.from).min(1 << 20);
            let mut v = Vec::new();
            r.take(want).read_to_end(&mut v)?;
            self.data = Some(io::Cursor::new(v));
        }
        self.data.as_mut().map_or(Ok(0), |d| d.read(buf))
    }
}

/// The set is the DICOMDIR's folder inside the cabinet.
struct CabSet<'a, R> {
    view: &'a mut R,
    dir: &'a Directory,
    heads: &'a HashMap<String, Vec<u8>>,
    prefix: String,
}

impl<R: Read + io::Seek> SetFiles for CabSet<'_, R> {
    fn paths(&self) -> Vec<String> {
        self.dir
            .files
            .iter()
            .filter_map(|f| f.name.strip_prefix(self.prefix.as_str()))
            .filter(|n| !base(n).eq_ignore_ascii_case("DICOMDIR"))
            .map(str::to_owned)
            .collect()
    }

    fn open(&mut self, path: &str) -> io::Result<Box<dyn Read + '_>> {
        let full = format!("{}{path}", self.prefix);
        open_file(self.view, self.dir, &full, self.heads)
    }
}
