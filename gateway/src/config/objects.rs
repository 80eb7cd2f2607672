//! The `[objects]` section: where stored files live.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::backends::objects::s3::{MIN_PART_BYTES, S3Settings};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectsConfig {
    /// Empty = the local directory `data_dir/objects`; `s3://bucket[/prefix]` = an
    /// S3-compatible service (credentials from the usual `AWS_*` environment).
    pub url: String,
    /// The S3 service's base URL; empty = AWS.
    pub endpoint: String,
    pub region: String,
    /// Multipart part size (and the largest file sent in one request), in bytes.
    pub part_bytes: usize,
    /// Parts of one file in flight at once.
    pub part_concurrency: usize,
    /// Seconds one object operation keeps retrying before it fails.
    pub retry_secs: u64,
}

impl Default for ObjectsConfig {
    fn default() -> Self {
        ObjectsConfig {
            url: String::new(),
            endpoint: String::new(),
            region: "us-east-1".into(),
            part_bytes: 8 << 20,
            part_concurrency: 4,
            retry_secs: 30,
        }
    }
}

impl ObjectsConfig {
    /// The S3 settings, or `None` for the local directory.
    pub fn s3(&self) -> Option<S3Settings> {
        if self.url.is_empty() {
            return None;
        }
        Some(S3Settings {
            url: self.url.clone(),
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            part_bytes: self.part_bytes,
            part_concurrency: self.part_concurrency,
            retry_for: Duration::from_secs(self.retry_secs),
        })
    }

    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        if !self.url.is_empty() && !self.url.starts_with("s3://") {
            return Err((
                "objects.url",
                "must be empty or s3://bucket[/prefix]".into(),
            ));
        }
        if self.part_bytes < MIN_PART_BYTES {
            return Err((
                "objects.part_bytes",
                format!("must be at least {MIN_PART_BYTES} (S3's smallest part)"),
            ));
        }
        if self.part_concurrency == 0 {
            return Err(("objects.part_concurrency", "must be at least 1".into()));
        }
        Ok(())
    }
}
