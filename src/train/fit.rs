//! The one training loop ([`fit`], [`TrainingLoop`]) and what it is built from: which examples each epoch visits
//! ([`Sampling`]), optimiser construction (AdamW / SGD with momentum, no weight decay on norms, biases and
//! embeddings: the nanoGPT grouping), the warmup + cosine learning-rate schedule, gradient clipping, a stop on a
//! non-finite loss; and what a training step and model selection read ([`Batch`], [`snapshot_vars`]).
use anyhow::{bail, Context, Result};
use rand::distributions::{Distribution, WeightedIndex};
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use tch::{nn, Tensor};

use super::config::{Optimizer, TrainConfig};
use crate::data::InputPipeline;

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

/// Which examples an epoch of [`fit`] visits, in which order.
#[derive(Debug, Clone, PartialEq)]
pub enum Sampling {
    /// Each of the `n` examples once, in a new random order each epoch (ERM).
    Shuffle(usize),
    /// This list of example indices, repeats allowed, in a new random order each epoch (JTT's upsampled set,
    /// `methods::jtt::upsampled_indices`).
    Indices(Vec<usize>),
    /// `draws` indices per epoch drawn with replacement in proportion to `weights` (one per example), like torch's
    /// `WeightedRandomSampler` (group_DRO's `--reweight_groups`,
    /// `methods::groupdro::balanced_sampling_weights`).
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
    pub fn epoch_len(&self) -> usize {
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

/// A mini-batch of a labelled image set, as a training step reads it.
pub struct Batch {
    /// The examples' indices into the set, int64 `[b]`, on the input's device.
    pub index: Tensor,
    /// The images, augmented and normalised ([`InputPipeline::train_batch`]): `[b, 3, h, w]`.
    pub xs: Tensor,
    /// Their labels, `[b]`.
    pub ys: Tensor,
}

impl Batch {
    /// The examples `chunk` of `images` (u8 `[n, 3, h, w]`) with their `labels` (`[n]`, on the input's device).
    pub fn new(
        chunk: &[usize],
        images: &Tensor,
        labels: &Tensor,
        input: &InputPipeline,
    ) -> Result<Self> {
        let index = Tensor::from_slice(&chunk.iter().map(|&i| i as i64).collect::<Vec<_>>());
        let xs = input.train_batch(&images.index_select(0, &index))?;
        let index = index.to_device(input.device);
        let ys = labels.index_select(0, &index);
        Ok(Self { index, xs, ys })
    }
}

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
    use crate::precision::Precision;
    use crate::train::ModelSelection;
    use tch::{Device, Kind};

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
}
