//! Bird sprites of the synthetic Waterbirds scene: a bird's colours (drawn from the shared [`super::PALETTE`], so colour
//! carries no class information), its pose, and its parts in the local frame (body length ~1, head towards +x,
//! y down), one function per body plan. Shape tells the classes apart: waterbirds have a long neck, a long or flat
//! bill or an elongated body; landbirds a compact round body, a short beak and legs.
//!
//! The random draws of one bird, in order: the pose, the proportions (neck, bill, body), the mirror (spread wings
//! only) and the rotation; the colours are drawn before, by [`BirdColours::sample`].
use super::{palette_colour, Species};
use crate::data::draw::{cap, circle, ell, jit, rgb, scale, Rgb, Shape};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

const BILL_COLOURS: [[u8; 3]; 4] = [
    [232, 150, 30],
    [220, 196, 60],
    [40, 40, 40],
    [120, 120, 120],
];

/// Colours of one bird, drawn from [`super::PALETTE`] independently of the class.
#[derive(Debug, Clone)]
pub struct BirdColours {
    pub name: &'static str,
    pub body: Rgb,
    pub wing: Rgb,
    pub head: Rgb,
    pub accent: Rgb,
    pub bill: Rgb,
    pub legs: Rgb,
}

impl BirdColours {
    pub fn sample(rng: &mut ChaCha8Rng) -> BirdColours {
        let (name, body) = palette_colour(rng);
        let wing = if rng.gen_bool(0.35) {
            palette_colour(rng).1
        } else {
            scale(body, 0.72)
        };
        let head = if rng.gen_bool(0.3) {
            palette_colour(rng).1
        } else {
            body
        };
        let accent = palette_colour(rng).1;
        let b = BILL_COLOURS[rng.gen_range(0..BILL_COLOURS.len())];
        let l = BILL_COLOURS[rng.gen_range(0..BILL_COLOURS.len())];
        BirdColours {
            name,
            body,
            wing,
            head,
            accent,
            bill: rgb(b[0], b[1], b[2]),
            legs: rgb(l[0], l[1], l[2]),
        }
    }
}

/// Pose of a drawn bird, as captions can describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pose {
    FacingLeft,
    FacingRight,
    WingsSpread,
}

impl Pose {
    pub fn phrase(self) -> &'static str {
        match self {
            Pose::FacingLeft => "facing left",
            Pose::FacingRight => "facing right",
            Pose::WingsSpread => "with its wings spread",
        }
    }
}

/// A drawn bird: its parts in the local frame.
#[derive(Debug, Clone)]
pub struct BirdSprite {
    pub parts: Vec<(Shape, Rgb)>,
    pub pose: Pose,
    pub mirror: bool,
    pub angle: f32,
}

/// The random proportions of one drawing, each a factor around 1.
#[derive(Debug, Clone, Copy)]
struct Proportions {
    neck: f32,
    bill: f32,
    fat: f32,
}

impl Proportions {
    fn sample(rng: &mut ChaCha8Rng) -> Proportions {
        let neck = jit(rng, 0.15);
        let bill = jit(rng, 0.15);
        let fat = jit(rng, 0.1);
        Proportions { neck, bill, fat }
    }
}

impl Pose {
    fn sample(rng: &mut ChaCha8Rng) -> Pose {
        if rng.gen_bool(0.15) {
            Pose::WingsSpread
        } else if rng.gen_bool(0.5) {
            Pose::FacingLeft
        } else {
            Pose::FacingRight
        }
    }
}

/// Builds the parts of a bird of `species` with random proportions and pose (not yet placed).
pub fn bird_sprite(species: Species, col: &BirdColours, rng: &mut ChaCha8Rng) -> BirdSprite {
    let pose = Pose::sample(rng);
    let k = Proportions::sample(rng);
    let mut p: Vec<(Shape, Rgb)> = Vec::new();
    match species {
        Species::Duck => duck(&mut p, col, k),
        Species::Swan => swan(&mut p, col, k),
        Species::Heron => heron(&mut p, col, k),
        Species::Pelican => pelican(&mut p, col, k),
        Species::Gull => gull(&mut p, col, k),
        Species::Sparrow | Species::Finch | Species::Robin | Species::Jay => {
            perching(&mut p, species, col, k)
        }
        Species::Owl => owl(&mut p, col, k),
    }
    if pose == Pose::WingsSpread {
        raised_wing(&mut p, species, col);
    }
    let mirror = match pose {
        Pose::FacingLeft => true,
        Pose::FacingRight => false,
        Pose::WingsSpread => rng.gen_bool(0.5),
    };
    let angle = rng.gen_range(-0.2..=0.2);
    BirdSprite {
        parts: p,
        pose,
        mirror,
        angle,
    }
}

/// A raised wing, drawn last so it shows against the body.
fn raised_wing(p: &mut Vec<(Shape, Rgb)>, species: Species, col: &BirdColours) {
    let base = if species.y() == 1 {
        (0.0, -0.08)
    } else {
        (-0.02, -0.1)
    };
    p.push((
        Shape::Polygon(vec![
            (base.0 + 0.15, base.1),
            (base.0 - 0.35, base.1 - 0.55),
            (base.0 - 0.2, base.1 - 0.05),
        ]),
        col.wing,
    ));
}

/// A duck: flat wide bill on a short neck, long low body.
fn duck(p: &mut Vec<(Shape, Rgb)>, col: &BirdColours, k: Proportions) {
    let Proportions { neck, bill, fat } = k;
    p.push((
        Shape::Polygon(vec![(-0.4, -0.1), (-0.62, -0.2), (-0.45, 0.08)]),
        col.wing,
    ));
    p.push((ell((0.0, 0.0), 0.5, 0.2 * fat, 0.0), col.body));
    let nb = (0.32, -0.08);
    let nt = (0.42, -0.08 - 0.34 * neck);
    p.push((cap(nb, nt, 0.1, 0.08), col.head));
    p.push((circle((nt.0 + 0.02, nt.1 - 0.05), 0.13), col.head));
    let hb = (nt.0 + 0.12, nt.1 - 0.02);
    // Flat, wide duck bill.
    p.push((
        ell((hb.0 + 0.1 * bill, hb.1 + 0.02), 0.14 * bill, 0.05, 0.12),
        col.bill,
    ));
    eye(p, (nt.0 + 0.06, nt.1 - 0.09), 0.025, false);
}

/// A swan: long S-shaped neck, long body.
fn swan(p: &mut Vec<(Shape, Rgb)>, col: &BirdColours, k: Proportions) {
    let Proportions { neck, bill, fat } = k;
    p.push((
        Shape::Polygon(vec![(-0.38, -0.05), (-0.62, -0.22), (-0.45, 0.08)]),
        col.wing,
    ));
    p.push((ell((0.0, 0.0), 0.52, 0.21 * fat, 0.0), col.body));
    // Long S-shaped neck.
    let a = (0.34, -0.06);
    let b = (0.5, -0.4 * neck);
    let c = (0.4, -0.78 * neck);
    p.push((cap(a, b, 0.085, 0.065), col.body));
    p.push((cap(b, c, 0.065, 0.06), col.body));
    p.push((circle((c.0 + 0.04, c.1 - 0.03), 0.085), col.head));
    p.push((
        cap(
            (c.0 + 0.08, c.1 - 0.02),
            (c.0 + 0.08 + 0.2 * bill, c.1 + 0.05),
            0.04,
            0.02,
        ),
        col.bill,
    ));
    eye(p, (c.0 + 0.06, c.1 - 0.05), 0.02, false);
}

/// A heron: long legs, long thin neck, dagger bill.
fn heron(p: &mut Vec<(Shape, Rgb)>, col: &BirdColours, k: Proportions) {
    let Proportions { neck, bill, fat } = k;
    let body_c = (0.0, -0.05);
    legs(p, (-0.02, 0.05), 0.62 * neck, 0.07, 0.025, col.legs);
    p.push((ell(body_c, 0.34, 0.13 * fat, -0.35), col.body));
    p.push((
        Shape::Polygon(vec![(-0.25, 0.05), (-0.5, 0.2), (-0.2, 0.12)]),
        col.wing,
    ));
    let nt = (0.34, -0.62 * neck);
    p.push((
        cap((0.22, -0.16), (0.38, -0.35 * neck), 0.05, 0.04),
        col.body,
    ));
    p.push((cap((0.38, -0.35 * neck), nt, 0.04, 0.04), col.body));
    p.push((circle(nt, 0.065), col.head));
    // Long dagger bill.
    p.push((
        cap(
            (nt.0 + 0.04, nt.1),
            (nt.0 + 0.4 * bill, nt.1 + 0.05),
            0.032,
            0.004,
        ),
        col.bill,
    ));
    eye(p, (nt.0 + 0.015, nt.1 - 0.02), 0.018, false);
}

/// A pelican: very long bill with a pouch.
fn pelican(p: &mut Vec<(Shape, Rgb)>, col: &BirdColours, k: Proportions) {
    let Proportions { neck, bill, fat } = k;
    p.push((
        Shape::Polygon(vec![(-0.42, -0.1), (-0.62, -0.05), (-0.45, 0.1)]),
        col.wing,
    ));
    p.push((ell((0.0, 0.0), 0.5, 0.24 * fat, 0.0), col.body));
    let nt = (0.34, -0.42 * neck);
    p.push((cap((0.3, -0.08), nt, 0.1, 0.08), col.body));
    p.push((circle(nt, 0.11), col.head));
    // Very long bill with a pouch below it.
    let tip = (nt.0 + 0.6 * bill, nt.1 + 0.1);
    p.push((
        Shape::Polygon(vec![
            (nt.0 + 0.05, nt.1 + 0.02),
            tip,
            (nt.0 + 0.25 * bill, nt.1 + 0.2),
            (nt.0 + 0.04, nt.1 + 0.1),
        ]),
        scale(col.bill, 0.85),
    ));
    p.push((cap((nt.0 + 0.05, nt.1 - 0.01), tip, 0.035, 0.02), col.bill));
    eye(p, (nt.0 + 0.02, nt.1 - 0.04), 0.022, false);
}

/// A gull: long pointed wings, straight bill, short legs.
fn gull(p: &mut Vec<(Shape, Rgb)>, col: &BirdColours, k: Proportions) {
    let Proportions { neck, bill, fat } = k;
    legs(p, (0.0, 0.12), 0.16, 0.05, 0.02, col.legs);
    p.push((ell((0.0, 0.0), 0.46, 0.17 * fat, 0.0), col.body));
    // Long pointed wings reaching past the tail.
    p.push((
        Shape::Polygon(vec![(0.25, -0.1), (-0.75, -0.02), (-0.1, 0.06)]),
        col.wing,
    ));
    let nt = (0.42, -0.2 * neck);
    p.push((cap((0.3, -0.05), nt, 0.1, 0.09), col.head));
    p.push((circle(nt, 0.12), col.head));
    p.push((
        cap(
            (nt.0 + 0.1, nt.1 + 0.02),
            (nt.0 + 0.1 + 0.22 * bill, nt.1 + 0.04),
            0.035,
            0.02,
        ),
        col.bill,
    ));
    eye(p, (nt.0 + 0.04, nt.1 - 0.04), 0.022, false);
}

/// A sparrow, finch, robin or jay: compact round perching bird, upright, short beak, legs.
fn perching(p: &mut Vec<(Shape, Rgb)>, species: Species, col: &BirdColours, k: Proportions) {
    let Proportions { bill, fat, .. } = k;
    // Compact round perching bird: body tilted upright, head sitting on the body, short beak, legs.
    let (brx, bry) = match species {
        Species::Finch => (0.3, 0.3),
        Species::Robin => (0.3, 0.34),
        _ => (0.32, 0.27),
    };
    let tail_len = if species == Species::Jay { 0.42 } else { 0.22 };
    legs(p, (0.0, bry * fat * 0.8), 0.2, 0.06, 0.022, col.legs);
    p.push((
        Shape::Polygon(vec![
            (-0.15, 0.05),
            (-0.15 - tail_len, 0.3),
            (-0.05 - tail_len, 0.38),
            (0.0, 0.15),
        ]),
        col.wing,
    ));
    p.push((ell((0.0, 0.0), brx * fat, bry * fat, -0.5), col.body));
    if species == Species::Robin {
        p.push((ell((0.12, 0.02), 0.16, 0.2, -0.4), col.accent));
    }
    p.push((ell((-0.06, 0.0), 0.2, 0.12, -0.35), col.wing));
    let hc = (0.2, -0.3);
    let hr = if species == Species::Finch {
        0.16
    } else {
        0.17
    };
    p.push((circle(hc, hr), col.head));
    if species == Species::Jay {
        p.push((
            Shape::Polygon(vec![
                (hc.0 - 0.1, hc.1 - 0.1),
                (hc.0 - 0.2, hc.1 - 0.32),
                (hc.0 + 0.05, hc.1 - 0.14),
            ]),
            col.head,
        ));
    }
    let (bl, bw) = if species == Species::Finch {
        (0.14, 0.07)
    } else {
        (0.12 * bill, 0.045)
    };
    p.push((
        Shape::Polygon(vec![
            (hc.0 + hr * 0.8, hc.1 - bw),
            (hc.0 + hr + bl, hc.1 + 0.01),
            (hc.0 + hr * 0.8, hc.1 + bw),
        ]),
        col.bill,
    ));
    eye(p, (hc.0 + 0.07, hc.1 - 0.04), 0.028, false);
}

/// An owl: upright round body, ear tufts, big round eyes.
fn owl(p: &mut Vec<(Shape, Rgb)>, col: &BirdColours, k: Proportions) {
    let Proportions { fat, .. } = k;
    legs(p, (0.0, 0.3 * fat), 0.1, 0.08, 0.03, col.legs);
    p.push((ell((0.0, 0.05), 0.3 * fat, 0.4 * fat, 0.0), col.body));
    p.push((ell((0.0, 0.1), 0.18 * fat, 0.28 * fat, 0.0), col.accent));
    let hc = (0.0, -0.38);
    p.push((
        Shape::Polygon(vec![
            (-0.22, hc.1 - 0.1),
            (-0.26, hc.1 - 0.34),
            (-0.08, hc.1 - 0.18),
        ]),
        col.head,
    ));
    p.push((
        Shape::Polygon(vec![
            (0.22, hc.1 - 0.1),
            (0.26, hc.1 - 0.34),
            (0.08, hc.1 - 0.18),
        ]),
        col.head,
    ));
    p.push((circle(hc, 0.25), col.head));
    eye(p, (hc.0 - 0.1, hc.1 - 0.02), 0.035, true);
    eye(p, (hc.0 + 0.1, hc.1 - 0.02), 0.035, true);
    p.push((
        Shape::Polygon(vec![
            (-0.03, hc.1 + 0.06),
            (0.03, hc.1 + 0.06),
            (0.0, hc.1 + 0.14),
        ]),
        col.bill,
    ));
}

/// Eye: a dark dot (with a pale ring when `big`).
pub(super) fn eye(parts: &mut Vec<(Shape, Rgb)>, c: (f32, f32), r: f32, big: bool) {
    if big {
        parts.push((circle(c, r * 2.2), rgb(245, 240, 220)));
    }
    parts.push((circle(c, r), rgb(15, 15, 15)));
}

/// Two thin legs with feet from `hip` down by `len`.
fn legs(parts: &mut Vec<(Shape, Rgb)>, hip: (f32, f32), len: f32, spread: f32, r: f32, col: Rgb) {
    for dx in [-spread, spread] {
        let foot = (hip.0 + dx, hip.1 + len);
        parts.push((cap((hip.0 + dx * 0.5, hip.1), foot, r, r), col));
        parts.push((
            cap(foot, (foot.0 + len * 0.25, foot.1), r * 0.8, r * 0.8),
            col,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::scene::place_sprite;
    use rand::SeedableRng;

    fn drawn(species: Species, seed: u64) -> BirdSprite {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let colours = BirdColours::sample(&mut rng);
        bird_sprite(species, &colours, &mut rng)
    }

    #[test]
    fn every_species_places_a_non_empty_mask_inside_the_frame() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for species in Species::ALL {
            let b = drawn(species, 1);
            assert!(b.parts.len() >= 4, "{species:?}");
            let c = place_sprite(&b.parts, b.angle, b.mirror, 40.0, 64, 64, &mut rng);
            let covered: Vec<usize> = (0..c.mask.len()).filter(|&i| c.mask[i] > 0.0).collect();
            assert!(
                covered.len() > 50,
                "{species:?}: {} mask pixels",
                covered.len()
            );
            // Nothing touches the border: the sprite stays inside the 3 % margin.
            for i in covered {
                let (x, y) = (i % 64, i / 64);
                assert!(
                    x > 0 && x < 63 && y > 0 && y < 63,
                    "{species:?} at ({x}, {y})"
                );
            }
        }
    }

    #[test]
    fn the_same_seed_draws_the_same_bird() {
        for species in Species::ALL {
            let (a, b) = (drawn(species, 9), drawn(species, 9));
            assert_eq!(format!("{:?}", a), format!("{:?}", b));
            assert!((-0.2..=0.2).contains(&a.angle));
        }
        assert_ne!(
            format!("{:?}", drawn(Species::Duck, 9)),
            format!("{:?}", drawn(Species::Duck, 10))
        );
    }
}
