//! A batch's result list (rule 22, 上傳結果清單): every upload of a folder, with
//! its status and codes, in one document a hospital can file or print — JSON, CSV or
//! plain text. Built from two catalog queries for the whole folder (the uploads and
//! all their findings), the same ones the `/results` listing uses.

use std::collections::HashMap;

use serde::Serialize;

use crate::backends::catalog::{Catalog, CatalogError, result_of};
use crate::checks::{Severity, Status};

/// Uploads listed at most in one summary.
const LIMIT: i64 = 100_000;

#[derive(Debug, Serialize)]
pub struct Row {
    pub name: String,
    pub status: Status,
    pub bytes: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    pub tenant: String,
    /// The folder (`""` for everything, else ending in `/`).
    pub folder: String,
    pub generated_at: String,
    pub files: usize,
    pub passed: usize,
    pub failed: usize,
    /// Still receiving or being checked.
    pub pending: usize,
    pub rows: Vec<Row>,
}

/// The summary of `tenant`'s uploads under `folder` (latest upload of each name).
pub async fn of_folder(
    catalog: &Catalog,
    tenant: &str,
    folder: &str,
) -> Result<Summary, CatalogError> {
    let uploads = catalog.latest_uploads(tenant, folder, LIMIT).await?;
    let mut findings: HashMap<String, Vec<crate::checks::Check>> = HashMap::new();
    for (id, check) in catalog.checks_under(tenant, folder).await? {
        findings.entry(id).or_default().push(check);
    }
    let mut rows: Vec<Row> = uploads
        .into_iter()
        .filter(|u| u.state != crate::backends::catalog::UploadState::Expired)
        .map(|u| {
            let checks = findings.remove(&u.id).unwrap_or_default();
            let r = result_of(u, checks);
            let codes = |s: Severity| {
                r.checks
                    .iter()
                    .filter(|c| c.severity == s)
                    .map(|c| c.code.clone())
                    .collect()
            };
            Row {
                errors: codes(Severity::Error),
                warnings: codes(Severity::Warning),
                name: r.name.strip_prefix(folder).unwrap_or(&r.name).to_string(),
                status: r.status,
                bytes: r.received_bytes,
                sha256: r.sha256,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    let count = |s: &[Status]| rows.iter().filter(|r| s.contains(&r.status)).count();
    Ok(Summary {
        tenant: tenant.to_string(),
        folder: folder.to_string(),
        generated_at: crate::util::now_rfc3339(),
        files: rows.len(),
        passed: count(&[Status::Passed]),
        failed: count(&[Status::Failed]),
        pending: count(&[Status::Receiving, Status::Checking]),
        rows,
    })
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Receiving => "receiving",
        Status::Checking => "checking",
        Status::Passed => "passed",
        Status::Failed => "failed",
        Status::Expired => "expired",
    }
}

impl Summary {
    pub fn json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// One line per file: `name,status,bytes,sha256,errors,warnings` (codes joined by
    /// `;`), names quoted as RFC 4180 wants.
    pub fn csv(&self) -> Vec<u8> {
        let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
        let mut out = String::from("name,status,bytes,sha256,errors,warnings\r\n");
        for r in &self.rows {
            out += &format!(
                "{},{},{},{},{},{}\r\n",
                quote(&r.name),
                status_word(r.status),
                r.bytes,
                r.sha256.as_deref().unwrap_or(""),
                quote(&r.errors.join(";")),
                quote(&r.warnings.join(";"))
            );
        }
        out.into_bytes()
    }

    /// The printable list (上傳結果清單).
    pub fn text(&self) -> Vec<u8> {
        let folder = if self.folder.is_empty() {
            "/"
        } else {
            &self.folder
        };
        let mut out = format!(
            "Upload result list — hospital {}, folder {folder}\nGenerated {}\n\
             {} file(s): {} passed, {} failed, {} still in progress\n\n",
            self.tenant, self.generated_at, self.files, self.passed, self.failed, self.pending
        );
        let width = self
            .rows
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        out += &format!("{:<width$}  {:<9}  codes\n", "file", "status");
        for r in &self.rows {
            let mut codes = r.errors.clone();
            codes.extend(r.warnings.iter().map(|w| format!("{w} (warning)")));
            out += &format!(
                "{:<width$}  {:<9}  {}\n",
                r.name,
                status_word(r.status),
                codes.join(", ")
            );
        }
        out.into_bytes()
    }

    /// The rendering named by a file extension or format: `json`, `csv` or `txt`.
    pub fn render(&self, format: &str) -> Option<Vec<u8>> {
        match format {
            "json" => Some(self.json()),
            "csv" => Some(self.csv()),
            "txt" | "text" => Some(self.text()),
            _ => None,
        }
    }
}
