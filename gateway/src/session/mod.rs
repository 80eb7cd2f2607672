//! The one ingest session every front end uses (SFTP, tus, STOW): `open` → `write_at`
//! → `finish`. Limits are enforced here, not in front ends, and `finish` is the single
//! commit point where an upload becomes *accepted*: its bytes complete, verified (the
//! age final chunk authenticated), fsync'd, and its catalog row committed.
//!
//! Resume is the same for every protocol: open the same upload again (by name for
//! SFTP, by id for tus) and continue at `offset()`, which after a crash is the last
//! durable length the catalog recorded.

pub mod checkpoint;
mod error;
mod inbox;
pub mod names;
mod receiving;
pub mod spool;
pub mod summary;
mod upload;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

pub use error::IngestError;
pub use inbox::Renamed;
use receiving::Receiving;
pub mod admission;
pub mod handoff;
mod live;

use crate::backends::catalog::{Catalog, UploadRow, UploadState};
use crate::checks::{Check, Severity};
use crate::sealed::{HeaderPolicy, Identity, StreamOpener};
use crate::session::spool::SpoolFile;
use crate::telemetry::events::{InternalEvent, UploadAccepted, UploadRejected, UploadStarted};
use crate::tenants::Registry;

type Result<T, E = IngestError> = std::result::Result<T, E>;

/// Limits and placement, from the `[ingest]` config section.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    pub spool_dir: PathBuf,
    pub max_file_bytes: u64,
    /// Unsynced bytes allowed before an fsync and a durable-offset update.
    pub fsync_interval_bytes: u64,
    /// Seconds unsynced bytes may wait (a tenant's `durable_interval_secs` overrides).
    pub fsync_interval_secs: u64,
    pub header_policy: HeaderPolicy,
    /// Accepted-but-unchecked uploads before new ones wait (0: never), and how long.
    pub max_backlog: u64,
    pub admission_wait: std::time::Duration,
    /// What request ids look like per profile (rule 20), compiled once.
    pub requests: Arc<crate::pipeline::request::RequestRules>,
    /// Partial uploads checkpointed to the shared object store (a cluster with a
    /// shared catalog and store; `checkpoint.rs`), or `None` on one node.
    pub checkpoints: Option<Arc<checkpoint::Checkpoints>>,
}

impl IngestSettings {
    pub fn from_config(config: &crate::config::Config) -> IngestSettings {
        IngestSettings {
            spool_dir: config.server.data_dir.join("spool"),
            max_file_bytes: config.ingest.max_file_bytes,
            fsync_interval_bytes: config.ingest.fsync_interval_bytes,
            fsync_interval_secs: config.ingest.fsync_interval_secs,
            header_policy: HeaderPolicy {
                allow_other_recipients: config.ingest.allow_other_recipients,
                ..HeaderPolicy::default()
            },
            max_backlog: config.ingest.max_backlog,
            admission_wait: std::time::Duration::from_secs(config.ingest.admission_wait_secs),
            requests: Arc::new(request_rules(&config.requests)),
            checkpoints: None,
        }
    }
}

/// `[requests]` compiled; `Config::validate` has refused patterns that do not compile,
/// so the defaults stand in only for a config that skipped validation.
pub fn request_rules(
    c: &crate::pipeline::request::RequestsConfig,
) -> crate::pipeline::request::RequestRules {
    use crate::pipeline::request::RequestRules;
    RequestRules::compile(c)
        .or_else(|_| RequestRules::compile(&Default::default()))
        .expect("the default request patterns compile")
}

/// Who is uploading, as a front end authenticated them.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: String,
    pub protocol: &'static str,
}

pub struct IngestCore {
    catalog: Catalog,
    tenants: Registry,
    identity: Identity,
    settings: IngestSettings,
    /// What acceptances hand the pipeline (`handoff.rs`).
    handoff: Arc<handoff::Handoff>,
    /// Objects are shared by content: indexing holds this for reading from storing an
    /// object to committing the file that uses it, retention for writing from finding
    /// an object unused to deleting it, so it never deletes one a file is about to use.
    /// Made here so the pipeline and retention built from one core share it.
    objects_in_use: Arc<tokio::sync::RwLock<()>>,
    /// Uploads some connection holds open (one writer per upload; see `live.rs`).
    live: live::LiveUploads,
    admission: Arc<admission::Admission>,
}

/// What `finish` promises: the upload is accepted and will not be lost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub id: String,
    pub sealed_len: u64,
    pub plaintext_len: u64,
    pub plaintext_sha256: String,
    /// Place in the processing order.
    pub seq: i64,
}

pub struct Upload {
    core: Arc<IngestCore>,
    row: UploadRow,
    /// Accepted bytes the tenant held when this upload opened (quota arithmetic).
    tenant_bytes: u64,
    inner: Option<Box<Receiving>>,
    /// A storage or catalog error interrupted a write: what the verifier has seen may be
    /// ahead of what the spool holds, so this object takes no more bytes. The upload
    /// itself is intact up to its durable offset; reopening it re-verifies from there.
    broken: bool,
    /// When this process opened (or resumed) it, for `gateway_time_to_accepted_seconds`.
    opened: std::time::Instant,
    _live: live::Live,
    /// Its place at the door, for a new upload (see `admission.rs`).
    ticket: Option<admission::Ticket>,
    /// Bytes already checkpointed to the shared object store (`checkpoint.rs`).
    checkpointed: u64,
    /// Whether a checkpoint may already exist where the next one starts: left by the
    /// node that wrote this upload before (its last attempt, never recorded). A new
    /// upload has none, nor has a resumed one once it saved its first.
    stale_checkpoint: bool,
}

impl std::fmt::Debug for Upload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("id", &self.row.id)
            .field("name", &self.row.name)
            .field("offset", &self.offset())
            .finish()
    }
}

fn new_upload_id() -> Result<String> {
    let seed = crate::sealed::random_seed().map_err(IngestError::Sealed)?;
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    // Time first, so ids sort by creation; 64 random bits make them unguessable enough
    // to be handed out (tus upload URLs) — authorisation is still checked on every use.
    Ok(format!("{millis:012x}{}", hex::encode(&seed[..8])))
}

impl IngestCore {
    pub fn new(
        catalog: Catalog,
        tenants: Registry,
        identity: Identity,
        settings: IngestSettings,
    ) -> Arc<IngestCore> {
        Arc::new(IngestCore {
            catalog,
            tenants,
            identity,
            handoff: Arc::default(),
            objects_in_use: Arc::default(),
            live: live::LiveUploads::default(),
            admission: admission::Admission::new(settings.max_backlog, settings.admission_wait),
            settings,
        })
    }

    /// See the `objects_in_use` field.
    pub fn objects_in_use(&self) -> Arc<tokio::sync::RwLock<()>> {
        self.objects_in_use.clone()
    }

    /// What acceptances hand the pipeline.
    pub fn handoff(&self) -> Arc<handoff::Handoff> {
        self.handoff.clone()
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn tenants(&self) -> &Registry {
        &self.tenants
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn settings(&self) -> &IngestSettings {
        &self.settings
    }

    /// Opens `name` for `who`: resumes the tenant's partial upload of that name if there
    /// is one, otherwise starts a new upload (a new version if the name was accepted before).
    pub async fn open(
        self: &Arc<Self>,
        who: &Principal,
        name: &str,
        declared_len: Option<u64>,
    ) -> Result<Upload> {
        check_name(name)?;
        if let Some(row) = self.catalog.receiving_upload(&who.tenant, name).await? {
            return self.reopen(row).await;
        }
        let limit = self.settings.max_file_bytes;
        if declared_len.is_some_and(|d| d > limit) {
            return Err(IngestError::TooLarge { limit });
        }
        let tenant_bytes = self
            .check_quota(
                &who.tenant,
                declared_len.unwrap_or(0),
                names::is_precheck(name),
            )
            .await?;
        let ticket = self.admit(who).await;
        let id = new_upload_id()?;
        let live = self.hold_new(&id)?;
        let (dir, tenant, sid) = (
            self.settings.spool_dir.clone(),
            who.tenant.clone(),
            id.clone(),
        );
        let spool = blocking(move || Ok(SpoolFile::create(&dir, &tenant, &sid)?)).await?;
        let row = self
            .catalog
            .create_upload(&id, &who.tenant, name, who.protocol, declared_len)
            .await?;
        UploadStarted {
            tenant: &who.tenant,
            protocol: who.protocol,
            resumed: false,
        }
        .emit();
        Ok(Upload {
            opened: std::time::Instant::now(),
            core: self.clone(),
            row,
            tenant_bytes,
            inner: Some(Receiving::new(spool, self.opener())),
            _live: live,
            broken: false,
            ticket: Some(ticket),
            checkpointed: 0,
            stale_checkpoint: false,
        })
    }

    /// Starts a new upload of `name`, giving up a partial upload of that name if there
    /// is one (tus creation: a client that lost its upload URL starts over).
    pub async fn create(
        self: &Arc<Self>,
        who: &Principal,
        name: &str,
        declared_len: Option<u64>,
    ) -> Result<Upload> {
        if let Some(row) = self.catalog.receiving_upload(&who.tenant, name).await? {
            self.abandon(&row, "started over (new upload of the same name)")
                .await?;
        }
        self.open(who, name, declared_len).await
    }

    /// Resumes upload `id` of `who`'s tenant (tus addresses uploads by id).
    pub async fn resume(self: &Arc<Self>, who: &Principal, id: &str) -> Result<Upload> {
        match self.catalog.upload(id).await? {
            Some(row) if row.tenant == who.tenant => match row.state {
                UploadState::Receiving => self.reopen(row).await,
                _ => Err(IngestError::NotReceiving(id.into())),
            },
            // Another tenant's id is "not found", never "forbidden".
            _ => Err(IngestError::NotFound(id.into())),
        }
    }

    fn opener(&self) -> StreamOpener<Vec<u8>> {
        StreamOpener::new(
            self.identity.clone(),
            self.settings.header_policy.clone(),
            Vec::new(),
        )
        .without_hash()
    }

    async fn reopen(self: &Arc<Self>, row: UploadRow) -> Result<Upload> {
        let live = self.hold(&row.id).await?;
        // The catalog row may predate the last holder's final sync: read it again now
        // that this connection is the only writer.
        let row = self
            .catalog
            .upload(&row.id)
            .await?
            .filter(|r| r.state == UploadState::Receiving)
            .ok_or_else(|| IngestError::NotReceiving(row.id.clone()))?;
        let tenant_bytes = self.catalog.tenant_usage(&row.tenant).await?.accepted_bytes;
        if let Some(c) = &self.settings.checkpoints {
            // Begun on another node (or this one lost its disk): rebuilt from the
            // checkpoints, then verified from the first byte like any resume.
            let spool = spool::spool_path(&self.settings.spool_dir, &row.tenant, &row.id);
            c.restore(&spool, &row.tenant, &row.id, row.durable_offset)
                .await?;
        }
        let core = self.clone();
        let (tenant, id, durable) = (row.tenant.clone(), row.id.clone(), row.durable_offset);
        let durable_at_open = durable;
        // Verification restarts from the first byte: re-reading what is on disk costs
        // ~1 s per GB and spares persisting the decryptor's state.
        let inner = blocking(move || {
            let spool = SpoolFile::reopen(&core.settings.spool_dir, &tenant, &id, durable)?;
            let mut reader = io::Read::take(spool.reader()?, durable);
            let mut r = Receiving::new(spool, core.opener());
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = io::Read::read(&mut reader, &mut buf)?;
                if n == 0 {
                    break;
                }
                r.sha.update(r.opener.sink_mut());
                r.opener.sink_mut().clear();
                r.armor.verify(&mut r.opener, &buf[..n])?;
            }
            Ok(r)
        })
        .await?;
        UploadStarted {
            tenant: &row.tenant,
            protocol: &row.protocol,
            resumed: true,
        }
        .emit();
        Ok(Upload {
            opened: std::time::Instant::now(),
            core: self.clone(),
            row,
            tenant_bytes,
            inner: Some(inner),
            _live: live,
            broken: false,
            ticket: None,
            checkpointed: durable_at_open,
            stale_checkpoint: true,
        })
    }

    /// How long received bytes of `tenant`'s uploads may wait before they are made
    /// durable (and resumable from).
    fn sync_period(&self, tenant: &str) -> std::time::Duration {
        let secs = self
            .tenants
            .snapshot()
            .tenant(tenant)
            .and_then(|t| t.durable_interval_secs)
            .unwrap_or(self.settings.fsync_interval_secs);
        std::time::Duration::from_secs(secs.max(1))
    }

    /// The door new uploads pass (see `admission.rs`).
    pub fn admission(&self) -> &admission::Admission {
        &self.admission
    }

    /// The admission loop, for the pipeline that reports checks done to it.
    pub fn shared_admission(&self) -> Arc<admission::Admission> {
        self.admission.clone()
    }

    async fn admit(&self, who: &Principal) -> admission::Ticket {
        let (ticket, waited) = self.admission.admit().await;
        if !waited.is_zero() {
            crate::telemetry::metrics::METRICS
                .admission_wait
                .with_label_values(&[who.protocol])
                .observe(waited.as_secs_f64());
        }
        ticket
    }

    /// This connection's hold on a new upload `id`. With a shared catalog its writer's
    /// lease comes with the catalog row (`create_upload`): nothing to ask for yet.
    fn hold_new(&self, id: &str) -> Result<live::Live> {
        let live = self
            .live
            .take(id)
            .ok_or_else(|| IngestError::Busy(id.to_string()))?;
        Ok(if self.catalog.is_shared() {
            live.with_lease(self.catalog.clone())
        } else {
            live
        })
    }

    /// This connection's hold on upload `id`, or `ingest.busy` while another
    /// connection has it, here or (with a shared catalog) on another node.
    async fn hold(&self, id: &str) -> Result<live::Live> {
        let live = self
            .live
            .take(id)
            .ok_or_else(|| IngestError::Busy(id.to_string()))?;
        if !self.catalog.is_shared() {
            return Ok(live);
        }
        match self.catalog.hold_upload(id).await? {
            crate::backends::catalog::Lease::Held => Ok(live.with_lease(self.catalog.clone())),
            crate::backends::catalog::Lease::Busy(_) => Err(IngestError::Busy(id.to_string())),
        }
    }

    /// Gives up a partial upload (the client started over or removed it): it expires
    /// at once and its spooled bytes are removed.
    pub async fn abandon(&self, upload: &UploadRow, why: &str) -> Result<()> {
        if self.catalog.abandon_upload(upload, why).await? {
            let path = crate::session::spool::spool_path(
                &self.settings.spool_dir,
                &upload.tenant,
                &upload.id,
            );
            if let Err(e) = std::fs::remove_file(&path)
                && e.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove an abandoned spool file");
            }
            if let Some(c) = &self.settings.checkpoints
                && let Err(e) = c.remove(&upload.tenant, &upload.id).await
            {
                tracing::warn!(upload = %upload.id, code = e.code(), "cannot remove an abandoned upload's checkpoints");
            }
        }
        Ok(())
    }

    /// Refuses a new upload that the tenant's quota cannot take; returns accepted bytes.
    /// The tenant's quota with `incoming` more bytes; a pre-check (rule 21) is
    /// held to the concurrency limit only, as it never stays.
    async fn check_quota(&self, tenant: &str, incoming: u64, precheck: bool) -> Result<u64> {
        let snapshot = self.tenants.snapshot();
        let t = snapshot
            .tenant(tenant)
            .ok_or_else(|| IngestError::UnknownTenant(tenant.into()))?;
        let usage = self.catalog.tenant_usage(tenant).await?;
        let q = &t.quota;
        if q.max_concurrent_uploads > 0 && usage.receiving >= u64::from(q.max_concurrent_uploads) {
            return Err(IngestError::TooManyUploads {
                limit: q.max_concurrent_uploads,
            });
        }
        if precheck {
            return Ok(0);
        }
        if q.max_files > 0 && usage.accepted_files >= q.max_files {
            return Err(IngestError::QuotaFiles { limit: q.max_files });
        }
        if q.max_bytes > 0 && usage.accepted_bytes + incoming > q.max_bytes {
            return Err(IngestError::QuotaBytes { limit: q.max_bytes });
        }
        Ok(usage.accepted_bytes)
    }

    fn quota_bytes(&self, tenant: &str) -> u64 {
        self.tenants
            .snapshot()
            .tenant(tenant)
            .map(|t| t.quota.max_bytes)
            .unwrap_or(0)
    }
}

/// The file-name rules, as a session error.
fn check_name(name: &str) -> Result<()> {
    names::check(name).map_err(|reason| IngestError::NameNotAllowed {
        name: name.into(),
        reason,
    })
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| IngestError::Io(io::Error::other(e)))?
}

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
