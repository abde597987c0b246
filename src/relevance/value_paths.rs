//! The CLS reader on value paths (YAML `method: value_paths`): each patch's direct contribution to the CLS token
//! through every block's attention, read by the score the way the translator reads the CLS slot. After
//! Gandelsman, Efros & Steinhardt, "Interpreting CLIP's image representation via text-based decomposition" (ICLR
//! 2024; yossigandelsman/clip_text_span: `prs_hook.py`, `compute_segmentations.py`) and MaskCLIP (Zhou, Loy & Dai,
//! ECCV 2022; chongzhou96/MaskCLIP).
//!
//! What is computed, per image, for the score `s` that reads the tokens `A` of the translator's layer:
//!
//! ```text
//! c_i      = sum_l sum_h a^{l,h}_{cls,i} W_O^{l,h} (W_V^{l,h} LN_l(x_i^l) + b_V^{l,h})     token i's value path into
//!            (through the final layernorm, linearised at the CLS token, when the translator reads layer -1)
//! T_cls(c) = the prefix change that adding c to the CLS slot A_0 causes (the translator's linear map restricted
//!            to slot 0: W[:, 0:d] under `readout: flatten`, W / (p+1) under `mean`, W under `sum`)
//! map_i    = < ds/dprefix, T_cls(c_i) > = < T_cls^T ds/dprefix, c_i > = < ds/dA_0, c_i >       for each patch i >= 1
//! ```
//!
//! The decomposition of the CLS token is [`crate::models::vit::ClsDecomposition`] (exact: the value paths, the CLS
//! token's own path, the biases, the MLPs and the embedding sum to it). The translator is affine, so reading
//! `c_i` through the CLS slot's reader and scoring it to first order is the gradient of the score at `A_0` dotted
//! with `c_i`; one backward pass gives every patch's value.
//!
//! How this differs from the references: they read CLIP's image projection of the CLS token (`ln_post`, `proj`)
//! and dot the projected `c_i` with a text embedding, so their score is linear in `c_i` and exact; here the CLS
//! token is read by the translator's slot-0 weights and the score (the language model's word score) is not linear,
//! so it is taken to first order at the image's own prefix. MaskCLIP reads the last block's value embedding of
//! every patch through the projection (no attention weights, one block); here, as in `compute_segmentations.py`,
//! the value paths of every block up to the translator's layer are summed, each weighted by the CLS row of its
//! attention. The translator also reads the patch slots, whose own readers this map ignores: it explains the CLS
//! slot's share of the score only.
//!
//! `readout: tokens` ([`Vit::value_path_readout`]) removes that limit: every token's value paths into every slot j
//! of the translator's layer, each read by the score's gradient at slot j, `map_i = sum_j < ds/dA_j, c_{j<-i} >`.
//! The flattened translator reads each slot with its own weights, so its patch slots carry evidence the CLS slot's
//! reader never sees; under the mean readout every slot is read alike and the two readouts point the same way.
//!
//! The map is signed. A per-token constant is not defined by the decomposition (the reference spreads `b_O` and the
//! layernorm's mean over the tokens, which adds one constant per image; here they are terms of their own), so the
//! map is taken relative to its minimum before [`RelevanceMaps`]' normalisation: every patch keeps its rank.
use anyhow::Result;
use tch::{Kind, Tensor};

use super::maps::{check_score, RelevanceMaps, ScoreFn};
use super::rollout::Readout;
use crate::models::vit::{ClsDecomposition, Vit};

/// The signed value-path map `[b, p]`: `< g, c_i >` for every patch i, with `g` `[b, d]` the score's gradient
/// with respect to the CLS slot of the tokens the score reads.
pub fn value_path_scores(dec: &ClsDecomposition, cls_grad: &Tensor) -> Tensor {
    let n = dec.value_paths.size()[1];
    let patches = dec.value_paths.narrow(1, 1, n - 1); // [b, p, d]
    (patches * cls_grad.to_kind(Kind::Float).unsqueeze(1)).sum_dim_intlist(-1, false, Kind::Float)
    // [b, p]
}

/// The signed map `[b, p]` of `score` (reading the tokens of `score_layer`, HF `hidden_states` indexing) for pixel
/// values `xs` `[b, c, H, W]`: one forward pass that decomposes the tokens, one backward pass of the score.
/// `readout`: which slots' readers score the value paths, the CLS slot's ([`Readout::Cls`]) or every slot's, each
/// by the score's gradient there ([`Readout::Tokens`], [`Vit::value_path_readout`]).
pub fn value_paths_raw(
    vit: &Vit,
    xs: &Tensor,
    score_layer: i64,
    readout: Readout,
    score: &mut ScoreFn<'_>,
) -> Result<Tensor> {
    let (tokens, dec) = match readout {
        Readout::Cls => {
            let dec = vit.cls_decomposition(xs, score_layer)?;
            (dec.tokens.shallow_clone(), Some(dec))
        }
        Readout::Tokens => (vit.forward_features(xs, score_layer, false)?.tokens, None),
    };
    let tokens = tokens.detach().set_requires_grad(true); // [b, p+1, d]
    let s = score(&tokens)?; // [b]
    check_score(&s, tokens.size()[0])?;
    let grads = Tensor::f_run_backward(&[s.sum(Kind::Float)], &[&tokens], false, false)?.remove(0); // [b, p+1, d]
    match dec {
        Some(dec) => Ok(tch::no_grad(|| {
            value_path_scores(&dec, &grads.select(1, 0))
        })), // [b, p]
        None => {
            let all = vit.value_path_readout(xs, score_layer, &grads)?; // [b, p+1]
            let n = all.size()[1];
            Ok(all.narrow(1, 1, n - 1)) // [b, p]
        }
    }
}

/// The value-path maps of `score`, each image's map taken relative to its minimum (ranks kept).
pub fn value_paths(
    vit: &Vit,
    xs: &Tensor,
    score_layer: i64,
    readout: Readout,
    score: &mut ScoreFn<'_>,
) -> Result<RelevanceMaps> {
    let raw = value_paths_raw(vit, xs, score_layer, readout, score)?; // [b, p]
    let shifted = &raw - raw.amin([1], true); // [b, p], >= 0
    RelevanceMaps::from_patches(&shifted, vit.config().image_size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::translator::{self, Readout as TranslatorReadout};
    use tch::{nn, Device};

    fn tiny() -> (nn::VarStore, Vit, Tensor) {
        let (vs, vit) = crate::models::vit::sharp_tiny(2, None);
        let xs = Tensor::randn([2, 3, 16, 16], (Kind::Float, Device::Cpu));
        (vs, vit, xs)
    }

    #[test]
    fn the_map_is_the_cls_readers_first_order_score_of_each_value_path() {
        let (_vs, vit, xs) = tiny();
        for readout in [TranslatorReadout::Flatten, TranslatorReadout::Mean] {
            let (_tvs, tr, prefix_score) = translator::tiny_scored(readout);
            let mut score = |t: &Tensor| -> Result<Tensor> { Ok(prefix_score(&tr.forward(t)?)) };
            for layer in [2, -1] {
                let raw = value_paths_raw(&vit, &xs, layer, Readout::Cls, &mut score).unwrap(); // [b, p]
                assert_eq!(raw.size(), [2, 16]);
                // By the definition: T_cls(c_i) = T(A + e_0 c_i) - T(A) = T(e_0 c_i) - T(0) (T is affine; the second
                // form has no cancellation against A), scored against ds/dprefix.
                let dec = vit.cls_decomposition(&xs, layer).unwrap();
                let prefix = tr
                    .forward(&dec.tokens)
                    .unwrap()
                    .detach()
                    .set_requires_grad(true);
                let ds = Tensor::run_backward(
                    &[prefix_score(&prefix).sum(Kind::Float)],
                    &[&prefix],
                    false,
                    false,
                )
                .remove(0); // [b, K, d_lm]
                let base = tr.forward(&dec.tokens.zeros_like()).unwrap(); // T(0)
                for i in 1..17 {
                    let c = dec.value_paths.narrow(1, i, 1); // [b, 1, d]
                    let delta = Tensor::cat(&[&c, &dec.tokens.narrow(1, 1, 16).zeros_like()], 1); // [b, n, d]: c at the CLS slot only
                    let t_cls = tr.forward(&delta).unwrap() - &base; // [b, K, d_lm]
                    let want = (&ds * t_cls).sum_dim_intlist(&[1i64, 2][..], false, Kind::Float); // [b]
                    let got = raw.select(1, i - 1);
                    let diff = (&got - &want).abs().max().double_value(&[]);
                    let scale = want.abs().max().double_value(&[]).max(1e-3);
                    assert!(
                        diff < 1e-3 * scale,
                        "{readout} layer {layer} patch {i}: {diff}"
                    );
                }
                assert!(raw.abs().max().double_value(&[]) > 0.0);
            }
        }
    }

    #[test]
    fn maps_keep_every_patchs_rank() {
        let (_vs, vit, xs) = tiny();
        let w = Tensor::randn([96], (Kind::Float, Device::Cpu)) * 0.05; // tanh far from saturation
        let mut score = |t: &Tensor| -> Result<Tensor> {
            Ok(t.matmul(&w).tanh().sum_dim_intlist(1, false, Kind::Float))
        };
        let raw = value_paths_raw(&vit, &xs, -1, Readout::Cls, &mut score).unwrap();
        let maps = value_paths(&vit, &xs, -1, Readout::Cls, &mut score).unwrap();
        assert_eq!(maps.pixels.size(), [2, 1, 16, 16]);
        // A positive affine image of the signed map: the same order, the minimum at 0, the maximum at 1.
        let lo = raw.amin([1], true);
        let want = (&raw - &lo) / (raw.amax([1], true) - &lo);
        let diff = (&maps.patches - want).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "{diff}");
        // A score that does not read the CLS slot gets an all-zero map.
        let mut patches_only = |t: &Tensor| -> Result<Tensor> {
            Ok(t.narrow(1, 1, 16)
                .matmul(&w)
                .sum_dim_intlist(1, false, Kind::Float))
        };
        let raw = value_paths_raw(&vit, &xs, -1, Readout::Cls, &mut patches_only).unwrap();
        assert_eq!(raw.abs().max().double_value(&[]), 0.0);
    }

    #[test]
    fn the_tokens_readout_reads_every_slot_and_agrees_on_the_cls_slot() {
        let (_vs, vit, xs) = tiny();
        let w = Tensor::randn([96], (Kind::Float, Device::Cpu)) * 0.05;
        // A score that reads the CLS slot only: both readouts give the same map.
        let mut cls_only = |t: &Tensor| -> Result<Tensor> { Ok(t.select(1, 0).matmul(&w).tanh()) };
        for layer in [2, -1] {
            let cls = value_paths_raw(&vit, &xs, layer, Readout::Cls, &mut cls_only).unwrap();
            let all = value_paths_raw(&vit, &xs, layer, Readout::Tokens, &mut cls_only).unwrap();
            let diff = (&cls - &all).abs().max().double_value(&[]);
            assert!(diff < 1e-4 * cls.abs().max().double_value(&[]), "{diff}");
        }
        // A score that reads the patch slots only: the CLS reader sees nothing, every slot's reader does.
        let mut patches_only = |t: &Tensor| -> Result<Tensor> {
            Ok(t.narrow(1, 1, 16)
                .matmul(&w)
                .sum_dim_intlist(1, false, Kind::Float))
        };
        let all = value_paths_raw(&vit, &xs, -1, Readout::Tokens, &mut patches_only).unwrap();
        assert_eq!(all.size(), [2, 16]);
        assert!(all.abs().max().double_value(&[]) > 0.0);
    }
}
