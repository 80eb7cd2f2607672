//! The session API end to end on a real catalog and spool (no front end).

use super::testing::{CODE, fixture, fixture_with, who};
use super::*;
use crate::tenants::Quota;

async fn write_all(u: &mut Upload, data: &[u8], piece: usize) {
    for p in data.chunks(piece) {
        let off = u.offset();
        u.write_at(off, p.to_vec()).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pieces_with_interruptions_resume_and_accept() {
    let f = fixture().await;
    let (sealed, sha) = f.seal(300_000);
    let third = sealed.len() / 3;
    let mut u = f.core.open(&who(), "12A03123345.pdf", None).await.unwrap();
    let id = u.id().to_string();
    write_all(&mut u, &sealed[..third], 10_000).await;
    // The client disconnects: what arrived is kept.
    assert_eq!(u.suspend().await.unwrap(), third as u64);

    // SFTP-style resume: the same name continues where it stopped.
    let mut u = f.core.open(&who(), "12A03123345.pdf", None).await.unwrap();
    assert_eq!(u.id(), id);
    assert_eq!(u.offset(), third as u64);
    write_all(&mut u, &sealed[third..2 * third], 7_777).await;
    u.suspend().await.unwrap();

    // tus-style resume: by id.
    let mut u = f.core.resume(&who(), &id).await.unwrap();
    assert_eq!(u.offset(), 2 * third as u64);
    write_all(&mut u, &sealed[2 * third..], 65_536).await;
    let acc = u.finish().await.unwrap();
    assert_eq!(acc.plaintext_sha256, sha);
    assert_eq!(acc.plaintext_len, 300_000);
    assert_eq!(acc.sealed_len, sealed.len() as u64);
    let row = f.core.catalog().upload(&id).await.unwrap().unwrap();
    assert_eq!(row.state, UploadState::Accepted);
    assert_eq!(
        f.core
            .catalog()
            .audit_count("upload.accepted")
            .await
            .unwrap(),
        1
    );

    // An accepted upload is not resumable; the same name starts a new version.
    assert_eq!(
        f.core
            .resume(&who(), &id)
            .await
            .map(|_| ())
            .unwrap_err()
            .code(),
        "ingest.not_receiving"
    );
    let again = f.core.open(&who(), "12A03123345.pdf", None).await.unwrap();
    assert_ne!(again.id(), id);
    assert_eq!(again.offset(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn gaps_and_overlaps_name_the_right_offset() {
    let f = fixture().await;
    let (sealed, _) = f.seal(1000);
    let mut u = f.core.open(&who(), "a.pdf", None).await.unwrap();
    u.write_at(0, sealed[..100].to_vec()).await.unwrap();
    for bad in [50u64, 101, 5000] {
        match u.write_at(bad, sealed[..10].to_vec()).await {
            Err(IngestError::OffsetMismatch { expected: 100, got }) => assert_eq!(got, bad),
            other => panic!("offset {bad}: {other:?}"),
        }
    }
    u.write_at(100, sealed[100..].to_vec()).await.unwrap();
    u.finish().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn finishing_early_keeps_the_upload_resumable() {
    let f = fixture().await;
    let (sealed, sha) = f.seal(200_000);
    let mut u = f.core.open(&who(), "b.pdf", None).await.unwrap();
    let id = u.id().to_string();
    write_all(&mut u, &sealed[..100_000], 50_000).await;
    let e = u.finish().await.unwrap_err();
    assert_eq!(e.code(), "sealed.truncated");
    let mut u = f.core.resume(&who(), &id).await.unwrap();
    assert_eq!(u.offset(), 100_000);
    write_all(&mut u, &sealed[100_000..], 50_000).await;
    assert_eq!(u.finish().await.unwrap().plaintext_sha256, sha);
}

#[tokio::test(flavor = "multi_thread")]
async fn declared_length_is_enforced() {
    let f = fixture().await;
    let (sealed, _) = f.seal(5000);
    let n = sealed.len() as u64;
    let mut u = f.core.open(&who(), "c.pdf", Some(n)).await.unwrap();
    u.write_at(0, sealed[..100].to_vec()).await.unwrap();
    assert_eq!(
        u.write_at(100, vec![0; n as usize])
            .await
            .unwrap_err()
            .code(),
        "ingest.length_exceeded"
    );
    let e = u.finish().await.unwrap_err();
    assert_eq!(e.code(), "ingest.length_short");
}

#[tokio::test(flavor = "multi_thread")]
async fn size_and_quota_limits() {
    let f = fixture_with(Quota::default(), 10_000, 1 << 20).await;
    assert_eq!(
        f.core
            .open(&who(), "big.pdf", Some(10_001))
            .await
            .unwrap_err()
            .code(),
        "ingest.too_large"
    );
    let (sealed, _) = f.seal(20_000);
    let mut u = f.core.open(&who(), "big.pdf", None).await.unwrap();
    assert_eq!(
        u.write_at(0, sealed.clone()).await.unwrap_err().code(),
        "ingest.too_large"
    );

    let quota = Quota {
        max_bytes: 0,
        max_files: 1,
        max_concurrent_uploads: 1,
        ..Quota::default()
    };
    let f = fixture_with(quota, 1 << 30, 1 << 20).await;
    let (sealed, _) = f.seal(1000);
    let mut u = f.core.open(&who(), "one.pdf", None).await.unwrap();
    let e = f
        .core
        .open(&who(), "two.pdf", None)
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.code(), "ingest.too_many_uploads");
    u.write_at(0, sealed.clone()).await.unwrap();
    u.finish().await.unwrap();
    let e = f
        .core
        .open(&who(), "two.pdf", None)
        .await
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.code(), "ingest.quota_files");

    let quota = Quota {
        max_bytes: 3000,
        max_files: 0,
        max_concurrent_uploads: 0,
        ..Quota::default()
    };
    let f = fixture_with(quota, 1 << 30, 1 << 20).await;
    let (sealed, _) = f.seal(2000);
    let mut u = f.core.open(&who(), "x.pdf", None).await.unwrap();
    u.write_at(0, sealed.clone()).await.unwrap();
    u.finish().await.unwrap();
    let mut u = f.core.open(&who(), "y.pdf", None).await.unwrap();
    assert_eq!(
        u.write_at(0, sealed).await.unwrap_err().code(),
        "ingest.quota_bytes"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn names_and_tenants_are_checked() {
    let f = fixture().await;
    for bad in ["病歷.pdf", "../etc/passwd", ".hidden", "a b"] {
        assert_eq!(
            f.core
                .open(&who(), bad, None)
                .await
                .map(|_| ())
                .unwrap_err()
                .code(),
            "ingest.name_not_allowed"
        );
    }
    let stranger = Principal {
        tenant: "9999999999".into(),
        protocol: "test",
    };
    assert_eq!(
        f.core
            .open(&stranger, "a.pdf", None)
            .await
            .map(|_| ())
            .unwrap_err()
            .code(),
        "ingest.unknown_tenant"
    );
    let u = f.core.open(&who(), "a.pdf", None).await.unwrap();
    assert_eq!(
        f.core
            .resume(&stranger, u.id())
            .await
            .map(|_| ())
            .unwrap_err()
            .code(),
        "ingest.not_found"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_content_is_rejected_and_kept_out() {
    let f = fixture().await;
    let mut u = f.core.open(&who(), "plain.pdf", None).await.unwrap();
    let id = u.id().to_string();
    let e = u
        .write_at(0, b"%PDF-1.7 not sealed".to_vec())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "sealed.not_age_file");
    let row = f.core.catalog().upload(&id).await.unwrap().unwrap();
    assert_eq!(row.state, UploadState::Rejected);

    let (mut sealed, _) = f.seal(200_000);
    let n = sealed.len();
    sealed[n / 2] ^= 1;
    let mut u = f.core.open(&who(), "flip.pdf", None).await.unwrap();
    let mut failure = None;
    for p in sealed.chunks(32_768) {
        let off = u.offset();
        if let Err(e) = u.write_at(off, p.to_vec()).await {
            failure = Some(e);
            break;
        }
    }
    let e = match failure {
        Some(e) => e,
        None => u.finish().await.unwrap_err(),
    };
    assert_eq!(e.code(), "sealed.chunk_auth_failed");
    let rejected = f.core.catalog().tenant_usage(CODE).await.unwrap();
    assert_eq!(rejected.accepted_files, 0);
}

/// A crash loses at most the unsynced tail: the upload resumes at the last durable
/// offset the catalog recorded, and finishes with the right digest.
#[tokio::test(flavor = "multi_thread")]
async fn crash_resumes_from_the_last_durable_offset() {
    let f = fixture_with(Quota::default(), 1 << 30, 100_000).await;
    let (sealed, sha) = f.seal(500_000);
    let mut u = f.core.open(&who(), "crash.pdf", None).await.unwrap();
    let id = u.id().to_string();
    write_all(&mut u, &sealed[..350_000], 30_000).await;
    drop(u); // no suspend: as if the process died
    let u = f.core.resume(&who(), &id).await.unwrap();
    let durable = u.offset();
    assert!((300_000..=350_000).contains(&durable), "durable {durable}");
    let mut u = u;
    write_all(&mut u, &sealed[durable as usize..], 30_000).await;
    assert_eq!(u.finish().await.unwrap().plaintext_sha256, sha);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_held_upload_cannot_be_reopened_by_another_connection() {
    let f = fixture().await;
    let (sealed, sha) = f.seal(200_000);
    let mut first = f.core.open(&who(), "held.pdf", None).await.unwrap();
    let id = first.id().to_string();
    write_all(&mut first, &sealed[..120_000], 40_000).await;
    // A reconnecting client, while the cut connection still holds the upload.
    let e = f.core.open(&who(), "held.pdf", None).await.unwrap_err();
    assert_eq!(e.code(), "ingest.busy");
    assert_eq!(
        f.core.resume(&who(), &id).await.unwrap_err().code(),
        "ingest.busy"
    );
    // Once the first lets go, the second continues from what it made durable.
    let kept = first.suspend().await.unwrap();
    let mut second = f.core.open(&who(), "held.pdf", None).await.unwrap();
    assert_eq!(second.id(), id);
    assert_eq!(second.offset(), kept);
    let rest = sealed[kept as usize..].to_vec();
    write_all(&mut second, &rest, 50_000).await;
    assert_eq!(second.finish().await.unwrap().plaintext_sha256, sha);
}

/// A client that disconnects while its last request is being acknowledged cancels the
/// request's future in the middle of `finish`; a resume arriving then must never get
/// its own writer while the first acceptance may still commit (it would later fail
/// with `catalog.conflict`). Cancelled at every await point we can reach by yielding.
#[tokio::test(flavor = "multi_thread")]
async fn a_cancelled_finish_still_ends_before_anyone_resumes() {
    let f = fixture().await;
    for polls in 1..12 {
        let (sealed, _) = f.seal(20_000);
        let name = format!("12A03{polls:06}.pdf");
        let mut u = f.core.open(&who(), &name, None).await.unwrap();
        let id = u.id().to_string();
        write_all(&mut u, &sealed, 4_096).await;
        // Poll finish `polls` times, then drop it, as hyper drops a handler.
        {
            let mut fut = std::pin::pin!(u.finish());
            for _ in 0..polls {
                let _ = futures_poll_once(fut.as_mut()).await;
            }
        }
        // A resume now waits for the first writer or sees the upload accepted.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match f.core.resume(&who(), &id).await {
                Err(e) if e.code() == "ingest.busy" => {
                    assert!(std::time::Instant::now() < deadline, "still busy");
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                Err(e) => {
                    assert_eq!(e.code(), "ingest.not_receiving", "{e}");
                    break;
                }
                Ok(_) => panic!("a second writer while the acceptance was in flight"),
            }
        }
        let row = f.core.catalog().upload(&id).await.unwrap().unwrap();
        assert_eq!(row.state, UploadState::Accepted, "after {polls} polls");
    }
}

/// Polls `fut` once; `Some` if it finished.
async fn futures_poll_once<F: std::future::Future + ?Sized>(
    mut fut: std::pin::Pin<&mut F>,
) -> Option<F::Output> {
    std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
        std::task::Poll::Ready(v) => std::task::Poll::Ready(Some(v)),
        std::task::Poll::Pending => std::task::Poll::Ready(None),
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_armored_upload_verifies_resumes_mid_line_and_accepts() {
    let f = fixture().await;
    let (sealed, sha) = f.seal(300_000);
    let armored = crate::sealed::armor::armor(&sealed).into_bytes();
    let cut = armored.len() / 2 + 17;
    let mut u = f.core.open(&who(), "a.pdf", None).await.unwrap();
    let id = u.id().to_string();
    write_all(&mut u, &armored[..cut], 9_999).await;
    u.suspend().await.unwrap();
    let mut u = f.core.resume(&who(), &id).await.unwrap();
    let off = u.offset() as usize;
    write_all(&mut u, &armored[off..], 65_536).await;
    let acc = u.finish().await.unwrap();
    assert_eq!(acc.plaintext_sha256, sha);
    assert_eq!(acc.sealed_len, armored.len() as u64, "the client's bytes");

    let mut broken = armored.clone();
    broken[100] = b'*';
    let mut u = f.core.open(&who(), "b.pdf", None).await.unwrap();
    let err = u.write_at(0, broken).await.unwrap_err();
    assert_eq!(err.code(), "sealed.bad_armor");
}
