//! `texplain run-plan`: runs a config's plan on this machine with N worker processes (`texplain run --unit`), each
//! with its own thread count ([`crate::pipeline::executor`]).
use anyhow::{Context, Result};
use std::process::Command;

use super::run::RunArgs;
use crate::pipeline::{executor, plan};

#[derive(clap::Args, Debug)]
pub struct RunPlanArgs {
    #[command(flatten)]
    pub args: RunArgs,
    /// Worker processes at once.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Threads of each worker (overrides the config's `threads`).
    #[arg(long)]
    pub threads: Option<i32>,
    /// Shards of each seed's explain stage (as `texplain plan --explain-shards`).
    #[arg(long, default_value_t = 1)]
    pub explain_shards: usize,
}

pub fn run(cmd: RunPlanArgs) -> Result<()> {
    let exp = cmd.args.experiment()?;
    exp.preflight()?;
    let record = plan::prepare(&exp, cmd.explain_shards)?;
    print!("{}", plan::summary(&record));
    let exe = std::env::current_exe().context("finding the texplain binary")?;
    let a = &cmd.args;
    let worker = |unit: &str| {
        let mut c = Command::new(&exe);
        c.arg("run").arg(&a.config);
        for set in &a.sets {
            c.arg("--set").arg(set);
        }
        if let Some(threads) = cmd.threads {
            c.arg("--set").arg(format!("threads={threads}"));
        }
        if let Some(seeds) = &a.seeds {
            let list: Vec<String> = seeds.iter().map(u64::to_string).collect();
            c.arg("--seeds").arg(list.join(","));
        }
        if let Some(device) = &a.device {
            c.arg("--device").arg(device);
        }
        c.arg("--out").arg(&exp.out_dir).arg("--unit").arg(unit);
        c
    };
    let units = plan::units(&exp, record.explain_shards);
    let done = executor::run(&units, cmd.jobs, worker)?;
    println!("{} unit(s) finished", done.len());
    Ok(())
}
