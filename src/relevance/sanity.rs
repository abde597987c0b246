//! The model-randomisation sanity check of Adebayo et al., "Sanity Checks for Saliency Maps" (NeurIPS 2018): a map
//! that explains the model must change when the model's weights are re-initialised. Its figure is the Spearman rank
//! correlation between the map of the trained model and the map of the randomised one (high = the method ignores
//! the weights, as pure edge detectors do).
//!
//! The second check asks whether the explained word is image-driven at all: its probability, averaged per
//! background (the spurious attribute), must differ between water and land images ([`means_by_word_and_place`]).
use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::quality::average_ranks;

/// Spearman's rank correlation of two equally long samples: Pearson's correlation of their average ranks (ties
/// handled). `None` when either sample is constant (its ranks have no variance) or has fewer than 2 values.
pub fn spearman(a: &[f32], b: &[f32]) -> Option<f64> {
    assert_eq!(a.len(), b.len(), "spearman: lengths differ");
    if a.len() < 2 {
        return None;
    }
    let (ra, rb) = (average_ranks(a), average_ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        cov += (x - ma) * (y - mb);
        va += (x - ma).powi(2);
        vb += (y - mb).powi(2);
    }
    (va > 0.0 && vb > 0.0).then(|| cov / (va * vb).sqrt())
}

/// Per-image Spearman correlations of two batches of maps of one shape (`[b, ...]`), and their mean over the images
/// where it is defined.
pub fn spearman_per_image(a: &Tensor, b: &Tensor) -> Result<(Vec<Option<f64>>, Option<f64>)> {
    if a.size() != b.size() || a.dim() < 2 {
        bail!(
            "maps to correlate must be [b, ...] of one shape, got {:?} and {:?}",
            a.size(),
            b.size()
        );
    }
    let rows = |t: &Tensor| -> Result<Vec<Vec<f32>>> {
        let n = t.size()[0];
        Ok(Vec::<Vec<f32>>::try_from(
            t.detach()
                .to_device(tch::Device::Cpu)
                .to_kind(Kind::Float)
                .reshape([n, -1]),
        )?)
    };
    let per: Vec<Option<f64>> = rows(a)?
        .iter()
        .zip(rows(b)?)
        .map(|(x, y)| spearman(x, &y))
        .collect();
    let defined: Vec<f64> = per.iter().flatten().copied().collect();
    let mean = (!defined.is_empty()).then(|| defined.iter().sum::<f64>() / defined.len() as f64);
    Ok((per, mean))
}

/// The mean of a per-image value over the images of one background that concern one word.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct WordByPlace {
    pub word: String,
    pub place: String,
    /// Images with a finite value.
    pub n: usize,
    pub mean: Option<f64>,
}

/// Means of `(word, place, value)` rows per word and place: every word gets one entry per name in `places` (in
/// that order; `n = 0`, `mean = None` where none of its rows has that place), words in sorted order. Non-finite
/// values are skipped.
pub fn means_by_word_and_place(
    rows: impl IntoIterator<Item = (String, String, f64)>,
    places: &[String],
) -> Vec<WordByPlace> {
    let mut sums: BTreeMap<(String, String), (f64, usize)> = BTreeMap::new();
    let mut words = BTreeSet::new();
    for (word, place, value) in rows {
        words.insert(word.clone());
        if value.is_finite() {
            let e = sums.entry((word, place)).or_default();
            e.0 += value;
            e.1 += 1;
        }
    }
    words
        .into_iter()
        .flat_map(|word| {
            places
                .iter()
                .map(|place| {
                    let (sum, n) = sums
                        .get(&(word.clone(), place.clone()))
                        .copied()
                        .unwrap_or_default();
                    WordByPlace {
                        word: word.clone(),
                        place: place.clone(),
                        n,
                        mean: (n > 0).then(|| sum / n as f64),
                    }
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("a value");
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }

    #[test]
    fn spearman_by_hand() {
        // One swap among 4: 1 - 6 * 2 / (4 * 15) = 0.8.
        close(spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 3.0, 2.0, 4.0]), 0.8);
        // Monotone but not linear: 1; reversed: -1.
        close(
            spearman(&[1.0, 2.0, 3.0, 4.0], &[1.0, 10.0, 100.0, 1000.0]),
            1.0,
        );
        close(spearman(&[1.0, 2.0, 3.0, 4.0], &[4.0, 3.0, 2.0, 1.0]), -1.0);
        // Ties: ranks [1.5, 1.5, 3, 4] vs [1, 2, 3, 4]: cov 4.5, variances 4.5 and 5 -> 4.5 / sqrt(22.5).
        close(
            spearman(&[1.0, 1.0, 2.0, 3.0], &[1.0, 2.0, 3.0, 4.0]),
            4.5 / 22.5f64.sqrt(),
        );
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), None);
    }

    #[test]
    fn spearman_per_image_and_mean() {
        let a = Tensor::from_slice(&[1f32, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0])
            .view([3, 4]);
        let b = Tensor::from_slice(&[1f32, 3.0, 2.0, 4.0, 4.0, 3.0, 2.0, 1.0, 1.0, 2.0, 3.0, 4.0])
            .view([3, 4]);
        let (per, mean) = spearman_per_image(&a, &b).unwrap();
        assert_eq!(per.len(), 3);
        close(per[0], 0.8);
        close(per[1], -1.0);
        assert_eq!(per[2], None);
        close(mean, -0.1);
        assert!(spearman_per_image(&a, &b.narrow(0, 0, 2)).is_err());
    }

    #[test]
    fn means_per_word_and_place_list_every_place() {
        let places = ["land bg".to_string(), "water bg".to_string()];
        let rows = [
            ("water", "water bg", 0.5),
            ("water", "water bg", 0.3),
            ("water", "land bg", 0.1),
            ("forest", "land bg", 0.6),
            ("forest", "land bg", f64::NAN),
        ]
        .map(|(w, p, v)| (w.to_string(), p.to_string(), v));
        let got = means_by_word_and_place(rows, &places);
        let view: Vec<(&str, &str, usize, Option<f64>)> = got
            .iter()
            .map(|r| (r.word.as_str(), r.place.as_str(), r.n, r.mean))
            .collect();
        assert_eq!(view.len(), 4);
        assert_eq!(view[0], ("forest", "land bg", 1, Some(0.6)));
        assert_eq!(view[1], ("forest", "water bg", 0, None));
        assert_eq!(view[2].0, "water");
        close(view[2].3, 0.1);
        assert_eq!(view[3].2, 2);
        close(view[3].3, 0.4);
    }
}
