//! WADO-RS: retrieve studies, series and instances as `multipart/related;
//! type="application/dicom"`, their metadata as DICOM JSON, and frames of uncompressed
//! images as `application/octet-stream` parts (PS3.18 §10.4). Everything streams from
//! storage, decrypting on the fly; an instance inside a ZIP batch is read out of the
//! archive the same way. Compressed pixel data cannot be cut into frames here: 406.
//!
//! Retrieval is a download like `/v1/files/{id}/content`: scoped to the caller's
//! tenants, counted for a reviewer (`file.downloaded`, audit), and refused to a
//! reviewer whose files must reach it sealed (`age_recipient`): WADO-RS serves plain
//! DICOM. A frame list is deduplicated and capped, and frames stream in pieces.

use std::io::{self, Read, Seek, SeekFrom};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::channel::{Channel, Sender};
use serde_json::{Value, json};
use tokio::runtime::Handle;

use super::{Viewer, accept, base_url, unavailable};
use crate::backends::catalog::{DicomLevel, DicomLocation, DicomQuery};
use crate::frontends::https::stored::{ReadSeek, Source};
use crate::frontends::https::{Https, Problem, problem};
use crate::pipeline::inspect::dicom::{HeaderLimits, read_header};
use crate::sealed::SealedReader;

/// Bytes per body frame.
const FRAME: usize = 1 << 20;
/// Frames one request may ask for (after removing repeats).
const MAX_FRAMES: usize = 1024;
/// Largest header read for metadata and frame offsets.
const MAX_HEADER: u64 = 64 << 20;

/// Uncompressed transfer syntaxes whose frames are plain byte ranges.
const NATIVE: [&str; 2] = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"];

pub(super) fn not_found() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "dicomweb.not_found",
        "no such study, series or instance",
    )
}

pub(super) fn query(
    viewer: &Viewer,
    study: String,
    series: Option<String>,
    sop: Option<String>,
) -> DicomQuery {
    DicomQuery {
        study_uids: vec![study],
        series_uids: series.into_iter().collect(),
        sop_uids: sop.into_iter().collect(),
        limit: 100_000,
        ..DicomQuery::new(DicomLevel::Instance, viewer.tenants.clone())
    }
}

pub(super) async fn locate(s: &Https, q: &DicomQuery) -> Result<Vec<DicomLocation>, Response> {
    match s.app.catalog.dicom_instances(q).await {
        Ok(v) if v.is_empty() => Err(not_found()),
        Ok(v) => Ok(v),
        Err(e) => Err(unavailable(&e)),
    }
}

/// Runs `f` over the plaintext of one instance, streamed: the stored file, or its
/// entry in a ZIP batch (read out of the archive as it is decrypted).
pub(super) fn with_instance<T>(
    src: Source,
    path: &str,
    rt: &Handle,
    f: impl FnOnce(&mut dyn Read) -> io::Result<T>,
) -> io::Result<T> {
    let mut file: SealedReader<Box<dyn ReadSeek>> = src.open(rt)?;
    if path.is_empty() {
        return f(&mut file);
    }
    let mut archive = zip::ZipArchive::new(file).map_err(io::Error::other)?;
    let mut entry = archive.by_name(path).map_err(io::Error::other)?;
    f(&mut entry)
}

/// A reviewer that must receive files sealed gets no plain DICOM.
pub(super) fn sealed_only(viewer: &Viewer) -> Option<Response> {
    viewer.sealed_only.then(|| {
        problem(
            StatusCode::FORBIDDEN,
            "download.sealed_only",
            "files reach this reviewer sealed to its recipient only: download them from /v1/files/{id}/content",
        )
    })
}

/// Records a reviewer's retrieval of each file once, as a content download does.
pub(super) async fn account(
    s: &Https,
    viewer: &Viewer,
    found: &[DicomLocation],
) -> Option<Response> {
    let who = viewer.reviewer.as_deref()?;
    let mut files: Vec<&str> = found.iter().map(|l| l.file_id.as_str()).collect();
    files.sort_unstable();
    files.dedup();
    for id in files {
        if let Err(e) = s.app.catalog.record_download(id, who, false).await {
            return Some(unavailable(&e));
        }
    }
    None
}

fn accepts(headers: &HeaderMap, media: &str) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    accept.contains("*/*")
        || accept.contains(media)
        || accept.contains("multipart/related;") && !accept.contains("type=")
}

pub(super) fn boundary() -> String {
    let mut b = [0u8; 12];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    format!("gateway-{}", hex::encode(b))
}

pub(super) fn multipart_response(body: Body, boundary: &str, part_type: &str) -> Response {
    let mut resp = Response::new(body);
    if let Ok(v) = HeaderValue::from_str(&format!(
        "multipart/related; type=\"{part_type}\"; boundary={boundary}"
    )) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

fn send(
    rt: &Handle,
    tx: &mut Sender<Bytes, io::Error>,
    data: Vec<u8>,
    stall: std::time::Duration,
) -> io::Result<()> {
    crate::frontends::https::stored::send_frame(rt, tx, Bytes::from(data), stall)
}

/// Streams every instance as a part of one multipart body.
fn instances_body(s: &Https, found: Vec<DicomLocation>, boundary: String) -> Result<Body, Problem> {
    let sources = found
        .into_iter()
        .map(|l| Ok((Source::of(s, &l.object_key)?, l.path)))
        .collect::<Result<Vec<_>, Problem>>()?;
    let (mut tx, body) = Channel::<Bytes, io::Error>::new(2);
    let rt = Handle::current();
    let stall = sources
        .first()
        .map(|(s, _)| s.stall)
        .unwrap_or(std::time::Duration::from_secs(60));
    tokio::task::spawn_blocking(move || {
        let sent = (|| -> io::Result<()> {
            for (src, path) in sources {
                let head = format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n");
                send(&rt, &mut tx, head.into_bytes(), stall)?;
                with_instance(src, &path, &rt, |r| {
                    loop {
                        let mut buf = vec![0u8; FRAME];
                        let n = read_full(r, &mut buf)?;
                        if n == 0 {
                            return Ok(());
                        }
                        buf.truncate(n);
                        send(&rt, &mut tx, buf, stall)?;
                    }
                })?;
                send(&rt, &mut tx, b"\r\n".to_vec(), stall)?;
            }
            send(
                &rt,
                &mut tx,
                format!("--{boundary}--\r\n").into_bytes(),
                stall,
            )
        })();
        if let Err(e) = sent
            && e.kind() != io::ErrorKind::BrokenPipe
        {
            tracing::warn!(error = %e, "WADO-RS stream failed");
            tx.abort(e);
        }
    });
    Ok(Body::new(body))
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// An instance that could not be read back (storage or decryption failed).
pub(super) fn unreadable(e: impl std::fmt::Display) -> Response {
    problem(
        StatusCode::INTERNAL_SERVER_ERROR,
        "dicomweb.unreadable",
        &e.to_string(),
    )
}

pub(super) fn not_acceptable(why: &str) -> Response {
    problem(StatusCode::NOT_ACCEPTABLE, "dicomweb.not_acceptable", why)
}

async fn retrieve(s: &Https, viewer: &Viewer, headers: &HeaderMap, q: DicomQuery) -> Response {
    let Some(syntaxes) = accept::instances(headers) else {
        return not_acceptable(
            "instances are sent as multipart/related; type=\"application/dicom\" in their stored transfer syntax",
        );
    };
    if let Some(r) = sealed_only(viewer) {
        return r;
    }
    let found = match locate(s, &q).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Some(l) = found
        .iter()
        .find(|l| !syntaxes.allows(&l.row.transfer_syntax))
    {
        return not_acceptable(&format!(
            "instance {} is stored in transfer syntax {} and the gateway does not transcode; \
             ask for transfer-syntax=* or that syntax",
            l.row.sop_uid, l.row.transfer_syntax
        ));
    }
    if let Some(r) = account(s, viewer, &found).await {
        return r;
    }
    let b = boundary();
    match instances_body(s, found, b.clone()) {
        Ok(body) => multipart_response(body, &b, "application/dicom"),
        Err(p) => p.into_response(),
    }
}

pub async fn study(
    State(s): State<Https>,
    viewer: Viewer,
    h: HeaderMap,
    Path(study): Path<String>,
) -> Response {
    let q = query(&viewer, study, None, None);
    retrieve(&s, &viewer, &h, q).await
}

pub async fn series(
    State(s): State<Https>,
    viewer: Viewer,
    h: HeaderMap,
    Path((study, series)): Path<(String, String)>,
) -> Response {
    let q = query(&viewer, study, Some(series), None);
    retrieve(&s, &viewer, &h, q).await
}

pub async fn instance(
    State(s): State<Https>,
    viewer: Viewer,
    h: HeaderMap,
    Path((study, series, sop)): Path<(String, String, String)>,
) -> Response {
    let q = query(&viewer, study, Some(series), Some(sop));
    retrieve(&s, &viewer, &h, q).await
}

/// The DICOM JSON of one instance's header (everything before the pixel data), with
/// the pixel data as a BulkDataURI to its frames.
fn metadata_of(src: Source, l: &DicomLocation, base: &str, rt: &Handle) -> io::Result<Value> {
    let obj = with_instance(src, &l.path, rt, |r| {
        read_header(r, HeaderLimits::default())
            .map_err(|c| io::Error::new(io::ErrorKind::InvalidData, c.message))
    })?;
    let d = &l.row;
    let url = format!(
        "{base}/studies/{}/series/{}/instances/{}",
        d.study_uid, d.series_uid, d.sop_uid
    );
    let mut v = crate::pipeline::inspect::dicom_json::dataset(&obj, &format!("{url}/bulkdata"));
    let frames = d.number_of_frames.unwrap_or(1).max(1);
    let list: Vec<String> = (1..=frames).map(|n| n.to_string()).collect();
    if let Value::Object(o) = &mut v {
        o.insert(
            "7FE00010".into(),
            json!({ "vr": "OB", "BulkDataURI": format!("{url}/frames/{}", list.join(",")) }),
        );
        o.insert("00081190".into(), json!({ "vr": "UR", "Value": [url] }));
    }
    Ok(v)
}

async fn metadata(s: &Https, headers: &HeaderMap, q: DicomQuery) -> Response {
    if !accept::metadata(headers) {
        return not_acceptable("metadata is sent as application/dicom+json only");
    }
    let found = match locate(s, &q).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let base = base_url(headers);
    let mut jobs = Vec::with_capacity(found.len());
    for l in found {
        match Source::of(s, &l.object_key) {
            Ok(src) => jobs.push((src, l)),
            Err(p) => return p.into_response(),
        }
    }
    let rt = Handle::current();
    let made = tokio::task::spawn_blocking(move || {
        jobs.into_iter()
            .map(|(src, l)| metadata_of(src, &l, &base, &rt))
            .collect::<io::Result<Vec<Value>>>()
    })
    .await;
    match made {
        Ok(Ok(items)) => {
            let mut resp = axum::Json(items).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/dicom+json"),
            );
            resp
        }
        Ok(Err(e)) => unreadable(e),
        Err(e) => unreadable(e),
    }
}

pub async fn study_metadata(
    State(s): State<Https>,
    viewer: Viewer,
    h: HeaderMap,
    Path(study): Path<String>,
) -> Response {
    metadata(&s, &h, query(&viewer, study, None, None)).await
}

pub async fn series_metadata(
    State(s): State<Https>,
    viewer: Viewer,
    h: HeaderMap,
    Path((study, series)): Path<(String, String)>,
) -> Response {
    metadata(&s, &h, query(&viewer, study, Some(series), None)).await
}

pub async fn instance_metadata(
    State(s): State<Https>,
    viewer: Viewer,
    h: HeaderMap,
    Path((study, series, sop)): Path<(String, String, String)>,
) -> Response {
    metadata(&s, &h, query(&viewer, study, Some(series), Some(sop))).await
}

/// Where the pixel data's value starts and how long it is, found by its tag after the
/// header (explicit or implicit VR little endian) and checked against the length the
/// image attributes give.
fn pixel_data(head: &[u8], expected: u64) -> Option<u64> {
    let tag = [0xE0, 0x7F, 0x10, 0x00];
    let mut at = head.len();
    while let Some(i) = head[..at].windows(4).rposition(|w| w == tag) {
        at = i;
        let rest = &head[i + 4..];
        let explicit =
            rest.len() >= 8 && (&rest[..2] == b"OB" || &rest[..2] == b"OW") && rest[2..4] == [0, 0];
        if explicit
            && u64::from(u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]])) == expected
        {
            return Some((i + 12) as u64);
        }
        if rest.len() >= 4
            && u64::from(u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]])) == expected
        {
            return Some((i + 8) as u64);
        }
    }
    None
}

fn number(obj: &dicom_object::InMemDicomObject, tag: dicom_core::Tag) -> Option<u64> {
    obj.get(tag).and_then(|e| e.to_int::<u64>().ok())
}

/// An uncompressed instance opened at its pixel data: frame `n` (1-based) is `size`
/// bytes at `start + (n - 1) * size`.
struct NativeFrames {
    reader: SealedReader<Box<dyn ReadSeek>>,
    start: u64,
    size: u64,
    stall: std::time::Duration,
}

/// Opens the frames of `l` and checks that every `wanted` frame exists. Sizes come from
/// the file's own header, so every product is checked: a header promising more than a
/// u64 holds is refused, not wrapped.
fn open_frames(
    src: Source,
    l: &DicomLocation,
    wanted: &[u64],
    rt: &Handle,
) -> Result<NativeFrames, Problem> {
    use dicom_dictionary_std::tags;
    let internal = |e: io::Error| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "dicomweb.unreadable",
            &e.to_string(),
        )
    };
    let unsupported = |why: &str| {
        Problem::new(
            StatusCode::NOT_ACCEPTABLE,
            "dicomweb.frames_unsupported",
            why,
        )
    };
    if !NATIVE.contains(&l.row.transfer_syntax.as_str()) || !l.path.is_empty() {
        return Err(unsupported(&format!(
            "frames are served for uncompressed little-endian instances stored on their own; this one is {}",
            l.row.transfer_syntax
        )));
    }
    let stall = src.stall;
    let mut r = src.open(rt).map_err(internal)?;
    let obj = read_header(&mut r, HeaderLimits::default()).map_err(|c| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "dicomweb.unreadable",
            &c.message,
        )
    })?;
    let (rows, cols) = (
        number(&obj, tags::ROWS).unwrap_or(0),
        number(&obj, tags::COLUMNS).unwrap_or(0),
    );
    let spp = number(&obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
    let bits = number(&obj, tags::BITS_ALLOCATED).unwrap_or(16);
    let frames = number(&obj, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1);
    let Some(size) = rows
        .checked_mul(cols)
        .and_then(|p| p.checked_mul(spp))
        .and_then(|p| p.checked_mul(bits))
        .map(|b| b / 8)
    else {
        return Err(unsupported("the image dimensions overflow"));
    };
    if size == 0 {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "dicomweb.no_pixels",
            "the instance has no image",
        ));
    }
    if let Some(bad) = wanted.iter().find(|n| **n == 0 || **n > frames) {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "dicomweb.no_such_frame",
            &format!("frame {bad} of {frames}"),
        ));
    }
    let total = size
        .checked_mul(frames)
        .ok_or_else(|| unsupported("the image dimensions overflow"))?;
    let mut head = Vec::new();
    r.seek(SeekFrom::Start(0)).map_err(internal)?;
    (&mut r)
        .take(MAX_HEADER)
        .read_to_end(&mut head)
        .map_err(internal)?;
    let start = pixel_data(&head, total)
        .ok_or_else(|| unsupported("the pixel data could not be located as native frames"))?;
    Ok(NativeFrames {
        reader: r,
        start,
        size,
        stall,
    })
}

/// Streams frames `wanted` as the parts of one multipart body, a piece at a time.
fn frames_body(mut f: NativeFrames, wanted: Vec<u64>, boundary: String) -> Body {
    let (mut tx, body) = Channel::<Bytes, io::Error>::new(2);
    let rt = Handle::current();
    tokio::task::spawn_blocking(move || {
        let sent = (|| -> io::Result<()> {
            for n in wanted {
                let head =
                    format!("--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n");
                send(&rt, &mut tx, head.into_bytes(), f.stall)?;
                // `n` was checked against the frame count, whose product with `size`
                // was checked too.
                f.reader.seek(SeekFrom::Start(f.start + (n - 1) * f.size))?;
                let mut left = f.size;
                while left > 0 {
                    let mut buf =
                        vec![0u8; usize::try_from(left.min(FRAME as u64)).unwrap_or(FRAME)];
                    f.reader.read_exact(&mut buf)?;
                    left -= buf.len() as u64;
                    send(&rt, &mut tx, buf, f.stall)?;
                }
                send(&rt, &mut tx, b"\r\n".to_vec(), f.stall)?;
            }
            send(
                &rt,
                &mut tx,
                format!("--{boundary}--\r\n").into_bytes(),
                f.stall,
            )
        })();
        if let Err(e) = sent
            && e.kind() != io::ErrorKind::BrokenPipe
        {
            tracing::warn!(error = %e, "WADO-RS frames stream failed");
            tx.abort(e);
        }
    });
    Body::new(body)
}

/// A frame list, `1,3,3,2`: numbers in the order asked, repeats dropped.
fn frame_list(list: &str) -> Result<Vec<u64>, Problem> {
    let bad = || {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "dicomweb.bad_frames",
            "frames: a comma-separated list of frame numbers",
        )
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for n in list.split(',') {
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        if seen.insert(n) {
            out.push(n);
        }
        if out.len() > MAX_FRAMES {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "dicomweb.too_many_frames",
                &format!("at most {MAX_FRAMES} frames per request"),
            ));
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

pub async fn frames(
    State(s): State<Https>,
    viewer: Viewer,
    h: HeaderMap,
    Path((study, series, sop, list)): Path<(String, String, String, String)>,
) -> Response {
    if !accepts(&h, "application/octet-stream") {
        return problem(
            StatusCode::NOT_ACCEPTABLE,
            "dicomweb.not_acceptable",
            "frames are sent as multipart/related; type=\"application/octet-stream\"",
        );
    }
    let wanted = match frame_list(&list) {
        Ok(w) => w,
        Err(p) => return p.into_response(),
    };
    if let Some(r) = sealed_only(&viewer) {
        return r;
    }
    let found = match locate(&s, &query(&viewer, study, Some(series), Some(sop))).await {
        Ok(mut f) => f.remove(0),
        Err(r) => return r,
    };
    let src = match Source::of(&s, &found.object_key) {
        Ok(src) => src,
        Err(p) => return p.into_response(),
    };
    let rt = Handle::current();
    let check = wanted.clone();
    let opened = tokio::task::spawn_blocking(move || {
        open_frames(src, &found, &check, &rt).map(|f| (f, found))
    })
    .await;
    let (f, found) = match opened {
        Ok(Ok(f)) => f,
        Ok(Err(p)) => return p.into_response(),
        Err(e) => return unreadable(e),
    };
    if let Some(r) = account(&s, &viewer, std::slice::from_ref(&found)).await {
        return r;
    }
    let b = boundary();
    multipart_response(
        frames_body(f, wanted, b.clone()),
        &b,
        "application/octet-stream",
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn frame_lists_are_deduplicated_and_capped() {
        assert_eq!(super::frame_list("3, 1,3,2,1").unwrap(), [3, 1, 2]);
        assert!(super::frame_list("").is_err());
        assert!(super::frame_list("1,x").is_err());
        let many: Vec<String> = (1..=2000).map(|n| n.to_string()).collect();
        let err = super::frame_list(&many.join(",")).unwrap_err();
        assert_eq!(err.code(), "dicomweb.too_many_frames");
        let repeated = vec!["7"; 100_000].join(",");
        assert_eq!(
            super::frame_list(&repeated).unwrap(),
            [7],
            "repeats cost nothing"
        );
    }

    #[test]
    fn pixel_data_is_found_by_tag_and_length() {
        let mut f = vec![0u8; 10];
        f.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0, 8, 0, 0, 0]);
        f.extend_from_slice(&[1; 8]);
        assert_eq!(super::pixel_data(&f, 8), Some(22));
        assert_eq!(super::pixel_data(&f, 9), None);
        let mut g = vec![0u8; 4];
        g.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, 4, 0, 0, 0, 9, 9, 9, 9]);
        assert_eq!(super::pixel_data(&g, 4), Some(12));
    }
}
