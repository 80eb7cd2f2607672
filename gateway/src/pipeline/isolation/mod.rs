//! Isolation of everything that parses what hospitals send (PDF, DICOM, DICOMDIR,
//! ZIP, manifests): by default each check's parsing runs in a worker process under
//! kernel limits ([`child`]), handed one file and that file's payload key, never the
//! gateway's identity. A parser that crashes, overflows its stack, runs out of memory or
//! time takes down its worker only: that upload fails with `inspect.crashed`,
//! `inspect.memory_limit` or `inspect.timeout`, and the next check gets a new worker.
//!
//! `isolation = "in-process"` runs the same [`job`] on a blocking thread of the gateway
//! instead: for measuring what isolation costs, and for unit tests, which have no
//! `gateway` binary to start.

pub mod child;
pub mod job;
mod pool;
mod wire;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::checks::{Check, Severity};
use crate::config::InspectConfig;
pub use job::{Job, Reply, SealedFile};

/// Where parsing runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Isolation {
    #[default]
    Process,
    InProcess,
}

/// Why a worker failed the upload it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    Crashed,
    MemoryLimit,
    Timeout,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Crashed => "crashed",
            FailureReason::MemoryLimit => "memory_limit",
            FailureReason::Timeout => "timeout",
        }
    }

    /// The check code a hospital sees.
    pub fn code(self) -> &'static str {
        match self {
            FailureReason::Crashed => "inspect.crashed",
            FailureReason::MemoryLimit => "inspect.memory_limit",
            FailureReason::Timeout => "inspect.timeout",
        }
    }
}

#[derive(Debug)]
pub enum Failure {
    /// The worker failed on this upload: the upload fails.
    Worker {
        reason: FailureReason,
        detail: String,
    },
    /// No worker could run it (cannot start one): the check is retried later.
    Unavailable(String),
}

impl Failure {
    /// The finding for a worker failure.
    pub fn check(reason: FailureReason, detail: &str) -> Check {
        let why = match reason {
            FailureReason::Crashed => "the file made the inspector crash",
            FailureReason::MemoryLimit => "inspecting the file needed more memory than allowed",
            FailureReason::Timeout => "inspecting the file took longer than allowed",
        };
        Check::new(
            reason.code(),
            Severity::Error,
            format!("{why}; it was not indexed"),
        )
        .with_detail(serde_json::json!({ "detail": detail }))
    }
}

/// Runs inspection jobs, isolated or not.
pub enum Inspector {
    InProcess,
    Processes(pool::Pool),
}

impl Inspector {
    /// The inspector `cfg` asks for; worker processes run `exe` (the gateway binary).
    pub fn from_config(cfg: &InspectConfig, exe: PathBuf) -> Inspector {
        match cfg.isolation {
            Isolation::InProcess => Inspector::InProcess,
            Isolation::Process => Inspector::Processes(pool::Pool::new(
                exe,
                child::Limits {
                    memory_mib: cfg.worker_memory_mib,
                    cpu_secs: cfg.worker_cpu_secs,
                },
                Duration::from_millis(cfg.worker_timeout_ms),
            )),
        }
    }

    pub async fn run(&self, job: Job) -> Result<Reply, Failure> {
        match self {
            Inspector::InProcess => tokio::task::spawn_blocking(move || job::run(&job))
                .await
                .map_err(|e| Failure::Worker {
                    reason: FailureReason::Crashed,
                    detail: e.to_string(),
                }),
            Inspector::Processes(pool) => pool.run(&job).await,
        }
    }
}
