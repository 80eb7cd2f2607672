//! What a hospital may do with a name in its inbox, whatever the protocol (rule 10: an
//! accepted file is never overwritten, appended to, renamed, replaced or removed; a
//! partial upload may be resumed, started over, renamed or given up). SFTP's `open`,
//! `rename` and `remove` and tus's creation and termination translate into these calls
//! and only map the errors to their protocol.

use std::sync::Arc;

use super::{IngestCore, IngestError, Principal, Result, Upload};
use crate::backends::catalog::{UploadRow, UploadState};

/// An upload of this name whose bytes were accepted (or are pre-checked) and so may not
/// be touched any more.
fn accepted(u: &UploadRow) -> bool {
    matches!(
        u.state,
        UploadState::Accepted
            | UploadState::Checking
            | UploadState::Indexed
            | UploadState::Prechecked
    )
}

impl IngestCore {
    /// Opens `name` for writing: resumes its partial upload (or `held`, the same upload
    /// kept open by the caller between a close and a rename), or with `truncate` gives
    /// the partial upload up and starts over. An accepted name is refused.
    pub async fn open_for_write(
        self: &Arc<Self>,
        who: &Principal,
        name: &str,
        truncate: bool,
        held: Option<Upload>,
    ) -> Result<Upload> {
        if let Some(latest) = self.catalog.latest_upload(&who.tenant, name).await? {
            // A pre-check's name may be sent again (it is checked, never kept).
            if accepted(&latest) && latest.state != UploadState::Prechecked {
                return Err(IngestError::Accepted {
                    name: name.into(),
                    refused: "overwritten or appended to",
                });
            }
            if latest.state == UploadState::Receiving && truncate {
                drop(held);
                self.abandon(&latest, "started over (truncate)").await?;
                return self.open(who, name, None).await;
            }
        }
        match held {
            Some(up) => Ok(up),
            None => self.open(who, name, None).await,
        }
    }

    /// Gives up the partial upload of `name` (a client's remove or termination).
    /// Accepted files stay; a name with nothing behind it is not found.
    pub async fn remove(&self, who: &Principal, name: &str) -> Result<()> {
        match self.catalog.latest_upload(&who.tenant, name).await? {
            Some(u) if u.state == UploadState::Receiving => {
                self.abandon(&u, "removed by the client").await
            }
            Some(u) if accepted(&u) => Err(IngestError::Accepted {
                name: name.into(),
                refused: "removed",
            }),
            _ => Err(IngestError::NotFound(name.into())),
        }
    }

    /// Whether `from` may be renamed to `to`: `from` must be a partial upload, `to` no
    /// accepted file.
    pub async fn may_rename(&self, who: &Principal, from: &str, to: &str) -> Result<()> {
        let (source, target) = tokio::try_join!(
            self.catalog.latest_upload(&who.tenant, from),
            self.catalog.latest_upload(&who.tenant, to)
        )?;
        if target.as_ref().is_some_and(accepted) {
            return Err(IngestError::Accepted {
                name: to.into(),
                refused: "replaced",
            });
        }
        match source {
            Some(s) if s.state == UploadState::Receiving => Ok(()),
            Some(s) if accepted(&s) => Err(IngestError::Accepted {
                name: from.into(),
                refused: "renamed",
            }),
            _ => Err(IngestError::NotFound(from.into())),
        }
    }
}

/// What became of an upload renamed into place.
pub enum Renamed {
    /// Accepted under its new name.
    Committed,
    /// Renamed to a temporary name: still partial, handed back to the caller.
    Kept(Box<Upload>),
}

impl Upload {
    /// Renames the partial upload to `to` and, unless `to` is a temporary name (`keep`),
    /// commits it there. An upload that turns out incomplete keeps its old name, so the
    /// client can resume it where it was. A failed rename hands the upload back.
    pub async fn rename_into_place(
        mut self,
        to: &str,
        keep: bool,
    ) -> std::result::Result<Renamed, (IngestError, Option<Box<Upload>>)> {
        let from = self.row.name.clone();
        if let Err(e) = self.rename(to).await {
            return Err((e, Some(Box::new(self))));
        }
        if keep {
            return Ok(Renamed::Kept(Box::new(self)));
        }
        let (core, id) = (self.core.clone(), self.row.id.clone());
        match self.finish().await {
            Ok(_) => Ok(Renamed::Committed),
            Err(e) if e.is_resumable() => {
                if let Err(undo) = core.catalog.rename_upload(&id, &from).await {
                    tracing::warn!(code = undo.code(), error = %undo, "cannot give a partial upload its name back");
                }
                Err((e, None))
            }
            Err(e) => Err((e, None)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{CODE, fixture, who};
    use super::*;

    fn refused(e: &IngestError) -> &'static str {
        match e {
            IngestError::Accepted { refused, .. } => refused,
            other => panic!("not a rule 10 refusal: {other}"),
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn an_accepted_name_is_never_written_renamed_replaced_or_removed() {
        let f = fixture().await;
        f.upload("a.pdf", b"accepted").await;
        let e = f.core.open_for_write(&who(), "a.pdf", false, None).await;
        assert_eq!(refused(&e.err().unwrap()), "overwritten or appended to");
        let e = f.core.open_for_write(&who(), "a.pdf", true, None).await;
        assert_eq!(e.err().unwrap().code(), "ingest.accepted");
        assert_eq!(
            refused(&f.core.remove(&who(), "a.pdf").await.unwrap_err()),
            "removed"
        );
        let mut part = f.core.open(&who(), "b.pdf.part", None).await.unwrap();
        let (sealed, _) = f.seal(1000);
        part.write_at(0, sealed[..100].to_vec()).await.unwrap();
        part.suspend().await.unwrap();
        let e = f.core.may_rename(&who(), "b.pdf.part", "a.pdf").await;
        assert_eq!(refused(&e.unwrap_err()), "replaced");
        let e = f.core.may_rename(&who(), "a.pdf", "c.pdf").await;
        assert_eq!(refused(&e.unwrap_err()), "renamed");
        let e = f.core.may_rename(&who(), "none.pdf", "c.pdf").await;
        assert_eq!(e.unwrap_err().code(), "ingest.not_found");
        f.core
            .may_rename(&who(), "b.pdf.part", "b.pdf")
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_partial_upload_resumes_starts_over_or_goes() {
        let f = fixture().await;
        let (sealed, _) = f.seal(5000);
        let mut u = f
            .core
            .open_for_write(&who(), "p.pdf", false, None)
            .await
            .unwrap();
        let id = u.id().to_string();
        u.write_at(0, sealed[..1000].to_vec()).await.unwrap();
        u.suspend().await.unwrap();
        let u = f
            .core
            .open_for_write(&who(), "p.pdf", false, None)
            .await
            .unwrap();
        assert_eq!((u.id(), u.offset()), (id.as_str(), 1000));
        drop(u);
        // Truncate: the partial upload is given up and a new one starts at zero.
        let u = f
            .core
            .open_for_write(&who(), "p.pdf", true, None)
            .await
            .unwrap();
        assert_ne!(u.id(), id);
        assert_eq!(u.offset(), 0);
        u.suspend().await.unwrap();
        f.core.remove(&who(), "p.pdf").await.unwrap();
        assert_eq!(
            f.core.remove(&who(), "p.pdf").await.unwrap_err().code(),
            "ingest.not_found"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn renaming_into_place_commits_and_an_incomplete_file_keeps_its_name() {
        let f = fixture().await;
        let (sealed, _) = f.seal(5000);
        let mut u = f.core.open(&who(), "x.pdf.part", None).await.unwrap();
        u.write_at(0, sealed[..2000].to_vec()).await.unwrap();
        // Incomplete: the commit fails, resumable, and the name goes back.
        let Err((e, None)) = u.rename_into_place("x.pdf", false).await else {
            panic!("an incomplete upload must not be committed");
        };
        assert!(e.is_resumable(), "{e}");
        let mut u = f.core.open(&who(), "x.pdf.part", None).await.unwrap();
        assert_eq!(u.offset(), 2000);
        u.write_at(2000, sealed[2000..].to_vec()).await.unwrap();
        let Ok(Renamed::Kept(u)) = u.rename_into_place("x.pdf.tmp", true).await else {
            panic!("a temporary name keeps the upload open");
        };
        assert!(matches!(
            u.rename_into_place("x.pdf", false).await,
            Ok(Renamed::Committed)
        ));
        let latest = f.core.catalog().latest_upload(CODE, "x.pdf").await.unwrap();
        assert_eq!(latest.unwrap().state, UploadState::Accepted);
    }
}
