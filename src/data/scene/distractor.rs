//! Distractor objects of the synthetic Waterbirds scene (rocks, clouds, flowers, a boat): which fit which background,
//! how captions name them, and how they are painted behind the bird (marking the canvas mask with what they cover,
//! which the place mask excludes).
use super::background::Background;
use super::LAND;
use crate::data::draw::{cap, circle, ell, rgb, Canvas, Shape};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::f32::consts::PI;

/// Objects that may appear besides the bird.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Distractor {
    Rocks,
    Clouds,
    Flowers,
    Boat,
}

impl Distractor {
    pub const ALL: [Distractor; 4] = [
        Distractor::Rocks,
        Distractor::Clouds,
        Distractor::Flowers,
        Distractor::Boat,
    ];

    /// Whether the distractor can be drawn on this background (clouds need sky, boats open water, flowers land).
    pub fn fits(self, bg: Background) -> bool {
        match self {
            Distractor::Rocks => true,
            Distractor::Clouds => bg.has_sky(),
            Distractor::Flowers => bg.place() == LAND,
            Distractor::Boat => matches!(bg, Background::Ocean | Background::Lake),
        }
    }

    pub fn phrases(self) -> &'static [&'static str] {
        match self {
            Distractor::Rocks => &["with rocks", "near some rocks", "with a few grey rocks"],
            Distractor::Clouds => &[
                "under white clouds",
                "under a cloudy sky",
                "with clouds in the sky",
            ],
            Distractor::Flowers => &[
                "with flowers",
                "among small flowers",
                "with colorful flowers",
            ],
            Distractor::Boat => &[
                "with a boat",
                "with a sailboat in the distance",
                "near a small boat",
            ],
        }
    }

    pub fn noun(self) -> &'static str {
        match self {
            Distractor::Rocks => "rocks",
            Distractor::Clouds => "clouds",
            Distractor::Flowers => "flowers",
            Distractor::Boat => "boat",
        }
    }
}

/// Draws a distractor onto a background (behind any bird) and marks the pixels it covers in the canvas mask (the
/// background painters write no mask, so a background's mask is its distractors' coverage; compositing a sprite
/// replaces it with the sprite's).
pub fn paint_distractor(c: &mut Canvas, d: Distractor, horizon: Option<f32>, rng: &mut ChaCha8Rng) {
    let (wf, hf) = (c.w as f32, c.h as f32);
    match d {
        Distractor::Rocks => {
            for _ in 0..rng.gen_range(1..=3) {
                let r = rng.gen_range(0.05..0.1) * wf;
                let p = (rng.gen_range(0.0..wf), rng.gen_range(0.65..0.95) * hf);
                let g = rng.gen_range(90..150) as u8;
                c.fill_masked(
                    &ell(p, r, r * 0.6, rng.gen_range(-0.3..0.3)),
                    rgb(g, g, g.saturating_add(5)),
                );
                c.fill_masked(
                    &ell((p.0 - r * 0.3, p.1 - r * 0.25), r * 0.35, r * 0.15, 0.0),
                    rgb(g + 40, g + 40, g + 45),
                );
            }
        }
        Distractor::Clouds => {
            let hz = horizon.unwrap_or(0.3 * hf);
            for _ in 0..rng.gen_range(1..=2) {
                let p = (rng.gen_range(0.0..wf), rng.gen_range(0.2..0.6) * hz);
                let r = rng.gen_range(0.06..0.1) * wf;
                for k in 0..4 {
                    let off = (k as f32 - 1.5) * r * 0.8;
                    c.fill_masked(
                        &ell((p.0 + off, p.1 - (k % 2) as f32 * r * 0.3), r, r * 0.6, 0.0),
                        rgb(248, 248, 250),
                    );
                }
            }
        }
        Distractor::Flowers => {
            for _ in 0..rng.gen_range(4..9) {
                let p = (rng.gen_range(0.0..wf), rng.gen_range(0.55..0.98) * hf);
                let r = rng.gen_range(0.018..0.03) * wf;
                let petals = [
                    rgb(230, 60, 90),
                    rgb(250, 250, 250),
                    rgb(240, 200, 40),
                    rgb(160, 80, 200),
                ];
                let col = petals[rng.gen_range(0..petals.len())];
                for k in 0..5 {
                    let a = k as f32 * 2.0 * PI / 5.0;
                    c.fill_masked(
                        &circle((p.0 + r * a.cos(), p.1 + r * a.sin()), r * 0.8),
                        col,
                    );
                }
                c.fill_masked(&circle(p, r * 0.6), rgb(240, 180, 30));
            }
        }
        Distractor::Boat => {
            let hz = horizon.unwrap_or(0.3 * hf);
            let bw = rng.gen_range(0.12..0.2) * wf;
            let x = rng.gen_range(0.0..wf - bw);
            let y = hz + rng.gen_range(0.02..0.12) * hf;
            let hull = [rgb(140, 60, 40), rgb(230, 230, 230), rgb(60, 60, 70)][rng.gen_range(0..3)];
            c.fill_masked(
                &Shape::Polygon(vec![
                    (x, y),
                    (x + bw, y),
                    (x + bw * 0.8, y + bw * 0.22),
                    (x + bw * 0.15, y + bw * 0.22),
                ]),
                hull,
            );
            c.fill_masked(
                &cap(
                    (x + bw * 0.5, y),
                    (x + bw * 0.5, y - bw * 0.9),
                    0.008 * wf,
                    0.008 * wf,
                ),
                rgb(80, 60, 40),
            );
            c.fill_masked(
                &Shape::Polygon(vec![
                    (x + bw * 0.52, y - bw * 0.85),
                    (x + bw * 0.52, y - bw * 0.1),
                    (x + bw * 0.95, y - bw * 0.1),
                ]),
                rgb(245, 245, 240),
            );
        }
    }
}

/// A random subset of distractors that fit `bg` (each with probability `p`).
pub fn sample_distractors(bg: Background, p: f64, rng: &mut ChaCha8Rng) -> Vec<Distractor> {
    Distractor::ALL
        .iter()
        .copied()
        .filter(|d| d.fits(bg) && rng.gen_bool(p))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn distractors_fit_their_places() {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        for bg in Background::ALL {
            for d in sample_distractors(bg, 1.0, &mut rng) {
                assert!(d.fits(bg), "{d:?} on {bg:?}");
            }
        }
        assert!(!Distractor::Boat.fits(Background::Pond));
        assert!(!Distractor::Flowers.fits(Background::Ocean));
        assert!(!Distractor::Clouds.fits(Background::Forest));
    }

    #[test]
    fn every_distractor_paints_something_and_masks_exactly_that() {
        for d in Distractor::ALL {
            let mut c = Canvas::new(64, 64, [0.5; 3]);
            paint_distractor(&mut c, d, Some(30.0), &mut ChaCha8Rng::seed_from_u64(1));
            assert!(c.px.iter().any(|&v| v != 0.5), "{d:?}");
            // No distractor colour is the flat grey 0.5, so the painted pixels are the masked ones.
            for (i, &m) in c.mask.iter().enumerate() {
                let painted = c.px[3 * i..3 * i + 3].iter().any(|&v| v != 0.5);
                assert_eq!(m > 0.0, painted, "{d:?} pixel {i}");
            }
        }
    }
}
