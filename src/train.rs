//! The one training loop ([`fit`]) and what it is built from: optimiser construction (AdamW / SGD with momentum,
//! no weight decay on norms, biases and embeddings), warmup + cosine learning-rate schedule, gradient clipping and a
//! stop on a non-finite loss. ERM and fine-tuning ([`ClassifierTraining`], model selection by worst-group
//! validation accuracy), language-model pretraining and translator training (`explain::lm`) all run through it.
//!
//! Follows the ERM recipe of group_DRO (Sagawa et al. 2020) and the nanoGPT optimiser grouping; no trainer
//! framework, just a loop.
use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

use crate::data::{augment, normalize, AugmentConfig, Dataset, NormalizeConfig};
use crate::metrics;
use crate::models::vit::Vit;
use crate::util::write_atomic;

/// Optimisation settings shared by every trained part (ERM, LM pretraining, translator, fine-tuning).
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(default)]
    pub optimizer: Optimizer,
    pub lr: f64,
    #[serde(default)]
    pub weight_decay: f64,
    /// SGD momentum (ignored by AdamW).
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    pub epochs: u32,
    pub batch_size: usize,
    /// Linear warmup, in epochs (fractions allowed), before the cosine decay.
    #[serde(default)]
    pub warmup_epochs: f64,
    /// Clip the global gradient norm to this value.
    #[serde(default)]
    pub grad_clip: Option<f64>,
    /// Which epoch's weights to keep.
    #[serde(default)]
    pub select: ModelSelection,
}

pub(crate) fn default_momentum() -> f64 {
    0.9
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            optimizer: Optimizer::Adamw,
            lr: 1e-3,
            weight_decay: 0.0,
            momentum: default_momentum(),
            epochs: 1,
            batch_size: 64,
            warmup_epochs: 0.0,
            grad_clip: Some(1.0),
            select: ModelSelection::Last,
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    #[default]
    Adamw,
    Sgd,
}

/// Which epoch's weights a training keeps (YAML `select`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ModelSelection {
    /// Best worst-group validation accuracy (the field's standard model selection).
    #[default]
    WorstGroupVal,
    Last,
}

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

/// One epoch as [`fit`] saw it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Epoch {
    /// 1-based.
    pub epoch: u32,
    /// The learning rate of the epoch's last step.
    pub lr: f64,
    /// Mean training loss over the epoch's examples.
    pub train_loss: f64,
}

/// The one training loop: `cfg.epochs` passes over `examples` (shuffled with `rng` each epoch; an index may
/// appear several times, which upsamples it), mini-batches of `cfg.batch_size`, the configured optimiser over the
/// trainable variables of `vs`, warmup + cosine schedule, gradient clipping.
///
/// `batch_loss` maps a mini-batch of example indices to its mean loss (a scalar with a graph to the variables);
/// `end_of_epoch` sees each finished epoch (evaluation, model selection, logging). A non-finite loss stops the
/// training with an error naming `what`, the epoch and the step: nothing after a divergence is worth keeping.
pub fn fit(
    vs: &nn::VarStore,
    cfg: &TrainConfig,
    examples: &[usize],
    rng: &mut ChaCha8Rng,
    what: &str,
    mut batch_loss: impl FnMut(&[usize]) -> Result<Tensor>,
    mut end_of_epoch: impl FnMut(&Epoch) -> Result<()>,
) -> Result<Vec<Epoch>> {
    let n = examples.len();
    anyhow::ensure!(n > 0, "{what}: the training set is empty");
    let steps_per_epoch = n.div_ceil(cfg.batch_size);
    let schedule = LrSchedule::new(cfg, steps_per_epoch);
    let mut opt = build_optimizer(vs, cfg)?;
    let mut order = examples.to_vec();
    let mut epochs = Vec::with_capacity(cfg.epochs as usize);
    let mut step = 0;
    let progress = crate::progress::bar(cfg.epochs as u64 * steps_per_epoch as u64, what);
    for epoch in 1..=cfg.epochs {
        order.shuffle(rng);
        let mut loss_sum = 0.0;
        for (batch, chunk) in order.chunks(cfg.batch_size).enumerate() {
            opt.set_lr(schedule.lr(step));
            let loss = batch_loss(chunk)?;
            let value = loss.double_value(&[]);
            if !value.is_finite() {
                bail!(
                    "{what}: the loss is {value} at epoch {epoch}, step {} (batch {} of the epoch): training diverged; \
                     lower the learning rate or clip the gradients",
                    step + 1,
                    batch + 1
                );
            }
            opt.zero_grad();
            loss.backward();
            if let Some(max) = cfg.grad_clip {
                opt.clip_grad_norm(max);
            }
            opt.step();
            loss_sum += value * chunk.len() as f64;
            step += 1;
            progress.inc(1);
        }
        let done = Epoch {
            epoch,
            lr: schedule.lr(step.saturating_sub(1)),
            train_loss: loss_sum / n as f64,
        };
        end_of_epoch(&done)?;
        epochs.push(done);
    }
    progress.finish_and_clear();
    Ok(epochs)
}

/// What [`ClassifierTraining::run`] reports back.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub selected_epoch: u32,
    pub val_worst_group: Option<f64>,
}

/// Training a classifier on a dataset: ERM, and fine-tuning on masked samples.
pub struct ClassifierTraining<'a> {
    pub model: &'a Vit,
    pub train: &'a Dataset,
    /// Evaluated after every epoch (per-group accuracy in `metrics.csv`), and used for model selection when
    /// `cfg.select` is `worst_group_val`.
    pub val: Option<&'a Dataset>,
    pub cfg: &'a TrainConfig,
    pub input: &'a InputPipeline,
}

impl ClassifierTraining<'_> {
    /// Trains the model (its variables live in `vs`), selects an epoch's weights by `cfg.select` and leaves `vs`
    /// holding them. Writes `metrics.csv` (one row per epoch) into `out_dir`.
    pub fn run(
        &self,
        vs: &nn::VarStore,
        rng: &mut ChaCha8Rng,
        out_dir: &Path,
    ) -> Result<TrainSummary> {
        let Self {
            model,
            train,
            val,
            cfg,
            input,
        } = *self;
        let labels = Tensor::from_slice(&train.y).to_device(input.device);
        let mut csv = String::from("epoch,lr,train_loss,train_acc");
        if val.is_some() {
            for g in 0..crate::data::N_GROUPS {
                csv.push_str(&format!(",val_acc_g{g}"));
            }
            csv.push_str(",val_worst_group,val_avg_plain");
        }
        csv.push('\n');
        // Correct training predictions of the current epoch (counted per batch, read at its end).
        let correct = std::cell::Cell::new(0i64);
        let mut best: Option<Best> = None;
        let examples: Vec<usize> = (0..train.len()).collect();
        fit(
            vs,
            cfg,
            &examples,
            rng,
            "train",
            |chunk| {
                let index =
                    Tensor::from_slice(&chunk.iter().map(|&i| i as i64).collect::<Vec<_>>());
                let xs = input.train_batch(&train.images.index_select(0, &index))?;
                let ys = labels.index_select(0, &index.to_device(input.device));
                let logits = model.forward_t(&xs, true); // [b, classes]
                correct.set(
                    correct.get()
                        + tch::no_grad(|| {
                            logits
                                .argmax(-1, false)
                                .eq_tensor(&ys)
                                .sum(Kind::Int64)
                                .int64_value(&[])
                        }),
                );
                Ok(logits.cross_entropy_for_logits(&ys))
            },
            |e| {
                csv.push_str(&format!(
                    "{},{:.6e},{:.6},{:.6}",
                    e.epoch,
                    e.lr,
                    e.train_loss,
                    correct.take() as f64 / train.len() as f64
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
                        epoch = e.epoch,
                        train_loss = e.train_loss,
                        val_worst_group = worst,
                        val_avg = eval.avg_plain
                    );
                    // Ties on the worst group (common early, when a minority group is all wrong) go to the
                    // better average.
                    let better = best
                        .as_ref()
                        .is_none_or(|(w, a, _, _)| (worst, eval.avg_plain) > (*w, *a));
                    if cfg.select == ModelSelection::WorstGroupVal && better {
                        best = Some((worst, eval.avg_plain, e.epoch, snapshot(vs)));
                    }
                } else {
                    tracing::info!(epoch = e.epoch, train_loss = e.train_loss);
                }
                csv.push('\n');
                Ok(())
            },
        )?;
        write_atomic(&out_dir.join("metrics.csv"), &csv)
            .context("writing the per-epoch metrics")?;
        Ok(match best {
            Some((worst, _, epoch, weights)) if cfg.select == ModelSelection::WorstGroupVal => {
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
        })
    }
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
            select: ModelSelection::Last,
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
