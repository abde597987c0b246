//! `texplain compare` (its flags: `src/cli/compare.rs`): several runs' results aggregated over seeds, each
//! (run, method) against a baseline, as markdown or CSV.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::table::{fmt_pct_pm, fmt_pct_signed, group_label_note, method_label, stat};
use super::{read_results_csv, ReportError, Result, ResultRow};
use crate::data::Split;
use crate::methods::{table_order, Method};
use crate::metrics::mean_std;

/// Output format of [`compare`] (`--format md` or `csv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareFormat {
    Markdown,
    Csv,
}

/// The 95 % interval of the mean paired difference that [`compare_with`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Interval {
    /// [`crate::stats::t_interval`].
    #[default]
    T,
    /// [`crate::stats::bootstrap_interval`] with this many resamples and this seed.
    Bootstrap { resamples: usize, seed: u64 },
}

impl Interval {
    /// Coverage of the reported intervals.
    pub const LEVEL: f64 = 0.95;

    fn of(&self, xs: &[f64]) -> Option<(f64, f64)> {
        match *self {
            Interval::T => crate::stats::t_interval(xs, Self::LEVEL),
            Interval::Bootstrap { resamples, seed } => {
                crate::stats::bootstrap_interval(xs, Self::LEVEL, resamples, seed)
            }
        }
    }

    /// The `interval` column of the CSV output.
    fn name(&self) -> &'static str {
        match self {
            Interval::T => "t95",
            Interval::Bootstrap { .. } => "bootstrap95",
        }
    }

    fn describe(&self) -> String {
        match self {
            Interval::T => {
                "95 % Student-t interval of the mean difference, mean ± t_{0.975, n−1}·sd/√n".into()
            }
            Interval::Bootstrap { resamples, seed } => format!(
                "95 % percentile-bootstrap interval of the mean difference, {resamples} resamples, seed {seed}"
            ),
        }
    }
}

/// Reads one metric of a row.
type Metric = fn(&ResultRow) -> f64;

/// The metrics compared, as (column name, accessor).
const METRICS: [(&str, Metric); 3] = [
    ("worst_group", |r| r.worst_group),
    ("avg_train_weighted", |r| r.avg_train_weighted),
    ("avg_plain", |r| r.avg_plain),
];

/// One (run, method) aggregated over seeds.
struct Cell {
    run: String,
    method: String,
    /// seed -> row
    by_seed: BTreeMap<u64, ResultRow>,
}

/// Difference of a cell against its baseline for one metric.
struct Diff {
    /// Difference of the means over each cell's own seeds.
    delta: f64,
    /// Mean and std (ddof = 1) of the per-seed differences over the shared seeds.
    paired_mean: f64,
    paired_std: f64,
    n_paired: usize,
    /// Interval of the paired mean; `None` below two shared seeds.
    interval: Option<(f64, f64)>,
}

fn diff(cell: &Cell, base: &Cell, f: Metric, interval: Interval) -> Diff {
    let mean = |c: &Cell| mean_std(&c.by_seed.values().map(f).collect::<Vec<_>>()).0;
    let paired: Vec<f64> = cell
        .by_seed
        .iter()
        .filter_map(|(s, r)| base.by_seed.get(s).map(|b| f(r) - f(b)))
        .collect();
    let (paired_mean, paired_std) = mean_std(&paired);
    Diff {
        delta: mean(cell) - mean(base),
        paired_mean,
        paired_std,
        n_paired: paired.len(),
        interval: interval.of(&paired),
    }
}

/// The markdown cell of a paired difference: `+39.0 ± 8.0 [+19.1, +58.9] (n=3)`.
fn fmt_paired(d: &Diff) -> String {
    if d.n_paired == 0 {
        return "–".to_string();
    }
    let mut cell = fmt_pct_signed(d.paired_mean);
    if !d.paired_std.is_nan() {
        cell.push_str(&format!(" ± {:.1}", 100.0 * d.paired_std));
    }
    if let Some((lo, hi)) = d.interval {
        cell.push_str(&format!(
            " [{}, {}]",
            fmt_pct_signed(lo),
            fmt_pct_signed(hi)
        ));
    }
    cell.push_str(&format!(" (n={})", d.n_paired));
    cell
}

/// The pairs of arms whose paired differences a run's `table.md` reports, as (arm, baseline): what the selection
/// adds over a random one (TExplain − Random; oracle − oracle_random, with the true background), what the word
/// map adds over position (TExplain − frame) and over the classifier's object complement, what lending the
/// object masks across classes adds (oracle_object_balanced − oracle_object; texplain_lent − texplain with
/// TExplain's own masks) and what the selection adds once the masks are lent (texplain_lent − random_lent).
pub const PAIRED_ARMS: [(Method, Method); 7] = [
    (Method::Texplain, Method::Random),
    (Method::Texplain, Method::Frame),
    (Method::Oracle, Method::OracleRandom),
    (Method::Texplain, Method::ObjectComplement),
    (Method::OracleObjectBalanced, Method::OracleObject),
    (Method::TexplainLent, Method::Texplain),
    (Method::TexplainLent, Method::RandomLent),
];

/// The "Paired differences" section of a run's `table.md`: per pair of [`PAIRED_ARMS`] that both ran, the mean ±
/// std of the per-seed differences of worst-group and average (train-weighted) accuracy on `split`, with their
/// 95 % Student-t interval ([`crate::stats::t_interval`], as `texplain compare`); `None` when no pair ran.
pub fn paired_differences_md(rows: &[ResultRow], split: Split) -> Option<String> {
    let mut cells: BTreeMap<&str, Cell> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.split == split) {
        cells
            .entry(r.method.as_str())
            .or_insert_with(|| Cell {
                run: String::new(),
                method: r.method.clone(),
                by_seed: BTreeMap::new(),
            })
            .by_seed
            .insert(r.seed, r.clone());
    }
    let lines: Vec<String> = PAIRED_ARMS
        .iter()
        .filter_map(|(arm, base)| {
            let (a, b) = (cells.get(arm.name())?, cells.get(base.name())?);
            let d = |i: usize| diff(a, b, METRICS[i].1, Interval::T);
            Some(format!(
                "| {arm} − {base} | {} | {} | {} |",
                d(0).n_paired,
                fmt_paired(&d(0)),
                fmt_paired(&d(1)),
            ))
        })
        .collect();
    if lines.is_empty() {
        return None;
    }
    Some(format!(
        "Paired differences (split `{split}`, percentage points): mean ± std of the per-seed differences over the \
         seeds both arms ran, [{}], (n = seeds).\n\n\
         | Difference | Seeds | Worst-group | Average |\n|---|---:|---:|---:|\n{}\n",
        Interval::T.describe(),
        lines.join("\n")
    ))
}

/// Resolve an input to (results.csv path, run name).
fn resolve_input(input: &Path) -> Result<(PathBuf, String)> {
    let io_err = |source| ReportError::Io {
        path: input.to_path_buf(),
        source,
    };
    let abs = std::fs::canonicalize(input).map_err(io_err)?;
    let (csv_path, run_dir) = if abs.is_dir() {
        (abs.join("results.csv"), abs.clone())
    } else {
        let parent = abs.parent().map(Path::to_path_buf).unwrap_or_default();
        (abs.clone(), parent)
    };
    let name = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| run_dir.display().to_string());
    Ok((csv_path, name))
}

/// Each input's `results.csv` and its run's name: its directory's name, or its full path where two inputs share
/// a directory name.
fn named_inputs(inputs: &[PathBuf]) -> Result<Vec<(PathBuf, String)>> {
    let resolved: Vec<(PathBuf, String)> = inputs
        .iter()
        .map(|p| resolve_input(p))
        .collect::<Result<_>>()?;
    Ok(resolved
        .iter()
        .map(|(csv_path, name)| {
            let n_same = resolved.iter().filter(|(_, n)| n == name).count();
            let run = if n_same > 1 {
                csv_path
                    .parent()
                    .map_or_else(|| name.clone(), |p| p.display().to_string())
            } else {
                name.clone()
            };
            (csv_path.clone(), run)
        })
        .collect())
}

/// Every input's rows, named as [`compare`] names its runs (for `texplain compare --html`).
pub fn read_runs(inputs: &[PathBuf]) -> Result<Vec<(String, Vec<ResultRow>)>> {
    named_inputs(inputs)?
        .into_iter()
        .map(|(csv_path, run)| Ok((run, read_results_csv(&csv_path)?)))
        .collect()
}

/// Aggregate `inputs` (results.csv files or run directories) on `split` and compare each (run, method) with
/// `baseline` (a method name, compared within each run, or `RUN/METHOD` for one fixed run's method); paired
/// differences get a Student-t interval ([`compare_with`] chooses).
pub fn compare(
    inputs: &[PathBuf],
    baseline: &str,
    split: Split,
    format: CompareFormat,
) -> Result<String> {
    compare_with(inputs, baseline, split, format, Interval::T)
}

/// [`compare`] with the given interval for the mean paired differences.
pub fn compare_with(
    inputs: &[PathBuf],
    baseline: &str,
    split: Split,
    format: CompareFormat,
    interval: Interval,
) -> Result<String> {
    let cells = read_cells(inputs, split)?;
    let baselines = Baselines::find(&cells, baseline)?;
    match format {
        CompareFormat::Markdown => Ok(markdown(&cells, &baselines, split, interval)),
        CompareFormat::Csv => csv_table(&cells, &baselines, interval),
    }
}

/// The (run, method) cells of `inputs` on `split`: runs in input order (two inputs with the same directory name
/// are told apart by their full paths), methods in table order within a run.
fn read_cells(inputs: &[PathBuf], split: Split) -> Result<Vec<Cell>> {
    let resolved = named_inputs(inputs)?;
    let mut cells: Vec<Cell> = Vec::new();
    for (csv_path, run) in &resolved {
        cells.extend(run_cells(run, csv_path, split)?);
    }
    if cells.is_empty() {
        return Err(ReportError::NoRows {
            split: split.to_string(),
            inputs: resolved
                .iter()
                .map(|(p, _)| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(cells)
}

/// One run's cells: its `split` rows of `csv_path` grouped by method, one row per seed.
fn run_cells(run: &str, csv_path: &Path, split: Split) -> Result<Vec<Cell>> {
    let mut cells: Vec<Cell> = Vec::new();
    for r in read_results_csv(csv_path)?
        .into_iter()
        .filter(|r| r.split == split)
    {
        let idx = match cells.iter().position(|c| c.method == r.method) {
            Some(i) => i,
            None => {
                cells.push(Cell {
                    run: run.to_string(),
                    method: r.method.clone(),
                    by_seed: BTreeMap::new(),
                });
                cells.len() - 1
            }
        };
        if cells[idx].by_seed.contains_key(&r.seed) {
            return Err(ReportError::Duplicate {
                path: csv_path.to_path_buf(),
                seed: r.seed,
                method: r.method,
                split: r.split.to_string(),
            });
        }
        cells[idx].by_seed.insert(r.seed, r);
    }
    cells.sort_by(|a, b| table_order(&a.method, &b.method));
    Ok(cells)
}

/// Each cell's baseline cell, from `--baseline`.
struct Baselines {
    /// The `--baseline` text.
    name: String,
    /// Whether it names one run's method (`RUN/METHOD`) rather than a method of every run.
    fixed: bool,
    /// Index of each cell's baseline cell; `None` when its run lacks the method, and for the baseline itself.
    of: Vec<Option<usize>>,
}

impl Baselines {
    fn find(cells: &[Cell], baseline: &str) -> Result<Self> {
        let not_found = || ReportError::NoBaseline {
            baseline: baseline.to_string(),
            present: cells
                .iter()
                .map(|c| format!("{}/{}", c.run, c.method))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let fixed: Option<usize> = match baseline.rsplit_once('/') {
            Some((run, method)) => Some(
                cells
                    .iter()
                    .position(|c| c.run == run && c.method.eq_ignore_ascii_case(method))
                    .ok_or_else(not_found)?,
            ),
            None => {
                if !cells
                    .iter()
                    .any(|c| c.method.eq_ignore_ascii_case(baseline))
                {
                    return Err(not_found());
                }
                None
            }
        };
        let of = (0..cells.len())
            .map(|i| {
                let b = fixed.or_else(|| {
                    cells.iter().position(|c| {
                        c.run == cells[i].run && c.method.eq_ignore_ascii_case(baseline)
                    })
                })?;
                (b != i).then_some(b)
            })
            .collect();
        Ok(Baselines {
            name: baseline.to_string(),
            fixed: fixed.is_some(),
            of,
        })
    }
}

/// The markdown table: one line per cell, each metric's mean ± std, Δ and paired Δ; the group-label footnote.
fn markdown(cells: &[Cell], baselines: &Baselines, split: Split, interval: Interval) -> String {
    let baseline = &baselines.name;
    let base_desc = if baselines.fixed {
        format!("`{baseline}`")
    } else {
        format!("`{baseline}` of the same run")
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Split `{split}`, baseline {base_desc}. Accuracy in %, mean ± std (ddof=1) over seeds. \
         Δ = difference of means to the baseline (percentage points); paired Δ = mean ± std of the \
         per-seed differences over the n seeds both share, [lo, hi] = {} (none for n = 1). \
         Average = train-group-weighted.",
        interval.describe()
    );
    out.push('\n');
    let _ = writeln!(
        out,
        "| Run | Method | Seeds | Worst-group | Δ | paired Δ | Average | Δ | paired Δ | Plain | Δ | paired Δ |"
    );
    let _ = writeln!(
        out,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for (c, b) in cells.iter().zip(&baselines.of) {
        let rows: Vec<&ResultRow> = c.by_seed.values().collect();
        let mut line = vec![
            c.run.clone(),
            method_label(&c.method),
            c.by_seed.len().to_string(),
        ];
        for (_, f) in METRICS {
            let (m, s) = stat(&rows, f);
            line.push(fmt_pct_pm(m, s));
            match b {
                Some(b) => {
                    let d = diff(c, &cells[*b], f, interval);
                    line.push(fmt_pct_signed(d.delta));
                    line.push(fmt_paired(&d));
                }
                None => line.extend(["–".to_string(), "–".to_string()]),
            }
        }
        let _ = writeln!(out, "| {} |", line.join(" | "));
    }
    if let Some(note) = group_label_note(cells.iter().map(|c| c.method.as_str())) {
        let _ = writeln!(out, "\n{note}");
    }
    out
}

/// The CSV header: per metric mean, std, Δ and the paired Δ, then the intervals and their kind.
fn csv_header() -> Vec<String> {
    let mut header: Vec<String> = vec![
        "run".into(),
        "method".into(),
        "baseline".into(),
        "n_seeds".into(),
        "seeds".into(),
    ];
    for (name, _) in METRICS {
        for suffix in [
            "mean",
            "std",
            "delta",
            "paired_delta_mean",
            "paired_delta_std",
            "n_paired",
        ] {
            header.push(format!("{name}_{suffix}"));
        }
    }
    // New columns go last, so the earlier ones keep their positions.
    for (name, _) in METRICS {
        header.extend(["lo", "hi"].map(|end| format!("{name}_paired_delta_{end}")));
    }
    header.push("interval".into());
    header
}

/// One cell's CSV record (the columns of [`csv_header`]); empty fields where there is no baseline or no value.
fn csv_record(cell: &Cell, base: Option<&Cell>, interval: Interval) -> Vec<String> {
    let num = |x: f64| {
        if x.is_nan() {
            String::new()
        } else {
            x.to_string()
        }
    };
    let rows: Vec<&ResultRow> = cell.by_seed.values().collect();
    let mut rec = vec![
        cell.run.clone(),
        cell.method.clone(),
        base.map_or(String::new(), |b| format!("{}/{}", b.run, b.method)),
        cell.by_seed.len().to_string(),
        cell.by_seed
            .keys()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(";"),
    ];
    let diffs: Vec<Option<Diff>> = METRICS
        .iter()
        .map(|(_, f)| base.map(|b| diff(cell, b, *f, interval)))
        .collect();
    for ((_, f), d) in METRICS.iter().zip(&diffs) {
        let (m, s) = stat(&rows, *f);
        rec.extend([num(m), num(s)]);
        match d {
            Some(d) => rec.extend([
                num(d.delta),
                num(d.paired_mean),
                num(d.paired_std),
                d.n_paired.to_string(),
            ]),
            None => rec.extend(std::iter::repeat_n(String::new(), 4)),
        }
    }
    for d in &diffs {
        let (lo, hi) = d
            .as_ref()
            .and_then(|d| d.interval)
            .map_or((String::new(), String::new()), |(lo, hi)| {
                (num(lo), num(hi))
            });
        rec.extend([lo, hi]);
    }
    rec.push(base.map_or(String::new(), |_| interval.name().to_string()));
    rec
}

/// The CSV table: [`csv_header`], then one [`csv_record`] per cell.
fn csv_table(cells: &[Cell], baselines: &Baselines, interval: Interval) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |source| ReportError::Csv {
        path: PathBuf::from("<stdout>"),
        source,
    };
    w.write_record(csv_header()).map_err(csv_err)?;
    for (c, b) in cells.iter().zip(&baselines.of) {
        let base = b.map(|b| &cells[b]);
        w.write_record(csv_record(c, base, interval))
            .map_err(csv_err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| csv_err(csv::Error::from(e.into_error())))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::{row, sample_rows};
    use crate::report::write_results_csv;

    fn write_run(root: &Path, name: &str, rows: &[ResultRow]) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        write_results_csv(&dir.join("results.csv"), rows).unwrap();
        dir
    }

    #[test]
    fn compare_marks_methods_that_train_on_group_labels() {
        let root = tempfile::tempdir().unwrap();
        let mut rows = sample_rows();
        rows.push(row(0, "dfr", "test", [0.9; 4], 0.85, 0.9, 0.88));
        let a = write_run(root.path(), "run-a", &rows);
        let md = compare(&[a], "erm", Split::Test, CompareFormat::Markdown).unwrap();
        let lines: Vec<&str> = md.lines().collect();
        assert!(lines[7].starts_with("| run-a | dfr † | 1 | 85.0 |"), "{md}");
        assert_eq!(lines[8], "");
        assert!(
            lines[9].starts_with("† trains on group labels: dfr (the validation split's"),
            "{md}"
        );
        assert_eq!(lines.len(), 10, "{md}");
    }

    #[test]
    fn compare_two_runs_against_erm() {
        let root = tempfile::tempdir().unwrap();
        let a = write_run(root.path(), "run-a", &sample_rows());
        // run-b: texplain for seeds 0 and 1 only, erm for 0..3.
        let mut b_rows: Vec<ResultRow> = sample_rows()
            .into_iter()
            .filter(|r| r.method == "erm" && r.split == Split::Test)
            .collect();
        b_rows.push(row(0, "texplain", "test", [0.9; 4], 0.29, 0.96, 0.8));
        b_rows.push(row(1, "texplain", "test", [0.9; 4], 0.41, 0.97, 0.8));
        let b = write_run(root.path(), "run-b", &b_rows);

        let md = compare(
            &[a.clone(), b.join("results.csv")],
            "erm",
            Split::Test,
            CompareFormat::Markdown,
        )
        .unwrap();
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines.len(), 4 + 5, "{md}");
        assert_eq!(
            lines[4],
            "| run-a | erm | 3 | 21.0 ± 2.0 | – | – | 97.0 ± 1.0 | – | – | 82.0 ± 2.0 | – | – |"
        );
        // random has only seed 0: worst 40 vs erm mean 21 -> +19.0; paired with erm seed 0 (19) -> +21.0 (n=1)
        assert_eq!(
            lines[5],
            "| run-a | random | 1 | 40.0 | +19.0 | +21.0 (n=1) | 90.0 | -7.0 | -6.0 (n=1) | 70.0 | -12.0 | -10.0 (n=1) |"
        );
        // texplain worst 50/60/70 vs 19/21/23: diffs 31/39/47 -> +39.0 ± 8.0, t interval
        // 39 ± t_{0.975,2} 8/√3 = 39 ± 4.302653 · 4.618802 = 39 ± 19.873 -> [+19.1, +58.9]; plain diffs 0/-2/-4:
        // -2 ± 4.302653 · 2/√3 = -2 ± 4.968 -> [-7.0, +3.0]
        assert_eq!(
            lines[6],
            "| run-a | texplain | 3 | 60.0 ± 10.0 | +39.0 | +39.0 ± 8.0 [+19.1, +58.9] (n=3) | 91.0 ± 1.0 | -6.0 | -6.0 ± 0.0 [-6.0, -6.0] (n=3) | 80.0 ± 0.0 | -2.0 | -2.0 ± 2.0 [-7.0, +3.0] (n=3) |"
        );
        // run-b texplain: worst 29, 41 (mean 35 ± 8.5); erm mean 21 -> +14.0; paired 10, 20 -> +15.0 ± 7.1, and
        // with t_{0.975,1} = 12.7062: 15 ± 12.7062 · 7.0711/√2 = 15 ± 63.53 -> [-48.5, +78.5]
        assert_eq!(
            lines[8],
            "| run-b | texplain | 2 | 35.0 ± 8.5 | +14.0 | +15.0 ± 7.1 [-48.5, +78.5] (n=2) | 96.5 ± 0.7 | -0.5 | +0.0 ± 0.0 [+0.0, +0.0] (n=2) | 80.0 ± 0.0 | -2.0 | -1.0 ± 1.4 [-13.7, +11.7] (n=2) |"
        );
        assert!(lines[0].contains("95 % Student-t interval"), "{}", lines[0]);

        // A fixed baseline from another run, and CSV output.
        let csv = compare(&[a, b], "run-a/texplain", Split::Test, CompareFormat::Csv).unwrap();
        let mut rdr = csv::Reader::from_reader(csv.as_bytes());
        let header = rdr.headers().unwrap().clone();
        let recs: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
        let get = |rec: &csv::StringRecord, col: &str| {
            rec.get(header.iter().position(|h| h == col).unwrap())
                .unwrap()
                .to_string()
        };
        let bt = recs
            .iter()
            .find(|r| &r[0] == "run-b" && &r[1] == "texplain")
            .unwrap();
        assert_eq!(get(bt, "baseline"), "run-a/texplain");
        assert_eq!(get(bt, "n_seeds"), "2");
        assert_eq!(get(bt, "seeds"), "0;1");
        let d: f64 = get(bt, "worst_group_delta").parse().unwrap();
        assert!((d - (0.35 - 0.6)).abs() < 1e-12);
        let pm: f64 = get(bt, "worst_group_paired_delta_mean").parse().unwrap();
        assert!((pm - ((0.29 - 0.5) + (0.41 - 0.6)) / 2.0).abs() < 1e-12);
        assert_eq!(get(bt, "worst_group_n_paired"), "2");
        // Paired -0.21, -0.19: -0.2 ± t_{0.975,1} · 0.0141421/√2 = -0.2 ± 12.7062 · 0.01
        let lo: f64 = get(bt, "worst_group_paired_delta_lo").parse().unwrap();
        let hi: f64 = get(bt, "worst_group_paired_delta_hi").parse().unwrap();
        assert!(
            (lo + 0.327_062).abs() < 1e-5 && (hi + 0.072_938).abs() < 1e-5,
            "[{lo}, {hi}]"
        );
        assert_eq!(get(bt, "interval"), "t95");
        assert_eq!(&header[header.len() - 1], "interval");
        assert_eq!(
            header.iter().position(|h| h == "worst_group_mean"),
            Some(5),
            "existing columns keep their positions"
        );
        let at = recs
            .iter()
            .find(|r| &r[0] == "run-a" && &r[1] == "texplain")
            .unwrap();
        assert_eq!(get(at, "baseline"), "");
        assert_eq!(get(at, "worst_group_delta"), "");
        assert_eq!(get(at, "worst_group_paired_delta_lo"), "");
        assert_eq!(get(at, "interval"), "");
    }

    #[test]
    fn compare_with_bootstrap_intervals() {
        let root = tempfile::tempdir().unwrap();
        let a = write_run(root.path(), "run-a", &sample_rows());
        let boot = Interval::Bootstrap {
            resamples: 10_000,
            seed: 0,
        };
        let md = compare_with(
            std::slice::from_ref(&a),
            "erm",
            Split::Test,
            CompareFormat::Markdown,
            boot,
        )
        .unwrap();
        assert!(md.contains(
            "percentile-bootstrap interval of the mean difference, 10000 resamples, seed 0 (none for n = 1)"
        ));
        let texplain = md.lines().find(|l| l.contains("| texplain |")).unwrap();
        // Worst-group paired cell: diffs 31/39/47; resampled means lie in [31, 47] and bracket 39.
        let cell = texplain.split(" | ").nth(5).unwrap();
        let inside = &cell[cell.find('[').unwrap() + 1..cell.find(']').unwrap()];
        let bounds: Vec<f64> = inside.split(", ").map(|v| v.parse().unwrap()).collect();
        assert!(
            31.0 <= bounds[0] && bounds[0] < 39.0 && 39.0 < bounds[1] && bounds[1] <= 47.0,
            "{cell}"
        );
        // Seeded: the same table twice.
        let again = compare_with(&[a], "erm", Split::Test, CompareFormat::Markdown, boot).unwrap();
        assert_eq!(md, again);
    }

    #[test]
    fn compare_errors() {
        let root = tempfile::tempdir().unwrap();
        let a = write_run(root.path(), "run-a", &sample_rows());
        let err = compare(
            std::slice::from_ref(&a),
            "oracle",
            Split::Test,
            CompareFormat::Markdown,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("baseline `oracle` not found"), "{err}");
        let err = compare(
            std::slice::from_ref(&a),
            "erm",
            Split::Train,
            CompareFormat::Markdown,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("no rows with split `train`"), "{err}");
        let mut dup = sample_rows();
        dup.push(dup[0].clone());
        let d = write_run(root.path(), "dup", &dup);
        let err = compare(&[d], "erm", Split::Test, CompareFormat::Markdown)
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("dup/results.csv: two rows for seed 0, method `erm`, split `test`"),
            "{err}"
        );
        let err = compare(
            &[root.path().join("missing")],
            "erm",
            Split::Test,
            CompareFormat::Csv,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("missing"), "{err}");
    }

    /// The paired-differences section of `table.md` on a hand-written results.csv: TExplain − Random over three
    /// seeds with its t interval (t_{0.975, 2} = 4.303), TExplain − frame on the one seed frame ran, the pairs
    /// whose arms did not run left out.
    #[test]
    fn paired_differences_of_a_hand_written_results_csv() {
        let csv = "seed,method,split,acc_g0,acc_g1,acc_g2,acc_g3,worst_group,avg_train_weighted,avg_plain,n\n\
                   0,texplain,test,0.9,0.8,0.5,0.9,0.50,0.90,0.8,100\n\
                   1,texplain,test,0.9,0.8,0.6,0.9,0.60,0.91,0.8,100\n\
                   2,texplain,test,0.9,0.8,0.7,0.9,0.70,0.92,0.8,100\n\
                   0,random,test,0.9,0.8,0.4,0.9,0.40,0.90,0.8,100\n\
                   1,random,test,0.9,0.8,0.45,0.9,0.45,0.90,0.8,100\n\
                   2,random,test,0.9,0.8,0.5,0.9,0.50,0.90,0.8,100\n\
                   0,frame,test,0.9,0.8,0.45,0.9,0.45,0.88,0.8,100\n\
                   1,frame,val,0.9,0.8,0.1,0.9,0.10,0.10,0.8,100\n\
                   0,oracle,test,0.9,0.8,0.7,0.9,0.70,0.93,0.8,100\n";
        let rows = crate::report::parse_results_csv(csv, Path::new("results.csv")).unwrap();
        let md = paired_differences_md(&rows, Split::Test).unwrap();
        let lines: Vec<&str> = md.lines().collect();
        assert!(
            lines[0].starts_with("Paired differences (split `test`"),
            "{md}"
        );
        assert!(lines[0].contains("Student-t"), "{md}");
        assert_eq!(
            &lines[2..],
            [
                "| Difference | Seeds | Worst-group | Average |",
                "|---|---:|---:|---:|",
                // worst 0.10, 0.15, 0.20: 15.0 ± 5.0, ± 4.303·5.0/√3 = 12.4; average 0, 1, 2: 1.0 ± 1.0 ± 2.5
                "| texplain − random | 3 | +15.0 ± 5.0 [+2.6, +27.4] (n=3) | +1.0 ± 1.0 [-1.5, +3.5] (n=3) |",
                "| texplain − frame | 1 | +5.0 (n=1) | +2.0 (n=1) |",
            ]
        );
        // without a pair of arms that both ran, no section
        let alone: Vec<ResultRow> = rows
            .into_iter()
            .filter(|r| r.method != "random" && r.method != "frame")
            .collect();
        assert_eq!(paired_differences_md(&alone, Split::Test), None);
    }
}
