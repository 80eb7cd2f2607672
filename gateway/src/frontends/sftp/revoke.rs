//! Immediate revocation (DOMAIN rule 18: access of departed staff ends "at once"): a
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

/// Why the logged-in session must end under the current tenants, if it must.
pub fn revoked(tenants: &Registry, login: &LoginKey, ip: IpAddr) -> Option<(String, &'static str)> {
    let (code, key) = login.get()?;
    let snapshot = tenants.snapshot();
    let Some(t) = snapshot.tenant(&code) else {
        return Some((code, "tenant_removed"));
    };
    let reason = if t.suspension().at(crate::util::unix_now()).is_some() {
        "suspended"
    } else if !t.allows_ip(ip) {
        "ip_not_allowed"
    } else if !t.ssh_keys.iter().any(|line| same_key(line, &key)) {
        "key_removed"
    } else {
        return None;
    };
    Some((code, reason))
}

fn same_key(line: &str, key: &str) -> bool {
    match (
        russh::keys::PublicKey::from_openssh(line),
        russh::keys::PublicKey::from_openssh(key),
    ) {
        (Ok(a), Ok(b)) => a.key_data() == b.key_data(),
        _ => false,
    }
}
