//! Plain training loops: optimiser construction (AdamW / SGD with momentum, no weight decay on norms, biases
//! and embeddings), warmup + cosine learning-rate schedule, gradient clipping, classifier training with model
//! selection by worst-group validation accuracy, and batched evaluation.
//!
//! Follows the ERM recipe of group_DRO (Sagawa et al. 2020) and the nanoGPT optimiser grouping; no trainer
//! framework, just a loop.
use anyhow::{Context, Result};
use rand::distributions::{Distribution, WeightedIndex};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

use crate::config::{Optimizer, Selection, TrainConfig};
use crate::data::{augment, normalize, AugmentConfig, Dataset, NormalizeConfig};
use crate::methods::groupdro::{GroupDro, GroupDroConfig};
use crate::metrics;
use crate::models::vit::Vit;
use crate::rundir::write_atomic;

/// Whether a parameter is exempt from weight decay: norms, biases, embeddings and the CLS token.
pub fn is_no_decay(name: &str) -> bool {
    name.ends_with(".bias")
        || name.contains("layernorm")
        || name.contains("ln_")
        || name.contains("embeddings")
        || name.contains("wte")
        || name.contains("wpe")
}

/// Builds the configured optimiser over the trainable variables of `vs`. Parameters named by [`is_no_decay`]
/// go to group 1, which gets no weight decay.
pub fn build_optimizer(vs: &nn::VarStore, cfg: &TrainConfig) -> Result<nn::Optimizer> {
    {
        let mut vars = vs
            .variables_
            .lock()
            .expect("the var store lock is never poisoned");
        let no_decay: Vec<usize> = vars
            .named_variables
            .iter()
            .filter(|(name, _)| is_no_decay(name))
            .map(|(_, t)| t.data_ptr() as usize)
            .collect();
        for var in vars.trainable_variables.iter_mut() {
            var.group = usize::from(no_decay.contains(&(var.tensor.data_ptr() as usize)));
        }
    }
    use nn::OptimizerConfig;
    let mut opt = match cfg.optimizer {
        Optimizer::Adamw => nn::adamw(0.9, 0.999, cfg.weight_decay).build(vs, cfg.lr)?,
        Optimizer::Sgd => nn::Sgd {
            momentum: cfg.momentum,
            dampening: 0.0,
            wd: cfg.weight_decay,
            nesterov: false,
        }
        .build(vs, cfg.lr)?,
    };
    opt.set_weight_decay_group(1, 0.0);
    Ok(opt)
}

/// Linear warmup to `base_lr`, then cosine decay to zero (per step).
#[derive(Debug, Clone, Copy)]
pub struct LrSchedule {
    pub base_lr: f64,
    pub warmup_steps: usize,
    pub total_steps: usize,
}

impl LrSchedule {
    pub fn new(cfg: &TrainConfig, steps_per_epoch: usize) -> Self {
        let total_steps = (cfg.epochs as usize * steps_per_epoch).max(1);
        let warmup_steps =
            ((cfg.warmup_epochs * steps_per_epoch as f64).round() as usize).min(total_steps);
        Self {
            base_lr: cfg.lr,
            warmup_steps,
            total_steps,
        }
    }

    pub fn lr(&self, step: usize) -> f64 {
        if step < self.warmup_steps {
            return self.base_lr * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let decay_steps = (self.total_steps - self.warmup_steps).max(1) as f64;
        let progress = ((step - self.warmup_steps) as f64 / decay_steps).min(1.0);
        self.base_lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

/// How images become model inputs: normalisation and (train only) augmentation.
#[derive(Debug, Clone)]
pub struct InputPipeline {
    pub normalize: NormalizeConfig,
    pub augment: AugmentConfig,
    pub device: Device,
}

impl InputPipeline {
    /// u8 images [b, 3, h, w] (any device) -> normalised f32 on the device.
    pub fn eval_batch(&self, images_u8: &Tensor) -> Tensor {
        normalize(
            &images_u8.to_device(self.device),
            self.normalize.mean,
            self.normalize.std,
        )
    }

    pub fn train_batch(&self, images_u8: &Tensor) -> Result<Tensor> {
        let augmented = augment(&images_u8.to_device(self.device), &self.augment)?;
        Ok(normalize(
            &augmented,
            self.normalize.mean,
            self.normalize.std,
        ))
    }
}

/// Predicted classes for every image of `images` (u8 [n, 3, h, w]), in batches without gradients.
pub fn predict(model: &Vit, images: &Tensor, input: &InputPipeline, batch_size: usize) -> Vec<i64> {
    let n = images.size()[0];
    let mut preds = Vec::with_capacity(n as usize);
    tch::no_grad(|| {
        for start in (0..n).step_by(batch_size.max(1)) {
            let len = (n - start).min(batch_size as i64);
            let xs = input.eval_batch(&images.narrow(0, start, len));
            let batch: Vec<i64> = Vec::try_from(
                model
                    .forward_t(&xs, false)
                    .argmax(-1, false)
                    .to_device(Device::Cpu),
            )
            .expect("argmax gives int64");
            preds.extend(batch);
        }
    });
    preds
}

/// Per-group accuracy of `model` on `data` (groups g = 2y + place).
pub fn evaluate(
    model: &Vit,
    data: &Dataset,
    input: &InputPipeline,
    batch_size: usize,
) -> Evaluation {
    let preds = predict(model, &data.images, input, batch_size);
    Evaluation::new(preds, data)
}

/// Predictions with their per-group accuracies.
#[derive(Debug, Clone)]
pub struct Evaluation {
    pub preds: Vec<i64>,
    pub group_acc: Vec<Option<f64>>,
    pub avg_plain: f64,
}

impl Evaluation {
    pub fn new(preds: Vec<i64>, data: &Dataset) -> Self {
        let groups = data.groups();
        let group_acc = metrics::group_accuracies(&preds, &data.y, &groups, crate::data::N_GROUPS)
            .expect("one prediction per sample, groups in 0..4");
        let avg_plain = metrics::avg_plain(&preds, &data.y).expect("one prediction per sample");
        Self {
            preds,
            group_acc,
            avg_plain,
        }
    }

    pub fn worst_group(&self) -> f64 {
        metrics::worst_group(&self.group_acc)
    }
}

/// What [`train_classifier`] reports back.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub selected_epoch: u32,
    pub val_worst_group: Option<f64>,
}

/// Which training samples an epoch visits, in which order.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Sampling {
    /// Every sample once, in a new random order each epoch (ERM).
    #[default]
    Shuffle,
    /// This list of training indices, repeats allowed, in a new random order each epoch (JTT's upsampled set,
    /// [`crate::methods::jtt::upsampled_indices`]).
    Indices(Vec<i64>),
    /// `draws` indices per epoch drawn with replacement in proportion to `weights` (one per training sample), like
    /// torch's `WeightedRandomSampler` (group_DRO's `--reweight_groups`,
    /// [`crate::methods::groupdro::balanced_sampling_weights`]).
    Weighted { weights: Vec<f64>, draws: usize },
}

/// The loss a training step minimises.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Objective {
    /// Mean cross-entropy over the batch (ERM).
    #[default]
    CrossEntropy,
    /// Online group DRO over the groups g = 2y + place ([`crate::methods::groupdro`]).
    GroupDro(GroupDroConfig),
}

/// How [`train_classifier_with`] samples and what it minimises; the default is [`train_classifier`]'s ERM.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrainOptions {
    pub sampling: Sampling,
    pub objective: Objective,
}

/// Trains `model` (its variables live in `vs`) on `train`, selects an epoch's weights by `cfg.select` on `val`
/// and leaves `vs` holding them. Writes `metrics.csv` (one row per epoch) into `out_dir`.
#[allow(clippy::too_many_arguments)]
pub fn train_classifier(
    model: &Vit,
    vs: &mut nn::VarStore,
    train: &Dataset,
    val: Option<&Dataset>,
    cfg: &TrainConfig,
    input: &InputPipeline,
    rng: &mut ChaCha8Rng,
    out_dir: &Path,
) -> Result<TrainSummary> {
    let opts = TrainOptions::default();
    train_classifier_with(model, vs, train, val, cfg, input, rng, out_dir, &opts)
}

/// Checks `sampling` against a training set of `n` samples and returns the index order of the first epoch (for
/// `Shuffle` and `Indices`, later epochs reshuffle it in place, so ERM's order is what it always was).
fn initial_order(sampling: &Sampling, n: usize) -> Result<Vec<i64>> {
    match sampling {
        Sampling::Shuffle => Ok((0..n as i64).collect()),
        Sampling::Indices(indices) => {
            anyhow::ensure!(!indices.is_empty(), "the training index list is empty");
            if let Some(bad) = indices.iter().find(|&&i| i < 0 || i >= n as i64) {
                anyhow::bail!("training index {bad} is outside the {n} training samples");
            }
            Ok(indices.clone())
        }
        Sampling::Weighted { weights, draws } => {
            anyhow::ensure!(
                weights.len() == n,
                "{} sampling weights for {n} training samples",
                weights.len()
            );
            anyhow::ensure!(*draws > 0, "zero draws per epoch");
            // Validates the weights (finite, >= 0, not all zero).
            WeightedIndex::new(weights).context("sampling weights")?;
            Ok(Vec::with_capacity(*draws))
        }
    }
}

/// The index order of one epoch: `order` reshuffled (or redrawn for weighted sampling).
fn next_epoch_order(sampling: &Sampling, order: &mut Vec<i64>, rng: &mut ChaCha8Rng) -> Result<()> {
    match sampling {
        Sampling::Shuffle | Sampling::Indices(_) => order.shuffle(rng),
        Sampling::Weighted { weights, draws } => {
            let dist = WeightedIndex::new(weights).context("sampling weights")?;
            order.clear();
            order.extend((0..*draws).map(|_| dist.sample(rng) as i64));
        }
    }
    Ok(())
}

/// [`train_classifier`] with a sampling rule and an objective (JTT's upsampling, group DRO).
#[allow(clippy::too_many_arguments)]
pub fn train_classifier_with(
    model: &Vit,
    vs: &mut nn::VarStore,
    train: &Dataset,
    val: Option<&Dataset>,
    cfg: &TrainConfig,
    input: &InputPipeline,
    rng: &mut ChaCha8Rng,
    out_dir: &Path,
    opts: &TrainOptions,
) -> Result<TrainSummary> {
    anyhow::ensure!(!train.is_empty(), "the training set is empty");
    let mut order = initial_order(&opts.sampling, train.len())?;
    let n = match &opts.sampling {
        Sampling::Weighted { draws, .. } => *draws,
        _ => order.len(),
    };
    let labels = Tensor::from_slice(&train.y).to_device(input.device);
    let groups = Tensor::from_slice(&train.groups()).to_device(input.device);
    let mut dro = match opts.objective {
        Objective::CrossEntropy => None,
        Objective::GroupDro(dro_cfg) => {
            let mut counts = vec![0usize; crate::data::N_GROUPS];
            for g in train.groups() {
                counts[g as usize] += 1;
            }
            Some(GroupDro::new(&dro_cfg, &counts)?)
        }
    };
    let steps_per_epoch = n.div_ceil(cfg.batch_size);
    let schedule = LrSchedule::new(cfg, steps_per_epoch);
    let mut opt = build_optimizer(vs, cfg)?;
    let mut csv = String::from("epoch,lr,train_loss,train_acc");
    if val.is_some() {
        for g in 0..crate::data::N_GROUPS {
            csv.push_str(&format!(",val_acc_g{g}"));
        }
        csv.push_str(",val_worst_group,val_avg_plain");
    }
    csv.push('\n');
    let mut best: Option<Best> = None;
    let mut step = 0;
    let progress = crate::progress::bar(cfg.epochs as u64 * steps_per_epoch as u64, "train");
    for epoch in 1..=cfg.epochs {
        next_epoch_order(&opts.sampling, &mut order, rng)?;
        let (mut loss_sum, mut correct) = (0.0, 0i64);
        for chunk in order.chunks(cfg.batch_size) {
            let lr = schedule.lr(step);
            opt.set_lr(lr);
            let index = Tensor::from_slice(chunk);
            let xs = input.train_batch(&train.images.index_select(0, &index))?;
            let ys = labels.index_select(0, &index.to_device(input.device));
            let logits = model.forward_t(&xs, true); // [b, classes]
            let loss = match dro.as_mut() {
                None => logits.cross_entropy_for_logits(&ys),
                Some(dro) => {
                    let per_sample = logits.cross_entropy_loss::<Tensor>(
                        &ys,
                        None,
                        tch::Reduction::None,
                        -100,
                        0.0,
                    ); // [b]
                    let gs = groups.index_select(0, &index.to_device(input.device));
                    dro.update(&per_sample, &gs)
                }
            };
            opt.zero_grad();
            loss.backward();
            if let Some(max) = cfg.grad_clip {
                opt.clip_grad_norm(max);
            }
            opt.step();
            loss_sum += loss.double_value(&[]) * chunk.len() as f64;
            correct += logits
                .argmax(-1, false)
                .eq_tensor(&ys)
                .sum(Kind::Int64)
                .int64_value(&[]);
            step += 1;
            progress.inc(1);
        }
        let lr = schedule.lr(step.saturating_sub(1));
        csv.push_str(&format!(
            "{epoch},{lr:.6e},{:.6},{:.6}",
            loss_sum / n as f64,
            correct as f64 / n as f64
        ));
        if let Some(val) = val {
            let eval = evaluate(model, val, input, cfg.batch_size.max(256));
            for acc in &eval.group_acc {
                csv.push_str(&format!(
                    ",{}",
                    acc.map_or(String::new(), |a| format!("{a:.6}"))
                ));
            }
            let worst = eval.worst_group();
            csv.push_str(&format!(",{worst:.6},{:.6}", eval.avg_plain));
            tracing::info!(
                epoch,
                train_loss = loss_sum / n as f64,
                val_worst_group = worst,
                val_avg = eval.avg_plain
            );
            // Ties on the worst group (common early, when a minority group is all wrong) go to the better average.
            let better = best
                .as_ref()
                .is_none_or(|(w, a, _, _)| (worst, eval.avg_plain) > (*w, *a));
            if cfg.select == Selection::WorstGroupVal && better {
                best = Some((worst, eval.avg_plain, epoch, snapshot(vs)));
            }
        } else {
            tracing::info!(epoch, train_loss = loss_sum / n as f64);
        }
        if let Some(dro) = &dro {
            tracing::info!(epoch, group_weights = ?dro.weights(), "group DRO");
        }
        csv.push('\n');
    }
    progress.finish_and_clear();
    write_atomic(&out_dir.join("metrics.csv"), &csv).context("writing the per-epoch metrics")?;
    let summary = match best {
        Some((worst, _, epoch, weights)) if cfg.select == Selection::WorstGroupVal => {
            restore(vs, &weights);
            TrainSummary {
                selected_epoch: epoch,
                val_worst_group: Some(worst),
            }
        }
        _ => TrainSummary {
            selected_epoch: cfg.epochs,
            val_worst_group: None,
        },
    };
    Ok(summary)
}

/// (val worst group, val average, epoch, weights) of the best epoch so far.
type Best = (f64, f64, u32, Vec<(String, Tensor)>);

fn snapshot(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(k, v)| (k, v.detach().copy()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

fn restore(vs: &nn::VarStore, weights: &[(String, Tensor)]) {
    let vars = vs.variables();
    tch::no_grad(|| {
        for (name, value) in weights {
            vars[name].shallow_clone().copy_(value);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(epochs: u32, warmup: f64) -> TrainConfig {
        TrainConfig {
            optimizer: Optimizer::Adamw,
            lr: 1.0,
            weight_decay: 0.0,
            momentum: 0.9,
            epochs,
            batch_size: 1,
            warmup_epochs: warmup,
            grad_clip: None,
            select: Selection::Last,
        }
    }

    #[test]
    fn schedule_warms_up_linearly_then_decays_to_zero() {
        let s = LrSchedule::new(&cfg(10, 1.0), 10);
        assert_eq!((s.warmup_steps, s.total_steps), (10, 100));
        assert!((s.lr(0) - 0.1).abs() < 1e-12);
        assert!((s.lr(9) - 1.0).abs() < 1e-12);
        assert!((s.lr(10) - 1.0).abs() < 1e-12);
        assert!(
            (s.lr(55) - 0.5).abs() < 1e-12,
            "half way through the decay the cosine gives half"
        );
        assert!(s.lr(99) < 0.001);
    }

    #[test]
    fn sampling_rules_give_each_epoch_its_indices() {
        use rand::SeedableRng;
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let up = Sampling::Indices(vec![0, 2, 2, 1]);
        let mut order = initial_order(&up, 3).unwrap();
        next_epoch_order(&up, &mut order, &mut rng).unwrap();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![0, 1, 2, 2], "repeats survive the shuffle");
        assert!(initial_order(&Sampling::Indices(vec![3]), 3).is_err());
        assert!(initial_order(&Sampling::Indices(vec![]), 3).is_err());

        let weighted = Sampling::Weighted {
            weights: vec![0.0, 1.0, 3.0],
            draws: 4000,
        };
        let mut order = initial_order(&weighted, 3).unwrap();
        next_epoch_order(&weighted, &mut order, &mut rng).unwrap();
        assert_eq!(order.len(), 4000);
        assert!(!order.contains(&0), "a zero weight is never drawn");
        let twos = order.iter().filter(|&&i| i == 2).count() as i64;
        assert!(
            (twos - 3000).abs() < 150,
            "{twos} of 4000 draws, expected ~3000"
        );
        for bad in [
            Sampling::Weighted {
                weights: vec![1.0],
                draws: 1,
            },
            Sampling::Weighted {
                weights: vec![0.0, 0.0],
                draws: 1,
            },
            Sampling::Weighted {
                weights: vec![1.0, 1.0],
                draws: 0,
            },
        ] {
            assert!(initial_order(&bad, 2).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn default_options_are_erm_and_group_dro_trains() {
        use crate::data::{AugmentConfig, NormalizeConfig};
        use crate::models::vit::Config;
        use rand::SeedableRng;
        tch::manual_seed(0);
        let mut vs = nn::VarStore::new(Device::Cpu);
        let model = Vit::new(&vs.root(), &Config::tiny(16, 4));
        let n = 8;
        let train = Dataset {
            images: Tensor::randint(256, [n, 3, 16, 16], (Kind::Uint8, Device::Cpu)),
            y: vec![0, 0, 0, 0, 1, 1, 1, 1],
            place: vec![0, 0, 0, 1, 1, 1, 1, 0],
            img_ids: (0..n).collect(),
            filenames: (0..n).map(|i| format!("{i}.png")).collect(),
            bird_masks: None,
        };
        let cfg = TrainConfig {
            lr: 1e-3,
            epochs: 2,
            batch_size: 4,
            warmup_epochs: 0.0,
            ..cfg(2, 0.0)
        };
        let input = InputPipeline {
            normalize: NormalizeConfig::default(),
            augment: AugmentConfig {
                flip: false,
                random_resized_crop: None,
            },
            device: Device::Cpu,
        };
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        for d in [&a, &b, &c] {
            std::fs::create_dir_all(d).unwrap();
        }
        let init = snapshot(&vs);
        let run = |vs: &mut nn::VarStore, out: &Path, opts: Option<&TrainOptions>| {
            restore(vs, &init);
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            match opts {
                None => train_classifier(&model, vs, &train, None, &cfg, &input, &mut rng, out),
                Some(o) => {
                    train_classifier_with(&model, vs, &train, None, &cfg, &input, &mut rng, out, o)
                }
            }
            .unwrap();
            snapshot(vs)
        };
        let plain = run(&mut vs, &a, None);
        let with_default = run(&mut vs, &b, Some(&TrainOptions::default()));
        for ((name, x), (_, y)) in plain.iter().zip(&with_default) {
            assert!(x.equal(y), "{name} differs");
        }
        let read = |d: &Path| std::fs::read_to_string(d.join("metrics.csv")).unwrap();
        assert_eq!(read(&a), read(&b));

        let dro = TrainOptions {
            sampling: Sampling::Weighted {
                weights: crate::methods::groupdro::balanced_sampling_weights(&train.groups(), 4)
                    .unwrap(),
                draws: 12,
            },
            objective: Objective::GroupDro(GroupDroConfig::default()),
        };
        let trained = run(&mut vs, &c, Some(&dro));
        let metrics = read(&c);
        let rows: Vec<&str> = metrics.lines().skip(1).collect();
        assert_eq!(rows.len(), 2, "{metrics}");
        for row in rows {
            let loss: f64 = row.split(',').nth(2).unwrap().parse().unwrap();
            assert!(loss.is_finite() && loss > 0.0, "{row}");
        }
        assert!(trained
            .iter()
            .zip(&init)
            .any(|((_, x), (_, y))| !x.equal(y)));
    }

    #[test]
    fn no_decay_names_follow_hf_conventions() {
        for (name, expected) in [
            (
                "vit.encoder.layer.0.attention.attention.query.weight",
                false,
            ),
            ("vit.encoder.layer.0.attention.attention.query.bias", true),
            ("vit.encoder.layer.0.layernorm_before.weight", true),
            ("vit.embeddings.cls_token", true),
            ("vit.embeddings.patch_embeddings.projection.weight", true),
            ("transformer.h.0.ln_1.weight", true),
            ("transformer.wte.weight", true),
            ("classifier.weight", false),
        ] {
            assert_eq!(is_no_decay(name), expected, "{name}");
        }
    }
}
