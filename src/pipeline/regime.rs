//! The regime check: is the classifier in the paper's regime, where the bird is in the features and ERM leans on
//! the background anyway? Per seed, linear probes on frozen features (the final-layernormed CLS token, the head's
//! input), fitted as DFR fits its last layer (Kirichenko et al. 2023: group-balanced validation data, ℓ1 logistic
//! regression, C chosen on validation halves; [`crate::methods::dfr::dfr_val`]) and scored per group on test:
//! - `scratch_init`: a randomly initialised classifier of the configured architecture;
//! - `pretrained_init`: the classifier ERM starts from, when the run pretrains or loads a checkpoint;
//! - `erm`: the ERM model.
//!
//! If the bird cannot be read linearly from the pretrained features, no masking can help. Output:
//! `seed-<s>/regime/summary.json`.
use anyhow::Result;
use serde::{Deserialize, Serialize};
use tch::nn;

use super::context::{scratch_config, Seed};
use super::erm::{initial_classifier, Erm};
use super::pretrain::Pretrained;
use super::stage::{run_stage, Stage, StageKey};
use crate::data::Dataset;
use crate::methods::dfr::{self, DfrConfig};
use crate::metrics;
use crate::models::vit::Vit;
use crate::runtime::{set_seed, stage_seed};
use crate::util::{read_json, write_json};

/// Whose features a probe reads.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Features {
    ScratchInit,
    PretrainedInit,
    Erm,
}

impl Features {
    pub fn name(self) -> &'static str {
        match self {
            Features::ScratchInit => "scratch_init",
            Features::PretrainedInit => "pretrained_init",
            Features::Erm => "erm",
        }
    }
}

/// One linear probe's test accuracy per group.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Probe {
    pub features: Features,
    /// The regularisation DFR's tuning chose.
    pub c: f64,
    pub group_acc: Vec<f64>,
    pub worst_group: f64,
    pub avg_train_weighted: f64,
    pub avg_plain: f64,
}

/// `regime/summary.json`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct RegimeSummary {
    pub seed: u64,
    pub probes: Vec<Probe>,
    /// Probes that could not be fitted, with the reason (e.g. a validation split too small to balance by group).
    /// The check informs; it never stops a run.
    #[serde(default)]
    pub not_fitted: Vec<(Features, String)>,
}

/// Fits the probe on `model`'s features (val, balanced by group) and scores it on test.
fn probe(ctx: &Seed, features: Features, model: &Vit) -> Result<Probe> {
    let (splits, input) = (ctx.splits(), ctx.input());
    let feats = |d: &Dataset| dfr::features(model, &d.images, input, 256);
    let (train_x, val_x, test_x) = (
        feats(&splits.train)?,
        feats(&splits.val)?,
        feats(&splits.test)?,
    );
    let cfg = DfrConfig {
        seed: stage_seed(ctx.seed, "regime-probe"),
        ..DfrConfig::default()
    };
    let fitted = dfr::dfr_val(&val_x, &splits.val.y, &splits.val.groups(), &train_x, &cfg)?;
    let preds = fitted.predict(&test_x);
    let test = &splits.test;
    let accs = metrics::group_accuracies(&preds, &test.y, &test.groups(), crate::data::N_GROUPS)?;
    Ok(Probe {
        features,
        c: fitted.c,
        group_acc: accs.iter().map(|a| a.unwrap_or(f64::NAN)).collect(),
        worst_group: metrics::worst_group(&accs),
        avg_train_weighted: metrics::avg_train_weighted(&accs, &splits.train_group_counts())
            .unwrap_or(f64::NAN),
        avg_plain: metrics::avg_plain(&preds, &test.y)?,
    })
}

/// Runs the probes of a seed.
pub fn run(ctx: &Seed, erm: &Erm, pretrained: Option<&Pretrained>) -> Result<RegimeSummary> {
    let (exp, seed) = (ctx.exp(), ctx.seed);
    let mut key = StageKey::new(Stage::Regime);
    key.add("seed", &seed)
        .reads("erm", &erm.done.content)
        .add("classifier", &exp.config.classifier);
    if let Some(p) = pretrained {
        key.reads("pretrain", &p.done.content);
    }
    let done = run_stage(&ctx.dir, Stage::Regime, &key, |dir| {
        set_seed(stage_seed(seed, "regime-scratch"));
        let vs = nn::VarStore::new(exp.device);
        let scratch = Vit::new(&vs.root(), &scratch_config(exp));
        let mut models = vec![(Features::ScratchInit, scratch)];
        if pretrained.is_some() || exp.config.classifier.pretrained.is_some() {
            models.push((
                Features::PretrainedInit,
                initial_classifier(exp, pretrained)?.model,
            ));
        }
        models.push((Features::Erm, erm.classifier(exp.device)?.model));
        let mut summary = RegimeSummary {
            seed,
            probes: Vec::new(),
            not_fitted: Vec::new(),
        };
        for (features, model) in &models {
            match probe(ctx, *features, model) {
                Ok(p) => {
                    tracing::info!(
                        seed,
                        features = features.name(),
                        worst_group = p.worst_group,
                        avg = p.avg_plain,
                        "linear probe"
                    );
                    summary.probes.push(p);
                }
                Err(err) => {
                    tracing::warn!(
                        seed,
                        features = features.name(),
                        "linear probe not fitted: {err:#}"
                    );
                    summary.not_fitted.push((*features, format!("{err:#}")));
                }
            }
        }
        write_json(&dir.join("summary.json"), &summary)
    })?;
    read_json(&done.dir.join("summary.json"))
}
