//! WADO-RS frames: `…/instances/{i}/frames/{n[,m…]}` of uncompressed little-endian
//! instances stored on their own, as `multipart/related; type="application/octet-stream"`
//! parts cut from the stored pixel data as it is decrypted (compressed or big-endian
//! pixel data: 406, no transcoding). A frame list is deduplicated and capped.

use std::io::{self, Read, Seek, SeekFrom};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::channel::Channel;
use tokio::runtime::Handle;

use super::Viewer;
use crate::backends::catalog::DicomLocation;
use crate::frontends::https::stored::{ReadSeek, Source};
use crate::frontends::https::{Https, Problem, problem};
use crate::pipeline::inspect::dicom::{HeaderLimits, read_header};
use crate::sealed::SealedReader;

use super::wado::{
    FRAME, MAX_HEADER, accepts, account, boundary, locate, multipart_response, query, sealed_only,
    send, unreadable,
};

/// Frames one request may ask for (after removing repeats).
const MAX_FRAMES: usize = 1024;

/// Uncompressed transfer syntaxes whose frames are plain byte ranges.
const NATIVE: [&str; 2] = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"];

/// Where the pixel data's value starts and how long it is, found by its tag after the
/// header (explicit or implicit VR little endian) and checked against the length the
/// image attributes give.
fn pixel_data(head: &[u8], expected: u64) -> Option<u64> {
    let tag = [0xE0, 0x7F, 0x10, 0x00];
    let mut at = head.len();
    while let Some(i) = head[..at].windows(4).rposition(|w| w == tag) {
        at = i;
        let rest = &head[i + 4..];
        let explicit =
            rest.len() >= 8 && (&rest[..2] == b"OB" || &rest[..2] == b"OW") && rest[2..4] == [0, 0];
        if explicit
            && u64::from(u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]])) == expected
        {
            return Some((i + 12) as u64);
        }
        if rest.len() >= 4
            && u64::from(u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]])) == expected
        {
            return Some((i + 8) as u64);
        }
    }
    None
}

fn number(obj: &dicom_object::InMemDicomObject, tag: dicom_core::Tag) -> Option<u64> {
    obj.get(tag).and_then(|e| e.to_int::<u64>().ok())
}

/// An uncompressed instance opened at its pixel data: frame `n` (1-based) is `size`
/// bytes at `start + (n - 1) * size`.
struct NativeFrames {
    reader: SealedReader<Box<dyn ReadSeek>>,
    start: u64,
    size: u64,
    stall: std::time::Duration,
}

/// Opens the frames of `l` and checks that every `wanted` frame exists. Sizes come from
/// the file's own header, so every product is checked: a header promising more than a
/// u64 holds is refused, not wrapped.
fn open_frames(
    src: Source,
    l: &DicomLocation,
    wanted: &[u64],
    rt: &Handle,
) -> Result<NativeFrames, Problem> {
    use dicom_dictionary_std::tags;
    let internal = |e: io::Error| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "dicomweb.unreadable",
            &e.to_string(),
        )
    };
    let unsupported = |why: &str| {
        Problem::new(
            StatusCode::NOT_ACCEPTABLE,
            "dicomweb.frames_unsupported",
            why,
        )
    };
    if !NATIVE.contains(&l.row.transfer_syntax.as_str()) || !l.path.is_empty() {
        return Err(unsupported(&format!(
            "frames are served for uncompressed little-endian instances stored on their own; this one is {}",
            l.row.transfer_syntax
        )));
    }
    let stall = src.stall;
    let mut r = src.open(rt).map_err(internal)?;
    let obj = read_header(&mut r, HeaderLimits::default()).map_err(|c| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "dicomweb.unreadable",
            &c.message,
        )
    })?;
    let (rows, cols) = (
        number(&obj, tags::ROWS).unwrap_or(0),
        number(&obj, tags::COLUMNS).unwrap_or(0),
    );
    let spp = number(&obj, tags::SAMPLES_PER_PIXEL).unwrap_or(1);
    let bits = number(&obj, tags::BITS_ALLOCATED).unwrap_or(16);
    let frames = number(&obj, tags::NUMBER_OF_FRAMES).unwrap_or(1).max(1);
    let Some(size) = rows
        .checked_mul(cols)
        .and_then(|p| p.checked_mul(spp))
        .and_then(|p| p.checked_mul(bits))
        .map(|b| b / 8)
    else {
        return Err(unsupported("the image dimensions overflow"));
    };
    if size == 0 {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "dicomweb.no_pixels",
            "the instance has no image",
        ));
    }
    if let Some(bad) = wanted.iter().find(|n| **n == 0 || **n > frames) {
        return Err(Problem::new(
            StatusCode::NOT_FOUND,
            "dicomweb.no_such_frame",
            &format!("frame {bad} of {frames}"),
        ));
    }
    let total = size
        .checked_mul(frames)
        .ok_or_else(|| unsupported("the image dimensions overflow"))?;
    let mut head = Vec::new();
    r.seek(SeekFrom::Start(0)).map_err(internal)?;
    (&mut r)
        .take(MAX_HEADER)
        .read_to_end(&mut head)
        .map_err(internal)?;
    let start = pixel_data(&head, total)
        .ok_or_else(|| unsupported("the pixel data could not be located as native frames"))?;
    Ok(NativeFrames {
        reader: r,
        start,
        size,
        stall,
    })
}

/// Streams frames `wanted` as the parts of one multipart body, a piece at a time.
fn frames_body(mut f: NativeFrames, wanted: Vec<u64>, boundary: String) -> Body {
    let (mut tx, body) = Channel::<Bytes, io::Error>::new(2);
    let rt = Handle::current();
    tokio::task::spawn_blocking(move || {
        let sent = (|| -> io::Result<()> {
            for n in wanted {
                let head =
                    format!("--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n");
                send(&rt, &mut tx, head.into_bytes(), f.stall)?;
                // `n` was checked against the frame count, whose product with `size`
                // was checked too.
                f.reader.seek(SeekFrom::Start(f.start + (n - 1) * f.size))?;
                let mut left = f.size;
                while left > 0 {
                    let mut buf =
                        vec![0u8; usize::try_from(left.min(FRAME as u64)).unwrap_or(FRAME)];
                    f.reader.read_exact(&mut buf)?;
                    left -= buf.len() as u64;
                    send(&rt, &mut tx, buf, f.stall)?;
                }
                send(&rt, &mut tx, b"\r\n".to_vec(), f.stall)?;
            }
            send(
                &rt,
                &mut tx,
                format!("--{boundary}--\r\n").into_bytes(),
                f.stall,
            )
        })();
        if let Err(e) = sent
            && e.kind() != io::ErrorKind::BrokenPipe
        {
            tracing::warn!(error = %e, "WADO-RS frames stream failed");
            tx.abort(e);
        }
    });
    Body::new(body)
}

/// A frame list, `1,3,3,2`: numbers in the order asked, repeats dropped.
fn frame_list(list: &str) -> Result<Vec<u64>, Problem> {
    let bad = || {
        Problem::new(
            StatusCode::BAD_REQUEST,
            "dicomweb.bad_frames",
            "frames: a comma-separated list of frame numbers",
        )
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for n in list.split(',') {
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        if seen.insert(n) {
            out.push(n);
        }
        if out.len() > MAX_FRAMES {
            return Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "dicomweb.too_many_frames",
                &format!("at most {MAX_FRAMES} frames per request"),
            ));
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

pub async fn frames(
    State(s): State<Https>,
    viewer: Viewer,
    h: HeaderMap,
    Path((study, series, sop, list)): Path<(String, String, String, String)>,
) -> Response {
    if !accepts(&h, "application/octet-stream") {
        return problem(
            StatusCode::NOT_ACCEPTABLE,
            "dicomweb.not_acceptable",
            "frames are sent as multipart/related; type=\"application/octet-stream\"",
        );
    }
    let wanted = match frame_list(&list) {
        Ok(w) => w,
        Err(p) => return p.into_response(),
    };
    if let Some(r) = sealed_only(&viewer) {
        return r;
    }
    let found = match locate(&s, &query(&viewer, study, Some(series), Some(sop))).await {
        Ok(mut f) => f.remove(0),
        Err(r) => return r,
    };
    let src = match Source::of(&s, &found.object_key) {
        Ok(src) => src,
        Err(p) => return p.into_response(),
    };
    let rt = Handle::current();
    let check = wanted.clone();
    let opened = tokio::task::spawn_blocking(move || {
        open_frames(src, &found, &check, &rt).map(|f| (f, found))
    })
    .await;
    let (f, found) = match opened {
        Ok(Ok(f)) => f,
        Ok(Err(p)) => return p.into_response(),
        Err(e) => return unreadable(e),
    };
    if let Some(r) = account(&s, &viewer, std::slice::from_ref(&found)).await {
        return r;
    }
    let b = boundary();
    multipart_response(
        frames_body(f, wanted, b.clone()),
        &b,
        "application/octet-stream",
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn frame_lists_are_deduplicated_and_capped() {
        assert_eq!(super::frame_list("3, 1,3,2,1").unwrap(), [3, 1, 2]);
        assert!(super::frame_list("").is_err());
        assert!(super::frame_list("1,x").is_err());
        let many: Vec<String> = (1..=2000).map(|n| n.to_string()).collect();
        let err = super::frame_list(&many.join(",")).unwrap_err();
        assert_eq!(err.code(), "dicomweb.too_many_frames");
        let repeated = vec!["7"; 100_000].join(",");
        assert_eq!(
            super::frame_list(&repeated).unwrap(),
            [7],
            "repeats cost nothing"
        );
    }

    #[test]
    fn pixel_data_is_found_by_tag_and_length() {
        let mut f = vec![0u8; 10];
        f.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, b'O', b'W', 0, 0, 8, 0, 0, 0]);
        f.extend_from_slice(&[1; 8]);
        assert_eq!(super::pixel_data(&f, 8), Some(22));
        assert_eq!(super::pixel_data(&f, 9), None);
        let mut g = vec![0u8; 4];
        g.extend_from_slice(&[0xE0, 0x7F, 0x10, 0x00, 4, 0, 0, 0, 9, 9, 9, 9]);
        assert_eq!(super::pixel_data(&g, 4), Some(12));
    }
}
