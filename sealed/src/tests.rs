//! Round-trip and tamper tests shared by the streaming and parallel openers.

use super::*;
use proptest::prelude::*;
use std::io::Read;

fn id() -> Identity {
    Identity::generate().unwrap()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Opens with the parallel path into a temp file; returns plaintext or the error code.
fn open_parallel(
    identity: &Identity,
    sealed: &[u8],
    opts: &ParallelOptions,
) -> std::result::Result<(Vec<u8>, OpenReport), SealedError> {
    let f = tempfile::tempfile().unwrap();
    let r = parallel::open_slice(sealed, identity, &HeaderPolicy::default(), &f, opts)?;
    let mut out = Vec::new();
    (&f).read_to_end(&mut out).unwrap();
    Ok((out, r))
}

fn small_batches() -> ParallelOptions {
    ParallelOptions {
        batch_chunks: 1,
        window_chunks: 2,
        ..Default::default()
    }
}

fn code_of<T>(r: std::result::Result<T, SealedError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => e.code().to_string(),
    }
}

#[test]
fn edge_lengths_roundtrip_both_paths() {
    let k = id();
    for len in [0, 1, 65535, 65536, 65537, 3 * 65536, 3 * 65536 + 17] {
        let pt = pattern(len, 7);
        let sealed = seal_to_vec(&[k.to_public()], &pt).unwrap();
        let (out, rep) = open_to_vec(&k, &HeaderPolicy::default(), &sealed).unwrap();
        assert_eq!(out, pt, "stream len {len}");
        let expect_sha = ring::digest::digest(&ring::digest::SHA256, &pt);
        assert_eq!(rep.sha256.unwrap().as_slice(), expect_sha.as_ref());
        for opts in [small_batches(), ParallelOptions::default()] {
            let (pout, prep) = open_parallel(&k, &sealed, &opts).unwrap();
            assert_eq!(pout, pt, "parallel len {len}");
            assert_eq!(prep.sha256, rep.sha256);
            assert_eq!(prep.plaintext_len, len as u64);
        }
    }
}

#[test]
fn exact_multiple_has_no_empty_final_chunk() {
    let k = id();
    let sealed = seal_to_vec(&[k.to_public()], &pattern(2 * CHUNK, 1)).unwrap();
    let (_, rep) = open_to_vec(&k, &HeaderPolicy::default(), &sealed).unwrap();
    assert_eq!(rep.chunks, 2);
}

#[test]
fn streaming_emits_nothing_unverified_and_reports_progress() {
    let k = id();
    let pt = pattern(3 * CHUNK + 100, 3);
    let sealed = seal_to_vec(&[k.to_public()], &pt).unwrap();
    let mut o = StreamOpener::new(k.clone(), HeaderPolicy::default(), Vec::new());
    for piece in sealed.chunks(1000) {
        o.push(piece).unwrap();
        // Verified plaintext is always whole chunks until the final one.
        assert_eq!(o.verified_plaintext() % CHUNK as u64, 0);
        assert!(!o.final_seen());
    }
    assert!(o.probe_final());
    assert!(o.final_seen());
    assert_eq!(o.verified_plaintext(), pt.len() as u64);
    assert_eq!(code_of(o.push(b"x")), "sealed.trailing_data");
}

#[test]
fn wrong_identity_and_truncated_header() {
    let k = id();
    let sealed = seal_to_vec(&[k.to_public()], b"hello").unwrap();
    assert_eq!(
        code_of(open_to_vec(&id(), &HeaderPolicy::default(), &sealed)),
        "sealed.not_a_recipient"
    );
    assert_eq!(
        code_of(open_to_vec(&k, &HeaderPolicy::default(), &sealed[..40])),
        "sealed.truncated"
    );
    assert_eq!(
        code_of(open_parallel(&k, &sealed[..40], &small_batches())),
        "sealed.truncated"
    );
    assert_eq!(
        code_of(open_to_vec(&k, &HeaderPolicy::default(), b"")),
        "sealed.truncated"
    );
}

/// The sealed file split into (header+nonce, chunks).
fn split(sealed: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let h = header::parse(sealed, &HeaderPolicy::default())
        .unwrap()
        .unwrap();
    let head_len = h.len + 16;
    let chunks = sealed[head_len..]
        .chunks(SEALED_CHUNK)
        .map(<[u8]>::to_vec)
        .collect();
    (sealed[..head_len].to_vec(), chunks)
}

fn join(head: &[u8], chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut v = head.to_vec();
    for c in chunks {
        v.extend_from_slice(c);
    }
    v
}

/// Both openers must agree on the outcome of every tampered file.
fn both_codes(k: &Identity, sealed: &[u8]) -> (String, String) {
    (
        code_of(open_to_vec(k, &HeaderPolicy::default(), sealed)),
        code_of(open_parallel(k, sealed, &small_batches())),
    )
}

#[test]
fn chunk_swap_duplicate_removal() {
    let k = id();
    let sealed = seal_to_vec(&[k.to_public()], &pattern(3 * CHUNK + 5, 9)).unwrap();
    let (head, chunks) = split(&sealed);
    assert_eq!(chunks.len(), 4);
    let cases: Vec<(Vec<Vec<u8>>, &str)> = vec![
        (
            vec![
                chunks[1].clone(),
                chunks[0].clone(),
                chunks[2].clone(),
                chunks[3].clone(),
            ],
            "sealed.chunk_auth_failed",
        ),
        (
            vec![
                chunks[0].clone(),
                chunks[0].clone(),
                chunks[1].clone(),
                chunks[2].clone(),
                chunks[3].clone(),
            ],
            "sealed.chunk_auth_failed",
        ),
        (
            vec![chunks[0].clone(), chunks[2].clone(), chunks[3].clone()],
            "sealed.chunk_auth_failed",
        ),
        (chunks[..3].to_vec(), "sealed.truncated"),
        (
            vec![
                chunks[0].clone(),
                chunks[1].clone(),
                chunks[2].clone(),
                chunks[3].clone(),
                chunks[3].clone(),
            ],
            "sealed.trailing_data",
        ),
    ];
    for (i, (c, want)) in cases.into_iter().enumerate() {
        let (s, p) = both_codes(&k, &join(&head, &c));
        assert_eq!(s, want, "case {i} stream");
        assert_eq!(p, want, "case {i} parallel");
    }
}

#[test]
fn appended_bytes_are_trailing_data() {
    let k = id();
    for len in [0usize, 10, CHUNK, CHUNK + 10, 2 * CHUNK] {
        let mut sealed = seal_to_vec(&[k.to_public()], &pattern(len, 2)).unwrap();
        for extra in [1usize, 15, 16, 17, 200] {
            sealed.extend(std::iter::repeat_n(0xA5u8, extra));
            let (s, p) = both_codes(&k, &sealed);
            assert_eq!(s, "sealed.trailing_data", "len {len} extra {extra}");
            assert_eq!(p, "sealed.trailing_data", "len {len} extra {extra}");
            sealed.truncate(sealed.len() - extra);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn roundtrip_random_lengths_and_pieces(len in 0usize..(3 * CHUNK + 300), piece in 1usize..100_000, seed: u8) {
        let k = id();
        let pt = pattern(len, seed);
        let sealed = seal_to_vec(&[k.to_public()], &pt).unwrap();
        let mut o = StreamOpener::new(k.clone(), HeaderPolicy::default(), Vec::new());
        for p in sealed.chunks(piece) {
            o.push(p).unwrap();
        }
        let (rep, out) = o.finish().unwrap();
        prop_assert_eq!(&out, &pt);
        let (pout, prep) = open_parallel(&k, &sealed, &small_batches()).unwrap();
        prop_assert_eq!(pout, pt);
        prop_assert_eq!(prep.sha256, rep.sha256);
    }

    #[test]
    fn any_bit_flip_is_rejected(len in 0usize..(2 * CHUNK + 300), pos: prop::sample::Index, bit in 0u8..8) {
        let k = id();
        let pt = pattern(len, 5);
        let mut sealed = seal_to_vec(&[k.to_public()], &pt).unwrap();
        let i = pos.index(sealed.len());
        sealed[i] ^= 1 << bit;
        // Stream: whatever was emitted before the error must be a verified prefix.
        let mut emitted = Vec::new();
        let mut o = StreamOpener::new(k.clone(), HeaderPolicy::default(), &mut emitted);
        let result = o.push(&sealed).and_then(|_| o.finish().map(|_| ()));
        prop_assert!(result.is_err(), "flip at {} accepted", i);
        prop_assert!(pt.starts_with(&emitted), "unverified bytes emitted (flip at {})", i);
        let (_, p) = both_codes(&k, &sealed);
        prop_assert_ne!(p, "ok");
    }

    #[test]
    fn any_truncation_is_rejected(len in 1usize..(3 * CHUNK), cut: prop::sample::Index) {
        let k = id();
        let sealed = seal_to_vec(&[k.to_public()], &pattern(len, 1)).unwrap();
        let at = cut.index(sealed.len());
        let (s, p) = both_codes(&k, &sealed[..at]);
        prop_assert!(s == "sealed.truncated" || s == "sealed.chunk_auth_failed", "stream {}", s);
        prop_assert_eq!(s, p);
    }
}

#[test]
fn sealed_reader_reads_and_seeks_like_the_plaintext() {
    use std::io::{Cursor, Seek, SeekFrom};
    let identity = id();
    for len in [
        0usize,
        1,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        3 * CHUNK,
        3 * CHUNK + 77,
    ] {
        let plain = pattern(len, 7);
        let sealed = seal_to_vec(&[identity.to_public()], &plain).unwrap();
        let mut r =
            SealedReader::new(Cursor::new(&sealed), &identity, &HeaderPolicy::default()).unwrap();
        assert_eq!(r.plaintext_len(), len as u64);
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, plain, "len {len}");
        for at in [len / 3, len.saturating_sub(5), CHUNK.min(len)] {
            r.seek(SeekFrom::Start(at as u64)).unwrap();
            let mut tail = Vec::new();
            r.read_to_end(&mut tail).unwrap();
            assert_eq!(tail, &plain[at..], "len {len} from {at}");
        }
        r.seek(SeekFrom::End(0)).unwrap();
        assert!(r.seek(SeekFrom::Current(-(len as i64) - 1)).is_err());
    }
}

#[test]
fn sealed_reader_refuses_an_altered_chunk_when_it_is_read() {
    use std::io::{Cursor, Seek, SeekFrom};
    let identity = id();
    let plain = pattern(3 * CHUNK, 1);
    let mut sealed = seal_to_vec(&[identity.to_public()], &plain).unwrap();
    let n = sealed.len();
    sealed[n - 100] ^= 1; // inside the last chunk
    let mut r =
        SealedReader::new(Cursor::new(&sealed), &identity, &HeaderPolicy::default()).unwrap();
    let mut first = vec![0u8; CHUNK];
    r.read_exact(&mut first).unwrap();
    assert_eq!(first, &plain[..CHUNK], "untouched chunks still read");
    r.seek(SeekFrom::Start(2 * CHUNK as u64 + 10)).unwrap();
    let err = r.read(&mut first).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("chunk"), "{err}");
    let other = Identity::generate().unwrap();
    assert!(SealedReader::new(Cursor::new(&sealed), &other, &HeaderPolicy::default()).is_err());
    assert!(
        SealedReader::new(
            Cursor::new(&sealed[..sealed.len() - n + 40]),
            &identity,
            &HeaderPolicy::default()
        )
        .is_err()
    );
}

#[test]
fn windows_of_chunks_decrypt_in_parallel_like_reads() {
    use std::io::Cursor;
    let identity = id();
    for len in [1usize, CHUNK, 5 * CHUNK + 3] {
        let plain = pattern(len, 9);
        let sealed = seal_to_vec(&[identity.to_public()], &plain).unwrap();
        let mut r =
            SealedReader::new(Cursor::new(&sealed), &identity, &HeaderPolicy::default()).unwrap();
        let chunks = len.div_ceil(CHUNK) as u64;
        for (first, n) in [(0, 1), (0, 100), (1, 2), (chunks - 1, 8), (chunks, 1)] {
            let mut out = Vec::new();
            r.read_chunks(first, n, &mut out).unwrap();
            let from = (first as usize * CHUNK).min(len);
            let to = ((first + n) as usize * CHUNK).min(len);
            assert_eq!(out, &plain[from..to], "len {len}, chunks {first}+{n}");
        }
    }
    let plain = pattern(4 * CHUNK, 2);
    let mut sealed = seal_to_vec(&[identity.to_public()], &plain).unwrap();
    let n = sealed.len();
    sealed[n - SEALED_CHUNK - 50] ^= 1; // inside chunk 2
    let mut r =
        SealedReader::new(Cursor::new(&sealed), &identity, &HeaderPolicy::default()).unwrap();
    let mut out = Vec::new();
    let err = r.read_chunks(0, 4, &mut out).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("chunk 2"), "{err}");
    assert!(
        r.read_chunks(0, 2, &mut out).is_ok(),
        "chunks before it are fine"
    );
}
