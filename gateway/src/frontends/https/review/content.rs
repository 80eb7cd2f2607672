//! `GET /v1/files/{id}/content`: the plaintext, decrypted from storage on the fly and
//! streamed (stored objects stay sealed; nothing is written in the clear), with single
//! byte ranges, `ETag` = the SHA-256, `Content-Digest`/`Repr-Digest` (RFC 9530), and
//! the encrypted download of rule 13: with `?recipient=age1…`, or for a reviewer
//! with a registered recipient, the content is sealed to that recipient instead.
//!
//! A request whose answer starts at byte 0 counts as a download (rule 13: state
//! `downloaded`, event `file.downloaded`); later ranges of the same transfer do not.

use std::io::{self, Read, Write};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use http_body_util::channel::{Channel, Sender};
use serde::Deserialize;
use tokio::runtime::Handle;

use super::{Reviewer, not_found, unavailable};
use crate::backends::catalog::FileRow;
use crate::frontends::https::stored::{Source, send_frame};
use crate::frontends::https::{Https, Problem, problem};
use crate::sealed::{CHUNK, Recipient, Sealer};

/// Plaintext bytes per body frame.
const FRAME: usize = 1 << 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentQuery {
    /// Seal the content to this age recipient.
    recipient: Option<String>,
}

/// What a request asks for, once its headers are read.
#[derive(Debug, PartialEq, Eq)]
enum Want {
    Full,
    Range(u64, u64),
    Unsatisfiable,
    Multiple,
}

/// RFC 9110 §14: one `bytes=` range (first-last, first-, -suffix). A malformed
/// header is ignored (the full content is sent), as the RFC allows.
fn want(headers: &HeaderMap, size: u64, etag: &str) -> Want {
    let Some(range) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Want::Full;
    };
    if let Some(cond) = headers.get(header::IF_RANGE)
        && cond.as_bytes() != etag.as_bytes()
    {
        return Want::Full;
    }
    let Some(spec) = range.trim().strip_prefix("bytes=") else {
        return Want::Full;
    };
    if spec.contains(',') {
        return Want::Multiple;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Want::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.parse::<u64>().ok(), b.parse::<u64>().ok()) {
        (Some(first), Some(last)) if first <= last => {
            Some((first, last.min(size.saturating_sub(1))))
        }
        (Some(first), None) if b.is_empty() => Some((first, size.saturating_sub(1))),
        (None, Some(n)) if a.is_empty() => {
            if n == 0 {
                return Want::Unsatisfiable;
            }
            Some((size.saturating_sub(n), size.saturating_sub(1)))
        }
        _ => None,
    };
    match parsed {
        None => Want::Full,
        Some((first, _)) if first >= size => Want::Unsatisfiable,
        Some((first, last)) => Want::Range(first, last),
    }
}

/// Counts a download answer and the plaintext bytes it carries.
fn counted(kind: &str, bytes: u64) {
    use crate::telemetry::metrics::METRICS;
    METRICS.downloads.with_label_values(&[kind]).inc();
    METRICS
        .download_bytes
        .with_label_values(&[kind])
        .inc_by(bytes);
}

/// RFC 9110 §13.1.2: `*`, or any listed tag equal to ours by weak comparison.
fn none_match(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t.trim_start_matches("W/") == etag)
}

fn digest_header(sha256_hex: &str) -> Option<HeaderValue> {
    let raw = hex::decode(sha256_hex).ok()?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
    HeaderValue::from_str(&format!("sha-256=:{b64}:")).ok()
}

fn disposition(name: &str, suffix: &str) -> HeaderValue {
    let base = name.rsplit('/').next().unwrap_or(name);
    let safe: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    HeaderValue::from_str(&format!("attachment; filename=\"{safe}{suffix}\""))
        .unwrap_or(HeaderValue::from_static("attachment"))
}

/// Chunks decrypted per body frame (2 MiB of plaintext).
const WINDOW_CHUNKS: u64 = 32;

/// Plaintext `[start, start + len)` as a streamed body, decrypted a window of chunks
/// at a time across the cores while the previous window is on its way.
fn plain_body(src: Source, start: u64, len: u64) -> Body {
    let (mut tx, body) = Channel::<Bytes, io::Error>::new(2);
    let rt = Handle::current();
    let stall = src.stall;
    tokio::task::spawn_blocking(move || {
        let sent = (|| -> io::Result<()> {
            let mut r = src.open(&rt)?;
            let chunk = CHUNK as u64;
            let (mut next, mut skip, mut left) = (start / chunk, (start % chunk) as usize, len);
            while left > 0 {
                let mut buf = Vec::new();
                r.read_chunks(next, WINDOW_CHUNKS, &mut buf)?;
                if buf.len() <= skip {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "object shorter than its index says",
                    ));
                }
                next += WINDOW_CHUNKS;
                let take = ((buf.len() - skip) as u64).min(left) as usize;
                let frame = Bytes::from(buf).slice(skip..skip + take);
                skip = 0;
                left -= take as u64;
                match send_frame(&rt, &mut tx, frame, stall) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(()),
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        })();
        if let Err(e) = sent {
            tracing::warn!(error = %e, "content stream failed");
            tx.abort(e);
        }
    });
    Body::new(body)
}

/// Writes into a body channel in frames (the sealer writes small pieces).
struct ChannelWriter<'a> {
    tx: &'a mut Sender<Bytes, io::Error>,
    rt: &'a Handle,
    buf: Vec<u8>,
    stall: std::time::Duration,
}

impl ChannelWriter<'_> {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let frame = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(FRAME)));
        send_frame(self.rt, self.tx, frame, self.stall)
    }
}

impl Write for ChannelWriter<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= FRAME {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// The whole plaintext sealed to `to`, as a streamed body.
fn sealed_body(src: Source, size: u64, to: Recipient) -> Body {
    let (mut tx, body) = Channel::<Bytes, io::Error>::new(4);
    let rt = Handle::current();
    let stall = src.stall;
    tokio::task::spawn_blocking(move || {
        let sent = (|| -> io::Result<()> {
            let r = src.open(&rt)?;
            let out = ChannelWriter {
                tx: &mut tx,
                rt: &rt,
                buf: Vec::with_capacity(FRAME),
                stall,
            };
            let mut sealer =
                Sealer::new(std::slice::from_ref(&to), out).map_err(io::Error::other)?;
            io::copy(&mut r.take(size), &mut sealer)?;
            sealer.finish()?.flush()
        })();
        if let Err(e) = sent
            && e.kind() != io::ErrorKind::BrokenPipe
        {
            tracing::warn!(error = %e, "sealed content stream failed");
            tx.abort(e);
        }
    });
    Body::new(body)
}

fn source(s: &Https, f: &FileRow) -> Result<Source, Problem> {
    Source::of(s, &f.object_key)
}

/// `GET /v1/files/{id}/content` (and `HEAD`).
pub async fn content(
    State(s): State<Https>,
    reviewer: Reviewer,
    method: Method,
    Path(id): Path<String>,
    query: Result<Query<ContentQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let Ok(Query(q)) = query else {
        return problem(
            StatusCode::BAD_REQUEST,
            "http.bad_query",
            "the only parameter is recipient",
        );
    };
    let file = match s.app.catalog.file(&id).await {
        Ok(Some(f)) if reviewer.may_read(&f.tenant) => f,
        Ok(_) => return not_found(),
        Err(e) => return unavailable(&e),
    };
    if file.expired_at.is_some() {
        return problem(
            StatusCode::GONE,
            "file.expired",
            "the file's retention has ended; its bytes are deleted",
        );
    }
    let recipient = match q.recipient.as_deref().map(str::parse::<Recipient>) {
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "download.bad_recipient",
                &format!("recipient: {e}"),
            );
        }
        None => reviewer.recipient.clone(),
    };
    let src = match source(&s, &file) {
        Ok(src) => src,
        Err(p) => return p.into_response(),
    };
    let head = method == Method::HEAD;
    if let Some(to) = recipient {
        // A fresh sealing differs every time: no ranges, no validators.
        if !head
            && let Err(e) = s
                .app
                .catalog
                .record_download(&file.id, &reviewer.name, true)
                .await
        {
            return unavailable(&e);
        }
        let body = if head {
            Body::empty()
        } else {
            counted("sealed", file.size);
            sealed_body(src, file.size, to)
        };
        let mut resp = Response::new(body);
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        h.insert(header::CONTENT_DISPOSITION, disposition(&file.name, ".age"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return resp;
    }
    plain_response(&s, &reviewer, &file, src, &headers, head).await
}

async fn plain_response(
    s: &Https,
    reviewer: &Reviewer,
    file: &FileRow,
    src: Source,
    headers: &HeaderMap,
    head: bool,
) -> Response {
    let etag = format!("\"{}\"", file.sha256);
    let size = file.size;
    let mut resp = Response::new(Body::empty());
    let h = resp.headers_mut();
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).unwrap_or(HeaderValue::from_static("\"\"")),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if let Some(d) = digest_header(&file.sha256) {
        h.insert("repr-digest", d);
    }
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| none_match(v, &etag))
    {
        *resp.status_mut() = StatusCode::NOT_MODIFIED;
        return resp;
    }
    let (start, end) = match want(headers, size, &etag) {
        Want::Full => (0, size.saturating_sub(1)),
        Want::Range(a, b) => {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            (a, b)
        }
        Want::Unsatisfiable | Want::Multiple => {
            let multiple = headers
                .get(header::RANGE)
                .is_some_and(|v| v.as_bytes().contains(&b','));
            let mut r = if multiple {
                problem(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "range.multiple",
                    "ask for one byte range per request",
                )
            } else {
                problem(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "range.not_satisfiable",
                    &format!("the file has {size} bytes"),
                )
            };
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let len = if size == 0 { 0 } else { end - start + 1 };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&file.media_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CONTENT_DISPOSITION, disposition(&file.name, ""));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if resp.status() == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")) {
            resp.headers_mut().insert(header::CONTENT_RANGE, v);
        }
    } else if let Some(d) = digest_header(&file.sha256) {
        resp.headers_mut().insert("content-digest", d);
    }
    if head {
        return resp;
    }
    if start == 0 {
        match s
            .app
            .catalog
            .record_download(&file.id, &reviewer.name, false)
            .await
        {
            Ok(Some(_)) => {}
            Ok(None) => {
                return problem(
                    StatusCode::GONE,
                    "file.expired",
                    "the file's retention has ended",
                );
            }
            Err(e) => return unavailable(&e),
        }
    }
    let kind = if resp.status() == StatusCode::PARTIAL_CONTENT {
        "range"
    } else {
        "plain"
    };
    counted(kind, len);
    *resp.body_mut() = plain_body(src, start, len);
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_range(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::RANGE, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        let e = "\"x\"";
        assert_eq!(want(&HeaderMap::new(), 100, e), Want::Full);
        assert_eq!(want(&with_range("bytes=0-9"), 100, e), Want::Range(0, 9));
        assert_eq!(want(&with_range("bytes=90-"), 100, e), Want::Range(90, 99));
        assert_eq!(want(&with_range("bytes=-10"), 100, e), Want::Range(90, 99));
        assert_eq!(want(&with_range("bytes=-1000"), 100, e), Want::Range(0, 99));
        assert_eq!(
            want(&with_range("bytes=50-1000"), 100, e),
            Want::Range(50, 99)
        );
        assert_eq!(want(&with_range("bytes=100-"), 100, e), Want::Unsatisfiable);
        assert_eq!(want(&with_range("bytes=-0"), 100, e), Want::Unsatisfiable);
        assert_eq!(want(&with_range("bytes=0-1,5-6"), 100, e), Want::Multiple);
        assert_eq!(want(&with_range("bytes=9-1"), 100, e), Want::Full);
        assert_eq!(want(&with_range("items=0-1"), 100, e), Want::Full);
        let mut h = with_range("bytes=0-9");
        h.insert(header::IF_RANGE, HeaderValue::from_static("\"other\""));
        assert_eq!(want(&h, 100, e), Want::Full);
    }

    #[test]
    fn if_none_match_lists_and_weak_tags() {
        assert!(none_match("\"x\"", "\"x\""));
        assert!(none_match("\"a\", W/\"x\"", "\"x\""));
        assert!(none_match("*", "\"x\""));
        assert!(!none_match("W/\"\", W/\"y\"", "\"x\""));
    }
}
