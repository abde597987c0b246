//! `texplain bench`: throughput of the two hot loops of the method on random weights and inputs, to compare with
//! the PyTorch/HF reference (`scripts/bench_reference.py`, same shapes, same JSON keys; `scripts/bench.sh` runs
//! both in one job).
//!
//! - `vit-train`: one ERM training step of the classifier (forward, cross-entropy, backward, AdamW step built by
//!   [`crate::train::build_optimizer`]), reported as images/s and, given the device's peak, model FLOP utilisation
//!   (training FLOPs = 3 x [`crate::models::vit::flops_per_image`]).
//! - `sampling`: TExplain's explanation sampling (paper section 2: N sentences per image, nucleus p = 0.95) with
//!   [`crate::explain::sample::sample_sentences`] from a random K-embedding prefix per image. Every sentence has
//!   exactly `new_tokens` tokens (EOS is blocked for all of them, `min_words = max_words = new_tokens` with a
//!   word-level vocabulary), matching HF `generate(min_new_tokens = max_new_tokens)`.
//!
//! `--precision bf16` runs both in a bf16 [`crate::precision`] region (bf16 matrix products, f32 master weights,
//! f32 norms, softmax, loss and optimiser state), the counterpart of the reference's `torch.autocast(dtype =
//! bfloat16)`.
//!
//! Timing: `warmup` untimed repetitions, then `steps` timed ones (CUDA synchronised around each); the median is
//! reported.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;
use tch::{nn, Device, Kind, Tensor};

use crate::explain::sample::{sample_sentences, Nucleus};
use crate::models::{gpt2, vit};
use crate::precision::{self, Precision};
use crate::train::{ModelSelection, Optimizer, TrainConfig};

/// Which benchmark to run (`--what`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    VitTrain,
    Sampling,
    All,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// The quickstart shapes (configs/quickstart.yaml).
    Tiny,
    /// ViT-B/16 at 384 px.
    Base,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LmPreset {
    /// The quickstart language model: word-level vocabulary of 300, d 96, 2 layers, 2 heads, 128 positions.
    Tiny,
    /// GPT-2 small (124M).
    Small,
}

/// What `texplain bench` measures and how (its flags, `src/cli/bench.rs`; [`Default`] gives the flags' defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct BenchOptions {
    pub what: What,
    /// auto, cpu, cuda or cuda:N.
    pub device: String,
    /// Intra-op threads (libtorch's default when `None`).
    pub threads: Option<i32>,
    /// Timed repetitions (the median is reported).
    pub steps: usize,
    /// Untimed repetitions first.
    pub warmup: usize,
    /// Also write the figures as JSON here.
    pub json: Option<PathBuf>,
    /// Seed for weights, inputs and sampling.
    pub seed: u64,
    /// ViT shape for vit-train.
    pub vit_preset: Preset,
    /// Images per training step (`None`: 64 tiny, 32 base).
    pub batch: Option<usize>,
    /// Peak dense TFLOP/s of the device at the benchmark's precision, to report model FLOP utilisation.
    pub peak_tflops: Option<f64>,
    pub precision: Precision,
    /// Language-model shape for sampling.
    pub lm_preset: LmPreset,
    /// Images per sampling call.
    pub images: usize,
    /// Sentences per image.
    pub samples: usize,
    /// Tokens per sentence (`None`: 16 tiny, 30 small).
    pub new_tokens: Option<usize>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            what: What::All,
            device: "auto".into(),
            threads: None,
            steps: 20,
            warmup: 3,
            json: None,
            seed: 0,
            vit_preset: Preset::Tiny,
            batch: None,
            peak_tflops: None,
            precision: Precision::F32,
            lm_preset: LmPreset::Tiny,
            images: 8,
            samples: 20,
            new_tokens: None,
        }
    }
}

/// ViT training-step figures.
#[derive(Debug, Clone, Serialize)]
pub struct VitTrainFigures {
    pub preset: Preset,
    pub batch: usize,
    pub image_size: i64,
    pub step_ms: f64,
    pub images_per_s: f64,
    pub train_tflops: f64,
    pub mfu: Option<f64>,
}

/// Sampling figures (one call = all images x samples).
#[derive(Debug, Clone, Serialize)]
pub struct SamplingFigures {
    pub preset: LmPreset,
    pub images: usize,
    pub samples: usize,
    pub prefix_len: i64,
    pub new_tokens: usize,
    pub call_ms: f64,
    pub sentences_per_s: f64,
    pub tokens_per_s: f64,
}

/// Everything one `bench` run measured; the JSON written by `--json` (same keys as the reference script).
#[derive(Debug, Clone, Serialize)]
pub struct Figures {
    pub implementation: &'static str,
    pub device: String,
    pub precision: Precision,
    pub threads: i32,
    pub steps: usize,
    pub warmup: usize,
    pub vit_train: Option<VitTrainFigures>,
    pub sampling: Option<SamplingFigures>,
}

/// Median of non-empty `xs` (mean of the two middle values for an even count).
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => 0.5 * (v[n / 2 - 1] + v[n / 2]),
    }
}

fn sync(device: Device) {
    if let Device::Cuda(n) = device {
        tch::Cuda::synchronize(n as i64);
    }
}

/// Runs `f` `warmup` times untimed, then `steps` times timed; returns the median seconds per call.
fn time_median(
    device: Device,
    warmup: usize,
    steps: usize,
    mut f: impl FnMut() -> Result<()>,
) -> Result<f64> {
    for _ in 0..warmup {
        f()?;
    }
    sync(device);
    let mut times = Vec::with_capacity(steps);
    for _ in 0..steps.max(1) {
        let start = Instant::now();
        f()?;
        sync(device);
        times.push(start.elapsed().as_secs_f64());
    }
    Ok(median(&times))
}

/// The quickstart classifier: 48 px images, patch 8, d 64, 3 layers, 2 heads, MLP 256, 2 labels.
pub fn vit_config(preset: Preset) -> vit::Config {
    match preset {
        Preset::Tiny => vit::Config {
            hidden_size: 64,
            num_hidden_layers: 3,
            num_attention_heads: 2,
            intermediate_size: 256,
            ..vit::Config::tiny(48, 8)
        },
        Preset::Base => vit::Config::vit_base_patch16_384(2),
    }
}

/// The quickstart language model (word-level vocabulary of 300, EOS id 0) or GPT-2 small.
pub fn lm_config(preset: LmPreset) -> gpt2::Config {
    match preset {
        LmPreset::Tiny => gpt2::Config {
            n_embd: 96,
            n_layer: 2,
            n_head: 2,
            ..gpt2::Config::tiny(300, 0, 0)
        },
        LmPreset::Small => gpt2::Config::gpt2_small(),
    }
}

/// One ERM step per repetition on random weights and inputs.
pub fn bench_vit_train(args: &BenchOptions, device: Device) -> Result<VitTrainFigures> {
    let cfg = vit_config(args.vit_preset);
    let batch = args.batch.unwrap_or(match args.vit_preset {
        Preset::Tiny => 64,
        Preset::Base => 32,
    });
    anyhow::ensure!(batch > 0, "--batch must be positive");
    tch::manual_seed(args.seed as i64);
    let vs = nn::VarStore::new(device);
    let model = vit::Vit::new(&vs.root(), &cfg);
    // The quickstart ERM optimiser: AdamW, lr 1e-3, weight decay 0.05 (none on norms, biases, embeddings).
    let train_cfg = TrainConfig {
        optimizer: Optimizer::Adamw,
        lr: 1e-3,
        weight_decay: 0.05,
        grad_clip: None,
        select: ModelSelection::Last,
        batch_size: batch,
        precision: args.precision,
        ..TrainConfig::default()
    };
    let mut opt = crate::train::build_optimizer(&vs, &train_cfg)?;
    let b = batch as i64;
    let xs = Tensor::randn(
        [b, cfg.num_channels, cfg.image_size, cfg.image_size],
        (Kind::Float, device),
    ); // [b, c, H, W]
    let ys = Tensor::randint(cfg.num_labels, [b], (Kind::Int64, device)); // [b]
    let seconds = time_median(device, args.warmup, args.steps, || {
        // As `train::fit`: the forward pass in the precision's region, the update in f32.
        let loss = precision::autocast(args.precision, || {
            let logits = model.forward_t(&xs, true); // [b, labels], f32
            logits.cross_entropy_for_logits(&ys)
        });
        opt.zero_grad();
        loss.backward();
        opt.step();
        Ok(())
    })?;
    let images_per_s = batch as f64 / seconds;
    let train_tflops = 3.0 * vit::flops_per_image(&cfg) * images_per_s / 1e12;
    Ok(VitTrainFigures {
        preset: args.vit_preset,
        batch,
        image_size: cfg.image_size,
        step_ms: seconds * 1e3,
        images_per_s,
        train_tflops,
        mfu: args.peak_tflops.map(|peak| train_tflops / peak),
    })
}

/// One `sample_sentences` call over all images per repetition; checks that every sentence has `new_tokens` tokens.
pub fn bench_sampling(args: &BenchOptions, device: Device) -> Result<SamplingFigures> {
    let cfg = lm_config(args.lm_preset);
    let (k, default_tokens) = match args.lm_preset {
        LmPreset::Tiny => (4, 16),
        LmPreset::Small => (10, 30),
    };
    let new_tokens = args.new_tokens.unwrap_or(default_tokens);
    anyhow::ensure!(
        args.images > 0 && args.samples > 0 && new_tokens > 0,
        "--images, --samples and --new-tokens must be positive"
    );
    anyhow::ensure!(
        k + new_tokens as i64 <= cfg.n_positions,
        "{k} prefix positions + {new_tokens} new tokens exceed the model's {} positions",
        cfg.n_positions
    );
    tch::manual_seed(args.seed as i64);
    let mut vs = nn::VarStore::new(device);
    let lm = gpt2::Gpt2::new(&vs.root(), &cfg);
    // Frozen, as the explanation's language model is (`explain::lm`).
    vs.freeze();
    let prefix = Tensor::randn([args.images as i64, k, cfg.n_embd], (Kind::Float, device)); // [images, k, d]
                                                                                            // A word-level vocabulary (every token but EOS starts a word), as the quickstart's tokenizer.
    let word_start = Tensor::ones([cfg.vocab_size], (Kind::Bool, Device::Cpu));
    let _ = word_start.get(cfg.eos_token_id).fill_(0);
    let nucleus = Nucleus {
        top_p: 0.95,
        temperature: 1.0,
        min_words: new_tokens,
        max_words: new_tokens,
    };
    let seconds = time_median(device, args.warmup, args.steps, || {
        let out = precision::autocast(args.precision, || {
            sample_sentences(
                &lm,
                &prefix,
                args.samples,
                &nucleus,
                cfg.eos_token_id,
                &word_start,
            )
        })?;
        let lengths_ok = out
            .iter()
            .flatten()
            .all(|sentence| sentence.len() == new_tokens);
        anyhow::ensure!(
            lengths_ok && out.len() == args.images,
            "sampling did not give {} sentences of {new_tokens} tokens per image",
            args.samples
        );
        Ok(())
    })?;
    let sentences = (args.images * args.samples) as f64;
    Ok(SamplingFigures {
        preset: args.lm_preset,
        images: args.images,
        samples: args.samples,
        prefix_len: k,
        new_tokens,
        call_ms: seconds * 1e3,
        sentences_per_s: sentences / seconds,
        tokens_per_s: sentences * new_tokens as f64 / seconds,
    })
}

/// Runs the selected benchmarks and returns their figures.
pub fn measure(args: &BenchOptions) -> Result<Figures> {
    let device = crate::runtime::parse_device(&args.device)?;
    crate::runtime::set_threads(args.threads);
    let vit_train = matches!(args.what, What::VitTrain | What::All)
        .then(|| bench_vit_train(args, device).context("vit-train benchmark"))
        .transpose()?;
    let sampling = matches!(args.what, What::Sampling | What::All)
        .then(|| bench_sampling(args, device).context("sampling benchmark"))
        .transpose()?;
    Ok(Figures {
        implementation: "texplain",
        device: crate::runtime::device_name(device),
        precision: args.precision,
        threads: tch::get_num_threads(),
        steps: args.steps,
        warmup: args.warmup,
        vit_train,
        sampling,
    })
}

/// `texplain bench`: measures, prints a summary on stdout and writes `--json` (atomically) when given.
pub fn run(args: &BenchOptions) -> Result<()> {
    let figures = measure(args)?;
    let mut text = format!(
        "texplain bench on {}, {} (median of {} steps after {} warmup)\n",
        figures.device,
        figures.precision.name(),
        figures.steps,
        figures.warmup
    );
    if let Some(v) = &figures.vit_train {
        text.push_str(&format!(
            "vit-train {:?} batch {}: {:.2} ms/step, {:.1} images/s, {:.3} TFLOP/s",
            v.preset, v.batch, v.step_ms, v.images_per_s, v.train_tflops
        ));
        if let Some(mfu) = v.mfu {
            text.push_str(&format!(", MFU {:.1}%", 100.0 * mfu));
        }
        text.push('\n');
    }
    if let Some(s) = &figures.sampling {
        text.push_str(&format!(
            "sampling {:?} {} images x {} samples x {} tokens: {:.2} ms/call, {:.1} sentences/s, {:.0} tokens/s\n",
            s.preset, s.images, s.samples, s.new_tokens, s.call_ms, s.sentences_per_s, s.tokens_per_s
        ));
    }
    // The command's output is its report: stdout, not the log.
    print!("{text}");
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&figures)?;
        crate::util::write_atomic(path, &json)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        for (xs, want) in [
            (vec![3.0, 1.0, 2.0], 2.0),
            (vec![4.0, 1.0, 3.0, 2.0], 2.5),
            (vec![5.0], 5.0),
        ] {
            assert_eq!(median(&xs), want, "{xs:?}");
        }
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn one_step_tiny_runs_give_positive_finite_figures() {
        for precision in [Precision::F32, Precision::Bf16] {
            one_step_tiny_run(precision);
        }
    }

    fn one_step_tiny_run(precision: Precision) {
        let args = BenchOptions {
            device: "cpu".into(),
            steps: 1,
            warmup: 0,
            images: 2,
            samples: 3,
            new_tokens: Some(5),
            batch: Some(4),
            peak_tflops: Some(1.0),
            precision,
            ..BenchOptions::default()
        };
        let f = measure(&args).unwrap();
        assert_eq!(f.precision, precision);
        let v = f.vit_train.expect("vit-train ran");
        let s = f.sampling.expect("sampling ran");
        for (name, x) in [
            ("step_ms", v.step_ms),
            ("images_per_s", v.images_per_s),
            ("train_tflops", v.train_tflops),
            ("mfu", v.mfu.unwrap()),
            ("call_ms", s.call_ms),
            ("sentences_per_s", s.sentences_per_s),
            ("tokens_per_s", s.tokens_per_s),
        ] {
            assert!(x.is_finite() && x > 0.0, "{precision:?} {name} = {x}");
        }
        assert_eq!((s.images, s.samples, s.new_tokens), (2, 3, 5));
    }
}
