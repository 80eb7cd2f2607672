//! Raw HTTP calls to the gateway's HTTPS listener with `curl`: method, headers, body
//! in; status, headers and body out. For tests that drive protocols by hand (tus).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Command;

/// One answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    pub body: String,
    /// The body as bytes (binary downloads).
    pub raw: Vec<u8>,
    /// What curl said on stderr (empty when all went well).
    pub error: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The stable code of a problem document.
    pub fn code(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| v["code"].as_str().map(String::from))
            .unwrap_or_default()
    }
}

/// A client for one gateway with one bearer token (or none).
pub struct Client {
    pub base: String,
    pub token: Option<String>,
    /// Extra curl arguments for every call (a client certificate, say).
    pub curl_args: Vec<String>,
    dir: tempfile::TempDir,
}

impl Client {
    pub fn new(https: SocketAddr, token: Option<&str>) -> Client {
        Client {
            base: format!("https://{https}"),
            token: token.map(String::from),
            curl_args: Vec::new(),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// Presents a TLS client certificate (PEM files) on every call.
    pub fn with_client_cert(mut self, cert: &std::path::Path, key: &std::path::Path) -> Client {
        self.curl_args.push("--cert".into());
        self.curl_args.push(cert.display().to_string());
        self.curl_args.push("--key".into());
        self.curl_args.push(key.display().to_string());
        self
    }

    /// `path` is absolute (`/v1/...`) or a full URL.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        let url = if path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let head_file = self.dir.path().join("headers");
        let body_file = self.dir.path().join("body");
        let _ = std::fs::remove_file(&body_file);
        let mut c = Command::new("curl");
        // HTTP/1.1: an answer sent before the request body was read (a refused PATCH)
        // ends an HTTP/2 stream with RST_STREAM(NO_ERROR), which RFC 9113 §8.1 allows
        // but Debian 12's curl 7.88 reports as error 92 instead of showing the answer.
        c.args(["-sSk", "--http1.1", "--max-time", "60", "-D"])
            .arg(&head_file)
            .arg("-o")
            .arg(&body_file)
            .args(["-w", "%{http_code}"])
            .args(&self.curl_args);
        if method == "HEAD" {
            c.arg("-I");
        } else {
            c.args(["-X", method]);
        }
        if let Some(t) = &self.token {
            c.arg("-H").arg(format!("Authorization: Bearer {t}"));
        }
        for (k, v) in headers {
            c.arg("-H").arg(format!("{k}: {v}"));
        }
        if let Some(b) = body {
            let req = self.dir.path().join("request");
            std::fs::write(&req, b).expect("request body");
            c.arg("--data-binary").arg(format!("@{}", req.display()));
        }
        let out = c.arg(&url).output().expect("curl runs");
        let status = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        let raw = std::fs::read_to_string(&head_file).unwrap_or_default();
        // With -I curl also writes the headers to -o; only the -D copy is parsed.
        let headers = raw
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let raw = if method == "HEAD" {
            Vec::new()
        } else {
            std::fs::read(&body_file).unwrap_or_default()
        };
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&raw).into_owned(),
            raw,
            error: String::from_utf8_lossy(&out.stderr).to_string(),
        }
    }
}

impl Client {
    /// A whole sealed file in one tus creation-with-upload request; returns the
    /// upload's path.
    pub fn upload(&self, name: &str, sealed: &[u8]) -> String {
        let r = self.upload_with(name, sealed, &[]);
        let len = sealed.len().to_string();
        assert_eq!(r.status, 201, "{r:?}");
        assert_eq!(r.header("upload-offset"), Some(len.as_str()), "{r:?}");
        r.header("location").expect("Location").to_string()
    }

    /// A tus creation-with-upload whose `Upload-Metadata` carries `extra` pairs besides
    /// the file name (a value of `None`: the key alone); the reply as it came.
    pub fn upload_with(&self, name: &str, sealed: &[u8], extra: &[(&str, Option<&str>)]) -> Reply {
        use base64::Engine;
        let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
        let mut meta = format!("filename {}", b64(name));
        for (k, v) in extra {
            meta += &match v {
                Some(v) => format!(",{k} {}", b64(v)),
                None => format!(",{k}"),
            };
        }
        let len = sealed.len().to_string();
        self.call(
            "POST",
            "/v1/uploads",
            &[
                ("Tus-Resumable", "1.0.0"),
                ("Upload-Length", &len),
                ("Upload-Metadata", &meta),
                ("Content-Type", "application/offset+octet-stream"),
            ],
            Some(sealed),
        )
    }

    /// Waits (at most 30 s) for an upload's check result to be final.
    pub fn wait_result(&self, upload: &str) -> serde_json::Value {
        self.wait_result_within(upload, std::time::Duration::from_secs(30))
    }

    /// Waits at most `limit` for an upload's check result to be final.
    pub fn wait_result_within(
        &self,
        upload: &str,
        limit: std::time::Duration,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let r = self.call("GET", &format!("{upload}/result"), &[], None);
            assert_eq!(r.status, 200, "{r:?}");
            let v = r.json();
            if v["status"] == "passed" || v["status"] == "failed" {
                return v;
            }
            assert!(std::time::Instant::now() < deadline, "no result: {v}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}
