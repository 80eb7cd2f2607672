//! Memory stays flat under concurrency, not only per file: 50 OpenSSH `sftp` uploads
//! and 50 tus uploads (curl) at once, while the gateway's resident memory is sampled.
//! SFTP sessions share one pool of write buffers (`sftp.write_buffer_mib`) instead of
//! each holding a full queue, so the peak stays under 256 MiB however many send.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use gateway::sealed::seal_to_vec;
use gateway_tests::http::Client;
use gateway_tests::{TestGateway, TestTenant, ssh_keygen};

const CODE: &str = "3501200000";
const TOKEN: &str = "tok-3501200000-aaaaaaaaaaaaaaaaaaaaaaaa";
const EACH: usize = 50;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn fifty_sftp_and_fifty_tus_uploads_at_once_stay_under_256_mib() {
    let files = tempfile::tempdir().unwrap();
    let (key, public) = ssh_keygen(files.path(), "k").unwrap();
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(CODE).token(TOKEN).ssh_key(&public))
        .sftp_config("max_sessions_per_ip = 0\nmax_sessions_per_tenant = 0\n")
        .config("[ingest]\nmax_file_bytes = 100000000\nadmission_wait_secs = 120\n")
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let plain = gateway_tests::sftp::text_record(16 << 20, 5);
    let sealed = seal_to_vec(&[gw.age_recipient().unwrap()], &plain).unwrap();
    let local = files.path().join("big.age");
    std::fs::write(&local, &sealed).unwrap();

    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done, pid) = (peak.clone(), done.clone(), gw.pid());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let started = Instant::now();
    // N_SFTP / N_TUS change the mix when measuring by hand.
    let count = |var: &str| -> usize {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(EACH)
    };
    let (n_sftp, n_tus) = (count("N_SFTP"), count("N_TUS"));
    let sftp: Vec<_> = (0..n_sftp)
        .map(|i| {
            let mut c = Command::new("sftp");
            for opt in [
                "StrictHostKeyChecking=no",
                "UserKnownHostsFile=/dev/null",
                "LogLevel=ERROR",
            ] {
                c.arg("-o").arg(opt);
            }
            c.args(["-b", "-", "-P", &gw.sftp.port().to_string(), "-i"])
                .arg(&key)
                .arg(format!("{CODE}@127.0.0.1"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = c.spawn().unwrap();
            use std::io::Write;
            let script = format!("put {} /inbox/s{i}.txt\n", local.display());
            child
                .stdin
                .take()
                .unwrap()
                .write_all(script.as_bytes())
                .unwrap();
            child
        })
        .collect();
    let tus: Vec<_> = (0..n_tus)
        .map(|i| {
            let (https, sealed) = (gw.https, sealed.clone());
            std::thread::spawn(move || {
                let c = Client::new(https, Some(TOKEN));
                c.upload(&format!("t{i}.txt"), &sealed)
            })
        })
        .collect();
    for child in sftp {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let urls: Vec<String> = tus.into_iter().map(|t| t.join().unwrap()).collect();
    let seconds = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let peak_mib = peak.load(Ordering::Relaxed) / 1024;
    let total = ((n_sftp + n_tus) * sealed.len()) as f64 / 1e6;
    println!(
        "{} uploads of {} MB in {seconds:.1} s ({:.0} MB/s aggregate); gateway peak RSS {peak_mib} MiB",
        n_sftp + n_tus,
        sealed.len() / 1_000_000,
        total / seconds
    );
    assert!(peak_mib < 256, "gateway peak RSS {peak_mib} MiB");
    let c = Client::new(gw.https, Some(TOKEN));
    for url in &urls {
        assert_eq!(c.wait_result(url)["status"], "passed");
    }
}
