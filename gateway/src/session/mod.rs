//! The one ingest session every front end uses (SFTP, tus, STOW): `open` → `write_at`
//! → `finish`. Limits are enforced here, not in front ends, and `finish` is the single
//! commit point where an upload becomes *accepted*: its bytes complete, verified (the
//! age final chunk authenticated), fsync'd, and its catalog row committed.
//!
//! Resume is the same for every protocol: open the same upload again (by name for
//! SFTP, by id for tus) and continue at `offset()`, which after a crash is the last
//! durable length the catalog recorded.

mod error;
mod inbox;
pub mod names;
pub mod spool;
pub mod summary;

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

pub use error::IngestError;
pub use inbox::Renamed;
mod admission;
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
    /// Woken on every acceptance, so the pipeline does not poll.
    accepted: Arc<tokio::sync::Notify>,
    /// The same for the small-file lane's workers, which may sleep through a large one.
    accepted_small: Arc<tokio::sync::Notify>,
    /// Objects are shared by content: indexing holds this for reading from storing an
    /// object to committing the file that uses it, retention for writing from finding
    /// an object unused to deleting it, so it never deletes one a file is about to use.
    objects_in_use: tokio::sync::RwLock<()>,
    /// When uploads were accepted in this process, for `gateway_time_to_indexed_seconds`
    /// (the catalog's `accepted_at` has only seconds).
    accepted_at: std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>,
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

/// The state of an upload while bytes arrive.
struct Receiving {
    spool: SpoolFile,
    /// Authenticates and decrypts; its sink holds the plaintext of the latest write,
    /// which is hashed during the next one (on the other core).
    opener: StreamOpener<Vec<u8>>,
    sha: ring::digest::Context,
    /// The previous plaintext buffer, kept for reuse.
    spare: Vec<u8>,
    /// When the spool was last made durable (a slow line syncs on time, not bytes).
    last_sync: std::time::Instant,
    /// ASCII armor (`age -a`), known from the first byte: the verifier is fed the
    /// decoded bytes; the spool keeps what the client sent (its offsets are the
    /// client's), and the check turns it binary before anything else reads it.
    armor: Armor,
}

enum Armor {
    Unknown,
    Binary,
    Armored(Box<crate::sealed::armor::Dearmor>, Vec<u8>),
}

impl Armor {
    /// Feeds `data` (as the client sent it) to `opener`.
    fn verify(&mut self, opener: &mut StreamOpener<Vec<u8>>, data: &[u8]) -> Result<()> {
        if let (Armor::Unknown, Some(&first)) = (&*self, data.first()) {
            *self = if crate::sealed::armor::looks_armored(first) {
                Armor::Armored(Box::default(), Vec::new())
            } else {
                Armor::Binary
            };
        }
        match self {
            Armor::Armored(d, buf) => {
                buf.clear();
                d.push(data, buf)?;
                opener.push(buf)?;
            }
            _ => opener.push(data)?,
        }
        Ok(())
    }

    /// Whether the armor, if any, is complete too.
    fn complete(&mut self) -> bool {
        match self {
            Armor::Armored(d, _) => d.complete(),
            _ => true,
        }
    }
}

impl Receiving {
    fn new(spool: SpoolFile, opener: StreamOpener<Vec<u8>>) -> Box<Receiving> {
        Box::new(Receiving {
            spool,
            opener,
            sha: ring::digest::Context::new(&ring::digest::SHA256),
            spare: Vec::new(),
            last_sync: std::time::Instant::now(),
            armor: Armor::Unknown,
        })
    }

    /// Appends `data` to the spool and verifies it, side by side: one core writes the
    /// spool (and fsyncs every `every.0` bytes, or once `every.1` has passed since the
    /// last sync — on a 64 kbit/s line 8 MiB take 17 minutes, rule 24) and hashes
    /// the plaintext of the previous write while the other authenticates and decrypts
    /// this one. Returns the new durable length when it synced.
    fn push(&mut self, data: &[u8], every: (u64, std::time::Duration)) -> Result<Option<u64>> {
        const SPARE_KEPT: usize = 256 << 10;
        let Receiving {
            spool,
            opener,
            sha,
            spare,
            last_sync,
            armor,
        } = self;
        let (interval, period) = every;
        std::mem::swap(opener.sink_mut(), spare);
        opener.sink_mut().clear();
        let previous = &*spare;
        let (written, verified) = rayon::join(
            || -> Result<Option<u64>> {
                sha.update(previous);
                spool.append(data)?;
                let due = spool.unsynced() >= interval
                    || (spool.unsynced() > 0 && last_sync.elapsed() >= period);
                Ok(if due {
                    *last_sync = std::time::Instant::now();
                    Some(spool.sync()?)
                } else {
                    None
                })
            },
            || armor.verify(opener, data),
        );
        verified?;
        // The previous plaintext is hashed: its buffer is not kept between writes, so an
        // upload waiting for its next bytes holds one write's plaintext, not two
        // (measured: 100 uploads at once held ~4 MiB each in these spares).
        if spare.capacity() > SPARE_KEPT {
            *spare = Vec::new();
        }
        written
    }

    /// Whether the file is complete: the final chunk authenticated. Then returns the
    /// plaintext length and SHA-256.
    fn complete(&mut self) -> Option<(u64, [u8; 32])> {
        if !self.opener.probe_final() || !self.armor.complete() {
            return None;
        }
        // `spare` was hashed during the last push; the sink holds the rest.
        self.sha.update(self.opener.sink_mut());
        self.opener.sink_mut().clear();
        let mut d = [0u8; 32];
        d.copy_from_slice(self.sha.clone().finish().as_ref());
        Some((self.opener.verified_plaintext(), d))
    }
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
            accepted: Arc::new(tokio::sync::Notify::new()),
            accepted_small: Arc::new(tokio::sync::Notify::new()),
            objects_in_use: tokio::sync::RwLock::new(()),
            accepted_at: std::sync::Mutex::default(),
            live: live::LiveUploads::default(),
            admission: admission::Admission::new(settings.max_backlog, settings.admission_wait),
            settings,
        })
    }

    /// Seconds since `upload` was accepted (forgetting it): precise for uploads accepted
    /// by this process, else from the catalog's `accepted_at`.
    pub fn since_accepted(&self, upload: &UploadRow) -> f64 {
        let mine = self
            .accepted_at
            .lock()
            .ok()
            .and_then(|mut m| m.remove(&upload.id));
        match (mine, upload.accepted_at) {
            (Some(at), _) => at.elapsed().as_secs_f64(),
            (None, Some(secs)) => (crate::util::unix_now() - secs).max(0) as f64,
            (None, None) => 0.0,
        }
    }

    /// See the `objects_in_use` field.
    pub fn objects_in_use(&self) -> &tokio::sync::RwLock<()> {
        &self.objects_in_use
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

    /// Notified whenever an upload is accepted.
    /// Woken on every acceptance, for the small-file lane.
    pub fn accepted_small_signal(&self) -> Arc<tokio::sync::Notify> {
        self.accepted_small.clone()
    }

    pub fn accepted_signal(&self) -> Arc<tokio::sync::Notify> {
        self.accepted.clone()
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
        let live = self.hold(&id)?;
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
        let live = self.hold(&row.id)?;
        // The catalog row may predate the last holder's final sync: read it again now
        // that this connection is the only writer.
        let row = self
            .catalog
            .upload(&row.id)
            .await?
            .filter(|r| r.state == UploadState::Receiving)
            .ok_or_else(|| IngestError::NotReceiving(row.id.clone()))?;
        let tenant_bytes = self.catalog.tenant_usage(&row.tenant).await?.accepted_bytes;
        let core = self.clone();
        let (tenant, id, durable) = (row.tenant.clone(), row.id.clone(), row.durable_offset);
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

    /// This connection's hold on upload `id`, or `ingest.busy` while another has it.
    fn hold(&self, id: &str) -> Result<live::Live> {
        self.live
            .take(id)
            .ok_or_else(|| IngestError::Busy(id.to_string()))
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

impl Upload {
    pub fn id(&self) -> &str {
        &self.row.id
    }

    pub fn name(&self) -> &str {
        &self.row.name
    }

    pub fn declared_len(&self) -> Option<u64> {
        self.row.declared_len
    }

    /// Where the next write must start: every byte before it is on the gateway.
    pub fn offset(&self) -> u64 {
        self.inner
            .as_ref()
            .map(|r| r.spool.len())
            .unwrap_or(self.row.durable_offset)
    }

    /// Appends `data` at `offset`, which must be exactly `offset()`.
    pub async fn write_at(&mut self, offset: u64, data: Vec<u8>) -> Result<()> {
        let expected = self.offset();
        if offset != expected {
            return Err(IngestError::OffsetMismatch {
                expected,
                got: offset,
            });
        }
        let end = expected + data.len() as u64;
        self.check_limits(end)?;
        crate::telemetry::metrics::METRICS
            .received_bytes
            .with_label_values(&[self.row.protocol.as_str()])
            .inc_by(data.len() as u64);
        let every = (
            self.core.settings.fsync_interval_bytes,
            self.core.sync_period(&self.row.tenant),
        );
        let result = self.with_receiving(move |r| r.push(&data, every)).await;
        match result {
            Ok(Some(durable)) => Ok(self
                .core
                .catalog
                .set_durable_offset(&self.row.id, durable)
                .await?),
            Ok(None) => Ok(()),
            Err(e) => Err(self.fail(e).await),
        }
    }

    fn check_limits(&self, end: u64) -> Result<()> {
        let limit = self.core.settings.max_file_bytes;
        if end > limit {
            return Err(IngestError::TooLarge { limit });
        }
        if let Some(declared) = self.row.declared_len
            && end > declared
        {
            return Err(IngestError::LengthExceeded { declared });
        }
        let quota = self.core.quota_bytes(&self.row.tenant);
        if quota > 0 && !self.row.is_precheck() && self.tenant_bytes + end > quota {
            return Err(IngestError::QuotaBytes { limit: quota });
        }
        Ok(())
    }

    /// The client went away without finishing (disconnect, close of a partial file):
    /// make what arrived durable so a later resume continues from here.
    pub async fn suspend(mut self) -> Result<u64> {
        self.sync().await
    }

    /// A storage or catalog error interrupted it: drop it and reopen (resume) instead.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Makes every byte received so far durable and records it; returns that offset.
    pub async fn sync(&mut self) -> Result<u64> {
        let durable = match self.with_receiving(|r| Ok(r.spool.sync()?)).await {
            Ok(d) => d,
            Err(e) => return Err(self.fail(e).await),
        };
        self.core
            .catalog
            .set_durable_offset(&self.row.id, durable)
            .await?;
        Ok(durable)
    }

    /// Declares the length of an upload created without one (tus
    /// `creation-defer-length`). Once declared it cannot change.
    pub async fn declare_len(&mut self, len: u64) -> Result<()> {
        match self.row.declared_len {
            Some(d) if d == len => return Ok(()),
            Some(d) => return Err(IngestError::LengthExceeded { declared: d }),
            None => {}
        }
        if len < self.offset() {
            return Err(IngestError::LengthShort {
                declared: len,
                got: self.offset(),
            });
        }
        let limit = self.core.settings.max_file_bytes;
        if len > limit {
            return Err(IngestError::TooLarge { limit });
        }
        self.core
            .catalog
            .set_declared_len(&self.row.id, len)
            .await?;
        self.row.declared_len = Some(len);
        Ok(())
    }

    /// Gives the upload its final name (clients that upload under a temporary name and
    /// rename at the end). The name rules apply to the new name.
    pub async fn rename(&mut self, name: &str) -> Result<()> {
        check_name(name)?;
        if names::is_precheck(name) != self.row.is_precheck() {
            return Err(IngestError::NameNotAllowed {
                name: name.into(),
                reason: "a pre-check stays a pre-check and an upload stays an upload",
            });
        }
        if !self.core.catalog.rename_upload(&self.row.id, name).await? {
            return Err(IngestError::NotReceiving(self.row.id.clone()));
        }
        self.row.name = name.to_string();
        Ok(())
    }

    /// The commit point. On success the upload is accepted; on a resumable error
    /// (incomplete) it stays receiving; on a verification failure it is rejected.
    ///
    /// It runs to its end even when the caller is dropped (a client that disconnects
    /// while its last request is being answered cancels the request's future): the
    /// upload stays held (one writer) until the acceptance has committed or failed.
    /// Cancelled half-way, the acceptance could commit after this upload let go, and a
    /// resume that reopened it in between would then fail its own acceptance with
    /// `catalog.conflict` (seen under the loadtest while the whole suite ran).
    pub async fn finish(self) -> Result<Accepted> {
        tokio::spawn(self.finish_to_the_end())
            .await
            .map_err(|e| IngestError::Io(std::io::Error::other(e)))?
    }

    async fn finish_to_the_end(mut self) -> Result<Accepted> {
        let len = self.offset();
        // Whatever happens next, what arrived is made durable first: a client that
        // closes early resumes from here.
        let verdict = self
            .with_receiving(|r| {
                r.spool.sync()?;
                Ok(r.complete())
            })
            .await;
        let verdict = match verdict {
            Ok(v) => v,
            Err(e) => return Err(self.fail(e).await),
        };
        let declared_ok = self.row.declared_len.is_none_or(|d| d == len);
        let (plaintext_len, sha) = match verdict {
            Some(v) if declared_ok => v,
            _ => {
                let e = match self.row.declared_len {
                    Some(declared) if !declared_ok => {
                        IngestError::LengthShort { declared, got: len }
                    }
                    _ => IngestError::Sealed(crate::sealed::SealedError::Truncated {
                        verified: self
                            .inner
                            .as_ref()
                            .map(|r| r.opener.verified_plaintext())
                            .unwrap_or(0),
                    }),
                };
                self.core
                    .catalog
                    .set_durable_offset(&self.row.id, len)
                    .await?;
                if self.row.declared_len == Some(len) {
                    // Every declared byte is here and no more may come, yet the sealed
                    // stream never ended: the file is broken, not incomplete.
                    return Err(self.reject(e).await);
                }
                return Err(e);
            }
        };
        let sha = hex::encode(sha);
        let seq = self
            .core
            .catalog
            .accept_upload(&self.row.id, len, plaintext_len, &sha)
            .await?;
        self.inner = None;
        let accepted = Accepted {
            id: self.row.id.clone(),
            sealed_len: len,
            plaintext_len,
            plaintext_sha256: sha,
            seq,
        };
        if let Ok(mut m) = self.core.accepted_at.lock() {
            m.insert(self.row.id.clone(), std::time::Instant::now());
        }
        match self.ticket.take() {
            Some(t) => t.accepted(),
            None => self.core.admission.accepted(),
        }
        // Wake a pipeline worker: it sleeps until something is accepted.
        self.core.accepted.notify_one();
        self.core.accepted_small.notify_one();
        UploadAccepted {
            tenant: &self.row.tenant,
            protocol: &self.row.protocol,
            bytes: len,
            seconds: self.opened.elapsed().as_secs_f64(),
        }
        .emit();
        Ok(accepted)
    }

    async fn with_receiving<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Receiving) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let mut r = self.inner.take().ok_or_else(|| {
            if self.broken {
                IngestError::Io(io::Error::other(
                    "a storage error interrupted this upload; resume it from its offset",
                ))
            } else {
                IngestError::NotReceiving(self.row.id.clone())
            }
        })?;
        // Straight onto the rayon pool, whose `join` splits the work across cores: going
        // through tokio's blocking pool first cost two more thread hand-offs per write,
        // which on 256 KiB writes was a fifth of the time (perf: futex waits, yields).
        let (tx, rx) = tokio::sync::oneshot::channel();
        rayon::spawn(move || {
            let out = f(&mut r);
            let _ = tx.send((r, out));
        });
        let (r, out) = rx.await.map_err(|e| IngestError::Io(io::Error::other(e)))?;
        self.inner = Some(r);
        out
    }

    /// A failed write or finish: resumable errors leave the upload as it was; a failed
    /// verification rejects it (its bytes stay in the spool for inspection).
    async fn fail(&mut self, e: IngestError) -> IngestError {
        if matches!(e, IngestError::Io(_) | IngestError::Catalog(_)) || e.is_disk_full() {
            // The spool may hold less than the verifier consumed: stop here.
            self.inner = None;
            self.broken = true;
            return e;
        }
        if e.is_resumable() {
            return e;
        }
        self.reject(e).await
    }

    /// Rejects the upload for `e`, which it returns.
    async fn reject(&mut self, e: IngestError) -> IngestError {
        self.inner = None;
        let check = Check::new(e.code(), Severity::Error, e.to_string());
        if let Err(ce) = self
            .core
            .catalog
            .reject_upload(
                &self.row.id,
                std::slice::from_ref(&check),
                &crate::events::Event::upload_rejected(
                    &self.row.tenant,
                    &self.row.id,
                    &self.row.name,
                    std::slice::from_ref(&check),
                ),
            )
            .await
        {
            tracing::error!(code = ce.code(), error = %ce, "cannot record rejection");
        }
        UploadRejected {
            tenant: &self.row.tenant,
            protocol: &self.row.protocol,
            code: e.code(),
        }
        .emit();
        e
    }
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
