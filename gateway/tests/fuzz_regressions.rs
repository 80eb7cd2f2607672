//! Every input a fuzzer found to crash, exhaust memory or run slowly (scripts/fuzz.sh),
//! kept and replayed through the same entry point as its fuzz target. Each must end
//! quickly with findings, never a panic. Files: `tests/fuzz-regressions/<target>/`.

use std::path::Path;
use std::time::{Duration, Instant};

use std::io::Read;

use gateway::pipeline::inspect::dicom::{self, HeaderLimits};
use gateway::pipeline::inspect::dicomdir::{SetFiles, validate};

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-regressions")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no inputs for {target}");
    out
}

/// Generous for a debug build; the failures these inputs once caused took seconds
/// and gigabytes.
const QUICK: Duration = Duration::from_secs(2);

#[test]
fn dicom_header_inputs_end_quickly() {
    let limits = HeaderLimits {
        max_bytes: 1 << 20,
        max_depth: 32,
    };
    for (name, data) in inputs("dicom_header") {
        let started = Instant::now();
        let r = dicom::read_header_sized(&mut &data[..], data.len() as u64, limits);
        if let Ok(obj) = &r {
            let _ = dicom::instance(obj);
        }
        assert!(started.elapsed() < QUICK, "{name}: {:?}", started.elapsed());
    }
}

#[test]
fn an_unknown_vr_is_read_with_a_long_length_as_the_parser_reads_it() {
    let (_, data) = inputs("dicom_header")
        .into_iter()
        .find(|(n, _)| n == "oom-unknown-vr-long-length")
        .unwrap();
    let limits = HeaderLimits {
        max_bytes: 1 << 20,
        max_depth: 32,
    };
    let err = dicom::read_header_sized(&mut &data[..], data.len() as u64, limits).unwrap_err();
    assert_eq!(err.code, "dicom.bad_length", "{err:?}");
}

#[test]
fn a_binary_value_of_a_partial_length_is_refused_before_the_parser_misreads_it() {
    let (_, data) = inputs("dicom_header")
        .into_iter()
        .find(|(n, _)| n == "oom-partial-value-sv-length")
        .unwrap();
    let limits = HeaderLimits {
        max_bytes: 1 << 20,
        max_depth: 32,
    };
    let err = dicom::read_header_sized(&mut &data[..], data.len() as u64, limits).unwrap_err();
    assert_eq!(err.code, "dicom.bad_length", "{err:?}");
    assert!(err.message.contains("whole number"), "{err:?}");
}

/// The fuzz target's set: the DICOMDIR itself under every name it offers.
struct Echo<'a>(&'a [u8]);

impl SetFiles for Echo<'_> {
    fn paths(&self) -> Vec<String> {
        vec!["IM1".into(), "A/IM2".into()]
    }
    fn open(&mut self, _path: &str) -> std::io::Result<Box<dyn Read + '_>> {
        Ok(Box::new(self.0))
    }
}

#[test]
fn dicomdir_inputs_end_quickly() {
    let limits = HeaderLimits {
        max_bytes: 1 << 20,
        max_depth: 32,
    };
    for (name, data) in inputs("dicomdir") {
        let started = Instant::now();
        let _ = validate(&data, &mut Echo(&data), limits);
        assert!(started.elapsed() < QUICK, "{name}: {:?}", started.elapsed());
    }
}
