//! Who may act for a hospital: the hospital itself, or an IT vendor that both sides
//! admit — the vendor names the hospital in its `tenants`, the hospital names the vendor
//! in `allow_vendors` (rule 17: either side alone is refused). A vendor signs in
//! with its own keys and tokens, from its own allow-list.

use std::net::IpAddr;

use super::{Principal, Role, Tenant, Tenants};

/// Why access is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    UnknownTenant,
    IpNotAllowed,
    KeyNotAuthorized,
    /// The suspended party's reason.
    Suspended(String),
    VendorNotAllowed,
}

impl Tenants {
    /// An SFTP login as hospital `code` with `key` from `ip`: `Ok(None)` for the
    /// hospital's own key, `Ok(Some(vendor))` for an admitted vendor's.
    pub fn ssh_login(
        &self,
        code: &str,
        key: &russh::keys::PublicKey,
        ip: IpAddr,
        now: i64,
    ) -> Result<Option<String>, Refusal> {
        let tenant = self.tenant(code).ok_or(Refusal::UnknownTenant)?;
        let holds = |lines: &[String]| {
            lines.iter().any(|l| {
                russh::keys::PublicKey::from_openssh(l)
                    .is_ok_and(|k| k.key_data() == key.key_data())
            })
        };
        if holds(&tenant.ssh_keys) {
            if !tenant.allows_sftp_ip(ip) {
                return Err(Refusal::IpNotAllowed);
            }
            return suspended(tenant, None, now).map(|()| None);
        }
        let vendor = self
            .principals()
            .iter()
            .find(|p| p.role == Role::Vendor && holds(&p.ssh_keys));
        match vendor {
            Some(v) => {
                if !v.allows_ip(ip) {
                    return Err(Refusal::IpNotAllowed);
                }
                self.vendor_may_act(v, code, now)?;
                Ok(Some(v.name.clone()))
            }
            None if !tenant.allows_sftp_ip(ip) => Err(Refusal::IpNotAllowed),
            None => Err(Refusal::KeyNotAuthorized),
        }
    }

    /// Whether vendor `v` may act for hospital `code` now: both sides consent and
    /// neither is suspended.
    pub fn vendor_may_act(&self, v: &Principal, code: &str, now: i64) -> Result<&Tenant, Refusal> {
        let tenant = self.tenant(code).ok_or(Refusal::VendorNotAllowed)?;
        let both = v.role == Role::Vendor
            && v.tenants.iter().any(|t| t == code)
            && tenant.allow_vendors.iter().any(|n| n == &v.name);
        if !both {
            return Err(Refusal::VendorNotAllowed);
        }
        suspended(tenant, Some(v), now)?;
        Ok(tenant)
    }

    /// The hospitals vendor `v` may act for: the ones that admitted it.
    pub fn consenting(&self, v: &Principal) -> Vec<String> {
        let mut out: Vec<String> = v
            .tenants
            .iter()
            .filter(|code| {
                self.tenant(code)
                    .is_some_and(|t| t.allow_vendors.iter().any(|n| n == &v.name))
            })
            .cloned()
            .collect();
        out.sort();
        out
    }
}

fn suspended(t: &Tenant, v: Option<&Principal>, now: i64) -> Result<(), Refusal> {
    if let Some(why) = v.and_then(|v| v.suspension().at(now)) {
        return Err(Refusal::Suspended(why));
    }
    match t.suspension().at(now) {
        Some(why) => Err(Refusal::Suspended(why)),
        None => Ok(()),
    }
}
