//! What the run watches besides its own uploads: the gateway's event feed, followed as a
//! reviewer to stamp each upload when it is indexed or rejected, and the gateway's RSS
//! and CPU from /proc.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::run::Shared;

/// Follows `/v1/events` until every accepted upload has its outcome (or the run gives
/// up on it), stamping uploads by name as their outcome arrives.
pub async fn follow(
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
                && g.records.iter().all(|r| {
                    r.outcome != "accepted"
                        || g.seen.contains_key(&r.name)
                        || (r.protocol == "stow" && g.indexed_sha.contains_key(&r.sha256))
                })
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
            let sha = e["sha256"].as_str().unwrap_or_default().to_string();
            if e["kind"] == "file.indexed" {
                g.indexed_sha.entry(sha.clone()).or_insert(at);
            }
            if let (Some(kind), Some(name)) = (e["kind"].as_str(), e["name"].as_str())
                && let Some(outcome) = outcome(kind, e)
            {
                g.seen.entry(name.to_string()).or_insert((at, outcome, sha));
            }
        }
    }
}

/// `indexed`, `rejected:<first error code>`, or `None` for events that end nothing.
fn outcome(kind: &str, e: &serde_json::Value) -> Option<String> {
    match kind {
        "file.indexed" => Some("indexed".to_string()),
        "upload.rejected" => Some(format!(
            "rejected:{}",
            e["checks"]["findings"]
                .as_array()
                .and_then(|f| f.iter().find(|c| c["severity"] == "error"))
                .and_then(|c| c["code"].as_str())
                .unwrap_or("unknown")
        )),
        _ => None,
    }
}

/// A field of /proc/PID/status in KiB (VmRSS, RssAnon, RssFile).
fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Samples the gateway's RSS and CPU every half second while the run lasts.
pub async fn sample(s: Arc<Mutex<Shared>>, pid: u32, t0: Instant) {
    let mut last_cpu = cpu_seconds(pid).unwrap_or(0.0);
    let mut last_t = 0.0;
    loop {
        let rss = status_kib(pid, "VmRSS:");
        let anon = status_kib(pid, "RssAnon:");
        let at = t0.elapsed().as_secs_f64();
        let cpu = cpu_seconds(pid).unwrap_or(last_cpu);
        let share = if at > last_t {
            (cpu - last_cpu) / (at - last_t)
        } else {
            0.0
        };
        (last_cpu, last_t) = (cpu, at);
        let stop = {
            let mut g = s.lock().expect("state");
            g.peak_rss_kib = g.peak_rss_kib.max(rss);
            g.samples.push(crate::report::Sample {
                t_s: at,
                rss_mib: rss as f64 / 1024.0,
                anon_mib: anon as f64 / 1024.0,
                cpu_cores: share,
            });
            g.finished
        };
        if stop {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// User + system CPU seconds of a process.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}
