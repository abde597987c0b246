//! The fine-tuning stages (paper section 4.3, step 5): per method, the ERM model fine-tuned on the method's
//! selection with its masked region filled (`mitigation.masks.mask_value`), then evaluated. Output:
//! `seed-<s>/<method>/` = `metrics.csv`, `results.csv`, and for the methods whose masks are made here (every
//! [`MaskSource`] but the masks stage's own relevance masks: the oracles, frame, object complement, the lent masks)
//! `masks.json`, their coverage and agreement with the true background ([`MaskSummary`]).
use anyhow::{bail, Context, Result};

use super::context::Seed;
use super::erm::Erm;
use super::flags::Flags;
use super::masks::{self, MaskSummary, Masks};
use super::stage::{run_stage, Stage, StageDone, StageKey};
use crate::config::{RecipeSampling, TrainSet};
use crate::data::Dataset;
use crate::methods::arms;
use crate::methods::{MaskSource, Method};
use crate::relevance::mask::{apply_masks, donor_backgrounds, donor_rows, MaskValue};
use crate::report::{self, ResultRow};
use crate::runtime::{set_seed, stage_seed};
use crate::train::{ClassifierTraining, ModelSelection, Sampling};
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
    let stage = Stage::Method(method);
    let mut key = StageKey::new(stage);
    key.add("seed", &seed)
        .reads("erm", &erm.done.content)
        .reads("flags", &flags.done.content)
        .reads("masks", &masks.done.content)
        .add("finetune", &cfg.finetune)
        .add("mask_value", &cfg.masks.mask_value)
        .add("recipe", &cfg.recipe);
    if method.mask_source() == Some(MaskSource::ObjectComplement) {
        // The rule its masks are cut by (the relevance masks' rule reaches the others through the masks stage).
        key.add("threshold", &cfg.masks.threshold);
    }
    if cfg.masks.off_true_bird {
        key.add("off_true_bird", &true);
    }
    if method.mask_source() == Some(MaskSource::RelevanceLent) {
        // The rule that names the word whose masks are lent (code, not config).
        key.add("spurious_word", &arms::SPURIOUS_WORD_RULE);
    }
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
        let classifier = erm.classifier(exp.device)?;
        let true_bird = |who: &str| {
            train
                .bird_masks
                .as_ref()
                .with_context(|| format!("{who}: the data ship no true bird masks (fg_masks/)"))
        };
        let mut lent_from = None;
        let region = match source {
            MaskSource::Relevance => masks.for_rows(&chosen)?,
            MaskSource::RelevanceLent => {
                let word = arms::spurious_word(&flags.flags, &splits.train.y)
                    .context("no flagged sample names a spurious word")?;
                let keeps: Vec<bool> = chosen
                    .iter()
                    .map(|&r| flags.flags[r].target.as_deref() == Some(word.as_str()))
                    .collect();
                tracing::info!(
                    seed,
                    %method,
                    word,
                    keepers = keeps.iter().filter(|&&k| k).count(),
                    selected = chosen.len(),
                    "masks lent from the samples that target the spurious word"
                );
                lent_from = Some(word);
                arms::lend_masks(&masks.for_rows(&chosen)?, &keeps)?
            }
            MaskSource::TrueBackground => {
                // the whole true background
                arms::true_background_masks(true_bird(method.name())?, &chosen)
            }
            MaskSource::CentrePrior => {
                let (_, _, size, _) = train.images.size4()?;
                let counts = arms::coverage_counts(&masks.for_rows(&chosen)?)?;
                arms::frame_masks(&counts, size)?
            }
            MaskSource::ObjectComplement => {
                let index =
                    Tensor::from_slice(&chosen.iter().map(|&r| r as i64).collect::<Vec<_>>());
                let classes: Vec<i64> = chosen.iter().map(|&r| train.y[r]).collect();
                arms::object_complement_masks(
                    &classifier.model,
                    &train.images.index_select(0, &index),
                    &classes,
                    ctx.input(),
                    cfg.masks.threshold,
                    cfg.masks.batch_size,
                )?
            }
            MaskSource::TrueObject => arms::true_object_masks(
                train.object_masks.as_ref(),
                &chosen,
                &exp.config.data.root.join("object_masks"),
            )?,
            MaskSource::TrueObjectBalanced => {
                arms::balanced_object_masks(&arms::true_object_masks(
                    train.object_masks.as_ref(),
                    &chosen,
                    &exp.config.data.root.join("object_masks"),
                )?)?
            }
        };
        let region = if cfg.masks.off_true_bird {
            // The diagnostic: every mask kept off the true bird (it reads the ground truth, as the oracles do).
            let bird = true_bird("mitigation.masks.off_true_bird")?;
            region
                .to_kind(tch::Kind::Bool)
                .logical_and(&arms::true_background_masks(bird, &chosen))
        } else {
            region
        };
        if source_made_here(Some(source)) || cfg.masks.off_true_bird {
            let row_of = chosen
                .iter()
                .enumerate()
                .map(|(k, &r)| (r, k as i64))
                .collect();
            let name = match &lent_from {
                Some(word) => format!("{}({word})", source.name()),
                None => source.name().to_string(),
            };
            let name = if cfg.masks.off_true_bird {
                format!("{name}_off_true_bird")
            } else {
                name
            };
            let summary = masks::summarize(method, &name, &chosen, &region, &row_of, train, seed);
            crate::util::write_json(&dir.join("masks.json"), &summary)?;
        }
        let selected = train.select(&chosen); // its images [n, 3, H, W]
        let donors = match cfg.masks.mask_value {
            MaskValue::Zero | MaskValue::Mean => None,
            // Any training image, the same donor for a row in every arm.
            MaskValue::Donor => {
                let donor_of = donor_rows(train.len(), stage_seed(seed, "mask-donors"));
                Some(
                    train
                        .select(&chosen.iter().map(|&r| donor_of[r]).collect::<Vec<_>>())
                        .images,
                )
            }
            // Another masked sample of this arm, its masked pixels only.
            MaskValue::DonorBackground => Some(donor_backgrounds(
                &selected.images,
                &region,
                &donor_rows(chosen.len(), stage_seed(seed, "mask-donors")),
            )),
        };
        let masked = apply_masks(
            &selected.images,
            &region,
            cfg.masks.mask_value,
            donors.as_ref(),
        )?;
        let subset = match cfg.recipe.train_set {
            TrainSet::Selection => Dataset {
                images: masked,
                ..selected
            },
            TrainSet::All => {
                let index =
                    Tensor::from_slice(&chosen.iter().map(|&r| r as i64).collect::<Vec<_>>());
                Dataset {
                    images: train.images.index_copy(0, &index, &masked),
                    ..train.select(&(0..train.len()).collect::<Vec<_>>())
                }
            }
        };
        let depth = classifier.model.config().num_hidden_layers as usize;
        cfg.recipe.trainable.apply(&classifier.vs, depth);
        let mut rng = set_seed(stage_seed(seed, method.name()));
        let val = (cfg.finetune.select == ModelSelection::WorstGroupVal).then_some(&splits.val);
        let sampling = match cfg.recipe.sampling {
            RecipeSampling::Shuffle => Sampling::Shuffle(subset.len()),
            RecipeSampling::ClassBalanced => Sampling::Weighted {
                weights: class_balanced_weights(&subset.y),
                draws: subset.len(),
            },
        };
        let training = ClassifierTraining {
            sampling,
            include_start: cfg.recipe.include_start,
            ..ClassifierTraining::erm(&classifier.model, &subset, val, &cfg.finetune, ctx.input())
        };
        training.run(&classifier.vs, &mut rng, dir)?;
        let rows = ctx
            .run
            .evaluate(&classifier.model, seed, method, cfg.finetune.batch_size);
        report::write_results_csv(&dir.join("results.csv"), &rows)?;
        Ok(())
    })?;
    Ok(Finetuned { done })
}

/// Whether the masks of `source` are made in the fine-tuning stage (all but the masks stage's relevance masks).
fn source_made_here(source: Option<MaskSource>) -> bool {
    source.is_some_and(|s| s != MaskSource::Relevance)
}

/// The `masks.json` of a fine-tuning stage whose masks it made itself.
pub fn mask_summary(done: &StageDone) -> Result<Option<MaskSummary>> {
    let path = done.dir.join("masks.json");
    Ok(if path.is_file() {
        Some(crate::util::read_json(&path)?)
    } else {
        None
    })
}

/// Per-sample weights that make both classes equally likely: 1 / (samples of the sample's class).
pub fn class_balanced_weights(y: &[i64]) -> Vec<f64> {
    let mut counts = std::collections::HashMap::new();
    for &c in y {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    y.iter().map(|c| 1.0 / counts[c] as f64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_balanced_weights_give_each_class_the_same_mass() {
        let w = class_balanced_weights(&[0, 0, 0, 1]);
        assert_eq!(w, [1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0, 1.0]);
        let mass = |c: i64| -> f64 {
            [0, 0, 0, 1]
                .iter()
                .zip(&w)
                .filter(|(y, _)| **y == c)
                .map(|(_, w)| w)
                .sum()
        };
        assert!((mass(0) - mass(1)).abs() < 1e-12);
    }
}
