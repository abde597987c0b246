//! `texplain config`: print the resolved config.
use anyhow::Result;
use std::path::PathBuf;

use crate::config::Experiment;

#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    config: PathBuf,
    /// Override a config value: path.to.key=value (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

pub fn run(args: ConfigArgs) -> Result<()> {
    print!(
        "{}",
        Experiment::load(&args.config, &args.sets)?.resolved_yaml()?
    );
    Ok(())
}
