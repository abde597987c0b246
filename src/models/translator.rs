//! The TExplain translator (paper section 3.1): maps the frozen classifier's token activations to K prefix embeddings
//! of the frozen language model. Three linear layers with NO non-linearity between them (as the paper specifies: the
//! map is linear overall, factored through two hidden widths), the only trained part of the pipeline.
//!
//! How the tokens reach `fc1` is the config's [`Readout`]: `flatten` (the paper's, and the default) concatenates all
//! `in_tokens` tokens, so each token slot has its own read weights; `mean` and `sum` pool the tokens first and `fc1`
//! reads one token's width, a position-shared readout: `prefix = T(mean_i A_i)` or `prefix = T(sum_i A_i) =
//! sum_i W A_i + b` (the affine map's bias counted once). With a pooled readout the score's gradient is the same for
//! every token slot, so word-GradCAM (Selvaraju et al. 2017) is CAM (Zhou et al. 2016) exactly: the channel weights
//! are `W^T ds/dprefix` and the map is each token's first-order share of the score. `attention` pools the tokens
//! with one learned query per head (attention pooling, as CLIP's `AttentionPool2d` and SigLIP's MAP head, without
//! their key, value and output projections): `prefix = T([sum_i a_hi A_i]_h)`, `a_h = softmax_i(q_h . A_i)`. Its read
//! weights are position-shared too, but the pooling weights depend on the tokens, so it is not affine and CAM is
//! only its first order. The logits are not divided by `sqrt(d)`: the queries start at zero (the mean readout) and
//! the translator trains a few epochs; with the `1 / sqrt(d)` they barely left the mean (query norms 0.1-0.5 after
//! 4 epochs, seed 0 of the object setting).
//!
//! Our own model, so the names are ours: `fc1` (flattened tokens -> hidden), `fc2` (hidden -> hidden), `fc3`
//! (hidden -> K * d_lm), each with `weight` `[out, in]` and `bias`, saved as `fc1.weight`, `fc1.bias`, ..., and
//! `pool.query` `[heads, d]` under `attention` (prefixed by whatever path the caller builds it under).
use std::path::Path;

use serde::{Deserialize, Serialize};
use tch::{nn, nn::Module, Tensor};

use super::{
    load_safetensors, read_json, save_folder, write_json, Linear, LoadOpts, ModelError, Result,
};

/// How the translator reads its tokens (YAML `translator.readout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Readout {
    /// All tokens concatenated: each token slot has its own read weights (the paper's translator).
    #[default]
    Flatten,
    /// `T(mean_i A_i)`: one set of read weights shared by every token.
    Mean,
    /// `T(sum_i A_i) = sum_i W A_i + b`: shared read weights, the bias counted once.
    Sum,
    /// Attention pooling: `T([sum_i a_hi A_i]_h)` with `a_h = softmax_i(q_h . A_i)`, one learned query per head
    /// ([`ATTENTION_HEADS`]); shared read weights, and each head can weigh the tokens that matter to it.
    Attention,
}

/// The number of learned queries of `readout: attention`.
pub const ATTENTION_HEADS: i64 = 4;

impl Readout {
    pub fn name(self) -> &'static str {
        match self {
            Readout::Flatten => "flatten",
            Readout::Mean => "mean",
            Readout::Sum => "sum",
            Readout::Attention => "attention",
        }
    }

    /// Whether this is the default (`flatten`): the field is then left out of configs and stage keys.
    pub fn is_flatten(&self) -> bool {
        *self == Readout::Flatten
    }
}

impl std::fmt::Display for Readout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Number of classifier tokens read (`p + 1` for all of them, or `token_subset.len()`).
    pub in_tokens: i64,
    /// Classifier width d.
    pub in_dim: i64,
    pub hidden_dim: i64,
    /// K, the number of prefix embeddings.
    pub prefix_len: i64,
    /// Language-model width d_lm.
    pub out_dim: i64,
    /// Token indices (into the classifier's `p + 1` tokens, CLS = 0) to read; all tokens when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_subset: Option<Vec<i64>>,
    /// How the tokens reach `fc1` ([`Readout`]); written only when not `flatten`, so the configs (and checkpoints)
    /// of flattening translators are unchanged.
    #[serde(default, skip_serializing_if = "Readout::is_flatten")]
    pub readout: Readout,
}

impl Config {
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("in_tokens", self.in_tokens),
            ("in_dim", self.in_dim),
            ("hidden_dim", self.hidden_dim),
            ("prefix_len", self.prefix_len),
            ("out_dim", self.out_dim),
        ] {
            if v <= 0 {
                return Err(ModelError::InvalidConfig(format!(
                    "translator {name} must be positive, got {v}"
                )));
            }
        }
        if let Some(s) = &self.token_subset {
            if s.len() as i64 != self.in_tokens || s.iter().any(|&i| i < 0) {
                return Err(ModelError::InvalidConfig(format!(
                    "translator token_subset must hold in_tokens = {} non-negative indices, got {s:?}",
                    self.in_tokens
                )));
            }
        }
        Ok(())
    }

    /// Width of `fc1`'s input: every token's for `flatten`, one token's for a pooled readout.
    pub fn fc1_in(&self) -> i64 {
        match self.readout {
            Readout::Flatten => self.in_tokens * self.in_dim,
            Readout::Mean | Readout::Sum => self.in_dim,
            Readout::Attention => ATTENTION_HEADS * self.in_dim,
        }
    }

    pub fn from_json(path: &Path) -> Result<Self> {
        let cfg: Config = read_json(path)?;
        cfg.validate()
            .map_err(|e| ModelError::InvalidConfig(format!("{}: {e}", path.display())))?;
        Ok(cfg)
    }

    /// Writes the config as JSON (atomically).
    pub fn to_json(&self, path: &Path) -> Result<()> {
        write_json(path, self)
    }
}

#[derive(Debug)]
pub struct Translator {
    cfg: Config,
    /// The queries `[heads, d]` of `readout: attention` (`pool.query`), zero at initialisation (a mean readout).
    pool_query: Option<Tensor>,
    fc1: Linear,
    fc2: Linear,
    fc3: Linear,
}

impl Translator {
    /// Builds the translator under `vs`; PyTorch's default `nn.Linear` initialisation. `cfg` must be valid.
    pub fn new(vs: &nn::Path, cfg: &Config) -> Self {
        let lc = nn::LinearConfig::default();
        let pool_query = (cfg.readout == Readout::Attention)
            .then(|| (vs / "pool").zeros("query", &[ATTENTION_HEADS, cfg.in_dim]));
        Translator {
            cfg: cfg.clone(),
            pool_query,
            fc1: Linear(nn::linear(vs / "fc1", cfg.fc1_in(), cfg.hidden_dim, lc)),
            fc2: Linear(nn::linear(vs / "fc2", cfg.hidden_dim, cfg.hidden_dim, lc)),
            fc3: Linear(nn::linear(
                vs / "fc3",
                cfg.hidden_dim,
                cfg.prefix_len * cfg.out_dim,
                lc,
            )),
        }
    }

    /// Writes `config.json` + `model.safetensors` into `dir` (`vs` must hold this translator only, at its root).
    pub fn save_folder(&self, vs: &nn::VarStore, dir: &Path) -> Result<()> {
        save_folder(vs, dir, |p| self.cfg.to_json(p))
    }

    /// Builds a translator from a folder written by [`Translator::save_folder`] into `vs` (at its root). Every
    /// parameter must be present; any other key is an error too (our own format, nothing to tolerate).
    pub fn from_folder(vs: &mut nn::VarStore, dir: &Path) -> Result<Self> {
        let cfg = Config::from_json(&dir.join("config.json"))?;
        let model = Translator::new(&vs.root(), &cfg);
        let path = dir.join("model.safetensors");
        let report = load_safetensors(vs, &path, &LoadOpts::default())?;
        if !report.unused.is_empty() {
            return Err(ModelError::InvalidConfig(format!(
                "{}: unexpected translator keys {:?}",
                path.display(),
                report.unused
            )));
        }
        Ok(model)
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Classifier tokens `[b, p+1, d]` -> prefix embeddings `[b, K, d_lm]`.
    pub fn forward(&self, tokens: &Tensor) -> Result<Tensor> {
        let c = &self.cfg;
        let size = tokens.size();
        if size.len() != 3 || size[2] != c.in_dim {
            return Err(ModelError::Input(format!(
                "translator expects tokens [b, n, {}], got {size:?}",
                c.in_dim
            )));
        }
        let xs = match &c.token_subset {
            Some(idx) => {
                if let Some(&bad) = idx.iter().find(|&&i| i >= size[1]) {
                    return Err(ModelError::Input(format!(
                        "translator token index {bad} >= {} tokens",
                        size[1]
                    )));
                }
                tokens.index_select(1, &Tensor::from_slice(idx).to_device(tokens.device()))
                // [b, in_tokens, d]
            }
            None => tokens.shallow_clone(),
        };
        if xs.size()[1] != c.in_tokens {
            return Err(ModelError::Input(format!(
                "translator expects {} tokens, got {}",
                c.in_tokens,
                xs.size()[1]
            )));
        }
        let b = size[0];
        let xs = match c.readout {
            Readout::Flatten => xs.reshape([b, c.in_tokens * c.in_dim]), // [b, n*d]
            Readout::Mean => xs.mean_dim(1, false, xs.kind()),           // [b, d]
            Readout::Sum => xs.sum_dim_intlist(1, false, xs.kind()),     // [b, d]
            Readout::Attention => {
                let q = self
                    .pool_query
                    .as_ref()
                    .expect("attention readout has queries"); // [h, d]
                let xs = crate::precision::upper(&xs); // [b, n, d], softmax in f32
                let logits = xs.matmul(&q.tr()); // [b, n, h]
                let weights = logits.softmax(1, tch::Kind::Float); // [b, n, h]
                weights
                    .transpose(1, 2)
                    .matmul(&xs)
                    .reshape([b, ATTENTION_HEADS * c.in_dim]) // [b, h*d]
            }
        };
        let xs = self.fc3.forward(&self.fc2.forward(&self.fc1.forward(&xs))); // [b, K*d_lm]
                                                                              // The prefix is f32 in every precision (the LM adds it to its f32 embeddings).
        Ok(crate::precision::upper(&xs).view([b, c.prefix_len, c.out_dim])) // [b, K, d_lm]
    }

    /// The linear part `W = W3 W2 W1` of the affine map from `fc1`'s input to the flattened prefix:
    /// `[K * d_lm, fc1_in]` (columns `[j d, (j+1) d)` read token slot j under `flatten`; all `d` columns read the
    /// pooled token otherwise). f32, no gradient.
    pub fn linear_part(&self) -> Tensor {
        tch::no_grad(|| {
            let w1 = self.fc1.0.ws.to_kind(tch::Kind::Float); // [h, fc1_in]
            let w2 = self.fc2.0.ws.to_kind(tch::Kind::Float); // [h, h]
            let w3 = self.fc3.0.ws.to_kind(tch::Kind::Float); // [K*d_lm, h]
            w3.matmul(&w2).matmul(&w1) // [K*d_lm, fc1_in]
        })
    }
}

/// A translator over the 17 tokens of width 96 of `vit::sharp_tiny`'s 16 px ViT, for unit tests, with a fixed
/// non-linear score of its prefix (a stand-in for the word score: the sum of tanh(prefix * u), u drawn after the
/// weights).
#[cfg(test)]
pub(crate) fn tiny_scored(
    readout: Readout,
) -> (nn::VarStore, Translator, impl Fn(&Tensor) -> Tensor) {
    let vs = nn::VarStore::new(tch::Device::Cpu);
    let tr = Translator::new(
        &vs.root(),
        &Config {
            in_tokens: 17,
            in_dim: 96,
            hidden_dim: 32,
            prefix_len: 2,
            out_dim: 8,
            token_subset: None,
            readout,
        },
    );
    let u = Tensor::randn([2, 8], (tch::Kind::Float, tch::Device::Cpu));
    let prefix_score = move |prefix: &Tensor| -> Tensor {
        (prefix * &u)
            .tanh()
            .sum_dim_intlist(&[1i64, 2][..], false, tch::Kind::Float)
    };
    (vs, tr, prefix_score)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    fn cfg() -> Config {
        Config {
            in_tokens: 5,
            in_dim: 8,
            hidden_dim: 16,
            prefix_len: 3,
            out_dim: 12,
            token_subset: None,
            readout: Readout::Flatten,
        }
    }

    #[test]
    fn shapes_names_and_linearity() {
        let vs = nn::VarStore::new(Device::Cpu);
        let tr = Translator::new(&vs.root(), &cfg());
        let mut names: Vec<String> = vs.variables().into_keys().collect();
        names.sort();
        assert_eq!(
            names,
            [
                "fc1.bias",
                "fc1.weight",
                "fc2.bias",
                "fc2.weight",
                "fc3.bias",
                "fc3.weight"
            ]
        );
        let a = Tensor::randn([2, 5, 8], (Kind::Float, Device::Cpu));
        let b = Tensor::randn([2, 5, 8], (Kind::Float, Device::Cpu));
        let zero = Tensor::zeros([2, 5, 8], (Kind::Float, Device::Cpu));
        let f = |x: &Tensor| tr.forward(x).unwrap();
        assert_eq!(f(&a).size(), [2, 3, 12]);
        // Affine overall (no non-linearity): f(a + b) - f(0) = (f(a) - f(0)) + (f(b) - f(0)).
        let lhs = f(&(&a + &b)) - f(&zero);
        let rhs = f(&a) - f(&zero) + f(&b) - f(&zero);
        assert!(lhs.allclose(&rhs, 1e-4, 1e-4, false));
    }

    #[test]
    fn folder_round_trip() {
        let vs = nn::VarStore::new(Device::Cpu);
        let tr = Translator::new(
            &vs.root(),
            &Config {
                token_subset: Some(vec![0, 1, 2, 3, 4]),
                ..cfg()
            },
        );
        let dir = tempfile::tempdir().unwrap();
        tr.save_folder(&vs, dir.path()).unwrap();
        let mut vs2 = nn::VarStore::new(Device::Cpu);
        let tr2 = Translator::from_folder(&mut vs2, dir.path()).unwrap();
        assert_eq!(tr2.config(), tr.config());
        let xs = Tensor::randn([2, 5, 8], (Kind::Float, Device::Cpu));
        assert!(tr.forward(&xs).unwrap().equal(&tr2.forward(&xs).unwrap()));
    }

    #[test]
    fn token_subset_and_bad_inputs() {
        let vs = nn::VarStore::new(Device::Cpu);
        let sub = Config {
            in_tokens: 2,
            token_subset: Some(vec![0, 4]),
            ..cfg()
        };
        let tr = Translator::new(&vs.root(), &sub);
        assert_eq!(
            tr.forward(&Tensor::zeros([3, 5, 8], (Kind::Float, Device::Cpu)))
                .unwrap()
                .size(),
            [3, 3, 12]
        );
        let short = tr.forward(&Tensor::zeros([3, 4, 8], (Kind::Float, Device::Cpu)));
        assert!(short.unwrap_err().to_string().contains("index 4"));
        assert!(tr
            .forward(&Tensor::zeros([3, 5, 7], (Kind::Float, Device::Cpu)))
            .is_err());
        let bad = Config {
            in_tokens: 3,
            ..sub
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn attention_readout_pools_each_head_by_its_query_and_starts_as_the_mean() {
        let a = Tensor::randn([2, 5, 8], (Kind::Float, Device::Cpu));
        let vs = nn::VarStore::new(Device::Cpu);
        let c = Config {
            readout: Readout::Attention,
            ..cfg()
        };
        let tr = Translator::new(&vs.root(), &c);
        let vars = vs.variables();
        assert_eq!(vars["pool.query"].size(), [ATTENTION_HEADS, 8]);
        assert_eq!(vars["fc1.weight"].size(), [16, ATTENTION_HEADS * 8]);
        // Zero queries weigh every token alike: each head pools the mean.
        let mean = a
            .mean_dim(1, true, Kind::Float)
            .repeat([1, ATTENTION_HEADS, 1]); // [2, h, d]
        let fc = |pooled: &Tensor| {
            tr.fc3
                .forward(&tr.fc2.forward(&tr.fc1.forward(&pooled.reshape([2, -1]))))
                .view([2, 3, 12])
        };
        let got = tr.forward(&a).unwrap();
        assert!(got.allclose(&fc(&mean), 1e-5, 1e-5, false));
        // A query that points at one token's direction pools (nearly) that token in its head only.
        let target = Tensor::zeros([2, 5, 8], (Kind::Float, Device::Cpu));
        let _ = target.narrow(1, 3, 1).narrow(2, 0, 1).fill_(1.0);
        let peaked = &a * 0.01 + &target; // token 3 alone carries channel 0
        tch::no_grad(|| {
            let _ = vars["pool.query"].get(1).get(0).fill_(1e3); // head 1 reads channel 0
        });
        let want = peaked
            .mean_dim(1, true, Kind::Float)
            .repeat([1, ATTENTION_HEADS, 1]);
        want.narrow(1, 1, 1).copy_(&peaked.narrow(1, 3, 1));
        let got = tr.forward(&peaked).unwrap();
        assert!(got.allclose(&fc(&want), 1e-4, 1e-4, false));
        // The queries are saved and read back with the rest.
        let dir = tempfile::tempdir().unwrap();
        tr.save_folder(&vs, dir.path()).unwrap();
        let mut vs2 = nn::VarStore::new(Device::Cpu);
        let tr2 = Translator::from_folder(&mut vs2, dir.path()).unwrap();
        assert_eq!(tr2.config().readout, Readout::Attention);
        assert!(tr2.forward(&peaked).unwrap().equal(&got));
    }

    #[test]
    fn readouts_are_the_affine_map_of_the_flattened_or_pooled_tokens() {
        let a = Tensor::randn([2, 5, 8], (Kind::Float, Device::Cpu));
        for readout in [Readout::Flatten, Readout::Mean, Readout::Sum] {
            let vs = nn::VarStore::new(Device::Cpu);
            let c = Config { readout, ..cfg() };
            let tr = Translator::new(&vs.root(), &c);
            let w = tr.linear_part(); // [K*d_lm, fc1_in]
            let fc1_in = if readout == Readout::Flatten { 40 } else { 8 };
            assert_eq!(w.size(), [36, fc1_in]);
            assert_eq!(vs.variables()["fc1.weight"].size(), [16, fc1_in]);
            let bias = tr
                .forward(&Tensor::zeros([1, 5, 8], (Kind::Float, Device::Cpu)))
                .unwrap(); // [1, K, d_lm]
            let read = match readout {
                Readout::Flatten => a.reshape([2, 40]),
                Readout::Mean => a.mean_dim(1, false, Kind::Float),
                Readout::Sum => a.sum_dim_intlist(1, false, Kind::Float),
                Readout::Attention => unreachable!("not affine"),
            }; // [2, fc1_in]
            let want = read.matmul(&w.tr()).view([2, 3, 12]) + bias; // W x + b, the bias once
            let got = tr.forward(&a).unwrap();
            let diff = (&got - &want).abs().max().double_value(&[]);
            assert!(diff < 1e-4, "{readout}: {diff}");
            // The default is left out of the config file; the others are written and read back.
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(
                json.contains("readout"),
                readout != Readout::Flatten,
                "{json}"
            );
            let dir = tempfile::tempdir().unwrap();
            tr.save_folder(&vs, dir.path()).unwrap();
            let mut vs2 = nn::VarStore::new(Device::Cpu);
            let tr2 = Translator::from_folder(&mut vs2, dir.path()).unwrap();
            assert_eq!(tr2.config().readout, readout);
            assert!(tr2.forward(&a).unwrap().equal(&got));
        }
        // A pre-readout config file (no field) reads as `flatten`.
        let old = r#"{"in_tokens":5,"in_dim":8,"hidden_dim":16,"prefix_len":3,"out_dim":12}"#;
        assert_eq!(serde_json::from_str::<Config>(old).unwrap(), cfg());
        let err = serde_json::from_str::<Config>(&old.replace('}', r#","readout":"max"}"#));
        assert!(err.unwrap_err().to_string().contains("max"));
    }
}
