//! A hospital and a gateway core in one process, for the crash test: it opens the
//! real catalog, spool and object store in `--data-dir`, runs the pipeline, uploads
//! every sealed file in `--files` that is not listed in `--skip` (resuming partial
//! uploads by name), prints `ACK <name> <upload-id> <sha256>` after each acknowledged
//! completion, waits until everything it uploaded is checked, prints `DONE`, exits.
//! The test kills it with SIGKILL at random instants and starts it again.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use gateway::backends::catalog::{self, UploadState};
use gateway::backends::objects::local::LocalStore;
use gateway::pipeline::{Pipeline, window::Windows};
use gateway::session::{IngestCore, IngestSettings, Principal};
use gateway::tenants::Registry;

struct Args {
    data_dir: PathBuf,
    tenants: PathBuf,
    files: PathBuf,
    skip: HashSet<String>,
    fsync_interval: u64,
}

fn args() -> Result<Args> {
    let mut a = std::env::args().skip(1);
    let mut out = Args {
        data_dir: PathBuf::new(),
        tenants: PathBuf::new(),
        files: PathBuf::new(),
        skip: HashSet::new(),
        fsync_interval: 256 << 10,
    };
    while let Some(k) = a.next() {
        let v = a.next().with_context(|| format!("{k} needs a value"))?;
        match k.as_str() {
            "--data-dir" => out.data_dir = v.into(),
            "--tenants" => out.tenants = v.into(),
            "--files" => out.files = v.into(),
            "--skip" => {
                out.skip = v
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            }
            "--fsync-interval" => out.fsync_interval = v.parse()?,
            _ => anyhow::bail!("unknown argument {k}"),
        }
    }
    Ok(out)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let a = args()?;
    let keys = gateway::keys::load_or_generate(&a.data_dir.join("keys"), None)?;
    let catalog = catalog::open("", &a.data_dir).await?;
    let tenants = Registry::load(&a.tenants)?;
    let mut config = gateway::config::Config::default();
    config.server.data_dir = a.data_dir.clone();
    config.ingest.fsync_interval_bytes = a.fsync_interval;
    let core = IngestCore::new(
        catalog.clone(),
        tenants,
        keys.age_identity.clone(),
        IngestSettings::from_config(&config),
    );
    let objects = Arc::new(LocalStore::new(a.data_dir.join("objects"))?);
    // Kills every 5–150 ms can interrupt one file's check three times (the default
    // poison limit, `check.interrupted`); no real crash rate is that high.
    let pipeline = Pipeline::new(&core, objects, a.data_dir.join("work"), Windows::none())
        .with_max_check_attempts(50);
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(pipeline.run(4, (0, 0), stop_rx));

    let who = Principal {
        tenant: "3501200000".into(),
        protocol: "test",
    };
    let mut names: Vec<String> = std::fs::read_dir(&a.files)?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| !a.skip.contains(n))
        .collect();
    names.sort();
    let mut stdout = std::io::stdout();
    for name in names {
        let sealed = std::fs::read(a.files.join(&name))?;
        let mut up = core.open(&who, &name, None).await?;
        let mut off = up.offset() as usize;
        if off > 0 {
            writeln!(stdout, "RESUME {name} {off}")?;
        }
        while off < sealed.len() {
            let end = (off + 65_536).min(sealed.len());
            up.write_at(off as u64, sealed[off..end].to_vec()).await?;
            off = end;
        }
        let acc = up.finish().await?;
        writeln!(stdout, "ACK {name} {} {}", acc.id, acc.plaintext_sha256)?;
        stdout.flush()?;
    }
    // Wait for the pipeline to check everything that was accepted.
    loop {
        let pending = catalog.count_in_state(UploadState::Accepted).await?
            + catalog.count_in_state(UploadState::Checking).await?;
        if pending == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    writeln!(stdout, "DONE")?;
    Ok(())
}
