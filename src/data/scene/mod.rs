//! Procedural scenes shared by the synthetic data sets: bird species (two classes told apart by shape), land and
//! water backgrounds, distractor objects, and cats/dogs/apples for the Faithfulness Test I set.
//!
//! Birds are sprites in a local frame (body length ~1, head towards +x, y down) drawn as filled shapes into a
//! sprite canvas whose mask is the true bird mask; backgrounds are painted per pixel from value noise. Colours for
//! both bird classes come from one palette ([`PALETTE`]) so colour carries no class information; shape does
//! (waterbirds: long neck / long or flat bill / elongated body; landbirds: compact round body, short beak, legs).
//!
//! - [`species`]: the ten species, their folders and caption words;
//! - [`bird`]: a bird's colours, pose and parts, one function per body plan;
//! - [`background`]: the six Waterbirds places, one painter per place;
//! - [`distractor`]: rocks, clouds, flowers and boats behind the bird;
//! - [`compose`]: placing a sprite with its exact mask (inside the frame or anywhere, cut by the border), occluders;
//! - [`place`]: the place mask (water or land pixels: no sky, bird, distractor or object);
//! - [`object`]: the label-correlated spurious object (a dock) of the object setting, with its mask;
//! - [`pets`]: cats, dogs and apples of the Cats & Apples set.
use super::draw::{rgb, Rgb};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

pub mod background;
pub mod bird;
pub mod compose;
pub mod distractor;
pub mod object;
pub mod pets;
pub mod place;
pub mod species;

pub use background::{paint_background, Background};
pub use bird::{bird_sprite, BirdColours, BirdSprite, Pose};
pub use compose::{occlude, place_sprite, place_sprite_with, Placement};
pub use distractor::{paint_distractor, sample_distractors, Distractor};
pub use object::{paint_object, ObjectKind, SpuriousObject};
pub use pets::{paint_apple, pet_sprite, Pet};
pub use place::place_mask;
pub use species::Species;

/// Place codes of the `place` column.
pub const LAND: i64 = 0;
pub const WATER: i64 = 1;

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

/// A colour of [`PALETTE`] and its name (one draw).
pub(crate) fn palette_colour(rng: &mut ChaCha8Rng) -> (&'static str, Rgb) {
    let (name, c) = PALETTE[rng.gen_range(0..PALETTE.len())];
    (name, rgb(c[0], c[1], c[2]))
}
