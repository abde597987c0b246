//! `texplain run` and `texplain pretrain`: an experiment config and its command-line overrides.
use anyhow::{bail, Context, Result};
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

/// `texplain run`: the whole run, or one unit of its plan (`texplain plan`).
#[derive(clap::Args, Debug)]
pub struct RunCommand {
    #[command(flatten)]
    pub args: RunArgs,
    /// Run only this unit of the plan (e.g. seed-3/explain), reusing the finished units it reads.
    #[arg(long, conflicts_with = "wave")]
    pub unit: Option<String>,
    /// Run the unit at line --index of plan/wave-<K>.txt (a scheduler's array task).
    #[arg(long)]
    pub wave: Option<usize>,
    /// The line of the wave's unit list (default: SLURM_ARRAY_TASK_ID, else JOB_COMPLETION_INDEX).
    #[arg(long, requires = "wave")]
    pub index: Option<usize>,
}

/// The array index of a scheduler's task: `SLURM_ARRAY_TASK_ID` (Slurm job arrays), else `JOB_COMPLETION_INDEX`
/// (Kubernetes Indexed Jobs).
fn array_index() -> Result<usize> {
    for var in ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"] {
        if let Ok(value) = std::env::var(var) {
            return value
                .trim()
                .parse()
                .with_context(|| format!("{var}={value}: not an array index"));
        }
    }
    bail!("--wave needs --index, SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX")
}

pub fn run(cmd: RunCommand) -> Result<()> {
    let exp = cmd.args.experiment()?;
    let unit = match (cmd.unit, cmd.wave) {
        (Some(unit), _) => unit,
        (None, Some(wave)) => {
            let index = match cmd.index {
                Some(i) => i,
                None => array_index()?,
            };
            crate::pipeline::plan::read_wave(&exp.out_dir, wave, index)?
        }
        (None, None) => return crate::pipeline::run(&exp),
    };
    crate::pipeline::run_unit(&exp, &unit)
}
