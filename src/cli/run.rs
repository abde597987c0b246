//! `texplain run` and `texplain pretrain`: an experiment config and its command-line overrides.
use anyhow::Result;
use std::path::PathBuf;

use crate::config::Experiment;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    pub config: PathBuf,
    /// Override a config value: path.to.key=value (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Seeds to run, e.g. 0,1,2 (overrides the config's `seeds`).
    #[arg(long, value_delimiter = ',')]
    pub seeds: Option<Vec<u64>>,
    /// Output folder (overrides the config's `out_dir`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N (overrides the config's `device`).
    #[arg(long)]
    pub device: Option<String>,
}

impl RunArgs {
    /// The config with the command-line overrides applied, as `--set`s so they are validated the same way.
    pub fn experiment(&self) -> Result<Experiment> {
        let mut sets = self.sets.clone();
        if let Some(seeds) = &self.seeds {
            let list: Vec<String> = seeds.iter().map(u64::to_string).collect();
            sets.push(format!("seeds=[{}]", list.join(",")));
        }
        if let Some(out) = &self.out {
            sets.push(format!("out_dir={}", serde_yaml::to_string(out)?.trim()));
        }
        if let Some(device) = &self.device {
            sets.push(format!("device={device}"));
        }
        Experiment::load(&self.config, &sets)
    }
}
