//! Hand-built DICOM Part-10 files for the hostile cases no tool writes on purpose
//! (deep sequences, impossible lengths): explicit VR little endian, element by element;
//! and real DICOMDIR sets written by pydicom ([`make_set`]).

const SOP_CLASS: &str = "1.2.840.10008.5.1.4.1.1.2";
const EXPLICIT_LE: &str = "1.2.840.10008.1.2.1";

/// One element: tag, VR and value (padded to an even length as DICOM wants).
pub fn element(group: u16, elem: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
    let mut v = value.to_vec();
    if v.len() % 2 == 1 {
        v.push(if vr == b"UI" || vr == b"OB" { 0 } else { b' ' });
    }
    let mut out = Vec::new();
    out.extend_from_slice(&group.to_le_bytes());
    out.extend_from_slice(&elem.to_le_bytes());
    out.extend_from_slice(vr);
    if matches!(vr, b"OB" | b"OW" | b"SQ" | b"UN" | b"UT") {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(v.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(&v);
    out
}

/// Preamble, `DICM` and a file meta group for a CT instance `sop_uid`.
fn meta(sop_uid: &str) -> Vec<u8> {
    let mut group = Vec::new();
    group.extend(element(0x0002, 0x0001, b"OB", &[0, 1]));
    group.extend(element(0x0002, 0x0002, b"UI", SOP_CLASS.as_bytes()));
    group.extend(element(0x0002, 0x0003, b"UI", sop_uid.as_bytes()));
    group.extend(element(0x0002, 0x0010, b"UI", EXPLICIT_LE.as_bytes()));
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    out.extend(element(
        0x0002,
        0x0000,
        b"UL",
        &(group.len() as u32).to_le_bytes(),
    ));
    out.extend(group);
    out
}

/// The identifying attributes of a CT instance.
fn identity(sop_uid: &str) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(element(0x0008, 0x0016, b"UI", SOP_CLASS.as_bytes()));
    out.extend(element(0x0008, 0x0018, b"UI", sop_uid.as_bytes()));
    out.extend(element(0x0008, 0x0060, b"CS", b"CT"));
    out.extend(element(0x0010, 0x0020, b"LO", b"P-1"));
    out.extend(element(
        0x0020,
        0x000D,
        b"UI",
        b"1.2.826.0.1.3680043.10.1.1",
    ));
    out.extend(element(
        0x0020,
        0x000E,
        b"UI",
        b"1.2.826.0.1.3680043.10.1.2",
    ));
    out
}

/// A valid small CT instance.
pub fn instance(sop_uid: &str) -> Vec<u8> {
    let mut out = meta(sop_uid);
    out.extend(identity(sop_uid));
    out
}

/// A CT instance whose Content Sequence nests `levels` sequences deep (undefined
/// lengths): about 36 bytes a level, so 20,000 levels stay under 1 MB.
pub fn deep_sequences(sop_uid: &str, levels: usize) -> Vec<u8> {
    let mut out = meta(sop_uid);
    out.extend(identity(sop_uid));
    let open_seq = [
        0x40, 0x00, 0x30, 0xA7, b'S', b'Q', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF,
    ];
    let open_item = [0xFE, 0xFF, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF];
    let close_item = [0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0];
    let close_seq = [0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0];
    for _ in 0..levels {
        out.extend_from_slice(&open_seq);
        out.extend_from_slice(&open_item);
    }
    for _ in 0..levels {
        out.extend_from_slice(&close_item);
        out.extend_from_slice(&close_seq);
    }
    out
}

/// A CT instance with an OB element that declares ~2 GiB but carries a few bytes.
pub fn huge_length(sop_uid: &str) -> Vec<u8> {
    let mut out = meta(sop_uid);
    out.extend(identity(sop_uid));
    out.extend_from_slice(&[0x09, 0x00, 0x10, 0x10, b'O', b'B', 0, 0]);
    out.extend_from_slice(&0x7FFF_FFF0u32.to_le_bytes());
    out.extend_from_slice(&[0u8; 64]);
    out
}

/// A DICOMDIR set in `dir` made by pydicom's FileSet (tests/interop/make_set.py):
/// `count` small CT instances and, with `big` > 0, one more of about `big` bytes.
/// Returns the script's facts: `members` (paths relative to `dir`, DICOMDIR not among
/// them) and their sizes.
pub fn make_set(dir: &std::path::Path, count: u32, big: u64) -> serde_json::Value {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/make_set.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(dir)
        .args([count.to_string(), big.to_string()])
        .output()
        .expect("python3 runs (scripts/test-setup.sh installs pydicom)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
