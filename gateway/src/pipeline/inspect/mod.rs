//! Inspection: what a verified plaintext is, and whether the tenant's profile takes it.
//! The type comes from the content (magic bytes), never from the name, so a renamed
//! executable is still an executable. Format-specific inspectors (PDF, DICOM, DICOMDIR,
//! ZIP) plug in behind [`inspect`] with their own issue; here is the dispatch and the
//! generic type check every profile runs.

mod magic;

use std::io::{Read, Seek, SeekFrom};

pub use magic::{MediaType, sniff};

pub use crate::checks::{Check, Severity};
use crate::tenants::Profile;

/// What inspection found.
#[derive(Debug, Clone)]
pub struct Inspection {
    pub media_type: MediaType,
    pub checks: Vec<Check>,
    pub metadata: serde_json::Value,
}

impl Inspection {
    pub fn passed(&self) -> bool {
        !self.checks.iter().any(|c| c.severity == Severity::Error)
    }
}

/// Types each profile accepts (DOMAIN rule 5 for `nhi-review`, plus ZIP batches, rule 8; `emr-download` takes
/// encrypted PDF records only; `generic` anything recognised that is not executable).
pub fn allowed(profile: Profile, t: MediaType) -> bool {
    use MediaType::*;
    match profile {
        Profile::NhiReview => matches!(
            t,
            Dicom
                | Text
                | Gif
                | Jpeg
                | Pict
                | Tiff
                | Bmp
                | Pdf
                | Html
                | Doc
                | Mpeg
                | Mp4
                | Xml
                | Zip
        ),
        Profile::EmrDownload => t == Pdf,
        Profile::Generic => !matches!(t, Executable | Unknown),
    }
}

/// The plaintext an inspector reads: decrypted on demand, so seeking is cheap and only
/// what is read costs anything.
pub trait Plaintext: Read + Seek + Send {}
impl<T: Read + Seek + Send> Plaintext for T {}

/// Reads what `profile` needs of `plaintext` and runs its checks.
pub fn inspect(plaintext: &mut dyn Plaintext, profile: Profile) -> std::io::Result<Inspection> {
    let mut head = Vec::with_capacity(4096);
    plaintext.seek(SeekFrom::Start(0))?;
    plaintext.take(4096).read_to_end(&mut head)?;
    let media_type = sniff(&head);
    let mut checks = Vec::new();
    if allowed(profile, media_type) {
        checks.push(Check::new(
            "type.allowed",
            Severity::Info,
            format!("content is {}", media_type.description()),
        ));
    } else {
        let code = if media_type == MediaType::Unknown {
            "type.unknown"
        } else {
            "type.not_allowed"
        };
        checks.push(
            Check::new(
                code,
                Severity::Error,
                format!(
                    "{} is not accepted for this profile",
                    media_type.description()
                ),
            )
            .with_detail(serde_json::json!({ "media_type": media_type.mime() })),
        );
    }
    Ok(Inspection {
        media_type,
        checks,
        metadata: serde_json::json!({ "media_type": media_type.mime() }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renamed_executable_is_refused_whatever_its_name() {
        use std::io::Cursor;
        let exe: &[u8] = b"MZ\x90\x00\x03\x00\x00\x00";
        for profile in [Profile::NhiReview, Profile::EmrDownload, Profile::Generic] {
            let i = inspect(&mut Cursor::new(exe), profile).unwrap();
            assert!(!i.passed());
            assert_eq!(i.checks[0].code, "type.not_allowed");
        }
        let pdf: &[u8] = b"%PDF-1.7\n%%EOF\n";
        assert!(
            inspect(&mut Cursor::new(pdf), Profile::EmrDownload)
                .unwrap()
                .passed()
        );
        let jpeg: &[u8] = b"\xff\xd8\xff\xe0";
        assert!(
            !inspect(&mut Cursor::new(jpeg), Profile::EmrDownload)
                .unwrap()
                .passed(),
            "emr-download takes PDF only"
        );
        assert!(
            inspect(&mut Cursor::new(jpeg), Profile::NhiReview)
                .unwrap()
                .passed()
        );
    }
}
