//! File contents of each kind, exactly `size` bytes (or as close as the format allows),
//! that pass the gateway's checks under the `generic` profile.

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

use crate::scenario::{Kind, Rng};

/// CT Image Storage.
const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
/// Explicit VR Little Endian.
pub const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

/// Writes a file of `kind` and about `size` bytes to `path`; returns its length. Large
/// binaries are written a block at a time, never held whole.
pub fn write(
    kind: Kind,
    size: u64,
    rng: &mut Rng,
    n: u64,
    path: &std::path::Path,
) -> std::io::Result<u64> {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    let len = match kind {
        Kind::Pdf => write_all(&mut f, &pdf(size, rng))?,
        Kind::Dicom | Kind::DicomSet => {
            let ids = Series::new(rng, n);
            let sop = ids.uid(rng, 3);
            write_all(&mut f, &dicom(size, rng, &ids, &sop))?
        }
        Kind::Video => video(size, rng, &mut f)?,
    };
    f.flush()?;
    Ok(len)
}

/// The SHA-256 of a file's plaintext, hex: what the gateway's `file.indexed` event
/// must report for it.
pub fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(ctx
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn write_all(f: &mut impl std::io::Write, bytes: &[u8]) -> std::io::Result<u64> {
    f.write_all(bytes)?;
    Ok(bytes.len() as u64)
}

fn pdf(size: u64, rng: &mut Rng) -> Vec<u8> {
    // Page content of text operators, long enough to reach the size.
    let mut body = String::with_capacity(size as usize);
    while (body.len() as u64) < size.saturating_sub(600) {
        body += &format!("BT /F1 12 Tf 72 700 Td ({:016x}) Tj ET\n", rng.next());
    }
    gateway_fixtures::pdf::sample(&body, false, false)
}

fn video(size: u64, rng: &mut Rng, f: &mut impl std::io::Write) -> std::io::Result<u64> {
    let head = b"\0\0\0\x18ftypmp42\0\0\0\0mp42isom";
    f.write_all(head)?;
    let mut left = size.saturating_sub(head.len() as u64).max(8);
    let total = head.len() as u64 + left;
    let mut block = vec![0u8; 1 << 20];
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        rng.fill(&mut block[..n]);
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    Ok(total)
}

/// The identifiers instances of one series share.
pub struct Series {
    pub patient: String,
    pub study: String,
    pub series: String,
    n: u64,
}

impl Series {
    pub fn new(rng: &mut Rng, n: u64) -> Series {
        let mut s = Series {
            patient: format!("LT{}", n % 1000),
            study: String::new(),
            series: String::new(),
            n,
        };
        (s.study, s.series) = (s.uid(rng, 1), s.uid(rng, 2));
        s
    }

    pub fn uid(&self, rng: &mut Rng, kind: u32) -> String {
        format!("2.25.{}{kind}{}", rng.next() % 1_000_000_000, self.n)
    }
}

/// A CT instance of about `size` bytes (16-bit pixels of random noise).
pub fn dicom(size: u64, rng: &mut Rng, ids: &Series, sop: &str) -> Vec<u8> {
    let side = (((size.saturating_sub(1024)) / 2) as f64).sqrt().max(8.0) as u16;
    let mut pixels = vec![0u8; usize::from(side) * usize::from(side) * 2];
    rng.fill(&mut pixels);
    let mut obj = InMemDicomObject::new_empty();
    for (tag, vr, v) in [
        (tags::SOP_CLASS_UID, VR::UI, CT.to_string()),
        (tags::SOP_INSTANCE_UID, VR::UI, sop.to_string()),
        (tags::STUDY_INSTANCE_UID, VR::UI, ids.study.clone()),
        (tags::SERIES_INSTANCE_UID, VR::UI, ids.series.clone()),
        (tags::MODALITY, VR::CS, "CT".into()),
        (tags::PATIENT_ID, VR::LO, ids.patient.clone()),
        (tags::PATIENT_NAME, VR::PN, format!("LOAD^{}", ids.n % 1000)),
        (tags::STUDY_DATE, VR::DA, "20261123".into()),
    ] {
        obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
    }
    for (tag, v) in [
        (tags::ROWS, side),
        (tags::COLUMNS, side),
        (tags::BITS_ALLOCATED, 16),
        (tags::BITS_STORED, 16),
        (tags::SAMPLES_PER_PIXEL, 1),
    ] {
        obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
    }
    obj.put(DataElement::new(
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        PrimitiveValue::from("MONOCHROME2"),
    ));
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::from(pixels),
    ));
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(CT)
        .media_storage_sop_instance_uid(sop)
        .transfer_syntax(EXPLICIT_LE);
    let mut out = Vec::new();
    if let Ok(file) = obj.with_meta(meta) {
        let _ = file.write_all(&mut out);
    }
    out
}
