//! Pretraining the classifier on an upstream corpus (the role ImageNet plays for the paper's ViT-B/16): a
//! multi-class classifier on labelled class folders (IN-9L layout, [`crate::data::bg_challenge`]), its own head
//! with `id2label`, the epoch kept by validation accuracy. ERM then starts from it with a new 2-label head, as it
//! starts from a user's HF checkpoint. Also the evaluation of such a classifier on the Background Challenge
//! variants (Xiao et al. 2020): accuracy per variant and the BG-gap (Mixed-Same minus Mixed-Rand).
use anyhow::{Context, Result};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use tch::{nn, Tensor};

use crate::data::bg_challenge::{bg_gap, BgChallenge, ClassFolders, Variant};
use crate::data::InputPipeline;
use crate::models::vit::Vit;
use crate::train::{
    fit, restore_vars, snapshot_vars, Batch, ModelSelection, Sampling, TrainConfig,
};
use crate::util::write_atomic;

/// Accuracy of a multi-class classifier on a labelled set.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ClassAccuracy {
    /// Plain accuracy over all images.
    pub accuracy: f64,
    /// The lowest accuracy of a class (the multi-class analogue of worst-group accuracy).
    pub worst_class: f64,
    /// Accuracy per class, in label order.
    pub per_class: Vec<f64>,
}

impl ClassAccuracy {
    /// From predictions and labels over `n_classes` classes; a class without images counts as NaN in
    /// `per_class` and is left out of `worst_class`.
    pub fn new(preds: &[i64], labels: &[i64], n_classes: usize) -> Self {
        let (mut right, mut total) = (vec![0usize; n_classes], vec![0usize; n_classes]);
        for (&p, &l) in preds.iter().zip(labels) {
            total[l as usize] += 1;
            right[l as usize] += usize::from(p == l);
        }
        let per_class: Vec<f64> = right
            .iter()
            .zip(&total)
            .map(|(&r, &t)| {
                if t == 0 {
                    f64::NAN
                } else {
                    r as f64 / t as f64
                }
            })
            .collect();
        let worst_class = per_class
            .iter()
            .copied()
            .filter(|a| !a.is_nan())
            .fold(f64::NAN, f64::min);
        let n_right: usize = right.iter().sum();
        Self {
            accuracy: n_right as f64 / preds.len().max(1) as f64,
            worst_class,
            per_class,
        }
    }

    /// The accuracy of `model` on `set`.
    pub fn of(model: &Vit, set: &ClassFolders, input: &InputPipeline) -> Self {
        let preds = crate::train::predict(model, &set.images, input, 256);
        Self::new(&preds, &set.labels, set.num_classes())
    }
}

/// What pretraining reports (`pretrain/summary.json`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct PretrainSummary {
    pub label_names: Vec<String>,
    pub n_train: usize,
    pub n_val: usize,
    pub selected_epoch: u32,
    /// The selected epoch's validation accuracy.
    pub val: ClassAccuracy,
    /// Accuracy per Background Challenge variant (when the corpus has one), and the BG-gap.
    pub bg_challenge: Option<BgChallengeAccuracy>,
}

/// A classifier's accuracy on the Background Challenge variants.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct BgChallengeAccuracy {
    /// Variant name -> plain accuracy.
    pub accuracy: BTreeMap<String, f64>,
    /// Mixed-Same minus Mixed-Rand accuracy (when both were loaded): how much the background helps.
    pub bg_gap: Option<f64>,
}

impl BgChallengeAccuracy {
    pub fn of(model: &Vit, challenge: &BgChallenge, input: &InputPipeline) -> Self {
        let accuracy: BTreeMap<String, f64> = challenge
            .variants
            .iter()
            .map(|(v, set)| {
                (
                    v.name().to_string(),
                    ClassAccuracy::of(model, set, input).accuracy,
                )
            })
            .collect();
        let bg_gap = match (
            accuracy.get(Variant::MixedSame.name()),
            accuracy.get(Variant::MixedRand.name()),
        ) {
            (Some(&same), Some(&rand)) => Some(bg_gap(same, rand)),
            _ => None,
        };
        Self { accuracy, bg_gap }
    }
}

/// The best epoch so far: its number, validation accuracy and weights.
struct BestEpoch {
    epoch: u32,
    acc: ClassAccuracy,
    weights: Vec<(String, Tensor)>,
}

/// Pretraining a classifier (its head sized to the corpus' classes) on class folders.
pub struct Pretraining<'a> {
    pub model: &'a Vit,
    pub train: &'a ClassFolders,
    pub val: &'a ClassFolders,
    pub cfg: &'a TrainConfig,
    pub input: &'a InputPipeline,
}

impl Pretraining<'_> {
    /// Trains the model (its variables in `vs`) with cross-entropy over the corpus' classes, keeps the epoch of
    /// best validation accuracy (`select: worst_group_val`, the first such epoch) or the last (`select: last`),
    /// and writes `metrics.csv` into `out_dir`. Returns the kept epoch and its validation accuracy.
    pub fn run(
        &self,
        vs: &nn::VarStore,
        rng: &mut ChaCha8Rng,
        out_dir: &Path,
    ) -> Result<(u32, ClassAccuracy)> {
        let Self {
            model,
            train,
            val,
            cfg,
            input,
        } = *self;
        anyhow::ensure!(
            model.config().num_labels as usize == train.num_classes(),
            "the classifier has {} labels, the corpus {} classes",
            model.config().num_labels,
            train.num_classes()
        );
        let labels = Tensor::from_slice(&train.labels).to_device(input.device);
        let mut csv = String::from("epoch,lr,train_loss,val_accuracy,val_worst_class\n");
        let mut best: Option<BestEpoch> = None;
        let mut last = None;
        fit(
            vs,
            cfg,
            &Sampling::Shuffle(train.len()),
            rng,
            "pretrain",
            |chunk| {
                let batch = Batch::new(chunk, &train.images, &labels, input)?;
                Ok(model
                    .forward_t(&batch.xs, true)
                    .cross_entropy_for_logits(&batch.ys)) // [b, classes] -> []
            },
            |e| {
                let acc = ClassAccuracy::of(model, val, input);
                csv.push_str(&format!(
                    "{},{:.6e},{:.6},{:.6},{:.6}\n",
                    e.epoch, e.lr, e.train_loss, acc.accuracy, acc.worst_class
                ));
                tracing::info!(
                    epoch = e.epoch,
                    train_loss = e.train_loss,
                    val_accuracy = acc.accuracy,
                    "pretrain"
                );
                if cfg.select == ModelSelection::WorstGroupVal
                    && best.as_ref().is_none_or(|b| acc.accuracy > b.acc.accuracy)
                {
                    best = Some(BestEpoch {
                        epoch: e.epoch,
                        acc: acc.clone(),
                        weights: snapshot_vars(vs),
                    });
                }
                last = Some((e.epoch, acc));
                Ok(())
            },
        )?;
        write_atomic(&out_dir.join("metrics.csv"), &csv)
            .context("writing the per-epoch metrics")?;
        Ok(match best {
            Some(BestEpoch {
                epoch,
                acc,
                weights,
            }) => {
                restore_vars(vs, &weights);
                (epoch, acc)
            }
            None => last.context("pretraining ran no epoch")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_accuracy_by_hand() {
        // Labels 0,0,1,1,2 ; predictions 0,1,1,1,0.
        let acc = ClassAccuracy::new(&[0, 1, 1, 1, 0], &[0, 0, 1, 1, 2], 4);
        assert!((acc.accuracy - 3.0 / 5.0).abs() < 1e-12);
        assert_eq!(acc.per_class[..3], [0.5, 1.0, 0.0]);
        assert!(acc.per_class[3].is_nan(), "a class without images is NaN");
        assert_eq!(acc.worst_class, 0.0);
    }
}
