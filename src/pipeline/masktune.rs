//! The MaskTune stage (Asgari et al., "MaskTune: Mitigating Spurious Correlations by Forcing to Explore", NeurIPS
//! 2022; the mechanics and the reference's defaults are in [`crate::methods::masktune`]): the ERM model's GradCAM of
//! its predicted class on every training image (no words, no selection), MaskTune's threshold (mean + 2 std) and
//! zero fill, then the ERM model fine-tuned on the whole masked training set (`mitigation.baselines.masktune`:
//! one epoch of ERM's recipe by default) and evaluated.
//!
//! Output: `seed-<s>/masktune/` = `metrics.csv`, `results.csv`, `summary.json` (masked share per group, and with
//! the data's true bird masks the threshold-free and thresholded quality of the maps against the true background,
//! [`crate::relevance::quality`]), `overlays/*.png`, and `masks.safetensors` with `save_masks`.
use anyhow::{Context, Result};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use tch::{Device, Kind, Tensor};

use super::context::Seed;
use super::erm::Erm;
use super::masks::{save_u8_png, Masks};
use super::outcome::MethodResults;
use super::retrain::{retrain_stage, Retrained, Start};
use crate::data::N_GROUPS;
use crate::methods::masktune::{masks_inspected, MaskBatch, THRESHOLD};
use crate::methods::Method;
use crate::relevance::mask::{black_out, overlay, MaskValue};
use crate::relevance::quality::{self, ImageQuality, QualitySummary};
use crate::relevance::Threshold;
use crate::train::{ClassifierTraining, ModelSelection};

/// `summary.json` of the stage.
#[derive(Serialize)]
struct Summary {
    /// The classifier layer of the GradCAM activations (HF hidden_states index).
    layer: i64,
    threshold: Threshold,
    mask_value: MaskValue,
    n_images: usize,
    /// Mean share of masked pixels per image, over all images and per group g = 2y + place.
    mean_masked_fraction: f64,
    masked_fraction_by_group: Vec<Option<f64>>,
    /// Images whose mask is empty.
    n_empty_masks: usize,
    /// Share of training images the ERM model classifies right (the class whose cam is masked).
    erm_train_accuracy: f64,
    /// Against the true background (`None` without the data's bird masks): the maps and masks of all images.
    quality: Option<QualitySummary>,
    quality_by_group: Option<BTreeMap<String, QualitySummary>>,
}

/// Masks every training image by the ERM model's predicted-class GradCAM, fine-tunes the ERM model on them and
/// evaluates it.
pub fn run(ctx: &Seed, erm: &Erm) -> Result<MethodResults> {
    let (exp, seed, splits) = (ctx.exp(), ctx.seed, ctx.splits());
    let cfg = &exp.config.mitigation.baselines.masktune;
    let tcfg = &exp.recipes().masktune;
    retrain_stage(
        ctx,
        Method::Masktune,
        Start::ErmModel(erm),
        cfg,
        |dir, retraining| {
            let (classifier, mut rng) = retraining.starting_point()?;
            let layer = cfg.layer_for(classifier.model.config().num_hidden_layers);
            let train = &splits.train;
            let n = train.len();
            let groups = train.groups();
            let overlay_rows = overlay_rows(&groups, cfg.overlays);
            let mut fractions = Vec::with_capacity(n);
            let mut correct = 0usize;
            let mut per_image: Vec<Option<ImageQuality>> = Vec::with_capacity(n);
            let progress = crate::progress::bar(n as u64, "masktune masks");
            let masks = masks_inspected(
                &classifier.model,
                &train.images,
                ctx.input(),
                layer,
                cfg.batch_size,
                |b: MaskBatch| {
                    let len = b.preds.len();
                    let rows = b.start as usize..b.start as usize + len;
                    let frac = b
                        .masks
                        .to_kind(Kind::Float)
                        .mean_dim(&[1i64, 2, 3][..], false, Kind::Float)
                        .to_device(Device::Cpu);
                    fractions.extend(Vec::<f64>::try_from(frac.to_kind(Kind::Double))?);
                    correct += rows
                        .clone()
                        .zip(b.preds)
                        .filter(|(r, p)| train.y[*r] == **p)
                        .count();
                    if let Some(bird) = &train.bird_masks {
                        let bird = bird.narrow(0, b.start, len as i64);
                        per_image.extend(quality::per_image_quality(
                            b.cams,
                            &quality::Truth::bird(&bird),
                            Some(b.masks),
                        )?);
                    }
                    for r in rows.filter(|r| overlay_rows.contains(r)) {
                        let k = (r as i64) - b.start;
                        let image = train.images.get(r as i64); // [3, H, W]
                        let cam = b.cams.get(k).to_device(Device::Cpu);
                        let mask = b.masks.get(k).to_device(Device::Cpu);
                        let masked =
                            black_out(&image.unsqueeze(0), &mask.unsqueeze(0)).squeeze_dim(0);
                        let strip =
                            Tensor::cat(&[&image, &overlay(&image, &cam, &mask), &masked], 2);
                        let name = format!(
                            "{}-g{}-pred{}.png",
                            train.img_ids[r], groups[r], b.preds[k as usize]
                        );
                        save_u8_png(&strip, &dir.join("overlays").join(name))?;
                    }
                    progress.inc(len as u64);
                    Ok(())
                },
            )
            .with_context(|| format!("mitigation.baselines.masktune.layer: {layer}"))?;
            progress.finish_and_clear();

            let labels: Vec<String> = groups.iter().map(|g| format!("g{g}")).collect();
            let summary = Summary {
                layer,
                threshold: THRESHOLD,
                mask_value: MaskValue::Zero,
                n_images: n,
                mean_masked_fraction: mean(fractions.iter().copied()).unwrap_or(f64::NAN),
                masked_fraction_by_group: (0..N_GROUPS as i64)
                    .map(|g| {
                        mean(
                            fractions
                                .iter()
                                .zip(&groups)
                                .filter(|(_, gi)| **gi == g)
                                .map(|(f, _)| *f),
                        )
                    })
                    .collect(),
                n_empty_masks: fractions.iter().filter(|&&f| f == 0.0).count(),
                erm_train_accuracy: correct as f64 / n.max(1) as f64,
                quality: train
                    .bird_masks
                    .is_some()
                    .then(|| quality::summarise(&per_image)),
                quality_by_group: train
                    .bird_masks
                    .is_some()
                    .then(|| quality::summarise_by_label(&per_image, &labels))
                    .transpose()?,
            };
            tracing::info!(
                seed,
                layer,
                masked = summary.mean_masked_fraction,
                background_iou = ?summary.quality.as_ref().and_then(|q| q.background_iou),
                "MaskTune masks"
            );
            crate::util::write_json(&dir.join("summary.json"), &summary)?;
            if cfg.save_masks {
                Masks::write(dir, &masks, &(0..n).collect::<Vec<_>>())?;
            }

            let all: Vec<usize> = (0..n).collect();
            let mut masked = train.select(&all);
            masked.images = black_out(&train.images, &masks);
            let val = (tcfg.select == ModelSelection::WorstGroupVal).then_some(&splits.val);
            ClassifierTraining::erm(&classifier.model, &masked, val, tcfg, ctx.input()).run(
                &classifier.vs,
                &mut rng,
                dir,
            )?;
            Ok(Retrained::classifier(classifier, tcfg.batch_size))
        },
    )
}

/// Up to `k` training rows for overlays, spread over the groups: the first rows of each group in turn.
fn overlay_rows(groups: &[i64], k: usize) -> BTreeSet<usize> {
    let mut by_group: Vec<Vec<usize>> = vec![Vec::new(); N_GROUPS];
    for (r, &g) in groups.iter().enumerate() {
        by_group[g as usize].push(r);
    }
    let mut chosen = BTreeSet::new();
    for i in 0.. {
        if chosen.len() >= k || by_group.iter().all(|rows| rows.len() <= i) {
            break;
        }
        for rows in &by_group {
            if let Some(&r) = rows.get(i) {
                if chosen.len() < k {
                    chosen.insert(r);
                }
            }
        }
    }
    chosen
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlays_spread_over_the_groups() {
        let groups = [0, 0, 0, 0, 3, 3, 1, 0, 2];
        assert_eq!(
            overlay_rows(&groups, 4),
            BTreeSet::from([0, 4, 6, 8]),
            "one per group first"
        );
        assert_eq!(overlay_rows(&groups, 6), BTreeSet::from([0, 1, 4, 5, 6, 8]));
        assert_eq!(overlay_rows(&groups, 100).len(), groups.len());
        assert!(overlay_rows(&groups, 0).is_empty());
    }
}
