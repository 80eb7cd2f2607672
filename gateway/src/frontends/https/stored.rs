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
