//! WADO-RS bulk data: the large binary values metadata names by BulkDataURI
//! (json.rs), one at a time — `…/instances/{i}/bulkdata/{tag}` for a top-level
//! element, `…/bulkdata/{sequence}/{item}/{tag}` inside a sequence item. The value is
//! read from the instance's header as stored (decrypted on the fly), within the same
//! limits as the inspector's.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use dicom_core::Tag;
use dicom_object::InMemDicomObject;
use tokio::runtime::Handle;

use super::wado::{
    account, boundary, locate, multipart_response, not_acceptable, not_found, query, sealed_only,
    unreadable, with_instance,
};
use super::{Viewer, accept};
use crate::frontends::https::Https;
use crate::frontends::https::stored::Source;
use crate::pipeline::inspect::dicom::{HeaderLimits, read_header};

/// One step of a bulk data path: an element, and for a sequence the item within it.
fn steps(path: &str) -> Option<Vec<(Tag, Option<usize>)>> {
    let parts: Vec<&str> = path.split('/').collect();
    let mut out = Vec::new();
    for pair in parts.chunks(2) {
        let t = pair[0];
        if t.len() != 8 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let g = u16::from_str_radix(&t[..4], 16).ok()?;
        let e = u16::from_str_radix(&t[4..], 16).ok()?;
        let item = match pair.get(1) {
            Some(i) => Some(i.parse::<usize>().ok()?),
            None => None,
        };
        out.push((Tag(g, e), item));
    }
    // Every step but the last goes into an item; the last names the value.
    let (last, inner) = out.split_last()?;
    (last.1.is_none() && inner.iter().all(|s| s.1.is_some())).then_some(out)
}

/// The bytes of the element `path` leads to, if it holds a binary value.
fn value_at(obj: &InMemDicomObject, path: &[(Tag, Option<usize>)]) -> Option<Vec<u8>> {
    let ((tag, item), rest) = path.split_first()?;
    let e = obj.element(*tag).ok()?;
    match item {
        Some(i) => value_at(e.items()?.get(*i)?, rest),
        None => e.to_bytes().ok().map(|b| b.into_owned()),
    }
}

pub async fn bulkdata(
    State(s): State<Https>,
    viewer: Viewer,
    h: HeaderMap,
    Path((study, series, sop, path)): Path<(String, String, String, String)>,
) -> Response {
    if !accept::bulk(&h) {
        return not_acceptable(
            "bulk data is sent as multipart/related; type=\"application/octet-stream\"",
        );
    }
    if let Some(r) = sealed_only(&viewer) {
        return r;
    }
    let Some(steps) = steps(&path) else {
        return not_found();
    };
    let found = match locate(&s, &query(&viewer, study, Some(series), Some(sop))).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(l) = found.into_iter().next() else {
        return not_found();
    };
    let src = match Source::of(&s, &l.object_key) {
        Ok(src) => src,
        Err(p) => return p.into_response(),
    };
    let rt = Handle::current();
    let entry = l.path.clone();
    let read = tokio::task::spawn_blocking(move || {
        with_instance(src, &entry, &rt, |r| {
            read_header(r, HeaderLimits::default())
                .map_err(|c| std::io::Error::new(std::io::ErrorKind::InvalidData, c.message))
        })
        .map(|obj| value_at(&obj, &steps))
    })
    .await;
    let bytes = match read {
        Ok(Ok(Some(b))) => b,
        Ok(Ok(None)) => return not_found(),
        Ok(Err(e)) => return unreadable(e),
        Err(e) => return unreadable(e),
    };
    if let Some(r) = account(&s, &viewer, std::slice::from_ref(&l)).await {
        return r;
    }
    let b = boundary();
    let mut body = format!("--{b}\r\nContent-Type: application/octet-stream\r\n\r\n").into_bytes();
    body.extend_from_slice(&bytes);
    body.extend_from_slice(format!("\r\n--{b}--\r\n").as_bytes());
    multipart_response(Body::from(body), &b, "application/octet-stream")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bulk_paths_alternate_tags_and_items_and_end_on_a_tag() {
        assert_eq!(steps("00091010"), Some(vec![(Tag(0x0009, 0x1010), None)]));
        assert_eq!(
            steps("00540016/0/00181072"),
            Some(vec![
                (Tag(0x0054, 0x0016), Some(0)),
                (Tag(0x0018, 0x1072), None)
            ])
        );
        for bad in [
            "",
            "0009101",
            "00091010/0",
            "zz091010",
            "00091010/x/00181072",
        ] {
            assert_eq!(steps(bad), None, "{bad}");
        }
    }
}
