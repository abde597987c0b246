//! `texplain plan`: writes the run's work units (`plan/plan.json`, `plan/wave-<k>.txt`) and prints the waves (a
//! dry run: nothing is computed).
use anyhow::Result;

use super::run::RunArgs;
use crate::pipeline::plan;

pub fn run(args: RunArgs) -> Result<()> {
    let exp = args.experiment()?;
    let record = plan::record(&exp);
    plan::write(&exp.out_dir, &record)?;
    crate::util::write_atomic(
        &exp.out_dir.join("config.resolved.yaml"),
        exp.resolved_yaml()?,
    )?;
    print!("{}", plan::summary(&record));
    println!("plan: {}", plan::dir(&exp.out_dir).display());
    Ok(())
}
