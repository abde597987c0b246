//! Procedural scenes shared by the synthetic data sets: bird species (two classes told apart by shape), land and
//! water backgrounds, distractor objects, and cats/dogs/apples for the Faithfulness Test I set.
//!
//! Birds are sprites in a local frame (body length ~1, head towards +x, y down) drawn as filled shapes into a
//! sprite canvas whose mask is the true bird mask; backgrounds are painted per pixel from value noise. Colours for
//! both bird classes come from one palette ([`PALETTE`]) so colour carries no class information; shape does
//! (waterbirds: long neck / long or flat bill / elongated body; landbirds: compact round body, short beak, legs).
use super::draw::{fbm, mix, rgb, scale, value_noise, Canvas, Rgb, Shape, Similarity};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use std::f32::consts::PI;

/// Place codes of the `place` column.
pub const LAND: i64 = 0;
pub const WATER: i64 = 1;

/// A bird species: class, folder name (CUB style, dotted) and the word captions use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Species {
    Duck,
    Swan,
    Heron,
    Pelican,
    Gull,
    Sparrow,
    Finch,
    Robin,
    Owl,
    Jay,
}

impl Species {
    pub const ALL: [Species; 10] = [
        Species::Duck,
        Species::Swan,
        Species::Heron,
        Species::Pelican,
        Species::Gull,
        Species::Sparrow,
        Species::Finch,
        Species::Robin,
        Species::Owl,
        Species::Jay,
    ];

    /// 1 waterbird, 0 landbird.
    pub fn y(self) -> i64 {
        match self {
            Species::Duck | Species::Swan | Species::Heron | Species::Pelican | Species::Gull => 1,
            _ => 0,
        }
    }

    pub fn of_class(y: i64) -> Vec<Species> {
        Species::ALL
            .iter()
            .copied()
            .filter(|s| s.y() == y)
            .collect()
    }

    /// Folder name in the CUB style used by Waterbirds (`001.Black_footed_Albatross`).
    pub fn folder(self) -> String {
        let idx = Species::ALL.iter().position(|&s| s == self).unwrap_or(0) + 1;
        format!("{idx:03}.{}", self.file_stem())
    }

    pub fn file_stem(self) -> &'static str {
        match self {
            Species::Duck => "Mallard_duck",
            Species::Swan => "Mute_swan",
            Species::Heron => "Great_blue_heron",
            Species::Pelican => "Brown_pelican",
            Species::Gull => "Herring_gull",
            Species::Sparrow => "House_sparrow",
            Species::Finch => "Purple_finch",
            Species::Robin => "American_robin",
            Species::Owl => "Barn_owl",
            Species::Jay => "Blue_jay",
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Species::Duck => "duck",
            Species::Swan => "swan",
            Species::Heron => "heron",
            Species::Pelican => "pelican",
            Species::Gull => "gull",
            Species::Sparrow => "sparrow",
            Species::Finch => "finch",
            Species::Robin => "robin",
            Species::Owl => "owl",
            Species::Jay => "jay",
        }
    }

    /// Phrases that describe what the drawing shows of this species' shape.
    pub fn shape_phrases(self) -> &'static [&'static str] {
        match self {
            Species::Duck => &["with a flat bill", "with a long body", "with a curved neck"],
            Species::Swan => &[
                "with a long neck",
                "with a long curved neck",
                "with a long body",
            ],
            Species::Heron => &[
                "with a long neck",
                "with long legs",
                "with a long pointed bill",
            ],
            Species::Pelican => &["with a long bill", "with a huge bill", "with a long body"],
            Species::Gull => &[
                "with long wings",
                "with a long body",
                "with a straight bill",
            ],
            Species::Sparrow => &["with a short beak", "with a round body", "with short legs"],
            Species::Finch => &[
                "with a short thick beak",
                "with a round body",
                "with a small head",
            ],
            Species::Robin => &[
                "with a round breast",
                "with a short beak",
                "with a round body",
            ],
            Species::Owl => &["with big round eyes", "with ear tufts", "with a round head"],
            Species::Jay => &["with a crest", "with a short beak", "with a long tail"],
        }
    }
}

/// The single colour palette shared by every bird class: (name used in captions, colour).
pub const PALETTE: [(&str, [u8; 3]); 10] = [
    ("white", [238, 238, 232]),
    ("black", [38, 36, 40]),
    ("grey", [128, 128, 134]),
    ("brown", [122, 80, 44]),
    ("tan", [204, 172, 122]),
    ("yellow", [232, 200, 44]),
    ("red", [192, 42, 36]),
    ("blue", [62, 92, 196]),
    ("orange", [228, 122, 40]),
    ("pink", [230, 150, 170]),
];

const BILL_COLOURS: [[u8; 3]; 4] = [
    [232, 150, 30],
    [220, 196, 60],
    [40, 40, 40],
    [120, 120, 120],
];

/// Colours of one bird, drawn from [`PALETTE`] independently of the class.
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
        let pick = |rng: &mut ChaCha8Rng| {
            let (n, c) = PALETTE[rng.gen_range(0..PALETTE.len())];
            (n, rgb(c[0], c[1], c[2]))
        };
        let (name, body) = pick(rng);
        let wing = if rng.gen_bool(0.35) {
            pick(rng).1
        } else {
            scale(body, 0.72)
        };
        let head = if rng.gen_bool(0.3) { pick(rng).1 } else { body };
        let accent = pick(rng).1;
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

fn jit(rng: &mut ChaCha8Rng, amount: f32) -> f32 {
    1.0 + rng.gen_range(-amount..=amount)
}

fn circle(c: (f32, f32), r: f32) -> Shape {
    Shape::Ellipse {
        c,
        rx: r,
        ry: r,
        angle: 0.0,
    }
}

fn ell(c: (f32, f32), rx: f32, ry: f32, angle: f32) -> Shape {
    Shape::Ellipse { c, rx, ry, angle }
}

fn cap(a: (f32, f32), b: (f32, f32), r0: f32, r1: f32) -> Shape {
    Shape::Capsule { a, b, r0, r1 }
}

/// Eye: a dark dot (with a pale ring when `big`).
fn eye(parts: &mut Vec<(Shape, Rgb)>, c: (f32, f32), r: f32, big: bool) {
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

/// Builds the parts of a bird of `species` with random proportions and pose (not yet placed).
pub fn bird_sprite(species: Species, col: &BirdColours, rng: &mut ChaCha8Rng) -> BirdSprite {
    let mut p: Vec<(Shape, Rgb)> = Vec::new();
    let pose = if rng.gen_bool(0.15) {
        Pose::WingsSpread
    } else if rng.gen_bool(0.5) {
        Pose::FacingLeft
    } else {
        Pose::FacingRight
    };
    let spread = pose == Pose::WingsSpread;
    let neck = jit(rng, 0.15);
    let bill = jit(rng, 0.15);
    let fat = jit(rng, 0.1);
    match species {
        Species::Duck => {
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
            eye(&mut p, (nt.0 + 0.06, nt.1 - 0.09), 0.025, false);
        }
        Species::Swan => {
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
            eye(&mut p, (c.0 + 0.06, c.1 - 0.05), 0.02, false);
        }
        Species::Heron => {
            let body_c = (0.0, -0.05);
            legs(&mut p, (-0.02, 0.05), 0.62 * neck, 0.07, 0.025, col.legs);
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
            eye(&mut p, (nt.0 + 0.015, nt.1 - 0.02), 0.018, false);
        }
        Species::Pelican => {
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
            eye(&mut p, (nt.0 + 0.02, nt.1 - 0.04), 0.022, false);
        }
        Species::Gull => {
            legs(&mut p, (0.0, 0.12), 0.16, 0.05, 0.02, col.legs);
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
            eye(&mut p, (nt.0 + 0.04, nt.1 - 0.04), 0.022, false);
        }
        Species::Sparrow | Species::Finch | Species::Robin | Species::Jay => {
            // Compact round perching bird: body tilted upright, head sitting on the body, short beak, legs.
            let (brx, bry) = match species {
                Species::Finch => (0.3, 0.3),
                Species::Robin => (0.3, 0.34),
                _ => (0.32, 0.27),
            };
            let tail_len = if species == Species::Jay { 0.42 } else { 0.22 };
            legs(&mut p, (0.0, bry * fat * 0.8), 0.2, 0.06, 0.022, col.legs);
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
            eye(&mut p, (hc.0 + 0.07, hc.1 - 0.04), 0.028, false);
        }
        Species::Owl => {
            legs(&mut p, (0.0, 0.3 * fat), 0.1, 0.08, 0.03, col.legs);
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
            eye(&mut p, (hc.0 - 0.1, hc.1 - 0.02), 0.035, true);
            eye(&mut p, (hc.0 + 0.1, hc.1 - 0.02), 0.035, true);
            p.push((
                Shape::Polygon(vec![
                    (-0.03, hc.1 + 0.06),
                    (0.03, hc.1 + 0.06),
                    (0.0, hc.1 + 0.14),
                ]),
                col.bill,
            ));
        }
    }
    if spread {
        // A raised wing drawn last so it shows against the body.
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
    let nseed: u64 = rng.gen();
    let (wf, hf) = (w as f32, h as f32);
    let bright = jit(rng, 0.12);
    let hue = rng.gen_range(-0.06f32..=0.06);
    let tint = |col: Rgb| -> Rgb { scale([col[0] + hue, col[1], col[2] - hue], bright) };
    let sky_top = tint(rgb(120, 170, 225));
    let sky_bot = tint(rgb(200, 225, 245));
    let sky = move |y: f32, horizon: f32| mix(sky_top, sky_bot, (y / horizon).clamp(0.0, 1.0));
    let mut horizon = None;
    match kind {
        Background::Forest => {
            let dark = tint(rgb(30, 70, 30));
            let light = tint(rgb(90, 150, 60));
            let f = wf / 5.0;
            c.paint(|x, y| {
                let n = fbm(nseed, x / f, y / f);
                mix(dark, light, n)
            });
            let trunks = rng.gen_range(3..=6);
            for _ in 0..trunks {
                let x = rng.gen_range(0.0..wf);
                let tw = rng.gen_range(0.025..0.06) * wf;
                let col = tint(mix(rgb(70, 45, 25), rgb(110, 80, 50), rng.gen()));
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
            let g = tint(rgb(80, 70, 35));
            let g2 = tint(rgb(60, 95, 35));
            let f2 = wf / 10.0;
            for y in (ground as usize).min(h)..h {
                for x in 0..w {
                    let n = value_noise(nseed ^ 7, x as f32 / f2, y as f32 / f2);
                    c.set(x, y, mix(g, g2, n));
                }
            }
        }
        Background::Bamboo => {
            let bg1 = tint(rgb(170, 200, 110));
            let bg2 = tint(rgb(110, 160, 80));
            let f = wf / 4.0;
            c.paint(|x, y| mix(bg1, bg2, fbm(nseed, x / f, y / f)));
            let stalks = rng.gen_range(6..=10);
            for _ in 0..stalks {
                let x = rng.gen_range(0.0..wf);
                let sw = rng.gen_range(0.02..0.04) * wf;
                let col = tint(mix(rgb(60, 130, 40), rgb(140, 180, 60), rng.gen()));
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
                c.fill(&ell(p, 0.07 * wf, 0.015 * wf, a), tint(rgb(70, 140, 50)));
            }
        }
        Background::Field => {
            let hz = rng.gen_range(0.25..0.45) * hf;
            horizon = Some(hz);
            let g1 = tint(rgb(110, 170, 60));
            let g2 = tint(rgb(190, 190, 90));
            let f = wf / 4.0;
            c.paint(|x, y| {
                if y < hz {
                    sky(y, hz)
                } else {
                    mix(g1, g2, fbm(nseed, x / f, y / f))
                }
            });
            // Distant tree line at the horizon.
            let tl = tint(rgb(50, 90, 45));
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
                    tint(rgb(70, 120, 40)),
                );
            }
        }
        Background::Ocean => {
            let hz = rng.gen_range(0.2..0.4) * hf;
            horizon = Some(hz);
            let deep = tint(rgb(20, 60, 130));
            let near = tint(rgb(40, 110, 175));
            let freq = rng.gen_range(0.25..0.45) * 128.0 / wf;
            c.paint(|x, y| {
                if y < hz {
                    return sky(y, hz);
                }
                let d = (y - hz) / (hf - hz);
                let base = mix(near, deep, 1.0 - d * 0.8);
                let wob = fbm(nseed, x / (wf / 6.0), y / (wf / 20.0)) * 6.0;
                let wave = ((y * freq * (1.0 + 2.0 * (1.0 - d)) + wob).sin() * 0.5 + 0.5).powf(6.0);
                mix(base, rgb(225, 240, 250), wave * 0.55)
            });
        }
        Background::Lake => {
            let hz = rng.gen_range(0.25..0.45) * hf;
            horizon = Some(hz);
            let water1 = tint(rgb(60, 120, 150));
            let water2 = tint(rgb(90, 150, 175));
            let shore = tint(rgb(45, 85, 45));
            let band = rng.gen_range(0.06..0.12) * hf;
            c.paint(|x, y| {
                let top = hz - band * (0.5 + value_noise(nseed ^ 5, x / (wf / 10.0), 0.0));
                if y < top {
                    sky(y, top)
                } else if y < hz {
                    shore
                } else {
                    let d = y - hz;
                    let ripple = ((y * 0.9 * 128.0 / wf
                        + fbm(nseed, x / (wf / 5.0), y / (wf / 25.0)) * 5.0)
                        .sin()
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
        }
        Background::Pond => {
            let w1 = tint(rgb(40, 90, 110));
            let w2 = tint(rgb(70, 120, 120));
            c.paint(|x, y| {
                let ripple = ((y * 0.7 * 128.0 / wf
                    + fbm(nseed, x / (wf / 4.0), y / (wf / 4.0)) * 8.0)
                    .sin()
                    * 0.5
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
                let col = tint(mix(rgb(50, 120, 40), rgb(100, 160, 60), rng.gen()));
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
        }
    }
    if strength < 1.0 {
        let k = strength.max(0.0);
        for v in c.px.iter_mut() {
            *v = 0.5 + (*v - 0.5) * k;
        }
    }
    (c, horizon)
}

/// Draws a distractor onto a background (behind any bird).
pub fn paint_distractor(c: &mut Canvas, d: Distractor, horizon: Option<f32>, rng: &mut ChaCha8Rng) {
    let (wf, hf) = (c.w as f32, c.h as f32);
    match d {
        Distractor::Rocks => {
            for _ in 0..rng.gen_range(1..=3) {
                let r = rng.gen_range(0.05..0.1) * wf;
                let p = (rng.gen_range(0.0..wf), rng.gen_range(0.65..0.95) * hf);
                let g = rng.gen_range(90..150) as u8;
                c.fill(
                    &ell(p, r, r * 0.6, rng.gen_range(-0.3..0.3)),
                    rgb(g, g, g.saturating_add(5)),
                );
                c.fill(
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
                    c.fill(
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
                    c.fill(
                        &circle((p.0 + r * a.cos(), p.1 + r * a.sin()), r * 0.8),
                        col,
                    );
                }
                c.fill(&circle(p, r * 0.6), rgb(240, 180, 30));
            }
        }
        Distractor::Boat => {
            let hz = horizon.unwrap_or(0.3 * hf);
            let bw = rng.gen_range(0.12..0.2) * wf;
            let x = rng.gen_range(0.0..wf - bw);
            let y = hz + rng.gen_range(0.02..0.12) * hf;
            let hull = [rgb(140, 60, 40), rgb(230, 230, 230), rgb(60, 60, 70)][rng.gen_range(0..3)];
            c.fill(
                &Shape::Polygon(vec![
                    (x, y),
                    (x + bw, y),
                    (x + bw * 0.8, y + bw * 0.22),
                    (x + bw * 0.15, y + bw * 0.22),
                ]),
                hull,
            );
            c.fill(
                &cap(
                    (x + bw * 0.5, y),
                    (x + bw * 0.5, y - bw * 0.9),
                    0.008 * wf,
                    0.008 * wf,
                ),
                rgb(80, 60, 40),
            );
            c.fill(
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

/// Animals of the Cats & Apples set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pet {
    Dog,
    Cat,
}

/// Parts of a sitting cat (pointed ears, round face, long upright tail) or dog (floppy ears, long muzzle), and the
/// palette name of its fur.
pub fn pet_sprite(pet: Pet, rng: &mut ChaCha8Rng) -> (Vec<(Shape, Rgb)>, &'static str) {
    let (name, c) = PALETTE[rng.gen_range(0..PALETTE.len())];
    let fur = rgb(c[0], c[1], c[2]);
    let dark = scale(fur, 0.65);
    let mut p = Vec::new();
    let hc = (0.0, -0.45);
    match pet {
        Pet::Cat => {
            p.push((cap((0.28, 0.35), (0.48, -0.15), 0.05, 0.04), dark));
            p.push((ell((0.0, 0.2), 0.3, 0.35, 0.0), fur));
            p.push((
                Shape::Polygon(vec![
                    (-0.26, hc.1 - 0.05),
                    (-0.22, hc.1 - 0.42),
                    (-0.04, hc.1 - 0.2),
                ]),
                fur,
            ));
            p.push((
                Shape::Polygon(vec![
                    (0.26, hc.1 - 0.05),
                    (0.22, hc.1 - 0.42),
                    (0.04, hc.1 - 0.2),
                ]),
                fur,
            ));
            p.push((circle(hc, 0.25), fur));
            for s in [-1.0f32, 1.0] {
                eye(&mut p, (hc.0 + s * 0.1, hc.1 - 0.04), 0.03, false);
                p.push((
                    cap(
                        (hc.0 + s * 0.06, hc.1 + 0.08),
                        (hc.0 + s * 0.32, hc.1 + 0.04),
                        0.008,
                        0.008,
                    ),
                    rgb(240, 240, 240),
                ));
            }
            p.push((
                Shape::Polygon(vec![
                    (-0.04, hc.1 + 0.04),
                    (0.04, hc.1 + 0.04),
                    (0.0, hc.1 + 0.09),
                ]),
                rgb(230, 130, 150),
            ));
        }
        Pet::Dog => {
            p.push((cap((0.3, 0.35), (0.45, 0.2), 0.05, 0.04), dark));
            p.push((ell((0.0, 0.22), 0.32, 0.35, 0.0), fur));
            p.push((circle(hc, 0.25), fur));
            // Floppy ears hanging down the sides of the head.
            p.push((ell((hc.0 - 0.26, hc.1 + 0.08), 0.09, 0.22, 0.15), dark));
            p.push((ell((hc.0 + 0.26, hc.1 + 0.08), 0.09, 0.22, -0.15), dark));
            // Long muzzle with a big nose and a tongue.
            p.push((
                ell((hc.0, hc.1 + 0.15), 0.13, 0.15, 0.0),
                mix(fur, rgb(240, 230, 210), 0.5),
            ));
            p.push((ell((hc.0, hc.1 + 0.08), 0.06, 0.045, 0.0), rgb(20, 20, 20)));
            p.push((ell((hc.0, hc.1 + 0.27), 0.04, 0.06, 0.0), rgb(220, 90, 110)));
            for s in [-1.0f32, 1.0] {
                eye(&mut p, (hc.0 + s * 0.1, hc.1 - 0.08), 0.03, false);
            }
        }
    }
    (p, name)
}

/// Draws a red apple of radius `r` px centred at `p`.
pub fn paint_apple(c: &mut Canvas, p: (f32, f32), r: f32) {
    c.fill(&circle((p.0 - r * 0.35, p.1), r * 0.8), rgb(200, 25, 30));
    c.fill(&circle((p.0 + r * 0.35, p.1), r * 0.8), rgb(200, 25, 30));
    c.fill(
        &ell((p.0, p.1 + r * 0.1), r * 0.9, r * 0.85, 0.0),
        rgb(205, 30, 35),
    );
    c.fill(
        &circle((p.0 - r * 0.35, p.1 - r * 0.3), r * 0.2),
        rgb(240, 120, 120),
    );
    c.fill(
        &cap(
            (p.0, p.1 - r * 0.6),
            (p.0 + r * 0.1, p.1 - r * 1.1),
            r * 0.08,
            r * 0.06,
        ),
        rgb(90, 60, 30),
    );
    c.fill(
        &ell((p.0 + r * 0.35, p.1 - r * 0.95), r * 0.3, r * 0.12, -0.4),
        rgb(60, 150, 50),
    );
}
