//! The pipeline behind the session: accepted uploads become indexed files (or
//! rejections) with their findings and outbox events, in arrival order.

use super::*;
use crate::backends::catalog::UploadState;
use crate::backends::objects::local::LocalStore;
use crate::checks::Status;
use crate::session::testing::{Fixture, fixture};
use tokio::io::AsyncReadExt;

fn pipeline(f: &Fixture, windows: window::Windows) -> Pipeline {
    let objects = LocalStore::new(f.dir.path().join("objects")).unwrap();
    Pipeline::new(
        &f.core,
        Arc::new(objects),
        f.dir.path().join("work"),
        windows,
    )
}

fn pdf(body: &str) -> Vec<u8> {
    gateway_fixtures::pdf::sample(body, false, false)
}

#[tokio::test(flavor = "multi_thread")]
async fn accepted_upload_is_indexed_stored_sealed_and_announced() {
    let f = fixture().await;
    let p = pipeline(&f, window::Windows::none());
    let content = pdf(&"x".repeat(200_000));
    let acc = f.upload("12A03123345.pdf", &content).await;
    let outcome = p.process_next().await.unwrap().unwrap();
    let Outcome::Indexed { upload_id, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(upload_id, acc.id);

    let result = f
        .core
        .catalog()
        .check_result(&acc.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result.status, Status::Passed);
    assert_eq!(result.checks[0].code, "type.allowed");
    assert_eq!(
        f.core.catalog().outbox_count("file.indexed").await.unwrap(),
        1
    );

    // Stored encrypted at rest, under the plaintext's SHA-256, and it opens to the original.
    let files = f.core.catalog().indexed_files(&acc.id).await.unwrap();
    let (_, sha, key) = &files[0];
    assert_eq!(sha, &acc.plaintext_sha256);
    let objects = LocalStore::new(f.dir.path().join("objects")).unwrap();
    let key = crate::backends::objects::ObjectKey::new(key).unwrap();
    let mut stored = Vec::new();
    objects
        .get(&key, None)
        .await
        .unwrap()
        .read_to_end(&mut stored)
        .await
        .unwrap();
    assert!(
        stored.starts_with(b"age-encryption.org/v1\n"),
        "objects stay sealed at rest"
    );
    let (opened, _) = crate::sealed::open_to_vec(
        &f.identity,
        &crate::sealed::HeaderPolicy::default(),
        &stored,
    )
    .unwrap();
    assert_eq!(opened, content);
    assert_eq!(
        p.process_next().await.unwrap(),
        None,
        "nothing is processed twice"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn same_content_is_flagged_as_a_duplicate_and_stored_once() {
    let f = fixture().await;
    let p = pipeline(&f, window::Windows::none());
    let content = pdf("same record");
    let first = f.upload("11B09001352.pdf", &content).await;
    p.process_next().await.unwrap().unwrap();
    let second = f.upload("11B09001352_1.pdf", &content).await;
    p.process_next().await.unwrap().unwrap();
    let result = f
        .core
        .catalog()
        .check_result(&second.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result.status, Status::Passed);
    let dup = result
        .checks
        .iter()
        .find(|c| c.code == "duplicate.same_content")
        .expect("duplicate finding");
    assert!(dup.message.contains("11B09001352.pdf"), "{}", dup.message);
    let a = f.core.catalog().indexed_files(&first.id).await.unwrap();
    let b = f.core.catalog().indexed_files(&second.id).await.unwrap();
    assert_eq!(a[0].2, b[0].2, "one object for identical content");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sealed_executable_fails_with_its_code_and_stays_quarantined() {
    let f = fixture().await;
    let p = pipeline(&f, window::Windows::none());
    let acc = f
        .upload("12A03123345.pdf", b"MZ\x90\x00 this is not a PDF")
        .await;
    let outcome = p.process_next().await.unwrap().unwrap();
    assert_eq!(
        outcome,
        Outcome::Rejected {
            upload_id: acc.id.clone(),
            codes: vec!["type.not_allowed".into()]
        }
    );
    let result = f
        .core
        .catalog()
        .check_result(&acc.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(result.status, Status::Failed);
    assert_eq!(
        f.core
            .catalog()
            .outbox_count("upload.rejected")
            .await
            .unwrap(),
        1
    );
    assert!(
        f.core
            .catalog()
            .indexed_files(&acc.id)
            .await
            .unwrap()
            .is_empty()
    );
    let spooled =
        crate::session::spool::spool_path(&f.core.settings().spool_dir, &result.tenant, &acc.id);
    assert!(spooled.exists(), "rejected bytes are kept for inspection");
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_are_checked_in_arrival_order_and_requeued_after_a_restart() {
    let f = fixture().await;
    let p = pipeline(&f, window::Windows::none());
    let a = f.upload("a.pdf", &pdf("a")).await;
    let b = f.upload("b.pdf", &pdf("b")).await;
    // A crash while `a` was being checked leaves it in `checking`.
    let claimed = f.core.catalog().claim_next_accepted().await.unwrap();
    assert_eq!(claimed.map(|r| r.id), Some(a.id.clone()));
    assert_eq!(f.core.catalog().requeue_checking().await.unwrap(), 1);
    let first = p.process_next().await.unwrap().unwrap();
    let second = p.process_next().await.unwrap().unwrap();
    assert!(matches!(first, Outcome::Indexed { ref upload_id, .. } if *upload_id == a.id));
    assert!(matches!(second, Outcome::Indexed { ref upload_id, .. } if *upload_id == b.id));
}

#[tokio::test(flavor = "multi_thread")]
async fn maintenance_window_holds_checks_but_not_uploads() {
    let f = fixture().await;
    // A window around "now" in UTC.
    let now_min = (crate::util::unix_now().rem_euclid(86_400) / 60) as u32;
    let fmt = |m: u32| format!("{:02}:{:02}", (m % 1440) / 60, m % 60);
    let span = format!("{}-{}", fmt(now_min + 1440 - 30), fmt(now_min + 30));
    let held = pipeline(&f, window::Windows::parse(&[span], "+00:00").unwrap());
    let a = f.upload("a.pdf", &pdf("a")).await;
    let b = f.upload("b.pdf", &pdf("b")).await;
    assert!(held.paused_for().is_some());
    assert_eq!(held.process_next().await.unwrap(), None);
    let r = f.core.catalog().check_result(&a.id).await.unwrap().unwrap();
    assert_eq!(
        r.status,
        Status::Checking,
        "received and accepted, waiting as `checking`"
    );
    // The window ends: they run, in arrival order.
    let open = pipeline(&f, window::Windows::none());
    let first = open.process_next().await.unwrap().unwrap();
    assert!(matches!(first, Outcome::Indexed { ref upload_id, .. } if *upload_id == a.id));
    let second = open.process_next().await.unwrap().unwrap();
    assert!(matches!(second, Outcome::Indexed { ref upload_id, .. } if *upload_id == b.id));
    let row = f.core.catalog().upload(&b.id).await.unwrap().unwrap();
    assert_eq!(row.state, UploadState::Indexed);
}

/// A crash after the store stage moved the spool file and before the index committed:
/// the re-run checks the stored object and indexes the upload once.
#[tokio::test(flavor = "multi_thread")]
async fn a_check_interrupted_after_the_store_stage_completes_from_the_object() {
    let f = fixture().await;
    let p = pipeline(&f, window::Windows::none());
    let acc = f.upload("12A03123345.pdf", &pdf("interrupted")).await;
    let claimed = f.core.catalog().claim_next_accepted().await.unwrap();
    assert_eq!(claimed.map(|r| r.id), Some(acc.id.clone()));
    let spooled = crate::session::spool::spool_path(
        &f.core.settings().spool_dir,
        crate::session::testing::CODE,
        &acc.id,
    );
    store::store(p.objects.as_ref(), &spooled, &acc.plaintext_sha256)
        .await
        .unwrap();
    assert!(!spooled.exists());
    assert_eq!(f.core.catalog().requeue_checking().await.unwrap(), 1);
    let outcome = p.process_next().await.unwrap().unwrap();
    assert!(
        matches!(outcome, Outcome::Indexed { ref upload_id, .. } if *upload_id == acc.id),
        "{outcome:?}"
    );
    assert_eq!(
        f.core.catalog().indexed_files(&acc.id).await.unwrap().len(),
        1
    );
}

fn manifest_json(entries: &[(&str, &[u8])], altered: &str, extra: &[&str]) -> Vec<u8> {
    let mut files: Vec<serde_json::Value> = entries
        .iter()
        .map(|(name, body)| {
            let mut sha = hex::encode(ring::digest::digest(&ring::digest::SHA256, body));
            if *name == altered {
                sha = "0".repeat(64);
            }
            serde_json::json!({ "name": name, "size": body.len(), "sha256": sha })
        })
        .collect();
    for name in extra {
        files.push(serde_json::json!({ "name": name, "size": 1, "sha256": "1".repeat(64) }));
    }
    serde_json::to_vec(&serde_json::json!({ "files": files })).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_names_missing_altered_and_extra_files() {
    let f = fixture().await;
    let p = pipeline(&f, window::Windows::none());
    let (a, b, c) = (pdf("a"), pdf("b"), pdf("c"));
    f.upload("case-7/a.pdf", &a).await;
    f.upload("case-7/b.pdf", &b).await;
    f.upload("case-7/c.pdf", &c).await;
    f.upload("case-8/other.pdf", &pdf("other")).await;
    // Lists a and b (b with the wrong digest) and a file never sent; c is unlisted.
    let bad = f
        .upload(
            "case-7.manifest.json",
            &manifest_json(&[("a.pdf", &a), ("b.pdf", &b)], "b.pdf", &["lost.pdf"]),
        )
        .await;
    while p.process_next().await.unwrap().is_some() {}
    let r = f
        .core
        .catalog()
        .check_result(&bad.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, Status::Failed);
    let codes: Vec<&str> = r.checks.iter().map(|c| c.code.as_str()).collect();
    assert_eq!(
        codes,
        ["manifest.missing", "manifest.altered", "manifest.extra"]
    );
    assert_eq!(r.checks[0].detail["files"], serde_json::json!(["lost.pdf"]));
    assert_eq!(r.checks[1].detail["files"][0]["name"], "b.pdf");
    assert_eq!(r.checks[2].detail["files"], serde_json::json!(["c.pdf"]));

    // The same batch with a true manifest passes; the manifest itself is indexed.
    let good = f
        .upload(
            "case-7.manifest.json",
            &manifest_json(&[("a.pdf", &a), ("b.pdf", &b), ("c.pdf", &c)], "", &[]),
        )
        .await;
    let Some(Outcome::Indexed { .. }) = p.process_next().await.unwrap() else {
        panic!("a matching manifest is indexed")
    };
    let r = f
        .core
        .catalog()
        .check_result(&good.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, Status::Passed);
    assert_eq!(r.checks[0].code, "manifest.matched");

    let junk = f.upload("case-9.manifest.json", b"{\"files\": 3}").await;
    p.process_next().await.unwrap();
    let r = f
        .core
        .catalog()
        .check_result(&junk.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.checks[0].code, "manifest.invalid");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_small_file_lane_passes_large_files_queued_ahead() {
    let f = fixture().await;
    let p = pipeline(&f, window::Windows::none());
    let big = f.upload("big.pdf", &pdf(&"x".repeat(3_000_000))).await;
    let small = f.upload("small.pdf", &pdf("y")).await;
    // The lane takes the small file although the big one was accepted first.
    let outcome = p.process_next_upto(Some(1 << 20)).await.unwrap().unwrap();
    assert!(
        matches!(&outcome, Outcome::Indexed { upload_id, .. } if *upload_id == small.id),
        "{outcome:?}"
    );
    assert!(
        p.process_next_upto(Some(1 << 20)).await.unwrap().is_none(),
        "only large ones left"
    );
    let outcome = p.process_next().await.unwrap().unwrap();
    assert!(
        matches!(&outcome, Outcome::Indexed { upload_id, .. } if *upload_id == big.id),
        "{outcome:?}"
    );
}

/// Admission counts the backlog itself: acceptances add, ended checks (indexed or
/// rejected) take away, and it ends where the catalog's states say.
#[tokio::test(flavor = "multi_thread")]
async fn admission_counts_the_backlog_without_the_catalog() {
    let f = fixture().await;
    let p = pipeline(&f, window::Windows::none());
    let admission = f.core.admission();
    assert_eq!(admission.backlog(), 0);
    f.upload("a.pdf", &pdf("a")).await;
    f.upload("b.exe", b"MZ\x90\x00 not allowed").await;
    f.upload("c.pdf", &pdf("c")).await;
    assert_eq!(admission.backlog(), 3);
    let first = p.process_next().await.unwrap().unwrap();
    assert!(matches!(first, Outcome::Indexed { .. }), "{first:?}");
    assert_eq!(admission.backlog(), 2);
    let second = p.process_next().await.unwrap().unwrap();
    assert!(matches!(second, Outcome::Rejected { .. }), "{second:?}");
    assert_eq!(admission.backlog(), 1);
    p.process_next().await.unwrap().unwrap();
    let catalog = f.core.catalog();
    let in_catalog = catalog.count_in_state(UploadState::Accepted).await.unwrap()
        + catalog.count_in_state(UploadState::Checking).await.unwrap();
    assert_eq!((admission.backlog(), in_catalog), (0, 0));
}
