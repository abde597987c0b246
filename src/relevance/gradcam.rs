//! GradCAM on ViT tokens at any encoder layer (Selvaraju et al. 2017; for ViTs as pytorch-grad-cam's
//! `vit_example.py`: activations `[p+1, d]` with the CLS token dropped and the patches reshaped to the grid).
//!
//! The tokens `A` at layer `l` are a leaf; the encoder runs on from them to the layer the score reads
//! ([`Vit::forward_from`]), so the gradient of the score with respect to `A` includes the blocks in between. Channel
//! weights are the mean gradient over patch tokens (GradCAM's spatial average), the map is ReLU(sum_c w_c A[:, c])
//! over the patch tokens. With `l` = the score's layer this is the paper's word-targeted GradCAM.
//! pytorch-grad-cam's recipe targets `blocks[-1].norm1`, the layernormed input of the last block's attention, which
//! is not a `hidden_states` layer and is not offered here; `l = L - 1` (the last block's input) is the closest.
use anyhow::Result;
use tch::{Kind, Tensor};

use super::maps::{check_score, RelevanceMaps, ScoreFn};
use crate::models::vit::Vit;

/// The raw GradCAM patch map `[b, p]` from tokens `[b, p+1, d]` and the score's gradient with respect to them
/// (same shape): ReLU(sum_c alpha_c A[:, c]) with alpha the mean gradient over the patch tokens; CLS dropped.
pub fn gradcam_from_grads(tokens: &Tensor, grads: &Tensor) -> Result<Tensor> {
    let (_, n, _) = tokens.size3()?;
    let patches = tokens.narrow(1, 1, n - 1); // [b, p, d]
    let alpha = grads.narrow(1, 1, n - 1).mean_dim(1, true, Kind::Float); // [b, 1, d]
    Ok((patches * alpha)
        .sum_dim_intlist(-1, false, Kind::Float)
        .relu()) // [b, p]
}

/// GradCAM maps of `score` `[b]` with respect to `tokens` `[b, p+1, d]` (a tensor of the graph that produced it).
pub fn gradcam_from_score(
    tokens: &Tensor,
    score: &Tensor,
    image_size: i64,
) -> Result<RelevanceMaps> {
    check_score(score, tokens.size()[0])?;
    let grads =
        Tensor::f_run_backward(&[score.sum(Kind::Float)], &[tokens], false, false)?.remove(0); // [b, p+1, d]
    let raw = tch::no_grad(|| gradcam_from_grads(&tokens.detach(), &grads))?; // [b, p]
    RelevanceMaps::from_patches(&raw, image_size)
}

/// GradCAM at encoder layer `layer` of the score that reads the tokens of layer `score_layer` (HF
/// `hidden_states` indices, -1 = `last_hidden_state`; `layer` must not come after `score_layer`). `xs`: pixel
/// values `[b, c, H, W]` as the classifier takes them. The ViT runs in eval mode; its parameters get no gradient.
pub fn gradcam(
    vit: &Vit,
    xs: &Tensor,
    layer: i64,
    score_layer: i64,
    score: &mut ScoreFn<'_>,
) -> Result<RelevanceMaps> {
    let tokens = tch::no_grad(|| vit.forward_features(xs, layer, false))?
        .tokens
        .detach()
        .set_requires_grad(true); // [b, p+1, d]
    let read = vit.forward_from(&tokens, layer, score_layer, false)?; // [b, p+1, d]
    let s = score(&read)?; // [b]
    gradcam_from_score(&tokens, &s, vit.config().image_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relevance::maps::class_logit_score;
    use tch::{nn, Device};

    fn tiny() -> (nn::VarStore, Vit, Tensor) {
        let (vs, vit) = crate::models::vit::sharp_tiny(7, None);
        let xs = Tensor::randn([3, 3, 16, 16], (Kind::Float, Device::Cpu));
        (vs, vit, xs)
    }

    #[test]
    fn gradcam_at_the_scores_layer_follows_the_formula() {
        let (_vs, vit, xs) = tiny();
        // A score that reads every token (as the translator does), GradCAM at the layer it reads: today's recipe.
        let w = Tensor::randn([96], (Kind::Float, Device::Cpu));
        let mut reads_all = |t: &Tensor| -> Result<Tensor> {
            Ok(t.matmul(&w).tanh().sum_dim_intlist(1, false, Kind::Float)) // [b]
        };
        for layer in [-1, 2] {
            let maps = gradcam(&vit, &xs, layer, layer, &mut reads_all).unwrap();
            let tokens = vit
                .forward_features(&xs, layer, false)
                .unwrap()
                .tokens
                .detach()
                .set_requires_grad(true);
            let score = reads_all(&tokens).unwrap();
            // GradCAM written out: channel weights = mean gradient over patches, ReLU of the weighted sum,
            // bilinear upsampling of the 4x4 patch grid, divided by the image's maximum.
            let grads =
                Tensor::run_backward(&[score.sum(Kind::Float)], &[&tokens], false, false).remove(0);
            let want = tch::no_grad(|| {
                let n = tokens.size()[1];
                let alpha = grads.narrow(1, 1, n - 1).mean_dim(1, true, Kind::Float);
                let cam = (tokens.narrow(1, 1, n - 1) * alpha)
                    .sum_dim_intlist(-1, false, Kind::Float)
                    .relu()
                    .reshape([3, 1, 4, 4])
                    .upsample_bilinear2d([16, 16], false, None, None);
                &cam / cam.amax([1, 2, 3], true).clamp_min(1e-12)
            });
            let diff = (&maps.pixels - &want).abs().max().double_value(&[]);
            assert!(diff < 1e-6, "layer {layer}: {diff}");
            assert!(maps.pixels.max().double_value(&[]) > 0.99);
        }
    }

    #[test]
    fn gradcam_of_a_cls_head_at_its_own_layer_is_empty() {
        // The head reads the CLS token only: at the layer it reads, no patch token gets a gradient, the channel
        // weights are 0 and so is the map. A class-logit GradCAM needs an earlier layer.
        let (_vs, vit, xs) = tiny();
        let classes = Tensor::from_slice(&[0i64, 1, 1]);
        let maps = gradcam(&vit, &xs, -1, -1, &mut class_logit_score(&vit, &classes)).unwrap();
        assert_eq!(maps.pixels.abs().sum(Kind::Float).double_value(&[]), 0.0);
        let maps = gradcam(&vit, &xs, 3, -1, &mut class_logit_score(&vit, &classes)).unwrap();
        assert!(maps.pixels.max().double_value(&[]) > 0.99);
    }

    #[test]
    fn gradcam_at_an_earlier_layer_differentiates_through_the_blocks_between() {
        let (_vs, vit, xs) = tiny();
        let classes = Tensor::from_slice(&[1i64, 0, 1]);
        let maps = gradcam(&vit, &xs, 1, -1, &mut class_logit_score(&vit, &classes)).unwrap();
        // By hand: tokens of layer 1 as a leaf, the full rest of the model, the same GradCAM formula.
        let t1 = vit
            .forward_features(&xs, 1, false)
            .unwrap()
            .tokens
            .detach()
            .set_requires_grad(true);
        let logit = vit
            .head_from_tokens(&t1, 1, false)
            .unwrap()
            .gather(1, &classes.view([-1, 1]), false)
            .sum(Kind::Float);
        logit.backward();
        let raw = gradcam_from_grads(&t1.detach(), &t1.grad()).unwrap();
        let want = RelevanceMaps::from_patches(&raw, 16).unwrap();
        assert!(
            (&maps.patches - &want.patches)
                .abs()
                .max()
                .double_value(&[])
                < 1e-6
        );
        assert_eq!(maps.patches.size(), [3, 16]);
        // The map of one image does not depend on the others in its batch.
        let alone = gradcam(
            &vit,
            &xs.narrow(0, 1, 1),
            1,
            -1,
            &mut class_logit_score(&vit, &classes.narrow(0, 1, 1)),
        )
        .unwrap();
        assert!(
            (&alone.patches - maps.patches.narrow(0, 1, 1))
                .abs()
                .max()
                .double_value(&[])
                < 1e-6
        );
        assert!(gradcam(&vit, &xs, -1, 2, &mut class_logit_score(&vit, &classes)).is_err());
    }

    #[test]
    fn with_a_pooled_translator_word_gradcam_is_cam() {
        // Zhou et al. 2016: CAM_i = sum_c w_c A_i[c] with w the readout's weights on the pooled feature. For the
        // score s(T(pool A)), the weights are W^T ds/dprefix (scaled by 1/(p+1) for the mean); GradCAM's channel
        // mean is exact since every slot has the same gradient.
        use crate::models::translator::{self, Readout};
        let (_vs, vit, xs) = tiny();
        for readout in [Readout::Sum, Readout::Mean] {
            let (_tvs, tr, prefix_score) = translator::tiny_scored(readout);
            let mut score = |t: &Tensor| -> Result<Tensor> { Ok(prefix_score(&tr.forward(t)?)) };
            let maps = gradcam(&vit, &xs, -1, -1, &mut score).unwrap();
            let tokens = vit.forward_features(&xs, -1, false).unwrap().tokens; // [b, n, d]
            let prefix = tr
                .forward(&tokens)
                .unwrap()
                .detach()
                .set_requires_grad(true);
            let ds = Tensor::run_backward(
                &[prefix_score(&prefix).sum(Kind::Float)],
                &[&prefix],
                false,
                false,
            )
            .remove(0)
            .view([3, 16]); // [b, K*d_lm]
            let scale = if readout == Readout::Mean {
                1.0 / 17.0
            } else {
                1.0
            };
            let w = ds.matmul(&tr.linear_part()) * scale; // [b, d]: the CAM weights
            let cam = (tokens.narrow(1, 1, 16) * w.unsqueeze(1))
                .sum_dim_intlist(-1, false, Kind::Float)
                .relu(); // [b, p]
            let want = RelevanceMaps::from_patches(&cam, 16).unwrap();
            let diff = (&maps.patches - &want.patches)
                .abs()
                .max()
                .double_value(&[]);
            assert!(diff < 1e-4, "{readout}: {diff}");
            assert!(maps.patches.max().double_value(&[]) > 0.99);
            // Every slot's gradient is the CAM weight vector.
            let leaf = tokens.detach().set_requires_grad(true);
            let grads = Tensor::run_backward(
                &[score(&leaf).unwrap().sum(Kind::Float)],
                &[&leaf],
                false,
                false,
            )
            .remove(0); // [b, n, d]
            let spread = (&grads - w.unsqueeze(1)).abs().max().double_value(&[]);
            assert!(spread < 1e-5, "{readout}: {spread}");
        }
    }
}
