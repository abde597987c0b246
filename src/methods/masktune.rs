//! MaskTune (Asgari, Khani, Khani, Hamarneh et al., "MaskTune: Mitigating Spurious Correlations by Forcing to
//! Explore", NeurIPS 2022), following the reference implementation aliasgharkhani/Masktune
//! (`src/methods/base_method.py`: `masktune`, `mask_data`, `finetune`; `src/utils/masking.py`;
//! `bash_files/waterbirds_masktune.sh`).
//!
//! 1. ERM (Waterbirds in the reference: ResNet-50, SGD with momentum 0.9, learning rate 1e-4, weight decay 1e-4,
//!    batch 128, 100 epochs, no learning-rate schedule; the best epoch by validation accuracy is kept as well as the
//!    last).
//! 2. Masks for *every* training image ([`masks`]): a saliency map of the ERM model's *predicted* class (no words,
//!    no selection), on the un-augmented image; per image, the pixels whose value exceeds the mean + 2 standard
//!    deviations (population std, `np.nanstd`) of the image's positive values are masked ([`THRESHOLD`]), and
//!    masked pixels are set to 0 in the raw image ([`crate::relevance::mask::apply_masks`] with `MaskValue::Zero`).
//! 3. Fine-tune the ERM model for one epoch on the fully masked training set, without a learning-rate schedule, then
//!    evaluate (`masktune_iterations` = 1 by default).
//!
//! What we follow and where we differ:
//! * The reference's map is XGradCAM (pytorch-grad-cam; channel weights Σ grad·act / Σ act) at the last
//!   convolutional block, min-max normalised per image. We use GradCAM (channel weights = mean gradient over the
//!   patch tokens) through [`crate::relevance::gradcam::gradcam_from_score`], the same map as TExplain's word-targeted
//!   masks, so the two methods differ only in the score (predicted-class logit here, the target word's
//!   log-probability there); the relevance-map generalisation can swap the map. Our cams are divided by their
//!   maximum after the ReLU; for any image with a non-positive patch that is the min-max normalisation, and the
//!   mean + k·std threshold is scale-free anyway.
//! * Layer: ViT tokens at `layer` (HF `hidden_states` indexing, 0 = embeddings, i = after block i). The head reads
//!   only the CLS token after the final layernorm, so the patch tokens of the last layer (L, or −1) get no gradient
//!   and give an empty map: [`masks`] refuses them. The analogue of ResNet's last block is the input of the last
//!   block, L − 1 (pytorch-grad-cam's ViT recipe also hooks the last block's first layernorm).
//! * The reference computes the masks with the *best* ERM checkpoint but fine-tunes the *last* one, resuming its
//!   optimiser state; the pipeline decides which weights it loads (ours select one epoch), and our training loop
//!   builds a fresh optimiser. The fine-tuning epoch uses the training augmentation, as the reference does.
use anyhow::{ensure, Result};
use tch::{Device, Tensor};

use crate::data::InputPipeline;
use crate::models::vit::Vit;
use crate::relevance::gradcam::gradcam_from_score;
use crate::relevance::threshold::{cat_masks, threshold_masks, Threshold};

/// MaskTune's threshold: mean + 2 std of the positive cam values of each image.
pub const THRESHOLD: Threshold = Threshold::MeanStd { k: 2.0 };

/// GradCAM maps [b, 1, H, W] (in [0, 1], per image divided by its max) of each image's predicted-class logit with
/// respect to the ViT's tokens at `layer`, and the predicted classes. `xs`: normalised images [b, 3, H, W].
pub fn predicted_class_cams(vit: &Vit, xs: &Tensor, layer: i64) -> Result<(Tensor, Vec<i64>)> {
    let last = vit.config().num_hidden_layers;
    ensure!(
        layer != -1 && layer != last,
        "MaskTune cams at layer {layer}: the head reads only the CLS token, so the patch tokens of the last layer \
         have no gradient; use a layer in 0..{last} (the last block's input is {})",
        last - 1
    );
    let tokens = tch::no_grad(|| vit.forward_features(xs, layer, false))?
        .tokens
        .detach()
        .set_requires_grad(true);
    let logits = vit.head_from_tokens(&tokens, layer, false)?; // [b, classes]
    let preds = logits.argmax(-1, false); // [b]
    let score = logits.gather(1, &preds.unsqueeze(1), false).squeeze_dim(1); // [b]
    let cams = gradcam_from_score(&tokens, &score, vit.config().image_size)?.pixels;
    let preds = Vec::<i64>::try_from(preds.to_device(Device::Cpu))?;
    Ok((cams, preds))
}

/// MaskTune's masks for every image of `images_u8` (u8 [n, 3, H, W], any device): bool [n, 1, H, W] on the CPU,
/// true = masked. Images are normalised by `input` (no augmentation) and processed `batch_size` at a time.
pub fn masks(
    vit: &Vit,
    images_u8: &Tensor,
    input: &InputPipeline,
    layer: i64,
    batch_size: usize,
) -> Result<Tensor> {
    masks_inspected(vit, images_u8, input, layer, batch_size, |_| Ok(()))
}

/// One batch of [`masks_inspected`]: images `start..start + len` with their cams [len, 1, H, W] (device of the
/// model), masks (bool, same shape) and predicted classes.
pub struct MaskBatch<'a> {
    pub start: i64,
    pub cams: &'a Tensor,
    pub masks: &'a Tensor,
    pub preds: &'a [i64],
}

/// [`masks`], handing every batch's cams, masks and predictions to `inspect` before the cams are dropped (mask
/// quality, overlays), so the maps of a whole training set never have to be held at once.
pub fn masks_inspected(
    vit: &Vit,
    images_u8: &Tensor,
    input: &InputPipeline,
    layer: i64,
    batch_size: usize,
    mut inspect: impl FnMut(MaskBatch) -> Result<()>,
) -> Result<Tensor> {
    let (n, _, h, w) = images_u8.size4()?;
    let size = vit.config().image_size;
    ensure!(
        h == size && w == size,
        "MaskTune: images are {h}x{w}, the classifier takes {size}x{size}"
    );
    let batch = batch_size.max(1) as i64;
    let mut out = Vec::new();
    for start in (0..n).step_by(batch as usize) {
        let len = (n - start).min(batch);
        let xs = input.eval_batch(&images_u8.narrow(0, start, len));
        let (cams, preds) = predicted_class_cams(vit, &xs, layer)?;
        let masks = threshold_masks(&cams, THRESHOLD)?;
        inspect(MaskBatch {
            start,
            cams: &cams,
            masks: &masks,
            preds: &preds,
        })?;
        out.push(masks.to_device(Device::Cpu));
    }
    Ok(cat_masks(&out, size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::NormalizeConfig;
    use crate::models::vit::Config;
    use tch::nn;
    use tch::Kind;

    /// A one-block ViT made linear, so the predicted class's cam is known: no position embeddings, CLS token or
    /// patch bias (a black patch's token is exactly 0, so its cam is 0); zero query/key weights (uniform attention);
    /// no MLP (zero output projection); layernorms with eps = 1, nearly linear at these small activations; and a
    /// head whose class-1 row is minus its class-0 row, so the predicted class's logit is positive. The logit is
    /// then ≈ the bright patch's token · the gradient, i.e. the cam is positive on the bright patch only.
    fn linear_vit() -> (nn::VarStore, Vit) {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let mut cfg = Config::tiny(16, 4);
        cfg.num_hidden_layers = 1;
        cfg.layer_norm_eps = 1.0;
        let vit = Vit::new(&vs.root(), &cfg);
        let vars = vs.variables();
        tch::no_grad(|| {
            for name in [
                "vit.embeddings.position_embeddings",
                "vit.embeddings.cls_token",
                "vit.embeddings.patch_embeddings.projection.bias",
                "vit.encoder.layer.0.attention.attention.query.weight",
                "vit.encoder.layer.0.attention.attention.query.bias",
                "vit.encoder.layer.0.attention.attention.key.weight",
                "vit.encoder.layer.0.attention.attention.key.bias",
                "vit.encoder.layer.0.output.dense.weight",
                "vit.encoder.layer.0.output.dense.bias",
                "classifier.bias",
            ] {
                let _ = vars[name].shallow_clone().zero_();
            }
            let head = vars["classifier.weight"].shallow_clone();
            let row0 = head.get(0).copy();
            head.get(1).copy_(&(-row0));
        });
        (vs, vit)
    }

    fn input() -> InputPipeline {
        InputPipeline {
            normalize: NormalizeConfig {
                mean: [0.0; 3],
                std: [1.0; 3],
            },
            augment: Default::default(),
            device: Device::Cpu,
        }
    }

    /// Black 16x16 images, each with one bright 4x4 patch at (patch row, patch col).
    fn bright_patch_images(patches: &[(i64, i64)]) -> Tensor {
        let images = Tensor::zeros(
            [patches.len() as i64, 3, 16, 16],
            (Kind::Uint8, Device::Cpu),
        );
        for (i, &(r, c)) in patches.iter().enumerate() {
            let _ = images
                .get(i as i64)
                .narrow(1, 4 * r, 4)
                .narrow(2, 4 * c, 4)
                .fill_(230);
        }
        images
    }

    #[test]
    fn masks_fall_on_the_patch_the_prediction_rests_on() {
        let (vs, vit) = linear_vit();
        let patches = [(1, 1), (2, 1), (1, 2), (2, 2)];
        let images = bright_patch_images(&patches);
        let m = masks(&vit, &images, &input(), 0, 3).unwrap();
        assert_eq!(m.size(), vec![4, 1, 16, 16]);
        assert_eq!(m.kind(), Kind::Bool);
        for (i, &(r, c)) in patches.iter().enumerate() {
            let mask = m.get(i as i64).squeeze_dim(0);
            let total = mask.sum(Kind::Int64).int64_value(&[]);
            let inside = mask
                .narrow(0, 4 * r, 4)
                .narrow(1, 4 * c, 4)
                .sum(Kind::Int64)
                .int64_value(&[]);
            // The cam is the bright patch's value spread bilinearly; mean + 2 std of the positive pixels keeps the
            // 2x2 pixels nearest the patch's centre.
            assert_eq!((total, inside), (4, 4), "image {i}, patch ({r}, {c})");
        }

        // The cam follows the predicted class: negating the head flips every prediction and keeps the masks.
        let xs = input().eval_batch(&images);
        let (_, preds) = predicted_class_cams(&vit, &xs, 0).unwrap();
        tch::no_grad(|| {
            let mut head = vs.variables()["classifier.weight"].shallow_clone();
            let _ = head.neg_();
        });
        let (_, flipped) = predicted_class_cams(&vit, &xs, 0).unwrap();
        assert_eq!(
            flipped,
            preds.iter().map(|p| 1 - p).collect::<Vec<_>>(),
            "{preds:?}"
        );
        let again = masks(&vit, &images, &input(), 0, 4).unwrap();
        assert!(again.equal(&m));
    }

    #[test]
    fn every_image_gets_a_mask_whatever_the_batch() {
        tch::manual_seed(2);
        let vs = nn::VarStore::new(Device::Cpu);
        let vit = Vit::new(&vs.root(), &Config::tiny(16, 4));
        let images = Tensor::randint(256, [5, 3, 16, 16], (Kind::Uint8, Device::Cpu));
        let pipeline = InputPipeline {
            normalize: Default::default(),
            augment: Default::default(),
            device: Device::Cpu,
        };
        let by_two = masks(&vit, &images, &pipeline, 2, 2).unwrap();
        assert_eq!(by_two.size(), vec![5, 1, 16, 16]);
        let at_once = masks(&vit, &images, &pipeline, 2, 5).unwrap();
        assert!(by_two.equal(&at_once));
        // The inspected batches are the masks' batches, in order, with one cam and one prediction per image.
        let mut seen = Vec::new();
        let inspected = masks_inspected(&vit, &images, &pipeline, 2, 2, |b| {
            assert_eq!(b.cams.size(), b.masks.size());
            assert_eq!(b.preds.len() as i64, b.cams.size()[0]);
            assert!(b.masks.equal(&by_two.narrow(0, b.start, b.cams.size()[0])));
            seen.push((b.start, b.preds.len()));
            Ok(())
        })
        .unwrap();
        assert!(inspected.equal(&by_two));
        assert_eq!(seen, vec![(0, 2), (2, 2), (4, 1)]);
        let empty = masks(&vit, &images.narrow(0, 0, 0), &pipeline, 2, 2).unwrap();
        assert_eq!(empty.size(), vec![0, 1, 16, 16]);
        // The last layer has no patch gradient; images of the wrong size are refused.
        assert!(masks(&vit, &images, &pipeline, 4, 2).is_err());
        assert!(masks(&vit, &images, &pipeline, -1, 2).is_err());
        let small = Tensor::zeros([1, 3, 8, 8], (Kind::Uint8, Device::Cpu));
        assert!(masks(&vit, &small, &pipeline, 2, 2).is_err());
    }
}
