//! The `gateway` binary: the server (`serve`) and the tools around it, for operators
//! (`config check`, `keys show`, `tenants token`, `status`) and hospitals (`keygen`, `seal`, `open`,
//! `push`).

mod cli;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use gateway::config::LogFormat;

#[derive(Parser)]
#[command(
    name = "gateway",
    version,
    about = "Ingestion gateway for sealed medical records"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct ConfigArg {
    /// Configuration file (TOML). Without it: built-in defaults plus GATEWAY_* variables.
    #[arg(long, short = 'c', env = "GATEWAY_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (SFTP, HTTPS and admin listeners).
    Serve {
        #[command(flatten)]
        config: ConfigArg,
        /// Log format; wins over `log.format` in the config.
        #[arg(long, value_enum)]
        log_format: Option<LogFormatArg>,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The gateway's own keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Institutions and principals.
    Tenants {
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// Generate an age identity (secret key) and print its recipient.
    Keygen {
        /// Write the identity here (mode 0600) instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Seal a file to one or more age recipients.
    Seal(cli::seal::SealArgs),
    /// Open (verify and decrypt) a sealed file.
    Open(cli::seal::OpenArgs),
    /// Send files and folders to a gateway over HTTPS (tus), sealing them on the fly;
    /// resumes after interruptions, also after a restart of this command.
    Push(cli::push::PushArgs),
    /// One screen for an operator: health, backlog, stored bytes, free space, outbox,
    /// recent rejections (from the admin listener; `--json` too).
    Status(cli::status::StatusArgs),
    /// An isolated inspector worker; started by `serve`, not by people.
    #[command(hide = true)]
    InspectWorker {
        /// Heap limit (RLIMIT_DATA), MiB.
        #[arg(long)]
        memory_mib: u64,
        /// CPU seconds per request (RLIMIT_CPU).
        #[arg(long)]
        cpu_secs: u64,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and print the effective settings (secrets redacted).
    Check {
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print the age recipient, SSH host key and TLS fingerprint (generating missing keys).
    Show {
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Subcommand)]
enum TenantsCommand {
    /// Mint an API token for an institution: its hash goes into the tenants file, the
    /// token is printed once. Send SIGHUP to a running gateway afterwards.
    Token {
        /// The institution's 10-digit hospital code.
        code: String,
        /// The token expires after this many days (`auth.token_expired` from then on).
        #[arg(long)]
        days: Option<u32>,
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Register a TLS client certificate (PEM or DER) for an institution: its SHA-256
    /// fingerprint goes into the tenants file. Needs `[https] client_certificates`.
    Cert {
        /// The institution's 10-digit hospital code.
        code: String,
        /// The client certificate file.
        cert: std::path::PathBuf,
        #[command(flatten)]
        config: ConfigArg,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormatArg {
    Pretty,
    Json,
}

/// Caps glibc's malloc arenas at two (unless `MALLOC_ARENA_MAX` is set). By default
/// glibc gives each thread that allocates under contention its own arena, up to 8 per
/// core, and each keeps what was freed in it; the gateway's many short-lived blocking
/// threads (file I/O, checks) spread allocations over all of them. Measured with the
/// loadtest (same scenario, same run): peak anonymous memory 191 MiB → 121 MiB, CPU per
/// upload +5 %.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a tunable; called before any thread is started.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// Reports an allocation failed at a worker's memory limit as such (see
/// `pipeline::isolation::child`); otherwise the system allocator, unchanged.
#[global_allocator]
static ALLOC: gateway::pipeline::isolation::child::LimitAwareAlloc =
    gateway::pipeline::isolation::child::LimitAwareAlloc;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config, log_format } => {
            let format = log_format.map(|f| match f {
                LogFormatArg::Pretty => LogFormat::Pretty,
                LogFormatArg::Json => LogFormat::Json,
            });
            cli::serve(config.config.as_deref(), format)
        }
        Command::Config {
            command: ConfigCommand::Check { config },
        } => cli::config_check(config.config.as_deref()),
        Command::Keys {
            command: KeysCommand::Show { config },
        } => cli::keys_show(config.config.as_deref()),
        Command::Tenants {
            command: TenantsCommand::Token { code, days, config },
        } => cli::tenants_token(config.config.as_deref(), &code, days),
        Command::Tenants {
            command: TenantsCommand::Cert { code, cert, config },
        } => cli::tenants_cert(config.config.as_deref(), &code, &cert),
        Command::Keygen { output } => cli::seal::keygen(output.as_deref()),
        Command::Seal(args) => cli::seal::seal(args),
        Command::Open(args) => cli::seal::open(args),
        Command::Push(args) => cli::push::push(args),
        Command::Status(args) => cli::status::status(args),
        Command::InspectWorker {
            memory_mib,
            cpu_secs,
        } => gateway::pipeline::isolation::child::serve(
            gateway::pipeline::isolation::child::Limits {
                memory_mib,
                cpu_secs,
            },
        )
        .map_err(anyhow::Error::from),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<gateway::sealed::SealedError>() {
                Some(s) => eprintln!("error: {}: {e:#}", s.code()),
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::from(cli::exit_code(&e))
        }
    }
}
