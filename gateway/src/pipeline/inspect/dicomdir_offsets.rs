//! Byte offsets of the items of a DICOMDIR's Directory Record Sequence.
//!
//! A DICOMDIR links its records by byte offsets (next sibling, first child) counted from
//! the start of the file. dicom-rs parses the records but does not expose where each
//! item started, and it has no DICOMDIR module (dicom-rs issue #184), so this small
//! scanner walks the encoded data set just far enough to find each item's offset; the
//! record contents themselves still come from dicom-rs. It understands the three
//! uncompressed transfer syntaxes a DICOMDIR may use.

const SEQ: (u16, u16) = (0x0004, 0x1220);
const ITEM: (u16, u16) = (0xFFFE, 0xE000);
const ITEM_END: (u16, u16) = (0xFFFE, 0xE00D);
const SEQ_END: (u16, u16) = (0xFFFE, 0xE0DD);
const UNDEFINED: u32 = 0xFFFF_FFFF;

#[derive(Clone, Copy)]
struct Syntax {
    big: bool,
    explicit: bool,
}

/// An element header: tag, VR (explicit syntaxes only), value length.
type Header = ((u16, u16), Option<[u8; 2]>, u32);

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn u16(&mut self, big: bool) -> Option<u16> {
        let b: [u8; 2] = self.buf.get(self.pos..self.pos + 2)?.try_into().ok()?;
        self.pos += 2;
        Some(if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    fn u32(&mut self, big: bool) -> Option<u32> {
        let b: [u8; 4] = self.buf.get(self.pos..self.pos + 4)?.try_into().ok()?;
        self.pos += 4;
        Some(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        (end <= self.buf.len()).then(|| self.pos = end)
    }

    /// Reads an element header: tag, VR (explicit only) and value length.
    fn header(&mut self, s: Syntax) -> Option<Header> {
        let tag = (self.u16(s.big)?, self.u16(s.big)?);
        if tag.0 == 0xFFFE {
            return Some((tag, None, self.u32(s.big)?));
        }
        if !s.explicit {
            return Some((tag, None, self.u32(s.big)?));
        }
        let vr: [u8; 2] = self.buf.get(self.pos..self.pos + 2)?.try_into().ok()?;
        self.pos += 2;
        let long = matches!(
            &vr,
            b"OB"
                | b"OD"
                | b"OF"
                | b"OL"
                | b"OV"
                | b"OW"
                | b"SQ"
                | b"SV"
                | b"UC"
                | b"UN"
                | b"UR"
                | b"UT"
                | b"UV"
        );
        let len = if long {
            self.skip(2)?;
            self.u32(s.big)?
        } else {
            u32::from(self.u16(s.big)?)
        };
        Some((tag, Some(vr), len))
    }

    /// Skips items up to the sequence delimiter (undefined-length sequence).
    fn skip_undefined_sequence(&mut self, s: Syntax, depth: u8) -> Option<()> {
        loop {
            let (tag, _, len) = self.header(s)?;
            match tag {
                SEQ_END => return Some(()),
                ITEM if len == UNDEFINED => self.skip_until_item_end(s, depth + 1)?,
                ITEM => self.skip(len as usize)?,
                _ => return None,
            }
        }
    }

    /// Skips the elements of an undefined-length item.
    fn skip_until_item_end(&mut self, s: Syntax, depth: u8) -> Option<()> {
        if depth > 16 {
            return None;
        }
        loop {
            let (tag, _, len) = self.header(s)?;
            if tag == ITEM_END {
                return Some(());
            }
            if len == UNDEFINED {
                self.skip_undefined_sequence(s, depth)?;
            } else {
                self.skip(len as usize)?;
            }
        }
    }
}

/// Offsets of the directory records, in sequence order, of the DICOMDIR `file` (the
/// whole file: preamble, `DICM`, meta group, data set) in `transfer_syntax`. `None`
/// if the bytes cannot be walked.
pub fn record_offsets(file: &[u8], transfer_syntax: &str) -> Option<Vec<u64>> {
    let dataset = match transfer_syntax.trim_end_matches(['\0', ' ']) {
        "1.2.840.10008.1.2" => Syntax {
            big: false,
            explicit: false,
        },
        "1.2.840.10008.1.2.2" => Syntax {
            big: true,
            explicit: true,
        },
        _ => Syntax {
            big: false,
            explicit: true,
        },
    };
    let meta = Syntax {
        big: false,
        explicit: true,
    };
    let mut c = Cursor {
        buf: file,
        pos: 132,
    };
    if file.get(128..132)? != b"DICM" {
        return None;
    }
    while c.pos < file.len() {
        let at = c.pos;
        let group = u16::from_le_bytes(file.get(at..at + 2)?.try_into().ok()?);
        let s = if group == 0x0002 { meta } else { dataset };
        let (tag, vr, len) = c.header(s)?;
        if tag == SEQ {
            return items(&mut c, s, len);
        }
        let is_seq = vr.as_ref().is_some_and(|v| v == b"SQ" || v == b"UN");
        if len == UNDEFINED && (is_seq || !s.explicit) {
            c.skip_undefined_sequence(s, 0)?;
        } else {
            c.skip(len as usize)?;
        }
    }
    Some(Vec::new())
}

fn items(c: &mut Cursor<'_>, s: Syntax, len: u32) -> Option<Vec<u64>> {
    let end = (len != UNDEFINED).then(|| c.pos + len as usize);
    let mut out = Vec::new();
    loop {
        if end.is_some_and(|e| c.pos >= e) {
            return Some(out);
        }
        let at = c.pos as u64;
        let (tag, _, ilen) = c.header(s)?;
        match tag {
            SEQ_END => return Some(out),
            ITEM => {
                out.push(at);
                if ilen == UNDEFINED {
                    c.skip_until_item_end(s, 1)?;
                } else {
                    c.skip(ilen as usize)?;
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    /// The offsets found here and those an independent writer linked its records with
    /// (`gateway_fixtures::dicomdir`) agree, and so the set it describes is valid.
    #[test]
    fn offsets_agree_with_an_independent_writer() {
        let ids = gateway_fixtures::dicomdir::SetIds {
            file_set: "T",
            patient: "P1",
            patient_name: "DOE^J",
            study: "1.2.826.0.1.3680043.10.9.1",
            study_date: "20261123",
            series: "1.2.826.0.1.3680043.10.9.2",
            modality: "CT",
            sop_class: "1.2.840.10008.5.1.4.1.1.2",
            transfer_syntax: "1.2.840.10008.1.2.1",
        };
        let images: Vec<(String, String)> = (1..=3)
            .map(|i| (format!("IM{i}"), format!("1.2.826.0.1.3680043.10.9.3.{i}")))
            .collect();
        let file = gateway_fixtures::dicomdir::dicomdir(&ids, &images).unwrap();
        let offsets = super::record_offsets(&file, "1.2.840.10008.1.2.1").unwrap();
        assert_eq!(offsets.len(), 6);
        let obj = dicom_object::from_reader(&file[128..]).unwrap();
        let root = obj
            .get(dicom_dictionary_std::tags::OFFSET_OF_THE_FIRST_DIRECTORY_RECORD_OF_THE_ROOT_DIRECTORY_ENTITY)
            .and_then(|e| e.to_int::<u64>().ok());
        assert_eq!(root, Some(offsets[0]));
    }
}
