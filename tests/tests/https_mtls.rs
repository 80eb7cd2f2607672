//! TLS client certificates (mTLS) standing in for API tokens, driven with `curl
//! --cert`: pinned fingerprints (self-signed certificates work), a configured client CA
//! (chain and dates checked in the handshake), registration with `gateway tenants
//! cert`, and every refusal.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gateway_tests::http::{Client, Reply};
use gateway_tests::{TestGateway, TestTenant, run_gateway};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

const CODE: &str = "3501200000";
const OTHER: &str = "1101020018";
const TOKEN: &str = "tok-3501200000-aaaaaaaaaaaaaaaaaaaaaaaa";
const OTHER_TOKEN: &str = "tok-1101020018-bbbbbbbbbbbbbbbbbbbbbbbb";
const V: (&str, &str) = ("Tus-Resumable", "1.0.0");

/// A certificate and key written as PEM files.
struct Pem {
    cert: PathBuf,
    key: PathBuf,
}

struct Certs {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    /// Issued by the CA, registered for CODE.
    issued: Pem,
    /// Self-signed, registered for OTHER.
    self_signed: Pem,
    /// Issued by the CA, registered nowhere.
    stranger: Pem,
    /// Issued by the CA, registered for CODE, but expired.
    expired: Pem,
    /// Issued by the CA with the hospital code OTHER as its subject's serialNumber:
    /// named by its subject, registered nowhere.
    by_code: Pem,
    /// The same from a self-signed certificate: its subject proves nothing.
    self_by_code: Pem,
}

fn write(dir: &Path, name: &str, cert: &rcgen::Certificate, key: &KeyPair) -> Pem {
    let pem = Pem {
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    };
    std::fs::write(&pem.cert, cert.pem()).unwrap();
    std::fs::write(&pem.key, key.serialize_pem()).unwrap();
    pem
}

fn certs() -> Certs {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Test hospital CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let issue = |name: &str, expired: bool| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![format!("{name}.example")]).unwrap();
        params
            .extended_key_usages
            .push(rcgen::ExtendedKeyUsagePurpose::ClientAuth);
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params.signed_by(&key, &issuer).unwrap();
        write(dir.path(), name, &cert, &key)
    };
    let by_code = {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Hospital card");
        params
            .distinguished_name
            .push(rcgen::DnType::CustomDnType(vec![2, 5, 4, 5]), OTHER);
        params
            .extended_key_usages
            .push(rcgen::ExtendedKeyUsagePurpose::ClientAuth);
        let cert = params.signed_by(&key, &issuer).unwrap();
        write(dir.path(), "by-code", &cert, &key)
    };
    let self_by_code = {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, OTHER);
        let cert = params.self_signed(&key).unwrap();
        write(dir.path(), "self-by-code", &cert, &key)
    };
    let issued = issue("issued", false);
    let stranger = issue("stranger", false);
    let expired = issue("expired", true);

    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["self.example".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let self_signed = write(dir.path(), "self", &cert, &key);
    Certs {
        _dir: dir,
        ca,
        issued,
        self_signed,
        stranger,
        expired,
        by_code,
        self_by_code,
    }
}

fn gateway(https_config: &str) -> TestGateway {
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(CODE).token(TOKEN))
        .tenant(TestTenant::new(OTHER).token(OTHER_TOKEN))
        .https_config(https_config)
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    gw
}

/// `gateway tenants cert CODE cert.pem` against the gateway's own config, as an operator.
fn register(gw: &TestGateway, code: &str, cert: &Path) -> String {
    let config = gw.config_path.display().to_string();
    let cert = cert.display().to_string();
    let out = run_gateway(
        &["tenants", "cert", code, &cert, "--config", &config],
        gw.dir(),
    )
    .unwrap();
    assert!(
        out.status.success(),
        "tenants cert: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn create(c: &Client, name_b64: &str) -> Reply {
    c.call(
        "POST",
        "/v1/uploads",
        &[
            V,
            ("Upload-Length", "100"),
            ("Upload-Metadata", &format!("filename {name_b64}")),
        ],
        None,
    )
}

/// SIGHUP, then waits (bounded) until the gateway counts a successful reload.
fn reload(gw: &TestGateway) {
    gw.signal("HUP").unwrap();
    let start = Instant::now();
    loop {
        let (_, metrics) = gw.admin_get("/metrics").unwrap();
        if metrics.contains("gateway_tenants_reloads_total{result=\"ok\"} 1") {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "tenants not reloaded: {metrics}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn pinned_certificates_identify_tenants_without_tokens() {
    let certs = certs();
    let gw = gateway("client_certificates = true");
    let issued =
        Client::new(gw.https, None).with_client_cert(&certs.issued.cert, &certs.issued.key);
    let selfs = Client::new(gw.https, None)
        .with_client_cert(&certs.self_signed.cert, &certs.self_signed.key);

    // Not registered yet: the handshake succeeds, but the certificate names no one.
    let r = create(&issued, "YS5wZGY=");
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "auth.cert_unknown"),
        "{r:?}"
    );

    let fp = register(&gw, CODE, &certs.issued.cert);
    assert!(fp.starts_with("sha256:") && fp.len() == 71, "{fp}");
    let tenants = std::fs::read_to_string(&gw.tenants_path).unwrap();
    assert!(tenants.contains(&fp), "{tenants}");
    register(&gw, OTHER, &certs.self_signed.cert);
    reload(&gw);

    let created = create(&issued, "Yi5wZGY=");
    assert_eq!(created.status, 201, "{created:?}");
    let location = created.header("location").unwrap().to_string();
    let head = issued.call("HEAD", &location, &[V], None);
    assert_eq!(
        (head.status, head.header("upload-offset")),
        (200, Some("0"))
    );

    // The self-signed certificate is OTHER's: CODE's upload is not its to see.
    let list = selfs.call("GET", "/v1/uploads", &[], None);
    assert_eq!(list.status, 200, "{list:?}");
    assert_eq!(
        list.json()["uploads"].as_array().map(Vec::len),
        Some(0),
        "{list:?}"
    );
    let theirs = selfs.call("HEAD", &location, &[V], None);
    assert_eq!(theirs.status, 404);

    // The token still works for clients without a certificate; both together must agree.
    let token_only = Client::new(gw.https, Some(TOKEN));
    assert_eq!(token_only.call("HEAD", &location, &[V], None).status, 200);
    let mut both =
        Client::new(gw.https, Some(TOKEN)).with_client_cert(&certs.issued.cert, &certs.issued.key);
    assert_eq!(both.call("HEAD", &location, &[V], None).status, 200);
    both.token = Some(OTHER_TOKEN.into());
    let r = both.call("HEAD", &location, &[V], None);
    assert_eq!(r.status, 401);
    let r = both.call("GET", "/v1/uploads", &[], None);
    assert_eq!(r.code(), "auth.identity_conflict", "{r:?}");

    // An unregistered certificate with a valid token: the token decides.
    let stranger = Client::new(gw.https, Some(TOKEN))
        .with_client_cert(&certs.stranger.cert, &certs.stranger.key);
    assert_eq!(stranger.call("HEAD", &location, &[V], None).status, 200);
    let nobody = Client::new(gw.https, None);
    let r = nobody.call("GET", "/v1/uploads", &[], None);
    assert_eq!((r.status, r.code().as_str()), (401, "auth.token_missing"));

    // The web console: the registered certificate signs in without a token, and the
    // session it gets is its hospital's.
    let r = issued.call("POST", "/console/api/session", &[], None);
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["role"], "hospital");
    assert_eq!(r.json()["subject"], CODE);
    let cookie = r.header("set-cookie").unwrap_or_default().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let r = nobody.call("POST", "/console/api/session", &[], None);
    assert_eq!((r.status, r.code().as_str()), (401, "auth.token_missing"));
    let r = Client::new(gw.https, None)
        .with_client_cert(&certs.stranger.cert, &certs.stranger.key)
        .call("POST", "/console/api/session", &[], None);
    assert_eq!((r.status, r.code().as_str()), (401, "auth.cert_unknown"));

    let (_, metrics) = gw.admin_get("/metrics").unwrap();
    assert!(
        metrics.contains("gateway_http_auth_failures_total{reason=\"key_not_authorized\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "gateway_console_sessions_total{action=\"sign_in\",role=\"hospital\",via=\"certificate\"} 1"
        ),
        "{metrics}"
    );
}

#[test]
fn a_client_ca_checks_chain_and_dates_in_the_handshake() {
    let certs = certs();
    let gw = gateway(&format!(
        "client_certificates = true\nclient_ca_file = {:?}",
        certs.ca
    ));
    register(&gw, CODE, &certs.issued.cert);
    register(&gw, CODE, &certs.expired.cert);
    register(&gw, OTHER, &certs.self_signed.cert);
    let issued =
        Client::new(gw.https, None).with_client_cert(&certs.issued.cert, &certs.issued.key);
    reload(&gw);
    assert_eq!(create(&issued, "YS5wZGY=").status, 201);

    // Registered, but not from the CA / out of date: no TLS session at all.
    for pem in [&certs.self_signed, &certs.expired] {
        let c = Client::new(gw.https, Some(TOKEN)).with_client_cert(&pem.cert, &pem.key);
        let r = c.call("GET", "/v1/uploads", &[], None);
        assert_eq!(r.status, 0, "{:?} accepted: {r:?}", pem.cert);
        assert!(!r.error.is_empty());
    }
    // From the CA but registered nowhere: handshake fine, no tenant.
    let stranger =
        Client::new(gw.https, None).with_client_cert(&certs.stranger.cert, &certs.stranger.key);
    assert_eq!(
        stranger.call("GET", "/v1/uploads", &[], None).code(),
        "auth.cert_unknown"
    );
    // Without a certificate a token still works.
    let token_only = Client::new(gw.https, Some(TOKEN));
    assert_eq!(token_only.call("GET", "/v1/uploads", &[], None).status, 200);
    // From the CA, naming hospital OTHER by its code in the subject (rule 25): OTHER,
    // with no fingerprint registered.
    let card =
        Client::new(gw.https, None).with_client_cert(&certs.by_code.cert, &certs.by_code.key);
    assert_eq!(create(&card, "Yy5wZGY=").status, 201);
    let listed = card.call("GET", "/v1/uploads", &[], None).json();
    assert_eq!(listed["uploads"][0]["name"], "c.pdf", "{listed}");
}

/// Without a client CA a subject proves nothing: a self-signed certificate whose
/// subject is a hospital's code identifies no one.
#[test]
fn a_subject_names_a_hospital_only_under_a_client_ca() {
    let certs = certs();
    let gw = gateway("client_certificates = true");
    let c = Client::new(gw.https, None)
        .with_client_cert(&certs.self_by_code.cert, &certs.self_by_code.key);
    assert_eq!(
        c.call("GET", "/v1/uploads", &[], None).code(),
        "auth.cert_unknown"
    );
}

#[test]
fn certificates_are_ignored_unless_turned_on() {
    let certs = certs();
    let gw = gateway("");
    register(&gw, CODE, &certs.issued.cert);
    reload(&gw);
    let c = Client::new(gw.https, None).with_client_cert(&certs.issued.cert, &certs.issued.key);
    let r = c.call("GET", "/v1/uploads", &[], None);
    assert_eq!(
        (r.status, r.code().as_str()),
        (401, "auth.token_missing"),
        "{r:?}"
    );
}
