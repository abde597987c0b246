//! The Cats & Apples scene (Faithfulness Test I, paper section 4.1): a sitting cat or dog and a red apple.
use super::bird::eye;
use super::palette_colour;
use crate::data::draw::{cap, circle, ell, mix, rgb, scale, Canvas, Rgb, Shape};
use rand_chacha::ChaCha8Rng;

/// Animals of the Cats & Apples set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pet {
    Dog,
    Cat,
}

/// Parts of a sitting cat (pointed ears, round face, long upright tail) or dog (floppy ears, long muzzle), and the
/// palette name of its fur.
pub fn pet_sprite(pet: Pet, rng: &mut ChaCha8Rng) -> (Vec<(Shape, Rgb)>, &'static str) {
    let (name, fur) = palette_colour(rng);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::scene::{place_sprite, PALETTE};
    use rand::SeedableRng;

    #[test]
    fn pets_are_drawn_in_a_palette_colour_and_the_seed_fixes_them() {
        for pet in [Pet::Cat, Pet::Dog] {
            let (parts, fur) = pet_sprite(pet, &mut ChaCha8Rng::seed_from_u64(3));
            assert!(PALETTE.iter().any(|(name, _)| *name == fur));
            let (again, _) = pet_sprite(pet, &mut ChaCha8Rng::seed_from_u64(3));
            assert_eq!(format!("{parts:?}"), format!("{again:?}"));
            let c = place_sprite(
                &parts,
                0.0,
                false,
                30.0,
                48,
                48,
                &mut ChaCha8Rng::seed_from_u64(1),
            );
            assert!(c.mask.iter().filter(|&&m| m > 0.0).count() > 100, "{pet:?}");
        }
    }

    #[test]
    fn an_apple_is_mostly_red() {
        let mut c = Canvas::new(32, 32, [0.0; 3]);
        paint_apple(&mut c, (16.0, 18.0), 8.0);
        let red = c.px.chunks(3).filter(|p| p[0] > 0.7 && p[1] < 0.2).count();
        assert!(red > 100, "{red} red pixels");
    }
}
