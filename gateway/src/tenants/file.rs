//! The `tenants.toml` format and its validation.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use super::token::TokenHash;

#[derive(Debug, thiserror::Error)]
pub enum TenantsError {
    #[error("cannot read tenants file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tenants file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot write tenants file {path}: {message}")]
    Write { path: PathBuf, message: String },
}

impl TenantsError {
    pub fn code(&self) -> &'static str {
        match self {
            TenantsError::Read { .. } => "tenants.unreadable",
            TenantsError::Invalid { .. } => "tenants.invalid",
            TenantsError::Write { .. } => "tenants.unwritable",
        }
    }
}

/// Which rules a tenant's uploads are checked against (see docs/ARCHITECTURE.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    NhiReview,
    EmrDownload,
    Generic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Reviewer,
    Admin,
    /// An IT vendor (HIS廠商) acting for hospitals: only for those it lists in `tenants`
    /// that also list it in `allow_vendors` (rule 17).
    Vendor,
}

/// An address range from the allow-list: a CIDR (`10.1.0.0/16`) or a single address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRange(pub IpNet);

impl NetRange {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip)
    }
}

impl FromStr for NetRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(net) = IpNet::from_str(s) {
            return Ok(NetRange(net.trunc()));
        }
        IpAddr::from_str(s)
            .map(|ip| NetRange(IpNet::from(ip)))
            .map_err(|_| format!("`{s}` is neither an IP address nor a CIDR range"))
    }
}

impl<'de> Deserialize<'de> for NetRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for NetRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quota {
    /// Bytes the tenant may hold in accepted uploads; 0 = unlimited.
    pub max_bytes: u64,
    /// Accepted files the tenant may hold; 0 = unlimited.
    pub max_files: u64,
    /// Uploads in progress at once; 0 = unlimited.
    pub max_concurrent_uploads: u32,
    /// HTTPS API calls per second (bursts of twice that); 0 = unlimited.
    pub requests_per_second: u32,
}

/// An institution (醫事機構), keyed by its 10-digit hospital code.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenant {
    pub code: String,
    pub name: String,
    pub profile: Profile,
    /// OpenSSH public keys (`ssh-ed25519 AAAA… comment`) allowed to log in over SFTP.
    #[serde(default)]
    pub ssh_keys: Vec<String>,
    /// Hashes of API tokens (`sha256:<hex>`); mint with `gateway tenants token CODE`.
    #[serde(default)]
    pub token_hashes: Vec<TokenHash>,
    /// SHA-256 fingerprints (`sha256:<hex>` of the DER form) of client certificates
    /// that identify this tenant over HTTPS instead of a token; register one with
    /// `gateway tenants cert CODE cert.pem`. Used only when `[https]
    /// client_certificates` is on.
    #[serde(default)]
    pub client_cert_sha256: Vec<TokenHash>,
    /// Registered source addresses; a connection from elsewhere is refused.
    #[serde(default)]
    pub allow_ips: Vec<NetRange>,
    /// The "SFTP host IP" and "system host IP" a hospital registers separately (rule 23): when given, they replace `allow_ips` for SFTP and for the HTTPS API.
    #[serde(default)]
    pub sftp_allow_ips: Option<Vec<NetRange>>,
    #[serde(default)]
    pub api_allow_ips: Option<Vec<NetRange>>,
    #[serde(default)]
    pub quota: Quota,
    /// Days this tenant's indexed files are kept, overriding its profile's
    /// (`[retention]`); 0 = kept.
    #[serde(default)]
    pub retention_days: Option<u32>,
    /// Vendors (principal names, role `vendor`) this hospital admits to act for it.
    #[serde(default)]
    pub allow_vendors: Vec<String>,
    /// Seconds received bytes may wait before they are made durable, overriding
    /// `[ingest] fsync_interval_secs` (a hospital on a slow line re-sends less after a
    /// break, rule 24).
    #[serde(default)]
    pub durable_interval_secs: Option<u64>,
    /// See [`Suspension`].
    #[serde(default)]
    pub suspended_until: Option<String>,
    #[serde(default)]
    pub suspended_reason: Option<String>,
}

/// A suspension (rule 18): until when (`YYYY-MM-DD` or
/// `YYYY-MM-DDTHH:MM:SSZ`; `"indefinite"` for no end) and why — the reason is what the
/// party hears (`auth.suspended`). A reload that suspends ends its open sessions.
#[derive(Debug, Clone, Copy)]
pub struct Suspension<'a> {
    pub suspended_until: Option<&'a str>,
    pub suspended_reason: Option<&'a str>,
}

impl Tenant {
    pub fn suspension(&self) -> Suspension<'_> {
        Suspension {
            suspended_until: self.suspended_until.as_deref(),
            suspended_reason: self.suspended_reason.as_deref(),
        }
    }
}

impl Principal {
    pub fn suspension(&self) -> Suspension<'_> {
        Suspension {
            suspended_until: self.suspended_until.as_deref(),
            suspended_reason: self.suspended_reason.as_deref(),
        }
    }
}

impl Suspension<'_> {
    /// The reason the party is refused at `now` (unix seconds), if it is suspended then.
    pub fn at(&self, now: i64) -> Option<String> {
        let until = self.suspended_until?;
        let active =
            until == "indefinite" || crate::util::parse_instant(until).is_some_and(|end| now < end);
        active.then(|| {
            let reason = self.suspended_reason.unwrap_or("access is suspended");
            if until == "indefinite" {
                reason.to_string()
            } else {
                format!("{reason} (until {until})")
            }
        })
    }

    fn validate(&self, who: &str) -> Result<(), String> {
        match self.suspended_until {
            None | Some("indefinite") => Ok(()),
            Some(u) if crate::util::parse_instant(u).is_some() => Ok(()),
            Some(u) => Err(format!(
                "{who}: suspended_until `{u}` is not YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or \"indefinite\""
            )),
        }
    }
}

/// A reviewer or admin: the review system, an operator.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    /// Tenant codes this principal may read; `["*"]` for all.
    #[serde(default)]
    pub tenants: Vec<String>,
    #[serde(default)]
    pub token_hashes: Vec<TokenHash>,
    /// OpenSSH public keys a vendor logs in with (over SFTP, as the hospital's code).
    #[serde(default)]
    pub ssh_keys: Vec<String>,
    #[serde(default)]
    pub allow_ips: Vec<NetRange>,
    /// An age recipient (`age1…`): when set, every file this principal downloads is
    /// sealed to it (encrypted download, rule 13) unless the request names another.
    #[serde(default)]
    pub age_recipient: Option<String>,
    /// See [`Suspension`].
    #[serde(default)]
    pub suspended_until: Option<String>,
    #[serde(default)]
    pub suspended_reason: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantsFile {
    #[serde(default, rename = "tenant")]
    pub tenants: Vec<Tenant>,
    #[serde(default, rename = "principal")]
    pub principals: Vec<Principal>,
}

impl TenantsFile {
    pub fn read(path: &Path) -> Result<TenantsFile, TenantsError> {
        let text = std::fs::read_to_string(path).map_err(|source| TenantsError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|message| TenantsError::Invalid {
            path: path.to_owned(),
            message,
        })
    }

    pub fn parse(text: &str) -> Result<TenantsFile, String> {
        let file: TenantsFile = toml::from_str(text).map_err(|e| e.to_string())?;
        file.validate()?;
        Ok(file)
    }

    fn validate(&self) -> Result<(), String> {
        let mut codes = HashSet::new();
        for t in &self.tenants {
            if t.code.len() != 10 || !t.code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!(
                    "tenant `{}`: code must be the 10-digit hospital code",
                    t.code
                ));
            }
            if !codes.insert(t.code.as_str()) {
                return Err(format!("tenant `{}` is listed twice", t.code));
            }
            t.suspension().validate(&format!("tenant `{}`", t.code))?;
            for key in &t.ssh_keys {
                russh::keys::PublicKey::from_openssh(key).map_err(|e| {
                    format!("tenant `{}`: ssh key `{}`: {e}", t.code, abbreviate(key))
                })?;
            }
        }
        let mut names = HashSet::new();
        for p in &self.principals {
            p.suspension()
                .validate(&format!("principal `{}`", p.name))?;
            if !names.insert(p.name.as_str()) {
                return Err(format!("principal `{}` is listed twice", p.name));
            }
            for code in &p.tenants {
                if code != "*" && !codes.contains(code.as_str()) {
                    return Err(format!("principal `{}`: unknown tenant `{code}`", p.name));
                }
            }
            for key in &p.ssh_keys {
                if p.role != Role::Vendor {
                    return Err(format!(
                        "principal `{}`: only vendors log in over SFTP (ssh_keys)",
                        p.name
                    ));
                }
                russh::keys::PublicKey::from_openssh(key).map_err(|e| {
                    format!("principal `{}`: ssh key `{}`: {e}", p.name, abbreviate(key))
                })?;
            }
            if p.role == Role::Vendor && p.tenants.iter().any(|t| t == "*") {
                return Err(format!(
                    "vendor `{}`: name the hospitals it acts for, not `*`",
                    p.name
                ));
            }
            if let Some(r) = &p.age_recipient {
                r.parse::<crate::sealed::Recipient>()
                    .map_err(|e| format!("principal `{}`: age_recipient: {e}", p.name))?;
            }
        }
        for t in &self.tenants {
            for v in &t.allow_vendors {
                let vendor = self
                    .principals
                    .iter()
                    .any(|p| &p.name == v && p.role == Role::Vendor);
                if !vendor {
                    return Err(format!(
                        "tenant `{}`: allow_vendors names `{v}`, which is no vendor principal",
                        t.code
                    ));
                }
            }
        }
        Ok(())
    }
}

fn abbreviate(s: &str) -> String {
    if s.len() > 40 {
        format!("{}…", &s[..s.floor_char_boundary(40)])
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ6x9FFXDkk34I/zElZk5rwwlFEKuJ6zGc9VBPmqk/+W test";

    fn tenant(extra: &str) -> String {
        format!(
            "[[tenant]]\ncode = \"3501200000\"\nname = \"A\"\nprofile = \"nhi-review\"\n{extra}\n"
        )
    }

    #[test]
    fn parses_a_full_tenant() {
        let text = tenant(&format!(
            "ssh_keys = [\"{KEY}\"]\nallow_ips = [\"10.0.0.0/8\", \"192.168.1.7\", \"::1\"]\n[tenant.quota]\nmax_bytes = 10\n"
        ));
        let f = TenantsFile::parse(&text).unwrap();
        let t = &f.tenants[0];
        assert_eq!(t.profile, Profile::NhiReview);
        assert_eq!(t.quota.max_bytes, 10);
        assert!(t.allows_ip("10.2.3.4".parse().unwrap()));
        assert!(t.allows_ip("192.168.1.7".parse().unwrap()));
        assert!(!t.allows_ip("192.168.1.8".parse().unwrap()));
        assert!(t.allows_ip("::1".parse().unwrap()));
        assert!(t.allows_ip("::ffff:10.0.0.1".parse().unwrap()));
        assert!(
            t.allows_sftp_ip("10.2.3.4".parse().unwrap()),
            "allow_ips by default"
        );
        let two = tenant(
            "allow_ips = [\"10.0.0.0/8\"]\nsftp_allow_ips = [\"192.0.2.1\"]\napi_allow_ips = [\"198.51.100.0/24\"]",
        );
        let t = &TenantsFile::parse(&two).unwrap().tenants[0];
        assert!(t.allows_sftp_ip("192.0.2.1".parse().unwrap()));
        assert!(!t.allows_sftp_ip("10.1.1.1".parse().unwrap()));
        assert!(t.allows_api_ip("198.51.100.9".parse().unwrap()));
        assert!(!t.allows_api_ip("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn rejects_bad_code_key_profile_and_cidr() {
        let bad_code = tenant("").replace("3501200000", "35012");
        assert!(
            TenantsFile::parse(&bad_code)
                .unwrap_err()
                .contains("10-digit")
        );
        let bad_key = tenant("ssh_keys = [\"ssh-ed25519 nope\"]");
        assert!(
            TenantsFile::parse(&bad_key)
                .unwrap_err()
                .contains("ssh key")
        );
        let bad_profile = tenant("").replace("nhi-review", "nope");
        assert!(
            TenantsFile::parse(&bad_profile)
                .unwrap_err()
                .contains("nope")
        );
        let bad_cidr = tenant("allow_ips = [\"10.0.0.0/99\"]");
        assert!(
            TenantsFile::parse(&bad_cidr)
                .unwrap_err()
                .contains("10.0.0.0/99")
        );
        let unknown = tenant("colour = \"red\"");
        assert!(TenantsFile::parse(&unknown).unwrap_err().contains("colour"));
        let twice = format!("{}{}", tenant(""), tenant(""));
        assert!(TenantsFile::parse(&twice).unwrap_err().contains("twice"));
    }

    #[test]
    fn principal_must_name_known_tenants() {
        let text = format!(
            "{}[[principal]]\nname = \"r\"\nrole = \"reviewer\"\ntenants = [\"1111111111\"]\n",
            tenant("")
        );
        assert!(
            TenantsFile::parse(&text)
                .unwrap_err()
                .contains("unknown tenant")
        );
    }
}
