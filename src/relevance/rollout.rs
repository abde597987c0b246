//! Gradient-weighted attention rollout: the generic relevance rule of Chefer, Gur & Wolf, "Generic
//! Attention-model Explainability for Interpreting Bi-Modal and Encoder-Decoder Transformers" (ICCV 2021), eqs. 5-6,
//! as their ViT notebook (hila-chefer/Transformer-MM-Explainability, `Transformer_MM_explainability_ViT.ipynb`)
//! computes it:
//!
//! ```text
//! R = I                                  (n x n, n = p + 1 tokens)
//! for each block b, first to last:       Ā_b = mean_heads( relu(∇A_b ⊙ A_b) )
//!                                        R  = R + Ā_b · R
//! relevance of the patches = R[CLS, 1:]
//! ```
//!
//! `A_b` are the post-softmax attention probabilities, `∇A_b` the gradient of the explained score with respect to
//! them. Details that matter and that the reference fixes: the ReLU is applied per head *before* the mean over heads
//! (negative head contributions do not cancel positive ones); R starts at the identity (the residual path) and is
//! not row-normalised (the ICCV paper's normalisation is for the bi-modal rules, not the self-attention one); blocks
//! after the layer the score reads get no gradient and add nothing. The reference's score is the class logit before
//! softmax; any [`ScoreFn`] works here. Its visualisation min-max normalises the upsampled map; here the map is
//! divided by its maximum ([`RelevanceMaps`]), which changes no ranking (AUROC, top-k, Otsu unchanged).
//!
//! The reference explains a classifier that reads the CLS token, so the patches' relevance is R's CLS row
//! ([`Readout::Cls`]). TExplain's translator reads every token of its layer; [`Readout::Tokens`] weighs the rows of
//! R by each output token's own relevance for the score, relu(sum_c ∇o ⊙ o) (gradient × activation at the layer
//! the score reads), and sums them: the same rule applied to a score that is not read from CLS alone.
//!
//! The CVPR 2021 method of the same authors (Transformer-Explainability, "transformer_attribution") replaces
//! `A_b` by its LRP relevance; that needs LRP rules for every layer and is not built here.
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::maps::{check_score, RelevanceMaps, ScoreFn};
use crate::models::vit::Vit;

/// Ā = mean over heads of relu(grad ⊙ attention): `[b, H, n, n]` x2 -> `[b, n, n]` (the reference's `avg_heads`).
pub fn weighted_heads(attention: &Tensor, grad: &Tensor) -> Tensor {
    (grad * attention).relu().mean_dim(1, false, Kind::Float) // [b, n, n]
}

/// The relevance matrix R `[b, n, n]` of the generic rule from each block's attention probabilities and their
/// gradients (`[b, H, n, n]` each, blocks in forward order).
pub fn rollout(attentions: &[Tensor], grads: &[Tensor]) -> Result<Tensor> {
    if attentions.is_empty() || attentions.len() != grads.len() {
        bail!(
            "rollout needs one gradient per attention map and at least one block, got {} and {}",
            attentions.len(),
            grads.len()
        );
    }
    let size = attentions[0].size();
    if size.len() != 4 || size[2] != size[3] {
        bail!("attention maps must be [b, H, n, n], got {size:?}");
    }
    let (b, n) = (size[0], size[2]);
    let mut r = Tensor::eye(n, (Kind::Float, attentions[0].device()))
        .unsqueeze(0)
        .repeat([b, 1, 1]); // [b, n, n]
    for (a, g) in attentions.iter().zip(grads) {
        if a.size() != size || g.size() != size {
            bail!(
                "attention {:?} / gradient {:?} differ from the first block's {size:?}",
                a.size(),
                g.size()
            );
        }
        let cam = weighted_heads(&a.to_kind(Kind::Float), &g.to_kind(Kind::Float)); // [b, n, n]
        r = &r + cam.bmm(&r); // [b, n, n]
    }
    Ok(r)
}

/// The patches' relevance `[b, p]`: the CLS row of R without the CLS column.
pub fn cls_relevance(r: &Tensor) -> Tensor {
    let n = r.size()[2];
    r.select(1, 0).narrow(1, 1, n - 1) // [b, p]
}

/// Which token slots the map explains (YAML `readout:`, rollout and value_paths): for rollout, which rows of R make
/// the patches' relevance; for value_paths, which slots' value paths the score's gradient reads
/// ([`super::value_paths::value_paths_raw`]).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Readout {
    /// The CLS row (the reference's, for a score read from CLS); value_paths: the CLS slot's reader.
    #[default]
    Cls,
    /// Every output token's row, weighted by relu(sum_c ∇o ⊙ o) of that token at the score's layer; value_paths:
    /// every slot's value paths, each read by the score's gradient at that slot.
    Tokens,
}

/// The patches' relevance `[b, p]` from R `[b, n, n]` and per-output-token weights `[b, n]`: sum_i w_i R[i, 1:].
pub fn weighted_relevance(r: &Tensor, weights: &Tensor) -> Tensor {
    let n = r.size()[2];
    weights
        .unsqueeze(1)
        .bmm(r)
        .squeeze_dim(1)
        .narrow(1, 1, n - 1) // [b, p]
}

/// Gradient-weighted rollout maps of the score that reads the tokens of layer `score_layer` (HF `hidden_states`
/// index, -1 = `last_hidden_state`), through blocks 0 .. `score_layer`. `xs`: pixel values `[b, c, H, W]`. The ViT
/// runs in eval mode; the embeddings are a leaf, so its parameters get no gradient.
pub fn gradient_rollout(
    vit: &Vit,
    xs: &Tensor,
    score_layer: i64,
    score: &mut ScoreFn<'_>,
) -> Result<RelevanceMaps> {
    gradient_rollout_with(vit, xs, score_layer, Readout::Cls, score)
}

/// [`gradient_rollout`] with the rows of R that `readout` names.
pub fn gradient_rollout_with(
    vit: &Vit,
    xs: &Tensor,
    score_layer: i64,
    readout: Readout,
    score: &mut ScoreFn<'_>,
) -> Result<RelevanceMaps> {
    let b = xs.size()[0];
    let embeddings = tch::no_grad(|| vit.forward_features(xs, 0, false))?
        .tokens
        .detach()
        .set_requires_grad(true); // [b, p+1, d]
    let trace = vit.forward_from_with_attentions(&embeddings, 0, score_layer, false)?;
    if trace.attentions.is_empty() {
        bail!("gradient rollout: the score reads layer {score_layer}, before any attention block");
    }
    let s = score(&trace.output)?; // [b]
    check_score(&s, b)?;
    let mut inputs: Vec<&Tensor> = trace.attentions.iter().collect();
    inputs.push(&trace.output);
    let mut grads = Tensor::f_run_backward(&[s.sum(Kind::Float)], &inputs, false, false)?; // [b, H, n, n] each, then [b, n, d]
    let output_grad = grads.pop().expect("one gradient per input");
    let attentions: Vec<Tensor> = trace.attentions.iter().map(Tensor::detach).collect();
    let patches = tch::no_grad(|| -> Result<Tensor> {
        let r = rollout(&attentions, &grads)?; // [b, n, n]
        Ok(match readout {
            Readout::Cls => cls_relevance(&r),
            Readout::Tokens => {
                let w = (output_grad * trace.output.detach())
                    .sum_dim_intlist(-1, false, Kind::Float)
                    .relu(); // [b, n]
                weighted_relevance(&r, &w)
            }
        })
    })?; // [b, p]
    RelevanceMaps::from_patches(&patches, vit.config().image_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relevance::maps::class_logit_score;
    use tch::{nn, Device};

    fn t(values: &[f32], shape: &[i64]) -> Tensor {
        Tensor::from_slice(values).view(shape)
    }

    fn close(a: &Tensor, want: &[f32]) {
        let got = Vec::<f32>::try_from(a.reshape([-1])).unwrap();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn relu_comes_before_the_mean_over_heads() {
        // Two heads, two tokens. grad ⊙ A: head 0 = [[-1, 2], [0.5, 0]], head 1 = [[1, -2], [0.5, 4]].
        let a = t(&[0.5, 0.5, 0.25, 0.75, 0.5, 0.5, 0.25, 0.75], &[1, 2, 2, 2]);
        let g = t(
            &[-2.0, 4.0, 2.0, 0.0, 2.0, -4.0, 2.0, 16.0 / 3.0],
            &[1, 2, 2, 2],
        );
        // relu then mean: [[0.5, 1], [0.5, 2]]; the mean first would give [[0, 0], [0.5, 2]].
        close(&weighted_heads(&a, &g), &[0.5, 1.0, 0.5, 2.0]);
    }

    #[test]
    fn rollout_adds_each_blocks_weighted_attention_times_r() {
        // Block 1: Ā1 = [[0, 1], [0, 0]] (one head, gradient 1 where the attention is). R1 = I + Ā1 = [[1, 1], [0, 1]].
        let a1 = t(&[0.0, 1.0, 0.0, 0.0], &[1, 1, 2, 2]);
        let g1 = t(&[1.0, 1.0, 1.0, 1.0], &[1, 1, 2, 2]);
        // Block 2: Ā2 = [[0.5, 0], [0.25, 0.25]]. R2 = R1 + Ā2 R1 = [[1, 1], [0, 1]] + [[0.5, 0.5], [0.25, 0.5]].
        let a2 = t(&[0.5, 0.5, 0.5, 0.5], &[1, 1, 2, 2]);
        let g2 = t(&[1.0, 0.0, 0.5, 0.5], &[1, 1, 2, 2]);
        let r1 = rollout(&[a1.shallow_clone()], &[g1.shallow_clone()]).unwrap();
        close(&r1, &[1.0, 1.0, 0.0, 1.0]);
        let r2 = rollout(&[a1, a2], &[g1, g2]).unwrap();
        close(&r2, &[1.5, 1.5, 0.25, 1.5]);
        close(&cls_relevance(&r2), &[1.5]);
        assert!(rollout(&[], &[]).is_err());
    }

    fn tiny(layers: i64) -> (nn::VarStore, Vit, Tensor) {
        let (vs, vit) = crate::models::vit::sharp_tiny(11, Some(layers));
        let xs = Tensor::randn([3, 3, 16, 16], (Kind::Float, Device::Cpu));
        (vs, vit, xs)
    }

    #[test]
    fn rollout_of_a_model_matches_the_rule_on_its_own_attention_gradients() {
        let (_vs, vit, xs) = tiny(3);
        let classes = Tensor::from_slice(&[0i64, 1, 0]);
        let maps = gradient_rollout(&vit, &xs, -1, &mut class_logit_score(&vit, &classes)).unwrap();
        assert_eq!(maps.patches.size(), [3, 16]);
        assert_eq!(maps.pixels.size(), [3, 1, 16, 16]);
        // Independently: the pixels' full forward with explicit attention, the parameters' graph, the class logit.
        let trace = vit.forward_with_attentions(&xs, false).unwrap();
        let logit = vit
            .head_from_tokens(&trace.output, -1, false)
            .unwrap()
            .gather(1, &classes.view([-1, 1]), false)
            .sum(Kind::Float);
        let grads = Tensor::run_backward(&[logit], &trace.attentions, false, false);
        let r = rollout(&trace.attentions, &grads).unwrap();
        let want = RelevanceMaps::from_patches(&cls_relevance(&r), 16).unwrap();
        assert!(
            (&maps.patches - &want.patches)
                .abs()
                .max()
                .double_value(&[])
                < 1e-5
        );
        // Image 2 alone gets the map it gets in the batch.
        let alone = gradient_rollout(
            &vit,
            &xs.narrow(0, 2, 1),
            -1,
            &mut class_logit_score(&vit, &classes.narrow(0, 2, 1)),
        )
        .unwrap();
        assert!(
            (&alone.patches - maps.patches.narrow(0, 2, 1))
                .abs()
                .max()
                .double_value(&[])
                < 1e-5
        );
    }

    #[test]
    fn one_block_rollout_is_the_cls_rows_weighted_attention() {
        let (_vs, vit, xs) = tiny(1);
        // A score that reads only patch token 5 after the block: the CLS row of every Ā is 0, so is the map
        // (R = I + Ā and I has no off-diagonal CLS entry).
        let mut patch_score = |t: &Tensor| -> Result<Tensor> {
            Ok(t.select(1, 5)
                .square()
                .sum_dim_intlist(-1, false, Kind::Float))
        };
        let maps = gradient_rollout(&vit, &xs, 1, &mut patch_score).unwrap();
        assert_eq!(maps.patches.abs().sum(Kind::Float).double_value(&[]), 0.0);
        // A score that reads the CLS token: the map is Ā[CLS, 1:] = mean_h relu(∇A ⊙ A)[CLS, 1:].
        let mut cls_score = |t: &Tensor| -> Result<Tensor> {
            Ok(t.select(1, 0)
                .square()
                .sum_dim_intlist(-1, false, Kind::Float))
        };
        let maps = gradient_rollout(&vit, &xs, 1, &mut cls_score).unwrap();
        let trace = vit.forward_with_attentions(&xs, false).unwrap();
        let s = cls_score(&trace.hidden_states[1]).unwrap().sum(Kind::Float);
        let g = Tensor::run_backward(&[s], &trace.attentions, false, false).remove(0);
        let cam = weighted_heads(&trace.attentions[0].detach(), &g); // [b, n, n]
        let want = RelevanceMaps::from_patches(&cam.select(1, 0).narrow(1, 1, 16), 16).unwrap();
        assert!(
            (&maps.patches - &want.patches)
                .abs()
                .max()
                .double_value(&[])
                < 1e-5
        );
        assert!(maps.patches.max().double_value(&[]) > 0.99);
        assert!(gradient_rollout(&vit, &xs, 0, &mut cls_score).is_err());
    }

    #[test]
    fn token_readout_weighs_the_rows_of_r() {
        // R = [[1, 2, 0], [0, 1, 3], [1, 1, 1]], weights [0, 1, 2]: row 1 + 2 row 2 = [2, 3, 5] -> patches [3, 5].
        let r = t(&[1.0, 2.0, 0.0, 0.0, 1.0, 3.0, 1.0, 1.0, 1.0], &[1, 3, 3]);
        close(
            &weighted_relevance(&r, &t(&[0.0, 1.0, 2.0], &[1, 3])),
            &[3.0, 5.0],
        );
        // Weight on CLS alone is the CLS readout.
        close(
            &weighted_relevance(&r, &t(&[1.0, 0.0, 0.0], &[1, 3])),
            &[2.0, 0.0],
        );
        // On a model: a score that reads only patch token 5 after one block has an empty CLS readout but not an
        // empty token readout, whose weights sit on token 5 alone: its row of R = I + Ā.
        let (_vs, vit, xs) = tiny(1);
        let mut patch_score = |t: &Tensor| -> Result<Tensor> {
            Ok(t.select(1, 5)
                .square()
                .sum_dim_intlist(-1, false, Kind::Float))
        };
        let maps = gradient_rollout_with(&vit, &xs, 1, Readout::Tokens, &mut patch_score).unwrap();
        let trace = vit.forward_with_attentions(&xs, false).unwrap();
        let out = &trace.hidden_states[1];
        let s = patch_score(out).unwrap().sum(Kind::Float);
        let mut g = Tensor::run_backward(&[s], &[&trace.attentions[0], out], false, false);
        let g_out = g.pop().unwrap();
        let cam = weighted_heads(&trace.attentions[0].detach(), &g[0]); // [b, n, n]
        let row5 = cam.select(1, 5).narrow(1, 1, 16); // [b, p]
        let identity = Tensor::zeros([3, 16], (Kind::Float, Device::Cpu));
        let _ = identity.narrow(1, 4, 1).fill_(1.0);
        let w5 = (g_out * out.detach())
            .sum_dim_intlist(-1, false, Kind::Float)
            .relu()
            .select(1, 5)
            .unsqueeze(1); // [b, 1]
        let want = RelevanceMaps::from_patches(&((row5 + identity) * w5), 16).unwrap();
        assert!(
            (&maps.patches - &want.patches)
                .abs()
                .max()
                .double_value(&[])
                < 1e-5
        );
        assert!(maps.patches.max().double_value(&[]) > 0.99);
    }
}
