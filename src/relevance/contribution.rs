//! The exact per-slot contribution map (issue 24, Build 5): gradient × input at the tokens the score reads,
//! summed over channels per token slot, `c_i = ⟨∂s/∂A_i, A_i⟩` for the tokens `A` `[b, p+1, d]` of the layer the
//! translator reads. It is the first-order (Taylor) decomposition of the score along the ray `ε ↦ s((1+ε)A)`:
//! `Σ_i c_i = d/dε s((1+ε)A) at ε = 0`, exact for an affine score in `A` (Simonyan et al. 2014 / Shrikumar et al.
//! 2016, "gradient × input", taken per token slot). Unlike GradCAM ([`super::gradcam`]) there is no channel weight
//! averaged over the patches — TExplain's translator reads every slot with its own weights, so one shared channel
//! weight mixes unrelated directions — and no ReLU before ranking: the signed contributions are kept and each
//! image's patch values are mapped to [0, 1] by `(c − min) / (max − min)` (an image whose patches all contribute
//! the same gets an all-zero map). The CLS slot is dropped from the map; its share of the contribution,
//! `|c_CLS| / Σ_i |c_i|`, is reported beside it ([`Contribution::cls_share`]).
use anyhow::Result;
use tch::{Kind, Tensor};

use super::maps::{check_score, RelevanceMaps, ScoreFn};
use crate::models::vit::Vit;

/// The per-slot contribution map of one batch and what its CLS slot holds.
#[derive(Debug)]
pub struct Contribution {
    /// The patches' contributions mapped to [0, 1] per image (min-max), at patch and pixel resolution.
    pub maps: RelevanceMaps,
    /// `[b]`: `|c_CLS| / Σ_i |c_i|` over all slots (0 where every contribution is 0).
    pub cls_share: Tensor,
}

/// The signed per-slot contributions `[b, p+1]`, `c_i = Σ_c ∂s/∂A_ic · A_ic`, of `score` `[b]` with respect to
/// `tokens` `[b, p+1, d]` (a tensor of the graph that produced it).
pub fn slot_contributions(tokens: &Tensor, score: &Tensor) -> Result<Tensor> {
    check_score(score, tokens.size()[0])?;
    let grads =
        Tensor::f_run_backward(&[score.sum(Kind::Float)], &[tokens], false, false)?.remove(0); // [b, p+1, d]
    Ok(tch::no_grad(|| {
        (grads * tokens.detach()).sum_dim_intlist(-1, false, tokens.kind())
    })) // [b, p+1], in the tokens' kind
}

/// Per image min-max to [0, 1] of `[b, p]`; a constant row becomes 0.
pub fn min_max(values: &Tensor) -> Tensor {
    let min = values.amin([1], true); // [b, 1]
    let range = values.amax([1], true) - &min; // [b, 1]
    let safe = range.clamp_min(f64::from(f32::MIN_POSITIVE));
    (values - min) / safe * range.gt(0.0).to_kind(Kind::Float) // [b, p]
}

/// The per-slot contribution map of the score that reads the tokens of layer `score_layer` (HF `hidden_states`
/// index, -1 = `last_hidden_state`), taken at those tokens. `xs`: pixel values `[b, c, H, W]`; the ViT runs in
/// eval mode and its parameters get no gradient.
pub fn contribution(
    vit: &Vit,
    xs: &Tensor,
    score_layer: i64,
    score: &mut ScoreFn<'_>,
) -> Result<Contribution> {
    let tokens = tch::no_grad(|| vit.forward_features(xs, score_layer, false))?
        .tokens
        .detach()
        .set_requires_grad(true); // [b, p+1, d]
    let s = score(&tokens)?; // [b]
    let c = slot_contributions(&tokens, &s)?; // [b, p+1]
    let n = c.size()[1];
    let total = c.abs().sum_dim_intlist(1, false, Kind::Float); // [b]
    let cls_share = c.select(1, 0).abs() / total.clamp_min(f64::from(f32::MIN_POSITIVE)); // [b]
    let maps =
        RelevanceMaps::from_patches(&min_max(&c.narrow(1, 1, n - 1)), vit.config().image_size)?;
    Ok(Contribution { maps, cls_share })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{nn, Device};

    fn tiny() -> (nn::VarStore, Vit, Tensor) {
        let (vs, vit) = crate::models::vit::sharp_tiny(5, Some(2));
        let xs = Tensor::randn([2, 3, 16, 16], (Kind::Float, Device::Cpu));
        (vs, vit, xs)
    }

    #[test]
    fn contributions_sum_to_the_first_order_change() {
        let (_vs, vit, xs) = tiny();
        let a = tch::no_grad(|| vit.forward_features(&xs, 1, false))
            .unwrap()
            .tokens
            .to_kind(Kind::Double); // [b, p+1, d]
                                    // A non-linear score of the tokens: the class logit after the last block.
        let score = |t: &Tensor| -> Result<Tensor> {
            let read = vit.forward_from(&t.to_kind(Kind::Float), 1, -1, false)?;
            Ok(vit
                .head_from_tokens(&read, -1, false)?
                .select(1, 1)
                .to_kind(Kind::Double))
        };
        let leaf = a.detach().set_requires_grad(true);
        let c = slot_contributions(&leaf, &score(&leaf).unwrap()).unwrap(); // [b, p+1]
        let eps = 1e-3;
        let fd = tch::no_grad(|| {
            (score(&(&a * (1.0 + eps))).unwrap() - score(&(&a * (1.0 - eps))).unwrap())
                / (2.0 * eps)
        }); // [b]
        let sum = c.sum_dim_intlist(1, false, Kind::Double);
        let err = (&sum - &fd).abs().max().double_value(&[]);
        let scale = fd.abs().max().double_value(&[]).max(1e-3);
        assert!(
            err < 2e-2 * scale,
            "Σ c = {sum:?}, finite difference {fd:?}"
        );
        // An affine score: exact, s(A) = ⟨W, A⟩ + 3, so c_i = ⟨W_i, A_i⟩.
        let w = Tensor::randn(a.size(), (Kind::Double, Device::Cpu));
        let leaf = a.detach().set_requires_grad(true);
        let s = (&leaf * &w).sum_dim_intlist(&[1i64, 2][..], false, Kind::Double) + 3.0;
        let c = slot_contributions(&leaf, &s).unwrap();
        let want = (&a * &w).sum_dim_intlist(-1, false, Kind::Double);
        assert!((c - want).abs().max().double_value(&[]) < 1e-9);
    }

    #[test]
    fn the_map_keeps_signed_values_and_reports_the_cls_share() {
        let (_vs, vit, xs) = tiny();
        // Score = Σ over slots of w_i · (sum of channels): slot 0 (CLS) weight 2, patch i weight (i − 8).
        let w = Tensor::arange(17, (Kind::Float, Device::Cpu)) - 8.0;
        let _ = w.get(0).fill_(2.0);
        let mut score = |t: &Tensor| -> Result<Tensor> {
            Ok(
                (t.sum_dim_intlist(-1, false, Kind::Float) * &w).sum_dim_intlist(
                    1,
                    false,
                    Kind::Float,
                ),
            )
        };
        let got = contribution(&vit, &xs, 1, &mut score).unwrap();
        let a = vit.forward_features(&xs, 1, false).unwrap().tokens;
        let c = a.sum_dim_intlist(-1, false, Kind::Float) * &w; // [b, 17]
        let patches = c.narrow(1, 1, 16);
        let want = min_max(&patches);
        assert!((&got.maps.patches - &want).abs().max().double_value(&[]) < 1e-5);
        // The minimum patch (however negative) is 0, the maximum 1: no clipping of negative values.
        assert!(
            (got.maps.patches.amax([1], false) - 1.0)
                .abs()
                .max()
                .double_value(&[])
                < 1e-6
        );
        assert!(
            got.maps
                .patches
                .amin([1], false)
                .abs()
                .max()
                .double_value(&[])
                < 1e-6
        );
        let share = c.select(1, 0).abs() / c.abs().sum_dim_intlist(1, false, Kind::Float);
        assert!((&got.cls_share - share).abs().max().double_value(&[]) < 1e-5);
        let m = min_max(&Tensor::from_slice(&[-2f32, 0.0, 2.0, 1.0, 1.0, 1.0]).view([2, 3]));
        assert_eq!(
            Vec::<f32>::try_from(m.reshape([-1])).unwrap(),
            [0.0, 0.5, 1.0, 0.0, 0.0, 0.0]
        );
    }
}
