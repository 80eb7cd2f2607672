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
