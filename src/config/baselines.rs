//! `mitigation.baselines`: the parameters of the field's baselines (MaskTune, JTT, DFR on validation, online group
//! DRO), each defaulting to its paper's or reference implementation's choice where one transfers to our setting and
//! to a documented CPU-sized choice where it does not (the method modules under [`crate::methods`] say which and
//! why). Every baseline starts from the same ERM checkpoint (`classifier`) or the same initialisation as ERM, and
//! trains with ERM's recipe (`classifier.train`) unless its own `train` / `finetune` is given.
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

use super::schema::{Config, Method, ModelSelection, TrainConfig};
use super::validate::validate_train;
use crate::methods::dfr::{DfrConfig, LogRegConfig, C_GRID_WATERBIRDS};
use crate::methods::jtt::JttGrid;
use crate::train::GroupDroConfig;

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
    /// fine-tunes one epoch at its ERM's learning rate).
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

    /// The fine-tuning recipe: `finetune`, or ERM's `classifier.train` for one epoch (no warmup, last epoch).
    pub fn finetune_for(&self, erm: &TrainConfig) -> TrainConfig {
        self.finetune.clone().unwrap_or_else(|| TrainConfig {
            epochs: 1,
            warmup_epochs: 0.0,
            select: ModelSelection::Last,
            ..erm.clone()
        })
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

/// Range checks of the `mitigation.baselines` blocks of the methods the config runs, each error naming the key
/// path and the value. (A block of a method not run is not checked: the default JTT grid does not fit a config whose
/// classifier trains for one epoch, and need not.)
pub fn validate(cfg: &Config) -> Result<()> {
    let runs = |m: Method| cfg.mitigation.methods.contains(&m);
    let b = &cfg.mitigation.baselines;
    if runs(Method::Masktune) {
        validate_masktune(cfg, &b.masktune)?;
    }
    if runs(Method::Jtt) {
        validate_jtt(cfg, &b.jtt)?;
    }
    if runs(Method::Dfr) {
        validate_dfr(&b.dfr)?;
    }
    if runs(Method::Groupdro) {
        validate_groupdro(&b.groupdro)?;
    }
    Ok(())
}

const PATH: &str = "mitigation.baselines";

fn validate_masktune(cfg: &Config, m: &MasktuneSection) -> Result<()> {
    let path = PATH;
    let depth = cfg.classifier.num_hidden_layers;
    if cfg.classifier.pretrained.is_none() {
        let layer = m.layer_for(depth);
        if !(0..depth).contains(&layer) {
            bail!(
                "{path}.masktune.layer: {layer} is outside 0..{depth}; the head reads only the CLS token, so the \
                 patch tokens after the last block ({depth}, or -1) have no gradient (the last block's input is {})",
                depth - 1
            );
        }
    } else if let Some(layer) = m.layer.filter(|&l| l < 0) {
        bail!("{path}.masktune.layer: {layer} must be a hidden_states index >= 0 below the classifier's depth");
    }
    if m.batch_size == 0 {
        bail!("{path}.masktune.batch_size: must be at least 1");
    }
    if let Some(t) = &m.finetune {
        validate_train(&format!("{path}.masktune.finetune"), t)?;
    }
    Ok(())
}

fn validate_jtt(cfg: &Config, j: &JttSection) -> Result<()> {
    let path = PATH;
    let jtt_train = j.train.as_ref().unwrap_or(&cfg.classifier.train);
    if let Some(t) = &j.train {
        validate_train(&format!("{path}.jtt.train"), t)?;
    }
    if j.grid.id_epochs.is_empty() || j.grid.lambda_up.is_empty() {
        bail!(
            "{path}.jtt.grid: id_epochs {:?} and lambda_up {:?} must both list at least one value",
            j.grid.id_epochs,
            j.grid.lambda_up
        );
    }
    for &t in &j.grid.id_epochs {
        if t == 0 || t > jtt_train.epochs {
            bail!(
                "{path}.jtt.grid.id_epochs: {t} is outside 1..={} (the identification model is the training \
                 recipe stopped after T of its {} epochs)",
                jtt_train.epochs,
                jtt_train.epochs
            );
        }
    }
    if BTreeSet::from_iter(&j.grid.id_epochs).len() != j.grid.id_epochs.len()
        || BTreeSet::from_iter(&j.grid.lambda_up).len() != j.grid.lambda_up.len()
    {
        bail!(
            "{path}.jtt.grid: id_epochs {:?} / lambda_up {:?} list a value twice",
            j.grid.id_epochs,
            j.grid.lambda_up
        );
    }
    Ok(())
}

fn validate_dfr(d: &DfrSection) -> Result<()> {
    let path = PATH;
    if d.c_grid.is_empty() {
        bail!("{path}.dfr.c_grid: the C grid is empty");
    }
    if let Some(c) = d.c_grid.iter().find(|c| !(c.is_finite() && **c > 0.0)) {
        bail!("{path}.dfr.c_grid: {c} is not a positive number");
    }
    if d.tune_retrains == 0 || d.final_retrains == 0 {
        bail!(
            "{path}.dfr.tune_retrains {} / final_retrains {}: both must be at least 1",
            d.tune_retrains,
            d.final_retrains
        );
    }
    if !(d.logreg.tol.is_finite() && d.logreg.tol > 0.0) || d.logreg.max_iter == 0 {
        bail!(
            "{path}.dfr.logreg: tol {} must be positive and max_iter {} at least 1",
            d.logreg.tol,
            d.logreg.max_iter
        );
    }
    if d.batch_size == 0 {
        bail!("{path}.dfr.batch_size: must be at least 1");
    }
    Ok(())
}

fn validate_groupdro(g: &GroupDroSection) -> Result<()> {
    let path = PATH;
    if !(g.step_size.is_finite() && g.step_size >= 0.0) {
        bail!(
            "{path}.groupdro.step_size: {} must be a number >= 0",
            g.step_size
        );
    }
    if !(g.generalization_adjustment.is_finite() && g.generalization_adjustment >= 0.0) {
        bail!(
            "{path}.groupdro.generalization_adjustment: {} must be a number >= 0",
            g.generalization_adjustment
        );
    }
    if let Some(t) = &g.train {
        validate_train(&format!("{path}.groupdro.train"), t)?;
    }
    Ok(())
}
