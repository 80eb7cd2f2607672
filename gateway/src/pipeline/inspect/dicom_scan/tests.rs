//! Encodings pydicom reads that the walk must hand to dicom-rs readable, and the
//! contradictions it must refuse with their own code.

use std::io::Write;

use crate::pipeline::inspect::dicom::{self, HeaderLimits};

const SOP: &str = "1.2.826.0.1.3680043.10.1.99";
const CT: &str = "1.2.840.10008.5.1.4.1.1.2";

/// An element in explicit VR little endian (`long`: the 32-bit length form).
fn explicit(group: u16, elem: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
    let mut v = value.to_vec();
    if v.len() % 2 == 1 {
        v.push(0);
    }
    let mut out = [group.to_le_bytes(), elem.to_le_bytes()].concat();
    out.extend_from_slice(vr);
    if matches!(vr, b"OB" | b"SQ" | b"UN") {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(v.len() as u16).to_le_bytes());
    }
    out.extend(v);
    out
}

fn implicit(group: u16, elem: u16, len: u32, value: &[u8]) -> Vec<u8> {
    let mut out = [group.to_le_bytes(), elem.to_le_bytes()].concat();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(value);
    out
}

/// Preamble, `DICM` and a meta group naming `ts` (none when empty).
fn file(ts: &str, data_set: &[u8]) -> Vec<u8> {
    let mut group = explicit(0x0002, 0x0002, b"UI", CT.as_bytes());
    group.extend(explicit(0x0002, 0x0003, b"UI", SOP.as_bytes()));
    if !ts.is_empty() {
        group.extend(explicit(0x0002, 0x0010, b"UI", ts.as_bytes()));
    }
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    out.extend(explicit(
        0x0002,
        0x0000,
        b"UL",
        &(group.len() as u32).to_le_bytes(),
    ));
    out.extend(group);
    out.extend_from_slice(data_set);
    out
}

fn identity() -> Vec<u8> {
    let mut d = explicit(0x0008, 0x0016, b"UI", CT.as_bytes());
    d.extend(explicit(0x0008, 0x0018, b"UI", SOP.as_bytes()));
    d
}

fn read(bytes: &[u8]) -> Result<dicom_object::DefaultDicomObject, crate::checks::Check> {
    let limits = HeaderLimits {
        max_bytes: 1 << 20,
        max_depth: 32,
    };
    dicom::read_header_sized(&mut &bytes[..], bytes.len() as u64, limits)
}

/// An undefined-length UN holding an implicit VR sequence (PS3.5 §6.2.2), items and
/// delimiters included.
fn un_sequence(closed: bool) -> Vec<u8> {
    let mut item = implicit(0x0009, 0x1001, 4, b"ab  ");
    item.extend(implicit(0x0009, 0x1002, 0xFFFF_FFFF, &[]));
    item.extend(implicit(
        0xFFFE,
        0xE000,
        10,
        &implicit(0x0009, 0x1003, 2, b"xy"),
    ));
    item.extend(implicit(0xFFFE, 0xE0DD, 0, &[]));
    let mut v = [0x0009u16.to_le_bytes(), 0x1010u16.to_le_bytes()].concat();
    v.extend_from_slice(b"UN\0\0");
    v.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
    v.extend(implicit(0xFFFE, 0xE000, 0xFFFF_FFFF, &item));
    v.extend(implicit(0xFFFE, 0xE00D, 0, &[]));
    if closed {
        v.extend(implicit(0xFFFE, 0xE0DD, 0, &[]));
    }
    v
}

#[test]
fn an_undefined_length_un_is_read_as_the_bytes_it_holds() {
    let mut ds = identity();
    let un = un_sequence(true);
    ds.extend(un.clone());
    ds.extend(explicit(0x0020, 0x000D, b"UI", b"1.2.3"));
    let obj = read(&file("1.2.840.10008.1.2.1", &ds)).expect("readable");
    let value = obj
        .get(dicom_core::Tag(0x0009, 0x1010))
        .expect("the UN element")
        .to_bytes()
        .unwrap();
    assert_eq!(&value[..], &un[12..], "everything up to its delimiter");
    assert_eq!(dicom::text(&obj, dicom_core::Tag(0x0020, 0x000D)), "1.2.3");

    let mut cut = identity();
    cut.extend(un_sequence(false));
    let err = read(&file("1.2.840.10008.1.2.1", &cut)).unwrap_err();
    assert_eq!(err.code, "dicom.bad_length");
}

#[test]
fn standard_attributes_written_as_un_are_read_as_text() {
    let mut ds = explicit(0x0008, 0x0016, b"UN", CT.as_bytes());
    ds.extend(explicit(0x0008, 0x0018, b"UN", SOP.as_bytes()));
    ds.extend(explicit(0x0028, 0x0008, b"UN", b"12"));
    let obj = read(&file("1.2.840.10008.1.2.1", &ds)).unwrap();
    let (inst, _) = dicom::instance(&obj);
    assert_eq!(
        (inst.sop_uid.as_str(), inst.sop_class_uid.as_str()),
        (SOP, CT)
    );
    assert_eq!(inst.number_of_frames, Some(12));
}

#[test]
fn implicit_data_under_an_explicit_syntax_and_a_missing_syntax_are_refused() {
    let mut ds = implicit(0x0008, 0x0016, CT.len() as u32 + 1, CT.as_bytes());
    ds.push(0);
    let err = read(&file("1.2.840.10008.1.2.4.50", &ds)).unwrap_err();
    assert_eq!(err.code, "dicom.syntax_mismatch");
    let err = read(&file("", &identity())).unwrap_err();
    assert_eq!(err.code, "dicom.missing_uid");
    assert_eq!(err.detail["missing"][0], "TransferSyntaxUID");
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut z = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(data).unwrap();
    z.finish().unwrap()
}

#[test]
fn a_deflated_data_set_is_walked_inflated_and_read() {
    let deflated = "1.2.840.10008.1.2.1.99";
    let obj = read(&file(deflated, &deflate(&identity()))).expect("readable");
    assert_eq!(dicom::instance(&obj).0.sop_uid, SOP);

    let mut lying = identity();
    lying.extend(explicit(0x0010, 0x0010, b"OB", &[]));
    let n = lying.len();
    lying[n - 4..].copy_from_slice(&0x7000_0000u32.to_le_bytes());
    let err = read(&file(deflated, &deflate(&lying))).unwrap_err();
    assert!(
        ["dicom.bad_length", "dicom.header_too_large"].contains(&err.code.as_str()),
        "{err:?}"
    );
}
