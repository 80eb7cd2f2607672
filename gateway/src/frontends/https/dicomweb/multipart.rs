//! A streaming `multipart/related` reader (RFC 2046 §5.1, RFC 2387) for STOW-RS bodies:
//! fed the body as it arrives, it yields each part's headers and then its bytes in
//! pieces, so a part is never held whole in memory. Hand-written because the multipart
//! crates in the field parse `multipart/form-data` (they insist on Content-Disposition
//! names) and STOW parts carry none.

/// What the reader found next.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// A part begins; its headers, names in lower case.
    Part(Vec<(String, String)>),
    /// Bytes of the current part.
    Data(Vec<u8>),
    /// The closing delimiter: no more parts.
    End,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    #[error("the body ends inside a part (no closing boundary)")]
    Truncated,
    #[error("a part's headers are malformed or longer than 16 KiB")]
    BadHeaders,
    #[error("the body holds no boundary delimiter")]
    NoBoundary,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    /// Before the first delimiter (the preamble is skipped).
    Preamble,
    /// After a delimiter: `--` (end) or CRLF and headers follow.
    AfterDelimiter,
    Headers,
    Body,
    Done,
}

const MAX_HEADERS: usize = 16 << 10;

pub struct Reader {
    /// `\r\n--<boundary>`.
    delimiter: Vec<u8>,
    buf: Vec<u8>,
    state: State,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Reader {
    pub fn new(boundary: &str) -> Reader {
        Reader {
            delimiter: format!("\r\n--{boundary}").into_bytes(),
            // A delimiter right at the start has no CRLF before it.
            buf: b"\r\n".to_vec(),
            state: State::Preamble,
        }
    }

    /// Adds the next piece of the body. After the closing delimiter the rest (the
    /// epilogue) is dropped unread, so a body that goes on after it costs nothing.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.state != State::Done {
            self.buf.extend_from_slice(chunk);
        }
    }

    /// Bytes held between events: bounded in every state (a delimiter's length, a
    /// part's headers, or one fed piece).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next event, or `None` when more input is needed.
    pub fn next_event(&mut self) -> Result<Option<Event>, MultipartError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Preamble => match find(&self.buf, &self.delimiter) {
                    Some(i) => {
                        self.buf.drain(..i + self.delimiter.len());
                        self.state = State::AfterDelimiter;
                    }
                    None => {
                        // Keep only what could still start a delimiter.
                        let keep = self.delimiter.len() - 1;
                        if self.buf.len() > keep {
                            self.buf.drain(..self.buf.len() - keep);
                        }
                        return Ok(None);
                    }
                },
                State::AfterDelimiter => {
                    if self.buf.len() < 2 {
                        return Ok(None);
                    }
                    if self.buf.starts_with(b"--") {
                        self.state = State::Done;
                        self.buf.clear();
                        return Ok(Some(Event::End));
                    }
                    // Transport padding (spaces, tabs) may follow a delimiter.
                    let Some(eol) = find(&self.buf, b"\r\n") else {
                        if self.buf.len() > MAX_HEADERS {
                            return Err(MultipartError::BadHeaders);
                        }
                        return Ok(None);
                    };
                    if !self.buf[..eol].iter().all(|b| *b == b' ' || *b == b'\t') {
                        return Err(MultipartError::BadHeaders);
                    }
                    self.buf.drain(..eol + 2);
                    self.state = State::Headers;
                }
                State::Headers => {
                    // Headers end at an empty line (a part may have none at all).
                    let end = if self.buf.starts_with(b"\r\n") {
                        Some((0, 2))
                    } else {
                        find(&self.buf, b"\r\n\r\n").map(|i| (i, i + 4))
                    };
                    let Some((end, skip)) = end else {
                        if self.buf.len() > MAX_HEADERS {
                            return Err(MultipartError::BadHeaders);
                        }
                        return Ok(None);
                    };
                    let text = std::str::from_utf8(&self.buf[..end])
                        .map_err(|_| MultipartError::BadHeaders)?;
                    let mut headers = Vec::new();
                    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
                        let (k, v) = line.split_once(':').ok_or(MultipartError::BadHeaders)?;
                        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                    }
                    self.buf.drain(..skip);
                    self.state = State::Body;
                    return Ok(Some(Event::Part(headers)));
                }
                State::Body => {
                    if let Some(i) = find(&self.buf, &self.delimiter) {
                        let data: Vec<u8> = self.buf.drain(..i).collect();
                        self.buf.drain(..self.delimiter.len());
                        self.state = State::AfterDelimiter;
                        if !data.is_empty() {
                            return Ok(Some(Event::Data(data)));
                        }
                        continue;
                    }
                    let keep = self.delimiter.len() - 1;
                    if self.buf.len() <= keep {
                        return Ok(None);
                    }
                    let data: Vec<u8> = self.buf.drain(..self.buf.len() - keep).collect();
                    return Ok(Some(Event::Data(data)));
                }
            }
        }
    }

    /// At the end of the body: an error unless the closing delimiter was seen.
    pub fn finish(&self) -> Result<(), MultipartError> {
        match self.state {
            State::Done => Ok(()),
            State::Preamble => Err(MultipartError::NoBoundary),
            _ => Err(MultipartError::Truncated),
        }
    }
}

/// `boundary` and `type` of a `multipart/related` Content-Type (quoted or not).
pub fn related_params(content_type: &str) -> Option<(String, Option<String>)> {
    let mut parts = content_type.split(';');
    let media = parts.next()?.trim();
    if !media.eq_ignore_ascii_case("multipart/related") {
        return None;
    }
    let (mut boundary, mut typ) = (None, None);
    for p in parts {
        let Some((k, v)) = p.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "boundary" => boundary = Some(v),
            "type" => typ = Some(v),
            _ => {}
        }
    }
    Some((boundary.filter(|b| !b.is_empty() && b.len() <= 70)?, typ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &[u8], boundary: &str, piece: usize) -> Result<Vec<Event>, MultipartError> {
        let mut r = Reader::new(boundary);
        let mut out = Vec::new();
        for chunk in body.chunks(piece.max(1)) {
            r.feed(chunk);
            while let Some(e) = r.next_event()? {
                out.push(e);
            }
        }
        r.finish()?;
        // Join consecutive data events, which depend on how the input was cut.
        let mut joined: Vec<Event> = Vec::new();
        for e in out {
            match (joined.last_mut(), e) {
                (Some(Event::Data(a)), Event::Data(b)) => a.extend(b),
                (_, e) => joined.push(e),
            }
        }
        Ok(joined)
    }

    #[test]
    fn parts_come_out_whole_however_the_body_is_cut() {
        let body = b"preamble\r\n--XyZ\r\nContent-Type: application/dicom\r\n\r\nfirst\r\n--X\r\n\
                     --XyZ  \r\n\r\nsecond part\r\n--XyZ--\r\nepilogue";
        let want = vec![
            Event::Part(vec![("content-type".into(), "application/dicom".into())]),
            Event::Data(b"first\r\n--X".to_vec()),
            Event::Part(vec![]),
            Event::Data(b"second part".to_vec()),
            Event::End,
        ];
        for piece in [1, 2, 3, 7, 16, 1000] {
            assert_eq!(
                parse(body, "XyZ", piece).unwrap(),
                want,
                "pieces of {piece}"
            );
        }
        let leading = b"--b\r\n\r\nx\r\n--b--";
        assert_eq!(
            parse(leading, "b", 1).unwrap()[1],
            Event::Data(b"x".to_vec())
        );
    }

    /// Hostile bodies in every state: the reader never holds more than a part's header
    /// limit plus one fed piece, and drops the epilogue.
    #[test]
    fn the_buffer_is_bounded_in_every_state() {
        let piece = vec![b' '; 64 << 10];
        let mut states: Vec<(&str, Vec<u8>)> = vec![
            ("preamble", Vec::new()),
            ("after a delimiter", b"--b".to_vec()),
            ("headers", b"--b\r\nX-Long: ".to_vec()),
            ("body", b"--b\r\n\r\n".to_vec()),
            ("epilogue", b"--b\r\n\r\nx\r\n--b--".to_vec()),
        ];
        for (state, start) in states.drain(..) {
            let mut r = Reader::new("b");
            r.feed(&start);
            let mut most = 0;
            for _ in 0..200 {
                r.feed(&piece);
                match r.next_event() {
                    Ok(_) => {}
                    Err(MultipartError::BadHeaders) => break,
                    Err(e) => panic!("{state}: {e}"),
                }
                while let Ok(Some(_)) = r.next_event() {}
                most = most.max(r.buffered());
            }
            assert!(
                most <= MAX_HEADERS + piece.len() + 64,
                "{state}: {most} bytes held"
            );
        }
    }

    #[test]
    fn broken_bodies_are_errors() {
        assert_eq!(
            parse(b"--b\r\n\r\nunfinished", "b", 4),
            Err(MultipartError::Truncated)
        );
        assert_eq!(
            parse(b"no delimiter here", "b", 4),
            Err(MultipartError::NoBoundary)
        );
        assert_eq!(
            parse(b"--b\r\nnot a header\r\n\r\nx\r\n--b--", "b", 4),
            Err(MultipartError::BadHeaders)
        );
    }

    #[test]
    fn content_type_parameters_quoted_or_not() {
        assert_eq!(
            related_params("multipart/related; type=\"application/dicom\"; boundary=abc"),
            Some(("abc".into(), Some("application/dicom".into())))
        );
        assert_eq!(
            related_params("Multipart/Related;boundary=\"a b\";type=application/dicom"),
            Some(("a b".into(), Some("application/dicom".into())))
        );
        assert_eq!(related_params("multipart/form-data; boundary=x"), None);
        assert_eq!(
            related_params("multipart/related; type=application/dicom"),
            None
        );
    }
}
