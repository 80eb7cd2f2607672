//! Batch manifests: a manifest or a `manifest.invalid` finding, never a panic.
#![no_main]

use gateway::pipeline::manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Ok(m)) = manifest::read(&mut &data[..]) {
        let _ = manifest::window_check(&m, 1_700_000_000, 183);
    }
});
