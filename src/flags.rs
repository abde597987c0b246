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
}

impl FlagSummary {
    /// The summary of `flags` (training-split order) given the ERM model's predictions on the training split.
    pub fn new(flags: &[Flag], train: &Dataset, erm_preds: &[i64]) -> Self {
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
}
