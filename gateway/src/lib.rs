//! The ingestion gateway library. The binary in `main.rs` is a thin CLI over it.
//! Folder map: see docs/ARCHITECTURE.md. "Rule N" in a comment is the domain rule of
//! that number in docs/domain.md.

pub mod backends;
pub mod checks;
pub mod config;
pub mod events;
pub mod frontends;
pub mod housekeeping;
pub mod jobs;
pub mod keys;
pub mod pipeline;
pub mod push;
pub mod sealed;
pub mod serve;
pub mod session;
pub mod telemetry;
pub mod tenants;
pub mod util;
