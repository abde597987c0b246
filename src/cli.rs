//! The `texplain` command line (clap derive). `src/main.rs` calls [`main`], which prints errors as a chain.
use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::LazyLock;

use crate::config::Experiment;

/// `texplain --version`: the crate, tch and libtorch versions, and whether libtorch sees CUDA.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} (tch {}, libtorch {}, CUDA {})",
        env!("CARGO_PKG_VERSION"),
        crate::pipeline::stage::TCH_VERSION,
        crate::pipeline::stage::libtorch_version(),
        if tch::Cuda::is_available() {
            format!("available, {} device(s)", tch::Cuda::device_count())
        } else {
            "not available".to_string()
        }
    )
});

#[derive(Parser, Debug)]
#[command(name = "texplain", version = VERSION.as_str(), about = "Explain a frozen image classifier in words and mitigate its spurious correlations (TExplain).")]
pub struct Cli {
    /// More logging (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run an experiment config end to end (resumes finished stages).
    Run(RunArgs),
    /// Pretrain the config's classifier on its upstream corpus (the `pretrain` stage of `texplain run`, alone).
    Pretrain(RunArgs),
    /// Print the resolved config (base files merged, overrides applied, defaults filled in).
    Config {
        config: PathBuf,
        /// Override a config value: path.to.key=value (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// Generate or inspect datasets.
    #[command(subcommand)]
    Data(crate::data::cli::DataCommand),
    /// Aggregate results.csv files across seeds and runs.
    Compare(crate::report::CompareArgs),
    /// Check a run's results against the committed reference of its experiment (results/reference/<name>/):
    /// which method and metric moved beyond seed noise.
    CheckReference(crate::reference::CheckArgs),
    /// Print a run's dominant words per class and split, or explain new images (with word clouds).
    Explain(crate::pipeline::explain::ExplainArgs),
    /// Measure training and sampling throughput on random weights (compare with scripts/bench_reference.py).
    Bench(crate::bench::BenchArgs),
    /// Faithfulness tables of a finished run: share of sentences with water/land (or apple) words per class
    /// and attribute (paper 4.1 and 5.8).
    Faithfulness(crate::pipeline::faithfulness::FaithfulnessArgs),
}

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

/// Colour log lines only when stderr is a terminal, and never with `NO_COLOR` set to a non-empty value
/// (no-color.org): a log file or a pipe gets plain text.
fn log_colours() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "texplain=info",
        1 => "texplain=debug",
        _ => "texplain=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(log_colours())
        .try_init();
}

pub fn main() -> Result<()> {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    match cli.command {
        Command::Run(args) => crate::pipeline::run(&args.experiment()?),
        Command::Pretrain(args) => crate::pipeline::pretrain::command(&args.experiment()?),
        Command::Config { config, sets } => {
            print!("{}", Experiment::load(&config, &sets)?.resolved_yaml()?);
            Ok(())
        }
        Command::Data(cmd) => crate::data::cli::run(cmd),
        Command::Compare(args) => crate::report::run_compare(&args),
        Command::CheckReference(args) => crate::reference::run(&args),
        Command::Explain(args) => crate::pipeline::explain::command(&args),
        Command::Bench(args) => crate::bench::run(&args),
        Command::Faithfulness(args) => crate::pipeline::faithfulness::command(&args),
    }
}
