//! Masks applied to images: what a masked pixel becomes (MaskTune fills with zero; a donor image's pixels after
//! Xiao et al. 2021), the agreement of a mask with the true background, and the overlay PNGs of the masks stage.
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// What masked pixels become (YAML `mask_value`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum MaskValue {
    /// Black (MaskTune's fill).
    Zero,
    /// The image's mean colour.
    Mean,
    /// The same pixels of another training image, its donor, drawn at random whatever its label (the fill of
    /// Xiao et al. 2021's Mixed-Rand backgrounds): a constant fill leaves the mask's shape in the image, and where
    /// the masks sit on an object that one class carries, that shape carries the class as the object did.
    Donor,
    /// A donor's pixels where the donor's own mask covers them (its background, as the arm's masks see it), black
    /// where it does not: the donors are the arm's other masked samples, and a donor gives only what its mask takes
    /// for background, not (as far as the mask is right) its bird, the thing its label names.
    DonorBackground,
}

impl MaskValue {
    /// The YAML name.
    pub fn name(self) -> &'static str {
        match self {
            MaskValue::Zero => "zero",
            MaskValue::Mean => "mean",
            MaskValue::Donor => "donor",
            MaskValue::DonorBackground => "donor_background",
        }
    }

    /// The one colour occlusion fills its windows with: the fill itself where it is one colour (zero, mean), black
    /// where it is another image's pixels (the donor fills), which a sliding window has no donor for.
    pub fn one_colour(self) -> MaskValue {
        match self {
            MaskValue::Zero | MaskValue::Mean => self,
            MaskValue::Donor | MaskValue::DonorBackground => MaskValue::Zero,
        }
    }
}

/// Applies masks [b, 1, H, W] (true = mask) to u8 images [b, 3, H, W]: masked pixels become `value`, taken for
/// [`MaskValue::Donor`] and [`MaskValue::DonorBackground`] from `donors` [b, 3, H, W] (what each image's donor
/// gives; ignored by the other fills).
pub fn apply_masks(
    images: &Tensor,
    masks: &Tensor,
    value: MaskValue,
    donors: Option<&Tensor>,
) -> Result<Tensor> {
    let fill = match value {
        MaskValue::Zero | MaskValue::Mean => colour_fill(images, value),
        MaskValue::Donor | MaskValue::DonorBackground => match donors {
            Some(d) if d.size() == images.size() => d.shallow_clone(),
            Some(d) => bail!(
                "donor images {:?} do not match the images {:?}",
                d.size(),
                images.size()
            ),
            None => bail!(
                "mask_value {} needs a donor image for every masked image",
                value.name()
            ),
        },
    };
    Ok(fill_masked(images, masks, &fill))
}

/// Applies masks [b, 1, H, W] (true = mask) to u8 images [b, 3, H, W] with MaskTune's black fill.
pub fn black_out(images: &Tensor, masks: &Tensor) -> Tensor {
    fill_masked(images, masks, &colour_fill(images, MaskValue::Zero))
}

/// The one colour per image that `value` fills with, u8 [b, 3, 1, 1]: each image's mean colour for
/// [`MaskValue::Mean`], black otherwise (the donor fills have no one colour: [`MaskValue::one_colour`]). Occlusion
/// fills its windows with it.
pub fn colour_fill(images: &Tensor, value: MaskValue) -> Tensor {
    match value.one_colour() {
        MaskValue::Mean => images
            .to_kind(Kind::Float)
            .mean_dim(&[2i64, 3][..], true, Kind::Float)
            .round()
            .to_kind(Kind::Uint8),
        _ => Tensor::zeros(
            [images.size()[0], images.size()[1], 1, 1],
            (Kind::Uint8, images.device()),
        ),
    } // [b, 3, 1, 1]
}

/// `images` [b, 3, H, W] with the masked pixels ([b, 1, H, W], true = mask) taken from `fill` (broadcast to them).
fn fill_masked(images: &Tensor, masks: &Tensor, fill: &Tensor) -> Tensor {
    images.where_self(&masks.logical_not(), &fill.expand_as(images))
}

/// What each image gives under [`MaskValue::DonorBackground`]: image k takes from image `donor_of[k]` of the same
/// batch its pixels under its own mask and black elsewhere. `images` u8 [b, 3, H, W], `masks` [b, 1, H, W].
pub fn donor_backgrounds(images: &Tensor, masks: &Tensor, donor_of: &[usize]) -> Tensor {
    let index = Tensor::from_slice(&donor_of.iter().map(|&k| k as i64).collect::<Vec<_>>())
        .to_device(images.device());
    let donor_masks = masks.index_select(0, &index).to_kind(Kind::Bool); // [b, 1, H, W]
    let donor_images = images.index_select(0, &index); // [b, 3, H, W]
    donor_images.where_self(&donor_masks, &donor_images.zeros_like())
}

/// The donor of each of `n` rows: a seeded random derangement (no row gives to itself unless there is one row).
/// [`MaskValue::Donor`] draws it over the training rows, the same for every arm of a seed so that paired
/// differences compare masks, not donors; [`MaskValue::DonorBackground`] over an arm's masked samples.
pub fn donor_rows(n: usize, seed: u64) -> Vec<usize> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut rows: Vec<usize> = (0..n).collect();
    rows.shuffle(&mut rng);
    // Each row gives to the next in a random cycle: a derangement whenever n > 1.
    let mut donor = vec![0; n];
    for k in 0..n {
        donor[rows[k]] = rows[(k + 1) % n];
    }
    donor
}

/// Mask quality against the true bird masks (both [b, 1, H, W], 1 = masked / bird): the IoU of the mask with
/// the true background, and the share of masked pixels that fall on the bird, averaged over images.
pub fn mask_scores(masks: &Tensor, bird: &Tensor) -> (f64, f64) {
    let masks = masks.to_kind(Kind::Bool);
    let bird = bird.to_kind(Kind::Bool);
    let background = bird.logical_not();
    let dims: &[i64] = &[1, 2, 3];
    let inter = masks
        .logical_and(&background)
        .sum_dim_intlist(dims, false, Kind::Float);
    let union = masks
        .logical_or(&background)
        .sum_dim_intlist(dims, false, Kind::Float)
        .clamp_min(1.0);
    let on_bird = masks
        .logical_and(&bird)
        .sum_dim_intlist(dims, false, Kind::Float);
    let masked = masks
        .sum_dim_intlist(dims, false, Kind::Float)
        .clamp_min(1.0);
    (
        (inter / union).mean(Kind::Float).double_value(&[]),
        (on_bird / masked).mean(Kind::Float).double_value(&[]),
    )
}

/// Renders an overlay: the image with the cam as a red heat layer and the mask outlined darker. u8 [3, H, W].
pub fn overlay(image: &Tensor, cam: &Tensor, mask: &Tensor) -> Tensor {
    tch::no_grad(|| {
        let img = image.to_kind(Kind::Float); // [3, H, W]
        let heat = cam.to_kind(Kind::Float).squeeze_dim(0); // [H, W]
        let red = Tensor::stack(&[&heat * 255.0, heat.zeros_like(), heat.zeros_like()], 0); // [3, H, W]
        let mixed = &img * 0.55 + red * 0.45;
        let dim = mask.to_kind(Kind::Float).squeeze_dim(0) * 0.35; // darker where masked
        (mixed * (dim.neg() + 1.0).unsqueeze(0))
            .clamp(0.0, 255.0)
            .to_kind(Kind::Uint8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn occlusion_takes_the_fill_where_it_is_one_colour_and_black_for_donors() {
        assert_eq!(MaskValue::Zero.one_colour(), MaskValue::Zero);
        assert_eq!(MaskValue::Mean.one_colour(), MaskValue::Mean);
        assert_eq!(MaskValue::Donor.one_colour(), MaskValue::Zero);
        assert_eq!(MaskValue::DonorBackground.one_colour(), MaskValue::Zero);
        let images = Tensor::arange(2 * 3 * 4, (Kind::Int64, Device::Cpu))
            .view([2, 3, 2, 2])
            .to_kind(Kind::Uint8);
        let mean = colour_fill(&images, MaskValue::Mean);
        assert_eq!(mean.size(), [2, 3, 1, 1]);
        assert_eq!(mean.int64_value(&[0, 0, 0, 0]), 2); // round(mean(0, 1, 2, 3)) = round(1.5)
        for value in [
            MaskValue::Zero,
            MaskValue::Donor,
            MaskValue::DonorBackground,
        ] {
            let black = colour_fill(&images, value);
            assert_eq!(black.size(), [2, 3, 1, 1]);
            assert_eq!(black.sum(Kind::Int64).int64_value(&[]), 0);
        }
    }

    #[test]
    fn masks_apply_and_score_against_the_true_bird() {
        let images = Tensor::full([1, 3, 4, 4], 200, (Kind::Uint8, Device::Cpu));
        let masks = Tensor::zeros([1, 1, 4, 4], (Kind::Bool, Device::Cpu));
        let _ = masks.narrow(2, 0, 2).fill_(1); // top half masked
        let masked = black_out(&images, &masks);
        assert!(masked.equal(&apply_masks(&images, &masks, MaskValue::Zero, None).unwrap()));
        assert_eq!(masked.sum(Kind::Int64).int64_value(&[]), 200 * 3 * 8);
        let bird = Tensor::zeros([1, 1, 4, 4], (Kind::Uint8, Device::Cpu));
        let _ = bird.narrow(2, 3, 1).fill_(1); // the bird is the bottom row
        let (iou, on_bird) = mask_scores(&masks, &bird);
        assert!((iou - 8.0 / 12.0).abs() < 1e-6, "{iou}");
        assert_eq!(on_bird, 0.0);
    }

    #[test]
    fn donor_fill_takes_the_donors_pixels_where_masked() {
        let images = Tensor::full([2, 3, 4, 4], 200, (Kind::Uint8, Device::Cpu));
        let donors = Tensor::arange(2 * 3 * 16, (Kind::Int64, Device::Cpu))
            .view([2, 3, 4, 4])
            .to_kind(Kind::Uint8);
        let masks = Tensor::zeros([2, 1, 4, 4], (Kind::Bool, Device::Cpu));
        let _ = masks.get(0).narrow(2, 0, 2).fill_(1); // image 0: left half; image 1: nothing
        let masked = apply_masks(&images, &masks, MaskValue::Donor, Some(&donors)).unwrap();
        let left = masked.get(0).narrow(2, 0, 2);
        assert!(left.equal(&donors.get(0).narrow(2, 0, 2)));
        assert!(masked
            .get(0)
            .narrow(2, 2, 2)
            .equal(&images.get(0).narrow(2, 2, 2)));
        assert!(masked.get(1).equal(&images.get(1)));
        // Without donors, or with donors of another shape, a clear error.
        let none = apply_masks(&images, &masks, MaskValue::Donor, None).unwrap_err();
        assert!(none.to_string().contains("donor"), "{none}");
        let short = apply_masks(&images, &masks, MaskValue::Donor, Some(&donors.get(0)));
        assert!(short.unwrap_err().to_string().contains("do not match"));
    }

    #[test]
    fn donor_rows_are_a_seeded_derangement() {
        for n in [2, 3, 50] {
            let donors = donor_rows(n, 7);
            assert_eq!(donors, donor_rows(n, 7), "seeded");
            let mut sorted = donors.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "every row gives once");
            assert!(
                donors.iter().enumerate().all(|(r, &d)| r != d),
                "none to itself"
            );
        }
        assert_ne!(donor_rows(50, 7), donor_rows(50, 8));
        assert_eq!(donor_rows(1, 7), [0]);
    }

    #[test]
    fn donor_backgrounds_give_only_what_the_donors_mask_covers() {
        // Image k is filled with the value 10 (k + 1); image 0's mask is its left column, image 1's its top row.
        let images = Tensor::cat(
            &[
                Tensor::full([1, 3, 2, 2], 10, (Kind::Uint8, Device::Cpu)),
                Tensor::full([1, 3, 2, 2], 20, (Kind::Uint8, Device::Cpu)),
            ],
            0,
        );
        let masks = Tensor::zeros([2, 1, 2, 2], (Kind::Bool, Device::Cpu));
        let _ = masks.get(0).narrow(2, 0, 1).fill_(1);
        let _ = masks.get(1).narrow(1, 0, 1).fill_(1);
        let given = donor_backgrounds(&images, &masks, &[1, 0]);
        // Image 0 receives image 1's top row (20) and black below; image 1 receives image 0's left column.
        let want0 = Tensor::from_slice(&[20u8, 20, 0, 0]).view([2, 2]);
        let want1 = Tensor::from_slice(&[10u8, 0, 10, 0]).view([2, 2]);
        for c in 0..3 {
            assert!(given.get(0).get(c).equal(&want0), "{given}");
            assert!(given.get(1).get(c).equal(&want1), "{given}");
        }
        // Applied: image 0's left column becomes what its donor gave there (20 on top, black below).
        let masked =
            apply_masks(&images, &masks, MaskValue::DonorBackground, Some(&given)).unwrap();
        let want = Tensor::from_slice(&[20u8, 10, 0, 10]).view([2, 2]);
        assert!(masked.get(0).get(0).equal(&want), "{masked}");
    }
}
