//! A cap on the HTTPS listener's open connections (`https.max_connections`): beyond it
//! a new connection is closed at accept, before the TLS handshake costs anything, as
//! the SFTP listener does. Each connection holds a slot until its stream is dropped.
//!
//! Hand-written: axum-server has no connection limit of its own, and tower's
//! `ConcurrencyLimit` counts requests, not the connections (and their TLS state) a
//! client can hold open idle.

use std::future::{Ready, ready};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::telemetry::events::{HttpsConnectionRefused, InternalEvent};
use crate::telemetry::metrics::METRICS;

/// The inner acceptor (before TLS) that hands out the slots.
#[derive(Clone)]
pub struct Capped {
    slots: Arc<Semaphore>,
}

impl Capped {
    pub fn new(max_connections: usize) -> Capped {
        Capped {
            slots: Arc::new(Semaphore::new(max_connections.max(1))),
        }
    }
}

/// A connection's stream with the slot it holds.
pub struct Slotted<S> {
    inner: S,
    _slot: Slot,
}

struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

impl Drop for Slot {
    fn drop(&mut self) {
        METRICS.https_connections.dec();
    }
}

impl<I, S> Accept<I, S> for Capped {
    type Stream = Slotted<I>;
    type Service = S;
    type Future = Ready<io::Result<(Slotted<I>, S)>>;

    fn accept(&self, stream: I, service: S) -> Self::Future {
        match self.slots.clone().try_acquire_owned() {
            Ok(permit) => {
                METRICS.https_connections.inc();
                let _slot = Slot(permit);
                ready(Ok((
                    Slotted {
                        inner: stream,
                        _slot,
                    },
                    service,
                )))
            }
            Err(_) => {
                HttpsConnectionRefused {
                    reason: "listener_full",
                }
                .emit();
                ready(Err(io::Error::other("https.max_connections reached")))
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Slotted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Slotted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
