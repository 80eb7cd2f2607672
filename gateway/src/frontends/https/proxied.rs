//! The HTTPS side of the PROXY protocol ([`crate::frontends::proxy`]): an acceptor
//! between the connection cap and TLS that reads a balancer's header, and a service
//! wrapper that hands the client's address to every request of the connection as
//! [`ClientAddr`] (read by `auth::peer`, so allow-lists, rate limits and audit records
//! see the hospital, not the balancer).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::Request;
use axum_server::accept::Accept;
use tokio::net::TcpStream;

use super::limit::{Capped, Slotted};
use crate::frontends::proxy::Balancers;
use crate::telemetry::events::{InternalEvent, ProxyHeaderRead};

/// The caller's address when it differs from the TCP peer's (a balancer's client).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

#[derive(Clone)]
pub struct Proxied {
    balancers: Balancers,
    inner: Capped,
}

impl Proxied {
    pub fn new(balancers: Balancers, inner: Capped) -> Proxied {
        Proxied { balancers, inner }
    }
}

type Accepted<S> = io::Result<(Slotted<TcpStream>, WithClient<S>)>;

impl<S: Send + 'static> Accept<TcpStream, S> for Proxied {
    type Stream = Slotted<TcpStream>;
    type Service = WithClient<S>;
    type Future = Pin<Box<dyn Future<Output = Accepted<S>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let (balancers, inner) = (self.balancers.clone(), self.inner.clone());
        Box::pin(async move {
            let tcp_peer = stream.peer_addr()?;
            // The slot first: connections waiting for a header count against the cap.
            let (mut stream, service) = inner.accept(stream, service).await?;
            let mut client = None;
            if balancers.trusts(tcp_peer.ip()) {
                let read = balancers.client_of(&mut stream, tcp_peer).await;
                ProxyHeaderRead {
                    protocol: "https",
                    balancer: tcp_peer,
                    outcome: read.as_ref().copied(),
                }
                .emit();
                client = Some(read.map_err(io::Error::other)?);
            }
            Ok((
                stream,
                WithClient {
                    inner: service,
                    client,
                },
            ))
        })
    }
}

#[derive(Clone)]
pub struct WithClient<S> {
    inner: S,
    client: Option<SocketAddr>,
}

impl<S, B> tower::Service<Request<B>> for WithClient<S>
where
    S: tower::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if let Some(client) = self.client {
            req.extensions_mut().insert(ClientAddr(client));
        }
        self.inner.call(req)
    }
}
