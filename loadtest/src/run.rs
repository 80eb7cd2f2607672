//! The run: `concurrency` workers upload as simulated hospitals (tus) until a bound is
//! reached; a follower reads the gateway's event feed as a reviewer and stamps each
//! upload when it is indexed or rejected; the gateway's RSS and CPU are sampled from
//! /proc. Files are generated into a temporary file and sealed on the fly from it
//! (`SealedSource`), so even 4 GiB files cost no memory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use gateway::push::{Remote, TusClient};
use gateway::sealed::{Recipient, SealedSource};

use crate::content;
use crate::report::{Record, Report};
use crate::scenario::{Rng, Scenario};

/// PATCH size.
const CHUNK: usize = 8 << 20;

pub struct Target {
    pub url: String,
    pub ca_cert: Option<PathBuf>,
    pub insecure: bool,
    /// The gateway's process, to sample its RSS and CPU.
    pub pid: Option<u32>,
}

#[derive(Default)]
struct Shared {
    files: u64,
    bytes: u64,
    stop: bool,
    /// Every worker has finished and pushed its records.
    sent: bool,
    records: Vec<Record>,
    /// upload id → (seconds since start, outcome) from the event feed.
    seen: HashMap<String, (f64, String)>,
    peak_rss_kib: u64,
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

/// Follows `/v1/events` until `stop`, stamping uploads as their outcome arrives.
async fn follow(
    s: Arc<Mutex<Shared>>,
    http: reqwest::Client,
    url: String,
    token: String,
    t0: Instant,
) {
    let mut after = 0i64;
    loop {
        let done = s.lock().map(|g| {
            g.sent
                && g.records
                    .iter()
                    .all(|r| r.outcome != "accepted" || g.seen.contains_key(&r.upload_id))
        });
        if done.unwrap_or(true) {
            return;
        }
        let resp = http
            .get(format!("{url}/v1/events?after={after}&wait=5&limit=1000"))
            .bearer_auth(&token)
            .send()
            .await;
        let Ok(doc) = (match resp {
            Ok(r) => r.json::<serde_json::Value>().await,
            Err(e) => Err(e),
        }) else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        after = doc["next"]
            .as_str()
            .and_then(|n| n.parse().ok())
            .unwrap_or(after);
        let at = t0.elapsed().as_secs_f64();
        let mut g = s.lock().expect("state");
        for e in doc["events"].as_array().into_iter().flatten() {
            let (Some(kind), Some(id)) = (e["kind"].as_str(), e["upload_id"].as_str()) else {
                continue;
            };
            let outcome = match kind {
                "file.indexed" => "indexed".to_string(),
                "upload.rejected" => format!(
                    "rejected:{}",
                    e["checks"]["findings"]
                        .as_array()
                        .and_then(|f| f.iter().find(|c| c["severity"] == "error"))
                        .and_then(|c| c["code"].as_str())
                        .unwrap_or("unknown")
                ),
                _ => continue,
            };
            g.seen.entry(id.to_string()).or_insert((at, outcome));
        }
    }
}

/// Samples the gateway's RSS (peak) while the run lasts.
async fn sample_rss(s: Arc<Mutex<Shared>>, pid: u32) {
    loop {
        let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0);
        let stop = {
            let mut g = s.lock().expect("state");
            g.peak_rss_kib = g.peak_rss_kib.max(rss);
            g.stop
        };
        if stop {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// One upload: generate, seal on the fly, send (cut once and resumed when chosen).
async fn upload_one(
    client: &TusClient,
    recipient: &Recipient,
    rec: &mut Record,
    plain: PathBuf,
    interrupt: bool,
    seed: [u8; 32],
) -> Result<()> {
    let mut src = SealedSource::open(&plain, std::slice::from_ref(recipient), &seed)?;
    let len = src.len();
    rec.sealed_bytes = len;
    let url = client
        .create(&rec.name, len)
        .await
        .map_err(|e| anyhow::anyhow!(e.code()))?;
    rec.upload_id = url.rsplit('/').next().unwrap_or_default().to_string();
    let mut offset = 0u64;
    let mut cut = interrupt;
    let mut retries = 0;
    while offset < len {
        let piece = tokio::task::block_in_place(|| src.read_at(offset, CHUNK))?;
        let n = piece.len() as u64;
        if cut && offset + n >= len / 2 {
            cut = false;
            // Cut the connection mid-body, then ask where the gateway is.
            let _ =
                tokio::time::timeout(Duration::from_millis(3), client.append(&url, offset, piece))
                    .await;
            rec.resumed = true;
            match client
                .remote(&url)
                .await
                .map_err(|e| anyhow::anyhow!(e.code()))?
            {
                Remote::At { offset: at, .. } => {
                    rec.retransmitted += n.saturating_sub(at.saturating_sub(offset));
                    offset = at;
                }
                Remote::Gone => anyhow::bail!("tus.gone"),
            }
            continue;
        }
        offset = match client.append(&url, offset, piece).await {
            Ok(o) => o,
            Err(gateway::push::PushError::OffsetMoved(o)) => o,
            // After a cut the gateway may still be finishing the cut request (busy), or
            // have finished the upload with it (no longer receiving): ask where it is,
            // as a tus client does, a bounded number of times.
            Err(e)
                if rec.resumed
                    && (e.code() == "tus.busy" || e.code() == "ingest.not_receiving")
                    && retries < 40 =>
            {
                retries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
                match client
                    .remote(&url)
                    .await
                    .map_err(|e| anyhow::anyhow!(e.code()))?
                {
                    Remote::At { offset: at, .. } => at,
                    Remote::Gone => anyhow::bail!("tus.gone"),
                }
            }
            Err(e) => anyhow::bail!(e.code()),
        };
    }
    Ok(())
}

pub async fn run(s: &Scenario, target: &Target, progress: bool) -> Result<Report> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let clients: Vec<TusClient> = (0..s.hospitals)
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
    let clients = Arc::new(clients);
    let recipient = clients[0]
        .recipient()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let shared = Arc::new(Mutex::new(Shared::default()));
    let t0 = Instant::now();
    let cpu0 = target.pid.and_then(cpu_seconds);
    let dir = tempfile::tempdir()?;
    let follower = tokio::spawn(follow(
        shared.clone(),
        http_client(target)?,
        target.url.clone(),
        s.reviewer_token(),
        t0,
    ));
    let sampler = target
        .pid
        .map(|pid| tokio::spawn(sample_rss(shared.clone(), pid)));
    let bar = progress.then(|| {
        let b = indicatif::ProgressBar::new(s.max_seconds);
        b.set_style(
            indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let total_weight: u64 = s.classes.iter().map(|c| u64::from(c.weight)).sum();
    let mut workers = Vec::new();
    for w in 0..s.concurrency {
        let (s, clients, shared, recipient, dir) = (
            s.clone(),
            clients.clone(),
            shared.clone(),
            recipient.clone(),
            dir.path().to_owned(),
        );
        workers.push(tokio::spawn(async move {
            let mut rng = Rng::new(s.seed.wrapping_add(u64::from(w) * 7919));
            let mut n = 0u64;
            loop {
                let mut pick = rng.next() % total_weight.max(1);
                let class = s
                    .classes
                    .iter()
                    .find(|c| {
                        let hit = pick < u64::from(c.weight);
                        pick = pick.saturating_sub(u64::from(c.weight));
                        hit
                    })
                    .unwrap_or(&s.classes[0])
                    .clone();
                let size = rng.between(class.min_bytes, class.max_bytes);
                {
                    let mut g = shared.lock().expect("state");
                    let over = t0.elapsed().as_secs() >= s.max_seconds
                        || g.bytes + size > s.max_bytes
                        || (s.max_files > 0 && g.files >= s.max_files);
                    if g.stop || over {
                        g.stop = true;
                        return;
                    }
                    g.files += 1;
                    g.bytes += size;
                }
                n += 1;
                let h = (rng.next() % u64::from(s.hospitals)) as u32;
                let plain = dir.join(format!("w{w}-{n}"));
                let mut file_rng = Rng::new(rng.next());
                let kind = class.kind;
                let written = tokio::task::spawn_blocking({
                    let plain = plain.clone();
                    move || content::write(kind, size, &mut file_rng, n, &plain)
                })
                .await;
                let mut rec = Record {
                    class: class.name.clone(),
                    protocol: "tus".into(),
                    name: format!(
                        "lt/w{w}/{n}.{}",
                        match kind {
                            crate::scenario::Kind::Pdf => "pdf",
                            crate::scenario::Kind::Dicom => "dcm",
                            crate::scenario::Kind::Video => "mp4",
                        }
                    ),
                    bytes: match written {
                        Ok(Ok(b)) => b,
                        _ => 0,
                    },
                    started_s: t0.elapsed().as_secs_f64(),
                    ..Record::default()
                };
                let mut seed = [0u8; 32];
                rng.fill(&mut seed);
                let interrupt = rng.chance(s.interrupt_probability);
                rec.outcome = match upload_one(
                    &clients[h as usize],
                    &recipient,
                    &mut rec,
                    plain.clone(),
                    interrupt,
                    seed,
                )
                .await
                {
                    Ok(()) => "accepted".into(),
                    Err(e) => format!("error:{e}"),
                };
                rec.accepted_s = Some(t0.elapsed().as_secs_f64());
                let _ = std::fs::remove_file(&plain);
                shared.lock().expect("state").records.push(rec);
            }
        }));
    }
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
    let cpu = match (cpu0, target.pid.and_then(cpu_seconds)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    if let Some(h) = sampler {
        h.abort();
    }
    let mut g = shared.lock().expect("state");
    let seen = std::mem::take(&mut g.seen);
    for r in g.records.iter_mut() {
        if let Some((at, outcome)) = seen.get(&r.upload_id) {
            if r.outcome == "accepted" {
                r.outcome = outcome.clone();
            }
            r.done_s = Some(*at);
        }
    }
    Ok(Report::build(
        s,
        std::mem::take(&mut g.records),
        sent_s,
        cpu,
        g.peak_rss_kib,
    ))
}
