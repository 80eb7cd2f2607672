//! The run: closed-loop workers upload as simulated hospitals (tus or SFTP, by the
//! scenario's mix) until a bound is reached; classes with their own `workers` get
//! dedicated ones. A follower reads the gateway's event feed as a reviewer and stamps
//! each file when it is indexed or rejected (`feed`). Files are generated into a
//! temporary directory and sealed on the fly from there (`SealedSource`), so even 4 GiB
//! files cost no memory.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use gateway::push::TusClient;
use gateway::sealed::{Recipient, SealedSource};
use russh::keys::PrivateKey;

use crate::report::{Record, Report, Sample};
use crate::scenario::{Class, Kind, Rng, Scenario};
use crate::{content, dicomdir, feed, sftp, tus};

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
    /// file name → (seconds since start, outcome) from the event feed.
    pub seen: HashMap<String, (f64, String)>,
    pub peak_rss_kib: u64,
    pub samples: Vec<Sample>,
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
struct Ctx {
    s: Scenario,
    tus: Vec<TusClient>,
    keys: Vec<Arc<PrivateKey>>,
    sftp: Option<SocketAddr>,
    recipient: Recipient,
    shared: Arc<Mutex<Shared>>,
    dir: PathBuf,
    t0: Instant,
}

impl Ctx {
    /// Takes `files` and `bytes` from the run's budget; false once a bound is reached.
    fn reserve(&self, files: u64, bytes: u64) -> bool {
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

    fn push(&self, rec: Record) {
        self.shared.lock().expect("state").records.push(rec);
    }

    fn now(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }
}

/// One hospital's way in for one job.
enum Link<'a> {
    Tus(&'a TusClient),
    Sftp {
        login: sftp::Login,
        conn: Option<Box<sftp::Conn>>,
    },
}

impl Link<'_> {
    fn protocol(&self) -> &'static str {
        match self {
            Link::Tus(_) => "tus",
            Link::Sftp { .. } => "sftp",
        }
    }

    async fn folder(&mut self, name: &str) -> Result<()> {
        if let Link::Sftp { login, conn } = self {
            if conn.is_none() {
                *conn = Some(Box::new(login.connect().await?));
            }
            if let Some(c) = conn {
                c.mkdir(&format!("/inbox/{name}")).await?;
            }
        }
        Ok(())
    }

    async fn send(
        &mut self,
        ctx: &Ctx,
        plain: &Path,
        cut: bool,
        link_mb_per_s: f64,
        rec: &mut Record,
    ) -> Result<()> {
        let mut seed = [0u8; 32];
        let salt = rec
            .name
            .bytes()
            .fold(rec.bytes, |h, b| h.rotate_left(5) ^ u64::from(b));
        Rng::new(rec.started_s.to_bits() ^ salt).fill(&mut seed);
        let recipients = std::slice::from_ref(&ctx.recipient);
        let mut src = SealedSource::open(plain, recipients, &seed)?;
        match self {
            Link::Tus(c) => {
                tus::upload(c, &rec.name.clone(), &mut src, cut, link_mb_per_s, rec).await
            }
            Link::Sftp { login, conn } => {
                let path = format!("/inbox/{}", rec.name);
                sftp::upload(login, conn, &path, &mut src, cut, link_mb_per_s, rec).await
            }
        }
    }
}

fn pick<'a, T>(items: &'a [(T, u32)], rng: &mut Rng) -> &'a T {
    let total: u64 = items.iter().map(|(_, w)| u64::from(*w)).sum();
    let mut at = rng.next() % total.max(1);
    for (item, w) in items {
        if at < u64::from(*w) {
            return item;
        }
        at -= u64::from(*w);
    }
    &items[0].0
}

/// A closed-loop worker: picks a class from `pool`, a protocol and a hospital, sends,
/// and goes again until the run's budget is spent.
async fn worker(ctx: Arc<Ctx>, w: u32, pool: Vec<(Class, u32)>) {
    let mut rng = Rng::new(ctx.s.seed.wrapping_add(u64::from(w) * 7919));
    let protocols: Vec<(String, u32)> = ctx.s.protocols.clone().into_iter().collect();
    for n in 1u64.. {
        let class = pick(&pool, &mut rng).clone();
        let protocol = pick(&protocols, &mut rng).clone();
        let h = (rng.next() % u64::from(ctx.s.hospitals)) as u32;
        let (files, bytes, count) = match class.kind {
            Kind::DicomSet => {
                let count = rng.between(
                    u64::from(class.min_instances),
                    u64::from(class.max_instances),
                );
                (
                    count + 1,
                    count * (class.min_bytes + class.max_bytes) / 2,
                    count,
                )
            }
            _ => (1, rng.between(class.min_bytes, class.max_bytes), 1),
        };
        if !ctx.reserve(files, bytes) {
            return;
        }
        let mut link = match (protocol.as_str(), ctx.sftp) {
            ("sftp", Some(addr)) => Link::Sftp {
                login: sftp::Login {
                    addr,
                    user: ctx.s.hospital(h),
                    key: ctx.keys[h as usize].clone(),
                },
                conn: None,
            },
            _ => Link::Tus(&ctx.tus[h as usize]),
        };
        let job_rng = Rng::new(rng.next());
        let tag = format!("lt-w{w}-{n}");
        if class.kind == Kind::DicomSet {
            send_set(&ctx, &mut link, &class, &tag, count as u32, job_rng).await;
        } else {
            send_one(&ctx, &mut link, &class, &tag, bytes, job_rng).await;
        }
    }
}

async fn send_one(
    ctx: &Ctx,
    link: &mut Link<'_>,
    class: &Class,
    tag: &str,
    size: u64,
    mut rng: Rng,
) {
    let name = format!("{tag}.{}", class.kind.extension());
    let plain = ctx.dir.join(&name);
    let kind = class.kind;
    let n = rng.next() % 1_000_000;
    let written = tokio::task::spawn_blocking({
        let plain = plain.clone();
        let mut file_rng = Rng::new(rng.next());
        move || content::write(kind, size, &mut file_rng, n, &plain)
    })
    .await;
    let mut rec = Record {
        class: class.name.clone(),
        protocol: link.protocol().into(),
        name,
        bytes: match written {
            Ok(Ok(b)) => b,
            _ => 0,
        },
        started_s: ctx.now(),
        ..Record::default()
    };
    let cut = rng.chance(ctx.s.interrupt_probability);
    rec.outcome = match link
        .send(ctx, &plain, cut, class.link_mb_per_s, &mut rec)
        .await
    {
        Ok(()) => "accepted".into(),
        Err(e) => format!("error:{e}"),
    };
    rec.accepted_s = Some(ctx.now());
    let _ = std::fs::remove_file(&plain);
    ctx.push(rec);
}

/// A DICOMDIR set: a folder of instances sent one by one, the DICOMDIR last. Each file
/// is a record of the class; the DICOMDIR's record (class `<class>:set`) spans the whole
/// set, from its first byte to the set's check.
async fn send_set(
    ctx: &Ctx,
    link: &mut Link<'_>,
    class: &Class,
    tag: &str,
    count: u32,
    mut rng: Rng,
) {
    let started = ctx.now();
    let dir = ctx.dir.join(tag);
    let mut set_rng = Rng::new(rng.next());
    let n = rng.next() % 1_000_000;
    let sizes = (class.min_bytes, class.max_bytes);
    let written = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || dicomdir::write_set(&dir, count, sizes, &mut set_rng, n)
    })
    .await
    .map_err(anyhow::Error::from)
    .and_then(|r| r);
    let protocol = link.protocol();
    let failed = |code: String| Record {
        class: format!("{}:set", class.name),
        protocol: protocol.into(),
        name: format!("{tag}/DICOMDIR"),
        started_s: started,
        outcome: format!("error:{code}"),
        ..Record::default()
    };
    let files = match written {
        Ok(f) => f,
        Err(e) => return ctx.push(failed(format!("generate:{e}"))),
    };
    if let Err(e) = link.folder(tag).await {
        let _ = std::fs::remove_dir_all(&dir);
        return ctx.push(failed(e.to_string()));
    }
    let total: u64 = files.iter().map(|f| f.bytes).sum();
    for f in files {
        let last = f.rel == "DICOMDIR";
        let mut rec = Record {
            class: if last {
                format!("{}:set", class.name)
            } else {
                class.name.clone()
            },
            protocol: link.protocol().into(),
            name: format!("{tag}/{}", f.rel),
            bytes: if last { total } else { f.bytes },
            started_s: if last { started } else { ctx.now() },
            ..Record::default()
        };
        let cut = rng.chance(ctx.s.interrupt_probability);
        rec.outcome = match link
            .send(ctx, &f.path, cut, class.link_mb_per_s, &mut rec)
            .await
        {
            Ok(()) => "accepted".into(),
            Err(e) => format!("error:{e}"),
        };
        rec.accepted_s = Some(ctx.now());
        ctx.push(rec);
    }
    let _ = std::fs::remove_dir_all(&dir);
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
        tus,
        keys,
        sftp: target.sftp,
        recipient,
        shared: Arc::new(Mutex::new(Shared::default())),
        dir: PathBuf::new(),
        t0: Instant::now(),
    })
}

/// The workers: the common pool (`concurrency`, classes by weight) and each class's
/// dedicated ones.
fn spawn_workers(ctx: &Arc<Ctx>) -> Vec<tokio::task::JoinHandle<()>> {
    let common: Vec<(Class, u32)> = ctx
        .s
        .classes
        .iter()
        .filter(|c| c.workers == 0 && c.weight > 0)
        .map(|c| (c.clone(), c.weight))
        .collect();
    let mut pools = Vec::new();
    if !common.is_empty() {
        pools.extend((0..ctx.s.concurrency).map(|_| common.clone()));
    }
    for c in ctx.s.classes.iter().filter(|c| c.workers > 0) {
        pools.extend((0..c.workers).map(|_| vec![(c.clone(), 1)]));
    }
    pools
        .into_iter()
        .enumerate()
        .map(|(w, pool)| tokio::spawn(worker(ctx.clone(), w as u32, pool)))
        .collect()
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
    // Every accepted upload gets its outcome on the feed; wait (bounded) for the last.
    let _ = tokio::time::timeout(Duration::from_secs(120), follower).await;
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
    for r in g.records.iter_mut() {
        if let Some((at, outcome)) = seen.get(&r.name) {
            if r.outcome == "accepted" {
                r.outcome = outcome.clone();
            }
            r.done_s = Some(*at);
        }
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
