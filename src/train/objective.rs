//! The loss a classifier's training minimises ([`Objective`]): mean cross-entropy (ERM), or online group DRO
//! (Sagawa, Koh, Hashimoto & Liang, "Distributionally Robust Neural Networks for Group Shifts: On the Importance of
//! Regularization for Worst-Case Generalization", ICLR 2020, Algorithm 1), following the reference implementation
//! kohpangwei/group_DRO `loss.py` (`LossComputer.compute_group_avg`, `compute_robust_loss`). The rest of the
//! method (its sampling, its regularisation, the stage) is `methods::groupdro`'s.
//!
//! One group-DRO step, with per-sample losses ℓ_i and groups g_i of a batch:
//! 1. group losses L_g = the mean of ℓ_i over the batch's samples of group g, 0 for a group absent from the batch;
//! 2. adjusted losses L̃_g = L_g + C / sqrt(n_g), the generalisation adjustment (n_g = training samples of group g);
//! 3. exponentiated-gradient step on the group weights, q_g ← q_g · exp(η · L̃_g), then q ← q / Σ_g q_g (L̃
//!    detached: q is not differentiated);
//! 4. robust loss = Σ_g q_g L_g with the updated q; its gradient is what the optimiser follows.
//!
//! q starts uniform (1/G) and persists over all steps and epochs of one training run ([`GroupDro`] is that state).
//!
//! Defaults: η = 0.01 (`--robust_step_size`) and C = 0 (`--generalization_adjustment`), the reference defaults,
//! used by its sample commands. With C = 0 nothing is added (the reference adds the adjustment only when every
//! group's C is positive; we take one C for all groups, as its sample commands do).
//!
//! Not followed: the reference's in-place `adjusted_loss += ...` aliases `group_loss`, so the loss it returns
//! includes the adjustment too; that is a constant, the gradient is the same, and we return Σ q_g L_g without it.
//! The `btl` and `normalize_loss` variants (off by default) are not implemented.
use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::fit::Batch;
use crate::data::{Dataset, N_GROUPS};

/// The loss a classifier's training step minimises.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Objective {
    /// Mean cross-entropy over the batch (ERM).
    #[default]
    CrossEntropy,
    /// Online group DRO over the groups g = 2y + place.
    GroupDro(GroupDroConfig),
}

impl Objective {
    /// The objective's state for a training run on `train` (whose tensors live on `device`).
    pub(super) fn start(self, train: &Dataset, device: Device) -> Result<Loss> {
        Ok(match self {
            Objective::CrossEntropy => Loss::CrossEntropy,
            Objective::GroupDro(cfg) => {
                let groups = train.groups();
                let mut counts = vec![0usize; N_GROUPS];
                for &g in &groups {
                    counts[g as usize] += 1;
                }
                Loss::GroupDro {
                    dro: GroupDro::new(&cfg, &counts)?,
                    groups: Tensor::from_slice(&groups).to_device(device),
                }
            }
        })
    }
}

/// An [`Objective`] during one training run.
pub(super) enum Loss {
    CrossEntropy,
    GroupDro {
        /// Updated by every step.
        dro: GroupDro,
        /// The group of every training sample, int64 `[n]`.
        groups: Tensor,
    },
}

impl Loss {
    /// The loss of `batch` (a scalar with a graph to the variables) from its `logits` `[b, classes]`.
    pub(super) fn of_batch(&mut self, logits: &Tensor, batch: &Batch) -> Tensor {
        match self {
            Loss::CrossEntropy => logits.cross_entropy_for_logits(&batch.ys),
            Loss::GroupDro { dro, groups } => {
                let per_sample = logits.cross_entropy_loss::<Tensor>(
                    &batch.ys,
                    None,
                    tch::Reduction::None,
                    -100,
                    0.0,
                ); // [b]
                dro.update(&per_sample, &groups.index_select(0, &batch.index))
            }
        }
    }

    /// Logs the state at the end of an epoch (group DRO's weights).
    pub(super) fn log_epoch(&self, epoch: u32) {
        if let Loss::GroupDro { dro, .. } = self {
            tracing::info!(epoch, group_weights = ?dro.weights(), "group DRO");
        }
    }
}

/// Group DRO's hyperparameters (see the module docs for the defaults).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GroupDroConfig {
    /// η, the step size of the exponentiated-gradient update of the group weights.
    pub step_size: f64,
    /// C in the generalisation adjustment C / sqrt(n_g); 0 turns it off.
    pub generalization_adjustment: f64,
}

impl Default for GroupDroConfig {
    fn default() -> Self {
        Self {
            step_size: 0.01,
            generalization_adjustment: 0.0,
        }
    }
}

/// The online group DRO state of one training run: the group weights q and the adjustments C / sqrt(n_g).
#[derive(Debug)]
pub struct GroupDro {
    step_size: f64,
    /// C / sqrt(n_g) per group, f32 [G].
    adjustment: Tensor,
    /// q, f32 [G], on the device of the last losses.
    q: Tensor,
}

impl GroupDro {
    /// A fresh state (q uniform) for groups `0..group_counts.len()`, where `group_counts[g]` is the number of
    /// training samples of group g (used by the adjustment only).
    pub fn new(cfg: &GroupDroConfig, group_counts: &[usize]) -> Result<Self> {
        let n_groups = group_counts.len();
        ensure!(n_groups > 0, "group DRO needs at least one group");
        ensure!(
            cfg.step_size.is_finite() && cfg.step_size >= 0.0,
            "group DRO step size must be finite and >= 0, got {}",
            cfg.step_size
        );
        let c = cfg.generalization_adjustment;
        ensure!(
            c.is_finite() && c >= 0.0,
            "group DRO generalization adjustment must be finite and >= 0, got {c}"
        );
        let adjustment: Vec<f32> = if c > 0.0 {
            if let Some(g) = group_counts.iter().position(|&n| n == 0) {
                anyhow::bail!(
                    "group DRO adjustment C / sqrt(n_g): group {g} has no training samples"
                );
            }
            group_counts
                .iter()
                .map(|&n| (c / (n as f64).sqrt()) as f32)
                .collect()
        } else {
            vec![0.0; n_groups]
        };
        Ok(Self {
            step_size: cfg.step_size,
            adjustment: Tensor::from_slice(&adjustment),
            q: Tensor::full(
                [n_groups as i64],
                1.0 / n_groups as f64,
                (Kind::Float, Device::Cpu),
            ),
        })
    }

    pub fn n_groups(&self) -> usize {
        self.adjustment.size()[0] as usize
    }

    /// The current group weights q (they sum to 1).
    pub fn weights(&self) -> Vec<f64> {
        Vec::<f64>::try_from(self.q.to_kind(Kind::Double).to_device(Device::Cpu))
            .expect("q is a 1-d tensor")
    }

    /// One step: updates q from this batch and returns the robust loss Σ_g q_g L_g (a scalar that carries the
    /// gradient of the per-sample losses). `per_sample_loss` [b] (float), `groups` [b] (int64, on the same device).
    ///
    /// # Panics
    /// When a group id is outside `0..n_groups` or the shapes disagree.
    pub fn update(&mut self, per_sample_loss: &Tensor, groups: &Tensor) -> Tensor {
        let device = per_sample_loss.device();
        let (losses, _) = group_losses(per_sample_loss, groups, self.n_groups());
        let adjusted = losses.detach() + self.adjustment.to_device(device);
        let q = self.q.to_device(device) * (adjusted * self.step_size).exp();
        self.q = &q / q.sum(Kind::Float);
        losses.dot(&self.q)
    }
}

/// Mean per-sample loss of each group over the batch, and the batch's count of each group (both f32 [G]); a group
/// absent from the batch gets loss 0 (group_DRO `compute_group_avg`).
///
/// # Panics
/// When a group id is outside `0..n_groups` or `groups` and `per_sample_loss` differ in length.
pub fn group_losses(
    per_sample_loss: &Tensor,
    groups: &Tensor,
    n_groups: usize,
) -> (Tensor, Tensor) {
    let device = per_sample_loss.device();
    assert_eq!(
        per_sample_loss.size(),
        groups.size(),
        "one group id per per-sample loss"
    );
    let out_of_range = groups
        .lt(0)
        .logical_or(&groups.ge(n_groups as i64))
        .any()
        .int64_value(&[]);
    assert_eq!(out_of_range, 0, "group ids must lie in 0..{n_groups}");
    let ids = Tensor::arange(n_groups as i64, (Kind::Int64, device)).unsqueeze(1); // [G, 1]
    let map = groups
        .to_device(device)
        .unsqueeze(0)
        .eq_tensor(&ids)
        .to_kind(Kind::Float); // [G, b]
    let counts = map.sum_dim_intlist(1, false, Kind::Float); // [G]
    let denom = &counts + counts.eq(0.0).to_kind(Kind::Float);
    let losses = map.matmul(&per_sample_loss.to_kind(Kind::Float)) / denom; // [G]
    (losses, counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn weight_update_by_hand_two_groups() {
        let cfg = GroupDroConfig {
            step_size: 1.0,
            generalization_adjustment: 0.0,
        };
        let mut dro = GroupDro::new(&cfg, &[2, 1]).unwrap();
        assert_eq!(dro.weights(), vec![0.5, 0.5]);
        // Group losses: g0 = mean(1, 3) = 2, g1 = 0.5.
        let losses = Tensor::from_slice(&[1.0f32, 3.0, 0.5]).set_requires_grad(true);
        let groups = Tensor::from_slice(&[0i64, 0, 1]);
        let robust = dro.update(&losses, &groups);
        // q ∝ (0.5 e^2, 0.5 e^0.5) -> q0 = 1 / (1 + e^-1.5) = 0.8175744761936437
        let q0 = 1.0 / (1.0 + (-1.5f64).exp());
        let q = dro.weights();
        assert!(close(q[0], q0) && close(q[1], 1.0 - q0), "{q:?}");
        assert!(close(q0, 0.817_574_476_193_643_7));
        // Robust loss 2 q0 + 0.5 (1 - q0) = 1.7263617...
        assert!(close(robust.double_value(&[]), 0.5 + 1.5 * q0));
        // d robust / d l_i = q_{g_i} / n_{g_i} in the batch.
        robust.backward();
        let grad = Vec::<f64>::try_from(losses.grad().to_kind(Kind::Double)).unwrap();
        let want = [q0 / 2.0, q0 / 2.0, 1.0 - q0];
        for (g, w) in grad.iter().zip(want) {
            assert!(close(*g, w), "{grad:?}");
        }

        // A batch without group 1: L = (4, 0), so q1 only shrinks through the normalisation.
        let robust = dro.update(&Tensor::from_slice(&[4.0f32]), &Tensor::from_slice(&[0i64]));
        let e4 = 4f64.exp();
        let q0_next = q0 * e4 / (q0 * e4 + (1.0 - q0));
        let q = dro.weights();
        assert!(close(q[0], q0_next) && close(q[1], 1.0 - q0_next), "{q:?}");
        assert!(close(robust.double_value(&[]), 4.0 * q0_next));
    }

    #[test]
    fn adjustment_enters_the_weights_not_the_loss() {
        // C = 1, training counts (4, 1): adjustments (1/2, 1). Equal batch losses 1: adjusted (1.5, 2).
        let cfg = GroupDroConfig {
            step_size: 1.0,
            generalization_adjustment: 1.0,
        };
        let mut dro = GroupDro::new(&cfg, &[4, 1]).unwrap();
        let robust = dro.update(
            &Tensor::from_slice(&[1.0f32, 1.0]),
            &Tensor::from_slice(&[0i64, 1]),
        );
        let q0 = 1.0 / (1.0 + 0.5f64.exp()); // e^1.5 / (e^1.5 + e^2)
        let q = dro.weights();
        assert!(close(q[0], q0) && close(q[1], 1.0 - q0), "{q:?}");
        assert!(close(robust.double_value(&[]), 1.0));
        // The default step size moves q by a little: exp(0.01 * 2) vs exp(0.01 * 0.5).
        let mut dro = GroupDro::new(&GroupDroConfig::default(), &[2, 1]).unwrap();
        let _ = dro.update(
            &Tensor::from_slice(&[1.0f32, 3.0, 0.5]),
            &Tensor::from_slice(&[0i64, 0, 1]),
        );
        assert!(close(dro.weights()[0], 1.0 / (1.0 + (-0.015f64).exp())));
    }

    #[test]
    fn group_losses_average_present_samples_only() {
        let (losses, counts) = group_losses(
            &Tensor::from_slice(&[1.0f32, 2.0, 6.0]),
            &Tensor::from_slice(&[3i64, 3, 0]),
            4,
        );
        assert_eq!(
            Vec::<f32>::try_from(losses).unwrap(),
            vec![6.0, 0.0, 0.0, 1.5]
        );
        assert_eq!(
            Vec::<f32>::try_from(counts).unwrap(),
            vec![1.0, 0.0, 0.0, 2.0]
        );
    }

    #[test]
    #[should_panic(expected = "group ids must lie in 0..2")]
    fn out_of_range_groups_panic() {
        let _ = group_losses(
            &Tensor::from_slice(&[1.0f32]),
            &Tensor::from_slice(&[2i64]),
            2,
        );
    }

    #[test]
    fn bad_configs_are_errors() {
        let c = GroupDroConfig {
            step_size: 0.01,
            generalization_adjustment: 1.0,
        };
        assert!(GroupDro::new(&c, &[3, 0]).is_err());
        assert!(GroupDro::new(&GroupDroConfig::default(), &[3, 0]).is_ok());
        assert!(GroupDro::new(&GroupDroConfig::default(), &[]).is_err());
        let neg = GroupDroConfig {
            step_size: -1.0,
            ..Default::default()
        };
        assert!(GroupDro::new(&neg, &[1]).is_err());
        let yaml: GroupDroConfig = serde_yaml::from_str("step_size: 0.1").unwrap();
        assert_eq!((yaml.step_size, yaml.generalization_adjustment), (0.1, 0.0));
        assert!(serde_yaml::from_str::<GroupDroConfig>("eta: 0.1").is_err());
    }
}
