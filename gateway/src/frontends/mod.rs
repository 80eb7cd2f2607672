//! Protocol front ends. Each one only translates its protocol into calls on the
//! shared ingest session; none holds business rules of its own.

pub mod admin;
pub mod https;
pub mod sftp;
