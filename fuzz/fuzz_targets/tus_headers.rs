//! tus request headers: Upload-Metadata, Upload-Checksum, Upload-Length.
#![no_main]

use gateway::frontends::https::tus::{checksum_spec, metadata_file_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = metadata_file_name(&text);
    let _ = checksum_spec(&text);
    let _ = text.trim().parse::<u64>();
});
