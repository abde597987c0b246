//! `texplain bench`: training and sampling throughput on random weights ([`crate::bench`]). The library's enums
//! get their flag spellings here, as [`ValueEnum`] implementations.
use anyhow::Result;
use clap::builder::PossibleValue;
use clap::ValueEnum;
use std::path::PathBuf;

use crate::bench::{BenchOptions, LmPreset, Preset, What};
use crate::precision::Precision;

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Which benchmark to run.
    #[arg(long, value_enum, default_value = "all")]
    pub what: What,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Intra-op threads (libtorch's default when unset).
    #[arg(long)]
    pub threads: Option<i32>,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// Untimed repetitions first.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Also write the figures as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Seed for weights, inputs and sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// ViT shape for vit-train.
    #[arg(long, value_enum, default_value = "tiny")]
    pub vit_preset: Preset,
    /// Images per training step (default 64 tiny, 32 base).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Peak dense TFLOP/s of the device at the benchmark's precision (H100 SXM: 67 fp32, 989 bf16), to report
    /// model FLOP utilisation.
    #[arg(long)]
    pub peak_tflops: Option<f64>,
    /// Compute precision: f32, or bf16 mixed precision (bf16 matrix products, f32 master weights).
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: Precision,
    /// Language-model shape for sampling.
    #[arg(long, value_enum, default_value = "tiny")]
    pub lm_preset: LmPreset,
    /// Images per sampling call.
    #[arg(long, default_value_t = 8)]
    pub images: usize,
    /// Sentences per image.
    #[arg(long, default_value_t = 20)]
    pub samples: usize,
    /// Tokens per sentence (default 16 tiny, 30 small).
    #[arg(long)]
    pub new_tokens: Option<usize>,
}

impl From<BenchArgs> for BenchOptions {
    fn from(args: BenchArgs) -> Self {
        let BenchArgs {
            what,
            device,
            threads,
            steps,
            warmup,
            json,
            seed,
            vit_preset,
            batch,
            peak_tflops,
            precision,
            lm_preset,
            images,
            samples,
            new_tokens,
        } = args;
        BenchOptions {
            what,
            device,
            threads,
            steps,
            warmup,
            json,
            seed,
            vit_preset,
            batch,
            peak_tflops,
            precision,
            lm_preset,
            images,
            samples,
            new_tokens,
        }
    }
}

pub fn run(args: BenchArgs) -> Result<()> {
    crate::bench::run(&args.into())
}

impl ValueEnum for What {
    fn value_variants<'a>() -> &'a [Self] {
        &[What::VitTrain, What::Sampling, What::All]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(match self {
            What::VitTrain => "vit-train",
            What::Sampling => "sampling",
            What::All => "all",
        }))
    }
}

impl ValueEnum for Preset {
    fn value_variants<'a>() -> &'a [Self] {
        &[Preset::Tiny, Preset::Base]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            Preset::Tiny => {
                PossibleValue::new("tiny").help("The quickstart shapes (configs/quickstart.yaml)")
            }
            Preset::Base => PossibleValue::new("base").help("ViT-B/16 at 384 px"),
        })
    }
}

impl ValueEnum for LmPreset {
    fn value_variants<'a>() -> &'a [Self] {
        &[LmPreset::Tiny, LmPreset::Small]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(match self {
            LmPreset::Tiny => PossibleValue::new("tiny").help(
                "The quickstart language model: word-level vocabulary of 300, d 96, 2 layers, 2 heads, 128 \
                 positions",
            ),
            LmPreset::Small => PossibleValue::new("small").help("GPT-2 small (124M)"),
        })
    }
}

impl ValueEnum for Precision {
    fn value_variants<'a>() -> &'a [Self] {
        &[Precision::F32, Precision::Bf16]
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let help = match self {
            Precision::F32 => "Everything in f32",
            Precision::Bf16 => {
                "bf16 matrix products, f32 master weights, norms, softmax, losses and optimiser state"
            }
        };
        Some(PossibleValue::new(self.name()).help(help))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(argv: &[&str]) -> Result<BenchOptions, clap::Error> {
        Wrapper::try_parse_from(std::iter::once("bench").chain(argv.iter().copied()))
            .map(|w| w.args.into())
    }

    #[test]
    fn arguments_parse() {
        let a = parse(&[
            "--what",
            "vit-train",
            "--device",
            "cpu",
            "--threads",
            "2",
            "--steps",
            "5",
            "--warmup",
            "1",
            "--json",
            "out.json",
            "--vit-preset",
            "base",
            "--batch",
            "8",
            "--peak-tflops",
            "60",
            "--precision",
            "bf16",
        ])
        .unwrap();
        assert_eq!(a.what, What::VitTrain);
        assert_eq!(a.vit_preset, Preset::Base);
        assert_eq!(
            (a.threads, a.steps, a.warmup, a.batch),
            (Some(2), 5, 1, Some(8))
        );
        assert_eq!(a.peak_tflops, Some(60.0));
        assert_eq!(a.precision, Precision::Bf16);
        let b = parse(&[
            "--what",
            "sampling",
            "--lm-preset",
            "small",
            "--images",
            "2",
            "--samples",
            "3",
            "--new-tokens",
            "7",
        ])
        .unwrap();
        assert_eq!(
            (b.what, b.lm_preset, b.images, b.samples, b.new_tokens),
            (What::Sampling, LmPreset::Small, 2, 3, Some(7))
        );
        assert!(parse(&["--precision", "fp16"]).is_err());
        assert!(parse(&["--what", "everything"]).is_err());
        assert!(parse(&["--vit-preset", "huge"]).is_err());
    }

    #[test]
    fn flag_defaults_are_the_library_defaults() {
        assert_eq!(parse(&[]).unwrap(), BenchOptions::default());
    }
}
