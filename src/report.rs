//! Results rows, the Table-1 markdown layout and cross-run comparison (paper section 4.3, Table 1).
//!
//! * [`ResultRow`] is one (seed, method, split) evaluation; a run writes them all to `results.csv` with the columns
//!   `seed,method,split,acc_g0..acc_g{G-1},worst_group,avg_train_weighted,avg_plain,n` (G follows the data; the
//!   reader accepts any G). Accuracies are fractions in [0, 1]; an empty group is written as `NaN`.
//! * [`table_md`] renders the paper's Table 1: one line per method, `mean ± std` over seeds (ddof = 1, see
//!   [`crate::metrics::mean_std`]) in percent with one decimal, the paper's numbers beside ours when given.
//! * [`compare`] aggregates several runs (a run is named by its directory) and reports differences to a baseline
//!   method, both as a difference of means and, where seeds match, as mean ± std of the paired per-seed differences
//!   with a 95 % interval of their mean ([`Interval`]: Student-t by default, or a seeded percentile bootstrap; see
//!   [`crate::stats`]). One shared seed gives no interval.
use crate::data::Split;
use crate::methods::{table_order, GroupLabels, Method};
use crate::metrics::mean_std;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Errors while reading, writing or aggregating results; every one names the file (and row/column) involved.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Csv { path: PathBuf, source: csv::Error },
    #[error("{path}: header lacks column `{column}`")]
    MissingColumn { path: PathBuf, column: String },
    #[error("{path}: group columns must be acc_g0..acc_g{{G-1}} without gaps, found {found:?}")]
    GroupColumns { path: PathBuf, found: Vec<String> },
    #[error("{path}: line {line}, column `{column}`: cannot parse {value:?} as {expected}")]
    BadValue {
        path: PathBuf,
        line: u64,
        column: String,
        value: String,
        expected: &'static str,
    },
    #[error("{path}: rows disagree on the number of groups: row {index} (seed {seed}, method {method}) has {got}, the first row has {expected}")]
    RaggedGroups {
        path: PathBuf,
        index: usize,
        seed: u64,
        method: String,
        got: usize,
        expected: usize,
    },
    #[error("{path}: two rows for seed {seed}, method `{method}`, split `{split}`")]
    Duplicate {
        path: PathBuf,
        seed: u64,
        method: String,
        split: String,
    },
    #[error("no rows with split `{split}` in {inputs}")]
    NoRows { split: String, inputs: String },
    #[error("baseline `{baseline}` not found; present (run/method): {present}")]
    NoBaseline { baseline: String, present: String },
}

type Result<T, E = ReportError> = std::result::Result<T, E>;

/// One evaluation of one method on one split for one seed.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    pub seed: u64,
    pub method: String,
    /// The evaluated split (`val` or `test` in a run's rows).
    pub split: Split,
    /// Accuracy of each group g = 2*y + place; NaN for an empty group.
    pub group_acc: Vec<f64>,
    pub worst_group: f64,
    pub avg_train_weighted: f64,
    pub avg_plain: f64,
    /// Number of evaluated samples.
    pub n: usize,
}

use crate::util::write_file_atomic as write_atomic;

/// The `results.csv` text of `rows`. All rows must have the same number of groups.
pub fn results_to_csv(rows: &[ResultRow], path_for_errors: &Path) -> Result<String> {
    let n_groups = rows.first().map_or(0, |r| r.group_acc.len());
    let csv_err = |source| ReportError::Csv {
        path: path_for_errors.to_path_buf(),
        source,
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = vec!["seed".into(), "method".into(), "split".into()];
    header.extend((0..n_groups).map(|g| format!("acc_g{g}")));
    header.extend(["worst_group", "avg_train_weighted", "avg_plain", "n"].map(String::from));
    w.write_record(&header).map_err(csv_err)?;
    for (index, r) in rows.iter().enumerate() {
        if r.group_acc.len() != n_groups {
            return Err(ReportError::RaggedGroups {
                path: path_for_errors.to_path_buf(),
                index,
                seed: r.seed,
                method: r.method.clone(),
                got: r.group_acc.len(),
                expected: n_groups,
            });
        }
        let mut rec: Vec<String> = vec![r.seed.to_string(), r.method.clone(), r.split.to_string()];
        // `{}` on f64 prints the shortest string that parses back to the same value: lossless round trip.
        rec.extend(r.group_acc.iter().map(|a| a.to_string()));
        rec.extend([
            r.worst_group.to_string(),
            r.avg_train_weighted.to_string(),
            r.avg_plain.to_string(),
            r.n.to_string(),
        ]);
        w.write_record(&rec).map_err(csv_err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| csv_err(csv::Error::from(e.into_error())))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Write `rows` to `path` (atomically) as `results.csv`.
pub fn write_results_csv(path: &Path, rows: &[ResultRow]) -> Result<()> {
    let text = results_to_csv(rows, path)?;
    write_atomic(path, text.as_bytes()).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Read a `results.csv` file.
pub fn read_results_csv(path: &Path) -> Result<Vec<ResultRow>> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_results_csv(&text, path)
}

/// Parse `results.csv` text; `path` only names the source in errors.
pub fn parse_results_csv(text: &str, path: &Path) -> Result<Vec<ResultRow>> {
    let path_buf = path.to_path_buf();
    let csv_err = |source| ReportError::Csv {
        path: path_buf.clone(),
        source,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let header = rdr.headers().map_err(csv_err)?.clone();
    let col = |name: &str| -> Result<usize> {
        header
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| ReportError::MissingColumn {
                path: path_buf.clone(),
                column: name.to_string(),
            })
    };
    let (c_seed, c_method, c_split) = (col("seed")?, col("method")?, col("split")?);
    let (c_worst, c_avg_w, c_avg_p, c_n) = (
        col("worst_group")?,
        col("avg_train_weighted")?,
        col("avg_plain")?,
        col("n")?,
    );
    // Group columns: every acc_g<k>, which must be exactly acc_g0..acc_g{G-1}.
    let mut group_cols: Vec<(usize, usize)> = Vec::new(); // (group index, column index)
    let mut found = Vec::new();
    for (ci, h) in header.iter().enumerate() {
        if let Some(k) = h.trim().strip_prefix("acc_g") {
            found.push(h.to_string());
            match k.parse::<usize>() {
                Ok(g) => group_cols.push((g, ci)),
                Err(_) => {
                    return Err(ReportError::GroupColumns {
                        path: path_buf.clone(),
                        found,
                    })
                }
            }
        }
    }
    group_cols.sort_unstable();
    if group_cols.iter().enumerate().any(|(i, &(g, _))| i != g) {
        return Err(ReportError::GroupColumns {
            path: path_buf.clone(),
            found,
        });
    }

    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(csv_err)?;
        let line = rec.position().map_or(0, |p| p.line());
        let field = |ci: usize| rec.get(ci).unwrap_or("").trim();
        let bad = |ci: usize, expected: &'static str| ReportError::BadValue {
            path: path_buf.clone(),
            line,
            column: header.get(ci).unwrap_or("?").to_string(),
            value: field(ci).to_string(),
            expected,
        };
        let float = |ci: usize| field(ci).parse::<f64>().map_err(|_| bad(ci, "a number"));
        let text_field = |ci: usize| {
            let v = field(ci);
            if v.is_empty() {
                Err(bad(ci, "a non-empty string"))
            } else {
                Ok(v.to_string())
            }
        };
        rows.push(ResultRow {
            seed: field(c_seed)
                .parse()
                .map_err(|_| bad(c_seed, "an unsigned integer"))?,
            method: text_field(c_method)?,
            split: field(c_split)
                .parse()
                .map_err(|_| bad(c_split, "a split (train, val or test)"))?,
            group_acc: group_cols
                .iter()
                .map(|&(_, ci)| float(ci))
                .collect::<Result<_>>()?,
            worst_group: float(c_worst)?,
            avg_train_weighted: float(c_avg_w)?,
            avg_plain: float(c_avg_p)?,
            n: field(c_n)
                .parse()
                .map_err(|_| bad(c_n, "an unsigned integer"))?,
        });
    }
    Ok(rows)
}

/// A paper's reported numbers: method -> worst-group and average accuracy as [mean, std] in percent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PaperTable(pub BTreeMap<String, PaperEntry>);

/// One method's line of a paper table, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperEntry {
    pub worst_group: [f64; 2],
    pub average: [f64; 2],
}

impl PaperTable {
    /// Waterbirds, TExplain paper Table 1 (ViT-B/16 at 384 px, mean ± std over seeds).
    pub fn waterbirds_table1() -> Self {
        let e = |w: [f64; 2], a: [f64; 2]| PaperEntry {
            worst_group: w,
            average: a,
        };
        PaperTable(BTreeMap::from([
            ("ERM".to_string(), e([78.0, 7.3], [95.2, 0.5])),
            ("Random".to_string(), e([82.3, 3.6], [96.4, 0.2])),
            ("TExplain".to_string(), e([88.2, 2.9], [96.7, 0.6])),
        ]))
    }

    /// Case-insensitive lookup (`erm` finds `ERM`).
    pub fn get(&self, method: &str) -> Option<&PaperEntry> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(method))
            .map(|(_, v)| v)
    }
}

/// `78.0 ± 7.3` in percent from fractions; a NaN std (one seed) prints the mean alone; a NaN mean prints `–`.
pub fn fmt_pct_pm(mean: f64, std: f64) -> String {
    if mean.is_nan() {
        "–".to_string()
    } else if std.is_nan() {
        format!("{:.1}", 100.0 * mean)
    } else {
        format!("{:.1} ± {:.1}", 100.0 * mean, 100.0 * std)
    }
}

fn fmt_pct(x: f64) -> String {
    if x.is_nan() {
        "–".to_string()
    } else {
        format!("{:.1}", 100.0 * x)
    }
}

/// Signed difference in percentage points, e.g. `+3.2`.
fn fmt_pct_signed(x: f64) -> String {
    if x.is_nan() {
        "–".to_string()
    } else {
        format!("{:+.1}", 100.0 * x)
    }
}

/// A paper's `[mean, std]`; a NaN std (a figure published without one) prints the mean alone.
fn fmt_paper(v: [f64; 2]) -> String {
    if v[1].is_nan() {
        format!("{:.1}", v[0])
    } else {
        format!("{:.1} ± {:.1}", v[0], v[1])
    }
}

/// The mark of a method that trains on group labels (see [`group_label_note`]).
pub const GROUP_LABEL_MARK: &str = "†";

/// A method's name as tables print it: marked with [`GROUP_LABEL_MARK`] when it trains on group labels.
pub fn method_label(method: &str) -> String {
    match Method::from_name(method) {
        Some(m) if m.trains_on_group_labels() => format!("{method} {GROUP_LABEL_MARK}"),
        _ => method.to_string(),
    }
}

/// The footnote of a table holding `methods`: which of them train on group labels and on which split's; `None`
/// when none does.
pub fn group_label_note<'a>(methods: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut marked: Vec<String> = Vec::new();
    for name in methods {
        let Some(m) = Method::from_name(name) else {
            continue;
        };
        let which = match m.group_labels() {
            GroupLabels::Selection => continue,
            GroupLabels::Train => "the training split's, in its objective",
            GroupLabels::Val => "the validation split's, as its training data",
        };
        let line = format!("{name} ({which})");
        if !marked.contains(&line) {
            marked.push(line);
        }
    }
    (!marked.is_empty()).then(|| {
        format!(
            "{GROUP_LABEL_MARK} trains on group labels: {}. Every method uses the validation groups to select a \
             model (worst-group validation accuracy); these use them to train as well.",
            marked.join("; ")
        )
    })
}

/// Mean and std over seeds of one metric per row.
fn stat(rows: &[&ResultRow], f: impl Fn(&ResultRow) -> f64) -> (f64, f64) {
    mean_std(&rows.iter().map(|r| f(r)).collect::<Vec<_>>())
}

/// The paper's Table-1 layout for one split, in markdown (see the module docs).
pub fn table_md(rows: &[ResultRow], split: Split, paper: Option<&PaperTable>) -> String {
    let rows: Vec<&ResultRow> = rows.iter().filter(|r| r.split == split).collect();
    let mut methods: Vec<&str> = rows
        .iter()
        .map(|r| r.method.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    methods.sort_by(|a, b| table_order(a, b));
    let n_groups = rows.iter().map(|r| r.group_acc.len()).max().unwrap_or(0);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "Split `{split}`: accuracy in %, mean ± std (ddof=1) over seeds. Average = train-group-weighted \
         (group_DRO/WILDS convention), Plain = accuracy over all samples, g = 2*y + place."
    );
    out.push('\n');
    let mut header = vec![
        "Method".to_string(),
        "Seeds".into(),
        "Worst-group".into(),
        "Average".into(),
        "Plain".into(),
    ];
    header.extend((0..n_groups).map(|g| format!("g{g}")));
    if paper.is_some() {
        header.extend(["Paper worst-group".to_string(), "Paper average".to_string()]);
    }
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        header
            .iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { "---|" } else { "---:|" })
            .collect::<String>()
    );
    for &m in &methods {
        let mrows: Vec<&ResultRow> = rows.iter().copied().filter(|r| r.method == m).collect();
        let seeds: BTreeSet<u64> = mrows.iter().map(|r| r.seed).collect();
        let (wm, ws) = stat(&mrows, |r| r.worst_group);
        let (am, as_) = stat(&mrows, |r| r.avg_train_weighted);
        let (pm, ps) = stat(&mrows, |r| r.avg_plain);
        let mut cells = vec![
            method_label(m),
            seeds.len().to_string(),
            fmt_pct_pm(wm, ws),
            fmt_pct_pm(am, as_),
            fmt_pct_pm(pm, ps),
        ];
        for g in 0..n_groups {
            let (gm, _) = stat(&mrows, |r| r.group_acc.get(g).copied().unwrap_or(f64::NAN));
            cells.push(fmt_pct(gm));
        }
        if let Some(p) = paper {
            match p.get(m) {
                Some(e) => cells.extend([fmt_paper(e.worst_group), fmt_paper(e.average)]),
                None => cells.extend(["–".to_string(), "–".to_string()]),
            }
        }
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    if let Some(note) = group_label_note(methods) {
        let _ = writeln!(out, "\n{note}");
    }
    out
}

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
    // Runs in input order; two inputs with the same directory name are told apart by their full paths.
    let resolved: Vec<(PathBuf, String)> = inputs
        .iter()
        .map(|p| resolve_input(p))
        .collect::<Result<_>>()?;
    let mut cells: Vec<Cell> = Vec::new();
    for (csv_path, name) in &resolved {
        let n_same = resolved.iter().filter(|(_, n)| n == name).count();
        let run = if n_same > 1 {
            csv_path
                .parent()
                .map_or_else(|| name.clone(), |p| p.display().to_string())
        } else {
            name.clone()
        };
        let rows = read_results_csv(csv_path)?;
        let mut run_cells: Vec<Cell> = Vec::new();
        for r in rows.into_iter().filter(|r| r.split == split) {
            let idx = match run_cells.iter().position(|c| c.method == r.method) {
                Some(i) => i,
                None => {
                    run_cells.push(Cell {
                        run: run.clone(),
                        method: r.method.clone(),
                        by_seed: BTreeMap::new(),
                    });
                    run_cells.len() - 1
                }
            };
            if run_cells[idx].by_seed.contains_key(&r.seed) {
                return Err(ReportError::Duplicate {
                    path: csv_path.clone(),
                    seed: r.seed,
                    method: r.method,
                    split: r.split.to_string(),
                });
            }
            run_cells[idx].by_seed.insert(r.seed, r);
        }
        run_cells.sort_by(|a, b| table_order(&a.method, &b.method));
        cells.extend(run_cells);
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

    // Baseline cell for each cell (None when the run lacks it).
    let fixed_base: Option<usize> = match baseline.rsplit_once('/') {
        Some((run, method)) => Some(
            cells
                .iter()
                .position(|c| c.run == run && c.method.eq_ignore_ascii_case(method))
                .ok_or_else(|| ReportError::NoBaseline {
                    baseline: baseline.to_string(),
                    present: cells
                        .iter()
                        .map(|c| format!("{}/{}", c.run, c.method))
                        .collect::<Vec<_>>()
                        .join(", "),
                })?,
        ),
        None => {
            if !cells
                .iter()
                .any(|c| c.method.eq_ignore_ascii_case(baseline))
            {
                return Err(ReportError::NoBaseline {
                    baseline: baseline.to_string(),
                    present: cells
                        .iter()
                        .map(|c| format!("{}/{}", c.run, c.method))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            None
        }
    };
    let base_of = |i: usize| -> Option<usize> {
        let b = fixed_base.or_else(|| {
            cells
                .iter()
                .position(|c| c.run == cells[i].run && c.method.eq_ignore_ascii_case(baseline))
        })?;
        (b != i).then_some(b)
    };

    let mut out = String::new();
    match format {
        CompareFormat::Markdown => {
            let base_desc = if fixed_base.is_some() {
                format!("`{baseline}`")
            } else {
                format!("`{baseline}` of the same run")
            };
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
            for (i, c) in cells.iter().enumerate() {
                let rows: Vec<&ResultRow> = c.by_seed.values().collect();
                let mut line = vec![
                    c.run.clone(),
                    method_label(&c.method),
                    c.by_seed.len().to_string(),
                ];
                for (_, f) in METRICS {
                    let (m, s) = stat(&rows, f);
                    line.push(fmt_pct_pm(m, s));
                    match base_of(i) {
                        Some(b) => {
                            let d = diff(c, &cells[b], f, interval);
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
        }
        CompareFormat::Csv => {
            let num = |x: f64| {
                if x.is_nan() {
                    String::new()
                } else {
                    x.to_string()
                }
            };
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
            let mut w = csv::Writer::from_writer(Vec::new());
            let csv_err = |source| ReportError::Csv {
                path: PathBuf::from("<stdout>"),
                source,
            };
            w.write_record(&header).map_err(csv_err)?;
            for (i, c) in cells.iter().enumerate() {
                let rows: Vec<&ResultRow> = c.by_seed.values().collect();
                let b = base_of(i);
                let mut rec = vec![
                    c.run.clone(),
                    c.method.clone(),
                    b.map_or(String::new(), |b| {
                        format!("{}/{}", cells[b].run, cells[b].method)
                    }),
                    c.by_seed.len().to_string(),
                    c.by_seed
                        .keys()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(";"),
                ];
                let diffs: Vec<Option<Diff>> = METRICS
                    .iter()
                    .map(|(_, f)| b.map(|b| diff(c, &cells[b], *f, interval)))
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
                rec.push(b.map_or(String::new(), |_| interval.name().to_string()));
                w.write_record(&rec).map_err(csv_err)?;
            }
            let bytes = w
                .into_inner()
                .map_err(|e| csv_err(csv::Error::from(e.into_error())))?;
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seed: u64, method: &str, split: &str, g: [f64; 4], w: f64, a: f64, p: f64) -> ResultRow {
        ResultRow {
            seed,
            method: method.to_string(),
            split: split.parse().unwrap(),
            group_acc: g.to_vec(),
            worst_group: w,
            avg_train_weighted: a,
            avg_plain: p,
            n: 5794,
        }
    }

    /// ERM and TExplain over seeds 0..3 with hand-checkable means/stds.
    fn sample_rows() -> Vec<ResultRow> {
        vec![
            row(0, "erm", "test", [1.0, 0.58, 0.19, 0.97], 0.19, 0.96, 0.80),
            row(1, "erm", "test", [1.0, 0.60, 0.21, 0.97], 0.21, 0.97, 0.82),
            row(2, "erm", "test", [1.0, 0.62, 0.23, 0.97], 0.23, 0.98, 0.84),
            row(0, "texplain", "test", [0.9, 0.7, 0.5, 0.9], 0.5, 0.90, 0.80),
            row(1, "texplain", "test", [0.9, 0.7, 0.6, 0.9], 0.6, 0.91, 0.80),
            row(2, "texplain", "test", [0.9, 0.7, 0.7, 0.9], 0.7, 0.92, 0.80),
            row(0, "erm", "val", [0.5, 0.5, 0.5, 0.5], 0.5, 0.5, 0.5),
            row(0, "random", "test", [0.9, 0.6, 0.4, 0.9], 0.4, 0.9, 0.7),
        ]
    }

    #[test]
    fn csv_round_trip() {
        let mut rows = sample_rows();
        rows[0].group_acc[2] = f64::NAN; // an empty group survives the round trip
        rows[1].worst_group = 1.0 / 3.0;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.csv");
        write_results_csv(&path, &rows).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(
            "seed,method,split,acc_g0,acc_g1,acc_g2,acc_g3,worst_group,avg_train_weighted,avg_plain,n\n0,erm,test,1,0.58,NaN,0.97,"
        ));
        let back = read_results_csv(&path).unwrap();
        assert_eq!(back.len(), rows.len());
        assert!(back[0].group_acc[2].is_nan());
        assert_eq!(back[1], rows[1]);
        assert_eq!(&back[2..], &rows[2..]);
        assert!(!dir.path().join("results.csv.tmp").exists());
    }

    #[test]
    fn reads_any_number_of_groups_and_column_order() {
        let text = "method,split,seed,acc_g1,acc_g0,worst_group,avg_train_weighted,avg_plain,n\n\
                    erm,test,3,0.5,0.75,0.5,0.6,0.7,10\n";
        let rows = parse_results_csv(text, Path::new("x.csv")).unwrap();
        assert_eq!(rows[0].group_acc, vec![0.75, 0.5]);
        assert_eq!(rows[0].seed, 3);
    }

    #[test]
    fn bad_csv_errors_name_file_line_and_column() {
        let p = Path::new("runs/a/results.csv");
        let cases = [
            (
                "seed,method,split,acc_g0,worst_group,avg_train_weighted,avg_plain,n\n0,erm,test,0.5,0.5,0.5,0.5,10\n1,erm,test,oops,0.5,0.5,0.5,10\n",
                "runs/a/results.csv: line 3, column `acc_g0`: cannot parse \"oops\" as a number",
            ),
            (
                "seed,method,split,acc_g0,worst_group,avg_plain,n\n",
                "runs/a/results.csv: header lacks column `avg_train_weighted`",
            ),
            (
                "seed,method,split,acc_g0,acc_g2,worst_group,avg_train_weighted,avg_plain,n\n",
                "runs/a/results.csv: group columns must be acc_g0..acc_g{G-1} without gaps, found [\"acc_g0\", \"acc_g2\"]",
            ),
            (
                "seed,method,split,acc_g0,worst_group,avg_train_weighted,avg_plain,n\n-1,erm,test,0.5,0.5,0.5,0.5,10\n",
                "runs/a/results.csv: line 2, column `seed`: cannot parse \"-1\" as an unsigned integer",
            ),
        ];
        for (text, want) in cases {
            let err = parse_results_csv(text, p).unwrap_err().to_string();
            assert_eq!(err, want);
        }
        let short =
            "seed,method,split,acc_g0,worst_group,avg_train_weighted,avg_plain,n\n0,erm,test\n";
        let err = parse_results_csv(short, p).unwrap_err().to_string();
        assert!(err.starts_with("runs/a/results.csv: "), "{err}");
    }

    #[test]
    fn table_md_exact_strings() {
        let t = table_md(
            &sample_rows(),
            Split::Test,
            Some(&PaperTable::waterbirds_table1()),
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[2],
            "| Method | Seeds | Worst-group | Average | Plain | g0 | g1 | g2 | g3 | Paper worst-group | Paper average |"
        );
        assert_eq!(
            lines[3],
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        // erm worst: 19, 21, 23 -> 21.0 ± 2.0; average 96, 97, 98 -> 97.0 ± 1.0; plain 80, 82, 84 -> 82.0 ± 2.0
        assert_eq!(
            lines[4],
            "| erm | 3 | 21.0 ± 2.0 | 97.0 ± 1.0 | 82.0 ± 2.0 | 100.0 | 60.0 | 21.0 | 97.0 | 78.0 ± 7.3 | 95.2 ± 0.5 |"
        );
        // random: one seed -> no std
        assert_eq!(
            lines[5],
            "| random | 1 | 40.0 | 90.0 | 70.0 | 90.0 | 60.0 | 40.0 | 90.0 | 82.3 ± 3.6 | 96.4 ± 0.2 |"
        );
        assert_eq!(
            lines[6],
            "| texplain | 3 | 60.0 ± 10.0 | 91.0 ± 1.0 | 80.0 ± 0.0 | 90.0 | 70.0 | 60.0 | 90.0 | 88.2 ± 2.9 | 96.7 ± 0.6 |"
        );
        assert_eq!(
            lines.len(),
            7,
            "no footnote without a method that trains on group labels"
        );

        // Methods that train on group labels are marked, with a footnote naming the split; a published figure
        // without a std prints its mean alone.
        let mut rows = sample_rows();
        for (method, worst) in [("groupdro", 0.8), ("dfr", 0.85), ("jtt", 0.7)] {
            rows.push(row(
                0,
                method,
                "test",
                [0.9, 0.8, 0.85, 0.9],
                worst,
                0.9,
                0.88,
            ));
        }
        let mut paper = PaperTable::waterbirds_table1();
        paper.0.insert(
            "GroupDRO".into(),
            PaperEntry {
                worst_group: [91.4, f64::NAN],
                average: [93.5, f64::NAN],
            },
        );
        let t = table_md(&rows, Split::Test, Some(&paper));
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[7].starts_with("| jtt | 1 | 70.0 |"), "{t}");
        assert!(lines[8].starts_with("| dfr † | 1 | 85.0 |"), "{t}");
        assert!(
            lines[9].starts_with("| groupdro † | 1 | 80.0 |")
                && lines[9].ends_with("| 91.4 | 93.5 |"),
            "{t}"
        );
        assert_eq!(lines[10], "");
        assert_eq!(
            lines[11],
            "† trains on group labels: dfr (the validation split's, as its training data); groupdro (the training \
             split's, in its objective). Every method uses the validation groups to select a model (worst-group \
             validation accuracy); these use them to train as well."
        );

        let val = table_md(&sample_rows(), Split::Val, None);
        assert_eq!(
            val.lines().nth(4).unwrap(),
            "| erm | 1 | 50.0 | 50.0 | 50.0 | 50.0 | 50.0 | 50.0 | 50.0 |"
        );
    }

    #[test]
    fn paper_table_yaml() {
        let yaml = "ERM: {worst_group: [78.0, 7.3], average: [95.2, 0.5]}\n\
                    Random: {worst_group: [82.3, 3.6], average: [96.4, 0.2]}\n\
                    TExplain: {worst_group: [88.2, 2.9], average: [96.7, 0.6]}\n";
        let t: PaperTable = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(t, PaperTable::waterbirds_table1());
        assert!(
            serde_yaml::from_str::<PaperTable>("ERM: {worst: [1, 2], average: [1, 2]}").is_err()
        );
    }

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
}
