//! The ingestion gateway library. The binary in `main.rs` is a thin CLI over it.
//! Folder map: see docs/ARCHITECTURE.md.

pub mod config;
pub mod sealed;
pub mod telemetry;
pub mod tenants;
