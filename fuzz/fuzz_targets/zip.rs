//! The ZIP inspector: directory-first bomb checks, names, entries, DICOMDIR sets.
#![no_main]

use gateway::pipeline::inspect::dicom::HeaderLimits;
use gateway::pipeline::inspect::zip::{ZipLimits, inspect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = ZipLimits {
        max_entries: 1000,
        max_total_bytes: 16 << 20,
        max_ratio: 200,
    };
    let dicom = HeaderLimits {
        max_bytes: 1 << 20,
        max_depth: 32,
    };
    let _ = inspect(&mut std::io::Cursor::new(data), limits, dicom, &|_| true);
});
