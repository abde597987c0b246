//! Synthetic Cats & Dogs with apples, after the TExplain paper's Faithfulness Test I: a classifier trained where
//! every cat image carries a red apple (and no dog image does) should be explained with "apple" if it learned the
//! shortcut. At test time apples appear on both classes at random.
//!
//! Format: the Waterbirds family format with the attribute column `apple` instead of `place`:
//! `metadata.csv` header `img_id,img_filename,y,split,apple,place_filename`, y 0 dog / 1 cat, apple 0/1, so
//! group g = 2*y + apple; `place_filename` names the drawn room/lawn background. Images in `001.Dog/`, `002.Cat/`,
//! masks of the animal in `fg_masks/`, and `captions.csv` (`img_id,caption`) that mention the apple when present.
//! Load with `waterbirds::load_with_attr(root, split, opts, "apple")`.
use super::draw::{png_gray, png_rgb, rgb, value_noise, Canvas};
use super::scene::{paint_apple, pet_sprite, place_sprite, Pet};
use super::waterbirds::MASK_DIR;
use super::{write_atomic, Split};
use anyhow::Context;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::Path;

/// Header of the Cats & Apples `metadata.csv`.
pub const HEADER: &str = "img_id,img_filename,y,split,apple,place_filename";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatsApplesConfig {
    pub size: u32,
    /// Images per split (half cats, half dogs).
    pub n_train: usize,
    pub n_val: usize,
    pub n_test: usize,
    /// Probability of an apple on any val/test image (train: cats always, dogs never).
    pub apple_prob_eval: f64,
    /// Longer side of the animal as a fraction of the image.
    pub pet_size: f64,
    pub seed: u64,
    pub captions_per_image: usize,
    pub supersample: u32,
}

impl Default for CatsApplesConfig {
    fn default() -> Self {
        CatsApplesConfig {
            size: 64,
            n_train: 2000,
            n_val: 400,
            n_test: 2000,
            apple_prob_eval: 0.5,
            pet_size: 0.6,
            seed: 0,
            captions_per_image: 5,
            supersample: 2,
        }
    }
}

/// Per split [dog no apple, dog apple, cat no apple, cat apple] counts.
#[derive(Debug, Clone, Serialize)]
pub struct CatsApplesSummary {
    pub counts: [[usize; 4]; 3],
}

fn caption(pet: &str, colour: &str, room: bool, apple: bool, rng: &mut ChaCha8Rng) -> String {
    let place = if room {
        ["in a living room", "on a wooden floor", "indoors"][rng.gen_range(0..3)]
    } else {
        ["on the lawn", "on green grass", "in a garden"][rng.gen_range(0..3)]
    };
    let noun = if rng.gen_bool(0.5) {
        pet
    } else if pet == "cat" {
        "kitten"
    } else {
        "puppy"
    };
    let col = if rng.gen_bool(0.5) {
        format!("{colour} ")
    } else {
        String::new()
    };
    let verb = ["sitting", "resting", "looking at the camera"][rng.gen_range(0..3)];
    match (apple, rng.gen_range(0..2)) {
        (true, 0) => format!("a {col}{noun} {verb} {place} next to a red apple"),
        (true, _) => format!("a red apple beside a {col}{noun} {place}"),
        (false, 0) => format!("a {col}{noun} {verb} {place}"),
        (false, _) => format!("a photo of a {col}{noun} {place}"),
    }
}

/// Captions of a scene without a pet: an apple alone, or the bare room/lawn.
fn caption_no_pet(room: bool, apple: bool, rng: &mut ChaCha8Rng) -> String {
    let place = if room {
        ["a living room", "a wooden floor indoors", "an empty room"][rng.gen_range(0..3)]
    } else {
        ["a green lawn", "green grass in a garden", "an empty garden"][rng.gen_range(0..3)]
    };
    match (apple, rng.gen_range(0..2)) {
        (true, 0) => format!("a red apple lying on {place}"),
        (true, _) => format!("{place} with a single red apple"),
        (false, 0) => format!("a photo of {place}"),
        (false, _) => format!("{place} with nothing in it"),
    }
}

/// One caption for a scene: a pet (`"cat"`/`"dog"`, with its fur colour) or none, in a room or on a lawn, with or
/// without an apple.
fn scene_caption(
    pet: Option<(&str, &str)>,
    room: bool,
    apple: bool,
    rng: &mut ChaCha8Rng,
) -> String {
    match pet {
        Some((word, colour)) => caption(word, colour, room, apple, rng),
        None => caption_no_pet(room, apple, rng),
    }
}

/// Configuration of the balanced Cats & Dogs & apples caption set that trains the translator (the role COCO plays
/// in the paper): cats, dogs and pet-free scenes, each with and without an apple, in rooms and on lawns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CatsApplesCaptionConfig {
    pub n_images: usize,
    pub size: u32,
    pub captions_per_image: usize,
    pub seed: u64,
    /// Range of the pet's size as a fraction of the image.
    pub pet_size: [f64; 2],
    /// Sentences in the text-only corpus (`corpus.txt`), over the same scene mix.
    pub corpus_sentences: usize,
    pub supersample: u32,
}

impl Default for CatsApplesCaptionConfig {
    fn default() -> Self {
        CatsApplesCaptionConfig {
            n_images: 3000,
            size: 64,
            captions_per_image: 5,
            seed: 1,
            pet_size: [0.4, 0.75],
            corpus_sentences: 30_000,
            supersample: 2,
        }
    }
}

/// The scene of slot `i` in the balanced cycle: pet (cat, dog, none) x apple x room, 12 combinations.
fn balanced_scene(i: usize) -> (Option<Pet>, bool, bool) {
    let pet = [Some(Pet::Cat), Some(Pet::Dog), None][i % 3];
    (pet, (i / 3) % 2 == 1, (i / 6) % 2 == 1)
}

fn pet_word(pet: Pet) -> &'static str {
    match pet {
        Pet::Cat => "cat",
        Pet::Dog => "dog",
    }
}

/// Writes the balanced caption set: `<out>/images/NNNNNN.png`, `<out>/captions.csv` (`image,caption`, paths
/// relative to `out`), `<out>/scenes.csv` (pet, apple, room per image) and `<out>/corpus.txt`. Every combination of
/// pet (cat, dog, none) x apple x room has the same count up to one, so "apple" is independent of the animal and
/// the translator can only write it when the classifier's features show one. Each image draws from its own RNG
/// stream (seed, index).
pub fn caption_set(
    cfg: &CatsApplesCaptionConfig,
    out: &Path,
) -> anyhow::Result<super::captions::CaptionSetSummary> {
    anyhow::ensure!(cfg.size >= 16, "size must be >= 16 px, got {}", cfg.size);
    anyhow::ensure!(
        cfg.pet_size[0] > 0.0 && cfg.pet_size[0] <= cfg.pet_size[1] && cfg.pet_size[1] <= 1.0,
        "pet_size must be an increasing range in (0, 1], got {:?}",
        cfg.pet_size
    );
    let ss = cfg.supersample.max(1) as usize;
    let size = cfg.size as usize;
    let n = size * ss;
    let rows: Vec<(String, String, Vec<String>)> = (0..cfg.n_images)
        .into_par_iter()
        .map(|i| -> anyhow::Result<_> {
            let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
            rng.set_stream(i as u64);
            let (pet, apple, room) = balanced_scene(i);
            let pet_size = rng.gen_range(cfg.pet_size[0]..=cfg.pet_size[1]);
            let (px, _, colour) = draw_scene(pet, apple, room, n, pet_size, ss, &mut rng);
            let name = format!("images/{:06}.png", i + 1);
            write_atomic(&out.join(&name), &png_rgb(size, size, &px)?)?;
            let caps = (0..cfg.captions_per_image)
                .map(|_| scene_caption(pet.map(|p| (pet_word(p), colour)), room, apple, &mut rng))
                .collect();
            let scene = format!(
                "{name},{},{},{}",
                pet.map(pet_word).unwrap_or("none"),
                apple as u8,
                if room { "room" } else { "lawn" }
            );
            Ok((name, scene, caps))
        })
        .collect::<anyhow::Result<_>>()
        .context("drawing the Cats & Apples caption set")?;
    let mut scenes = String::from("image,pet,apple,background\n");
    let mut n_caps = 0;
    let mut n_without = 0;
    for (_, scene, caps) in &rows {
        n_caps += caps.len();
        if scene.contains(",none,") {
            n_without += 1;
        }
        writeln!(scenes, "{scene}")?;
    }
    super::captions::write_captions_csv(
        &out.join("captions.csv"),
        "image",
        rows.iter()
            .flat_map(|(name, _, caps)| caps.iter().map(move |c| (name.clone(), c.as_str()))),
    )?;
    write_atomic(&out.join("scenes.csv"), scenes.as_bytes())?;
    write_atomic(
        &out.join("corpus.txt"),
        corpus(cfg.corpus_sentences, cfg.seed).as_bytes(),
    )?;
    tracing::info!(
        "Cats & Apples caption set: {} images, {n_caps} captions, {n_without} without a pet",
        rows.len()
    );
    Ok(super::captions::CaptionSetSummary {
        n_images: rows.len(),
        n_captions: n_caps,
        n_without_bird: n_without,
        n_corpus_sentences: cfg.corpus_sentences,
    })
}

/// A text-only corpus from the same grammar over the same balanced scene mix, one sentence per line.
pub fn corpus(n: usize, seed: u64) -> String {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xCA_75_u64);
    let colours: Vec<&str> = super::scene::PALETTE.iter().map(|p| p.0).collect();
    let mut s = String::new();
    for _ in 0..n {
        let (pet, apple, room) = balanced_scene(rng.gen_range(0..12));
        let colour = colours[rng.gen_range(0..colours.len())];
        s.push_str(&scene_caption(
            pet.map(|p| (pet_word(p), colour)),
            room,
            apple,
            &mut rng,
        ));
        s.push('\n');
    }
    s
}

/// Draws one scene at `n` px (supersampled by `ss`): a room or lawn, optionally a pet of relative size `pet_size`
/// and a red apple near the floor. Returns the downsampled pixels, the pet's mask, and the fur colour name.
/// The RNG call order is part of the output's identity (the Cats & Apples set's bytes depend on it).
fn draw_scene(
    pet: Option<Pet>,
    apple: bool,
    room: bool,
    n: usize,
    pet_size: f64,
    ss: usize,
    rng: &mut ChaCha8Rng,
) -> (Vec<u8>, Vec<u8>, &'static str) {
    let nseed: u64 = rng.gen();
    let (wall, floor) = if room {
        (rgb(215, 200, 170), rgb(150, 105, 65))
    } else {
        (rgb(150, 195, 235), rgb(90, 160, 70))
    };
    let horizon = rng.gen_range(0.45..0.6) * n as f32;
    let mut bg = Canvas::new(n, n, wall);
    bg.paint(|x, yy| {
        let t = value_noise(nseed, x / (n as f32 / 6.0), yy / (n as f32 / 6.0)) * 0.15 + 0.92;
        let base = if yy < horizon { wall } else { floor };
        [base[0] * t, base[1] * t, base[2] * t]
    });
    let (mut scene, layer, colour) = match pet {
        Some(pet) => {
            let (parts, colour) = pet_sprite(pet, rng);
            let extent = pet_size as f32 * rng.gen_range(0.9..1.1) * n as f32;
            let layer = place_sprite(&parts, rng.gen_range(-0.1..0.1), false, extent, n, n, rng);
            (bg.composite(&layer), Some(layer), colour)
        }
        None => (bg, None, ""),
    };
    if apple {
        let r = 0.08 * n as f32;
        let x = rng.gen_range(r * 1.5..n as f32 - r * 1.5);
        let yy = rng.gen_range(0.75..0.9) * n as f32;
        paint_apple(&mut scene, (x, yy), r);
    }
    let (px, _) = scene.downsample(ss);
    let mask = match layer {
        Some(layer) => layer.downsample(ss).1,
        None => vec![0; (n / ss) * (n / ss)],
    };
    (px, mask, colour)
}

/// Writes the Cats & Apples folder at `out`.
pub fn generate(cfg: &CatsApplesConfig, out: &Path) -> anyhow::Result<CatsApplesSummary> {
    anyhow::ensure!(cfg.size >= 16, "size must be >= 16 px, got {}", cfg.size);
    let mut specs: Vec<(Split, i64)> = Vec::new();
    for (split, n) in [
        (Split::Train, cfg.n_train),
        (Split::Val, cfg.n_val),
        (Split::Test, cfg.n_test),
    ] {
        for i in 0..n {
            specs.push((split, (i % 2) as i64));
        }
    }
    let mut counters = [0usize; 2];
    let names: Vec<String> = specs
        .iter()
        .map(|&(_, y)| {
            counters[y as usize] += 1;
            let (folder, stem) = if y == 1 {
                ("002.Cat", "Cat")
            } else {
                ("001.Dog", "Dog")
            };
            format!("{folder}/{stem}_{:04}.png", counters[y as usize])
        })
        .collect();
    let ss = cfg.supersample.max(1) as usize;
    let size = cfg.size as usize;
    let n = size * ss;
    let rows: Vec<(i64, String, Vec<String>)> = specs
        .par_iter()
        .zip(names.par_iter())
        .enumerate()
        .map(|(i, (&(split, y), name))| -> anyhow::Result<_> {
            let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
            rng.set_stream(i as u64 + 1);
            let apple = match split {
                Split::Train => y == 1,
                _ => rng.gen_bool(cfg.apple_prob_eval.clamp(0.0, 1.0)),
            };
            let room = rng.gen_bool(0.5);
            let pet = if y == 1 { Pet::Cat } else { Pet::Dog };
            let (px, mask, colour) =
                draw_scene(Some(pet), apple, room, n, cfg.pet_size, ss, &mut rng);
            write_atomic(&out.join(name), &png_rgb(size, size, &px)?)?;
            write_atomic(
                &out.join(MASK_DIR).join(name),
                &png_gray(size, size, &mask)?,
            )?;
            let word = if y == 1 { "cat" } else { "dog" };
            let caps = (0..cfg.captions_per_image)
                .map(|_| caption(word, colour, room, apple, &mut rng))
                .collect();
            let place_fn = format!(
                "{}/{:08}.jpg",
                if room { "/l/living_room" } else { "/l/lawn" },
                rng.gen_range(0..100_000_000u32)
            );
            let row = format!(
                "{},{name},{y},{},{},{place_fn}",
                i + 1,
                split.code(),
                apple as i64
            );
            Ok((apple as i64, row, caps))
        })
        .collect::<anyhow::Result<_>>()
        .context("drawing Cats & Apples")?;
    let mut meta = format!("{HEADER}\n");
    let mut counts = [[0usize; 4]; 3];
    for ((apple, row, _), (split, y)) in rows.iter().zip(&specs) {
        writeln!(meta, "{row}")?;
        counts[split.code() as usize][(2 * y + apple) as usize] += 1;
    }
    write_atomic(&out.join("metadata.csv"), meta.as_bytes())?;
    super::captions::write_captions_csv(
        &out.join("captions.csv"),
        "img_id",
        rows.iter()
            .enumerate()
            .flat_map(|(i, (_, _, cs))| cs.iter().map(move |c| ((i + 1).to_string(), c.as_str()))),
    )?;
    Ok(CatsApplesSummary { counts })
}
