//! The PDF inspector (nesting cap, lopdf, outline, encryption, active content).
#![no_main]

use gateway::pipeline::inspect::pdf::{PdfPolicy, inspect};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let policy = PdfPolicy {
        require_outline: true,
        ..PdfPolicy::default()
    };
    let _ = inspect(&mut &data[..], data.len() as u64, 1 << 20, policy);
});
