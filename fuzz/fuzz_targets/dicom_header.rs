//! The DICOM header reader (the gateway's structural walk, then dicom-rs) and the
//! indexed fields: a check, never a panic, whatever the lengths and nesting say.
#![no_main]

use gateway::pipeline::inspect::dicom::{self, HeaderLimits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = HeaderLimits {
        max_bytes: 1 << 20,
        max_depth: 32,
    };
    if let Ok(obj) = dicom::read_header_sized(&mut &data[..], data.len() as u64, limits) {
        let (inst, _) = dicom::instance(&obj);
        let _ = dicom::uid_ok(&inst.sop_uid);
    }
});
