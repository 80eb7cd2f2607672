//! Header parser and policy: any input must yield Ok or a typed error, never a panic.
#![no_main]
mod common;

use gateway::sealed::{HeaderPolicy, Identity, header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let id: Identity = common::IDENTITY.parse().expect("fixed identity");
    let policy = HeaderPolicy::default();
    if let Ok(Some(h)) = header::parse(data, &policy) {
        assert!(h.len <= data.len());
        let _ = h.unwrap_key(data, &id, &policy);
    }
});
