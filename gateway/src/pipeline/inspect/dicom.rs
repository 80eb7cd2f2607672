//! DICOM Part-10 headers with `dicom-object`, read up to (not including) the pixel data,
//! so a 2 GiB CT series costs what its headers cost. The fields indexed are the four
//! query levels patient → study → series → instance (Orthanc's "main tags").
//!
//! Reading is bounded: at most `max_header_bytes` are handed to the parser, so a file
//! with an enormous element before the pixel data fails with `dicom.header_too_large`
//! instead of filling memory.

use std::io::Read;

use dicom_dictionary_std::tags;
use dicom_object::file::ReadPreamble;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};

use crate::checks::{Check, Severity};

/// The indexed fields of one instance.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Instance {
    pub patient_id: String,
    pub patient_name: String,
    pub study_uid: String,
    pub series_uid: String,
    pub sop_uid: String,
    pub sop_class_uid: String,
    pub transfer_syntax: String,
    pub modality: String,
    pub study_date: String,
    pub study_time: String,
    pub accession_number: String,
    pub institution_name: String,
    pub number_of_frames: Option<u32>,
    /// What viewers list studies, series and instances by (QIDO-RS).
    pub patient_birth_date: String,
    pub patient_sex: String,
    pub study_description: String,
    pub study_id: String,
    pub referring_physician: String,
    pub series_description: String,
    pub series_number: String,
    pub instance_number: String,
    /// The other short top-level attributes as DICOM JSON
    /// ([`super::dicom_json::indexable`]), for `includefield` and matching.
    #[serde(default)]
    pub attributes: String,
}

/// The index row of an instance found at `path` inside the file (empty: the file).
pub fn to_row(path: String, i: Instance) -> crate::backends::catalog::DicomRow {
    crate::backends::catalog::DicomRow {
        path,
        patient_id: i.patient_id,
        patient_name: i.patient_name,
        study_uid: i.study_uid,
        series_uid: i.series_uid,
        sop_uid: i.sop_uid,
        sop_class_uid: i.sop_class_uid,
        transfer_syntax: i.transfer_syntax,
        modality: i.modality,
        study_date: i.study_date,
        study_time: i.study_time,
        accession_number: i.accession_number,
        institution_name: i.institution_name,
        number_of_frames: i.number_of_frames,
        patient_birth_date: i.patient_birth_date,
        patient_sex: i.patient_sex,
        study_description: i.study_description,
        study_id: i.study_id,
        referring_physician: i.referring_physician,
        series_description: i.series_description,
        series_number: i.series_number,
        instance_number: i.instance_number,
        attributes: i.attributes,
    }
}

/// A string attribute, trimmed of DICOM padding, ISO 2022 escapes decoded
/// ([`super::dicom_charset`]); empty when absent. A standard attribute written with
/// VR UN (explicit VR files converted from implicit ones, as PS3.5 §6.2.2 allows)
/// holds its text as bytes; dicom-rs keeps them as numbers, so they are read as text
/// here, as pydicom reads such an attribute by the dictionary's VR.
pub fn text(obj: &InMemDicomObject, tag: dicom_core::Tag) -> String {
    obj.get(tag)
        .and_then(|e| {
            if e.vr() == dicom_core::VR::UN {
                let bytes = e.to_bytes().ok()?;
                return Some(String::from_utf8_lossy(&bytes).into_owned().into());
            }
            e.to_str().ok()
        })
        .map(|s: std::borrow::Cow<'_, str>| {
            let s = super::dicom_charset::decode(&s).map_or(s, Into::into);
            s.trim_end_matches(['\0', ' ']).trim_start().to_string()
        })
        .unwrap_or_default()
}

/// The study a name puts an instance in: `dicomweb/studies/<StudyInstanceUID>/…` is
/// where STOW-RS stores the parts of a request to `/studies/{study}` (and where any
/// upload may name its study the same way).
pub fn study_named_in(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("dicomweb/studies/")?;
    let (uid, file) = rest.split_once('/')?;
    (!file.is_empty()).then_some(uid)
}

/// `dicomweb.study_mismatch` when the instance is not of the study its name says.
pub fn study_check(name: &str, inst: &Instance) -> Option<Check> {
    let expected = study_named_in(name)?;
    (inst.study_uid != expected).then(|| {
        Check::new(
            "dicomweb.study_mismatch",
            Severity::Error,
            format!(
                "the instance belongs to study {}, not to study {expected} it was stored to",
                inst.study_uid
            ),
        )
        .with_detail(serde_json::json!({
            "expected": expected,
            "found": inst.study_uid,
            "sop_instance_uid": inst.sop_uid,
            "sop_class_uid": inst.sop_class_uid,
        }))
    })
}

/// A DICOM UID: dot-separated numbers, no leading zeros, at most 64 characters.
pub fn uid_ok(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 64
        && uid.split('.').all(|c| {
            !c.is_empty()
                && c.bytes().all(|b| b.is_ascii_digit())
                && (c == "0" || !c.starts_with('0'))
        })
}

/// Counts what the parser consumed, to tell "too large" from "malformed".
struct Limited<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// How much of a DICOM header is read, and how deep its sequences may nest.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct HeaderLimits {
    pub max_bytes: u64,
    pub max_depth: u32,
}

impl HeaderLimits {
    pub fn of(cfg: &crate::config::InspectConfig) -> HeaderLimits {
        HeaderLimits {
            max_bytes: cfg.dicom_max_header_bytes,
            max_depth: cfg.dicom_max_depth,
        }
    }
}

impl Default for HeaderLimits {
    fn default() -> Self {
        HeaderLimits::of(&crate::config::InspectConfig::default())
    }
}

/// Reads the header (preamble, meta group, data set up to the pixel data). Its
/// structure is walked first ([`super::dicom_scan`]): lengths beyond the file or
/// their enclosing item and sequences nested deeper than `limits.max_depth` are
/// refused before dicom-rs sees a byte.
pub fn read_header(src: &mut dyn Read, limits: HeaderLimits) -> Result<DefaultDicomObject, Check> {
    read_header_sized(src, u64::MAX, limits)
}

/// [`read_header`] of a file known to be `len` bytes long: a length beyond its end is
/// `dicom.bad_length` (otherwise only the header limit stops it).
pub fn read_header_sized(
    src: &mut dyn Read,
    len: u64,
    limits: HeaderLimits,
) -> Result<DefaultDicomObject, Check> {
    let header = match super::dicom_scan::read(src, len, limits.max_bytes, limits.max_depth) {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(check)) => return Err(check),
        Err(e) => {
            return Err(Check::new(
                "dicom.invalid",
                Severity::Error,
                format!("the DICOM file could not be read: {e}"),
            ));
        }
    };
    let full = header.len() as u64 >= limits.max_bytes;
    let mut limited = Limited {
        inner: &header[..],
        left: limits.max_bytes,
    };
    let result = OpenFileOptions::new()
        .read_preamble(ReadPreamble::Always)
        .read_until(tags::PIXEL_DATA)
        .from_reader(&mut limited);
    match result {
        Ok(obj) => Ok(obj),
        Err(_) if limited.left == 0 || full => Err(Check::new(
            "dicom.header_too_large",
            Severity::Error,
            format!("the DICOM header is larger than {} bytes", limits.max_bytes),
        )),
        Err(e) => Err(Check::new(
            "dicom.invalid",
            Severity::Error,
            format!("not a readable DICOM Part-10 file: {e}"),
        )),
    }
}

/// Extracts the indexed fields and checks UIDs and the meta group's agreement.
pub fn instance(obj: &DefaultDicomObject) -> (Instance, Vec<Check>) {
    let meta = obj.meta();
    let trim = |s: &str| s.trim_end_matches(['\0', ' ']).to_string();
    let inst = Instance {
        patient_id: text(obj, tags::PATIENT_ID),
        patient_name: text(obj, tags::PATIENT_NAME),
        study_uid: text(obj, tags::STUDY_INSTANCE_UID),
        series_uid: text(obj, tags::SERIES_INSTANCE_UID),
        sop_uid: text(obj, tags::SOP_INSTANCE_UID),
        sop_class_uid: text(obj, tags::SOP_CLASS_UID),
        transfer_syntax: trim(&meta.transfer_syntax),
        modality: text(obj, tags::MODALITY),
        study_date: text(obj, tags::STUDY_DATE),
        study_time: text(obj, tags::STUDY_TIME),
        accession_number: text(obj, tags::ACCESSION_NUMBER),
        institution_name: text(obj, tags::INSTITUTION_NAME),
        number_of_frames: text(obj, tags::NUMBER_OF_FRAMES).parse::<u32>().ok(),
        patient_birth_date: text(obj, tags::PATIENT_BIRTH_DATE),
        patient_sex: text(obj, tags::PATIENT_SEX),
        study_description: text(obj, tags::STUDY_DESCRIPTION),
        study_id: text(obj, tags::STUDY_ID),
        referring_physician: text(obj, tags::REFERRING_PHYSICIAN_NAME),
        series_description: text(obj, tags::SERIES_DESCRIPTION),
        series_number: text(obj, tags::SERIES_NUMBER),
        instance_number: text(obj, tags::INSTANCE_NUMBER),
        attributes: super::dicom_json::indexable(obj).to_string(),
    };
    let mut checks = Vec::new();
    let uids = [
        ("StudyInstanceUID", &inst.study_uid),
        ("SeriesInstanceUID", &inst.series_uid),
        ("SOPInstanceUID", &inst.sop_uid),
        ("SOPClassUID", &inst.sop_class_uid),
        ("TransferSyntaxUID", &inst.transfer_syntax),
    ];
    let missing: Vec<&str> = uids
        .iter()
        .filter(|(_, v)| v.is_empty())
        .map(|(k, _)| *k)
        .collect();
    if !missing.is_empty() {
        checks.push(
            Check::new(
                "dicom.missing_uid",
                Severity::Error,
                format!("required identifiers are missing: {}", missing.join(", ")),
            )
            .with_detail(serde_json::json!({ "missing": missing })),
        );
    }
    let bad: Vec<serde_json::Value> = uids
        .iter()
        .filter(|(_, v)| !v.is_empty() && !uid_ok(v))
        .map(|(k, v)| serde_json::json!({ "attribute": k, "value": v }))
        .collect();
    if !bad.is_empty() {
        checks.push(
            Check::new("dicom.uid_syntax", Severity::Error, "malformed UID(s)")
                .with_detail(serde_json::json!({ "uids": bad })),
        );
    }
    let meta_sop = trim(&meta.media_storage_sop_instance_uid);
    let meta_class = trim(&meta.media_storage_sop_class_uid);
    if (!inst.sop_uid.is_empty() && meta_sop != inst.sop_uid)
        || (!inst.sop_class_uid.is_empty() && meta_class != inst.sop_class_uid)
    {
        checks.push(
            Check::new(
                "dicom.meta_mismatch",
                Severity::Error,
                "the file meta group names another SOP instance or class than the data set",
            )
            .with_detail(serde_json::json!({
                "meta": { "sop_instance_uid": meta_sop, "sop_class_uid": meta_class },
                "dataset": { "sop_instance_uid": inst.sop_uid, "sop_class_uid": inst.sop_class_uid },
            })),
        );
    }
    if checks.is_empty() {
        checks.push(Check::new(
            "dicom.header",
            Severity::Info,
            format!(
                "{} instance {} of study {} (transfer syntax {})",
                if inst.modality.is_empty() {
                    "DICOM"
                } else {
                    &inst.modality
                },
                inst.sop_uid,
                inst.study_uid,
                inst.transfer_syntax
            ),
        ));
    }
    (inst, checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_syntax_follows_part_5() {
        for ok in ["1.2.840.10008.1.2.1", "0.1", "2.25.0"] {
            assert!(uid_ok(ok), "{ok}");
        }
        for bad in ["", "1..2", "1.02", "1.2.a", &"1.".repeat(40)] {
            assert!(!uid_ok(bad), "{bad}");
        }
    }
}
