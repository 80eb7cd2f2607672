//! The PROXY protocol (version 2, binary), as HAProxy's `send-proxy-v2` sends it: a
//! connection from a configured balancer starts with a header naming the hospital's own
//! address, and everything that judges a caller by address (allow-lists, the
//! brute-force defender, rate limits, audit records) then sees that address, not the
//! balancer's.
//!
//! Only connections from `[server] proxy_protocol_from` are read this way, and from
//! them a header is required: a hospital connecting directly can never claim another
//! address, and a balancer that forgot `send-proxy-v2` is refused loudly instead of
//! making every hospital look like one address. The header is parsed by the `ppp`
//! crate; this module only frames it (reads exactly its bytes, so the TLS or SSH bytes
//! behind it stay in the socket).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;
use ppp::v2::{Addresses, Command, Header};
use tokio::io::{AsyncRead, AsyncReadExt};

/// A balancer sends the header at once; waiting longer only holds a connection slot.
const HEADER_WITHIN: Duration = Duration::from_secs(5);
/// The fixed part: 12-byte signature, version/command, family, 2-byte length.
const FIXED: usize = 16;
/// Addresses take at most 216 bytes (Unix sockets); the rest are TLVs, which HAProxy
/// adds only when configured to. A larger header is refused rather than buffered.
const MAX_REST: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("no PROXY v2 header within {0:?}")]
    Timeout(Duration),
    #[error("not a PROXY v2 header: {0}")]
    BadHeader(String),
    #[error("PROXY header: connection failed: {0}")]
    Io(#[from] std::io::Error),
}

impl ProxyError {
    pub fn code(&self) -> &'static str {
        match self {
            ProxyError::Timeout(_) => "proxy.timeout",
            ProxyError::BadHeader(_) => "proxy.bad_header",
            ProxyError::Io(_) => "proxy.io",
        }
    }
}

/// The balancers whose connections carry a PROXY v2 header.
#[derive(Debug, Clone, Default)]
pub struct Balancers {
    nets: Arc<[IpNet]>,
}

impl Balancers {
    pub fn new(nets: &[IpNet]) -> Balancers {
        Balancers { nets: nets.into() }
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The address to treat `stream` as coming from: `tcp_peer` itself unless that is a
    /// balancer, else the client its header names (a `LOCAL` header, the balancer's
    /// own health check, stays `tcp_peer`).
    pub async fn client_of<S: AsyncRead + Unpin>(
        &self,
        stream: &mut S,
        tcp_peer: SocketAddr,
    ) -> Result<SocketAddr, ProxyError> {
        if !self.trusts(tcp_peer.ip()) {
            return Ok(tcp_peer);
        }
        tokio::time::timeout(HEADER_WITHIN, read_header(stream, tcp_peer))
            .await
            .map_err(|_| ProxyError::Timeout(HEADER_WITHIN))?
    }
}

/// A dual-stack socket shows IPv4 peers as `::ffff:a.b.c.d`; configured networks are
/// written as plain IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
    tcp_peer: SocketAddr,
) -> Result<SocketAddr, ProxyError> {
    let mut buf = vec![0u8; FIXED];
    stream.read_exact(&mut buf).await?;
    if !buf.starts_with(ppp::v2::PROTOCOL_PREFIX) {
        return Err(ProxyError::BadHeader("missing the v2 signature".into()));
    }
    let rest = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if rest > MAX_REST {
        return Err(ProxyError::BadHeader(format!(
            "{rest} bytes of addresses and TLVs (at most {MAX_REST})"
        )));
    }
    buf.resize(FIXED + rest, 0);
    stream.read_exact(&mut buf[FIXED..]).await?;
    parse(&buf, tcp_peer)
}

/// The client address a complete header names.
pub fn parse(header: &[u8], tcp_peer: SocketAddr) -> Result<SocketAddr, ProxyError> {
    let h = Header::try_from(header).map_err(|e| ProxyError::BadHeader(e.to_string()))?;
    if h.command == Command::Local {
        return Ok(tcp_peer);
    }
    match h.addresses {
        Addresses::IPv4(a) => Ok(SocketAddr::from((a.source_address, a.source_port))),
        Addresses::IPv6(a) => Ok(SocketAddr::from((a.source_address, a.source_port))),
        // A client the balancer cannot name (Unix socket, unknown family) is the
        // balancer's business: judge the connection by the balancer's address.
        Addresses::Unix(_) | Addresses::Unspecified => Ok(tcp_peer),
    }
}

#[cfg(test)]
mod tests;
