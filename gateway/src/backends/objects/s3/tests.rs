use gateway_fixtures::engines::S3Server;

use super::{MIN_PART_BYTES, S3Settings, S3Store};
use crate::backends::objects::{ObjectKey, ObjectStore, PutOutcome};

fn settings(server: &S3Server, url: &str) -> S3Settings {
    S3Settings {
        url: url.into(),
        endpoint: server.endpoint.clone(),
        region: "us-east-1".into(),
        part_bytes: MIN_PART_BYTES,
        part_concurrency: 2,
        retry_for: std::time::Duration::from_secs(2),
    }
}

fn with_test_credentials() {
    // moto does not check them, but the client refuses to sign without any.
    // SAFETY: every test in this module sets the same values; nothing reads them concurrently
    // in a way that could observe a torn write of the same value.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "gateway-test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "gateway-test-secret");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_store_passes_the_contract() {
    with_test_credentials();
    let server = S3Server::start("records");
    let store = S3Store::new(&settings(&server, "s3://records/gw")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    crate::backends::objects::contract::run(&store, dir.path()).await;
}

/// Files larger than one part go up as a multipart upload, and read back whole and by
/// ranges that cross part boundaries.
#[tokio::test(flavor = "multi_thread")]
async fn large_files_go_up_in_parts() {
    with_test_credentials();
    let server = S3Server::start("records");
    let store = S3Store::new(&settings(&server, "s3://records")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let len = 2 * MIN_PART_BYTES + 12_345;
    let data: Vec<u8> = (0..len as u32).map(|i| (i % 253) as u8).collect();
    let src = dir.path().join("big");
    std::fs::write(&src, &data).unwrap();
    let key = ObjectKey::for_sha256(&"cd".repeat(32)).unwrap();
    assert_eq!(
        store.put_file(&key, &src).await.unwrap(),
        PutOutcome::Stored
    );
    assert!(!src.exists());
    assert_eq!(
        store.head(&key).await.unwrap().map(|m| m.len),
        Some(len as u64)
    );
    let across = (MIN_PART_BYTES - 10) as u64..(MIN_PART_BYTES + 10) as u64;
    let mut got = Vec::new();
    let mut r = store.get(&key, Some(across.clone())).await.unwrap();
    tokio::io::AsyncReadExt::read_to_end(&mut r, &mut got)
        .await
        .unwrap();
    assert_eq!(got, &data[across.start as usize..across.end as usize]);
    let mut all = Vec::new();
    let mut r = store.get(&key, None).await.unwrap();
    tokio::io::AsyncReadExt::read_to_end(&mut r, &mut all)
        .await
        .unwrap();
    assert!(all == data, "whole object differs");
}

/// An unreachable service is a typed, retryable error, never a panic or a hang.
#[tokio::test(flavor = "multi_thread")]
async fn an_outage_is_a_typed_error() {
    with_test_credentials();
    let mut server = S3Server::start("records");
    let mut s = settings(&server, "s3://records");
    s.part_bytes = MIN_PART_BYTES;
    let store = S3Store::new(&s).unwrap();
    store.probe().await.unwrap();
    server.kill();
    let err = store.probe().await.unwrap_err();
    assert_eq!(err.code(), "objects.unavailable");
    let bad = S3Settings {
        url: "file:///x".into(),
        ..s
    };
    assert!(S3Store::new(&bad).is_err());
}
