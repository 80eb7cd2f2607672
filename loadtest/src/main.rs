//! `loadtest`: the many-hospital load generator for a gateway on loopback.
//!
//! - `loadtest tenants --scenario S.toml > tenants.toml` — the hospitals (and a reviewer
//!   for the event feed) with the tokens the run will use, for the gateway under test;
//! - `loadtest run --scenario S.toml --url https://127.0.0.1:8443 [--ca-cert PEM]
//!   [--sftp 127.0.0.1:PORT] [--pid PID] [--out DIR]` — runs until a bound, prints a
//!   Markdown summary, writes `report.json`, `report.md` and plots (`throughput.svg`,
//!   `latency.svg`, `gateway.svg`) to DIR;
//!   SIGINT or SIGTERM ends the run early: no new uploads, those under way finish and
//!   the report is written as usual;
//! - `loadtest compare A.json B.json` — B's figures as ratios of A's.

mod content;
mod dicomdir;
mod feed;
mod job;
mod plot;
mod report;
mod retry;
mod run;
mod scenario;
mod sftp;
mod stow;
mod tus;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "loadtest",
    version,
    about = "Many-hospital load generator for the gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the tenants file matching a scenario.
    Tenants {
        #[arg(long)]
        scenario: PathBuf,
    },
    /// Run a scenario against a gateway on loopback.
    Run {
        #[arg(long)]
        scenario: PathBuf,
        /// The gateway's HTTPS base URL (loopback only).
        #[arg(long)]
        url: String,
        #[arg(long)]
        ca_cert: Option<PathBuf>,
        #[arg(long)]
        insecure: bool,
        /// The gateway's process id, to sample its RSS and CPU.
        #[arg(long)]
        pid: Option<u32>,
        /// The gateway's SFTP listener (loopback), when the scenario sends over SFTP.
        #[arg(long)]
        sftp: Option<std::net::SocketAddr>,
        /// Where to write report.json, report.md and the plots (SVG).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Compare two reports (B as ratios of A).
    Compare { a: PathBuf, b: PathBuf },
}

fn load(path: &PathBuf) -> Result<scenario::Scenario> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    scenario::Scenario::parse(&text).with_context(|| format!("scenario {}", path.display()))
}

fn real_main() -> Result<()> {
    match Cli::parse().command {
        Command::Tenants { scenario } => print!("{}", load(&scenario)?.tenants_toml()),
        Command::Run {
            scenario,
            url,
            ca_cert,
            insecure,
            pid,
            sftp,
            out,
        } => {
            let s = load(&scenario)?;
            let host = reqwest::Url::parse(&url)?
                .host_str()
                .unwrap_or_default()
                .to_string();
            anyhow::ensure!(
                ["127.0.0.1", "localhost", "[::1]", "::1"].contains(&host.as_str()),
                "loadtest targets a gateway on loopback only, not {host}"
            );
            anyhow::ensure!(
                sftp.is_none_or(|a| a.ip().is_loopback()),
                "loadtest targets a gateway on loopback only"
            );
            let target = run::Target {
                url,
                ca_cert,
                insecure,
                pid,
                sftp,
            };
            let progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            let report = rt.block_on(run::run(&s, &target, progress))?;
            let md = report.markdown();
            print!("{md}");
            if let Some(dir) = out {
                std::fs::create_dir_all(&dir)?;
                std::fs::write(dir.join("report.json"), serde_json::to_vec_pretty(&report)?)?;
                std::fs::write(dir.join("report.md"), md)?;
                plot::write_all(&report, &dir)?;
            }
        }
        Command::Compare { a, b } => {
            let read = |p: &PathBuf| -> Result<report::Report> {
                Ok(serde_json::from_slice(
                    &std::fs::read(p).with_context(|| format!("{}", p.display()))?,
                )?)
            };
            print!("{}", report::compare(&read(&a)?, &read(&b)?));
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::FAILURE
        }
    }
}
