//! `texplain report RUN_DIR`: rebuild a run directory's `report.html` from what the run left on disk
//! ([`crate::pipeline::report_html`]); works on a finished, failed or interrupted run.
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The run directory (results/<name>).
    pub run_dir: PathBuf,
}

/// Writes `<RUN_DIR>/report.html` and prints its path.
pub fn run(args: ReportArgs) -> Result<()> {
    anyhow::ensure!(
        args.run_dir.is_dir(),
        "{}: not a run directory",
        args.run_dir.display()
    );
    let path = crate::pipeline::report_html::write(&args.run_dir)?;
    println!("{}", path.display());
    Ok(())
}
