//! Relevance maps to spurious-region masks.
//!
//! `mean_std` and `quantile` are the rules of the first masks stage (same semantics, same YAML), kept
//! here so that the relevance module stands alone; `mean_std` with k = 2 is MaskTune's rule (Asgari et al. 2022),
//! made for a small blob on a 7x7 ResNet map: by Cantelli's inequality it masks at most 1/(1+k^2) = 20 % of the
//! positive values, too little for a background. `top_k` and `otsu` can cover a background.
//!
//! Everywhere: a value <= 0 is never masked (an all-zero map, e.g. a sample without a target word, masks
//! nothing), and the rules work per image on whatever map they are given, `[b, 1, H, W]` pixels or `[b, p]`
//! patches. The pipeline thresholds the pixel map (as today): coverage is then exact in pixels and the mask
//! border follows the bilinear interpolation. A patch map thresholded here and sent through
//! [`patch_masks_to_pixels`] gives whole-patch masks instead; the two differ (bilinear upsampling does not keep
//! the order of values), so a config names one.
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// Which map values become the mask.
/// In YAML: `{rule: mean_std, k: 2.0}`, `{rule: quantile, q: 0.7}`, `{rule: top_k, percent: 40}`, `{rule: otsu}`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum Threshold {
    /// Values above mean + k·std of the image's positive values (MaskTune: k = 2). It cannot mask a background:
    /// by Cantelli's inequality at most 1/(1 + k²) of the values lie above mean + k·std (20 % at k = 2), whatever
    /// the map, so it covers 2-3 % of an image where the background is 70-87 % (experiments/mask-quality/).
    MeanStd { k: f64 },
    /// Values above the given quantile of all the image's values (0.7 masks at most the top 30 %).
    Quantile { q: f64 },
    /// The `percent` % largest values of the image: every value >= the k-th largest, k = round(percent/100 · n).
    /// Ties at the cut are all masked (coverage can exceed `percent` on a map with plateaus), zeros never.
    TopK { percent: f64 },
    /// Values above Otsu's threshold on the image's 256-bin histogram (as `skimage.filters.threshold_otsu`).
    /// A struct variant without fields, so that `{rule: otsu, k: 1}` is an error like any unknown key.
    Otsu {},
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold::MeanStd { k: 2.0 }
    }
}

impl Threshold {
    /// Checks the parameter's range.
    pub fn validate(&self) -> Result<()> {
        match *self {
            Threshold::MeanStd { k } if !k.is_finite() => bail!("mean_std: k = {k} is not finite"),
            Threshold::Quantile { q } if !(0.0..=1.0).contains(&q) => {
                bail!("quantile: q = {q} is outside [0, 1]")
            }
            Threshold::TopK { percent } if !(0.0..=100.0).contains(&percent) => {
                bail!("top_k: percent = {percent} is outside [0, 100]")
            }
            _ => Ok(()),
        }
    }
}

/// The batches' masks (`[b, 1, size, size]` bool each) in order as one `[n, 1, size, size]` batch; an empty batch of
/// that shape when there are none.
pub fn cat_masks(batches: &[Tensor], size: i64) -> Tensor {
    if batches.is_empty() {
        Tensor::zeros([0, 1, size, size], (Kind::Bool, tch::Device::Cpu))
    } else {
        Tensor::cat(batches, 0)
    }
}

/// Bool masks (true = masked) of the shape of `maps` (`[b, ...]`, any float kind), one rule per image.
pub fn threshold_masks(maps: &Tensor, threshold: Threshold) -> Result<Tensor> {
    threshold.validate()?;
    let size = maps.size();
    if size.len() < 2 {
        bail!("threshold_masks: maps must be [b, ...], got {size:?}");
    }
    let b = size[0];
    let flat = maps.to_kind(Kind::Float).reshape([b, -1]); // [b, m]
    let m = flat.size()[1];
    let cut = match threshold {
        Threshold::MeanStd { k } => {
            let positive = flat.gt(0.0).to_kind(Kind::Float);
            let count = positive
                .sum_dim_intlist(1, true, Kind::Float)
                .clamp_min(1.0);
            let mean = (&flat * &positive).sum_dim_intlist(1, true, Kind::Float) / &count;
            let var = ((&flat - &mean).square() * &positive).sum_dim_intlist(1, true, Kind::Float)
                / &count;
            mean + var.sqrt() * k // [b, 1]
        }
        Threshold::Quantile { q } => flat.quantile_scalar(q, 1, true, "linear"), // [b, 1]
        Threshold::TopK { percent } => {
            let k = ((percent / 100.0) * m as f64).round() as i64;
            if k == 0 || m == 0 {
                return Ok(flat.zeros_like().to_kind(Kind::Bool).reshape(&size));
            }
            let (values, _) = flat.topk(k, 1, true, true); // [b, k]
            let kth = values.narrow(1, k - 1, 1); // [b, 1]
                                                  // >= the k-th largest value, so that ties at the cut are kept.
            return Ok(flat
                .ge_tensor(&kth)
                .logical_and(&flat.gt(0.0))
                .reshape(&size));
        }
        Threshold::Otsu {} => {
            let rows: Vec<Vec<f32>> = Vec::<Vec<f32>>::try_from(flat.to_device(tch::Device::Cpu))?;
            let cuts: Vec<f32> = rows.iter().map(|r| otsu_threshold(r)).collect();
            Tensor::from_slice(&cuts)
                .to_device(flat.device())
                .view([b, 1])
        }
    };
    Ok(flat
        .gt_tensor(&cut)
        .logical_and(&flat.gt(0.0))
        .reshape(&size))
}

/// Otsu's threshold of `values` as `skimage.filters.threshold_otsu(values, nbins=256)`: a 256-bin histogram over
/// [min, max], the bin centre that maximises the between-class variance; values above it form the upper class.
/// A constant input returns its value (nothing lies above it). NaNs are ignored; an empty input returns +inf.
pub fn otsu_threshold(values: &[f32]) -> f32 {
    const BINS: usize = 256;
    let finite = values.iter().copied().filter(|v| !v.is_nan());
    let (lo, hi) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo > hi {
        return f32::INFINITY;
    }
    if lo == hi {
        return lo;
    }
    let width = (hi as f64 - lo as f64) / BINS as f64;
    let mut hist = [0f64; BINS];
    for &v in values.iter().filter(|v| !v.is_nan()) {
        let bin = (((v as f64 - lo as f64) / width) as usize).min(BINS - 1);
        hist[bin] += 1.0;
    }
    let centre = |i: usize| lo as f64 + width * (i as f64 + 0.5);
    // Class 1 = bins 0..=i, class 2 = bins i+1..; skimage's variance12 over i in 0..BINS-1.
    let total: f64 = hist.iter().sum();
    let total_mass: f64 = hist.iter().enumerate().map(|(i, h)| h * centre(i)).sum();
    let (mut w1, mut m1) = (0f64, 0f64);
    let (mut best, mut best_i) = (f64::NEG_INFINITY, 0usize);
    for (i, &h) in hist.iter().enumerate().take(BINS - 1) {
        w1 += h;
        m1 += h * centre(i);
        let w2 = total - w1;
        if w1 == 0.0 || w2 == 0.0 {
            continue;
        }
        let between = w1 * w2 * (m1 / w1 - (total_mass - m1) / w2).powi(2);
        if between > best {
            best = between;
            best_i = i;
        }
    }
    centre(best_i) as f32
}

/// Whole-patch pixel masks `[b, 1, H, W]` from patch masks `[b, p]` (a square grid; nearest upsampling).
pub fn patch_masks_to_pixels(masks: &Tensor, image_size: i64) -> Result<Tensor> {
    let (b, p) = masks.size2()?;
    let grid = (p as f64).sqrt().round() as i64;
    if grid * grid != p || image_size % grid != 0 {
        bail!("patch masks [{b}, {p}] are not a square grid dividing {image_size} px");
    }
    let scale = image_size / grid;
    Ok(masks
        .to_kind(Kind::Bool)
        .view([b, 1, grid, 1, grid, 1])
        .expand([b, 1, grid, scale, grid, scale], false)
        .reshape([b, 1, image_size, image_size]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn count(masks: &Tensor) -> Vec<i64> {
        let b = masks.size()[0];
        Vec::<i64>::try_from(
            masks
                .reshape([b, -1])
                .sum_dim_intlist(1, false, Kind::Int64),
        )
        .unwrap()
    }

    /// Image 0: 1 on a 2x2 corner, 0.1 elsewhere (8x8). Image 1: the ramp 0, 1/63, ..., 1.
    fn maps() -> Tensor {
        let hot = Tensor::full([1, 1, 8, 8], 0.1, (Kind::Float, Device::Cpu));
        let _ = hot.narrow(2, 0, 2).narrow(3, 0, 2).fill_(1.0);
        let ramp = Tensor::arange(64, (Kind::Float, Device::Cpu)).view([1, 1, 8, 8]) / 63.0;
        Tensor::cat(&[hot, ramp], 0)
    }

    #[test]
    fn each_rule_masks_the_expected_number_of_values() {
        let cases = [
            // Hot corner: mean 0.156, std 0.218 -> cut 0.37 (k = 1): the corner. Ramp over 63 positives:
            // mean 0.508, std 0.286 -> cut 0.794: values 51/63.. = 13.
            (Threshold::MeanStd { k: 1.0 }, [4, 13]),
            // Cantelli: k = 2 keeps at most 20 % of the positives; on the ramp cut 1.08 -> none.
            (Threshold::MeanStd { k: 2.0 }, [4, 0]),
            // Ties at 0.1 stay unmasked; the ramp's median is 31.5/63 -> 32 above.
            (Threshold::Quantile { q: 0.5 }, [4, 32]),
            // 25 % of 64 = 16: the hot corner ties at 0.1 beyond it, so all 64 values >= the 16th largest.
            (Threshold::TopK { percent: 25.0 }, [64, 16]),
            (Threshold::TopK { percent: 5.0 }, [4, 3]),
            (Threshold::TopK { percent: 0.0 }, [0, 0]),
            // Two levels: Otsu splits between them. Ramp: value i/63 falls in bin floor(256 i/63); the split
            // after i = 31 (bin 125) ties with the empty bins 126..129 and, as in skimage, the first wins: the
            // cut is bin 125's centre 125.5/256 = 0.4902 < 31/63, so i = 31..63 are above it -> 33.
            (Threshold::Otsu {}, [4, 33]),
        ];
        let maps = maps();
        for (rule, want) in cases {
            let masks = threshold_masks(&maps, rule).unwrap();
            assert_eq!(masks.size(), maps.size());
            assert_eq!(masks.kind(), Kind::Bool);
            assert_eq!(count(&masks), want, "{rule:?}");
        }
    }

    #[test]
    fn zeros_are_never_masked_and_patch_maps_work_too() {
        // Two positive values among 16 (a patch map [1, 16]): top 50 % would be 8, only 2 are positive.
        let mut v = vec![0f32; 16];
        v[3] = 0.5;
        v[9] = 1.0;
        let map = Tensor::from_slice(&v).view([1, 16]);
        let top = threshold_masks(&map, Threshold::TopK { percent: 50.0 }).unwrap();
        assert_eq!(count(&top), [2]);
        let all_zero = Tensor::zeros([2, 16], (Kind::Float, Device::Cpu));
        for rule in [
            Threshold::MeanStd { k: 0.0 },
            Threshold::Quantile { q: 0.0 },
            Threshold::TopK { percent: 100.0 },
            Threshold::Otsu {},
        ] {
            let masks = threshold_masks(&all_zero, rule).unwrap();
            assert_eq!(count(&masks), [0, 0], "{rule:?}");
        }
        let pixels = patch_masks_to_pixels(&top, 8).unwrap();
        assert_eq!(pixels.size(), [1, 1, 8, 8]);
        assert_eq!(count(&pixels), [8]);
        // Patch 9 = row 2, column 1 of the 4x4 grid -> pixels rows 4..6, columns 2..4.
        assert!(pixels.int64_value(&[0, 0, 4, 2]) == 1 && pixels.int64_value(&[0, 0, 5, 3]) == 1);
        assert!(pixels.int64_value(&[0, 0, 3, 2]) == 0);
    }

    #[test]
    fn otsu_picks_the_split_with_the_largest_between_class_variance() {
        // 8 x 0, 4 x 0.5, 4 x 1: {0} | {0.5, 1} has between-class variance 0.141, {0, 0.5} | {1} 0.130.
        let mut v = vec![0f32; 8];
        v.extend([0.5f32; 4]);
        v.extend([1f32; 4]);
        let t = otsu_threshold(&v);
        assert!(t > 0.0 && t < 0.5, "{t}");
        let masks =
            threshold_masks(&Tensor::from_slice(&v).view([1, 16]), Threshold::Otsu {}).unwrap();
        assert_eq!(count(&masks), [8]);
        assert_eq!(otsu_threshold(&[0.3; 5]), 0.3);
    }

    #[test]
    fn yaml_spelling_of_every_rule() {
        for (yaml, want) in [
            ("{rule: mean_std, k: 2.0}", Threshold::MeanStd { k: 2.0 }),
            ("{rule: quantile, q: 0.7}", Threshold::Quantile { q: 0.7 }),
            (
                "{rule: top_k, percent: 40}",
                Threshold::TopK { percent: 40.0 },
            ),
            ("{rule: otsu}", Threshold::Otsu {}),
        ] {
            assert_eq!(
                serde_yaml::from_str::<Threshold>(yaml).unwrap(),
                want,
                "{yaml}"
            );
        }
        let otsu = Threshold::Otsu {};
        assert_eq!(serde_yaml::to_string(&otsu).unwrap().trim(), "rule: otsu");
        assert!(serde_yaml::from_str::<Threshold>("{rule: otsu, k: 1}").is_err());
        assert!(serde_yaml::from_str::<Threshold>("{rule: top_k, q: 1}").is_err());
        assert!(Threshold::TopK { percent: 120.0 }.validate().is_err());
        assert!(Threshold::Quantile { q: -0.1 }.validate().is_err());
    }
}
