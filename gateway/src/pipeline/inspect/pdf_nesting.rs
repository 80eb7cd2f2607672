//! The gateway's own cap on how deeply a PDF nests arrays and dictionaries, read from
//! the raw bytes before lopdf parses anything.

/// Where the nesting of arrays (`[`) and dictionaries (`<<`) in `buf` first goes
/// deeper than `max`, skipping comments, strings and stream data. lopdf caps its own
/// recursion too; this is the gateway's own cap, checked before lopdf runs (defence in
/// depth), and it reports where.
pub fn too_deep_at(buf: &[u8], max: u32) -> Option<usize> {
    let mut depth = 0u32;
    let mut i = 0;
    while i < buf.len() {
        let next = buf.get(i + 1).copied();
        match buf[i] {
            b'%' => {
                while i < buf.len() && buf[i] != b'\n' && buf[i] != b'\r' {
                    i += 1;
                }
            }
            b'(' => i = skip_literal(buf, i),
            b'<' if next == Some(b'<') => {
                depth += 1;
                if depth > max {
                    return Some(i);
                }
                i += 1;
            }
            b'<' => {
                while i < buf.len() && buf[i] != b'>' {
                    i += 1;
                }
            }
            b'>' if next == Some(b'>') => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'[' => {
                depth += 1;
                if depth > max {
                    return Some(i);
                }
            }
            b']' => depth = depth.saturating_sub(1),
            b's' if buf[i..].starts_with(b"stream")
                && matches!(buf.get(i + 6), Some(b'\r' | b'\n')) =>
            {
                i = buf[i..]
                    .windows(9)
                    .position(|w| w == b"endstream")
                    .map_or(buf.len(), |p| i + p + 8);
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the `)` that closes the literal string opened at `start`.
fn skip_literal(buf: &[u8], start: usize) -> usize {
    let mut open = 0usize;
    let mut i = start;
    while i < buf.len() {
        match buf[i] {
            b'\\' => i += 1,
            b'(' => open += 1,
            b')' => {
                open -= 1;
                if open == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    i
}
