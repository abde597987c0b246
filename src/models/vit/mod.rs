//! The image classifier: HF `ViTForImageClassification` (transformers `models/vit/modeling_vit.py`), pre-norm ViT
//! with a CLS token and learned position embeddings, no pooler; the head reads the final-layernormed CLS token.
//!
//! Parameter names are HF's (`vit.embeddings.cls_token`, `vit.encoder.layer.{i}.attention.attention.query.weight`,
//! ..., `vit.layernorm`, `classifier`), so `google/vit-base-patch16-384`'s `model.safetensors` loads unchanged.
//! Besides logits, the token activations after any encoder layer are first-class ([`Vit::forward_features`]): the
//! TExplain translator reads them and word-targeted GradCAM differentiates through them (paper sections 3.1, 4.3).
use std::path::Path;

use tch::{nn, Tensor};

use super::{
    layer_norm, load_safetensors, save_folder, sub_path, Activation, LayerNorm, Linear, LoadOpts,
    LoadReport, ModelError, Result,
};
use crate::precision::{self, Precision};

mod config;
mod decompose;
pub use config::{flops_per_image, Config};
pub use decompose::ClsDecomposition;

fn linear(vs: nn::Path, i: i64, o: i64, bias: bool, std: f64) -> Linear {
    // HF `_init_weights`: trunc_normal(0, initializer_range) (truncated at +-2, i.e. ~100 std: a plain normal), bias 0.
    let cfg = nn::LinearConfig {
        ws_init: nn::Init::Randn {
            mean: 0.0,
            stdev: std,
        },
        bs_init: Some(nn::Init::Const(0.0)),
        bias,
    };
    Linear(nn::linear(vs, i, o, cfg))
}

#[derive(Debug)]
struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    intermediate: Linear,
    output: Linear,
    ln_before: LayerNorm,
    ln_after: LayerNorm,
    heads: i64,
    act: Activation,
    hidden_p: f64,
    attn_p: f64,
}

impl Layer {
    fn new(vs: &nn::Path, cfg: &Config) -> Self {
        let (d, std) = (cfg.hidden_size, cfg.initializer_range);
        let att = sub_path(vs, "attention.attention");
        Layer {
            query: linear(&att / "query", d, d, cfg.qkv_bias, std),
            key: linear(&att / "key", d, d, cfg.qkv_bias, std),
            value: linear(&att / "value", d, d, cfg.qkv_bias, std),
            attn_out: linear(sub_path(vs, "attention.output.dense"), d, d, true, std),
            intermediate: linear(
                sub_path(vs, "intermediate.dense"),
                d,
                cfg.intermediate_size,
                true,
                std,
            ),
            output: linear(
                sub_path(vs, "output.dense"),
                cfg.intermediate_size,
                d,
                true,
                std,
            ),
            ln_before: layer_norm(vs / "layernorm_before", d, cfg.layer_norm_eps),
            ln_after: layer_norm(vs / "layernorm_after", d, cfg.layer_norm_eps),
            heads: cfg.num_attention_heads,
            act: cfg.hidden_act,
            hidden_p: cfg.hidden_dropout_prob,
            attn_p: cfg.attention_probs_dropout_prob,
        }
    }

    /// HF `ViTLayer`: x + attn(ln_before(x)), then + mlp(ln_after(.)). `[b, n, d] -> [b, n, d]`.
    ///
    /// With `want_attention` the attention is written out, `softmax(q k^T / sqrt(hd)) v` (HF's eager path), and
    /// its probabilities `[b, H, n, n]` (before attention dropout) are returned as part of the autograd graph
    /// (relevance rollout, Chefer et al. 2021); without, the attention is one fused SDPA call and `None` is
    /// returned.
    fn forward(&self, xs: &Tensor, train: bool, want_attention: bool) -> (Tensor, Option<Tensor>) {
        let (b, n, d) = xs.size3().expect("vit layer input is [b, n, d]");
        let hd = d / self.heads;
        let h = xs.apply(&self.ln_before); // [b, n, d]
        let split = |t: Tensor| t.view([b, n, self.heads, hd]).transpose(1, 2); // [b, H, n, hd]
        let q = split(h.apply(&self.query));
        let k = split(h.apply(&self.key));
        let v = split(h.apply(&self.value));
        let attn_p = if train { self.attn_p } else { 0.0 };
        let (a, probs) = if want_attention {
            let scores = q.matmul(&k.transpose(-2, -1)) / (hd as f64).sqrt(); // [b, H, n, n]
                                                                              // Softmax in f32 (autocast's f32 list), the product with v in the compute precision.
            let scores = precision::upper(&scores);
            let probs = scores.softmax(-1, scores.kind()); // [b, H, n, n]
            let a = precision::lower(&probs.dropout(attn_p, train)).matmul(&v); // [b, H, n, hd]
            (a, Some(probs))
        } else {
            // softmax(q k^T / sqrt(hd)) v, HF's eager scale; no mask (all tokens see all tokens).
            let a = Tensor::scaled_dot_product_attention(
                &q,
                &k,
                &v,
                None::<Tensor>,
                attn_p,
                false,
                None,
                false,
            ); // [b, H, n, hd]
            (a, None)
        };
        let a = a
            .transpose(1, 2)
            .reshape([b, n, d])
            .apply(&self.attn_out)
            .dropout(self.hidden_p, train);
        let xs = xs + a; // [b, n, d]
        let m = self
            .act
            .apply(&xs.apply(&self.ln_after).apply(&self.intermediate)); // [b, n, m]
        let m = m.apply(&self.output).dropout(self.hidden_p, train); // [b, n, d]
        (xs + m, probs)
    }

    /// The block output alone (the SDPA path of [`Layer::forward`]). `[b, n, d] -> [b, n, d]`.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.forward(xs, train, false).0
    }
}

/// A forward pass with its attention probabilities exposed ([`Vit::forward_with_attentions`],
/// [`Vit::forward_from_with_attentions`]). Every tensor is part of the autograd graph of `output`.
#[derive(Debug)]
pub struct AttentionTrace {
    /// The tokens the pass started from, then the tokens after each block it ran (`[b, p+1, d]` each); for a pass
    /// from the pixels these are HF's `hidden_states` (embeddings, then after each block).
    pub hidden_states: Vec<Tensor>,
    /// Attention probabilities `softmax(q k^T / sqrt(hd))` of each block run, in order: `[b, H, p+1, p+1]`.
    pub attentions: Vec<Tensor>,
    /// The tokens at the requested end layer (after `vit.layernorm` when it is -1): `[b, p+1, d]`.
    pub output: Tensor,
}

/// Token activations at one layer and the logits of the same forward pass.
#[derive(Debug)]
pub struct Features {
    /// `[b, p+1, d]`, CLS first; part of the autograd graph of `logits`.
    pub tokens: Tensor,
    /// `[b, num_labels]`.
    pub logits: Tensor,
}

/// HF `ViTForImageClassification`.
#[derive(Debug)]
pub struct Vit {
    cfg: Config,
    cls_token: Tensor,
    position_embeddings: Tensor,
    patch_proj: nn::Conv2D,
    layers: Vec<Layer>,
    layernorm: LayerNorm,
    classifier: Linear,
}

impl Vit {
    /// Builds the model under `vs` (pass the VarStore's root for HF names). `cfg` must be valid
    /// ([`Config::validate`]; configs read with serde already are).
    pub fn new(vs: &nn::Path, cfg: &Config) -> Self {
        let d = cfg.hidden_size;
        let std = cfg.initializer_range;
        let emb = sub_path(vs, "vit.embeddings");
        let init = nn::Init::Randn {
            mean: 0.0,
            stdev: std,
        };
        let cls_token = emb.var("cls_token", &[1, 1, d], init);
        let position_embeddings = emb.var("position_embeddings", &[1, cfg.num_tokens(), d], init);
        let conv_cfg = nn::ConvConfig {
            stride: cfg.patch_size,
            ws_init: init,
            bs_init: nn::Init::Const(0.0),
            ..Default::default()
        };
        let patch_proj = nn::conv2d(
            sub_path(&emb, "patch_embeddings.projection"),
            cfg.num_channels,
            d,
            cfg.patch_size,
            conv_cfg,
        );
        let enc = sub_path(vs, "vit.encoder.layer");
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| Layer::new(&(&enc / i), cfg))
            .collect();
        let layernorm = layer_norm(sub_path(vs, "vit.layernorm"), d, cfg.layer_norm_eps);
        let classifier = linear(vs / "classifier", d, cfg.num_labels, true, std);
        Vit {
            cfg: cfg.clone(),
            cls_token,
            position_embeddings,
            patch_proj,
            layers,
            layernorm,
            classifier,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Tokens per image (`p + 1`).
    pub fn num_tokens(&self) -> i64 {
        self.cfg.num_tokens()
    }

    /// The rules for loading an HF checkpoint. With `new_head`, `classifier.*` may be absent from the checkpoint or
    /// have another shape (a head for a different number of labels) and then keeps its fresh initialisation.
    pub fn load_opts(new_head: bool) -> LoadOpts {
        LoadOpts {
            base_model_prefix: Some("vit".into()),
            allow_missing: if new_head {
                vec!["classifier.".into()]
            } else {
                vec![]
            },
            ignore: vec![],
            tied: vec![],
        }
    }

    /// Builds a ViT from an HF folder (`config.json` + `model.safetensors`) into `vs`.
    ///
    /// `num_labels`: `None` keeps the checkpoint's head; `Some(n)` with `n` different from the config's builds a new
    /// `n`-way head (reported in [`LoadReport::missing`], and in `mismatched` when the checkpoint had one).
    pub fn from_hf_folder(
        vs: &mut nn::VarStore,
        dir: &Path,
        num_labels: Option<i64>,
    ) -> Result<(Self, LoadReport)> {
        let mut cfg = Config::from_hf_json(&dir.join("config.json"))?;
        let new_head = matches!(num_labels, Some(n) if n != cfg.num_labels);
        if let Some(n) = num_labels.filter(|_| new_head) {
            cfg.num_labels = n;
            cfg.id2label = None;
            cfg.validate()?;
        }
        let model = Vit::new(&vs.root(), &cfg);
        let report = load_safetensors(
            vs,
            &dir.join("model.safetensors"),
            &Self::load_opts(new_head),
        )?;
        Ok((model, report))
    }

    /// Writes `config.json` + `model.safetensors` into `dir` (an HF folder; `vs` must hold this model only).
    pub fn save_hf_folder(&self, vs: &nn::VarStore, dir: &Path) -> Result<()> {
        save_folder(vs, dir, |p| self.cfg.to_hf_json(p))
    }

    /// Checks that `xs` is `[b, num_channels, image_size, image_size]`.
    pub fn check_input(&self, xs: &Tensor) -> Result<()> {
        let c = &self.cfg;
        let want = [c.num_channels, c.image_size, c.image_size];
        let size = xs.size();
        if size.len() != 4 || size[1..] != want {
            return Err(ModelError::Input(format!(
                "vit expects pixel values [b, {}, {}, {}], got {size:?}",
                want[0], want[1], want[2]
            )));
        }
        Ok(())
    }

    /// HF `ViTEmbeddings`: patch projection, CLS token prepended, learned positions added. `[b, c, H, W] -> [b, p+1, d]`.
    fn embed(&self, xs: &Tensor, train: bool) -> Tensor {
        let b = xs.size()[0];
        let patches = match precision::current() {
            Precision::F32 => xs.apply(&self.patch_proj),
            Precision::Bf16 => {
                let p = &self.patch_proj;
                let bs = p.bs.as_ref().map(precision::lower_weight);
                let stride = self.cfg.patch_size;
                let low = precision::lower(xs).conv2d(
                    &precision::lower_weight(&p.ws),
                    bs.as_ref(),
                    [stride, stride],
                    [0, 0],
                    [1, 1],
                    1,
                );
                // The residual stream stays f32 (autocast promotes the sum with the f32 CLS and positions).
                precision::upper(&low)
            }
        };
        let patches = patches.flatten(2, -1).transpose(1, 2); // [b, p, d]
        let cls = self.cls_token.expand([b, 1, self.cfg.hidden_size], false); // [b, 1, d]
        let xs = Tensor::cat(&[cls, patches], 1) + &self.position_embeddings; // [b, p+1, d]
        xs.dropout(self.cfg.hidden_dropout_prob, train)
    }

    /// Classifier on the CLS token of the final (layernormed) tokens. `[b, p+1, d] -> [b, num_labels]`.
    fn head(&self, last_hidden: &Tensor) -> Tensor {
        // Logits are f32 in every precision (the loss and the softmax read them).
        precision::upper(&last_hidden.select(1, 0).apply(&self.classifier))
    }

    fn check_layer(&self, layer: i64) -> Result<()> {
        let l = self.cfg.num_hidden_layers;
        if layer == -1 || (0..=l).contains(&layer) {
            Ok(())
        } else {
            Err(ModelError::Input(format!(
                "vit layer index {layer} is outside -1 and 0..={l}"
            )))
        }
    }

    /// Runs the full forward and returns HF's `hidden_states` (`num_hidden_layers + 1` tensors `[b, p+1, d]`:
    /// embeddings, then after each block), the `last_hidden_state` (after `vit.layernorm`) and the logits.
    pub fn forward_hidden_states(
        &self,
        xs: &Tensor,
        train: bool,
    ) -> Result<(Vec<Tensor>, Tensor, Tensor)> {
        self.check_input(xs)?;
        let mut hs = vec![self.embed(xs, train)];
        for layer in &self.layers {
            let next = layer.forward_t(hs.last().expect("hidden states start non-empty"), train);
            hs.push(next);
        }
        let last = hs
            .last()
            .expect("hidden states start non-empty")
            .apply(&self.layernorm); // [b, p+1, d]
        let logits = self.head(&last); // [b, num_labels]
        Ok((hs, last, logits))
    }

    /// Token activations after encoder layer `layer` and the logits, from one forward pass.
    ///
    /// `layer` follows HF's `hidden_states` indexing: 0 = embeddings, i = after block i (before the final
    /// layernorm), and -1 = `last_hidden_state` (after `vit.layernorm`). `xs`: `[b, c, H, W]`.
    ///
    /// For a gradient with respect to the tokens (GradCAM) while the ViT is frozen, detach them, call
    /// `set_requires_grad(true)` and continue from there ([`Vit::head_from_tokens`] for the logits, or the translator).
    pub fn forward_features(&self, xs: &Tensor, layer: i64, train: bool) -> Result<Features> {
        self.check_layer(layer)?;
        let (hs, last, logits) = self.forward_hidden_states(xs, train)?;
        let tokens = if layer == -1 {
            last
        } else {
            hs[layer as usize].shallow_clone()
        };
        Ok(Features { tokens, logits })
    }

    /// Continues the forward from the tokens of layer `layer` (same indexing as [`Vit::forward_features`]) to the
    /// logits: the remaining blocks, the final layernorm, the head. `[b, p+1, d] -> [b, num_labels]`.
    pub fn head_from_tokens(&self, tokens: &Tensor, layer: i64, train: bool) -> Result<Tensor> {
        self.check_layer(layer)?;
        self.check_tokens(tokens)?;
        if layer == -1 {
            return Ok(self.head(tokens));
        }
        let mut xs = tokens.shallow_clone();
        for block in &self.layers[layer as usize..] {
            xs = block.forward_t(&xs, train);
        }
        Ok(self.head(&xs.apply(&self.layernorm)))
    }

    /// Position of a layer index (HF `hidden_states` indexing, -1 = `last_hidden_state`) along the forward pass:
    /// `l` for `0..=L`, `L + 1` for -1.
    fn layer_position(&self, layer: i64) -> i64 {
        if layer == -1 {
            self.cfg.num_hidden_layers + 1
        } else {
            layer
        }
    }

    fn check_tokens(&self, tokens: &Tensor) -> Result<()> {
        let want = [self.num_tokens(), self.cfg.hidden_size];
        let size = tokens.size();
        if size.len() != 3 || size[1..] != want {
            return Err(ModelError::Input(format!(
                "vit tokens must be [b, {}, {}], got {size:?}",
                want[0], want[1]
            )));
        }
        Ok(())
    }

    /// The blocks between layer `from` and layer `until` (HF `hidden_states` indexing, -1 = `last_hidden_state`)
    /// and whether the final layernorm follows them; an error when `until` comes before `from`.
    fn span(&self, from: i64, until: i64) -> Result<(std::ops::Range<usize>, bool)> {
        self.check_layer(from)?;
        self.check_layer(until)?;
        let (a, z) = (self.layer_position(from), self.layer_position(until));
        if z < a {
            return Err(ModelError::Input(format!(
                "vit forward from layer {from} cannot end at the earlier layer {until}"
            )));
        }
        let depth = self.cfg.num_hidden_layers;
        let blocks = a.min(depth) as usize..z.min(depth) as usize;
        Ok((blocks, until == -1 && from != -1))
    }

    /// Runs the encoder from the tokens of layer `from` to the tokens of layer `until` (both HF `hidden_states`
    /// indices: 0 = embeddings, i = after block i, -1 = `last_hidden_state`, after `vit.layernorm`). `until` must not
    /// come before `from`; equal layers return the tokens unchanged. `[b, p+1, d] -> [b, p+1, d]`.
    ///
    /// A score computed at the translator's layer can so be differentiated with respect to an earlier layer's
    /// tokens (GradCAM at any layer).
    pub fn forward_from(
        &self,
        tokens: &Tensor,
        from: i64,
        until: i64,
        train: bool,
    ) -> Result<Tensor> {
        self.check_tokens(tokens)?;
        let (blocks, final_norm) = self.span(from, until)?;
        let mut xs = tokens.shallow_clone();
        for block in &self.layers[blocks] {
            xs = block.forward_t(&xs, train); // [b, p+1, d]
        }
        Ok(if final_norm {
            xs.apply(&self.layernorm)
        } else {
            xs
        })
    }

    /// [`Vit::forward_from`] with the attention written out (no SDPA), returning every block's attention
    /// probabilities in the autograd graph. Numerically the same as the SDPA path (to float rounding).
    pub fn forward_from_with_attentions(
        &self,
        tokens: &Tensor,
        from: i64,
        until: i64,
        train: bool,
    ) -> Result<AttentionTrace> {
        self.check_tokens(tokens)?;
        let (blocks, final_norm) = self.span(from, until)?;
        let mut hidden_states = vec![tokens.shallow_clone()];
        let mut attentions = Vec::with_capacity(blocks.len());
        for block in &self.layers[blocks] {
            let (next, probs) =
                block.forward(hidden_states.last().expect("non-empty"), train, true); // [b, p+1, d], [b, H, p+1, p+1]
            hidden_states.push(next);
            attentions.push(probs.expect("asked for the attention"));
        }
        let last = hidden_states.last().expect("non-empty");
        let output = if final_norm {
            last.apply(&self.layernorm)
        } else {
            last.shallow_clone()
        };
        Ok(AttentionTrace {
            hidden_states,
            attentions,
            output,
        })
    }

    /// The full forward from pixel values `[b, c, H, W]` with explicit attention: HF's `hidden_states`
    /// (`num_hidden_layers + 1` tensors), every block's attention probabilities (HF `output_attentions`) and the
    /// `last_hidden_state` as `output`; the logits are [`Vit::head_from_tokens`]`(output, -1)`.
    pub fn forward_with_attentions(&self, xs: &Tensor, train: bool) -> Result<AttentionTrace> {
        self.check_input(xs)?;
        let embeddings = self.embed(xs, train); // [b, p+1, d]
        self.forward_from_with_attentions(&embeddings, 0, -1, train)
    }

    /// Logits `[b, num_labels]` for pixel values `[b, c, H, W]`; panics (libtorch) on a wrong input shape, use
    /// [`Vit::check_input`] first when the input is not known to be right.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        let mut h = self.embed(xs, train);
        for layer in &self.layers {
            h = layer.forward_t(&h, train);
        }
        self.head(&h.apply(&self.layernorm))
    }
}

impl nn::ModuleT for Vit {
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        Vit::forward_t(self, xs, train)
    }
}

/// A tiny ViT for unit tests (16 px, patch 4, `layers` blocks or the tiny preset's), its weights drawn from
/// `seed` with std 0.1, large enough that attention is far from uniform.
#[cfg(test)]
pub(crate) fn sharp_tiny(seed: i64, layers: Option<i64>) -> (nn::VarStore, Vit) {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let tiny = Config::tiny(16, 4);
    let cfg = Config {
        initializer_range: 0.1,
        num_hidden_layers: layers.unwrap_or(tiny.num_hidden_layers),
        ..tiny
    };
    let vit = Vit::new(&vs.root(), &cfg);
    (vs, vit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn layer_index_and_input_are_checked() {
        let vs = nn::VarStore::new(Device::Cpu);
        let vit = Vit::new(&vs.root(), &Config::tiny(16, 8));
        let xs = Tensor::zeros([2, 3, 16, 16], (Kind::Float, Device::Cpu));
        assert!(vit.forward_features(&xs, 5, false).is_err());
        assert!(vit.forward_features(&xs, -2, false).is_err());
        let wrong = Tensor::zeros([2, 3, 8, 16], (Kind::Float, Device::Cpu));
        assert!(vit
            .forward_features(&wrong, 1, false)
            .unwrap_err()
            .to_string()
            .contains("[b, 3, 16, 16]"));
        for layer in [-1, 0, 2, 4] {
            let f = vit.forward_features(&xs, layer, false).unwrap();
            assert_eq!(f.tokens.size(), [2, 5, 96]);
            assert_eq!(f.logits.size(), [2, 2]);
            let again = vit.head_from_tokens(&f.tokens, layer, false).unwrap();
            assert!(
                again.allclose(&f.logits, 1e-5, 1e-5, false),
                "layer {layer}"
            );
        }
    }

    #[test]
    fn explicit_attention_forward_equals_the_sdpa_forward() {
        let (_vs, vit) = super::sharp_tiny(3, None);
        let xs = Tensor::randn([3, 3, 16, 16], (Kind::Float, Device::Cpu));
        let (hs, last, logits) = vit.forward_hidden_states(&xs, false).unwrap();
        let trace = vit.forward_with_attentions(&xs, false).unwrap();
        assert_eq!(trace.hidden_states.len(), hs.len());
        assert_eq!(trace.attentions.len(), 4);
        for (a, b) in trace.hidden_states.iter().zip(&hs) {
            let diff = (a - b).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "hidden state differs by {diff}");
        }
        let diff = (&trace.output - &last).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "last hidden state differs by {diff}");
        let again = vit.head_from_tokens(&trace.output, -1, false).unwrap();
        assert!((again - logits).abs().max().double_value(&[]) < 1e-5);
        for probs in &trace.attentions {
            assert_eq!(probs.size(), [3, 3, 17, 17]);
            let rows = probs.sum_dim_intlist(-1, false, Kind::Float);
            assert!((rows - 1.0).abs().max().double_value(&[]) < 1e-5);
            // Not uniform: the check above would hold trivially for a model whose attention is 1/n everywhere.
            assert!(probs.max().double_value(&[]) > 2.0 / 17.0);
        }
    }

    #[test]
    fn forward_from_continues_any_layer_to_any_later_layer() {
        let (_vs, vit) = super::sharp_tiny(3, None);
        let xs = Tensor::randn([2, 3, 16, 16], (Kind::Float, Device::Cpu));
        let (hs, last, _) = vit.forward_hidden_states(&xs, false).unwrap();
        let at = |l: i64| {
            if l == -1 {
                last.shallow_clone()
            } else {
                hs[l as usize].shallow_clone()
            }
        };
        let layers = [0, 1, 2, 3, 4, -1];
        for (i, &from) in layers.iter().enumerate() {
            for &until in &layers[i..] {
                let got = vit.forward_from(&at(from), from, until, false).unwrap();
                let diff = (&got - at(until)).abs().max().double_value(&[]);
                assert!(diff < 1e-5, "{from} -> {until}: {diff}");
                let trace = vit
                    .forward_from_with_attentions(&at(from), from, until, false)
                    .unwrap();
                let diff = (&trace.output - at(until)).abs().max().double_value(&[]);
                assert!(diff < 1e-5, "traced {from} -> {until}: {diff}");
                // Blocks run: from -1 none; to -1 all remaining (the final layernorm adds no block).
                let pos = |l: i64| if l == -1 { 4 } else { l };
                let blocks = pos(until) - pos(from);
                assert_eq!(trace.attentions.len() as i64, blocks, "{from} -> {until}");
            }
        }
        assert!(vit.forward_from(&at(3), 3, 1, false).is_err());
        assert!(vit.forward_from(&at(-1), -1, 4, false).is_err());
        assert!(vit.forward_from(&xs, 0, 1, false).is_err());
    }

    #[test]
    fn parameter_names_are_hf_names() {
        let vs = nn::VarStore::new(Device::Cpu);
        let _vit = Vit::new(&vs.root(), &Config::tiny(16, 8));
        let vars = vs.variables();
        for name in [
            "vit.embeddings.cls_token",
            "vit.embeddings.position_embeddings",
            "vit.embeddings.patch_embeddings.projection.weight",
            "vit.encoder.layer.3.attention.attention.query.bias",
            "vit.encoder.layer.0.attention.output.dense.weight",
            "vit.encoder.layer.0.intermediate.dense.weight",
            "vit.encoder.layer.0.output.dense.bias",
            "vit.encoder.layer.0.layernorm_before.weight",
            "vit.encoder.layer.0.layernorm_after.bias",
            "vit.layernorm.weight",
            "classifier.weight",
        ] {
            assert!(
                vars.contains_key(name),
                "{name} missing from {:?}",
                vars.keys()
            );
        }
        // 5 embedding tensors... (cls, pos, conv w/b) + 16 per layer + layernorm 2 + classifier 2.
        assert_eq!(vars.len(), 4 + 16 * 4 + 2 + 2);
    }

    #[test]
    fn train_mode_gives_gradients_to_every_parameter() {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let vit = Vit::new(
            &vs.root(),
            &Config {
                hidden_dropout_prob: 0.1,
                ..Config::tiny(16, 8)
            },
        );
        let xs = Tensor::randn([4, 3, 16, 16], (Kind::Float, Device::Cpu));
        let labels = Tensor::from_slice(&[0i64, 1, 1, 0]);
        let loss = vit.forward_t(&xs, true).cross_entropy_for_logits(&labels);
        loss.backward();
        for (name, var) in vs.variables() {
            let g = var.grad();
            assert!(g.defined(), "{name} has no gradient");
            assert!(
                g.abs().sum(Kind::Float).double_value(&[]) > 0.0,
                "{name} has a zero gradient"
            );
        }
    }
}
