//! Just Train Twice (Liu, Haghgoo, Chen, Raghunathan, Koh, Sagawa, Liang & Finn, "Just Train Twice: Improving
//! Group Robustness without Training Group Information", ICML 2021), following the reference implementation
//! anniesch/jtt: `process_training.py` (the error set), `run_expt.py` (the upsampling), `generate_downstream.py` and
//! the README's Waterbirds commands (the hyperparameters).
//!
//! 1. Identification model: ERM for T epochs; its error set E is the training samples it misclassifies
//!    ([`error_set`]).
//! 2. Final model: trained anew, with the same recipe, on the training set with every sample of E upsampled
//!    ([`upsampled_indices`] for `train::Sampling::Indices`, or the equivalent per-sample weights
//!    [`sample_weights`]). One epoch is one pass over the upsampled set, N + λ_up·|E| samples.
//! 3. (T, λ_up) and the final model's epoch are chosen by validation worst-group accuracy ([`select`]); groups are
//!    needed on the validation set only.
//!
//! Defaults, where they come from, and what we follow:
//! * Waterbirds, from the README's commands and the code they run (`train.py`, `generate_downstream.py`): ResNet-50
//!   from ImageNet weights for both models, SGD with momentum 0.9, learning rate 1e-5, weight decay 1.0, batch 64,
//!   300 epochs, no learning-rate schedule (`--scheduler` off); T = 60 and λ_up = 100, the paper's choice. `generate_downstream.py` sweeps λ_up ∈ {20, 50, 100} for the chosen T
//!   ([`JttGrid::paper_waterbirds`]). (The README passes `--final_epoch 60` and then runs a `final_epoch50`
//!   folder; the paper's T is 60.)
//! * Upsampling: the code builds `ConcatDataset([train, Subset(train, errors * up_weight)])`, so an error sample is
//!   seen 1 + λ_up times per epoch and every other sample once; the paper's Algorithm 1 says "λ_up times". We follow
//!   the code (at λ_up = 100 the two differ by 1 %).
//! * Error set: the reference reads the predictions logged during the training pass of epoch T (train mode; no
//!   augmentation on Waterbirds by default). We take the eval-mode predictions of the epoch-T model
//!   (`train::predict`): the same model at the end of the epoch instead of during it.
//! * The reference's identification model is epoch T of a constant-learning-rate run, the same as a T-epoch run.
//!   With our warmup + cosine schedule a T-epoch run anneals to zero at T, which is not epoch T of a longer run;
//!   the pipeline decides which it trains (and keeps the last epoch, not a validation-selected one, as JTT does).
//! * Our grid ([`JttGrid::cpu`]) must fit 2 CPU cores: the paper's T is a fifth of the final training (60 of 300);
//!   the quickstart ERM trains 20 epochs, so T ∈ {2, 5} (0.1 and 0.25 of it) and λ_up ∈ {5, 20}, four final
//!   trainings whose epochs are (N + λ_up·|E|) / N times an ERM epoch.
use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};

/// One JTT configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JttParams {
    /// T: epochs of ERM for the identification model.
    pub id_epochs: u32,
    /// λ_up: extra copies of each error-set sample per epoch (each is seen 1 + λ_up times).
    pub lambda_up: usize,
}

/// The (T, λ_up) grid searched on validation worst-group accuracy: every T with every λ_up. A missing list takes
/// the CPU grid's ([`JttGrid::cpu`], the default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JttGrid {
    pub id_epochs: Vec<u32>,
    pub lambda_up: Vec<usize>,
}

impl Default for JttGrid {
    fn default() -> Self {
        Self::cpu()
    }
}

impl JttGrid {
    /// The paper's Waterbirds choice T = 60 with the reference's sweep λ_up ∈ {20, 50, 100} (300-epoch training).
    pub fn paper_waterbirds() -> Self {
        Self {
            id_epochs: vec![60],
            lambda_up: vec![20, 50, 100],
        }
    }

    /// Our CPU grid for a 20-epoch ERM (see the module docs): T ∈ {2, 5}, λ_up ∈ {5, 20}.
    pub fn cpu() -> Self {
        Self {
            id_epochs: vec![2, 5],
            lambda_up: vec![5, 20],
        }
    }

    /// The grid's points, T-major (the order [`select`] breaks ties by).
    pub fn points(&self) -> Vec<JttParams> {
        self.id_epochs
            .iter()
            .flat_map(|&id_epochs| {
                self.lambda_up.iter().map(move |&lambda_up| JttParams {
                    id_epochs,
                    lambda_up,
                })
            })
            .collect()
    }
}

/// Indices of the training samples the identification model gets wrong (ascending).
pub fn error_set(preds: &[i64], labels: &[i64]) -> Result<Vec<usize>> {
    ensure!(
        preds.len() == labels.len(),
        "{} predictions for {} labels",
        preds.len(),
        labels.len()
    );
    Ok(preds
        .iter()
        .zip(labels)
        .enumerate()
        .filter(|(_, (p, y))| p != y)
        .map(|(i, _)| i)
        .collect())
}

fn check_errors(n: usize, errors: &[usize]) -> Result<()> {
    let mut seen = vec![false; n];
    for &e in errors {
        ensure!(
            e < n,
            "error-set index {e} is outside the {n} training samples"
        );
        ensure!(!seen[e], "error-set index {e} appears twice");
        seen[e] = true;
    }
    Ok(())
}

/// One epoch of JTT's upsampled training set, as training indices: `0..n` once, then the error set `lambda_up`
/// times over (the reference's `ConcatDataset([train, Subset(train, errors * λ_up)])`), so an error sample appears
/// 1 + λ_up times. `errors` must be distinct indices below `n`.
pub fn upsampled_indices(n: usize, errors: &[usize], lambda_up: usize) -> Result<Vec<i64>> {
    check_errors(n, errors)?;
    let mut indices: Vec<i64> = (0..n as i64).collect();
    indices.reserve(errors.len() * lambda_up);
    for _ in 0..lambda_up {
        indices.extend(errors.iter().map(|&e| e as i64));
    }
    Ok(indices)
}

/// The same upsampling as per-sample weights: 1 + λ_up for an error-set sample, 1 otherwise (each sample's count
/// in [`upsampled_indices`]).
pub fn sample_weights(n: usize, errors: &[usize], lambda_up: usize) -> Result<Vec<f64>> {
    check_errors(n, errors)?;
    let mut weights = vec![1.0; n];
    for &e in errors {
        weights[e] += lambda_up as f64;
    }
    Ok(weights)
}

/// The configuration with the best validation worst-group accuracy; ties go to the first in `results`' order and
/// NaN accuracies never win. `None` when no result has a number.
pub fn select(results: &[(JttParams, f64)]) -> Option<JttParams> {
    results
        .iter()
        .filter(|(_, acc)| !acc.is_nan())
        .fold(
            None,
            |best: Option<(JttParams, f64)>, &(p, acc)| match best {
                Some((_, b)) if b >= acc => best,
                _ => Some((p, acc)),
            },
        )
        .map(|(p, _)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_set_and_upsampling_by_hand() {
        let preds = [0, 1, 1, 0, 1];
        let labels = [0, 0, 1, 1, 1];
        let errors = error_set(&preds, &labels).unwrap();
        assert_eq!(errors, vec![1, 3]);
        assert_eq!(
            upsampled_indices(5, &errors, 2).unwrap(),
            vec![0, 1, 2, 3, 4, 1, 3, 1, 3]
        );
        let weights = sample_weights(5, &errors, 2).unwrap();
        assert_eq!(weights, vec![1.0, 3.0, 1.0, 3.0, 1.0]);
        // The weights are each sample's count in one upsampled epoch.
        let idx = upsampled_indices(5, &errors, 2).unwrap();
        for (i, w) in weights.iter().enumerate() {
            let count = idx.iter().filter(|&&j| j == i as i64).count();
            assert_eq!(count as f64, *w, "sample {i}");
        }
        // λ_up = 0 and an empty error set are plain ERM epochs.
        assert_eq!(upsampled_indices(3, &[1], 0).unwrap(), vec![0, 1, 2]);
        assert_eq!(upsampled_indices(3, &[], 7).unwrap(), vec![0, 1, 2]);
        assert!(error_set(&[0], &[0, 1]).is_err());
    }

    #[test]
    fn bad_error_sets_are_rejected() {
        assert!(upsampled_indices(3, &[3], 1).is_err());
        assert!(upsampled_indices(3, &[1, 1], 1).is_err());
        assert!(sample_weights(3, &[0, 0], 1).is_err());
    }

    #[test]
    fn grid_points_and_selection() {
        let grid = JttGrid::cpu();
        let points = grid.points();
        assert_eq!(points.len(), 4);
        assert_eq!(
            points[1],
            JttParams {
                id_epochs: 2,
                lambda_up: 20
            }
        );
        assert_eq!(JttGrid::paper_waterbirds().points().len(), 3);
        let results: Vec<(JttParams, f64)> = points
            .iter()
            .copied()
            .zip([0.4, 0.7, f64::NAN, 0.7])
            .collect();
        // 0.7 twice: the first in grid order wins; NaN is skipped.
        assert_eq!(select(&results), Some(points[1]));
        assert_eq!(select(&[(points[0], f64::NAN)]), None);
        assert_eq!(select(&[]), None);
    }
}
