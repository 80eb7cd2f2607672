//! Sealed-file throughput, beside ring's raw ChaCha20-Poly1305 on one core.
//!
//! Groups:
//! - `chacha_raw`: ring opening 64 KiB buffers in place, one core (the ceiling per core).
//! - `open_parallel`: our parallel opener on a page-cached sealed file, by batch size,
//!   with and without the plaintext SHA-256.
//! - `open_stream`: the single-threaded streaming opener (what runs while bytes arrive).
//!
//! Size: `BENCH_SEALED_MIB` (default 256).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gateway::sealed::{HeaderPolicy, Identity, ParallelOptions, StreamOpener, parallel};
use gateway_bench::write_sealed_fixture;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

fn mib() -> u64 {
    std::env::var("BENCH_SEALED_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(256)
}

fn chacha_raw(c: &mut Criterion) {
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &[7u8; 32]).unwrap());
    let mut sealed = vec![0x42u8; 64 * 1024];
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key([0; 12]),
        Aad::empty(),
        &mut sealed,
    )
    .unwrap();
    let mut g = c.benchmark_group("chacha_raw");
    g.throughput(Throughput::Bytes(64 * 1024));
    // The reference: one core, one 64 KiB chunk opened in place over and over. After the
    // first pass the buffer no longer authenticates, but ring does the same work either
    // way (it cannot know before computing the tag), so this is its raw speed.
    g.bench_function("open_64KiB_one_core", |b| {
        let mut buf = sealed.clone();
        b.iter(|| {
            let r = key.open_in_place(
                Nonce::assume_unique_for_key([0; 12]),
                Aad::empty(),
                &mut buf,
            );
            black_box(r.is_ok());
        })
    });
    // Sealing runs the same cipher and MAC and always succeeds: a cross-check.
    g.bench_function("seal_64KiB_one_core", |b| {
        let mut buf = vec![0x42u8; 64 * 1024];
        b.iter(|| {
            let tag = key
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key([0; 12]),
                    Aad::empty(),
                    &mut buf,
                )
                .unwrap();
            black_box(tag.as_ref()[0]);
        })
    });
    // SHA-256 of plaintext is sequential: this bounds the hashing open on any core count.
    g.bench_function("sha256_64KiB_one_core", |b| {
        let buf = vec![0x42u8; 64 * 1024];
        b.iter(|| black_box(ring::digest::digest(&ring::digest::SHA256, &buf)))
    });
    // For comparison: with a fresh copy of the ciphertext each time, as a real open needs.
    g.bench_function("copy_and_open_64KiB_one_core", |b| {
        let mut buf = sealed.clone();
        b.iter(|| {
            buf.copy_from_slice(&sealed);
            let pt = key
                .open_in_place(
                    Nonce::assume_unique_for_key([0; 12]),
                    Aad::empty(),
                    &mut buf,
                )
                .unwrap();
            black_box(pt.len());
        })
    });
    g.finish();
}

fn open_parallel(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let id = Identity::generate().unwrap();
    let len = mib() << 20;
    let input = dir.path().join("in.age");
    write_sealed_fixture(&input, &id, len).unwrap();
    let file = std::fs::File::open(&input).unwrap();
    // SAFETY: the fixture is ours and nothing else writes it during the benchmark.
    let map = unsafe { memmap2::Mmap::map(&file).unwrap() };
    let policy = HeaderPolicy::default();

    // The decrypt pipeline itself (mmap → verify/decrypt → positional writes), with
    // the writes going to /dev/null: comparable with ring's raw figure above.
    let devnull = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let mut g = c.benchmark_group("open_parallel");
    g.throughput(Throughput::Bytes(len));
    g.sample_size(10).measurement_time(Duration::from_secs(6));
    for batch in [1usize, 4, 16, 64] {
        for hash in [false, true] {
            let opts = ParallelOptions {
                batch_chunks: batch,
                hash,
                ..Default::default()
            };
            let name = if hash { "hash" } else { "nohash" };
            g.bench_with_input(BenchmarkId::new(name, batch), &opts, |b, opts| {
                b.iter(|| parallel::open_slice(&map, &id, &policy, &devnull, opts).unwrap())
            });
        }
    }
    // End to end, file to file: the output lands in the page cache and is renamed into
    // place; removing the previous output is setup, not measured.
    let output = dir.path().join("out");
    let opts = ParallelOptions::default();
    g.bench_function("file_to_file", |b| {
        b.iter_batched(
            || {
                let _ = std::fs::remove_file(&output);
            },
            |()| parallel::open_file(&input, &output, &id, &policy, &opts).unwrap(),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn open_stream(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let id = Identity::generate().unwrap();
    let len = mib() << 20;
    let input = dir.path().join("in.age");
    write_sealed_fixture(&input, &id, len).unwrap();
    let sealed = std::fs::read(&input).unwrap();
    let mut g = c.benchmark_group("open_stream");
    g.throughput(Throughput::Bytes(len));
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function("one_core_with_sha256", |b| {
        b.iter(|| {
            let mut o = StreamOpener::new(id.clone(), HeaderPolicy::default(), std::io::sink());
            for piece in sealed.chunks(256 * 1024) {
                o.push(piece).unwrap();
            }
            black_box(o.finish().unwrap().0)
        })
    });
    g.finish();
}

criterion_group!(benches, chacha_raw, open_parallel, open_stream);
criterion_main!(benches);
