//! What a run measured: per protocol and size class, throughput and time to indexed
//! (upload start → its `file.indexed` event on the feed), outcomes by code, resumes; the
//! gateway's peak RSS and CPU. Written as JSON (for `loadtest compare`) and Markdown.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

/// One upload.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Record {
    pub class: String,
    pub protocol: String,
    pub name: String,
    pub upload_id: String,
    /// Plaintext bytes, and what was sent sealed.
    pub bytes: u64,
    pub sealed_bytes: u64,
    pub started_s: f64,
    pub accepted_s: Option<f64>,
    /// When the feed reported its outcome.
    pub done_s: Option<f64>,
    /// `indexed`, `rejected:<code>`, `error:<code>`, or `accepted` (no outcome seen: lost).
    pub outcome: String,
    pub resumed: bool,
    /// Bytes sent again, over all of this transfer's resumes.
    pub retransmitted: u64,
    /// The most sent again after any one resume (what one failure cost).
    #[serde(default)]
    pub max_resend: u64,
    /// SHA-256 of the plaintext sent; the feed's `file.indexed` must report the same.
    #[serde(default)]
    pub sha256: String,
}

impl Record {
    /// Counts `bytes` sent again after one resume.
    pub fn resent(&mut self, bytes: u64) {
        self.retransmitted += bytes;
        self.max_resend = self.max_resend.max(bytes);
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Group {
    pub files: u64,
    pub bytes: u64,
    pub mb_per_s: f64,
    pub files_per_s: f64,
    /// Upload start → indexed, milliseconds.
    pub tti_p50_ms: f64,
    pub tti_p95_ms: f64,
    pub tti_p99_ms: f64,
    pub tti_max_ms: f64,
    /// The two halves of it: upload start → accepted, and accepted → indexed (p99, ms).
    pub upload_p99_ms: f64,
    pub check_p99_ms: f64,
    pub outcomes: BTreeMap<String, u64>,
    pub resumed: u64,
    pub retransmitted_bytes: u64,
}

/// The gateway's process, sampled every half second.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Sample {
    pub t_s: f64,
    pub rss_mib: f64,
    /// Of which anonymous memory (heap, stacks); the rest is mapped files (the
    /// catalog's memory map), which the kernel can drop and re-read at will.
    #[serde(default)]
    pub anon_mib: f64,
    /// CPU cores used since the previous sample.
    pub cpu_cores: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub scenario: Scenario,
    pub seconds: f64,
    pub gateway_cpu_seconds: Option<f64>,
    pub gateway_peak_rss_mib: f64,
    /// Peak anonymous part of the RSS.
    #[serde(default)]
    pub gateway_peak_anon_mib: f64,
    /// Accepted uploads whose outcome never arrived.
    pub lost: u64,
    /// Open loop: arrivals that waited for a free slot (the offered rate was not met).
    #[serde(default)]
    pub delayed_arrivals: u64,
    /// Time to indexed p99 over every file ≤ 2 MiB (the goal: < 500 ms).
    #[serde(default)]
    pub small_tti_p99_ms: f64,
    /// Keyed `protocol/class`.
    pub groups: BTreeMap<String, Group>,
    pub records: Vec<Record>,
    #[serde(default)]
    pub samples: Vec<Sample>,
}

/// The "small file": up to 2 MiB.
pub const SMALL: u64 = 2 << 20;

pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

impl Report {
    pub fn build(
        s: &Scenario,
        records: Vec<Record>,
        seconds: f64,
        cpu: Option<f64>,
        rss_kib: u64,
        samples: Vec<Sample>,
    ) -> Report {
        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        let mut tti: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut halves: BTreeMap<String, (Vec<f64>, Vec<f64>)> = BTreeMap::new();
        for r in &records {
            let key = format!("{}/{}", r.protocol, r.class);
            let g = groups.entry(key.clone()).or_default();
            g.files += 1;
            g.bytes += r.bytes;
            *g.outcomes
                .entry(
                    r.outcome.split(':').next().unwrap_or("").to_string()
                        + r.outcome.find(':').map(|i| &r.outcome[i..]).unwrap_or(""),
                )
                .or_default() += 1;
            g.resumed += u64::from(r.resumed);
            g.retransmitted_bytes += r.retransmitted;
            if r.outcome == "indexed"
                && let Some(done) = r.done_s
            {
                tti.entry(key.clone())
                    .or_default()
                    .push((done - r.started_s) * 1000.0);
                if let Some(acc) = r.accepted_s {
                    let h = halves.entry(key).or_default();
                    h.0.push((acc - r.started_s) * 1000.0);
                    h.1.push(((done - acc) * 1000.0).max(0.0));
                }
            }
        }
        for (key, g) in groups.iter_mut() {
            g.mb_per_s = g.bytes as f64 / seconds.max(1e-9) / 1e6;
            g.files_per_s = g.files as f64 / seconds.max(1e-9);
            let mut t = tti.remove(key).unwrap_or_default();
            t.sort_by(f64::total_cmp);
            (g.tti_p50_ms, g.tti_p95_ms, g.tti_p99_ms) =
                (pct(&t, 50.0), pct(&t, 95.0), pct(&t, 99.0));
            g.tti_max_ms = t.last().copied().unwrap_or(0.0);
            let (mut up, mut check) = halves.remove(key).unwrap_or_default();
            up.sort_by(f64::total_cmp);
            check.sort_by(f64::total_cmp);
            (g.upload_p99_ms, g.check_p99_ms) = (pct(&up, 99.0), pct(&check, 99.0));
        }
        let mut small: Vec<f64> = records
            .iter()
            .filter(|r| r.bytes <= SMALL && !r.class.ends_with(":set"))
            .filter_map(|r| {
                Some((r.done_s? - r.started_s) * 1000.0).filter(|_| r.outcome == "indexed")
            })
            .collect();
        small.sort_by(f64::total_cmp);
        Report {
            delayed_arrivals: 0,
            small_tti_p99_ms: pct(&small, 99.0),
            scenario: s.clone(),
            seconds,
            gateway_cpu_seconds: cpu,
            gateway_peak_rss_mib: rss_kib as f64 / 1024.0,
            gateway_peak_anon_mib: samples.iter().map(|s| s.anon_mib).fold(0.0, f64::max),
            lost: records.iter().filter(|r| r.outcome == "accepted").count() as u64,
            groups,
            records,
            samples,
        }
    }

    pub fn markdown(&self) -> String {
        let load = match self.scenario.arrival_per_s {
            Some(r) => format!(
                "{r} jobs/s arriving (up to {} at once; {} arrivals waited for a slot)",
                self.scenario.concurrency, self.delayed_arrivals
            ),
            None => format!("{} in flight (closed loop)", self.scenario.concurrency),
        };
        let mut out = format!(
            "{} hospitals, {load}, {:.0} s, {} uploads; gateway peak RSS {:.0} MiB (anonymous {:.0} MiB){}; **lost: {}**; \
             time to indexed p99 of files ≤ 2 MiB: **{:.0} ms**\n\n",
            self.scenario.hospitals,
            self.seconds,
            self.records.len(),
            self.gateway_peak_rss_mib,
            self.gateway_peak_anon_mib,
            self.gateway_cpu_seconds
                .map(|c| format!(", CPU {c:.1} s"))
                .unwrap_or_default(),
            self.lost,
            self.small_tti_p99_ms
        );
        out += "| protocol/class | files | MB/s | files/s | time to indexed p50 / p95 / p99 / max (ms) | of which upload / check p99 (ms) | resumed | re-sent bytes | outcomes |\n|---|---|---|---|---|---|---|---|---|\n";
        for (k, g) in &self.groups {
            let outcomes: Vec<String> =
                g.outcomes.iter().map(|(o, n)| format!("{o} {n}")).collect();
            out += &format!(
                "| {k} | {} | {:.1} | {:.1} | {:.0} / {:.0} / {:.0} / {:.0} | {:.0} / {:.0} | {} | {} | {} |\n",
                g.files,
                g.mb_per_s,
                g.files_per_s,
                g.tti_p50_ms,
                g.tti_p95_ms,
                g.tti_p99_ms,
                g.tti_max_ms,
                g.upload_p99_ms,
                g.check_p99_ms,
                g.resumed,
                g.retransmitted_bytes,
                outcomes.join(", ")
            );
        }
        out
    }
}

/// B / A, with enough digits to show a ratio far from 1.
fn ratio(a: f64, b: f64) -> String {
    if a <= 0.0 {
        return "–".into();
    }
    let r = b / a;
    if r < 0.1 {
        format!("{r:.4}×")
    } else {
        format!("{r:.2}×")
    }
}

/// `loadtest compare A B`: B's figures as ratios of A's.
pub fn compare(a: &Report, b: &Report) -> String {
    let per_upload = |r: &Report| {
        r.gateway_cpu_seconds.unwrap_or(0.0) * 1000.0 / (r.records.len().max(1) as f64)
    };
    let mut out = format!(
        "time to indexed p99, files ≤ 2 MiB: {:.0} → {:.0} ms ({}); peak RSS {:.0} → {:.0} MiB ({}); \
         gateway CPU per upload {:.1} → {:.1} ms ({})\n\n",
        a.small_tti_p99_ms,
        b.small_tti_p99_ms,
        ratio(a.small_tti_p99_ms, b.small_tti_p99_ms),
        a.gateway_peak_rss_mib,
        b.gateway_peak_rss_mib,
        ratio(a.gateway_peak_rss_mib, b.gateway_peak_rss_mib),
        per_upload(a),
        per_upload(b),
        ratio(per_upload(a), per_upload(b)),
    );
    out += "| protocol/class | MB/s B/A | files/s B/A | p99 time to indexed B/A |\n|---|---|---|---|\n";
    for (k, ga) in &a.groups {
        let Some(gb) = b.groups.get(k) else { continue };
        out += &format!(
            "| {k} | {} | {} | {} |\n",
            ratio(ga.mb_per_s, gb.mb_per_s),
            ratio(ga.files_per_s, gb.files_per_s),
            ratio(ga.tti_p99_ms, gb.tti_p99_ms)
        );
    }
    out
}
