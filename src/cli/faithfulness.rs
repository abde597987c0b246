//! `texplain faithfulness`: the word-share tables of a finished run ([`crate::pipeline::faithfulness`]).
use anyhow::Result;
use std::path::PathBuf;

use crate::data::Split;
use crate::pipeline::faithfulness::{command, FaithfulnessOptions};

#[derive(clap::Args, Debug)]
pub struct FaithfulnessArgs {
    /// A run directory written by `texplain run` with an explain stage.
    pub run_dir: PathBuf,
    /// The seed whose explanations are read (default: every seed of the run).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Splits to tabulate (default: test; `train,test` for both).
    #[arg(long, value_delimiter = ',', default_value = "test")]
    pub splits: Vec<Split>,
}

pub fn run(args: FaithfulnessArgs) -> Result<()> {
    let FaithfulnessArgs {
        run_dir,
        seed,
        splits,
    } = args;
    command(&FaithfulnessOptions {
        run_dir,
        seed,
        splits,
    })
}
