//! STOW-RS: `POST /dicomweb/studies[/{study}]` with `multipart/related;
//! type="application/dicom"` (PS3.18 §10.5). Each part is streamed into its own ingest
//! session — plain DICOM is sealed to the gateway as it arrives (for profiles in
//! `[dicomweb] plain_profiles`), sealed parts are taken as they are — and named
//! `dicomweb/studies/<study>/…` when the request names a study, so the DICOM check
//! fails a part of another study (`dicomweb.study_mismatch`). The answer waits (up to
//! `[dicomweb] stow_wait_secs`) until every part is checked, then lists stored parts in
//! ReferencedSOPSequence and failed ones in FailedSOPSequence:
//! 200 all stored, 202 some, 409 none; 400 malformed body, 415 wrong media type.
//!
//! FailureReason: 0xC000 cannot understand (not DICOM, not readable, not for us),
//! 0xA900 instance of another study than the request's, 0xA700 out of resources
//! (quota, size), 0x0110 any other failed check. Each failed item also carries the
//! refusal's machine code as ErrorComment (0000,0902).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;

mod answer;

use crate::frontends::https::auth::Caller;
use crate::frontends::https::dicomweb::base_url;
use crate::frontends::https::dicomweb::multipart::{Event, Reader, related_params};
use crate::frontends::https::{Https, problem};
use crate::sealed::Sealer;
use crate::session::{IngestCore, IngestError, Upload};
use answer::respond;

/// Where sealed output collects until it is handed to the session.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<u8>>>);

impl Write for Collector {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Collector {
    fn take(&self) -> Vec<u8> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

/// Bytes handed to the session at a time.
const BLOCK: usize = 1 << 20;
const SEALED_MAGIC: &[u8] = b"age-encryption.org/v1";

enum Mode {
    /// Not enough bytes yet to tell sealed from plain.
    Unknown(Vec<u8>),
    Sealed(Vec<u8>),
    Plain(Box<Sealer<Collector>>, Collector),
}

/// One part on its way into a session.
struct Part {
    upload: Upload,
    mode: Mode,
    offset: u64,
}

/// What became of one part.
pub(super) enum Outcome {
    /// Accepted: its check result will say the rest.
    Accepted(String),
    /// Refused before acceptance, with its code.
    Refused(String),
}

impl Part {
    async fn write(
        &mut self,
        data: Vec<u8>,
        core: &IngestCore,
        plain_ok: bool,
    ) -> Result<(), IngestError> {
        if let Mode::Unknown(head) = &mut self.mode {
            head.extend_from_slice(&data);
            if head.len() < SEALED_MAGIC.len() {
                return Ok(());
            }
            let head = std::mem::take(head);
            self.mode = if head.starts_with(SEALED_MAGIC) {
                Mode::Sealed(Vec::new())
            } else if plain_ok {
                let out = Collector::default();
                let sealer = Sealer::new(&[core.identity().to_public()], out.clone())
                    .map_err(|e| IngestError::Io(std::io::Error::other(e)))?;
                Mode::Plain(Box::new(sealer), out)
            } else {
                return Err(IngestError::Sealed(crate::sealed::SealedError::NotAgeFile));
            };
            return Box::pin(self.write(head, core, plain_ok)).await;
        }
        let ready = match &mut self.mode {
            Mode::Sealed(buf) => {
                buf.extend_from_slice(&data);
                (buf.len() >= BLOCK).then(|| std::mem::take(buf))
            }
            Mode::Plain(sealer, out) => {
                sealer.write_all(&data)?;
                let len = out.0.lock().map(|v| v.len()).unwrap_or(0);
                (len >= BLOCK).then(|| out.take())
            }
            Mode::Unknown(_) => None,
        };
        match ready {
            Some(block) => self.send(block).await,
            None => Ok(()),
        }
    }

    async fn send(&mut self, block: Vec<u8>) -> Result<(), IngestError> {
        let n = block.len() as u64;
        self.upload.write_at(self.offset, block).await?;
        self.offset += n;
        Ok(())
    }

    async fn finish(mut self, core: &IngestCore, plain_ok: bool) -> Result<String, IngestError> {
        if let Mode::Unknown(head) = &mut self.mode {
            let head = std::mem::take(head);
            // Too short to be either: sealed-or-not is decided on what there is.
            self.mode = Mode::Sealed(Vec::new());
            if !head.starts_with(SEALED_MAGIC) && plain_ok {
                let out = Collector::default();
                let sealer = Sealer::new(&[core.identity().to_public()], out.clone())
                    .map_err(|e| IngestError::Io(std::io::Error::other(e)))?;
                self.mode = Mode::Plain(Box::new(sealer), out);
            }
            Box::pin(self.write(head, core, plain_ok)).await?;
        }
        let rest = match std::mem::replace(&mut self.mode, Mode::Sealed(Vec::new())) {
            Mode::Sealed(buf) => buf,
            Mode::Plain(sealer, out) => {
                sealer.finish()?;
                out.take()
            }
            Mode::Unknown(head) => head,
        };
        if !rest.is_empty() {
            self.send(rest).await?;
        }
        let id = self.upload.id().to_string();
        self.upload.finish().await?;
        Ok(id)
    }
}

fn random_id() -> String {
    let mut b = [0u8; 6];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    hex::encode(b)
}

pub async fn store(
    State(s): State<Https>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    stow(&s, &caller, None, &headers, body).await
}

pub async fn store_in_study(
    State(s): State<Https>,
    caller: Caller,
    Path(study): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    stow(&s, &caller, Some(study), &headers, body).await
}

fn status_only(status: StatusCode, code: &str, detail: &str) -> Response {
    problem(status, code, detail)
}

async fn stow(
    s: &Https,
    caller: &Caller,
    study: Option<String>,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = match refusal(headers, ct) {
        Ok(b) => b,
        Err(r) => {
            // Read (a bounded amount of) what the client is still sending, so that it
            // sees the answer instead of a reset connection.
            crate::frontends::https::tus::drain(s, Some(body)).await;
            return *r;
        }
    };
    accept(s, caller, study, headers, body, &boundary).await
}

/// The boundary of an acceptable request, or the answer refusing it on its headers.
fn refusal(headers: &HeaderMap, ct: &str) -> Result<String, Box<Response>> {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    if ![
        "application/dicom+json",
        "application/json",
        "*/*",
        "application/*",
    ]
    .iter()
    .any(|a| accept.contains(a))
    {
        return Err(Box::new(status_only(
            StatusCode::NOT_ACCEPTABLE,
            "dicomweb.not_acceptable",
            "the answer is application/dicom+json",
        )));
    }
    let Some((boundary, typ)) = related_params(ct) else {
        return Err(Box::new(status_only(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "dicomweb.media_type",
            "send multipart/related; type=\"application/dicom\"; boundary=…",
        )));
    };
    if typ
        .as_deref()
        .is_some_and(|t| !t.eq_ignore_ascii_case("application/dicom"))
    {
        return Err(Box::new(status_only(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "dicomweb.media_type",
            "only application/dicom parts are stored (no DICOM XML/JSON + bulk data)",
        )));
    }
    Ok(boundary)
}

async fn accept(
    s: &Https,
    caller: &Caller,
    study: Option<String>,
    headers: &HeaderMap,
    body: Body,
    boundary: &str,
) -> Response {
    let snapshot = s.app.tenants.snapshot();
    let profile = snapshot.tenant(&caller.who.tenant).map(|t| t.profile);
    drop(snapshot);
    let plain_ok = profile.is_some_and(|p| s.app.config.dicomweb.plain_profiles.contains(&p));
    let outcomes = match receive(s, caller, study.as_deref(), boundary, body, plain_ok).await {
        Ok(o) => o,
        Err(r) => return r,
    };
    if outcomes.is_empty() {
        return status_only(
            StatusCode::BAD_REQUEST,
            "dicomweb.no_parts",
            "the body holds no parts",
        );
    }
    let wait = Duration::from_secs(s.app.config.dicomweb.stow_wait_secs);
    respond(s, outcomes, study.as_deref(), &base_url(headers), wait).await
}

/// Streams every part into a session; the outcome of each, in order.
async fn receive(
    s: &Https,
    caller: &Caller,
    study: Option<&str>,
    boundary: &str,
    mut body: Body,
    plain_ok: bool,
) -> Result<Vec<Outcome>, Response> {
    let core = &s.app.ingest;
    let request = random_id();
    let mut reader = Reader::new(boundary);
    let mut current: Option<Part> = None;
    let mut failed_current: Option<String> = None;
    let mut outcomes = Vec::new();
    let bad_body =
        |detail: String| status_only(StatusCode::BAD_REQUEST, "dicomweb.bad_body", &detail);
    loop {
        let frame = body.frame().await;
        let data = match frame {
            None => None,
            Some(Ok(f)) => f.into_data().ok(),
            Some(Err(e)) => {
                abandon(core, current.take()).await;
                return Err(bad_body(format!("the body broke off: {e}")));
            }
        };
        let done = data.is_none();
        if let Some(d) = data {
            reader.feed(&d);
        }
        loop {
            let event = match reader.next_event() {
                Ok(Some(e)) => e,
                Ok(None) => break,
                Err(e) => {
                    abandon(core, current.take()).await;
                    return Err(bad_body(e.to_string()));
                }
            };
            match event {
                Event::Part(part_headers) => {
                    close(
                        core,
                        &mut current,
                        &mut failed_current,
                        &mut outcomes,
                        plain_ok,
                    )
                    .await;
                    let ct = part_headers
                        .iter()
                        .find(|(k, _)| k == "content-type")
                        .map(|(_, v)| v.as_str());
                    if ct.is_some_and(|c| !c.to_ascii_lowercase().starts_with("application/dicom"))
                    {
                        failed_current = Some("dicomweb.part_media_type".into());
                        continue;
                    }
                    let n = outcomes.len() + 1;
                    let name = match study {
                        Some(st) => format!("dicomweb/studies/{st}/{request}-{n}.dcm"),
                        None => format!("dicomweb/stow/{request}-{n}.dcm"),
                    };
                    let who = crate::session::Principal {
                        tenant: caller.who.tenant.clone(),
                        protocol: "dicomweb",
                    };
                    match core.open(&who, &name, None).await {
                        Ok(upload) => {
                            current = Some(Part {
                                upload,
                                mode: Mode::Unknown(Vec::new()),
                                offset: 0,
                            });
                        }
                        Err(e) => failed_current = Some(e.code().to_string()),
                    }
                }
                Event::Data(d) => {
                    if let Some(p) = current.as_mut()
                        && let Err(e) = p.write(d, core, plain_ok).await
                    {
                        failed_current = Some(e.code().to_string());
                        abandon(core, current.take()).await;
                    }
                }
                Event::End => {
                    close(
                        core,
                        &mut current,
                        &mut failed_current,
                        &mut outcomes,
                        plain_ok,
                    )
                    .await;
                }
            }
        }
        if done {
            break;
        }
    }
    if let Err(e) = reader.finish() {
        abandon(core, current.take()).await;
        return Err(bad_body(e.to_string()));
    }
    Ok(outcomes)
}

/// Ends the current part, if any: finished into acceptance, or recorded as refused.
async fn close(
    core: &Arc<IngestCore>,
    current: &mut Option<Part>,
    failed: &mut Option<String>,
    outcomes: &mut Vec<Outcome>,
    plain_ok: bool,
) {
    if let Some(code) = failed.take() {
        outcomes.push(Outcome::Refused(code));
    } else if let Some(p) = current.take() {
        outcomes.push(match p.finish(core, plain_ok).await {
            Ok(id) => Outcome::Accepted(id),
            Err(e) => Outcome::Refused(e.code().to_string()),
        });
    }
}

/// A part that will not be finished gives its upload up at once.
async fn abandon(core: &Arc<IngestCore>, part: Option<Part>) {
    let Some(p) = part else {
        return;
    };
    let id = p.upload.id().to_string();
    drop(p);
    if let Ok(Some(row)) = core.catalog().upload(&id).await {
        let _ = core
            .abandon(&row, "the STOW-RS part did not complete")
            .await;
    }
}
