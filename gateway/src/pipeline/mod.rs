//! The stages an upload goes through, one file per stage. Today: the spool, where
//! bytes land while they arrive. Verify/decrypt/inspect/store/publish follow.

pub mod spool;
