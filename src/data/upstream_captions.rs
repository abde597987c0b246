//! The caption grammar grown to the upstream corpus (22 categories on 13 places, [`super::upstream_scene`]) and the
//! balanced caption set the translator of the ImageNet-9 / Background Challenge analysis learns from (paper section
//! 4.3, Figures 5 and 6; the set plays COCO's role, section 4.1).
//!
//! The grammar is [`super::captions`]'s: how prominently a caption names the object follows how visible it is
//! (birds exactly as there, mostly "bird", sometimes the species), the place is always named, and scenes without
//! an object name only the place. Objects are named by their word ("a red car", "a tiny kite") and the seven places
//! Waterbirds lacks by their own nouns ([`place_nouns`]: "a desert", "a city street", "a room with a wall", ...).
//!
//! The caption set pairs every category (and no object) with every place equally often, so no caption ties an
//! object to a place: the words an explanation writes follow the classifier's features, not correlations in the
//! captions. It holds object-free scenes and, being mostly objects, bird-free ones (docs/ARCHITECTURE.md, "Why the
//! caption set holds scenes without birds"). Images are drawn with the corpus' painters from ChaCha8 streams keyed
//! by SHA-256 of this module's own domain tag and the seed, so no image, background or sprite is shared with the
//! analysed corpus or any Waterbirds set. Same config, same bytes.
use super::captions::{
    bird_np, pick, prominence, size_colour_words, verb, visibility, with_article,
    write_captions_csv, BirdDesc, Prominence,
};
use super::draw::png_rgb;
use super::scene::{place_sprite, Background, Pose, PALETTE};
use super::upstream_scene::{paint, sprite_described, Category, UpstreamBackground};
use super::write_atomic;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::Path;

/// The domain tag hashed with the seed into the caption set's RNG key.
const DOMAIN: &[u8] = b"texplain/upstream-captions/v1";
/// The stream of the text corpus (images use streams 0..n).
const CORPUS_STREAM: u64 = 1 << 40;

/// The file that says what each caption-set image shows (`image,category,background,visibility`).
pub const SCENES_FILE: &str = "upstream_scenes.csv";

/// The RNG of stream `stream` of the caption set with `seed`.
fn caption_rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut h = Sha256::new();
    h.update(DOMAIN);
    h.update(seed.to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(h.finalize().into());
    rng.set_stream(stream);
    rng
}

/// Noun phrases for a place; the six Waterbirds places keep their phrases ([`Background::phrases`]).
pub fn place_phrases(b: UpstreamBackground) -> &'static [&'static str] {
    use UpstreamBackground as B;
    match b {
        B::Forest => Background::Forest.phrases(),
        B::Bamboo => Background::Bamboo.phrases(),
        B::Field => Background::Field.phrases(),
        B::Ocean => Background::Ocean.phrases(),
        B::Lake => Background::Lake.phrases(),
        B::Pond => Background::Pond.phrases(),
        B::Desert => &[
            "a desert",
            "desert dunes",
            "a dry desert",
            "dunes in the desert",
        ],
        B::Snow => &["snow", "a snowy plain", "a snowy landscape", "fresh snow"],
        B::Beach => &["a beach", "a sunny beach", "the beach", "a wide beach"],
        B::Mountain => &[
            "a mountain",
            "mountains",
            "a mountain range",
            "a mountain valley",
        ],
        B::Street => &[
            "a street",
            "a city street",
            "a road in the city",
            "a street with buildings",
        ],
        B::Sky => &["the sky", "a blue sky", "the open sky", "a clear sky"],
        B::Wall => &["a room", "a wall", "a room with a wall", "an indoor room"],
    }
}

/// The nouns by which captions name a place: every phrase of [`place_phrases`] holds one. Shared only where the
/// places are alike (lake and pond are both "water", a bamboo grove is also a "forest"); the analysis counts them as
/// its place words unless the config names others.
pub fn place_nouns(b: UpstreamBackground) -> &'static [&'static str] {
    use UpstreamBackground as B;
    match b {
        B::Forest => &["forest", "woods", "trees"],
        B::Bamboo => &["bamboo", "grove", "forest"],
        B::Field => &["field", "meadow", "grass"],
        B::Ocean => &["ocean", "sea", "waves"],
        B::Lake => &["lake", "water"],
        B::Pond => &["pond", "water"],
        B::Desert => &["desert", "dunes"],
        B::Snow => &["snow", "snowy"],
        B::Beach => &["beach"],
        B::Mountain => &["mountain", "mountains"],
        B::Street => &["street", "city", "road", "buildings"],
        B::Sky => &["sky"],
        B::Wall => &["room", "wall", "indoor"],
    }
}

fn is_water(b: UpstreamBackground) -> bool {
    matches!(
        b,
        UpstreamBackground::Ocean | UpstreamBackground::Lake | UpstreamBackground::Pond
    )
}

/// What a scene shows of its object, for the grammar.
#[derive(Debug, Clone)]
pub struct ObjectDesc {
    pub category: Category,
    /// Palette name of its main colour.
    pub colour: &'static str,
    /// A bird's pose.
    pub pose: Option<Pose>,
    /// sqrt(visible object pixels / image pixels), as [`BirdDesc::visibility`].
    pub visibility: f32,
}

/// The attributes of an upstream scene that captions may mention.
#[derive(Debug, Clone)]
pub struct UpstreamSceneDesc {
    pub object: Option<ObjectDesc>,
    pub background: UpstreamBackground,
}

/// The object as a noun phrase without article: birds as the Waterbirds grammar names them, other objects
/// "[size] [colour] word".
fn object_np(o: &ObjectDesc, tier: Prominence, rng: &mut ChaCha8Rng) -> String {
    if let Category::Bird(species) = o.category {
        let bird = BirdDesc {
            species,
            colour: o.colour,
            pose: o.pose.unwrap_or(Pose::FacingLeft),
            visibility: o.visibility,
            occluded: false,
        };
        return bird_np(&bird, tier, rng);
    }
    let mut words = size_colour_words(o.visibility, o.colour, tier, rng);
    words.push(o.category.word());
    words.join(" ")
}

/// How an object sits in a place: birds as in the Waterbirds grammar (and flying in the sky), other objects on or in.
fn preposition(category: Category, bg: UpstreamBackground, rng: &mut ChaCha8Rng) -> &'static str {
    match (category.is_bird(), bg) {
        (_, UpstreamBackground::Sky) => pick(rng, &["flying in", "in"]),
        (true, _) => verb(is_water(bg), rng),
        (false, UpstreamBackground::Wall) => pick(rng, &["in", "inside"]),
        (false, b) if is_water(b) => pick(rng, &["on", "floating on", "in"]),
        (false, _) => pick(rng, &["in", "on"]),
    }
}

/// One caption of `scene` from the grammar.
pub fn caption(scene: &UpstreamSceneDesc, rng: &mut ChaCha8Rng) -> String {
    let bg = scene.background;
    let place = pick(rng, place_phrases(bg));
    let tier = scene
        .object
        .as_ref()
        .map(|o| prominence(o.visibility))
        .unwrap_or(Prominence::Invisible);
    let mention = match tier {
        Prominence::Main | Prominence::Secondary => true,
        Prominence::Faint => rng.gen_bool(0.5),
        Prominence::Invisible => false,
    };
    match (&scene.object, mention) {
        (Some(o), true) => {
            let np = with_article(&object_np(o, tier, rng));
            let object_first = match tier {
                Prominence::Main => rng.gen_bool(0.85),
                Prominence::Secondary => rng.gen_bool(0.5),
                _ => false,
            };
            let mut extra = String::new();
            if let (Category::Bird(species), Prominence::Main) = (o.category, tier) {
                if rng.gen_bool(0.45) {
                    extra.push(' ');
                    extra.push_str(pick(rng, species.shape_phrases()));
                }
            }
            if object_first {
                match rng.gen_range(0..3) {
                    0 => format!("{np}{extra} {} {place}", preposition(o.category, bg, rng)),
                    1 => format!(
                        "a photo of {np}{extra} {} {place}",
                        preposition(o.category, bg, rng)
                    ),
                    _ => format!("{np}{extra} in front of {place}"),
                }
            } else {
                match rng.gen_range(0..3) {
                    0 => format!("{place} with {np}{extra}"),
                    1 => format!("a view of {place} with {np}{extra}"),
                    _ => format!("{place} and {np}{extra}"),
                }
            }
        }
        _ => match rng.gen_range(0..4) {
            0 => place.to_string(),
            1 => format!("a view of {place}"),
            2 => format!("a photo of {place}"),
            _ => format!("a quiet scene of {place}"),
        },
    }
}

/// Configuration of the upstream caption set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamCaptionConfig {
    pub n_images: usize,
    /// Image side in pixels.
    pub size: u32,
    pub captions_per_image: usize,
    pub seed: u64,
    /// Fraction of scenes without an object (bare places).
    pub no_object_fraction: f64,
    /// Range of the object's bounding-box side as a fraction of the image (tiny to large, so prominence varies).
    pub object_size: [f64; 2],
    /// Sentences in the text-only corpus (`corpus.txt`).
    pub corpus_sentences: usize,
    /// Anti-aliasing supersampling factor.
    pub supersample: u32,
}

impl Default for UpstreamCaptionConfig {
    fn default() -> Self {
        UpstreamCaptionConfig {
            n_images: 3000,
            size: 64,
            captions_per_image: 5,
            seed: 1,
            no_object_fraction: 0.25,
            object_size: [0.15, 0.85],
            corpus_sentences: 20_000,
            supersample: 2,
        }
    }
}

impl UpstreamCaptionConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.size >= 8,
            "caption set size must be >= 8 px, got {}",
            self.size
        );
        anyhow::ensure!(
            (1..=4).contains(&self.supersample),
            "supersample must be in 1..=4, got {}",
            self.supersample
        );
        anyhow::ensure!(
            self.object_size[0] > 0.0
                && self.object_size[0] <= self.object_size[1]
                && self.object_size[1] <= 0.95,
            "object_size must be an increasing range in (0, 0.95], got {:?}",
            self.object_size
        );
        anyhow::ensure!(
            (0.0..=0.95).contains(&self.no_object_fraction),
            "no_object_fraction must be in [0, 0.95], got {}",
            self.no_object_fraction
        );
        anyhow::ensure!(
            self.n_images > 0 && self.captions_per_image > 0,
            "n_images and captions_per_image must be positive"
        );
        Ok(())
    }

    /// Slots of the scene cycle: one per category, then the object-free ones (`no_object_fraction` of the cycle).
    fn slots(&self) -> (usize, usize) {
        let n = Category::all().len();
        let f = self.no_object_fraction;
        (n, n + ((n as f64) * f / (1.0 - f)).round() as usize)
    }
}

/// What [`caption_set`] wrote.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamCaptionSummary {
    pub n_images: usize,
    pub n_captions: usize,
    pub n_without_object: usize,
    pub n_without_bird: usize,
    pub n_corpus_sentences: usize,
}

/// Draws one scene: the place, then the object (if any) at a size drawn from `object_size`.
fn draw_scene(
    category: Option<Category>,
    bg: UpstreamBackground,
    cfg: &UpstreamCaptionConfig,
    rng: &mut ChaCha8Rng,
) -> (Vec<u8>, UpstreamSceneDesc) {
    let ss = cfg.supersample.max(1) as usize;
    let n = cfg.size as usize * ss;
    let mut canvas = paint(bg, n, n, rng);
    let object = category.map(|c| {
        let (sprite, look) = sprite_described(c, rng);
        let extent = rng.gen_range(cfg.object_size[0]..=cfg.object_size[1]) as f32 * n as f32;
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
        ObjectDesc {
            category: c,
            colour: look.colour,
            pose: look.pose,
            visibility: visibility(&canvas),
        }
    });
    let (px, _) = canvas.downsample(ss);
    (
        px,
        UpstreamSceneDesc {
            object,
            background: bg,
        },
    )
}

/// Writes the balanced upstream caption set: `<out>/images/NNNNNN.png`, `<out>/captions.csv` (`image,caption`,
/// paths relative to `out`), `<out>/upstream_scenes.csv` (what each image shows) and `<out>/corpus.txt`.
///
/// Scenes cycle over (category or no object) x place, so every combination has the same count up to one.
pub fn caption_set(
    cfg: &UpstreamCaptionConfig,
    out: &Path,
) -> anyhow::Result<UpstreamCaptionSummary> {
    cfg.validate()?;
    let categories = Category::all();
    let (n_cat, slots) = cfg.slots();
    let places = UpstreamBackground::ALL;
    let rows: Vec<(String, UpstreamSceneDesc, Vec<String>)> = (0..cfg.n_images)
        .into_par_iter()
        .map(|i| -> anyhow::Result<_> {
            let mut rng = caption_rng(cfg.seed, i as u64);
            let slot = i % slots;
            let category = (slot < n_cat).then(|| categories[slot]);
            let bg = places[(i / slots) % places.len()];
            let (px, scene) = draw_scene(category, bg, cfg, &mut rng);
            let name = format!("images/{:06}.png", i + 1);
            write_atomic(
                &out.join(&name),
                &png_rgb(cfg.size as usize, cfg.size as usize, &px)?,
            )?;
            let caps = (0..cfg.captions_per_image)
                .map(|_| caption(&scene, &mut rng))
                .collect();
            Ok((name, scene, caps))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut scenes = String::from("image,category,background,visibility\n");
    let (mut n_caps, mut without_object, mut without_bird) = (0, 0, 0);
    for (name, scene, caps) in &rows {
        n_caps += caps.len();
        let (word, vis) = match &scene.object {
            Some(o) => (o.category.word(), o.visibility),
            None => ("", 0.0),
        };
        without_object += usize::from(scene.object.is_none());
        without_bird += usize::from(!scene.object.as_ref().is_some_and(|o| o.category.is_bird()));
        writeln!(scenes, "{name},{word},{},{vis:.4}", scene.background.name())?;
    }
    write_captions_csv(
        &out.join("captions.csv"),
        "image",
        rows.iter()
            .flat_map(|(name, _, caps)| caps.iter().map(move |c| (name.clone(), c.as_str()))),
    )?;
    write_atomic(&out.join(SCENES_FILE), scenes.as_bytes())?;
    let text = corpus(cfg.corpus_sentences, cfg.seed, cfg.no_object_fraction);
    write_atomic(&out.join("corpus.txt"), text.as_bytes())?;
    tracing::info!(
        "upstream caption set: {} images, {n_caps} captions, {without_object} without an object, {without_bird} without a bird",
        rows.len()
    );
    Ok(UpstreamCaptionSummary {
        n_images: rows.len(),
        n_captions: n_caps,
        n_without_object: without_object,
        n_without_bird: without_bird,
        n_corpus_sentences: cfg.corpus_sentences,
    })
}

/// A text-only corpus from the same grammar over random scene descriptions (any category or none, any place, all
/// visibilities), one sentence per line.
pub fn corpus(n: usize, seed: u64, no_object_fraction: f64) -> String {
    let mut rng = caption_rng(seed, CORPUS_STREAM);
    let categories = Category::all();
    let poses = [Pose::FacingLeft, Pose::FacingRight, Pose::WingsSpread];
    let mut s = String::new();
    for _ in 0..n {
        let background = UpstreamBackground::ALL[rng.gen_range(0..UpstreamBackground::ALL.len())];
        let object = (!rng.gen_bool(no_object_fraction.clamp(0.0, 1.0))).then(|| {
            let category = categories[rng.gen_range(0..categories.len())];
            ObjectDesc {
                category,
                colour: PALETTE[rng.gen_range(0..PALETTE.len())].0,
                pose: category
                    .is_bird()
                    .then(|| poses[rng.gen_range(0..poses.len())]),
                visibility: rng.gen_range(0.03..0.45),
            }
        });
        s.push_str(&caption(
            &UpstreamSceneDesc { object, background },
            &mut rng,
        ));
        s.push('\n');
    }
    s
}

/// Every word a caption may use to name an object of `category` (its word; birds also "bird").
pub fn object_words(category: Category) -> Vec<&'static str> {
    match category {
        Category::Bird(s) => vec!["bird", s.word()],
        c => vec![c.word()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn every_place_phrase_holds_one_of_its_nouns() {
        for b in UpstreamBackground::ALL {
            for p in place_phrases(b) {
                let w = words(p);
                assert!(
                    place_nouns(b).iter().any(|n| w.iter().any(|x| x == n)),
                    "{b:?}: {p}"
                );
            }
        }
    }

    #[test]
    fn captions_name_the_place_and_the_visible_object_only() {
        let mut rng = caption_rng(0, 0);
        let all_objects: Vec<&str> = Category::all()
            .into_iter()
            .filter(|c| !c.is_bird())
            .map(|c| c.word())
            .collect();
        for c in Category::all() {
            for b in UpstreamBackground::ALL {
                let scene = UpstreamSceneDesc {
                    object: Some(ObjectDesc {
                        category: c,
                        colour: "red",
                        pose: c.is_bird().then_some(Pose::WingsSpread),
                        visibility: 0.4,
                    }),
                    background: b,
                };
                for _ in 0..6 {
                    let cap = caption(&scene, &mut rng);
                    let w = words(&cap);
                    assert!(
                        place_nouns(b).iter().any(|n| w.iter().any(|x| x == n)),
                        "{cap}"
                    );
                    assert!(
                        object_words(c).iter().any(|n| w.iter().any(|x| x == n)),
                        "{cap}"
                    );
                    for other in &all_objects {
                        if *other != c.word() {
                            assert!(!w.iter().any(|x| x == other), "{cap} names {other}");
                        }
                    }
                    if !c.is_bird() {
                        assert!(!w.iter().any(|x| x == "bird"), "{cap}");
                    }
                }
            }
        }
        let bare = UpstreamSceneDesc {
            object: None,
            background: UpstreamBackground::Street,
        };
        for _ in 0..10 {
            let cap = caption(&bare, &mut rng);
            let w = words(&cap);
            assert!(
                !all_objects.iter().any(|o| w.iter().any(|x| x == o))
                    && !w.iter().any(|x| x == "bird"),
                "{cap}"
            );
        }
    }
}
