//! The scale-out object store: any S3-compatible service, through the `object_store`
//! crate (the Apache Arrow project's client: request signing, retries with back-off,
//! multipart uploads), so every node of a cluster reads the objects any other node
//! stored.
//!
//! A put streams the spooled file: files up to one part go up in a single `PUT`, larger
//! ones as a multipart upload of `part_bytes` parts with at most `part_concurrency` in
//! flight, so memory per put is bounded by their product whatever the file's size. S3
//! acknowledges a `PUT` (or a multipart completion) only once the object is durable, so
//! a put that returned is as safe as the local store's rename + directory sync.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as StorePath;
use object_store::{
    ClientOptions, GetOptions, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart,
};
use tokio::io::AsyncReadExt;

use super::{
    BoxFuture, ObjectError, ObjectKey, ObjectMeta, ObjectReader, ObjectStore, PutOutcome, Result,
};

/// Where and how to reach the bucket; built from the `[objects]` config section.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// `s3://bucket` or `s3://bucket/prefix`.
    pub url: String,
    /// The service's base URL (`http://127.0.0.1:9000`); empty = AWS itself.
    pub endpoint: String,
    pub region: String,
    /// Parts of a multipart upload, and the largest file sent in one `PUT`.
    pub part_bytes: usize,
    pub part_concurrency: usize,
    /// How long one operation keeps retrying (with back-off) before it fails with
    /// `objects.unavailable`; the pipeline then retries the check later.
    pub retry_for: Duration,
}

const PROBE_WITHIN: Duration = Duration::from_secs(3);

/// S3 refuses parts below 5 MiB (except the last one).
pub const MIN_PART_BYTES: usize = 5 << 20;

pub struct S3Store {
    inner: Arc<dyn object_store::ObjectStore>,
    prefix: String,
    part_bytes: usize,
    part_concurrency: usize,
    describe: String,
}

impl S3Store {
    /// Credentials come from the environment as for every AWS tool
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, instance
    /// metadata): they never sit in the gateway's config file.
    pub fn new(settings: &S3Settings) -> Result<S3Store> {
        let rest = settings
            .url
            .strip_prefix("s3://")
            .ok_or_else(|| backend(format!("`{}` is not an s3:// URL", settings.url)))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(backend(format!("`{}` names no bucket", settings.url)));
        }
        if settings.part_bytes < MIN_PART_BYTES || settings.part_concurrency == 0 {
            return Err(backend(format!(
                "part_bytes must be at least {MIN_PART_BYTES} and part_concurrency at least 1"
            )));
        }
        // reqwest is built without a TLS provider of its own: rustls on ring, as for
        // every other TLS connection of the gateway.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_region(&settings.region)
            .with_retry(RetryConfig {
                max_retries: 10,
                retry_timeout: settings.retry_for,
                ..RetryConfig::default()
            })
            // A store that accepts connections but stops answering must fail too: each
            // request is bounded by the same time as the retries (object_store's own
            // default, 30 s, would hold every upload that long whatever retry_secs says).
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(settings.retry_for.max(Duration::from_secs(1))),
            );
        if !settings.endpoint.is_empty() {
            builder = builder
                .with_endpoint(&settings.endpoint)
                .with_allow_http(settings.endpoint.starts_with("http://"));
        }
        let inner = builder.build().map_err(from_store)?;
        let prefix = prefix.trim_matches('/').to_string();
        Ok(S3Store {
            inner: Arc::new(inner),
            describe: format!("s3://{bucket}/{prefix}"),
            prefix,
            part_bytes: settings.part_bytes,
            part_concurrency: settings.part_concurrency,
        })
    }

    pub fn describe(&self) -> &str {
        &self.describe
    }

    fn path(&self, key: &ObjectKey) -> StorePath {
        if self.prefix.is_empty() {
            StorePath::from(key.as_str())
        } else {
            StorePath::from(format!("{}/{}", self.prefix, key.as_str()))
        }
    }

    async fn head_path(&self, path: &StorePath) -> Result<Option<ObjectMeta>> {
        match self.inner.head(path).await {
            Ok(m) => Ok(Some(ObjectMeta { len: m.size })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(from_store(e)),
        }
    }

    async fn put(&self, key: &ObjectKey, src: &Path) -> Result<PutOutcome> {
        let path = self.path(key);
        // Content addresses: an object already there holds these very bytes.
        if self.head_path(&path).await?.is_some() {
            tokio::fs::remove_file(src).await?;
            return Ok(PutOutcome::AlreadyPresent);
        }
        let mut file = tokio::fs::File::open(src).await?;
        let len = file.metadata().await?.len();
        if len <= self.part_bytes as u64 {
            let mut buf = Vec::with_capacity(len as usize);
            file.read_to_end(&mut buf).await?;
            self.inner
                .put(&path, PutPayload::from(buf))
                .await
                .map_err(from_store)?;
        } else {
            self.put_multipart(&path, file).await?;
        }
        tokio::fs::remove_file(src).await?;
        Ok(PutOutcome::Stored)
    }

    async fn put_multipart(&self, path: &StorePath, mut file: tokio::fs::File) -> Result<()> {
        let upload = self.inner.put_multipart(path).await.map_err(from_store)?;
        let mut parts = WriteMultipart::new_with_chunk_size(upload, self.part_bytes);
        let mut buf = vec![0u8; 1 << 20];
        let sent: Result<()> = async {
            loop {
                let n = file.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                parts
                    .wait_for_capacity(self.part_concurrency)
                    .await
                    .map_err(from_store)?;
                parts.write(&buf[..n]);
            }
        }
        .await;
        match sent {
            // `finish` aborts the upload itself when a part or the completion fails.
            Ok(()) => parts.finish().await.map(drop).map_err(from_store),
            Err(e) => {
                // No half-written object is left behind to bill for (the spool keeps
                // the file, the check is retried).
                let _ = parts.abort().await;
                Err(e)
            }
        }
    }

    async fn get_range(&self, key: &ObjectKey, r: Range<u64>) -> Result<ObjectReader> {
        let path = self.path(key);
        let bad = |len| ObjectError::BadRange {
            start: r.start,
            end: r.end,
            len,
        };
        if r.start >= r.end {
            // HTTP cannot ask for an empty range: answer it from the object's length.
            let len = self
                .head_path(&path)
                .await?
                .ok_or_else(|| ObjectError::NotFound(key.as_str().into()))?
                .len;
            return if r.start > r.end || r.end > len {
                Err(bad(len))
            } else {
                Ok(Box::new(tokio::io::empty()))
            };
        }
        let opts = GetOptions::new().with_range(Some(r.clone()));
        match self.inner.get_opts(&path, opts).await {
            Ok(got) if r.end > got.meta.size => Err(bad(got.meta.size)),
            Ok(got) => Ok(reader(got)),
            Err(object_store::Error::NotFound { .. }) => {
                Err(ObjectError::NotFound(key.as_str().into()))
            }
            // A range past the end is refused by the service (416) or by the client's
            // own check; tell it apart from an outage by the object's length.
            Err(e) => match self.head_path(&path).await? {
                Some(m) if r.end > m.len => Err(bad(m.len)),
                None => Err(ObjectError::NotFound(key.as_str().into())),
                Some(_) => Err(from_store(e)),
            },
        }
    }
}

fn reader(got: object_store::GetResult) -> ObjectReader {
    let stream = got.into_stream().map_err(std::io::Error::other);
    Box::new(tokio_util::io::StreamReader::new(stream))
}

fn backend(message: String) -> ObjectError {
    ObjectError::Backend(message)
}

fn from_store(e: object_store::Error) -> ObjectError {
    backend(e.to_string())
}

impl ObjectStore for S3Store {
    fn put_file<'a>(
        &'a self,
        key: &'a ObjectKey,
        src: &'a Path,
    ) -> BoxFuture<'a, Result<PutOutcome>> {
        Box::pin(self.put(key, src))
    }

    fn get<'a>(
        &'a self,
        key: &'a ObjectKey,
        range: Option<Range<u64>>,
    ) -> BoxFuture<'a, Result<ObjectReader>> {
        Box::pin(async move {
            if let Some(r) = range {
                return self.get_range(key, r).await;
            }
            match self.inner.get(&self.path(key)).await {
                Ok(got) => Ok(reader(got)),
                Err(object_store::Error::NotFound { .. }) => {
                    Err(ObjectError::NotFound(key.as_str().into()))
                }
                Err(e) => Err(from_store(e)),
            }
        })
    }

    fn head<'a>(&'a self, key: &'a ObjectKey) -> BoxFuture<'a, Result<Option<ObjectMeta>>> {
        Box::pin(async move { self.head_path(&self.path(key)).await })
    }

    fn delete<'a>(&'a self, key: &'a ObjectKey) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            // S3 answers a delete of a missing key with success: ask first, so retention
            // can still tell "removed" from "was already gone".
            let path = self.path(key);
            if self.head_path(&path).await?.is_none() {
                return Ok(false);
            }
            ObjectStoreExt::delete(self.inner.as_ref(), &path)
                .await
                .map_err(from_store)?;
            Ok(true)
        })
    }

    fn probe(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            // A head of a key that need not exist proves the bucket answers and the
            // credentials are accepted, without writing anything.
            // Bounded well below the client's retry time: a balancer's health check
            // wants an answer, not a wait.
            let key = ObjectKey::new("ready-probe")?;
            match tokio::time::timeout(PROBE_WITHIN, self.head_path(&self.path(&key))).await {
                Ok(answer) => answer.map(drop),
                Err(_) => Err(backend(format!("no answer within {PROBE_WITHIN:?}"))),
            }
        })
    }
}

#[cfg(test)]
mod tests;
