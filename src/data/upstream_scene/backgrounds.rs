//! The seven backgrounds the upstream corpus adds to the six Waterbirds places (those are painted by
//! [`paint_background`]): desert, snow, beach, mountain, street, sky and an indoor wall, one painter each.
//!
//! The random draws of one background, in order: the [`Style`] (noise seed, brightness, hue), then the painter's own.
use super::UpstreamBackground;
use crate::data::draw::{circle, ell, fbm, mix, rect, rgb, scale, value_noise, Canvas};
use crate::data::scene::background::Style;
use crate::data::scene::paint_background;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::f32::consts::PI;

/// Paints a background on a `w` x `h` canvas.
pub fn paint(kind: UpstreamBackground, w: usize, h: usize, rng: &mut ChaCha8Rng) -> Canvas {
    if let Some(place) = kind.waterbirds_place() {
        return paint_background(place, w, h, 1.0, rng).0;
    }
    let mut c = Canvas::new(w, h, [0.5; 3]);
    let t = Style::sample(rng, rgb(115, 165, 225), rgb(205, 225, 245));
    match kind {
        UpstreamBackground::Desert => desert(&mut c, &t, rng),
        UpstreamBackground::Snow => snow(&mut c, &t, rng),
        UpstreamBackground::Beach => beach(&mut c, &t, rng),
        UpstreamBackground::Mountain => mountain(&mut c, &t, rng),
        UpstreamBackground::Street => street(&mut c, &t, rng),
        UpstreamBackground::Sky => sky(&mut c, &t, rng),
        UpstreamBackground::Wall => wall(&mut c, &t, rng),
        _ => unreachable!("Waterbirds places are painted by scene::paint_background"),
    }
    c
}

/// A desert: sky over sand dunes with wind ridges.
fn desert(c: &mut Canvas, t: &Style, rng: &mut ChaCha8Rng) {
    let nseed = t.noise;
    let (wf, hf) = (c.w as f32, c.h as f32);
    let hz = rng.gen_range(0.25..0.45) * hf;
    let light = t.tint(rgb(232, 200, 140));
    let dark = t.tint(rgb(190, 145, 90));
    let freq = rng.gen_range(2.0..4.0);
    c.paint(|x, y| {
        if y < hz {
            return t.sky(y, hz);
        }
        let d = (y - hz) / (hf - hz);
        let ridge = ((x / wf * freq + fbm(nseed, x / (wf / 4.0), y / (wf / 6.0)) * 2.0 + d * 5.0)
            * PI)
            .sin();
        mix(light, dark, (ridge * 0.5 + 0.5).powf(3.0) * 0.8)
    });
}

/// A snowfield: grey-blue hills under a pale sky, snow, snowflakes.
fn snow(c: &mut Canvas, t: &Style, rng: &mut ChaCha8Rng) {
    let nseed = t.noise;
    let (wf, hf) = (c.w as f32, c.h as f32);
    let hz = rng.gen_range(0.3..0.5) * hf;
    let hills = t.tint(rgb(150, 165, 190));
    let snow1 = t.tint(rgb(245, 248, 252));
    let snow2 = t.tint(rgb(200, 212, 230));
    c.paint(|x, y| {
        let top = hz - (0.05 + 0.12 * fbm(nseed ^ 3, x / (wf / 3.0), 0.0)) * hf;
        if y < top {
            mix(rgb(200, 210, 225), rgb(230, 235, 242), y / top)
        } else if y < hz {
            hills
        } else {
            mix(
                snow1,
                snow2,
                fbm(nseed, x / (wf / 5.0), y / (wf / 8.0)) * 0.7,
            )
        }
    });
    for _ in 0..rng.gen_range(15..40) {
        let p = (rng.gen_range(0.0..wf), rng.gen_range(0.0..hf));
        c.fill(
            &circle(p, rng.gen_range(0.006..0.015) * wf),
            rgb(252, 252, 255),
        );
    }
}

/// A beach: sky, the sea with waves, surf and wet then dry sand.
fn beach(c: &mut Canvas, t: &Style, rng: &mut ChaCha8Rng) {
    let nseed = t.noise;
    let (wf, hf) = (c.w as f32, c.h as f32);
    let hz = rng.gen_range(0.2..0.35) * hf;
    let shore = hz + rng.gen_range(0.15..0.3) * hf;
    let sea = t.tint(rgb(40, 120, 180));
    let sand = t.tint(rgb(230, 210, 160));
    let wet = t.tint(rgb(190, 165, 120));
    c.paint(|x, y| {
        let edge = shore + (fbm(nseed, x / (wf / 4.0), 0.0) - 0.5) * 0.08 * hf;
        if y < hz {
            t.sky(y, hz)
        } else if y < edge {
            let wave = ((y * 0.6 * 128.0 / wf
                + fbm(nseed ^ 5, x / (wf / 6.0), y / (wf / 20.0)) * 5.0)
                .sin()
                * 0.5
                + 0.5)
                .powf(6.0);
            mix(sea, rgb(230, 240, 250), wave * 0.5)
        } else if y < edge + 0.025 * hf {
            rgb(245, 248, 250)
        } else {
            let t = ((y - edge) / (0.15 * hf)).clamp(0.0, 1.0);
            mix(
                mix(wet, sand, t),
                scale(sand, 0.9),
                fbm(nseed ^ 9, x / (wf / 8.0), y / (wf / 8.0)) * 0.5,
            )
        }
    });
}

/// Mountains: a far snow-capped range, a near range and a grass strip in front.
fn mountain(c: &mut Canvas, t: &Style, rng: &mut ChaCha8Rng) {
    let nseed = t.noise;
    let (wf, hf) = (c.w as f32, c.h as f32);
    let far = t.tint(rgb(120, 135, 165));
    let near = t.tint(rgb(85, 80, 75));
    let grass = t.tint(rgb(90, 130, 60));
    let base_far = rng.gen_range(0.25..0.4) * hf;
    let base_near = base_far + rng.gen_range(0.12..0.22) * hf;
    let snow_line = rng.gen_range(0.06..0.12) * hf;
    let ground = rng.gen_range(0.75..0.88) * hf;
    c.paint(|x, y| {
        let peak_far = base_far - (value_noise(nseed, x / (wf / 4.0), 0.0) * 0.25 * hf).abs();
        let peak_near = base_near - value_noise(nseed ^ 1, x / (wf / 3.0), 0.0) * 0.2 * hf;
        if y >= ground {
            mix(
                grass,
                scale(grass, 0.7),
                fbm(nseed ^ 2, x / (wf / 6.0), y / (wf / 6.0)),
            )
        } else if y >= peak_near {
            mix(
                near,
                scale(near, 0.75),
                fbm(nseed ^ 4, x / (wf / 5.0), y / (wf / 5.0)),
            )
        } else if y >= peak_far {
            if y < peak_far + snow_line {
                rgb(240, 242, 248)
            } else {
                far
            }
        } else {
            t.sky(y, base_far)
        }
    });
}

/// A street: sky, a row of buildings with lit and dark windows, a pavement, a road with lane marks.
fn street(c: &mut Canvas, t: &Style, rng: &mut ChaCha8Rng) {
    let nseed = t.noise;
    let (wf, hf) = (c.w as f32, c.h as f32);
    let street = rng.gen_range(0.62..0.75) * hf;
    let road = t.tint(rgb(80, 80, 85));
    c.paint(|x, y| {
        if y < street {
            t.sky(y, street)
        } else if y < street + 0.05 * hf {
            rgb(175, 170, 165)
        } else {
            mix(
                road,
                scale(road, 0.8),
                fbm(nseed, x / (wf / 10.0), y / (wf / 10.0)),
            )
        }
    });
    let walls = [
        rgb(150, 85, 65),
        rgb(170, 165, 150),
        rgb(110, 110, 120),
        rgb(200, 180, 140),
        rgb(90, 100, 110),
    ];
    let mut x = -rng.gen_range(0.0..0.1) * wf;
    while x < wf {
        let bw = rng.gen_range(0.15..0.3) * wf;
        let top = street - rng.gen_range(0.25..0.6) * hf;
        let col = t.tint(walls[rng.gen_range(0..walls.len())]);
        c.fill(&rect(x, top, x + bw, street), col);
        let win = rgb(235, 220, 150);
        let (gx, gy) = (0.06 * wf, 0.08 * hf);
        let mut wy = top + 0.03 * hf;
        while wy + 0.04 * hf < street - 0.02 * hf {
            let mut wx = x + 0.03 * wf;
            while wx + 0.03 * wf < x + bw - 0.02 * wf {
                let lit = if rng.gen_bool(0.5) {
                    win
                } else {
                    scale(col, 0.5)
                };
                c.fill(&rect(wx, wy, wx + 0.03 * wf, wy + 0.04 * hf), lit);
                wx += gx;
            }
            wy += gy;
        }
        x += bw + rng.gen_range(0.0..0.04) * wf;
    }
    let lane = street + 0.05 * hf + (hf - street) * 0.5;
    let mut lx = rng.gen_range(0.0..0.1) * wf;
    while lx < wf {
        c.fill(
            &rect(lx, lane - 0.01 * hf, lx + 0.08 * wf, lane + 0.01 * hf),
            rgb(235, 235, 230),
        );
        lx += 0.16 * wf;
    }
}

/// Open sky: a gradient, perhaps the sun, clouds.
fn sky(c: &mut Canvas, t: &Style, rng: &mut ChaCha8Rng) {
    let (wf, hf) = (c.w as f32, c.h as f32);
    let top = t.tint(rgb(70, 130, 210));
    let bot = t.tint(rgb(190, 215, 240));
    c.paint(|_, y| mix(top, bot, y / hf));
    if rng.gen_bool(0.4) {
        let p = (rng.gen_range(0.1..0.9) * wf, rng.gen_range(0.1..0.4) * hf);
        c.fill(&circle(p, 0.08 * wf), rgb(255, 245, 200));
    }
    for _ in 0..rng.gen_range(2..6) {
        let p = (rng.gen_range(0.0..wf), rng.gen_range(0.1..0.9) * hf);
        let r = rng.gen_range(0.05..0.1) * wf;
        let g = rng.gen_range(225..252) as u8;
        for k in 0..4 {
            let off = (k as f32 - 1.5) * r * 0.8;
            c.fill(
                &ell((p.0 + off, p.1 - (k % 2) as f32 * r * 0.3), r, r * 0.6, 0.0),
                rgb(g, g, g),
            );
        }
    }
}

/// An indoor wall over a wooden floor, plain or striped, perhaps with a framed picture.
fn wall(c: &mut Canvas, t: &Style, rng: &mut ChaCha8Rng) {
    let nseed = t.noise;
    let (wf, hf) = (c.w as f32, c.h as f32);
    let walls = [
        rgb(225, 210, 180),
        rgb(190, 210, 190),
        rgb(185, 200, 220),
        rgb(225, 190, 190),
        rgb(200, 200, 200),
    ];
    let wall = t.tint(walls[rng.gen_range(0..walls.len())]);
    let floor = rng.gen_range(0.72..0.88) * hf;
    let wood = t.tint(rgb(140, 95, 55));
    let stripes = rng.gen_bool(0.5);
    let period = rng.gen_range(0.06..0.12) * wf;
    c.paint(|x, y| {
        if y >= floor + 0.02 * hf {
            let plank = ((y - floor) / (0.05 * hf)).floor();
            let grain = fbm(nseed ^ plank as u64, x / (wf / 3.0), y / (wf / 30.0));
            let seam = ((y - floor) % (0.05 * hf)) < 0.006 * hf;
            if seam {
                scale(wood, 0.5)
            } else {
                mix(wood, scale(wood, 0.75), grain)
            }
        } else if y >= floor {
            rgb(245, 245, 240)
        } else if stripes && (x / period).floor() as i64 % 2 == 0 {
            scale(wall, 0.92)
        } else {
            mix(
                wall,
                scale(wall, 0.95),
                fbm(nseed, x / (wf / 8.0), y / (wf / 8.0)),
            )
        }
    });
    if rng.gen_bool(0.5) {
        let (fx, fy) = (
            rng.gen_range(0.05..0.65) * wf,
            rng.gen_range(0.08..0.35) * hf,
        );
        let (fw, fh) = (
            rng.gen_range(0.15..0.3) * wf,
            rng.gen_range(0.12..0.25) * hf,
        );
        c.fill(&rect(fx, fy, fx + fw, fy + fh), rgb(90, 60, 35));
        c.fill(
            &rect(
                fx + 0.015 * wf,
                fy + 0.015 * hf,
                fx + fw - 0.015 * wf,
                fy + fh - 0.015 * hf,
            ),
            t.tint(rgb(120, 160, 190)),
        );
    }
}
