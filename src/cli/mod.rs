//! The `texplain` command line: every clap derive of the crate lives under this module, one file per subcommand
//! (the layout of ripgrep's `crates/core/flags/`). Each file parses its flags and builds the plain parameters of
//! the library function that does the work; the layers below never import clap. `src/main.rs` calls [`main`],
//! which prints errors as a chain.
use anyhow::Result;
use clap::{Parser, Subcommand};
use std::sync::LazyLock;

mod bench;
mod check_reference;
mod compare;
mod config;
mod data;
mod emit;
mod explain;
mod faithfulness;
mod masks_eval;
mod plan;
mod report;
mod run;
mod run_plan;

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
    /// Run an experiment config end to end (resumes finished stages), or one unit of its plan (--unit, --wave).
    Run(run::RunCommand),
    /// Write the run's work units (plan/plan.json, plan/wave-<k>.txt) and print its waves; computes nothing.
    Plan(plan::PlanArgs),
    /// Run the plan's units on this machine with N worker processes (texplain run --unit each).
    RunPlan(run_plan::RunPlanArgs),
    /// Write a planned run's waves as Slurm job arrays or Kubernetes Indexed Jobs, with a submit.sh.
    #[command(subcommand)]
    Emit(emit::EmitCommand),
    /// Pretrain the config's classifier on its upstream corpus (the `pretrain` stage of `texplain run`, alone).
    Pretrain(run::RunArgs),
    /// Print the resolved config (base files merged, overrides applied, defaults filled in).
    Config(config::ConfigArgs),
    /// Generate or inspect datasets.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Aggregate results.csv files across seeds and runs.
    Compare(compare::CompareArgs),
    /// Rebuild a run directory's report.html (tables, plots, masks, explanations, curves) from its files.
    Report(report::ReportArgs),
    /// Check a run's results against the committed reference of its experiment (results/reference/<name>/):
    /// which method and metric moved beyond seed noise.
    CheckReference(check_reference::CheckArgs),
    /// Print a run's dominant words per class and split, or explain new images (with word clouds).
    Explain(explain::ExplainArgs),
    /// Measure training and sampling throughput on random weights (compare with scripts/bench_reference.py).
    Bench(bench::BenchArgs),
    /// Faithfulness tables of a finished run: share of sentences with water/land (or apple) words per class
    /// and attribute (paper 4.1 and 5.8).
    Faithfulness(faithfulness::FaithfulnessArgs),
    /// Score relevance methods and thresholds against the true bird masks on a held-out split of a finished run
    /// (val by default): which `mitigation.masks` finds the spurious region.
    MasksEval(masks_eval::MasksEvalArgs),
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
        Command::Run(cmd) => run::run(cmd),
        Command::Plan(args) => plan::run(args),
        Command::RunPlan(args) => run_plan::run(args),
        Command::Emit(cmd) => emit::run(cmd),
        Command::Pretrain(args) => crate::pipeline::pretrain::command(&args.experiment()?),
        Command::Config(args) => config::run(args),
        Command::Data(cmd) => data::run(cmd),
        Command::Compare(args) => compare::run(args),
        Command::Report(args) => report::run(args),
        Command::CheckReference(args) => check_reference::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Faithfulness(args) => faithfulness::run(args),
        Command::MasksEval(args) => masks_eval::run(args),
    }
}
