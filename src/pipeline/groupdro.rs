//! The group DRO stage (Sagawa et al., "Distributionally Robust Neural Networks for Group Shifts", ICLR 2020,
//! Algorithm 1; the loss and the reference's defaults are in [`crate::train::GroupDro`]): a classifier
//! trained anew from ERM's initialisation with ERM's recipe (or `mitigation.baselines.groupdro.train`), its loss the
//! online group-DRO objective over the training split's groups and its batches drawn group-balanced (the
//! reference's `--reweight_groups`), its epoch chosen as ERM's is. It reads the training split's group labels, which
//! the other methods do not: tables mark it.
//!
//! Output: `seed-<s>/groupdro/` = `metrics.csv`, `results.csv`, `summary.json` (selected epoch, sampling).
use anyhow::Result;
use serde::Serialize;

use super::context::Seed;
use super::outcome::MethodResults;
use super::pretrain::Pretrained;
use super::retrain::{retrain_stage, Retrained, Start};
use crate::config::GroupSampling;
use crate::data::N_GROUPS;
use crate::methods::groupdro::balanced_sampling_weights;
use crate::methods::Method;
use crate::train::GroupDroConfig;
use crate::train::{ClassifierTraining, Objective, Sampling};
use crate::util::write_json;

#[derive(Serialize)]
struct Summary {
    dro: GroupDroConfig,
    sampling: GroupSampling,
    selected_epoch: u32,
    val_worst_group: Option<f64>,
}

/// Trains group DRO from ERM's initialisation and evaluates it.
pub fn run(ctx: &Seed, pretrained: Option<&Pretrained>) -> Result<MethodResults> {
    let (exp, seed, splits) = (ctx.exp(), ctx.seed, ctx.splits());
    let cfg = &exp.config.mitigation.baselines.groupdro;
    let recipe = &exp.recipes().groupdro;
    retrain_stage(
        ctx,
        Method::Groupdro,
        Start::ErmInit(pretrained),
        cfg,
        |dir, retraining| {
            let train = &splits.train;
            let sampling = match cfg.sampling {
                GroupSampling::Balanced => Sampling::Weighted {
                    weights: balanced_sampling_weights(&train.groups(), N_GROUPS)?,
                    draws: train.len(),
                },
                GroupSampling::Shuffle => Sampling::Shuffle(train.len()),
            };
            let (classifier, mut rng) = retraining.starting_point()?;
            let training = ClassifierTraining {
                sampling,
                objective: Objective::GroupDro(cfg.config()),
                ..retraining.erm_training(&classifier, recipe)
            };
            let summary = training.run(&classifier.vs, &mut rng, dir)?;
            tracing::info!(seed, epoch = summary.selected_epoch, val_worst = ?summary.val_worst_group, "group DRO model selected");
            write_json(
                &dir.join("summary.json"),
                &Summary {
                    dro: cfg.config(),
                    sampling: cfg.sampling,
                    selected_epoch: summary.selected_epoch,
                    val_worst_group: summary.val_worst_group,
                },
            )?;
            Ok(Retrained::classifier(classifier, recipe.batch_size))
        },
    )
}
