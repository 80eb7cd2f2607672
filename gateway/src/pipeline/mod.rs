//! The stages an accepted upload goes through, one file per stage:
//! [`spool`] (while it arrives, verified and hashed on the way) → [`decrypt`] (a
//! plaintext view that decrypts only what is read) → [`inspect`] → [`store`] →
//! [`index`] (which also writes the outbox event for hand-off).
//!
//! Workers take accepted uploads in arrival order (`accept_seq`). During a maintenance
//! [`window`] they wait. After a restart, uploads caught mid-check are re-queued, and
//! because indexing and the state change are one transaction, nothing is indexed twice.

pub mod decrypt;
mod ending;
pub mod folder_set;
pub mod index;
pub mod inspect;
pub mod isolation;
pub mod manifest;
pub mod publish;
pub mod request;
pub mod set_wait;
mod sets;
pub mod store;
pub mod window;
use sets::SetStep;
mod worker;

use crate::events::Event;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::backends::catalog::Catalog;
use crate::backends::catalog::{CatalogError, NewFile, UploadRow};
use crate::backends::objects::ObjectStore;
use crate::checks::{Check, Severity};
use crate::sealed::{HeaderPolicy, Identity};
use crate::session::IngestCore;
use crate::session::admission::Admission;
use crate::session::handoff::Handoff;
use crate::telemetry::events::{InternalEvent, UploadChecked};
use crate::tenants::{Profile, Registry};
use isolation::job;

/// Observes a stage's duration into `gateway_pipeline_stage_seconds` when dropped.
fn stage(name: &'static str) -> prometheus::HistogramTimer {
    crate::telemetry::metrics::METRICS
        .stage_seconds
        .with_label_values(&[name])
        .start_timer()
}

/// The pipeline holds what it works with itself, taken from the session's core when it
/// is built: the catalog, the gateway's identity, its own settings, the hand-off of
/// acceptances, the admission loop it reports checks to, and the lock it shares with
/// retention — not the session.
pub struct Pipeline {
    catalog: Catalog,
    identity: Identity,
    tenants: Registry,
    spool_dir: PathBuf,
    header_policy: HeaderPolicy,
    requests: Arc<request::RequestRules>,
    handoff: Arc<Handoff>,
    admission: Arc<Admission>,
    objects_in_use: Arc<tokio::sync::RwLock<()>>,
    objects: Arc<dyn ObjectStore>,
    work_dir: PathBuf,
    windows: window::Windows,
    inspect: Arc<crate::config::InspectConfig>,
    inspector: Arc<isolation::Inspector>,
    retention: crate::config::RetentionConfig,
    max_attempts: u32,
    set_quiet_secs: u64,
    /// Partial and accepted uploads' bytes in the shared object store, in a cluster
    /// (`session/checkpoint.rs`): a check claimed from a node that died reads them.
    checkpoints: Option<Arc<crate::session::checkpoint::Checkpoints>>,
}

/// What happened to one upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Indexed {
        upload_id: String,
        file_id: String,
    },
    Rejected {
        upload_id: String,
        codes: Vec<String>,
    },
    /// Back in the queue: part of a set whose other files are still to come.
    Deferred {
        upload_id: String,
    },
    /// A pre-check that passed: checked, not indexed (rule 21).
    Prechecked {
        upload_id: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error("pipeline I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] crate::backends::objects::ObjectError),
}

impl From<crate::session::checkpoint::CheckpointError> for PipelineError {
    fn from(e: crate::session::checkpoint::CheckpointError) -> PipelineError {
        use crate::session::checkpoint::CheckpointError as C;
        match e {
            C::Objects(e) => PipelineError::Store(e),
            C::Io(e) => PipelineError::Io(e),
            broken @ C::Broken { .. } => PipelineError::Io(std::io::Error::other(broken)),
        }
    }
}

impl PipelineError {
    /// The stable code logged with a check that did not finish.
    pub fn code(&self) -> &'static str {
        match self {
            PipelineError::Catalog(e) => e.code(),
            PipelineError::Io(_) => "ingest.io",
            PipelineError::Store(e) => e.code(),
        }
    }

    /// The catalog or the object store cannot be used for now: no fault of the file.
    pub fn is_unavailable(&self) -> bool {
        match self {
            PipelineError::Catalog(e) => e.is_unavailable(),
            PipelineError::Store(e) => e.code() == "objects.unavailable",
            PipelineError::Io(_) => false,
        }
    }
}

impl Pipeline {
    pub fn new(
        core: &IngestCore,
        objects: Arc<dyn ObjectStore>,
        work_dir: PathBuf,
        windows: window::Windows,
    ) -> Pipeline {
        let settings = core.settings();
        Pipeline {
            catalog: core.catalog().clone(),
            identity: core.identity().clone(),
            tenants: core.tenants().clone(),
            spool_dir: settings.spool_dir.clone(),
            header_policy: settings.header_policy.clone(),
            requests: settings.requests.clone(),
            handoff: core.handoff(),
            admission: core.shared_admission(),
            objects_in_use: core.objects_in_use(),
            objects,
            work_dir,
            windows,
            inspect: Arc::new(crate::config::InspectConfig::default()),
            inspector: Arc::new(isolation::Inspector::InProcess),
            retention: crate::config::RetentionConfig::default(),
            max_attempts: crate::config::PipelineConfig::default().max_check_attempts,
            set_quiet_secs: crate::config::PipelineConfig::default().set_quiet_secs,
            checkpoints: settings.checkpoints.clone(),
        }
    }

    /// How long a folder set's folder must be quiet before what is missing fails.
    pub fn with_set_quiet_secs(mut self, secs: u64) -> Pipeline {
        self.set_quiet_secs = secs;
        self
    }

    /// Inspector limits and profile rules other than the defaults.
    pub fn with_inspect_config(mut self, cfg: crate::config::InspectConfig) -> Pipeline {
        self.inspect = Arc::new(cfg);
        self
    }

    /// Where parsing runs (worker processes in the server; in-process by default).
    pub fn with_inspector(mut self, inspector: isolation::Inspector) -> Pipeline {
        self.inspector = Arc::new(inspector);
        self
    }

    /// Checks of one upload started before it is given up.
    pub fn with_max_check_attempts(mut self, n: u32) -> Pipeline {
        self.max_attempts = n.max(1);
        self
    }

    /// How long indexed files are kept, other than the defaults.
    pub fn with_retention(mut self, cfg: crate::config::RetentionConfig) -> Pipeline {
        self.retention = cfg;
        self
    }

    /// Seconds left in the current maintenance window, if checks must wait now.
    pub fn paused_for(&self) -> Option<u64> {
        self.windows.remaining(crate::util::unix_now())
    }

    /// Checks the oldest accepted upload, if any and if not in a maintenance window.
    pub async fn process_next(&self) -> Result<Option<Outcome>, PipelineError> {
        self.process_next_upto(None).await
    }

    /// The same, among uploads of at most `max_bytes` when given (the small-file lane).
    pub async fn process_next_upto(
        &self,
        max_bytes: Option<u64>,
    ) -> Result<Option<Outcome>, PipelineError> {
        let paused = self.paused_for().is_some();
        self.admission.set_paused(paused);
        if paused {
            return Ok(None);
        }
        let claimed = match max_bytes {
            Some(max) => self.catalog.claim_next_small(max).await?,
            None => self.catalog.claim_next_accepted().await?,
        };
        let Some(upload) = claimed else {
            return Ok(None);
        };
        if let Some(waits) = upload.waits_for.as_deref().and_then(set_wait::Waits::parse) {
            let now = crate::util::unix_now();
            let catalog = &self.catalog;
            match set_wait::still_waiting(catalog, &upload, waits, now, self.set_quiet_secs).await {
                Ok(true) => return self.defer(&upload, waits).await.map(Some),
                Ok(false) => {}
                Err(e) => return self.retry_later(&upload, e.into()).await.map(Some),
            }
        }
        let outcome = if upload.check_attempts > self.max_attempts {
            self.give_up(&upload, "its checks were interrupted").await
        } else {
            match self.check(&upload).await {
                Err(e) => self.retry_later(&upload, e).await,
                done => done,
            }
        };
        if matches!(outcome, Ok(Outcome::Deferred { .. })) {
            return outcome.map(Some);
        }
        if outcome.is_ok() {
            self.admission.checked();
        }
        if let Ok(o) = &outcome {
            let failed = match o {
                Outcome::Indexed { .. } | Outcome::Deferred { .. } | Outcome::Prechecked { .. } => {
                    None
                }
                Outcome::Rejected { codes, .. } => {
                    Some(codes.first().map(String::as_str).unwrap_or("unknown"))
                }
            };
            UploadChecked {
                tenant: &upload.tenant,
                upload: &upload.id,
                failed,
                seconds: self.handoff.since_accepted(&upload),
            }
            .emit();
        }
        let _ = std::fs::remove_file(self.work_dir.join(format!("{}.sealed", upload.id)));
        if let (Ok(_), Some(c)) = (&outcome, &self.checkpoints) {
            // Its check is recorded: no node needs its checkpoints any more.
            if let Err(e) = c.remove(&upload.tenant, &upload.id).await {
                tracing::warn!(upload = %upload.id, code = e.code(), error = %e, "cannot remove checkpoints");
            }
        }
        outcome.map(Some)
    }

    async fn check(&self, upload: &UploadRow) -> Result<Outcome, PipelineError> {
        let catalog = &self.catalog;
        let spool = crate::session::spool::spool_path(&self.spool_dir, &upload.tenant, &upload.id);
        let (identity, policy) = (self.identity.clone(), self.header_policy.clone());
        let (profile, tenant_retention) = self
            .tenants
            .snapshot()
            .tenant(&upload.tenant)
            .map(|t| (t.profile, t.retention_days))
            .unwrap_or((Profile::Generic, None));
        let (Some(sha256), Some(plain_len)) =
            (upload.plaintext_sha256.clone(), upload.plaintext_len)
        else {
            return self
                .reject(
                    upload,
                    vec![job::integrity_check(
                        "the acceptance record lacks the plaintext digest",
                    )],
                )
                .await;
        };
        let rules = self.requests.clone();
        let request = match request::of_upload(&rules, profile, upload) {
            Ok(r) => r,
            Err(check) => return self.reject(upload, vec![check]).await,
        };
        let accepted_at = upload.accepted_at.unwrap_or_else(crate::util::unix_now);
        if let Some(c) = &self.checkpoints {
            // Accepted on a node that is gone: its bytes are in the checkpoints (the
            // check verifies them again from the first byte).
            c.restore(&spool, &upload.tenant, &upload.id, upload.durable_offset)
                .await?;
        }
        let sealed = self.sealed_source(upload, &spool).await?;
        let file = match folder_set::unlocked(sealed.clone(), identity, policy).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                let why = format!("the stored file no longer opens: {e}");
                return self.reject(upload, vec![job::integrity_check(why)]).await;
            }
            Err(e) => return Err(e.into()),
        };
        let job = isolation::Job::Upload {
            file,
            plaintext_len: plain_len,
            name: upload.name.clone(),
            tenant: upload.tenant.clone(),
            profile,
            window: rules.window(request.as_ref(), accepted_at),
            cfg: (*self.inspect).clone(),
        };
        let batch = manifest::batch_prefix(&upload.name);
        let timer = stage("inspect");
        let inspected = match self.isolated(upload, job).await? {
            Ok(isolation::Reply::Upload(r)) => r,
            Ok(other) => return Err(unexpected(&other)),
            Err(check) => Err(check),
        };
        drop(timer);
        let (mut inspection, listed) = match inspected {
            Ok((i, m)) if i.passed() => (i, m),
            Ok((i, _)) => return self.reject(upload, i.checks).await,
            Err(check) => return self.reject(upload, vec![check]).await,
        };
        if inspection.directory && upload.is_precheck() {
            return self
                .reject(upload, vec![set_wait::precheck_folder_set()])
                .await;
        }
        if inspection.directory && upload.name.starts_with("dicomweb/") {
            return self.reject(upload, vec![set_wait::stow_directory()]).await;
        }
        if inspection.directory {
            let (meta, set_checks) = match self.folder_set(upload, &sealed).await? {
                SetStep::Done(meta, checks) => (meta, checks),
                SetStep::Failed(check) => return self.reject(upload, vec![check]).await,
                SetStep::Wait(waits) => return self.defer(upload, waits).await,
            };
            inspection.metadata["dicomdir"] = meta;
            inspection.checks.extend(set_checks);
            if !inspection.passed() {
                return self.reject(upload, inspection.checks).await;
            }
        }
        if profile == Profile::NhiReview
            && inspection.media_type == inspect::MediaType::Dicom
            && !inspection.directory
            && upload.is_precheck()
        {
            inspection.checks.push(set_wait::precheck_loose_dicom());
        } else if profile == Profile::NhiReview
            && inspection.media_type == inspect::MediaType::Dicom
            && !inspection.directory
        {
            match self.member_of_a_set(upload).await? {
                Some(true) => {}
                Some(false) => {
                    let stow = upload.name.starts_with("dicomweb/");
                    let check = set_wait::not_in_set(&upload.name, stow);
                    return self.reject(upload, vec![check]).await;
                }
                None => return self.defer(upload, set_wait::Waits::Dicomdir).await,
            }
        }
        let mut checks = inspection.checks.clone();
        if let (Some(m), Some(prefix)) = (&listed, &batch) {
            self.wait_for_earlier(upload, Some(prefix), None).await?;
            let current = catalog.current_files_under(&upload.tenant, prefix).await?;
            checks.extend(manifest::compare(m, prefix, &current));
            let (requests, bad) = manifest::requests(m, &rules, profile, &upload.tenant);
            checks.extend(bad);
            if profile == Profile::EmrDownload {
                checks.extend(manifest::window_check(m, |e| {
                    let own = requests.iter().find(|(n, _)| *n == e.name).map(|(_, r)| r);
                    rules.window(own.or(request.as_ref()), accepted_at)
                }));
            }
            if checks.iter().any(|c| c.severity == Severity::Error) {
                return self.reject(upload, checks).await;
            }
            if !upload.is_precheck() {
                let assigned = request::assignments(&requests, prefix, &current);
                catalog.assign_requests(&upload.tenant, &assigned).await?;
                inspection.metadata["requests"] = request::listed(&requests);
            }
        }
        if let Some(r) = &request {
            inspection.metadata["request"] = r.metadata();
        }
        self.wait_for_earlier(upload, None, Some(&sha256)).await?;
        if let Some(dup) = index::duplicate_check(catalog.as_ref(), &upload.tenant, &sha256).await?
        {
            checks.push(dup);
        }
        if upload.is_precheck() {
            // Checked in full; nothing is stored, indexed or handed on (rule 21).
            catalog.finish_precheck(&upload.id, true, &checks).await?;
            return Ok(Outcome::Prechecked {
                upload_id: upload.id.clone(),
            });
        }
        // The spool file moves into the object store (see store.rs): after this the
        // upload's bytes live there, and a crash before the index commit re-runs the
        // check from the stored object. Retention must not delete the object between.
        let _in_use = self.objects_in_use.read().await;
        let timer = stage("store");
        let key = if spool.exists() {
            store::store(self.objects.as_ref(), &spool, &sha256)
                .await?
                .0
        } else {
            crate::backends::objects::ObjectKey::for_sha256(&sha256)?
        };
        let file = NewFile {
            id: format!("f{}", upload.id),
            name: upload.name.clone(),
            sha256,
            size: plain_len,
            media_type: inspection.media_type.mime().to_string(),
            object_key: key.as_str().to_string(),
            metadata: inspection.metadata,
            retain_secs: self.retention.retain_secs(profile, tenant_retention),
            request_id: request.map(|r| r.id),
            instances: inspection
                .instances
                .into_iter()
                .map(|(path, i)| inspect::dicom::to_row(path, i))
                .collect(),
        };
        drop(timer);
        let timer = stage("index");
        index::index(catalog.as_ref(), upload, &file, &checks).await?;
        drop(timer);
        Ok(Outcome::Indexed {
            upload_id: upload.id.clone(),
            file_id: file.id,
        })
    }

    /// Runs `job` in the inspector: `Ok(Err(check))` when the worker failed on this
    /// upload (it fails), `Err` when no worker could run it or it met plain I/O
    /// trouble (the check is retried).
    async fn isolated(
        &self,
        upload: &UploadRow,
        job: isolation::Job,
    ) -> Result<Result<isolation::Reply, Check>, PipelineError> {
        match self.inspector.run(job).await {
            Ok(isolation::Reply::Io(e)) => Err(PipelineError::Io(std::io::Error::other(e))),
            Ok(reply) => Ok(Ok(reply)),
            Err(isolation::Failure::Unavailable(e)) => {
                Err(PipelineError::Io(std::io::Error::other(e)))
            }
            Err(isolation::Failure::Worker { reason, detail }) => {
                crate::telemetry::events::InspectWorkerFailed {
                    upload: &upload.id,
                    reason: reason.as_str(),
                    detail: &detail,
                }
                .emit();
                Ok(Err(isolation::Failure::check(reason, &detail)))
            }
        }
    }

    /// The sealed bytes to check: the spool file, or — when a crash came after the
    /// store stage moved it and before the index committed — a copy of the stored object.
    async fn sealed_source(
        &self,
        upload: &UploadRow,
        spool: &std::path::Path,
    ) -> Result<PathBuf, PipelineError> {
        if spool.exists() {
            // An armored upload (`age -a`) is made binary once, before anything reads
            // it: inspectors, the object store and downloads know the binary form only.
            let path = spool.to_owned();
            tokio::task::spawn_blocking(move || crate::sealed::armor::dearmor_in_place(&path))
                .await
                .map_err(std::io::Error::other)??;
            return Ok(spool.to_owned());
        }
        let sha = upload.plaintext_sha256.as_deref().unwrap_or_default();
        let key = crate::backends::objects::ObjectKey::for_sha256(sha)?;
        let mut reader = self.objects.get(&key, None).await?;
        tokio::fs::create_dir_all(&self.work_dir).await?;
        let copy = self.work_dir.join(format!("{}.sealed", upload.id));
        let mut out = tokio::fs::File::create(&copy).await?;
        tokio::io::copy(&mut reader, &mut out).await?;
        Ok(copy)
    }
}

/// A reply of the wrong kind: a bug between gateway and worker, retried as I/O.
fn unexpected(reply: &isolation::Reply) -> PipelineError {
    PipelineError::Io(std::io::Error::other(format!(
        "the inspector answered the wrong kind of reply: {reply:?}"
    )))
}

#[cfg(test)]
mod tests;
