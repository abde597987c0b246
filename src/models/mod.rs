//! The three networks of TExplain and the checkpoint I/O they share.
//!
//! - [`vit`]: the image classifier, HF `ViTForImageClassification`.
//! - [`gpt2`]: the frozen language model, HF `GPT2LMHeadModel`, fed prefix embeddings.
//! - [`translator`]: the paper's 3-layer linear map from classifier tokens to the LM prefix (the only trained part).
//!
//! Parameter names are HF's, so a `model.safetensors` written by `save_pretrained` loads unchanged and one written by
//! [`save_safetensors`] loads in transformers. Checkpoint loading ([`load_safetensors`]) follows transformers'
//! `_load_pretrained_model`: the `base_model_prefix` rule, known non-parameter buffers ignored (and reported),
//! missing keys an error unless the caller allows them (a new classification head), shape mismatches an error that
//! names the key. Nothing is guessed: every rule a model needs is listed in that model's [`LoadOpts`].
pub mod gpt2;
pub mod translator;
pub mod vit;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::precision::{self, Precision};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, TchError, Tensor};

/// Errors of model construction, configuration and checkpoint I/O.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("parsing config {path}: {source}")]
    ConfigParse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("invalid model config: {0}")]
    InvalidConfig(String),
    #[error("checkpoint {path}: {source}")]
    Checkpoint { path: PathBuf, source: TchError },
    #[error(
        "checkpoint {path} lacks {} parameter(s) the model needs: {}",
        keys.len(),
        keys.join(", ")
    )]
    MissingKeys { path: PathBuf, keys: Vec<String> },
    #[error("checkpoint {path}: shape mismatch for `{key}`: the model expects {expected:?}, the checkpoint has {found:?}")]
    ShapeMismatch {
        path: PathBuf,
        key: String,
        expected: Vec<i64>,
        found: Vec<i64>,
    },
    #[error("invalid model input: {0}")]
    Input(String),
    #[error(transparent)]
    Torch(#[from] TchError),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

/// Activation functions by the names HF configs use (`hidden_act`, `activation_function`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// Exact (erf) GELU, HF `"gelu"`.
    #[serde(rename = "gelu")]
    Gelu,
    /// Tanh-approximated GELU, HF `"gelu_new"` (GPT-2's default).
    #[serde(rename = "gelu_new")]
    GeluNew,
    /// Tanh-approximated GELU, HF `"gelu_pytorch_tanh"` (same function as `gelu_new`).
    #[serde(rename = "gelu_pytorch_tanh")]
    GeluPytorchTanh,
    #[serde(rename = "relu")]
    Relu,
}

impl Activation {
    pub fn apply(self, xs: &Tensor) -> Tensor {
        match self {
            Activation::Gelu => xs.gelu("none"),
            Activation::GeluNew | Activation::GeluPytorchTanh => xs.gelu("tanh"),
            Activation::Relu => xs.relu(),
        }
    }
}

/// Splits a dotted HF name (`vit.encoder.layer.0`) into nested [`nn::Path`] segments: `nn::Path::sub` panics on a
/// segment containing '.'.
pub fn sub_path<'a>(vs: &nn::Path<'a>, dotted: &str) -> nn::Path<'a> {
    dotted
        .split('.')
        .filter(|s| !s.is_empty())
        .fold(vs.clone(), |p, s| p.sub(s))
}

/// A layer norm over the last dimension `d` with HF's `eps` (weight 1, bias 0 at initialisation).
pub(crate) fn layer_norm(vs: nn::Path, d: i64, eps: f64) -> LayerNorm {
    LayerNorm(nn::layer_norm(
        vs,
        vec![d],
        nn::LayerNormConfig {
            eps,
            ..Default::default()
        },
    ))
}

/// [`nn::Linear`] whose product runs in the current [`crate::precision`] region: bf16 inputs (activations, weight,
/// bias cast on the fly, the variables staying f32) in a bf16 region, bf16 output; plain f32 otherwise.
#[derive(Debug)]
pub(crate) struct Linear(pub nn::Linear);

impl nn::Module for Linear {
    fn forward(&self, xs: &Tensor) -> Tensor {
        match precision::current() {
            Precision::F32 => xs.apply(&self.0),
            Precision::Bf16 => {
                let bs = self.0.bs.as_ref().map(precision::lower_weight);
                precision::lower(xs).linear(&precision::lower_weight(&self.0.ws), bs.as_ref())
            }
        }
    }
}

/// [`nn::LayerNorm`] that always normalises in f32 (autocast's f32 list): bf16 inputs are cast up first.
#[derive(Debug)]
pub(crate) struct LayerNorm(pub nn::LayerNorm);

impl nn::Module for LayerNorm {
    fn forward(&self, xs: &Tensor) -> Tensor {
        precision::upper(xs).apply(&self.0)
    }
}

/// Reads and parses a JSON config file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ModelError::ConfigParse {
        path: path.to_path_buf(),
        source,
    })
}

use crate::util::write_file_atomic as write_atomic;

/// Config validation shared by the models: the first field that is not positive is an error naming the model,
/// the field and its value.
pub(crate) fn require_positive(model: &str, fields: &[(&str, i64)]) -> Result<()> {
    match fields.iter().find(|(_, v)| *v <= 0) {
        Some((name, v)) => Err(ModelError::InvalidConfig(format!(
            "{model} {name} must be positive, got {v}"
        ))),
        None => Ok(()),
    }
}

/// Writes a JSON value (a config) atomically, pretty-printed like HF's `config.json`.
pub(crate) fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| ModelError::InvalidConfig(format!("serializing {}: {e}", path.display())))?;
    text.push('\n');
    write_atomic(path, text.as_bytes()).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The rules one model needs to load a checkpoint; each model builds its own (e.g. [`gpt2::Gpt2::load_opts`]).
#[derive(Debug, Clone, Default)]
pub struct LoadOpts {
    /// HF `base_model_prefix` (`"vit"`, `"transformer"`), applied key by key: `prefix.` is added to a checkpoint key
    /// when that names a model parameter, and stripped when the rest does (see `apply_prefix_rule`).
    pub base_model_prefix: Option<String>,
    /// Model parameters allowed to stay at their fresh initialisation: exact names, or prefixes ending in '.'
    /// (`"classifier."`). Such a key that is absent, or present with another shape, is reported in
    /// [`LoadReport::missing`] (and the latter also in [`LoadReport::mismatched`]) instead of failing.
    pub allow_missing: Vec<String>,
    /// Checkpoint keys that are known non-parameters (buffers) and are dropped, reported in [`LoadReport::ignored`]
    /// (HF's `_keys_to_ignore_on_load_unexpected`, written out as exact patterns).
    /// Patterns name the keys as the model would (`transformer.h.{i}.attn.bias`) and also match the unprefixed form
    /// of a base-model checkpoint; `{i}` stands for one decimal number. Reported under the checkpoint's own name.
    pub ignore: Vec<String>,
    /// Tied parameters `(alias, target)`: a checkpoint key `alias` is the same tensor as the model's `target`
    /// (GPT-2's `lm_head.weight` is `transformer.wte.weight`). It serves as `target` when the checkpoint lacks
    /// `target`; otherwise it is dropped as HF's weight tying does. Either way it is reported in `ignored`.
    pub tied: Vec<(String, String)>,
}

/// What [`load_safetensors`] did besides copying the matching parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// Model parameters left at their initialisation (only ever keys the caller allowed).
    pub missing: Vec<String>,
    /// Checkpoint keys no model parameter took (after the prefix rule); reported, not an error, as in HF.
    pub unused: Vec<String>,
    /// Checkpoint keys dropped on purpose: known buffers and tied aliases.
    pub ignored: Vec<String>,
    /// Allowed keys whose checkpoint shape differed: `(key, model shape, checkpoint shape)`.
    pub mismatched: Vec<(String, Vec<i64>, Vec<i64>)>,
}

/// `key` matches `pattern`, where `{i}` in the pattern stands for one non-empty run of ASCII digits.
fn pattern_matches(pattern: &str, key: &str) -> bool {
    match pattern.split_once("{i}") {
        None => pattern == key,
        Some((head, tail)) => match key.strip_prefix(head) {
            None => false,
            Some(rest) => {
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                digits > 0 && pattern_matches(tail, &rest[digits..])
            }
        },
    }
}

fn is_allowed(allow: &[String], key: &str) -> bool {
    allow.iter().any(|a| {
        if a.ends_with('.') {
            key.starts_with(a.as_str())
        } else {
            a == key
        }
    })
}

/// Applies HF's `base_model_prefix` rule to checkpoint keys, key by key as transformers 5.x does
/// (`core_model_loading.rename_source_key`): a key starting with `prefix.` whose remainder is a model key is
/// stripped; otherwise a key for which `prefix.key` is a model key gets the prefix; any other key is kept. On whole
/// checkpoints this gives the same result as transformers 4.x's global rule (`has_prefix_module` /
/// `expects_prefix_module` in `_load_pretrained_model`): a `GPT2Model` checkpoint loads into `GPT2LMHeadModel`.
fn apply_prefix_rule(
    prefix: &str,
    loaded: Vec<(String, Tensor)>,
    expected: &BTreeSet<String>,
) -> Vec<(String, Tensor)> {
    let dotted = format!("{prefix}.");
    loaded
        .into_iter()
        .map(|(k, t)| {
            if let Some(stripped) = k.strip_prefix(&dotted).filter(|s| expected.contains(*s)) {
                return (stripped.to_string(), t);
            }
            let added = format!("{dotted}{k}");
            if expected.contains(&added) {
                (added, t)
            } else {
                (k, t)
            }
        })
        .collect()
}

/// Loads a safetensors checkpoint into `vs`'s variables by name.
///
/// Values are copied under `no_grad`, cast to each variable's dtype (bf16/f16 checkpoints land in the f32 model)
/// and moved to its device. A missing key that `opts` does not allow, or a shape mismatch, is an error naming the
/// key(s) and shapes; in either case no variable has been modified. Unused checkpoint keys are reported, not
/// an error (as in HF); callers that want strictness check [`LoadReport::unused`].
pub fn load_safetensors(vs: &mut nn::VarStore, path: &Path, opts: &LoadOpts) -> Result<LoadReport> {
    let loaded = Tensor::read_safetensors(path).map_err(|source| ModelError::Checkpoint {
        path: path.to_path_buf(),
        source,
    })?;
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let expected: BTreeSet<String> = vars.keys().cloned().collect();
    let loaded = match &opts.base_model_prefix {
        Some(prefix) => apply_prefix_rule(prefix, loaded, &expected),
        None => loaded,
    };
    let mut report = LoadReport::default();
    let mut ckpt: BTreeMap<String, Tensor> = BTreeMap::new();
    // Buffers are named as in the model (`transformer.h.{i}.attn.bias`); the prefix rule leaves a base-model
    // checkpoint's `h.0.attn.bias` unprefixed (no such model parameter), so the prefixed form is tried as well.
    let model_form = |key: &str| match &opts.base_model_prefix {
        Some(prefix) if !key.starts_with(&format!("{prefix}.")) => format!("{prefix}.{key}"),
        _ => key.to_string(),
    };
    for (key, t) in loaded {
        if opts
            .ignore
            .iter()
            .any(|p| pattern_matches(p, &key) || pattern_matches(p, &model_form(&key)))
        {
            report.ignored.push(key);
        } else {
            ckpt.insert(key, t);
        }
    }
    for (alias, target) in &opts.tied {
        if let Some(t) = ckpt.remove(alias) {
            match ckpt.get(target) {
                None => {
                    ckpt.insert(target.clone(), t);
                }
                Some(kept) => {
                    if kept.size() != t.size()
                        || !kept.to_kind(Kind::Float).allclose(
                            &t.to_kind(Kind::Float),
                            0.,
                            0.,
                            false,
                        )
                    {
                        tracing::warn!(%alias, %target, "checkpoint holds a tied alias that differs from its target; the target is used, as HF's weight tying does");
                    }
                }
            }
            report.ignored.push(alias.clone());
        }
    }

    // Check everything before copying anything, so that an error leaves the model untouched.
    let mut missing_err = Vec::new();
    let mut copies = Vec::new();
    for (name, var) in &vars {
        let allowed = is_allowed(&opts.allow_missing, name);
        match ckpt.get(name) {
            Some(src) if src.size() == var.size() => copies.push((var, src)),
            Some(src) if allowed => {
                report
                    .mismatched
                    .push((name.clone(), var.size(), src.size()));
                report.missing.push(name.clone());
            }
            Some(src) => {
                return Err(ModelError::ShapeMismatch {
                    path: path.to_path_buf(),
                    key: name.clone(),
                    expected: var.size(),
                    found: src.size(),
                })
            }
            None if allowed => report.missing.push(name.clone()),
            None => missing_err.push(name.clone()),
        }
    }
    if !missing_err.is_empty() {
        return Err(ModelError::MissingKeys {
            path: path.to_path_buf(),
            keys: missing_err,
        });
    }
    tch::no_grad(|| -> Result<()> {
        for (var, src) in copies {
            let mut var = var.shallow_clone();
            var.f_copy_(&src.to_device(var.device()).to_kind(var.kind()))?;
        }
        Ok(())
    })?;
    report.unused = ckpt
        .keys()
        .filter(|k| !vars.contains_key(*k))
        .cloned()
        .collect();
    report.ignored.sort();
    if !report.missing.is_empty() {
        tracing::warn!(keys = ?report.missing, checkpoint = %path.display(), "parameters left at their fresh initialisation (allowed by the caller)");
    }
    if !report.unused.is_empty() {
        tracing::warn!(keys = ?report.unused, checkpoint = %path.display(), "checkpoint keys not used by the model");
    }
    Ok(report)
}

/// Saves every variable of `vs` as safetensors under its dotted HF name (`vit.encoder.layer.0.attention...`),
/// atomically (a temporary name of this writer's own, `fsync`, then rename: [`crate::util::temp_path`]). Tensors are moved to the CPU and made contiguous first.
pub fn save_safetensors(vs: &nn::VarStore, path: &Path) -> Result<()> {
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    let tensors: Vec<(String, Tensor)> = vars
        .into_iter()
        .map(|(k, t)| (k, t.detach().to_device(tch::Device::Cpu).contiguous()))
        .collect();
    let tmp = crate::util::temp_path(path);
    Tensor::write_safetensors(&tensors, &tmp).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        ModelError::Checkpoint {
            path: tmp.clone(),
            source,
        }
    })?;
    crate::util::sync_and_rename(&tmp, path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `config.json` (via `write_config`) and `model.safetensors` (every variable of `vs`) into `dir`, creating it:
/// an HF-style folder that `from_hf_folder` (and transformers' `from_pretrained`) reads back. `vs` must hold this one
/// model only.
pub(crate) fn save_folder(
    vs: &nn::VarStore,
    dir: &Path,
    write_config: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| ModelError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    write_config(&dir.join("config.json"))?;
    save_safetensors(vs, &dir.join("model.safetensors"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_matching_table() {
        let cases = [
            (
                "transformer.h.{i}.attn.bias",
                "transformer.h.0.attn.bias",
                true,
            ),
            (
                "transformer.h.{i}.attn.bias",
                "transformer.h.11.attn.bias",
                true,
            ),
            (
                "transformer.h.{i}.attn.bias",
                "transformer.h.attn.bias",
                false,
            ),
            (
                "transformer.h.{i}.attn.bias",
                "transformer.h.0.attn.c_attn.bias",
                false,
            ),
            (
                "transformer.h.{i}.attn.bias",
                "transformer.h.0.attn.bias.x",
                false,
            ),
            (
                "transformer.h.{i}.attn.bias",
                "transformer.h.x1.attn.bias",
                false,
            ),
            ("a.b", "a.b", true),
            ("a.b", "a.bc", false),
        ];
        for (pattern, key, want) in cases {
            assert_eq!(pattern_matches(pattern, key), want, "{pattern} vs {key}");
        }
    }

    #[test]
    fn allowed_table() {
        let allow = vec!["classifier.".to_string(), "x.weight".to_string()];
        let cases = [
            ("classifier.weight", true),
            ("classifier.bias", true),
            ("x.weight", true),
            ("x.weights", false),
            ("y", false),
        ];
        for (key, want) in cases {
            assert_eq!(is_allowed(&allow, key), want, "{key}");
        }
    }

    #[test]
    fn prefix_rule_adds_strips_or_keeps() {
        let t = || Tensor::zeros([1], (Kind::Float, tch::Device::Cpu));
        let task: BTreeSet<String> = [
            "transformer.wte.weight".to_string(),
            "transformer.h.0.ln_1.weight".to_string(),
        ]
        .into();
        let base: BTreeSet<String> =
            ["wte.weight".to_string(), "h.0.ln_1.weight".to_string()].into();
        let cases: [(&BTreeSet<String>, &[&str], &[&str]); 4] = [
            // Base-model checkpoint (openai-community/gpt2) into the LM-head model: add; buffers kept as they are.
            (
                &task,
                &["wte.weight", "h.0.attn.bias"],
                &["transformer.wte.weight", "h.0.attn.bias"],
            ),
            // Already prefixed: kept, and so is a key outside the base model.
            (
                &task,
                &["transformer.wte.weight", "lm_head.weight"],
                &["transformer.wte.weight", "lm_head.weight"],
            ),
            // Task checkpoint into a base model: strip where the rest is a model key.
            (
                &base,
                &["transformer.wte.weight", "lm_head.weight"],
                &["wte.weight", "lm_head.weight"],
            ),
            // A prefix match without the dot is not a prefix.
            (
                &task,
                &["transformerX.wte.weight"],
                &["transformerX.wte.weight"],
            ),
        ];
        for (expected, keys, want) in cases {
            let got = apply_prefix_rule(
                "transformer",
                keys.iter().map(|k| (k.to_string(), t())).collect(),
                expected,
            );
            let got: Vec<String> = got.into_iter().map(|(k, _)| k).collect();
            assert_eq!(got, want, "{keys:?}");
        }
    }
}
