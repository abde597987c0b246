//! The object complement (issue 24, Build 5), a labelled non-word baseline: `1 −` the classifier's
//! gradient-weighted attention rollout of its predicted class logit (Chefer, Gur & Wolf, ICCV 2021, as
//! [`super::rollout`] computes it; the class-logit score is MaskTune's, [`super::maps::class_logit_score`]): the
//! region the classifier does NOT use for its class. It ignores the target word entirely — it is not a word map
//! and says nothing about what the explanation named; it shows what masking "everything but the object" does.
use anyhow::Result;
use tch::{Kind, Tensor};

use super::maps::{class_logit_score, RelevanceMaps};
use super::rollout::gradient_rollout;
use crate::models::vit::Vit;

/// `1 −` the normalised rollout maps (patch and pixel) of each image's predicted class logit through every block
/// (the relevance method `object_complement`). `xs`: pixel values `[b, c, H, W]`. Each map stays in [0, 1]; its
/// maximum is `1 −` the rollout map's minimum.
pub fn object_complement(vit: &Vit, xs: &Tensor) -> Result<RelevanceMaps> {
    let predicted = tch::no_grad(|| vit.forward_features(xs, -1, false))?
        .logits
        .argmax(-1, false); // [b]
    object_complement_of(vit, xs, &predicted)
}

/// [`object_complement`] for given classes (`[b]` i64; the `object_complement` arm of the fine-tuning stage passes
/// each training sample's label: the object the classifier uses for that class).
pub fn object_complement_of(vit: &Vit, xs: &Tensor, classes: &Tensor) -> Result<RelevanceMaps> {
    let classes = classes.to_device(xs.device());
    let rollout = gradient_rollout(vit, xs, -1, &mut class_logit_score(vit, &classes))?;
    Ok(complement(&rollout))
}

/// `1 − m` of a pair of normalised maps.
pub fn complement(maps: &RelevanceMaps) -> RelevanceMaps {
    RelevanceMaps {
        patches: maps.patches.ones_like() - &maps.patches,
        pixels: maps.pixels.ones_like().to_kind(Kind::Float) - &maps.pixels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn the_map_is_one_minus_the_predicted_class_rollout() {
        let (_vs, vit) = crate::models::vit::sharp_tiny(13, Some(2));
        let xs = Tensor::randn([3, 3, 16, 16], (Kind::Float, Device::Cpu));
        let got = object_complement(&vit, &xs).unwrap();
        let logits = vit.forward_features(&xs, -1, false).unwrap().logits; // [b, labels]
        let predicted = logits.argmax(-1, false);
        let r = gradient_rollout(&vit, &xs, -1, &mut class_logit_score(&vit, &predicted)).unwrap();
        for (g, m) in [(&got.patches, &r.patches), (&got.pixels, &r.pixels)] {
            assert!((g + m - 1.0).abs().max().double_value(&[]) < 1e-6);
        }
        // The rollout's strongest patch is the complement's 0, in every image.
        assert!(got.patches.amin([1], false).abs().max().double_value(&[]) < 1e-6);
    }
}
