//! Synthetic Waterbirds: procedurally drawn birds (landbirds vs waterbirds, told apart by shape) pasted on drawn
//! land/water backgrounds with the group counts of the real dataset (Sagawa et al. 2020: train 3498/184/56/1057,
//! val 467/466/133/133, test 2255/2255/642/642), written in the real `waterbirds_v1.0` format, plus true bird masks,
//! 5 grammar captions per image and Background-Challenge-style variants (Xiao et al. 2020: `fg_only`, `bg_only`,
//! `mixed_rand`), of the test split only or, with `variant_splits: all`, of every split (for sanity classifiers).
//! With `place_masks: true` it also writes `place_masks/` (the water or land pixels: no sky, bird or distractor;
//! [`place_mask`]); `placement` chooses where the bird lands ([`Placement`]: inside the frame, or anywhere with up
//! to `max_cut` of it cut by the border).
//!
//! With `spurious_object`, a label-correlated object (a dock, [`super::scene::object`]) is drawn behind the bird in
//! a subset of the images, with its mask under `object_masks/`, its words in the captions and a trailing `object`
//! column in `metadata.csv` (the `waterbirds_object` data kind's attribute); see [`object_cell_counts`].
//!
//! The background fills most of the image and differs in colour and texture between places, while the class is
//! only in the bird's silhouette (colours come from one shared palette), so the spurious feature is much easier to
//! learn than the core one. The default bird size (~35 px of 64) is learnable by a small ViT from
//! scratch (docs/ARCHITECTURE.md, "Data"); ~15 px birds were not learned at all, even on balanced data.
use super::captions::{captions, BirdDesc, SceneDesc};
use super::draw::{png_gray, png_rgb, Canvas};
use super::scene::{
    bird_sprite, paint_background, paint_distractor, paint_object, place_mask, place_sprite_with,
    sample_distractors, Background, BirdColours, Placement, Species, SpuriousObject,
};
use super::waterbirds::{HEADER, MASK_DIR, OBJECT_MASK_DIR, PLACE_MASK_DIR};
use super::{write_atomic, Split};
use anyhow::Context;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// Group counts of the real Waterbirds, [split][group], g = 2*y + place.
pub const REAL_COUNTS: [[usize; 4]; 3] = [
    [3498, 184, 56, 1057],
    [467, 466, 133, 133],
    [2255, 2255, 642, 642],
];

/// The training correlation of the real set (P(place matches class)), at which [`group_counts`] returns the real
/// train counts exactly.
pub const REAL_CORRELATION: f64 = 0.95;

/// Names of the test variants written under `<out>/variants/`, in [`Variant::ALL`] order.
pub const VARIANTS: [&str; 3] = ["fg_only", "bg_only", "mixed_rand"];

/// A Background-Challenge-style variant folder (`<root>/variants/<name>/`, config `data.variant`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// The bird on a blank background.
    FgOnly,
    /// The background with the bird removed.
    BgOnly,
    /// The bird on a background of the other place.
    MixedRand,
}

impl Variant {
    pub const ALL: [Variant; 3] = [Variant::FgOnly, Variant::BgOnly, Variant::MixedRand];

    /// The folder name under `variants/`.
    pub fn name(self) -> &'static str {
        VARIANTS[self as usize]
    }
}

/// Knobs of the synthetic Waterbirds generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SynthConfig {
    /// Image side in pixels.
    pub size: u32,
    /// Multiplies the real group counts.
    pub scale: f64,
    /// Train correlation rho: fraction of each class on its own place (landbird/land, waterbird/water).
    pub correlation: f64,
    pub seed: u64,
    /// Draw distractor objects (rocks, clouds, flowers, boats).
    pub distractors: bool,
    /// Probability of each fitting distractor in an image when `distractors` is on.
    pub distractor_prob: f64,
    /// Longer side of the bird's bounding box as a fraction of the image (the core feature's difficulty).
    pub bird_size: f64,
    /// Relative jitter of the bird size (uniform in [1 - j, 1 + j]).
    pub bird_size_jitter: f64,
    /// Background colour/texture strength in [0, 1] (0 = flat grey): the spurious feature's difficulty.
    pub bg_strength: f64,
    pub captions_per_image: usize,
    /// Write the `variants/` folders.
    pub variants: bool,
    /// Which splits the variant folders hold: `test` (the Background Challenge's test-only variants) or `all`
    /// (train/val/test with the same rows as the main set, for training sanity classifiers on a variant).
    pub variant_splits: VariantSplits,
    /// Anti-aliasing: draw at `supersample` x the size, then box-filter down.
    pub supersample: u32,
    /// Where the bird lands: `{kind: inside}` (the default: wholly inside with a 3 % margin) or
    /// `{kind: anywhere, max_cut: 0.3}` (its box centre anywhere, at most `max_cut` of its width and height cut off).
    /// Left out of `synth.json` at the default, so the folders written before the knob keep their bytes.
    #[serde(skip_serializing_if = "crate::util::is_default")]
    pub placement: Placement,
    /// Also write `place_masks/` (255 = the place's water or land pixels) beside `fg_masks/`, for the main set and
    /// the variants.
    #[serde(skip_serializing_if = "crate::util::is_default")]
    pub place_masks: bool,
    /// A label-correlated object drawn into a subset of the images (absent: none, and today's bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spurious_object: Option<SpuriousObject>,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            size: 64,
            scale: 1.0,
            correlation: REAL_CORRELATION,
            seed: 0,
            distractors: true,
            distractor_prob: 0.25,
            bird_size: 0.55,
            bird_size_jitter: 0.15,
            bg_strength: 1.0,
            captions_per_image: 5,
            variants: true,
            variant_splits: VariantSplits::Test,
            supersample: 2,
            placement: Placement::Inside {},
            place_masks: false,
            spurious_object: None,
        }
    }
}

impl SynthConfig {
    /// Checks the knobs; each error names the field and its value.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.size >= 16, "size must be >= 16 px, got {}", self.size);
        anyhow::ensure!(
            self.scale > 0.0,
            "scale must be positive, got {}",
            self.scale
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.correlation),
            "correlation must be in [0, 1], got {}",
            self.correlation
        );
        anyhow::ensure!(
            self.bird_size > 0.0 && self.bird_size <= 1.0,
            "bird_size must be in (0, 1], got {}",
            self.bird_size
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.distractor_prob),
            "distractor_prob must be in [0, 1], got {}",
            self.distractor_prob
        );
        if let Some(o) = &self.spurious_object {
            o.validate()?;
        }
        self.placement.validate()
    }
}

/// The splits written into `variants/<name>/` (see [`SynthConfig::variant_splits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VariantSplits {
    /// Only the test split (the default; the main set's bytes do not depend on this choice).
    #[default]
    Test,
    /// Train, val and test: the variant folder is a complete Waterbirds-format dataset.
    All,
}

impl VariantSplits {
    fn includes(self, split: Split) -> bool {
        self == VariantSplits::All || split == Split::Test
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct SynthSummary {
    /// [split][group] image counts, g = 2*y + place.
    pub counts: [[usize; 4]; 3],
    /// With `spurious_object`: [split][2*y + object] image counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_counts: Option<[[usize; 4]; 3]>,
    pub n_images: usize,
    pub n_variant_images: usize,
}

/// Group counts [split][group] for a scale and train correlation. At rho = 0.95 every group is
/// round(real * scale); otherwise the class totals are kept and each class is split by rho. Val and test are the
/// real (within-class balanced) counts scaled.
pub fn group_counts(scale: f64, rho: f64) -> [[usize; 4]; 3] {
    let r = |n: usize| (n as f64 * scale).round() as usize;
    let mut out = REAL_COUNTS.map(|s| s.map(r));
    if (rho - REAL_CORRELATION).abs() > 1e-9 {
        let t = REAL_COUNTS[0];
        // Landbirds (y=0): majority group 0 (land). Waterbirds (y=1): majority group 3 (water).
        let land = r(t[0]) + r(t[1]);
        let water = r(t[2]) + r(t[3]);
        let land_maj = (rho * land as f64).round() as usize;
        let water_maj = (rho * water as f64).round() as usize;
        out[0] = [land_maj, land - land_maj, water - water_maj, water_maj];
    }
    out
}

/// Image counts [split][2*y + object][place] of the object setting: the (y, object) counts are [`group_counts`]
/// at the object's correlation (the real groups' structure: train split by the correlation within each class, val
/// and test balanced within each class), and each (y, object) cell is split by place deterministically: in train
/// round(place_correlation * n) on the class's own place (landbird/land, waterbird/water), in val and test
/// round(n / 2), so place is independent of the object given the class.
pub fn object_cell_counts(
    scale: f64,
    place_correlation: f64,
    object_correlation: f64,
) -> [[[usize; 2]; 4]; 3] {
    let yo = group_counts(scale, object_correlation);
    let mut out = [[[0usize; 2]; 4]; 3];
    for split in Split::ALL {
        let s = split.code() as usize;
        let rho = if split == Split::Train {
            place_correlation
        } else {
            0.5
        };
        for g in 0..4 {
            let (n, y) = (yo[s][g], g / 2);
            let own = (rho * n as f64).round() as usize;
            out[s][g][y] = own;
            out[s][g][1 - y] = n - own;
        }
    }
    out
}

/// One image to draw.
#[derive(Debug, Clone)]
struct Spec {
    img_id: i64,
    split: Split,
    y: i64,
    place: i64,
    /// Whether the spurious object is drawn (`None` without the knob: no `object` column).
    object: Option<bool>,
    species: Species,
    filename: String,
}

/// Everything written for one image (file bytes are written by the worker; rows are gathered in order).
struct Rendered {
    meta: String,
    captions: Vec<String>,
    variant_meta: Vec<String>,
}

fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    rng
}

const SPECIES_STREAM: u64 = 1 << 40;
const MIXED_STREAM: u64 = 2 << 40;
const ORDER_STREAM: u64 = 3 << 40;
const OBJECT_STREAM: u64 = 4 << 40;

/// A painted background: the canvas (its mask = the distractors' pixels), the place, its horizon (sky above) and
/// the distractors drawn.
struct Painted {
    canvas: Canvas,
    bg: Background,
    horizon: Option<f32>,
    distractors: Vec<super::scene::Distractor>,
}

/// Paints a background of `place` with optional distractors.
fn background(place: i64, cfg: &SynthConfig, n: usize, rng: &mut ChaCha8Rng) -> Painted {
    let bg = *Background::of_place(place)
        .choose(rng)
        .unwrap_or(&Background::Lake);
    let (mut canvas, horizon) = paint_background(bg, n, n, cfg.bg_strength as f32, rng);
    let ds = if cfg.distractors {
        sample_distractors(bg, cfg.distractor_prob, rng)
    } else {
        Vec::new()
    };
    for d in &ds {
        paint_distractor(&mut canvas, *d, horizon, rng);
    }
    Painted {
        canvas,
        bg,
        horizon,
        distractors: ds,
    }
}

fn place_filename(bg: Background, rng: &mut ChaCha8Rng) -> String {
    format!(
        "{}/{:08}.jpg",
        bg.places_dir(),
        rng.gen_range(0..100_000_000u32)
    )
}

fn render(spec: &Spec, cfg: &SynthConfig, out: &Path) -> anyhow::Result<Rendered> {
    let ss = cfg.supersample.max(1) as usize;
    let size = cfg.size as usize;
    let n = size * ss;
    let mut rng = rng_for(cfg.seed, spec.img_id as u64);
    let mut painted = background(spec.place, cfg, n, &mut rng);
    // The object behind the bird, from its own stream so the scene's other draws are today's.
    let object = cfg.spurious_object.filter(|_| spec.object == Some(true));
    let object_px = object.map(|o| {
        let mut orng = rng_for(cfg.seed, OBJECT_STREAM + spec.img_id as u64);
        paint_object(&mut painted.canvas, o.kind, o.size, &mut orng)
    });
    // The place mask leaves the object out as it leaves the bird and the distractors out.
    let object_mask: Vec<&[f32]> = object_px.iter().map(Vec::as_slice).collect();
    let (bg_canvas, bg) = (&painted.canvas, painted.bg);
    let colours = BirdColours::sample(&mut rng);
    let sprite = bird_sprite(spec.species, &colours, &mut rng);
    let j = cfg.bird_size_jitter.clamp(0.0, 0.9);
    let extent = (cfg.bird_size * rng.gen_range(1.0 - j..=1.0 + j)).min(0.94) as f32 * n as f32;
    let layer = place_sprite_with(
        &sprite.parts,
        sprite.angle,
        sprite.mirror,
        extent,
        n,
        n,
        cfg.placement,
        &mut rng,
    );
    let scene_canvas = bg_canvas.composite(&layer);
    let (px, mask) = scene_canvas.downsample(ss);
    // The place pixels of a painted background, without what `excluded` covers (computed only when written).
    let place_of = |p: &Painted, excluded: &[&[f32]]| -> Option<Vec<u8>> {
        let mut ex = vec![p.canvas.mask.as_slice()];
        ex.extend_from_slice(excluded);
        cfg.place_masks
            .then(|| place_mask(n, n, p.horizon, &ex, ss))
    };
    let write_png = |dir: &Path, rgb: &[u8], place: Option<Vec<u8>>| -> anyhow::Result<()> {
        write_atomic(&dir.join(&spec.filename), &png_rgb(size, size, rgb)?)?;
        let png_name = Path::new(&spec.filename).with_extension("png");
        write_atomic(
            &dir.join(MASK_DIR).join(&png_name),
            &png_gray(size, size, &mask)?,
        )?;
        if let Some(place) = place {
            write_atomic(
                &dir.join(PLACE_MASK_DIR).join(&png_name),
                &png_gray(size, size, &place)?,
            )?;
        }
        Ok(())
    };
    write_png(
        out,
        &px,
        place_of(
            &painted,
            &[&[layer.mask.as_slice()], object_mask.as_slice()].concat(),
        ),
    )?;
    if cfg.spurious_object.is_some() {
        // The object's pixels the bird does not hide; all 0 where the image has no object.
        let mut m = Canvas::new(n, n, [0.0; 3]);
        if let Some(o) = &object_px {
            for (i, v) in m.mask.iter_mut().enumerate() {
                *v = if o[i] > 0.0 && layer.mask[i] == 0.0 {
                    1.0
                } else {
                    0.0
                };
            }
        }
        let opath = out
            .join(OBJECT_MASK_DIR)
            .join(Path::new(&spec.filename).with_extension("png"));
        // At the output size too, a pixel is object or bird, never both.
        let mut om = m.downsample(ss).1;
        for (o, &b) in om.iter_mut().zip(&mask) {
            if b > 0 {
                *o = 0;
            }
        }
        write_atomic(&opath, &png_gray(size, size, &om)?)?;
    }
    let place_fn = place_filename(bg, &mut rng);
    let on = layer.mask.iter().filter(|&&m| m > 0.0).count();
    let scene = SceneDesc {
        bird: Some(BirdDesc {
            species: spec.species,
            colour: colours.name,
            pose: sprite.pose,
            visibility: (on as f32 / layer.mask.len() as f32).sqrt(),
            occluded: false,
        }),
        background: bg,
        distractors: painted.distractors.clone(),
        object: object.map(|o| o.kind),
        object_setting: 0.0,
    };
    let caps = captions(&scene, cfg.captions_per_image, &mut rng);
    let row = |place: i64, pf: &str, object: bool| {
        let mut r = format!(
            "{},{},{},{},{},{}",
            spec.img_id,
            spec.filename,
            spec.y,
            spec.split.code(),
            place,
            pf
        );
        if spec.object.is_some() {
            let _ = write!(r, ",{}", object as u8);
        }
        r
    };
    let has_object = object.is_some();
    let mut variant_meta = Vec::new();
    if cfg.variants && cfg.variant_splits.includes(spec.split) {
        let vdir = out.join("variants");
        // fg_only: the bird on black (the Background Challenge's only_fg; masked pixels = 0 as in MaskTune).
        // Its place mask is empty: no place is shown.
        let fg = Canvas::new(n, n, [0.0; 3]).composite(&layer);
        let no_place = cfg.place_masks.then(|| vec![0u8; size * size]);
        write_png(&vdir.join(VARIANTS[0]), &fg.downsample(ss).0, no_place)?;
        // bg_only: the same background with the bird region filled by what it hid (we can redraw it exactly); its
        // place mask keeps the bird's region (the place shows there).
        write_png(
            &vdir.join(VARIANTS[1]),
            &bg_canvas.downsample(ss).0,
            place_of(&painted, &object_mask),
        )?;
        // mixed_rand: the same bird on a random background of the other place.
        let mut mrng = rng_for(cfg.seed, MIXED_STREAM + spec.img_id as u64);
        let other = background(1 - spec.place, cfg, n, &mut mrng);
        write_png(
            &vdir.join(VARIANTS[2]),
            &other.canvas.composite(&layer).downsample(ss).0,
            place_of(&other, &[&layer.mask]),
        )?;
        // The object column says what each variant shows: only bg_only keeps the object.
        variant_meta.push(row(spec.place, &place_fn, false));
        variant_meta.push(row(spec.place, &place_fn, has_object));
        variant_meta.push(row(
            1 - spec.place,
            &place_filename(other.bg, &mut mrng),
            false,
        ));
    }
    Ok(Rendered {
        meta: row(spec.place, &place_fn, has_object),
        captions: caps,
        variant_meta,
    })
}

/// Generates the synthetic Waterbirds folder at `out` (see the module docs). Same config, same bytes: every image
/// draws from its own RNG stream (seed, img_id), independent of thread order.
pub fn generate(cfg: &SynthConfig, out: &Path) -> anyhow::Result<SynthSummary> {
    cfg.validate()?;
    let mut counts = group_counts(cfg.scale, cfg.correlation);
    // Rows in split/group order, then shuffled so img_ids do not reveal the group.
    let mut rows: Vec<(Split, i64, i64, Option<bool>)> = Vec::new();
    match &cfg.spurious_object {
        None => {
            for split in Split::ALL {
                for (g, &c) in counts[split.code() as usize].iter().enumerate() {
                    let (y, place) = (g as i64 / 2, g as i64 % 2);
                    rows.extend(std::iter::repeat_n((split, y, place, None), c));
                }
            }
        }
        Some(o) => {
            let cells = object_cell_counts(cfg.scale, cfg.correlation, o.correlation);
            counts = [[0; 4]; 3];
            for split in Split::ALL {
                let s = split.code() as usize;
                for (g, by_place) in cells[s].iter().enumerate() {
                    let (y, object) = (g as i64 / 2, g % 2 == 1);
                    for (place, &c) in by_place.iter().enumerate() {
                        counts[s][2 * y as usize + place] += c;
                        rows.extend(std::iter::repeat_n(
                            (split, y, place as i64, Some(object)),
                            c,
                        ));
                    }
                }
            }
        }
    }
    rows.shuffle(&mut rng_for(cfg.seed, ORDER_STREAM));
    let mut per_species = std::collections::HashMap::new();
    let specs: Vec<Spec> = rows
        .into_iter()
        .enumerate()
        .map(|(i, (split, y, place, object))| {
            let img_id = i as i64 + 1;
            let species = *Species::of_class(y)
                .choose(&mut rng_for(cfg.seed, SPECIES_STREAM + img_id as u64))
                .unwrap_or(&Species::Duck);
            let k = per_species.entry(species).or_insert(0usize);
            *k += 1;
            let filename = format!("{}/{}_{:04}.png", species.folder(), species.file_stem(), k);
            Spec {
                img_id,
                split,
                y,
                place,
                object,
                species,
                filename,
            }
        })
        .collect();

    let rendered: Vec<Rendered> = specs
        .par_iter()
        .map(|s| render(s, cfg, out).with_context(|| format!("drawing {}", s.filename)))
        .collect::<anyhow::Result<_>>()?;

    let header = match cfg.spurious_object {
        Some(_) => format!("{HEADER},object"),
        None => HEADER.to_string(),
    };
    let mut meta = format!("{header}\n");
    let mut vmeta = format!("{header}\n");
    let mut n_var = 0;
    for r in &rendered {
        writeln!(meta, "{}", r.meta)?;
        if !r.variant_meta.is_empty() {
            n_var += 1;
        }
    }
    write_atomic(&out.join("metadata.csv"), meta.as_bytes())?;
    super::captions::write_captions_csv(
        &out.join("captions.csv"),
        "img_id",
        specs.iter().zip(&rendered).flat_map(|(s, r)| {
            r.captions
                .iter()
                .map(move |c| (s.img_id.to_string(), c.as_str()))
        }),
    )?;
    if cfg.variants {
        for (v, name) in VARIANTS.iter().enumerate() {
            let mut m = vmeta.clone();
            for r in rendered.iter().filter(|r| !r.variant_meta.is_empty()) {
                writeln!(m, "{}", r.variant_meta[v])?;
            }
            write_atomic(
                &out.join("variants").join(name).join("metadata.csv"),
                m.as_bytes(),
            )?;
        }
        vmeta.clear();
    }
    let summary = SynthSummary {
        counts,
        object_counts: cfg.spurious_object.map(|o| {
            object_cell_counts(cfg.scale, cfg.correlation, o.correlation)
                .map(|s| s.map(|by_place| by_place.iter().sum()))
        }),
        n_images: specs.len(),
        n_variant_images: n_var * VARIANTS.len(),
    };
    let record = serde_json::json!({ "config": cfg, "summary": &summary });
    write_atomic(
        &out.join("synth.json"),
        serde_json::to_string_pretty(&record)?.as_bytes(),
    )?;
    tracing::info!(
        "synthetic Waterbirds: {} images (+{} variant images) in {}",
        summary.n_images,
        summary.n_variant_images,
        out.display()
    );
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_object_mask_is_the_objects_pixels_and_none_of_the_birds() {
        let cfg = SynthConfig {
            size: 32,
            spurious_object: Some(SpuriousObject::default()),
            bird_size: 0.4,
            distractors: false,
            variants: false,
            ..SynthConfig::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let mut n_covered = 0;
        for img_id in 1..=12 {
            // The same scene drawn with and without the object: only the object's pixels may change.
            let spec = |object, name: &str| Spec {
                img_id,
                split: Split::Train,
                y: 1,
                place: img_id % 2,
                object: Some(object),
                species: Species::Duck,
                filename: format!("{name}/{img_id}.png"),
            };
            let (with, without) = (spec(true, "with"), spec(false, "without"));
            render(&with, &cfg, dir.path()).unwrap();
            render(&without, &cfg, dir.path()).unwrap();
            let read = |s: &Spec, sub: &str| {
                let p = dir.path().join(sub).join(Path::new(&s.filename));
                image::open(p).unwrap().to_luma8().into_raw()
            };
            let (obj, bird) = (read(&with, OBJECT_MASK_DIR), read(&with, MASK_DIR));
            assert_eq!(bird, read(&without, MASK_DIR), "the bird is drawn the same");
            assert!(read(&without, OBJECT_MASK_DIR).iter().all(|&m| m == 0));
            let rgb = |s: &Spec| {
                let px = image::open(dir.path().join(&s.filename)).unwrap().to_rgb8();
                px.pixels().map(|p| p.0).collect::<Vec<_>>()
            };
            let (a, b) = (rgb(&with), rgb(&without));
            for i in 0..a.len() {
                if obj[i] > 0 {
                    assert_eq!(bird[i], 0, "image {img_id}: pixel {i} is bird and object");
                    assert_ne!(a[i], b[i], "image {img_id}: object pixel {i} unchanged");
                }
            }
            // Pixels that changed lie on the object or on its anti-aliased border (a neighbour is object): the
            // bird, and the rest of the scene, are today's.
            let w = 32;
            for i in (0..a.len()).filter(|&i| a[i] != b[i]) {
                let (x, y) = ((i % w) as i64, (i / w) as i64);
                let near = (-1..=1).any(|dy| {
                    (-1..=1).any(|dx| {
                        let (nx, ny) = (x + dx, y + dy);
                        (0..32).contains(&nx)
                            && (0..32).contains(&ny)
                            && obj[(ny * 32 + nx) as usize] > 0
                    })
                });
                assert!(
                    near,
                    "image {img_id}: pixel {i} changed away from the object"
                );
            }
            n_covered += usize::from(obj.iter().any(|&m| m > 0));
        }
        assert!(n_covered >= 10, "{n_covered} of 12 objects visible");
    }

    #[test]
    fn object_cells_follow_both_correlations() {
        let c = object_cell_counts(1.0, 0.7, 0.9);
        // Train (y, object): the class totals 3682 / 1113 split 0.9 / 0.1 towards (landbird, none), (waterbird, dock).
        let yo = c[0].map(|p| p[0] + p[1]);
        assert_eq!(yo, [3314, 368, 111, 1002]);
        // Each cell split 0.7 / 0.3 towards the class's own place (land = 0 for landbirds, water = 1 for waterbirds).
        assert_eq!(c[0][0], [2320, 994]);
        assert_eq!(c[0][3], [301, 701]);
        // Val and test: the real within-class balanced counts, each cell split in half by place.
        assert_eq!(c[1], [[234, 233], [233, 233], [66, 67], [66, 67]]);
        assert_eq!(c[2][0], [1128, 1127]);
        assert_eq!(c[2][3], [321, 321]);
    }

    #[test]
    fn real_counts_at_real_correlation() {
        assert_eq!(group_counts(1.0, 0.95), REAL_COUNTS);
    }

    #[test]
    fn other_correlation_keeps_class_totals() {
        for (rho, maj) in [(0.5, 1841), (0.8, 2946), (1.0, 3682)] {
            let c = group_counts(1.0, rho);
            assert_eq!(c[0][0], maj);
            assert_eq!(c[0][0] + c[0][1], 3682);
            assert_eq!(c[0][2] + c[0][3], 1113);
            assert_eq!(c[2], REAL_COUNTS[2]);
        }
    }
}
