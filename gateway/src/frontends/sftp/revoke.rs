//! Immediate revocation (rule 18: access of departed staff ends "at once"): a
//! tenants reload that removes the key a session logged in with, suspends or removes
//! its tenant, or takes its address off the allow-list ends that session then, not at
//! its next login. Uploads it had under way stay resumable from their durable offsets.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::tenants::Registry;

/// The tenant and the key (OpenSSH form) a connection logged in with.
#[derive(Clone, Default)]
pub struct LoginKey(Arc<Mutex<Option<(String, String)>>>);

impl LoginKey {
    pub fn set(&self, tenant: &str, key: String) {
        if let Ok(mut g) = self.0.lock() {
            *g = Some((tenant.to_string(), key));
        }
    }

    fn get(&self) -> Option<(String, String)> {
        self.0.lock().ok().and_then(|g| g.clone())
    }
}

/// Why the logged-in session must end under the current tenants, if it must: the same
/// decision as at login (a hospital's own key, or an admitted vendor's), taken again.
pub fn revoked(tenants: &Registry, login: &LoginKey, ip: IpAddr) -> Option<(String, &'static str)> {
    use crate::tenants::Refusal;
    let (code, key) = login.get()?;
    let key = russh::keys::PublicKey::from_openssh(&key).ok()?;
    let refused = tenants
        .snapshot()
        .ssh_login(&code, &key, ip, crate::util::unix_now())
        .err()?;
    let reason = match refused {
        Refusal::UnknownTenant => "tenant_removed",
        Refusal::Suspended(_) => "suspended",
        Refusal::IpNotAllowed => "ip_not_allowed",
        Refusal::KeyNotAuthorized => "key_removed",
        Refusal::VendorNotAllowed => "vendor_not_allowed",
    };
    Some((code, reason))
}
