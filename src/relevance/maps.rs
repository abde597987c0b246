//! What every relevance method shares: the score interface, the normalised patch/pixel map pair, and the
//! contrastive map (one score's map minus another's, clipped at 0).
use anyhow::{bail, Result};
use tch::{Kind, Tensor};

use crate::models::vit::Vit;

/// A scalar score per image, a differentiable function of the classifier's tokens at one layer:
/// `[b, p+1, d] -> [b]`. Each method states at which layer it hands the tokens over (`score_layer`, HF
/// `hidden_states` indexing, -1 = `last_hidden_state`); the score must treat the images of a batch independently
/// (the gradient of the batch's sum is then each image's own gradient).
pub type ScoreFn<'a> = dyn FnMut(&Tensor) -> Result<Tensor> + 'a;

/// A relevance map at patch and at pixel resolution, each in [0, 1]: divided per image by its maximum, all zero
/// where the raw map has no positive value.
#[derive(Debug)]
pub struct RelevanceMaps {
    /// `[b, p]`, row-major over the patch grid.
    pub patches: Tensor,
    /// `[b, 1, H, W]`: the raw patch map upsampled bilinearly (`align_corners = false`), then normalised.
    pub pixels: Tensor,
}

impl RelevanceMaps {
    /// From a raw, non-negative patch map `[b, p]` (a square grid); negative values are clipped to 0 first.
    pub fn from_patches(raw: &Tensor, image_size: i64) -> Result<Self> {
        let (b, p) = raw.size2()?;
        let grid = grid_of(p)?;
        let raw = raw.detach().to_kind(Kind::Float).clamp_min(0.0); // [b, p]
        let pixels = raw.view([b, 1, grid, grid]).upsample_bilinear2d(
            [image_size, image_size],
            false,
            None,
            None,
        ); // [b, 1, H, W]
        Ok(RelevanceMaps {
            patches: normalise_max(&raw),
            pixels: normalise_max(&pixels),
        })
    }

    /// Number of images.
    pub fn len(&self) -> i64 {
        self.patches.size()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Concatenates batches of maps (images in order).
    pub fn cat(parts: &[RelevanceMaps]) -> Self {
        let patches: Vec<&Tensor> = parts.iter().map(|m| &m.patches).collect();
        let pixels: Vec<&Tensor> = parts.iter().map(|m| &m.pixels).collect();
        RelevanceMaps {
            patches: Tensor::cat(&patches, 0),
            pixels: Tensor::cat(&pixels, 0),
        }
    }
}

/// Side of a square patch grid of `p` patches.
pub fn grid_of(p: i64) -> Result<i64> {
    let grid = (p as f64).sqrt().round() as i64;
    if grid * grid != p {
        bail!("{p} patches do not form a square grid");
    }
    Ok(grid)
}

/// Non-negative maps `[b, ...]` divided per image by their maximum; an image whose maximum is 0 stays 0.
pub fn normalise_max(maps: &Tensor) -> Tensor {
    let b = maps.size()[0];
    let flat = maps.reshape([b, -1]); // [b, m]
    let max = flat.amax([1], true); // [b, 1]
    let safe = max.clamp_min(f64::from(f32::MIN_POSITIVE));
    (flat / safe).reshape(maps.size())
}

/// The contrastive map: `relu(a - b)` on the normalised patch maps (so that neither score's gradient scale
/// decides), normalised again. For TExplain: `a` for the target word, `b` for the class word; what is left is the
/// region that speaks for the spurious word and not for the class.
pub fn contrastive(a: &RelevanceMaps, b: &RelevanceMaps, image_size: i64) -> Result<RelevanceMaps> {
    if a.patches.size() != b.patches.size() {
        bail!(
            "contrastive maps of different shapes: {:?} and {:?}",
            a.patches.size(),
            b.patches.size()
        );
    }
    RelevanceMaps::from_patches(&(&a.patches - &b.patches).relu(), image_size)
}

/// Checks that a score is `[b]` for `b` images.
pub(crate) fn check_score(score: &Tensor, b: i64) -> Result<()> {
    if score.size() != [b] {
        bail!("a score must be [b] = [{b}], got {:?}", score.size());
    }
    Ok(())
}

/// The logit of each image's class, read from the final tokens: use with `score_layer = -1`. `classes`: `[b]`
/// (i64), on the model's device. MaskTune's score.
pub fn class_logit_score<'a>(
    vit: &'a Vit,
    classes: &'a Tensor,
) -> impl FnMut(&Tensor) -> Result<Tensor> + 'a {
    move |tokens: &Tensor| {
        let logits = vit.head_from_tokens(tokens, -1, false)?; // [b, num_labels]
        Ok(logits
            .gather(1, &classes.view([-1, 1]), false)
            .squeeze_dim(1)) // [b]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn maps_are_normalised_per_image_and_zero_stays_zero() {
        let raw = Tensor::from_slice(&[0f32, 2.0, 4.0, 1.0, 0.0, 0.0, 0.0, 0.0]).view([2, 4]);
        let maps = RelevanceMaps::from_patches(&raw, 4).unwrap();
        let patches = Vec::<f32>::try_from(maps.patches.reshape([-1])).unwrap();
        assert_eq!(patches, [0.0, 0.5, 1.0, 0.25, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(maps.pixels.size(), [2, 1, 4, 4]);
        assert!((maps.pixels.get(0).max().double_value(&[]) - 1.0).abs() < 1e-6);
        assert_eq!(
            maps.pixels.get(1).abs().sum(Kind::Float).double_value(&[]),
            0.0
        );
        assert!(
            RelevanceMaps::from_patches(&Tensor::zeros([1, 5], (Kind::Float, Device::Cpu)), 4)
                .is_err()
        );
    }

    #[test]
    fn contrastive_keeps_what_only_the_first_score_points_at() {
        let a = Tensor::from_slice(&[1f32, 0.5, 0.2, 0.0]).view([1, 4]);
        let b = Tensor::from_slice(&[2f32, 0.0, 0.0, 0.0]).view([1, 4]); // normalised: [1, 0, 0, 0]
        let a = RelevanceMaps::from_patches(&a, 4).unwrap();
        let b = RelevanceMaps::from_patches(&b, 4).unwrap();
        let c = contrastive(&a, &b, 4).unwrap();
        // relu([1, 0.5, 0.2, 0] - [1, 0, 0, 0]) = [0, 0.5, 0.2, 0] -> / 0.5.
        let got = Vec::<f32>::try_from(c.patches.reshape([-1])).unwrap();
        let want = [0.0, 1.0, 0.4, 0.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
    }
}
