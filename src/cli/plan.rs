//! `texplain plan`: writes the run's work units (`plan/plan.json`, `plan/wave-<k>.txt`) and prints the waves (a
//! dry run: nothing is computed).
use anyhow::Result;

use super::run::RunArgs;
use crate::pipeline::plan;

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub args: RunArgs,
    /// Split each seed's explain stage into N shard units (`seed-<s>/explain#<i>of<N>`) that the explain unit
    /// merges; the sentences are the same bytes for every N.
    #[arg(long, default_value_t = 1)]
    pub explain_shards: usize,
}

pub fn run(cmd: PlanArgs) -> Result<()> {
    let exp = cmd.args.experiment()?;
    let record = plan::prepare(&exp, cmd.explain_shards)?;
    print!("{}", plan::summary(&record));
    println!("plan: {}", plan::dir(&exp.out_dir).display());
    Ok(())
}
