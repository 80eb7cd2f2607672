//! The report as pictures (SVG, plotters): throughput, time to indexed and the
//! gateway's memory and CPU over the run. SVG only: plotters' bitmap backend would need
//! a font library to label its axes, and an SVG leaves the text to the viewer.

use std::path::Path;

use anyhow::Result;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::report::{Report, SMALL, pct};

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("plot: {e}")
}

/// Writes `throughput.svg`, `latency.svg` and `gateway.svg` into `dir`.
pub fn write_all(report: &Report, dir: &Path) -> Result<()> {
    throughput(report, &dir.join("throughput.svg"))?;
    latency(report, &dir.join("latency.svg"))?;
    gateway(report, &dir.join("gateway.svg"))?;
    Ok(())
}

const BUCKET_S: f64 = 5.0;

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type TimeChart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// A captioned chart of `0..top` over the run's seconds, its mesh drawn.
fn over_time<'a, 'b>(
    area: &'a Area<'b>,
    caption: &str,
    end: f64,
    top: f64,
) -> Result<TimeChart<'a, 'b>> {
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..end, 0.0..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds since start")
        .y_desc(caption)
        .draw()
        .map_err(err)?;
    Ok(chart)
}

fn end_s(report: &Report) -> f64 {
    report
        .records
        .iter()
        .filter_map(|r| r.done_s.or(r.accepted_s))
        .fold(report.seconds, f64::max)
        .max(1.0)
}

/// Accepted MB/s and files/s per 5-second bucket, by acceptance time.
fn throughput(report: &Report, path: &Path) -> Result<()> {
    let end = end_s(report);
    let n = (end / BUCKET_S).ceil() as usize + 1;
    let (mut mb, mut files) = (vec![0.0; n], vec![0.0; n]);
    for r in report.records.iter().filter(|r| !r.class.ends_with(":set")) {
        if let Some(at) = r.accepted_s.filter(|_| !r.outcome.starts_with("error")) {
            let i = ((at / BUCKET_S) as usize).min(n - 1);
            mb[i] += r.sealed_bytes as f64 / 1e6 / BUCKET_S;
            files[i] += 1.0 / BUCKET_S;
        }
    }
    let root = SVGBackend::new(path, (1000, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let halves = root.split_evenly((2, 1));
    for (area, (values, unit, colour)) in halves.iter().zip([
        (&mb, "MB/s accepted", &BLUE),
        (&files, "files/s accepted", &RED),
    ]) {
        let top = values.iter().copied().fold(1.0, f64::max) * 1.1;
        let mut chart = over_time(area, unit, end, top)?;
        let points = values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as f64 * BUCKET_S, *v));
        chart
            .draw_series(LineSeries::new(points, colour))
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Time to indexed (log scale) by upload start: files ≤ 2 MiB as p50 and p99 per
/// 10-second bucket (there can be 100,000 of them), larger files and DICOMDIR sets as
/// points, and the 500 ms goal as a line.
fn latency(report: &Report, path: &Path) -> Result<()> {
    let end = end_s(report);
    let mut small: Vec<Vec<f64>> = vec![Vec::new(); (end / 10.0) as usize + 1];
    let mut points: Vec<(f64, f64, bool)> = Vec::new();
    for r in report.records.iter().filter(|r| r.outcome == "indexed") {
        let Some(done) = r.done_s else { continue };
        let ms = ((done - r.started_s) * 1000.0).max(1.0);
        let set = r.class.ends_with(":set");
        if !set && r.bytes <= SMALL {
            let i = ((r.started_s / 10.0) as usize).min(small.len() - 1);
            small[i].push(ms);
        } else {
            points.push((r.started_s, ms, set));
        }
    }
    let mut lines = (Vec::new(), Vec::new());
    for (i, b) in small.iter_mut().enumerate().filter(|(_, b)| !b.is_empty()) {
        b.sort_by(f64::total_cmp);
        let t = i as f64 * 10.0 + 5.0;
        lines.0.push((t, pct(b, 50.0)));
        lines.1.push((t, pct(b, 99.0)));
    }
    let top = points
        .iter()
        .map(|p| p.1)
        .chain(lines.1.iter().map(|p| p.1))
        .fold(1000.0, f64::max)
        * 1.5;
    let root = SVGBackend::new(path, (1000, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "time to indexed (upload start → file.indexed)",
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..end, (1.0..top).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("upload started (s since start)")
        .y_desc("ms (log)")
        .draw()
        .map_err(err)?;
    let line_legend = |c: RGBColor| move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c);
    let light = RGBColor(120, 160, 230);
    for (values, label, colour) in [
        (lines.0, "files ≤ 2 MiB, p50 per 10 s", light),
        (lines.1, "files ≤ 2 MiB, p99 per 10 s", BLUE),
    ] {
        chart
            .draw_series(LineSeries::new(values, colour))
            .map_err(err)?
            .label(label)
            .legend(line_legend(colour));
    }
    for (set, label, colour) in [(false, "larger files", RED), (true, "DICOMDIR sets", GREEN)] {
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|p| p.2 == set)
                    .map(|p| Circle::new((p.0, p.1), 3, colour.mix(0.7).filled())),
            )
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| Circle::new((x + 10, y), 4, colour.filled()));
    }
    chart
        .draw_series(LineSeries::new(
            [(0.0, 500.0), (end, 500.0)],
            BLACK.mix(0.5),
        ))
        .map_err(err)?
        .label("goal: 500 ms")
        .legend(line_legend(BLACK));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

/// A label, what to chart of each sample, the y axis' least top, and a colour.
type SampleSeries = (
    &'static str,
    fn(&crate::report::Sample) -> f64,
    f64,
    &'static RGBColor,
);

/// The gateway's RSS (MiB) and CPU (cores) as sampled.
fn gateway(report: &Report, path: &Path) -> Result<()> {
    let end = end_s(report);
    let root = SVGBackend::new(path, (1000, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let halves = root.split_evenly((3, 1));
    let series: [SampleSeries; 3] = [
        ("gateway RSS (MiB; goal < 256)", |s| s.rss_mib, 300.0, &BLUE),
        ("of which anonymous (MiB)", |s| s.anon_mib, 300.0, &GREEN),
        ("gateway CPU (cores)", |s| s.cpu_cores, 2.2, &RED),
    ];
    for (area, (label, value, floor, colour)) in halves.iter().zip(series) {
        let top = report.samples.iter().map(value).fold(floor, f64::max) * 1.05;
        let mut chart = over_time(area, label, end, top)?;
        chart
            .draw_series(LineSeries::new(
                report.samples.iter().map(|s| (s.t_s, value(s))),
                colour,
            ))
            .map_err(err)?;
    }
    root.present().map_err(err)?;
    Ok(())
}
