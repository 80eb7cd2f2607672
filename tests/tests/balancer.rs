//! Behind HAProxy (TCP mode, PROXY protocol v2): the gateway judges each hospital by
//! its own address, not the balancer's, on both listeners; only the configured
//! balancer may name a client; the shipped `config/haproxy.cfg` is valid.

use std::net::SocketAddr;
use std::process::Command;

use gateway_tests::balancer::{Haproxy, Node};
use gateway_tests::{TestGateway, TestTenant, curl, sftp_batch_with, ssh_keygen};

const CODE: &str = "0312345678";
const TOKEN: &str = "balancer-test-token";
/// The balancer's own address towards the gateways, and two hospitals.
const BALANCER: &str = "127.0.0.9";
const ALLOWED: &str = "127.0.0.5";
const OTHER: &str = "127.0.0.6";

fn gateway(public_key: &str) -> TestGateway {
    let tenant = TestTenant::new(CODE)
        .ssh_key(public_key)
        .token(TOKEN)
        .allow_ips(&[ALLOWED]);
    let gw = TestGateway::builder()
        .server_config(&format!("proxy_protocol_from = [\"{BALANCER}/32\"]"))
        .tenant(tenant)
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    gw
}

/// `GET /v1/uploads` with the hospital's token, sent from `from`.
fn list_uploads(to: SocketAddr, from: &str) -> (u16, String) {
    curl(&[
        "-k",
        "--interface",
        from,
        "-H",
        &format!("Authorization: Bearer {TOKEN}"),
        &format!("https://{to}/v1/uploads"),
    ])
    .unwrap()
}

/// An sftp `put` of one small file, from `from`; the client's exit code and output.
fn sftp_put(
    to: SocketAddr,
    from: &str,
    key: &std::path::Path,
    file: &std::path::Path,
) -> (i32, String) {
    let bind = format!("BindAddress={from}");
    let script = format!("put {} /inbox/note.txt\n", file.display());
    sftp_batch_with(to, CODE, key, &[&bind], &script).unwrap()
}

#[test]
fn hospitals_are_judged_by_their_own_address_through_haproxy() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = ssh_keygen(dir.path(), "hospital").unwrap();
    let gw = gateway(&public);
    let lb = Haproxy::start(dir.path(), &[Node::from(&gw)], BALANCER).unwrap();

    // HTTPS: the allowed hospital gets through the balancer, another address does not,
    // although both arrive from the balancer's address.
    let (status, body) = list_uploads(lb.https, ALLOWED);
    assert_eq!(status, 200, "{body}\n{}", gw.log());
    let (status, body) = list_uploads(lb.https, OTHER);
    assert_eq!(status, 401, "{body}");
    // The answer does not tell a caller which check failed; the counter does.
    assert!(body.contains("auth.token_invalid"), "{body}");
    assert!(gw.metric("gateway_http_auth_failures_total{reason=\"ip_not_allowed\"}") >= 1.0);

    // SFTP: the same, and an upload through the balancer is accepted.
    let file = dir.path().join("upload.bin");
    let recipient = gw.age_recipient().unwrap();
    let record = gateway_tests::sftp::text_record(70_000, 1);
    let sealed = gateway::sealed::seal_to_vec(std::slice::from_ref(&recipient), &record).unwrap();
    std::fs::write(&file, sealed).unwrap();
    let (code, out) = sftp_put(lb.sftp, ALLOWED, &key, &file);
    assert_eq!(code, 0, "{out}\n{}", gw.log());
    let (code, out) = sftp_put(lb.sftp, OTHER, &key, &file);
    assert_ne!(code, 0, "{out}");
    assert!(
        gw.metric("gateway_ssh_auth_failures_total{reason=\"ip_not_allowed\"}") >= 1.0,
        "the second hospital is refused for its address"
    );

    // The log and the counters name the hospitals, never the balancer, as clients.
    let log = gw.log();
    assert!(log.contains(ALLOWED), "{log}");
    assert!(gw.metric("gateway_proxy_headers_total{outcome=\"client\",protocol=\"https\"}") >= 2.0);
    assert!(gw.metric("gateway_proxy_headers_total{outcome=\"client\",protocol=\"sftp\"}") >= 2.0);
    // Health checks on the admin listener keep both backends up.
    assert_eq!(lb.servers_up().unwrap(), 2, "{}", lb.stat().unwrap());
}

#[test]
fn only_the_balancer_speaks_proxy_and_it_must() {
    let dir = tempfile::tempdir().unwrap();
    let (key, public) = ssh_keygen(dir.path(), "hospital").unwrap();
    let gw = gateway(&public);

    // A hospital connecting directly is judged by its TCP address, header or not.
    let (status, body) = list_uploads(gw.https, ALLOWED);
    assert_eq!(status, 200, "{body}");
    let (status, _) = list_uploads(gw.https, OTHER);
    assert_eq!(status, 401);

    // A connection from the balancer's address without a header is closed before TLS
    // or SSH: a balancer without `send-proxy-v2` fails loudly.
    let (status, _) = list_uploads(gw.https, BALANCER);
    assert_eq!(status, 0, "no HTTP answer without a PROXY header");
    let file = dir.path().join("upload.bin");
    std::fs::write(&file, b"x").unwrap();
    let (code, out) = sftp_put(gw.sftp, BALANCER, &key, &file);
    assert_ne!(code, 0, "{out}");
    for protocol in ["https", "sftp"] {
        let series = format!(
            "gateway_proxy_headers_total{{outcome=\"proxy.bad_header\",protocol=\"{protocol}\"}}"
        );
        assert!(gw.metric(&series) >= 1.0, "{series} not counted");
    }
}

#[test]
fn the_shipped_haproxy_config_is_valid() {
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/haproxy.cfg");
    let out = Command::new(if std::path::Path::new("/usr/sbin/haproxy").exists() {
        "/usr/sbin/haproxy"
    } else {
        "haproxy"
    })
    .args(["-c", "-f", cfg])
    .output()
    .expect("haproxy (scripts/test-setup.sh)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
