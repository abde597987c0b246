//! `texplain plan`: writes the run's work units (`plan/plan.json`, `plan/wave-<k>.txt`) and prints the waves (a
//! dry run: nothing is computed).
use anyhow::Result;

use super::run::RunArgs;
use crate::pipeline::plan;

pub fn run(args: RunArgs) -> Result<()> {
    let exp = args.experiment()?;
    let record = plan::prepare(&exp)?;
    print!("{}", plan::summary(&record));
    println!("plan: {}", plan::dir(&exp.out_dir).display());
    Ok(())
}
