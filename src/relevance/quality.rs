//! How well a relevance map finds the spurious region, against the true bird masks (1 = bird). "Positive" is the
//! background: the region TExplain should mask.
//!
//! Threshold-free figures, per image then averaged (images without bird pixels or without background pixels have
//! none and are excluded and counted):
//! * AUROC of the map separating background from bird pixels (Mann-Whitney U with average ranks, so ties count
//!   one half; 0.5 = chance, 1 = every background pixel above every bird pixel);
//! * IoU with the background at matched coverage: the map's top-c % pixels, c = the image's true background
//!   fraction. Coverage equals the background's, so IoU = i / (2 n_bg - i) with i the background pixels caught
//!   (a monotone function of precision = recall there). Pixels tied at the cut are counted fractionally, as a random
//!   choice among them would on average, so a flat map scores chance and not the order of pixels in memory;
//! * pointing game: is the map's maximum on the background (a tie for the maximum scores the background share of
//!   the tied pixels).
//!
//! Thresholded figures, when masks are given: IoU of the mask with the background, share of the masked pixels on
//! the bird (over images with a non-empty mask), coverage. The same figures for a random map (seeded uniform noise
//! at patch resolution, upsampled like a real map) and for the oracle (the true background: AUROC 1) bracket them.
use std::collections::BTreeMap;

use anyhow::{bail, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::maps::RelevanceMaps;
use super::threshold::{threshold_masks, Threshold};

/// Ranks 1..=n of `values` in increasing order, ties getting the mean of their ranks. NaNs are not allowed.
pub fn average_ranks(values: &[f32]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0f64; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end hold ranks start+1..=end: their mean.
        let rank = (start + 1 + end) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = rank;
        }
        start = end;
    }
    ranks
}

/// AUROC of `scores` for `positive` against the rest (Mann-Whitney U / (n_pos n_neg), average ranks for ties).
/// `None` when either class is empty.
pub fn auroc(scores: &[f32], positive: &[bool]) -> Option<f64> {
    assert_eq!(scores.len(), positive.len(), "auroc: lengths differ");
    let n_pos = positive.iter().filter(|&&p| p).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let ranks = average_ranks(scores);
    let rank_sum: f64 = ranks
        .iter()
        .zip(positive)
        .filter(|(_, &p)| p)
        .map(|(r, _)| r)
        .sum();
    let u = rank_sum - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos as f64 * n_neg as f64))
}

/// IoU with `positive` of the top-m values of `scores`, m = the number of positives (ties at the cut counted
/// fractionally). `None` when either class is empty.
pub fn matched_coverage_iou(scores: &[f32], positive: &[bool]) -> Option<f64> {
    assert_eq!(
        scores.len(),
        positive.len(),
        "matched_coverage_iou: lengths differ"
    );
    let m = positive.iter().filter(|&&p| p).count();
    if m == 0 || m == positive.len() {
        return None;
    }
    let mut sorted: Vec<f32> = scores.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let cut = sorted[m - 1];
    let (mut above, mut above_pos, mut tied, mut tied_pos) = (0usize, 0usize, 0usize, 0usize);
    for (&s, &p) in scores.iter().zip(positive) {
        if s > cut {
            above += 1;
            above_pos += usize::from(p);
        } else if s == cut {
            tied += 1;
            tied_pos += usize::from(p);
        }
    }
    let caught = above_pos as f64 + (m - above) as f64 * tied_pos as f64 / tied as f64;
    Some(caught / (2.0 * m as f64 - caught))
}

/// The share of the map's maximal pixels that are positive (1 or 0 without a tie). `None` for an empty input or
/// when either class is empty.
pub fn pointing_game(scores: &[f32], positive: &[bool]) -> Option<f64> {
    assert_eq!(
        scores.len(),
        positive.len(),
        "pointing_game: lengths differ"
    );
    let n_pos = positive.iter().filter(|&&p| p).count();
    if n_pos == 0 || n_pos == positive.len() {
        return None;
    }
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let (mut at_max, mut hits) = (0usize, 0usize);
    for (&s, &p) in scores.iter().zip(positive) {
        if s == max {
            at_max += 1;
            hits += usize::from(p);
        }
    }
    Some(hits as f64 / at_max as f64)
}

/// One image's figures (only for images with both bird and background pixels).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageQuality {
    pub auroc: f64,
    pub matched_iou: f64,
    pub pointing: f64,
    /// The true background's share of the image (the matched coverage).
    pub background_fraction: f64,
    /// Thresholded figures, when a mask was given: IoU of the mask with the background, the share of masked
    /// pixels on the bird (`None` for an empty mask) and the mask's coverage.
    pub background_iou: Option<f64>,
    pub masked_on_bird: Option<f64>,
    pub coverage: Option<f64>,
}

/// The figures of one image: `map` and `bird` (true = bird) per pixel, optionally the mask (true = masked).
/// `None` when the image has no bird or no background pixel.
pub fn image_quality(map: &[f32], bird: &[bool], mask: Option<&[bool]>) -> Option<ImageQuality> {
    let background: Vec<bool> = bird.iter().map(|b| !b).collect();
    let n = background.len() as f64;
    let n_bg = background.iter().filter(|&&b| b).count();
    let (auroc, matched_iou, pointing) = (
        auroc(map, &background)?,
        matched_coverage_iou(map, &background)?,
        pointing_game(map, &background)?,
    );
    let (mut background_iou, mut masked_on_bird, mut coverage) = (None, None, None);
    if let Some(mask) = mask {
        assert_eq!(
            mask.len(),
            bird.len(),
            "image_quality: mask and bird differ in size"
        );
        let masked = mask.iter().filter(|&&m| m).count();
        let on_bg = mask
            .iter()
            .zip(&background)
            .filter(|(&m, &b)| m && b)
            .count();
        let union = masked + n_bg - on_bg;
        background_iou = Some(on_bg as f64 / union as f64);
        masked_on_bird = (masked > 0).then(|| (masked - on_bg) as f64 / masked as f64);
        coverage = Some(masked as f64 / n);
    }
    Some(ImageQuality {
        auroc,
        matched_iou,
        pointing,
        background_fraction: n_bg as f64 / n,
        background_iou,
        masked_on_bird,
        coverage,
    })
}

fn rows_f32(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    let b = t.size()[0];
    Ok(Vec::<Vec<f32>>::try_from(
        t.detach()
            .to_device(tch::Device::Cpu)
            .to_kind(Kind::Float)
            .reshape([b, -1]),
    )?)
}

fn rows_bool(t: &Tensor) -> Result<Vec<Vec<bool>>> {
    Ok(rows_f32(&t.ne(0))?
        .into_iter()
        .map(|r| r.into_iter().map(|v| v != 0.0).collect())
        .collect())
}

/// Per-image figures of maps `[b, 1, H, W]` against the true bird masks `[b, 1, H, W]` (u8 or bool, nonzero =
/// bird), with optional masks of the same shape (nonzero = masked). `None` entries are excluded images.
pub fn per_image_quality(
    maps: &Tensor,
    bird: &Tensor,
    masks: Option<&Tensor>,
) -> Result<Vec<Option<ImageQuality>>> {
    if maps.size() != bird.size() || masks.is_some_and(|m| m.size() != bird.size()) {
        bail!(
            "maps {:?}, bird masks {:?} and masks {:?} must have one shape",
            maps.size(),
            bird.size(),
            masks.map(Tensor::size)
        );
    }
    let maps = rows_f32(maps)?;
    let bird = rows_bool(bird)?;
    let masks = masks.map(rows_bool).transpose()?;
    Ok(maps
        .iter()
        .enumerate()
        .map(|(i, map)| image_quality(map, &bird[i], masks.as_ref().map(|m| m[i].as_slice())))
        .collect())
}

/// Means over the scored images (`None` where nothing was scored). Serialised into `masks/summary.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualitySummary {
    pub n_images: usize,
    pub n_scored: usize,
    /// Images without bird pixels or without background pixels: no figure is defined for them.
    pub n_excluded: usize,
    pub auroc: Option<f64>,
    pub matched_iou: Option<f64>,
    pub pointing_game: Option<f64>,
    pub background_fraction: Option<f64>,
    pub background_iou: Option<f64>,
    /// Over the scored images with a non-empty mask.
    pub masked_on_bird: Option<f64>,
    pub coverage: Option<f64>,
    /// Scored images whose mask is empty (`None` without masks).
    pub n_empty_masks: Option<usize>,
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Averages per-image figures.
pub fn summarise(per_image: &[Option<ImageQuality>]) -> QualitySummary {
    let scored: Vec<&ImageQuality> = per_image.iter().flatten().collect();
    let with_masks = scored.iter().any(|q| q.coverage.is_some());
    QualitySummary {
        n_images: per_image.len(),
        n_scored: scored.len(),
        n_excluded: per_image.len() - scored.len(),
        auroc: mean(scored.iter().map(|q| q.auroc)),
        matched_iou: mean(scored.iter().map(|q| q.matched_iou)),
        pointing_game: mean(scored.iter().map(|q| q.pointing)),
        background_fraction: mean(scored.iter().map(|q| q.background_fraction)),
        background_iou: mean(scored.iter().filter_map(|q| q.background_iou)),
        masked_on_bird: mean(scored.iter().filter_map(|q| q.masked_on_bird)),
        coverage: mean(scored.iter().filter_map(|q| q.coverage)),
        n_empty_masks: with_masks.then(|| {
            scored
                .iter()
                .filter(|q| q.coverage.is_some() && q.masked_on_bird.is_none())
                .count()
        }),
    }
}

/// [`summarise`] per label (e.g. the target word of each image), labels in sorted order.
pub fn summarise_by_label(
    per_image: &[Option<ImageQuality>],
    labels: &[String],
) -> Result<BTreeMap<String, QualitySummary>> {
    if per_image.len() != labels.len() {
        bail!("{} images but {} labels", per_image.len(), labels.len());
    }
    let mut groups: BTreeMap<String, Vec<Option<ImageQuality>>> = BTreeMap::new();
    for (q, label) in per_image.iter().zip(labels) {
        groups.entry(label.clone()).or_default().push(q.clone());
    }
    Ok(groups
        .into_iter()
        .map(|(label, qs)| (label, summarise(&qs)))
        .collect())
}

/// Random maps `[n, 1, H, W]`: seeded uniform noise on the `grid` x `grid` patch grid, upsampled and normalised as
/// a real map ([`RelevanceMaps::from_patches`]).
pub fn random_maps(n: i64, grid: i64, image_size: i64, seed: u64) -> Result<RelevanceMaps> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let values: Vec<f32> = (0..n * grid * grid).map(|_| rng.gen::<f32>()).collect();
    RelevanceMaps::from_patches(
        &Tensor::from_slice(&values).view([n, grid * grid]),
        image_size,
    )
}

/// The oracle's map: the true background itself (1 on the background, 0 on the bird), `[b, 1, H, W]` f32.
pub fn oracle_maps(bird: &Tensor) -> Tensor {
    bird.eq(0).to_kind(Kind::Float)
}

/// The content of `masks/summary.json` for one map type: the map, a random map and the oracle over the same images,
/// and the map and the random map per label (the target word).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaskQualityReport {
    /// Which map (e.g. "gradcam@-1", "rollout").
    pub method: String,
    /// The rule that made the masks (`None` for threshold-free figures only).
    pub threshold: Option<Threshold>,
    pub map: QualitySummary,
    /// Random maps, thresholded by the same rule.
    pub random: QualitySummary,
    /// The true background as map and as mask.
    pub oracle: QualitySummary,
    pub by_label: BTreeMap<String, QualitySummary>,
    pub random_by_label: BTreeMap<String, QualitySummary>,
}

/// One image's figures for its map, for a random map and for the oracle (`None` where the image is excluded).
#[derive(Debug, Clone, PartialEq)]
pub struct Bracketed {
    pub map: Option<ImageQuality>,
    pub random: Option<ImageQuality>,
    pub oracle: Option<ImageQuality>,
}

/// Per-image figures of maps `[b, 1, H, W]` against the true bird masks, beside a random map per image (drawn from
/// `seeds[i]` on the `grid` of the real maps) and the oracle; with a threshold, of the masks it makes too (the
/// random map thresholded by the same rule, the oracle's mask the true background). Batches of a stage can be
/// scored one at a time and their results concatenated.
pub fn bracketed_quality(
    maps: &Tensor,
    bird: &Tensor,
    threshold: Option<Threshold>,
    grid: i64,
    seeds: &[u64],
) -> Result<Vec<Bracketed>> {
    let (b, _, h, w) = maps.size4()?;
    if h != w {
        bail!("maps must be square, got {h} x {w}");
    }
    if seeds.len() != b as usize {
        bail!("{b} maps but {} random-map seeds", seeds.len());
    }
    if b == 0 {
        return Ok(Vec::new());
    }
    let masks = threshold.map(|t| threshold_masks(maps, t)).transpose()?;
    let per_map = per_image_quality(maps, bird, masks.as_ref())?;
    let parts = seeds
        .iter()
        .map(|&s| Ok(random_maps(1, grid, h, s)?.pixels))
        .collect::<Result<Vec<_>>>()?;
    let random = Tensor::cat(&parts, 0);
    let random_masks = threshold.map(|t| threshold_masks(&random, t)).transpose()?;
    let per_random = per_image_quality(&random, bird, random_masks.as_ref())?;
    let oracle = oracle_maps(bird);
    let oracle_masks = threshold.map(|_| oracle.ne(0));
    let per_oracle = per_image_quality(&oracle, bird, oracle_masks.as_ref())?;
    Ok(per_map
        .into_iter()
        .zip(per_random)
        .zip(per_oracle)
        .map(|((map, random), oracle)| Bracketed {
            map,
            random,
            oracle,
        })
        .collect())
}

/// The report of per-image figures ([`bracketed_quality`]), grouped by `labels` (one per image).
pub fn bracketed_report(
    method: &str,
    threshold: Option<Threshold>,
    per_image: &[Bracketed],
    labels: &[String],
) -> Result<MaskQualityReport> {
    let map: Vec<Option<ImageQuality>> = per_image.iter().map(|q| q.map.clone()).collect();
    let random: Vec<Option<ImageQuality>> = per_image.iter().map(|q| q.random.clone()).collect();
    let oracle: Vec<Option<ImageQuality>> = per_image.iter().map(|q| q.oracle.clone()).collect();
    Ok(MaskQualityReport {
        method: method.to_string(),
        threshold,
        map: summarise(&map),
        random: summarise(&random),
        oracle: summarise(&oracle),
        by_label: summarise_by_label(&map, labels)?,
        random_by_label: summarise_by_label(&random, labels)?,
    })
}

/// Scores maps `[b, 1, H, W]` and, with a threshold, the masks it makes, against the true bird masks; `labels`
/// (one per image) group the figures; image i's random map is drawn from `seed + i` on the same `grid` as the
/// real maps.
pub fn mask_quality_report(
    method: &str,
    maps: &Tensor,
    threshold: Option<Threshold>,
    bird: &Tensor,
    labels: &[String],
    grid: i64,
    seed: u64,
) -> Result<MaskQualityReport> {
    let b = maps.size().first().copied().unwrap_or(0).max(0) as u64;
    let seeds: Vec<u64> = (0..b).map(|i| seed.wrapping_add(i)).collect();
    let per_image = bracketed_quality(maps, bird, threshold, grid, &seeds)?;
    bracketed_report(method, threshold, &per_image, labels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("a value");
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }

    #[test]
    fn average_ranks_share_ties() {
        assert_eq!(average_ranks(&[0.3, 0.1, 0.3, 0.2]), [3.5, 1.0, 3.5, 2.0]);
        assert_eq!(average_ranks(&[1.0; 3]), [2.0, 2.0, 2.0]);
    }

    #[test]
    fn auroc_counts_ties_as_one_half() {
        let pos = [false, false, true, true];
        // Pairs (pos, neg): 0.5 vs 0.1 win, 0.5 vs 0.5 tie, 0.9 beats both: 3.5 / 4.
        close(auroc(&[0.1, 0.5, 0.5, 0.9], &pos), 0.875);
        close(auroc(&[0.2; 4], &pos), 0.5);
        close(auroc(&[0.9, 0.8, 0.1, 0.2], &pos), 0.0);
        close(auroc(&[0.0, 0.1, 0.2, 0.3], &pos), 1.0);
        assert_eq!(auroc(&[0.1, 0.2], &[true, true]), None);
    }

    #[test]
    fn matched_coverage_iou_splits_ties_at_the_cut() {
        // Background = the first 4 of 8 pixels. Top 4: 0.9 (bg), 0.8 (bg), 0.7 (bird), then one of the three 0.1s
        // (two on the background): 2 + 2/3 caught, IoU = (8/3) / (8 - 8/3) = 0.5.
        let pos = [true, true, true, true, false, false, false, false];
        let map = [0.9, 0.8, 0.1, 0.1, 0.7, 0.1, 0.0, 0.0];
        close(matched_coverage_iou(&map, &pos), 0.5);
        close(
            matched_coverage_iou(&[1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0], &pos),
            1.0,
        );
        close(
            matched_coverage_iou(&[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0], &pos),
            0.0,
        );
        // A flat map catches 2 of 4 on average: IoU 2 / 6.
        close(matched_coverage_iou(&[0.5; 8], &pos), 1.0 / 3.0);
        assert_eq!(matched_coverage_iou(&[0.5; 2], &[false, false]), None);
    }

    #[test]
    fn pointing_game_scores_the_maximum() {
        let pos = [true, false, false];
        close(pointing_game(&[0.9, 0.1, 0.2], &pos), 1.0);
        close(pointing_game(&[0.1, 0.9, 0.2], &pos), 0.0);
        close(pointing_game(&[0.9, 0.9, 0.2], &pos), 0.5);
    }

    /// Two 4x4 images: image 0's bird is the 2x2 top-left corner, image 1 is all bird (excluded).
    fn birds() -> Tensor {
        let bird = Tensor::zeros([2, 1, 4, 4], (Kind::Uint8, Device::Cpu));
        let _ = bird
            .narrow(0, 0, 1)
            .narrow(2, 0, 2)
            .narrow(3, 0, 2)
            .fill_(1);
        let _ = bird.narrow(0, 1, 1).fill_(1);
        bird
    }

    #[test]
    fn per_image_figures_with_masks_and_exclusions() {
        let bird = birds();
        // Map: 1 on the bottom row, 0.5 on the bird, 0 elsewhere. Mask: the bottom two rows.
        let map = Tensor::zeros([2, 1, 4, 4], (Kind::Float, Device::Cpu));
        let _ = map.narrow(2, 3, 1).fill_(1.0);
        let _ = map.narrow(2, 0, 2).narrow(3, 0, 2).fill_(0.5);
        let mask = Tensor::zeros([2, 1, 4, 4], (Kind::Bool, Device::Cpu));
        let _ = mask.narrow(2, 2, 2).fill_(1);
        let per = per_image_quality(&map, &bird, Some(&mask)).unwrap();
        assert_eq!(per[1], None);
        let q = per[0].clone().unwrap();
        // 12 background pixels: 4 at 1.0, 8 at 0; 4 bird pixels at 0.5. U = 4 * 4 (the 1.0s beat every bird pixel)
        // + 8 * 0 -> 16 / 48.
        assert!((q.auroc - 16.0 / 48.0).abs() < 1e-9, "{}", q.auroc);
        // Top 12: the 4 ones, the 4 bird pixels, 4 of the 8 zeros (all background): 8 caught -> 8 / 16.
        assert!((q.matched_iou - 0.5).abs() < 1e-9);
        assert_eq!(q.pointing, 1.0);
        assert_eq!(q.background_fraction, 0.75);
        // The mask (8 px, all background): IoU 8 / 12, nothing on the bird, coverage 0.5.
        assert!((q.background_iou.unwrap() - 8.0 / 12.0).abs() < 1e-9);
        assert_eq!(q.masked_on_bird, Some(0.0));
        assert_eq!(q.coverage, Some(0.5));
        let s = summarise(&per);
        assert_eq!((s.n_images, s.n_scored, s.n_excluded), (2, 1, 1));
        assert_eq!(s.n_empty_masks, Some(0));
        let by = summarise_by_label(&per, &["water".into(), "forest".into()]).unwrap();
        assert_eq!(by["water"].n_scored, 1);
        assert_eq!(by["forest"].n_excluded, 1);
        assert_eq!(by["forest"].auroc, None);
        assert!(summarise_by_label(&per, &["x".into()]).is_err());
    }

    #[test]
    fn report_brackets_the_map_between_random_and_oracle() {
        let bird = Tensor::zeros([6, 1, 8, 8], (Kind::Uint8, Device::Cpu));
        let _ = bird.narrow(2, 2, 4).narrow(3, 2, 4).fill_(1); // a 4x4 bird in the middle
                                                               // A good map: the background itself, slightly blurred at the bird's border.
        let good = oracle_maps(&bird) * 0.8 + 0.1;
        let labels: Vec<String> = ["water", "water", "forest", "forest", "forest", "water"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let report = mask_quality_report(
            "test",
            &good,
            Some(Threshold::TopK { percent: 50.0 }),
            &bird,
            &labels,
            4,
            0,
        )
        .unwrap();
        close(report.oracle.auroc, 1.0);
        close(report.oracle.background_iou, 1.0);
        close(report.map.auroc, 1.0);
        close(report.map.matched_iou, 1.0);
        let random_auroc = report.random.auroc.unwrap();
        assert!((0.2..0.8).contains(&random_auroc), "{random_auroc}");
        // Top 50 %: the 48 background pixels tie at 0.9 above the cut -> all of them masked.
        close(report.map.coverage, 0.75);
        close(report.random.coverage, 0.5);
        assert_eq!(report.by_label.len(), 2);
        assert_eq!(report.by_label["water"].n_scored, 3);
        let json = serde_json::to_string(&report).unwrap();
        // serde_json parses floats to within an ulp (no `float_roundtrip`): compare the figures, not the bits.
        let back: MaskQualityReport = serde_json::from_str(&json).unwrap();
        assert_eq!(
            (&back.method, back.threshold, back.map.n_scored),
            (&report.method, report.threshold, report.map.n_scored)
        );
        close(
            back.random.masked_on_bird,
            report.random.masked_on_bird.unwrap(),
        );
        assert_eq!(
            back.random_by_label.keys().collect::<Vec<_>>(),
            report.random_by_label.keys().collect::<Vec<_>>()
        );
        // The random maps are reproducible and look like real maps.
        let a = random_maps(2, 4, 8, 3).unwrap();
        let b = random_maps(2, 4, 8, 3).unwrap();
        assert!(a.pixels.equal(&b.pixels));
        assert_eq!(a.pixels.size(), [2, 1, 8, 8]);
        assert!(
            (a.pixels.amax([1, 2, 3], false) - 1.0)
                .abs()
                .max()
                .double_value(&[])
                < 1e-6
        );
    }

    #[test]
    fn bracketed_figures_do_not_depend_on_the_batching() {
        let bird = Tensor::zeros([4, 1, 8, 8], (Kind::Uint8, Device::Cpu));
        let _ = bird.narrow(2, 2, 4).narrow(3, 2, 4).fill_(1);
        let maps = random_maps(4, 4, 8, 9).unwrap().pixels;
        let seeds = [11u64, 12, 13, 14];
        let t = Some(Threshold::Otsu {});
        let whole = bracketed_quality(&maps, &bird, t, 4, &seeds).unwrap();
        let mut parts = bracketed_quality(
            &maps.narrow(0, 0, 1),
            &bird.narrow(0, 0, 1),
            t,
            4,
            &seeds[..1],
        )
        .unwrap();
        parts.extend(
            bracketed_quality(
                &maps.narrow(0, 1, 3),
                &bird.narrow(0, 1, 3),
                t,
                4,
                &seeds[1..],
            )
            .unwrap(),
        );
        assert_eq!(whole, parts);
        assert_eq!(
            whole[0].oracle.as_ref().unwrap().auroc,
            1.0,
            "the oracle's map is the background"
        );
        assert!(bracketed_quality(&maps, &bird, t, 4, &seeds[..2]).is_err());
        let empty = maps.narrow(0, 0, 0);
        assert!(bracketed_quality(&empty, &bird.narrow(0, 0, 0), t, 4, &[])
            .unwrap()
            .is_empty());
        let labels: Vec<String> = ["water", "water", "forest", "field"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let report = bracketed_report("m", t, &whole, &labels).unwrap();
        assert_eq!(report.by_label["water"].n_images, 2);
        assert_eq!(report.oracle.masked_on_bird, Some(0.0));
    }
}
