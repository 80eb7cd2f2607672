//! The CAB inspector: the directory read here, the folder view handed to the `cab`
//! crate, bomb checks, names, entries, DICOMDIR sets.
#![no_main]

use gateway::pipeline::inspect::cab::inspect;
use gateway::pipeline::inspect::dicom::HeaderLimits;
use gateway::pipeline::inspect::zip::ZipLimits;
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
    let len = data.len() as u64;
    let _ = inspect(&mut std::io::Cursor::new(data), len, limits, dicom, &|_| true);
});
