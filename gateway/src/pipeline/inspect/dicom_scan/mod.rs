//! A structural pre-scan of a DICOM Part-10 header before dicom-rs parses it: defence
//! in depth beside the worker isolation. dicom-rs parses nested sequences recursively
//! and sizes buffers from the lengths a file declares, so this walk (iterative, no
//! value is read into memory) refuses, before any parser allocates:
//! - a value length larger than what is left of the file or of its enclosing item or
//!   sequence (`dicom.bad_length`);
//! - sequences nested deeper than `inspect.dicom_max_depth` (`dicom.too_deep`).
//!
//! Hand-written because no crate offers such a walk; it knows only element headers
//! (tag, VR, length), never values, so it stays small. It reads the stream once and
//! keeps what it read (the header, up to the top-level pixel data, at most `max_bytes`)
//! for dicom-rs to parse afterwards, so no source needs to be read twice or seekable
//! (ZIP entries are not). A deflated data set is walked inflated, and handed on
//! compressed.

use std::io::{self, Read};

use dicom_core::{Tag, VR};

use crate::checks::{Check, Severity};

mod walker;
use walker::{Step, Walker, is_sequence, value_size};

const UNDEFINED: u32 = 0xFFFF_FFFF;
const ITEM: u16 = 0xE000;
const ITEM_END: u16 = 0xE00D;
const SEQ_END: u16 = 0xE0DD;
const DEFLATED: &str = "1.2.840.10008.1.2.1.99";
const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
const EXPLICIT_BE: &str = "1.2.840.10008.1.2.2";

#[derive(Clone, Copy, PartialEq, Eq)]
struct Syntax {
    big: bool,
    explicit: bool,
}

const META: Syntax = Syntax {
    big: false,
    explicit: true,
};

/// An open sequence or item: where it ends when its length is defined.
struct Open {
    end: Option<u64>,
    sequence: bool,
    /// The syntax inside (the surrounding one, as dicom-rs reads it; implicit VR
    /// little endian inside an undefined-length UN).
    syntax: Syntax,
    /// An undefined-length UN: where its length field is in the buffer, in which byte
    /// order, and where its value starts (see [`walk_data_set`]).
    un: Option<(usize, bool, usize)>,
}

const IMPLICIT: Syntax = Syntax {
    big: false,
    explicit: false,
};

fn bad_length(at: u64, why: &str) -> Check {
    Check::new(
        "dicom.bad_length",
        Severity::Error,
        format!("a DICOM element at byte {at} declares a length {why}"),
    )
    .with_detail(serde_json::json!({ "offset": at }))
}

/// Why a walk stopped early.
enum Stop {
    /// The end of the stream.
    End,
    /// More than `max_bytes` before the pixel data.
    TooLarge,
    Io(io::Error),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Stop {
        Stop::Io(e)
    }
}

/// Reads the header of the Part-10 file in `src` (`len` bytes long) while walking its
/// structure: `Ok(Ok(bytes))` up to the top-level pixel data (or the end), to be
/// parsed; `Ok(Err(check))` when the structure is refused or the header is larger than
/// `max_bytes`; I/O errors pass through.
pub fn read(
    src: &mut dyn Read,
    len: u64,
    max_bytes: u64,
    max_depth: u32,
) -> io::Result<Result<Vec<u8>, Check>> {
    let mut w = Walker {
        src,
        buf: Vec::new(),
        cursor: 0,
        max: usize::try_from(max_bytes).unwrap_or(usize::MAX),
        len,
        open_un: 0,
    };
    match walk(&mut w, max_depth) {
        Ok(Ok(())) | Err(Stop::End) if w.open_un > 0 => Ok(Err(bad_length(
            w.pos(),
            "undefined for a UN value that never ends",
        ))),
        Ok(Ok(())) | Err(Stop::End) => Ok(Ok(w.buf)),
        Ok(Err(check)) => Ok(Err(check)),
        Err(Stop::TooLarge) => Ok(Err(Check::new(
            "dicom.header_too_large",
            Severity::Error,
            format!("the DICOM header is larger than {max_bytes} bytes"),
        ))),
        Err(Stop::Io(e)) => Err(e),
    }
}

/// The stream ended inside a value whose length was declared: the parser would size a
/// buffer by that length and then find the bytes missing (found by fuzzing: gigabytes
/// zero-filled for a DICOMDIR of 859 bytes), so it is refused here, whatever the file's
/// length was known to be.
fn value_cut(stop: Stop, at: u64) -> Step<Result<(), Check>> {
    match stop {
        Stop::End => Ok(Err(bad_length(at, "beyond the end of the file"))),
        other => Err(other),
    }
}

fn walk(w: &mut Walker<'_>, max_depth: u32) -> Step<Result<(), Check>> {
    w.take(132)?;
    if &w.buf[128..132] != b"DICM" {
        // Not Part-10: the parser says so in its own words.
        return Ok(Ok(()));
    }
    // The meta group, always explicit VR little endian; its transfer syntax says how
    // the data set is encoded.
    let mut ts = String::new();
    loop {
        let at = w.cursor;
        let (tag, _, vlen) = w.header(META)?;
        if tag.0 != 0x0002 {
            // The data set starts here; it is read again with its own syntax.
            w.cursor = at;
            break;
        }
        if w.pos().saturating_add(u64::from(vlen)) > w.len {
            return Ok(Err(bad_length(at as u64, "beyond the end of the file")));
        }
        if let Err(stop) = w.take(u64::from(vlen)) {
            return value_cut(stop, at as u64);
        }
        if tag == Tag(0x0002, 0x0010) {
            let v = &w.buf[w.cursor - vlen as usize..w.cursor];
            ts = String::from_utf8_lossy(v)
                .trim_end_matches(['\0', ' '])
                .to_string();
        }
    }
    if ts.is_empty() {
        // Guessing how a data set is encoded is where readers start to disagree.
        return Ok(Err(Check::new(
            "dicom.missing_uid",
            Severity::Error,
            "the file meta group names no transfer syntax (0002,0010), so how its data set \
             is encoded is unknown",
        )
        .with_detail(serde_json::json!({ "missing": ["TransferSyntaxUID"] }))));
    }
    let top = match ts.as_str() {
        DEFLATED => return walk_deflated(w, max_depth),
        IMPLICIT_LE => Syntax {
            big: false,
            explicit: false,
        },
        EXPLICIT_BE => Syntax {
            big: true,
            explicit: true,
        },
        _ => META,
    };
    if top.explicit && !explicit_vr_follows(w)? {
        return Ok(Err(Check::new(
            "dicom.syntax_mismatch",
            Severity::Error,
            format!(
                "the data set is not encoded in the transfer syntax its meta group names \
                 ({ts}, explicit VR): its first element carries no VR"
            ),
        )
        .with_detail(serde_json::json!({ "transfer_syntax": ts }))));
    }
    walk_data_set(w, top, max_depth)
}

/// A deflated data set: its compressed bytes (up to the limit) are handed to dicom-rs
/// as they are, after the walk has gone through them inflated (at most `max_bytes` of
/// them, so a deflate bomb stops at the header limit).
fn walk_deflated(w: &mut Walker<'_>, max_depth: u32) -> Step<Result<(), Check>> {
    let start = w.cursor;
    let rest = w.len.saturating_sub(w.pos());
    match w.take(rest) {
        Ok(()) | Err(Stop::End) => {}
        Err(other) => return Err(other),
    }
    let mut inflated = flate2::read::DeflateDecoder::new(&w.buf[start..]);
    let mut inner = Walker {
        src: &mut inflated,
        buf: Vec::new(),
        cursor: 0,
        max: w.max,
        len: u64::MAX,
        open_un: 0,
    };
    match walk_data_set(&mut inner, META, max_depth) {
        // A UN's length cannot be written into compressed bytes.
        Ok(Ok(())) | Err(Stop::End) if inner.open_un > 0 => Ok(Err(bad_length(
            inner.pos(),
            "undefined in a deflated data set dicom-rs cannot read",
        ))),
        Ok(Ok(())) | Err(Stop::End) => Ok(Ok(())),
        other => other,
    }
}

/// Whether the first element of the data set carries a VR. A file written in implicit
/// VR under an explicit transfer syntax would otherwise be read with its lengths taken
/// from the wrong bytes; pydicom guesses and reads it implicitly, dicom-rs cannot, and
/// the meta group's word on how to decode the pixel data is then doubtful too.
fn explicit_vr_follows(w: &mut Walker<'_>) -> Step<bool> {
    let at = w.cursor;
    let vr = match w.ensure(6) {
        Ok(()) => VR::from_binary([w.buf[at + 4], w.buf[at + 5]]).is_some(),
        Err(Stop::End) => true,
        Err(other) => return Err(other),
    };
    w.cursor = at;
    Ok(vr)
}

fn walk_data_set(w: &mut Walker<'_>, top: Syntax, max_depth: u32) -> Step<Result<(), Check>> {
    let mut open: Vec<Open> = Vec::new();
    loop {
        while let Some(o) = open.last() {
            if o.end.is_some_and(|e| w.pos() >= e) {
                open.pop();
            } else {
                break;
            }
        }
        if w.pos() >= w.len {
            return Ok(Ok(()));
        }
        let syntax = open.last().map(|o| o.syntax).unwrap_or(top);
        let at = w.pos();
        let (tag, vr, vlen) = w.header(syntax)?;
        let limit = open.iter().rev().find_map(|o| o.end).unwrap_or(w.len);
        let end = if vlen == UNDEFINED {
            None
        } else {
            match w.pos().checked_add(u64::from(vlen)) {
                Some(e) if e <= limit => Some(e),
                _ => {
                    return Ok(Err(bad_length(
                        at,
                        "beyond the end of the file or of its enclosing item",
                    )));
                }
            }
        };
        if tag.0 == 0xFFFE {
            match tag.1 {
                ITEM => open.push(Open {
                    end,
                    sequence: false,
                    syntax,
                    un: None,
                }),
                ITEM_END if open.last().is_some_and(|o| !o.sequence && o.end.is_none()) => {
                    open.pop();
                }
                SEQ_END => {
                    while let Some(o) = open.pop() {
                        if o.sequence {
                            if let Some(un) = o.un {
                                close_un(w, un)?;
                            }
                            break;
                        }
                    }
                }
                _ => {}
            }
            continue;
        }
        if open.is_empty() && tag == dicom_dictionary_std::tags::PIXEL_DATA {
            return Ok(Ok(()));
        }
        if is_sequence(tag, vr, vlen, syntax) {
            let depth = open.iter().filter(|o| o.sequence).count() + 1;
            if depth > max_depth as usize {
                return Ok(Err(Check::new(
                    "dicom.too_deep",
                    Severity::Error,
                    format!("DICOM sequences are nested more than {max_depth} levels deep"),
                )
                .with_detail(
                    serde_json::json!({ "max_depth": max_depth, "offset": at }),
                )));
            }
            // PS3.5 §6.2.2: an undefined-length UN holds a sequence in implicit VR
            // little endian (an implicit file's private sequence, converted), but
            // dicom-rs 0.10 reads every undefined-length element as a sequence in the
            // surrounding syntax (found by fuzzing: 3.7 GB zero-filled for a 674-byte
            // file). So its items are walked as PS3.5 says, and once its delimiter is
            // found its length is written into the buffer: dicom-rs then reads it as
            // the opaque UN bytes it is (the delimiter kept inside, so no offset moves).
            let un = (vr == Some(VR::UN)).then(|| {
                w.open_un += 1;
                (w.cursor - 4, syntax.big, w.cursor)
            });
            open.push(Open {
                end,
                sequence: true,
                syntax: if un.is_some() { IMPLICIT } else { syntax },
                un,
            });
            continue;
        }
        if vlen != UNDEFINED && vlen % value_size(tag, vr, syntax) != 0 {
            return Ok(Err(bad_length(at, "not a whole number of values")));
        }
        match end {
            Some(e) => {
                if let Err(stop) = w.take(e.saturating_sub(w.pos())) {
                    return value_cut(stop, at);
                }
            }
            // Undefined length on what is not a sequence: encapsulated pixel data inside
            // an item, or a malformed file; its items are walked like a sequence's.
            None => open.push(Open {
                end: None,
                sequence: true,
                syntax,
                un: None,
            }),
        }
    }
}

/// Gives a closed undefined-length UN its length, the delimiter included.
fn close_un(w: &mut Walker<'_>, (at, big, start): (usize, bool, usize)) -> Step<()> {
    let len = u32::try_from(w.cursor - start).map_err(|_| Stop::TooLarge)?;
    let bytes = if big {
        len.to_be_bytes()
    } else {
        len.to_le_bytes()
    };
    w.buf[at..at + 4].copy_from_slice(&bytes);
    w.open_un -= 1;
    Ok(())
}

#[cfg(test)]
mod tests;
