//! NATS JetStream: each event is published to `<subject_prefix>.<kind>` with the event
//! id as `Nats-Msg-Id`, and counts as delivered only once JetStream acknowledges it
//! as stored. Because a retry or a replay after a restart carries the same id,
//! JetStream's duplicate window drops the repeat: subscribers see each event once.
//! The stream is created (capturing `<subject_prefix>.>`, with a one-hour duplicate
//! window) when missing and `create_stream` is on.
//!
//! The connection is made on first use and again after a failure, so a NATS server
//! that is down at start-up only delays delivery (events wait in the outbox).

use std::time::Duration;

use async_nats::jetstream::{self, Context};
use tokio::sync::Mutex;

use super::{Sink, SinkError};
use crate::backends::catalog::{BoxFuture, OutboxEvent};
use crate::config::NatsConfig;

/// How long JetStream remembers message ids (a stream we create).
const DUPLICATE_WINDOW: Duration = Duration::from_secs(3600);

pub struct Nats {
    cfg: NatsConfig,
    ctx: Mutex<Option<Context>>,
}

fn err(what: &str, e: impl std::fmt::Display) -> SinkError {
    SinkError(format!("nats {what}: {e}"))
}

impl Nats {
    pub fn new(cfg: &NatsConfig) -> Nats {
        Nats {
            cfg: cfg.clone(),
            ctx: Mutex::new(None),
        }
    }

    async fn connect(&self) -> Result<Context, SinkError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .request_timeout(Some(Duration::from_secs(10)))
            .connect(self.cfg.url.as_str())
            .await
            .map_err(|e| err("connect", e))?;
        let ctx = jetstream::new(client);
        let subjects = vec![format!("{}.>", self.cfg.subject_prefix)];
        if self.cfg.create_stream {
            ctx.get_or_create_stream(jetstream::stream::Config {
                name: self.cfg.stream.clone(),
                subjects,
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|e| err("stream", e))?;
        } else {
            ctx.get_stream(&self.cfg.stream)
                .await
                .map_err(|e| err("stream", e))?;
        }
        Ok(ctx)
    }

    async fn publish(&self, event: &OutboxEvent) -> Result<(), SinkError> {
        let mut slot = self.ctx.lock().await;
        let ctx = match slot.as_ref() {
            Some(c) => c.clone(),
            None => {
                let c = self.connect().await?;
                *slot = Some(c.clone());
                c
            }
        };
        drop(slot);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, event.event_id.as_str());
        let body = serde_json::to_vec(&event.payload).map_err(|e| err("encode", e))?;
        let subject = format!("{}.{}", self.cfg.subject_prefix, event.kind);
        let sent = async {
            ctx.publish_with_headers(subject, headers, body.into())
                .await
                .map_err(|e| err("publish", e))?
                .await
                .map_err(|e| err("ack", e))
        }
        .await;
        if sent.is_err() {
            // Reconnect next time (the server may have restarted or moved).
            *self.ctx.lock().await = None;
        }
        sent.map(|_| ())
    }
}

impl Sink for Nats {
    fn name(&self) -> &str {
        "nats"
    }

    fn deliver<'a>(&'a self, event: &'a OutboxEvent) -> BoxFuture<'a, Result<(), SinkError>> {
        Box::pin(self.publish(event))
    }
}
