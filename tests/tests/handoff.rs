//! Hand-off to downstream services: webhooks that fail for a while (connection
//! refused, HTTP 500, a timeout) and then recover receive every event, in order, with
//! valid signatures; one that always fails ends in dead letters with a metric, and an
//! operator's retry delivers them; a real `nats-server` with JetStream receives every
//! event exactly once per event id, also when the gateway starts before it and when a
//! restart replays events it had already published.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gateway::sealed::seal_to_vec;
use gateway_tests::http::Client;
use gateway_tests::sftp::text_record;
use gateway_tests::{TestGateway, TestTenant};

const A: &str = "3501200000";
const TOKEN: &str = "tok-3501200000-aaaaaaaaaaaaaaaaaaaaaaaa";
const SECRET: &str = "whsec-test-0123456789abcdef";

/// What the receiver does with the next request.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Status(u16),
    /// 307 to this port on loopback.
    Redirect(u16),
    /// Say nothing for this long, then hang up.
    Hang(Duration),
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    answered: Option<u16>,
    event_id: String,
    signature: String,
    body: Vec<u8>,
}

/// A webhook receiver on loopback: answers from a script, then with `default`.
#[derive(Clone)]
struct Receiver {
    script: Arc<Mutex<VecDeque<Answer>>>,
    default: Arc<Mutex<Answer>>,
    got: Arc<Mutex<Vec<Got>>>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Receiver {
    fn start(port: u16, script: &[Answer], default: Answer) -> Receiver {
        let r = Receiver {
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
            default: Arc::new(Mutex::new(default)),
            got: Arc::default(),
        };
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let me = r.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let me = me.clone();
                std::thread::spawn(move || me.serve(conn));
            }
        });
        r
    }

    fn serve(&self, conn: TcpStream) {
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let header = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let len: usize = header("content-length").parse().unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let answer = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(*self.default.lock().unwrap());
        // Recorded on arrival, in arrival order, with the answer it is about to get.
        let answered = match answer {
            Answer::Status(code) => Some(code),
            Answer::Redirect(_) => Some(307),
            Answer::Hang(_) => None,
        };
        self.got.lock().unwrap().push(Got {
            answered,
            event_id: header("gateway-event-id"),
            signature: header("gateway-signature"),
            body,
        });
        match answer {
            Answer::Status(code) => {
                let mut out = conn;
                let _ = write!(
                    out,
                    "HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
            Answer::Redirect(port) => {
                let mut out = conn;
                let _ = write!(
                    out,
                    "HTTP/1.1 307 X\r\nlocation: http://127.0.0.1:{port}/hook\r\n\
                     content-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
            Answer::Hang(d) => std::thread::sleep(d),
        }
    }

    fn delivered(&self) -> Vec<Got> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.answered == Some(200))
            .cloned()
            .collect()
    }
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn metric(gw: &TestGateway, line_start: &str) -> f64 {
    let (_, text) = gw.admin_get("/metrics").unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

fn upload(gw: &TestGateway, name: &str, seed: u8) {
    let c = Client::new(gw.https, Some(TOKEN));
    let recipient = gw.age_recipient().unwrap();
    let sealed = seal_to_vec(&[recipient], &text_record(200, seed)).unwrap();
    let url = c.upload(name, &sealed);
    assert_eq!(c.wait_result(&url)["status"], "passed");
}

/// Webhooks go over https only (plain http needs an explicit opt-out) and never follow
/// a redirect: a 307 is a failed delivery, and the host it points at hears nothing.
#[test]
fn webhooks_are_https_only_and_never_follow_redirects() {
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), SECRET).unwrap();
    let hook = |port: u16, plain: bool| {
        format!(
            "[publish]\nbackoff_initial_ms = 20\nbackoff_max_secs = 1\n\
             [[publish.webhooks]]\nname = \"r\"\nurl = \"http://127.0.0.1:{port}/hook\"\n\
             secret_file = {:?}\ntimeout_secs = 1\nallow_plain_http = {plain}\n",
            secret.path()
        )
    };
    let refused = TestGateway::builder()
        .tenant(TestTenant::new(A).token(TOKEN))
        .config(&hook(free_port(), false))
        .start();
    let err = format!(
        "{:#}",
        refused.err().expect("an http:// webhook is refused")
    );
    assert!(err.contains("https only"), "{err}");

    let (elsewhere_port, redirect_port) = (free_port(), free_port());
    let elsewhere = Receiver::start(elsewhere_port, &[], Answer::Status(200));
    let redirector = Receiver::start(redirect_port, &[], Answer::Redirect(elsewhere_port));
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(A).token(TOKEN))
        .config(&hook(redirect_port, true))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    upload(&gw, "12A03123345.txt", 1);
    wait_for("a redirected delivery", Duration::from_secs(20), || {
        redirector.got.lock().unwrap().len() >= 2
    });
    assert!(
        metric(&gw, "gateway_outbox_delivery_failures_total{sink=\"r\"}") >= 1.0,
        "a 307 is a failure"
    );
    assert!(elsewhere.got.lock().unwrap().is_empty(), "never followed");
}

/// `t=<t>,v1=<hex>` must be HMAC-SHA-256(secret, "<t>.<body>").
fn signature_ok(sig: &str, body: &[u8]) -> bool {
    let Some((t, v1)) = sig.strip_prefix("t=").and_then(|s| s.split_once(",v1=")) else {
        return false;
    };
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let mut msg = format!("{t}.").into_bytes();
    msg.extend_from_slice(body);
    hex::decode(v1).is_ok_and(|mac| ring::hmac::verify(&key, &msg, &mac).is_ok())
}

/// Runs the Python `verify` function from docs/events.md on one request.
fn python_recipe_verifies(sig: &str, body: &[u8]) -> bool {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/events.md"),
    )
    .unwrap();
    let recipe = doc
        .split("```python\n")
        .nth(1)
        .and_then(|r| r.split("```").next())
        .expect("docs/events.md has a Python recipe");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("body"), body).unwrap();
    let script = format!(
        "{recipe}\nimport sys\nbody = open(sys.argv[1], 'rb').read()\n\
         sys.exit(0 if verify({SECRET:?}.encode(), sys.argv[2], body) else 1)\n"
    );
    Command::new("python3")
        .args(["-c", &script])
        .arg(dir.path().join("body"))
        .arg(sig)
        .status()
        .unwrap()
        .success()
}

#[test]
fn webhooks_get_every_event_in_order_after_failures_and_dead_letters_can_be_retried() {
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), format!("{SECRET}\n")).unwrap();
    let (review_port, broken_port) = (free_port(), free_port());
    let broken = Receiver::start(broken_port, &[], Answer::Status(500));
    let hook = |name: &str, port: u16, attempts: u32| {
        format!(
            "[[publish.webhooks]]\nname = \"{name}\"\nurl = \"http://127.0.0.1:{port}/hook\"\n\
             secret_file = {:?}\ntimeout_secs = 1\nmax_attempts = {attempts}\n\
             allow_plain_http = true\n",
            secret.path()
        )
    };
    let gw = TestGateway::builder()
        .tenant(TestTenant::new(A).token(TOKEN))
        .config(&format!(
            "[publish]\nmax_attempts = 100\nbackoff_initial_ms = 20\nbackoff_max_secs = 1\n{}{}",
            hook("review", review_port, 100),
            hook("broken", broken_port, 4)
        ))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    assert_eq!(metric(&gw, "gateway_jobs_running{job=\"outbox\"}"), 1.0);
    for (i, name) in ["one.txt", "two.txt", "three.txt"].iter().enumerate() {
        upload(&gw, name, i as u8);
    }
    // Nobody listens on the review port yet: connection refused, counted.
    wait_for("a refused delivery", Duration::from_secs(10), || {
        metric(
            &gw,
            "gateway_outbox_delivery_failures_total{sink=\"review\"}",
        ) >= 1.0
    });
    // Then it listens, but fails once with 500 and once by hanging past the timeout.
    let review = Receiver::start(
        review_port,
        &[Answer::Status(500), Answer::Hang(Duration::from_secs(3))],
        Answer::Status(200),
    );
    let waited = Instant::now();
    while review.delivered().len() < 3 {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "three deliveries: got {:?}\n{}",
            review.got.lock().unwrap(),
            gw.log()
                .lines()
                .filter(|l| l.contains("deliver"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = review.delivered();
    let ids: Vec<String> = got.iter().map(|g| g.event_id.clone()).collect();
    assert_eq!(got.len(), 3, "each event delivered once: {ids:?}");
    let names: Vec<String> = got
        .iter()
        .map(|g| {
            let v: serde_json::Value = serde_json::from_slice(&g.body).unwrap();
            assert_eq!(v["event_id"].as_str(), Some(g.event_id.as_str()));
            v["name"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(
        names,
        ["one.txt", "two.txt", "three.txt"],
        "in outbox order"
    );
    assert!(got.iter().all(|g| signature_ok(&g.signature, &g.body)));
    assert!(!signature_ok(&got[0].signature, b"{\"tampered\":true}"));
    // The receiver recipe in docs/events.md accepts them too, and refuses a tampered body.
    assert!(python_recipe_verifies(&got[0].signature, &got[0].body));
    assert!(!python_recipe_verifies(&got[0].signature, b"{}"));
    // The failed attempts were the first event, retried: nothing overtook it.
    let all = review.got.lock().unwrap().clone();
    assert!(all.len() >= 5, "{all:?}");
    assert!(
        all[..2]
            .iter()
            .all(|g| g.event_id == ids[0] && g.answered != Some(200))
    );

    // The broken receiver: every event ends as a dead letter, with a metric.
    wait_for("dead letters", Duration::from_secs(30), || {
        metric(&gw, "gateway_outbox_dead_letters{sink=\"broken\"}") >= 3.0
    });
    let (status, body) = gw
        .admin_get("/admin/outbox/dead-letters?sink=broken")
        .unwrap();
    assert_eq!(status, 200);
    let dead: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(dead["dead_letters"].as_array().unwrap().len(), 3, "{dead}");
    assert_eq!(dead["dead_letters"][0]["attempts"], 4);
    assert!(broken.delivered().is_empty());
    // Fixed: an operator's retry delivers them.
    *broken.default.lock().unwrap() = Answer::Status(200);
    let (status, _) = gateway_tests::curl(&[
        "-X",
        "POST",
        &format!("http://{}/admin/outbox/retry?sink=broken", gw.admin),
    ])
    .unwrap();
    assert_eq!(status, 200);
    wait_for("retried dead letters", Duration::from_secs(20), || {
        broken.delivered().len() >= 3
    });
    wait_for("no dead letters", Duration::from_secs(10), || {
        let (_, body) = gw
            .admin_get("/admin/outbox/dead-letters?sink=broken")
            .unwrap();
        body.contains("\"dead_letters\":[]")
    });
}

#[test]
fn nats_jetstream_gets_each_event_once_across_a_restart() {
    let store = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut gw = TestGateway::builder()
        .tenant(TestTenant::new(A).token(TOKEN))
        .config(&format!(
            "[publish]\nbackoff_initial_ms = 50\nbackoff_max_secs = 1\nmax_attempts = 1000\n\
             [publish.nats]\nurl = \"nats://127.0.0.1:{port}\"\n"
        ))
        .start()
        .unwrap();
    gw.wait_ready().unwrap();
    // The server is not up yet: events wait in the outbox.
    upload(&gw, "one.txt", 1);
    upload(&gw, "two.txt", 2);
    wait_for("a failed publish", Duration::from_secs(10), || {
        metric(&gw, "gateway_outbox_delivery_failures_total{sink=\"nats\"}") >= 1.0
    });
    let nats = gateway_fixtures::engines::NatsServer::start(port, store.path());
    wait_for("two publishes", Duration::from_secs(20), || {
        metric(&gw, "gateway_outbox_delivered_total{sink=\"nats\"}") >= 2.0
    });
    let first = gateway_tests::jetstream_messages(nats.addr, "GATEWAY_EVENTS");
    assert_eq!(first.len(), 2, "{first:?}");
    assert!(first.iter().all(|(header, id)| header == id));

    // A crash before the cursor was saved: the restarted gateway publishes the same
    // events again, and JetStream drops them by id.
    gw.kill().unwrap();
    let db = gw.data_dir.join("catalog.db");
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); \
             c.execute(\"UPDATE sink_cursors SET delivered_seq = 0 WHERE sink = 'nats'\"); c.commit()",
        ])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    gw.restart_stopped().unwrap();
    gw.wait_ready().unwrap();
    upload(&gw, "three.txt", 3);
    wait_for("replay and a new publish", Duration::from_secs(20), || {
        metric(&gw, "gateway_outbox_delivered_total{sink=\"nats\"}") >= 3.0
    });
    let all = gateway_tests::jetstream_messages(nats.addr, "GATEWAY_EVENTS");
    let ids: Vec<&str> = all.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(all.len(), 3, "each event id once: {ids:?}");
    assert_eq!(ids[..2], [first[0].0.as_str(), first[1].0.as_str()]);
    assert!(ids.iter().all(|id| id.starts_with("file.indexed:")));
}
