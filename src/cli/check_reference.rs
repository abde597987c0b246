//! `texplain check-reference`: compare a run's results with the committed reference of its experiment
//! ([`crate::reference`]).
use anyhow::Result;
use std::path::PathBuf;

use crate::data::Split;
use crate::reference::CheckOptions;

#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The run directory (or its results.csv).
    pub run: PathBuf,
    /// The reference directory (or its results.csv); default `results/reference/<the run directory's name>`.
    pub reference: Option<PathBuf>,
    /// Which split's rows to compare.
    #[arg(long, default_value = "test")]
    pub split: Split,
    /// Exit with an error when a metric moved, a reference method is missing from the run, or there is no
    /// reference (default: print the verdict and succeed).
    #[arg(long)]
    pub strict: bool,
}

pub fn run(args: CheckArgs) -> Result<()> {
    let CheckArgs {
        run,
        reference,
        split,
        strict,
    } = args;
    crate::reference::run(&CheckOptions {
        run,
        reference,
        split,
        strict,
    })
}
