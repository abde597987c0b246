//! Flagging training samples from their explanations (paper section 4.3, as done in MaskTune): a sample is
//! flagged when the top word of its explanation is not one of its class's words; its target word, whose region is
//! masked, is the first dominant word that is not a class word. The Random baseline draws as many samples at random.
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};

use crate::data::Dataset;
use crate::metrics;

/// One training sample's explanation verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    pub img_id: i64,
    /// Its dominant words, most frequent first.
    pub top_words: Vec<String>,
    pub flagged: bool,
    /// The first dominant word that is not a class word (None when every dominant word names the class).
    pub target: Option<String>,
}

/// The paper's rule: flagged when the top word is not one of the class's words; the target is the first
/// dominant word that is not a class word.
pub fn flag(top_words: &[String], class_words: &[String]) -> (bool, Option<String>) {
    let is_class = |w: &String| class_words.contains(w);
    let flagged = top_words.first().is_some_and(|w| !is_class(w));
    (flagged, top_words.iter().find(|w| !is_class(w)).cloned())
}

/// Indices (into the training split) of the flagged samples, ascending.
pub fn flagged_indices(flags: &[Flag]) -> Vec<usize> {
    (0..flags.len()).filter(|&i| flags[i].flagged).collect()
}

/// `k` of `n` training indices drawn uniformly without replacement, ascending (the Random baseline's selection).
pub fn random_selection(n: usize, k: usize, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<usize> {
    let mut chosen = sample(rng, n, k).into_vec();
    chosen.sort_unstable();
    chosen
}

/// How the flagged set relates to what it should find (`flags/summary.json`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct FlagSummary {
    pub n_train: usize,
    pub n_flagged: usize,
    pub flagged_fraction: f64,
    /// Flagged set vs the minority groups (place differs from the class's usual place: g = 1, 2).
    pub minority_precision: Option<f64>,
    pub minority_recall: Option<f64>,
    /// Flagged set vs the training samples the ERM model gets wrong.
    pub erm_error_precision: Option<f64>,
    pub erm_error_recall: Option<f64>,
    pub flagged_per_group: Vec<usize>,
    /// Do the explanations name the spurious attribute where the image carries it (and not where it does not)?
    #[serde(default)]
    pub attribute_words: Option<AttributeWordRates>,
}

/// How often a training image's top words name the attribute's value 1 (e.g. the spurious object's words), among
/// the images that carry it and among those that do not: the prerequisite of flagging by the attribute's word.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct AttributeWordRates {
    /// The attribute's words (after synonym merges, the canonical ones count).
    pub words: Vec<String>,
    /// Images with attribute value 1.
    pub carrying: WordRate,
    /// Images with attribute value 0.
    pub without: WordRate,
}

/// Over `n` images: the share whose top words hold one of the words, and the share whose top word is one.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct WordRate {
    pub n: usize,
    pub in_top_words: Option<f64>,
    pub top_word: Option<f64>,
}

impl AttributeWordRates {
    /// The rates over `flags` (training-split order) for the attribute values `attribute` (0/1 per image).
    pub fn new(flags: &[Flag], attribute: &[i64], words: &[String]) -> Self {
        let rate = |value: i64| {
            let rows: Vec<&Flag> = flags
                .iter()
                .zip(attribute)
                .filter(|(_, &a)| a == value)
                .map(|(f, _)| f)
                .collect();
            let n = rows.len();
            let share = |hit: &dyn Fn(&Flag) -> bool| {
                (n > 0).then(|| rows.iter().filter(|f| hit(f)).count() as f64 / n as f64)
            };
            WordRate {
                n,
                in_top_words: share(&|f| f.top_words.iter().any(|w| words.contains(w))),
                top_word: share(&|f| f.top_words.first().is_some_and(|w| words.contains(w))),
            }
        };
        Self {
            words: words.to_vec(),
            carrying: rate(1),
            without: rate(0),
        }
    }
}

impl FlagSummary {
    /// The summary of `flags` (training-split order) given the ERM model's predictions on the training split and
    /// the words that name the attribute's value 1.
    pub fn new(
        flags: &[Flag],
        train: &Dataset,
        erm_preds: &[i64],
        attribute_words: &[String],
    ) -> Self {
        let flagged = flagged_indices(flags);
        let minority: Vec<usize> = (0..train.len())
            .filter(|&i| matches!(train.group(i), 1 | 2))
            .collect();
        let errors: Vec<usize> = (0..train.len())
            .filter(|&i| erm_preds[i] != train.y[i])
            .collect();
        let vs_minority = metrics::precision_recall(&flagged, &minority);
        let vs_errors = metrics::precision_recall(&flagged, &errors);
        let mut per_group = vec![0; crate::data::N_GROUPS];
        for &i in &flagged {
            per_group[train.group(i) as usize] += 1;
        }
        Self {
            n_train: train.len(),
            n_flagged: flagged.len(),
            flagged_fraction: flagged.len() as f64 / train.len().max(1) as f64,
            minority_precision: vs_minority.precision,
            minority_recall: vs_minority.recall,
            erm_error_precision: vs_errors.precision,
            erm_error_recall: vs_errors.recall,
            flagged_per_group: per_group,
            attribute_words: Some(AttributeWordRates::new(
                flags,
                &train.place,
                attribute_words,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[&str]) -> Vec<String> {
        ws.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn flag_rule_follows_the_paper() {
        let class = words(&["bird"]);
        for (top, flagged, target) in [
            (words(&["bird", "water", "lake"]), false, Some("water")),
            (words(&["water", "bird"]), true, Some("water")),
            (words(&["forest", "trees"]), true, Some("forest")),
            (words(&["bird"]), false, None),
            (words(&[]), false, None),
        ] {
            let (f, t) = flag(&top, &class);
            assert_eq!((f, t.as_deref()), (flagged, target), "{top:?}");
        }
    }

    #[test]
    fn random_selection_is_sorted_distinct_and_seeded() {
        use rand::SeedableRng;
        let draw =
            |seed| random_selection(50, 10, &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
        let a = draw(1);
        assert_eq!(a.len(), 10);
        assert!(a.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(a, draw(1));
        assert_ne!(a, draw(2));
    }

    #[test]
    fn attribute_word_rates_compare_carrying_and_other_images() {
        let f = |top: &[&str]| Flag {
            img_id: 0,
            top_words: words(top),
            flagged: false,
            target: None,
        };
        let flags = [
            f(&["dock", "bird"]),
            f(&["bird", "dock"]),
            f(&["bird", "water"]),
            f(&["water", "bird"]),
            f(&["bird"]),
            f(&["dock"]),
        ];
        let attribute = [1, 1, 1, 0, 0, 0];
        let r = AttributeWordRates::new(&flags, &attribute, &words(&["dock", "pier"]));
        assert_eq!(r.carrying.n, 3);
        assert_eq!(r.carrying.in_top_words, Some(2.0 / 3.0));
        assert_eq!(r.carrying.top_word, Some(1.0 / 3.0));
        assert_eq!(r.without.in_top_words, Some(1.0 / 3.0));
        assert_eq!(r.without.top_word, Some(1.0 / 3.0));
        let none = AttributeWordRates::new(&flags, &[0; 6], &words(&["dock"]));
        assert_eq!((none.carrying.n, none.carrying.in_top_words), (0, None));
    }
}
