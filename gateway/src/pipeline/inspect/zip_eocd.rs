//! The end-of-central-directory record of a ZIP, read before the `zip` crate reads the
//! central directory: the crate holds every directory entry in memory, so an archive
//! whose end record declares millions of entries, or a directory of gigabytes, is
//! refused from these few bytes instead. Hand-written because it is two fixed-layout
//! records (APPNOTE 4.3.16, 4.3.14–15) the crate does not expose before it allocates.

use std::io::{self, Read, Seek, SeekFrom};

const EOCD: [u8; 4] = [0x50, 0x4b, 0x05, 0x06];
const ZIP64_LOCATOR: [u8; 4] = [0x50, 0x4b, 0x06, 0x07];
const ZIP64_EOCD: [u8; 4] = [0x50, 0x4b, 0x06, 0x06];
/// The record is 22 bytes plus a comment of at most 65,535.
const MAX_TAIL: u64 = 22 + 65_535;

/// What the end records declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declared {
    pub entries: u64,
    pub directory_bytes: u64,
}

fn u16_at(b: &[u8], i: usize) -> u64 {
    u64::from(u16::from_le_bytes([b[i], b[i + 1]]))
}

fn u32_at(b: &[u8], i: usize) -> u64 {
    u64::from(u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]))
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(a)
}

/// The declared entry count and directory size, or `None` when there is no end record
/// (the `zip` crate then reports the archive unreadable in its own words).
pub fn declared(src: &mut (impl Read + Seek + ?Sized)) -> io::Result<Option<Declared>> {
    let len = src.seek(SeekFrom::End(0))?;
    let tail_len = len.min(MAX_TAIL);
    src.seek(SeekFrom::Start(len - tail_len))?;
    let mut tail = vec![0u8; tail_len as usize];
    src.read_exact(&mut tail)?;
    let Some(at) = (0..tail.len().saturating_sub(21))
        .rev()
        .find(|&i| tail[i..i + 4] == EOCD)
    else {
        return Ok(None);
    };
    let e = &tail[at..];
    let mut d = Declared {
        entries: u16_at(e, 10),
        directory_bytes: u32_at(e, 12),
    };
    // ZIP64: the locator sits right before the end record and points at the larger one.
    if (d.entries == 0xFFFF || d.directory_bytes == 0xFFFF_FFFF) && at >= 20 {
        let loc = &tail[at - 20..at];
        if loc[..4] == ZIP64_LOCATOR {
            let offset = u64_at(loc, 8);
            if offset.checked_add(56).is_some_and(|end| end <= len) {
                let mut rec = [0u8; 56];
                src.seek(SeekFrom::Start(offset))?;
                src.read_exact(&mut rec)?;
                if rec[..4] == ZIP64_EOCD {
                    d = Declared {
                        entries: u64_at(&rec, 32),
                        directory_bytes: u64_at(&rec, 40),
                    };
                }
            }
        }
    }
    src.seek(SeekFrom::Start(0))?;
    Ok(Some(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eocd(entries: u16, size: u32, comment: &[u8]) -> Vec<u8> {
        let mut v = b"PK\x05\x06\0\0\0\0".to_vec();
        v.extend_from_slice(&entries.to_le_bytes());
        v.extend_from_slice(&entries.to_le_bytes());
        v.extend_from_slice(&size.to_le_bytes());
        v.extend_from_slice(&0u32.to_le_bytes());
        v.extend_from_slice(&(comment.len() as u16).to_le_bytes());
        v.extend_from_slice(comment);
        v
    }

    #[test]
    fn the_end_record_is_found_behind_its_comment() {
        let mut z = vec![0u8; 100];
        z.extend(eocd(7, 460, b"a comment"));
        let d = declared(&mut io::Cursor::new(z)).unwrap().unwrap();
        assert_eq!(
            d,
            Declared {
                entries: 7,
                directory_bytes: 460
            }
        );
        assert_eq!(declared(&mut io::Cursor::new(vec![0u8; 10])).unwrap(), None);
    }

    #[test]
    fn an_archive_declaring_too_many_entries_is_refused_before_its_directory_is_read() {
        // No directory at all behind the end record: the crate would call it invalid;
        // the declaration alone is enough to refuse it, before any allocation.
        let z = eocd(60_000, 60_000 * 46, b"");
        let limits = super::super::zip::ZipLimits {
            max_entries: 1000,
            max_total_bytes: 1 << 30,
            max_ratio: 200,
        };
        let (_, checks) = super::super::zip::inspect(
            &mut io::Cursor::new(z),
            limits,
            super::super::dicom::HeaderLimits::default(),
            &|_| true,
        )
        .unwrap();
        assert_eq!(checks[0].code, "zip.bomb", "{checks:?}");
    }

    #[test]
    fn zip64_counts_come_from_the_zip64_record() {
        let mut z = vec![0u8; 16];
        let rec_at = z.len() as u64;
        let mut rec = ZIP64_EOCD.to_vec();
        rec.resize(56, 0);
        rec[32..40].copy_from_slice(&5_000_000u64.to_le_bytes());
        rec[40..48].copy_from_slice(&(1u64 << 33).to_le_bytes());
        z.extend(rec);
        let mut loc = ZIP64_LOCATOR.to_vec();
        loc.extend_from_slice(&0u32.to_le_bytes());
        loc.extend_from_slice(&rec_at.to_le_bytes());
        loc.extend_from_slice(&1u32.to_le_bytes());
        z.extend(loc);
        z.extend(eocd(0xFFFF, 0xFFFF_FFFF, b""));
        let d = declared(&mut io::Cursor::new(z)).unwrap().unwrap();
        assert_eq!((d.entries, d.directory_bytes), (5_000_000, 1 << 33));
    }
}
