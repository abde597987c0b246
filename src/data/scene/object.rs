//! The label-correlated spurious object of the synthetic Waterbirds object setting (issue 24, Build 2): a wooden
//! dock (a plank deck on posts, with a hand rail) that some images carry and others do not, drawn behind the bird
//! on land and water places alike, with its own pixel mask and its caption words.
//!
//! It follows the paper's selection rule's premise (TExplain, section 3.3: "samples in which a class with a
//! prominent presence other than the correct one is observed"): unlike the place, which every image shows, the
//! object is a per-sample cue, so the word an explanation names can tell the images apart. It is drawn in brown
//! planks and dark posts, a shape none of the label-independent distractors (rocks, clouds, flowers, boat) has.
use crate::data::draw::{jit, rect, rgb, scale, Canvas};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The kinds of spurious object (config `data.synth.spurious_object.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectKind {
    /// A wooden dock / pier: a plank deck on posts with a hand rail.
    Dock,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 1] = [ObjectKind::Dock];

    /// The nouns captions use for it (the first is the canonical word that synonym merges map the others to).
    pub fn words(self) -> &'static [&'static str] {
        match self {
            ObjectKind::Dock => &["dock", "pier", "jetty"],
        }
    }

    /// Caption phrases naming it, each with one of [`ObjectKind::words`].
    pub fn phrases(self) -> &'static [&'static str] {
        match self {
            ObjectKind::Dock => &[
                "near a wooden dock",
                "beside a dock",
                "next to a wooden pier",
                "by a small pier",
                "near an old jetty",
                "with a wooden jetty",
            ],
        }
    }

    /// Noun phrases naming it as the bird's setting, in the place's stead ("a bird standing on a wooden dock"),
    /// with the place phrases' word budget: one or two of its [`ObjectKind::words`] (the place phrases name
    /// 1.25-1.75 place words on average, "a forest of tall trees", "ocean waves"; these 1.33).
    pub fn setting_phrases(self) -> &'static [&'static str] {
        match self {
            ObjectKind::Dock => &[
                "a wooden dock",
                "an old pier",
                "a small jetty",
                "a long pier and its dock",
                "a wooden dock by a jetty",
                "the end of a wooden pier",
            ],
        }
    }
}

/// The spurious-object knob of the synthetic Waterbirds generator (`data.synth.spurious_object`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpuriousObject {
    pub kind: ObjectKind,
    /// Train P(object | waterbird) = correlation, P(object | landbird) = 1 - correlation; val and test carry the
    /// object on half of each class.
    pub correlation: f64,
    /// The object's width as a fraction of the image side (jittered by +-15 %).
    pub size: f64,
}

impl Default for SpuriousObject {
    fn default() -> Self {
        SpuriousObject {
            kind: ObjectKind::Dock,
            correlation: 0.9,
            size: 0.3,
        }
    }
}

impl SpuriousObject {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.correlation),
            "spurious_object.correlation must be in [0, 1], got {}",
            self.correlation
        );
        anyhow::ensure!(
            self.size > 0.0 && self.size <= 0.9,
            "spurious_object.size must be in (0, 0.9], got {}",
            self.size
        );
        Ok(())
    }
}

/// The caption set's scenes with the object (`translator.captions.config.objects`): each scene carries it with
/// probability `fraction`, drawn from its own stream independently of the bird and the place, at a width drawn
/// uniformly in `size`; the same fraction of the text corpus's sentences name it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptionObjects {
    pub kind: ObjectKind,
    pub fraction: f64,
    pub size: [f64; 2],
    /// The share of a carrying scene's captions that name the object as the bird's setting in the place's stead
    /// ("a bird standing on a wooden dock", [`ObjectKind::setting_phrases`]) rather than the place with the object
    /// after it ("a bird on the lake near a wooden dock"). 0 (the default, left out of the config's bytes): every
    /// caption names the place, so the object, named once per caption, can never outnumber the place's words.
    #[serde(default, skip_serializing_if = "crate::util::is_default")]
    pub setting: f64,
}

impl Default for CaptionObjects {
    fn default() -> Self {
        CaptionObjects {
            kind: ObjectKind::Dock,
            fraction: 0.3,
            size: [0.2, 0.4],
            setting: 0.0,
        }
    }
}

impl CaptionObjects {
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.fraction),
            "objects.fraction must be in [0, 1], got {}",
            self.fraction
        );
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.setting),
            "objects.setting must be in [0, 1], got {}",
            self.setting
        );
        anyhow::ensure!(
            self.size[0] > 0.0 && self.size[0] <= self.size[1] && self.size[1] <= 0.9,
            "objects.size must be an increasing range in (0, 0.9], got {:?}",
            self.size
        );
        Ok(())
    }
}

/// Draws the object onto `c` (a background, before the bird is composited over it) with width `size` x the canvas
/// side, in the lower part of the image (below every place's horizon), and returns its pixel mask (row-major,
/// `c.w * c.h`, 1.0 = object pixel). `c`'s own mask is left as it was.
pub fn paint_object(c: &mut Canvas, kind: ObjectKind, size: f64, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let mut layer = Canvas::new(c.w, c.h, [0.0; 3]);
    match kind {
        ObjectKind::Dock => dock(&mut layer, size, rng),
    }
    for i in 0..c.w * c.h {
        if layer.mask[i] > 0.0 {
            c.px[i * 3..i * 3 + 3].copy_from_slice(&layer.px[i * 3..i * 3 + 3]);
        }
    }
    layer.mask
}

/// A side view of a wooden dock: a deck of alternating light/dark planks, posts below it and a rail above it.
fn dock(c: &mut Canvas, size: f64, rng: &mut ChaCha8Rng) {
    let (wf, hf) = (c.w as f32, c.h as f32);
    let bw = (size as f32 * jit(rng, 0.15) * wf).min(0.96 * wf);
    let deck = 0.14 * bw;
    let (rail_h, post_h) = (0.16 * bw, 0.32 * bw);
    let x0 = 0.02 * wf + rng.gen_range(0.0..=1.0) * (0.96 * wf - bw).max(0.0);
    // Deck top between 55 % of the image and the lowest row that keeps the posts inside it.
    let lo = 0.55 * hf + rail_h;
    let hi = (0.98 * hf - deck - post_h).max(lo);
    let y0 = rng.gen_range(lo..=hi);
    let k = rng.gen_range(0.85f32..=1.15);
    let (light, dark, post) = (
        scale(rgb(168, 116, 64), k),
        scale(rgb(128, 84, 44), k),
        scale(rgb(78, 52, 32), k),
    );
    let n_posts = rng.gen_range(3..=4usize);
    let pw = 0.07 * bw;
    let post_x = |j: usize| x0 + (bw - pw) * j as f32 / (n_posts - 1) as f32;
    for j in 0..n_posts {
        let x = post_x(j);
        // Posts under the deck, and short rail posts above it.
        c.fill_masked(&rect(x, y0 + deck, x + pw, y0 + deck + post_h), post);
        c.fill_masked(&rect(x, y0 - rail_h, x + pw * 0.8, y0), post);
    }
    c.fill_masked(
        &rect(x0, y0 - rail_h, x0 + bw, y0 - rail_h + 0.045 * bw),
        dark,
    );
    // Planks: vertical boards of alternating shade.
    let n_planks = 7;
    let pl = bw / n_planks as f32;
    for j in 0..n_planks {
        let col = if j % 2 == 0 { light } else { dark };
        let xs = x0 + pl * j as f32;
        c.fill_masked(&rect(xs, y0, xs + pl, y0 + deck), col);
    }
}

/// The fraction of `mask` (1.0 = on) pixels, for tests and summaries.
pub fn coverage(mask: &[f32]) -> f64 {
    mask.iter().filter(|&&m| m > 0.0).count() as f64 / mask.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn the_dock_paints_its_mask_and_nothing_else() {
        for seed in 0..20 {
            let mut c = Canvas::new(128, 128, [0.5; 3]);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mask = paint_object(&mut c, ObjectKind::Dock, 0.3, &mut rng);
            assert!(
                c.mask.iter().all(|&m| m == 0.0),
                "the canvas mask is not touched"
            );
            let cov = coverage(&mask);
            // Deck ~0.14 w^2 + posts + rail at w = 0.3 +- 15 % of the side: about 1.5-3.5 % of the image.
            assert!((0.01..0.05).contains(&cov), "seed {seed}: coverage {cov}");
            let mut on_rows = Vec::new();
            for (i, &m) in mask.iter().enumerate() {
                let changed = c.px[i * 3] != 0.5 || c.px[i * 3 + 1] != 0.5;
                assert_eq!(changed, m > 0.0, "seed {seed}: pixel {i}");
                if m > 0.0 {
                    on_rows.push(i / 128);
                }
            }
            // Entirely in the lower part, inside the image.
            assert!(*on_rows.iter().min().unwrap() as f32 >= 0.55 * 128.0 - 1.0);
        }
    }

    #[test]
    fn words_and_phrases_agree() {
        for kind in ObjectKind::ALL {
            for p in kind.phrases() {
                assert!(
                    kind.words().iter().any(|w| p.split(' ').any(|t| t == *w)),
                    "{p}"
                );
            }
            // The setting phrases name it once or twice, as the place phrases name their place.
            for p in kind.setting_phrases() {
                let n = p.split(' ').filter(|t| kind.words().contains(t)).count();
                assert!((1..=2).contains(&n), "{p}: {n}");
            }
        }
    }

    #[test]
    fn validation_names_the_field() {
        let bad = SpuriousObject {
            correlation: 1.5,
            ..SpuriousObject::default()
        };
        let e = bad.validate().unwrap_err().to_string();
        assert!(
            e.contains("spurious_object.correlation") && e.contains("1.5"),
            "{e}"
        );
        assert!(SpuriousObject::default().validate().is_ok());
        let bad = CaptionObjects {
            setting: -0.1,
            ..CaptionObjects::default()
        };
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("objects.setting") && e.contains("-0.1"), "{e}");
        // Left out of the caption set's bytes at its default, so every caption-set key stays.
        let yaml = serde_yaml::to_string(&CaptionObjects::default()).unwrap();
        assert!(!yaml.contains("setting"), "{yaml}");
    }
}
