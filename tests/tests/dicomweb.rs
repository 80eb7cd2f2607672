//! DICOMweb with clients nobody here wrote: `dicomweb-client` (PyPI) stores pydicom's
//! bundled real-world instances with STOW-RS, finds them with QIDO-RS (every filter,
//! paging with `get_remaining`), retrieves instances, metadata and frames with WADO-RS,
//! and checks the failure cases — all against pydicom's reading of the same files
//! (tests/interop/dicomweb_flow.py).

use std::path::Path;
use std::process::Command;

use gateway_tests::{TestGateway, TestReviewer, TestTenant};

const A: &str = "3501200000";
const B: &str = "1101020018";
const A_TOKEN: &str = "tok-3501200000-aaaaaaaaaaaaaaaaaaaaaaaa";
const B_TOKEN: &str = "tok-1101020018-bbbbbbbbbbbbbbbbbbbbbbbb";
const REVIEWER: &str = "rev-dicomweb-cccccccccccccccccccccccc";

#[test]
fn dicomweb_client_stores_finds_and_retrieves_pydicoms_instances() {
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(A).token(A_TOKEN))
        .tenant(TestTenant::new(B).token(B_TOKEN))
        .reviewer(TestReviewer::new("viewer", &[A], REVIEWER))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/dicomweb_flow.py");
    let out = Command::new("timeout")
        .arg("300")
        .arg("python3")
        .arg(script)
        .arg(format!("https://{}", gw.https))
        .args([A_TOKEN, B_TOKEN, REVIEWER])
        .arg(gw.data_dir.join("keys/tls-cert.pem"))
        .output()
        .expect("python3 runs (scripts/test-setup.sh installs dicomweb-client and pydicom)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["stored"], 7, "{summary}");
    assert!(!gw.log().contains("panicked"));
}

/// Every DICOM file pydicom knows (its test files and pydicom-data's), stored through
/// STOW-RS one by one: each is indexed with exactly the UIDs, study date and modality
/// pydicom reads, or refused with a code whose reason pydicom's reading confirms
/// (tests/interop/dicom_corpus.py). Nothing may disagree.
#[test]
fn every_file_of_pydicoms_corpus_is_indexed_as_pydicom_reads_it_or_refused_for_a_reason() {
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(A).token(A_TOKEN))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/dicom_corpus.py");
    let out = Command::new("timeout")
        .arg("600")
        .arg("python3")
        .arg(script)
        .arg(format!("https://{}", gw.https))
        .arg(A_TOKEN)
        .arg(gw.data_dir.join("keys/tls-cert.pem"))
        .output()
        .expect("python3 runs (scripts/test-setup.sh installs pydicom and pydicom-data)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr),
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["disagree"], 0, "{summary}");
    // pydicom 3.0.2's own files and pydicom-data 1.0.0's (244, of which 202 agree,
    // 28 refused on purpose, 14 not PS3.10 files, when this was written).
    assert!(summary["files"].as_u64().unwrap() >= 240, "{summary}");
    assert!(summary["agree"].as_u64().unwrap() >= 200, "{summary}");
    assert!(!gw.log().contains("panicked"));
}

/// WADO-RS retrieval is a download: scoped to the caller's tenants, counted for a
/// reviewer, refused to a reviewer whose files must reach it sealed; frame lists are
/// deduplicated and capped.
#[test]
fn wado_retrieval_is_accounted_and_follows_the_sealed_policy() {
    use gateway_tests::http::Client;
    const SEALED_REVIEWER: &str = "rev-sealed-dddddddddddddddddddddddd";
    let recipient = gateway::sealed::Identity::generate()
        .unwrap()
        .to_public()
        .to_string();
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(A).token(A_TOKEN))
        .tenant(TestTenant::new(B).token(B_TOKEN))
        .reviewer(TestReviewer::new("viewer", &[A], REVIEWER))
        .reviewer(TestReviewer::new("sealed", &[A], SEALED_REVIEWER).age_recipient(&recipient))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let sop = "1.2.826.0.1.3680043.10.1.77";
    let plain = gateway_tests::dicom::instance(sop);
    let to = gw.age_recipient().unwrap();
    let hospital = Client::new(gw.https, Some(A_TOKEN));
    let up = hospital.upload(
        "ct.dcm",
        &gateway::sealed::seal_to_vec(&[to], &plain).unwrap(),
    );
    assert_eq!(hospital.wait_result(&up)["status"], "passed");
    let path = format!(
        "/dicomweb/studies/1.2.826.0.1.3680043.10.1.1/series/1.2.826.0.1.3680043.10.1.2/instances/{sop}"
    );
    let accept = ("Accept", "multipart/related; type=\"application/dicom\"");

    let other = Client::new(gw.https, Some(B_TOKEN)).call("GET", &path, &[accept], None);
    assert_eq!(
        other.status, 404,
        "another hospital's instance does not exist for B"
    );
    let sealed = Client::new(gw.https, Some(SEALED_REVIEWER)).call("GET", &path, &[accept], None);
    assert_eq!(
        (sealed.status, sealed.code().as_str()),
        (403, "download.sealed_only")
    );

    let viewer = Client::new(gw.https, Some(REVIEWER));
    let files = viewer
        .call("GET", &format!("/v1/files?tenant={A}"), &[], None)
        .json();
    let id = files["files"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(files["files"][0]["status"], "ready");
    let got = viewer.call("GET", &path, &[accept], None);
    assert_eq!(got.status, 200, "{got:?}");
    assert!(got.raw.windows(4).any(|w| w == b"DICM"));
    let file = viewer
        .call("GET", &format!("/v1/files/{id}"), &[], None)
        .json();
    assert_eq!(file["status"], "downloaded", "{file}");

    let many: Vec<String> = (1..=2000).map(|n| n.to_string()).collect();
    let frames = viewer.call(
        "GET",
        &format!("{path}/frames/{}", many.join(",")),
        &[(
            "Accept",
            "multipart/related; type=\"application/octet-stream\"",
        )],
        None,
    );
    assert_eq!(
        (frames.status, frames.code().as_str()),
        (400, "dicomweb.too_many_frames")
    );
}

/// A gateway with hospital A, `files` (name, plain DICOM) uploaded sealed and passed in
/// order, and the hospital's client.
fn hospital_with(files: &[(&str, &[u8])]) -> (TestGateway, gateway_tests::http::Client) {
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(A).token(A_TOKEN))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let to = gw.age_recipient().unwrap();
    let hospital = gateway_tests::http::Client::new(gw.https, Some(A_TOKEN));
    for (name, plain) in files {
        let sealed = gateway::sealed::seal_to_vec(std::slice::from_ref(&to), plain).unwrap();
        let up = hospital.upload(name, &sealed);
        assert_eq!(hospital.wait_result(&up)["status"], "passed", "{name}");
    }
    (gw, hospital)
}

/// One SOP Instance UID is one instance: a hospital that sends an instance again (a
/// corrected image, in another file) finds it once in QIDO-RS, counted once, and
/// retrieves the latest version.
#[test]
fn an_instance_sent_twice_is_one_instance() {
    use gateway_tests::dicom::{element, instance};
    let sop = "1.2.826.0.1.3680043.10.1.88";
    let first = instance(sop);
    let mut corrected = instance(sop);
    corrected.extend(element(0x0020, 0x0013, b"IS", b"7"));
    let (_gw, hospital) = hospital_with(&[("ct.dcm", &first), ("ct-corrected.dcm", &corrected)]);
    let json = ("Accept", "application/dicom+json");
    let study = "1.2.826.0.1.3680043.10.1.1";
    let listed = hospital.call(
        "GET",
        &format!("/dicomweb/studies/{study}/instances"),
        &[json],
        None,
    );
    assert_eq!(listed.status, 200, "{listed:?}");
    let listed = listed.json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["00200013"]["Value"][0], 7, "the latest version");
    let studies = hospital
        .call("GET", "/dicomweb/studies", &[json], None)
        .json();
    assert_eq!(studies[0]["00201208"]["Value"][0], 1, "{studies}");
    let meta = hospital
        .call(
            "GET",
            &format!(
                "/dicomweb/studies/{study}/series/1.2.826.0.1.3680043.10.1.2/instances/{sop}/metadata"
            ),
            &[json],
            None,
        )
        .json();
    let meta = meta.as_array().unwrap();
    assert_eq!(meta.len(), 1, "{meta:?}");
    assert_eq!(meta[0]["00200013"]["Value"][0], 7);
}

/// WADO-RS answers what the path and `Accept` name or says why not: an instance under
/// the wrong series or study is not found (404), and a transfer syntax the gateway
/// cannot send (it never transcodes) or XML metadata is not acceptable (406).
#[test]
fn wado_refuses_a_wrong_hierarchy_and_what_it_cannot_produce() {
    let sop = "1.2.826.0.1.3680043.10.1.99";
    let (_gw, hospital) = hospital_with(&[("ct.dcm", &gateway_tests::dicom::instance(sop))]);
    let (study, series) = ("1.2.826.0.1.3680043.10.1.1", "1.2.826.0.1.3680043.10.1.2");
    let dicom = ("Accept", "multipart/related; type=\"application/dicom\"");
    let json = ("Accept", "application/dicom+json");
    let get = |path: &str, accept: (&str, &str)| hospital.call("GET", path, &[accept], None);
    let right = format!("/dicomweb/studies/{study}/series/{series}/instances/{sop}");
    assert_eq!(get(&right, dicom).status, 200);
    assert_eq!(get(&format!("{right}/metadata"), json).status, 200);
    for wrong in [
        format!("/dicomweb/studies/{study}/series/1.2.3.999/instances/{sop}"),
        format!("/dicomweb/studies/1.2.3.999/series/{series}/instances/{sop}"),
        format!("/dicomweb/studies/1.2.3.999/series/{series}"),
    ] {
        let r = get(&wrong, dicom);
        assert_eq!(
            (r.status, r.code().as_str()),
            (404, "dicomweb.not_found"),
            "{wrong}"
        );
        let r = get(&format!("{wrong}/metadata"), json);
        assert_eq!(r.status, 404, "{wrong}/metadata");
    }
    let jpeg =
        "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.50";
    let r = get(&right, ("Accept", jpeg));
    assert_eq!(
        (r.status, r.code().as_str()),
        (406, "dicomweb.not_acceptable"),
        "{r:?}"
    );
    let stored =
        "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.1";
    assert_eq!(get(&right, ("Accept", stored)).status, 200);
    assert_eq!(get(&right, ("Accept", "application/dicom+xml")).status, 406);
    let r = get(
        &format!("{right}/metadata"),
        ("Accept", "application/dicom+xml"),
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (406, "dicomweb.not_acceptable")
    );
}

/// QIDO-RS matches on any attribute the index keeps (columns, and each instance's
/// short attributes: by number, range, wildcard, private tags too) and refuses the rest
/// (400, never ignored); `includefield` brings kept attributes by keyword or tag, `all`
/// every one at instance level; a series-level answer holds series attributes, patient
/// and study ones on request; a sequence asked for is named in a `Warning`.
#[test]
fn qido_matches_and_includes_any_kept_attribute_and_refuses_the_rest() {
    use gateway_tests::dicom::{element, instance};
    let with = |sop: &str, rows: u16, date: &[u8], private: &[u8]| {
        let mut plain = instance(sop);
        plain.extend(element(0x0028, 0x0010, b"US", &rows.to_le_bytes()));
        plain.extend(element(0x0028, 0x0011, b"US", &640u16.to_le_bytes()));
        plain.extend(element(0x0029, 0x0010, b"LO", b"ACME 1.0"));
        plain.extend(element(0x0029, 0x1010, b"LO", private));
        plain.extend(element(0x0040, 0x0244, b"DA", date));
        plain
    };
    let (a, b) = ("1.2.826.0.1.3680043.10.1.5", "1.2.826.0.1.3680043.10.1.7");
    let (_gw, hospital) = hospital_with(&[
        ("a.dcm", &with(a, 512, b"20040615", b"ACME-LUNG")),
        ("b.dcm", &with(b, 256, b"20090101", b"OTHER")),
    ]);
    let json = ("Accept", "application/dicom+json");
    let get = |path: &str| hospital.call("GET", path, &[json], None);
    let sops = |path: &str| -> Vec<String> {
        let r = get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["00080018"]["Value"][0].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(sops("/dicomweb/instances?Rows=512"), [a]);
    assert_eq!(sops("/dicomweb/instances?00280010=256"), [b]);
    assert_eq!(sops("/dicomweb/instances?Rows=512&Columns=640"), [a]);
    assert!(sops("/dicomweb/instances?Rows=1024").is_empty());
    assert_eq!(
        sops("/dicomweb/instances?PerformedProcedureStepStartDate=20040101-20041231"),
        [a]
    );
    assert_eq!(sops("/dicomweb/instances?00291010=ACME*"), [a]);
    let studies = get("/dicomweb/studies?Rows=256").json();
    assert_eq!(studies.as_array().unwrap().len(), 1, "{studies}");

    for refused in [
        "/dicomweb/instances?Rows=many",
        "/dicomweb/studies?PatientBirthDate=19700101",
        "/dicomweb/instances?ReferencedImageSequence=1",
        "/dicomweb/instances?PixelData=1",
        "/dicomweb/instances?NoSuchKeyword=1",
    ] {
        let r = get(refused);
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "dicomweb.bad_query"),
            "{refused}"
        );
    }
    let r = get("/dicomweb/studies?includefield=NoSuchKeyword");
    assert_eq!(r.status, 400);

    let study = get("/dicomweb/studies?includefield=Rows").json();
    assert!(study[0].get("00280010").is_some(), "{study}");
    let inst = get(&format!(
        "/dicomweb/instances?SOPInstanceUID={a}&includefield=00291010"
    ))
    .json();
    assert_eq!(inst[0]["00291010"]["Value"][0], "ACME-LUNG", "{inst}");
    assert!(
        inst[0].get("00280011").is_none(),
        "only what was asked: {inst}"
    );
    let all = get(&format!(
        "/dicomweb/instances?SOPInstanceUID={b}&includefield=all"
    ))
    .json();
    assert_eq!(all[0]["00280010"]["Value"][0], 256, "{all}");
    assert_eq!(all[0]["00280011"]["Value"][0], 640, "{all}");

    let series = get("/dicomweb/series").json();
    let one = &series[0];
    assert_eq!(one["00080060"]["Value"][0], "CT", "{one}");
    assert!(
        one.get("0020000D").is_some(),
        "the study's UID stays: {one}"
    );
    assert!(
        one.get("00100020").is_none(),
        "no patient attributes unasked: {one}"
    );
    let asked = get("/dicomweb/series?includefield=PatientID").json();
    assert_eq!(asked[0]["00100020"]["Value"][0], "P-1", "{asked}");
    let all = get("/dicomweb/series?includefield=all").json();
    assert_eq!(all[0]["00100020"]["Value"][0], "P-1");

    let r = get("/dicomweb/studies?includefield=Rows,ReferencedImageSequence");
    assert_eq!(r.status, 200);
    let warning = r.headers.get("warning").cloned().unwrap_or_default();
    assert!(
        warning.contains("ReferencedImageSequence") && !warning.contains("Rows"),
        "{warning}"
    );
}

/// Metadata names a large binary value by BulkDataURI instead of inlining it, and the
/// URI retrieves exactly those bytes.
#[test]
fn large_binary_values_are_bulk_data_retrievable_by_their_uri() {
    use gateway_tests::dicom::{element, instance};
    let sop = "1.2.826.0.1.3680043.10.1.66";
    let document: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut plain = instance(sop);
    plain.extend(element(0x0042, 0x0011, b"OB", &document));
    let (_gw, hospital) = hospital_with(&[("doc.dcm", &plain)]);
    let instance_path = format!(
        "/dicomweb/studies/1.2.826.0.1.3680043.10.1.1/series/1.2.826.0.1.3680043.10.1.2/instances/{sop}"
    );
    let json = ("Accept", "application/dicom+json");
    let meta = hospital
        .call("GET", &format!("{instance_path}/metadata"), &[json], None)
        .json();
    let doc = &meta[0]["00420011"];
    assert!(doc.get("InlineBinary").is_none(), "{doc}");
    let uri = doc["BulkDataURI"].as_str().unwrap();
    let path = &uri[uri.find("/dicomweb/").unwrap()..];
    assert_eq!(path, format!("{instance_path}/bulkdata/00420011"));
    let octets = (
        "Accept",
        "multipart/related; type=\"application/octet-stream\"",
    );
    let got = hospital.call("GET", path, &[octets], None);
    assert_eq!(got.status, 200, "{got:?}");
    assert!(
        got.raw
            .windows(document.len())
            .any(|w| w == document.as_slice()),
        "the part holds the value"
    );
    let missing = hospital.call(
        "GET",
        &format!("{instance_path}/bulkdata/00431028"),
        &[octets],
        None,
    );
    assert_eq!(missing.status, 404);
    assert_eq!(hospital.call("GET", path, &[json], None).status, 406);
}
