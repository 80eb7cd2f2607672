//! The read side of a channel: what `stat` and directory listings show of the
//! virtual tree (vfs.rs) — partial and accepted uploads, their result files — straight
//! from the catalog.

use super::*;

impl Sftp {
    pub(super) async fn stat(&self, path: &str) -> Result<Attrs, (Code, String)> {
        let t = self.started;
        let catalog = self.ctx.core.catalog();
        let db = |e: crate::backends::catalog::CatalogError| (Code::Failure, e.to_string());
        match vfs::place(path) {
            Place::Root => Ok(Attrs::dir(t)),
            Place::Inbox(rel) if rel.is_empty() => Ok(Attrs::dir(t)),
            Place::Results(rel) if rel.is_empty() => Ok(Attrs::dir(t)),
            Place::Inbox(rel) => {
                if let Some(u) = catalog
                    .latest_upload(&self.ctx.who.tenant, &rel)
                    .await
                    .map_err(db)?
                    && vfs::visible_in_inbox(&u)
                {
                    return Ok(vfs::upload_attrs(&u, t));
                }
                let under = catalog
                    .latest_uploads(&self.ctx.who.tenant, &format!("{rel}/"), 1)
                    .await
                    .map_err(db)?;
                if !under.is_empty() || self.made_dirs.contains(&rel) {
                    return Ok(Attrs::dir(t));
                }
                Err((
                    Code::NoSuchFile,
                    format!("{}: no such file", vfs::shown(&rel)),
                ))
            }
            Place::Results(rel) => match self.result_file(&rel).await? {
                Some(bytes) => Ok(Attrs::file(bytes.len() as u64, t)),
                None => {
                    let under = catalog
                        .latest_uploads(&self.ctx.who.tenant, &format!("{rel}/"), 1)
                        .await
                        .map_err(db)?;
                    if under.iter().any(vfs::has_result) {
                        Ok(Attrs::dir(t))
                    } else {
                        Err((Code::NoSuchFile, format!("/results/{rel}: no such file")))
                    }
                }
            },
            Place::Reserved | Place::Elsewhere => Err((
                Code::NoSuchFile,
                vfs::refusal(path, "only /inbox, /precheck and /results exist"),
            )),
        }
    }

    /// The bytes of `/results/<rel>` (`<name>.json` or `<name>.txt`), if that upload's
    /// checks are over.
    pub(super) async fn result_file(&self, rel: &str) -> Result<Option<Vec<u8>>, (Code, String)> {
        let (folder, base) = match rel.rsplit_once('/') {
            Some((d, b)) => (format!("{d}/"), b),
            None => (String::new(), rel),
        };
        if let Some(format) = base.strip_prefix("SUMMARY.") {
            // The folder's result list (rule 22), made when it is read.
            let catalog = self.ctx.core.catalog();
            let summary =
                crate::session::summary::of_folder(catalog, &self.ctx.who.tenant, &folder)
                    .await
                    .map_err(|e| (Code::Failure, e.to_string()))?;
            if summary.files == 0 {
                return Ok(None);
            }
            return Ok(summary.render(format));
        }
        let (name, json) = match (rel.strip_suffix(".json"), rel.strip_suffix(".txt")) {
            (Some(n), _) => (n, true),
            (_, Some(n)) => (n, false),
            _ => return Ok(None),
        };
        let db = |e: crate::backends::catalog::CatalogError| (Code::Failure, e.to_string());
        let catalog = self.ctx.core.catalog();
        let Some(u) = catalog
            .latest_upload(&self.ctx.who.tenant, name)
            .await
            .map_err(db)?
        else {
            return Ok(None);
        };
        if !vfs::has_result(&u) {
            return Ok(None);
        }
        let Some(r) = catalog.check_result(&u.id).await.map_err(db)? else {
            return Ok(None);
        };
        Ok(Some(if json {
            vfs::result_json(&r)
        } else {
            vfs::result_text(&r)
        }))
    }

    pub(super) async fn list(&self, path: &str) -> Result<Vec<Entry>, (Code, String)> {
        let t = self.started;
        let db = |e: crate::backends::catalog::CatalogError| (Code::Failure, e.to_string());
        let mut out = vec![vfs::dir_entry(".", t), vfs::dir_entry("..", t)];
        let (rel, results) = match vfs::place(path) {
            Place::Root => {
                out.push(vfs::dir_entry("inbox", t));
                out.push(vfs::dir_entry("precheck", t));
                out.push(vfs::dir_entry("results", t));
                return Ok(out);
            }
            Place::Inbox(rel) => (rel, false),
            Place::Results(rel) => (rel, true),
            Place::Reserved | Place::Elsewhere => {
                let msg = vfs::refusal(path, "only /inbox, /precheck and /results exist");
                return Err((Code::NoSuchFile, msg));
            }
        };
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        let uploads = self
            .ctx
            .core
            .catalog()
            .latest_uploads(&self.ctx.who.tenant, &prefix, LIST_LIMIT)
            .await
            .map_err(db)?;
        let shown: Vec<_> = uploads
            .iter()
            .filter(|u| {
                if results {
                    vfs::has_result(u)
                } else {
                    vfs::visible_in_inbox(u)
                }
            })
            .collect();
        let by_name: HashMap<&str, _> = shown.iter().map(|u| (u.name.as_str(), *u)).collect();
        let (files, mut dirs) = vfs::children(&rel, shown.iter().map(|u| u.name.as_str()));
        if rel.is_empty() && !results {
            // Pre-checks have a folder of their own at the top, not inside /inbox.
            dirs.retain(|d| d != crate::session::names::PRECHECK.trim_end_matches('/'));
        }
        for d in self.made_dirs.iter().filter(|_| !results) {
            if let Some(rest) = d.strip_prefix(&prefix).filter(|r| !r.is_empty()) {
                let first = rest.split('/').next().unwrap_or(rest).to_string();
                if !dirs.contains(&first) {
                    dirs.push(first);
                }
            }
        }
        for d in dirs {
            out.push(vfs::dir_entry(&d, t));
        }
        // Every result's findings in one query, not one per file.
        let mut findings: HashMap<String, Vec<crate::checks::Check>> = HashMap::new();
        let mut downloads: HashMap<String, crate::checks::DownloadState> = HashMap::new();
        if results {
            let all = self
                .ctx
                .core
                .catalog()
                .checks_under(&self.ctx.who.tenant, &prefix)
                .await
                .map_err(db)?;
            for (id, check) in all {
                findings.entry(id).or_default().push(check);
            }
            downloads = self
                .ctx
                .core
                .catalog()
                .download_states_under(&self.ctx.who.tenant, &prefix)
                .await
                .map_err(db)?
                .into_iter()
                .collect();
        }
        if results && !shown.is_empty() {
            // The folder's result list (rule 22); made again when read.
            let catalog = self.ctx.core.catalog();
            let summary =
                crate::session::summary::of_folder(catalog, &self.ctx.who.tenant, &prefix)
                    .await
                    .map_err(db)?;
            for format in ["json", "csv", "txt"] {
                let len = summary.render(format).map_or(0, |b| b.len() as u64);
                out.push(Entry {
                    name: format!("SUMMARY.{format}"),
                    attrs: Attrs::file(len, t),
                });
            }
        }
        for (file, full) in files {
            let Some(u) = by_name.get(full) else { continue };
            if results {
                let checks = findings.remove(&u.id).unwrap_or_default();
                let mut r = crate::backends::catalog::result_of((*u).clone(), checks);
                r.download = downloads.remove(&u.id);
                {
                    out.push(Entry {
                        name: format!("{file}.json"),
                        attrs: Attrs::file(vfs::result_json(&r).len() as u64, t),
                    });
                    out.push(Entry {
                        name: format!("{file}.txt"),
                        attrs: Attrs::file(vfs::result_text(&r).len() as u64, t),
                    });
                }
            } else {
                out.push(Entry {
                    name: file,
                    attrs: vfs::upload_attrs(u, t),
                });
            }
        }
        Ok(out)
    }
}
