//! A DICOM set as a modality writes it to media: one patient, study and series of CT
//! instances in a folder and the DICOMDIR that guides them (PS3.10, written by
//! `gateway_fixtures::dicomdir`).

use std::path::{Path, PathBuf};

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

/// The set's DICOMDIR, written by the fixtures' independent writer.
fn dicomdir(ids: &Series, images: &[(String, String)]) -> anyhow::Result<Vec<u8>> {
    let set = gateway_fixtures::dicomdir::SetIds {
        file_set: "LOADTEST",
        patient: &ids.patient,
        patient_name: "LOAD^SET",
        study: &ids.study,
        study_date: "20261123",
        series: &ids.series,
        modality: "CT",
        sop_class: "1.2.840.10008.5.1.4.1.1.2",
        transfer_syntax: EXPLICIT_LE,
    };
    gateway_fixtures::dicomdir::dicomdir(&set, images).map_err(|e| anyhow::anyhow!("{e}"))
}
