//! Compositing a sprite into a scene: sizing, rotating, mirroring and placing its parts in a fresh canvas whose
//! mask is the exact sprite mask ([`place_sprite`]), and covering its lower part with an occluder that clears the
//! mask under it ([`occlude`]).
use crate::data::draw::{ell, rgb, Canvas, Rgb, Shape, Similarity};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

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
/// `extent` pixels, at a random position inside the `w`x`h` canvas; returns the canvas.
pub fn place_sprite(
    parts: &[(Shape, Rgb)],
    angle: f32,
    mirror: bool,
    extent: f32,
    w: usize,
    h: usize,
    rng: &mut ChaCha8Rng,
) -> Canvas {
    let (x0, y0, x1, y1) = sprite_bbox(parts, angle, mirror);
    let s = extent / (x1 - x0).max(y1 - y0).max(1e-3);
    let (bw, bh) = ((x1 - x0) * s, (y1 - y0) * s);
    // Keep the whole sprite inside the image (a small margin), anywhere else is allowed.
    let margin = 0.03 * w as f32;
    let free_x = (w as f32 - bw - 2.0 * margin).max(0.0);
    let free_y = (h as f32 - bh - 2.0 * margin).max(0.0);
    let left = margin + rng.gen_range(0.0..=1.0) * free_x;
    let top = margin + rng.gen_range(0.0..=1.0) * free_y;
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
    use crate::data::draw::circle;
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
