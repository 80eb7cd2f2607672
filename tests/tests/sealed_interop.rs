//! Interop both ways with software nobody here wrote: the Debian `age` CLI (Go) and
//! `pyrage` from PyPI (rage, Rust). Needs `age`, `age-keygen`, python3 + pyrage
//! (installed by scripts/test-setup.sh).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use gateway::sealed::{HeaderPolicy, Identity, ParallelOptions, parallel};
use gateway_tests::run_gateway;

const EDGE_LENGTHS: &[usize] = &[0, 1, 65535, 65536, 65537, 3 * 65536];

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ 0x5a).collect()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn pyrage() -> Command {
    let mut c = Command::new("python3");
    c.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/pyrage_tool.py"));
    c
}

struct Keys {
    dir: tempfile::TempDir,
    identity_file: PathBuf,
    recipient: String,
}

/// An identity made by the real `age-keygen`.
fn age_keygen() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let identity_file = dir.path().join("id.txt");
    run(Command::new("age-keygen").arg("-o").arg(&identity_file));
    let recipient = run(Command::new("age-keygen").arg("-y").arg(&identity_file))
        .trim()
        .to_string();
    Keys {
        dir,
        identity_file,
        recipient,
    }
}

fn gw_open(k: &Keys, sealed: &Path, out: &Path, stream: bool) -> (bool, String) {
    let mut args = vec![
        "open",
        "-i",
        k.identity_file.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    if stream {
        args.push("--stream");
    }
    args.push(sealed.to_str().unwrap());
    let o = run_gateway(&args, k.dir.path()).unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    )
}

#[test]
fn age_keygen_identity_matches_our_reading() {
    let k = age_keygen();
    let text = std::fs::read_to_string(&k.identity_file).unwrap();
    let id = Identity::from_file_text(&text).unwrap();
    assert_eq!(id.to_public().to_string(), k.recipient);
}

#[test]
fn our_keygen_works_with_age() {
    let dir = tempfile::tempdir().unwrap();
    let id = dir.path().join("ours.txt");
    let o = run_gateway(&["keygen", "-o", id.to_str().unwrap()], dir.path()).unwrap();
    assert!(o.status.success());
    let ours = String::from_utf8_lossy(&o.stderr)
        .trim()
        .trim_start_matches("Public key: ")
        .to_string();
    let theirs = run(Command::new("age-keygen").arg("-y").arg(&id))
        .trim()
        .to_string();
    assert_eq!(ours, theirs);
}

#[test]
fn age_and_pyrage_sealed_files_open_with_ours() {
    let k = age_keygen();
    for &len in EDGE_LENGTHS {
        let plain = k.dir.path().join(format!("p{len}"));
        std::fs::write(&plain, pattern(len)).unwrap();
        let by_age = k.dir.path().join(format!("a{len}.age"));
        run(Command::new("age")
            .arg("-r")
            .arg(&k.recipient)
            .arg("-o")
            .arg(&by_age)
            .arg(&plain));
        let by_py = k.dir.path().join(format!("y{len}.age"));
        run(pyrage()
            .args(["encrypt", &k.recipient])
            .arg(&plain)
            .arg(&by_py));
        for (sealed, who) in [(&by_age, "age"), (&by_py, "pyrage")] {
            for stream in [false, true] {
                let out = k.dir.path().join(format!("o{len}{who}{stream}"));
                let (ok, err) = gw_open(&k, sealed, &out, stream);
                assert!(ok, "{who} len {len} stream {stream}: {err}");
                assert_eq!(
                    std::fs::read(&out).unwrap(),
                    pattern(len),
                    "{who} len {len}"
                );
            }
        }
    }
}

#[test]
fn our_sealed_files_open_with_age_and_pyrage() {
    let k = age_keygen();
    for &len in EDGE_LENGTHS {
        let plain = k.dir.path().join(format!("p{len}"));
        std::fs::write(&plain, pattern(len)).unwrap();
        let sealed = k.dir.path().join(format!("s{len}.age"));
        let o = run_gateway(
            &[
                "seal",
                "-r",
                &k.recipient,
                "-o",
                sealed.to_str().unwrap(),
                plain.to_str().unwrap(),
            ],
            k.dir.path(),
        )
        .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let out_age = k.dir.path().join(format!("da{len}"));
        run(Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(&k.identity_file)
            .arg("-o")
            .arg(&out_age)
            .arg(&sealed));
        // age creates its output lazily: an empty plaintext leaves no file.
        let got = std::fs::read(&out_age).unwrap_or_default();
        assert_eq!(got, pattern(len), "age -d len {len}");
        let out_py = k.dir.path().join(format!("dy{len}"));
        run(pyrage()
            .arg("decrypt")
            .arg(&k.identity_file)
            .arg(&sealed)
            .arg(&out_py));
        assert_eq!(
            std::fs::read(&out_py).unwrap(),
            pattern(len),
            "pyrage len {len}"
        );
    }
}

#[test]
fn passphrase_files_are_refused_with_their_code() {
    let k = age_keygen();
    let plain = k.dir.path().join("p");
    std::fs::write(&plain, b"secret record").unwrap();
    let sealed = k.dir.path().join("pw.age");
    run(pyrage()
        .args(["passphrase", "hunter2"])
        .arg(&plain)
        .arg(&sealed));
    let (ok, err) = gw_open(&k, &sealed, &k.dir.path().join("o"), true);
    assert!(!ok);
    assert!(err.contains("sealed.passphrase_not_accepted"), "{err}");
}

#[test]
fn a_file_for_someone_else_is_refused() {
    let k = age_keygen();
    let other = age_keygen();
    let plain = k.dir.path().join("p");
    std::fs::write(&plain, b"record").unwrap();
    let sealed = k.dir.path().join("x.age");
    run(Command::new("age")
        .arg("-r")
        .arg(&other.recipient)
        .arg("-o")
        .arg(&sealed)
        .arg(&plain));
    let (ok, err) = gw_open(&k, &sealed, &k.dir.path().join("o"), false);
    assert!(!ok);
    assert!(err.contains("sealed.not_a_recipient"), "{err}");
    assert!(
        !k.dir.path().join("o").exists(),
        "no output for a refused file"
    );
}

/// A 2 GiB + 5 byte file both ways: `age` seals from a pipe, our parallel opener
/// opens (and hashes); we seal from a pipe, `age -d` opens into a pipe we check.
#[test]
fn multi_gib_both_ways() {
    const LEN: u64 = (2 << 30) + 5;
    let k = age_keygen();
    let sealed = k.dir.path().join("big.age");
    let mut age = Command::new("age")
        .arg("-r")
        .arg(&k.recipient)
        .arg("-o")
        .arg(&sealed)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = age.stdin.take().unwrap();
    std::io::copy(&mut std::io::repeat(0).take(LEN), &mut stdin).unwrap();
    drop(stdin);
    assert!(age.wait().unwrap().success());

    let id = Identity::from_file_text(&std::fs::read_to_string(&k.identity_file).unwrap()).unwrap();
    let out = k.dir.path().join("big.out");
    let report = parallel::open_file(
        &sealed,
        &out,
        &id,
        &HeaderPolicy::default(),
        &ParallelOptions::default(),
    )
    .unwrap();
    assert_eq!(report.plaintext_len, LEN);
    assert_eq!(std::fs::metadata(&out).unwrap().len(), LEN);
    let mut zeros = ring::digest::Context::new(&ring::digest::SHA256);
    let block = vec![0u8; 1 << 20];
    let mut left = LEN;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        zeros.update(&block[..n]);
        left -= n as u64;
    }
    assert_eq!(report.sha256.unwrap().as_slice(), zeros.finish().as_ref());
    std::fs::remove_file(&out).unwrap();
    std::fs::remove_file(&sealed).unwrap();

    // Ours → age, all through pipes: nothing lands on disk.
    let mut seal = Command::new(gateway_tests::gateway_bin())
        .args(["seal", "-r", &k.recipient])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut open = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&k.identity_file)
        .stdin(seal.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seal_in = seal.stdin.take().unwrap();
    let feeder =
        std::thread::spawn(move || std::io::copy(&mut std::io::repeat(0).take(LEN), &mut seal_in));
    let mut plain = open.stdout.take().unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = plain.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().all(|&b| b == 0));
        total += n as u64;
    }
    assert_eq!(feeder.join().unwrap().unwrap(), LEN);
    assert!(seal.wait().unwrap().success());
    assert!(open.wait().unwrap().success());
    assert_eq!(total, LEN);
}
