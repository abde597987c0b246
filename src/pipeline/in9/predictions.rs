//! The predictions stage of the ImageNet-9 analysis (shared by seeds: it reads only the frozen classifier): the
//! classifier's top-k predictions on every Background Challenge variant present (Xiao et al. 2020), its accuracy per
//! variant and category, the BG-gap (Mixed-Same minus Mixed-Rand), and what it predicts for each category's
//! Only-BG-T images, whose object is hidden (paper Figure 6). Output: `<run>/predictions/` = `accuracy.csv`,
//! `predictions.csv` (top-k per image of `original` and `only_bg_t`), `summary.json` ([`PredictionSummary`]),
//! `table.md`, `predictions.png` (per category: an original image, its Only-BG-T version and the top predictions on
//! it: the Only-BG-T image whose own class is most probable), `accuracy.png` (bars per category and variant).
use anyhow::Result;
use std::collections::BTreeMap;
use tch::Tensor;

use super::Analysis;
use crate::data::bg_challenge::{
    check_same_classes, list_classes, load_variant, variant_dir, Variant,
};
use crate::in9::figures::{accuracy_bars, prediction_grid, GridExample};
use crate::in9::{
    name_of, predict_top_k, predictions_markdown, summarize_predictions, AccuracyRow,
    PredictionRow, PredictionSummary, TopK,
};
use crate::models::vit::Vit;
use crate::pipeline::stage::{run_stage, Stage, StageDone, StageKey};
use crate::text::wordcloud::save_png;
use crate::util::{read_json, write_atomic, write_csv_rows, write_json};

/// The variants whose per-image predictions are written and drawn.
pub const DRAWN: [Variant; 2] = [Variant::Original, Variant::OnlyBgT];

/// The variants of the accuracy figure, in its order.
pub const FIGURE_VARIANTS: [Variant; 4] = [
    Variant::Original,
    Variant::OnlyBgT,
    Variant::MixedSame,
    Variant::MixedRand,
];

/// The finished predictions stage.
pub struct Predictions {
    pub done: StageDone,
}

impl Predictions {
    pub fn summary(&self) -> Result<PredictionSummary> {
        read_json(&self.done.dir.join("summary.json"))
    }
}

/// HWC RGB bytes of image `i` of a u8 [n, 3, s, s] tensor.
fn hwc(images: &Tensor, i: usize) -> Result<Vec<u8>> {
    let img = images.get(i as i64).permute([1, 2, 0]).contiguous();
    Ok(Vec::<u8>::try_from(img.flatten(0, -1))?)
}

/// The probability of class `c` among an image's top-k (0 when it is not among them).
fn prob_of(p: &TopK, c: i64) -> f64 {
    p.classes
        .iter()
        .zip(&p.probs)
        .find(|(&k, _)| k == c)
        .map_or(0.0, |(_, &q)| q)
}

/// Scores the classifier on every variant of the challenge folder (or finds it scored).
pub fn run(analysis: &Analysis, vit: &Vit) -> Result<Predictions> {
    let (exp, section) = (analysis.exp, analysis.section);
    let mut key = StageKey::new(Stage::Predictions);
    key.reads(analysis.classifier.name, &analysis.classifier.content)
        .add("challenge", &analysis.challenge_fingerprint)
        .add("normalize", &exp.config.data.normalize)
        .add("top_k", &section.top_k);
    let done = run_stage(&exp.out_dir, Stage::Predictions, &key, |dir| {
        let root = &analysis.challenge;
        let reference = variant_dir(root, Variant::Original);
        let mut scored: BTreeMap<Variant, (Vec<i64>, Vec<TopK>)> = BTreeMap::new();
        let mut rows = Vec::new();
        let mut drawn = BTreeMap::new();
        for v in Variant::ALL {
            let vdir = variant_dir(root, v);
            if !vdir.is_dir() {
                tracing::info!(variant = %v, "not in the challenge folder; not scored");
                continue;
            }
            check_same_classes(
                &analysis.class_dirs,
                &reference,
                &list_classes(&vdir)?,
                &vdir,
            )?;
            let data = load_variant(root, v, &analysis.opts, false)?;
            let preds = predict_top_k(vit, &data.images, &analysis.input, section.top_k, 256);
            if DRAWN.contains(&v) {
                for ((file, &label), p) in data.files.iter().zip(&data.labels).zip(&preds) {
                    for (rank, (&c, &prob)) in p.classes.iter().zip(&p.probs).enumerate() {
                        rows.push(PredictionRow {
                            variant: v.name().to_string(),
                            file: file.clone(),
                            class: name_of(&analysis.label_names, label),
                            rank: rank + 1,
                            predicted: name_of(&analysis.label_names, c),
                            prob,
                        });
                    }
                }
                drawn.insert(v, (data.files.clone(), data.images.shallow_clone()));
            }
            scored.insert(v, (data.labels, preds));
        }
        let summary = summarize_predictions(&analysis.label_names, &scored, section.top_k);
        let mut accuracy = Vec::new();
        for (v, (labels, _)) in &scored {
            let name = v.name();
            accuracy.push(AccuracyRow {
                variant: name.to_string(),
                class: "all".into(),
                n: labels.len(),
                top1: summary.accuracy[name],
                topk: summary.accuracy_top_k[name],
            });
            for c in &summary.per_class {
                accuracy.push(AccuracyRow {
                    variant: name.to_string(),
                    class: c.class.clone(),
                    n: c.n,
                    top1: c.accuracy[name],
                    topk: c.accuracy_top_k[name],
                });
            }
        }
        write_csv_rows(&dir.join("accuracy.csv"), &accuracy)?;
        write_csv_rows(&dir.join("predictions.csv"), &rows)?;
        write_json(&dir.join("summary.json"), &summary)?;
        write_atomic(&dir.join("table.md"), predictions_markdown(&summary))?;
        if let (Some((files, original)), Some((bg_files, only_bg_t)), Some((labels, preds))) = (
            drawn.get(&Variant::Original),
            drawn.get(&Variant::OnlyBgT),
            scored.get(&Variant::OnlyBgT),
        ) {
            let size = analysis.opts.image_size as usize;
            let mut examples = Vec::new();
            for (c, class) in analysis.label_names.iter().enumerate() {
                // The category's Only-BG-T image on which its own class is most probable (the first of ties).
                let best = (0..labels.len()).filter(|&i| labels[i] == c as i64).fold(
                    None,
                    |best: Option<usize>, i| match best {
                        Some(b) if prob_of(&preds[b], c as i64) >= prob_of(&preds[i], c as i64) => {
                            Some(b)
                        }
                        _ => Some(i),
                    },
                );
                let Some(i) = best else { continue };
                let Some(j) = files.iter().position(|f| *f == bg_files[i]) else {
                    continue;
                };
                examples.push(GridExample {
                    class: class.clone(),
                    size,
                    original: hwc(original, j)?,
                    only_bg_t: hwc(only_bg_t, i)?,
                    top: preds[i]
                        .classes
                        .iter()
                        .zip(&preds[i].probs)
                        .map(|(&k, &p)| (name_of(&analysis.label_names, k), p))
                        .collect(),
                });
            }
            let grid = prediction_grid(
                &examples,
                "Only-BG-T (object hidden): per category the image most probable for its own class, and the \
                 classifier's top predictions on it (own class in red)",
            );
            save_png(&grid, &dir.join("predictions.png"))?;
        }
        let series: Vec<Variant> = FIGURE_VARIANTS
            .into_iter()
            .filter(|v| summary.accuracy.contains_key(v.name()))
            .collect();
        let bar = |acc: &BTreeMap<String, f64>| -> Vec<f64> {
            series
                .iter()
                .map(|v| acc.get(v.name()).copied().unwrap_or(f64::NAN))
                .collect()
        };
        let mut bars = vec![("all".to_string(), bar(&summary.accuracy))];
        bars.extend(
            summary
                .per_class
                .iter()
                .map(|c| (c.class.clone(), bar(&c.accuracy))),
        );
        let names: Vec<&str> = series.iter().map(|v| v.name()).collect();
        let title = match summary.bg_gap {
            Some(g) => format!(
                "Background Challenge accuracy per category (BG-gap {:+.1} points)",
                100.0 * g
            ),
            None => "Background Challenge accuracy per category".to_string(),
        };
        save_png(
            &accuracy_bars(&bars, &names, &title),
            &dir.join("accuracy.png"),
        )
    })?;
    Ok(Predictions { done })
}
