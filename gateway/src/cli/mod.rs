//! Subcommand bodies. `anyhow` lives here and only here.

pub mod push;
pub mod seal;
pub mod status;

use std::path::Path;

use anyhow::{Context, Result};
use gateway::config::{Config, ConfigError, LogFormat};

/// 2 for configuration mistakes (the operator must fix a file), 1 for everything else.
pub fn exit_code(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<ConfigError>().is_some() {
        2
    } else {
        1
    }
}

fn load(path: Option<&Path>) -> Result<Config> {
    Ok(Config::load(path)?)
}

pub fn serve(path: Option<&Path>, format: Option<LogFormat>) -> Result<()> {
    let config = load(path)?;
    gateway::telemetry::init_logging(format.unwrap_or(config.log.format), &config.log.level);
    // Exactly one rustls crypto provider (ring); see STACK.md on aws-lc-rs.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(gateway::serve::run(config))?;
    Ok(())
}

pub fn config_check(path: Option<&Path>) -> Result<()> {
    let config = load(path)?;
    print!("{}", config.to_redacted_toml());
    eprintln!("config ok");
    Ok(())
}

pub fn keys_show(path: Option<&Path>) -> Result<()> {
    let config = load(path)?;
    let tls = config.https.tls_override();
    let keys = gateway::keys::load_or_generate(&config.keys_dir(), tls)?;
    println!("age recipient:        {}", keys.age_recipient());
    println!("ssh host key:         {}", keys.ssh_public_line());
    println!("ssh host fingerprint: {}", keys.ssh_fingerprint());
    println!("tls sha256:           {}", keys.tls_fingerprint()?);
    Ok(())
}

pub fn tenants_cert(path: Option<&Path>, code: &str, cert: &Path) -> Result<()> {
    let config = load(path)?;
    let file = &config.server.tenants_file;
    let bytes = std::fs::read(cert).with_context(|| format!("cannot read {}", cert.display()))?;
    let fingerprint = gateway::tenants::register_client_cert(file, code, &bytes)?;
    println!("{fingerprint}");
    if !config.https.client_certificates {
        eprintln!("note: [https] client_certificates is off; turn it on to use this certificate");
    }
    eprintln!(
        "certificate registered for {code} in {}. Send SIGHUP to a running gateway to load it.",
        file.display()
    );
    Ok(())
}

pub fn tenants_token(path: Option<&Path>, code: &str, days: Option<u32>) -> Result<()> {
    let config = load(path)?;
    let file = &config.server.tenants_file;
    let token = gateway::tenants::mint_token(file, code, days)?;
    println!("{token}");
    eprintln!(
        "token for {code} minted; its hash is in {}. It is shown only this once. \
         Send SIGHUP to a running gateway to load it.",
        file.display()
    );
    Ok(())
}
