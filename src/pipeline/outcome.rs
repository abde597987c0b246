//! What a method's stage hands to the report (paper Table 1): a finished stage folder whose `results.csv` holds the
//! method's val and test rows. The baselines' stages (`masktune`, `jtt`, `dfr`, `groupdro`) return it.
use anyhow::Result;

use super::stage::StageDone;
use crate::report::{self, ResultRow};

/// A finished method stage.
pub struct MethodResults {
    pub done: StageDone,
}

impl MethodResults {
    /// Its val and test rows.
    pub fn results(&self) -> Result<Vec<ResultRow>> {
        Ok(report::read_results_csv(
            &self.done.dir.join("results.csv"),
        )?)
    }
}
