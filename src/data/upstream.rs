//! The synthetic upstream corpus: our stand-in for ImageNet, on which the classifier is pretrained before it meets
//! the spuriously correlated Waterbirds training set (the paper fine-tunes an ImageNet-pretrained ViT;
//! docs/ARCHITECTURE.md, "The pretrained regime"). 22 categories told apart by shape (the 10 bird species of the
//! Waterbirds generator and 12 non-bird objects, [`super::upstream_scene`]) on 13 backgrounds drawn independently
//! of the label, in exactly balanced (category, background) cells, so no background predicts the category. With
//! `background_affinity` > 0 a fixed share of each category lies on its habitats instead (fish on water, cars on the
//! street: ImageNet's correlations in miniature, for the Background Challenge analysis of paper section 4.3); the
//! default 0 writes the label-independent corpus byte for byte.
//!
//! Laid out like ImageNet-9 and the Background Challenge (Xiao et al. 2020, "Noise or Signal: The Role of Image
//! Backgrounds in Object Recognition"), so [`super::bg_challenge`] reads it like the real release:
//!
//! ```text
//! <out>/upstream.json                         config, classes (id2label), backgrounds, counts [split][class][bg]
//! <out>/upstream_metadata.csv                 split,filename,label,class_dir,background,mixed_same,mixed_rand,mixed_next
//! <out>/in9l/{train,val}/NN_word/word_NNNNN.png
//! <out>/bg_challenge/{original,only_fg,no_fg,only_bg_b,only_bg_t}/val/NN_word/word_NNNNN.png
//! <out>/bg_challenge/{mixed_same,mixed_rand,mixed_next}/val/NN_word/fg_word_NNNNN_bg_other_NNNNN.png
//! <out>/bg_challenge/fg_mask/val/NN_word/word_NNNNN.npy     uint8 [size, size], 1 = object
//! ```
//!
//! Images are PNG by default (lossless, so the variants' black regions stay exactly 0); `image_format: jpeg` writes
//! `.JPEG` files like the release. The variants follow the release's recipe (main.py of the paper's code): Only-FG
//! and No-FG multiply by the mask, Only-BG-B blacks out the object's bounding box, Only-BG-T fills the box with a
//! tile of the widest background strip beside it; the mixed variants paste the object on another image's
//! background, which we can redraw without its object (the release uses Only-BG-T of the other image instead).
//!
//! Determinism and separation from every Waterbirds set: each image draws from its own ChaCha8 stream keyed by
//! SHA-256 of a domain tag and the seed, where the other generators key ChaCha8 with `seed_from_u64`; no RNG
//! state, so no sprite instance, background or image, is shared with them. Same config, same bytes.
//!
//! One file (about 530 lines of code before the tests): the layout, the per-image streams and the variants are
//! written in one pass over the images; what an image shows is drawn in [`super::upstream_scene`].
use super::bg_challenge::{Variant, FG_MASK_DIR, VAL_DIR};
use super::draw::{png_rgb, Canvas};
use super::npy;
use super::scene::{place_sprite_with, Placement};
use super::upstream_scene::{class_dir, paint, sprite, Category, UpstreamBackground};
use super::write_atomic;
use anyhow::Context;
use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageEncoder};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// The domain tag hashed with the seed into the corpus' RNG key.
const DOMAIN: &[u8] = b"texplain/upstream-corpus/v1";
const ASSIGN_STREAM: u64 = 1 << 40;
const PARTNER_STREAM: u64 = 2 << 40;

/// Folder of the IN-9L style class folders.
pub const IN9L_DIR: &str = "in9l";
/// Folder of the Background Challenge variants.
pub const BG_CHALLENGE_DIR: &str = "bg_challenge";

/// Encoding of the written images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    #[default]
    Png,
    /// `.JPEG` files, as ImageNet and the Background Challenge ship them.
    Jpeg,
}

impl ImageFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "JPEG",
        }
    }
}

/// Knobs of the upstream corpus generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// Image side in pixels.
    pub size: u32,
    pub seed: u64,
    /// IN-9L training images per category.
    pub train_per_class: usize,
    /// IN-9L validation images per category (model selection).
    pub val_per_class: usize,
    /// Background Challenge images per category (each written in every variant).
    pub challenge_per_class: usize,
    /// The background pool; every category is spread evenly over it in every split.
    pub backgrounds: Vec<UpstreamBackground>,
    /// Longer side of the object's bounding box as a fraction of the image.
    pub object_size: f64,
    /// Relative jitter of the object size (uniform in [1 - j, 1 + j]); the result is capped at 0.9.
    pub object_size_jitter: f64,
    /// Where the object lands: inside the frame (the default) or anywhere, partly cut by the border, as the
    /// downstream birds of `data.synth.placement` do (a pretraining corpus with centred objects teaches a centre
    /// bias that off-centre birds then lack). Left out of what it serializes into at the default, so the corpus
    /// folders and pretrain keys written before the knob hold.
    #[serde(skip_serializing_if = "crate::util::is_default")]
    pub placement: Placement,
    /// Write `bg_challenge/` (the variants and masks of the challenge images).
    pub challenge: bool,
    pub image_format: ImageFormat,
    /// JPEG quality when `image_format` is `jpeg`.
    pub jpeg_quality: u8,
    /// Anti-aliasing: draw at `supersample` x the size, then box-filter down.
    pub supersample: u32,
    /// Habitat correlation a in [0, 1]: of the n images of each category in each part, round(a n) lie on the
    /// category's habitats ([`Category::habitats`], those in `backgrounds`), spread evenly over them, and the rest
    /// evenly over the whole pool, in train, val and the challenge alike (the challenge follows the IN-9L
    /// distribution, as the real val set does, so Mixed-Rand breaks the correlation). A category without a habitat
    /// in the pool keeps every image on the pool. 0 (the default) is the label-independent corpus, byte for byte.
    pub background_affinity: f64,
}

impl Default for UpstreamConfig {
    /// 22 x 546 = 12,012 training images (42 per category and background), 39 val and 52 challenge images per
    /// category (3 and 4 per background): a tiny ViT pretrains on it in about two minutes on two cores.
    fn default() -> Self {
        UpstreamConfig {
            size: 64,
            seed: 0,
            train_per_class: 546,
            val_per_class: 39,
            challenge_per_class: 52,
            backgrounds: UpstreamBackground::ALL.to_vec(),
            object_size: 0.55,
            object_size_jitter: 0.25,
            placement: Placement::Inside {},
            challenge: true,
            image_format: ImageFormat::Png,
            jpeg_quality: 92,
            supersample: 2,
            background_affinity: 0.0,
        }
    }
}

impl UpstreamConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(self.size >= 16, "size must be >= 16 px, got {}", self.size);
        anyhow::ensure!(
            self.supersample >= 1 && self.supersample <= 4,
            "supersample must be in 1..=4, got {}",
            self.supersample
        );
        anyhow::ensure!(self.train_per_class > 0, "train_per_class must be positive");
        anyhow::ensure!(
            !self.challenge || self.challenge_per_class >= 2,
            "challenge_per_class must be >= 2 (mixed_same needs another image of the class), got {}",
            self.challenge_per_class
        );
        anyhow::ensure!(
            !self.backgrounds.is_empty(),
            "backgrounds must not be empty"
        );
        let mut seen = self.backgrounds.clone();
        seen.sort();
        seen.dedup();
        anyhow::ensure!(
            seen.len() == self.backgrounds.len(),
            "backgrounds lists a background twice: {:?}",
            self.backgrounds
        );
        anyhow::ensure!(
            self.object_size > 0.0 && self.object_size <= 0.9,
            "object_size must be in (0, 0.9], got {}",
            self.object_size
        );
        anyhow::ensure!(
            (0.0..1.0).contains(&self.object_size_jitter),
            "object_size_jitter must be in [0, 1), got {}",
            self.object_size_jitter
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.background_affinity),
            "background_affinity must be in [0, 1], got {}",
            self.background_affinity
        );
        anyhow::ensure!(
            (1..=100).contains(&self.jpeg_quality),
            "jpeg_quality must be in 1..=100, got {}",
            self.jpeg_quality
        );
        self.placement.validate()
    }
}

/// The three image sets of the corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    Train,
    Val,
    Challenge,
}

impl Part {
    pub const ALL: [Part; 3] = [Part::Train, Part::Val, Part::Challenge];

    pub fn name(self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::Val => "val",
            Part::Challenge => "bg_challenge",
        }
    }

    fn per_class(self, cfg: &UpstreamConfig) -> usize {
        match self {
            Part::Train => cfg.train_per_class,
            Part::Val => cfg.val_per_class,
            Part::Challenge if cfg.challenge => cfg.challenge_per_class,
            Part::Challenge => 0,
        }
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamSummary {
    /// Class folder names in label order (`00_duck`, ...).
    pub class_dirs: Vec<String>,
    /// id2label.
    pub label_names: Vec<String>,
    pub backgrounds: Vec<String>,
    /// Images per [class][background] for each part (`train`, `val`, `bg_challenge`).
    pub counts: BTreeMap<String, Vec<Vec<usize>>>,
    /// IN-9L images (train + val) plus challenge originals.
    pub n_images: usize,
    /// Images in the seven derived variants.
    pub n_variant_images: usize,
    pub n_masks: usize,
}

/// One image to draw.
#[derive(Debug, Clone)]
struct Spec {
    /// Global index, the RNG stream.
    id: u64,
    part: Part,
    label: usize,
    category: Category,
    background: UpstreamBackground,
    /// File stem, unique in the corpus: `<word>_<NNNNN>`.
    stem: String,
}

fn corpus_key(seed: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(seed.to_le_bytes());
    h.finalize().into()
}

/// The RNG of stream `stream` of the corpus with `seed` (see the module docs).
pub fn corpus_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::from_seed(corpus_key(seed));
    rng.set_stream(stream);
    rng
}

/// Background indices for `n` images of one (part, class): every background `floor(n / B)` or `ceil(n / B)` times,
/// which backgrounds get the extra one and the order drawn from `rng`.
pub fn balanced_backgrounds(n: usize, n_backgrounds: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..n_backgrounds).collect();
    perm.shuffle(rng);
    let mut out: Vec<usize> = (0..n).map(|k| perm[k % n_backgrounds]).collect();
    out.shuffle(rng);
    out
}

/// How many of `n` images of a category lie on its habitats under `affinity` (see
/// [`UpstreamConfig::background_affinity`]): round(affinity n) when the category has a habitat in the pool, else 0.
pub fn habitat_share(n: usize, affinity: f64, n_habitats: usize) -> usize {
    if n_habitats == 0 {
        0
    } else {
        ((affinity * n as f64).round() as usize).min(n)
    }
}

/// Background indices (into `backgrounds`) for `n` images of `category` in one part: [`habitat_share`] of them
/// spread over its habitats in the pool by [`balanced_backgrounds`], the rest over the whole pool, in a shuffled
/// order. With no habitat share this draws exactly what [`balanced_backgrounds`] alone draws.
pub fn category_backgrounds(
    n: usize,
    category: Category,
    backgrounds: &[UpstreamBackground],
    affinity: f64,
    rng: &mut ChaCha8Rng,
) -> Vec<usize> {
    let habitats: Vec<usize> = category
        .habitats()
        .iter()
        .filter_map(|h| backgrounds.iter().position(|b| b == h))
        .collect();
    let n_habitat = habitat_share(n, affinity, habitats.len());
    let mut out = balanced_backgrounds(n - n_habitat, backgrounds.len(), rng);
    if n_habitat > 0 {
        out.extend(
            balanced_backgrounds(n_habitat, habitats.len(), rng)
                .into_iter()
                .map(|k| habitats[k]),
        );
        out.shuffle(rng);
    }
    out
}

fn specs(cfg: &UpstreamConfig, categories: &[Category]) -> Vec<Spec> {
    let mut out = Vec::new();
    let mut id = 0u64;
    for (pi, part) in Part::ALL.into_iter().enumerate() {
        let n = part.per_class(cfg);
        // File numbers continue across parts so that every stem is unique in the corpus.
        let offset: usize = Part::ALL[..pi].iter().map(|p| p.per_class(cfg)).sum();
        for (label, &category) in categories.iter().enumerate() {
            let mut rng = corpus_rng(cfg.seed, ASSIGN_STREAM + ((pi as u64) << 20) + label as u64);
            for (k, b) in category_backgrounds(
                n,
                category,
                &cfg.backgrounds,
                cfg.background_affinity,
                &mut rng,
            )
            .into_iter()
            .enumerate()
            {
                out.push(Spec {
                    id,
                    part,
                    label,
                    category,
                    background: cfg.backgrounds[b],
                    stem: format!("{}_{:05}", category.word(), offset + k),
                });
                id += 1;
            }
        }
    }
    out
}

/// The background canvas and the object layer (mask = object) of an image, at the supersampled size. The
/// background is drawn first from the image's stream, so [`background_of`] redraws it alone.
fn draw(spec: &Spec, cfg: &UpstreamConfig) -> (Canvas, Canvas) {
    let n = (cfg.size * cfg.supersample) as usize;
    let mut rng = corpus_rng(cfg.seed, spec.id);
    let bg = paint(spec.background, n, n, &mut rng);
    let s = sprite(spec.category, &mut rng);
    let j = cfg.object_size_jitter;
    let extent = (cfg.object_size * rng.gen_range(1.0 - j..=1.0 + j)).min(0.9) as f32 * n as f32;
    let layer = place_sprite_with(
        &s.parts,
        s.angle,
        s.mirror,
        extent,
        n,
        n,
        cfg.placement,
        &mut rng,
    );
    (bg, layer)
}

fn background_of(spec: &Spec, cfg: &UpstreamConfig) -> Canvas {
    let n = (cfg.size * cfg.supersample) as usize;
    paint(spec.background, n, n, &mut corpus_rng(cfg.seed, spec.id))
}

fn encode(cfg: &UpstreamConfig, rgb: &[u8]) -> anyhow::Result<Vec<u8>> {
    let s = cfg.size as usize;
    Ok(match cfg.image_format {
        ImageFormat::Png => png_rgb(s, s, rgb)?,
        ImageFormat::Jpeg => {
            let mut out = Vec::new();
            JpegEncoder::new_with_quality(&mut out, cfg.jpeg_quality).write_image(
                rgb,
                cfg.size,
                cfg.size,
                ExtendedColorType::Rgb8,
            )?;
            out
        }
    })
}

/// Inclusive bounding box (x0, y0, x1, y1) of the non-zero pixels of an `s` x `s` mask.
pub fn mask_bbox(mask: &[u8], s: usize) -> Option<(usize, usize, usize, usize)> {
    let mut b: Option<(usize, usize, usize, usize)> = None;
    for y in 0..s {
        for x in 0..s {
            if mask[y * s + x] > 0 {
                b = Some(match b {
                    None => (x, y, x, y),
                    Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
                });
            }
        }
    }
    b
}

/// Only-BG-B: the bounding box blacked out (HWC RGB).
pub fn black_box(rgb: &[u8], s: usize, bbox: (usize, usize, usize, usize)) -> Vec<u8> {
    let mut out = rgb.to_vec();
    let (x0, y0, x1, y1) = bbox;
    for y in y0..=y1 {
        for x in x0..=x1 {
            out[(y * s + x) * 3..(y * s + x) * 3 + 3].fill(0);
        }
    }
    out
}

/// Only-BG-T as the release computes it: of the four strips beside the bounding box, take the side (left/right
/// vs top/bottom) with the larger strip area, tile the image with that strip from the origin, and fill the box
/// from the tiling. An object touching all four borders leaves no strip: the box is blacked out instead.
pub fn tile_box(rgb: &[u8], s: usize, bbox: (usize, usize, usize, usize)) -> Vec<u8> {
    let (x0, y0, x1, y1) = bbox;
    let (left, right, top, bottom) = (x0, s - 1 - x1, y0, s - 1 - y1);
    let (x_area, y_area) = (left.max(right) * s, top.max(bottom) * s);
    if x_area == 0 && y_area == 0 {
        return black_box(rgb, s, bbox);
    }
    // Tile origin and size.
    let (tx, ty, tw, th) = if x_area > y_area {
        if left > right {
            (0, 0, left, s)
        } else {
            (x1 + 1, 0, right, s)
        }
    } else if top > bottom {
        (0, 0, s, top)
    } else {
        (0, y1 + 1, s, bottom)
    };
    let mut out = rgb.to_vec();
    for y in y0..=y1 {
        for x in x0..=x1 {
            let src = ((ty + y % th) * s + tx + x % tw) * 3;
            let dst = (y * s + x) * 3;
            out[dst..dst + 3].copy_from_slice(&rgb[src..src + 3]);
        }
    }
    out
}

/// `rgb` where `mask` is `keep` (1 = object pixels, 0 = background pixels), black elsewhere.
fn keep_where(rgb: &[u8], mask: &[u8], keep: u8) -> Vec<u8> {
    let mut out = rgb.to_vec();
    for (i, &m) in mask.iter().enumerate() {
        if m != keep {
            out[i * 3..i * 3 + 3].fill(0);
        }
    }
    out
}

/// Partners of a challenge image for the mixed variants, as indices into the challenge specs.
struct Partners {
    same: usize,
    rand: usize,
    next: usize,
}

fn partners(
    i: usize,
    challenge: &[Spec],
    by_class: &[Vec<usize>],
    cfg: &UpstreamConfig,
) -> Partners {
    let spec = &challenge[i];
    let mut rng = corpus_rng(cfg.seed, PARTNER_STREAM + spec.id);
    let pick_other = |pool: &[usize], rng: &mut ChaCha8Rng| loop {
        let j = pool[rng.gen_range(0..pool.len())];
        if j != i || pool.len() == 1 {
            return j;
        }
    };
    let all: Vec<usize> = (0..challenge.len()).collect();
    let n_classes = by_class.len();
    Partners {
        same: pick_other(&by_class[spec.label], &mut rng),
        rand: pick_other(&all, &mut rng),
        next: pick_other(&by_class[(spec.label + 1) % n_classes], &mut rng),
    }
}

/// Draws and writes one IN-9L image.
fn write_in9l(
    spec: &Spec,
    cfg: &UpstreamConfig,
    out: &Path,
    dirs: &[String],
) -> anyhow::Result<()> {
    let (bg, layer) = draw(spec, cfg);
    let (px, _) = bg.composite(&layer).downsample(cfg.supersample as usize);
    let path = out
        .join(IN9L_DIR)
        .join(spec.part.name())
        .join(&dirs[spec.label])
        .join(format!("{}.{}", spec.stem, cfg.image_format.extension()));
    write_atomic(&path, &encode(cfg, &px)?)?;
    Ok(())
}

/// Draws and writes one challenge image in every variant, and its mask.
fn write_challenge(
    i: usize,
    challenge: &[Spec],
    by_class: &[Vec<usize>],
    cfg: &UpstreamConfig,
    out: &Path,
    dirs: &[String],
) -> anyhow::Result<Partners> {
    let spec = &challenge[i];
    let (s, ss) = (cfg.size as usize, cfg.supersample as usize);
    let (bg, layer) = draw(spec, cfg);
    let (px, mask255) = bg.composite(&layer).downsample(ss);
    let mask: Vec<u8> = mask255.iter().map(|&m| (m > 0) as u8).collect();
    let root = out.join(BG_CHALLENGE_DIR);
    let ext = cfg.image_format.extension();
    let class = &dirs[spec.label];
    let put = |variant: Variant, name: &str, rgb: &[u8]| -> anyhow::Result<()> {
        let path = root
            .join(variant.name())
            .join(VAL_DIR)
            .join(class)
            .join(format!("{name}.{ext}"));
        write_atomic(&path, &encode(cfg, rgb)?)?;
        Ok(())
    };
    put(Variant::Original, &spec.stem, &px)?;
    put(Variant::OnlyFg, &spec.stem, &keep_where(&px, &mask, 1))?;
    put(Variant::NoFg, &spec.stem, &keep_where(&px, &mask, 0))?;
    let bbox = mask_bbox(&mask, s).unwrap_or((0, 0, 0, 0));
    put(Variant::OnlyBgB, &spec.stem, &black_box(&px, s, bbox))?;
    put(Variant::OnlyBgT, &spec.stem, &tile_box(&px, s, bbox))?;
    let p = partners(i, challenge, by_class, cfg);
    for (variant, j) in [
        (Variant::MixedSame, p.same),
        (Variant::MixedRand, p.rand),
        (Variant::MixedNext, p.next),
    ] {
        let other = background_of(&challenge[j], cfg);
        let (mixed, _) = other.composite(&layer).downsample(ss);
        let name = format!("fg_{}_bg_{}", spec.stem, challenge[j].stem);
        put(variant, &name, &mixed)?;
    }
    let mpath = root
        .join(FG_MASK_DIR)
        .join(VAL_DIR)
        .join(class)
        .join(format!("{}.npy", spec.stem));
    write_atomic(&mpath, &npy::write_u8(&[s, s], &mask))?;
    Ok(p)
}

/// Generates the upstream corpus at `out` (see the module docs). Same config, same bytes.
pub fn generate(cfg: &UpstreamConfig, out: &Path) -> anyhow::Result<UpstreamSummary> {
    cfg.validate()?;
    let categories = Category::all();
    let dirs: Vec<String> = categories
        .iter()
        .enumerate()
        .map(|(i, &c)| class_dir(i, c))
        .collect();
    let all = specs(cfg, &categories);
    let (challenge, in9l): (Vec<Spec>, Vec<Spec>) =
        all.into_iter().partition(|s| s.part == Part::Challenge);
    in9l.par_iter()
        .map(|s| write_in9l(s, cfg, out, &dirs).with_context(|| format!("drawing {}", s.stem)))
        .collect::<anyhow::Result<Vec<()>>>()?;
    let mut by_class = vec![Vec::new(); categories.len()];
    for (i, s) in challenge.iter().enumerate() {
        by_class[s.label].push(i);
    }
    let partners: Vec<Partners> = (0..challenge.len())
        .into_par_iter()
        .map(|i| {
            write_challenge(i, &challenge, &by_class, cfg, out, &dirs)
                .with_context(|| format!("drawing {}", challenge[i].stem))
        })
        .collect::<anyhow::Result<_>>()?;

    let ext = cfg.image_format.extension();
    let mut meta = String::from(
        "split,filename,label,class_dir,background,mixed_same,mixed_rand,mixed_next\n",
    );
    let mut counts: BTreeMap<String, Vec<Vec<usize>>> = BTreeMap::new();
    for s in &in9l {
        writeln!(
            meta,
            "{},{IN9L_DIR}/{}/{}/{}.{ext},{},{},{},,,",
            s.part.name(),
            s.part.name(),
            dirs[s.label],
            s.stem,
            s.label,
            dirs[s.label],
            s.background.name()
        )?;
    }
    for (s, p) in challenge.iter().zip(&partners) {
        writeln!(
            meta,
            "{},{BG_CHALLENGE_DIR}/original/{VAL_DIR}/{}/{}.{ext},{},{},{},{},{},{}",
            s.part.name(),
            dirs[s.label],
            s.stem,
            s.label,
            dirs[s.label],
            s.background.name(),
            challenge[p.same].stem,
            challenge[p.rand].stem,
            challenge[p.next].stem
        )?;
    }
    for s in in9l.iter().chain(&challenge) {
        let b = cfg
            .backgrounds
            .iter()
            .position(|&b| b == s.background)
            .unwrap_or(0);
        counts
            .entry(s.part.name().to_string())
            .or_insert_with(|| vec![vec![0; cfg.backgrounds.len()]; categories.len()])[s.label]
            [b] += 1;
    }
    write_atomic(&out.join("upstream_metadata.csv"), meta.as_bytes())?;
    let summary = UpstreamSummary {
        label_names: categories.iter().map(|c| c.word().to_string()).collect(),
        class_dirs: dirs,
        backgrounds: cfg
            .backgrounds
            .iter()
            .map(|b| b.name().to_string())
            .collect(),
        counts,
        n_images: in9l.len() + challenge.len(),
        n_variant_images: challenge.len() * (Variant::ALL.len() - 1),
        n_masks: challenge.len(),
    };
    let record = serde_json::json!({ "config": cfg, "summary": &summary });
    write_atomic(
        &out.join("upstream.json"),
        serde_json::to_string_pretty(&record)?.as_bytes(),
    )?;
    tracing::info!(
        "upstream corpus: {} images (+{} variant images, {} masks) in {}",
        summary.n_images,
        summary.n_variant_images,
        summary.n_masks,
        out.display()
    );
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balanced_backgrounds_differ_by_at_most_one() {
        let mut rng = corpus_rng(0, 9);
        for (n, b) in [(546, 13), (10, 13), (13, 13), (100, 7)] {
            let mut c = vec![0usize; b];
            for k in balanced_backgrounds(n, b, &mut rng) {
                c[k] += 1;
            }
            let (lo, hi) = (*c.iter().min().unwrap(), *c.iter().max().unwrap());
            assert!(
                hi - lo <= 1 && c.iter().sum::<usize>() == n,
                "{n} {b} {c:?}"
            );
        }
    }

    #[test]
    fn tile_box_fills_the_box_from_the_widest_strip() {
        // 4x4 image, object box = columns 2..=3, rows 0..=3; the left strip (2 columns) is the tile.
        let s = 4;
        let rgb: Vec<u8> = (0..s * s).flat_map(|i| [i as u8; 3]).collect();
        let out = tile_box(&rgb, s, (2, 0, 3, 3));
        for y in 0..s {
            for x in 0..s {
                let want = if x >= 2 { y * s + x % 2 } else { y * s + x };
                assert_eq!(out[(y * s + x) * 3], want as u8, "({x}, {y})");
            }
        }
        // Box covering everything: blacked out.
        assert!(tile_box(&rgb, s, (0, 0, 3, 3)).iter().all(|&v| v == 0));
    }

    #[test]
    fn config_rejects_bad_values_and_unknown_keys() {
        assert!(UpstreamConfig::default().validate().is_ok());
        let bad = UpstreamConfig {
            backgrounds: vec![UpstreamBackground::Sky, UpstreamBackground::Sky],
            ..UpstreamConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("twice"));
        let e = serde_yaml::from_str::<UpstreamConfig>("size: 32\nbird_size: 0.5\n").unwrap_err();
        assert!(e.to_string().contains("bird_size"), "{e}");
        let c: UpstreamConfig =
            serde_yaml::from_str("size: 32\nbackgrounds: [desert, wall]\nimage_format: jpeg\n")
                .unwrap();
        assert_eq!(
            c.backgrounds,
            vec![UpstreamBackground::Desert, UpstreamBackground::Wall]
        );
        assert_eq!(c.image_format, ImageFormat::Jpeg);
    }
}
