//! `gateway push`: flags → [`gateway::push::push`], summary → exit code.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use gateway::push::{PushOptions, Report};

#[derive(clap::Args)]
pub struct PushArgs {
    /// Files and folders to send (a folder keeps its name and tree).
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// The gateway's HTTPS address.
    #[arg(long, env = "GATEWAY_URL", default_value = "https://localhost:8443")]
    url: String,
    /// The hospital's API token (`gateway tenants token CODE` mints one).
    #[arg(long, env = "GATEWAY_TOKEN", hide_env_values = true)]
    token: String,
    /// Seal to this age recipient; default: the one the gateway announces.
    #[arg(long)]
    recipient: Option<String>,
    /// Trust this PEM certificate (for a gateway with a private CA).
    #[arg(long)]
    ca_cert: Option<PathBuf>,
    /// Accept any certificate (a gateway with its self-generated one; tests only).
    #[arg(long)]
    insecure: bool,
    /// Files sent at once.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// Bytes per request, in MiB; also how much is re-sent at most after an interruption.
    #[arg(long, default_value_t = 16)]
    chunk_mib: usize,
    /// Where uploads in progress are remembered (resume after a restart).
    #[arg(long, default_value = ".gateway-push.json")]
    state: PathBuf,
    /// Folder at the gateway to put everything under.
    #[arg(long, default_value = "")]
    prefix: String,
    /// Wait for every check result (up to this many seconds); exit 1 if any failed.
    #[arg(long, value_name = "SECONDS", num_args = 0..=1, default_missing_value = "600")]
    wait: Option<u64>,
    /// Send each file at most this many bytes per second (like curl's --limit-rate).
    #[arg(long, value_name = "BYTES_PER_SEC")]
    limit_rate: Option<u64>,
    /// JSON lines on standard output instead of progress bars.
    #[arg(long)]
    json: bool,
}

pub fn push(args: PushArgs) -> Result<()> {
    let recipient = args
        .recipient
        .as_deref()
        .map(str::parse)
        .transpose()
        .context("--recipient")?;
    let report = if args.json {
        Report::Json
    } else if std::io::stderr().is_terminal() {
        Report::Bars(indicatif::MultiProgress::new())
    } else {
        Report::Quiet
    };
    let opts = PushOptions {
        url: args.url,
        token: args.token,
        recipient,
        ca_cert: args.ca_cert,
        insecure: args.insecure,
        parallel: args.parallel,
        chunk_bytes: args.chunk_mib.clamp(1, 1024) << 20,
        state: args.state,
        prefix: args.prefix,
        wait: args.wait.map(Duration::from_secs),
        rate: args.limit_rate,
        report: report.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let summary = runtime.block_on(gateway::push::push(&args.paths, opts))?;
    if !matches!(report, Report::Json) {
        eprintln!(
            "{} accepted, {} failed{}",
            summary.accepted.len(),
            summary.failed.len(),
            if summary.check_failed.is_empty() {
                String::new()
            } else {
                format!(", {} failed their checks", summary.check_failed.len())
            }
        );
        for (name, code) in &summary.failed {
            eprintln!("  {name}: {code}");
        }
    }
    if !summary.ok() {
        bail!("not every file was accepted and passed");
    }
    Ok(())
}
