//! Backgrounds of the synthetic Waterbirds scene: three land places (forest, bamboo, field) and three water places
//! (ocean, lake, pond), painted per pixel from value noise plus a few random shapes, one painter per place.
//!
//! The random draws of one background, in order: the [`Style`] (noise seed, brightness, hue), then the painter's own.
use super::{LAND, WATER};
use crate::data::draw::{cap, ell, fbm, jit, mix, rgb, scale, value_noise, Canvas, Rgb, Shape};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::f32::consts::PI;

/// Background sub-types; the first three are land, the last three water.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Background {
    Forest,
    Bamboo,
    Field,
    Ocean,
    Lake,
    Pond,
}

impl Background {
    pub const ALL: [Background; 6] = [
        Background::Forest,
        Background::Bamboo,
        Background::Field,
        Background::Ocean,
        Background::Lake,
        Background::Pond,
    ];

    pub fn place(self) -> i64 {
        match self {
            Background::Forest | Background::Bamboo | Background::Field => LAND,
            _ => WATER,
        }
    }

    pub fn of_place(place: i64) -> [Background; 3] {
        if place == LAND {
            [Background::Forest, Background::Bamboo, Background::Field]
        } else {
            [Background::Ocean, Background::Lake, Background::Pond]
        }
    }

    /// Places365-style folder used in `place_filename` (`/o/ocean/00001234.jpg`).
    pub fn places_dir(self) -> &'static str {
        match self {
            Background::Forest => "/f/forest/broadleaf",
            Background::Bamboo => "/b/bamboo_forest",
            Background::Field => "/f/field/wild",
            Background::Ocean => "/o/ocean",
            Background::Lake => "/l/lake/natural",
            Background::Pond => "/p/pond",
        }
    }

    pub fn has_sky(self) -> bool {
        matches!(
            self,
            Background::Field | Background::Ocean | Background::Lake
        )
    }

    /// Noun phrases for captions; every one names the place with a land or water noun.
    pub fn phrases(self) -> &'static [&'static str] {
        match self {
            Background::Forest => &[
                "a forest",
                "the woods",
                "a forest of tall trees",
                "a dark forest",
            ],
            Background::Bamboo => &[
                "a bamboo forest",
                "a bamboo grove",
                "tall bamboo",
                "a green bamboo forest",
            ],
            Background::Field => &[
                "a field",
                "a grassy meadow",
                "a green field",
                "a field of grass",
            ],
            Background::Ocean => &["the ocean", "the sea", "the open sea", "ocean waves"],
            Background::Lake => &[
                "a lake",
                "a calm lake",
                "the water of a lake",
                "a lake near the shore",
            ],
            Background::Pond => &[
                "a pond",
                "a pond with lily pads",
                "green pond water",
                "a small pond",
            ],
        }
    }
}

/// The random style every painted background shares: a noise seed, a brightness and a hue shift applied to every
/// colour ([`Style::tint`]), and a sky gradient from `top` to `bottom` (tinted too).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Style {
    pub noise: u64,
    bright: f32,
    hue: f32,
    sky_top: Rgb,
    sky_bot: Rgb,
}

impl Style {
    /// Draws the noise seed, the brightness and the hue, in this order.
    pub fn sample(rng: &mut ChaCha8Rng, sky_top: Rgb, sky_bot: Rgb) -> Style {
        let noise: u64 = rng.gen();
        let bright = jit(rng, 0.12);
        let hue = rng.gen_range(-0.06f32..=0.06);
        let mut s = Style {
            noise,
            bright,
            hue,
            sky_top,
            sky_bot,
        };
        s.sky_top = s.tint(sky_top);
        s.sky_bot = s.tint(sky_bot);
        s
    }

    /// `col` shifted towards red or blue by the hue and scaled by the brightness.
    pub fn tint(&self, col: Rgb) -> Rgb {
        scale([col[0] + self.hue, col[1], col[2] - self.hue], self.bright)
    }

    /// The sky colour at row `y` for a sky that ends at row `horizon`.
    pub fn sky(&self, y: f32, horizon: f32) -> Rgb {
        mix(self.sky_top, self.sky_bot, (y / horizon).clamp(0.0, 1.0))
    }
}

/// Paints a background of `kind` on a `w`x`h` canvas. `strength` in [0, 1] pulls it towards flat grey (1 = full
/// colour and texture): the knob for how easy the spurious feature is. Returns the horizon row (sky above) if any.
pub fn paint_background(
    kind: Background,
    w: usize,
    h: usize,
    strength: f32,
    rng: &mut ChaCha8Rng,
) -> (Canvas, Option<f32>) {
    let mut c = Canvas::new(w, h, [0.5; 3]);
    let t = Style::sample(rng, rgb(120, 170, 225), rgb(200, 225, 245));
    let horizon = match kind {
        Background::Forest => forest(&mut c, &t, rng),
        Background::Bamboo => bamboo(&mut c, &t, rng),
        Background::Field => field(&mut c, &t, rng),
        Background::Ocean => ocean(&mut c, &t, rng),
        Background::Lake => lake(&mut c, &t, rng),
        Background::Pond => pond(&mut c, &t, rng),
    };
    fade(&mut c, strength);
    (c, horizon)
}

/// Pulls every pixel towards grey 0.5 by `strength` (1 = unchanged).
fn fade(c: &mut Canvas, strength: f32) {
    if strength < 1.0 {
        let k = strength.max(0.0);
        for v in c.px.iter_mut() {
            *v = 0.5 + (*v - 0.5) * k;
        }
    }
}

/// A broadleaf forest: dark-to-light green noise, tree trunks, a ground strip.
fn forest(c: &mut Canvas, t: &Style, rng: &mut ChaCha8Rng) -> Option<f32> {
    let nseed = t.noise;
    let (w, h) = (c.w, c.h);
    let (wf, hf) = (c.w as f32, c.h as f32);
    let dark = t.tint(rgb(30, 70, 30));
    let light = t.tint(rgb(90, 150, 60));
    let f = wf / 5.0;
    c.paint(|x, y| {
        let n = fbm(nseed, x / f, y / f);
        mix(dark, light, n)
    });
    let trunks = rng.gen_range(3..=6);
    for _ in 0..trunks {
        let x = rng.gen_range(0.0..wf);
        let tw = rng.gen_range(0.025..0.06) * wf;
        let col = t.tint(mix(rgb(70, 45, 25), rgb(110, 80, 50), rng.gen()));
        c.fill(
            &cap(
                (x, -2.0),
                (x + rng.gen_range(-0.05..0.05) * wf, hf + 2.0),
                tw,
                tw * 1.2,
            ),
            col,
        );
    }
    let ground = rng.gen_range(0.8..0.9) * hf;
    let g = t.tint(rgb(80, 70, 35));
    let g2 = t.tint(rgb(60, 95, 35));
    let f2 = wf / 10.0;
    for y in (ground as usize).min(h)..h {
        for x in 0..w {
            let n = value_noise(nseed ^ 7, x as f32 / f2, y as f32 / f2);
            c.set(x, y, mix(g, g2, n));
        }
    }
    None
}

/// A bamboo forest: green noise, jointed stalks, leaves.
fn bamboo(c: &mut Canvas, t: &Style, rng: &mut ChaCha8Rng) -> Option<f32> {
    let nseed = t.noise;
    let (wf, hf) = (c.w as f32, c.h as f32);
    let bg1 = t.tint(rgb(170, 200, 110));
    let bg2 = t.tint(rgb(110, 160, 80));
    let f = wf / 4.0;
    c.paint(|x, y| mix(bg1, bg2, fbm(nseed, x / f, y / f)));
    let stalks = rng.gen_range(6..=10);
    for _ in 0..stalks {
        let x = rng.gen_range(0.0..wf);
        let sw = rng.gen_range(0.02..0.04) * wf;
        let col = t.tint(mix(rgb(60, 130, 40), rgb(140, 180, 60), rng.gen()));
        c.fill(&cap((x, -2.0), (x, hf + 2.0), sw, sw), col);
        let gap = rng.gen_range(0.15..0.25) * hf;
        let mut y = rng.gen_range(0.0..gap);
        while y < hf {
            c.fill(
                &cap((x - sw, y), (x + sw, y), sw * 0.25, sw * 0.25),
                scale(col, 0.6),
            );
            y += gap;
        }
    }
    for _ in 0..rng.gen_range(6..14) {
        let p = (rng.gen_range(0.0..wf), rng.gen_range(0.0..hf));
        let a = rng.gen_range(-PI..PI);
        c.fill(&ell(p, 0.07 * wf, 0.015 * wf, a), t.tint(rgb(70, 140, 50)));
    }
    None
}

/// A field: sky over a grass meadow, a distant tree line, blades of grass; returns the horizon.
fn field(c: &mut Canvas, t: &Style, rng: &mut ChaCha8Rng) -> Option<f32> {
    let nseed = t.noise;
    let (w, h) = (c.w, c.h);
    let (wf, hf) = (c.w as f32, c.h as f32);
    let hz = rng.gen_range(0.25..0.45) * hf;
    let g1 = t.tint(rgb(110, 170, 60));
    let g2 = t.tint(rgb(190, 190, 90));
    let f = wf / 4.0;
    c.paint(|x, y| {
        if y < hz {
            t.sky(y, hz)
        } else {
            mix(g1, g2, fbm(nseed, x / f, y / f))
        }
    });
    // Distant tree line at the horizon.
    let tl = t.tint(rgb(50, 90, 45));
    for x in 0..w {
        let th = (0.03 + 0.05 * value_noise(nseed ^ 3, x as f32 / (wf / 8.0), 0.0)) * hf;
        for y in ((hz - th).max(0.0) as usize)..(hz as usize).min(h) {
            c.set(x, y, tl);
        }
    }
    for _ in 0..(60 * w * h / (128 * 128)).max(20) {
        let x = rng.gen_range(0.0..wf);
        let y = rng.gen_range(hz..hf);
        let len = (0.02 + 0.04 * (y - hz) / (hf - hz)) * hf;
        c.fill(
            &cap(
                (x, y),
                (x + rng.gen_range(-0.3..0.3) * len, y - len),
                0.006 * wf,
                0.003 * wf,
            ),
            t.tint(rgb(70, 120, 40)),
        );
    }
    Some(hz)
}

/// The open sea: sky over deep water with wave crests; returns the horizon.
fn ocean(c: &mut Canvas, t: &Style, rng: &mut ChaCha8Rng) -> Option<f32> {
    let nseed = t.noise;
    let (wf, hf) = (c.w as f32, c.h as f32);
    let hz = rng.gen_range(0.2..0.4) * hf;
    let deep = t.tint(rgb(20, 60, 130));
    let near = t.tint(rgb(40, 110, 175));
    let freq = rng.gen_range(0.25..0.45) * 128.0 / wf;
    c.paint(|x, y| {
        if y < hz {
            return t.sky(y, hz);
        }
        let d = (y - hz) / (hf - hz);
        let base = mix(near, deep, 1.0 - d * 0.8);
        let wob = fbm(nseed, x / (wf / 6.0), y / (wf / 20.0)) * 6.0;
        let wave = ((y * freq * (1.0 + 2.0 * (1.0 - d)) + wob).sin() * 0.5 + 0.5).powf(6.0);
        mix(base, rgb(225, 240, 250), wave * 0.55)
    });
    Some(hz)
}

/// A lake: sky, a wooded shore and rippled water that reflects it; returns the horizon.
fn lake(c: &mut Canvas, t: &Style, rng: &mut ChaCha8Rng) -> Option<f32> {
    let nseed = t.noise;
    let (wf, hf) = (c.w as f32, c.h as f32);
    let hz = rng.gen_range(0.25..0.45) * hf;
    let water1 = t.tint(rgb(60, 120, 150));
    let water2 = t.tint(rgb(90, 150, 175));
    let shore = t.tint(rgb(45, 85, 45));
    let band = rng.gen_range(0.06..0.12) * hf;
    c.paint(|x, y| {
        let top = hz - band * (0.5 + value_noise(nseed ^ 5, x / (wf / 10.0), 0.0));
        if y < top {
            t.sky(y, top)
        } else if y < hz {
            shore
        } else {
            let d = y - hz;
            let ripple =
                ((y * 0.9 * 128.0 / wf + fbm(nseed, x / (wf / 5.0), y / (wf / 25.0)) * 5.0).sin()
                    * 0.5
                    + 0.5)
                    .powf(8.0);
            // A dark reflection of the shore just below it.
            let refl = (1.0 - d / band).clamp(0.0, 1.0) * 0.6;
            let base = mix(
                water1,
                water2,
                fbm(nseed ^ 9, x / (wf / 3.0), y / (wf / 6.0)),
            );
            mix(mix(base, shore, refl), rgb(210, 230, 240), ripple * 0.4)
        }
    });
    Some(hz)
}

/// Pond water seen from above: ripples and lily pads.
fn pond(c: &mut Canvas, t: &Style, rng: &mut ChaCha8Rng) -> Option<f32> {
    let nseed = t.noise;
    let (wf, hf) = (c.w as f32, c.h as f32);
    let w1 = t.tint(rgb(40, 90, 110));
    let w2 = t.tint(rgb(70, 120, 120));
    c.paint(|x, y| {
        let ripple =
            ((y * 0.7 * 128.0 / wf + fbm(nseed, x / (wf / 4.0), y / (wf / 4.0)) * 8.0).sin() * 0.5
                + 0.5)
                .powf(10.0);
        mix(
            mix(w1, w2, fbm(nseed ^ 1, x / (wf / 3.0), y / (wf / 3.0))),
            rgb(180, 210, 215),
            ripple * 0.35,
        )
    });
    for _ in 0..rng.gen_range(3..8) {
        let p = (rng.gen_range(0.0..wf), rng.gen_range(0.0..hf));
        let r = rng.gen_range(0.04..0.08) * wf;
        let col = t.tint(mix(rgb(50, 120, 40), rgb(100, 160, 60), rng.gen()));
        c.fill(&ell(p, r, r * 0.7, 0.0), col);
        let a = rng.gen_range(-PI..PI);
        c.fill(
            &Shape::Polygon(vec![
                p,
                (p.0 + r * 1.1 * a.cos(), p.1 + r * 1.1 * a.sin()),
                (
                    p.0 + r * 1.1 * (a + 0.5).cos(),
                    p.1 + r * 1.1 * (a + 0.5).sin(),
                ),
            ]),
            w1,
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn painted(kind: Background, strength: f32, seed: u64) -> (Canvas, Option<f32>) {
        paint_background(kind, 48, 40, strength, &mut ChaCha8Rng::seed_from_u64(seed))
    }

    #[test]
    fn every_background_fills_the_image_with_texture() {
        for kind in Background::ALL {
            let (c, horizon) = painted(kind, 1.0, 3);
            assert_eq!((c.w, c.h, c.px.len()), (48, 40, 48 * 40 * 3));
            assert!(c.px.iter().all(|v| (0.0..=1.0).contains(v)), "{kind:?}");
            assert!(c.mask.iter().all(|&m| m == 0.0), "{kind:?} writes no mask");
            // Not the grey it starts from: every row carries colour and varies.
            for row in c.px.chunks(48 * 3) {
                let (lo, hi) = row
                    .iter()
                    .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
                assert!(hi - lo > 0.02, "{kind:?} has a flat row");
            }
            assert_eq!(horizon.is_some(), kind.has_sky(), "{kind:?}");
            if let Some(hz) = horizon {
                assert!(hz > 0.0 && hz < 40.0, "{kind:?} horizon {hz}");
            }
        }
    }

    #[test]
    fn strength_zero_is_flat_grey_and_the_seed_fixes_the_painting() {
        let (flat, _) = painted(Background::Ocean, 0.0, 1);
        assert!(flat.px.iter().all(|&v| v == 0.5));
        for kind in Background::ALL {
            assert_eq!(painted(kind, 0.7, 4).0.px, painted(kind, 0.7, 4).0.px);
            assert_ne!(painted(kind, 1.0, 4).0.px, painted(kind, 1.0, 5).0.px);
        }
    }

    #[test]
    fn places_split_three_and_three() {
        for place in [LAND, WATER] {
            assert!(Background::of_place(place)
                .iter()
                .all(|b| b.place() == place));
        }
    }
}
