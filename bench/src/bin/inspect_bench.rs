//! The inspectors alone, over files already in the page cache. Run by
//! `bench/run-inspect.sh`, which times the references (pydicom, qpdf) in the same run.
//!
//! `inspect_bench dicom DIR` — reads the header of every file in DIR (up to the pixel
//! data) and extracts the indexed fields, on all cores: prints instances/s.
//! `inspect_bench pdf DIR` — inspects every PDF in DIR (structure, pages, info,
//! outline, encryption, active content), one file after another: prints ms/file.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use gateway::pipeline::inspect::{dicom, pdf};
use rayon::prelude::*;

fn files(dir: &str) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    Ok(v)
}

fn dicom_run(dir: &str) -> Result<()> {
    let files = files(dir)?;
    let started = Instant::now();
    let indexed: usize = files
        .par_iter()
        .map(|p| {
            let Ok(f) = std::fs::File::open(p) else {
                return 0;
            };
            let mut r = std::io::BufReader::with_capacity(64 << 10, f);
            match dicom::read_header(&mut r, dicom::HeaderLimits::default()) {
                Ok(obj) => {
                    let (inst, _) = dicom::instance(&obj);
                    usize::from(!inst.sop_uid.is_empty())
                }
                Err(_) => 0,
            }
        })
        .sum();
    let s = started.elapsed().as_secs_f64();
    if indexed != files.len() {
        bail!("indexed {indexed} of {} files", files.len());
    }
    println!(
        "dicom files={} seconds={s:.3} per_s={:.0} threads={}",
        files.len(),
        files.len() as f64 / s,
        rayon::current_num_threads()
    );
    Ok(())
}

fn pdf_run(dir: &str) -> Result<()> {
    let files = files(dir)?;
    let policy = pdf::PdfPolicy::default();
    let started = Instant::now();
    for p in &files {
        let bytes = std::fs::read(p)?;
        let (facts, checks) =
            pdf::inspect(&mut bytes.as_slice(), bytes.len() as u64, 1 << 30, policy)?;
        if facts.pages.is_none() || checks.iter().any(|c| c.code == "pdf.invalid") {
            bail!("{}: {checks:?}", p.display());
        }
    }
    let s = started.elapsed().as_secs_f64();
    println!(
        "pdf files={} seconds={s:.3} ms_per_file={:.3}",
        files.len(),
        s * 1000.0 / files.len() as f64
    );
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["dicom", dir] => dicom_run(dir),
        ["pdf", dir] => pdf_run(dir),
        _ => bail!("usage: inspect_bench dicom DIR | pdf DIR"),
    }
}
