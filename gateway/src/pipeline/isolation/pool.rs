//! The gateway side: a pool of long-lived worker processes (`gateway inspect-worker`),
//! one per check in progress at most, kept between uploads so a small file does not pay
//! for a process start. A worker that fails is not reused; the next check starts a
//! fresh one.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::child::{EXIT_MEMORY, Limits};
use super::job::{Job, Reply};
use super::wire;
use super::{Failure, FailureReason};
use crate::telemetry::events::{InspectWorkerStarted, InternalEvent};

struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: ChildStdout,
}

pub struct Pool {
    exe: PathBuf,
    limits: Limits,
    timeout: Duration,
    idle: std::sync::Mutex<Vec<Worker>>,
}

impl Pool {
    pub fn new(exe: PathBuf, limits: Limits, timeout: Duration) -> Pool {
        Pool {
            exe,
            limits,
            timeout,
            idle: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn spawn(&self) -> std::io::Result<Worker> {
        let mut child = Command::new(&self.exe)
            .arg("inspect-worker")
            .arg("--memory-mib")
            .arg(self.limits.memory_mib.to_string())
            .arg("--cpu-secs")
            .arg(self.limits.cpu_secs.to_string())
            // The worker needs nothing from the gateway's environment (no config, no
            // keys): it gets one file and one key per request.
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id();
        InspectWorkerStarted { pid }.emit();
        let missing = || std::io::Error::other("worker pipes missing");
        let stdin = child.stdin.take().ok_or_else(missing)?;
        let stdout = child.stdout.take().ok_or_else(missing)?;
        if let Some(stderr) = child.stderr.take() {
            tokio::spawn(async move {
                let mut lines = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    tracing::warn!(worker = pid, "inspector worker: {line}");
                }
            });
        }
        Ok(Worker {
            child,
            stdin,
            stdout,
        })
    }

    fn take(&self) -> std::io::Result<Worker> {
        let idle = self.idle.lock().ok().and_then(|mut v| v.pop());
        match idle {
            Some(w) => Ok(w),
            None => self.spawn(),
        }
    }

    fn give_back(&self, w: Worker) {
        if let Ok(mut v) = self.idle.lock() {
            v.push(w);
        }
    }

    /// Runs `job` in a worker. `Err(Failure)` when the worker failed (the upload fails)
    /// or could not be started (the check is retried).
    pub async fn run(&self, job: &Job) -> Result<Reply, Failure> {
        let body = serde_json::to_vec(job).map_err(|e| Failure::Unavailable(e.to_string()))?;
        let mut w = self
            .take()
            .map_err(|e| Failure::Unavailable(format!("cannot start a worker: {e}")))?;
        let exchange = async {
            wire::write_frame_async(&mut w.stdin, &body).await?;
            wire::read_frame_async(&mut w.stdout).await
        };
        let answer = tokio::time::timeout(self.timeout, exchange).await;
        let frame = match answer {
            Ok(Ok(frame)) => frame,
            Ok(Err(e)) => return Err(self.failed(w, &e.to_string()).await),
            Err(_) => {
                let _ = w.child.kill().await;
                return Err(Failure::Worker {
                    reason: FailureReason::Timeout,
                    detail: format!("no answer within {} ms", self.timeout.as_millis()),
                });
            }
        };
        match serde_json::from_slice::<Reply>(&frame) {
            Ok(reply) => {
                self.give_back(w);
                Ok(reply)
            }
            Err(e) => {
                let _ = w.child.kill().await;
                Err(Failure::Worker {
                    reason: FailureReason::Crashed,
                    detail: format!("unreadable answer: {e}"),
                })
            }
        }
    }

    /// The worker stopped answering: why, from how it ended.
    async fn failed(&self, mut w: Worker, io_error: &str) -> Failure {
        drop(w.stdin);
        let status = tokio::time::timeout(Duration::from_secs(5), w.child.wait()).await;
        let status = match status {
            Ok(Ok(s)) => s,
            _ => {
                let _ = w.child.kill().await;
                return Failure::Worker {
                    reason: FailureReason::Crashed,
                    detail: format!("the worker stopped answering: {io_error}"),
                };
            }
        };
        Failure::Worker {
            reason: reason_of(status),
            detail: describe(status),
        }
    }
}

fn reason_of(status: ExitStatus) -> FailureReason {
    match (status.code(), status.signal()) {
        (Some(EXIT_MEMORY), _) => FailureReason::MemoryLimit,
        (_, Some(libc::SIGXCPU)) => FailureReason::Timeout,
        _ => FailureReason::Crashed,
    }
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(EXIT_MEMORY), _) => "the worker reached its memory limit".into(),
        (_, Some(libc::SIGXCPU)) => "the worker used up its CPU time".into(),
        (_, Some(libc::SIGABRT)) => {
            "the worker aborted (a stack overflow or a failed assertion in a parser)".into()
        }
        (_, Some(libc::SIGSEGV)) => "the worker crashed (segmentation fault)".into(),
        (_, Some(sig)) => format!("the worker was killed by signal {sig}"),
        (Some(101), _) => "a parser panicked".into(),
        (Some(code), _) => format!("the worker exited with code {code}"),
        (None, None) => "the worker ended".into(),
    }
}
