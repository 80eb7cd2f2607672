//! Content type by magic bytes. Hand-written: the handful of signatures the accepted
//! types need is shorter than any sniffing crate's configuration, and we must also
//! recognise what to refuse (executables) rather than guess.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum MediaType {
    Pdf,
    Dicom,
    Zip,
    /// Microsoft Cabinet: the review channel's packaging for DICOMDIR sets.
    Cab,
    Jpeg,
    Png,
    Gif,
    Tiff,
    Bmp,
    Pict,
    Mp4,
    Mpeg,
    Doc,
    Xml,
    Html,
    Text,
    /// Never sniffed: given to batch manifests, which are parsed as JSON.
    Json,
    Executable,
    Unknown,
}

impl MediaType {
    pub fn mime(self) -> &'static str {
        match self {
            MediaType::Pdf => "application/pdf",
            MediaType::Dicom => "application/dicom",
            MediaType::Zip => "application/zip",
            MediaType::Cab => "application/vnd.ms-cab-compressed",
            MediaType::Jpeg => "image/jpeg",
            MediaType::Png => "image/png",
            MediaType::Gif => "image/gif",
            MediaType::Tiff => "image/tiff",
            MediaType::Bmp => "image/bmp",
            MediaType::Pict => "image/x-pict",
            MediaType::Mp4 => "video/mp4",
            MediaType::Mpeg => "video/mpeg",
            MediaType::Doc => "application/msword",
            MediaType::Xml => "application/xml",
            MediaType::Html => "text/html",
            MediaType::Text => "text/plain",
            MediaType::Json => "application/json",
            MediaType::Executable => "application/x-executable",
            MediaType::Unknown => "application/octet-stream",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            MediaType::Pdf => "a PDF document",
            MediaType::Dicom => "a DICOM Part-10 file",
            MediaType::Zip => "a ZIP archive",
            MediaType::Cab => "a Microsoft Cabinet (CAB) archive",
            MediaType::Jpeg => "a JPEG image",
            MediaType::Png => "a PNG image",
            MediaType::Gif => "a GIF image",
            MediaType::Tiff => "a TIFF image",
            MediaType::Bmp => "a BMP image",
            MediaType::Pict => "a PICT image",
            MediaType::Mp4 => "an MP4 video",
            MediaType::Mpeg => "an MPEG video",
            MediaType::Doc => "a Word (OLE) document",
            MediaType::Xml => "an XML document",
            MediaType::Html => "an HTML document",
            MediaType::Text => "plain text",
            MediaType::Json => "a JSON document",
            MediaType::Executable => "an executable program",
            MediaType::Unknown => "an unrecognised format",
        }
    }
}

fn starts_ci(head: &[u8], prefix: &[u8]) -> bool {
    head.len() >= prefix.len() && head[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// The type of a file from its first bytes (4 KiB is plenty).
pub fn sniff(head: &[u8]) -> MediaType {
    use MediaType::*;
    let at = |off: usize, sig: &[u8]| {
        head.len() >= off + sig.len() && &head[off..off + sig.len()] == sig
    };
    if at(0, b"MZ")
        || at(0, b"\x7fELF")
        || at(0, b"\xcf\xfa\xed\xfe")
        || at(0, b"\xca\xfe\xba\xbe")
        || at(0, b"#!")
    {
        return Executable;
    }
    if at(128, b"DICM") {
        return Dicom;
    }
    // PDF readers accept the header anywhere in the first KiB.
    if head.windows(5).take(1024).any(|w| w == b"%PDF-") {
        return Pdf;
    }
    if at(0, b"PK\x03\x04") || at(0, b"PK\x05\x06") {
        return Zip;
    }
    if at(0, b"MSCF\0\0\0\0") {
        return Cab;
    }
    if at(0, b"\xff\xd8\xff") {
        return Jpeg;
    }
    if at(0, b"\x89PNG\r\n\x1a\n") {
        return Png;
    }
    if at(0, b"GIF87a") || at(0, b"GIF89a") {
        return Gif;
    }
    if at(0, b"II*\x00") || at(0, b"MM\x00*") {
        return Tiff;
    }
    if at(0, b"BM") && head.len() >= 14 {
        return Bmp;
    }
    if at(4, b"ftyp") {
        return Mp4;
    }
    if at(0, b"\x00\x00\x01\xba") || at(0, b"\x00\x00\x01\xb3") {
        return Mpeg;
    }
    if at(0, b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1") {
        return Doc;
    }
    // PICT files start with a 512-byte zero header; the picture opcodes follow.
    if head.len() >= 522 && head[..512].iter().all(|&b| b == 0) && at(522, b"\x00\x11\x02\xff") {
        return Pict;
    }
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    let trimmed = text.trim_ascii_start();
    if starts_ci(trimmed, b"<?xml") {
        return Xml;
    }
    if starts_ci(trimmed, b"<!doctype html") || starts_ci(trimmed, b"<html") {
        return Html;
    }
    if !text.is_empty() && !text.contains(&0) && plausibly_text(text) {
        return Text;
    }
    Unknown
}

/// Valid UTF-8 (allowing a character cut at the 4 KiB boundary), or Big5-style bytes
/// without control characters other than whitespace.
fn plausibly_text(b: &[u8]) -> bool {
    let valid_utf8 = match std::str::from_utf8(b) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && e.valid_up_to() + 4 > b.len(),
    };
    valid_utf8 || b.iter().all(|&c| c >= 0x20 || b"\t\r\n\x0c".contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_each_signature() {
        let mut dicom = vec![0u8; 128];
        dicom.extend_from_slice(b"DICM\x02\x00");
        let mut pict = vec![0u8; 522];
        pict.extend_from_slice(b"\x00\x11\x02\xff\x0c\x00");
        let cases: Vec<(Vec<u8>, MediaType)> = vec![
            (b"%PDF-1.7\n".to_vec(), MediaType::Pdf),
            (dicom, MediaType::Dicom),
            (b"PK\x03\x04rest".to_vec(), MediaType::Zip),
            (b"\xff\xd8\xff\xe0JFIF".to_vec(), MediaType::Jpeg),
            (b"\x89PNG\r\n\x1a\nIHDR".to_vec(), MediaType::Png),
            (b"GIF89a....".to_vec(), MediaType::Gif),
            (b"II*\x00\x08\x00".to_vec(), MediaType::Tiff),
            (
                b"BM\x36\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00".to_vec(),
                MediaType::Bmp,
            ),
            (pict, MediaType::Pict),
            (b"\x00\x00\x00\x18ftypmp42".to_vec(), MediaType::Mp4),
            (b"\x00\x00\x01\xba\x44".to_vec(), MediaType::Mpeg),
            (
                b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00".to_vec(),
                MediaType::Doc,
            ),
            (
                b"\xef\xbb\xbf<?xml version=\"1.0\"?><ClinicalDocument/>".to_vec(),
                MediaType::Xml,
            ),
            (b"  <!DOCTYPE html><html></html>".to_vec(), MediaType::Html),
            (
                "病歷摘要 discharge summary\n".as_bytes().to_vec(),
                MediaType::Text,
            ),
            (b"MZ\x90\x00\x03".to_vec(), MediaType::Executable),
            (b"\x7fELF\x02\x01".to_vec(), MediaType::Executable),
            (b"\x00\x01\x02\x03\xff".to_vec(), MediaType::Unknown),
            (Vec::new(), MediaType::Unknown),
        ];
        for (head, want) in cases {
            assert_eq!(sniff(&head), want, "{:?}", &head[..head.len().min(12)]);
        }
    }
}
