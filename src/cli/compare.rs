//! `texplain compare`: aggregate results over seeds and runs and compare with a baseline method
//! ([`crate::report::compare_with`]).
use anyhow::Result;
use clap::builder::PossibleValue;
use clap::ValueEnum;
use std::io::Write as _;
use std::path::PathBuf;

use crate::data::Split;
use crate::report::html::{compare_page, write_page};
use crate::report::{compare_with, read_runs, CompareFormat, Interval};

#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// results.csv files, or run directories that contain one; a run is named by its directory.
    #[arg(required = true, num_args = 1..)]
    pub inputs: Vec<PathBuf>,
    /// Baseline method, compared within each run (`erm`), or one fixed run's method (`RUN/METHOD`).
    #[arg(long, default_value = "erm")]
    pub baseline: String,
    /// Which split's rows to aggregate.
    #[arg(long, default_value = "test")]
    pub split: Split,
    /// Output format.
    #[arg(long, value_enum, default_value = "md")]
    pub format: CompareFormat,
    /// 95 % interval of the mean paired difference: Student-t, or a percentile bootstrap.
    #[arg(long, value_enum, default_value = "t")]
    pub interval: IntervalKind,
    /// Bootstrap resamples (with `--interval bootstrap`).
    #[arg(long, default_value_t = 10_000)]
    pub resamples: usize,
    /// Seed of the bootstrap resampling (with `--interval bootstrap`).
    #[arg(long, default_value_t = 0)]
    pub bootstrap_seed: u64,
    /// Also write a self-contained HTML page here: the accuracy plot of every run and method (a dot per seed, the
    /// mean, the paired 95 % interval against the run's ERM) beside the markdown table.
    #[arg(long, value_name = "OUT")]
    pub html: Option<PathBuf>,
}

/// Which interval `--interval` asks for; [`CompareArgs::interval`] adds the bootstrap's resamples and seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IntervalKind {
    /// Student-t: mean ± t_{0.975, n−1} · sd / √n.
    #[value(name = "t")]
    T,
    /// Percentile bootstrap of the mean (seeded).
    #[value(name = "bootstrap")]
    Bootstrap,
}

impl ValueEnum for CompareFormat {
    fn value_variants<'a>() -> &'a [Self] {
        &[CompareFormat::Markdown, CompareFormat::Csv]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(match self {
            CompareFormat::Markdown => "md",
            CompareFormat::Csv => "csv",
        }))
    }
}

impl CompareArgs {
    /// The interval the flags ask for.
    pub fn interval(&self) -> Interval {
        match self.interval {
            IntervalKind::T => Interval::T,
            IntervalKind::Bootstrap => Interval::Bootstrap {
                resamples: self.resamples,
                seed: self.bootstrap_seed,
            },
        }
    }
}

/// Runs `texplain compare`, writing the table to stdout.
pub fn run(args: CompareArgs) -> Result<()> {
    let text = compare_with(
        &args.inputs,
        &args.baseline,
        args.split,
        args.format,
        args.interval(),
    )?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    if let Some(out) = &args.html {
        let table = if args.format == CompareFormat::Markdown {
            text
        } else {
            compare_with(
                &args.inputs,
                &args.baseline,
                args.split,
                CompareFormat::Markdown,
                args.interval(),
            )?
        };
        let runs = read_runs(&args.inputs)?;
        write_page(out, &compare_page(&runs, args.split, &table)?)?;
        eprintln!("report: {}", out.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: CompareArgs,
    }

    #[test]
    fn compare_args_parse() {
        let cli = Cli::try_parse_from(["compare", "runs/a", "runs/b/results.csv"]).unwrap();
        assert_eq!(cli.args.inputs.len(), 2);
        assert_eq!(
            (
                cli.args.baseline.as_str(),
                cli.args.split.name(),
                cli.args.format
            ),
            ("erm", "test", CompareFormat::Markdown)
        );
        let cli = Cli::try_parse_from([
            "compare",
            "r",
            "--baseline",
            "r/random",
            "--split",
            "val",
            "--format",
            "csv",
        ])
        .unwrap();
        assert_eq!(
            (
                cli.args.baseline.as_str(),
                cli.args.split.name(),
                cli.args.format
            ),
            ("r/random", "val", CompareFormat::Csv)
        );
        assert_eq!(cli.args.interval(), Interval::T);
        assert_eq!(cli.args.html, None);
        let cli = Cli::try_parse_from(["compare", "a", "b", "--html", "out/cmp.html"]).unwrap();
        assert_eq!(cli.args.html, Some(PathBuf::from("out/cmp.html")));
        let cli = Cli::try_parse_from([
            "compare",
            "r",
            "--interval",
            "bootstrap",
            "--resamples",
            "500",
            "--bootstrap-seed",
            "3",
        ])
        .unwrap();
        assert_eq!(
            cli.args.interval(),
            Interval::Bootstrap {
                resamples: 500,
                seed: 3
            }
        );
        assert!(Cli::try_parse_from(["compare"]).is_err());
        assert!(Cli::try_parse_from(["compare", "r", "--format", "xlsx"]).is_err());
        assert!(Cli::try_parse_from(["compare", "r", "--interval", "normal"]).is_err());
    }
}
