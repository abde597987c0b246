//! Word-targeted GradCAM (paper section 4.3; thresholding as MaskTune, Asgari et al. 2022).
//!
//! The score of an image is the log-probability the frozen language model gives its target word, teacher-forced
//! over sampled sentences that contain the word, given the translator's prefix for the image. Its gradient with
//! respect to the classifier's token activations `A` [p+1, d] weights the channels (the mean over patch tokens,
//! as GradCAM averages over space); the cam is ReLU(sum_c alpha_c A[:, c]) over the patch tokens (CLS dropped),
//! upsampled to the image. Pixels above the threshold form the spurious region and are masked.
use anyhow::Result;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::explain::lm::pad_batch;
use crate::models::gpt2::Gpt2;

/// Which cam values become the mask.
/// In YAML: `{rule: mean_std, k: 2.0}` or `{rule: quantile, q: 0.7}`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(rename_all = "snake_case", tag = "rule", deny_unknown_fields)]
pub enum Threshold {
    /// mean + k·std of the positive cam values of the image (MaskTune: k = 2).
    MeanStd { k: f64 },
    /// The given quantile of the image's cam values (e.g. 0.7 masks the top 30 %).
    Quantile { q: f64 },
}

impl Default for Threshold {
    fn default() -> Self {
        Threshold::MeanStd { k: 2.0 }
    }
}

/// What masked pixels become (YAML `mask_value`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MaskValue {
    /// Black (MaskTune's fill).
    Zero,
    /// The image's mean colour.
    Mean,
}

/// Teacher-forced log-probability of `target` wherever it occurs in each sentence, after each image's prefix,
/// averaged over the image's sentences. `prefix` [b, k, d]; `sentences[i]` are image i's token sequences
/// (each must hold `targets[i]`; an image without one scores its word as the first token). Returns [b].
pub fn target_log_prob(
    lm: &Gpt2,
    prefix: &Tensor,
    sentences: &[Vec<Vec<i64>>],
    targets: &[i64],
) -> Result<Tensor> {
    let (b, k, _) = prefix.size3()?;
    let device = prefix.device();
    let mut rows: Vec<(usize, Vec<i64>)> = Vec::new();
    for (image, sents) in sentences.iter().enumerate() {
        if sents.is_empty() {
            rows.push((image, vec![targets[image]]));
        }
        rows.extend(sents.iter().map(|s| (image, s.clone())));
    }
    let seqs: Vec<&[i64]> = rows.iter().map(|(_, s)| s.as_slice()).collect();
    let (ids, mask) = pad_batch(&seqs, 0, device); // [r, t]
    let t = ids.size()[1];
    let owner = Tensor::from_slice(&rows.iter().map(|(i, _)| *i as i64).collect::<Vec<_>>())
        .to_device(device);
    let target_per_row = Tensor::from_slice(targets)
        .to_device(device)
        .index_select(0, &owner); // [r]
    let row_prefix = prefix.index_select(0, &owner); // [r, k, d]
    let tokens = Tensor::embedding(lm.wte(), &ids, -1, false, false); // [r, t, d]
    let embeds = Tensor::cat(&[&row_prefix, &tokens], 1).narrow(1, 0, k + t - 1); // [r, k+t-1, d]
    let logits = lm.forward_embeds(&embeds, None, false)?.narrow(1, k - 1, t); // [r, t, v]; position j predicts ids[j]
    let log_probs = logits
        .log_softmax(-1, Kind::Float)
        .gather(2, &ids.unsqueeze(-1), false)
        .squeeze_dim(-1); // [r, t]
    let is_target = ids
        .eq_tensor(&target_per_row.unsqueeze(1))
        .to_kind(Kind::Float)
        * &mask; // [r, t]
    let per_row = (log_probs * &is_target).sum_dim_intlist(1, false, Kind::Float)
        / is_target
            .sum_dim_intlist(1, false, Kind::Float)
            .clamp_min(1.0); // [r]
    let per_image = Tensor::zeros([b], (Kind::Float, device)).index_add(0, &owner, &per_row);
    let counts = Tensor::zeros([b], (Kind::Float, device)).index_add(
        0,
        &owner,
        &Tensor::ones_like(&per_row),
    );
    Ok(per_image / counts)
}

/// GradCAM maps [b, 1, H, W] in [0, 1] (per image, divided by its maximum) for token activations `tokens`
/// [b, p+1, d] (a leaf that requires grad, from which `score` [b] was computed).
pub fn cam_from_score(tokens: &Tensor, score: &Tensor, image_size: i64) -> Tensor {
    let grads = Tensor::run_backward(&[score.sum(Kind::Float)], &[tokens], false, false).remove(0); // [b, p+1, d]
    tch::no_grad(|| {
        let (b, n, _) = tokens.size3().expect("tokens are [b, p+1, d]");
        let grid = ((n - 1) as f64).sqrt() as i64;
        let patches = tokens.narrow(1, 1, n - 1); // [b, p, d]; CLS dropped
        let alpha = grads.narrow(1, 1, n - 1).mean_dim(1, true, Kind::Float); // [b, 1, d]
        let cam = (patches * alpha)
            .sum_dim_intlist(-1, false, Kind::Float)
            .relu(); // [b, p]
        let cam = cam.reshape([b, 1, grid, grid]).upsample_bilinear2d(
            [image_size, image_size],
            false,
            None,
            None,
        );
        let max = cam.amax([1, 2, 3], true).clamp_min(1e-12);
        cam / max // [b, 1, H, W]
    })
}

/// The spurious-region masks [b, 1, H, W] (bool) of cams [b, 1, H, W].
pub fn threshold_masks(cams: &Tensor, threshold: Threshold) -> Tensor {
    let b = cams.size()[0];
    let flat = cams.reshape([b, -1]); // [b, H*W]
    let cut = match threshold {
        Threshold::MeanStd { k } => {
            let positive = flat.gt(0.0).to_kind(Kind::Float);
            let count = positive
                .sum_dim_intlist(1, true, Kind::Float)
                .clamp_min(1.0);
            let mean = (&flat * &positive).sum_dim_intlist(1, true, Kind::Float) / &count;
            let var = ((&flat - &mean).square() * &positive).sum_dim_intlist(1, true, Kind::Float)
                / &count;
            mean + var.sqrt() * k
        }
        Threshold::Quantile { q } => flat.quantile_scalar(q, 1, true, "linear"),
    }; // [b, 1]
    flat.gt_tensor(&cut)
        .logical_and(&flat.gt(0.0))
        .reshape(cams.size())
}

/// Applies masks [b, 1, H, W] (true = mask) to u8 images [b, 3, H, W]: masked pixels become `value`.
pub fn apply_masks(images: &Tensor, masks: &Tensor, value: MaskValue) -> Tensor {
    let fill = if value == MaskValue::Mean {
        images
            .to_kind(Kind::Float)
            .mean_dim(&[2i64, 3][..], true, Kind::Float)
            .round()
            .to_kind(Kind::Uint8) // [b, 3, 1, 1]
    } else {
        images.zeros_like()
    };
    images.where_self(&masks.logical_not(), &fill.expand_as(images))
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
    fn mean_std_threshold_masks_the_hot_region_only() {
        // One image whose cam is 1 on a 2x2 corner and 0.1 elsewhere (8x8).
        let cam = Tensor::full([1, 1, 8, 8], 0.1, (Kind::Float, Device::Cpu));
        let _ = cam.narrow(2, 0, 2).narrow(3, 0, 2).fill_(1.0);
        let masks = threshold_masks(&cam, Threshold::MeanStd { k: 1.0 });
        assert_eq!(masks.sum(Kind::Int64).int64_value(&[]), 4);
        let q = threshold_masks(&cam, Threshold::Quantile { q: 0.5 });
        assert_eq!(
            q.sum(Kind::Int64).int64_value(&[]),
            4,
            "ties at 0.1 stay unmasked"
        );
    }

    #[test]
    fn masks_apply_and_score_against_the_true_bird() {
        let images = Tensor::full([1, 3, 4, 4], 200, (Kind::Uint8, Device::Cpu));
        let masks = Tensor::zeros([1, 1, 4, 4], (Kind::Bool, Device::Cpu));
        let _ = masks.narrow(2, 0, 2).fill_(1); // top half masked
        let masked = apply_masks(&images, &masks, MaskValue::Zero);
        assert_eq!(masked.sum(Kind::Int64).int64_value(&[]), 200 * 3 * 8);
        let bird = Tensor::zeros([1, 1, 4, 4], (Kind::Uint8, Device::Cpu));
        let _ = bird.narrow(2, 3, 1).fill_(1); // the bird is the bottom row
        let (iou, on_bird) = mask_scores(&masks, &bird);
        assert!((iou - 8.0 / 12.0).abs() < 1e-6, "{iou}");
        assert_eq!(on_bird, 0.0);
    }
}
