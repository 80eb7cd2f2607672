//! The run: closed-loop workers upload as simulated hospitals (tus or SFTP, by the
//! scenario's mix) until a bound is reached; classes with their own `workers` get
//! dedicated ones. A follower reads the gateway's event feed as a reviewer and stamps
//! each file when it is indexed or rejected (`feed`). Files are generated into a
//! temporary directory and sealed on the fly from there (`SealedSource`), so even 4 GiB
//! files cost no memory.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use gateway::push::TusClient;
use gateway::sealed::Recipient;
use russh::keys::PrivateKey;

use crate::feed;
use crate::job::Job;
use crate::report::{Record, Report, Sample};
use crate::scenario::{Class, Rng, Scenario};

/// Bytes read from the sealed source per request (tus PATCH, SFTP writes).
pub const CHUNK: usize = 8 << 20;

pub struct Target {
    pub url: String,
    pub ca_cert: Option<PathBuf>,
    pub insecure: bool,
    /// The gateway's process, to sample its RSS and CPU.
    pub pid: Option<u32>,
    /// The gateway's SFTP listener (needed when the mix has SFTP).
    pub sftp: Option<SocketAddr>,
}

#[derive(Default)]
pub struct Shared {
    files: u64,
    bytes: u64,
    pub stop: bool,
    /// The run is over: the sampler stops.
    pub finished: bool,
    /// Every worker has finished and pushed its records.
    pub sent: bool,
    pub records: Vec<Record>,
    /// file name → (seconds since start, outcome, SHA-256) from the event feed.
    pub seen: HashMap<String, (f64, String, String)>,
    /// SHA-256 of every file indexed → seconds since start (STOW parts are named by
    /// the gateway, so they are found by content).
    pub indexed_sha: HashMap<String, f64>,
    pub peak_rss_kib: u64,
    pub samples: Vec<Sample>,
    /// Open loop: arrivals that found every slot busy and waited.
    pub delayed_arrivals: u64,
}

/// Sleeps as long as a link of `mb_per_s` would still need for `sent` bytes.
pub async fn pace(started: Instant, sent: u64, mb_per_s: f64) {
    if mb_per_s <= 0.0 {
        return;
    }
    let due = Duration::from_secs_f64(sent as f64 / (mb_per_s * 1e6));
    if let Some(wait) = due.checked_sub(started.elapsed()) {
        tokio::time::sleep(wait).await;
    }
}

fn http_client(t: &Target) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .timeout(Duration::from_secs(90))
        .tls_danger_accept_invalid_certs(t.insecure);
    if let Some(pem) = &t.ca_cert {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(pem)?)?);
    }
    Ok(b.build()?)
}

/// What every worker shares.
pub struct Ctx {
    pub s: Scenario,
    /// For STOW-RS (the tus clients keep their own).
    pub http: reqwest::Client,
    pub url: String,
    pub tus: Vec<TusClient>,
    pub keys: Vec<Arc<PrivateKey>>,
    pub sftp: Option<SocketAddr>,
    pub recipient: Recipient,
    shared: Arc<Mutex<Shared>>,
    pub dir: PathBuf,
    t0: Instant,
}

impl Ctx {
    /// Takes `files` and `bytes` from the run's budget; false once a bound is reached.
    pub fn reserve(&self, files: u64, bytes: u64) -> bool {
        let mut g = self.shared.lock().expect("state");
        let s = &self.s;
        let over = self.t0.elapsed().as_secs() >= s.max_seconds
            || g.bytes + bytes > s.max_bytes
            || (s.max_files > 0 && g.files + files > s.max_files);
        if g.stop || over {
            g.stop = true;
            return false;
        }
        g.files += files;
        g.bytes += bytes;
        true
    }

    pub fn push(&self, rec: Record) {
        self.shared.lock().expect("state").records.push(rec);
    }

    pub fn now(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }
}

async fn setup(s: &Scenario, target: &Target) -> Result<Ctx> {
    anyhow::ensure!(
        !s.uses_sftp() || target.sftp.is_some(),
        "the scenario sends over SFTP: give the gateway's SFTP address (--sftp 127.0.0.1:PORT)"
    );
    let tus: Vec<TusClient> = (0..s.hospitals)
        .map(|i| {
            TusClient::new(
                &target.url,
                &s.token(i),
                target.ca_cert.as_deref(),
                target.insecure,
            )
        })
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let recipient = tus[0]
        .recipient()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let keys = if s.uses_sftp() {
        (0..s.hospitals).map(|i| Arc::new(s.ssh_key(i))).collect()
    } else {
        Vec::new()
    };
    Ok(Ctx {
        s: s.clone(),
        http: http_client(target)?,
        url: target.url.trim_end_matches('/').to_string(),
        tus,
        keys,
        sftp: target.sftp,
        recipient,
        shared: Arc::new(Mutex::new(Shared::default())),
        dir: PathBuf::new(),
        t0: Instant::now(),
    })
}

/// SIGINT or SIGTERM: no new jobs; those under way finish and are reported.
async fn stop_on_signal(shared: Arc<Mutex<Shared>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    if let Ok(mut g) = shared.lock() {
        g.stop = true;
    }
}

/// A record's outcome from the feed: by name, or for STOW (named by the gateway) by
/// content. An indexed file whose digest is not the one sent is `wrong-digest`.
fn settle(
    r: &mut Record,
    seen: &HashMap<String, (f64, String, String)>,
    indexed: &HashMap<String, f64>,
) {
    if r.protocol == "stow" {
        if let Some(at) = indexed.get(&r.sha256) {
            r.done_s = Some(*at);
            if r.outcome == "accepted" {
                r.outcome = "indexed".into();
            }
        }
        return;
    }
    if let Some((at, outcome, sha)) = seen.get(&r.name) {
        if r.outcome == "accepted" {
            r.outcome = if outcome == "indexed" && !r.sha256.is_empty() && sha != &r.sha256 {
                "wrong-digest".into()
            } else {
                outcome.clone()
            };
        }
        r.done_s = Some(*at);
    }
}

/// A closed-loop worker: one job after another from `pool` until the budget is spent.
async fn worker(ctx: Arc<Ctx>, w: u32, pool: Vec<(Class, u32)>) {
    let mut rng = Rng::new(ctx.s.seed.wrapping_add(u64::from(w) * 7919));
    for n in 1u64.. {
        let Some(job) = Job::next(&ctx, &pool, &mut rng, format!("lt-w{w}-{n}")) else {
            return;
        };
        job.run(&ctx).await;
    }
}

/// Open loop: jobs arrive at `arrival_per_s` on average (exponential gaps), each sent
/// on its own, at most `concurrency` at once; an arrival finding them all busy waits
/// for one (counted in the report, since the offered rate was then not met).
async fn arrivals(ctx: Arc<Ctx>, pool: Vec<(Class, u32)>, rate: f64) {
    let mut rng = Rng::new(ctx.s.seed ^ 0xA11);
    let slots = Arc::new(tokio::sync::Semaphore::new(ctx.s.concurrency as usize));
    let mut next = tokio::time::Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for n in 1u64.. {
        let unit = ((rng.next() >> 11) as f64 / (1u64 << 53) as f64).max(1e-12);
        next += Duration::from_secs_f64(-unit.ln() / rate);
        tokio::time::sleep_until(next).await;
        let Some(job) = Job::next(&ctx, &pool, &mut rng, format!("lt-a-{n}")) else {
            break;
        };
        let slot = match slots.clone().try_acquire_owned() {
            Ok(s) => s,
            Err(_) => {
                ctx.shared.lock().expect("state").delayed_arrivals += 1;
                let Ok(s) = slots.clone().acquire_owned().await else {
                    break;
                };
                s
            }
        };
        let ctx = ctx.clone();
        running.spawn(async move {
            job.run(&ctx).await;
            drop(slot);
        });
    }
    while running.join_next().await.is_some() {}
}

/// The workers: the common pool (`concurrency` closed-loop workers, or open-loop
/// arrivals at `arrival_per_s`; classes by weight) and each class's dedicated ones.
fn spawn_workers(ctx: &Arc<Ctx>) -> Vec<tokio::task::JoinHandle<()>> {
    let common: Vec<(Class, u32)> = ctx
        .s
        .classes
        .iter()
        .filter(|c| c.workers == 0 && c.weight > 0)
        .map(|c| (c.clone(), c.weight))
        .collect();
    let mut handles = Vec::new();
    let mut w = 0;
    if !common.is_empty() {
        match ctx.s.arrival_per_s {
            Some(rate) => handles.push(tokio::spawn(arrivals(ctx.clone(), common, rate))),
            None => {
                for _ in 0..ctx.s.concurrency {
                    handles.push(tokio::spawn(worker(ctx.clone(), w, common.clone())));
                    w += 1;
                }
            }
        }
    }
    for c in ctx.s.classes.iter().filter(|c| c.workers > 0) {
        for _ in 0..c.workers {
            handles.push(tokio::spawn(worker(ctx.clone(), w, vec![(c.clone(), 1)])));
            w += 1;
        }
    }
    handles
}

pub async fn run(s: &Scenario, target: &Target, progress: bool) -> Result<Report> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tmp = tempfile::tempdir()?;
    let mut ctx = setup(s, target).await?;
    ctx.dir = tmp.path().to_owned();
    let ctx = Arc::new(ctx);
    let shared = ctx.shared.clone();
    let t0 = ctx.t0;
    let cpu0 = target.pid.and_then(feed::cpu_seconds);
    let follower = tokio::spawn(feed::follow(
        shared.clone(),
        http_client(target)?,
        target.url.clone(),
        s.reviewer_token(),
        t0,
    ));
    let sampler = target
        .pid
        .map(|pid| tokio::spawn(feed::sample(shared.clone(), pid, t0)));
    let bar = progress.then(|| {
        let b = indicatif::ProgressBar::new(s.max_seconds);
        b.set_style(
            indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let workers = spawn_workers(&ctx);
    tokio::spawn(stop_on_signal(shared.clone()));
    while !workers.iter().all(|w| w.is_finished()) {
        if let Some(b) = &bar {
            let g = shared.lock().expect("state");
            b.set_position(t0.elapsed().as_secs().min(s.max_seconds));
            b.set_message(format!(
                "{} files, {} MB sent, {} outcomes",
                g.records.len(),
                g.bytes / 1_000_000,
                g.seen.len()
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for w in workers {
        w.await.context("worker")?;
    }
    shared.lock().expect("state").sent = true;
    let sent_s = t0.elapsed().as_secs_f64();
    // Every accepted upload gets its outcome on the feed: wait for the last while
    // outcomes keep arriving (the gateway may still be working off a backlog), and give
    // up after a minute without one — what is missing then counts as lost.
    let mut last = (0usize, Instant::now());
    while !follower.is_finished() && last.1.elapsed() < Duration::from_secs(60) {
        let seen = shared.lock().expect("state").seen.len();
        if seen != last.0 {
            last = (seen, Instant::now());
        }
        if let Some(b) = &bar {
            b.set_message(format!("waiting for outcomes: {seen} so far"));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    follower.abort();
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let cpu = match (cpu0, target.pid.and_then(feed::cpu_seconds)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    shared.lock().expect("state").finished = true;
    if let Some(h) = sampler {
        let _ = tokio::time::timeout(Duration::from_secs(2), h).await;
    }
    let mut g = shared.lock().expect("state");
    let seen = std::mem::take(&mut g.seen);
    let indexed = std::mem::take(&mut g.indexed_sha);
    for r in g.records.iter_mut() {
        settle(r, &seen, &indexed);
    }
    let records = std::mem::take(&mut g.records);
    let samples = std::mem::take(&mut g.samples);
    Ok(Report::build(
        s,
        records,
        sent_s,
        cpu,
        g.peak_rss_kib,
        samples,
    ))
}
