//! Where outbox events go: a small [`Sink`] trait with one implementation per kind of
//! subscriber — [`webhook`] (HTTP POST, signed) and [`nats`] (JetStream). The embedded
//! default needs neither: reviewers read the event feed (`GET /v1/events`) straight
//! from the outbox. Delivery order, retries and dead letters are the dispatcher's
//! (`pipeline/publish.rs`), the same for every sink.

pub mod nats;
pub mod webhook;

use crate::backends::catalog::{BoxFuture, OutboxEvent};

/// A failed delivery attempt; every failure is retried until the attempts run out.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

pub trait Sink: Send + Sync {
    /// Stable name: the sink's cursor, metrics label and dead letters use it.
    fn name(&self) -> &str;
    /// Attempts before an event becomes a dead letter, when not the `[publish]` figure.
    fn max_attempts(&self) -> Option<u32> {
        None
    }
    /// Delivers one event; `Ok` only once the receiver has it.
    fn deliver<'a>(&'a self, event: &'a OutboxEvent) -> BoxFuture<'a, Result<(), SinkError>>;
}
