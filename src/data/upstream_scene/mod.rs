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
//! birds' [`super::scene::PALETTE`], so colour says little about the category; shape does.
//!
//! - [`objects`]: the parts of the twelve non-bird objects;
//! - [`backgrounds`]: the seven backgrounds beside the Waterbirds places.
use super::draw::{Rgb, Shape};
use super::scene::{bird_sprite, Background, BirdColours, Pose, Species};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

pub mod backgrounds;
pub mod objects;

pub use backgrounds::paint;
pub use objects::object_parts;
use objects::object_parts_described;

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
