//! The model-randomisation sanity check of Adebayo et al., "Sanity Checks for Saliency Maps" (NeurIPS 2018): a map
//! that explains the model must change when the model's weights are re-initialised. Its figure is the Spearman rank
//! correlation between the map of the trained model and the map of the randomised one (high = the method ignores
//! the weights, as pure edge detectors do).
use anyhow::{bail, Result};
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
}
