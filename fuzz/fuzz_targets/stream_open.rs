//! Streaming opener fed in pieces: no panic, and whatever it accepts must be exactly
//! what the parallel opener accepts (same plaintext, same digest).
#![no_main]
mod common;

use std::io::Read;

use gateway::sealed::{HeaderPolicy, Identity, ParallelOptions, StreamOpener, parallel};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, sealed)) = data.split_first() else { return };
    let id: Identity = common::IDENTITY.parse().expect("fixed identity");
    let policy = HeaderPolicy::default();
    let piece = usize::from(split).max(1) * 97;
    let mut o = StreamOpener::new(id.clone(), policy.clone(), Vec::new());
    let streamed = sealed
        .chunks(piece)
        .try_for_each(|p| o.push(p))
        .and_then(|_| o.finish());
    let file = tempfile_in_memory();
    let par = parallel::open_slice(sealed, &id, &policy, &file, &ParallelOptions { batch_chunks: 1, window_chunks: 2, ..Default::default() });
    match (streamed, par) {
        (Ok((rs, out)), Ok(rp)) => {
            assert_eq!(rs.sha256, rp.sha256);
            let mut got = Vec::new();
            (&file).read_to_end(&mut got).expect("read back");
            assert_eq!(got, out);
        }
        (Err(a), Err(b)) => assert_eq!(a.code(), b.code()),
        (a, b) => panic!("openers disagree: stream {:?} parallel {:?}", a.map(|x| x.0), b),
    }
});

fn tempfile_in_memory() -> std::fs::File {
    // An anonymous file in /dev/shm keeps the fuzzer off the disk.
    let path = format!("/dev/shm/gateway-fuzz-{}", std::process::id());
    let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).expect("shm file");
    let _ = std::fs::remove_file(&path);
    f
}
