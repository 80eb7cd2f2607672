//! A stored file opened for reading on a blocking thread: its sealed object (read
//! straight from the local file when the store has one, else by ranged gets) behind a
//! `SealedReader`, so whoever streams it decrypts only what it reads.

use std::io::{self, Read, Seek};
use std::sync::Arc;

use axum::http::StatusCode;
use tokio::runtime::Handle;

use super::{Https, Problem};
use crate::backends::objects::blocking::BlockingObject;
use crate::backends::objects::{ObjectKey, ObjectStore};
use crate::sealed::{HeaderPolicy, Identity, SealedReader};

pub trait ReadSeek: Read + Seek + Send {}
impl<T: Read + Seek + Send> ReadSeek for T {}

/// Everything a streaming task needs to read one stored object.
pub struct Source {
    objects: Arc<dyn ObjectStore>,
    key: ObjectKey,
    identity: Identity,
    policy: HeaderPolicy,
    /// How long a body made from it waits for the client (`https.download_stall_secs`).
    pub stall: std::time::Duration,
}

/// Hands the next frame of a streamed body to the client: an error when the client
/// went away, or took nothing for `stall` (the blocking thread producing the body is
/// then released instead of waiting for ever).
pub fn send_frame(
    rt: &Handle,
    tx: &mut http_body_util::channel::Sender<axum::body::Bytes, io::Error>,
    frame: axum::body::Bytes,
    stall: std::time::Duration,
) -> io::Result<()> {
    match rt.block_on(tokio::time::timeout(stall, tx.send_data(frame))) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(io::Error::new(
            io::ErrorKind::BrokenPipe,
            "client went away",
        )),
        Err(_) => {
            crate::telemetry::metrics::METRICS
                .downloads
                .with_label_values(&["stalled"])
                .inc();
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client took nothing for {} s", stall.as_secs()),
            ))
        }
    }
}

impl Source {
    pub fn of(s: &Https, object_key: &str) -> Result<Source, Problem> {
        let key = ObjectKey::new(object_key).map_err(|e| {
            Problem::new(StatusCode::INTERNAL_SERVER_ERROR, e.code(), &e.to_string())
        })?;
        Ok(Source {
            objects: s.app.objects.clone(),
            key,
            identity: s.app.ingest.identity().clone(),
            policy: s.app.ingest.settings().header_policy.clone(),
            stall: std::time::Duration::from_secs(s.app.config.https.download_stall_secs.max(1)),
        })
    }

    /// Opens it; call on a blocking thread of the runtime `rt`.
    pub fn open(self, rt: &Handle) -> io::Result<SealedReader<Box<dyn ReadSeek>>> {
        let inner: Box<dyn ReadSeek> = match self.objects.local_path(&self.key) {
            Some(path) => Box::new(std::fs::File::open(path)?),
            None => Box::new(BlockingObject::open(self.objects, self.key, rt.clone())?),
        };
        SealedReader::new(inner, &self.identity, &self.policy).map_err(io::Error::other)
    }
}
