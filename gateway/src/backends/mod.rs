//! Pluggable parts with an embedded default and a scale-out engine each
//! (see the backends table in docs/ARCHITECTURE.md).

pub mod catalog;
pub mod objects;
pub mod sinks;
