//! `texplain check-reference`: does a run's table still agree with the committed reference results of its
//! experiment (`results/reference/<name>/results.csv`), up to seed noise? `make demo` ends with it.
//!
//! For every method of both and each Table-1 metric (worst-group and train-weighted average accuracy on the test
//! split), the difference Δ of the run's mean over its n seeds and the reference's mean over its m seeds is compared
//! with the reference's seed-to-seed spread: the metric *moved* when Δ lies outside the reference's 95 % prediction
//! interval for the mean of n new seeds, |Δ| > t_{0.975, m−1} · s_ref · √(1/m + 1/n) (s_ref the reference's standard
//! deviation over seeds, ddof = 1; the Student-t quantile of [`crate::stats`], as `texplain compare` uses), or more
//! than [`MIN_TOLERANCE`] when that interval is narrower (accuracies of small groups move in steps of one image, and a
//! reference whose seeds agree exactly would flag any change). A reference with a single seed says nothing of the
//! spread: only [`MIN_TOLERANCE`] applies, and the verdict says so. Methods in one table only are named. The check
//! prints a verdict and leaves the exit status alone unless asked (`--strict`), so seed noise never fails a demo.
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::data::Split;
use crate::methods::table_order;
use crate::metrics::mean_std;
use crate::report::{read_results_csv, ResultRow};
use crate::stats::student_t_quantile;

/// The smallest difference ever flagged: 1 percentage point.
pub const MIN_TOLERANCE: f64 = 0.01;

/// Reads one metric of a row.
type Metric = fn(&ResultRow) -> f64;

/// The metrics checked, as (name in the verdict, accessor).
const METRICS: [(&str, Metric); 2] = [
    ("worst-group", |r| r.worst_group),
    ("average", |r| r.avg_train_weighted),
];

/// One (method, metric) of the check.
#[derive(Debug, Clone, PartialEq)]
pub struct Drift {
    pub method: String,
    pub metric: &'static str,
    /// Mean and std over seeds (fractions), and the number of seeds.
    pub run: (f64, f64, usize),
    pub reference: (f64, f64, usize),
    /// Run mean − reference mean.
    pub delta: f64,
    /// The largest |Δ| that is seed noise.
    pub tolerance: f64,
    pub moved: bool,
}

/// The whole check.
#[derive(Debug, Clone, PartialEq)]
pub struct ReferenceCheck {
    pub split: Split,
    pub drifts: Vec<Drift>,
    pub only_in_run: Vec<String>,
    pub only_in_reference: Vec<String>,
}

/// The largest |Δ| between a reference of `m` seeds with standard deviation `sd` and a mean of `n` new seeds that is
/// seed noise (see the module docs).
pub fn tolerance(sd: f64, m: usize, n: usize) -> f64 {
    if m < 2 || n == 0 || !sd.is_finite() {
        return MIN_TOLERANCE;
    }
    let t = student_t_quantile(0.975, (m - 1) as u32);
    (t * sd * (1.0 / m as f64 + 1.0 / n as f64).sqrt()).max(MIN_TOLERANCE)
}

/// Values of one metric per method over the rows of `split`.
fn by_method(rows: &[ResultRow], split: Split) -> BTreeMap<String, Vec<&ResultRow>> {
    let mut out: BTreeMap<String, Vec<&ResultRow>> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.split == split) {
        out.entry(row.method.clone()).or_default().push(row);
    }
    out
}

/// Compares `run` with `reference` on `split` (pure).
pub fn check(run: &[ResultRow], reference: &[ResultRow], split: Split) -> ReferenceCheck {
    let (ours, theirs) = (by_method(run, split), by_method(reference, split));
    let mut methods: Vec<&String> = ours.keys().filter(|m| theirs.contains_key(*m)).collect();
    methods.sort_by(|a, b| table_order(a, b));
    let mut drifts = Vec::new();
    for method in methods {
        for (metric, f) in METRICS {
            let values = |rows: &[&ResultRow]| -> (f64, f64, usize) {
                let xs: Vec<f64> = rows.iter().map(|r| f(r)).collect();
                let (mean, sd) = mean_std(&xs);
                (mean, sd, xs.len())
            };
            let (a, b) = (values(&ours[method]), values(&theirs[method]));
            let delta = a.0 - b.0;
            let tolerance = tolerance(b.1, b.2, a.2);
            // A NaN on one side only (an empty group) is a change too; NaN on both sides is none.
            let both_nan = a.0.is_nan() && b.0.is_nan();
            let within = delta.abs() <= tolerance;
            drifts.push(Drift {
                method: method.clone(),
                metric,
                run: a,
                reference: b,
                delta,
                tolerance,
                moved: !within && !both_nan,
            });
        }
    }
    let only = |a: &BTreeMap<String, Vec<&ResultRow>>, b: &BTreeMap<String, Vec<&ResultRow>>| {
        let mut only: Vec<String> = a.keys().filter(|m| !b.contains_key(*m)).cloned().collect();
        only.sort_by(|x, y| table_order(x, y));
        only
    };
    ReferenceCheck {
        split,
        only_in_run: only(&ours, &theirs),
        only_in_reference: only(&theirs, &ours),
        drifts,
    }
}

fn pct(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else {
        format!("{:.1}", 100.0 * x)
    }
}

fn pct_pm((mean, sd, _): (f64, f64, usize)) -> String {
    if sd.is_nan() {
        pct(mean)
    } else {
        format!("{} ± {:.1}", pct(mean), 100.0 * sd)
    }
}

impl ReferenceCheck {
    /// The metrics that moved.
    pub fn moved(&self) -> Vec<&Drift> {
        self.drifts.iter().filter(|d| d.moved).collect()
    }

    /// Whether the run matches the reference: nothing moved and no reference method is missing from the run.
    pub fn agrees(&self) -> bool {
        self.moved().is_empty() && self.only_in_reference.is_empty()
    }

    /// The verdict line alone.
    pub fn verdict(&self) -> String {
        let moved = self.moved();
        let mut line = if moved.is_empty() {
            format!(
                "Verdict: within seed noise of the reference ({} method x metric checked).",
                self.drifts.len()
            )
        } else {
            let list: Vec<String> = moved
                .iter()
                .map(|d| {
                    format!(
                        "{} {} {:+.1} pp (tolerance {:.1})",
                        d.method,
                        d.metric,
                        100.0 * d.delta,
                        100.0 * d.tolerance
                    )
                })
                .collect();
            format!(
                "Verdict: {} of {} moved beyond seed noise: {}.",
                moved.len(),
                self.drifts.len(),
                list.join("; ")
            )
        };
        if !self.only_in_reference.is_empty() {
            let _ = write!(
                line,
                " Missing from the run: {}.",
                self.only_in_reference.join(", ")
            );
        }
        if !self.only_in_run.is_empty() {
            let _ = write!(
                line,
                " Not in the reference: {}.",
                self.only_in_run.join(", ")
            );
        }
        if self.drifts.iter().any(|d| d.reference.2 < 2) {
            let _ = write!(
                line,
                " (A reference of one seed has no spread: only the {:.0} pp floor applies.)",
                100.0 * MIN_TOLERANCE
            );
        }
        line
    }

    /// The table of every (method, metric) and the verdict, in markdown.
    pub fn render(&self, run: &Path, reference: &Path) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "Reference check, split `{}`: {} against {}. Accuracy in %, mean ± std over seeds; a mean moved when \
             |Δ| exceeds the reference's 95 % prediction interval for a mean of the run's seeds, \
             t_{{0.975, m−1}} · sd_ref · √(1/m + 1/n), or {:.0} pp when that is narrower.",
            self.split,
            run.display(),
            reference.display(),
            100.0 * MIN_TOLERANCE
        );
        out.push('\n');
        let _ = writeln!(
            out,
            "| Method | Metric | Run | Seeds | Reference | Seeds | Δ (pp) | Tolerance (pp) | |"
        );
        let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---|");
        for d in &self.drifts {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {:+.1} | {:.1} | {} |",
                d.method,
                d.metric,
                pct_pm(d.run),
                d.run.2,
                pct_pm(d.reference),
                d.reference.2,
                100.0 * d.delta,
                100.0 * d.tolerance,
                if d.moved { "moved" } else { "ok" }
            );
        }
        out.push('\n');
        out.push_str(&self.verdict());
        out.push('\n');
        out
    }
}

/// What `texplain check-reference` compares (its flags, `src/cli/check_reference.rs`).
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The run directory (or its results.csv).
    pub run: PathBuf,
    /// The reference directory (or its results.csv); `None`: `results/reference/<the run directory's name>`.
    pub reference: Option<PathBuf>,
    /// Which split's rows to compare.
    pub split: Split,
    /// Fail when a metric moved, a reference method is missing from the run, or there is no reference.
    pub strict: bool,
}

/// `dir/results.csv` for a directory, the path itself for a file.
fn results_csv(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("results.csv")
    } else {
        path.to_path_buf()
    }
}

/// Runs `texplain check-reference`; prints the table and verdict.
pub fn run(args: &CheckOptions) -> Result<()> {
    let run_csv = results_csv(&args.run);
    let reference = match &args.reference {
        Some(path) => path.clone(),
        None => {
            let dir = if args.run.is_dir() {
                args.run.clone()
            } else {
                args.run.parent().map(Path::to_path_buf).unwrap_or_default()
            };
            let name = std::fs::canonicalize(&dir)
                .ok()
                .and_then(|d| d.file_name().map(|n| n.to_os_string()))
                .with_context(|| {
                    format!("{}: cannot name the run's reference", args.run.display())
                })?;
            PathBuf::from("results/reference").join(name)
        }
    };
    let reference_csv = results_csv(&reference);
    if !reference_csv.is_file() {
        let msg = format!(
            "no reference results at {}: nothing to compare {} with",
            reference_csv.display(),
            run_csv.display()
        );
        if args.strict {
            bail!(msg);
        }
        println!("{msg}");
        return Ok(());
    }
    let ours = read_results_csv(&run_csv)?;
    let theirs = read_results_csv(&reference_csv)?;
    let result = check(&ours, &theirs, args.split);
    if result.drifts.is_empty() {
        bail!(
            "{} and {} share no method with `{}` rows",
            run_csv.display(),
            reference_csv.display(),
            args.split
        );
    }
    print!("{}", result.render(&run_csv, &reference_csv));
    if args.strict && !result.agrees() {
        bail!(
            "{} differs from its reference {} (--strict)",
            run_csv.display(),
            reference_csv.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seed: u64, method: &str, worst: f64, avg: f64) -> ResultRow {
        ResultRow {
            seed,
            method: method.into(),
            split: Split::Test,
            group_acc: vec![avg, worst],
            worst_group: worst,
            avg_train_weighted: avg,
            avg_plain: avg,
            n: 100,
        }
    }

    #[test]
    fn tolerance_is_the_prediction_interval_with_a_floor() {
        // m = n = 3: t_{0.975, 2} = 4.302653, sqrt(2/3).
        let t = tolerance(0.02, 3, 3);
        assert!(
            (t - 4.302653 * 0.02 * (2.0f64 / 3.0).sqrt()).abs() < 1e-6,
            "{t}"
        );
        assert_eq!(tolerance(0.0, 3, 3), MIN_TOLERANCE);
        assert_eq!(tolerance(0.5, 1, 3), MIN_TOLERANCE, "one seed: no spread");
    }

    #[test]
    fn names_the_method_and_metric_that_moved() {
        let reference: Vec<ResultRow> = (0..3)
            .flat_map(|s| {
                let e = 0.01 * s as f64;
                [
                    row(s, "erm", 0.70 + e, 0.95),
                    row(s, "texplain", 0.80 + e, 0.96 - e / 2.0),
                    row(s, "oracle", 0.9, 0.9),
                ]
            })
            .collect();
        // ERM within noise (worst-group off by 0.5 pp, spread 1 pp), TExplain's worst group down 20 pp.
        let run: Vec<ResultRow> = (0..3)
            .flat_map(|s| {
                let e = 0.01 * s as f64;
                [
                    row(s, "erm", 0.705 + e, 0.95),
                    row(s, "texplain", 0.60 + e, 0.96 - e / 2.0),
                    row(s, "jtt", 0.5, 0.5),
                ]
            })
            .collect();
        let result = check(&run, &reference, Split::Test);
        let moved: Vec<(&str, &str)> = result
            .moved()
            .iter()
            .map(|d| (d.method.as_str(), d.metric))
            .collect();
        assert_eq!(moved, [("texplain", "worst-group")]);
        assert_eq!(result.only_in_reference, ["oracle"]);
        assert_eq!(result.only_in_run, ["jtt"]);
        assert!(!result.agrees());
        let verdict = result.verdict();
        assert!(
            verdict.contains("1 of 4 moved")
                && verdict.contains("texplain worst-group -20.0 pp")
                && verdict.contains("Missing from the run: oracle"),
            "{verdict}"
        );
        // Identical tables agree.
        let same = check(&reference, &reference, Split::Test);
        assert!(same.agrees() && same.verdict().contains("within seed noise"));
    }
}
