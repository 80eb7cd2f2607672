//! CAB archives (rule 16: the review channel's packaging for DICOMDIR sets) made
//! by a real CAB tool, Debian's `gcab`, and checked with `cabextract`; then the hostile
//! forms, made by editing gcab's output the way a broken or malicious packer would.

use std::path::{Path, PathBuf};
use std::process::Command;

use gateway::config::InspectConfig;
use gateway::pipeline::inspect::{Inspection, Subject, inspect};
use gateway::tenants::Profile;

fn inspect_bytes(bytes: &[u8], profile: Profile, cfg: &InspectConfig) -> Inspection {
    let subject = Subject {
        name: "set.cab",
        tenant: "3501200000",
        profile,
        window: &gateway::pipeline::request::RecordWindow::before_upload(0, 6),
    };
    inspect(
        &mut std::io::Cursor::new(bytes),
        bytes.len() as u64,
        subject,
        cfg,
    )
    .unwrap()
}

fn errors(i: &Inspection) -> Vec<&str> {
    i.checks
        .iter()
        .filter(|c| c.severity == gateway::checks::Severity::Error)
        .map(|c| c.code.as_str())
        .collect()
}

/// `gcab -c` in `dir` of `files` (relative paths); MSZIP when `compress`.
fn gcab(dir: &Path, files: &[&str], compress: bool) -> Vec<u8> {
    let out = dir.join("out.cab");
    let _ = std::fs::remove_file(&out);
    let mut c = Command::new("gcab");
    c.current_dir(dir).arg("-c");
    if compress {
        c.arg("-z");
    }
    let status = c
        .arg(&out)
        .args(files)
        .status()
        .expect("gcab is installed (scripts/test-setup.sh)");
    assert!(status.success());
    let tested = Command::new("cabextract")
        .arg("-t")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        tested.status.success(),
        "cabextract: {}",
        String::from_utf8_lossy(&tested.stdout)
    );
    std::fs::read(&out).unwrap()
}

/// A pydicom FileSet of `count` small instances and one of `big` bytes, in `dir`;
/// returns its file list (DICOMDIR first).
fn make_set(dir: &Path, count: u32, big: u64) -> Vec<String> {
    let facts = gateway_tests::dicom::make_set(dir, count, big);
    let mut files = vec!["DICOMDIR".to_string()];
    files.extend(
        facts["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_string()),
    );
    files
}

fn refs(files: &[String]) -> Vec<&str> {
    files.iter().map(String::as_str).collect()
}

/// Replaces the first `from` in the cabinet's directory (before the data) with `to`.
fn patch(cab: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let at = cab
        .windows(from.len())
        .position(|w| w == from)
        .expect("the pattern is in the cabinet");
    cab[at..at + to.len()].copy_from_slice(to);
}

#[test]
fn a_dicomdir_set_packed_by_gcab_is_validated_like_a_zip_batch() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_set(dir.path(), 200, 300_000);
    for compress in [true, false] {
        let cab = gcab(dir.path(), &refs(&files), compress);
        let i = inspect_bytes(&cab, Profile::NhiReview, &InspectConfig::default());
        assert!(i.passed(), "{:?}", i.checks);
        let codes: Vec<&str> = i.checks.iter().map(|c| c.code.as_str()).collect();
        assert!(
            codes.contains(&"cab.valid") && codes.contains(&"dicomdir.valid"),
            "{codes:?}"
        );
        assert_eq!(i.instances.len(), 201);
        assert_eq!(i.metadata["dicomdir"]["instances"], 201);
        assert_eq!(i.metadata["cab"]["entries"].as_array().unwrap().len(), 202);
    }
}

#[test]
fn a_set_missing_a_file_or_carrying_a_program_fails_with_its_code() {
    let dir = tempfile::tempdir().unwrap();
    let files = make_set(dir.path(), 4, 0);
    let cab = gcab(dir.path(), &refs(&files[..files.len() - 1]), true);
    let i = inspect_bytes(&cab, Profile::NhiReview, &InspectConfig::default());
    assert_eq!(errors(&i), ["dicomdir.missing_file"]);

    std::fs::write(dir.path().join("setup.exe"), b"MZ\x90\x00\x03\x00\x00\x00").unwrap();
    let mut with_exe = refs(&files);
    with_exe.push("setup.exe");
    let i = inspect_bytes(
        &gcab(dir.path(), &with_exe, true),
        Profile::NhiReview,
        &InspectConfig::default(),
    );
    assert!(
        errors(&i).contains(&"cab.entry_not_allowed"),
        "{:?}",
        i.checks
    );

    std::fs::write(
        dir.path().join("inner.zip"),
        b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
    )
    .unwrap();
    let i = inspect_bytes(
        &gcab(dir.path(), &["inner.zip"], true),
        Profile::Generic,
        &InspectConfig::default(),
    );
    assert_eq!(
        errors(&i),
        ["cab.entry_not_allowed"],
        "no archive in an archive"
    );
}

#[test]
fn hostile_cabinets_are_refused_from_their_directory() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("AAAA"), b"first file\n").unwrap();
    std::fs::write(dir.path().join("BBBB"), b"second file\n").unwrap();
    std::fs::write(dir.path().join("zeros"), vec![0u8; 4 << 20]).unwrap();
    let cfg = InspectConfig::default();
    let good = gcab(dir.path(), &["AAAA", "BBBB"], true);
    assert!(inspect_bytes(&good, Profile::Generic, &cfg).passed());

    let mut slip = good.clone();
    patch(&mut slip, b"AAAA\0", b"..\\A\0");
    assert_eq!(
        errors(&inspect_bytes(&slip, Profile::Generic, &cfg)),
        ["cab.unsafe_path"]
    );

    let mut dup = good.clone();
    patch(&mut dup, b"BBBB\0", b"AAAA\0");
    assert_eq!(
        errors(&inspect_bytes(&dup, Profile::Generic, &cfg)),
        ["cab.duplicate_name"]
    );

    let mut case = good.clone();
    patch(&mut case, b"BBBB\0", b"aaaa\0");
    assert_eq!(
        errors(&inspect_bytes(&case, Profile::Generic, &cfg)),
        ["cab.case_collision"]
    );

    // Spanned: the header's "next cabinet" flag (offset 30).
    let mut spanned = good.clone();
    spanned[30] |= 0x2;
    assert_eq!(
        errors(&inspect_bytes(&spanned, Profile::Generic, &cfg)),
        ["cab.spanned"]
    );

    // Quantum compression (type 2 in the folder entry, right after the 36-byte header).
    let mut quantum = good.clone();
    quantum[36 + 6] = 0x02;
    quantum[36 + 7] = 0x0a;
    assert_eq!(
        errors(&inspect_bytes(&quantum, Profile::Generic, &cfg)),
        ["cab.unsupported_compression"]
    );

    // A file's place in its folder that overlaps the one before it: the second CFFILE's
    // uoffFolderStart (its 4 bytes after the 4-byte size) pointed back at 0.
    let mut lying = good.clone();
    let second = lying.windows(5).position(|w| w == b"AAAA\0").unwrap() + 5;
    lying[second + 4..second + 8].copy_from_slice(&0u32.to_le_bytes());
    assert_eq!(
        errors(&inspect_bytes(&lying, Profile::Generic, &cfg)),
        ["cab.invalid"]
    );

    let cut = &good[..good.len() - 10];
    assert_eq!(
        errors(&inspect_bytes(cut, Profile::Generic, &cfg)),
        ["cab.invalid"]
    );
    assert_eq!(
        errors(&inspect_bytes(&good[..20], Profile::Generic, &cfg)),
        ["cab.invalid"]
    );

    // A bomb: 4 MiB of zeros in a few KiB, against a ratio of 20.
    let bomb = gcab(dir.path(), &["zeros"], true);
    let tight = InspectConfig {
        zip_max_ratio: 20,
        ..InspectConfig::default()
    };
    assert_eq!(
        errors(&inspect_bytes(&bomb, Profile::Generic, &tight)),
        ["cab.bomb"]
    );
    let few = InspectConfig {
        zip_max_entries: 1,
        ..InspectConfig::default()
    };
    assert_eq!(
        errors(&inspect_bytes(&good, Profile::Generic, &few)),
        ["cab.bomb"]
    );
    let _: PathBuf = dir.path().to_owned();
}
