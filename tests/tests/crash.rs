//! Crash test of the ingest core as a process: `ingest_driver` uploads sealed files
//! and runs the pipeline; we SIGKILL it at random instants (≥ 30 times; set
//! CRASH_KILLS for a longer soak), restart it, let it resume, and then check that every
//! acknowledged upload is indexed exactly once with the right SHA-256, that nothing
//! incomplete or wrong was indexed, and that every partial upload completed.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use gateway::backends::catalog;
use gateway::sealed::{Identity, seal_to_vec};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: reproducible from the printed seed.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo)
    }
}

/// Writes `count` sealed text records (the generic profile's inspectors accept text
/// without parsing it, so every complete file passes its checks); returns name →
/// plaintext SHA-256.
fn make_files(
    dir: &Path,
    id: &Identity,
    rng: &mut Rng,
    first: usize,
    count: usize,
) -> HashMap<String, String> {
    let mut expected = HashMap::new();
    for i in first..first + count {
        let len = rng.range(1_000, 2_000_000) as usize;
        let mut plain = format!("record {i}\n").into_bytes();
        let salt = rng.next();
        plain.extend((0..len).map(|j| b'a' + ((j as u64).wrapping_mul(salt) >> 40) as u8 % 26));
        let name = format!("f{i:04}.txt");
        std::fs::write(
            dir.join(&name),
            seal_to_vec(&[id.to_public()], &plain).unwrap(),
        )
        .unwrap();
        expected.insert(name, hex_sha(&plain));
    }
    expected
}

fn hex_sha(data: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn kill_nine_at_random_instants_loses_no_acknowledged_upload() {
    let kills_wanted: u32 = std::env::var("CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    println!("crash test seed {seed} (CRASH_SEED to replay), {kills_wanted} kills");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let files = dir.path().join("files");
    std::fs::create_dir_all(data.join("keys")).unwrap();
    std::fs::create_dir_all(&files).unwrap();
    let tenants = dir.path().join("tenants.toml");
    std::fs::write(
        &tenants,
        "[[tenant]]\ncode = \"3501200000\"\nname = \"T\"\nprofile = \"generic\"\n",
    )
    .unwrap();
    let id = Identity::generate().unwrap();
    std::fs::write(
        data.join("keys/age-identity.txt"),
        id.to_file_text("2026-01-01T00:00:00Z"),
    )
    .unwrap();
    let mut expected = make_files(&files, &id, &mut rng, 0, 60);

    let mut acked: HashMap<String, (String, String)> = HashMap::new();
    let (mut kills, mut runs, mut done, mut resumed) = (0u32, 0u32, false, 0u32);
    let started = Instant::now();
    while !(done && kills >= kills_wanted) {
        assert!(
            runs < 2000 && started.elapsed() < Duration::from_secs(600),
            "crash test did not converge"
        );
        if done {
            // Everything finished before enough kills: give it more work.
            let more = make_files(&files, &id, &mut rng, expected.len(), 20);
            expected.extend(more);
            done = false;
        }
        runs += 1;
        let skip: Vec<&str> = acked.keys().map(String::as_str).collect();
        let mut child = Command::new(env!("CARGO_BIN_EXE_ingest_driver"))
            .args([
                "--data-dir",
                data.to_str().unwrap(),
                "--tenants",
                tenants.to_str().unwrap(),
            ])
            .args([
                "--files",
                files.to_str().unwrap(),
                "--skip",
                &skip.join(","),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = if kills < kills_wanted {
            Instant::now() + Duration::from_millis(rng.range(5, 150))
        } else {
            Instant::now() + Duration::from_secs(120)
        };
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        let status = child.wait().unwrap();
        reader.join().unwrap();
        for line in rx.try_iter() {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                ["ACK", name, upload, sha] => {
                    acked.insert(name.to_string(), (upload.to_string(), sha.to_string()));
                }
                ["DONE"] => done = true,
                ["RESUME", _, _] => resumed += 1,
                _ => panic!("unexpected driver output: {line}"),
            }
        }
        if !status.success() && status.code().is_some() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            panic!("driver failed ({status}): {err}");
        }
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (indexed, uploads) = rt.block_on(async {
        let catalog = catalog::open("", &data).await.unwrap();
        let indexed = catalog.all_indexed().await.unwrap();
        let mut names = HashMap::new();
        for (upload, _) in &indexed {
            let row = catalog.upload(upload).await.unwrap().unwrap();
            names.insert(upload.clone(), row.name);
        }
        (indexed, names)
    });

    // Every name completed and was acknowledged (partial uploads resumed to the end).
    let names: HashSet<&String> = expected.keys().collect();
    let acked_names: HashSet<&String> = acked.keys().collect();
    assert_eq!(names, acked_names, "not every upload completed");
    // Nothing incomplete or altered is indexed: each indexed file is exactly its name's content.
    let mut per_upload: HashMap<&str, u32> = HashMap::new();
    for (upload, sha) in &indexed {
        let name = &uploads[upload];
        assert_eq!(sha, &expected[name], "indexed content of {name} is wrong");
        *per_upload.entry(upload).or_default() += 1;
    }
    // Every acknowledged upload is indexed exactly once, with the acknowledged digest.
    for (name, (upload, sha)) in &acked {
        assert_eq!(sha, &expected[name], "acknowledged digest of {name}");
        if per_upload.get(upload.as_str()) != Some(&1) {
            // Say what became of it (its state and findings), then fail.
            let result = rt.block_on(async {
                let catalog = catalog::open("", &data).await.unwrap();
                catalog.check_result(upload).await.unwrap()
            });
            panic!(
                "{name} ({upload}) indexed {:?} times: {result:?}",
                per_upload.get(upload.as_str())
            );
        }
    }
    let resent = indexed.len() - acked.len();
    println!(
        "crash test: {kills} kills over {runs} runs; {} files acknowledged, {} indexed \
         ({resent} completed but unacknowledged before a kill, then sent again); \
         {resumed} partial uploads resumed from their durable offset",
        acked.len(),
        indexed.len()
    );
    assert!(
        resumed > 0,
        "no kill hit an upload in flight: the test proved nothing"
    );
}
