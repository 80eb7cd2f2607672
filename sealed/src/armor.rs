//! ASCII armor (`age -a`, the age format's PEM-like text form, C2SP age §"ASCII
//! armor"): the binary file in standard base64, 64 columns per line, between
//! `-----BEGIN AGE ENCRYPTED FILE-----` and `-----END AGE ENCRYPTED FILE-----`.
//!
//! Hand-written rather than taken from the `age` crate: that crate brings its own
//! crypto stack beside ring for what is a line-by-line base64 decoder. Parsing is
//! strict, as the spec asks (so that one file has one armored form): every line but the
//! last base64 line has exactly 64 columns, the last at most 64 and canonical padding,
//! LF or CRLF line ends; whitespace is allowed only before the first and after the last
//! line. The decoder is streaming: it holds at most one line between pushes.

use base64::Engine;

use super::error::SealedError;

pub const BEGIN: &str = "-----BEGIN AGE ENCRYPTED FILE-----";
pub const END: &str = "-----END AGE ENCRYPTED FILE-----";
const COLUMNS: usize = 64;
/// The longest line the decoder holds: 64 columns and a CR (the markers are shorter).
const MAX_LINE: usize = COLUMNS + 1;

/// Whether a file that starts with `first` is armored (binary age files start with
/// `age-encryption.org/v1`; armored ones with the BEGIN line, perhaps after whitespace).
pub fn looks_armored(first: u8) -> bool {
    first == b'-' || first.is_ascii_whitespace()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Whitespace, then the BEGIN line.
    Before,
    /// Base64 lines; `short` once a line shorter than 64 columns was seen.
    Body { short: bool },
    /// After the END line: only whitespace.
    After,
}

/// Streaming decoder from armored bytes to the binary age file.
#[derive(Debug)]
pub struct Dearmor {
    state: State,
    line: Vec<u8>,
    /// Armored bytes consumed so far, for error messages.
    seen: u64,
}

impl Default for Dearmor {
    fn default() -> Self {
        Dearmor::new()
    }
}

fn bad(why: impl Into<String>) -> SealedError {
    SealedError::BadArmor(why.into())
}

impl Dearmor {
    pub fn new() -> Dearmor {
        Dearmor {
            state: State::Before,
            line: Vec::with_capacity(MAX_LINE + 1),
            seen: 0,
        }
    }

    /// Decodes `input`, appending the binary bytes of every completed line to `out`.
    pub fn push(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), SealedError> {
        for &b in input {
            self.seen += 1;
            if self.state == State::Before && self.line.is_empty() && b.is_ascii_whitespace() {
                continue;
            }
            if self.state == State::After {
                if !b.is_ascii_whitespace() {
                    return Err(bad(format!("data after the END line (byte {})", self.seen)));
                }
                continue;
            }
            if b == b'\n' {
                let line = std::mem::take(&mut self.line);
                self.line_done(&line, out)?;
                self.line = line;
                self.line.clear();
                continue;
            }
            if self.line.len() >= MAX_LINE {
                return Err(bad(format!(
                    "a line longer than {COLUMNS} columns (byte {})",
                    self.seen
                )));
            }
            self.line.push(b);
        }
        Ok(())
    }

    fn line_done(&mut self, raw: &[u8], out: &mut Vec<u8>) -> Result<(), SealedError> {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        match self.state {
            State::Before if line == BEGIN.as_bytes() => {
                self.state = State::Body { short: false };
                Ok(())
            }
            State::Before => Err(bad("the armor does not start with its BEGIN line")),
            State::Body { .. } if line == END.as_bytes() => {
                self.state = State::After;
                Ok(())
            }
            State::Body { short: true } => Err(bad("a base64 line follows a short one")),
            State::Body { short: false } => {
                if line.is_empty() || line.len() > COLUMNS {
                    return Err(bad(format!(
                        "a base64 line of {} columns (64, the last at most 64)",
                        line.len()
                    )));
                }
                if line.len() < COLUMNS {
                    self.state = State::Body { short: true };
                }
                base64::engine::general_purpose::STANDARD
                    .decode_vec(line, out)
                    .map_err(|e| bad(format!("not canonical base64: {e}")))
            }
            State::After => Ok(()),
        }
    }

    /// Whether the END line has been read.
    pub fn ended(&self) -> bool {
        self.state == State::After
    }

    /// Whether the input read so far is a whole armored file: the END line came, or is
    /// the last line without its newline. Changes nothing when it is not.
    pub fn complete(&mut self) -> bool {
        if !self.ended() {
            let pending = self.line.strip_suffix(b"\r").unwrap_or(&self.line);
            if matches!(self.state, State::Body { .. }) && pending == END.as_bytes() {
                self.line.clear();
                self.state = State::After;
            }
        }
        self.ended()
    }

    /// The end of the input: the END line must have come (an unterminated END line
    /// counts, as a file's last line may lack its newline).
    pub fn finish(&mut self) -> Result<(), SealedError> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            let mut out = Vec::new();
            self.line_done(&line, &mut out)?;
            if !out.is_empty() {
                return Err(bad("the armor ends without its END line"));
            }
        }
        if self.ended() {
            Ok(())
        } else {
            Err(bad("the armor ends without its END line"))
        }
    }
}

/// Turns an armored file at `path` into the binary age file, in place and crash-safe
/// (the binary goes to a sibling, is made durable and renamed over it, and the rename
/// is made durable); `Ok(false)` when it was binary already. A malformed armor is
/// `InvalidData`. Streams: memory stays at one buffer however large the file.
pub fn dearmor_in_place(path: &std::path::Path) -> std::io::Result<bool> {
    use std::io::{Read, Write};
    let mut input = std::fs::File::open(path)?;
    let mut first = [0u8; 1];
    if input.read(&mut first)? == 0 || !looks_armored(first[0]) {
        return Ok(false);
    }
    let invalid = |e: SealedError| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
    let tmp = path.with_extension("dearmored");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
    let mut d = Dearmor::new();
    let (mut buf, mut bin) = (vec![0u8; 64 << 10], Vec::with_capacity(48 << 10));
    d.push(&first, &mut bin).map_err(invalid)?;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        d.push(&buf[..n], &mut bin).map_err(invalid)?;
        out.write_all(&bin)?;
        bin.clear();
    }
    d.finish().map_err(invalid)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(true)
}

/// `binary` armored as `age -a` writes it.
pub fn armor(binary: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(binary);
    let mut s = format!("{BEGIN}\n");
    for chunk in b64.as_bytes().chunks(COLUMNS) {
        s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        s.push('\n');
    }
    s.push_str(END);
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(text: &[u8], piece: usize) -> Result<Vec<u8>, SealedError> {
        let mut d = Dearmor::new();
        let mut out = Vec::new();
        for p in text.chunks(piece.max(1)) {
            d.push(p, &mut out)?;
        }
        d.finish()?;
        Ok(out)
    }

    #[test]
    fn round_trips_in_any_pieces_and_line_ends() {
        for len in [0usize, 1, 47, 48, 49, 1000] {
            let bin: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let text = armor(&bin);
            for piece in [1, 3, 64, 65, 4096] {
                assert_eq!(decode_in_pieces(text.as_bytes(), piece).unwrap(), bin);
            }
            let crlf = text.replace('\n', "\r\n");
            assert_eq!(decode_in_pieces(crlf.as_bytes(), 5).unwrap(), bin);
            let padded = format!("\n  {}\n\n", text.trim_end());
            assert_eq!(decode_in_pieces(padded.as_bytes(), 7).unwrap(), bin);
        }
    }

    #[test]
    fn refuses_every_malformed_form() {
        let good = armor(&[7u8; 100]);
        let cases = [
            good.replace(BEGIN, "-----BEGIN PGP MESSAGE-----"),
            good.replace(END, "").trim_end().to_string(),
            format!("{good}trailing"),
            good.replacen("\n", "\n\n", 2),
            good.replacen("Bwc", "B*c", 1),
            // A 63-column line before a full one.
            good.replacen(&good.lines().nth(1).unwrap()[..1], "", 1),
        ];
        for (i, bad) in cases.iter().enumerate() {
            let r = decode_in_pieces(bad.as_bytes(), 13);
            assert!(
                matches!(r, Err(SealedError::BadArmor(_))),
                "case {i}: {r:?}"
            );
        }
    }
}
