//! An explanation's dominant words, ranked: the words of one image's sentences, and the words of all the images of
//! one class (the per-class word lists and clouds, paper section 2.3).
use crate::text::words::{dominant_words, WordCounter};

/// The `k` dominant words of `counts` as (rank from 1, word, count, frequency).
pub fn ranked(counts: &WordCounter, k: usize) -> impl Iterator<Item = (usize, String, u64, f64)> {
    dominant_words(counts, k)
        .into_iter()
        .enumerate()
        .map(|(i, (word, count, freq))| (i + 1, word, count, freq))
}

/// [`ranked`] over the summed counts of the images labelled `class` (`counts` and `labels` run over the same
/// images).
pub fn class_ranked(
    counts: &[WordCounter],
    labels: &[i64],
    class: i64,
    k: usize,
) -> impl Iterator<Item = (usize, String, u64, f64)> {
    let mut total = WordCounter::new();
    for (c, &y) in counts.iter().zip(labels) {
        if y == class {
            total.merge(c);
        }
    }
    ranked(&total, k)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::words::{WordConfig, WordFilter};

    #[test]
    fn class_words_sum_the_images_of_the_class_only() {
        let filter = WordFilter::new(&WordConfig::default()).unwrap();
        let counts = [
            WordCounter::from_sentences(&filter, &["a duck on the lake"]),
            WordCounter::from_sentences(&filter, &["a sparrow in the forest"]),
            WordCounter::from_sentences(&filter, &["a duck near the lake"]),
        ];
        let words: Vec<_> = class_ranked(&counts, &[1, 0, 1], 1, 10).collect();
        assert_eq!(words[0].0, 1);
        let named: Vec<&str> = words.iter().map(|w| w.1.as_str()).collect();
        assert!(
            named.contains(&"duck") && named.contains(&"lake"),
            "{named:?}"
        );
        assert!(!named.contains(&"sparrow"), "{named:?}");
        assert_eq!(words.iter().find(|w| w.1 == "duck").unwrap().2, 2);
    }
}
