//! The behaviour every [`ObjectStore`] must show. Each implementation's tests call
//! [`run`] with a fresh, empty store.

use std::path::Path;

use tokio::io::AsyncReadExt;

use super::{ObjectKey, ObjectStore, PutOutcome};

async fn read_all(
    store: &dyn ObjectStore,
    key: &ObjectKey,
    range: Option<std::ops::Range<u64>>,
) -> Vec<u8> {
    let mut r = store.get(key, range).await.unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).await.unwrap();
    out
}

/// `scratch` is a directory for source files.
pub async fn run(store: &dyn ObjectStore, scratch: &Path) {
    store.probe().await.unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let key = ObjectKey::for_sha256(&"ab".repeat(32)).unwrap();
    assert_eq!(key.as_str(), format!("sha256/ab/ab/{}", "ab".repeat(32)));

    // Missing objects.
    assert_eq!(store.head(&key).await.unwrap(), None);
    assert_eq!(
        store.get(&key, None).await.err().map(|e| e.code()),
        Some("objects.not_found")
    );
    assert!(!store.delete(&key).await.unwrap());

    // Put consumes the source and is durable and whole.
    let src = scratch.join("src1");
    std::fs::write(&src, &data).unwrap();
    assert_eq!(
        store.put_file(&key, &src).await.unwrap(),
        PutOutcome::Stored
    );
    assert!(!src.exists(), "put must consume its source");
    assert_eq!(
        store.head(&key).await.unwrap().map(|m| m.len),
        Some(data.len() as u64)
    );
    assert_eq!(read_all(store, &key, None).await, data);

    // Ranges, including empty and up to the end; out of range is an error.
    assert_eq!(read_all(store, &key, Some(10..20)).await, &data[10..20]);
    assert_eq!(
        read_all(store, &key, Some(299_990..300_000)).await,
        &data[299_990..]
    );
    assert!(read_all(store, &key, Some(5..5)).await.is_empty());
    assert_eq!(
        store
            .get(&key, Some(10..300_001))
            .await
            .err()
            .map(|e| e.code()),
        Some("objects.bad_range")
    );

    // Same key again: the first object stays, the new source is consumed.
    let src2 = scratch.join("src2");
    std::fs::write(&src2, &data).unwrap();
    assert_eq!(
        store.put_file(&key, &src2).await.unwrap(),
        PutOutcome::AlreadyPresent
    );
    assert!(!src2.exists());
    assert_eq!(read_all(store, &key, None).await, data);

    // Keys cannot escape the store.
    for bad in ["../x", "a//b", "", ".hidden", "a/../../b", "sp ace"] {
        assert!(ObjectKey::new(bad).is_err(), "{bad}");
    }
    assert!(ObjectKey::for_sha256("xyz").is_err());

    assert!(store.delete(&key).await.unwrap());
    assert_eq!(store.head(&key).await.unwrap(), None);
}
