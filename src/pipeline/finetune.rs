//! The fine-tuning stages (paper section 4.3, step 5): per method, the ERM model fine-tuned on the method's
//! selection with its masked region filled (`mitigation.gradcam.mask_value`), then evaluated. Output:
//! `seed-<s>/<method>/` = `metrics.csv`, `results.csv`.
use anyhow::{bail, Context, Result};

use super::context::Seed;
use super::erm::Erm;
use super::flags::Flags;
use super::masks::{self, Masks};
use super::stage::{run_stage, Stage, StageDone, StageKey};
use crate::methods::{MaskSource, Method};
use crate::relevance::mask::apply_masks;
use crate::report::{self, ResultRow};
use crate::runtime::{set_seed, stage_seed};
use crate::train::{ClassifierTraining, ModelSelection};
use tch::Tensor;

/// A finished fine-tuning stage.
pub struct Finetuned {
    pub done: StageDone,
}

impl Finetuned {
    /// Its val and test rows.
    pub fn results(&self) -> Result<Vec<ResultRow>> {
        Ok(report::read_results_csv(
            &self.done.dir.join("results.csv"),
        )?)
    }
}

/// Fine-tunes the ERM model on `method`'s masked selection and evaluates it.
pub fn run(
    ctx: &Seed,
    method: Method,
    erm: &Erm,
    flags: &Flags,
    masks: &Masks,
) -> Result<Finetuned> {
    let (exp, seed, splits) = (ctx.exp(), ctx.seed, ctx.splits());
    let cfg = &exp.config.mitigation;
    let stage = Stage::Finetune(method);
    let mut key = StageKey::new(stage);
    key.add("seed", &seed)
        .reads("erm", &erm.done.content)
        .reads("flags", &flags.done.content)
        .reads("masks", &masks.done.content)
        .add("finetune", &cfg.finetune);
    key.add("mask_value", &cfg.gradcam.mask_value);
    let done = run_stage(&ctx.dir, stage, &key, |dir| {
        let (Some(chosen), Some(source)) =
            (masks::selection(method, flags, seed), method.mask_source())
        else {
            bail!("{method} is not a fine-tuning method");
        };
        if chosen.is_empty() {
            // Nothing flagged: the procedure has no sample to fine-tune on, so its outcome is the ERM model.
            tracing::warn!(
                seed,
                "{method}: no training sample was flagged, so there is nothing to fine-tune on; \
                 {method} keeps the ERM model and reports its accuracy"
            );
            let rows: Vec<ResultRow> = erm
                .results()?
                .into_iter()
                .map(|row| ResultRow {
                    method: method.name().to_string(),
                    ..row
                })
                .collect();
            report::write_results_csv(&dir.join("results.csv"), &rows)?;
            return Ok(());
        }
        let train = &splits.train;
        let region = match source {
            MaskSource::TrueBackground => {
                let bird = train
                    .bird_masks
                    .as_ref()
                    .context("oracle: the data ship no true bird masks (fg_masks/)")?;
                let index =
                    Tensor::from_slice(&chosen.iter().map(|&r| r as i64).collect::<Vec<_>>());
                bird.index_select(0, &index).eq(0) // mask the whole true background
            }
            MaskSource::Relevance => masks.for_rows(&chosen)?,
        };
        let mut subset = train.select(&chosen);
        subset.images = apply_masks(&subset.images, &region, cfg.gradcam.mask_value);
        let classifier = erm.classifier(exp.device)?;
        let mut rng = set_seed(stage_seed(seed, method.name()));
        let val = (cfg.finetune.select == ModelSelection::WorstGroupVal).then_some(&splits.val);
        let training =
            ClassifierTraining::erm(&classifier.model, &subset, val, &cfg.finetune, ctx.input());
        training.run(&classifier.vs, &mut rng, dir)?;
        let rows = ctx
            .run
            .evaluate(&classifier.model, seed, method, cfg.finetune.batch_size);
        report::write_results_csv(&dir.join("results.csv"), &rows)?;
        Ok(())
    })?;
    Ok(Finetuned { done })
}
