//! DICOMweb with clients nobody here wrote: `dicomweb-client` (PyPI) stores pydicom's
//! bundled real-world instances with STOW-RS, finds them with QIDO-RS (every filter,
//! paging with `get_remaining`), retrieves instances, metadata and frames with WADO-RS,
//! and checks the failure cases — all against pydicom's reading of the same files
//! (tests/interop/dicomweb_flow.py).

use std::path::Path;
use std::process::Command;

use gateway_tests::{TestGateway, TestReviewer, TestTenant};

const A: &str = "3501200000";
const B: &str = "1101020018";
const A_TOKEN: &str = "tok-3501200000-aaaaaaaaaaaaaaaaaaaaaaaa";
const B_TOKEN: &str = "tok-1101020018-bbbbbbbbbbbbbbbbbbbbbbbb";
const REVIEWER: &str = "rev-dicomweb-cccccccccccccccccccccccc";

#[test]
fn dicomweb_client_stores_finds_and_retrieves_pydicoms_instances() {
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(A).token(A_TOKEN))
        .tenant(TestTenant::new(B).token(B_TOKEN))
        .reviewer(TestReviewer::new("viewer", &[A], REVIEWER))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/dicomweb_flow.py");
    let out = Command::new("timeout")
        .arg("300")
        .arg("python3")
        .arg(script)
        .arg(format!("https://{}", gw.https))
        .args([A_TOKEN, B_TOKEN, REVIEWER])
        .arg(gw.data_dir.join("keys/tls-cert.pem"))
        .output()
        .expect("python3 runs (scripts/test-setup.sh installs dicomweb-client and pydicom)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        gw.log()
    );
    let summary: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(summary["stored"], 7, "{summary}");
    assert!(!gw.log().contains("panicked"));
}
