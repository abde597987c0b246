//! Captions: the scene grammar used by every synthetic set, the separate balanced caption set the translator is
//! trained on (it plays the role of COCO in the paper, section 4.1), its text-only corpus for language-model
//! pretraining, and readers for real caption formats (CSV `image,caption`; COCO `captions_*.json`).
//!
//! The grammar lets how prominently a caption names the bird follow how visible it is, and the caption set holds
//! bird-free scenes, so a decoder can leave the bird out when the features do not show it (docs/ARCHITECTURE.md,
//! "Why the caption set holds scenes without birds").
//!
//! One file (about 600 lines of code before the tests): the grammar, the caption set drawn with it and the readers
//! of the formats that set is written in belong together; the scene drawing itself lives in [`super::scene`]. The
//! next addition should move the readers (`load_csv`, `load_coco`, `load_images`, `load_corpus`) to a module of
//! their own.
use super::draw::{png_rgb, Canvas};
use super::scene::object::CaptionObjects;
use super::scene::{
    bird_sprite, occlude, paint_background, paint_distractor, paint_object, place_sprite,
    Background, BirdColours, Distractor, ObjectKind, Pose, Species,
};
use super::waterbirds::{decode_all, stack_chw};
use super::{first_offenders, write_atomic, DataError, LoadOptions};
use anyhow::Context;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// What a scene shows of its bird, for the grammar.
#[derive(Debug, Clone)]
pub struct BirdDesc {
    pub species: Species,
    pub colour: &'static str,
    pub pose: Pose,
    /// sqrt(visible bird pixels / image pixels): the side of a square with the bird's visible area, as a fraction
    /// of the image side.
    pub visibility: f32,
    pub occluded: bool,
}

/// The attributes of a drawn scene that captions may mention.
#[derive(Debug, Clone)]
pub struct SceneDesc {
    pub bird: Option<BirdDesc>,
    pub background: Background,
    pub distractors: Vec<Distractor>,
    /// The spurious object of the object setting, named in every caption when present.
    pub object: Option<ObjectKind>,
    /// The share of the captions that name the object as the bird's setting in the place's stead
    /// ([`CaptionObjects::setting`]; 0 without an object).
    pub object_setting: f64,
}

/// How prominently captions name a bird of visibility `v`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prominence {
    /// Every caption names it, almost always as the subject.
    Main,
    /// Every caption names it, often after the place, as "a small bird".
    Secondary,
    /// About half the captions mention "a tiny bird" after the place.
    Faint,
    /// Never mentioned.
    Invisible,
}

/// Visibility thresholds (see [`BirdDesc::visibility`]) between the prominence tiers.
pub const MAIN_VIS: f32 = 0.22;
pub const SECONDARY_VIS: f32 = 0.13;
pub const FAINT_VIS: f32 = 0.07;

pub fn prominence(v: f32) -> Prominence {
    if v >= MAIN_VIS {
        Prominence::Main
    } else if v >= SECONDARY_VIS {
        Prominence::Secondary
    } else if v >= FAINT_VIS {
        Prominence::Faint
    } else {
        Prominence::Invisible
    }
}

/// Water nouns the grammar uses for water places (and never for land places).
pub const WATER_WORDS: [&str; 6] = ["water", "ocean", "sea", "waves", "lake", "pond"];
/// Land nouns the grammar uses for land places (and never for water places).
pub const LAND_WORDS: [&str; 8] = [
    "forest", "woods", "trees", "bamboo", "grove", "field", "meadow", "grass",
];

pub(crate) fn pick<'a>(rng: &mut ChaCha8Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.gen_range(0..xs.len())]
}

fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
        _ => "a",
    }
}

/// The size and colour words before a noun of visibility `visibility` (see [`BirdDesc::visibility`]) and tier
/// `tier`: "[large|small|tiny ...] [colour]", each drawn with its probability.
pub(crate) fn size_colour_words(
    visibility: f32,
    colour: &'static str,
    tier: Prominence,
    rng: &mut ChaCha8Rng,
) -> Vec<&'static str> {
    let mut words: Vec<&str> = Vec::new();
    match tier {
        Prominence::Main if visibility >= 0.32 && rng.gen_bool(0.4) => {
            words.push(pick(rng, &["large", "big"]))
        }
        Prominence::Secondary if rng.gen_bool(0.7) => words.push("small"),
        Prominence::Faint => words.push(pick(rng, &["tiny", "distant", "small"])),
        _ => {}
    }
    if tier != Prominence::Faint && rng.gen_bool(0.6) {
        words.push(colour);
    }
    words
}

/// The bird as a noun phrase without article: "[size] [colour] bird|species".
pub(crate) fn bird_np(b: &BirdDesc, tier: Prominence, rng: &mut ChaCha8Rng) -> String {
    let mut words = size_colour_words(b.visibility, b.colour, tier, rng);
    // Most captions use the generic word, as in real caption sets.
    let noun = if tier == Prominence::Main && rng.gen_bool(0.2) {
        b.species.word()
    } else {
        "bird"
    };
    words.push(noun);
    words.join(" ")
}

pub(crate) fn with_article(np: &str) -> String {
    format!("{} {np}", article(np))
}

pub(crate) fn verb(place_is_water: bool, rng: &mut ChaCha8Rng) -> &'static str {
    if place_is_water {
        pick(
            rng,
            &[
                "swimming on",
                "floating on",
                "standing in",
                "resting on",
                "on",
            ],
        )
    } else {
        pick(
            rng,
            &[
                "standing in",
                "perched in",
                "sitting in",
                "resting in",
                "in",
            ],
        )
    }
}

/// The verb between the bird and an object named as its setting.
fn setting_verb(rng: &mut ChaCha8Rng) -> &'static str {
    pick(
        rng,
        &[
            "standing on",
            "perched on",
            "sitting on",
            "resting on",
            "on",
        ],
    )
}

/// The caption's tail: the object (unless the caption already named it as the setting) and some distractors.
fn distractor_tail(scene: &SceneDesc, object_named: bool, rng: &mut ChaCha8Rng) -> String {
    let mut s = String::new();
    if let Some(o) = scene.object.filter(|_| !object_named) {
        s.push(' ');
        s.push_str(pick(rng, o.phrases()));
    }
    for d in &scene.distractors {
        if rng.gen_bool(0.6) {
            s.push(' ');
            s.push_str(pick(rng, d.phrases()));
        }
    }
    s
}

/// One caption of `scene` from the grammar.
pub fn caption(scene: &SceneDesc, rng: &mut ChaCha8Rng) -> String {
    let bg = scene.background;
    let water = bg.place() == super::scene::WATER;
    // The object as the bird's setting, in the place's stead (no draw at all when it never is: today's bytes).
    let setting = scene
        .object
        .filter(|_| scene.object_setting > 0.0 && rng.gen_bool(scene.object_setting));
    let place = match setting {
        Some(o) => pick(rng, o.setting_phrases()),
        None => pick(rng, bg.phrases()),
    };
    let setting_or_place_verb = |rng: &mut ChaCha8Rng| match setting {
        Some(_) => setting_verb(rng),
        None => verb(water, rng),
    };
    let tier = scene
        .bird
        .as_ref()
        .map(|b| prominence(b.visibility))
        .unwrap_or(Prominence::Invisible);
    let bird = scene.bird.as_ref();
    let mention = match tier {
        Prominence::Main | Prominence::Secondary => true,
        Prominence::Faint => rng.gen_bool(0.5),
        Prominence::Invisible => false,
    };
    let tail = distractor_tail(scene, setting.is_some(), rng);
    let s = match (bird, mention) {
        (Some(b), true) => {
            let np = with_article(&bird_np(b, tier, rng));
            let bird_first = match tier {
                Prominence::Main => rng.gen_bool(0.85),
                Prominence::Secondary => rng.gen_bool(0.5),
                _ => false,
            };
            let mut extra = String::new();
            if tier == Prominence::Main && rng.gen_bool(0.45) {
                extra.push(' ');
                extra.push_str(pick(rng, b.species.shape_phrases()));
            }
            if tier == Prominence::Main && rng.gen_bool(0.2) {
                extra.push(' ');
                extra.push_str(b.pose.phrase());
            }
            if b.occluded && rng.gen_bool(0.5) {
                extra.push_str(" partly hidden behind a rock");
            }
            if bird_first {
                match rng.gen_range(0..3) {
                    0 => format!("{np}{extra} {} {place}{tail}", setting_or_place_verb(rng)),
                    1 => format!(
                        "a photo of {np}{extra} {} {place}{tail}",
                        setting_or_place_verb(rng)
                    ),
                    _ => format!("{np}{extra} in front of {place}{tail}"),
                }
            } else {
                match rng.gen_range(0..3) {
                    0 => format!("{place} with {np}{extra}{tail}"),
                    1 => format!("a view of {place}{tail} with {np}{extra}"),
                    _ => format!("{place}{tail} and {np}{extra}"),
                }
            }
        }
        _ => match rng.gen_range(0..4) {
            0 => format!("{place}{tail}"),
            1 => format!("a view of {place}{tail}"),
            2 => format!("a photo of {place}{tail}"),
            _ => format!("a quiet scene of {place}{tail}"),
        },
    };
    s
}

/// `n` captions of one scene.
pub fn captions(scene: &SceneDesc, n: usize, rng: &mut ChaCha8Rng) -> Vec<String> {
    (0..n).map(|_| caption(scene, rng)).collect()
}

/// Configuration of the synthetic caption set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptionSetConfig {
    pub n_images: usize,
    /// Image side in pixels.
    pub size: u32,
    pub captions_per_image: usize,
    pub seed: u64,
    /// Fraction of scenes without any bird (bare places, with and without distractors).
    pub no_bird_fraction: f64,
    /// Range of the bird's bounding-box side as a fraction of the image (tiny to large, so prominence varies).
    pub bird_size: [f64; 2],
    /// Probability that a drawn bird is partly hidden behind a rock.
    pub occlusion: f64,
    /// Sentences in the text-only corpus (`corpus.txt`).
    pub corpus_sentences: usize,
    /// Anti-aliasing supersampling factor.
    pub supersample: u32,
    /// Scenes with the spurious object, independent of the bird (absent: none, and today's bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objects: Option<CaptionObjects>,
}

impl Default for CaptionSetConfig {
    fn default() -> Self {
        CaptionSetConfig {
            n_images: 6000,
            size: 64,
            captions_per_image: 5,
            seed: 1,
            no_bird_fraction: 0.3,
            bird_size: [0.12, 0.75],
            occlusion: 0.2,
            corpus_sentences: 50_000,
            supersample: 2,
            objects: None,
        }
    }
}

/// What [`synth_caption_set`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct CaptionSetSummary {
    pub n_images: usize,
    pub n_captions: usize,
    pub n_without_bird: usize,
    pub n_corpus_sentences: usize,
}

/// One (image, caption) pair; `image` is a path on disk.
#[derive(Debug, Clone, PartialEq)]
pub struct CaptionPair {
    pub image: PathBuf,
    pub caption: String,
}

/// The stream offset of the caption set's object draws (beside the per-image streams 0..n_images).
const OBJECT_STREAM: u64 = 4 << 40;

/// Visibility of the sprite in a canvas: sqrt(mask fraction).
pub(crate) fn visibility(c: &Canvas) -> f32 {
    let on = c.mask.iter().filter(|&&m| m > 0.0).count();
    (on as f32 / c.mask.len() as f32).sqrt()
}

/// Draws one caption-set scene (the same painters as the Waterbirds generator).
fn draw_scene(
    species: Option<Species>,
    bg: Background,
    with_distractors: bool,
    object: Option<(ObjectKind, f64, &mut ChaCha8Rng)>,
    cfg: &CaptionSetConfig,
    rng: &mut ChaCha8Rng,
) -> (Canvas, SceneDesc) {
    let ss = cfg.supersample.max(1) as usize;
    let n = cfg.size as usize * ss;
    let (mut canvas, horizon) = paint_background(bg, n, n, 1.0, rng);
    let mut distractors = Vec::new();
    if with_distractors {
        let fitting: Vec<Distractor> = Distractor::ALL
            .iter()
            .copied()
            .filter(|d| d.fits(bg))
            .collect();
        distractors = super::scene::sample_distractors(bg, 0.4, rng);
        if distractors.is_empty() {
            distractors.push(fitting[rng.gen_range(0..fitting.len())]);
        }
        for d in &distractors {
            paint_distractor(&mut canvas, *d, horizon, rng);
        }
    }
    let object = object.map(|(kind, size, orng)| {
        paint_object(&mut canvas, kind, size, orng);
        kind
    });
    let bird = species.map(|sp| {
        let colours = BirdColours::sample(rng);
        let sprite = bird_sprite(sp, &colours, rng);
        let extent = rng.gen_range(cfg.bird_size[0]..=cfg.bird_size[1]) as f32 * n as f32;
        let layer = place_sprite(
            &sprite.parts,
            sprite.angle,
            sprite.mirror,
            extent,
            n,
            n,
            rng,
        );
        canvas = canvas.composite(&layer);
        let occluded = rng.gen_bool(cfg.occlusion.clamp(0.0, 1.0));
        if occluded {
            occlude(&mut canvas, rng);
        }
        BirdDesc {
            species: sp,
            colour: colours.name,
            pose: sprite.pose,
            visibility: visibility(&canvas),
            occluded,
        }
    });
    (
        canvas,
        SceneDesc {
            bird,
            background: bg,
            distractors,
            object,
            object_setting: cfg.objects.map_or(0.0, |o| o.setting),
        },
    )
}

/// Writes a `captions.csv`: a header (`key_column,caption`) and one quoted-as-needed row per (key, caption).
/// Dataset folders key captions by `img_id`, caption sets by `image` path; both are written here.
pub fn write_captions_csv<'a>(
    path: &Path,
    key_column: &str,
    rows: impl IntoIterator<Item = (String, &'a str)>,
) -> anyhow::Result<()> {
    let mut wtr = csv::Writer::from_writer(Vec::new());
    wtr.write_record([key_column, "caption"])?;
    for (key, caption) in rows {
        wtr.write_record([key.as_str(), caption])?;
    }
    write_atomic(path, &wtr.into_inner()?)?;
    Ok(())
}

/// Writes a balanced synthetic caption set: `<out>/images/NNNNNN.png`, `<out>/captions.csv` (`image,caption`, one
/// row per caption, paths relative to `out`), `<out>/scenes.csv` (what each image shows) and `<out>/corpus.txt`.
///
/// Scenes cycle over (species or no bird) x background x (distractors or not), so every combination has the same
/// count up to one; the no-bird slots make up `no_bird_fraction` of the cycle. Each image draws from its own RNG
/// stream (seed, index): the output does not depend on thread order.
pub fn synth_caption_set(cfg: &CaptionSetConfig, out: &Path) -> anyhow::Result<CaptionSetSummary> {
    anyhow::ensure!(
        cfg.size >= 8,
        "caption set size must be >= 8 px, got {}",
        cfg.size
    );
    anyhow::ensure!(
        cfg.bird_size[0] > 0.0 && cfg.bird_size[0] <= cfg.bird_size[1],
        "bird_size must be an increasing range in (0, 1], got {:?}",
        cfg.bird_size
    );
    anyhow::ensure!(
        (0.0..=0.95).contains(&cfg.no_bird_fraction),
        "no_bird_fraction must be in [0, 0.95], got {}",
        cfg.no_bird_fraction
    );
    if let Some(o) = &cfg.objects {
        o.validate()?;
    }
    let f = cfg.no_bird_fraction;
    let n_sp = Species::ALL.len();
    let none_slots = ((n_sp as f64) * f / (1.0 - f)).round() as usize;
    let slots = n_sp + none_slots;
    let rows: Vec<(String, SceneDesc, Vec<String>)> = (0..cfg.n_images)
        .into_par_iter()
        .map(|i| -> anyhow::Result<_> {
            let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
            rng.set_stream(i as u64);
            let slot = i % slots;
            let species = (slot < n_sp).then(|| Species::ALL[slot]);
            let bg = Background::ALL[(i / slots) % Background::ALL.len()];
            let with_d = (i / (slots * Background::ALL.len())) % 2 == 1;
            // The object (if any) from its own stream: the other draws of the scene are today's.
            let mut orng = ChaCha8Rng::seed_from_u64(cfg.seed);
            orng.set_stream(OBJECT_STREAM + i as u64);
            let object = cfg
                .objects
                .filter(|o| orng.gen_bool(o.fraction))
                .map(|o| (o.kind, orng.gen_range(o.size[0]..=o.size[1]), &mut orng));
            let (canvas, scene) = draw_scene(species, bg, with_d, object, cfg, &mut rng);
            let (px, _) = canvas.downsample(cfg.supersample.max(1) as usize);
            let name = format!("images/{:06}.png", i + 1);
            let bytes = png_rgb(cfg.size as usize, cfg.size as usize, &px)?;
            write_atomic(&out.join(&name), &bytes)?;
            let caps = captions(&scene, cfg.captions_per_image, &mut rng);
            Ok((name, scene, caps))
        })
        .collect::<anyhow::Result<_>>()?;

    let mut scenes =
        String::from("image,has_bird,species,background,distractors,visibility,occluded");
    scenes.push_str(if cfg.objects.is_some() {
        ",object\n"
    } else {
        "\n"
    });
    let mut n_caps = 0;
    let mut n_without = 0;
    for (name, scene, caps) in &rows {
        n_caps += caps.len();
        let (has, sp, vis, occ) = match &scene.bird {
            Some(b) => (1, b.species.word(), b.visibility, b.occluded as u8),
            None => {
                n_without += 1;
                (0, "", 0.0, 0)
            }
        };
        let ds: Vec<&str> = scene.distractors.iter().map(|d| d.noun()).collect();
        write!(
            scenes,
            "{name},{has},{sp},{:?},{},{vis:.4},{occ}",
            scene.background,
            ds.join("+")
        )?;
        if cfg.objects.is_some() {
            write!(scenes, ",{}", scene.object.map_or("", |o| o.words()[0]))?;
        }
        scenes.push('\n');
    }
    write_captions_csv(
        &out.join("captions.csv"),
        "image",
        rows.iter()
            .flat_map(|(name, _, caps)| caps.iter().map(move |c| (name.clone(), c.as_str()))),
    )?;
    write_atomic(&out.join("scenes.csv"), scenes.as_bytes())?;
    let corpus = corpus_with(cfg.corpus_sentences, cfg.seed, f, cfg.objects);
    write_atomic(&out.join("corpus.txt"), corpus.as_bytes())?;
    tracing::info!(
        "caption set: {} images, {n_caps} captions, {n_without} without a bird",
        rows.len()
    );
    Ok(CaptionSetSummary {
        n_images: rows.len(),
        n_captions: n_caps,
        n_without_bird: n_without,
        n_corpus_sentences: cfg.corpus_sentences,
    })
}

/// A text-only corpus from the same grammar over random scene descriptions (with and without birds, all
/// visibilities, distractors), one sentence per line.
pub fn corpus(n: usize, seed: u64, no_bird_fraction: f64) -> String {
    corpus_with(n, seed, no_bird_fraction, None)
}

/// [`corpus`], with `objects.fraction` of the sentences naming the object (drawn from its own stream).
pub fn corpus_with(
    n: usize,
    seed: u64,
    no_bird_fraction: f64,
    objects: Option<CaptionObjects>,
) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xC0_2B_u64);
    let mut orng = ChaCha8Rng::seed_from_u64(seed ^ 0x0B_1E_u64);
    let mut s = String::new();
    let colours: Vec<&str> = super::scene::PALETTE.iter().map(|p| p.0).collect();
    let poses = [Pose::FacingLeft, Pose::FacingRight, Pose::WingsSpread];
    for _ in 0..n {
        let bg = *Background::ALL
            .choose(&mut rng)
            .unwrap_or(&Background::Lake);
        let distractors = if rng.gen_bool(0.5) {
            super::scene::sample_distractors(bg, 0.5, &mut rng)
        } else {
            Vec::new()
        };
        let bird = (!rng.gen_bool(no_bird_fraction.clamp(0.0, 1.0))).then(|| BirdDesc {
            species: *Species::ALL.choose(&mut rng).unwrap_or(&Species::Duck),
            colour: colours[rng.gen_range(0..colours.len())],
            pose: poses[rng.gen_range(0..poses.len())],
            visibility: rng.gen_range(0.03..0.45),
            occluded: rng.gen_bool(0.15),
        });
        let object = objects
            .filter(|o| orng.gen_bool(o.fraction))
            .map(|o| o.kind);
        let scene = SceneDesc {
            bird,
            background: bg,
            distractors,
            object,
            object_setting: objects.map_or(0.0, |o| o.setting),
        };
        s.push_str(&caption(&scene, &mut rng));
        s.push('\n');
    }
    s
}

/// Reads a caption CSV with (at least) the columns `image,caption`; image paths are relative to the CSV's folder.
pub fn load_csv(path: &Path) -> Result<Vec<CaptionPair>, DataError> {
    let csv_err = |e: csv::Error| DataError::Csv {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut rdr = csv::ReaderBuilder::new().from_reader(file);
    let headers: Vec<String> = rdr
        .headers()
        .map_err(csv_err)?
        .iter()
        .map(|s| s.to_string())
        .collect();
    let find = |c: &str| headers.iter().position(|h| h == c);
    let (Some(ii), Some(ci)) = (find("image"), find("caption")) else {
        let missing = ["image", "caption"]
            .iter()
            .filter(|c| find(c).is_none())
            .map(|c| c.to_string())
            .collect();
        return Err(DataError::MissingColumns {
            path: path.to_path_buf(),
            missing,
            found: headers,
        });
    };
    let base = path.parent().unwrap_or(Path::new("."));
    let mut out = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(csv_err)?;
        out.push(CaptionPair {
            image: base.join(rec.get(ii).unwrap_or("")),
            caption: rec.get(ci).unwrap_or("").to_string(),
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
struct CocoImage {
    id: i64,
    file_name: String,
}

#[derive(Deserialize)]
struct CocoAnnotation {
    image_id: i64,
    caption: String,
}

#[derive(Deserialize)]
struct CocoCaptions {
    images: Vec<CocoImage>,
    annotations: Vec<CocoAnnotation>,
}

/// Reads COCO captions (`captions_train2017.json`): one pair per annotation, images under `image_dir`.
pub fn load_coco(captions_json: &Path, image_dir: &Path) -> Result<Vec<CaptionPair>, DataError> {
    let bytes = std::fs::read(captions_json).map_err(|e| DataError::io(captions_json, e))?;
    let coco: CocoCaptions = serde_json::from_slice(&bytes).map_err(|e| DataError::Json {
        path: captions_json.to_path_buf(),
        message: e.to_string(),
    })?;
    let files: HashMap<i64, &str> = coco
        .images
        .iter()
        .map(|i| (i.id, i.file_name.as_str()))
        .collect();
    let mut out = Vec::with_capacity(coco.annotations.len());
    let mut unknown = Vec::new();
    for a in &coco.annotations {
        match files.get(&a.image_id) {
            Some(f) => out.push(CaptionPair {
                image: image_dir.join(f),
                caption: a.caption.trim().to_string(),
            }),
            None => unknown.push(format!("image_id {}", a.image_id)),
        }
    }
    if !unknown.is_empty() {
        return Err(DataError::BadRows {
            path: captions_json.to_path_buf(),
            count: unknown.len(),
            first: format!(
                "annotations refer to unknown images: {}",
                first_offenders(&unknown)
            ),
        });
    }
    Ok(out)
}

/// Decodes images (same resize + centre crop as the Waterbirds loader) into [n, 3, s, s] uint8. Fails naming the
/// count and first offenders when any image is missing or corrupt (unless `skip_corrupt`, which still fails since
/// the caller's pairs would lose alignment: filter the pairs first).
pub fn load_images(paths: &[PathBuf], opts: &LoadOptions) -> Result<Tensor, DataError> {
    if opts.image_size <= 0 {
        return Err(DataError::Invalid(format!(
            "image_size must be positive, got {}",
            opts.image_size
        )));
    }
    let res = decode_all(paths, opts.image_size as u32);
    let mut bufs = Vec::with_capacity(res.len());
    let mut bad = Vec::new();
    for (p, r) in paths.iter().zip(res) {
        match r {
            Ok(b) => bufs.push(b),
            Err(e) => bad.push(format!("{}: {e}", p.display())),
        }
    }
    if !bad.is_empty() {
        let dir = paths
            .first()
            .and_then(|p| p.parent())
            .unwrap_or(Path::new("."))
            .to_path_buf();
        return Err(DataError::CorruptImages {
            path: dir,
            count: bad.len(),
            first: first_offenders(&bad),
        });
    }
    Ok(stack_chw(&bufs, opts.image_size, 3))
}

/// Reads `corpus.txt`-style text: one sentence per non-empty line.
pub fn load_corpus(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading corpus {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dock_scene(object_setting: f64) -> SceneDesc {
        SceneDesc {
            bird: Some(BirdDesc {
                species: Species::Duck,
                colour: "white",
                pose: Pose::FacingLeft,
                visibility: 0.4,
                occluded: false,
            }),
            background: Background::Lake,
            distractors: Vec::new(),
            object: Some(ObjectKind::Dock),
            object_setting,
        }
    }

    fn names_any(caption: &str, words: &[&str]) -> bool {
        caption.split_whitespace().any(|w| words.contains(&w))
    }

    #[test]
    fn the_object_as_setting_stands_in_for_the_place_in_its_share_of_the_captions() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let dock = ObjectKind::Dock.words();
        for (setting, without_place) in [(0.0, 0..=0), (1.0, 400..=400), (0.5, 160..=240)] {
            let caps = captions(&dock_scene(setting), 400, &mut rng);
            assert!(caps.iter().all(|c| names_any(c, dock)), "{caps:?}");
            let n = caps
                .iter()
                .filter(|c| !names_any(c, &WATER_WORDS) && !names_any(c, &LAND_WORDS))
                .count();
            assert!(
                without_place.contains(&n),
                "setting {setting}: {n} of 400 captions without a place word"
            );
            // Named as the setting, the object is not named again after it.
            if setting == 1.0 {
                assert!(caps.iter().all(|c| !c.contains("near a wooden dock")));
                assert!(caps.iter().all(|c| !c.contains("swimming")), "{caps:?}");
            }
        }
    }
}
