//! Institutions (tenants) and other principals, read from `tenants.toml`.
//!
//! The file is the source of truth; [`Registry`] holds the parsed snapshot and swaps
//! it atomically on SIGHUP so that sessions already open keep working and new logins
//! see the new file. A bad file on reload is refused and the old snapshot stays.

mod access;
mod file;
mod token;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

pub use access::Refusal;
pub use file::{
    NetRange, Principal, Profile, Quota, Role, Suspension, Tenant, TenantsError, TenantsFile,
};
pub use token::{TokenHash, mint_token, register_client_cert};

use crate::telemetry::events::{InternalEvent, TenantsLoaded, TenantsReloadFailed};

/// A validated, indexed snapshot of the tenants file.
#[derive(Debug, Default)]
pub struct Tenants {
    by_code: HashMap<String, Tenant>,
    principals: Vec<Principal>,
}

impl Tenants {
    pub fn from_file(file: TenantsFile) -> Tenants {
        let by_code = file
            .tenants
            .into_iter()
            .map(|t| (t.code.clone(), t))
            .collect();
        Tenants {
            by_code,
            principals: file.principals,
        }
    }

    pub fn tenant(&self, code: &str) -> Option<&Tenant> {
        self.by_code.get(code)
    }

    /// Every hospital's code, in no particular order.
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.by_code.keys().map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    pub fn principals(&self) -> &[Principal] {
        &self.principals
    }

    /// The tenant an API token belongs to. Every registered hash is compared in
    /// constant time, so the answer's timing does not depend on which one matched.
    pub fn by_token(&self, token: &str) -> Option<&Tenant> {
        let presented = TokenHash::of(token);
        let now = crate::util::unix_now();
        let mut found = None;
        for t in self.by_code.values() {
            for h in &t.token_hashes {
                if h.same_as(&presented) && !h.expired(now) && found.is_none() {
                    found = Some(t);
                }
            }
        }
        found
    }

    /// The reviewer or admin an API token belongs to (constant time, like tenants).
    pub fn principal_by_token(&self, token: &str) -> Option<&Principal> {
        let presented = TokenHash::of(token);
        let now = crate::util::unix_now();
        let mut found = None;
        for p in &self.principals {
            for h in &p.token_hashes {
                if h.same_as(&presented) && !h.expired(now) && found.is_none() {
                    found = Some(p);
                }
            }
        }
        found
    }

    /// Whether `token` is one that was registered and has expired (so the caller can be
    /// told so instead of "not valid").
    pub fn token_expired(&self, token: &str) -> bool {
        let presented = TokenHash::of(token);
        let now = crate::util::unix_now();
        let hashes = self
            .by_code
            .values()
            .flat_map(|t| t.token_hashes.iter())
            .chain(self.principals.iter().flat_map(|p| p.token_hashes.iter()));
        hashes
            .filter(|h| h.same_as(&presented))
            .fold(false, |acc, h| acc | h.expired(now))
    }

    /// The tenant a client certificate (DER) names by its hospital code — the subject's
    /// serialNumber or common name is exactly a tenant's 10-digit code. Only for
    /// certificates already verified against the operator's client CA (rule 25:
    /// institution cards carry the institution's code).
    pub fn by_cert_subject(&self, der: &[u8]) -> Option<&Tenant> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let subject = cert.subject();
        let values = subject
            .iter_by_oid(&x509_parser::oid_registry::OID_X509_SERIALNUMBER)
            .chain(subject.iter_common_name())
            .filter_map(|a| a.as_str().ok());
        for v in values {
            if let Some(t) = self.by_code.get(v.trim()) {
                return Some(t);
            }
        }
        None
    }

    /// The tenant a client certificate (DER) is registered to.
    pub fn by_client_cert(&self, der: &[u8]) -> Option<&Tenant> {
        let presented = TokenHash::of_bytes(der);
        self.by_code
            .values()
            .find(|t| t.client_cert_sha256.iter().any(|h| h.same_as(&presented)))
    }
}

/// True when `ip` is inside one of `ranges`.
fn in_ranges(ranges: &[NetRange], ip: IpAddr) -> bool {
    // An IPv4 client reaching a dual-stack socket shows up as ::ffff:a.b.c.d.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    ranges.iter().any(|r| r.contains(ip))
}

impl Tenant {
    /// True when `ip` is inside one of the tenant's registered ranges.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        in_ranges(&self.allow_ips, ip)
    }

    /// The SFTP host addresses (`sftp_allow_ips`, else `allow_ips`).
    pub fn allows_sftp_ip(&self, ip: IpAddr) -> bool {
        in_ranges(
            self.sftp_allow_ips.as_deref().unwrap_or(&self.allow_ips),
            ip,
        )
    }

    /// The system (API) host addresses (`api_allow_ips`, else `allow_ips`).
    pub fn allows_api_ip(&self, ip: IpAddr) -> bool {
        in_ranges(self.api_allow_ips.as_deref().unwrap_or(&self.allow_ips), ip)
    }
}

impl Principal {
    /// True when `ip` is inside one of the principal's registered ranges.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        in_ranges(&self.allow_ips, ip)
    }

    /// True when the principal may read `tenant`'s files.
    pub fn may_read(&self, tenant: &str) -> bool {
        self.tenants.iter().any(|t| t == "*" || t == tenant)
    }

    /// The tenants it may read; `None` = all.
    pub fn grant(&self) -> Option<Vec<String>> {
        (!self.tenants.iter().any(|t| t == "*")).then(|| self.tenants.clone())
    }
}

/// The live tenants snapshot, shared by every front end.
#[derive(Clone)]
pub struct Registry {
    path: PathBuf,
    current: Arc<RwLock<Arc<Tenants>>>,
    /// Counts reloads: sessions watch it to end at once when their access is gone.
    changes: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Registry {
    /// Loads `path`; a missing file is an empty registry (with a warning), a bad one an error.
    pub fn load(path: &Path) -> Result<Registry, TenantsError> {
        let tenants = read_snapshot(path)?;
        TenantsLoaded {
            path,
            tenants: tenants.len(),
            principals: tenants.principals.len(),
            reload: false,
        }
        .emit();
        Ok(Registry {
            path: path.to_owned(),
            current: Arc::new(RwLock::new(Arc::new(tenants))),
            changes: Arc::new(tokio::sync::watch::Sender::new(0)),
        })
    }

    /// Changes after every successful reload.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    pub fn snapshot(&self) -> Arc<Tenants> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads the file; on error the previous snapshot stays in force.
    pub fn reload(&self) -> Result<(), TenantsError> {
        match read_snapshot(&self.path) {
            Ok(tenants) => {
                TenantsLoaded {
                    path: &self.path,
                    tenants: tenants.len(),
                    principals: tenants.principals.len(),
                    reload: true,
                }
                .emit();
                let mut guard = match self.current.write() {
                    Ok(g) => g,
                    Err(poisoned) => poisoned.into_inner(),
                };
                *guard = Arc::new(tenants);
                drop(guard);
                self.changes.send_modify(|n| *n = n.wrapping_add(1));
                Ok(())
            }
            Err(e) => {
                TenantsReloadFailed {
                    error: &e,
                    code: e.code(),
                }
                .emit();
                Err(e)
            }
        }
    }
}

fn read_snapshot(path: &Path) -> Result<Tenants, TenantsError> {
    if !path.exists() {
        tracing::warn!(path = %path.display(), "tenants file not found: no institution can log in");
        return Ok(Tenants::default());
    }
    Ok(Tenants::from_file(TenantsFile::read(path)?))
}
