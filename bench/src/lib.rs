//! Shared helpers for the benchmarks: deterministic test data and sealed fixtures.

use std::io::Write;
use std::path::Path;

use gateway::sealed::{Identity, Sealer};

/// Writes `len` bytes of a cheap non-constant pattern, sealed to `identity`, to `path`.
pub fn write_sealed_fixture(path: &Path, identity: &Identity, len: u64) -> std::io::Result<()> {
    let file = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut sealer = Sealer::new(&[identity.to_public()], file).map_err(std::io::Error::other)?;
    let block: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        sealer.write_all(&block[..n])?;
        left -= n as u64;
    }
    sealer.finish()?.flush()
}
