//! The ViT's hyper-parameters as HF's `ViTConfig` reads and writes them (`config.json`, transformers
//! `models/vit/configuration_vit.py`), and the forward FLOPs they imply.
use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::models::{read_json, write_json, Activation, ModelError, Result};

/// ViT hyper-parameters, with the field names and defaults of HF's `ViTConfig` (`config.json`).
///
/// `num_labels` is read from `num_labels` or, as HF does, from the size of `id2label` (which wins); when written,
/// `id2label`/`label2id` are produced (`LABEL_{i}` unless names were given) so transformers reads it back.
/// Unknown fields in a `config.json` (`architectures`, `torch_dtype`, `encoder_stride`, ...) are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawConfig", into = "RawConfig")]
pub struct Config {
    pub hidden_size: i64,
    pub num_hidden_layers: i64,
    pub num_attention_heads: i64,
    pub intermediate_size: i64,
    pub hidden_act: Activation,
    pub hidden_dropout_prob: f64,
    pub attention_probs_dropout_prob: f64,
    pub initializer_range: f64,
    pub layer_norm_eps: f64,
    /// Square images only (HF also accepts a pair; no checkpoint we target uses one).
    pub image_size: i64,
    pub patch_size: i64,
    pub num_channels: i64,
    pub qkv_bias: bool,
    pub num_labels: i64,
    /// Label names by index, when known (HF `id2label`).
    pub id2label: Option<BTreeMap<i64, String>>,
}

/// `config.json` as HF writes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RawConfig {
    #[serde(default = "d_hidden")]
    hidden_size: i64,
    #[serde(default = "d_12")]
    num_hidden_layers: i64,
    #[serde(default = "d_12")]
    num_attention_heads: i64,
    #[serde(default = "d_inter")]
    intermediate_size: i64,
    #[serde(default = "d_act")]
    hidden_act: Activation,
    #[serde(default)]
    hidden_dropout_prob: f64,
    #[serde(default)]
    attention_probs_dropout_prob: f64,
    #[serde(default = "d_init")]
    initializer_range: f64,
    #[serde(default = "d_eps")]
    layer_norm_eps: f64,
    #[serde(default = "d_image")]
    image_size: i64,
    #[serde(default = "d_patch")]
    patch_size: i64,
    #[serde(default = "d_channels")]
    num_channels: i64,
    #[serde(default = "d_true")]
    qkv_bias: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    num_labels: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id2label: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    label2id: Option<BTreeMap<String, i64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    architectures: Option<Vec<String>>,
}

fn d_hidden() -> i64 {
    768
}
fn d_12() -> i64 {
    12
}
fn d_inter() -> i64 {
    3072
}
fn d_act() -> Activation {
    Activation::Gelu
}
fn d_init() -> f64 {
    0.02
}
fn d_eps() -> f64 {
    1e-12
}
fn d_image() -> i64 {
    224
}
fn d_patch() -> i64 {
    16
}
fn d_channels() -> i64 {
    3
}
fn d_true() -> bool {
    true
}

impl TryFrom<RawConfig> for Config {
    type Error = ModelError;
    fn try_from(r: RawConfig) -> Result<Self> {
        let id2label = match r.id2label {
            None => None,
            Some(m) => {
                let mut out = BTreeMap::new();
                for (k, v) in m {
                    let i: i64 = k.parse().map_err(|_| {
                        ModelError::InvalidConfig(format!("id2label key `{k}` is not an integer"))
                    })?;
                    out.insert(i, v);
                }
                Some(out)
            }
        };
        // HF: id2label, when present, decides the number of labels; num_labels alone otherwise; 2 by default.
        let num_labels = match (&id2label, r.num_labels) {
            (Some(m), Some(n)) if m.len() as i64 != n => {
                return Err(ModelError::InvalidConfig(format!(
                    "num_labels = {n} but id2label has {} entries",
                    m.len()
                )))
            }
            (Some(m), _) => m.len() as i64,
            (None, Some(n)) => n,
            (None, None) => 2,
        };
        let cfg = Config {
            hidden_size: r.hidden_size,
            num_hidden_layers: r.num_hidden_layers,
            num_attention_heads: r.num_attention_heads,
            intermediate_size: r.intermediate_size,
            hidden_act: r.hidden_act,
            hidden_dropout_prob: r.hidden_dropout_prob,
            attention_probs_dropout_prob: r.attention_probs_dropout_prob,
            initializer_range: r.initializer_range,
            layer_norm_eps: r.layer_norm_eps,
            image_size: r.image_size,
            patch_size: r.patch_size,
            num_channels: r.num_channels,
            qkv_bias: r.qkv_bias,
            num_labels,
            id2label,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

impl From<Config> for RawConfig {
    fn from(c: Config) -> Self {
        let names: BTreeMap<i64, String> = c.id2label.unwrap_or_else(|| {
            (0..c.num_labels)
                .map(|i| (i, format!("LABEL_{i}")))
                .collect()
        });
        RawConfig {
            hidden_size: c.hidden_size,
            num_hidden_layers: c.num_hidden_layers,
            num_attention_heads: c.num_attention_heads,
            intermediate_size: c.intermediate_size,
            hidden_act: c.hidden_act,
            hidden_dropout_prob: c.hidden_dropout_prob,
            attention_probs_dropout_prob: c.attention_probs_dropout_prob,
            initializer_range: c.initializer_range,
            layer_norm_eps: c.layer_norm_eps,
            image_size: c.image_size,
            patch_size: c.patch_size,
            num_channels: c.num_channels,
            qkv_bias: c.qkv_bias,
            num_labels: None,
            label2id: Some(names.iter().map(|(i, n)| (n.clone(), *i)).collect()),
            id2label: Some(names.into_iter().map(|(i, n)| (i.to_string(), n)).collect()),
            model_type: Some("vit".into()),
            architectures: Some(vec!["ViTForImageClassification".into()]),
        }
    }
}

impl Config {
    /// The shape of `google/vit-base-patch16-384` (86M parameters, 577 tokens); `num_labels` as given.
    pub fn vit_base_patch16_384(num_labels: i64) -> Self {
        Config {
            hidden_size: 768,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            intermediate_size: 3072,
            hidden_act: Activation::Gelu,
            hidden_dropout_prob: 0.0,
            attention_probs_dropout_prob: 0.0,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            image_size: 384,
            patch_size: 16,
            num_channels: 3,
            qkv_bias: true,
            num_labels,
            id2label: None,
        }
    }

    /// A small ViT for synthetic data trained from scratch (d 96, depth 4, 3 heads, MLP 384), 2 labels.
    pub fn tiny(image_size: i64, patch_size: i64) -> Self {
        Config {
            hidden_size: 96,
            num_hidden_layers: 4,
            num_attention_heads: 3,
            intermediate_size: 384,
            image_size,
            patch_size,
            num_labels: 2,
            ..Self::vit_base_patch16_384(2)
        }
    }

    /// Reads an HF `config.json`.
    pub fn from_hf_json(path: &Path) -> Result<Self> {
        read_json(path)
    }

    /// Writes an HF-readable `config.json` (atomically).
    pub fn to_hf_json(&self, path: &Path) -> Result<()> {
        write_json(path, self)
    }

    /// Checks the invariants the model relies on.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("image_size", self.image_size),
            ("patch_size", self.patch_size),
            ("num_channels", self.num_channels),
            ("num_labels", self.num_labels),
        ];
        crate::models::require_positive("vit", &positive)?;
        if self.hidden_size % self.num_attention_heads != 0 {
            return Err(ModelError::InvalidConfig(format!(
                "vit hidden_size {} is not a multiple of num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            )));
        }
        if self.image_size % self.patch_size != 0 {
            return Err(ModelError::InvalidConfig(format!(
                "vit image_size {} is not a multiple of patch_size {}",
                self.image_size, self.patch_size
            )));
        }
        Ok(())
    }

    /// Patches per image side.
    pub fn grid(&self) -> i64 {
        self.image_size / self.patch_size
    }

    /// Tokens per image: patches plus the CLS token (`p + 1`).
    pub fn num_tokens(&self) -> i64 {
        self.grid() * self.grid() + 1
    }
}

/// Forward FLOPs per image (2 x multiply-accumulates) of the matrix products: patch embedding, per layer the
/// q/k/v/output projections (4 n d^2), attention scores and weighted sum (2 n^2 d) and the MLP (2 n d m), and the
/// classifier on the CLS token; n = p + 1 tokens. Layernorms, softmax, GELU and additions are left out (<1%).
/// Training (forward + backward) is about 3x this; MFU = 3 * flops * images/s / peak.
pub fn flops_per_image(cfg: &Config) -> f64 {
    let (d, m, l) = (
        cfg.hidden_size as f64,
        cfg.intermediate_size as f64,
        cfg.num_hidden_layers as f64,
    );
    let p = (cfg.grid() * cfg.grid()) as f64;
    let n = p + 1.0;
    let patch = p * (cfg.num_channels * cfg.patch_size * cfg.patch_size) as f64 * d;
    let layer = 4.0 * n * d * d + 2.0 * n * n * d + 2.0 * n * d * m;
    let head = d * cfg.num_labels as f64;
    2.0 * (patch + l * layer + head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_reads_num_labels_from_either_field() {
        let cases = [
            (r#"{"num_labels": 5}"#, Ok(5)),
            (r#"{"id2label": {"0": "a", "1": "b", "2": "c"}}"#, Ok(3)),
            (
                r#"{"id2label": {"0": "a", "1": "b"}, "num_labels": 2}"#,
                Ok(2),
            ),
            (
                r#"{"id2label": {"0": "a", "1": "b"}, "num_labels": 3}"#,
                Err("num_labels = 3"),
            ),
            (r#"{}"#, Ok(2)),
            (r#"{"hidden_act": "swish"}"#, Err("swish")),
            (r#"{"hidden_size": 100}"#, Err("not a multiple")),
        ];
        for (json, want) in cases {
            let got: Result<Config, _> = serde_json::from_str(json);
            match (got, want) {
                (Ok(c), Ok(n)) => assert_eq!(c.num_labels, n, "{json}"),
                (Err(e), Err(msg)) => assert!(e.to_string().contains(msg), "{json}: {e}"),
                (got, want) => panic!("{json}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn config_round_trips_through_hf_json() {
        let cfg = Config::tiny(64, 8);
        let text = serde_json::to_string(&cfg).unwrap();
        assert!(
            text.contains(r#""id2label":{"0":"LABEL_0","1":"LABEL_1"}"#),
            "{text}"
        );
        assert!(text.contains(r#""model_type":"vit""#), "{text}");
        let back: Config = serde_json::from_str(&text).unwrap();
        // Round-tripping names the labels LABEL_i; everything else is unchanged.
        assert_eq!(
            back,
            Config {
                id2label: back.id2label.clone(),
                ..cfg
            }
        );
    }

    #[test]
    fn flops_of_vit_base_384_match_the_known_value() {
        // ViT-B/16 at 384 px is 55.5 G multiply-accumulates (timm's model table, which the DeiT paper quotes as
        // "GFLOPs"); we count 2 x MACs, so ~111e9.
        let f = flops_per_image(&Config::vit_base_patch16_384(1000));
        assert!((f / 2.0 / 1e9 - 55.5).abs() < 1.0, "{f}");
    }
}
