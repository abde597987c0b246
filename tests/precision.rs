//! bf16 mixed precision on the CPU (`precision: bf16`, [`texplain::precision`]): a few training steps track the
//! f32 loss curve within a stated tolerance, the master weights and the checkpoint stay f32 and reload, the
//! language model and the translator give f32 outputs close to f32's, and the config spells and checks it.
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tch::{nn, Device, Kind, Tensor};
use texplain::models::{gpt2, translator, vit};
use texplain::precision::{autocast, Precision};
use texplain::train::{fit, ModelSelection, Optimizer, Sampling, TrainConfig};

/// Per-step tolerance of the bf16 loss against the f32 loss over the first steps of a training from the same
/// weights and data: |bf16 - f32| <= ABS_TOL + REL_TOL * f32. bf16 keeps 8 bits of mantissa (relative rounding
/// 2^-9 ~ 0.2 % per product input; the tiny ViT's logits differ by ~0.5 % of their range); over these 8 AdamW
/// steps at the quickstart's learning rate the curves parted by at most ~0.003 when this was written.
const ABS_TOL: f64 = 0.01;
const REL_TOL: f64 = 0.02;
const STEPS: u32 = 8;

/// libtorch's generator is process-wide and the tests of this file run on parallel threads: each holds this lock
/// while it seeds and draws, so both precisions start from the same weights and data.
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn lock() -> std::sync::MutexGuard<'static, ()> {
    TORCH_RNG
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A tiny ViT (16 px, patch 4, d 32, 2 layers) with fixed initial weights, and 16 fixed images whose label is
/// whether the left half is brighter than the right (learnable in a few steps).
fn tiny_vit() -> (nn::VarStore, vit::Vit) {
    tch::manual_seed(7);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = vit::Vit::new(&vs.root(), &vit::Config::tiny(16, 4));
    (vs, model)
}

fn data() -> (Tensor, Tensor) {
    tch::manual_seed(11);
    let xs = Tensor::randn([16, 3, 16, 16], (Kind::Float, Device::Cpu)); // [n, 3, 16, 16]
    let ys = xs
        .narrow(3, 0, 8)
        .mean_dim([1i64, 2, 3].as_slice(), false, Kind::Float)
        .gt_tensor(
            &xs.narrow(3, 8, 8)
                .mean_dim([1i64, 2, 3].as_slice(), false, Kind::Float),
        )
        .to_kind(Kind::Int64); // [n]
    (xs, ys)
}

fn recipe(precision: Precision) -> TrainConfig {
    TrainConfig {
        optimizer: Optimizer::Adamw,
        lr: 1e-3,
        weight_decay: 0.05,
        epochs: STEPS,
        batch_size: 16,
        warmup_epochs: 0.0,
        grad_clip: Some(1.0),
        select: ModelSelection::Last,
        precision,
        ..TrainConfig::default()
    }
}

/// Trains the tiny ViT for [`STEPS`] full-batch steps through `train::fit`; returns the loss of each step.
fn train(vs: &nn::VarStore, model: &vit::Vit, precision: Precision) -> Vec<f64> {
    let (xs, ys) = data();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let epochs = fit(
        vs,
        &recipe(precision),
        &Sampling::Shuffle(16),
        &mut rng,
        "precision test",
        |batch| {
            let index = Tensor::from_slice(&batch.iter().map(|&i| i as i64).collect::<Vec<_>>());
            let logits = model.forward_t(&xs.index_select(0, &index), true);
            assert_eq!(
                logits.kind(),
                Kind::Float,
                "logits are f32 in every precision"
            );
            Ok(logits.cross_entropy_for_logits(&ys.index_select(0, &index)))
        },
        |_| Ok(()),
    )
    .unwrap();
    epochs.iter().map(|e| e.train_loss).collect()
}

#[test]
fn bf16_loss_curve_tracks_f32_and_weights_stay_f32() {
    let _rng = lock();
    let (vs32, m32) = tiny_vit();
    let (vs16, m16) = tiny_vit();
    let f32_losses = train(&vs32, &m32, Precision::F32);
    let bf16_losses = train(&vs16, &m16, Precision::Bf16);
    eprintln!("f32  {f32_losses:?}\nbf16 {bf16_losses:?}");
    for (step, (a, b)) in f32_losses.iter().zip(&bf16_losses).enumerate() {
        assert!(
            (a - b).abs() <= ABS_TOL + REL_TOL * a,
            "step {}: f32 loss {a}, bf16 loss {b}",
            step + 1
        );
    }
    assert!(
        f32_losses.iter().zip(&bf16_losses).any(|(a, b)| a != b),
        "bf16 must compute in bf16, not repeat the f32 numbers"
    );
    for losses in [&f32_losses, &bf16_losses] {
        assert!(losses[STEPS as usize - 1] < losses[0], "{losses:?}");
    }
    for (name, var) in vs16.variables() {
        assert_eq!(var.kind(), Kind::Float, "{name}: master weights stay f32");
    }
}

#[test]
fn bf16_forward_is_close_to_f32_from_the_same_weights() {
    let _rng = lock();
    let (_vs, model) = tiny_vit();
    let (xs, _) = data();
    tch::no_grad(|| {
        let a = model.forward_t(&xs, false);
        let b = autocast(Precision::Bf16, || model.forward_t(&xs, false));
        let fa = model.forward_features(&xs, 1, false).unwrap().tokens;
        let fb = autocast(Precision::Bf16, || model.forward_features(&xs, 1, false))
            .unwrap()
            .tokens;
        let rel = |x: &Tensor, y: &Tensor| {
            (x - y).abs().max().double_value(&[]) / x.abs().max().double_value(&[])
        };
        assert_eq!((b.kind(), fb.kind()), (Kind::Float, Kind::Float));
        // Measured ~0.5 % (logits) and ~0.4 % (layer-1 tokens) of the f32 range.
        for (name, r) in [("logits", rel(&a, &b)), ("tokens", rel(&fa, &fb))] {
            assert!(
                r > 0.0 && r < 0.02,
                "{name}: bf16 differs by {r} of the f32 range"
            );
        }
    });
}

#[test]
fn a_bf16_trained_checkpoint_is_f32_and_reloads() {
    let _rng = lock();
    let (vs, model) = tiny_vit();
    train(&vs, &model, Precision::Bf16);
    let dir = tempfile::tempdir().unwrap();
    model.save_hf_folder(&vs, dir.path()).unwrap();
    for (name, t) in Tensor::read_safetensors(dir.path().join("model.safetensors")).unwrap() {
        assert_eq!(t.kind(), Kind::Float, "{name} is saved in f32");
    }
    let mut again = nn::VarStore::new(Device::Cpu);
    let (reloaded, report) = vit::Vit::from_hf_folder(&mut again, dir.path(), None).unwrap();
    assert!(report.missing.is_empty(), "{:?}", report.missing);
    let saved = vs.variables();
    for (name, var) in again.variables() {
        assert!(var.equal(&saved[&name]), "{name} reloads unchanged");
    }
    let (xs, _) = data();
    tch::no_grad(|| {
        assert!(model
            .forward_t(&xs, false)
            .equal(&reloaded.forward_t(&xs, false)));
        // The reloaded model also runs in a bf16 region, close to its f32 logits.
        let f32_logits = reloaded.forward_t(&xs, false);
        let bf16_logits = autocast(Precision::Bf16, || reloaded.forward_t(&xs, false));
        assert_eq!(bf16_logits.kind(), Kind::Float);
        let diff = (&f32_logits - &bf16_logits).abs().max().double_value(&[]);
        assert!(diff < 0.1, "bf16 logits differ by {diff}");
    });
}

#[test]
fn language_model_and_translator_give_f32_outputs_close_to_f32() {
    let _rng = lock();
    tch::manual_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let lm = gpt2::Gpt2::new(&vs.root(), &gpt2::Config::tiny(50, 0, 0));
    let tr = translator::Translator::new(
        &(vs.root() / "translator"),
        &translator::Config {
            in_tokens: 5,
            in_dim: 8,
            hidden_dim: 16,
            prefix_len: 2,
            out_dim: lm.config().n_embd,
            token_subset: None,
            readout: Default::default(),
        },
    );
    let tokens = Tensor::randn([3, 5, 8], (Kind::Float, Device::Cpu));
    let ids = Tensor::randint(50, [3, 6], (Kind::Int64, Device::Cpu));
    let run = || {
        tch::no_grad(|| {
            let prefix = tr.forward(&tokens).unwrap(); // [3, 2, d]
            let embeds = Tensor::cat(&[prefix, lm.embed_tokens(&ids).unwrap()], 1);
            // With a cache too: the prefill and one decoding step, as sampling does.
            let mut cache = gpt2::KvCache::new(lm.config().n_layer);
            let full = lm.forward_embeds(&embeds, None, false).unwrap();
            let first = lm
                .forward_embeds(&embeds.narrow(1, 0, 7), Some(&mut cache), false)
                .unwrap();
            let last = lm
                .forward_embeds(&embeds.narrow(1, 7, 1), Some(&mut cache), false)
                .unwrap();
            (full, Tensor::cat(&[first, last], 1))
        })
    };
    let (f32_full, f32_cached) = run();
    let (bf16_full, bf16_cached) = autocast(Precision::Bf16, run);
    for (name, a, b) in [
        ("full", &f32_full, &bf16_full),
        ("cached", &f32_cached, &bf16_cached),
    ] {
        assert_eq!(
            b.kind(),
            Kind::Float,
            "{name}: bf16 logits are returned in f32"
        );
        let diff = (a - b).abs().max().double_value(&[]);
        let scale = a.abs().max().double_value(&[]);
        assert!(diff > 0.0, "{name}: bf16 computes in bf16");
        assert!(
            diff <= 0.05 * scale.max(1.0),
            "{name}: differ by {diff} (scale {scale})"
        );
    }
}
