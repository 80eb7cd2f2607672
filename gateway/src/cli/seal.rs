//! `gateway keygen | seal | open`: the hospital-side sealing tools.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, IsTerminal, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use gateway::sealed::{
    HeaderPolicy, Identity, ParallelOptions, Recipient, Sealer, StreamOpener, parallel,
};
use indicatif::{ProgressBar, ProgressStyle};

#[derive(clap::Args)]
pub struct SealArgs {
    /// Recipient (`age1…`); repeat for several.
    #[arg(short, long = "recipient", required = true)]
    recipients: Vec<String>,
    /// Output file; `-` or absent for standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Input file; `-` or absent for standard input.
    input: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct OpenArgs {
    /// Identity file (as written by `gateway keygen` or `age-keygen`).
    #[arg(short, long)]
    identity: PathBuf,
    /// Output file; `-` or absent for standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Accept files also sealed to other recipients.
    #[arg(long)]
    allow_other_recipients: bool,
    /// Decrypt sequentially even when input and output are files.
    #[arg(long)]
    stream: bool,
    /// Print the plaintext SHA-256 to standard error.
    #[arg(long)]
    sha256: bool,
    /// Input file; `-` or absent for standard input.
    input: Option<PathBuf>,
}

fn is_std(p: &Option<PathBuf>) -> bool {
    p.as_deref().is_none_or(|p| p == Path::new("-"))
}

/// An output path that exists but is not a regular file (`/dev/null`, a FIFO) is
/// written in place; only regular files get the temporary-file-and-rename treatment.
fn is_special(p: &Option<PathBuf>) -> bool {
    p.as_deref()
        .and_then(|p| std::fs::metadata(p).ok())
        .is_some_and(|m| !m.is_file())
}

pub fn keygen(output: Option<&Path>) -> Result<()> {
    let id = Identity::generate()?;
    let text = id.to_file_text(&gateway::util::now_rfc3339());
    match output {
        Some(p) => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(p)
                .with_context(|| format!("cannot create {}", p.display()))?;
            f.write_all(text.as_bytes())?;
        }
        None => print!("{text}"),
    }
    eprintln!("Public key: {}", id.to_public());
    Ok(())
}

fn input(p: &Option<PathBuf>) -> Result<(Box<dyn Read>, Option<u64>)> {
    if is_std(p) {
        return Ok((Box::new(io::stdin().lock()), None));
    }
    let path = p.as_deref().unwrap_or(Path::new("-"));
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let len = f.metadata().ok().map(|m| m.len());
    Ok((Box::new(BufReader::with_capacity(1 << 20, f)), len))
}

fn output(p: &Option<PathBuf>) -> Result<Box<dyn Write>> {
    if is_std(p) {
        return Ok(Box::new(BufWriter::with_capacity(
            1 << 20,
            io::stdout().lock(),
        )));
    }
    let path = p.as_deref().unwrap_or(Path::new("-"));
    let f = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(Box::new(BufWriter::with_capacity(1 << 20, f)))
}

fn progress(len: Option<u64>) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    if let Ok(style) =
        ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
    {
        bar.set_style(style);
    }
    bar
}

/// Copies `r` into `w` in 1 MiB reads, ticking the progress bar.
fn pump(
    mut r: impl Read,
    mut sink: impl FnMut(&[u8]) -> Result<()>,
    bar: &ProgressBar,
) -> Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        sink(&buf[..n])?;
        bar.inc(n as u64);
    }
}

pub fn seal(args: SealArgs) -> Result<()> {
    let recipients = args
        .recipients
        .iter()
        .map(|r| r.parse::<Recipient>())
        .collect::<Result<Vec<_>, _>>()?;
    let (r, len) = input(&args.input)?;
    let bar = progress(len);
    let mut sealer = Sealer::new(&recipients, output(&args.output)?)?;
    pump(r, |b| Ok(sealer.write_all(b)?), &bar)?;
    sealer.finish()?.flush()?;
    bar.finish_and_clear();
    Ok(())
}

pub fn open(args: OpenArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.identity)
        .with_context(|| format!("cannot read identity {}", args.identity.display()))?;
    let identity = Identity::from_file_text(&text)?;
    let policy = HeaderPolicy {
        allow_other_recipients: args.allow_other_recipients,
        ..HeaderPolicy::default()
    };
    let direct = is_std(&args.output) || is_special(&args.output);
    let report = if !args.stream && !is_std(&args.input) && !direct {
        let (Some(i), Some(o)) = (&args.input, &args.output) else {
            bail!("input and output files are required for a parallel open");
        };
        let opts = ParallelOptions {
            hash: args.sha256,
            ..ParallelOptions::default()
        };
        parallel::open_file(i, o, &identity, &policy, &opts)?
    } else {
        let (r, len) = input(&args.input)?;
        let bar = progress(len);
        // A file output appears only once every chunk verified (temp file + rename).
        let (sink, tmp): (Box<dyn Write>, _) = match &args.output {
            Some(p) if !direct => {
                let dir = p
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let tmp = tempfile::NamedTempFile::new_in(dir)?;
                let w = BufWriter::with_capacity(1 << 20, tmp.reopen()?);
                (Box::new(w), Some((tmp, p.clone())))
            }
            _ => (output(&args.output)?, None),
        };
        let mut opener = StreamOpener::new(identity, policy, sink);
        pump(r, |b| Ok(opener.push(b)?), &bar)?;
        let (report, mut w) = opener.finish()?;
        w.flush()?;
        drop(w);
        if let Some((tmp, path)) = tmp {
            tmp.persist(&path).map_err(|e| e.error)?;
        }
        bar.finish_and_clear();
        report
    };
    if args.sha256
        && let Some(d) = report.sha256
    {
        eprintln!("sha256 {}  {} bytes", hex::encode(d), report.plaintext_len);
    }
    Ok(())
}
