//! The DICOMDIR walk (records by offsets, hierarchy, references) over a set whose
//! files are the fuzzed DICOMDIR itself under every referenced name: findings, never a
//! panic or an endless walk.
#![no_main]

use std::io::Read;

use gateway::pipeline::inspect::dicom::HeaderLimits;
use gateway::pipeline::inspect::dicomdir::{SetFiles, validate};
use libfuzzer_sys::fuzz_target;

struct Echo<'a>(&'a [u8]);

impl SetFiles for Echo<'_> {
    fn paths(&self) -> Vec<String> {
        vec!["IM1".into(), "A/IM2".into()]
    }
    fn open(&mut self, _path: &str) -> std::io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.0))
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = HeaderLimits {
        max_bytes: 1 << 20,
        max_depth: 32,
    };
    let _ = validate(data, &mut Echo(data), limits);
});
