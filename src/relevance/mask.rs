//! Masks applied to images: what a masked pixel becomes (MaskTune fills with zero), the agreement of a mask with
//! the true background, and the overlay PNGs of the masks stage.
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

/// What masked pixels become (YAML `mask_value`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MaskValue {
    /// Black (MaskTune's fill).
    Zero,
    /// The image's mean colour.
    Mean,
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
