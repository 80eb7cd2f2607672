//! A DICOM set as a modality writes it to media: one patient, study and series of CT
//! instances in a folder and the DICOMDIR that guides them (PS3.10), with real record
//! offsets. Built over dicom-object by hand: dicom-rs reads DICOMDIRs but writes none.

use std::path::{Path, PathBuf};

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

use crate::content::{self, EXPLICIT_LE, Series};
use crate::scenario::Rng;

/// One file of a set, relative to the set's folder.
pub struct SetFile {
    pub rel: String,
    pub path: PathBuf,
    pub bytes: u64,
}

/// Writes `count` instances of `min..=max` bytes and then their DICOMDIR into `dir`;
/// the DICOMDIR is the last file listed (it is sent last).
pub fn write_set(
    dir: &Path,
    count: u32,
    (min, max): (u64, u64),
    rng: &mut Rng,
    n: u64,
) -> anyhow::Result<Vec<SetFile>> {
    std::fs::create_dir_all(dir)?;
    let ids = Series::new(rng, n);
    let mut files = Vec::new();
    let mut images = Vec::new();
    for i in 1..=count {
        let rel = format!("IM{i:06}");
        let sop = format!("{}.{i}", ids.uid(rng, 3));
        let size = rng.between(min, max);
        let bytes = content::dicom(size, rng, &ids, &sop);
        let path = dir.join(&rel);
        std::fs::write(&path, &bytes)?;
        files.push(SetFile {
            rel: rel.clone(),
            path,
            bytes: bytes.len() as u64,
        });
        images.push((rel, sop));
    }
    let bytes = dicomdir(&ids, &images)?;
    let path = dir.join("DICOMDIR");
    std::fs::write(&path, &bytes)?;
    files.push(SetFile {
        rel: "DICOMDIR".into(),
        path,
        bytes: bytes.len() as u64,
    });
    Ok(files)
}

/// The DICOMDIR: encoded once to learn where each record lands, then again with the
/// links filled in (UL values: the length does not change).
fn dicomdir(ids: &Series, images: &[(String, String)]) -> anyhow::Result<Vec<u8>> {
    let first = encode(ids, images, None)?;
    let offsets = gateway::pipeline::inspect::dicomdir::record_offsets(&first, EXPLICIT_LE)
        .ok_or_else(|| anyhow::anyhow!("DICOMDIR records cannot be located"))?;
    let linked = encode(ids, images, Some(&offsets))?;
    let again = gateway::pipeline::inspect::dicomdir::record_offsets(&linked, EXPLICIT_LE);
    anyhow::ensure!(
        again.as_deref() == Some(&offsets[..]),
        "DICOMDIR records moved"
    );
    Ok(linked)
}

fn put(obj: &mut InMemDicomObject, tag: Tag, vr: VR, v: impl Into<PrimitiveValue>) {
    obj.put(DataElement::new(tag, vr, v.into()));
}

/// A directory record; `next` and `lower` are byte offsets of other records (0: none).
fn record(kind: &str, next: u64, lower: u64) -> InMemDicomObject {
    let mut r = InMemDicomObject::new_empty();
    put(
        &mut r,
        tags::OFFSET_OF_THE_NEXT_DIRECTORY_RECORD,
        VR::UL,
        next as u32,
    );
    put(&mut r, tags::RECORD_IN_USE_FLAG, VR::US, 0xFFFFu16);
    put(
        &mut r,
        tags::OFFSET_OF_REFERENCED_LOWER_LEVEL_DIRECTORY_ENTITY,
        VR::UL,
        lower as u32,
    );
    put(&mut r, tags::DIRECTORY_RECORD_TYPE, VR::CS, kind);
    r
}

fn encode(
    ids: &Series,
    images: &[(String, String)],
    offsets: Option<&[u64]>,
) -> anyhow::Result<Vec<u8>> {
    let at = |i: usize| offsets.and_then(|o| o.get(i).copied()).unwrap_or(0);
    let mut patient = record("PATIENT", 0, at(1));
    put(&mut patient, tags::PATIENT_ID, VR::LO, ids.patient.as_str());
    put(&mut patient, tags::PATIENT_NAME, VR::PN, "LOAD^SET");
    let mut study = record("STUDY", 0, at(2));
    put(
        &mut study,
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        ids.study.as_str(),
    );
    put(&mut study, tags::STUDY_DATE, VR::DA, "20261123");
    let mut series = record("SERIES", 0, at(3));
    put(
        &mut series,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        ids.series.as_str(),
    );
    put(&mut series, tags::MODALITY, VR::CS, "CT");
    let mut records = vec![patient, study, series];
    for (i, (rel, sop)) in images.iter().enumerate() {
        let next = if i + 1 < images.len() { at(4 + i) } else { 0 };
        let mut image = record("IMAGE", next, 0);
        put(&mut image, tags::REFERENCED_FILE_ID, VR::CS, rel.as_str());
        put(
            &mut image,
            tags::REFERENCED_SOP_CLASS_UID_IN_FILE,
            VR::UI,
            "1.2.840.10008.5.1.4.1.1.2",
        );
        put(
            &mut image,
            tags::REFERENCED_SOP_INSTANCE_UID_IN_FILE,
            VR::UI,
            sop.as_str(),
        );
        put(
            &mut image,
            tags::REFERENCED_TRANSFER_SYNTAX_UID_IN_FILE,
            VR::UI,
            EXPLICIT_LE,
        );
        put(
            &mut image,
            tags::INSTANCE_NUMBER,
            VR::IS,
            (i + 1).to_string(),
        );
        records.push(image);
    }
    let mut dir = InMemDicomObject::new_empty();
    put(&mut dir, tags::FILE_SET_ID, VR::CS, "LOADTEST");
    let root = at(0) as u32;
    put(
        &mut dir,
        tags::OFFSET_OF_THE_FIRST_DIRECTORY_RECORD_OF_THE_ROOT_DIRECTORY_ENTITY,
        VR::UL,
        root,
    );
    put(
        &mut dir,
        tags::OFFSET_OF_THE_LAST_DIRECTORY_RECORD_OF_THE_ROOT_DIRECTORY_ENTITY,
        VR::UL,
        root,
    );
    put(&mut dir, tags::FILE_SET_CONSISTENCY_FLAG, VR::US, 0u16);
    dir.put(DataElement::new(
        tags::DIRECTORY_RECORD_SEQUENCE,
        VR::SQ,
        DataSetSequence::from(records),
    ));
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(uids::MEDIA_STORAGE_DIRECTORY_STORAGE)
        .media_storage_sop_instance_uid(format!("{}.9", ids.series))
        .transfer_syntax(EXPLICIT_LE);
    let mut out = Vec::new();
    dir.with_meta(meta)?.write_all(&mut out)?;
    Ok(out)
}
