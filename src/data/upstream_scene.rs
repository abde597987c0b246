//! What the upstream corpus draws (our stand-in for ImageNet, see [`super::upstream`]): 22 categories told apart by
//! shape (the 10 bird species of [`super::scene`] and 12 non-bird objects) and 13 backgrounds (the six Waterbirds
//! places of [`super::scene`] plus desert, snow, beach, mountain, street, sky and an indoor wall), painted
//! independently of the category. Each category also names its habitats ([`Category::habitats`]: fish and boats on
//! water, cars on the street, kites in the sky, ...), the places ImageNet shows it on most (Xiao et al. 2020, the
//! correlations the Background Challenge measures); the corpus puts a share of every category's images there when
//! asked (`UpstreamConfig::background_affinity`), and on the whole pool otherwise.
//!
//! Objects are sprites in a local frame like the birds (size ~1, y down), so [`super::scene::place_sprite`] sizes,
//! rotates, mirrors and places them, and writes their exact foreground mask. Their main colour comes from the
//! birds' [`PALETTE`], so colour says little about the category; shape does.
use super::draw::{fbm, mix, rgb, scale, value_noise, Canvas, Rgb, Shape};
use super::scene::{
    bird_sprite, paint_background, pet_sprite, Background, BirdColours, Pet, Pose, Species, PALETTE,
};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::f32::consts::PI;

/// A non-bird object category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    Car,
    Boat,
    House,
    Chair,
    Bottle,
    Fish,
    Flower,
    Mushroom,
    Kite,
    Umbrella,
    Cat,
    Dog,
}

impl ObjectKind {
    pub const ALL: [ObjectKind; 12] = [
        ObjectKind::Car,
        ObjectKind::Boat,
        ObjectKind::House,
        ObjectKind::Chair,
        ObjectKind::Bottle,
        ObjectKind::Fish,
        ObjectKind::Flower,
        ObjectKind::Mushroom,
        ObjectKind::Kite,
        ObjectKind::Umbrella,
        ObjectKind::Cat,
        ObjectKind::Dog,
    ];

    pub fn word(self) -> &'static str {
        match self {
            ObjectKind::Car => "car",
            ObjectKind::Boat => "boat",
            ObjectKind::House => "house",
            ObjectKind::Chair => "chair",
            ObjectKind::Bottle => "bottle",
            ObjectKind::Fish => "fish",
            ObjectKind::Flower => "flower",
            ObjectKind::Mushroom => "mushroom",
            ObjectKind::Kite => "kite",
            ObjectKind::Umbrella => "umbrella",
            ObjectKind::Cat => "cat",
            ObjectKind::Dog => "dog",
        }
    }
}

/// One category of the upstream corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    Bird(Species),
    Object(ObjectKind),
}

impl Category {
    /// All categories in label order: the ten bird species (in [`Species::ALL`] order), then the objects.
    pub fn all() -> Vec<Category> {
        Species::ALL
            .iter()
            .map(|&s| Category::Bird(s))
            .chain(ObjectKind::ALL.iter().map(|&o| Category::Object(o)))
            .collect()
    }

    pub fn word(self) -> &'static str {
        match self {
            Category::Bird(s) => s.word(),
            Category::Object(o) => o.word(),
        }
    }

    pub fn is_bird(self) -> bool {
        matches!(self, Category::Bird(_))
    }

    /// The backgrounds this category is mostly seen on (ImageNet's habitat correlations, in miniature): waterbirds
    /// on water and beaches, landbirds in forests, bamboo and fields, fish and boats on water, cars on the street,
    /// kites in the sky, flowers in fields, mushrooms in forests, chairs, bottles and cats indoors; a house on any of
    /// four open places (a weak habitat), dogs and umbrellas anywhere (none), so the corpus has categories whose
    /// background says little beside those whose background says much.
    pub fn habitats(self) -> &'static [UpstreamBackground] {
        use UpstreamBackground as B;
        match self {
            Category::Bird(s) if s.y() == 1 => &[B::Ocean, B::Lake, B::Pond, B::Beach],
            Category::Bird(_) => &[B::Forest, B::Bamboo, B::Field],
            Category::Object(o) => match o {
                ObjectKind::Fish => &[B::Ocean, B::Lake, B::Pond],
                ObjectKind::Boat => &[B::Ocean, B::Lake],
                ObjectKind::Car => &[B::Street],
                ObjectKind::Kite => &[B::Sky],
                ObjectKind::Flower => &[B::Field],
                ObjectKind::Mushroom => &[B::Forest],
                ObjectKind::Chair | ObjectKind::Bottle | ObjectKind::Cat => &[B::Wall],
                ObjectKind::House => &[B::Field, B::Snow, B::Mountain, B::Street],
                ObjectKind::Dog | ObjectKind::Umbrella => &[],
            },
        }
    }
}

/// The IN-9 style class folder of label `index`: `NN_word` (`00_duck`, `10_car`).
pub fn class_dir(index: usize, c: Category) -> String {
    format!("{index:02}_{}", c.word())
}

/// A background of the upstream corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamBackground {
    Forest,
    Bamboo,
    Field,
    Ocean,
    Lake,
    Pond,
    Desert,
    Snow,
    Beach,
    Mountain,
    Street,
    Sky,
    Wall,
}

impl UpstreamBackground {
    pub const ALL: [UpstreamBackground; 13] = [
        UpstreamBackground::Forest,
        UpstreamBackground::Bamboo,
        UpstreamBackground::Field,
        UpstreamBackground::Ocean,
        UpstreamBackground::Lake,
        UpstreamBackground::Pond,
        UpstreamBackground::Desert,
        UpstreamBackground::Snow,
        UpstreamBackground::Beach,
        UpstreamBackground::Mountain,
        UpstreamBackground::Street,
        UpstreamBackground::Sky,
        UpstreamBackground::Wall,
    ];

    pub fn name(self) -> &'static str {
        match self {
            UpstreamBackground::Forest => "forest",
            UpstreamBackground::Bamboo => "bamboo",
            UpstreamBackground::Field => "field",
            UpstreamBackground::Ocean => "ocean",
            UpstreamBackground::Lake => "lake",
            UpstreamBackground::Pond => "pond",
            UpstreamBackground::Desert => "desert",
            UpstreamBackground::Snow => "snow",
            UpstreamBackground::Beach => "beach",
            UpstreamBackground::Mountain => "mountain",
            UpstreamBackground::Street => "street",
            UpstreamBackground::Sky => "sky",
            UpstreamBackground::Wall => "wall",
        }
    }

    /// The Waterbirds place painted by [`paint_background`], for the six shared backgrounds.
    pub fn waterbirds_place(self) -> Option<Background> {
        match self {
            UpstreamBackground::Forest => Some(Background::Forest),
            UpstreamBackground::Bamboo => Some(Background::Bamboo),
            UpstreamBackground::Field => Some(Background::Field),
            UpstreamBackground::Ocean => Some(Background::Ocean),
            UpstreamBackground::Lake => Some(Background::Lake),
            UpstreamBackground::Pond => Some(Background::Pond),
            _ => None,
        }
    }
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

fn rect(x0: f32, y0: f32, x1: f32, y1: f32) -> Shape {
    Shape::Polygon(vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
}

/// The upper half of an ellipse centred at `c` as a polygon (domes: mushroom caps, umbrellas).
fn dome(c: (f32, f32), rx: f32, ry: f32, steps: usize) -> Vec<(f32, f32)> {
    (0..=steps)
        .map(|k| {
            let t = PI * k as f32 / steps as f32;
            (c.0 + rx * t.cos(), c.1 - ry * t.sin())
        })
        .collect()
}

/// A colour of the birds' palette and its name.
fn palette_colour(rng: &mut ChaCha8Rng) -> (&'static str, Rgb) {
    let (name, c) = PALETTE[rng.gen_range(0..PALETTE.len())];
    (name, rgb(c[0], c[1], c[2]))
}

/// A sprite of any category: parts in the local frame, rotation and mirror.
#[derive(Debug, Clone)]
pub struct Sprite {
    pub parts: Vec<(Shape, Rgb)>,
    pub angle: f32,
    pub mirror: bool,
}

/// Draws a random instance of `c` (proportions, colours, pose from `rng`).
pub fn sprite(c: Category, rng: &mut ChaCha8Rng) -> Sprite {
    sprite_described(c, rng).0
}

/// What a caption may say of a drawn sprite: the palette name of its main colour and, for birds, the pose.
#[derive(Debug, Clone, Copy)]
pub struct SpriteLook {
    pub colour: &'static str,
    pub pose: Option<Pose>,
}

/// [`sprite`] and what it looks like; draws exactly what [`sprite`] draws from `rng`.
pub fn sprite_described(c: Category, rng: &mut ChaCha8Rng) -> (Sprite, SpriteLook) {
    match c {
        Category::Bird(s) => {
            let colours = BirdColours::sample(rng);
            let b = bird_sprite(s, &colours, rng);
            let look = SpriteLook {
                colour: colours.name,
                pose: Some(b.pose),
            };
            let sprite = Sprite {
                parts: b.parts,
                angle: b.angle,
                mirror: b.mirror,
            };
            (sprite, look)
        }
        Category::Object(o) => {
            let (parts, colour) = object_parts_described(o, rng);
            let sprite = Sprite {
                parts,
                angle: rng.gen_range(-0.2..=0.2),
                mirror: rng.gen_bool(0.5),
            };
            (sprite, SpriteLook { colour, pose: None })
        }
    }
}

/// Parts of a non-bird object.
pub fn object_parts(kind: ObjectKind, rng: &mut ChaCha8Rng) -> Vec<(Shape, Rgb)> {
    object_parts_described(kind, rng).0
}

/// [`object_parts`] and the palette name of the object's main colour (a pet's fur).
fn object_parts_described(
    kind: ObjectKind,
    rng: &mut ChaCha8Rng,
) -> (Vec<(Shape, Rgb)>, &'static str) {
    let (main_name, main) = palette_colour(rng);
    let (_, second) = palette_colour(rng);
    let dark = scale(main, 0.6);
    let black = rgb(25, 25, 28);
    let glass = rgb(170, 200, 222);
    let mut p: Vec<(Shape, Rgb)> = Vec::new();
    match kind {
        ObjectKind::Car => {
            // Side view: long low body, cabin with two windows on top, two wheels.
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
        ObjectKind::Boat => {
            // Sailboat: trapezoid hull, mast, main sail and jib.
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
        ObjectKind::House => {
            // Square wall, triangular roof, chimney, door and a window.
            let wall_h = 0.5 * jit(rng, 0.15);
            let roof_h = 0.38 * jit(rng, 0.2);
            let roof_col =
                [rgb(150, 45, 35), rgb(80, 80, 90), rgb(110, 70, 40)][rng.gen_range(0..3)];
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
        ObjectKind::Chair => {
            // Side view: tall back, seat, two pairs of legs.
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
        ObjectKind::Bottle => {
            // Upright: body with round shoulders, long neck, cap, label.
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
        ObjectKind::Fish => {
            // Side view: oval body, forked tail, dorsal fin, eye.
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
        ObjectKind::Flower => {
            // Stem with two leaves, a ring of petals and a centre.
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
        ObjectKind::Mushroom => {
            // Thick pale stem under a wide dome cap with spots.
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
        ObjectKind::Kite => {
            // Diamond with two coloured halves, spars and a tail with bows.
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
        ObjectKind::Umbrella => {
            // Open umbrella: dome canopy with a scalloped rim, tip, shaft and a hooked handle.
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
        ObjectKind::Cat | ObjectKind::Dog => {
            let pet = if kind == ObjectKind::Cat {
                Pet::Cat
            } else {
                Pet::Dog
            };
            let (parts, fur) = pet_sprite(pet, rng);
            return (parts, fur);
        }
    }
    (p, main_name)
}

/// Paints a background on a `w` x `h` canvas.
pub fn paint(kind: UpstreamBackground, w: usize, h: usize, rng: &mut ChaCha8Rng) -> Canvas {
    if let Some(place) = kind.waterbirds_place() {
        return paint_background(place, w, h, 1.0, rng).0;
    }
    let mut c = Canvas::new(w, h, [0.5; 3]);
    let nseed: u64 = rng.gen();
    let (wf, hf) = (w as f32, h as f32);
    let bright = jit(rng, 0.12);
    let hue = rng.gen_range(-0.06f32..=0.06);
    let tint = move |col: Rgb| -> Rgb { scale([col[0] + hue, col[1], col[2] - hue], bright) };
    let sky_top = tint(rgb(115, 165, 225));
    let sky_bot = tint(rgb(205, 225, 245));
    let sky = move |y: f32, horizon: f32| mix(sky_top, sky_bot, (y / horizon).clamp(0.0, 1.0));
    match kind {
        UpstreamBackground::Desert => {
            let hz = rng.gen_range(0.25..0.45) * hf;
            let light = tint(rgb(232, 200, 140));
            let dark = tint(rgb(190, 145, 90));
            let freq = rng.gen_range(2.0..4.0);
            c.paint(|x, y| {
                if y < hz {
                    return sky(y, hz);
                }
                let d = (y - hz) / (hf - hz);
                let ridge =
                    ((x / wf * freq + fbm(nseed, x / (wf / 4.0), y / (wf / 6.0)) * 2.0 + d * 5.0)
                        * PI)
                        .sin();
                mix(light, dark, (ridge * 0.5 + 0.5).powf(3.0) * 0.8)
            });
        }
        UpstreamBackground::Snow => {
            let hz = rng.gen_range(0.3..0.5) * hf;
            let hills = tint(rgb(150, 165, 190));
            let snow1 = tint(rgb(245, 248, 252));
            let snow2 = tint(rgb(200, 212, 230));
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
        UpstreamBackground::Beach => {
            let hz = rng.gen_range(0.2..0.35) * hf;
            let shore = hz + rng.gen_range(0.15..0.3) * hf;
            let sea = tint(rgb(40, 120, 180));
            let sand = tint(rgb(230, 210, 160));
            let wet = tint(rgb(190, 165, 120));
            c.paint(|x, y| {
                let edge = shore + (fbm(nseed, x / (wf / 4.0), 0.0) - 0.5) * 0.08 * hf;
                if y < hz {
                    sky(y, hz)
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
        UpstreamBackground::Mountain => {
            let far = tint(rgb(120, 135, 165));
            let near = tint(rgb(85, 80, 75));
            let grass = tint(rgb(90, 130, 60));
            let base_far = rng.gen_range(0.25..0.4) * hf;
            let base_near = base_far + rng.gen_range(0.12..0.22) * hf;
            let snow_line = rng.gen_range(0.06..0.12) * hf;
            let ground = rng.gen_range(0.75..0.88) * hf;
            c.paint(|x, y| {
                let peak_far =
                    base_far - (value_noise(nseed, x / (wf / 4.0), 0.0) * 0.25 * hf).abs();
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
                    sky(y, base_far)
                }
            });
        }
        UpstreamBackground::Street => {
            let street = rng.gen_range(0.62..0.75) * hf;
            let road = tint(rgb(80, 80, 85));
            c.paint(|x, y| {
                if y < street {
                    sky(y, street)
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
                let col = tint(walls[rng.gen_range(0..walls.len())]);
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
        UpstreamBackground::Sky => {
            let top = tint(rgb(70, 130, 210));
            let bot = tint(rgb(190, 215, 240));
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
        UpstreamBackground::Wall => {
            let walls = [
                rgb(225, 210, 180),
                rgb(190, 210, 190),
                rgb(185, 200, 220),
                rgb(225, 190, 190),
                rgb(200, 200, 200),
            ];
            let wall = tint(walls[rng.gen_range(0..walls.len())]);
            let floor = rng.gen_range(0.72..0.88) * hf;
            let wood = tint(rgb(140, 95, 55));
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
                    tint(rgb(120, 160, 190)),
                );
            }
        }
        _ => unreachable!("Waterbirds places are painted by scene::paint_background"),
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_category_and_background_draws_something() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for c in Category::all() {
            let s = sprite(c, &mut rng);
            assert!(s.parts.len() >= 3, "{c:?}");
        }
        for b in UpstreamBackground::ALL {
            let canvas = paint(b, 32, 32, &mut rng);
            let (lo, hi) = canvas
                .px
                .iter()
                .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
            assert!(hi - lo > 0.1, "{b:?} is flat");
        }
    }
}
