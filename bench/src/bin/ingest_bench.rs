//! The ingest core alone (no network): sealed bytes in through the session API, out as
//! an indexed file, timed end to end. Run by `bench/run-ingest.sh`, which times the
//! shell reference in the same run.
//!
//! `ingest_bench big SEALED_FILE` — one large file: prints seconds and peak RSS.
//! `ingest_bench small COUNT KIB` — COUNT files of KIB each, 8 uploads at a time:
//! prints files/s. Sealing the inputs is not timed.
//! `ingest_bench latency COUNT KIB` — one small upload at a time, with the time to
//! open, write, accept and index each.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use gateway::backends::catalog;
use gateway::backends::objects::local::LocalStore;
use gateway::pipeline::{Outcome, Pipeline, window::Windows};
use gateway::sealed::{Identity, seal_to_vec};
use gateway::session::{IngestCore, IngestSettings, Principal};
use gateway::tenants::Registry;

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Peak anonymous memory, sampled every 5 ms. VmHWM alone would also count the pages of
/// the memory-mapped spool file, which are page cache, not memory the process holds.
struct AnonPeak {
    stop: Arc<std::sync::atomic::AtomicBool>,
    handle: std::thread::JoinHandle<u64>,
}

impl AnonPeak {
    fn start() -> AnonPeak {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(status_kib("RssAnon:"));
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            peak
        });
        AnonPeak { stop, handle }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.join().unwrap_or(0)
    }
}

async fn setup(dir: &std::path::Path, identity: &Identity) -> Result<(Arc<IngestCore>, Pipeline)> {
    let tenants = dir.join("tenants.toml");
    std::fs::write(
        &tenants,
        "[[tenant]]\ncode = \"3501200000\"\nname = \"B\"\nprofile = \"generic\"\n",
    )?;
    let mut config = gateway::config::Config::default();
    config.server.data_dir = dir.to_owned();
    // BENCH_SYNCHRONOUS=normal measures what `[catalog] synchronous = "full"` costs.
    let synchronous = match std::env::var("BENCH_SYNCHRONOUS").as_deref() {
        Ok("normal") => gateway::config::Synchronous::Normal,
        _ => gateway::config::Synchronous::Full,
    };
    let catalog = catalog::open_with("", dir, synchronous).await?;
    let core = IngestCore::new(
        catalog,
        Registry::load(&tenants)?,
        identity.clone(),
        IngestSettings::from_config(&config),
    );
    let objects = Arc::new(LocalStore::new(dir.join("objects"))?);
    let pipeline = Pipeline::new(&core, objects, dir.join("work"), Windows::none());
    Ok((core, pipeline))
}

fn who() -> Principal {
    Principal {
        tenant: "3501200000".into(),
        protocol: "bench",
    }
}

async fn big(path: &str, identity_file: &str, dir: &std::path::Path) -> Result<()> {
    let identity = Identity::from_file_text(&std::fs::read_to_string(identity_file)?)?;
    let (core, pipeline) = setup(dir, &identity).await?;
    let anon = AnonPeak::start();
    let started = Instant::now();
    let mut file = std::fs::File::open(path).context("sealed input")?;
    let mut up = core.open(&who(), "big.mp4", None).await?;
    loop {
        let mut buf = vec![0u8; 256 << 10];
        let n = std::io::Read::read(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        buf.truncate(n);
        let off = up.offset();
        up.write_at(off, buf).await?;
    }
    let accepted = up.finish().await?;
    let t_accepted = started.elapsed().as_secs_f64();
    match pipeline.process_next().await? {
        Some(Outcome::Indexed { .. }) => {}
        other => bail!("not indexed: {other:?}"),
    }
    let t_indexed = started.elapsed().as_secs_f64();
    println!(
        "big accepted_s={t_accepted:.3} indexed_s={t_indexed:.3} sha256={} peak_anon_kib={} vm_hwm_kib={}",
        accepted.plaintext_sha256,
        anon.finish(),
        status_kib("VmHWM:")
    );
    Ok(())
}

/// Where the time of one small upload goes, one upload at a time.
async fn latency(count: usize, kib: usize, dir: &std::path::Path) -> Result<()> {
    let identity = Identity::generate()?;
    let (core, pipeline) = setup(dir, &identity).await?;
    for i in 0..count {
        let mut p = format!("record {i}\n").into_bytes();
        p.resize(kib << 10, b'a' + (i % 26) as u8);
        let sealed = seal_to_vec(&[identity.to_public()], &p)?;
        let t = Instant::now();
        let mut up = core.open(&who(), &format!("p{i:06}.txt"), None).await?;
        let t_open = t.elapsed();
        up.write_at(0, sealed).await?;
        let t_write = t.elapsed();
        up.finish().await?;
        let t_finish = t.elapsed();
        pipeline.process_next().await?;
        let t_indexed = t.elapsed();
        println!(
            "latency open={t_open:?} written={t_write:?} accepted={t_finish:?} indexed={t_indexed:?}"
        );
    }
    Ok(())
}

async fn small(count: usize, kib: usize, dir: &std::path::Path) -> Result<()> {
    let identity = Identity::generate()?;
    let (core, pipeline) = setup(dir, &identity).await?;
    let inputs: Vec<Vec<u8>> = (0..count)
        .map(|i| {
            let mut p = format!("record {i}\n").into_bytes();
            p.resize(kib << 10, b'a' + (i % 26) as u8);
            seal_to_vec(&[identity.to_public()], &p)
        })
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let pipeline_task = tokio::spawn(pipeline.run(8, (0, 0), stop_rx));
    let inputs = Arc::new(inputs);
    let mut uploaders = Vec::new();
    for lane in 0..8 {
        let (core, inputs) = (core.clone(), inputs.clone());
        uploaders.push(tokio::spawn(async move {
            for i in (lane..inputs.len()).step_by(8) {
                let mut up = core.open(&who(), &format!("s{i:06}.txt"), None).await?;
                up.write_at(0, inputs[i].clone()).await?;
                up.finish().await?;
            }
            anyhow::Ok(())
        }));
    }
    for u in uploaders {
        u.await??;
    }
    let t_accepted = started.elapsed().as_secs_f64();
    let catalog = core.catalog().clone();
    use gateway::backends::catalog::UploadState;
    while catalog.count_in_state(UploadState::Indexed).await? < count as i64 {
        if catalog.count_in_state(UploadState::Rejected).await? > 0 {
            bail!("an upload was rejected; the bench inputs must pass their checks");
        }
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let t = started.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    let _ = pipeline_task.await;
    println!(
        "small count={count} kib={kib} accepted_per_s={:.0} indexed_per_s={:.0} vm_hwm_kib={}",
        count as f64 / t_accepted,
        count as f64 / t,
        status_kib("VmHWM:")
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir =
        tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/var/tmp".into()))?;
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["big", file, identity] => big(file, identity, dir.path()).await,
        ["small", count, kib] => small(count.parse()?, kib.parse()?, dir.path()).await,
        ["latency", count, kib] => latency(count.parse()?, kib.parse()?, dir.path()).await,
        _ => bail!(
            "usage: ingest_bench big SEALED_FILE IDENTITY_FILE | small COUNT KIB | latency COUNT KIB"
        ),
    }
}
