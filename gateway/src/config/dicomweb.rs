//! The `[dicomweb]` section.

use serde::{Deserialize, Serialize};

use crate::tenants::Profile;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DicomwebConfig {
    /// Profiles whose hospitals may STOW plain (unsealed) DICOM over the TLS channel;
    /// the gateway seals it on arrival. Others must send sealed parts.
    pub plain_profiles: Vec<Profile>,
    /// How long a STOW-RS answer waits for its parts to be checked and indexed.
    pub stow_wait_secs: u64,
}

impl Default for DicomwebConfig {
    fn default() -> Self {
        DicomwebConfig {
            plain_profiles: vec![Profile::NhiReview, Profile::Generic],
            stow_wait_secs: 120,
        }
    }
}
