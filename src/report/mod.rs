//! Results rows, the Table-1 markdown layout and cross-run comparison (paper section 4.3, Table 1).
//!
//! * [`results`]: [`ResultRow`] is one (seed, method, split) evaluation; a run writes them all to `results.csv`
//!   with the columns `seed,method,split,acc_g0..acc_g{G-1},worst_group,avg_train_weighted,avg_plain,n` (G follows
//!   the data; the reader accepts any G). Accuracies are fractions in [0, 1]; an empty group is written as `NaN`.
//! * [`table`]: [`table_md`] renders the paper's Table 1: one line per method, `mean ± std` over seeds (ddof = 1,
//!   see [`crate::metrics::mean_std`]) in percent with one decimal, the paper's numbers beside ours when given.
//! * [`compare`](mod@compare): [`compare()`] aggregates several runs (a run is named by its directory) and
//!   reports differences to a baseline method, both as a difference of means and, where seeds match, as mean ± std
//!   of the paired per-seed differences with a 95 % interval of their mean ([`Interval`]: Student-t by default, or
//!   a seeded percentile bootstrap; see [`crate::stats`]). One shared seed gives no interval.
//!
//! * [`html`]: the parts of `report.html` (escaping, `table.md`'s tables as HTML, the page) and its plots
//!   (`plotters`, SVG backend), the accuracy plot shared with `texplain compare --html`.
//!
//! Imports flow results <- table <- compare <- html.
use std::path::PathBuf;

pub mod compare;
pub mod html;
pub mod results;
pub mod table;

pub use compare::{
    compare, compare_with, paired_differences_md, read_runs, CompareFormat, Interval, PAIRED_ARMS,
};
pub use results::{
    parse_results_csv, read_results_csv, results_to_csv, write_results_csv, ResultRow,
};
pub use table::{
    fmt_pct_pm, group_label_note, method_label, table_md, PaperEntry, PaperTable, GROUP_LABEL_MARK,
};

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

/// Rows the tests of every part share.
#[cfg(test)]
mod testing {
    use super::ResultRow;

    pub fn row(
        seed: u64,
        method: &str,
        split: &str,
        g: [f64; 4],
        w: f64,
        a: f64,
        p: f64,
    ) -> ResultRow {
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
    pub fn sample_rows() -> Vec<ResultRow> {
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
}
