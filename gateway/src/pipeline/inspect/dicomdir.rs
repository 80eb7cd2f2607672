//! DICOMDIR sets (rule 6): the DICOMDIR is read as an ordinary DICOM object and
//! its Directory Record Sequence walked PATIENT → STUDY → SERIES → instance through the
//! records' byte offsets; every referenced file must exist in the set, be Part-10, and
//! match its record and parents. Files nobody references are orphans.
//!
//! The set comes from a [`SetFiles`] source (a ZIP batch today; a folder tree uploaded
//! over SFTP uses the same walk).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Read;

use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;

use super::dicom::{self, Instance, text};
pub use super::dicomdir_offsets::record_offsets;
use crate::checks::{Check, Severity};

/// The files of a set, by path relative to the DICOMDIR's folder (`/`-separated).
pub trait SetFiles {
    fn paths(&self) -> Vec<String>;
    fn open(&mut self, path: &str) -> std::io::Result<Box<dyn Read + '_>>;
}

/// What a set yields for the index.
#[derive(Debug, Default)]
pub struct SetFacts {
    pub instances: Vec<(String, Instance)>,
    pub patients: usize,
    pub studies: usize,
    pub series: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Level {
    Patient,
    Study,
    Series,
    Instance,
}

fn level_of(kind: &str) -> Level {
    match kind {
        "PATIENT" => Level::Patient,
        "STUDY" => Level::Study,
        "SERIES" => Level::Series,
        _ => Level::Instance,
    }
}

fn err(code: &str, msg: impl Into<String>, detail: serde_json::Value) -> Check {
    Check::new(code, Severity::Error, msg).with_detail(detail)
}

fn offset(obj: &InMemDicomObject, tag: dicom_core::Tag) -> u64 {
    obj.get(tag)
        .and_then(|e| e.to_int::<u64>().ok())
        .unwrap_or(0)
}

/// A record reached by the walk, with its parents' identifiers.
struct Reached<'a> {
    rec: &'a InMemDicomObject,
    patient_id: String,
    study_uid: String,
    series_uid: String,
}

/// Whether a DICOM object is a DICOMDIR (Media Storage Directory), not an instance.
pub fn is_directory(obj: &dicom_object::DefaultDicomObject) -> bool {
    obj.meta()
        .media_storage_sop_class_uid
        .trim_end_matches(['\0', ' '])
        == uids::MEDIA_STORAGE_DIRECTORY_STORAGE
}

/// Validates the set whose DICOMDIR bytes are `dicomdir`; `files` must not list it.
pub fn validate(
    dicomdir: &[u8],
    files: &mut dyn SetFiles,
    limits: dicom::HeaderLimits,
) -> (SetFacts, Vec<Check>) {
    let mut facts = SetFacts::default();
    let obj = match dicom::read_header_sized(&mut &dicomdir[..], dicomdir.len() as u64, limits) {
        Ok(o) => o,
        Err(c) => {
            return (
                facts,
                vec![Check {
                    code: "dicomdir.invalid".into(),
                    ..c
                }],
            );
        }
    };
    let class = obj
        .meta()
        .media_storage_sop_class_uid
        .trim_end_matches(['\0', ' '])
        .to_string();
    if class != uids::MEDIA_STORAGE_DIRECTORY_STORAGE {
        let c = err(
            "dicomdir.invalid",
            "the DICOMDIR is not a Media Storage Directory",
            serde_json::json!({ "sop_class_uid": class }),
        );
        return (facts, vec![c]);
    }
    let records: &[InMemDicomObject] = obj
        .get(tags::DIRECTORY_RECORD_SEQUENCE)
        .and_then(|e| e.items())
        .unwrap_or(&[]);
    let mut checks = Vec::new();
    let reached = match walk(&obj, records, dicomdir, &mut checks) {
        Some(r) => r,
        None => return (facts, checks),
    };
    check_references(&reached, files, limits, &mut facts, &mut checks);
    let unique = |f: fn(&Instance) -> &String| {
        facts
            .instances
            .iter()
            .map(|(_, i)| f(i))
            .collect::<HashSet<_>>()
            .len()
    };
    facts.patients = unique(|i| &i.patient_id);
    facts.studies = unique(|i| &i.study_uid);
    facts.series = unique(|i| &i.series_uid);
    if checks.iter().all(|c| c.severity != Severity::Error) {
        checks.insert(
            0,
            Check::new(
                "dicomdir.valid",
                Severity::Info,
                format!(
                    "DICOMDIR set: {} patient(s), {} study(ies), {} series, {} instance(s), all present and matching",
                    facts.patients, facts.studies, facts.series, facts.instances.len()
                ),
            ),
        );
    }
    (facts, checks)
}

/// Walks the record tree by offsets (or, when the DICOMDIR has none, by record order),
/// skipping inactive records. `None` when the structure is unusable.
fn walk<'a>(
    obj: &dicom_object::DefaultDicomObject,
    records: &'a [InMemDicomObject],
    bytes: &[u8],
    checks: &mut Vec<Check>,
) -> Option<Vec<Reached<'a>>> {
    let root = offset(
        obj,
        tags::OFFSET_OF_THE_FIRST_DIRECTORY_RECORD_OF_THE_ROOT_DIRECTORY_ENTITY,
    );
    let ts = obj_ts(obj);
    let offsets = record_offsets(bytes, &ts);
    let by_offset: HashMap<u64, usize> = match (&offsets, root) {
        (Some(o), r) if r != 0 && o.len() == records.len() => {
            o.iter().enumerate().map(|(i, off)| (*off, i)).collect()
        }
        _ => {
            checks.push(Check::new(
                "dicomdir.no_offsets",
                Severity::Warning,
                "the DICOMDIR has no usable record offsets; its hierarchy was read from the record order",
            ));
            return Some(walk_in_order(records));
        }
    };
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut stack = vec![(
        root,
        None::<Level>,
        String::new(),
        String::new(),
        String::new(),
    )];
    while let Some((first, parent, pid, study, series)) = stack.pop() {
        let mut at = first;
        while at != 0 {
            let Some(&i) = by_offset.get(&at) else {
                checks.push(err(
                    "dicomdir.bad_offset",
                    format!("a record offset ({at}) points at no record"),
                    serde_json::json!({ "offset": at }),
                ));
                return None;
            };
            if !seen.insert(i) {
                checks.push(err(
                    "dicomdir.cycle",
                    "the record offsets form a cycle",
                    serde_json::json!({ "offset": at }),
                ));
                return None;
            }
            let rec = &records[i];
            let kind = text(rec, tags::DIRECTORY_RECORD_TYPE);
            let level = level_of(&kind);
            let expected = match parent {
                None => Level::Patient,
                Some(Level::Patient) => Level::Study,
                Some(Level::Study) => Level::Series,
                Some(_) => Level::Instance,
            };
            if level != expected {
                checks.push(err(
                    "dicomdir.hierarchy",
                    format!("a {kind} record sits where a {expected:?} record belongs"),
                    serde_json::json!({ "record": kind, "expected": format!("{expected:?}").to_uppercase() }),
                ));
            }
            let active = rec
                .get(tags::RECORD_IN_USE_FLAG)
                .and_then(|e| e.to_int::<u16>().ok())
                != Some(0);
            if active {
                let (p, s, se) = match level {
                    Level::Patient => (text(rec, tags::PATIENT_ID), String::new(), String::new()),
                    Level::Study => (
                        pid.clone(),
                        text(rec, tags::STUDY_INSTANCE_UID),
                        String::new(),
                    ),
                    Level::Series => (
                        pid.clone(),
                        study.clone(),
                        text(rec, tags::SERIES_INSTANCE_UID),
                    ),
                    Level::Instance => (pid.clone(), study.clone(), series.clone()),
                };
                let lower = offset(rec, tags::OFFSET_OF_REFERENCED_LOWER_LEVEL_DIRECTORY_ENTITY);
                if lower != 0 {
                    stack.push((lower, Some(level), p.clone(), s.clone(), se.clone()));
                }
                out.push(Reached {
                    rec,
                    patient_id: p,
                    study_uid: s,
                    series_uid: se,
                });
            }
            at = offset(rec, tags::OFFSET_OF_THE_NEXT_DIRECTORY_RECORD);
        }
    }
    Some(out)
}

fn obj_ts(obj: &dicom_object::DefaultDicomObject) -> String {
    obj.meta().transfer_syntax.clone()
}

/// The hierarchy from record order alone: each record belongs to the last record of the
/// level above it.
fn walk_in_order(records: &[InMemDicomObject]) -> Vec<Reached<'_>> {
    let (mut pid, mut study, mut series) = (String::new(), String::new(), String::new());
    let mut out = Vec::new();
    for rec in records {
        if rec
            .get(tags::RECORD_IN_USE_FLAG)
            .and_then(|e| e.to_int::<u16>().ok())
            == Some(0)
        {
            continue;
        }
        match level_of(&text(rec, tags::DIRECTORY_RECORD_TYPE)) {
            Level::Patient => pid = text(rec, tags::PATIENT_ID),
            Level::Study => study = text(rec, tags::STUDY_INSTANCE_UID),
            Level::Series => series = text(rec, tags::SERIES_INSTANCE_UID),
            Level::Instance => {}
        }
        out.push(Reached {
            rec,
            patient_id: pid.clone(),
            study_uid: study.clone(),
            series_uid: series.clone(),
        });
    }
    out
}

/// A ReferencedFileID component: up to 8 of `A–Z 0–9 _` (PS3.10 §8.5; lower case
/// is tolerated, since media written on case-insensitive file systems have it).
fn file_id_ok(parts: &[String]) -> bool {
    !parts.is_empty()
        && parts.len() <= 8
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 8
                && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        })
}

fn check_references(
    reached: &[Reached<'_>],
    files: &mut dyn SetFiles,
    limits: dicom::HeaderLimits,
    facts: &mut SetFacts,
    checks: &mut Vec<Check>,
) {
    let paths = files.paths();
    let by_upper: BTreeMap<String, String> = paths
        .iter()
        .map(|p| (p.to_ascii_uppercase(), p.clone()))
        .collect();
    let mut referenced = BTreeSet::new();
    let (mut missing, mut bad_ids, mut not_part10, mut mismatched) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut sops: HashMap<String, String> = HashMap::new();
    let mut duplicates = Vec::new();
    for r in reached
        .iter()
        .filter(|r| level_of(&text(r.rec, tags::DIRECTORY_RECORD_TYPE)) == Level::Instance)
    {
        let Some(parts) = r
            .rec
            .get(tags::REFERENCED_FILE_ID)
            .and_then(|e| e.to_multi_str().ok())
        else {
            continue;
        };
        let parts: Vec<String> = parts
            .iter()
            .map(|p| p.trim_end_matches(['\0', ' ']).to_string())
            .collect();
        let id = parts.join("\\");
        if !file_id_ok(&parts) {
            bad_ids.push(id);
            continue;
        }
        let wanted = parts.join("/");
        let Some(path) = paths
            .iter()
            .find(|p| **p == wanted)
            .cloned()
            .or_else(|| by_upper.get(&wanted.to_ascii_uppercase()).cloned())
        else {
            missing.push(wanted);
            continue;
        };
        referenced.insert(path.clone());
        let header = match files.open(&path) {
            Ok(mut rd) => dicom::read_header(&mut rd, limits),
            Err(e) => Err(Check::new(
                "dicomdir.not_part10",
                Severity::Error,
                e.to_string(),
            )),
        };
        let Ok(obj) = header else {
            not_part10.push(path);
            continue;
        };
        let (inst, _) = dicom::instance(&obj);
        let expect = [
            (
                "SOPInstanceUID",
                text(r.rec, tags::REFERENCED_SOP_INSTANCE_UID_IN_FILE),
                &inst.sop_uid,
            ),
            (
                "SOPClassUID",
                text(r.rec, tags::REFERENCED_SOP_CLASS_UID_IN_FILE),
                &inst.sop_class_uid,
            ),
            (
                "TransferSyntaxUID",
                text(r.rec, tags::REFERENCED_TRANSFER_SYNTAX_UID_IN_FILE),
                &inst.transfer_syntax,
            ),
            ("SeriesInstanceUID", r.series_uid.clone(), &inst.series_uid),
            ("StudyInstanceUID", r.study_uid.clone(), &inst.study_uid),
            ("PatientID", r.patient_id.clone(), &inst.patient_id),
        ];
        for (attr, in_dir, in_file) in expect {
            if !in_dir.is_empty() && in_dir != *in_file {
                mismatched.push(serde_json::json!({ "file": path, "attribute": attr, "dicomdir": in_dir, "file_value": in_file }));
            }
        }
        if let Some(first) = sops.insert(inst.sop_uid.clone(), path.clone()) {
            duplicates.push(
                serde_json::json!({ "sop_instance_uid": inst.sop_uid, "files": [first, path] }),
            );
        }
        facts.instances.push((path, inst));
    }
    let orphans: Vec<&String> = paths.iter().filter(|p| !referenced.contains(*p)).collect();
    let named = |v: &[String]| v.iter().take(10).cloned().collect::<Vec<_>>().join(", ");
    if !bad_ids.is_empty() {
        checks.push(err(
            "dicomdir.bad_file_id",
            format!("invalid ReferencedFileID(s): {}", named(&bad_ids)),
            serde_json::json!({ "file_ids": bad_ids }),
        ));
    }
    if !missing.is_empty() {
        checks.push(err(
            "dicomdir.missing_file",
            format!(
                "{} referenced file(s) are not in the set: {}",
                missing.len(),
                named(&missing)
            ),
            serde_json::json!({ "files": missing }),
        ));
    }
    if !not_part10.is_empty() {
        checks.push(err(
            "dicomdir.not_part10",
            format!(
                "{} referenced file(s) are not DICOM Part-10: {}",
                not_part10.len(),
                named(&not_part10)
            ),
            serde_json::json!({ "files": not_part10 }),
        ));
    }
    if !mismatched.is_empty() {
        checks.push(err(
            "dicomdir.mismatch",
            format!(
                "{} attribute(s) differ between the DICOMDIR and the files",
                mismatched.len()
            ),
            serde_json::json!({ "mismatches": mismatched }),
        ));
    }
    if !duplicates.is_empty() {
        checks.push(err(
            "dicomdir.duplicate_instance",
            "the same SOP instance appears in more than one file",
            serde_json::json!({ "duplicates": duplicates }),
        ));
    }
    if !orphans.is_empty() {
        let list: Vec<String> = orphans.iter().map(|s| s.to_string()).collect();
        checks.push(err(
            "dicomdir.orphan_file",
            format!(
                "{} file(s) in the set are not referenced by the DICOMDIR: {}",
                list.len(),
                named(&list)
            ),
            serde_json::json!({ "files": list }),
        ));
    }
}
