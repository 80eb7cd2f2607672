//! File names: the session's name rules and the review naming rules (7, 8).
#![no_main]

use gateway::pipeline::inspect::naming::{check_batch_name, check_case_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let name = String::from_utf8_lossy(data);
    let _ = gateway::session::names::check(&name);
    let _ = check_case_name(&name);
    let _ = check_batch_name(&name, "3501200000");
});
