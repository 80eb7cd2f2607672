//! The inspectors against files made by tools nobody here wrote — pydicom's bundled
//! real-world DICOM files and DICOMDIR set, qpdf-normalised and qpdf-encrypted PDFs,
//! Python zipfile archives — with the expected facts as pydicom and qpdf report them
//! (`interop/make_inspect_data.py`). One assertion per check code, pass and fail.

use gateway::pipeline::request::RecordWindow;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use gateway::config::InspectConfig;
use gateway::pipeline::inspect::{Inspection, Subject, inspect};
use gateway::tenants::Profile;

const TENANT: &str = "3501200000";

struct Data {
    _dir: tempfile::TempDir,
    path: PathBuf,
    expected: serde_json::Value,
}

fn data() -> &'static Data {
    static DATA: OnceLock<Data> = OnceLock::new();
    DATA.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/make_inspect_data.py");
        let out = Command::new("python3")
            .arg(script)
            .arg(dir.path())
            .output()
            .expect("python3 runs (scripts/test-setup.sh installs pydicom and qpdf)");
        assert!(
            out.status.success(),
            "make_inspect_data.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let expected = std::fs::read(dir.path().join("expected.json")).unwrap();
        Data {
            path: dir.path().to_owned(),
            expected: serde_json::from_slice(&expected).unwrap(),
            _dir: dir,
        }
    })
}

/// Inspects the test file `file` as if uploaded under `name` by `TENANT`.
fn check_as(file: &str, name: &str, profile: Profile) -> Inspection {
    let bytes = std::fs::read(data().path.join(file)).unwrap();
    let subject = Subject {
        name,
        tenant: TENANT,
        profile,
        window: &RecordWindow::before_upload(20_780 * 86_400, 6), // 2026-11-23
    };
    inspect(
        &mut std::io::Cursor::new(&bytes),
        bytes.len() as u64,
        subject,
        &InspectConfig::default(),
    )
    .unwrap()
}

fn check(file: &str, profile: Profile) -> Inspection {
    check_as(file, file, profile)
}

fn codes(i: &Inspection) -> Vec<&str> {
    i.checks.iter().map(|c| c.code.as_str()).collect()
}

fn errors(i: &Inspection) -> Vec<&str> {
    i.checks
        .iter()
        .filter(|c| c.severity == gateway::checks::Severity::Error)
        .map(|c| c.code.as_str())
        .collect()
}

#[test]
fn dicom_headers_match_what_pydicom_reads() {
    let expected = data().expected["dicom"].as_object().unwrap();
    assert!(expected.len() >= 6);
    for (file, want) in expected {
        let i = check(file, Profile::NhiReview);
        assert!(i.passed(), "{file}: {:?}", i.checks);
        assert!(codes(&i).contains(&"dicom.header"), "{file}");
        let got = serde_json::to_value(&i.instances[0].1).unwrap();
        for (k, v) in want.as_object().unwrap() {
            assert_eq!(&got[k], v, "{file}: {k}");
        }
    }
}

#[test]
fn dicom_failures_have_their_codes() {
    assert_eq!(
        errors(&check("meta_mismatch.dcm", Profile::NhiReview)),
        ["dicom.meta_mismatch"]
    );
    assert_eq!(
        errors(&check("bad_uid.dcm", Profile::NhiReview)),
        ["dicom.uid_syntax"]
    );
    assert_eq!(
        errors(&check("broken.dcm", Profile::NhiReview)),
        ["dicom.bad_length"],
        "its meta element declares 32 KiB in a 150-byte file: refused before parsing"
    );
    assert_eq!(
        errors(&check("missing_uid.dcm", Profile::NhiReview)),
        ["dicom.missing_uid"]
    );
    let bytes = std::fs::read(data().path.join("CT_small.dcm")).unwrap();
    let small = InspectConfig {
        dicom_max_header_bytes: 1000,
        ..InspectConfig::default()
    };
    let subject = Subject {
        name: "x.dcm",
        tenant: TENANT,
        profile: Profile::Generic,
        window: &RecordWindow::before_upload(0, 6),
    };
    let i = inspect(
        &mut std::io::Cursor::new(&bytes),
        bytes.len() as u64,
        subject,
        &small,
    )
    .unwrap();
    assert_eq!(errors(&i), ["dicom.header_too_large"]);
    let real = check("rtdose.dcm", Profile::NhiReview);
    assert_eq!(
        errors(&real),
        ["dicom.meta_mismatch"],
        "pydicom's rtdose.dcm really disagrees"
    );
}

#[test]
fn dicomdir_sets_in_zip_batches_are_walked_and_indexed() {
    for (file, want) in data().expected["sets"].as_object().unwrap() {
        let i = check(file, Profile::NhiReview);
        assert!(i.passed(), "{file}: {:?}", i.checks);
        assert!(
            codes(&i).contains(&"dicomdir.valid"),
            "{file}: {:?}",
            codes(&i)
        );
        assert!(codes(&i).contains(&"zip.valid"));
        assert_eq!(
            i.instances.len() as u64,
            want["instances"].as_u64().unwrap(),
            "{file}"
        );
        for k in ["studies", "series", "patients"] {
            assert_eq!(i.metadata["dicomdir"][k], want[k], "{file}: {k}");
        }
        assert_eq!(i.metadata["batch"]["date"], "2026-11-01");
    }
    let i = check_as(
        "nooffset.zip",
        "3501200000_1151101_002.zip",
        Profile::NhiReview,
    );
    assert_eq!(
        errors(&i),
        ["dicomdir.invalid"],
        "dicom-rs cannot read pydicom's hand-edited variant"
    );
    let i = check_as(
        "zeroroot.zip",
        "3501200000_1151101_003.zip",
        Profile::NhiReview,
    );
    assert!(i.passed(), "{:?}", i.checks);
    assert!(
        codes(&i).contains(&"dicomdir.no_offsets"),
        "hierarchy from record order"
    );
    assert_eq!(i.instances.len(), 31);
}

#[test]
fn dicomdir_set_failures_name_the_files() {
    let name = "3501200000_1151101_009.zip";
    let i = check_as("missing.zip", name, Profile::NhiReview);
    assert_eq!(errors(&i), ["dicomdir.missing_file"]);
    let c = &i.checks[i
        .checks
        .iter()
        .position(|c| c.code == "dicomdir.missing_file")
        .unwrap()];
    assert_eq!(c.detail["files"][0], data().expected["missing"]);

    assert_eq!(
        errors(&check_as("badoffset.zip", name, Profile::NhiReview)),
        ["dicomdir.bad_offset"]
    );
    assert!(
        errors(&check_as("nopatient.zip", name, Profile::NhiReview))
            .contains(&"dicomdir.hierarchy")
    );
    assert_eq!(
        errors(&check_as("not_part10.zip", name, Profile::NhiReview)),
        ["dicomdir.not_part10"]
    );
    assert_eq!(
        errors(&check_as("cycle.zip", name, Profile::NhiReview)),
        ["dicomdir.cycle"]
    );

    let i = check_as("orphan.zip", name, Profile::NhiReview);
    assert_eq!(errors(&i), ["dicomdir.orphan_file"]);
    assert!(i.checks.iter().any(|c| c.detail["files"][0] == "EXTRA/CT1"));

    let i = check_as("mismatch.zip", name, Profile::NhiReview);
    assert_eq!(errors(&i), ["dicomdir.mismatch"]);
    let m = &i
        .checks
        .iter()
        .find(|c| c.code == "dicomdir.mismatch")
        .unwrap()
        .detail["mismatches"][0];
    assert_eq!(m["file"], data().expected["mismatch"]);
    assert_eq!(m["attribute"], "SeriesInstanceUID");
}

#[test]
fn zip_attacks_are_refused_from_the_directory() {
    for (file, code) in [
        ("bomb.zip", "zip.bomb"),
        ("slip.zip", "zip.unsafe_path"),
        ("link.zip", "zip.link"),
        ("case.zip", "zip.case_collision"),
        ("encrypted.zip", "zip.encrypted_entry"),
        ("exe_inside.zip", "zip.entry_not_allowed"),
        ("not_a.zip", "zip.invalid"),
    ] {
        let i = check(file, Profile::Generic);
        assert_eq!(errors(&i), [code], "{file}: {:?}", i.checks);
    }
}

#[test]
fn batch_names_are_checked_for_nhi_review() {
    let ok = "3501200000_1151101_001.zip";
    let i = check_as(ok, "1101020018_1151101_001.zip", Profile::NhiReview);
    assert_eq!(errors(&i), ["naming.batch_hospital"]);
    let i = check_as(ok, "3501200000_1150230_001.zip", Profile::NhiReview);
    assert_eq!(errors(&i), ["naming.batch_date"]);
    let i = check_as(ok, "batch.zip", Profile::NhiReview);
    assert_eq!(errors(&i), ["naming.batch_invalid"]);
    assert!(
        check_as(ok, "batch.zip", Profile::Generic).passed(),
        "generic has no naming rule"
    );
}

#[test]
fn pdfs_match_what_qpdf_reports() {
    for (file, want) in data().expected["pdf"].as_object().unwrap() {
        let i = check_as(file, "12B03123345.pdf", Profile::NhiReview);
        let pdf = &i.metadata["pdf"];
        if file.as_str() != "aes256.pdf" && file.as_str() != "rc4.pdf" {
            assert_eq!(pdf["pages"], want["pages"], "{file}");
            let titles: Vec<&str> = pdf["outline"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["title"].as_str().unwrap())
                .collect();
            assert_eq!(serde_json::json!(titles), want["outlines"], "{file}");
        }
        if let Some(r) = want["r"].as_i64() {
            assert_eq!(pdf["encryption"]["r"].as_i64(), Some(r), "{file}");
        } else {
            assert!(pdf["encryption"].is_null(), "{file}");
        }
    }
    let i = check_as("with_outline.pdf", "12A03123345.pdf", Profile::NhiReview);
    assert!(i.passed(), "{:?}", i.checks);
    assert_eq!(i.metadata["pdf"]["author"], "Dr. Lin");
    assert_eq!(i.metadata["case"]["serial"], "123345");
}

#[test]
fn pdf_failures_have_their_codes() {
    let nhi = |file: &str, name: &str| errors(&check_as(file, name, Profile::NhiReview)).join(",");
    assert_eq!(
        nhi("no_outline.pdf", "12A03123345.pdf"),
        "pdf.outline_missing"
    );
    assert_eq!(
        nhi("no_outline.pdf", "12B03123345.pdf"),
        "",
        "only category A needs bookmarks"
    );
    assert_eq!(nhi("script.pdf", "12A03123345.pdf"), "pdf.active_content");
    assert_eq!(
        nhi("with_outline.pdf", "ZZ03123345.pdf"),
        "naming.case_invalid"
    );
    assert_eq!(nhi("program.pdf", "12A03123345.pdf"), "type.not_allowed");
    let emr = |file: &str| errors(&check(file, Profile::EmrDownload)).join(",");
    assert_eq!(emr("with_outline.pdf"), "pdf.not_encrypted");
    assert_eq!(emr("rc4.pdf"), "pdf.weak_encryption");
    assert_eq!(
        emr("rc4_128.pdf"),
        "pdf.weak_encryption",
        "RC4 at 128 bits too"
    );
    let aes128 = check("aes128.pdf", Profile::EmrDownload);
    assert!(aes128.passed(), "{:?}", aes128.checks);
    let warned = aes128
        .checks
        .iter()
        .find(|c| c.code == "pdf.aes128")
        .unwrap();
    assert_eq!(warned.severity, gateway::checks::Severity::Warning);
    assert_eq!(emr("aes256.pdf"), "");
    let i = check("aes256.pdf", Profile::EmrDownload);
    assert!(codes(&i).contains(&"pdf.content_unreadable"));
    assert!(codes(&i).contains(&"pdf.record_date_unknown"));
    let i = check("aes256_open.pdf", Profile::EmrDownload);
    assert!(i.passed(), "{:?}", i.checks);
    assert!(codes(&i).contains(&"pdf.record_date"), "{:?}", codes(&i));
}
