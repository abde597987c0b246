//! Experiment configs: one YAML file per experiment, in two layers as in burn/candle examples. The raw serde
//! structs of [`schema`] mirror the YAML one to one; [`Experiment`] is what the pipeline runs, after files were
//! merged and overridden ([`load`]), the baselines' training recipes resolved ([`recipes`]) and every value
//! range-checked ([`validate`]). Filesystem checks are a separate [`Experiment::preflight`] ([`preflight`]) that only
//! a run needs.
pub mod baselines;
pub mod estimate;
mod load;
mod preflight;
pub mod recipes;
pub mod schema;
mod validate;

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

pub use load::apply_set;
pub use recipes::BaselineRecipes;
pub use schema::*;

/// A validated experiment: what `texplain run` executes.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub config: Config,
    /// The config file it came from.
    pub source: PathBuf,
    pub out_dir: PathBuf,
    pub device: tch::Device,
    /// Resolved from `config` once, here; read through [`Experiment::recipes`].
    recipes: BaselineRecipes,
}

impl Experiment {
    /// Loads `path` (following `base:`), applies `--set` overrides, and validates the values (not the files: see
    /// [`Experiment::preflight`]).
    pub fn load(path: &Path, sets: &[String]) -> Result<Self> {
        Self::from_config(load::load(path, sets)?, path)
    }

    /// Validates an already-parsed config (`source` names it in errors).
    pub fn from_config(config: Config, source: &Path) -> Result<Self> {
        let recipes = BaselineRecipes::resolve(&config);
        validate::validate(&config, &recipes)
            .with_context(|| format!("config {}", source.display()))?;
        let device = crate::runtime::parse_device(&config.device)
            .with_context(|| format!("config {}", source.display()))?;
        let out_dir = config
            .out_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("results").join(&config.name));
        Ok(Self {
            config,
            source: source.to_path_buf(),
            out_dir,
            device,
            recipes,
        })
    }

    /// The training recipes of the baselines that train (MaskTune, JTT, group DRO), their defaults resolved.
    pub fn recipes(&self) -> &BaselineRecipes {
        &self.recipes
    }

    /// Checks that the folders and files the config points at exist (data, checkpoints, caption sets), naming the
    /// key and the path of the first that does not. `texplain run` calls it before it writes anything.
    /// Also refuses an explain stage that cannot fit this machine ([`estimate`]: the KV cache of a CPU run, the
    /// sentences of the data's splits).
    pub fn preflight(&self) -> Result<()> {
        preflight::preflight(&self.config, self.device.is_cuda())
            .with_context(|| format!("config {}", self.source.display()))
    }

    /// The methods the config runs, in the Table-1 order, with `erm` first (every method starts from it).
    pub fn methods(&self) -> Vec<Method> {
        let mut methods = self.config.mitigation.methods.clone();
        methods.push(Method::Erm);
        methods.sort();
        methods.dedup();
        methods
    }

    /// Whether the run explains the classifier (the LM, translator and explain stages).
    pub fn explains(&self) -> bool {
        self.config.explain.run || self.methods().iter().any(|m| m.needs_explanations())
    }

    /// The Background Challenge folder an `analysis` reads: `analysis.challenge`, or `<pretrain.root>/bg_challenge`.
    pub fn challenge_root(&self) -> PathBuf {
        preflight::challenge_root(&self.config)
    }

    /// The resolved config as YAML (what `texplain config` prints and `config.resolved.yaml` holds).
    pub fn resolved_yaml(&self) -> Result<String> {
        let mut config = self.config.clone();
        config.out_dir = Some(self.out_dir.clone());
        Ok(serde_yaml::to_string(&config)?)
    }
}
