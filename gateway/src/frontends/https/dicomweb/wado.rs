//! WADO-RS: retrieve studies, series and instances as `multipart/related;
//! type="application/dicom"`, their metadata as DICOM JSON, and frames of uncompressed
//! images as `application/octet-stream` parts (PS3.18 §10.4; frames.rs). Everything streams from
//! storage, decrypting on the fly; an instance inside a ZIP batch is read out of the
//! archive the same way. Compressed pixel data cannot be cut into frames here: 406.
//!
//! Retrieval is a download like `/v1/files/{id}/content`: scoped to the caller's
//! tenants, counted for a reviewer (`file.downloaded`, audit), and refused to a
//! reviewer whose files must reach it sealed (`age_recipient`): WADO-RS serves plain
//! DICOM. A frame list is deduplicated and capped, and frames stream in pieces.

use std::io::{self, Read};

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
pub(super) const FRAME: usize = 1 << 20;
/// Largest header read for metadata and frame offsets.
pub(super) const MAX_HEADER: u64 = 64 << 20;

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

pub(super) fn accepts(headers: &HeaderMap, media: &str) -> bool {
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

pub(super) fn send(
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

pub(super) fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
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
