use std::net::SocketAddr;

use proptest::prelude::*;
use tokio::io::AsyncReadExt;

use super::{Balancers, parse};

const SIG: &[u8] = b"\r\n\r\n\0\r\nQUIT\n";

fn v4_header(command: u8, src: [u8; 4], sport: u16) -> Vec<u8> {
    let mut h = SIG.to_vec();
    h.extend([command, 0x11, 0, 12]);
    h.extend(src);
    h.extend([10, 0, 0, 9]);
    h.extend(sport.to_be_bytes());
    h.extend(22u16.to_be_bytes());
    h
}

fn balancers() -> Balancers {
    Balancers::new(&["10.0.0.0/24".parse().unwrap(), "::1/128".parse().unwrap()])
}

fn balancer() -> SocketAddr {
    "10.0.0.2:40000".parse().unwrap()
}

async fn client_and_rest(b: &Balancers, bytes: Vec<u8>, peer: SocketAddr) -> (String, Vec<u8>) {
    let mut stream = std::io::Cursor::new(bytes);
    let client = match b.client_of(&mut stream, peer).await {
        Ok(a) => a.to_string(),
        Err(e) => e.code().to_string(),
    };
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.unwrap();
    (client, rest)
}

#[tokio::test]
async fn a_balancer_names_the_client_and_the_protocol_bytes_stay() {
    let mut bytes = v4_header(0x21, [203, 0, 113, 7], 51000);
    bytes.extend(b"SSH-2.0-OpenSSH_9.2\r\n");
    let (client, rest) = client_and_rest(&balancers(), bytes, balancer()).await;
    assert_eq!(client, "203.0.113.7:51000");
    assert_eq!(rest, b"SSH-2.0-OpenSSH_9.2\r\n");
}

#[tokio::test]
async fn ipv6_clients_and_mapped_balancer_addresses() {
    let mut h = SIG.to_vec();
    h.extend([0x21, 0x21, 0, 36]);
    let src: std::net::Ipv6Addr = "2001:db8::5".parse().unwrap();
    h.extend(src.octets());
    h.extend(std::net::Ipv6Addr::LOCALHOST.octets());
    h.extend(443u16.to_be_bytes());
    h.extend(443u16.to_be_bytes());
    // An IPv4 balancer seen through a dual-stack socket.
    let mapped: SocketAddr = "[::ffff:10.0.0.2]:40000".parse().unwrap();
    let (client, rest) = client_and_rest(&balancers(), h, mapped).await;
    assert_eq!(client, "[2001:db8::5]:443");
    assert!(rest.is_empty());
}

#[tokio::test]
async fn a_health_check_is_the_balancer_itself() {
    let (client, _) =
        client_and_rest(&balancers(), v4_header(0x20, [1, 2, 3, 4], 1), balancer()).await;
    assert_eq!(client, balancer().to_string());
}

#[tokio::test]
async fn direct_clients_are_never_read_and_cannot_claim_an_address() {
    let direct: SocketAddr = "198.51.100.4:5000".parse().unwrap();
    let bytes = v4_header(0x21, [10, 0, 0, 1], 1);
    let (client, rest) = client_and_rest(&balancers(), bytes.clone(), direct).await;
    assert_eq!(client, direct.to_string());
    assert_eq!(
        rest, bytes,
        "a direct client's bytes are left for the protocol"
    );
}

#[tokio::test]
async fn a_balancer_without_a_header_is_refused() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"SSH-2.0-OpenSSH_9.2\r\n".to_vec(), "proxy.bad_header"),
        // PROXY v1 (text) is not accepted: HAProxy is configured for v2.
        (
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
            "proxy.bad_header",
        ),
        (v4_header(0x21, [1, 2, 3, 4], 1)[..20].to_vec(), "proxy.io"),
        (SIG[..6].to_vec(), "proxy.io"),
        (
            [SIG, &[0x21, 0x11, 0xff, 0xff]].concat(),
            "proxy.bad_header",
        ),
        // Version 1 in the binary form, and an unknown command.
        (
            [SIG, &[0x11, 0x11, 0, 12], &[0; 12]].concat(),
            "proxy.bad_header",
        ),
        (
            [SIG, &[0x2f, 0x11, 0, 12], &[0; 12]].concat(),
            "proxy.bad_header",
        ),
        // Too short for its family.
        (
            [SIG, &[0x21, 0x11, 0, 4], &[0; 4]].concat(),
            "proxy.bad_header",
        ),
    ];
    for (bytes, code) in cases {
        let (got, _) = client_and_rest(&balancers(), bytes.clone(), balancer()).await;
        assert_eq!(got, code, "{bytes:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_balancer_times_out() {
    let (_keep, mut quiet) = tokio::io::duplex(64);
    let err = balancers()
        .client_of(&mut quiet, balancer())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "proxy.timeout");
}

proptest! {
    /// Whatever a balancer sends, parsing answers (an address or a typed error).
    #[test]
    fn any_bytes_parse_or_fail_cleanly(tail in proptest::collection::vec(any::<u8>(), 0..64),
                                       cmd in any::<u8>(), fam in any::<u8>(),
                                       len in 0u16..80) {
        let h = [SIG, &[cmd, fam], &len.to_be_bytes(), &tail].concat();
        let _ = parse(&h, balancer());
    }
}
