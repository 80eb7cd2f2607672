//! Element headers read one at a time (tag, VR, length) from a stream that is kept as
//! it is read, with the rules for which elements open a sequence and how long a
//! value's length field is.

use super::*;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_dictionary_std::StandardDataDictionary;

pub(super) type Step<T> = Result<T, Stop>;

pub(super) struct Walker<'a> {
    pub(super) src: &'a mut dyn Read,
    /// Everything read so far (the header for dicom-rs).
    pub(super) buf: Vec<u8>,
    /// Where the walk is in `buf`; it may step back over what was read.
    pub(super) cursor: usize,
    pub(super) max: usize,
    pub(super) len: u64,
    /// Undefined-length UN values not closed yet.
    pub(super) open_un: usize,
}

impl Walker<'_> {
    pub(super) fn pos(&self) -> u64 {
        self.cursor as u64
    }

    /// Makes sure `n` bytes past the cursor are in `buf`, reading more as needed.
    pub(super) fn ensure(&mut self, n: u64) -> Step<()> {
        let want = usize::try_from(n).map_err(|_| Stop::TooLarge)?;
        let Some(new_len) = self.cursor.checked_add(want) else {
            return Err(Stop::TooLarge);
        };
        if new_len <= self.buf.len() {
            return Ok(());
        }
        if new_len > self.max {
            return Err(Stop::TooLarge);
        }
        let mut filled = self.buf.len();
        self.buf.resize(new_len, 0);
        while filled < new_len {
            match self.src.read(&mut self.buf[filled..]) {
                Ok(0) => {
                    self.buf.truncate(filled);
                    return Err(Stop::End);
                }
                Ok(k) => filled += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Stop::Io(e)),
            }
        }
        Ok(())
    }

    /// Moves past the next `n` bytes (reading them into `buf`).
    pub(super) fn take(&mut self, n: u64) -> Step<()> {
        self.ensure(n)?;
        self.cursor += n as usize;
        Ok(())
    }

    pub(super) fn bytes<const N: usize>(&mut self) -> Step<[u8; N]> {
        self.ensure(N as u64)?;
        let mut b = [0u8; N];
        b.copy_from_slice(&self.buf[self.cursor..self.cursor + N]);
        self.cursor += N;
        Ok(b)
    }

    pub(super) fn u16(&mut self, big: bool) -> Step<u16> {
        let b = self.bytes::<2>()?;
        Ok(if big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }

    pub(super) fn u32(&mut self, big: bool) -> Step<u32> {
        let b = self.bytes::<4>()?;
        Ok(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }

    /// Tag, VR (explicit syntaxes, not for item tags) and value length.
    pub(super) fn header(&mut self, s: Syntax) -> Step<(Tag, Option<VR>, u32)> {
        let tag = Tag(self.u16(s.big)?, self.u16(s.big)?);
        if tag.0 == 0xFFFE || !s.explicit {
            return Ok((tag, None, self.u32(s.big)?));
        }
        // As dicom-rs reads it: an unknown VR is UN, and every VR but the short-form
        // ones of PS3.5 table 7.1-2 has two reserved bytes and a 32-bit length. A walk
        // that read lengths differently from the parser would vouch for lengths the
        // parser then reads otherwise (found by fuzzing: 956 MB reserved for 3 KB).
        let vr = VR::from_binary(self.bytes::<2>()?).unwrap_or(VR::UN);
        let short = matches!(
            vr,
            VR::AE
                | VR::AS
                | VR::AT
                | VR::CS
                | VR::DA
                | VR::DS
                | VR::DT
                | VR::FL
                | VR::FD
                | VR::IS
                | VR::LO
                | VR::LT
                | VR::PN
                | VR::SH
                | VR::SL
                | VR::SS
                | VR::ST
                | VR::TM
                | VR::UI
                | VR::UL
                | VR::US
        );
        let len = if short {
            u32::from(self.u16(s.big)?)
        } else {
            self.bytes::<2>()?;
            self.u32(s.big)?
        };
        let vr = Some(vr);
        Ok((tag, vr, len))
    }
}

pub(super) fn is_sequence(tag: Tag, vr: Option<VR>, len: u32, s: Syntax) -> bool {
    if tag == dicom_dictionary_std::tags::PIXEL_DATA {
        // Encapsulated pixel data (undefined length) holds fragments, not a data set.
        return false;
    }
    match vr {
        Some(VR::SQ) => true,
        Some(VR::UN) => len == UNDEFINED,
        Some(_) => false,
        None if s.explicit => false,
        None => {
            len == UNDEFINED
                || StandardDataDictionary
                    .by_tag(tag)
                    .is_some_and(|e| matches!(e.vr(), VirtualVr::Exact(VR::SQ)))
        }
    }
}

/// The size of one value of the element's VR, as dicom-rs resolves it (in implicit
/// syntaxes from the dictionary, ambiguous VRs relaxed to US/OW). dicom-rs 0.10 reads
/// `length / size` values of a binary VR but counts the whole length as read, so a
/// length that is no multiple of the size leaves the stream behind the parser's idea
/// of it and the next header is read from the middle of this value (found by fuzzing:
/// 1.4 GB reserved for a 15 KB file whose SV length was 92).
pub(super) fn value_size(tag: Tag, vr: Option<VR>, s: Syntax) -> u32 {
    let vr = match vr {
        Some(vr) => vr,
        None if s.explicit => return 1,
        None if tag == dicom_dictionary_std::tags::PIXEL_DATA
            || (tag.0 >> 8 == 0x60 && tag.1 == 0x3000) =>
        {
            VR::OW
        }
        None => StandardDataDictionary
            .by_tag(tag)
            .map(|e| e.vr().relaxed())
            .unwrap_or(VR::UN),
    };
    match vr {
        VR::US | VR::SS | VR::OW => 2,
        VR::AT | VR::UL | VR::SL | VR::FL | VR::OF | VR::OL => 4,
        VR::FD | VR::OD | VR::SV | VR::UV | VR::OV => 8,
        _ => 1,
    }
}
