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
/// The hospital's client (`gateway push`), in its own crate.
pub use gateway_push as push;
/// The age format, in its own crate (a leaf: it knows nothing of the gateway).
pub use gateway_sealed as sealed;
pub mod serve;
pub mod session;
pub mod telemetry;
pub mod tenants;
pub mod util;
