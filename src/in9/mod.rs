//! The ImageNet-9 / Background Challenge analysis (paper section 4.3, its first shortcut experiment: Figure 5's
//! word clouds per category, Figure 6's predictions on Only-BG-T images; Xiao et al. 2020, "Noise or Signal", for
//! the variants and the BG-gap). Pure computations on plain data: the classifier's top-k predictions and its
//! accuracy per category on each variant, what a category's word cloud says (its class words, its top place word),
//! the category's habitat in the data when the corpus records backgrounds, and how clouds and predictions relate
//! across categories (Spearman's ρ). [`figures`] draws the PNGs; `pipeline::in9` runs the stages.
pub mod figures;

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use tch::{Device, Kind, Tensor};

use crate::data::bg_challenge::{bg_gap, Variant};
use crate::data::InputPipeline;
use crate::models::vit::Vit;
use crate::pretrain::ClassAccuracy;
use crate::stats::spearman;
use crate::text::words::WordFilter;

/// An image's `k` most probable classes, most probable first, with their softmax probabilities.
#[derive(Debug, Clone, PartialEq)]
pub struct TopK {
    pub classes: Vec<i64>,
    pub probs: Vec<f64>,
}

/// The top-`k` predictions of `model` for u8 `images` [n, 3, h, w], in batches without gradients.
pub fn predict_top_k(
    model: &Vit,
    images: &Tensor,
    input: &InputPipeline,
    k: usize,
    batch_size: usize,
) -> Vec<TopK> {
    let n = images.size()[0];
    let k = (k as i64).min(model.config().num_labels).max(1);
    let mut out = Vec::with_capacity(n as usize);
    tch::no_grad(|| {
        for start in (0..n).step_by(batch_size.max(1)) {
            let len = (n - start).min(batch_size as i64);
            let xs = input.eval_batch(&images.narrow(0, start, len));
            let probs = model.forward_t(&xs, false).softmax(-1, Kind::Float); // [b, classes]
            let (values, indices) = probs.topk(k, -1, true, true); // [b, k]
            let values: Vec<f32> = Vec::try_from(values.to_device(Device::Cpu).flatten(0, -1))
                .expect("softmax gives float");
            let indices: Vec<i64> = Vec::try_from(indices.to_device(Device::Cpu).flatten(0, -1))
                .expect("topk gives int64");
            for (c, p) in indices.chunks(k as usize).zip(values.chunks(k as usize)) {
                out.push(TopK {
                    classes: c.to_vec(),
                    probs: p.iter().map(|&v| f64::from(v)).collect(),
                });
            }
        }
    });
    out
}

/// One row of `accuracy.csv`: a variant's accuracy on one class (or `all`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct AccuracyRow {
    pub variant: String,
    pub class: String,
    pub n: usize,
    /// Top-1 accuracy.
    pub top1: f64,
    /// Top-k accuracy (k = the analysis' `top_k`).
    pub topk: f64,
}

/// One row of `predictions.csv`: an image's prediction at a rank (from 1).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct PredictionRow {
    pub variant: String,
    pub file: String,
    pub class: String,
    pub rank: usize,
    pub predicted: String,
    pub prob: f64,
}

/// What a classifier does with one category across the variants.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ClassPredictions {
    pub class: String,
    /// Images of the category per variant.
    pub n: usize,
    /// Variant -> top-1 accuracy.
    pub accuracy: BTreeMap<String, f64>,
    /// Variant -> top-k accuracy.
    pub accuracy_top_k: BTreeMap<String, f64>,
    /// Mixed-Same minus Mixed-Rand accuracy of the category.
    pub bg_gap: Option<f64>,
    /// The classes predicted (top-1) for its Only-BG-T images, most frequent first, with their shares.
    pub only_bg_t_predicted: Vec<(String, f64)>,
}

/// The predictions stage's summary (`predictions/summary.json`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct PredictionSummary {
    pub label_names: Vec<String>,
    pub top_k: usize,
    /// Variant -> top-1 accuracy over all images.
    pub accuracy: BTreeMap<String, f64>,
    /// Variant -> top-k accuracy over all images.
    pub accuracy_top_k: BTreeMap<String, f64>,
    /// Mixed-Same minus Mixed-Rand accuracy over all images (when both variants were scored).
    pub bg_gap: Option<f64>,
    pub per_class: Vec<ClassPredictions>,
}

impl PredictionSummary {
    /// The row of a category.
    pub fn class(&self, name: &str) -> Option<&ClassPredictions> {
        self.per_class.iter().find(|c| c.class == name)
    }
}

/// Top-k accuracy of predictions against labels, per class (NaN for a class without images) and overall.
fn top_k_accuracy(preds: &[TopK], labels: &[i64], n_classes: usize) -> (Vec<f64>, f64) {
    let (mut hit, mut total) = (vec![0usize; n_classes], vec![0usize; n_classes]);
    for (p, &l) in preds.iter().zip(labels) {
        total[l as usize] += 1;
        hit[l as usize] += usize::from(p.classes.contains(&l));
    }
    let per_class = hit
        .iter()
        .zip(&total)
        .map(|(&h, &t)| {
            if t == 0 {
                f64::NAN
            } else {
                h as f64 / t as f64
            }
        })
        .collect();
    let all = hit.iter().sum::<usize>() as f64 / labels.len().max(1) as f64;
    (per_class, all)
}

/// Summarises the predictions of each scored variant (labels and top-k per image).
pub fn summarize_predictions(
    label_names: &[String],
    scored: &BTreeMap<Variant, (Vec<i64>, Vec<TopK>)>,
    top_k: usize,
) -> PredictionSummary {
    let n_classes = label_names.len();
    let mut accuracy = BTreeMap::new();
    let mut accuracy_top_k = BTreeMap::new();
    let mut per_variant = BTreeMap::new();
    for (v, (labels, preds)) in scored {
        let top1: Vec<i64> = preds.iter().map(|p| p.classes[0]).collect();
        let acc = ClassAccuracy::new(&top1, labels, n_classes);
        let (class_topk, all_topk) = top_k_accuracy(preds, labels, n_classes);
        accuracy.insert(v.name().to_string(), acc.accuracy);
        accuracy_top_k.insert(v.name().to_string(), all_topk);
        per_variant.insert(*v, (acc.per_class, class_topk));
    }
    let gap = |a: &BTreeMap<String, f64>| match (
        a.get(Variant::MixedSame.name()),
        a.get(Variant::MixedRand.name()),
    ) {
        (Some(&same), Some(&rand)) => Some(bg_gap(same, rand)),
        _ => None,
    };
    let per_class = label_names
        .iter()
        .enumerate()
        .map(|(c, name)| {
            let accuracy: BTreeMap<String, f64> = per_variant
                .iter()
                .map(|(v, (top1, _))| (v.name().to_string(), top1[c]))
                .collect();
            let accuracy_top_k = per_variant
                .iter()
                .map(|(v, (_, topk))| (v.name().to_string(), topk[c]))
                .collect();
            let n = scored.values().next().map_or(0, |(labels, _)| {
                labels.iter().filter(|&&l| l == c as i64).count()
            });
            let only_bg_t_predicted = scored
                .get(&Variant::OnlyBgT)
                .map(|(labels, preds)| predicted_shares(labels, preds, c as i64, label_names))
                .unwrap_or_default();
            ClassPredictions {
                class: name.clone(),
                n,
                bg_gap: gap(&accuracy),
                accuracy,
                accuracy_top_k,
                only_bg_t_predicted,
            }
        })
        .collect();
    PredictionSummary {
        label_names: label_names.to_vec(),
        top_k,
        bg_gap: gap(&accuracy),
        accuracy,
        accuracy_top_k,
        per_class,
    }
}

/// The top-1 predictions for the images of class `c`: (class name, share), most frequent first, ties by name.
fn predicted_shares(
    labels: &[i64],
    preds: &[TopK],
    c: i64,
    label_names: &[String],
) -> Vec<(String, f64)> {
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    let mut n = 0;
    for (p, &l) in preds.iter().zip(labels) {
        if l == c {
            *counts.entry(p.classes[0]).or_default() += 1;
            n += 1;
        }
    }
    let mut shares: Vec<(String, f64)> = counts
        .into_iter()
        .map(|(k, m)| (name_of(label_names, k), m as f64 / n.max(1) as f64))
        .collect();
    shares.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    shares
}

/// The name of class `k` (`class <k>` for an index outside the names).
pub fn name_of(label_names: &[String], k: i64) -> String {
    usize::try_from(k)
        .ok()
        .and_then(|i| label_names.get(i))
        .cloned()
        .unwrap_or_else(|| format!("class {k}"))
}

/// The words drawn in red in a category's clouds: its label's words and the configured extras, as counted (after
/// stopwords and synonyms), so `duck` reads as `bird` when the synonyms merge species into it.
pub fn class_words(filter: &WordFilter, label: &str, extra: &[String]) -> BTreeSet<String> {
    std::iter::once(label)
        .chain(extra.iter().map(String::as_str))
        .flat_map(|w| filter.words(w))
        .collect()
}

/// Counted place word -> the places it names, from place -> words (each word as counted).
pub fn place_word_map(
    filter: &WordFilter,
    places: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (place, words) in places {
        for w in words.iter().flat_map(|w| filter.words(w)) {
            out.entry(w).or_default().insert(place.clone());
        }
    }
    out
}

/// What a category's cloud says: its ranked (word, freq) list read against its class words and the place words.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct CloudReading {
    /// The cloud's heaviest word.
    pub top_word: Option<String>,
    /// Summed share of the class words (freq: share of all counted words of the category's sentences).
    pub class_word_freq: f64,
    /// Rank (from 1) of the first class word in the cloud.
    pub class_word_rank: Option<usize>,
    /// The heaviest place word, its share and rank.
    pub top_place: Option<String>,
    pub top_place_freq: f64,
    pub top_place_rank: Option<usize>,
    /// Summed share of every place word in the cloud.
    pub place_freq: f64,
    /// The places the top place word names.
    pub top_place_names: Vec<String>,
}

impl CloudReading {
    /// Whether the top place word outweighs the class words ("water" over "fish", paper Figure 5).
    pub fn place_outweighs_class(&self) -> bool {
        self.top_place_freq > self.class_word_freq
    }
}

/// Reads a ranked cloud (most frequent first).
pub fn read_cloud(
    words: &[(String, f64)],
    class_words: &BTreeSet<String>,
    places: &BTreeMap<String, BTreeSet<String>>,
) -> CloudReading {
    let mut reading = CloudReading {
        top_word: words.first().map(|(w, _)| w.clone()),
        class_word_freq: 0.0,
        class_word_rank: None,
        top_place: None,
        top_place_freq: 0.0,
        top_place_rank: None,
        place_freq: 0.0,
        top_place_names: Vec::new(),
    };
    for (i, (word, freq)) in words.iter().enumerate() {
        if class_words.contains(word) {
            reading.class_word_freq += freq;
            reading.class_word_rank.get_or_insert(i + 1);
        } else if let Some(names) = places.get(word) {
            reading.place_freq += freq;
            if reading.top_place.is_none() {
                reading.top_place = Some(word.clone());
                reading.top_place_freq = *freq;
                reading.top_place_rank = Some(i + 1);
                reading.top_place_names = names.iter().cloned().collect();
            }
        }
    }
    reading
}

/// Background -> share of a category's images, from (background) per image.
pub fn background_shares<'a>(
    backgrounds: impl IntoIterator<Item = &'a str>,
) -> BTreeMap<String, f64> {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    let mut n = 0;
    for b in backgrounds {
        *counts.entry(b.to_string()).or_default() += 1;
        n += 1;
    }
    counts
        .into_iter()
        .map(|(b, c)| (b, c as f64 / n.max(1) as f64))
        .collect()
}

/// A category's habitats in the data: the backgrounds holding at least 1.5 times the share a uniform spread over
/// `n_backgrounds` would give them, most frequent first.
pub fn habitats(shares: &BTreeMap<String, f64>, n_backgrounds: usize) -> Vec<String> {
    let bar = 1.5 / n_backgrounds.max(1) as f64;
    let mut out: Vec<(&String, f64)> = shares
        .iter()
        .filter(|(_, &s)| s >= bar)
        .map(|(b, &s)| (b, s))
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    out.into_iter().map(|(b, _)| b.clone()).collect()
}

/// One category of the analysis summary: its cloud against its predictions.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct CategoryRow {
    pub class: String,
    /// The words drawn in red.
    pub class_words: Vec<String>,
    pub cloud: CloudReading,
    /// The cloud of its Only-BG-T images (object hidden), when that variant was explained too: what the
    /// explanation says without the object.
    #[serde(default)]
    pub only_bg_t_cloud: Option<CloudReading>,
    /// The backgrounds over-represented in the category's explained images (when the corpus records backgrounds).
    pub habitats: Option<Vec<String>>,
    /// Share of its explained images on those backgrounds.
    pub habitat_share: Option<f64>,
    /// Summed cloud share of the words that name a habitat.
    pub habitat_word_freq: Option<f64>,
    /// Whether the cloud's top place word names one of its habitats.
    pub cloud_names_habitat: Option<bool>,
    /// Top-1 accuracy on the original images, on Only-BG-T, Mixed-Same, Mixed-Rand; top-k on Only-BG-T.
    pub original: Option<f64>,
    pub only_bg_t: Option<f64>,
    pub only_bg_t_top_k: Option<f64>,
    pub mixed_same: Option<f64>,
    pub mixed_rand: Option<f64>,
    pub bg_gap: Option<f64>,
    pub only_bg_t_predicted: Vec<(String, f64)>,
    /// Share of its Only-BG-T images predicted (top-1) as a category that shares one of its habitats, itself
    /// included: the background read as the habitat, where several categories share one (waterbirds, fish and
    /// boats on water) and top-1 accuracy cannot tell them apart.
    #[serde(default)]
    pub only_bg_t_habitat_mates: Option<f64>,
    /// The same share for predictions drawn uniformly over the categories.
    #[serde(default)]
    pub habitat_mates_chance: Option<f64>,
}

/// The share of `predicted` (class, share) whose class shares a habitat with `habitats` (itself included), and
/// its chance level (the share of all `classes` that do); `None` without a habitat.
pub fn habitat_mates(
    predicted: &[(String, f64)],
    habitats: &[String],
    class_habitats: &BTreeMap<String, Vec<String>>,
) -> Option<(f64, f64)> {
    if habitats.is_empty() {
        return None;
    }
    let mate = |c: &str| {
        class_habitats
            .get(c)
            .is_some_and(|h| h.iter().any(|b| habitats.contains(b)))
    };
    let share = predicted
        .iter()
        .filter(|(c, _)| mate(c))
        .fold(0.0, |acc, (_, s)| acc + s);
    let mates = class_habitats.keys().filter(|c| mate(c)).count();
    Some((share, mates as f64 / class_habitats.len().max(1) as f64))
}

/// Spearman's ρ across categories between two of their measures.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Correlation {
    pub x: String,
    pub y: String,
    /// Categories with both values.
    pub n: usize,
    pub rho: Option<f64>,
}

/// The analysis of one seed's explanations (`seed-<s>/summary/summary.json`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct AnalysisSummary {
    pub seed: u64,
    /// The variant whose clouds are read (the first explained).
    pub variant: String,
    pub rows: Vec<CategoryRow>,
    pub correlations: Vec<Correlation>,
    /// Categories whose top place word outweighs their class words.
    pub n_place_outweighs_class: usize,
    /// Categories with a habitat in the data, and those whose cloud's top place word names it.
    pub n_with_habitat: usize,
    pub n_cloud_names_habitat: usize,
}

/// The measures correlated across categories: (name, accessor).
type Measure = (&'static str, fn(&CategoryRow) -> Option<f64>);

const CLOUD_MEASURES: [Measure; 2] = [
    ("top_place_freq", |r| Some(r.cloud.top_place_freq)),
    ("habitat_word_freq", |r| r.habitat_word_freq),
];

const RELIANCE_MEASURES: [Measure; 4] = [
    ("only_bg_t", |r| r.only_bg_t),
    ("only_bg_t_habitat_mates", |r| r.only_bg_t_habitat_mates),
    ("bg_gap", |r| r.bg_gap),
    ("habitat_share", |r| r.habitat_share),
];

/// Spearman's ρ of every cloud measure against every reliance measure, over the categories with both values.
pub fn correlations(rows: &[CategoryRow]) -> Vec<Correlation> {
    let mut out = Vec::new();
    for (xn, x) in CLOUD_MEASURES {
        for (yn, y) in RELIANCE_MEASURES {
            let pairs: Vec<(f64, f64)> = rows
                .iter()
                .filter_map(|r| Some((x(r)?, y(r)?)))
                .filter(|(a, b)| a.is_finite() && b.is_finite())
                .collect();
            if pairs.is_empty() {
                continue;
            }
            let (xs, ys): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
            out.push(Correlation {
                x: xn.to_string(),
                y: yn.to_string(),
                n: xs.len(),
                rho: spearman(&xs, &ys),
            });
        }
    }
    out
}

/// Assembles the summary from the per-category rows.
pub fn summarize(seed: u64, variant: &str, rows: Vec<CategoryRow>) -> AnalysisSummary {
    AnalysisSummary {
        seed,
        variant: variant.to_string(),
        correlations: correlations(&rows),
        n_place_outweighs_class: rows
            .iter()
            .filter(|r| r.cloud.place_outweighs_class())
            .count(),
        n_with_habitat: rows
            .iter()
            .filter(|r| r.habitats.as_ref().is_some_and(|h| !h.is_empty()))
            .count(),
        n_cloud_names_habitat: rows
            .iter()
            .filter(|r| r.cloud_names_habitat == Some(true))
            .count(),
        rows,
    }
}

fn pct(x: Option<f64>) -> String {
    match x {
        // `+ 0.0` turns an empty sum's -0.0 into 0.0.
        Some(v) if v.is_finite() => format!("{:.1}", 100.0 * v + 0.0),
        _ => "–".into(),
    }
}

fn signed_pts(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{:+.1}", 100.0 * v),
        _ => "–".into(),
    }
}

fn shares(list: &[(String, f64)], k: usize) -> String {
    list.iter()
        .take(k)
        .map(|(c, s)| format!("{c} {:.0}", 100.0 * s))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The Background Challenge table: accuracy per variant overall and per category, the BG-gap, and what the
/// classifier predicts from the background alone.
pub fn predictions_markdown(p: &PredictionSummary) -> String {
    let variants: Vec<&str> = Variant::ALL
        .iter()
        .map(|v| v.name())
        .filter(|v| p.accuracy.contains_key(*v))
        .collect();
    let mut s = String::from(
        "Background Challenge (Xiao et al. 2020): top-1 accuracy in % per variant; BG-gap = mixed_same − \
         mixed_rand (points); Only-BG-T predictions: the classes predicted (top-1) for a category's images with \
         the object hidden, % of its images.\n\n",
    );
    s.push_str("| Class | n |");
    for v in &variants {
        s.push_str(&format!(" {v} |"));
    }
    s.push_str(&format!(
        " only_bg_t top-{} | BG-gap | Only-BG-T predicted |\n|---|---:|",
        p.top_k
    ));
    for _ in &variants {
        s.push_str("---:|");
    }
    s.push_str("---:|---:|---|\n");
    let n_all: usize = p.per_class.iter().map(|c| c.n).sum();
    s.push_str(&format!("| **all** | {n_all} |"));
    for v in &variants {
        s.push_str(&format!(" {} |", pct(p.accuracy.get(*v).copied())));
    }
    s.push_str(&format!(
        " {} | {} | |\n",
        pct(p.accuracy_top_k.get(Variant::OnlyBgT.name()).copied()),
        signed_pts(p.bg_gap)
    ));
    for c in &p.per_class {
        s.push_str(&format!("| {} | {} |", c.class, c.n));
        for v in &variants {
            s.push_str(&format!(" {} |", pct(c.accuracy.get(*v).copied())));
        }
        s.push_str(&format!(
            " {} | {} | {} |\n",
            pct(c.accuracy_top_k.get(Variant::OnlyBgT.name()).copied()),
            signed_pts(c.bg_gap),
            shares(&c.only_bg_t_predicted, 3)
        ));
    }
    s
}

/// The per-category table of clouds against predictions, and the correlations.
pub fn summary_markdown(a: &AnalysisSummary) -> String {
    let mut s = format!(
        "Seed {}: word clouds of the `{}` images per category against the classifier's reliance on the \
         background. Shares in % of all counted words of the category's sentences; accuracies in %; BG-gap in \
         points; habitat: the backgrounds over-represented in the category's images (from the corpus' metadata).\n\n",
        a.seed, a.variant
    );
    s.push_str(
        "| Class | Top word | Class words % | Class words % (Only-BG-T cloud) | Top place (rank) | Top place % | \
         Habitat | Cloud names it | Original | Only-BG-T | Only-BG-T → habitat (chance) | BG-gap | \
         Only-BG-T predicted |\n|---|---|---:|---:|---|---:|---|---|---:|---:|---:|---:|---|\n",
    );
    for r in &a.rows {
        let habitat = r
            .habitats
            .as_ref()
            .map(|h| {
                if h.is_empty() {
                    "none".into()
                } else {
                    h.join("+")
                }
            })
            .unwrap_or_else(|| "–".into());
        let names = match r.cloud_names_habitat {
            Some(true) => "yes",
            Some(false) => "no",
            None => "–",
        };
        let mates = match (r.only_bg_t_habitat_mates, r.habitat_mates_chance) {
            (Some(m), Some(c)) => format!("{} ({})", pct(Some(m)), pct(Some(c))),
            _ => "–".into(),
        };
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {mates} | {} | {} |\n",
            r.class,
            r.cloud.top_word.as_deref().unwrap_or("–"),
            pct(Some(r.cloud.class_word_freq)),
            pct(r.only_bg_t_cloud.as_ref().map(|c| c.class_word_freq)),
            match (&r.cloud.top_place, r.cloud.top_place_rank) {
                (Some(w), Some(k)) => format!("{w} ({k})"),
                _ => "–".into(),
            },
            pct(Some(r.cloud.top_place_freq)),
            habitat,
            names,
            pct(r.original),
            pct(r.only_bg_t),
            signed_pts(r.bg_gap),
            shares(&r.only_bg_t_predicted, 2),
        ));
    }
    s.push_str(&format!(
        "\nTop place word outweighs the class words in {} of {} categories; the top place word names the habitat \
         in {} of the {} categories with one.\n\nSpearman's ρ across categories:\n\n| Cloud measure | Reliance \
         measure | Categories | ρ |\n|---|---|---:|---:|\n",
        a.n_place_outweighs_class,
        a.rows.len(),
        a.n_cloud_names_habitat,
        a.n_with_habitat
    ));
    for c in &a.correlations {
        s.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            c.x,
            c.y,
            c.n,
            c.rho.map_or("–".into(), |r| format!("{r:+.2}"))
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::words::WordConfig;

    fn filter() -> WordFilter {
        WordFilter::new(&WordConfig {
            extra_stopwords: vec![],
            synonyms: [
                ("bird".to_string(), vec!["duck".to_string()]),
                (
                    "water".to_string(),
                    vec!["lake".to_string(), "sea".to_string()],
                ),
            ]
            .into(),
        })
        .unwrap()
    }

    #[test]
    fn clouds_are_read_against_class_and_place_words() {
        let f = filter();
        assert_eq!(
            class_words(&f, "duck", &[]),
            BTreeSet::from(["bird".to_string()])
        );
        assert_eq!(
            class_words(&f, "wheeled vehicle", &["car".into()]),
            BTreeSet::from(["car".into(), "vehicle".into(), "wheeled".into()])
        );
        let places = place_word_map(
            &f,
            &[
                ("lake".to_string(), vec!["lake".to_string()]),
                ("ocean".to_string(), vec!["sea".to_string()]),
                ("street".to_string(), vec!["the street".to_string()]),
            ]
            .into(),
        );
        assert_eq!(places["water"].len(), 2, "{places:?}");
        assert!(places.contains_key("street"));
        let cloud: Vec<(String, f64)> = [
            ("water", 0.3),
            ("bird", 0.2),
            ("street", 0.1),
            ("big", 0.05),
        ]
        .iter()
        .map(|(w, f)| (w.to_string(), *f))
        .collect();
        let r = read_cloud(&cloud, &class_words(&f, "duck", &[]), &places);
        assert_eq!(r.top_word.as_deref(), Some("water"));
        assert_eq!(
            (r.top_place.as_deref(), r.top_place_rank),
            (Some("water"), Some(1))
        );
        assert_eq!(r.top_place_names, ["lake", "ocean"]);
        assert_eq!(r.class_word_rank, Some(2));
        assert!((r.place_freq - 0.4).abs() < 1e-12 && r.place_outweighs_class());
        let none = read_cloud(&[], &BTreeSet::new(), &places);
        assert_eq!((none.top_word, none.top_place), (None, None));
    }

    #[test]
    fn habitat_mates_count_predictions_that_share_a_habitat() {
        let class_habitats: BTreeMap<String, Vec<String>> = [
            ("duck", vec!["lake"]),
            ("fish", vec!["lake", "ocean"]),
            ("car", vec!["street"]),
            ("dog", vec![]),
        ]
        .into_iter()
        .map(|(c, h)| (c.to_string(), h.into_iter().map(String::from).collect()))
        .collect();
        let predicted = [
            ("fish".to_string(), 0.5),
            ("car".to_string(), 0.3),
            ("duck".to_string(), 0.2),
        ];
        let (share, chance) =
            habitat_mates(&predicted, &class_habitats["duck"], &class_habitats).unwrap();
        assert!(
            (share - 0.7).abs() < 1e-12 && chance == 0.5,
            "{share} {chance}"
        );
        assert_eq!(habitat_mates(&predicted, &[], &class_habitats), None);
    }

    #[test]
    fn habitats_are_the_over_represented_backgrounds() {
        let shares = background_shares(["street", "street", "street", "sky", "wall", "lake"]);
        assert_eq!(shares["street"], 0.5);
        // 4 backgrounds: the bar is 1.5 / 4 = 0.375.
        assert_eq!(habitats(&shares, 4), ["street"]);
        assert!(habitats(&background_shares(["a", "b", "c"]), 3).is_empty());
    }

    fn top(c: &[i64]) -> TopK {
        TopK {
            classes: c.to_vec(),
            probs: vec![0.5; c.len()],
        }
    }

    #[test]
    fn prediction_summary_by_hand() {
        let names: Vec<String> = ["car", "fish"].iter().map(|s| s.to_string()).collect();
        let labels = vec![0, 0, 1, 1];
        let mut scored = BTreeMap::new();
        scored.insert(
            Variant::OnlyBgT,
            (
                labels.clone(),
                vec![top(&[0, 1]), top(&[1, 0]), top(&[0, 1]), top(&[0, 1])],
            ),
        );
        scored.insert(
            Variant::MixedSame,
            (
                labels.clone(),
                vec![top(&[0]), top(&[0]), top(&[1]), top(&[1])],
            ),
        );
        scored.insert(
            Variant::MixedRand,
            (
                labels.clone(),
                vec![top(&[0]), top(&[1]), top(&[1]), top(&[0])],
            ),
        );
        let s = summarize_predictions(&names, &scored, 2);
        assert_eq!(s.accuracy["only_bg_t"], 0.25);
        assert_eq!(s.accuracy_top_k["only_bg_t"], 1.0);
        assert_eq!(s.bg_gap, Some(0.5));
        let car = s.class("car").unwrap();
        assert_eq!(
            (car.n, car.accuracy["only_bg_t"], car.bg_gap),
            (2, 0.5, Some(0.5))
        );
        assert_eq!(
            car.only_bg_t_predicted,
            [("car".to_string(), 0.5), ("fish".to_string(), 0.5)]
        );
        let fish = s.class("fish").unwrap();
        assert_eq!(fish.only_bg_t_predicted, [("car".to_string(), 1.0)]);
        assert_eq!(fish.bg_gap, Some(0.5));
        let md = predictions_markdown(&s);
        assert!(
            md.contains("| **all** | 4 |") && md.contains("| fish | 2 |"),
            "{md}"
        );
    }
}
