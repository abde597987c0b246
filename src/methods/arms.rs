//! The masks of the control arms that separate TExplain's selection from its masks (issue 24, Build 7), each
//! fine-tuned like TExplain ([`super::MaskedFinetune`]) and differing from it in one thing only:
//!
//! * `oracle_random`: Random's selection, the true background masked ([`true_background_masks`]), as the oracle
//!   does for TExplain's selection (Sagawa et al. 2020's Waterbirds ships the bird masks; the oracle arm of the
//!   TExplain paper, section 4.3). oracle − oracle_random is what the selection adds once the masks are right.
//! * `frame`: TExplain's selection, the centre prior at each sample's TExplain coverage ([`frame_masks`]): the
//!   pixels farthest from the image centre, as many as the sample's TExplain mask covers, the prior of
//!   [`crate::relevance::quality::centre_prior_maps`]. TExplain − frame is what the word map adds over position.
//! * `object_complement`: TExplain's selection, masked by 1 − the gradient-weighted attention rollout of the
//!   sample's class logit ([`crate::relevance::complement::object_complement_of`], the map of the relevance
//!   method `object_complement` for the sample's label instead of the predicted class; Chefer, Gur and Wolf,
//!   "Generic Attention-model Explainability for Interpreting Bi-Modal and Encoder-Decoder Transformers", ICCV
//!   2021, reference hila-chefer/Transformer-MM-Explainability), thresholded by TExplain's rule: a labelled
//!   non-word mask of everything the classifier does not look at.
//! * `oracle_object`: TExplain's selection, the spurious object's true mask ([`true_object_masks`]).
//! * `oracle_object_balanced`: the same, and on a selected sample without the object a carrying sample's object mask
//!   ([`balanced_object_masks`]). Masking an object that one class carries leaves a hole of its shape where it
//!   stood, on that class's images only: the hole is as predictive as the object was. Lent to the samples that do
//!   not carry it, the same holes stand on both classes and say nothing about the label.
//! * `texplain_lent` / `random_lent`: TExplain's / Random's selection with its own relevance masks lent the same way
//!   ([`lend_masks`]), with no true mask: a selected sample whose target is the run's spurious word
//!   ([`spurious_word`], read from the flags and the labels) keeps its mask, the others take those masks in turn.
//!
//! Every function returns bool masks `[k, 1, H, W]` (true = masked) on the CPU, in the order of the rows asked for.
use anyhow::{ensure, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use tch::{Device, Kind, Tensor};

use crate::data::InputPipeline;
use crate::flags::Flag;
use crate::models::vit::Vit;
use crate::relevance::complement::object_complement_of;
use crate::relevance::quality::centre_prior_maps;
use crate::relevance::threshold::{cat_masks, threshold_masks, Threshold};

fn index(rows: &[usize]) -> Tensor {
    Tensor::from_slice(&rows.iter().map(|&r| r as i64).collect::<Vec<_>>())
}

/// The true background of `rows`: the complement of their bird masks (`bird`: `[n, 1, H, W]`, 1 = bird).
pub fn true_background_masks(bird: &Tensor, rows: &[usize]) -> Tensor {
    bird.index_select(0, &index(rows))
        .eq(0)
        .to_device(Device::Cpu)
}

/// The spurious object's true masks of `rows` (`objects`: `[n, 1, H, W]`, 1 = object); an error naming
/// `folder` (the data's `object_masks/`) where the data have none.
pub fn true_object_masks(
    objects: Option<&Tensor>,
    rows: &[usize],
    folder: &std::path::Path,
) -> Result<Tensor> {
    let objects = objects.with_context(|| {
        format!(
            "oracle_object: the data ship no true masks of the spurious object ({} is missing)",
            folder.display()
        )
    })?;
    Ok(objects
        .index_select(0, &index(rows))
        .ne(0)
        .to_device(Device::Cpu))
}

/// [`true_object_masks`] of a selection (`masks`: `[k, 1, H, W]`, true = object) with every empty mask replaced by a
/// carrying sample's ([`lend_masks`] with the carrying samples as the keepers).
pub fn balanced_object_masks(masks: &Tensor) -> Result<Tensor> {
    let keeps: Vec<bool> = coverage_counts(masks)?.iter().map(|&c| c > 0).collect();
    lend_masks(masks, &keeps)
}

/// Masks lent across a selection (`masks`: `[k, 1, H, W]`): a row with `keeps[i]` keeps its own mask, the j-th row
/// without it takes the mask of the (j mod c)-th of the c keepers, in selection order. Without any keeper the masks
/// are returned as they are.
pub fn lend_masks(masks: &Tensor, keeps: &[bool]) -> Result<Tensor> {
    let k = masks.size()[0];
    ensure!(
        keeps.len() as i64 == k,
        "lend_masks: {} keep flags for {k} masks",
        keeps.len()
    );
    let keepers: Vec<i64> = (0..k).filter(|&i| keeps[i as usize]).collect();
    if keepers.is_empty() {
        return Ok(masks.shallow_clone());
    }
    let mut lent = 0usize;
    let source: Vec<i64> = (0..k)
        .map(|i| {
            if keeps[i as usize] {
                i
            } else {
                lent += 1;
                keepers[(lent - 1) % keepers.len()]
            }
        })
        .collect();
    Ok(masks.index_select(0, &Tensor::from_slice(&source)))
}

/// The words a spurious word is drawn from: target words of at least this share of the flagged samples.
pub const SPURIOUS_WORD_MIN_SHARE: f64 = 0.05;

/// [`spurious_word`]'s rule in words, part of the lent arms' stage keys: a change of the rule (which no config
/// names) moves them.
pub const SPURIOUS_WORD_RULE: &str =
    "the largest class gap of presence among the top words, over the targets of >= 5 % of the flagged";

/// The run's spurious word, read from the flags and the training labels (`labels[i]` is the class of `flags[i]`):
/// among the target words of at least [`SPURIOUS_WORD_MIN_SHARE`] of the flagged samples, the one whose presence
/// among a sample's top words differs most between a class and the rest (max over classes c of P(word among the top
/// words | y = c) − P(… | y ≠ c); ties to the word first in alphabetical order). A spurious feature is a concept
/// that is not the class but goes with it; the explanations name it on one class's images more than on the
/// others'. `None` when nothing is flagged or only one class is present.
pub fn spurious_word(flags: &[Flag], labels: &[i64]) -> Option<String> {
    assert_eq!(flags.len(), labels.len(), "one label per flag");
    let mut flagged: BTreeMap<&str, usize> = BTreeMap::new();
    for f in flags.iter().filter(|f| f.flagged) {
        if let Some(w) = f.target.as_deref() {
            *flagged.entry(w).or_default() += 1;
        }
    }
    let n_flagged: usize = flagged.values().sum();
    let min = (SPURIOUS_WORD_MIN_SHARE * n_flagged as f64).max(1.0);
    let classes: BTreeSet<i64> = labels.iter().copied().collect();
    let share = |word: &str, in_class: &dyn Fn(i64) -> bool| -> Option<f64> {
        let (mut with, mut all) = (0usize, 0usize);
        for (f, &y) in flags.iter().zip(labels) {
            if in_class(y) {
                all += 1;
                with += usize::from(f.top_words.iter().any(|w| w == word));
            }
        }
        (all > 0).then(|| with as f64 / all as f64)
    };
    flagged
        .into_iter()
        .filter(|&(_, n)| n as f64 >= min)
        .filter_map(|(word, _)| {
            let gap = classes
                .iter()
                .filter_map(|&c| Some(share(word, &|y| y == c)? - share(word, &|y| y != c)?))
                .fold(None, |best: Option<f64>, g| {
                    Some(best.map_or(g, |b| b.max(g)))
                })?;
            Some((word, gap))
        })
        .fold(None, |best: Option<(&str, f64)>, (w, gap)| match best {
            Some((_, g)) if g >= gap => best,
            _ => Some((w, gap)),
        })
        .map(|(w, _)| w.to_string())
}

/// Masked pixels per image of `masks` (`[k, 1, H, W]`, any kind; nonzero = masked).
pub fn coverage_counts(masks: &Tensor) -> Result<Vec<i64>> {
    let k = masks.size()[0];
    let counts = masks
        .ne(0)
        .reshape([k, -1])
        .sum_dim_intlist(1, false, Kind::Int64)
        .to_device(Device::Cpu);
    Ok(Vec::try_from(counts)?)
}

/// Frame masks `[k, 1, size, size]`: per image, the `counts[i]` pixels of the centre prior farthest from the image
/// centre (ties at equal distance broken by row-major pixel order, so each mask covers exactly `counts[i]` pixels);
/// a count of 0 gives an empty mask.
pub fn frame_masks(counts: &[i64], size: i64) -> Result<Tensor> {
    let m = size * size;
    ensure!(
        counts.iter().all(|&c| (0..=m).contains(&c)),
        "frame masks: a coverage outside 0..={m} pixels in {counts:?}"
    );
    let prior = Vec::<f32>::try_from(centre_prior_maps(1, size).reshape([-1]))?;
    let mut order: Vec<usize> = (0..prior.len()).collect();
    // farthest first; stable, so equal distances keep the row-major order
    order.sort_by(|&a, &b| prior[b].total_cmp(&prior[a]));
    let mut rank = vec![0i64; order.len()];
    for (r, &p) in order.iter().enumerate() {
        rank[p] = r as i64;
    }
    let rank = Tensor::from_slice(&rank).view([1, 1, size, size]); // [1, 1, H, W]
    let counts = Tensor::from_slice(counts).view([-1, 1, 1, 1]); // [k, 1, 1, 1]
    Ok(rank.lt_tensor(&counts)) // [k, 1, H, W]
}

/// The object-complement masks of `images_u8` (u8 `[k, 3, H, W]`) with their `classes`, thresholded by
/// `threshold` (TExplain's rule), `batch_size` images at a time.
pub fn object_complement_masks(
    vit: &Vit,
    images_u8: &Tensor,
    classes: &[i64],
    input: &InputPipeline,
    threshold: Threshold,
    batch_size: usize,
) -> Result<Tensor> {
    let (n, _, _, _) = images_u8.size4()?;
    ensure!(
        n == classes.len() as i64,
        "object complement: {n} images, {} classes",
        classes.len()
    );
    let size = vit.config().image_size;
    let batch = batch_size.max(1);
    let mut out = Vec::new();
    for (k, chunk) in classes.chunks(batch).enumerate() {
        let start = (k * batch) as i64;
        let xs = input.eval_batch(&images_u8.narrow(0, start, chunk.len() as i64));
        let maps = object_complement_of(vit, &xs, &Tensor::from_slice(chunk))?;
        out.push(threshold_masks(&maps.pixels, threshold)?.to_device(Device::Cpu));
    }
    Ok(cat_masks(&out, size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relevance::maps::class_logit_score;
    use crate::relevance::rollout::gradient_rollout;

    fn bools(t: &Tensor) -> Vec<bool> {
        Vec::<bool>::try_from(t.reshape([-1])).unwrap()
    }

    #[test]
    fn frame_covers_exactly_c_pixels_farthest_from_the_centre() {
        // 4x4: the four corners are farthest (distance √(1.5²+1.5²)), then the eight edge pixels (√(1.5²+0.5²)),
        // then the four centre pixels.
        let masks = frame_masks(&[4, 0, 12, 16, 5], 4).unwrap();
        assert_eq!(masks.size(), [5, 1, 4, 4]);
        assert_eq!(coverage_counts(&masks).unwrap(), [4, 0, 12, 16, 5]);
        let corners = [0, 3, 12, 15];
        let m0 = bools(&masks.get(0));
        for (p, &on) in m0.iter().enumerate() {
            assert_eq!(on, corners.contains(&p), "pixel {p}");
        }
        let centre = [5, 6, 9, 10];
        let m2 = bools(&masks.get(2));
        for (p, &on) in m2.iter().enumerate() {
            assert_eq!(on, !centre.contains(&p), "pixel {p}");
        }
        // the fifth pixel is the first edge pixel in row-major order
        let m4 = bools(&masks.get(4));
        let on: Vec<usize> = (0..16).filter(|&p| m4[p]).collect();
        assert_eq!(on, [0, 1, 3, 12, 15]);
        assert!(frame_masks(&[17], 4).is_err());
    }

    #[test]
    fn frame_coverage_follows_texplains_masks() {
        let texplain = Tensor::zeros([2, 1, 6, 6], (Kind::Uint8, Device::Cpu));
        let _ = texplain.get(0).narrow(1, 2, 3).fill_(1); // 3 rows x 6 = 18 pixels
        let counts = coverage_counts(&texplain).unwrap();
        assert_eq!(counts, [18, 0]);
        let frame = frame_masks(&counts, 6).unwrap();
        assert_eq!(coverage_counts(&frame).unwrap(), [18, 0]);
        // the frame's pixels are all at least as far from the centre as any pixel it leaves
        let prior = Vec::<f32>::try_from(centre_prior_maps(1, 6).reshape([-1])).unwrap();
        let m = bools(&frame.get(0));
        let least_in = (0..36)
            .filter(|&p| m[p])
            .map(|p| prior[p])
            .fold(1.0, f32::min);
        let most_out = (0..36)
            .filter(|&p| !m[p])
            .map(|p| prior[p])
            .fold(0.0, f32::max);
        assert!(least_in >= most_out, "{least_in} < {most_out}");
    }

    /// A hand-made dataset of three 2x2 images: row 1's bird covers 3 pixels, row 2 is all bird; the spurious
    /// object sits on row 0's first pixel and row 2's last, row 1 carries none.
    fn hand_made() -> crate::data::Dataset {
        let bird = Tensor::zeros([3, 1, 2, 2], (Kind::Uint8, Device::Cpu));
        let _ = bird.get(1).view([-1]).narrow(0, 0, 3).fill_(1);
        let _ = bird.get(2).fill_(1);
        let object = Tensor::zeros([3, 1, 2, 2], (Kind::Uint8, Device::Cpu));
        let _ = object.get(0).view([-1]).narrow(0, 0, 1).fill_(1);
        let _ = object.get(2).view([-1]).narrow(0, 3, 1).fill_(1);
        crate::data::Dataset {
            images: Tensor::zeros([3, 3, 2, 2], (Kind::Uint8, Device::Cpu)),
            y: vec![0, 1, 1],
            place: vec![0, 1, 0],
            img_ids: vec![10, 11, 12],
            filenames: vec!["a.png".into(), "b.png".into(), "c.png".into()],
            bird_masks: Some(bird),
            place_masks: None,
            object_masks: Some(object),
        }
    }

    #[test]
    fn true_masks_pick_the_rows_asked_for() {
        let data = hand_made();
        let bg = true_background_masks(data.bird_masks.as_ref().unwrap(), &[2, 1]);
        assert_eq!(
            bools(&bg),
            [false, false, false, false, false, false, false, true]
        );
        let folder = std::path::Path::new("/data/x/object_masks");
        let object = true_object_masks(data.object_masks.as_ref(), &[2, 1, 0], folder).unwrap();
        assert_eq!(object.size(), [3, 1, 2, 2]);
        assert_eq!(
            bools(&object),
            [false, false, false, true, false, false, false, false, true, false, false, false]
        );
        let without = crate::data::Dataset {
            object_masks: None,
            ..data
        };
        let err = true_object_masks(without.object_masks.as_ref(), &[0], folder)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("oracle_object") && err.contains("/data/x/object_masks"),
            "{err}"
        );
    }

    #[test]
    fn balanced_object_masks_lend_the_carrying_masks_in_turn() {
        // Rows 0 and 2 carry the object (one pixel each, at 0 and 3); rows 1, 3 and 4 do not.
        let m = Tensor::zeros([5, 1, 2, 2], (Kind::Bool, Device::Cpu));
        let _ = m.get(0).view([-1]).narrow(0, 0, 1).fill_(1);
        let _ = m.get(2).view([-1]).narrow(0, 3, 1).fill_(1);
        let b = balanced_object_masks(&m).unwrap();
        let on = |t: &Tensor, i: i64| -> Vec<bool> { Vec::try_from(t.get(i).view([-1])).unwrap() };
        assert_eq!(on(&b, 0), [true, false, false, false]);
        assert_eq!(
            on(&b, 1),
            [true, false, false, false],
            "the first carrying row's mask"
        );
        assert_eq!(on(&b, 2), [false, false, false, true]);
        assert_eq!(on(&b, 3), [false, false, false, true], "the second's");
        assert_eq!(on(&b, 4), [true, false, false, false], "in turn");
        let none = Tensor::zeros([2, 1, 2, 2], (Kind::Bool, Device::Cpu));
        assert_eq!(
            coverage_counts(&balanced_object_masks(&none).unwrap()).unwrap(),
            [0, 0]
        );
    }

    #[test]
    fn lend_masks_keeps_the_keepers_and_lends_theirs_in_turn() {
        let m = Tensor::from_slice(&[1u8, 2, 3, 4, 5])
            .view([5, 1, 1, 1])
            .to_kind(Kind::Int64);
        let vals = |t: &Tensor| Vec::<i64>::try_from(t.view([-1])).unwrap();
        let lent = lend_masks(&m, &[false, true, false, true, false]).unwrap();
        assert_eq!(vals(&lent), [2, 2, 4, 4, 2]);
        assert_eq!(vals(&lend_masks(&m, &[false; 5]).unwrap()), [1, 2, 3, 4, 5]);
        let err = lend_masks(&m, &[true]).unwrap_err().to_string();
        assert!(err.contains("1 keep flags for 5 masks"), "{err}");
    }

    #[test]
    fn the_spurious_word_is_the_target_the_explanations_name_on_one_class() {
        let flag = |flagged: bool, top: &[&str]| Flag {
            img_id: 0,
            top_words: top.iter().map(|w| w.to_string()).collect(),
            flagged,
            target: top.iter().find(|w| **w != "bird").map(|w| w.to_string()),
        };
        // Class 1 (4 samples): "dock" among the top words of 3, the target of 2 flagged ones; class 0 (4 samples):
        // "forest" the flagged target of 3, but "forest" is named on 2 of class 1's samples too. Gaps: dock 3/4 − 0
        // = 0.75; forest 3/4 − 2/4 = 0.25. "forest" is flagged more often, "dock" goes with the class.
        let flags = vec![
            flag(true, &["dock", "bird", "forest"]),
            flag(true, &["dock", "bird", "forest"]),
            flag(false, &["bird", "dock"]),
            flag(false, &["bird", "water"]),
            flag(true, &["forest", "bird"]),
            flag(true, &["forest", "bird"]),
            flag(true, &["forest", "bird"]),
            flag(false, &["bird", "water"]),
        ];
        let labels = [1, 1, 1, 1, 0, 0, 0, 0];
        assert_eq!(spurious_word(&flags, &labels).as_deref(), Some("dock"));
        // A word no flagged sample targets is never the word, however class-bound ("water" here is a target of no
        // flagged sample); with one class present there is no gap to read.
        assert_eq!(spurious_word(&flags[..4], &labels[..4]), None);
        // Ties go to the first word alphabetically; nothing flagged gives no word.
        let tie = [flag(true, &["b"]), flag(true, &["a"])];
        assert_eq!(spurious_word(&tie, &[0, 1]).as_deref(), Some("a"));
        assert_eq!(spurious_word(&[flag(false, &["a"])], &[0]), None);
    }

    #[test]
    fn object_complement_masks_threshold_one_minus_the_class_rollout() {
        let (_vs, vit) = crate::models::vit::sharp_tiny(3, Some(2));
        let images = Tensor::randint(256, [3, 3, 16, 16], (Kind::Uint8, Device::Cpu));
        let input = InputPipeline {
            normalize: crate::data::NormalizeConfig::default(),
            augment: crate::data::AugmentConfig {
                flip: false,
                random_resized_crop: None,
            },
            device: Device::Cpu,
        };
        let classes = [0i64, 1, 1];
        let threshold = Threshold::TopK { percent: 40.0 };
        // Batches of 2: the masks do not depend on the batching.
        let masks = object_complement_masks(&vit, &images, &classes, &input, threshold, 2).unwrap();
        let xs = input.eval_batch(&images);
        let class_tensor = Tensor::from_slice(&classes);
        let mut score = class_logit_score(&vit, &class_tensor);
        let rollout = gradient_rollout(&vit, &xs, -1, &mut score).unwrap();
        let want = threshold_masks(&(1.0 - &rollout.pixels), threshold).unwrap();
        assert!(masks.equal(&want));
        // What the rollout finds most relevant is never masked.
        let top = rollout.pixels.reshape([3, -1]).argmax(1, true);
        let at_top = masks.reshape([3, -1]).gather(1, &top, false);
        assert_eq!(at_top.sum(Kind::Int64).int64_value(&[]), 0);
    }
}
