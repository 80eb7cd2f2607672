//! Exhaustion: the gateway's data directory on a small file system (tmpfs) filled up in
//! the middle of an upload. The client gets a clean, coded refusal (`507
//! ingest.disk_full`), the gateway keeps answering, nothing half-written is
//! acknowledged, and the upload resumes and is accepted once space is freed.

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use gateway::sealed::seal_to_vec;
use gateway_tests::http::Client;
use gateway_tests::{TestGateway, TestTenant};

const CODE: &str = "3501200000";
const TOKEN: &str = "tok-3501200000-aaaaaaaaaaaaaaaaaaaaaaaa";
const V: (&str, &str) = ("Tus-Resumable", "1.0.0");
const BODY: (&str, &str) = ("Content-Type", "application/offset+octet-stream");

/// A tmpfs of `mib` MiB, unmounted when dropped (before its mount point's directory).
struct SmallFs(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl SmallFs {
    fn mount(mib: u32) -> SmallFs {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("fs");
        std::fs::create_dir(&at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(&at)
            .status()
            .unwrap();
        assert!(
            ok.success(),
            "mounting a tmpfs needs root (CI runs as root)"
        );
        SmallFs(at, dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// PATCHes the piece of `file` at `offset` (at most `piece` bytes); the answer and
/// where the piece ends.
fn patch_piece(
    c: &Client,
    url: &str,
    file: &[u8],
    offset: usize,
    piece: usize,
) -> (gateway_tests::http::Reply, usize) {
    let end = (offset + piece).min(file.len());
    let off = offset.to_string();
    let r = c.call(
        "PATCH",
        url,
        &[V, BODY, ("Upload-Offset", &off)],
        Some(&file[offset..end]),
    );
    (r, end)
}

fn head_offset(c: &Client, url: &str) -> usize {
    let r = c.call("HEAD", url, &[V], None);
    r.header("upload-offset").unwrap().parse().unwrap()
}

#[test]
fn a_full_disk_refuses_cleanly_and_the_upload_resumes_once_space_is_freed() {
    let fs = SmallFs::mount(64);
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(CODE).token(TOKEN))
        .data_dir(&fs.path().join("data"))
        .config("[ingest]\nfsync_interval_bytes = 1048576\n")
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let c = Client::new(gw.https, Some(TOKEN));
    // Leave about 20 MiB free, then send 40 MiB.
    let filler = fs.path().join("filler");
    let free = fs2_free(fs.path());
    std::fs::write(&filler, vec![0u8; free.saturating_sub(20 << 20) as usize]).unwrap();
    let plain = gateway_tests::sftp::text_record(40 << 20, 7);
    let file = seal_to_vec(&[gw.age_recipient().unwrap()], &plain).unwrap();
    let meta = format!(
        "filename {}",
        base64::engine::general_purpose::STANDARD.encode("big.bin")
    );
    let len = file.len().to_string();
    let r = c.call(
        "POST",
        "/v1/uploads",
        &[V, ("Upload-Length", &len), ("Upload-Metadata", &meta)],
        None,
    );
    assert_eq!(r.status, 201, "{r:?}");
    let url = r.header("location").unwrap().to_string();
    let piece = 4 << 20;
    let mut offset = 0;
    let refused = loop {
        assert!(offset < file.len(), "the disk never filled up");
        let (r, end) = patch_piece(&c, &url, &file, offset, piece);
        if r.status != 204 {
            break r;
        }
        offset = end;
    };
    assert_eq!(
        (refused.status, refused.code().as_str()),
        (507, "ingest.disk_full"),
        "{refused:?}"
    );
    assert_eq!(gw.admin_get("/healthz").unwrap().0, 200, "still answering");
    // Nothing beyond what was acknowledged is claimed.
    let held = head_offset(&c, &url);
    assert!(
        held <= offset + piece && held >= offset,
        "{held} vs {offset}"
    );

    std::fs::remove_file(&filler).unwrap();
    let mut offset = head_offset(&c, &url);
    while offset < file.len() {
        let (r, end) = patch_piece(&c, &url, &file, offset, piece);
        assert_eq!(r.status, 204, "{r:?}");
        offset = end;
    }
    let result = c.wait_result(&url);
    assert_eq!(result["status"], "passed", "{result}");
    let sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, &plain));
    assert_eq!(result["sha256"], sha.as_str());
    assert!(!gw.log().contains("panicked"));
}

/// Bytes free on the file system at `p`.
fn fs2_free(p: &Path) -> u64 {
    let out = Command::new("df")
        .args(["--output=avail", "-B1"])
        .arg(p)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .unwrap()
}

/// A reader that takes nothing for `download_stall_secs` loses its download instead of
/// holding a blocking thread and a decrypted window for ever.
#[test]
fn a_download_to_a_stalled_reader_ends() {
    const REVIEWER: &str = "rev-stall-eeeeeeeeeeeeeeeeeeeeeeeeeeee";
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(CODE).token(TOKEN))
        .reviewer(gateway_tests::TestReviewer::new("slow", &[CODE], REVIEWER))
        .config("[ingest]\nmax_file_bytes = 100000000\n")
        .https_config("download_stall_secs = 1")
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let c = Client::new(gw.https, Some(TOKEN));
    let plain = gateway_tests::sftp::text_record(24 << 20, 3);
    let up = c.upload(
        "big.txt",
        &seal_to_vec(&[gw.age_recipient().unwrap()], &plain).unwrap(),
    );
    assert_eq!(c.wait_result(&up)["status"], "passed");
    let reviewer = Client::new(gw.https, Some(REVIEWER));
    let files = reviewer
        .call("GET", &format!("/v1/files?tenant={CODE}"), &[], None)
        .json();
    let id = files["files"][0]["id"].as_str().unwrap().to_string();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/stalled_reader.py");
    let out = Command::new("python3")
        .arg(script)
        .args(["127.0.0.1", &gw.https.port().to_string()])
        .arg(format!("/v1/files/{id}/content"))
        .args([REVIEWER, "6"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, metrics) = gw.admin_get("/metrics").unwrap();
    assert!(
        metrics.contains("gateway_downloads_total{kind=\"stalled\"} 1"),
        "{}",
        metrics
            .lines()
            .filter(|l| l.contains("downloads_total"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert_eq!(gw.admin_get("/healthz").unwrap().0, 200);
}

/// Holds the catalog's write lock from another process (what a backup tool or an
/// operator's `sqlite3` session does) until dropped.
struct CatalogLock(std::process::Child);

impl CatalogLock {
    fn take(db: &Path) -> CatalogLock {
        use std::io::BufRead;
        let script = "import sqlite3, sys\n\
            c = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)\n\
            c.execute('BEGIN EXCLUSIVE')\n\
            print('locked', flush=True)\n\
            sys.stdin.read()\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(db)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
        CatalogLock(child)
    }
}

impl Drop for CatalogLock {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

/// The catalog locked by another process past the busy timeout: uploads are refused
/// with `503 catalog.unavailable` (tus) or a failure (OpenSSH `sftp`), the gateway
/// keeps answering, and once the lock is gone everything goes on without a restart —
/// the interrupted upload resumes from its durable offset.
#[test]
fn a_catalog_locked_elsewhere_refuses_and_recovers_without_a_restart() {
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = gateway_tests::ssh_keygen(keys.path(), "k").unwrap();
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(CODE).token(TOKEN).ssh_key(&public))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let c = Client::new(gw.https, Some(TOKEN));
    let recipient = gw.age_recipient().unwrap();
    let seal = |plain: &[u8]| seal_to_vec(std::slice::from_ref(&recipient), plain).unwrap();
    let sha = |plain: &[u8]| hex::encode(ring::digest::digest(&ring::digest::SHA256, plain));
    let before = gateway_tests::sftp::text_record(100_000, 1);
    let up_before = c.upload("before.txt", &seal(&before));
    assert_eq!(c.wait_result(&up_before)["status"], "passed");

    // An upload half sent when the lock is taken.
    let plain = gateway_tests::sftp::text_record(3 << 20, 2);
    let file = seal(&plain);
    let meta = format!(
        "filename {}",
        base64::engine::general_purpose::STANDARD.encode("during.txt")
    );
    let len = file.len().to_string();
    let r = c.call(
        "POST",
        "/v1/uploads",
        &[V, ("Upload-Length", &len), ("Upload-Metadata", &meta)],
        None,
    );
    assert_eq!(r.status, 201, "{r:?}");
    let url = r.header("location").unwrap().to_string();
    let (r, half) = patch_piece(&c, &url, &file, 0, file.len() / 2);
    assert_eq!(r.status, 204, "{r:?}");

    let lock = CatalogLock::take(&gw.data_dir.join("catalog.db"));
    let (r, _) = patch_piece(&c, &url, &file, half, file.len());
    assert_eq!(
        (r.status, r.code().as_str()),
        (503, "catalog.unavailable"),
        "{r:?}"
    );
    let r = c.call(
        "POST",
        "/v1/uploads",
        &[V, ("Upload-Length", "100"), ("Upload-Metadata", &meta)],
        None,
    );
    assert_eq!(
        (r.status, r.code().as_str()),
        (503, "catalog.unavailable"),
        "{r:?}"
    );
    let local = keys.path().join("sftp.txt");
    let sftp_plain = gateway_tests::sftp::text_record(50_000, 3);
    std::fs::write(&local, seal(&sftp_plain)).unwrap();
    let put = format!("put {} /inbox/sftp.txt\n", local.display());
    let (code, out) = gateway_tests::sftp_batch(gw.sftp, CODE, &key, &put).unwrap();
    assert_ne!(code, 0, "refused while the catalog is locked: {out}");
    assert_eq!(gw.admin_get("/healthz").unwrap().0, 200, "still answering");
    // What was accepted before stays readable.
    assert_eq!(c.wait_result(&up_before)["status"], "passed");
    drop(lock);

    // No restart: the interrupted upload resumes, new ones are taken.
    let mut offset = head_offset(&c, &url);
    assert!(offset >= half, "acknowledged bytes kept: {offset} < {half}");
    while offset < file.len() {
        let (r, end) = patch_piece(&c, &url, &file, offset, 1 << 20);
        assert_eq!(r.status, 204, "{r:?}");
        offset = end;
    }
    let result = c.wait_result(&url);
    assert_eq!(
        (result["status"].as_str(), result["sha256"].as_str()),
        (Some("passed"), Some(sha(&plain).as_str())),
        "{result}"
    );
    let (code, out) = gateway_tests::sftp_batch(gw.sftp, CODE, &key, &put).unwrap();
    assert_eq!(code, 0, "{out}");
    let after = gateway_tests::sftp::text_record(100_000, 4);
    let up_after = c.upload("after.txt", &seal(&after));
    assert_eq!(c.wait_result(&up_after)["status"], "passed");
    assert!(!gw.log().contains("panicked"));
}
