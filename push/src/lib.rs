//! `gateway push`: the hospital's client. Seals files on the fly to the gateway's
//! recipient (files already sealed are sent as they are), uploads files and folders
//! with tus, several at a time, and resumes after an interruption or a restart of the
//! client itself from a small state file. With `--wait` it waits for every check
//! result; the exit code says whether all passed.

mod client;
mod plan;
mod state;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use client::{Remote, TusClient};
pub use plan::{Item, closes_a_set, plan};

use gateway_sealed::{Recipient, SealedSource};

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}: {1}")]
    Local(PathBuf, std::io::Error),
    #[error("`{0}`: file names must be UTF-8")]
    Name(String),
    #[error("state file {0}: {1}")]
    State(PathBuf, String),
    #[error("cannot reach the gateway: {0}")]
    Transport(String),
    #[error("refused ({status}) {code}: {detail}")]
    Refused {
        status: u16,
        code: String,
        detail: String,
    },
    #[error("the gateway holds {0} bytes; continuing from there")]
    OffsetMoved(u64),
    #[error(transparent)]
    Sealed(#[from] gateway_sealed::SealedError),
}

impl PushError {
    /// A stable code for `--json` output.
    pub fn code(&self) -> String {
        match self {
            PushError::Refused { code, .. } => code.clone(),
            PushError::Usage(_) => "push.usage".into(),
            PushError::Local(..) | PushError::Name(_) => "push.local".into(),
            PushError::State(..) => "push.state".into(),
            PushError::Transport(_) => "push.transport".into(),
            PushError::OffsetMoved(_) => "ingest.offset_mismatch".into(),
            PushError::Sealed(e) => e.code().into(),
        }
    }

    /// Worth trying again (the network, or a gateway restarting).
    pub fn transient(&self) -> bool {
        match self {
            PushError::Transport(_) => true,
            PushError::Refused { status, .. } => matches!(status, 423 | 429 | 502..=504),
            _ => false,
        }
    }
}

pub struct PushOptions {
    pub url: String,
    pub token: String,
    pub recipient: Option<Recipient>,
    pub ca_cert: Option<PathBuf>,
    pub insecure: bool,
    pub parallel: usize,
    pub chunk_bytes: usize,
    pub state: PathBuf,
    pub prefix: String,
    pub wait: Option<Duration>,
    /// Bytes per second per file at most (a hospital's shared uplink).
    pub rate: Option<u64>,
    pub report: Report,
}

/// How `push` tells what happens: progress bars on a terminal, JSON lines otherwise.
#[derive(Clone)]
pub enum Report {
    Bars(indicatif::MultiProgress),
    Json,
    Quiet,
}

impl Report {
    fn event(&self, v: serde_json::Value) {
        match self {
            Report::Json => println!("{v}"),
            Report::Bars(m) => {
                if v["event"] == "failed" || v["event"] == "result" {
                    let _ = m.println(format!(
                        "{} {} {}",
                        v["file"].as_str().unwrap_or(""),
                        v["status"].as_str().or(v["code"].as_str()).unwrap_or(""),
                        v["detail"].as_str().unwrap_or("")
                    ));
                }
            }
            Report::Quiet => {}
        }
    }

    fn bar(&self, name: &str, len: u64) -> indicatif::ProgressBar {
        match self {
            Report::Bars(m) => {
                let style = indicatif::ProgressStyle::with_template(
                    "{msg:40!} {bar:30} {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
                m.add(
                    indicatif::ProgressBar::new(len)
                        .with_style(style)
                        .with_message(name.to_string()),
                )
            }
            _ => indicatif::ProgressBar::hidden(),
        }
    }
}

/// What happened to each file.
#[derive(Debug, Default)]
pub struct Summary {
    pub accepted: Vec<(String, String)>,
    pub failed: Vec<(String, String)>,
    /// Uploads whose checks failed (with `--wait`).
    pub check_failed: Vec<String>,
}

impl Summary {
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.check_failed.is_empty()
    }
}

struct Ctx {
    /// Bytes of every file together (hidden unless bars are shown).
    overall: indicatif::ProgressBar,
    client: TusClient,
    recipient: Recipient,
    state: state::State,
    opts: PushOptions,
}

/// Sends everything under `paths`.
pub async fn push(paths: &[PathBuf], opts: PushOptions) -> Result<Summary, PushError> {
    let (first, last) = plan(paths, &opts.prefix)?;
    let client = TusClient::new(
        &opts.url,
        &opts.token,
        opts.ca_cert.as_deref(),
        opts.insecure,
    )?;
    let recipient = match &opts.recipient {
        Some(r) => r.clone(),
        None => client.recipient().await?,
    };
    let state = state::State::load(&opts.state)?;
    let total: u64 = first
        .iter()
        .chain(&last)
        .filter_map(|i| std::fs::metadata(&i.local).ok())
        .map(|m| m.len())
        .sum();
    let overall = opts.report.bar("all files", total);
    let ctx = Arc::new(Ctx {
        overall,
        client,
        recipient,
        state,
        opts,
    });
    let mut summary = Summary::default();
    // Set-closing files (DICOMDIR, manifests) only after every other file is accepted.
    for round in [first, last] {
        run_round(&ctx, round, &mut summary).await;
    }
    ctx.overall.finish();
    if let Some(limit) = ctx.opts.wait {
        wait_for_results(&ctx, &mut summary, limit).await;
    }
    Ok(summary)
}

async fn run_round(ctx: &Arc<Ctx>, items: Vec<Item>, summary: &mut Summary) {
    let permits = Arc::new(tokio::sync::Semaphore::new(ctx.opts.parallel.max(1)));
    let mut set = tokio::task::JoinSet::new();
    for item in items {
        let (ctx, permits) = (ctx.clone(), permits.clone());
        set.spawn(async move {
            let _p = permits.acquire_owned().await;
            let r = send_file(&ctx, &item).await;
            (item, r)
        });
    }
    while let Some(done) = set.join_next().await {
        let Ok((item, r)) = done else { continue };
        match r {
            Ok(url) => {
                ctx.opts.report.event(serde_json::json!({
                    "event": "accepted", "file": item.name, "upload": url,
                }));
                summary.accepted.push((item.name, url));
            }
            Err(e) => {
                ctx.opts.report.event(serde_json::json!({
                    "event": "failed", "file": item.name, "code": e.code(), "detail": e.to_string(),
                }));
                summary.failed.push((item.name, e.code()));
            }
        }
    }
}

/// Where the bytes come from: the file itself if sealed, otherwise sealed on the fly.
enum Source {
    Sealed(Box<SealedSource>),
    AsIs(std::fs::File, u64),
}

impl Source {
    fn len(&self) -> u64 {
        match self {
            Source::Sealed(s) => s.len(),
            Source::AsIs(_, n) => *n,
        }
    }

    fn read_at(&mut self, offset: u64, max: usize) -> std::io::Result<Vec<u8>> {
        match self {
            Source::Sealed(s) => s.read_at(offset, max),
            Source::AsIs(f, len) => {
                use std::os::unix::fs::FileExt;
                let n = (*len - offset.min(*len)).min(max as u64) as usize;
                let mut buf = vec![0u8; n];
                f.read_exact_at(&mut buf, offset)?;
                Ok(buf)
            }
        }
    }
}

fn is_sealed(path: &Path) -> Result<bool, PushError> {
    use std::io::Read;
    let mut head = [0u8; 22];
    let mut f = std::fs::File::open(path).map_err(|e| PushError::Local(path.into(), e))?;
    let n = f
        .read(&mut head)
        .map_err(|e| PushError::Local(path.into(), e))?;
    Ok(&head[..n] == b"age-encryption.org/v1\n")
}

/// Sends one file to the end (resuming what the state file knows); returns its URL.
async fn send_file(ctx: &Ctx, item: &Item) -> Result<String, PushError> {
    let key = state::key_of(&item.local)?;
    let mut entry = ctx.state.get(&key).unwrap_or(state::Entry {
        name: item.name.clone(),
        url: None,
        seed: None,
    });
    let source = if is_sealed(&item.local)? {
        let f = std::fs::File::open(&item.local)
            .map_err(|e| PushError::Local(item.local.clone(), e))?;
        let len = f
            .metadata()
            .map_err(|e| PushError::Local(item.local.clone(), e))?
            .len();
        Source::AsIs(f, len)
    } else {
        let seed = match entry.seed.as_deref().and_then(|h| hex::decode(h).ok()) {
            Some(s) if s.len() == 32 => <[u8; 32]>::try_from(s.as_slice()).unwrap_or_default(),
            _ => {
                let s = gateway_sealed::random_seed()?;
                entry.seed = Some(hex::encode(s));
                ctx.state.set(&key, Some(entry.clone()))?;
                s
            }
        };
        Source::Sealed(Box::new(SealedSource::open(
            &item.local,
            std::slice::from_ref(&ctx.recipient),
            &seed,
        )?))
    };
    let len = source.len();
    let mut source = Some(source);
    let bar = ctx.opts.report.bar(&item.name, len);
    let mut tries = 0;
    let result = loop {
        match upload(ctx, &key, &mut entry, &mut source, len, &bar).await {
            Ok(url) => break Ok(url),
            Err(e) if e.transient() && tries < 8 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(250 << tries.min(5))).await;
            }
            Err(e) => break Err(e),
        }
    };
    bar.finish();
    if result.is_ok() {
        // Accepted: the seed and URL are of no further use (and are secrets).
        ctx.state.set(&key, None)?;
    }
    result
}

/// Sleeps as long as `rate` (bytes per second) asks, given `sent` more bytes.
async fn pace(rate: Option<u64>, paced: &mut (Instant, u64), sent: u64) {
    let Some(rate) = rate.filter(|r| *r > 0) else {
        return;
    };
    paced.1 += sent;
    let due = Duration::from_secs_f64(paced.1 as f64 / rate as f64);
    if let Some(wait) = due.checked_sub(paced.0.elapsed()) {
        tokio::time::sleep(wait).await;
    }
}

/// Reads the next piece on a blocking thread (sealing is CPU work, reading is I/O).
async fn read_piece(
    slot: &mut Option<Source>,
    offset: u64,
    max: usize,
) -> Result<Vec<u8>, PushError> {
    let mut source = slot
        .take()
        .ok_or_else(|| PushError::Transport("source lost after a failed read".into()))?;
    let (piece, source) =
        tokio::task::spawn_blocking(move || (source.read_at(offset, max), source))
            .await
            .map_err(|e| PushError::Transport(e.to_string()))?;
    *slot = Some(source);
    piece.map_err(|e| PushError::Transport(format!("reading the local file: {e}")))
}

/// One attempt: find or create the upload, then append until it is complete.
async fn upload(
    ctx: &Ctx,
    key: &str,
    entry: &mut state::Entry,
    source: &mut Option<Source>,
    len: u64,
    bar: &indicatif::ProgressBar,
) -> Result<String, PushError> {
    let mut offset = 0;
    let mut url = None;
    if let Some(u) = entry.url.clone()
        && let Remote::At { offset: o, length } = ctx.client.remote(&u).await?
        && length.is_none_or(|l| l == len)
    {
        offset = o;
        url = Some(u);
    }
    let url = match url {
        Some(u) => u,
        None => {
            let u = ctx.client.create(&entry.name, len).await?;
            entry.url = Some(u.clone());
            ctx.state.set(key, Some(entry.clone()))?;
            u
        }
    };
    ctx.opts.report.event(serde_json::json!({
        "event": "started", "file": entry.name, "upload": url, "offset": offset, "length": len,
    }));
    let started = Instant::now();
    let mut paced = (Instant::now(), 0u64);
    while offset < len {
        bar.set_position(offset);
        let piece = read_piece(source, offset, ctx.opts.chunk_bytes).await?;
        let sent = piece.len() as u64;
        let before = offset;
        offset = match ctx.client.append(&url, offset, piece).await {
            Ok(o) => o,
            Err(PushError::OffsetMoved(o)) => o,
            Err(e) => return Err(e),
        };
        // Sealed bytes, close enough to the plaintext sizes the overall bar counts.
        ctx.overall.inc(offset.saturating_sub(before));
        pace(ctx.opts.rate, &mut paced, sent).await;
    }
    bar.set_position(len);
    ctx.opts.report.event(serde_json::json!({
        "event": "sent", "file": entry.name, "bytes": len,
        "seconds": started.elapsed().as_secs_f64(),
    }));
    Ok(url)
}

async fn wait_for_results(ctx: &Ctx, summary: &mut Summary, limit: Duration) {
    let deadline = Instant::now() + limit;
    for (name, url) in &summary.accepted {
        loop {
            match ctx.client.result(url).await {
                Ok(r) if r["status"] == "passed" || r["status"] == "failed" => {
                    let failed = r["status"] == "failed";
                    let codes: Vec<&str> = r["checks"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter(|c| c["severity"] == "error")
                                .filter_map(|c| c["code"].as_str())
                                .collect()
                        })
                        .unwrap_or_default();
                    ctx.opts.report.event(serde_json::json!({
                        "event": "result", "file": name, "status": r["status"], "errors": codes,
                        "detail": codes.join(", "),
                    }));
                    if failed {
                        summary.check_failed.push(name.clone());
                    }
                    break;
                }
                _ if Instant::now() > deadline => {
                    ctx.opts.report.event(serde_json::json!({
                        "event": "result", "file": name, "status": "timeout",
                    }));
                    summary.check_failed.push(name.clone());
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }
}
