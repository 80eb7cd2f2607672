//! A load scenario (TOML): how many hospitals, what they send, how hard, and the bounds
//! that make every run stop by itself.

use std::collections::BTreeMap;

use russh::keys::ssh_key::private::{Ed25519Keypair, PrivateKey};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Simulated hospitals (tenants `9000000000` + i, generated with their tokens).
    pub hospitals: u32,
    /// Seeds file contents, sizes, choices and tokens: the same seed, the same run.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Uploads in flight at once: the closed loop's workers, or with `arrival_per_s`
    /// the most the open loop runs at once.
    pub concurrency: u32,
    /// Open loop: jobs (a file or a set) per second arriving on average, exponential
    /// gaps; without it the common pool is closed-loop (`concurrency` workers sending
    /// back to back, which finds the gateway's capacity).
    #[serde(default)]
    pub arrival_per_s: Option<f64>,
    /// Hard bounds: the run stops at whichever comes first.
    pub max_seconds: u64,
    pub max_bytes: u64,
    #[serde(default)]
    pub max_files: u64,
    /// Probability that an upload is cut half-way and resumed (tus HEAD + PATCH).
    #[serde(default)]
    pub interrupt_probability: f64,
    /// Protocol mix: weights of `tus`, `sftp` and `stow` (default: tus only). STOW-RS
    /// sends `dicom` instances (one per request); other kinds drawn for it go by tus.
    #[serde(default = "default_protocols")]
    pub protocols: BTreeMap<String, u32>,
    /// Ride out gateway restarts: a transfer whose connection failed (or that the
    /// gateway refused while starting: 423, 429, 502–504) waits and resumes from where
    /// the gateway says it is — tus `HEAD`, SFTP `stat` and `reput`, STOW sent again —
    /// for up to this many seconds without progress (0: fail at once).
    #[serde(default)]
    pub retry_seconds: u64,
    /// Size classes and their weights.
    pub classes: Vec<Class>,
}

fn default_protocols() -> BTreeMap<String, u32> {
    BTreeMap::from([("tus".to_string(), 1)])
}

fn default_seed() -> u64 {
    7
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Class {
    pub name: String,
    /// `pdf` (a valid PDF padded to size), `dicom` (a Part-10 instance with pixel data),
    /// `dicom-set` (a folder of instances guided by its DICOMDIR, sent last), `video`
    /// (MP4 magic + bytes: large binary files).
    pub kind: Kind,
    /// Share of the common worker pool's picks (ignored with `workers`).
    #[serde(default)]
    pub weight: u32,
    /// Size of each file (of each instance, for a set).
    pub min_bytes: u64,
    pub max_bytes: u64,
    /// Instances per set (`dicom-set` only).
    #[serde(default = "default_min_instances")]
    pub min_instances: u32,
    #[serde(default = "default_max_instances")]
    pub max_instances: u32,
    /// Dedicated closed-loop workers sending only this class, outside the common pool:
    /// long transfers then cannot crowd out the small ones.
    #[serde(default)]
    pub workers: u32,
    /// The sending hospital's link speed for this class (MB/s per transfer; 0 = as fast
    /// as loopback allows).
    #[serde(default)]
    pub link_mb_per_s: f64,
}

fn default_min_instances() -> u32 {
    50
}

fn default_max_instances() -> u32 {
    500
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Pdf,
    Dicom,
    DicomSet,
    Video,
}

impl Kind {
    pub fn extension(self) -> &'static str {
        match self {
            Kind::Pdf => "pdf",
            Kind::Dicom | Kind::DicomSet => "dcm",
            Kind::Video => "mp4",
        }
    }
}

impl Scenario {
    pub fn parse(text: &str) -> anyhow::Result<Scenario> {
        let s: Scenario = toml::from_str(text)?;
        anyhow::ensure!(
            s.hospitals > 0 && s.concurrency > 0,
            "hospitals and concurrency must be > 0"
        );
        anyhow::ensure!(!s.classes.is_empty(), "at least one class");
        anyhow::ensure!(
            s.max_seconds > 0 && s.max_bytes > 0,
            "the run needs its bounds"
        );
        anyhow::ensure!(
            s.arrival_per_s.is_none_or(|r| r > 0.0 && r.is_finite()),
            "arrival_per_s must be > 0"
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&s.interrupt_probability),
            "interrupt_probability is 0..1"
        );
        for c in &s.classes {
            anyhow::ensure!(
                c.min_bytes <= c.max_bytes && c.min_bytes >= 1024,
                "class {}: sizes",
                c.name
            );
            anyhow::ensure!(
                c.min_instances >= 1 && c.min_instances <= c.max_instances,
                "class {}: instances",
                c.name
            );
            anyhow::ensure!(c.link_mb_per_s >= 0.0, "class {}: link_mb_per_s", c.name);
        }
        anyhow::ensure!(
            s.classes.iter().any(|c| c.workers == 0 && c.weight > 0)
                || s.classes.iter().all(|c| c.workers > 0),
            "the common pool needs a class with a weight (or every class its own workers)"
        );
        for p in s.protocols.keys() {
            anyhow::ensure!(
                ["tus", "sftp", "stow"].contains(&p.as_str()),
                "protocol {p}: tus, sftp or stow"
            );
        }
        anyhow::ensure!(
            s.protocols.values().sum::<u32>() > 0,
            "protocols: at least one weight"
        );
        Ok(s)
    }

    pub fn hospital(&self, i: u32) -> String {
        format!("{}", 9_000_000_000u64 + u64::from(i))
    }

    pub fn token(&self, i: u32) -> String {
        format!(
            "lt-{}-{}-{:016x}",
            self.seed,
            i,
            Rng::new(self.seed ^ u64::from(i)).next()
        )
    }

    /// Hospital `i`'s SSH key, derived from the seed like its token.
    pub fn ssh_key(&self, i: u32) -> PrivateKey {
        let mut seed = [0u8; 32];
        Rng::new(self.seed ^ (u64::from(i) << 32) ^ 0x55).fill(&mut seed);
        PrivateKey::from(Ed25519Keypair::from_seed(&seed))
    }

    pub fn uses_sftp(&self) -> bool {
        self.protocols.get("sftp").copied().unwrap_or(0) > 0
    }

    pub fn reviewer_token(&self) -> String {
        format!(
            "lt-review-{}-{:016x}",
            self.seed,
            Rng::new(!self.seed).next()
        )
    }

    /// The tenants file for the gateway under test: every hospital (generic profile,
    /// loopback only) and one reviewer for the event feed.
    pub fn tenants_toml(&self) -> String {
        let mut out = String::new();
        for i in 0..self.hospitals {
            let hash = gateway::tenants::TokenHash::of(&self.token(i));
            let key = self
                .ssh_key(i)
                .public_key()
                .to_openssh()
                .unwrap_or_default();
            out += &format!(
                "[[tenant]]\ncode = \"{}\"\nname = \"Load hospital {i}\"\nprofile = \"generic\"\n\
                 token_hashes = [\"{hash}\"]\nssh_keys = [\"{key}\"]\n\
                 allow_ips = [\"127.0.0.0/8\", \"::1\"]\n\n",
                self.hospital(i)
            );
        }
        let hash = gateway::tenants::TokenHash::of(&self.reviewer_token());
        out += &format!(
            "[[principal]]\nname = \"loadtest\"\nrole = \"reviewer\"\ntenants = [\"*\"]\n\
             token_hashes = [\"{hash}\"]\nallow_ips = [\"127.0.0.0/8\", \"::1\"]\n"
        );
        out
    }
}

/// xorshift64*: deterministic per seed and dependency-free; a load generator needs
/// repeatable choices, not cryptographic ones.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        unit < p
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = "hospitals = 2\nconcurrency = 1\nmax_seconds = 5\nmax_bytes = 1000000\n\
        [[classes]]\nname = \"p\"\nkind = \"pdf\"\nweight = 1\nmin_bytes = 2000\nmax_bytes = 3000\n";

    #[test]
    fn the_committed_scenarios_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/loadtest");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                Scenario::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
        }
    }

    #[test]
    fn bad_scenarios_are_refused_with_the_reason() {
        assert!(Scenario::parse(SMALL).is_ok());
        let bad = |extra: &str, why: &str| {
            let e = Scenario::parse(&format!("{extra}\n{SMALL}")).unwrap_err();
            assert!(e.to_string().contains(why), "{extra}: {e}");
        };
        bad("arrival_per_s = 0.0", "arrival_per_s");
        bad("interrupt_probability = 1.5", "interrupt_probability");
        let e = Scenario::parse(&format!("{SMALL}\n[protocols]\nftp = 1\n")).unwrap_err();
        assert!(e.to_string().contains("tus, sftp or stow"), "{e}");
        let e = Scenario::parse(&SMALL.replace("hospitals = 2", "hospitals = 2\nfoo = 1"));
        assert!(e.is_err(), "unknown keys are refused");
    }

    #[test]
    fn keys_and_tokens_are_derived_from_the_seed() {
        let s = Scenario::parse(SMALL).unwrap();
        assert_eq!(s.token(1), s.token(1));
        assert_ne!(s.token(0), s.token(1));
        assert_eq!(s.ssh_key(0).public_key(), s.ssh_key(0).public_key());
        assert_ne!(s.ssh_key(0).public_key(), s.ssh_key(1).public_key());
        let tenants = s.tenants_toml();
        assert_eq!(tenants.matches("ssh-ed25519 ").count(), 2);
    }
}
