//! QIDO-RS: search for studies, series and instances (PS3.18 §10.6).
//!
//! Matching: single values, DICOM wildcards `*` and `?` on text attributes, UID lists
//! (comma or backslash separated), date and time ranges (`20040101-20041231`, open
//! ends `-20041231` / `20040101-`). `limit` and `offset` page the answer (an empty page
//! is `[]`); `includefield` (tags, keywords or `all`) adds optional attributes
//! (fields.rs; a sequence, which the index does not keep, is named in a `Warning`
//! header), and `fuzzymatching` is accepted (matching stays exact as above). Any other
//! attribute the index keeps per instance can be matched too (`?Rows=512`, by keyword
//! or tag; fields.rs); one it cannot match on is refused: 400 `dicomweb.bad_query`,
//! never ignored.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::fields::{self, Include};
use super::{Viewer, base_url, json, unavailable};
use crate::backends::catalog::{DicomLevel, DicomQuery};
use crate::frontends::https::{Https, Problem};
use crate::pipeline::inspect::dicom_json::IN_COLUMNS;

/// Largest page (and the default when `limit` is absent).
const MAX_LIMIT: i64 = 1000;

/// Keyword → tag of the attributes matching supports.
const MATCHABLE: [(&str, &str); 16] = [
    ("PatientName", "00100010"),
    ("PatientID", "00100020"),
    ("AccessionNumber", "00080050"),
    ("StudyDescription", "00081030"),
    ("ModalitiesInStudy", "00080061"),
    ("StudyDate", "00080020"),
    ("StudyTime", "00080030"),
    ("StudyInstanceUID", "0020000D"),
    ("SeriesInstanceUID", "0020000E"),
    ("SOPInstanceUID", "00080018"),
    ("Modality", "00080060"),
    ("SeriesNumber", "00200011"),
    ("InstanceNumber", "00200013"),
    ("SOPClassUID", "00080016"),
    ("StudyID", "00200010"),
    ("ReferringPhysicianName", "00080090"),
];

fn keyword_of(key: &str) -> Option<&'static str> {
    let upper = key.to_ascii_uppercase();
    MATCHABLE
        .iter()
        .find(|(k, t)| *k == key || *t == upper)
        .map(|(k, _)| *k)
}

fn bad(detail: &str) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "dicomweb.bad_query", detail)
}

fn uids(v: &str) -> Vec<String> {
    v.split([',', '\\'])
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map(String::from)
        .collect()
}

/// `a-b`, `-b`, `a-` or `a` → (from, to), each of `digits` digits (times may be shorter).
fn range(v: &str, name: &str, digits: usize) -> Result<(Option<String>, Option<String>), Problem> {
    let ok = |s: &str| {
        s.is_empty() || (s.len() <= digits && s.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
    };
    let (a, b) = v.split_once('-').unwrap_or((v, v));
    if !ok(a) || !ok(b) || (a.is_empty() && b.is_empty()) {
        return Err(bad(&format!(
            "{name}: a value or range like 20040101-20041231"
        )));
    }
    let part = |s: &str| (!s.is_empty()).then(|| s.to_string());
    // An upper time bound of "1200" covers everything up to 12:00:59.99.
    let to = part(b).map(|t| {
        if digits == 6 && t.len() < 14 {
            format!("{t}\u{7f}")
        } else {
            t
        }
    });
    Ok((part(a), to))
}

/// The query of one request at `level`, within what `viewer` may read.
fn parse(
    level: DicomLevel,
    params: &[(String, String)],
    viewer: &Viewer,
) -> Result<(DicomQuery, Include), Problem> {
    let mut q = DicomQuery {
        limit: MAX_LIMIT,
        ..DicomQuery::new(level, viewer.tenants.clone())
    };
    let mut include = Include::default();
    for (k, v) in params {
        let text = || (!v.is_empty()).then(|| v.clone());
        match k.as_str() {
            "limit" => {
                q.limit = v
                    .parse::<i64>()
                    .map_err(|_| bad("limit: a number"))?
                    .clamp(0, MAX_LIMIT)
            }
            "offset" => {
                q.offset = v
                    .parse::<i64>()
                    .map_err(|_| bad("offset: a number"))?
                    .max(0)
            }
            "fuzzymatching" => {
                if v != "true" && v != "false" {
                    return Err(bad("fuzzymatching: true or false"));
                }
            }
            "includefield" => include.add(v).map_err(|e| bad(&e))?,
            // Our own narrowing (the console's studies of one hospital): a hospital the
            // caller may not read matches nothing, as an unknown one does.
            "hospital" => {
                let may = viewer.tenants.as_ref().is_none_or(|t| t.contains(v));
                q.tenants = Some(if may { vec![v.clone()] } else { Vec::new() });
            }
            _ => match keyword_of(k) {
                Some("PatientName") => q.patient_name = text(),
                Some("PatientID") => q.patient_id = text(),
                Some("AccessionNumber") => q.accession_number = text(),
                Some("StudyDescription") => q.study_description = text(),
                Some("StudyID") => q.study_id = text(),
                Some("ReferringPhysicianName") => q.referring_physician = text(),
                Some("ModalitiesInStudy" | "Modality") => q.modality = text(),
                Some("StudyInstanceUID") => q.study_uids.extend(uids(v)),
                Some("SeriesInstanceUID") => q.series_uids.extend(uids(v)),
                Some("SOPInstanceUID") => q.sop_uids.extend(uids(v)),
                Some("SOPClassUID") => q.sop_class_uid = text(),
                Some("SeriesNumber") => q.series_number = text(),
                Some("InstanceNumber") => q.instance_number = text(),
                Some("StudyDate") if !v.is_empty() => {
                    (q.study_date_from, q.study_date_to) = range(v, "StudyDate", 8)?;
                }
                Some("StudyTime") if !v.is_empty() => {
                    (q.study_time_from, q.study_time_to) = range(v, "StudyTime", 13)?;
                }
                Some(_) => {}
                None => match fields::tag_of(k) {
                    // Attributes with a column but no matching are refused below.
                    Some(tag) if !IN_COLUMNS.contains(&tag.as_str()) => {
                        if !v.is_empty() {
                            q.attributes
                                .push(fields::attribute_match(tag, v).map_err(|e| bad(&e))?);
                        }
                    }
                    _ => {
                        let can: Vec<&str> = MATCHABLE.iter().map(|(k, _)| *k).collect();
                        return Err(bad(&format!(
                            "cannot match on `{k}`; the index matches on {} and on any \
                             attribute it keeps per instance (not sequences or binary values)",
                            can.join(", ")
                        )));
                    }
                },
            },
        }
    }
    Ok((q, include))
}

fn answer(items: Vec<serde_json::Value>, missing: &[String]) -> Response {
    let mut resp = axum::Json(items).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/dicom+json"),
    );
    if !missing.is_empty() {
        let w = format!(
            "299 gateway \"includefield of sequences the index does not keep: {}\"",
            missing.join(", ")
        );
        if let Ok(v) = HeaderValue::from_str(&w) {
            resp.headers_mut().insert(header::WARNING, v);
        }
    }
    resp
}

type Params = Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>;

async fn search(
    s: &Https,
    viewer: &Viewer,
    level: DicomLevel,
    params: Params,
    base: String,
    scope: (Option<String>, Option<String>),
) -> Response {
    let Ok(Query(params)) = params else {
        return bad("malformed query string").into_response();
    };
    let (mut q, include) = match parse(level, &params, viewer) {
        Ok(p) => p,
        Err(p) => return p.into_response(),
    };
    if let Some(study) = scope.0 {
        q.study_uids = vec![study];
    }
    if let Some(series) = scope.1 {
        q.series_uids = vec![series];
    }
    if q.limit == 0 {
        return answer(Vec::new(), &include.missing);
    }
    let catalog = &s.app.catalog;
    let items = match level {
        DicomLevel::Study => catalog.dicom_groups(&q).await.map(|g| {
            g.iter()
                .map(|g| {
                    let mut item = json::study(g, &base);
                    include.merge(&g.row.attributes, false, &mut item);
                    item
                })
                .collect()
        }),
        DicomLevel::Series => catalog.dicom_groups(&q).await.map(|g| {
            g.iter()
                .map(|g| {
                    let mut item = json::series(g, &base);
                    include.trim_series(&mut item);
                    include.merge(&g.row.attributes, false, &mut item);
                    item
                })
                .collect()
        }),
        DicomLevel::Instance => catalog.dicom_instances(&q).await.map(|i| {
            i.iter()
                .map(|i| {
                    let mut item = json::instance(&i.row, &base);
                    include.merge(&i.row.attributes, true, &mut item);
                    item
                })
                .collect()
        }),
    };
    match items {
        Ok(items) => answer(items, &include.missing),
        Err(e) => unavailable(&e),
    }
}

pub async fn studies(
    State(s): State<Https>,
    viewer: Viewer,
    h: axum::http::HeaderMap,
    p: Params,
) -> Response {
    search(
        &s,
        &viewer,
        DicomLevel::Study,
        p,
        base_url(&h),
        (None, None),
    )
    .await
}

pub async fn all_series(
    State(s): State<Https>,
    viewer: Viewer,
    h: axum::http::HeaderMap,
    p: Params,
) -> Response {
    search(
        &s,
        &viewer,
        DicomLevel::Series,
        p,
        base_url(&h),
        (None, None),
    )
    .await
}

pub async fn all_instances(
    State(s): State<Https>,
    viewer: Viewer,
    h: axum::http::HeaderMap,
    p: Params,
) -> Response {
    search(
        &s,
        &viewer,
        DicomLevel::Instance,
        p,
        base_url(&h),
        (None, None),
    )
    .await
}

pub async fn study_series(
    State(s): State<Https>,
    viewer: Viewer,
    h: axum::http::HeaderMap,
    Path(study): Path<String>,
    p: Params,
) -> Response {
    search(
        &s,
        &viewer,
        DicomLevel::Series,
        p,
        base_url(&h),
        (Some(study), None),
    )
    .await
}

pub async fn study_instances(
    State(s): State<Https>,
    viewer: Viewer,
    h: axum::http::HeaderMap,
    Path(study): Path<String>,
    p: Params,
) -> Response {
    search(
        &s,
        &viewer,
        DicomLevel::Instance,
        p,
        base_url(&h),
        (Some(study), None),
    )
    .await
}

pub async fn series_instances(
    State(s): State<Https>,
    viewer: Viewer,
    h: axum::http::HeaderMap,
    Path((study, series)): Path<(String, String)>,
    p: Params,
) -> Response {
    search(
        &s,
        &viewer,
        DicomLevel::Instance,
        p,
        base_url(&h),
        (Some(study), Some(series)),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_uid_lists() {
        assert_eq!(
            range("20040101-20041231", "d", 8).unwrap(),
            (Some("20040101".into()), Some("20041231".into()))
        );
        assert_eq!(
            range("-20041231", "d", 8).unwrap(),
            (None, Some("20041231".into()))
        );
        assert_eq!(
            range("20040101-", "d", 8).unwrap(),
            (Some("20040101".into()), None)
        );
        assert_eq!(
            range("20040101", "d", 8).unwrap(),
            (Some("20040101".into()), Some("20040101".into()))
        );
        assert!(range("2004-01-01", "d", 8).is_err());
        assert!(range("-", "d", 8).is_err());
        assert_eq!(uids("1.2,1.3\\1.4"), ["1.2", "1.3", "1.4"]);
        assert_eq!(keyword_of("00100010"), Some("PatientName"));
        assert_eq!(keyword_of("0020000d"), Some("StudyInstanceUID"));
        assert_eq!(keyword_of("Rows"), None);
    }
}
