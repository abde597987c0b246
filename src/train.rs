//! The one training loop ([`fit`]) and what it is built from: optimiser construction (AdamW / SGD with momentum,
//! no weight decay on norms, biases and embeddings), warmup + cosine learning-rate schedule, gradient clipping and a
//! stop on a non-finite loss. ERM and fine-tuning ([`ClassifierTraining`], model selection by worst-group
//! validation accuracy), language-model pretraining and translator training (`explain::lm`) all run through it.
//!
//! Follows the ERM recipe of group_DRO (Sagawa et al. 2020) and the nanoGPT optimiser grouping; no trainer
//! framework, just a loop.
use anyhow::{bail, Context, Result};
use rand::distributions::{Distribution, WeightedIndex};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

use crate::data::{Dataset, InputPipeline};
use crate::methods::groupdro::{GroupDro, GroupDroConfig};
use crate::metrics;
use crate::models::vit::Vit;
use crate::precision::Precision;
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
    /// Compute precision of the training steps: `f32` (the default) or `bf16` (bf16 matrix products with f32
    /// master weights; layer norm, softmax, the loss and the optimiser state stay f32: [`crate::precision`]).
    /// Evaluation stays f32.
    #[serde(default)]
    pub precision: Precision,
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
            precision: Precision::F32,
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

/// Which examples an epoch of [`fit`] visits, in which order.
#[derive(Debug, Clone, PartialEq)]
pub enum Sampling {
    /// Each of the `n` examples once, in a new random order each epoch (ERM).
    Shuffle(usize),
    /// This list of example indices, repeats allowed, in a new random order each epoch (JTT's upsampled set,
    /// [`crate::methods::jtt::upsampled_indices`]).
    Indices(Vec<usize>),
    /// `draws` indices per epoch drawn with replacement in proportion to `weights` (one per example), like torch's
    /// `WeightedRandomSampler` (group_DRO's `--reweight_groups`,
    /// [`crate::methods::groupdro::balanced_sampling_weights`]).
    Weighted { weights: Vec<f64>, draws: usize },
}

impl Sampling {
    /// Checks the rule and returns the first epoch's pool (reshuffled in place by [`Sampling::next_epoch`], so
    /// ERM's order is what it always was).
    fn first_pool(&self) -> Result<Vec<usize>> {
        match self {
            Sampling::Shuffle(n) => Ok((0..*n).collect()),
            Sampling::Indices(indices) => Ok(indices.clone()),
            Sampling::Weighted { weights, draws } => {
                anyhow::ensure!(*draws > 0, "zero draws per epoch");
                // Validates the weights (finite, >= 0, not all zero).
                WeightedIndex::new(weights).context("sampling weights")?;
                Ok(Vec::with_capacity(*draws))
            }
        }
    }

    /// Examples per epoch.
    fn epoch_len(&self) -> usize {
        match self {
            Sampling::Shuffle(n) => *n,
            Sampling::Indices(indices) => indices.len(),
            Sampling::Weighted { draws, .. } => *draws,
        }
    }

    /// The order of the next epoch: `order` reshuffled, or redrawn for weighted sampling.
    fn next_epoch(&self, order: &mut Vec<usize>, rng: &mut ChaCha8Rng) -> Result<()> {
        match self {
            Sampling::Shuffle(_) | Sampling::Indices(_) => order.shuffle(rng),
            Sampling::Weighted { weights, draws } => {
                let dist = WeightedIndex::new(weights).context("sampling weights")?;
                order.clear();
                order.extend((0..*draws).map(|_| dist.sample(rng)));
            }
        }
        Ok(())
    }

    /// Checks that every index lies below `n`.
    pub fn check(&self, n: usize) -> Result<()> {
        match self {
            Sampling::Shuffle(m) if *m != n => bail!("sampling over {m} examples of {n}"),
            Sampling::Indices(indices) => {
                if let Some(bad) = indices.iter().find(|&&i| i >= n) {
                    bail!("training index {bad} is outside the {n} training samples");
                }
                Ok(())
            }
            Sampling::Weighted { weights, .. } if weights.len() != n => {
                bail!(
                    "{} sampling weights for {n} training samples",
                    weights.len()
                )
            }
            _ => Ok(()),
        }
    }
}

/// Which weights of a ViT classifier a training may change (YAML `all`, `head`, or `{last_blocks: k}`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Trainable {
    #[default]
    All,
    /// The classification head only (a linear probe trained end to end).
    Head,
    /// The last `k` encoder blocks, the final layernorm and the head.
    LastBlocks(usize),
}

impl Trainable {
    /// Whether the parameter `name` (HF ViT names) is trained, in a ViT of `depth` blocks.
    pub fn trains(self, name: &str, depth: usize) -> bool {
        let head = name.starts_with("classifier.");
        match self {
            Trainable::All => true,
            Trainable::Head => head,
            Trainable::LastBlocks(k) => {
                head || name.starts_with("vit.layernorm.")
                    || name
                        .strip_prefix("vit.encoder.layer.")
                        .and_then(|rest| rest.split('.').next())
                        .and_then(|i| i.parse::<usize>().ok())
                        .is_some_and(|i| i + k >= depth)
            }
        }
    }

    /// Turns off the gradients of every variable of `vs` this rule does not train.
    pub fn apply(self, vs: &nn::VarStore, depth: usize) {
        for (name, var) in vs.variables() {
            if !self.trains(&name, depth) {
                let _ = var.set_requires_grad(false);
            }
        }
    }
}

/// The loss a classifier's training step minimises.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Objective {
    /// Mean cross-entropy over the batch (ERM).
    #[default]
    CrossEntropy,
    /// Online group DRO over the groups g = 2y + place ([`crate::methods::groupdro`]).
    GroupDro(GroupDroConfig),
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

/// The one training loop: `cfg.epochs` epochs whose examples `sampling` draws with `rng`, mini-batches of
/// `cfg.batch_size`, the configured optimiser over the trainable variables of `vs`, warmup + cosine schedule,
/// gradient clipping.
///
/// `batch_loss` maps a mini-batch of example indices to its mean loss (a scalar with a graph to the variables);
/// `end_of_epoch` sees each finished epoch (evaluation, model selection, logging). A non-finite loss stops the
/// training with an error naming `what`, the epoch and the step: nothing after a divergence is worth keeping.
pub fn fit(
    vs: &nn::VarStore,
    cfg: &TrainConfig,
    sampling: &Sampling,
    rng: &mut ChaCha8Rng,
    what: &str,
    batch_loss: impl FnMut(&[usize]) -> Result<Tensor>,
    end_of_epoch: impl FnMut(&Epoch) -> Result<()>,
) -> Result<Vec<Epoch>> {
    TrainingLoop {
        vs,
        cfg,
        sampling,
        what,
        stop_after: cfg.epochs,
    }
    .run(rng, batch_loss, end_of_epoch)
}

/// [`fit`]'s loop with what it trains spelled out, and where it may stop: after `stop_after` epochs (at most
/// `cfg.epochs`) of the `cfg.epochs`-epoch schedule, the first epochs of the full training, learning rate included
/// (JTT's identification model is ERM stopped early).
pub struct TrainingLoop<'a> {
    pub vs: &'a nn::VarStore,
    pub cfg: &'a TrainConfig,
    pub sampling: &'a Sampling,
    /// Names the training in progress bars and errors.
    pub what: &'a str,
    pub stop_after: u32,
}

impl TrainingLoop<'_> {
    /// Trains; see [`fit`].
    pub fn run(
        self,
        rng: &mut ChaCha8Rng,
        mut batch_loss: impl FnMut(&[usize]) -> Result<Tensor>,
        mut end_of_epoch: impl FnMut(&Epoch) -> Result<()>,
    ) -> Result<Vec<Epoch>> {
        let TrainingLoop {
            vs,
            cfg,
            sampling,
            what,
            stop_after,
        } = self;
        let n = sampling.epoch_len();
        anyhow::ensure!(n > 0, "{what}: the training set is empty");
        anyhow::ensure!(
            stop_after <= cfg.epochs,
            "{what}: stopping after epoch {stop_after} of a {}-epoch training",
            cfg.epochs
        );
        let steps_per_epoch = n.div_ceil(cfg.batch_size);
        let schedule = LrSchedule::new(cfg, steps_per_epoch);
        let mut opt = build_optimizer(vs, cfg)?;
        let mut order = sampling.first_pool()?;
        let mut epochs = Vec::with_capacity(stop_after as usize);
        let mut step = 0;
        let progress = crate::progress::bar(stop_after as u64 * steps_per_epoch as u64, what);
        for epoch in 1..=stop_after {
            sampling.next_epoch(&mut order, rng)?;
            let mut loss_sum = 0.0;
            for (batch, chunk) in order.chunks(cfg.batch_size).enumerate() {
                opt.set_lr(schedule.lr(step));
                // The forward pass (and so its backward) in the configured precision; the update stays f32.
                let loss = crate::precision::autocast(cfg.precision, || batch_loss(chunk))?;
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
    /// Which training samples each epoch visits.
    pub sampling: Sampling,
    pub objective: Objective,
    /// Stop after this many epochs of the `cfg.epochs`-epoch schedule (`None`: train them all); see [`TrainingLoop`].
    pub stop_after: Option<u32>,
    /// With `select: worst_group_val`, the model as it starts (epoch 0) competes with the trained epochs.
    pub include_start: bool,
}

impl<'a> ClassifierTraining<'a> {
    /// ERM's training: every sample once per epoch, cross-entropy.
    pub fn erm(
        model: &'a Vit,
        train: &'a Dataset,
        val: Option<&'a Dataset>,
        cfg: &'a TrainConfig,
        input: &'a InputPipeline,
    ) -> Self {
        Self {
            model,
            train,
            val,
            cfg,
            input,
            sampling: Sampling::Shuffle(train.len()),
            objective: Objective::CrossEntropy,
            stop_after: None,
            include_start: false,
        }
    }

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
            ..
        } = *self;
        self.sampling.check(train.len())?;
        let labels = Tensor::from_slice(&train.y).to_device(input.device);
        let groups = Tensor::from_slice(&train.groups()).to_device(input.device);
        // The group-DRO state is updated by every step and read at each epoch's end.
        let dro = std::cell::RefCell::new(match self.objective {
            Objective::CrossEntropy => None,
            Objective::GroupDro(dro_cfg) => {
                let mut counts = vec![0usize; crate::data::N_GROUPS];
                for g in train.groups() {
                    counts[g as usize] += 1;
                }
                Some(GroupDro::new(&dro_cfg, &counts)?)
            }
        });
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
        if let (true, ModelSelection::WorstGroupVal, Some(val)) =
            (self.include_start, cfg.select, val)
        {
            // Epoch 0: the model as it starts, a candidate of the selection like any trained epoch.
            let eval = evaluate(model, val, input, cfg.batch_size.max(256));
            csv.push_str("0,,,");
            for acc in &eval.group_acc {
                csv.push_str(&format!(
                    ",{}",
                    acc.map_or(String::new(), |a| format!("{a:.6}"))
                ));
            }
            let worst = eval.worst_group();
            csv.push_str(&format!(",{worst:.6},{:.6}\n", eval.avg_plain));
            best = Some((worst, eval.avg_plain, 0, snapshot_vars(vs)));
        }
        let epoch_len = self.sampling.epoch_len();
        let last_epoch = self.stop_after.unwrap_or(cfg.epochs);
        TrainingLoop {
            vs,
            cfg,
            sampling: &self.sampling,
            what: "train",
            stop_after: last_epoch,
        }
        .run(
            rng,
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
                Ok(match dro.borrow_mut().as_mut() {
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
                })
            },
            |e| {
                csv.push_str(&format!(
                    "{},{:.6e},{:.6},{:.6}",
                    e.epoch,
                    e.lr,
                    e.train_loss,
                    correct.take() as f64 / epoch_len as f64
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
                        best = Some((worst, eval.avg_plain, e.epoch, snapshot_vars(vs)));
                    }
                } else {
                    tracing::info!(epoch = e.epoch, train_loss = e.train_loss);
                }
                if let Some(dro) = dro.borrow().as_ref() {
                    tracing::info!(epoch = e.epoch, group_weights = ?dro.weights(), "group DRO");
                }
                csv.push('\n');
                Ok(())
            },
        )?;
        write_atomic(&out_dir.join("metrics.csv"), &csv)
            .context("writing the per-epoch metrics")?;
        Ok(match best {
            Some((worst, _, epoch, weights)) if cfg.select == ModelSelection::WorstGroupVal => {
                restore_vars(vs, &weights);
                TrainSummary {
                    selected_epoch: epoch,
                    val_worst_group: Some(worst),
                }
            }
            _ => TrainSummary {
                selected_epoch: last_epoch,
                val_worst_group: None,
            },
        })
    }
}

/// (val worst group, val average, epoch, weights) of the best epoch so far.
type Best = (f64, f64, u32, Vec<(String, Tensor)>);

/// A copy of every variable of `vs` (for keeping the best epoch).
pub fn snapshot_vars(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut vars: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(k, v)| (k, v.detach().copy()))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// Copies `weights` (from [`snapshot_vars`]) back into `vs`.
pub fn restore_vars(vs: &nn::VarStore, weights: &[(String, Tensor)]) {
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
            precision: Precision::F32,
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
    fn a_stopped_training_is_the_start_of_the_full_one() {
        use rand::SeedableRng;
        // A weight and a bias (the optimiser has a decay and a no-decay group), loss = w^2 + b^2; 4 steps per epoch
        // of a 3-epoch cosine schedule, stopped after epoch 1.
        let train = |stop_after: u32| {
            let vs = nn::VarStore::new(Device::Cpu);
            let w = vs.root().var("weight", &[1], nn::Init::Const(1.0));
            let b = (vs.root() / "lin").var("bias", &[1], nn::Init::Const(1.0));
            let mut rng = ChaCha8Rng::seed_from_u64(0);
            let epochs = TrainingLoop {
                vs: &vs,
                cfg: &TrainConfig {
                    lr: 0.1,
                    ..cfg(3, 0.0)
                },
                sampling: &Sampling::Shuffle(4),
                what: "test",
                stop_after,
            }
            .run(
                &mut rng,
                |_| Ok((w.square() + b.square()).sum(Kind::Float)),
                |_| Ok(()),
            )
            .unwrap();
            (epochs, w.double_value(&[0]))
        };
        let (stopped, w_stopped) = train(1);
        let (full, w_full) = train(3);
        assert_eq!(stopped.len(), 1);
        assert_eq!(
            stopped[0], full[0],
            "same learning rate and loss as the full run's epoch 1"
        );
        let schedule = LrSchedule::new(&cfg(3, 0.0), 4);
        assert!((stopped[0].lr - 0.1 * schedule.lr(3)).abs() < 1e-12);
        assert!(stopped[0].lr > 0.05, "not annealed to zero at the stop");
        assert!(w_stopped > w_full, "the full run keeps going");
        let vs = nn::VarStore::new(Device::Cpu);
        let err = TrainingLoop {
            vs: &vs,
            cfg: &cfg(2, 0.0),
            sampling: &Sampling::Shuffle(1),
            what: "test",
            stop_after: 3,
        }
        .run(
            &mut ChaCha8Rng::seed_from_u64(0),
            |_| unreachable!("never trains"),
            |_| Ok(()),
        )
        .unwrap_err();
        assert!(format!("{err}").contains("epoch 3 of a 2-epoch"), "{err}");
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

    #[test]
    fn sampling_rules_give_each_epoch_its_indices() {
        use rand::SeedableRng;
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let up = Sampling::Indices(vec![0, 2, 2, 1]);
        let mut order = up.first_pool().unwrap();
        up.next_epoch(&mut order, &mut rng).unwrap();
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![0, 1, 2, 2], "repeats survive the shuffle");
        assert_eq!(up.epoch_len(), 4);
        assert!(up.check(3).is_ok());
        assert!(Sampling::Indices(vec![3]).check(3).is_err());

        let weighted = Sampling::Weighted {
            weights: vec![0.0, 1.0, 3.0],
            draws: 4000,
        };
        let mut order = weighted.first_pool().unwrap();
        weighted.next_epoch(&mut order, &mut rng).unwrap();
        assert_eq!(order.len(), 4000);
        assert!(!order.contains(&0), "a zero weight is never drawn");
        let twos = order.iter().filter(|&&i| i == 2).count() as i64;
        assert!(
            (twos - 3000).abs() < 150,
            "{twos} of 4000 draws, expected ~3000"
        );
        assert!(weighted.check(2).is_err(), "3 weights for 2 samples");
        for bad in [
            Sampling::Weighted {
                weights: vec![0.0, 0.0],
                draws: 1,
            },
            Sampling::Weighted {
                weights: vec![1.0, 1.0],
                draws: 0,
            },
        ] {
            assert!(bad.first_pool().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn group_dro_with_balanced_sampling_trains_and_a_diverging_loss_stops() {
        use crate::data::{AugmentConfig, NormalizeConfig};
        use crate::models::vit::Config;
        use rand::SeedableRng;
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = Vit::new(&vs.root(), &Config::tiny(16, 4));
        let n = 8;
        let train = Dataset {
            images: Tensor::randint(256, [n, 3, 16, 16], (Kind::Uint8, Device::Cpu)),
            y: vec![0, 0, 0, 0, 1, 1, 1, 1],
            place: vec![0, 0, 0, 1, 1, 1, 1, 0],
            img_ids: (0..n).collect(),
            filenames: (0..n).map(|i| format!("{i}.png")).collect(),
            bird_masks: None,
            place_masks: None,
            object_masks: None,
        };
        let cfg = TrainConfig {
            lr: 1e-3,
            batch_size: 4,
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
        let init = snapshot_vars(&vs);
        let training = ClassifierTraining {
            sampling: Sampling::Weighted {
                weights: crate::methods::groupdro::balanced_sampling_weights(&train.groups(), 4)
                    .unwrap(),
                draws: 12,
            },
            objective: Objective::GroupDro(GroupDroConfig::default()),
            ..ClassifierTraining::erm(&model, &train, None, &cfg, &input)
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        training.run(&vs, &mut rng, dir.path()).unwrap();
        let metrics = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        let rows: Vec<&str> = metrics.lines().skip(1).collect();
        assert_eq!(rows.len(), 2, "{metrics}");
        for row in rows {
            let loss: f64 = row.split(',').nth(2).unwrap().parse().unwrap();
            assert!(loss.is_finite() && loss > 0.0, "{row}");
        }
        assert!(snapshot_vars(&vs)
            .iter()
            .zip(&init)
            .any(|((_, x), (_, y))| !x.equal(y)));

        // A learning rate that blows the weights up stops the training with the epoch and step named.
        let wild = TrainConfig {
            lr: 1e12,
            grad_clip: None,
            ..cfg.clone()
        };
        restore_vars(&vs, &init);
        let err = ClassifierTraining::erm(&model, &train, None, &wild, &input)
            .run(&vs, &mut rng, dir.path())
            .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("training diverged") && msg.contains("at epoch") && msg.contains("step"),
            "{msg}"
        );
    }

    #[test]
    fn trainable_rules_pick_hf_vit_names() {
        let names = [
            ("vit.embeddings.cls_token", [true, false, false]),
            (
                "vit.encoder.layer.0.attention.attention.query.weight",
                [true, false, false],
            ),
            ("vit.encoder.layer.1.output.dense.bias", [true, false, true]),
            (
                "vit.encoder.layer.2.layernorm_after.weight",
                [true, false, true],
            ),
            ("vit.layernorm.weight", [true, false, true]),
            ("classifier.weight", [true, true, true]),
        ];
        for (name, want) in names {
            let got = [Trainable::All, Trainable::Head, Trainable::LastBlocks(2)]
                .map(|t| t.trains(name, 3));
            assert_eq!(got, want, "{name}");
        }
    }
}
