//! The DFR stage, DFR on validation (Kirichenko, Izmailov & Wilson, "Last Layer Re-Training is Sufficient for
//! Robustness to Spurious Correlations", ICLR 2023; the mechanics and the reference's defaults are in
//! [`crate::methods::dfr`]): the ERM model frozen, its head's input features (the final CLS token) computed for the
//! training and validation splits without augmentation; C chosen on random halves of the validation set (one half,
//! group-balanced, trains an ℓ1 logistic regression, the other scores its worst group), then the regressions fitted
//! on group-balanced subsamples of the whole validation set averaged into a new last layer, which replaces the ERM
//! head. It trains on the validation split's group labels: tables mark it, and its val rows are in-sample.
//!
//! Output: `seed-<s>/dfr/` = `results.csv`, `tuning.csv` (C, mean held-out worst-group accuracy, chosen),
//! `summary.json` (chosen C, convergence, sizes), `head.safetensors` (the new `classifier.weight` [2, d] and
//! `classifier.bias` [2]).
use anyhow::{Context, Result};
use serde::Serialize;
use std::fmt::Write as _;
use tch::Tensor;

use super::context::Seed;
use super::erm::Erm;
use super::outcome::MethodResults;
use super::retrain::{retrain_stage, Retrained, Start};
use crate::methods::dfr;
use crate::methods::Method;
use crate::runtime::stage_seed;
use crate::util::{write_atomic, write_json};

#[derive(Serialize)]
struct Summary {
    c: f64,
    converged: bool,
    n_val: usize,
    n_features: i64,
    tune_retrains: usize,
    final_retrains: usize,
    /// The val rows of `results.csv` score the data the last layer was trained on.
    val_rows_in_sample: bool,
}

/// Retrains the ERM model's last layer on validation features and evaluates it.
pub fn run(ctx: &Seed, erm: &Erm) -> Result<MethodResults> {
    let (exp, seed, splits) = (ctx.exp(), ctx.seed, ctx.splits());
    let cfg = &exp.config.mitigation.baselines.dfr;
    let method = Method::Dfr;
    retrain_stage(ctx, method, Start::ErmModel(erm), cfg, |dir, retraining| {
        // The splits and subsamples draw from their own stream (`dfr_cfg.seed`), not the classifier's.
        let (mut classifier, _) = retraining.starting_point()?;
        classifier.vs.freeze();
        let vit = &classifier.model;
        let features = |data: &crate::data::Dataset| {
            dfr::features(vit, &data.images, ctx.input(), cfg.batch_size)
        };
        let (val_x, train_x) = (features(&splits.val)?, features(&splits.train)?);
        let val = &splits.val;
        let dfr_cfg = cfg.config(stage_seed(seed, method.name()));
        let model = dfr::dfr_val(&val_x, &val.y, &val.groups(), &train_x, &dfr_cfg)
            .context("DFR on the validation split (mitigation.baselines.dfr)")?;
        tracing::info!(
            seed,
            c = model.c,
            converged = model.converged,
            "DFR last layer fitted"
        );

        let (weight, bias) = model.linear_head();
        let vars = classifier.vs.variables();
        tch::no_grad(|| -> Result<()> {
            for (name, value) in [("classifier.weight", &weight), ("classifier.bias", &bias)] {
                let mut var = vars
                    .get(name)
                    .with_context(|| format!("the ERM classifier has no `{name}`"))?
                    .shallow_clone();
                anyhow::ensure!(
                    var.size() == value.size(),
                    "`{name}` is {:?}, the DFR head {:?}",
                    var.size(),
                    value.size()
                );
                var.copy_(&value.to_device(var.device()));
            }
            Ok(())
        })?;
        Tensor::write_safetensors(
            &[("classifier.weight", &weight), ("classifier.bias", &bias)],
            dir.join("head.safetensors"),
        )
        .context("writing the DFR head")?;

        let mut tuning = String::from("c,heldout_worst_group,chosen\n");
        for &(c, score) in &model.tuning {
            let _ = writeln!(tuning, "{c},{score:.6},{}", u8::from(c == model.c));
        }
        write_atomic(&dir.join("tuning.csv"), tuning)?;
        write_json(
            &dir.join("summary.json"),
            &Summary {
                c: model.c,
                converged: model.converged,
                n_val: val.len(),
                n_features: val_x.size()[1],
                tune_retrains: cfg.tune_retrains,
                final_retrains: cfg.final_retrains,
                val_rows_in_sample: true,
            },
        )?;
        Ok(Retrained::classifier(classifier, cfg.batch_size))
    })
}
