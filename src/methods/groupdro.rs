//! Online group DRO (Sagawa, Koh, Hashimoto & Liang, "Distributionally Robust Neural Networks for Group Shifts:
//! On the Importance of Regularization for Worst-Case Generalization", ICLR 2020), following the reference
//! implementation kohpangwei/group_DRO: the loss (`loss.py`) is a training objective,
//! `train::Objective::GroupDro` (its steps and defaults are in `train/objective.rs`); this module holds the rest of
//! the method, the training sampler of `data/dro_dataset.py`.
//!
//! * Sampling: the reference trains group DRO with `--reweight_groups`, a `WeightedRandomSampler` with weight
//!   N / n_g per sample and N draws per epoch with replacement (group-balanced batches in expectation);
//!   [`balanced_sampling_weights`] gives those weights for `train::Sampling::Weighted`.
//! * Regularisation is the paper's point: group DRO only beats ERM on the worst group with strong ℓ2 or early
//!   stopping. Its Waterbirds strong-ℓ2 setting (ResNet-50, ImageNet weights) is SGD with momentum 0.9, weight
//!   decay 1.0, learning rate 1e-5, batch 128, 300 epochs, the epoch chosen by validation worst-group accuracy
//!   (the paper's appendix, as recalled for this port and not re-read against the text; the repository's sample
//!   command shows the standard setting, lr 1e-3 and weight decay 1e-4, batch 128, 300 epochs).
//!   Weight decay belongs to the optimiser (`TrainConfig`), not here; AdamW's decoupled decay of 1.0 is not SGD's
//!   ℓ2 of 1.0, so that setting transfers only with `optimizer: sgd`.
use anyhow::Result;

/// Per-sample sampling weights N / n_{g_i} of group_DRO's `--reweight_groups` sampler: every group gets the same
/// total weight N. `groups` are in `0..n_groups`; empty groups are allowed (no sample carries their weight).
pub fn balanced_sampling_weights(groups: &[i64], n_groups: usize) -> Result<Vec<f64>> {
    let mut counts = vec![0usize; n_groups];
    for (i, &g) in groups.iter().enumerate() {
        let gi = usize::try_from(g)
            .ok()
            .filter(|&gi| gi < n_groups)
            .ok_or_else(|| anyhow::anyhow!("sample {i} has group {g}, outside 0..{n_groups}"))?;
        counts[gi] += 1;
    }
    let n = groups.len() as f64;
    Ok(groups
        .iter()
        .map(|&g| n / counts[g as usize] as f64)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_weights_give_every_group_the_same_mass() {
        let groups = [0i64, 0, 0, 1, 3, 3];
        let w = balanced_sampling_weights(&groups, 4).unwrap();
        assert_eq!(w, vec![2.0, 2.0, 2.0, 6.0, 3.0, 3.0]);
        let mut mass = [0.0; 4];
        for (g, w) in groups.iter().zip(&w) {
            mass[*g as usize] += w;
        }
        assert_eq!(mass, [6.0, 6.0, 0.0, 6.0]);
        assert!(balanced_sampling_weights(&[0, 4], 4).is_err());
    }
}
