//! The report step of `texplain run` (paper Table 1): every (seed, method, split) row of the run's stages into
//! `results.csv`, and the Table-1 layout of the test rows, mean ± std over seeds with the paper's numbers beside,
//! into `table.md`. Always rewritten from the stages' own `results.csv`, so it is never stale.
use anyhow::Result;
use std::path::Path;

use crate::config::Experiment;
use crate::data::Split;
use crate::report::{self, ResultRow};
use crate::util::write_atomic;

/// Writes `results.csv` and `table.md` into the run directory and returns the table.
pub fn run(exp: &Experiment, rows: &[ResultRow]) -> Result<String> {
    let out: &Path = &exp.out_dir;
    report::write_results_csv(&out.join("results.csv"), rows)?;
    let table = report::table_md(rows, Split::Test, exp.config.report.paper.as_ref());
    write_atomic(&out.join("table.md"), &table)?;
    Ok(table)
}
