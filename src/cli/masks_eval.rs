//! `texplain masks-eval`: relevance methods and thresholds against the true bird masks on a held-out split
//! ([`crate::pipeline::masks_eval`]).
use anyhow::Result;
use std::path::PathBuf;

use crate::data::Split;
use crate::pipeline::masks_eval::{command, MasksEvalOptions};

#[derive(clap::Args, Debug)]
pub struct MasksEvalArgs {
    /// A run directory written by `texplain run` (its erm, translator and lm stages finished).
    pub run_dir: PathBuf,
    /// The seed whose models explain and are explained (default: the run's first seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The split whose images are explained and mapped.
    #[arg(long, default_value = "val")]
    pub split: Split,
    /// A relevance method as YAML, e.g. '{method: gradcam, layer: 1}' or '{method: rollout, contrastive: true}'
    /// (repeatable). Default: GradCAM at every layer up to the translator's, rollout (CLS and token readout) and
    /// occlusion, each also contrastive.
    #[arg(long = "relevance", value_name = "YAML")]
    pub relevance: Vec<String>,
    /// A threshold rule as YAML, e.g. '{rule: top_k, percent: 50}' (repeatable). Default: the run's rule,
    /// mean_std k = 0 and 1, top_k 30, 50 and 70 %, otsu.
    #[arg(long = "threshold", value_name = "YAML")]
    pub thresholds: Vec<String>,
    /// Leave occlusion (the slow reference) out of the default methods.
    #[arg(long)]
    pub no_occlusion: bool,
    /// Explain at most this many images of the split (evenly spaced over it).
    #[arg(long)]
    pub max_images: Option<usize>,
}

pub fn run(args: MasksEvalArgs) -> Result<()> {
    let MasksEvalArgs {
        run_dir,
        seed,
        split,
        relevance,
        thresholds,
        no_occlusion,
        max_images,
    } = args;
    command(&MasksEvalOptions {
        run_dir,
        seed,
        split,
        relevance,
        thresholds,
        no_occlusion,
        max_images,
    })
}
