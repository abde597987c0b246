//! The report step of `texplain run` (paper Table 1): every (seed, method, split) row of the run's stages into
//! `results.csv`, and into `table.md` the Table-1 layout of the test rows (mean ± std over seeds, the paper's
//! numbers beside), followed by what explains them: the regime check (linear probes on frozen features) and the
//! flags' rate and precision/recall. Always rewritten from the stages' own outputs, so it is never stale.
use anyhow::Result;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::regime::{Features, RegimeSummary};
use crate::config::Experiment;
use crate::data::Split;
use crate::flags::FlagSummary;
use crate::metrics::mean_std;
use crate::report::{self, fmt_pct_pm, ResultRow};
use crate::util::write_atomic;

/// Everything a run's report is made of.
#[derive(Default)]
pub struct Outputs {
    pub rows: Vec<ResultRow>,
    pub regime: Vec<RegimeSummary>,
    pub flags: Vec<FlagSummary>,
}

/// `mean ± std` (percent) of the values `f` picks, skipping NaN; `–` without any.
fn pct(values: impl Iterator<Item = f64>) -> String {
    let v: Vec<f64> = values.filter(|x| !x.is_nan()).collect();
    let (m, s) = mean_std(&v);
    fmt_pct_pm(m, s)
}

/// The regime table: one line per feature source.
pub fn regime_md(summaries: &[RegimeSummary]) -> String {
    let mut by: BTreeMap<Features, Vec<_>> = BTreeMap::new();
    for s in summaries {
        for p in &s.probes {
            by.entry(p.features).or_default().push(p);
        }
    }
    let mut out = String::from(
        "Regime check: linear probes on frozen features (fitted on group-balanced val as DFR does, scored on \
         test, %).\n\n| Features | Seeds | Worst-group | Average (train-weighted) | Plain |\n|---|---:|---:|---:|---:|\n",
    );
    for (features, probes) in by {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            features.name(),
            probes.len(),
            pct(probes.iter().map(|p| p.worst_group)),
            pct(probes.iter().map(|p| p.avg_train_weighted)),
            pct(probes.iter().map(|p| p.avg_plain)),
        );
    }
    out
}

/// The flags table: how many training samples are flagged and how well they find the minority groups.
pub fn flags_md(flags: &[FlagSummary]) -> String {
    let mut out = String::from(
        "Flags: training samples whose top word is not a class word (%, mean ± std over seeds; minority = groups \
         1 and 2).\n\n| Seeds | Flagged | Minority precision | Minority recall | ERM-error precision | ERM-error recall |\n\
         |---:|---:|---:|---:|---:|---:|\n",
    );
    let opt = |f: fn(&FlagSummary) -> Option<f64>| {
        pct(flags.iter().map(move |s| f(s).unwrap_or(f64::NAN)))
    };
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} |",
        flags.len(),
        pct(flags.iter().map(|s| s.flagged_fraction)),
        opt(|s| s.minority_precision),
        opt(|s| s.minority_recall),
        opt(|s| s.erm_error_precision),
        opt(|s| s.erm_error_recall),
    );
    out
}

/// Writes `results.csv` and `table.md` into the run directory and returns the table.
pub fn run(exp: &Experiment, outputs: &Outputs) -> Result<String> {
    let out = &exp.out_dir;
    report::write_results_csv(&out.join("results.csv"), &outputs.rows)?;
    let mut table = report::table_md(&outputs.rows, Split::Test, exp.config.report.paper.as_ref());
    if !outputs.regime.is_empty() {
        table.push('\n');
        table.push_str(&regime_md(&outputs.regime));
    }
    if !outputs.flags.is_empty() {
        table.push('\n');
        table.push_str(&flags_md(&outputs.flags));
    }
    write_atomic(&out.join("table.md"), &table)?;
    Ok(table)
}
