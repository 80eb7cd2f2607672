//! One upload's calls, in the order a front end makes them: `write_at` at the durable
//! offset, `sync`, `rename`, `declare_len`, `suspend` or `finish` (the commit point).

use super::*;

impl Upload {
    pub fn id(&self) -> &str {
        &self.row.id
    }

    pub fn name(&self) -> &str {
        &self.row.name
    }

    pub fn declared_len(&self) -> Option<u64> {
        self.row.declared_len
    }

    /// Where the next write must start: every byte before it is on the gateway.
    pub fn offset(&self) -> u64 {
        self.inner
            .as_ref()
            .map(|r| r.spool.len())
            .unwrap_or(self.row.durable_offset)
    }

    /// Appends `data` at `offset`, which must be exactly `offset()`.
    pub async fn write_at(&mut self, offset: u64, data: Vec<u8>) -> Result<()> {
        let expected = self.offset();
        if offset != expected {
            return Err(IngestError::OffsetMismatch {
                expected,
                got: offset,
            });
        }
        let end = expected + data.len() as u64;
        self.check_limits(end)?;
        crate::telemetry::metrics::METRICS
            .received_bytes
            .with_label_values(&[self.row.protocol.as_str()])
            .inc_by(data.len() as u64);
        let every = (
            self.core.settings.fsync_interval_bytes,
            self.core.sync_period(&self.row.tenant),
        );
        let result = self.with_receiving(move |r| r.push(&data, every)).await;
        match result {
            Ok(Some(durable)) => self.record_durable(durable).await,
            Ok(None) => Ok(()),
            Err(e) => Err(self.fail(e).await),
        }
    }

    fn check_limits(&self, end: u64) -> Result<()> {
        let limit = self.core.settings.max_file_bytes;
        if end > limit {
            return Err(IngestError::TooLarge { limit });
        }
        if let Some(declared) = self.row.declared_len
            && end > declared
        {
            return Err(IngestError::LengthExceeded { declared });
        }
        let quota = self.core.quota_bytes(&self.row.tenant);
        if quota > 0 && !self.row.is_precheck() && self.tenant_bytes + end > quota {
            return Err(IngestError::QuotaBytes { limit: quota });
        }
        Ok(())
    }

    /// The client went away without finishing (disconnect, close of a partial file):
    /// make what arrived durable so a later resume continues from here.
    pub async fn suspend(mut self) -> Result<u64> {
        self.sync().await
    }

    /// A storage or catalog error interrupted it: drop it and reopen (resume) instead.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Makes every byte received so far durable and records it; returns that offset.
    pub async fn sync(&mut self) -> Result<u64> {
        let durable = match self.with_receiving(|r| Ok(r.spool.sync()?)).await {
            Ok(d) => d,
            Err(e) => return Err(self.fail(e).await),
        };
        self.record_durable(durable).await?;
        Ok(durable)
    }

    /// Records `durable` bytes (on disk) in the catalog, checkpointing them to the
    /// shared object store first when there is one (`checkpoint.rs`): the offset a
    /// client is told is one any node can resume from.
    async fn record_durable(&mut self, durable: u64) -> Result<()> {
        self.checkpoint(durable).await?;
        self.core
            .catalog
            .set_durable_offset(&self.row.id, durable)
            .await?;
        Ok(())
    }

    /// Checkpoints the bytes up to `to` not checkpointed yet, if checkpoints are on.
    async fn checkpoint(&mut self, to: u64) -> Result<()> {
        let Some(c) = &self.core.settings.checkpoints else {
            return Ok(());
        };
        let spool = spool::spool_path(
            &self.core.settings.spool_dir,
            &self.row.tenant,
            &self.row.id,
        );
        if let Err(e) = c
            .save(
                &spool,
                &self.row.tenant,
                &self.row.id,
                self.checkpointed,
                to,
                self.stale_checkpoint,
            )
            .await
        {
            // Nothing recorded past the last checkpoint: the client resumes from there.
            self.inner = None;
            self.broken = true;
            return Err(e.into());
        }
        self.checkpointed = to;
        self.stale_checkpoint = false;
        Ok(())
    }

    /// Declares the length of an upload created without one (tus
    /// `creation-defer-length`). Once declared it cannot change.
    pub async fn declare_len(&mut self, len: u64) -> Result<()> {
        match self.row.declared_len {
            Some(d) if d == len => return Ok(()),
            Some(d) => return Err(IngestError::LengthExceeded { declared: d }),
            None => {}
        }
        if len < self.offset() {
            return Err(IngestError::LengthShort {
                declared: len,
                got: self.offset(),
            });
        }
        let limit = self.core.settings.max_file_bytes;
        if len > limit {
            return Err(IngestError::TooLarge { limit });
        }
        self.core
            .catalog
            .set_declared_len(&self.row.id, len)
            .await?;
        self.row.declared_len = Some(len);
        Ok(())
    }

    /// Gives the upload its final name (clients that upload under a temporary name and
    /// rename at the end). The name rules apply to the new name.
    pub async fn rename(&mut self, name: &str) -> Result<()> {
        check_name(name)?;
        if names::is_precheck(name) != self.row.is_precheck() {
            return Err(IngestError::NameNotAllowed {
                name: name.into(),
                reason: "a pre-check stays a pre-check and an upload stays an upload",
            });
        }
        if !self.core.catalog.rename_upload(&self.row.id, name).await? {
            return Err(IngestError::NotReceiving(self.row.id.clone()));
        }
        self.row.name = name.to_string();
        Ok(())
    }

    /// The commit point. On success the upload is accepted; on a resumable error
    /// (incomplete) it stays receiving; on a verification failure it is rejected.
    ///
    /// It runs to its end even when the caller is dropped (a client that disconnects
    /// while its last request is being answered cancels the request's future): the
    /// upload stays held (one writer) until the acceptance has committed or failed.
    /// Cancelled half-way, the acceptance could commit after this upload let go, and a
    /// resume that reopened it in between would then fail its own acceptance with
    /// `catalog.conflict` (seen under the loadtest while the whole suite ran).
    pub async fn finish(self) -> Result<Accepted> {
        tokio::spawn(self.finish_to_the_end())
            .await
            .map_err(|e| IngestError::Io(std::io::Error::other(e)))?
    }

    async fn finish_to_the_end(mut self) -> Result<Accepted> {
        let len = self.offset();
        // Whatever happens next, what arrived is made durable first: a client that
        // closes early resumes from here.
        let verdict = self
            .with_receiving(|r| {
                r.spool.sync()?;
                Ok(r.complete())
            })
            .await;
        let verdict = match verdict {
            Ok(v) => v,
            Err(e) => return Err(self.fail(e).await),
        };
        let declared_ok = self.row.declared_len.is_none_or(|d| d == len);
        let (plaintext_len, sha) = match verdict {
            Some(v) if declared_ok => v,
            _ => {
                let e = match self.row.declared_len {
                    Some(declared) if !declared_ok => {
                        IngestError::LengthShort { declared, got: len }
                    }
                    _ => IngestError::Sealed(crate::sealed::SealedError::Truncated {
                        verified: self
                            .inner
                            .as_ref()
                            .map(|r| r.opener.verified_plaintext())
                            .unwrap_or(0),
                    }),
                };
                self.core
                    .catalog
                    .set_durable_offset(&self.row.id, len)
                    .await?;
                if self.row.declared_len == Some(len) {
                    // Every declared byte is here and no more may come, yet the sealed
                    // stream never ended: the file is broken, not incomplete.
                    return Err(self.reject(e).await);
                }
                return Err(e);
            }
        };
        let sha = hex::encode(sha);
        // The last bytes too: the node that checks it may be another.
        self.checkpoint(len).await?;
        let seq = self
            .core
            .catalog
            .accept_upload(&self.row.id, len, plaintext_len, &sha)
            .await?;
        self.inner = None;
        let accepted = Accepted {
            id: self.row.id.clone(),
            sealed_len: len,
            plaintext_len,
            plaintext_sha256: sha,
            seq,
        };
        match self.ticket.take() {
            Some(t) => t.accepted(),
            None => self.core.admission.accepted(),
        }
        // Wake a pipeline worker: it sleeps until something is accepted.
        self.core.handoff.accepted(&self.row.id);
        UploadAccepted {
            tenant: &self.row.tenant,
            protocol: &self.row.protocol,
            bytes: len,
            seconds: self.opened.elapsed().as_secs_f64(),
        }
        .emit();
        Ok(accepted)
    }

    async fn with_receiving<T: Send + 'static>(
        &mut self,
        f: impl FnOnce(&mut Receiving) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let mut r = self.inner.take().ok_or_else(|| {
            if self.broken {
                IngestError::Io(io::Error::other(
                    "a storage error interrupted this upload; resume it from its offset",
                ))
            } else {
                IngestError::NotReceiving(self.row.id.clone())
            }
        })?;
        // Straight onto the rayon pool, whose `join` splits the work across cores: going
        // through tokio's blocking pool first cost two more thread hand-offs per write,
        // which on 256 KiB writes was a fifth of the time (perf: futex waits, yields).
        let (tx, rx) = tokio::sync::oneshot::channel();
        rayon::spawn(move || {
            let out = f(&mut r);
            let _ = tx.send((r, out));
        });
        let (r, out) = rx.await.map_err(|e| IngestError::Io(io::Error::other(e)))?;
        self.inner = Some(r);
        out
    }

    /// A failed write or finish: resumable errors leave the upload as it was; a failed
    /// verification rejects it (its bytes stay in the spool for inspection).
    async fn fail(&mut self, e: IngestError) -> IngestError {
        if matches!(e, IngestError::Io(_) | IngestError::Catalog(_)) || e.is_disk_full() {
            // The spool may hold less than the verifier consumed: stop here.
            self.inner = None;
            self.broken = true;
            return e;
        }
        if e.is_resumable() {
            return e;
        }
        self.reject(e).await
    }

    /// Rejects the upload for `e`, which it returns.
    async fn reject(&mut self, e: IngestError) -> IngestError {
        self.inner = None;
        let check = Check::new(e.code(), Severity::Error, e.to_string());
        if let Err(ce) = self
            .core
            .catalog
            .reject_upload(
                &self.row.id,
                std::slice::from_ref(&check),
                &crate::events::Event::upload_rejected(
                    &self.row.tenant,
                    &self.row.id,
                    &self.row.name,
                    std::slice::from_ref(&check),
                ),
            )
            .await
        {
            tracing::error!(code = ce.code(), error = %ce, "cannot record rejection");
        }
        UploadRejected {
            tenant: &self.row.tenant,
            protocol: &self.row.protocol,
            code: e.code(),
        }
        .emit();
        e
    }
}
