//! A load scenario (TOML): how many hospitals, what they send, how hard, and the bounds
//! that make every run stop by itself.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Simulated hospitals (tenants `9000000000` + i, generated with their tokens).
    pub hospitals: u32,
    /// Seeds file contents, sizes, choices and tokens: the same seed, the same run.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Uploads in flight at once (closed loop).
    pub concurrency: u32,
    /// Hard bounds: the run stops at whichever comes first.
    pub max_seconds: u64,
    pub max_bytes: u64,
    #[serde(default)]
    pub max_files: u64,
    /// Probability that an upload is cut half-way and resumed (tus HEAD + PATCH).
    #[serde(default)]
    pub interrupt_probability: f64,
    /// Size classes and their weights.
    pub classes: Vec<Class>,
}

fn default_seed() -> u64 {
    7
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Class {
    pub name: String,
    /// `pdf` (a valid PDF padded to size), `dicom` (a Part-10 instance with pixel data),
    /// `video` (MP4 magic + bytes: large binary files).
    pub kind: Kind,
    pub weight: u32,
    pub min_bytes: u64,
    pub max_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Pdf,
    Dicom,
    Video,
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
            (0.0..=1.0).contains(&s.interrupt_probability),
            "interrupt_probability is 0..1"
        );
        for c in &s.classes {
            anyhow::ensure!(
                c.min_bytes <= c.max_bytes && c.min_bytes >= 1024,
                "class {}: sizes",
                c.name
            );
        }
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
            out += &format!(
                "[[tenant]]\ncode = \"{}\"\nname = \"Load hospital {i}\"\nprofile = \"generic\"\n\
                 token_hashes = [\"{hash}\"]\nallow_ips = [\"127.0.0.0/8\", \"::1\"]\n\n",
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
