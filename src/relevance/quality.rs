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
//! Where the data ship them ([`Truth`]), two more threshold-free figures: the AUROC of the *place* pixels (the water
//! or the land, sky excluded) against every other pixel, which a faithful "water" map should reach without being
//! charged for the sky, and the AUROC of the spurious *object's* pixels against every other pixel.
//!
//! Thresholded figures, when masks are given: IoU of the mask with the background, share of the masked pixels on
//! the bird (over images with a non-empty mask), coverage. The same figures for a random map (seeded uniform noise
//! at patch resolution, upsampled like a real map) and for the oracle (the true background: AUROC 1) bracket them.
//!
//! The controls beside every map: besides the random map and the oracle, the *centre prior*
//! ([`centre_prior_maps`]), a fixed map that scores each pixel's distance from the image centre and never looks at
//! the image. Where the object of a class sits near the centre, it separates background from object well, so 0.5
//! is not the chance level of such a benchmark: a map is worth its name where it beats the centre prior image by
//! image ([`paired_win_rate`], with a 95 % Wilson interval).
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

/// The true regions maps are scored against, `[b, 1, H, W]` u8 or bool (nonzero = in the region): the bird,
/// always, and the place and the spurious object where the data ship their masks.
#[derive(Debug)]
pub struct Truth {
    pub bird: Tensor,
    pub place: Option<Tensor>,
    pub object: Option<Tensor>,
}

impl Truth {
    /// The regions a dataset ships: `None` without bird masks.
    pub fn of(data: &crate::data::Dataset) -> Option<Self> {
        Some(Truth {
            bird: data.bird_masks.as_ref()?.shallow_clone(),
            place: data.place_masks.as_ref().map(Tensor::shallow_clone),
            object: data.object_masks.as_ref().map(Tensor::shallow_clone),
        })
    }

    /// Only the bird is known.
    pub fn bird(bird: &Tensor) -> Self {
        Truth {
            bird: bird.shallow_clone(),
            place: None,
            object: None,
        }
    }

    /// The images `start..start + len`.
    pub fn narrow(&self, start: i64, len: i64) -> Self {
        let n = |t: &Tensor| t.narrow(0, start, len);
        Truth {
            bird: n(&self.bird),
            place: self.place.as_ref().map(n),
            object: self.object.as_ref().map(n),
        }
    }

    /// The images `index` (i64 `[k]`), in that order.
    pub fn select(&self, index: &Tensor) -> Self {
        let s = |t: &Tensor| t.index_select(0, index);
        Truth {
            bird: s(&self.bird),
            place: self.place.as_ref().map(s),
            object: self.object.as_ref().map(s),
        }
    }
}

/// One image's true regions per pixel (true = in the region).
#[derive(Debug, Clone, Copy)]
pub struct PixelTruth<'a> {
    pub bird: &'a [bool],
    pub place: Option<&'a [bool]>,
    pub object: Option<&'a [bool]>,
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
    /// AUROC of the place pixels against every other pixel (`None` without a place mask or place pixels).
    #[serde(default)]
    pub place_auroc: Option<f64>,
    /// AUROC of the spurious object's pixels against every other pixel (`None` without the object).
    #[serde(default)]
    pub object_auroc: Option<f64>,
}

/// The figures of one image: `map` and its true regions per pixel, optionally the mask (true = masked).
/// `None` when the image has no bird or no background pixel.
pub fn image_quality(
    map: &[f32],
    truth: PixelTruth<'_>,
    mask: Option<&[bool]>,
) -> Option<ImageQuality> {
    let bird = truth.bird;
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
        place_auroc: truth.place.and_then(|p| region_auroc(map, p)),
        object_auroc: truth.object.and_then(|o| region_auroc(map, o)),
    })
}

/// AUROC of a region's pixels against all the others; `None` where the region or its complement is empty.
fn region_auroc(map: &[f32], region: &[bool]) -> Option<f64> {
    assert_eq!(map.len(), region.len(), "a region mask of another size");
    auroc(map, region)
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

/// Per-image figures of maps `[b, 1, H, W]` against the true regions (each `[b, 1, H, W]`), with optional masks
/// of the same shape (nonzero = masked). `None` entries are excluded images.
pub fn per_image_quality(
    maps: &Tensor,
    truth: &Truth,
    masks: Option<&Tensor>,
) -> Result<Vec<Option<ImageQuality>>> {
    let shape = truth.bird.size();
    let others = [
        Some(maps),
        masks,
        truth.place.as_ref(),
        truth.object.as_ref(),
    ];
    if others.iter().flatten().any(|t| t.size() != shape) {
        bail!(
            "maps {:?}, masks {:?}, and the bird {:?}, place {:?} and object {:?} masks must have one shape",
            maps.size(),
            masks.map(Tensor::size),
            shape,
            truth.place.as_ref().map(Tensor::size),
            truth.object.as_ref().map(Tensor::size)
        );
    }
    let maps = rows_f32(maps)?;
    let bird = rows_bool(&truth.bird)?;
    let place = truth.place.as_ref().map(rows_bool).transpose()?;
    let object = truth.object.as_ref().map(rows_bool).transpose()?;
    let masks = masks.map(rows_bool).transpose()?;
    Ok(maps
        .iter()
        .enumerate()
        .map(|(i, map)| {
            let truth = PixelTruth {
                bird: &bird[i],
                place: place.as_ref().map(|p| p[i].as_slice()),
                object: object.as_ref().map(|o| o[i].as_slice()),
            };
            image_quality(map, truth, masks.as_ref().map(|m| m[i].as_slice()))
        })
        .collect())
}

/// Means over the scored images (`None` where nothing was scored). Serialised into `masks/summary.json`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
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
    /// Over the scored images with a place mask and place pixels.
    #[serde(default)]
    pub place_auroc: Option<f64>,
    /// Over the scored images that hold the spurious object.
    #[serde(default)]
    pub object_auroc: Option<f64>,
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
        place_auroc: mean(scored.iter().filter_map(|q| q.place_auroc)),
        object_auroc: mean(scored.iter().filter_map(|q| q.object_auroc)),
    }
}

/// How often one map beats another image by image: wins, ties (each counted one half) and the win rate with its
/// 95 % Wilson score interval over the images where both have a figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WinRate {
    pub n: usize,
    pub wins: usize,
    pub ties: usize,
    pub rate: f64,
    pub low: f64,
    pub high: f64,
}

/// The paired win rate of `a` over `b` (pairs of one image's figures, higher = better), ties one half; `None`
/// without a pair. The interval is Wilson's (Wilson 1927) at 95 %, on the rate with ties split.
pub fn paired_win_rate(pairs: impl IntoIterator<Item = (f64, f64)>) -> Option<WinRate> {
    let (mut n, mut wins, mut ties) = (0usize, 0usize, 0usize);
    for (a, b) in pairs {
        n += 1;
        if a > b {
            wins += 1;
        } else if a == b {
            ties += 1;
        }
    }
    let (rate, low, high) = proportion_interval(wins as f64 + 0.5 * ties as f64, n)?;
    Some(WinRate {
        n,
        wins,
        ties,
        rate,
        low,
        high,
    })
}

/// A proportion of `successes` (ties may count one half) in `n` trials with its 95 % Wilson score interval:
/// `(rate, low, high)`, `None` for `n = 0`.
pub fn proportion_interval(successes: f64, n: usize) -> Option<(f64, f64, f64)> {
    if n == 0 {
        return None;
    }
    let rate = successes / n as f64;
    let (low, high) = wilson_interval(rate, n, 1.959_963_984_540_054);
    Some((rate, low, high))
}

/// Wilson's score interval for a proportion `p` of `n` trials at normal quantile `z`.
fn wilson_interval(p: f64, n: usize, z: f64) -> (f64, f64) {
    let n = n as f64;
    let z2 = z * z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// The map's paired win rates over the centre prior, per figure: the background AUROC, and the place AUROC where
/// place masks exist.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct OverCentre {
    pub background: Option<WinRate>,
    pub place: Option<WinRate>,
}

impl OverCentre {
    fn of(per_image: &[Bracketed]) -> Self {
        let pairs = |figure: fn(&ImageQuality) -> Option<f64>| {
            per_image.iter().filter_map(move |q| {
                let map = q.map.as_ref().and_then(figure)?;
                let centre = q.centre.as_ref().and_then(figure)?;
                Some((map, centre))
            })
        };
        OverCentre {
            background: paired_win_rate(pairs(|q| Some(q.auroc))),
            place: paired_win_rate(pairs(|q| q.place_auroc)),
        }
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

/// The centre prior `[n, 1, size, size]`: each pixel's distance from the image centre (pixel centres at half
/// integers), divided by the largest (the corners' = 1). It never looks at an image: the control that tells how
/// much of a map's score the object's position alone gives.
pub fn centre_prior_maps(n: i64, size: i64) -> Tensor {
    let c = size as f64 / 2.0;
    let coords: Vec<f64> = (0..size).map(|i| i as f64 + 0.5 - c).collect();
    let far = 2f64.sqrt() * coords[0].abs().max(1e-12);
    let values: Vec<f32> = coords
        .iter()
        .flat_map(|&y| {
            coords
                .iter()
                .map(move |&x| ((x * x + y * y).sqrt() / far) as f32)
        })
        .collect();
    Tensor::from_slice(&values)
        .view([1, 1, size, size])
        .expand([n, 1, size, size], false)
        .contiguous()
}

/// The content of `masks/summary.json` for one map type: the map, its controls (a random map, the centre prior and
/// the oracle) over the same images, the map's paired win rate over the centre prior, and the map and the random map
/// per label (the target word).
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
    /// The centre prior ([`centre_prior_maps`]), thresholded by the same rule.
    #[serde(default)]
    pub centre: QualitySummary,
    /// The map's paired win rate over the centre prior, image by image.
    #[serde(default)]
    pub over_centre: OverCentre,
    pub by_label: BTreeMap<String, QualitySummary>,
    pub random_by_label: BTreeMap<String, QualitySummary>,
}

/// One image's figures for its map and for its controls: a random map, the centre prior and the oracle (`None`
/// where the image is excluded).
#[derive(Debug, Clone, PartialEq)]
pub struct Bracketed {
    pub map: Option<ImageQuality>,
    pub random: Option<ImageQuality>,
    pub centre: Option<ImageQuality>,
    pub oracle: Option<ImageQuality>,
}

/// Per-image figures of maps `[b, 1, H, W]` against the true regions, beside a random map per image (drawn from
/// `seeds[i]` on the `grid` of the real maps), the centre prior and the oracle; with a threshold, of the masks it
/// makes too (the random map and the centre prior thresholded by the same rule, the oracle's mask the true
/// background). Batches of a stage can be scored one at a time and their results concatenated.
pub fn bracketed_quality(
    maps: &Tensor,
    truth: &Truth,
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
    let scored = |maps: &Tensor| -> Result<Vec<Option<ImageQuality>>> {
        let masks = threshold.map(|t| threshold_masks(maps, t)).transpose()?;
        per_image_quality(maps, truth, masks.as_ref())
    };
    let per_map = scored(maps)?;
    let parts = seeds
        .iter()
        .map(|&s| Ok(random_maps(1, grid, h, s)?.pixels))
        .collect::<Result<Vec<_>>>()?;
    let per_random = scored(&Tensor::cat(&parts, 0))?;
    let per_centre = scored(&centre_prior_maps(b, h))?;
    let oracle = oracle_maps(&truth.bird);
    let oracle_masks = threshold.map(|_| oracle.ne(0));
    let per_oracle = per_image_quality(&oracle, truth, oracle_masks.as_ref())?;
    Ok(per_map
        .into_iter()
        .zip(per_random)
        .zip(per_centre)
        .zip(per_oracle)
        .map(|(((map, random), centre), oracle)| Bracketed {
            map,
            random,
            centre,
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
    let centre: Vec<Option<ImageQuality>> = per_image.iter().map(|q| q.centre.clone()).collect();
    Ok(MaskQualityReport {
        method: method.to_string(),
        threshold,
        map: summarise(&map),
        random: summarise(&random),
        oracle: summarise(&oracle),
        centre: summarise(&centre),
        over_centre: OverCentre::of(per_image),
        by_label: summarise_by_label(&map, labels)?,
        random_by_label: summarise_by_label(&random, labels)?,
    })
}

/// Scores maps `[b, 1, H, W]` and, with a threshold, the masks it makes, against the true regions; `labels`
/// (one per image) group the figures; image i's random map is drawn from `seed + i` on the same `grid` as the
/// real maps.
pub fn mask_quality_report(
    method: &str,
    maps: &Tensor,
    threshold: Option<Threshold>,
    truth: &Truth,
    labels: &[String],
    grid: i64,
    seed: u64,
) -> Result<MaskQualityReport> {
    let b = maps.size().first().copied().unwrap_or(0).max(0) as u64;
    let seeds: Vec<u64> = (0..b).map(|i| seed.wrapping_add(i)).collect();
    let per_image = bracketed_quality(maps, truth, threshold, grid, &seeds)?;
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
        let per = per_image_quality(&map, &Truth::bird(&bird), Some(&mask)).unwrap();
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
            &Truth::bird(&bird),
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
        let whole = bracketed_quality(&maps, &Truth::bird(&bird), t, 4, &seeds).unwrap();
        let mut parts = bracketed_quality(
            &maps.narrow(0, 0, 1),
            &Truth::bird(&bird).narrow(0, 1),
            t,
            4,
            &seeds[..1],
        )
        .unwrap();
        parts.extend(
            bracketed_quality(
                &maps.narrow(0, 1, 3),
                &Truth::bird(&bird).narrow(1, 3),
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
        assert!(bracketed_quality(&maps, &Truth::bird(&bird), t, 4, &seeds[..2]).is_err());
        let empty = maps.narrow(0, 0, 0);
        assert!(
            bracketed_quality(&empty, &Truth::bird(&bird).narrow(0, 0), t, 4, &[])
                .unwrap()
                .is_empty()
        );
        let labels: Vec<String> = ["water", "water", "forest", "field"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let report = bracketed_report("m", t, &whole, &labels).unwrap();
        assert_eq!(report.by_label["water"].n_images, 2);
        assert_eq!(report.oracle.masked_on_bird, Some(0.0));
    }

    #[test]
    fn centre_prior_is_the_distance_from_the_centre() {
        let c = centre_prior_maps(2, 4);
        assert_eq!(c.size(), [2, 1, 4, 4]);
        let v = Vec::<f32>::try_from(c.get(0).reshape([-1])).unwrap();
        // Pixel centres at +-0.5 and +-1.5 from the centre: the four middle pixels at sqrt(0.5), the corners at
        // sqrt(4.5) = the maximum.
        let inner = (0.5f32).sqrt() / (4.5f32).sqrt();
        for (i, &x) in v.iter().enumerate() {
            let (r, k) = (i / 4, i % 4);
            let want = match ((r == 0 || r == 3), (k == 0 || k == 3)) {
                (true, true) => 1.0,
                (false, false) => inner,
                _ => (2.5f32).sqrt() / (4.5f32).sqrt(),
            };
            assert!((x - want).abs() < 1e-6, "pixel {i}: {x} vs {want}");
        }
        assert!(c.get(0).equal(&c.get(1)));
        // A centred bird: the prior alone separates background from bird perfectly; a bird in a corner: it points
        // at the bird instead.
        let bird = Tensor::zeros([2, 1, 8, 8], (Kind::Uint8, Device::Cpu));
        let _ = bird.get(0).narrow(1, 2, 4).narrow(2, 2, 4).fill_(1);
        let _ = bird.get(1).narrow(1, 0, 3).narrow(2, 0, 3).fill_(1);
        let per = per_image_quality(&centre_prior_maps(2, 8), &Truth::bird(&bird), None).unwrap();
        assert_eq!(per[0].as_ref().unwrap().auroc, 1.0);
        assert!(per[1].as_ref().unwrap().auroc < 0.5);
    }

    #[test]
    fn place_and_object_aurocs_score_their_own_region() {
        // 1 x 8 pixels: bird at 0-1, sky at 2-3, place (water) at 4-7, the object at 6.
        let bird = Tensor::from_slice(&[1u8, 1, 0, 0, 0, 0, 0, 0]).view([1, 1, 1, 8]);
        let place = Tensor::from_slice(&[0u8, 0, 0, 0, 1, 1, 1, 1]).view([1, 1, 1, 8]);
        let object = Tensor::from_slice(&[0u8, 0, 0, 0, 0, 0, 1, 0]).view([1, 1, 1, 8]);
        // A "water" map: high on the water, low on the sky and the bird.
        let map = Tensor::from_slice(&[0f32, 0.0, 0.1, 0.1, 0.9, 0.8, 0.7, 0.9]).view([1, 1, 1, 8]);
        let truth = Truth {
            bird: bird.shallow_clone(),
            place: Some(place),
            object: Some(object),
        };
        let q = per_image_quality(&map, &truth, None).unwrap()[0]
            .clone()
            .unwrap();
        assert_eq!(q.place_auroc, Some(1.0));
        // Background AUROC charges it for the sky: 4 water pixels beat both birds, the sky beats them too.
        assert_eq!(q.auroc, 1.0);
        // The object pixel (0.7) beats the bird and sky (4 pixels) and loses to 3 of the water pixels: 4 / 7.
        assert!((q.object_auroc.unwrap() - 4.0 / 7.0).abs() < 1e-9);
        let only_bird = per_image_quality(&map, &Truth::bird(&bird), None).unwrap()[0]
            .clone()
            .unwrap();
        assert_eq!(
            (only_bird.place_auroc, only_bird.object_auroc),
            (None, None)
        );
        let s = summarise(&[Some(q)]);
        assert_eq!(s.place_auroc, Some(1.0));
    }

    #[test]
    fn win_rate_counts_ties_as_one_half_with_a_wilson_interval() {
        assert_eq!(paired_win_rate(std::iter::empty()), None);
        let w = paired_win_rate([(0.9, 0.5), (0.4, 0.5), (0.5, 0.5), (0.7, 0.6)]).unwrap();
        assert_eq!((w.n, w.wins, w.ties), (4, 2, 1));
        assert!((w.rate - 0.625).abs() < 1e-12);
        // Wilson at 95 % written out (z = 1.96): centre (p + z²/2n) / (1 + z²/n) = 0.5638, half-width
        // z / (1 + z²/n) · sqrt(p(1 - p)/n + z²/4n²) = 0.3443.
        assert!(
            (w.low - 0.2194).abs() < 5e-4 && (w.high - 0.9081).abs() < 5e-4,
            "{w:?}"
        );
        let all = paired_win_rate((0..100).map(|_| (1.0, 0.0))).unwrap();
        assert_eq!(all.rate, 1.0);
        assert!(all.low > 0.96 && all.high == 1.0, "{all:?}");
    }

    #[test]
    fn report_carries_the_centre_prior_and_the_win_rate_over_it() {
        // Centred birds: the centre prior is perfect; a map that is the background with noise on the bird
        // border does no better, a map that points at the bird loses every image.
        let bird = Tensor::zeros([3, 1, 8, 8], (Kind::Uint8, Device::Cpu));
        let _ = bird.narrow(2, 2, 4).narrow(3, 2, 4).fill_(1);
        let labels = vec!["water".to_string(); 3];
        let truth = Truth::bird(&bird);
        let towards_bird = bird.to_kind(Kind::Float);
        let r = mask_quality_report("bird", &towards_bird, None, &truth, &labels, 4, 0).unwrap();
        close(r.centre.auroc, 1.0);
        let w = r.over_centre.background.unwrap();
        assert_eq!((w.n, w.wins, w.ties), (3, 0, 0));
        assert_eq!(r.over_centre.place, None);
        let oracle = oracle_maps(&bird);
        let r = mask_quality_report("oracle", &oracle, None, &truth, &labels, 4, 0).unwrap();
        assert_eq!(r.over_centre.background.unwrap().ties, 3);
    }
}
