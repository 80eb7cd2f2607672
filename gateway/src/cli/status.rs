//! `gateway status`: one screen for an operator — health, backlog, what is stored, free
//! space, the outbox per sink, the latest rejections — read from the admin listener's
//! `/admin/status` (`--json` prints that document as it is).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

#[derive(clap::Args)]
pub struct StatusArgs {
    /// Configuration file (TOML), to find the admin listener.
    #[arg(long, short = 'c', env = "GATEWAY_CONFIG")]
    pub config: Option<std::path::PathBuf>,
    /// The admin listener, e.g. `http://10.0.0.5:9090`; default: the one the configured
    /// gateway on this host is listening on (data_dir/run/listeners.json), else
    /// `admin.listen`. The admin token, when one is configured, comes from
    /// `GATEWAY_ADMIN_TOKEN`.
    #[arg(long)]
    pub admin: Option<String>,
    /// Print the status document as JSON.
    #[arg(long)]
    pub json: bool,
}

fn admin_url(args: &StatusArgs) -> Result<String> {
    if let Some(a) = &args.admin {
        return Ok(a.trim_end_matches('/').to_string());
    }
    let config = gateway::config::Config::load(args.config.as_deref())?;
    let listeners = config.run_dir().join("listeners.json");
    let addr = std::fs::read_to_string(&listeners)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|v| v["admin"].as_str().map(String::from))
        .unwrap_or_else(|| config.admin.listen.to_string());
    Ok(format!("http://{addr}"))
}

fn bytes(n: Option<u64>) -> String {
    let Some(n) = n else { return "?".into() };
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", units[u])
}

fn render(s: &Value) -> String {
    let mut out = String::new();
    let ready = s["ready"].as_bool().unwrap_or(false);
    out += &format!(
        "gateway {}  {}  up {} s  {} tenants\n",
        s["version"].as_str().unwrap_or("?"),
        if ready { "READY" } else { "NOT READY" },
        s["uptime_seconds"],
        s["tenants"]
    );
    let b = &s["backlog"];
    out += &format!(
        "backlog   receiving {}  accepted (waiting for checks) {}  checking {}\n",
        b["receiving"], b["accepted"], b["checking"]
    );
    out += &format!(
        "stored    {} in {} files   data dir {} free of {}\n",
        bytes(s["stored"]["bytes"].as_u64()),
        s["stored"]["files"],
        bytes(s["data_dir"]["free_bytes"].as_u64()),
        bytes(s["data_dir"]["size_bytes"].as_u64()),
    );
    out += &format!("outbox    {} events\n", s["outbox"]["events"]);
    for sink in s["outbox"]["sinks"].as_array().into_iter().flatten() {
        out += &format!(
            "  {:<16} backlog {}  lag {} s  dead letters {}\n",
            sink["sink"].as_str().unwrap_or("?"),
            sink["backlog"],
            sink["lag_seconds"],
            sink["dead_letters"]
        );
    }
    let rejections = s["recent_rejections"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    out += &format!("recent rejections ({})\n", rejections.len());
    for r in rejections {
        out += &format!(
            "  {}  {}  {:<28} {}\n",
            gateway::util::rfc3339(r["at"].as_i64().unwrap_or(0)),
            r["tenant"].as_str().unwrap_or("?"),
            r["code"].as_str().unwrap_or(""),
            r["name"].as_str().unwrap_or("")
        );
    }
    out
}

pub fn status(args: StatusArgs) -> Result<()> {
    // reqwest is built without a bundled crypto provider; the gateway's is ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = format!("{}/admin/status", admin_url(&args)?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (code, doc) = rt.block_on(async {
        let mut req = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?
            .get(&url);
        if let Ok(token) = std::env::var("GATEWAY_ADMIN_TOKEN") {
            req = req.bearer_auth(token);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let code = resp.status();
        let doc: Value = resp.json().await.context("not a status document")?;
        anyhow::Ok((code, doc))
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", render(&doc));
    }
    if !code.is_success() {
        bail!("the gateway is not ready ({code})");
    }
    Ok(())
}
