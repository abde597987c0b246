//! The place mask of a synthetic Waterbirds scene (written to `place_masks/` when `place_masks: true`): the pixels
//! that show the place, water or land. It is the ground truth a faithful "water"/"land" word map should light up,
//! narrower than the background (TExplain issue 24: the sky band of Field/Ocean/Lake scenes counts as background
//! but names no place). A supersampled pixel is place when its centre is at or below the painter's horizon (the
//! whole sky band, the Lake's wooded shore and the Field's distant tree line are above it) and no excluded mask (the
//! bird, the distractors, any other drawn object) covers it; the output pixel is place when at least half of its
//! supersampled pixels are and no excluded mask reaches half of them (the rule of the bird mask, so the place mask
//! is disjoint from every mask written with it).

/// The fraction of each `ss`x`ss` block of a `w`x`h` (supersampled) mask that is on (> 0), row-major at `w/ss`.
fn coverage(mask: &[f32], w: usize, h: usize, ss: usize) -> Vec<f32> {
    let (ow, oh) = (w / ss, h / ss);
    let norm = 1.0 / (ss * ss) as f32;
    let mut out = vec![0.0; ow * oh];
    for y in 0..oh {
        for x in 0..ow {
            let mut on = 0usize;
            for dy in 0..ss {
                for dx in 0..ss {
                    on += (mask[(y * ss + dy) * w + x * ss + dx] > 0.0) as usize;
                }
            }
            out[y * ow + x] = on as f32 * norm;
        }
    }
    out
}

/// The place mask (0/255, row-major, `w/ss` x `h/ss`) of a `w`x`h` supersampled scene with the sky above
/// `horizon` (None: no sky) and the pixels of every mask in `excluded` (each `w*h`, > 0 = covered) taken out.
pub fn place_mask(
    w: usize,
    h: usize,
    horizon: Option<f32>,
    excluded: &[&[f32]],
    ss: usize,
) -> Vec<u8> {
    let ss = ss.max(1);
    for e in excluded {
        assert_eq!(e.len(), w * h, "an excluded mask has the wrong size");
    }
    let hz = horizon.unwrap_or(f32::MIN);
    let mut place = vec![0.0f32; w * h];
    for y in 0..h {
        // The painters' sky test is `y < horizon` at pixel centres.
        if (y as f32 + 0.5) < hz {
            continue;
        }
        for x in 0..w {
            let i = y * w + x;
            place[i] = excluded.iter().all(|e| e[i] <= 0.0) as u8 as f32;
        }
    }
    let excl: Vec<Vec<f32>> = excluded.iter().map(|e| coverage(e, w, h, ss)).collect();
    coverage(&place, w, h, ss)
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let free = excl.iter().all(|e| e[i] < 0.5);
            if p >= 0.5 && free {
                255
            } else {
                0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::scene::{
        bird_sprite, paint_background, paint_distractor, place_sprite, Background, BirdColours,
        Distractor, Species,
    };
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn a_hand_made_scene_has_the_known_place_mask() {
        // 4x4, horizon at 1.5: rows 0 and 1 hold sky (centres 0.5 and 1.5 - 1.5 is not above it, so row 1 is place).
        let mut bird = vec![0.0f32; 16];
        bird[2 * 4 + 1] = 1.0;
        let mut rock = vec![0.0f32; 16];
        rock[3 * 4 + 3] = 1.0;
        rock[4 + 2] = 1.0;
        let m = place_mask(4, 4, Some(1.5), &[&bird, &rock], 1);
        #[rustfmt::skip]
        let expect: Vec<u8> = vec![
            0,   0,   0,   0,
            255, 255, 0,   255,
            255, 0,   255, 255,
            255, 255, 255, 0,
        ];
        assert_eq!(m, expect);
        // No sky: every uncovered pixel is place. Supersampled 2x: a block is place when >= half of it is and no
        // excluded mask covers half of it.
        assert_eq!(place_mask(4, 4, None, &[], 1), vec![255; 16]);
        let mut half = vec![0.0f32; 16];
        half[0] = 1.0;
        half[1] = 1.0; // half of the top-left 2x2 block
        half[2] = 1.0; // a quarter of the top-right block
        assert_eq!(place_mask(4, 4, None, &[&half], 2), vec![0, 255, 255, 255]);
        // Horizon at 1.0 in 2x pixels: sub-row 0 is sky, sub-row 1 is place -> half of the top blocks: place.
        assert_eq!(place_mask(4, 4, Some(1.0), &[], 2), vec![255; 4]);
        assert_eq!(place_mask(4, 4, Some(1.6), &[], 2), vec![0, 0, 255, 255]);
    }

    /// An Ocean scene with clouds, rocks and a boat and a duck in front, drawn at `ss`x; returns the sky horizon,
    /// the distractor and bird masks (supersampled) and the place mask.
    fn ocean_scene(seed: u64, ss: usize) -> (f32, Vec<f32>, Vec<f32>, Vec<u8>) {
        let n = 48 * ss;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut bg, horizon) = paint_background(Background::Ocean, n, n, 1.0, &mut rng);
        for d in [Distractor::Clouds, Distractor::Rocks, Distractor::Boat] {
            paint_distractor(&mut bg, d, horizon, &mut rng);
        }
        let colours = BirdColours::sample(&mut rng);
        let sprite = bird_sprite(Species::Duck, &colours, &mut rng);
        let layer = place_sprite(
            &sprite.parts,
            sprite.angle,
            sprite.mirror,
            0.5 * n as f32,
            n,
            n,
            &mut rng,
        );
        let hz = horizon.expect("the ocean has a sky");
        let place = place_mask(n, n, horizon, &[&layer.mask, &bg.mask], ss);
        (hz, bg.mask, layer.mask, place)
    }

    #[test]
    fn an_ocean_scene_tiles_into_place_sky_bird_and_distractors() {
        for seed in 0..4 {
            let (hz, distractors, bird, place) = ocean_scene(seed, 1);
            let n = 48;
            let (mut counts, mut sky_rows) = ([0usize; 4], 0);
            for y in 0..n {
                let sky = (y as f32 + 0.5) < hz;
                sky_rows += sky as usize;
                for x in 0..n {
                    let i = y * n + x;
                    // Exactly one of: bird, distractor, sky, place.
                    let kinds = [
                        bird[i] > 0.0,
                        bird[i] == 0.0 && distractors[i] > 0.0,
                        bird[i] == 0.0 && distractors[i] == 0.0 && sky,
                        place[i] == 255,
                    ];
                    assert_eq!(kinds.iter().filter(|&&k| k).count(), 1, "{seed} ({x}, {y})");
                    for (c, k) in counts.iter_mut().zip(kinds) {
                        *c += k as usize;
                    }
                }
            }
            assert_eq!(counts.iter().sum::<usize>(), n * n);
            // The Ocean's sky is 20-40 % of the rows; every class is present.
            assert!((9..=20).contains(&sky_rows), "{sky_rows} sky rows");
            assert!(counts.iter().all(|&c| c > 0), "{seed}: {counts:?}");
        }
    }

    #[test]
    fn supersampled_place_avoids_the_bird_and_the_sky() {
        let ss = 2;
        let (hz, distractors, bird, place) = ocean_scene(7, ss);
        let bird_out = coverage(&bird, 96, 96, ss);
        let dis_out = coverage(&distractors, 96, 96, ss);
        for y in 0..48 {
            // Rows whose every sub-row centre is above the horizon are all sky.
            let all_sky = ((y * ss + ss - 1) as f32 + 0.5) < hz;
            for x in 0..48 {
                let i = y * 48 + x;
                if place[i] == 255 {
                    assert!(!all_sky, "place in the sky at ({x}, {y})");
                    assert!(bird_out[i] < 0.5 && dis_out[i] < 0.5, "({x}, {y})");
                }
            }
        }
        let on = place.iter().filter(|&&p| p == 255).count();
        assert!(on > 48 * 48 / 3, "{on} place pixels");
    }
}
