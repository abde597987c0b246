//! `texplain faithfulness`: the word-share tables of [`crate::faithfulness`] (paper 4.1 and 5.8) for a finished
//! run, read from its explain stages and its dataset's `metadata.csv`.
use anyhow::{Context, Result};
use std::path::PathBuf;

use super::explain::Explained;
use crate::config::Experiment;
use crate::data::words::{attr_names, word_sets};
use crate::data::Split;
use crate::faithfulness::{markdown, share_table, Labels};

/// `texplain faithfulness`: word-share tables of a finished run. Its flags: `src/cli/faithfulness.rs`.
#[derive(Debug, Clone)]
pub struct FaithfulnessOptions {
    /// A run directory written by `texplain run` with an explain stage.
    pub run_dir: PathBuf,
    /// The seed whose explanations are read (`None`: every seed of the run).
    pub seed: Option<u64>,
    /// Splits to tabulate.
    pub splits: Vec<Split>,
}

/// The markdown tables for a run (one per seed).
pub fn tables(args: &FaithfulnessOptions) -> Result<String> {
    let config = args.run_dir.join("config.resolved.yaml");
    let exp = Experiment::load(&config, &[])
        .with_context(|| format!("{} is not a run directory", args.run_dir.display()))?;
    let data = &exp.config.data;
    let root = match data.variant {
        Some(v) => data.root.join("variants").join(v.name()),
        None => data.root.clone(),
    };
    let meta =
        crate::data::waterbirds::read_metadata(&root.join("metadata.csv"), data.kind.attr_column())
            .with_context(|| format!("reading the run's dataset {}", root.display()))?;
    let labels: Labels = meta.iter().map(|r| (r.img_id, (r.y, r.place))).collect();
    let sets = word_sets(data.kind);
    let seeds = match args.seed {
        Some(s) => vec![s],
        None => exp.config.seeds.clone(),
    };
    let mut out = String::new();
    for seed in seeds {
        let explained = Explained::in_seed_dir(&args.run_dir.join(format!("seed-{seed}")));
        let mut rows = Vec::new();
        for &split in &args.splits {
            rows.extend(share_table(
                split.name(),
                &explained.sentences(split)?,
                &labels,
                &sets,
                data.kind.class_names(),
                attr_names(data.kind),
            )?);
        }
        out.push_str(&format!(
            "Seed {seed}: share of sentences mentioning each word set\n\n{}\n",
            markdown(&rows, &sets)
        ));
    }
    Ok(out)
}

pub fn command(args: &FaithfulnessOptions) -> Result<()> {
    use std::io::Write;
    let out = tables(args)?;
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}
