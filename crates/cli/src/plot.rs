//! `cachectl bench --plot`: the latency percentile distribution as SVG.
//!
//! The picture HdrHistogram's plotter draws: latency up the side, the
//! percentile along the bottom on a scale where each step is ten times
//! rarer (50 %, 90 %, 99 %, 99.9 %, …), so the tail, where a cache's
//! trouble shows, gets as much room as the median. Both axes are
//! logarithmic. Each run is one line; its p50, p99, p99.9 and p99.99 are
//! marked and written in the legend.

use std::path::Path;

use hdrhistogram::Histogram;
use plotters::prelude::*;

use crate::args::BenchArgs;
use crate::bench::Run;
use crate::exit::Failure;

/// The rarest percentile drawn: 99.999 % (x = 1 / (1 − q) = 100,000).
const X_MAX: f64 = 100_000.0;
/// Points per line.
const STEPS: u32 = 250;
/// The percentiles marked on each line.
const MARKED: [(f64, &str); 4] = [
    (0.5, "p50"),
    (0.99, "p99"),
    (0.999, "p99.9"),
    (0.9999, "p99.99"),
];
const SIZE: (u32, u32) = (1000, 600);

/// `--plot`'s path must name an `.svg` file in a folder that exists:
/// checked before the run, not after minutes of load.
pub fn check_path(path: &Path) -> Result<(), Failure> {
    if path.extension().and_then(|e| e.to_str()) != Some("svg") {
        return Err(Failure::Usage(format!(
            "--plot writes SVG: give a file ending in .svg, not {}",
            path.display()
        )));
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.is_dir() {
        return Err(Failure::Usage(format!(
            "--plot: the folder {} does not exist",
            folder.display()
        )));
    }
    Ok(())
}

/// `x = 1 / (1 − q)` as the percentile it stands for: 10 → "90%".
fn percentile_label(x: f64) -> String {
    let percent = 100.0 * (1.0 - 1.0 / x);
    let text = format!("{percent:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

fn micros(h: &Histogram<u64>, q: f64) -> f64 {
    (h.value_at_quantile(q).max(1) as f64) / 1000.0
}

fn latency_label(us: f64) -> String {
    if us >= 1000.0 {
        format!("{:.1} ms", us / 1000.0)
    } else {
        format!("{us:.1} µs")
    }
}

/// The line of one run: `(1 / (1 − q), latency in µs)` from q = 0 to 99.999 %.
fn points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    (0..=STEPS)
        .map(|i| {
            let x = X_MAX.powf(f64::from(i) / f64::from(STEPS));
            (x, micros(h, 1.0 - 1.0 / x))
        })
        .collect()
}

/// Draws `runs` into `path`.
pub fn write(path: &Path, runs: &[Run], args: &BenchArgs) -> Result<(), Failure> {
    draw(path, runs, args).map_err(|e| Failure::Usage(format!("--plot {}: {e}", path.display())))
}

fn draw(path: &Path, runs: &[Run], args: &BenchArgs) -> Result<(), Box<dyn std::error::Error>> {
    let lines: Vec<Vec<(f64, f64)>> = runs.iter().map(|r| points(&r.latencies)).collect();
    let (low, high) = lines
        .iter()
        .flatten()
        .fold((f64::MAX, 0f64), |(lo, hi), (_, y)| {
            (lo.min(*y), hi.max(*y))
        });
    let (low, high) = ((low / 1.5).max(0.001), (high * 1.5).max(low * 10.0));

    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let caption = format!(
        "cachectl bench: latency by percentile (mix {}, concurrency {}, {} B values)",
        args.mix, args.concurrency, args.value_size
    );
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d((1f64..X_MAX).log_scale(), (low..high).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("percentile (each step to the right is ten times rarer)")
        .y_desc("latency, µs (log scale)")
        .x_label_formatter(&|x| percentile_label(*x))
        .y_label_formatter(&|y| format!("{y}"))
        .draw()?;
    for (i, (run, line)) in runs.iter().zip(&lines).enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let h = &run.latencies;
        let summary: Vec<String> = MARKED
            .iter()
            .map(|(q, name)| format!("{name} {}", latency_label(micros(h, *q))))
            .collect();
        chart
            .draw_series(LineSeries::new(line.iter().copied(), color.stroke_width(2)))?
            .label(format!(
                "{} ({} ops): {}",
                run.label,
                h.len(),
                summary.join(", ")
            ))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
            });
        chart.draw_series(MARKED.iter().map(|(q, name)| {
            let point = (1.0 / (1.0 - q), micros(h, *q));
            EmptyElement::at(point)
                + Circle::new((0, 0), 4, color.filled())
                + Text::new(
                    format!("{name} {}", latency_label(point.1)),
                    (6, -16 - 14 * i as i32),
                    ("sans-serif", 13).into_font().color(&color),
                )
        }))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_axis_labels() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(2.0), "50%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(100_000.0), "99.999%");
    }

    #[test]
    fn a_line_runs_from_the_fastest_to_the_rarest_percentile() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for ns in 1..=100_000u64 {
            h.record(ns * 10).unwrap(); // 10 ns to 1 ms, evenly
        }
        let line = points(&h);
        assert_eq!(line.len(), STEPS as usize + 1);
        assert_eq!(line[0].0, 1.0);
        assert!((line.last().unwrap().0 - X_MAX).abs() < 1e-6);
        assert!(
            line.windows(2).all(|w| w[0].1 <= w[1].1),
            "latency never falls"
        );
        // The median of 10 ns … 1 ms is about 500 µs.
        assert!((micros(&h, 0.5) - 500.0).abs() < 1.0);
    }

    #[test]
    fn the_path_must_be_an_svg_in_an_existing_folder() {
        assert!(check_path(Path::new("out.svg")).is_ok());
        assert!(check_path(Path::new("out.png")).is_err());
        assert!(check_path(Path::new("/no/such/folder/out.svg")).is_err());
    }
}
