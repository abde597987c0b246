//! Compositing a sprite into a scene: sizing, rotating, mirroring and placing its parts in a fresh canvas whose
//! mask is the exact sprite mask ([`place_sprite`], [`place_sprite_with`] under a [`Placement`] rule), and covering
//! its lower part with an occluder that clears the mask under it ([`occlude`]).
use crate::data::draw::{ell, rgb, Canvas, Rgb, Shape, Similarity};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Where a sprite may land in the frame (config `placement: {kind: inside}` or
/// `placement: {kind: anywhere, max_cut: 0.3}`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Placement {
    /// The whole bounding box inside the frame with a 3 % margin, uniform over the free room (the original rule and
    /// the default). A struct variant so that `{kind: inside, max_cut: 0.3}` is refused, not silently read.
    Inside {},
    /// The bounding box's centre uniform over the positions at which at most `max_cut` (in [0, 0.5]) of its width
    /// and of its height leave the frame: sprites anywhere, some partly cut by the border.
    Anywhere { max_cut: f64 },
}

impl Default for Placement {
    fn default() -> Self {
        Placement::Inside {}
    }
}

impl Placement {
    /// Checks the rule's parameters; the error names the field and its value.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Placement::Anywhere { max_cut } = *self {
            anyhow::ensure!(
                (0.0..=0.5).contains(&max_cut),
                "placement.max_cut must be in [0, 0.5], got {max_cut}"
            );
        }
        Ok(())
    }

    /// The top-left corner of a `bw`x`bh` box in a `w`x`h` frame (two uniform draws: x, then y).
    fn corner(self, bw: f32, bh: f32, w: usize, h: usize, rng: &mut ChaCha8Rng) -> (f32, f32) {
        let (wf, hf) = (w as f32, h as f32);
        match self {
            Placement::Inside {} => {
                let margin = 0.03 * wf;
                let free_x = (wf - bw - 2.0 * margin).max(0.0);
                let free_y = (hf - bh - 2.0 * margin).max(0.0);
                let left = margin + rng.gen_range(0.0..=1.0) * free_x;
                let top = margin + rng.gen_range(0.0..=1.0) * free_y;
                (left, top)
            }
            Placement::Anywhere { max_cut } => {
                // Centre c with at most max_cut * side outside: c in [side (0.5 - cut), frame - side (0.5 - cut)].
                let keep = 0.5 - max_cut as f32;
                let centre = |side: f32, frame: f32, u: f32| {
                    let lo = side * keep;
                    let hi = (frame - side * keep).max(lo);
                    lo + u * (hi - lo)
                };
                let cx = centre(bw, wf, rng.gen_range(0.0..=1.0));
                let cy = centre(bh, hf, rng.gen_range(0.0..=1.0));
                (cx - bw / 2.0, cy - bh / 2.0)
            }
        }
    }
}

/// Local-frame bounding box of a sprite under rotation/mirror (scale 1, no translation).
fn sprite_bbox(parts: &[(Shape, Rgb)], angle: f32, mirror: bool) -> (f32, f32, f32, f32) {
    let t = Similarity {
        scale: 1.0,
        angle,
        mirror,
        tx: 0.0,
        ty: 0.0,
    };
    parts
        .iter()
        .fold((f32::MAX, f32::MAX, f32::MIN, f32::MIN), |acc, (s, _)| {
            let b = t.shape(s).bbox();
            (
                acc.0.min(b.0),
                acc.1.min(b.1),
                acc.2.max(b.2),
                acc.3.max(b.3),
            )
        })
}

/// Draws `parts` into a fresh sprite canvas (mask = the sprite) so that the longer side of its bounding box is
/// `extent` pixels, at a random position inside the `w`x`h` canvas ([`Placement::Inside`]); returns the canvas.
pub fn place_sprite(
    parts: &[(Shape, Rgb)],
    angle: f32,
    mirror: bool,
    extent: f32,
    w: usize,
    h: usize,
    rng: &mut ChaCha8Rng,
) -> Canvas {
    place_sprite_with(
        parts,
        angle,
        mirror,
        extent,
        w,
        h,
        Placement::Inside {},
        rng,
    )
}

/// [`place_sprite`] with the position drawn by `placement` (the mask holds only the part inside the frame).
#[allow(clippy::too_many_arguments)]
pub fn place_sprite_with(
    parts: &[(Shape, Rgb)],
    angle: f32,
    mirror: bool,
    extent: f32,
    w: usize,
    h: usize,
    placement: Placement,
    rng: &mut ChaCha8Rng,
) -> Canvas {
    let (x0, y0, x1, y1) = sprite_bbox(parts, angle, mirror);
    let s = extent / (x1 - x0).max(y1 - y0).max(1e-3);
    let (bw, bh) = ((x1 - x0) * s, (y1 - y0) * s);
    let (left, top) = placement.corner(bw, bh, w, h, rng);
    let t = Similarity {
        scale: s,
        angle,
        mirror,
        tx: left - x0 * s,
        ty: top - y0 * s,
    };
    let mut c = Canvas::new(w, h, [0.0; 3]);
    for (shape, colour) in parts {
        c.fill_masked(&t.shape(shape), *colour);
    }
    c
}

/// Draws an occluder (a grass clump or a rock) over the lower part of a sprite and clears the mask under it.
pub fn occlude(scene: &mut Canvas, rng: &mut ChaCha8Rng) {
    // Bounding box of the visible sprite.
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for y in 0..scene.h {
        for x in 0..scene.w {
            if scene.mask[y * scene.w + x] > 0.0 {
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x);
                y1 = y1.max(y);
            }
        }
    }
    if x0 > x1 {
        return;
    }
    let (x0, y0, x1, y1) = (x0 as f32, y0 as f32, x1 as f32, y1 as f32);
    let cover = rng.gen_range(0.3..0.6);
    let top = y1 - (y1 - y0) * cover;
    let grey = rng.gen_range(90..140) as u8;
    let rock = rgb(grey, grey, grey + 5);
    let cx = (x0 + x1) / 2.0;
    let rx = (x1 - x0) * 0.75 + 2.0;
    scene.fill_occluding(
        &ell((cx, y1 + (y1 - top) * 0.2), rx, (y1 - top) * 1.2, 0.0),
        rock,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::draw::{circle, rect};
    use rand::SeedableRng;

    fn mask_pixels(mask: &[f32]) -> usize {
        mask.iter().filter(|&&m| m > 0.0).count()
    }

    #[test]
    fn a_placed_sprite_has_the_asked_extent_and_its_mask() {
        let parts = vec![(circle((0.0, 0.0), 0.5), rgb(200, 0, 0))];
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let c = place_sprite(&parts, 0.0, false, 20.0, 64, 48, &mut rng);
        // A disc of diameter 20 px: about pi * 10^2 mask pixels, all of them red.
        let n = mask_pixels(&c.mask);
        assert!((280..=350).contains(&n), "{n} mask pixels");
        for (i, &m) in c.mask.iter().enumerate() {
            if m > 0.0 {
                assert!(c.px[3 * i] > 0.7 && c.px[3 * i + 1] == 0.0);
            }
        }
    }

    /// A 20x10 px rectangle placed `draws` times in a 64x64 frame: for each, the visible share of its width and of
    /// its height, whether it touches the border, and its mask centroid.
    fn rect_placements(placement: Placement, draws: u64) -> Vec<(f32, f32, bool, (f32, f32))> {
        let parts = vec![(rect(-0.5, -0.25, 0.5, 0.25), rgb(0, 200, 0))];
        (0..draws)
            .map(|seed| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let c = place_sprite_with(&parts, 0.0, false, 20.0, 64, 64, placement, &mut rng);
                let (mut cols, mut rows) = (vec![false; 64], vec![false; 64]);
                let (mut sx, mut sy, mut n) = (0.0, 0.0, 0.0);
                for (i, &m) in c.mask.iter().enumerate() {
                    let (x, y) = (i % 64, i / 64);
                    if m > 0.0 {
                        cols[x] = true;
                        rows[y] = true;
                        sx += x as f32 + 0.5;
                        sy += y as f32 + 0.5;
                        n += 1.0;
                    }
                }
                let count = |v: &[bool]| v.iter().filter(|&&b| b).count() as f32;
                let touches = cols[0] || cols[63] || rows[0] || rows[63];
                (
                    count(&cols) / 20.0,
                    count(&rows) / 10.0,
                    touches,
                    (sx / n, sy / n),
                )
            })
            .collect()
    }

    #[test]
    fn inside_never_cuts_and_anywhere_cuts_at_most_max_cut_and_spreads() {
        for (vw, vh, touches, _) in rect_placements(Placement::Inside {}, 300) {
            // Whole (up to a pixel of rasterisation) and off the 3 % margin.
            assert!(vw >= 0.95 && vh >= 0.9 && !touches, "{vw} {vh}");
        }
        let any = rect_placements(Placement::Anywhere { max_cut: 0.3 }, 300);
        let mut quadrants = [0usize; 4];
        let mut cut = 0;
        for &(vw, vh, touches, (cx, cy)) in &any {
            // At most 30 % cut off each side (one pixel of rasterisation: 1/20 of the width, 1/10 of the height).
            assert!(vw >= 0.7 - 0.05 && vh >= 0.7 - 0.1, "{vw} {vh}");
            cut += (touches && (vw < 0.95 || vh < 0.9)) as usize;
            quadrants[(cx >= 32.0) as usize + 2 * (cy >= 32.0) as usize] += 1;
        }
        assert!(quadrants.iter().all(|&q| q > 40), "{quadrants:?}");
        // The centre is uniform over [6, 58] along x (cut when within 10 px of a side: 4/52 each side) and
        // [3, 61] along y (cut within 5 px: 2/58 each side): about 1 - (44/52)(54/58) = 21 % of draws are cut.
        assert!((30..=100).contains(&cut), "{cut} of 300 cut");
        // max_cut 0: anywhere, but never cut.
        for (vw, vh, _, _) in rect_placements(Placement::Anywhere { max_cut: 0.0 }, 100) {
            assert!(vw >= 0.95 && vh >= 0.9, "{vw} {vh}");
        }
        assert!(Placement::Anywhere { max_cut: 0.6 }.validate().is_err());
        assert!(Placement::Anywhere { max_cut: 0.5 }.validate().is_ok());
    }

    #[test]
    fn occlusion_clears_part_of_the_mask_and_never_adds_to_it() {
        let parts = vec![(circle((0.0, 0.0), 0.5), rgb(200, 0, 0))];
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let mut c = place_sprite(&parts, 0.0, false, 30.0, 64, 64, &mut rng);
        let before = c.mask.clone();
        occlude(&mut c, &mut rng);
        let after = mask_pixels(&c.mask);
        assert!(after > 0 && after < mask_pixels(&before), "{after}");
        assert!(c.mask.iter().zip(&before).all(|(a, b)| a <= b));
        // An empty canvas stays as it is.
        let mut empty = Canvas::new(8, 8, [0.2; 3]);
        occlude(&mut empty, &mut rng);
        assert!(empty.px.iter().all(|&v| v == 0.2));
    }
}
