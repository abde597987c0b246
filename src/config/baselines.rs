//! `mitigation.baselines`: the parameters of the field's baselines (MaskTune, JTT, DFR on validation, online group
//! DRO), each defaulting to its paper's or reference implementation's choice where one transfers to our setting and
//! to a documented CPU-sized choice where it does not (the method modules under [`crate::methods`] say which and
//! why). Every baseline starts from the same ERM checkpoint (`classifier`) or the same initialisation as ERM, and
//! trains with ERM's recipe (`classifier.train`) unless its own `train` / `finetune` is given (resolved once, in
//! [`super::recipes`]). Data only: the range checks are in [`super::validate`].
use serde::{Deserialize, Serialize};

use crate::methods::dfr::{DfrConfig, LogRegConfig, C_GRID_WATERBIRDS};
use crate::methods::jtt::JttGrid;
use crate::train::GroupDroConfig;
use crate::train::TrainConfig;

/// `mitigation.baselines`: one block per baseline method.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BaselinesSection {
    pub masktune: MasktuneSection,
    pub jtt: JttSection,
    pub dfr: DfrSection,
    pub groupdro: GroupDroSection,
}

/// MaskTune (`crate::methods::masktune`): masks from the ERM model's predicted-class GradCAM on every training
/// image (threshold mean + 2 std, zero fill: the reference's, fixed), then one epoch of fine-tuning.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct MasktuneSection {
    /// Classifier layer of the GradCAM activations (HF hidden_states index). Unset: L − 1, the input of the last
    /// block (the head reads only the CLS token, so the last layer's patch tokens get no gradient).
    pub layer: Option<i64>,
    /// The fine-tuning. Unset: `classifier.train` for one epoch without warmup, last epoch kept (the reference
    /// fine-tunes one epoch at its ERM's learning rate; resolved in [`super::recipes`]).
    pub finetune: Option<TrainConfig>,
    /// Images per GradCAM batch.
    pub batch_size: usize,
    /// Overlay PNGs (image | cam | masked) written per seed.
    pub overlays: usize,
    /// Also write every training image's mask (`masks.safetensors`, u8 [n, 1, H, W]).
    pub save_masks: bool,
}

impl Default for MasktuneSection {
    fn default() -> Self {
        Self {
            layer: None,
            finetune: None,
            batch_size: 32,
            overlays: 8,
            save_masks: false,
        }
    }
}

impl MasktuneSection {
    /// The GradCAM layer for a classifier with `depth` blocks.
    pub fn layer_for(&self, depth: i64) -> i64 {
        self.layer.unwrap_or(depth - 1)
    }
}

/// JTT (`crate::methods::jtt`): (T, λ_up) over `grid`, each final model trained from ERM's initialisation with
/// `train` (unset: `classifier.train`); the identification model is that recipe stopped after T epochs.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields, default)]
pub struct JttSection {
    /// T (epochs of the identification model) x λ_up (extra copies of an error per epoch). Default: the CPU grid
    /// T ∈ {2, 5}, λ_up ∈ {5, 20} for a 20-epoch ERM (the paper: T = 60 of 300, λ_up ∈ {20, 50, 100}).
    pub grid: JttGrid,
    pub train: Option<TrainConfig>,
}

/// DFR on validation (`crate::methods::dfr`): the reference's defaults (C grid of its Waterbirds runs, 1 tuning
/// split, 20 final fits). The splits' and subsamples' random stream comes from the run seed.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct DfrSection {
    /// Inverse ℓ1 strengths to choose from, in tie-breaking order.
    pub c_grid: Vec<f64>,
    /// Random half-splits of the validation set the C choice sums over.
    pub tune_retrains: usize,
    /// Balanced subsamples of the validation set whose fits are averaged into the final head.
    pub final_retrains: usize,
    pub logreg: LogRegConfig,
    /// Images per feature batch.
    pub batch_size: usize,
}

impl Default for DfrSection {
    fn default() -> Self {
        let reference = DfrConfig::default();
        Self {
            c_grid: C_GRID_WATERBIRDS.to_vec(),
            tune_retrains: reference.tune_retrains,
            final_retrains: reference.final_retrains,
            logreg: reference.logreg,
            batch_size: 256,
        }
    }
}

impl DfrSection {
    /// The method's parameters with the splits' random stream seeded by `seed`.
    pub fn config(&self, seed: u64) -> DfrConfig {
        DfrConfig {
            c_grid: self.c_grid.clone(),
            tune_retrains: self.tune_retrains,
            final_retrains: self.final_retrains,
            seed,
            logreg: self.logreg,
        }
    }
}

/// How group DRO's training batches are drawn.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum GroupSampling {
    /// Weights N / n_g, N draws per epoch with replacement (the reference's `--reweight_groups`).
    #[default]
    Balanced,
    /// Every training sample once per epoch, as ERM.
    Shuffle,
}

/// Online group DRO (`crate::methods::groupdro`) with the reference's defaults (η = 0.01, C = 0, group-balanced
/// sampling), trained from ERM's initialisation with `train` (unset: `classifier.train`).
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct GroupDroSection {
    /// η, the exponentiated-gradient step of the group weights.
    pub step_size: f64,
    /// C of the adjustment C / sqrt(n_g); 0 turns it off.
    pub generalization_adjustment: f64,
    pub sampling: GroupSampling,
    pub train: Option<TrainConfig>,
}

impl Default for GroupDroSection {
    fn default() -> Self {
        let reference = GroupDroConfig::default();
        Self {
            step_size: reference.step_size,
            generalization_adjustment: reference.generalization_adjustment,
            sampling: GroupSampling::Balanced,
            train: None,
        }
    }
}

impl GroupDroSection {
    pub fn config(&self) -> GroupDroConfig {
        GroupDroConfig {
            step_size: self.step_size,
            generalization_adjustment: self.generalization_adjustment,
        }
    }
}
