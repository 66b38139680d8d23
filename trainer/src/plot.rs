//! PNG charts with plotters: line charts (one line per series) and histograms.

use crate::error::{Result, TrainError};
use plotters::prelude::*;
use std::path::Path;

const SIZE: (u32, u32) = (900, 600);
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn plot_err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::io(path, format!("drawing the chart failed: {e}"))
}

fn padded_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    let pad = ((hi - lo) * 0.05).max(1e-9);
    lo - pad..hi + pad
}

/// One named line of `(x, y)` points.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// A line chart with markers and a legend.
pub fn line_chart(path: &Path, title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let xs = padded_range(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let ys = padded_range(series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 26))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(xs, ys)
        .map_err(|e| plot_err(path, e))?;
    chart.configure_mesh().x_desc(x_label).y_desc(y_label).draw().map_err(|e| plot_err(path, e))?;
    for (k, s) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), color.stroke_width(2)))
            .map_err(|e| plot_err(path, e))?
            .label(s.name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        chart
            .draw_series(s.points.iter().map(|p| Circle::new(*p, 4, color.filled())))
            .map_err(|e| plot_err(path, e))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_err(path, e))?;
    root.present().map_err(|e| plot_err(path, e))
}

/// A histogram of `values` in `bins` equal-width bins.
pub fn histogram(path: &Path, title: &str, x_label: &str, values: &[f64], bins: usize) -> Result<()> {
    let range = padded_range(values.iter().copied());
    let width = (range.end - range.start) / bins as f64;
    let mut counts = vec![0usize; bins];
    for v in values.iter().filter(|v| v.is_finite()) {
        counts[(((v - range.start) / width) as usize).min(bins - 1)] += 1;
    }
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let top = *counts.iter().max().unwrap_or(&1) as f64 * 1.05;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 26))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(range.clone(), 0.0..top)
        .map_err(|e| plot_err(path, e))?;
    chart.configure_mesh().x_desc(x_label).y_desc("weights").draw().map_err(|e| plot_err(path, e))?;
    chart
        .draw_series(counts.iter().enumerate().map(|(b, c)| {
            let x0 = range.start + b as f64 * width;
            Rectangle::new([(x0, 0.0), (x0 + width, *c as f64)], COLORS[0].filled())
        }))
        .map_err(|e| plot_err(path, e))?;
    root.present().map_err(|e| plot_err(path, e))
}

/// A reliability diagram: accuracy per confidence bin against the diagonal of perfect calibration.
pub fn reliability_diagram(path: &Path, title: &str, bins: &[crate::evaluate::ReliabilityBin]) -> Result<()> {
    let root = BitMapBackend::new(path, (700, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)
        .map_err(|e| plot_err(path, e))?;
    chart.configure_mesh().x_desc("confidence").y_desc("accuracy").draw().map_err(|e| plot_err(path, e))?;
    chart
        .draw_series(
            bins.iter()
                .filter(|b| b.count > 0)
                .map(|b| Rectangle::new([(b.lower, 0.0), (b.upper, b.accuracy)], COLORS[0].mix(0.7).filled())),
        )
        .map_err(|e| plot_err(path, e))?;
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], BLACK.stroke_width(1)))
        .map_err(|e| plot_err(path, e))?;
    root.present().map_err(|e| plot_err(path, e))
}

/// A 1-D regression picture: data points, predictive mean, two shaded bands (epistemic and total), each given as
/// `(x, lower, upper)`, and the data's true E[y | x] dashed where it is known (`truth` not empty).
pub fn regression_bands(
    path: &Path,
    title: &str,
    data: &[(f64, f64)],
    mean: &[(f64, f64)],
    epistemic: &[(f64, f64, f64)],
    total: &[(f64, f64, f64)],
    truth: &[(f64, f64)],
) -> Result<()> {
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| plot_err(path, e))?;
    let xs = padded_range(mean.iter().map(|p| p.0));
    let ys = padded_range(data.iter().map(|p| p.1).chain(mean.iter().map(|p| p.1)));
    let ys = (ys.start - 0.5)..(ys.end + 0.5);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(xs, ys.clone())
        .map_err(|e| plot_err(path, e))?;
    chart.configure_mesh().x_desc("x").y_desc("y").draw().map_err(|e| plot_err(path, e))?;
    let clamp = |v: f64| v.clamp(ys.start, ys.end);
    for (band, color, name) in [(total, COLORS[3], "total (±2 sd)"), (epistemic, COLORS[0], "epistemic (±2 sd)")] {
        let polygon: Vec<(f64, f64)> = band
            .iter()
            .map(|(x, lo, _)| (*x, clamp(*lo)))
            .chain(band.iter().rev().map(|(x, _, hi)| (*x, clamp(*hi))))
            .collect();
        chart
            .draw_series(std::iter::once(Polygon::new(polygon, color.mix(0.3).filled())))
            .map_err(|e| plot_err(path, e))?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 20, y + 5)], color.mix(0.3).filled()));
    }
    chart
        .draw_series(LineSeries::new(mean.iter().copied(), COLORS[1].stroke_width(2)))
        .map_err(|e| plot_err(path, e))?
        .label("predictive mean")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], COLORS[1].stroke_width(2)));
    if !truth.is_empty() {
        let inside = truth.iter().map(|(x, y)| (*x, clamp(*y)));
        chart
            .draw_series(DashedLineSeries::new(inside, 6, 4, BLACK.stroke_width(1)))
            .map_err(|e| plot_err(path, e))?
            .label("true E[y | x]")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.stroke_width(1)));
    }
    chart
        .draw_series(data.iter().map(|p| Circle::new(*p, 2, BLACK.filled())))
        .map_err(|e| plot_err(path, e))?
        .label("training data")
        .legend(|(x, y)| Circle::new((x + 10, y), 3, BLACK.filled()));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| plot_err(path, e))?;
    root.present().map_err(|e| plot_err(path, e))
}
