//! The frozen language model: HF `GPT2LMHeadModel` (transformers `models/gpt2/modeling_gpt2.py`): learned positions,
//! pre-norm blocks with Conv1D projections (weights stored `[in, out]`), tanh-GELU MLP, final layernorm and an LM head
//! tied to the token embedding.
//!
//! TExplain feeds it a prefix of K translator embeddings followed by caption tokens (paper section 3.1, as in
//! ClipCap): the caller concatenates `[prefix; embed_tokens(ids)]` and calls [`Gpt2::forward_embeds`]. Sampling
//! uses the [`KvCache`]; positions continue from the cache length. Padding is only ever on the right (captions), so
//! causal attention needs no padding mask: padded positions never influence earlier ones and their loss is masked
//! by the caller. The tokenizer (`tokenizer.json`) is loaded by the text module, not here.
use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::{nn, Device, Kind, Tensor};

use super::{
    layer_norm, load_safetensors, read_json, save_folder, sub_path, write_json, Activation,
    LayerNorm, LoadOpts, LoadReport, ModelError, Result,
};
use crate::precision;

/// GPT-2 hyper-parameters with HF `GPT2Config`'s field names and defaults. Unknown `config.json` fields are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub vocab_size: i64,
    pub n_positions: i64,
    pub n_embd: i64,
    pub n_layer: i64,
    pub n_head: i64,
    /// MLP width; `null` means `4 * n_embd` (see [`Config::inner_dim`]).
    pub n_inner: Option<i64>,
    pub activation_function: Activation,
    pub resid_pdrop: f64,
    pub embd_pdrop: f64,
    pub attn_pdrop: f64,
    pub layer_norm_epsilon: f64,
    pub initializer_range: f64,
    pub bos_token_id: i64,
    pub eos_token_id: i64,
    /// Divide attention scores by sqrt(head_dim) (HF default true).
    pub scale_attn_weights: bool,
    /// Not supported when true (no GPT-2 checkpoint we target uses it); rejected by [`Config::validate`].
    pub scale_attn_by_inverse_layer_idx: bool,
    /// Only changes HF's numerics in half precision (we compute attention in f32); accepted and ignored.
    pub reorder_and_upcast_attn: bool,
    /// The LM head is always the token embedding; false is rejected by [`Config::validate`].
    pub tie_word_embeddings: bool,
    /// Cross-attention blocks (encoder-decoder use) are not implemented; true is rejected.
    pub add_cross_attention: bool,
}

impl Default for Config {
    /// HF `GPT2Config()` defaults: the 124M `gpt2` shape.
    fn default() -> Self {
        Config {
            vocab_size: 50257,
            n_positions: 1024,
            n_embd: 768,
            n_layer: 12,
            n_head: 12,
            n_inner: None,
            activation_function: Activation::GeluNew,
            resid_pdrop: 0.1,
            embd_pdrop: 0.1,
            attn_pdrop: 0.1,
            layer_norm_epsilon: 1e-5,
            initializer_range: 0.02,
            bos_token_id: 50256,
            eos_token_id: 50256,
            scale_attn_weights: true,
            scale_attn_by_inverse_layer_idx: false,
            reorder_and_upcast_attn: false,
            tie_word_embeddings: true,
            add_cross_attention: false,
        }
    }
}

/// `config.json` as written for transformers: the config plus `model_type` and `architectures`.
#[derive(Serialize)]
struct HfConfigOut<'a> {
    model_type: &'static str,
    architectures: [&'static str; 1],
    #[serde(flatten)]
    cfg: &'a Config,
}

impl Config {
    /// `openai-community/gpt2` (124M).
    pub fn gpt2_small() -> Self {
        Self::default()
    }

    /// A small GPT-2 for a synthetic caption corpus trained from scratch: d 128, 4 layers, 4 heads, 128 positions.
    pub fn tiny(vocab_size: i64, bos_token_id: i64, eos_token_id: i64) -> Self {
        Config {
            vocab_size,
            n_positions: 128,
            n_embd: 128,
            n_layer: 4,
            n_head: 4,
            bos_token_id,
            eos_token_id,
            ..Self::default()
        }
    }

    /// Reads an HF `config.json` and validates it.
    pub fn from_hf_json(path: &Path) -> Result<Self> {
        let cfg: Config = read_json(path)?;
        cfg.validate()
            .map_err(|e| ModelError::InvalidConfig(format!("{}: {e}", path.display())))?;
        Ok(cfg)
    }

    /// Writes an HF-readable `config.json` (atomically).
    pub fn to_hf_json(&self, path: &Path) -> Result<()> {
        write_json(
            path,
            &HfConfigOut {
                model_type: "gpt2",
                architectures: ["GPT2LMHeadModel"],
                cfg: self,
            },
        )
    }

    /// MLP width (`n_inner`, or `4 * n_embd` when null).
    pub fn inner_dim(&self) -> i64 {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("n_positions", self.n_positions),
            ("n_embd", self.n_embd),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("n_inner", self.inner_dim()),
        ];
        super::require_positive("gpt2", &positive)?;
        if self.n_embd % self.n_head != 0 {
            return Err(ModelError::InvalidConfig(format!(
                "gpt2 n_embd {} is not a multiple of n_head {}",
                self.n_embd, self.n_head
            )));
        }
        if self.scale_attn_by_inverse_layer_idx {
            return Err(ModelError::InvalidConfig(
                "gpt2 scale_attn_by_inverse_layer_idx = true is not supported".into(),
            ));
        }
        if self.add_cross_attention {
            return Err(ModelError::InvalidConfig(
                "gpt2 add_cross_attention = true is not supported".into(),
            ));
        }
        if !self.tie_word_embeddings {
            return Err(ModelError::InvalidConfig(
                "gpt2 tie_word_embeddings = false is not supported".into(),
            ));
        }
        Ok(())
    }
}

/// Per-layer cached keys and values, `[b, n_head, t, head_dim]` each: `t = len()` when the cache grows by
/// concatenation ([`KvCache::new`], HF's `DynamicCache`), `t = capacity` for a preallocated cache
/// ([`KvCache::with_capacity`]) whose first `len()` positions are filled.
#[derive(Debug)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: i64,
    /// Positions preallocated per layer; 0 = grow by concatenation.
    capacity: i64,
}

impl KvCache {
    /// An empty cache for a model with `n_layer` blocks that grows by concatenation.
    pub fn new(n_layer: i64) -> Self {
        KvCache {
            layers: (0..n_layer).map(|_| None).collect(),
            len: 0,
            capacity: 0,
        }
    }

    /// An empty cache whose buffers hold `capacity` positions, allocated on the first forward pass: each later
    /// step writes only its own positions instead of copying the whole past (sampling's decode loop).
    pub fn with_capacity(n_layer: i64, capacity: i64) -> Self {
        KvCache {
            capacity: capacity.max(1),
            ..Self::new(n_layer)
        }
    }

    /// Number of cached positions.
    pub fn len(&self) -> i64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Batch size of the cached sequences (0 when empty).
    pub fn batch_size(&self) -> i64 {
        match self.layers.first() {
            Some(Some((k, _))) => k.size()[0],
            _ => 0,
        }
    }

    /// Keeps (and reorders, or repeats) the batch rows given by `index` (int64 `[b']`), e.g. to expand one prefix
    /// into N samples or to drop finished sequences.
    pub fn select(&mut self, index: &Tensor) {
        for (k, v) in self.layers.iter_mut().flatten() {
            *k = k.index_select(0, index);
            *v = v.index_select(0, index);
        }
    }
}

/// HF `Conv1D`: `y = x W + b` with `W` stored `[in, out]`.
#[derive(Debug)]
struct Conv1D {
    weight: Tensor,
    bias: Tensor,
}

impl Conv1D {
    fn new(vs: nn::Path, nx: i64, nf: i64, std: f64) -> Self {
        Conv1D {
            weight: vs.var(
                "weight",
                &[nx, nf],
                nn::Init::Randn {
                    mean: 0.0,
                    stdev: std,
                },
            ),
            bias: vs.zeros("bias", &[nf]),
        }
    }

    /// `[.., nx] -> [.., nf]`, one `addmm` as HF's `Conv1D` (bias added inside the product's kernel); in the
    /// current [`crate::precision`] region (bf16 inputs and output in a bf16 region).
    fn forward(&self, xs: &Tensor) -> Tensor {
        let size = xs.size();
        let nx = self.weight.size()[0];
        let mut out_size = size.clone();
        *out_size
            .last_mut()
            .expect("Conv1D input has a feature dimension") = self.weight.size()[1];
        precision::lower_weight(&self.bias)
            .addmm(
                &precision::lower(&xs.reshape([-1, nx])),
                &precision::lower_weight(&self.weight),
            )
            .view(out_size.as_slice())
    }
}

/// One layer's view of a [`KvCache`] during a forward pass.
struct LayerPast<'a> {
    slot: &'a mut Option<(Tensor, Tensor)>,
    /// Positions already cached.
    len: i64,
    /// Preallocated positions, 0 when the cache grows by concatenation.
    capacity: i64,
}

#[derive(Debug)]
struct Block {
    ln_1: LayerNorm,
    c_attn: Conv1D,
    attn_proj: Conv1D,
    ln_2: LayerNorm,
    c_fc: Conv1D,
    mlp_proj: Conv1D,
    n_head: i64,
    act: Activation,
    scale: f64,
    attn_p: f64,
    resid_p: f64,
}

impl Block {
    fn new(vs: &nn::Path, cfg: &Config) -> Self {
        let (d, std) = (cfg.n_embd, cfg.initializer_range);
        // HF `_init_weights`: residual projections (`c_proj.weight`) get std / sqrt(2 n_layer) (GPT-2 paper).
        let proj_std = std / (2.0 * cfg.n_layer as f64).sqrt();
        let head_dim = (d / cfg.n_head) as f64;
        Block {
            ln_1: layer_norm(vs / "ln_1", d, cfg.layer_norm_epsilon),
            c_attn: Conv1D::new(sub_path(vs, "attn.c_attn"), d, 3 * d, std),
            attn_proj: Conv1D::new(sub_path(vs, "attn.c_proj"), d, d, proj_std),
            ln_2: layer_norm(vs / "ln_2", d, cfg.layer_norm_epsilon),
            c_fc: Conv1D::new(sub_path(vs, "mlp.c_fc"), d, cfg.inner_dim(), std),
            mlp_proj: Conv1D::new(sub_path(vs, "mlp.c_proj"), cfg.inner_dim(), d, proj_std),
            n_head: cfg.n_head,
            act: cfg.activation_function,
            scale: if cfg.scale_attn_weights {
                1.0 / head_dim.sqrt()
            } else {
                1.0
            },
            attn_p: cfg.attn_pdrop,
            resid_p: cfg.resid_pdrop,
        }
    }

    /// `xs`: `[b, t, d]`; `past`: this layer's cache slot, extended in place when given.
    fn forward_t(&self, xs: &Tensor, past: Option<LayerPast<'_>>, train: bool) -> Tensor {
        let (b, t, d) = xs.size3().expect("gpt2 block input is [b, t, d]");
        let hd = d / self.n_head;
        let qkv = self.c_attn.forward(&xs.apply(&self.ln_1)); // [b, t, 3d]
        let heads = |x: &Tensor| x.view([b, t, self.n_head, hd]).transpose(1, 2); // [b, H, t, hd]
        let parts = qkv.split(d, 2);
        let q = heads(&parts[0]);
        let (mut k, mut v) = (heads(&parts[1]), heads(&parts[2]));
        let mut t_past = 0;
        if let Some(past) = past {
            t_past = past.len;
            if past.capacity > 0 {
                let (bk, bv) = past.slot.get_or_insert_with(|| {
                    let shape = [b, self.n_head, past.capacity, hd];
                    let zeros = || Tensor::zeros(shape, (k.kind(), k.device()));
                    (zeros(), zeros())
                }); // [b, H, capacity, hd]
                bk.narrow(2, t_past, t).copy_(&k);
                bv.narrow(2, t_past, t).copy_(&v);
                k = bk.narrow(2, 0, t_past + t); // [b, H, t_past + t, hd]
                v = bv.narrow(2, 0, t_past + t);
            } else {
                if let Some((pk, pv)) = past.slot.as_ref() {
                    k = Tensor::cat(&[pk, &k], 2); // [b, H, t_past + t, hd]
                    v = Tensor::cat(&[pv, &v], 2);
                }
                *past.slot = Some((k.shallow_clone(), v.shallow_clone()));
            }
        }
        let attn_p = if train { self.attn_p } else { 0.0 };
        let a = if t == 1 {
            // One new query sees every cached key and itself: no mask.
            Tensor::scaled_dot_product_attention(
                &q,
                &k,
                &v,
                None::<Tensor>,
                attn_p,
                false,
                self.scale,
                false,
            )
        } else if t_past == 0 {
            Tensor::scaled_dot_product_attention(
                &q,
                &k,
                &v,
                None::<Tensor>,
                attn_p,
                true,
                self.scale,
                false,
            )
        } else {
            // Query i sits at absolute position t_past + i and sees keys 0..=t_past + i. (SDPA's is_causal aligns
            // the triangle top-left, which would be wrong here.)
            let dev = xs.device();
            let qi = Tensor::arange_start(t_past, t_past + t, (Kind::Int64, dev)).unsqueeze(1); // [t, 1]
            let kj = Tensor::arange(t_past + t, (Kind::Int64, dev)).unsqueeze(0); // [1, t_past + t]
            let mask = kj.le_tensor(&qi); // [t, t_past + t], true = attend
            Tensor::scaled_dot_product_attention(
                &q,
                &k,
                &v,
                Some(mask),
                attn_p,
                false,
                self.scale,
                false,
            )
        }; // [b, H, t, hd]
        let a = a.transpose(1, 2).reshape([b, t, d]);
        let xs = xs + self.attn_proj.forward(&a).dropout(self.resid_p, train); // [b, t, d]
        let m = self.act.apply(&self.c_fc.forward(&xs.apply(&self.ln_2))); // [b, t, inner]
        &xs + self.mlp_proj.forward(&m).dropout(self.resid_p, train)
    }
}

/// HF `GPT2LMHeadModel` with the LM head tied to `transformer.wte`.
#[derive(Debug)]
pub struct Gpt2 {
    cfg: Config,
    wte: Tensor,
    wpe: Tensor,
    blocks: Vec<Block>,
    ln_f: LayerNorm,
}

impl Gpt2 {
    /// Builds the model under `vs` (pass the VarStore's root for HF names). `cfg` must be valid.
    pub fn new(vs: &nn::Path, cfg: &Config) -> Self {
        let tr = vs / "transformer";
        let init = nn::Init::Randn {
            mean: 0.0,
            stdev: cfg.initializer_range,
        };
        let wte = (&tr / "wte").var("weight", &[cfg.vocab_size, cfg.n_embd], init);
        let wpe = (&tr / "wpe").var("weight", &[cfg.n_positions, cfg.n_embd], init);
        let h = &tr / "h";
        let blocks = (0..cfg.n_layer)
            .map(|i| Block::new(&(&h / i), cfg))
            .collect();
        let ln_f = layer_norm(&tr / "ln_f", cfg.n_embd, cfg.layer_norm_epsilon);
        Gpt2 {
            cfg: cfg.clone(),
            wte,
            wpe,
            blocks,
            ln_f,
        }
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The rules for loading an HF checkpoint: base-model prefix `transformer` (openai-community/gpt2 stores its
    /// keys unprefixed, saved from `GPT2Model`); the causal-mask buffers `h.{i}.attn.bias` and `h.{i}.attn.masked_bias`
    /// that old checkpoints persist, ignored (transformers 4.x: `_keys_to_ignore_on_load_unexpected =
    /// [r"h\.\d+\.attn\.masked_bias", r"h\.\d+\.attn\.bias"]`; 5.x: `["attn.bias", "crossattention.bias"]`, no
    /// cross-attention here); and `lm_head.weight` tied to `transformer.wte.weight` (`_tied_weights_keys`).
    pub fn load_opts() -> LoadOpts {
        LoadOpts {
            base_model_prefix: Some("transformer".into()),
            allow_missing: vec![],
            ignore: vec![
                "transformer.h.{i}.attn.bias".into(),
                "transformer.h.{i}.attn.masked_bias".into(),
            ],
            tied: vec![("lm_head.weight".into(), "transformer.wte.weight".into())],
        }
    }

    /// Builds GPT-2 from an HF folder (`config.json` + `model.safetensors`) into `vs`. The tokenizer
    /// (`tokenizer.json` in the same folder) is loaded by the text module.
    pub fn from_hf_folder(vs: &mut nn::VarStore, dir: &Path) -> Result<(Self, LoadReport)> {
        let cfg = Config::from_hf_json(&dir.join("config.json"))?;
        let model = Gpt2::new(&vs.root(), &cfg);
        let report = load_safetensors(vs, &dir.join("model.safetensors"), &Self::load_opts())?;
        Ok((model, report))
    }

    /// Writes `config.json` + `model.safetensors` into `dir` (an HF folder without `lm_head.weight`, as
    /// `save_pretrained` writes tied weights; `vs` must hold this model only).
    pub fn save_hf_folder(&self, vs: &nn::VarStore, dir: &Path) -> Result<()> {
        save_folder(vs, dir, |p| self.cfg.to_hf_json(p))
    }

    /// The token embedding matrix `[vocab, d]` (also the LM head).
    pub fn wte(&self) -> &Tensor {
        &self.wte
    }

    /// Token embeddings: ids `[b, t]` (int64) -> `[b, t, d]`.
    pub fn embed_tokens(&self, ids: &Tensor) -> Result<Tensor> {
        if ids.dim() != 2 || ids.kind() != Kind::Int64 {
            return Err(ModelError::Input(format!(
                "gpt2 token ids must be int64 [b, t], got {:?} {:?}",
                ids.kind(),
                ids.size()
            )));
        }
        if ids.numel() > 0 {
            let (lo, hi) = (ids.min().int64_value(&[]), ids.max().int64_value(&[]));
            if lo < 0 || hi >= self.cfg.vocab_size {
                return Err(ModelError::Input(format!(
                    "gpt2 token ids must lie in 0..{}, got {lo}..={hi}",
                    self.cfg.vocab_size
                )));
            }
        }
        Ok(Tensor::embedding(&self.wte, ids, -1, false, false))
    }

    /// Logits `[b, t, vocab]` for input embeddings `[b, t, d]` (a prefix and/or token embeddings). Positions are
    /// `cache.len() ..`; the cache, when given, is extended by these `t` positions.
    pub fn forward_embeds(
        &self,
        embeds: &Tensor,
        cache: Option<&mut KvCache>,
        train: bool,
    ) -> Result<Tensor> {
        let size = embeds.size();
        if size.len() != 3 || size[2] != self.cfg.n_embd || size[1] == 0 {
            return Err(ModelError::Input(format!(
                "gpt2 input embeddings must be [b, t>0, {}], got {size:?}",
                self.cfg.n_embd
            )));
        }
        let (b, t) = (size[0], size[1]);
        let past = cache.as_ref().map_or(0, |c| c.len());
        if let Some(c) = cache.as_ref() {
            if c.layers.len() as i64 != self.cfg.n_layer {
                return Err(ModelError::Input(format!(
                    "kv cache has {} layers, the model {}",
                    c.layers.len(),
                    self.cfg.n_layer
                )));
            }
            if past > 0 && c.batch_size() != b {
                return Err(ModelError::Input(format!(
                    "kv cache holds batch {}, input has {b}",
                    c.batch_size()
                )));
            }
        }
        if let Some(c) = cache
            .as_ref()
            .filter(|c| c.capacity > 0 && past + t > c.capacity)
        {
            return Err(ModelError::Input(format!(
                "kv cache holds {} positions, {} were asked for",
                c.capacity,
                past + t
            )));
        }
        if past + t > self.cfg.n_positions {
            return Err(ModelError::Input(format!(
                "gpt2 sequence of {} positions exceeds n_positions {}",
                past + t,
                self.cfg.n_positions
            )));
        }
        let positions = Tensor::arange_start(past, past + t, (Kind::Int64, embeds.device()));
        let pos = self.wpe.index_select(0, &positions); // [t, d]
        let mut xs = (embeds + pos).dropout(self.cfg.embd_pdrop, train); // [b, t, d]
        match cache {
            Some(c) => {
                for (block, slot) in self.blocks.iter().zip(c.layers.iter_mut()) {
                    let layer = LayerPast {
                        slot,
                        len: c.len,
                        capacity: c.capacity,
                    };
                    xs = block.forward_t(&xs, Some(layer), train);
                }
                c.len += t;
            }
            None => {
                for block in &self.blocks {
                    xs = block.forward_t(&xs, None, train);
                }
            }
        }
        let xs = xs.apply(&self.ln_f); // [b, t, d]
                                       // The tied head in the compute precision, the logits in f32 (sampling and the loss read them).
        let logits = precision::lower(&xs).matmul(&precision::lower_weight(&self.wte).tr()); // [b, t, vocab]
        Ok(precision::upper(&logits))
    }

    /// Logits `[b, t, vocab]` for token ids `[b, t]`.
    pub fn forward(
        &self,
        ids: &Tensor,
        cache: Option<&mut KvCache>,
        train: bool,
    ) -> Result<Tensor> {
        self.forward_embeds(&self.embed_tokens(ids)?, cache, train)
    }

    /// Device of the parameters.
    pub fn device(&self) -> Device {
        self.wte.device()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_hf_fields_and_defaults() {
        let cfg: Config = serde_json::from_str(
            r#"{"n_embd": 32, "n_layer": 2, "n_head": 4, "vocab_size": 100, "n_inner": null,
                "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "torch_dtype": "float32"}"#,
        )
        .unwrap();
        assert_eq!(cfg.inner_dim(), 128);
        assert_eq!(cfg.activation_function, Activation::GeluNew);
        assert_eq!(cfg.n_positions, 1024);
        let text = serde_json::to_string(&HfConfigOut {
            model_type: "gpt2",
            architectures: ["GPT2LMHeadModel"],
            cfg: &cfg,
        })
        .unwrap();
        let back: Config = serde_json::from_str(&text).unwrap();
        assert_eq!(back, cfg);
        let bad = Config { n_head: 5, ..cfg };
        assert!(bad.validate().unwrap_err().to_string().contains("n_head 5"));
    }

    #[test]
    fn bad_inputs_are_errors() {
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = Config {
            n_positions: 8,
            ..Config::tiny(50, 0, 0)
        };
        let lm = Gpt2::new(&vs.root(), &cfg);
        let ids = Tensor::from_slice(&[1i64, 2, 50]).view([1, 3]);
        assert!(lm
            .forward(&ids, None, false)
            .unwrap_err()
            .to_string()
            .contains("0..50"));
        let long = Tensor::zeros([1, 9], (Kind::Int64, Device::Cpu));
        assert!(lm
            .forward(&long, None, false)
            .unwrap_err()
            .to_string()
            .contains("n_positions 8"));
        let mut cache = KvCache::new(4);
        let five = Tensor::zeros([1, 5], (Kind::Int64, Device::Cpu));
        let _ = lm.forward(&five, Some(&mut cache), false).unwrap();
        assert_eq!(cache.len(), 5);
        assert!(lm.forward(&five, Some(&mut cache), false).is_err());
    }

    #[test]
    fn preallocated_cache_gives_the_same_logits() {
        tch::manual_seed(2);
        let vs = nn::VarStore::new(Device::Cpu);
        let lm = Gpt2::new(&vs.root(), &Config::tiny(50, 0, 0));
        let ids = Tensor::randint(50, [2, 7], (Kind::Int64, Device::Cpu));
        let full = lm.forward(&ids, None, false).unwrap(); // [2, 7, vocab]
        let mut grown = KvCache::new(4);
        let mut fixed = KvCache::with_capacity(4, 7);
        // Chunks 3, 1, 2, 1 through both caches; the last chunk is repeated row-wise by select.
        let mut pos = 0;
        for chunk in [3, 1, 2] {
            let part = ids.narrow(1, pos, chunk);
            let a = lm.forward(&part, Some(&mut grown), false).unwrap();
            let b = lm.forward(&part, Some(&mut fixed), false).unwrap();
            let want = full.narrow(1, pos, chunk);
            for (name, got) in [("grown", &a), ("fixed", &b)] {
                let diff = (got - &want).abs().max().double_value(&[]);
                assert!(diff < 1e-5, "{name} chunk at {pos}: {diff}");
            }
            pos += chunk;
        }
        assert_eq!((grown.len(), fixed.len()), (6, 6));
        fixed.select(&Tensor::from_slice(&[1i64, 1]));
        let last = lm
            .forward(
                &ids.narrow(1, 6, 1).get(1).repeat([2, 1]),
                Some(&mut fixed),
                false,
            )
            .unwrap(); // [2, 1, vocab]
        let diff = (last.get(0).get(0) - full.get(1).get(6))
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff < 1e-5, "{diff}");
        assert!(
            lm.forward(&ids.narrow(1, 0, 1), Some(&mut fixed), false)
                .is_err(),
            "the 8th position exceeds the capacity of 7"
        );
    }

    #[test]
    fn cache_select_repeats_rows() {
        let vs = nn::VarStore::new(Device::Cpu);
        let lm = Gpt2::new(&vs.root(), &Config::tiny(50, 0, 0));
        let mut cache = KvCache::new(4);
        let ids = Tensor::from_slice(&[3i64, 4, 5]).view([1, 3]);
        let _ = lm.forward(&ids, Some(&mut cache), false).unwrap();
        cache.select(&Tensor::from_slice(&[0i64, 0, 0]));
        assert_eq!(cache.batch_size(), 3);
        let next = Tensor::from_slice(&[6i64, 7, 8]).view([3, 1]);
        let step = lm.forward(&next, Some(&mut cache), false).unwrap(); // [3, 1, vocab]
        let full = lm
            .forward(
                &Tensor::from_slice(&[3i64, 4, 5, 7]).view([1, 4]),
                None,
                false,
            )
            .unwrap();
        let diff = (step.get(1).get(0) - full.get(0).get(3))
            .abs()
            .max()
            .double_value(&[]);
        assert!(diff < 1e-5, "{diff}");
    }
}
