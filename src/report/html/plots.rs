//! The report's plots, drawn with `plotters` on its SVG backend and returned as SVG text to inline: a dot plot
//! (one row per category, a dot per seed, the mean, an interval, a paper figure beside), grouped horizontal bars
//! (with a ± whisker) and line panels (training curves). Every plot gets the class `plot`, which the browser test
//! counts. Values are plotted as given (the callers pass percent or raw numbers).
use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Width of every plot in SVG pixels (the page scales it down to its column).
pub const WIDTH: u32 = 1160;

/// Colours of series, in order (Tableau 10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The `i`-th series colour.
pub fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow!("drawing a plot: {e}")
}

/// Draws on a `width` × `height` SVG and returns its text, marked with the class `plot` and an accessible title.
fn svg(
    title: &str,
    (width, height): (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<()>,
) -> Result<String> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        draw(&root)?;
        root.present().map_err(err)?;
    }
    let title = super::escape(title);
    Ok(text.replacen(
        "<svg ",
        &format!("<svg class=\"plot\" role=\"img\" aria-label=\"{title}\" "),
        1,
    ))
}

/// The y axis of a categorical plot: category `i` of `n` sits at `n - 1 - i` (the first on top).
fn row_y(i: usize, n: usize) -> f64 {
    (n - 1 - i) as f64
}

/// The label of the category at `y`, blank between categories (the axis asks for labels every half row, so
/// every row gets one).
fn row_label(labels: &[String], y: f64) -> String {
    let n = labels.len();
    let i = y.round();
    if (y - i).abs() > 1e-6 || i < 0.0 || i as usize >= n {
        return String::new();
    }
    labels[n - 1 - i as usize].clone()
}

/// `(lo, hi)` padded by 5 % of the span (at least `min_span`), over the finite `values`; `fallback` without any.
pub fn padded_range(
    values: impl IntoIterator<Item = f64>,
    min_span: f64,
    fallback: (f64, f64),
) -> (f64, f64) {
    let (lo, hi) = values
        .into_iter()
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return fallback;
    }
    let span = (hi - lo).max(min_span);
    let mid = (lo + hi) / 2.0;
    (mid - 0.55 * span, mid + 0.55 * span)
}

/// One row of a [`dot_panels`] plot.
#[derive(Debug, Clone, PartialEq)]
pub struct DotRow {
    pub label: String,
    /// One value per seed.
    pub values: Vec<f64>,
    pub mean: f64,
    /// An interval to draw under the dots (e.g. the paired 95 % interval against a baseline, placed at the
    /// baseline's mean).
    pub interval: Option<(f64, f64)>,
    /// A published figure to draw above the dots: mean and std.
    pub paper: Option<(f64, f64)>,
}

/// Side-by-side panels (e.g. worst-group and average accuracy), one row per category: a dot per seed, the mean as
/// a bar, the interval as a line below, the paper's mean ± std as a grey triangle and whisker above.
pub fn dot_panels(title: &str, panels: &[(String, Vec<DotRow>)]) -> Result<String> {
    let n = panels.iter().map(|(_, rows)| rows.len()).max().unwrap_or(0);
    let height = 90 + 40 * n.max(1) as u32;
    svg(title, (WIDTH, height), |root| {
        let areas = root.split_evenly((1, panels.len().max(1)));
        for ((name, rows), area) in panels.iter().zip(&areas) {
            let labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
            let (lo, hi) = padded_range(
                rows.iter().flat_map(|r| {
                    let paper = r.paper.into_iter().flat_map(|(m, s)| [m - s, m + s]);
                    let interval = r.interval.into_iter().flat_map(|(a, b)| [a, b]);
                    r.values.iter().copied().chain(paper).chain(interval)
                }),
                2.0,
                (0.0, 100.0),
            );
            let n = rows.len().max(1);
            let mut chart = ChartBuilder::on(area)
                .caption(name, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(130)
                .build_cartesian_2d(lo..hi, -0.5..n as f64 - 0.5)
                .map_err(err)?;
            chart
                .configure_mesh()
                .disable_y_mesh()
                .max_light_lines(4)
                .y_labels(2 * n + 2)
                .y_label_formatter(&|y| row_label(&labels, *y))
                .x_desc("%")
                .label_style(("sans-serif", 14))
                .draw()
                .map_err(err)?;
            for (i, row) in rows.iter().enumerate() {
                let y = row_y(i, n);
                let c = colour(i);
                let k = row.values.len().max(1) as f64;
                chart
                    .draw_series(row.values.iter().enumerate().map(|(j, &v)| {
                        // Seeds spread a little vertically so equal values stay visible.
                        let dy = 0.16 * (j as f64 - (k - 1.0) / 2.0) / k;
                        Circle::new((v, y + dy), 4, c.mix(0.75).filled())
                    }))
                    .map_err(err)?;
                if row.mean.is_finite() {
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![(row.mean, y - 0.22), (row.mean, y + 0.22)],
                            c.stroke_width(3),
                        )))
                        .map_err(err)?;
                }
                if let Some((a, b)) = row.interval {
                    let yi = y - 0.3;
                    chart
                        .draw_series([
                            PathElement::new(vec![(a, yi), (b, yi)], BLACK.stroke_width(2)),
                            PathElement::new(
                                vec![(a, yi - 0.07), (a, yi + 0.07)],
                                BLACK.stroke_width(1),
                            ),
                            PathElement::new(
                                vec![(b, yi - 0.07), (b, yi + 0.07)],
                                BLACK.stroke_width(1),
                            ),
                        ])
                        .map_err(err)?;
                }
                if let Some((m, s)) = row.paper {
                    let yp = y + 0.3;
                    let grey = RGBColor(120, 120, 120);
                    chart
                        .draw_series([PathElement::new(
                            vec![(m - s, yp), (m + s, yp)],
                            grey.stroke_width(1),
                        )])
                        .map_err(err)?;
                    chart
                        .draw_series(std::iter::once(TriangleMarker::new(
                            (m, yp),
                            5,
                            grey.filled(),
                        )))
                        .map_err(err)?;
                }
            }
        }
        Ok(())
    })
}

/// One series of a [`bars`] plot: a value (and an optional ± whisker) per category, `None` where it has none.
#[derive(Debug, Clone, PartialEq)]
pub struct BarSeries {
    pub name: String,
    pub values: Vec<Option<(f64, Option<f64>)>>,
}

/// Grouped horizontal bars: one group per category (top to bottom), one bar per series, a legend of the series;
/// the x axis spans `x_range`, or the values padded (with 0 included) when `None`.
pub fn bars(
    title: &str,
    x_desc: &str,
    categories: &[String],
    series: &[BarSeries],
    x_range: Option<(f64, f64)>,
) -> Result<String> {
    let n = categories.len().max(1);
    let k = series.len().max(1);
    let height = 110 + (n * (k * 16 + 14)) as u32;
    let (lo, hi) = x_range.unwrap_or_else(|| {
        let values = series
            .iter()
            .flat_map(|s| s.values.iter().flatten())
            .flat_map(|&(v, w)| [v - w.unwrap_or(0.0), v + w.unwrap_or(0.0)]);
        let (lo, hi) = padded_range(values.chain([0.0]), 1.0, (0.0, 1.0));
        (lo.min(0.0), hi)
    });
    svg(title, (WIDTH, height), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(220)
            .build_cartesian_2d(lo..hi, -0.5..n as f64 - 0.5)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .max_light_lines(4)
            .y_labels(2 * n + 2)
            .y_label_formatter(&|y| row_label(categories, *y))
            .x_desc(x_desc)
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        let slot = 0.8 / k as f64;
        for (s, bars) in series.iter().enumerate() {
            let c = colour(s);
            let centre = |i: usize| row_y(i, n) + 0.4 - slot * (s as f64 + 0.5);
            chart
                .draw_series(bars.values.iter().enumerate().filter_map(|(i, v)| {
                    let (v, _) = (*v)?;
                    let y = centre(i);
                    Some(Rectangle::new(
                        [(0.0f64.clamp(lo, hi), y - 0.4 * slot), (v, y + 0.4 * slot)],
                        c.filled(),
                    ))
                }))
                .map_err(err)?
                .label(bars.name.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
            chart
                .draw_series(bars.values.iter().enumerate().filter_map(|(i, v)| {
                    let (v, w) = (*v)?;
                    let w = w.filter(|w| w.is_finite())?;
                    let y = centre(i);
                    Some(PathElement::new(
                        vec![(v - w, y), (v + w, y)],
                        BLACK.stroke_width(1),
                    ))
                }))
                .map_err(err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .draw()
            .map_err(err)?;
        Ok(())
    })
}

/// `x` as a whole number where it is one, blank between (epochs).
fn whole(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        format!("{x:.0}")
    } else {
        String::new()
    }
}

/// A line of a [`line_panels`] plot, in the colour of `colour(colour_index)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    pub colour_index: usize,
    pub points: Vec<(f64, f64)>,
}

/// Side-by-side panels of lines over a shared x (e.g. the epochs), each panel named by its y quantity, the legend
/// in the first panel.
pub fn line_panels(title: &str, x_desc: &str, panels: &[(String, Vec<Line>)]) -> Result<String> {
    svg(title, (WIDTH, 320), |root| {
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (p, ((name, lines), area)) in panels.iter().zip(&areas).enumerate() {
            let xs = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
            let (x_lo, x_hi) = padded_range(xs, 1.0, (0.0, 1.0));
            let ys = lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
            let (y_lo, y_hi) = padded_range(ys, 1e-3, (0.0, 1.0));
            let mut chart = ChartBuilder::on(area)
                .caption(name, ("sans-serif", 16))
                .margin(10)
                .x_label_area_size(34)
                .y_label_area_size(50)
                .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
                .map_err(err)?;
            chart
                .configure_mesh()
                .max_light_lines(2)
                .x_label_formatter(&|x| whole(*x))
                .x_desc(x_desc)
                .label_style(("sans-serif", 13))
                .draw()
                .map_err(err)?;
            for line in lines {
                let c = colour(line.colour_index);
                let drawn = chart
                    .draw_series(LineSeries::new(
                        line.points.iter().copied(),
                        c.stroke_width(2),
                    ))
                    .map_err(err)?;
                if p == 0 {
                    drawn.label(line.name.clone()).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 14, y)], c.stroke_width(2))
                    });
                }
                chart
                    .draw_series(line.points.iter().map(|&pt| Circle::new(pt, 2, c.filled())))
                    .map_err(err)?;
            }
            if p == 0 && !lines.is_empty() {
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperRight)
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK)
                    .label_font(("sans-serif", 12))
                    .draw()
                    .map_err(err)?;
            }
        }
        Ok(())
    })
}

/// Whether `svg` draws the text `text` (plotters' SVG backend writes a text element's content on its own line).
#[cfg(test)]
pub fn has_text(svg: &str, text: &str) -> bool {
    svg.split("</text>")
        .any(|t| t.rsplit('>').next().is_some_and(|c| c.trim() == text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_range_spans_the_values_with_a_margin() {
        let (lo, hi) = padded_range([1.0, 3.0, f64::NAN], 0.5, (0.0, 9.0));
        assert!((lo - 0.9).abs() < 1e-9 && (hi - 3.1).abs() < 1e-9);
        // One value: the minimum span around it.
        let (lo, hi) = padded_range([50.0], 2.0, (0.0, 9.0));
        assert!((lo - 48.9).abs() < 1e-9 && (hi - 51.1).abs() < 1e-9);
        assert_eq!(padded_range([f64::NAN], 1.0, (0.0, 9.0)), (0.0, 9.0));
    }

    #[test]
    fn category_labels_sit_on_whole_rows_first_on_top() {
        let labels = vec!["erm".to_string(), "texplain".to_string()];
        assert_eq!(row_label(&labels, 1.0), "erm");
        assert_eq!(row_label(&labels, 0.0), "texplain");
        assert_eq!(row_label(&labels, 0.5), "");
        assert_eq!(row_label(&labels, 2.0), "");
        assert_eq!(row_y(0, 2), 1.0);
    }

    #[test]
    fn plots_are_svg_marked_as_plots_with_their_labels() {
        let rows = vec![
            DotRow {
                label: "erm".into(),
                values: vec![50.0, 52.0],
                mean: 51.0,
                interval: None,
                paper: Some((78.0, 7.3)),
            },
            DotRow {
                label: "texplain".into(),
                values: vec![60.0, 64.0],
                mean: 62.0,
                interval: Some((55.0, 67.0)),
                paper: None,
            },
        ];
        let svg = dot_panels("accuracy", &[("Worst-group".into(), rows)]).unwrap();
        assert!(svg.starts_with("<svg class=\"plot\" role=\"img\" aria-label=\"accuracy\" "));
        assert!(svg.contains("viewBox") && has_text(&svg, "texplain") && has_text(&svg, "erm"));
        let svg = bars(
            "probes",
            "%",
            &["scratch".into()],
            &[BarSeries {
                name: "worst-group".into(),
                values: vec![Some((63.5, Some(1.2)))],
            }],
            Some((0.0, 100.0)),
        )
        .unwrap();
        assert!(has_text(&svg, "worst-group") && has_text(&svg, "scratch"));
        let svg = line_panels(
            "curves",
            "epoch",
            &[(
                "loss".into(),
                vec![Line {
                    name: "erm".into(),
                    colour_index: 0,
                    points: vec![(1.0, 0.7), (2.0, 0.5)],
                }],
            )],
        )
        .unwrap();
        assert!(svg.contains("<polyline") || svg.contains("<path"), "{svg}");
    }
}
