//! Word clouds as PNG (paper Figure 1 convention: the class word in red, all other words in grey).
//!
//! Layout follows the classic word-cloud recipe (Wordle / `amueller/word_cloud`), made deterministic: words in order
//! of weight, font size scaled by `sqrt(weight / max weight)` (or linearly) between a minimum and a maximum size,
//! each word placed at the first point of an elliptical Archimedean spiral from the centre where its ink box (plus
//! padding) overlaps no placed word and stays on the canvas; a word that fits nowhere is retried smaller, then
//! dropped. The font is the bundled DejaVu Sans Bold (`assets/fonts/`, Bitstream Vera license).
use ab_glyph::{Font, FontRef, OutlinedGlyph, PxScale, ScaleFont};
use image::{Rgb, RgbImage};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;

static FONT_BYTES: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// The bundled font. Parsing a constant, known-good font cannot fail on any input (a test checks it).
fn font() -> FontRef<'static> {
    FontRef::try_from_slice(FONT_BYTES).expect("bundled DejaVuSans-Bold.ttf is a valid font")
}

/// How font size grows with a word's weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FontScaling {
    /// size ∝ sqrt(weight): area ∝ weight, keeps minor words readable beside a dominant one.
    Sqrt,
    /// size ∝ weight.
    Linear,
}

/// Rendering options (serde, so a config can carry them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CloudOptions {
    pub width: u32,
    pub height: u32,
    /// Font size (px) of the lightest word shown.
    pub min_font: f32,
    /// Font size (px) of the heaviest word (reduced if it would not fit the canvas width).
    pub max_font: f32,
    pub max_words: usize,
    /// Minimum empty pixels between two words (more for larger words, see the layout).
    pub padding: u32,
    pub scaling: FontScaling,
    pub background: [u8; 3],
    /// Colour of highlighted (class) words.
    pub highlight: [u8; 3],
    /// Grey of the heaviest non-highlighted word; lighter words fade towards `grey_light`.
    pub grey_dark: [u8; 3],
    pub grey_light: [u8; 3],
    /// Optional title line drawn above the cloud.
    pub title: Option<String>,
    pub title_font: f32,
}

impl Default for CloudOptions {
    fn default() -> Self {
        Self {
            width: 480,
            height: 320,
            min_font: 11.0,
            max_font: 72.0,
            max_words: 60,
            padding: 4,
            scaling: FontScaling::Sqrt,
            background: [255, 255, 255],
            highlight: [204, 20, 20],
            grey_dark: [70, 70, 70],
            grey_light: [165, 165, 165],
            title: None,
            title_font: 18.0,
        }
    }
}

/// An axis-aligned box in pixels, [x0, x1) × [y0, y1).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rect {
    x0: i32,
    y0: i32,
    x1: i32,
    y1: i32,
}

impl Rect {
    fn intersects(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }
    fn inside(&self, o: &Rect) -> bool {
        self.x0 >= o.x0 && self.y0 >= o.y0 && self.x1 <= o.x1 && self.y1 <= o.y1
    }
}

/// Glyphs of `text` at `size` px with kerning, and the union of their ink boxes (relative to the layout origin).
fn layout(
    font: &FontRef<'static>,
    size: f32,
    text: &str,
) -> Option<(Vec<OutlinedGlyph>, ab_glyph::Rect)> {
    let scale = PxScale::from(size);
    let sf = font.as_scaled(scale);
    let mut caret = 0.0f32;
    let mut prev = None;
    let mut glyphs = Vec::new();
    let mut bounds: Option<ab_glyph::Rect> = None;
    for c in text.chars() {
        let id = sf.glyph_id(c);
        if let Some(p) = prev {
            caret += sf.kern(p, id);
        }
        let glyph = id.with_scale_and_position(scale, ab_glyph::point(caret, sf.ascent()));
        caret += sf.h_advance(id);
        prev = Some(id);
        if let Some(g) = font.outline_glyph(glyph) {
            let b = g.px_bounds();
            bounds = Some(match bounds {
                None => b,
                Some(u) => ab_glyph::Rect {
                    min: ab_glyph::point(u.min.x.min(b.min.x), u.min.y.min(b.min.y)),
                    max: ab_glyph::point(u.max.x.max(b.max.x), u.max.y.max(b.max.y)),
                },
            });
            glyphs.push(g);
        }
    }
    bounds.map(|b| (glyphs, b))
}

/// Ink width and height of a laid-out text.
fn ink_size(b: &ab_glyph::Rect) -> (i32, i32) {
    (
        (b.max.x.ceil() - b.min.x.floor()) as i32,
        (b.max.y.ceil() - b.min.y.floor()) as i32,
    )
}

/// Draw laid-out glyphs so that their ink box's top-left corner lands on (x, y).
fn draw_glyphs(
    img: &mut RgbImage,
    glyphs: &[OutlinedGlyph],
    bounds: &ab_glyph::Rect,
    x: i32,
    y: i32,
    color: Rgb<u8>,
) {
    let (w, h) = (img.width() as i32, img.height() as i32);
    for g in glyphs {
        let b = g.px_bounds();
        let ox = x + (b.min.x - bounds.min.x.floor()) as i32;
        let oy = y + (b.min.y - bounds.min.y.floor()) as i32;
        g.draw(|gx, gy, cov| {
            let (px, py) = (ox + gx as i32, oy + gy as i32);
            if px < 0 || py < 0 || px >= w || py >= h {
                return;
            }
            let cov = cov.clamp(0.0, 1.0);
            let p = img.get_pixel_mut(px as u32, py as u32);
            for k in 0..3 {
                p.0[k] =
                    (f32::from(p.0[k]) * (1.0 - cov) + f32::from(color.0[k]) * cov).round() as u8;
            }
        });
    }
}

fn lerp_color(a: [u8; 3], b: [u8; 3], t: f32) -> Rgb<u8> {
    let t = t.clamp(0.0, 1.0);
    Rgb(std::array::from_fn(|k| {
        (f32::from(a[k]) * (1.0 - t) + f32::from(b[k]) * t).round() as u8
    }))
}

/// Where a word was placed (for tests and for callers that want to annotate).
#[derive(Debug, Clone, PartialEq)]
pub struct Placed {
    pub word: String,
    pub size: f32,
    pub x: i32,
    pub y: i32,
    pub w: i32,
    pub h: i32,
}

/// Render a word cloud of `words` (word, weight); words in `highlight` (compared lower-cased) are drawn in the
/// highlight colour. Non-positive and non-finite weights are ignored. Deterministic.
pub fn render(
    words: &[(String, f64)],
    highlight: &HashSet<String>,
    opts: &CloudOptions,
) -> RgbImage {
    render_with_layout(words, highlight, opts).0
}

/// [`render`], also returning where each word went.
pub fn render_with_layout(
    words: &[(String, f64)],
    highlight: &HashSet<String>,
    opts: &CloudOptions,
) -> (RgbImage, Vec<Placed>) {
    let font = font();
    let (width, height) = (opts.width.max(1), opts.height.max(1));
    let mut img = RgbImage::from_pixel(width, height, Rgb(opts.background));
    let highlight: HashSet<String> = highlight.iter().map(|w| w.to_lowercase()).collect();
    let margin = opts.padding as i32 + 2;

    // Title line on top; the cloud gets the rest of the canvas.
    let mut top = 0i32;
    if let Some(title) = opts.title.as_deref().filter(|t| !t.trim().is_empty()) {
        let mut size = opts.title_font.max(1.0);
        // Shrink a long title until it fits the width.
        while let Some((glyphs, b)) = layout(&font, size, title) {
            let (tw, th) = ink_size(&b);
            if tw <= width as i32 - 2 * margin || size <= 6.0 {
                let x = ((width as i32 - tw) / 2).max(margin);
                let title_color = lerp_color(opts.grey_dark, [0, 0, 0], 0.5);
                draw_glyphs(&mut img, &glyphs, &b, x, margin, title_color);
                top = margin + th + margin;
                // A thin rule under the title separates it from the cloud.
                let rule_y = (margin + th + margin / 2).clamp(0, height as i32 - 1) as u32;
                for x in margin as u32..width.saturating_sub(margin as u32) {
                    img.put_pixel(x, rule_y, lerp_color(opts.grey_light, opts.background, 0.4));
                }
                break;
            }
            size *= 0.9;
        }
    }
    let region = Rect {
        x0: margin,
        y0: top + margin,
        x1: width as i32 - margin,
        y1: height as i32 - margin,
    };

    let mut items: Vec<(&str, f64)> = words
        .iter()
        .filter(|(w, x)| x.is_finite() && *x > 0.0 && !w.trim().is_empty())
        .map(|(w, x)| (w.as_str(), *x))
        .collect();
    items.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    items.truncate(opts.max_words);
    let Some(&(_, wmax)) = items.first() else {
        return (img, Vec::new());
    };
    let wmin = items.last().map_or(wmax, |&(_, w)| w);
    let (min_font, max_font) = (
        opts.min_font.max(4.0),
        opts.max_font.max(opts.min_font.max(4.0)),
    );

    let cx = (region.x0 + region.x1) as f32 / 2.0;
    let cy = (region.y0 + region.y1) as f32 / 2.0;
    let aspect = (region.x1 - region.x0).max(1) as f32 / (region.y1 - region.y0).max(1) as f32;
    let max_r = ((region.x1 - region.x0) as f32).hypot((region.y1 - region.y0) as f32);
    let mut placed_boxes: Vec<Rect> = Vec::new();
    let mut placed: Vec<Placed> = Vec::new();

    for (word, weight) in items {
        let rel = (weight / wmax) as f32;
        let t = match opts.scaling {
            FontScaling::Sqrt => rel.sqrt(),
            FontScaling::Linear => rel,
        };
        let mut size = min_font + (max_font - min_font) * t;
        // Colour: red for class words; grey from dark (heaviest) to light (lightest) otherwise.
        let color = if highlight.contains(&word.to_lowercase()) {
            Rgb(opts.highlight)
        } else {
            let span = (wmax - wmin).max(f64::EPSILON);
            lerp_color(
                opts.grey_dark,
                opts.grey_light,
                ((wmax - weight) / span) as f32,
            )
        };
        let mut done = false;
        while !done && size >= min_font * 0.7 {
            let Some((glyphs, b)) = layout(&font, size, word) else {
                break; // nothing visible to draw (e.g. only spaces)
            };
            let (w, h) = ink_size(&b);
            // Each word keeps `padding` / 2 plus ~0.1 em of space around it, so the gap between two words is at
            // least `padding` and grows with their size (a tight ink box alone reads as one long word).
            let pad = (opts.padding as f32 / 2.0 + 0.1 * size).round() as i32;
            if w > region.x1 - region.x0 || h > region.y1 - region.y0 {
                size *= 0.85;
                continue;
            }
            // Elliptical Archimedean spiral from the centre, ~2 px between turns.
            let mut theta = 0.0f32;
            loop {
                let r = 0.35 * theta;
                if r > max_r {
                    break;
                }
                let x = (cx + r * theta.cos() * aspect.sqrt() - w as f32 / 2.0).round() as i32;
                let y = (cy + r * theta.sin() / aspect.sqrt() - h as f32 / 2.0).round() as i32;
                let rect = Rect {
                    x0: x,
                    y0: y,
                    x1: x + w,
                    y1: y + h,
                };
                let padded = Rect {
                    x0: x - pad,
                    y0: y - pad,
                    x1: x + w + pad,
                    y1: y + h + pad,
                };
                if rect.inside(&region) && !placed_boxes.iter().any(|p| p.intersects(&padded)) {
                    draw_glyphs(&mut img, &glyphs, &b, x, y, color);
                    placed_boxes.push(padded);
                    placed.push(Placed {
                        word: word.to_string(),
                        size,
                        x,
                        y,
                        w,
                        h,
                    });
                    done = true;
                    break;
                }
                // Constant arc length per step (~1.5 px), so outer turns are sampled as densely as inner ones.
                theta += (1.5 / r.max(1.5)).min(0.5);
            }
            if !done {
                size *= 0.85;
            }
        }
        if !done {
            tracing::debug!(word, "word cloud: no room left, word dropped");
        }
    }
    (img, placed)
}

/// Ink width and height of `text` at `size` px in the bundled font ((0, 0) for text without ink).
pub fn text_size(text: &str, size: f32) -> (i32, i32) {
    layout(&font(), size.max(1.0), text).map_or((0, 0), |(_, b)| ink_size(&b))
}

/// Draws `text` at `size` px with its ink box's top-left corner at (x, y), clipped to the image (figure labels);
/// returns the ink size.
pub fn draw_text(
    img: &mut RgbImage,
    text: &str,
    x: i32,
    y: i32,
    size: f32,
    color: [u8; 3],
) -> (i32, i32) {
    match layout(&font(), size.max(1.0), text) {
        Some((glyphs, b)) => {
            draw_glyphs(img, &glyphs, &b, x, y, Rgb(color));
            ink_size(&b)
        }
        None => (0, 0),
    }
}

/// Save `img` as PNG at `path` (atomically).
pub fn save_png(img: &RgbImage, path: &Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .with_context(|| format!("encoding PNG for {}", path.display()))?;
    crate::util::write_file_atomic(path, &bytes)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<(String, f64)> {
        [
            ("water", 0.30),
            ("bird", 0.12),
            ("lake", 0.08),
            ("waves", 0.06),
            ("rocks", 0.05),
            ("clouds", 0.05),
            ("sky", 0.04),
            ("boat", 0.03),
            ("ocean", 0.03),
            ("standing", 0.02),
            ("flying", 0.02),
            ("white", 0.02),
            ("shore", 0.02),
            ("beach", 0.015),
            ("blue", 0.015),
            ("large", 0.01),
            ("pond", 0.01),
            ("reeds", 0.01),
            ("duck", 0.01),
            ("swimming", 0.01),
        ]
        .iter()
        .map(|(w, f)| (w.to_string(), *f))
        .collect()
    }

    #[test]
    fn bundled_font_parses() {
        let f = font();
        assert!(f.glyph_id('W').0 != 0);
    }

    #[test]
    fn layout_has_no_overlaps_and_is_deterministic() {
        let hl: HashSet<String> = ["bird".to_string()].into();
        let opts = CloudOptions {
            title: Some("waterbird · train".into()),
            ..CloudOptions::default()
        };
        let (img, placed) = render_with_layout(&sample(), &hl, &opts);
        assert_eq!(img.dimensions(), (opts.width, opts.height));
        assert_eq!(placed.len(), sample().len(), "every word fits this canvas");
        // Heavier words are never smaller.
        for pair in placed.windows(2) {
            assert!(pair[0].size >= pair[1].size, "{pair:?}");
        }
        for (i, a) in placed.iter().enumerate() {
            assert!(
                a.x >= 0
                    && a.y >= 0
                    && a.x + a.w <= opts.width as i32
                    && a.y + a.h <= opts.height as i32
            );
            for b in &placed[i + 1..] {
                let overlap =
                    a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
                assert!(!overlap, "{a:?} overlaps {b:?}");
            }
        }
        let (img2, placed2) = render_with_layout(&sample(), &hl, &opts);
        assert_eq!(placed, placed2);
        assert!(img == img2);
    }

    #[test]
    fn highlight_is_red_and_others_grey() {
        let hl: HashSet<String> = ["Bird".to_string()].into();
        let opts = CloudOptions::default();
        let (img, placed) = render_with_layout(&sample(), &hl, &opts);
        let in_box = |p: &Placed| {
            let mut red = 0;
            let mut grey = 0;
            for y in p.y..p.y + p.h {
                for x in p.x..p.x + p.w {
                    let Rgb([r, g, b]) = *img.get_pixel(x as u32, y as u32);
                    if r > 150 && g < 100 && b < 100 {
                        red += 1;
                    } else if r == g && g == b && r < 200 {
                        grey += 1;
                    }
                }
            }
            (red, grey)
        };
        let bird = placed.iter().find(|p| p.word == "bird").unwrap();
        let water = placed.iter().find(|p| p.word == "water").unwrap();
        let (red, grey) = in_box(bird);
        assert!(red > 20 && grey == 0, "bird: red {red}, grey {grey}");
        let (red, grey) = in_box(water);
        assert!(red == 0 && grey > 20, "water: red {red}, grey {grey}");
    }

    #[test]
    fn degenerate_inputs() {
        let opts = CloudOptions::default();
        let (img, placed) = render_with_layout(&[], &HashSet::new(), &opts);
        assert!(placed.is_empty());
        assert!(img.pixels().all(|p| p.0 == opts.background));
        let odd = vec![
            ("nan".to_string(), f64::NAN),
            ("neg".to_string(), -1.0),
            ("   ".to_string(), 1.0),
            ("ok".to_string(), 1.0),
        ];
        let (_, placed) = render_with_layout(&odd, &HashSet::new(), &opts);
        assert_eq!(
            placed.iter().map(|p| p.word.as_str()).collect::<Vec<_>>(),
            vec!["ok"]
        );
        // A tiny canvas drops what does not fit rather than failing.
        let tiny = CloudOptions {
            width: 40,
            height: 20,
            ..CloudOptions::default()
        };
        let (img, _) = render_with_layout(&sample(), &HashSet::new(), &tiny);
        assert_eq!(img.dimensions(), (40, 20));
    }

    /// Writes the committed example figure: `cargo test --release --lib text::wordcloud -- --ignored`.
    #[test]
    #[ignore]
    fn write_example_figure() {
        let hl: HashSet<String> = ["bird".to_string()].into();
        let opts = CloudOptions {
            title: Some("Example: waterbird images, dominant words".into()),
            ..CloudOptions::default()
        };
        let mut words = sample();
        let more = [
            "nest",
            "seagull",
            "gull",
            "feathers",
            "wings",
            "beak",
            "long",
            "neck",
            "grey",
            "dock",
            "pier",
            "sand",
            "sunset",
            "horizon",
            "harbor",
            "waterfront",
            "tide",
            "calm",
            "ripples",
            "shallow",
        ];
        words.extend(
            more.iter()
                .enumerate()
                .map(|(i, w)| (w.to_string(), 0.009 - 0.0003 * i as f64)),
        );
        let img = render(&words, &hl, &opts);
        let p =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/figures/wordcloud-example.png");
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        save_png(&img, &p).unwrap();
    }
}
