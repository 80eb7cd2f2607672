//! Request ids (rule 20): an upload may answer a request — a citizen's
//! application (`emr-download`), a sampling-list case (`nhi-review`). The id comes with
//! the upload (tus metadata `request_id`), from its file name (a per-profile pattern), or
//! from its batch manifest (`request_id` per entry). It is validated against the
//! profile's pattern, indexed with the file (`/v1/files?request_id=`), carried in its
//! events, and — when the pattern yields a date — the request window (rule 3) is
//! counted from that date, in calendar months, instead of from the upload's.
//!
//! Patterns are regular expressions (the `regex` crate: linear time whatever a hospital
//! sends). Named groups mean: `date` the request date (`YYYYMMDD`), `hospital` a
//! hospital code that must be the uploading tenant's; in a name pattern, `request` is
//! the id.

use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::checks::{Check, Severity};
use crate::tenants::Profile;

/// `[requests]`: what a request id looks like per profile, where file names carry one,
/// and the request window.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RequestsConfig {
    pub emr_download_pattern: String,
    pub nhi_review_pattern: String,
    pub generic_pattern: String,
    /// Patterns that find a request id in a file name (group `request`); empty = none.
    pub emr_download_name_pattern: String,
    pub nhi_review_name_pattern: String,
    pub generic_name_pattern: String,
    /// `emr-download`: how far back a record may date, in calendar months before the
    /// request date (or the upload's, when no request date is known).
    pub window_months: u32,
}

impl Default for RequestsConfig {
    fn default() -> Self {
        RequestsConfig {
            // The platform's serial form: hospital code, request date, 5-digit number
            // (seed 003: `35012000002018061400001`).
            emr_download_pattern: r"^(?P<hospital>\d{10})(?P<date>\d{8})\d{5}$".into(),
            // A sampling-list case: fee month (費用年月, YYYYMM), claim type (申報類別
            // 1/2/4/5) and the case's serial on the list.
            nhi_review_pattern: r"^\d{6}-[1245]-\d{1,8}$".into(),
            generic_pattern: r"^[A-Za-z0-9._-]{1,64}$".into(),
            emr_download_name_pattern: r"^(?P<request>\d{23})(?:[._-]|$)".into(),
            nhi_review_name_pattern: String::new(),
            generic_name_pattern: String::new(),
            window_months: 6,
        }
    }
}

/// [`RequestsConfig`] compiled.
#[derive(Debug, Clone)]
pub struct RequestRules {
    ids: [Regex; 3],
    names: [Option<Regex>; 3],
    pub window_months: u32,
}

fn slot(p: Profile) -> usize {
    match p {
        Profile::EmrDownload => 0,
        Profile::NhiReview => 1,
        Profile::Generic => 2,
    }
}

impl RequestRules {
    pub fn compile(c: &RequestsConfig) -> Result<RequestRules, String> {
        let re = |key: &str, p: &str| {
            Regex::new(p).map_err(|e| format!("[requests] {key}: not a regular expression: {e}"))
        };
        let name = |key: &str, p: &str| -> Result<Option<Regex>, String> {
            if p.is_empty() {
                return Ok(None);
            }
            let r = re(key, p)?;
            if !r.capture_names().any(|n| n == Some("request")) {
                return Err(format!("[requests] {key}: needs a group named `request`"));
            }
            Ok(Some(r))
        };
        Ok(RequestRules {
            ids: [
                re("emr_download_pattern", &c.emr_download_pattern)?,
                re("nhi_review_pattern", &c.nhi_review_pattern)?,
                re("generic_pattern", &c.generic_pattern)?,
            ],
            names: [
                name("emr_download_name_pattern", &c.emr_download_name_pattern)?,
                name("nhi_review_name_pattern", &c.nhi_review_name_pattern)?,
                name("generic_name_pattern", &c.generic_name_pattern)?,
            ],
            window_months: c.window_months,
        })
    }

    /// The request id file `name` carries by `profile`'s name pattern.
    pub fn id_in_name(&self, profile: Profile, name: &str) -> Option<String> {
        let base = name.rsplit('/').next().unwrap_or(name);
        let re = self.names[slot(profile)].as_ref()?;
        Some(re.captures(base)?.name("request")?.as_str().to_string())
    }

    /// Validates `id` for `tenant` of `profile`; a finding says what is wrong.
    pub fn validate(
        &self,
        profile: Profile,
        tenant: &str,
        id: &str,
        source: Source,
    ) -> Result<Request, Check> {
        let bad = |code: &str, why: String| {
            Check::new(code, Severity::Error, why)
                .with_detail(json!({ "request_id": id, "source": source }))
        };
        let re = &self.ids[slot(profile)];
        let Some(caps) = re.captures(id) else {
            return Err(bad(
                "request.invalid_id",
                format!(
                    "`{id}` is not a request id of this profile (expected `{}`)",
                    re.as_str()
                ),
            ));
        };
        if let Some(h) = caps.name("hospital")
            && h.as_str() != tenant
        {
            return Err(bad(
                "request.wrong_hospital",
                format!(
                    "request `{id}` is addressed to hospital {}, not {tenant}",
                    h.as_str()
                ),
            ));
        }
        let date = match caps.name("date") {
            None => None,
            Some(d) => Some(yyyymmdd_day(d.as_str()).ok_or_else(|| {
                bad(
                    "request.bad_date",
                    format!("request `{id}` carries `{}`, which is no date", d.as_str()),
                )
            })?),
        };
        Ok(Request {
            id: id.to_string(),
            date,
            source,
        })
    }

    /// The window a record of an upload accepted at `accepted_at` (unix s) must fall in.
    pub fn window(&self, request: Option<&Request>, accepted_at: i64) -> RecordWindow {
        let (reference, basis) = match request.and_then(|r| r.date) {
            Some(d) => (d, "request"),
            None => (accepted_at.div_euclid(86_400), "upload"),
        };
        RecordWindow {
            earliest_day: crate::util::months_before(reference, self.window_months),
            reference_day: reference,
            months: self.window_months,
            basis: basis.into(),
        }
    }
}

/// The request `upload` answers: the id its client gave, else the one its name carries
/// by the profile's pattern; validated (a finding fails the upload).
pub fn of_upload(
    rules: &RequestRules,
    profile: Profile,
    upload: &crate::backends::catalog::UploadRow,
) -> Result<Option<Request>, Check> {
    let name = upload
        .name
        .strip_prefix(crate::session::names::PRECHECK)
        .unwrap_or(&upload.name);
    let (id, source) = match (&upload.request_id, rules.id_in_name(profile, name)) {
        (Some(id), _) => (id.clone(), Source::Upload),
        (None, Some(id)) => (id, Source::Name),
        (None, None) => return Ok(None),
    };
    rules
        .validate(profile, &upload.tenant, &id, source)
        .map(Some)
}

/// `(file id, request id, metadata.request)` for each manifest entry with a request
/// whose file is current under `prefix`.
pub fn assignments(
    requests: &[(String, Request)],
    prefix: &str,
    current: &[crate::backends::catalog::CurrentFile],
) -> Vec<(String, String, serde_json::Value)> {
    requests
        .iter()
        .filter_map(|(name, r)| {
            let full = format!("{prefix}{name}");
            let f = current.iter().find(|f| f.name == full)?;
            Some((f.file_id.clone(), r.id.clone(), r.metadata()))
        })
        .collect()
}

/// A manifest's requests for its own metadata: `[{name, request_id}]`.
pub fn listed(requests: &[(String, Request)]) -> serde_json::Value {
    requests
        .iter()
        .map(|(name, r)| json!({ "name": name, "request_id": r.id }))
        .collect()
}

/// Where an upload's request id came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The client gave it with the upload (tus metadata `request_id`).
    Upload,
    /// The file name, by the profile's name pattern.
    Name,
    /// The batch manifest's entry for the file.
    Manifest,
}

/// A validated request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: String,
    /// The request date (day number), when the id carries one.
    pub date: Option<i64>,
    pub source: Source,
}

impl Request {
    /// `metadata.request` of the file.
    pub fn metadata(&self) -> serde_json::Value {
        let mut v = json!({ "id": self.id, "source": self.source });
        if let Some(d) = self.date {
            v["date"] = json!(day_string(d));
        }
        v
    }
}

/// The records an upload may hold, for rule 3: on or after `earliest_day`, which is
/// `months` calendar months before the request date (`basis` = "request") or, when no
/// request date is known, before the upload (`basis` = "upload").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordWindow {
    pub earliest_day: i64,
    pub reference_day: i64,
    pub months: u32,
    pub basis: String,
}

impl RecordWindow {
    /// The window of an upload accepted at `accepted_at` (unix s) with no request date.
    pub fn before_upload(accepted_at: i64, months: u32) -> RecordWindow {
        let reference = accepted_at.div_euclid(86_400);
        RecordWindow {
            earliest_day: crate::util::months_before(reference, months),
            reference_day: reference,
            months,
            basis: "upload".into(),
        }
    }

    /// Whether a record of day `day` is older than the window allows.
    pub fn too_old(&self, day: i64) -> bool {
        day < self.earliest_day
    }

    /// How a finding explains the window.
    pub fn describe(&self) -> String {
        format!(
            "records from {} on ({} calendar months before the {} date {})",
            day_string(self.earliest_day),
            self.months,
            self.basis,
            day_string(self.reference_day)
        )
    }
}

fn yyyymmdd_day(s: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    crate::util::days_from_civil(num(0..4)?, num(4..6)?, num(6..8)?)
}

/// `YYYY-MM-DD` of a day number.
pub fn day_string(day: i64) -> String {
    let (y, m, d) = crate::util::civil_from_days(day);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> RequestRules {
        RequestRules::compile(&RequestsConfig::default()).unwrap()
    }

    #[test]
    fn validates_ids_per_profile() {
        let r = rules();
        let ok = r
            .validate(
                Profile::EmrDownload,
                "3501200000",
                "35012000002026061400001",
                Source::Upload,
            )
            .unwrap();
        assert_eq!(ok.date.map(day_string).as_deref(), Some("2026-06-14"));
        let code = |p, t, id| r.validate(p, t, id, Source::Upload).unwrap_err().code;
        assert_eq!(
            code(Profile::EmrDownload, "3501200000", "350120000020260614"),
            "request.invalid_id"
        );
        assert_eq!(
            code(
                Profile::EmrDownload,
                "1101010012",
                "35012000002026061400001"
            ),
            "request.wrong_hospital"
        );
        assert_eq!(
            code(
                Profile::EmrDownload,
                "3501200000",
                "35012000002026023000001"
            ),
            "request.bad_date"
        );
        assert!(
            r.validate(Profile::NhiReview, "x", "202610-1-17", Source::Name)
                .is_ok()
        );
        assert_eq!(
            code(Profile::NhiReview, "x", "202610-3-17"),
            "request.invalid_id"
        );
        assert_eq!(code(Profile::Generic, "x", "a b"), "request.invalid_id");
    }

    #[test]
    fn finds_ids_in_names_where_the_profile_says() {
        let r = rules();
        let id = "35012000002026061400001";
        assert_eq!(
            r.id_in_name(Profile::EmrDownload, &format!("{id}.pdf"))
                .as_deref(),
            Some(id)
        );
        assert_eq!(
            r.id_in_name(Profile::EmrDownload, &format!("b/{id}_2.pdf"))
                .as_deref(),
            Some(id)
        );
        assert_eq!(r.id_in_name(Profile::EmrDownload, "record.pdf"), None);
        assert_eq!(r.id_in_name(Profile::NhiReview, &format!("{id}.pdf")), None);
    }

    #[test]
    fn the_window_counts_calendar_months_from_the_request() {
        let r = rules();
        let req = r
            .validate(
                Profile::EmrDownload,
                "3501200000",
                "35012000002026083100001",
                Source::Upload,
            )
            .unwrap();
        let w = r.window(Some(&req), 1_900_000_000);
        assert_eq!(day_string(w.earliest_day), "2026-02-28");
        assert!(w.too_old(w.earliest_day - 1) && !w.too_old(w.earliest_day));
        let by_upload = r.window(None, 1_798_761_600); // 2027-01-01
        assert_eq!(day_string(by_upload.earliest_day), "2026-07-01");
        assert_eq!(by_upload.basis, "upload");
    }

    #[test]
    fn a_name_pattern_needs_its_group() {
        let c = RequestsConfig {
            generic_name_pattern: r"^\d+".into(),
            ..RequestsConfig::default()
        };
        assert!(RequestRules::compile(&c).unwrap_err().contains("request"));
    }
}
