//! The bad-input corpus (docs/bad-input.md): every class of hostile or broken file in
//! `interop/make_bad_corpus.py`, sent to the real binary through a tus client (the
//! raw protocol with curl) and through OpenSSH's `sftp`. For each: the stable code in
//! its result (or in the protocol's answer), and through it all the gateway keeps
//! answering, logs no panic of its own, stays within its memory bound, and good uploads
//! made before and after are indexed and download with the right SHA-256.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use gateway::sealed::seal_to_vec;
use gateway_tests::http::Client;
use gateway_tests::{TestGateway, TestReviewer, TestTenant, sftp_batch, ssh_keygen};

const GEN: &str = "3501200000";
const NHI: &str = "1317040011";
/// The same two profiles for the SFTP side: each protocol uploads as its own hospital,
/// so the two copies of a file never meet (no duplicate findings, no name clashes).
const GEN_S: &str = "3501200001";
const NHI_S: &str = "1317040012";
const GEN_TOKEN: &str = "tok-3501200000-aaaaaaaaaaaaaaaaaaaaaaaa";
const NHI_TOKEN: &str = "tok-1317040011-cccccccccccccccccccccccc";
const REVIEWER: &str = "rev-corpus-dddddddddddddddddddddddddddd";

/// Class → the code it must end with, over tus and over SFTP. `passed` = indexed with
/// no error; a warning code = indexed with that warning; `refused` (SFTP only) = the
/// client's open or write was refused before an upload existed.
fn expected() -> BTreeMap<&'static str, (&'static str, &'static str)> {
    let same = |c| (c, c);
    BTreeMap::from([
        ("exe renamed .pdf", same("type.not_allowed")),
        ("elf renamed .pdf", same("type.not_allowed")),
        ("shell script renamed .pdf", same("type.not_allowed")),
        ("unknown binary", same("type.unknown")),
        ("pdf with javascript", same("pdf.active_content")),
        ("pdf with launch action", same("pdf.active_content")),
        ("pdf with embedded file", same("pdf.active_content")),
        ("pdf with rc4", same("pdf.weak_encryption")),
        ("pdf broken xref", same("pdf.invalid")),
        ("pdf garbage body", same("pdf.invalid")),
        ("pdf without pages", same("pdf.no_pages")),
        ("pdf deep nesting", same("pdf.too_deep")),
        ("pdf huge object count", same("passed")),
        ("pdf too large", same("pdf.too_large")),
        ("dicom meta length beyond file", same("dicom.bad_length")),
        ("dicom bad uid syntax", same("dicom.uid_syntax")),
        ("dicom missing uid", same("dicom.missing_uid")),
        ("dicom meta mismatch", same("dicom.meta_mismatch")),
        ("dicom without preamble", same("type.unknown")),
        ("dicom huge length", same("dicom.bad_length")),
        ("dicom deep sequences", same("dicom.too_deep")),
        ("dicom header too large", same("dicom.header_too_large")),
        ("dicom truncated mid-element", same("dicom.bad_length")),
        ("dicomdir missing file", same("dicomdir.missing_file")),
        ("dicomdir mismatching file", same("dicomdir.mismatch")),
        ("dicomdir orphan file", same("dicomdir.orphan_file")),
        ("dicomdir file not part10", same("dicomdir.not_part10")),
        ("dicomdir bad offset", same("dicomdir.bad_offset")),
        ("dicomdir offset cycle", same("dicomdir.cycle")),
        // Handled: the hierarchy is read from the record order instead, with a warning.
        ("dicomdir zero root", same("dicomdir.no_offsets")),
        ("dicomdir escaping path", same("dicomdir.bad_file_id")),
        ("zip ratio bomb", same("zip.bomb")),
        ("zip entry-count bomb", same("zip.bomb")),
        ("zip huge central directory", same("zip.bomb")),
        ("zip slip", same("zip.unsafe_path")),
        ("zip symlink", same("zip.link")),
        ("zip case collision", same("zip.case_collision")),
        ("zip duplicate names", same("zip.duplicate_name")),
        ("zip encrypted entry", same("zip.encrypted_entry")),
        ("zip executable inside", same("zip.entry_not_allowed")),
        ("zip nested zip", same("zip.entry_not_allowed")),
        ("zip not a zip", same("zip.invalid")),
        ("name non-ascii", ("ingest.name_not_allowed", "refused")),
        ("name too long", ("ingest.name_not_allowed", "refused")),
        (
            "name control character",
            ("ingest.name_not_allowed", "refused"),
        ),
        ("name path escape", ("ingest.name_not_allowed", "refused")),
        (
            "name hidden dot file",
            ("ingest.name_not_allowed", "refused"),
        ),
        ("nhi-review case name invalid", same("naming.case_invalid")),
        (
            "nhi-review batch of another hospital",
            same("naming.batch_hospital"),
        ),
        ("manifest not json", same("manifest.invalid")),
        ("manifest lists a missing file", same("manifest.missing")),
        // Over SFTP a write past the limit, or a close whose sealed stream never ended
        // (the client may still resume it), is refused in the protocol's answer.
        (
            "file larger than max_file_bytes",
            ("ingest.too_large", "refused"),
        ),
        ("duplicate content", same("duplicate.same_content")),
        ("age truncated", ("sealed.truncated", "refused")),
        ("age tampered chunk", same("sealed.chunk_auth_failed")),
        ("age tampered header mac", same("sealed.bad_header_mac")),
        ("age wrong key", same("sealed.not_a_recipient")),
        ("age two recipients", same("sealed.extra_recipients")),
        ("age armor malformed", same("sealed.bad_armor")),
        (
            "age scrypt passphrase",
            same("sealed.passphrase_not_accepted"),
        ),
        // Junk after the final chunk means the chunk that ends the stream is not last:
        // the stream never ended properly.
        ("age trailing data", ("sealed.truncated", "refused")),
        ("not sealed at all", same("sealed.not_age_file")),
    ])
}

struct Class {
    class: String,
    bytes: Vec<u8>,
    /// The tenant it is sent as, and its upload name.
    tenant: &'static str,
    name: String,
}

fn corpus(dir: &Path, recipient: &gateway::sealed::Recipient) -> Vec<Class> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/make_bad_corpus.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(dir)
        .arg(recipient.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(dir.join("corpus.json")).unwrap()).unwrap();
    list.iter()
        .map(|c| {
            let raw = std::fs::read(c["file"].as_str().unwrap()).unwrap();
            let bytes = if c["sealed"] == true {
                raw
            } else {
                seal_to_vec(std::slice::from_ref(recipient), &raw).unwrap()
            };
            let name = c["name"].as_str().unwrap();
            let (tenant, name) = match name.strip_prefix("nhi/") {
                Some(n) => (NHI, n.to_string()),
                None => (GEN, name.to_string()),
            };
            Class {
                class: c["class"].as_str().unwrap().to_string(),
                bytes,
                tenant,
                name,
            }
        })
        .collect()
}

/// The code an upload ended with: its first error, else its first warning, else
/// `passed`.
fn outcome(result: &serde_json::Value) -> String {
    let checks = result["checks"].as_array().cloned().unwrap_or_default();
    let first = |sev: &str| {
        checks
            .iter()
            .find(|c| c["severity"] == sev)
            .and_then(|c| c["code"].as_str())
            .map(String::from)
    };
    first("error")
        .or_else(|| first("warning"))
        .unwrap_or_else(|| "passed".into())
}

/// Over tus as its clients do by default: a creation request, then one PATCH with the
/// bytes; the first refusal's code, or the result's.
fn via_tus(c: &Client, name: &str, bytes: &[u8]) -> String {
    use base64::Engine;
    let meta = format!(
        "filename {}",
        base64::engine::general_purpose::STANDARD.encode(name)
    );
    let len = bytes.len().to_string();
    let r = c.call(
        "POST",
        "/v1/uploads",
        &[
            ("Tus-Resumable", "1.0.0"),
            ("Upload-Length", &len),
            ("Upload-Metadata", &meta),
        ],
        None,
    );
    if r.status != 201 {
        return r.code();
    }
    let url = r.header("location").unwrap().to_string();
    let r = c.call(
        "PATCH",
        &url,
        &[
            ("Tus-Resumable", "1.0.0"),
            ("Upload-Offset", "0"),
            ("Content-Type", "application/offset+octet-stream"),
        ],
        Some(bytes),
    );
    if r.status != 204 {
        return r.code();
    }
    outcome(&c.wait_result(&url))
}

/// Over SFTP: every file put in one `sftp -b` session (`-put` goes on after a
/// refusal), then every result fetched in another.
fn via_sftp(
    gw: &TestGateway,
    tenant: &str,
    key: &Path,
    dir: &Path,
    files: &[(usize, &Class)],
) -> BTreeMap<usize, String> {
    let mut put = String::new();
    for (i, c) in files {
        let local = dir.join(format!("up-{i}"));
        std::fs::write(&local, &c.bytes).unwrap();
        put.push_str(&format!("-put {} \"/inbox/{}\"\n", local.display(), c.name));
    }
    let (_, log) = sftp_batch(gw.sftp, tenant, key, &put).unwrap();
    let mut out = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut get = String::new();
        for (i, c) in files {
            if !out.contains_key(i) {
                let local = dir.join(format!("result-{i}.json"));
                get.push_str(&format!(
                    "-get \"/results/{}.json\" {}\n",
                    c.name,
                    local.display()
                ));
            }
        }
        let _ = sftp_batch(gw.sftp, tenant, key, &get).unwrap();
        let mut pending = false;
        for (i, _) in files {
            let local = dir.join(format!("result-{i}.json"));
            let Ok(text) = std::fs::read(&local) else {
                continue;
            };
            let _ = std::fs::remove_file(&local);
            let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
            if v["status"] == "checking" {
                pending = true;
                continue;
            }
            out.insert(*i, outcome(&v));
        }
        if !pending || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // No result: the client must have been refused (its open, a write or the close
    // failed, which OpenSSH's sftp reports); anything else is a lost upload.
    for (i, c) in files {
        out.entry(*i).or_insert_with(|| {
            let refused = log.lines().any(|l| {
                l.contains(&format!("/inbox/{}", c.name))
                    && (l.contains("Permission denied") || l.contains("Failure"))
            }) || log.contains("close remote: Failure");
            if refused { "refused" } else { "no result" }.into()
        });
    }
    out
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Good uploads: each is indexed and its content downloads with its SHA-256.
fn good_uploads(
    gw: &TestGateway,
    tag: &str,
    recipient: &gateway::sealed::Recipient,
    key: &Path,
    dir: &Path,
) {
    let generic = Client::new(gw.https, Some(GEN_TOKEN));
    let reviewer = Client::new(gw.https, Some(REVIEWER));
    let mut sent = Vec::new();
    for (i, plain) in [
        gateway_fixtures::pdf::sample(tag, false, false),
        format!("good record {tag}\n").repeat(1000).into_bytes(),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("good-{tag}-{i}.txt");
        let sealed = seal_to_vec(std::slice::from_ref(recipient), &plain).unwrap();
        let up = generic.upload(&name, &sealed);
        assert_eq!(generic.wait_result(&up)["status"], "passed", "{name}");
        sent.push((name, plain));
    }
    let plain = format!("good over sftp {tag}\n").repeat(500).into_bytes();
    let local = dir.join(format!("good-{tag}.age"));
    std::fs::write(
        &local,
        seal_to_vec(std::slice::from_ref(recipient), &plain).unwrap(),
    )
    .unwrap();
    let name = format!("good-{tag}-sftp.txt");
    let (code, log) = sftp_batch(
        gw.sftp,
        GEN,
        key,
        &format!("put {} /inbox/{name}\n", local.display()),
    )
    .unwrap();
    assert_eq!(code, 0, "{log}");
    sent.push((name, plain));
    for (name, plain) in sent {
        let deadline = Instant::now() + Duration::from_secs(30);
        let id = loop {
            let list = reviewer
                .call(
                    "GET",
                    &format!("/v1/files?tenant={GEN}&limit=1000"),
                    &[],
                    None,
                )
                .json();
            let found = list["files"].as_array().and_then(|fs| {
                fs.iter()
                    .find(|f| f["name"] == name.as_str())
                    .and_then(|f| f["id"].as_str().map(String::from))
            });
            if let Some(id) = found {
                break id;
            }
            assert!(Instant::now() < deadline, "{name} never indexed");
            std::thread::sleep(Duration::from_millis(100));
        };
        let got = reviewer.call("GET", &format!("/v1/files/{id}/content"), &[], None);
        assert_eq!(got.status, 200, "{name}");
        assert_eq!(
            hex::encode(ring::digest::digest(&ring::digest::SHA256, &got.raw)),
            hex::encode(ring::digest::digest(&ring::digest::SHA256, &plain)),
            "{name} downloads as sent"
        );
    }
}

#[test]
fn every_class_of_bad_input_gets_its_code_and_harms_nothing() {
    let files = tempfile::tempdir().unwrap();
    let (gen_key, gen_pub) = ssh_keygen(files.path(), "gen").unwrap();
    let (nhi_key, nhi_pub) = ssh_keygen(files.path(), "nhi").unwrap();
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(GEN).token(GEN_TOKEN).ssh_key(&gen_pub))
        .tenant(TestTenant::new(GEN_S).ssh_key(&gen_pub))
        .tenant(TestTenant::new(NHI).token(NHI_TOKEN).profile("nhi-review"))
        .tenant(
            TestTenant::new(NHI_S)
                .ssh_key(&nhi_pub)
                .profile("nhi-review"),
        )
        .reviewer(TestReviewer::new("corpus", &[GEN, NHI], REVIEWER))
        .config(
            "[ingest]\nmax_file_bytes = 8388608\n\
             [inspect]\npdf_max_bytes = 2097152\ndicom_max_header_bytes = 1048576\nzip_max_entries = 100\n",
        )
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let recipient = gw.age_recipient().unwrap();
    let dir: PathBuf = files.path().join("corpus");
    let classes = corpus(&dir, &recipient);
    let want = expected();
    assert!(classes.len() >= 60, "{} classes", classes.len());
    for c in &classes {
        assert!(
            want.contains_key(c.class.as_str()),
            "no expectation for {}",
            c.class
        );
    }

    good_uploads(&gw, "before", &recipient, &gen_key, files.path());
    // The content the duplicate class repeats, accepted first.
    let generic = Client::new(gw.https, Some(GEN_TOKEN));
    let original = std::fs::read(dir.join("record.txt")).unwrap();
    let up = generic.upload(
        "original.txt",
        &seal_to_vec(std::slice::from_ref(&recipient), &original).unwrap(),
    );
    assert_eq!(generic.wait_result(&up)["status"], "passed");

    let nhi = Client::new(gw.https, Some(NHI_TOKEN));
    let mut tus = BTreeMap::new();
    for (i, c) in classes.iter().enumerate() {
        let client = if c.tenant == NHI { &nhi } else { &generic };
        tus.insert(i, via_tus(client, &c.name, &c.bytes));
    }
    let by_tenant = |t: &str| -> Vec<(usize, &Class)> {
        classes
            .iter()
            .enumerate()
            .filter(|(_, c)| c.tenant == t && c.class != "duplicate content")
            .collect()
    };
    let mut sftp = via_sftp(&gw, GEN_S, &gen_key, &dir, &by_tenant(GEN));
    sftp.extend(via_sftp(&gw, NHI_S, &nhi_key, &dir, &by_tenant(NHI)));

    let mut wrong = Vec::new();
    let mut table = String::new();
    for (i, c) in classes.iter().enumerate() {
        let (want_tus, want_sftp) = want[c.class.as_str()];
        let got_tus = &tus[&i];
        let got_sftp = sftp.get(&i).map(String::as_str).unwrap_or("-");
        table.push_str(&format!(
            "{:<40} tus {:<30} sftp {}\n",
            c.class, got_tus, got_sftp
        ));
        if got_tus != want_tus || (got_sftp != "-" && got_sftp != want_sftp) {
            wrong.push(format!(
                "{}: tus {got_tus} (want {want_tus}), sftp {got_sftp} (want {want_sftp})",
                c.class
            ));
        }
    }
    assert!(wrong.is_empty(), "{}\n\n{table}", wrong.join("\n"));

    assert_eq!(gw.admin_get("/healthz").unwrap().0, 200);
    good_uploads(&gw, "after", &recipient, &gen_key, files.path());
    let log = gw.log();
    let own_panics: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("panicked") && !l.contains("inspector worker"))
        .collect();
    assert!(own_panics.is_empty(), "{own_panics:?}");
    let peak = rss_kib(gw.pid());
    assert!(peak < 256 * 1024, "gateway peak RSS {peak} KiB");
    println!("{table}gateway peak RSS {} MiB", peak / 1024);
}
