//! `texplain explain`: a run's dominant words, or new images explained ([`crate::pipeline::explain::command`]).
use anyhow::Result;
use std::path::PathBuf;

use crate::data::Split;
use crate::pipeline::explain::{command, ExplainOptions};

#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// A run directory written by `texplain run`.
    pub run_dir: PathBuf,
    /// Explain these image files instead of printing the run's words (repeatable).
    #[arg(long = "image")]
    pub images: Vec<PathBuf>,
    /// Only this split (train or test).
    #[arg(long)]
    pub split: Option<Split>,
    /// Only this class (its name in the run: landbird or waterbird, dog or cat).
    #[arg(long)]
    pub class: Option<String>,
    /// The seed whose models explain (default: the run's first seed).
    #[arg(long)]
    pub seed: Option<u64>,
}

pub fn run(args: ExplainArgs) -> Result<()> {
    let ExplainArgs {
        run_dir,
        images,
        split,
        class,
        seed,
    } = args;
    command(&ExplainOptions {
        run_dir,
        images,
        split,
        class,
        seed,
    })
}
