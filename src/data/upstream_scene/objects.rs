//! The non-bird objects of the upstream corpus, one function per category: parts in the local frame (size ~1,
//! y down) like the birds. The main colour comes from the birds' palette, so colour says little about the
//! category; shape does.
//!
//! The random draws of one object, in order: the main and the second colour, then the category's own (a pet's draws
//! are [`pet_sprite`]'s).
use super::ObjectKind;
use crate::data::draw::{cap, circle, dome, ell, jit, mix, rect, rgb, scale, Rgb, Shape};
use crate::data::scene::{palette_colour, pet_sprite, Pet};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::f32::consts::PI;

/// The colours an object is painted with: two palette colours and fixed ones.
#[derive(Debug, Clone, Copy)]
struct Colours {
    main: Rgb,
    second: Rgb,
    /// `main`, darker.
    dark: Rgb,
    black: Rgb,
    glass: Rgb,
}

/// Parts of a non-bird object.
pub fn object_parts(kind: ObjectKind, rng: &mut ChaCha8Rng) -> Vec<(Shape, Rgb)> {
    object_parts_described(kind, rng).0
}

/// [`object_parts`] and the palette name of the object's main colour (a pet's fur).
pub(super) fn object_parts_described(
    kind: ObjectKind,
    rng: &mut ChaCha8Rng,
) -> (Vec<(Shape, Rgb)>, &'static str) {
    let (main_name, main) = palette_colour(rng);
    let (_, second) = palette_colour(rng);
    let k = Colours {
        main,
        second,
        dark: scale(main, 0.6),
        black: rgb(25, 25, 28),
        glass: rgb(170, 200, 222),
    };
    let mut p: Vec<(Shape, Rgb)> = Vec::new();
    match kind {
        ObjectKind::Car => car(&mut p, &k, rng),
        ObjectKind::Boat => boat(&mut p, &k, rng),
        ObjectKind::House => house(&mut p, &k, rng),
        ObjectKind::Chair => chair(&mut p, &k, rng),
        ObjectKind::Bottle => bottle(&mut p, &k, rng),
        ObjectKind::Fish => fish(&mut p, &k, rng),
        ObjectKind::Flower => flower(&mut p, &k, rng),
        ObjectKind::Mushroom => mushroom(&mut p, &k, rng),
        ObjectKind::Kite => kite(&mut p, &k, rng),
        ObjectKind::Umbrella => umbrella(&mut p, &k, rng),
        ObjectKind::Cat => return pet_sprite(Pet::Cat, rng),
        ObjectKind::Dog => return pet_sprite(Pet::Dog, rng),
    }
    (p, main_name)
}

/// Side view of a car: long low body, cabin with two windows on top, two wheels.
fn car(p: &mut Vec<(Shape, Rgb)>, k: &Colours, rng: &mut ChaCha8Rng) {
    let Colours {
        main, black, glass, ..
    } = *k;
    let len = 0.5 * jit(rng, 0.1);
    let roof = -0.2 * jit(rng, 0.2);
    p.push((
        Shape::Polygon(vec![
            (-len, -0.02),
            (len - 0.04, -0.02),
            (len + 0.02, 0.06),
            (len, 0.16),
            (-len, 0.16),
        ]),
        main,
    ));
    p.push((
        Shape::Polygon(vec![
            (-0.32, -0.01),
            (-0.2, roof),
            (0.12, roof),
            (0.28, -0.01),
        ]),
        main,
    ));
    p.push((
        Shape::Polygon(vec![
            (-0.27, -0.03),
            (-0.18, roof + 0.03),
            (-0.05, roof + 0.03),
            (-0.05, -0.03),
        ]),
        glass,
    ));
    p.push((
        Shape::Polygon(vec![
            (0.0, -0.03),
            (0.0, roof + 0.03),
            (0.1, roof + 0.03),
            (0.22, -0.03),
        ]),
        glass,
    ));
    p.push((ell((len - 0.02, 0.04), 0.03, 0.02, 0.0), rgb(250, 230, 120)));
    for x in [-len + 0.17, len - 0.17] {
        p.push((circle((x, 0.17), 0.1), black));
        p.push((circle((x, 0.17), 0.045), rgb(170, 170, 175)));
    }
}

/// A sailboat: trapezoid hull, mast, main sail and jib.
fn boat(p: &mut Vec<(Shape, Rgb)>, k: &Colours, rng: &mut ChaCha8Rng) {
    let Colours {
        main, second, dark, ..
    } = *k;
    let mast = 0.65 * jit(rng, 0.15);
    p.push((
        cap((0.0, 0.2), (0.0, 0.2 - mast), 0.018, 0.015),
        rgb(90, 65, 40),
    ));
    p.push((
        Shape::Polygon(vec![(0.03, 0.22 - mast), (0.03, 0.14), (0.42, 0.14)]),
        mix(second, rgb(245, 245, 240), 0.5),
    ));
    p.push((
        Shape::Polygon(vec![(-0.03, 0.3 - mast), (-0.03, 0.14), (-0.3, 0.14)]),
        mix(second, rgb(245, 245, 240), 0.3),
    ));
    p.push((
        Shape::Polygon(vec![
            (-0.5, 0.18),
            (0.52, 0.18),
            (0.38, 0.36),
            (-0.36, 0.36),
        ]),
        main,
    ));
    p.push((rect(-0.45, 0.2, 0.47, 0.24), dark));
}

/// A house: square wall, triangular roof, chimney, door and windows.
fn house(p: &mut Vec<(Shape, Rgb)>, k: &Colours, rng: &mut ChaCha8Rng) {
    let Colours { main, glass, .. } = *k;
    let wall_h = 0.5 * jit(rng, 0.15);
    let roof_h = 0.38 * jit(rng, 0.2);
    let roof_col = [rgb(150, 45, 35), rgb(80, 80, 90), rgb(110, 70, 40)][rng.gen_range(0..3)];
    p.push((rect(0.18, -roof_h * 0.9, 0.3, -roof_h * 0.3), roof_col));
    p.push((rect(-0.4, 0.0, 0.4, wall_h), main));
    p.push((
        Shape::Polygon(vec![(-0.5, 0.02), (0.0, -roof_h), (0.5, 0.02)]),
        roof_col,
    ));
    p.push((rect(-0.08, wall_h - 0.26, 0.08, wall_h), rgb(95, 60, 35)));
    for x in [-0.28, 0.16] {
        p.push((rect(x, 0.1, x + 0.13, 0.23), rgb(240, 240, 235)));
        p.push((rect(x + 0.015, 0.115, x + 0.115, 0.215), glass));
    }
}

/// Side view of a chair: tall back, seat, two pairs of legs.
fn chair(p: &mut Vec<(Shape, Rgb)>, k: &Colours, rng: &mut ChaCha8Rng) {
    let Colours { main, dark, .. } = *k;
    let back = 0.6 * jit(rng, 0.15);
    let leg = 0.42 * jit(rng, 0.15);
    let r = 0.035;
    p.push((rect(-0.3, -back, -0.22, 0.02), main));
    p.push((rect(-0.3, -0.02, 0.3, 0.06), main));
    for x in [-0.26, 0.26] {
        p.push((cap((x, 0.05), (x, 0.05 + leg), r, r), dark));
    }
    p.push((rect(-0.26, -back * 0.75, -0.22, -back * 0.7), dark));
    p.push((
        cap(
            (-0.26, 0.05 + leg * 0.55),
            (0.26, 0.05 + leg * 0.55),
            0.015,
            0.015,
        ),
        dark,
    ));
}

/// An upright bottle: body with round shoulders, long neck, cap, label.
fn bottle(p: &mut Vec<(Shape, Rgb)>, k: &Colours, rng: &mut ChaCha8Rng) {
    let Colours {
        main,
        second,
        glass,
        ..
    } = *k;
    let body_w = 0.15 * jit(rng, 0.15);
    let neck = 0.3 * jit(rng, 0.2);
    let glass_col = mix(main, glass, 0.25);
    p.push((rect(-body_w, -0.1, body_w, 0.5), glass_col));
    p.push((ell((0.0, -0.1), body_w, 0.1, 0.0), glass_col));
    p.push((
        cap((0.0, -0.15), (0.0, -0.15 - neck), 0.06, 0.05),
        glass_col,
    ));
    p.push((rect(-0.065, -0.23 - neck, 0.065, -0.15 - neck), second));
    p.push((
        rect(-body_w, 0.12, body_w, 0.3),
        mix(second, rgb(245, 240, 225), 0.6),
    ));
}

/// A fish, side view: oval body, forked tail, dorsal fin, eye.
fn fish(p: &mut Vec<(Shape, Rgb)>, k: &Colours, rng: &mut ChaCha8Rng) {
    let Colours {
        main, dark, black, ..
    } = *k;
    let fat = 0.18 * jit(rng, 0.2);
    p.push((
        Shape::Polygon(vec![
            (-0.3, 0.0),
            (-0.62, -0.22),
            (-0.52, 0.0),
            (-0.62, 0.22),
        ]),
        dark,
    ));
    p.push((
        Shape::Polygon(vec![
            (-0.15, -fat * 0.8),
            (0.12, -fat * 0.9),
            (-0.1, -fat - 0.15),
        ]),
        dark,
    ));
    p.push((ell((0.0, 0.0), 0.4, fat, 0.0), main));
    p.push((
        ell((-0.02, fat * 0.35), 0.3, fat * 0.3, 0.0),
        mix(main, rgb(240, 240, 230), 0.5),
    ));
    p.push((
        cap((0.18, -fat * 0.7), (0.2, fat * 0.7), 0.015, 0.015),
        dark,
    ));
    p.push((circle((0.28, -0.04), 0.045), rgb(245, 245, 240)));
    p.push((circle((0.29, -0.04), 0.022), black));
}

/// A flower: stem with two leaves, a ring of petals and a centre.
fn flower(p: &mut Vec<(Shape, Rgb)>, k: &Colours, rng: &mut ChaCha8Rng) {
    let Colours { main, .. } = *k;
    let green = rgb(60, 140, 50);
    let stem = 0.75 * jit(rng, 0.15);
    let head = (0.0, -0.3);
    p.push((cap((0.0, head.1 + stem), head, 0.03, 0.025), green));
    p.push((ell((0.1, head.1 + stem * 0.6), 0.14, 0.045, -0.5), green));
    p.push((ell((-0.1, head.1 + stem * 0.75), 0.13, 0.045, 0.5), green));
    let n = rng.gen_range(5..=8);
    let r = 0.16 * jit(rng, 0.15);
    let a0 = rng.gen_range(0.0..PI);
    for k in 0..n {
        let a = a0 + 2.0 * PI * k as f32 / n as f32;
        p.push((
            ell(
                (head.0 + r * a.cos(), head.1 + r * a.sin()),
                r * 0.8,
                r * 0.4,
                a,
            ),
            main,
        ));
    }
    p.push((
        circle(head, r * 0.55),
        [rgb(240, 190, 30), rgb(110, 70, 30)][rng.gen_range(0..2)],
    ));
}

/// A mushroom: thick pale stem under a wide dome cap with spots.
fn mushroom(p: &mut Vec<(Shape, Rgb)>, k: &Colours, rng: &mut ChaCha8Rng) {
    let Colours { main, second, .. } = *k;
    let w = 0.42 * jit(rng, 0.15);
    let hcap = 0.3 * jit(rng, 0.2);
    p.push((
        cap((0.0, 0.42), (0.0, -0.02), 0.12, 0.09),
        rgb(236, 226, 200),
    ));
    p.push((ell((0.0, 0.0), w * 0.85, 0.05, 0.0), rgb(200, 185, 160)));
    p.push((Shape::Polygon(dome((0.0, 0.0), w, hcap, 16)), main));
    let spot = if rng.gen_bool(0.5) {
        rgb(248, 248, 245)
    } else {
        second
    };
    for (sx, sy) in [
        (-0.5, 0.45),
        (0.0, 0.75),
        (0.45, 0.4),
        (-0.2, 0.2),
        (0.25, 0.15),
    ] {
        p.push((circle((sx * w, -sy * hcap), 0.04), spot));
    }
}

/// A kite: diamond with two coloured halves, spars and a tail with bows.
fn kite(p: &mut Vec<(Shape, Rgb)>, k: &Colours, rng: &mut ChaCha8Rng) {
    let Colours {
        main, second, dark, ..
    } = *k;
    let tall = 0.8 * jit(rng, 0.1);
    let wide = 0.3 * jit(rng, 0.15);
    let top = (0.0, -0.5);
    let bottom = (0.0, -0.5 + tall);
    let mid = -0.5 + tall * 0.35;
    p.push((
        Shape::Polygon(vec![top, (wide, mid), bottom, (-wide, mid)]),
        main,
    ));
    p.push((Shape::Polygon(vec![top, bottom, (-wide, mid)]), second));
    p.push((cap(top, bottom, 0.012, 0.012), dark));
    p.push((cap((-wide, mid), (wide, mid), 0.012, 0.012), dark));
    let mut at = bottom;
    for k in 0..4 {
        let next = (if k % 2 == 0 { 0.08 } else { -0.02 }, at.1 + 0.14);
        p.push((cap(at, next, 0.01, 0.01), dark));
        p.push((
            Shape::Polygon(vec![
                (next.0 - 0.05, next.1 - 0.03),
                (next.0 + 0.05, next.1 + 0.03),
                (next.0 + 0.05, next.1 - 0.03),
                (next.0 - 0.05, next.1 + 0.03),
            ]),
            second,
        ));
        at = next;
    }
}

/// An open umbrella: dome canopy with a scalloped rim, tip, shaft and a hooked handle.
fn umbrella(p: &mut Vec<(Shape, Rgb)>, k: &Colours, rng: &mut ChaCha8Rng) {
    let Colours { main, dark, .. } = *k;
    let w = 0.5 * jit(rng, 0.1);
    let hcan = 0.32 * jit(rng, 0.15);
    let mut pts = dome((0.0, 0.0), w, hcan, 20);
    let scallops = 6;
    for k in 0..=scallops {
        let x = -w + 2.0 * w * k as f32 / scallops as f32;
        pts.push((x, if k % 2 == 0 { 0.0 } else { -0.06 }));
    }
    p.push((cap((0.0, 0.0), (0.0, 0.55), 0.02, 0.02), rgb(60, 60, 60)));
    p.push((cap((0.0, 0.55), (0.05, 0.64), 0.03, 0.03), dark));
    p.push((cap((0.05, 0.64), (0.13, 0.6), 0.03, 0.03), dark));
    p.push((Shape::Polygon(pts), main));
    for x in [-0.5f32, 0.0, 0.5] {
        p.push((cap((0.0, -hcan), (x * w, -0.02), 0.008, 0.008), dark));
    }
    p.push((
        cap((0.0, -hcan), (0.0, -hcan - 0.08), 0.02, 0.012),
        rgb(60, 60, 60),
    ));
}
