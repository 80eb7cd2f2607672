//! The whole inspection of a decrypted upload (type sniffing, then PDF, DICOM, ZIP with
//! DICOMDIR sets, naming) under every profile: findings or an I/O error, never a
//! panic, a hang or unbounded memory.
#![no_main]

use gateway::config::InspectConfig;
use gateway::pipeline::inspect::{Subject, inspect};
use gateway::tenants::Profile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cfg = InspectConfig {
        pdf_max_bytes: 1 << 20,
        dicom_max_header_bytes: 1 << 20,
        zip_max_entries: 1000,
        zip_max_total_bytes: 16 << 20,
        ..InspectConfig::default()
    };
    for profile in [Profile::NhiReview, Profile::Generic] {
        let subject = Subject {
            name: "12A03123345.pdf",
            tenant: "3501200000",
            profile,
            window: &gateway::pipeline::request::RecordWindow {
                earliest_day: 19_500,
                reference_day: 19_700,
                months: 6,
                basis: "upload".into(),
            },
        };
        let _ = inspect(
            &mut std::io::Cursor::new(data),
            data.len() as u64,
            subject,
            &cfg,
        );
    }
});
