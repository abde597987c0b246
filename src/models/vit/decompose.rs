//! The CLS token's residual stream split into direct contributions, after Gandelsman, Efros & Steinhardt,
//! "Interpreting CLIP's image representation via text-based decomposition" (ICLR 2024;
//! yossigandelsman/clip_text_span, `prs_hook.py`), which follows MaskCLIP (Zhou, Loy & Dai, ECCV 2022) in reading
//! each image token's value path.
//!
//! In a pre-norm ViT the CLS token after block `l` is a sum: its embedding, then per block the attention output
//! and the MLP output that block adds. The attention output of the CLS row is itself a sum over source tokens i:
//!
//! ```text
//! attn_l(CLS) = sum_i sum_h a^{l,h}_{cls,i} W_O^{l,h} (W_V^{l,h} LN_l(x_i^l) + b_V^{l,h})  +  b_O^l
//!             = sum_i c_i^l  +  b_O^l
//! ```
//!
//! (`a` the attention probabilities, `W_O^{l,h}` the columns of the output projection that read head h). So
//!
//! ```text
//! x_cls^L = e_cls + sum_l sum_i c_i^l + sum_l b_O^l + sum_l mlp_l(CLS)
//! ```
//!
//! exactly, with `e_cls` the CLS embedding (cls token + position 0). [`ClsDecomposition::value_paths`] holds
//! `sum_l c_i^l` per token i (i = 0 is the CLS token's own value path). The final layernorm (layer -1) is
//! linearised with the CLS token's own statistics, as `prs_hook.py` does: `LN(x) = gamma * (x - mean x) / sigma +
//! beta` with `sigma` fixed at the CLS token's, so that each term `t` maps to `gamma * (t - mean t) / sigma` and
//! `beta` is one more term; the sum is then the layernormed CLS token exactly.
//!
//! Differences from the reference: `prs_hook.py` splits the output bias `b_O` evenly over tokens and heads, and
//! subtracts the CLS token's mean (and adds `beta`) evenly over all terms; here each term is centred by its own mean
//! (the centring is linear, so this is the same linear map the layernorm applies to the sum) and the biases are
//! terms of their own. Per token the two differ by one constant per image. The MLPs are, as in the reference, terms
//! of the CLS position (not split over tokens).
use tch::{Kind, Tensor};

use super::Vit;
use crate::models::Result;
use crate::precision;

/// The CLS token of one layer split into direct contributions; every term `[b, d]` unless said, f32, no gradient.
/// The terms sum to [`ClsDecomposition::tokens`]`[:, 0]` (to float rounding).
#[derive(Debug)]
pub struct ClsDecomposition {
    /// `[b, p+1, d]`: each token's value path into the CLS token, summed over the blocks up to the layer (and over
    /// heads); token 0 is the CLS token's own.
    pub value_paths: Tensor,
    /// The CLS embedding (`cls_token + position_embeddings[0]`).
    pub embedding: Tensor,
    /// The attention output biases `b_O` of the blocks, summed.
    pub attention_bias: Tensor,
    /// The MLP outputs at the CLS position of the blocks, summed.
    pub mlps: Tensor,
    /// The final layernorm's `beta` (layer -1 only; `[d]`).
    pub norm_bias: Option<Tensor>,
    /// The tokens of the layer `[b, p+1, d]` (the same forward pass).
    pub tokens: Tensor,
}

impl ClsDecomposition {
    /// The sum of every term: the CLS token `[b, d]`.
    pub fn total(&self) -> Tensor {
        let mut sum = self.value_paths.sum_dim_intlist(1, false, Kind::Float)
            + &self.embedding
            + &self.attention_bias
            + &self.mlps; // [b, d]
        if let Some(beta) = &self.norm_bias {
            sum += beta;
        }
        sum
    }
}

impl Vit {
    /// The CLS token of layer `layer` (HF `hidden_states` indexing: 0 = embeddings, l = after block l, -1 = after
    /// the final layernorm) as a sum of direct contributions ([`ClsDecomposition`]), from pixel values `xs`
    /// `[b, c, H, W]`, in eval mode and without gradients.
    pub fn cls_decomposition(&self, xs: &Tensor, layer: i64) -> Result<ClsDecomposition> {
        self.check_input(xs)?;
        self.check_layer(layer)?;
        tch::no_grad(|| {
            let emb = precision::upper(&self.embed(xs, false)); // [b, n, d]
            let (b, n, d) = emb.size3()?;
            let embedding = emb.select(1, 0); // [b, d]
            let mut value_paths = emb.zeros_like(); // [b, n, d]
            let mut attention_bias = embedding.zeros_like(); // [b, d]
            let mut mlps = embedding.zeros_like(); // [b, d]
            let (blocks, final_norm) = self.span(0, layer)?;
            let mut x = emb;
            for block in &self.layers[blocks] {
                let heads = block.heads;
                let hd = d / heads;
                let h = x.apply(&block.ln_before); // [b, n, d]
                let split = |t: Tensor| t.view([b, n, heads, hd]).transpose(1, 2); // [b, H, n, hd]
                let q = split(h.apply(&block.query));
                let k = split(h.apply(&block.key));
                let v = precision::upper(&split(h.apply(&block.value))); // [b, H, n, hd]
                let scores = precision::upper(&q.matmul(&k.transpose(-2, -1))) / (hd as f64).sqrt();
                let probs = scores.softmax(-1, Kind::Float); // [b, H, n, n]
                let cls_row = probs.narrow(2, 0, 1).transpose(2, 3); // [b, H, n, 1]: a_{cls, i}
                let per_token = (cls_row * &v).transpose(1, 2).reshape([b, n, d]); // [b, n, H*hd]
                let w_o = block.attn_out.0.ws.to_kind(Kind::Float); // [d, d] (out, in)
                value_paths += per_token.matmul(&w_o.tr()); // [b, n, d]
                let b_o = block
                    .attn_out
                    .0
                    .bs
                    .as_ref()
                    .map(|t| t.to_kind(Kind::Float))
                    .expect("the attention output has a bias"); // [d]
                attention_bias += &b_o;
                // The rest of the block, as `Layer::forward` runs it (eval mode): the attention's residual, the MLP's.
                let attended = precision::upper(
                    &probs
                        .matmul(&v)
                        .transpose(1, 2)
                        .reshape([b, n, d])
                        .apply(&block.attn_out),
                ); // [b, n, d]
                let mid = &x + attended; // [b, n, d]
                let m = block
                    .act
                    .apply(&mid.apply(&block.ln_after).apply(&block.intermediate)); // [b, n, m]
                let m = precision::upper(&m.apply(&block.output)); // [b, n, d]
                mlps += m.select(1, 0); // [b, d]: the MLP's output at CLS
                x = mid + m;
            }
            if !final_norm {
                return Ok(ClsDecomposition {
                    value_paths,
                    embedding,
                    attention_bias,
                    mlps,
                    norm_bias: None,
                    tokens: x,
                });
            }
            // The final layernorm, linearised at the CLS token: t -> gamma * (t - mean t) / sigma.
            let ln = &self.layernorm.0;
            let cls = x.select(1, 0); // [b, d]
            let sigma = (cls.var_dim(-1, false, true) + self.cfg.layer_norm_eps).sqrt(); // [b, 1]
            let gamma = ln
                .ws
                .as_ref()
                .map(|w| w.to_kind(Kind::Float))
                .unwrap_or_else(|| Tensor::ones([d], (Kind::Float, cls.device()))); // [d]
            let beta = ln
                .bs
                .as_ref()
                .map(|w| w.to_kind(Kind::Float))
                .unwrap_or_else(|| Tensor::zeros([d], (Kind::Float, cls.device()))); // [d]
            let lin = |t: &Tensor, sigma: &Tensor| -> Tensor {
                (t - t.mean_dim(-1, true, Kind::Float)) * &gamma / sigma
            };
            Ok(ClsDecomposition {
                value_paths: lin(&value_paths, &sigma.unsqueeze(1)), // [b, n, d]
                embedding: lin(&embedding, &sigma),
                attention_bias: lin(&attention_bias, &sigma),
                mlps: lin(&mlps, &sigma),
                norm_bias: Some(beta),
                tokens: precision::upper(&x.apply(&self.layernorm)),
            })
        })
    }

    /// Every token's value paths into every token of layer `layer` (HF `hidden_states` indexing), each read by a
    /// gradient at the token it enters: `[b, n]`, entry i
    ///
    /// ```text
    /// sum_j < g_j, sum_l sum_h a^{l,h}_{j,i} W_O^{l,h} (W_V^{l,h} LN_l(x_i^l) + b_V^{l,h}) >
    /// ```
    ///
    /// for `grads` g `[b, n, d]` at the tokens of `layer` (a score's gradient with respect to them), from pixel
    /// values `xs` `[b, c, H, W]`, in eval mode, without gradients. At layer -1 each token j's final layernorm is
    /// linearised at j's own statistics, as [`Vit::cls_decomposition`] does at the CLS token; with g zero outside
    /// slot 0 this is `< g_0, value_paths_i >` of the CLS decomposition. The CLS decomposition explains what a
    /// reader of the CLS slot reads; this explains a reader of every slot (a mean readout reads them all alike).
    pub fn value_path_readout(&self, xs: &Tensor, layer: i64, grads: &Tensor) -> Result<Tensor> {
        self.check_input(xs)?;
        let (blocks, final_norm) = self.span(0, layer)?;
        tch::no_grad(|| {
            let trace =
                self.forward_from_with_attentions(&self.embed(xs, false), 0, layer, false)?;
            let start = &trace.hidden_states[0]; // [b, n, d]
            if grads.size() != start.size() {
                return Err(crate::models::ModelError::Input(format!(
                    "value path readout: the gradient is {:?}, the tokens {:?}",
                    grads.size(),
                    start.size()
                )));
            }
            let (b, n, d) = start.size3()?;
            let mut g = grads.to_kind(Kind::Float); // [b, n, d]
            if final_norm {
                // The adjoint of t -> gamma * (t - mean t) / sigma_j at each token j.
                let x = precision::upper(&trace.hidden_states[blocks.len()]); // [b, n, d], before the final norm
                let sigma = (x.var_dim(-1, false, true) + self.cfg.layer_norm_eps).sqrt(); // [b, n, 1]
                if let Some(gamma) = &self.layernorm.0.ws {
                    g *= gamma.to_kind(Kind::Float);
                }
                g = (&g - g.mean_dim(-1, true, Kind::Float)) / sigma;
            }
            let mut out = Tensor::zeros([b, n], (Kind::Float, start.device()));
            for (l, block) in self.layers[blocks].iter().enumerate() {
                let heads = block.heads;
                let split = |t: Tensor| t.view([b, n, heads, d / heads]).transpose(1, 2); // [b, H, n, hd]
                let h = trace.hidden_states[l].apply(&block.ln_before); // [b, n, d]
                let v = precision::upper(&split(h.apply(&block.value))); // [b, H, n, hd]
                let w_o = block.attn_out.0.ws.to_kind(Kind::Float); // [d, d] (out, in)
                let read = split(g.matmul(&w_o)); // [b, H, n, hd]: W_O^{h T} g_j
                let s = read.matmul(&v.transpose(-2, -1)); // [b, H, n_j, n_i]: < g_j, W_O^h v_i^h >
                let probs = precision::upper(&trace.attentions[l]); // [b, H, n_j, n_i]
                out += (probs * s).sum_dim_intlist(&[1i64, 2][..], false, Kind::Float);
                // [b, n_i]
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn value_paths_and_the_other_terms_rebuild_the_cls_token() {
        let (vs, vit) = crate::models::vit::sharp_tiny(11, None);
        // Random layernorm affines and biases, so that no term is trivially zero or one.
        tch::no_grad(|| {
            for (name, mut var) in vs.variables() {
                if name.contains("layernorm") || name.ends_with(".bias") {
                    let noise = var.randn_like() * 0.3;
                    let _ = var.g_add_(&noise);
                }
            }
        });
        let xs = Tensor::randn([2, 3, 16, 16], (Kind::Float, Device::Cpu));
        for layer in [1, 2, 4, -1] {
            let dec = vit.cls_decomposition(&xs, layer).unwrap();
            let want = vit.forward_features(&xs, layer, false).unwrap().tokens; // [b, n, d]
            assert!((&dec.tokens - &want).abs().max().double_value(&[]) < 1e-5);
            let cls = want.select(1, 0); // [b, d]
            let diff = (dec.total() - &cls).abs().max().double_value(&[]);
            let scale = cls.abs().max().double_value(&[]);
            assert!(diff < 1e-4 * scale.max(1.0), "layer {layer}: {diff}");
            assert_eq!(dec.value_paths.size(), [2, 17, 96]);
            assert_eq!(dec.norm_bias.is_some(), layer == -1);
            // The patches' value paths carry a real share of the CLS token (not a decomposition into rest only).
            let patches = dec.value_paths.narrow(1, 1, 16).abs().sum(Kind::Float);
            assert!(patches.double_value(&[]) > 1e-3, "layer {layer}");
        }
        // The embeddings (layer 0): no block, everything is the CLS embedding.
        let dec = vit.cls_decomposition(&xs, 0).unwrap();
        assert_eq!(
            dec.value_paths.abs().sum(Kind::Float).double_value(&[]),
            0.0
        );
        let want = vit
            .forward_features(&xs, 0, false)
            .unwrap()
            .tokens
            .select(1, 0);
        assert!((&dec.embedding - want).abs().max().double_value(&[]) < 1e-6);
        assert!(vit.cls_decomposition(&xs, 5).is_err());
    }

    #[test]
    fn one_blocks_value_paths_are_the_attention_weighted_values() {
        // Block 1 alone, written out with the attention of HF's eager path: c_i = a_{cls,i} W_O v_i per head.
        let (vs, vit) = crate::models::vit::sharp_tiny(5, None);
        let xs = Tensor::randn([1, 3, 16, 16], (Kind::Float, Device::Cpu));
        let dec = vit.cls_decomposition(&xs, 1).unwrap();
        let trace = vit.forward_with_attentions(&xs, false).unwrap();
        let probs = &trace.attentions[0]; // [1, H, n, n]
        let vars = vs.variables();
        let p = |s: &str| vars[&format!("vit.encoder.layer.0.{s}")].shallow_clone();
        let h = trace.hidden_states[0].layer_norm(
            [96],
            Some(&p("layernorm_before.weight")),
            Some(&p("layernorm_before.bias")),
            vit.config().layer_norm_eps,
            false,
        ); // [1, n, d]
        let v = h.linear(
            &p("attention.attention.value.weight"),
            Some(&p("attention.attention.value.bias")),
        ); // [1, n, d]
        let heads = vit.config().num_attention_heads;
        let hd = 96 / heads;
        let w_o = p("attention.output.dense.weight"); // [d, d]
        let mut want = Tensor::zeros([17, 96], (Kind::Float, Device::Cpu));
        for head in 0..heads {
            let a = probs.get(0).get(head).get(0).unsqueeze(1); // [n, 1]
            let v_h = v.get(0).narrow(1, head * hd, hd); // [n, hd]
            let w_h = w_o.narrow(1, head * hd, hd); // [d, hd]
            want += (a * v_h).matmul(&w_h.tr()); // [n, d]
        }
        let diff = (dec.value_paths.get(0) - want)
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff < 1e-5, "{diff}");
    }

    #[test]
    fn the_readout_of_slot_zero_is_the_cls_decomposition() {
        let (_vs, vit) = crate::models::vit::sharp_tiny(7, None);
        let xs = Tensor::randn([2, 3, 16, 16], (Kind::Float, Device::Cpu));
        for layer in [1, 3, -1] {
            let dec = vit.cls_decomposition(&xs, layer).unwrap();
            let g0 = Tensor::randn([2, 96], (Kind::Float, Device::Cpu)); // [b, d]
            let grads = dec.tokens.zeros_like(); // [b, n, d]
            grads.select(1, 0).copy_(&g0);
            let got = vit.value_path_readout(&xs, layer, &grads).unwrap(); // [b, n]
            let want = (&dec.value_paths * g0.unsqueeze(1)).sum_dim_intlist(-1, false, Kind::Float);
            let diff = (&got - &want).abs().max().double_value(&[]);
            let scale = want.abs().max().double_value(&[]);
            assert!(diff < 1e-4 * scale.max(1.0), "layer {layer}: {diff}");
        }
        let wrong = Tensor::zeros([2, 5, 96], (Kind::Float, Device::Cpu));
        assert!(vit.value_path_readout(&xs, -1, &wrong).is_err());
    }

    #[test]
    fn without_mlps_and_biases_the_value_paths_are_everything_the_blocks_add() {
        // With the MLPs' outputs and the attention output biases at zero, each token after the blocks is its
        // embedding plus the value paths into it, so a linear score sum_j < w_j, A_j > minus its embeddings' share
        // is the sum over i of the readout.
        let (vs, vit) = crate::models::vit::sharp_tiny(9, None);
        tch::no_grad(|| {
            for (name, mut var) in vs.variables() {
                let mlp_out = name.contains(".output.dense.") && !name.contains("attention.");
                if mlp_out || name.ends_with("attention.output.dense.bias") {
                    let _ = var.zero_();
                }
            }
        });
        let xs = Tensor::randn([2, 3, 16, 16], (Kind::Float, Device::Cpu));
        let depth = vit.config().num_hidden_layers;
        let tokens = vit.forward_features(&xs, depth, false).unwrap().tokens; // [b, n, d]
        let embeddings = vit.forward_features(&xs, 0, false).unwrap().tokens;
        let w = tokens.randn_like(); // [b, n, d]: the score's gradient at every slot
        let added =
            ((&tokens - &embeddings) * &w).sum_dim_intlist(&[1i64, 2][..], false, Kind::Float); // [b]
        let readout = vit.value_path_readout(&xs, depth, &w).unwrap(); // [b, n]
        let got = readout.sum_dim_intlist(1, false, Kind::Float);
        let diff = (&got - &added).abs().max().double_value(&[]);
        let scale = added.abs().max().double_value(&[]);
        assert!(diff < 1e-4 * scale.max(1.0), "{diff} of {scale}");
    }
}
