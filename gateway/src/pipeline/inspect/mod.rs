//! Inspection: what a verified plaintext is, whether the tenant's profile takes it, and
//! what to index about it. The type comes from the content (magic bytes), never from
//! the name, so a renamed executable is still an executable. Then the format's own
//! inspector runs ([`pdf`], [`dicom`], [`zip`] with [`dicomdir`] sets) and, for the
//! `nhi-review` profile, the naming rules ([`naming`]).

pub mod cab;
mod cab_dir;
pub mod dicom;
pub mod dicom_charset;
pub mod dicom_json;
mod dicom_scan;
pub mod dicomdir;
mod dicomdir_offsets;
mod magic;
pub mod naming;
pub mod pdf;
mod pdf_nesting;
pub mod zip;
mod zip_eocd;

use std::io::{Read, Seek, SeekFrom};

pub use magic::{MediaType, sniff};

pub use crate::checks::{Check, Severity};
use crate::config::InspectConfig;
use crate::tenants::Profile;

/// What inspection found.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Inspection {
    pub media_type: MediaType,
    pub checks: Vec<Check>,
    pub metadata: serde_json::Value,
    /// DICOM instances to index: (path inside the upload, or empty for the file itself).
    pub instances: Vec<(String, dicom::Instance)>,
    /// A DICOMDIR uploaded on its own: its set is the folder it sits in, which the
    /// pipeline validates against the files already there.
    pub directory: bool,
}

impl Inspection {
    pub fn passed(&self) -> bool {
        !self.checks.iter().any(|c| c.severity == Severity::Error)
    }
}

/// The upload being inspected.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub name: &'a str,
    pub tenant: &'a str,
    pub profile: Profile,
    /// The request window its records must fall in (rule 3).
    pub window: &'a crate::pipeline::request::RecordWindow,
}

/// Types each profile accepts (rule 5 for `nhi-review`, plus ZIP batches, rule 8; `emr-download` takes
/// encrypted PDF records only; `generic` anything recognised that is not executable).
pub fn allowed(profile: Profile, t: MediaType) -> bool {
    use MediaType::*;
    match profile {
        Profile::NhiReview => matches!(
            t,
            Dicom
                | Text
                | Gif
                | Jpeg
                | Pict
                | Tiff
                | Bmp
                | Pdf
                | Html
                | Doc
                | Mpeg
                | Mp4
                | Xml
                | Zip
                | Cab
        ),
        Profile::EmrDownload => t == Pdf,
        Profile::Generic => !matches!(t, Executable | Unknown),
    }
}

/// The plaintext an inspector reads: decrypted on demand, so seeking is cheap and only
/// what is read costs anything.
pub trait Plaintext: Read + Seek + Send {}
impl<T: Read + Seek + Send> Plaintext for T {}

/// Only the type check, with the `generic` rules (used where no subject is at hand).
pub fn type_check(head: &[u8], profile: Profile) -> (MediaType, Check) {
    let media_type = sniff(head);
    if allowed(profile, media_type) {
        let c = Check::new(
            "type.allowed",
            Severity::Info,
            format!("content is {}", media_type.description()),
        );
        return (media_type, c);
    }
    let code = if media_type == MediaType::Unknown {
        "type.unknown"
    } else {
        "type.not_allowed"
    };
    let c = Check::new(
        code,
        Severity::Error,
        format!(
            "{} is not accepted for this profile",
            media_type.description()
        ),
    )
    .with_detail(serde_json::json!({ "media_type": media_type.mime() }));
    (media_type, c)
}

/// Runs every check `subject`'s profile asks for on `plaintext` (`len` bytes).
pub fn inspect(
    plaintext: &mut dyn Plaintext,
    len: u64,
    subject: Subject<'_>,
    cfg: &InspectConfig,
) -> std::io::Result<Inspection> {
    let mut head = Vec::with_capacity(4096);
    plaintext.seek(SeekFrom::Start(0))?;
    plaintext.take(4096).read_to_end(&mut head)?;
    let (media_type, type_check) = type_check(&head, subject.profile);
    let mut out = Inspection {
        media_type,
        checks: vec![type_check],
        metadata: serde_json::json!({ "media_type": media_type.mime() }),
        instances: Vec::new(),
        directory: false,
    };
    if subject.name.starts_with("dicomweb/") && media_type != MediaType::Dicom {
        // Stored through DICOMweb: a part must be a DICOM instance, whatever the
        // profile would otherwise take.
        out.checks.push(Check::new(
            "dicomweb.not_dicom",
            Severity::Error,
            format!(
                "a DICOMweb part must be a DICOM instance, not {}",
                media_type.mime()
            ),
        ));
    }
    if !out.passed() {
        return Ok(out);
    }
    let case = naming_checks(&mut out, subject, media_type);
    plaintext.seek(SeekFrom::Start(0))?;
    match media_type {
        MediaType::Pdf => inspect_pdf(plaintext, len, subject, cfg, case.as_ref(), &mut out)?,
        MediaType::Dicom => {
            match dicom::read_header_sized(plaintext, len, dicom::HeaderLimits::of(cfg)) {
                Ok(obj) if dicomdir::is_directory(&obj) => out.directory = true,
                Ok(obj) => {
                    let (inst, checks) = dicom::instance(&obj);
                    out.checks.extend(checks);
                    out.checks.extend(dicom::study_check(subject.name, &inst));
                    out.metadata["dicom"] = serde_json::to_value(&inst).unwrap_or_default();
                    out.instances.push((String::new(), inst));
                }
                Err(c) => out.checks.push(c),
            }
        }
        MediaType::Zip | MediaType::Cab => {
            let limits = zip::ZipLimits {
                max_entries: cfg.zip_max_entries,
                max_total_bytes: cfg.zip_max_total_bytes,
                max_ratio: cfg.zip_max_ratio,
            };
            let profile = subject.profile;
            let ok = move |t: MediaType| !is_archive(t) && allowed(profile, t);
            let header = dicom::HeaderLimits::of(cfg);
            let (key, entries, set, checks) = if media_type == MediaType::Zip {
                let (f, c) = zip::inspect(plaintext, limits, header, &ok)?;
                ("zip", f.entries, f.set, c)
            } else {
                let (f, c) = cab::inspect(plaintext, len, limits, header, &ok)?;
                ("cab", f.entries, f.set, c)
            };
            out.checks.extend(checks);
            out.metadata[key] = serde_json::json!({ "entries": entries });
            if let Some(set) = set {
                out.metadata["dicomdir"] = serde_json::json!({
                    "patients": set.patients, "studies": set.studies,
                    "series": set.series, "instances": set.instances.len(),
                });
                out.instances = set.instances;
            }
        }
        _ => {}
    }
    Ok(out)
}

/// Archives are not accepted inside archives (no nesting to unpack).
fn is_archive(t: MediaType) -> bool {
    matches!(t, MediaType::Zip | MediaType::Cab)
}

/// The `nhi-review` naming rules: batch archives by rule 8, review records by rule 7
/// (DICOM files and DICOMDIRs need no naming, rule 6). Returns the parsed case name.
fn naming_checks(
    out: &mut Inspection,
    subject: Subject<'_>,
    t: MediaType,
) -> Option<naming::CaseName> {
    // The review rules name no pattern for CAB archives (rule 16), nor DICOM (rule 6).
    if subject.profile != Profile::NhiReview || matches!(t, MediaType::Dicom | MediaType::Cab) {
        return None;
    }
    if t == MediaType::Zip {
        match naming::check_batch_name(subject.name, subject.tenant) {
            Ok(b) => out.metadata["batch"] = serde_json::to_value(b).unwrap_or_default(),
            Err(c) => out.checks.push(c),
        }
        return None;
    }
    match naming::check_case_name(subject.name) {
        Ok((check, case)) => {
            out.checks.push(check);
            out.metadata["case"] = serde_json::to_value(&case).unwrap_or_default();
            Some(case)
        }
        Err(c) => {
            out.checks.push(c);
            None
        }
    }
}

fn inspect_pdf(
    plaintext: &mut dyn Plaintext,
    len: u64,
    subject: Subject<'_>,
    cfg: &InspectConfig,
    case: Option<&naming::CaseName>,
    out: &mut Inspection,
) -> std::io::Result<()> {
    let policy = pdf::PdfPolicy {
        require_outline: case.is_some_and(|c| {
            cfg.nhi_outline_categories
                .iter()
                .any(|k| k.starts_with(c.category))
        }),
        require_encryption: subject.profile == Profile::EmrDownload,
        max_depth: cfg.pdf_max_depth,
    };
    let (facts, checks) = pdf::inspect(plaintext, len, cfg.pdf_max_bytes, policy)?;
    out.checks.extend(checks);
    if subject.profile == Profile::EmrDownload {
        out.checks.push(pdf::record_date_check(
            facts.creation_date.as_deref(),
            subject.window,
        ));
    }
    out.metadata["pdf"] = serde_json::to_value(&facts).unwrap_or_default();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspect_all(bytes: &[u8], profile: Profile) -> Inspection {
        let subject = Subject {
            name: "12A03123345.pdf",
            tenant: "3501200000",
            profile,
            window: &crate::pipeline::request::RecordWindow {
                earliest_day: 0,
                reference_day: 0,
                months: 6,
                basis: "upload".into(),
            },
        };
        let cfg = InspectConfig::default();
        inspect(
            &mut std::io::Cursor::new(bytes),
            bytes.len() as u64,
            subject,
            &cfg,
        )
        .unwrap()
    }

    #[test]
    fn a_renamed_executable_is_refused_whatever_its_name() {
        let exe: &[u8] = b"MZ\x90\x00\x03\x00\x00\x00";
        for profile in [Profile::NhiReview, Profile::EmrDownload, Profile::Generic] {
            let i = inspect_all(exe, profile);
            assert!(!i.passed());
            assert_eq!(i.checks[0].code, "type.not_allowed");
        }
        let jpeg: &[u8] = b"\xff\xd8\xff\xe0";
        assert!(
            !inspect_all(jpeg, Profile::EmrDownload).passed(),
            "emr-download takes PDF only"
        );
        assert!(inspect_all(jpeg, Profile::Generic).passed());
        let broken_pdf: &[u8] = b"%PDF-1.7\n%%EOF\n";
        let i = inspect_all(broken_pdf, Profile::Generic);
        let codes: Vec<&str> = i.checks.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(
            codes,
            ["type.allowed", "pdf.invalid"],
            "typed by magic, then parsed"
        );
    }
}
