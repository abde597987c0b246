//! YAML experiment configs: typed serde structs (`deny_unknown_fields`, defaults), `base:` inheritance,
//! `--set path=value` overrides, and validation into a resolved [`Experiment`].
//!
//! Two layers, as in burn/candle examples: the raw serde structs below mirror the YAML one to one; [`Experiment`]
//! is what the pipeline runs, after files were merged, overrides applied and every value range-checked.
//! Errors name the file, the key path and the value.
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::data::captions::CaptionSetConfig;
use crate::data::cats_apples::{CatsApplesCaptionConfig, CatsApplesConfig};
use crate::data::{AugmentConfig, NormalizeConfig, SynthConfig};
use crate::explain::gradcam::Threshold;
use crate::report::PaperTable;
use crate::text::words::WordConfig;

/// The whole experiment, as written in YAML.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Experiment name; the default output folder is `results/<name>`.
    pub name: String,
    /// Output folder (relative to the working directory).
    #[serde(default)]
    pub out_dir: Option<PathBuf>,
    #[serde(default = "default_seeds")]
    pub seeds: Vec<u64>,
    /// `auto`, `cpu`, `cuda` or `cuda:N`.
    #[serde(default = "default_device")]
    pub device: String,
    /// Intra-op threads for libtorch; `null` keeps libtorch's default.
    #[serde(default)]
    pub threads: Option<i32>,
    pub data: DataSection,
    #[serde(default)]
    pub classifier: ClassifierSection,
    #[serde(default)]
    pub language_model: LanguageModelSection,
    #[serde(default)]
    pub translator: TranslatorSection,
    #[serde(default)]
    pub explain: ExplainSection,
    #[serde(default)]
    pub mitigation: MitigationSection,
    #[serde(default)]
    pub report: ReportSection,
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}
fn default_device() -> String {
    "auto".into()
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// A Waterbirds-format folder (`metadata.csv` + images).
    pub root: PathBuf,
    /// When set and `root` is missing, a synthetic Waterbirds is generated there first.
    #[serde(default)]
    pub synth: Option<SynthConfig>,
    /// Images are resized and centre-cropped to this many pixels.
    pub image_size: i64,
    #[serde(default)]
    pub normalize: NormalizeConfig,
    #[serde(default)]
    pub augment: AugmentConfig,
    /// Skip corrupt or missing images (with a warning naming how many) instead of failing.
    #[serde(default)]
    pub skip_corrupt: bool,
    /// Which dataset family `root` holds: `waterbirds` (attribute column `place`) or `cats_apples` (attribute
    /// column `apple`, y 0 dog / 1 cat). The attribute is loaded into `Dataset::place` either way.
    #[serde(default)]
    pub kind: DataKind,
    /// For `kind: cats_apples`: when set and `root` is missing, the Cats & Apples set is generated there first.
    #[serde(default)]
    pub cats_apples: Option<CatsApplesConfig>,
    /// Read `<root>/variants/<variant>/` (`fg_only`, `bg_only`, `mixed_rand`) instead of `root`; `data.synth`
    /// still generates into `root` and must set `variants: true, variant_splits: all` so the variant has every split.
    #[serde(default)]
    pub variant: Option<String>,
    /// The class the classifier is trained and evaluated on: `y` (the default) or the attribute (`place`).
    /// With `place`, `y` and `place` are swapped at load time, so groups become g = 2*place + y.
    #[serde(default)]
    pub label: Label,
}

/// The dataset family of `data.root`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DataKind {
    #[default]
    Waterbirds,
    CatsApples,
}

impl DataKind {
    /// The metadata column of the spurious attribute.
    pub fn attr_column(self) -> &'static str {
        match self {
            DataKind::Waterbirds => "place",
            DataKind::CatsApples => "apple",
        }
    }

    /// Class names (y = 0 / 1) for file names and word-cloud titles.
    pub fn class_names(self) -> [&'static str; 2] {
        match self {
            DataKind::Waterbirds => ["landbird", "waterbird"],
            DataKind::CatsApples => ["dog", "cat"],
        }
    }
}

/// The label a classifier learns (see [`DataSection::label`]).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    #[default]
    Y,
    Place,
}

/// Optimisation settings shared by every trained part (ERM, LM pretraining, translator, fine-tuning).
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(default)]
    pub optimizer: Optimizer,
    pub lr: f64,
    #[serde(default)]
    pub weight_decay: f64,
    /// SGD momentum (ignored by AdamW).
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    pub epochs: u32,
    pub batch_size: usize,
    /// Linear warmup, in epochs (fractions allowed), before the cosine decay.
    #[serde(default)]
    pub warmup_epochs: f64,
    /// Clip the global gradient norm to this value.
    #[serde(default)]
    pub grad_clip: Option<f64>,
    /// Which epoch's weights to keep.
    #[serde(default)]
    pub select: Selection,
}

fn default_momentum() -> f64 {
    0.9
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            optimizer: Optimizer::Adamw,
            lr: 1e-3,
            weight_decay: 0.0,
            momentum: default_momentum(),
            epochs: 1,
            batch_size: 64,
            warmup_epochs: 0.0,
            grad_clip: Some(1.0),
            select: Selection::Last,
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    #[default]
    Adamw,
    Sgd,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// Best worst-group validation accuracy (the field's standard model selection).
    #[default]
    WorstGroupVal,
    Last,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct ClassifierSection {
    /// A local HF folder for `ViTForImageClassification` (config.json + model.safetensors).
    #[serde(default)]
    pub pretrained: Option<PathBuf>,
    /// Architecture when training from scratch: `tiny` (sized by the fields below) or `vit-base-patch16-384`.
    #[serde(default = "default_vit_preset")]
    pub preset: String,
    #[serde(default = "default_patch")]
    pub patch_size: i64,
    #[serde(default = "default_vit_hidden")]
    pub hidden_size: i64,
    #[serde(default = "default_vit_depth")]
    pub num_hidden_layers: i64,
    #[serde(default = "default_vit_heads")]
    pub num_attention_heads: i64,
    pub train: TrainConfig,
}

fn default_vit_preset() -> String {
    "tiny".into()
}
fn default_patch() -> i64 {
    8
}
fn default_vit_hidden() -> i64 {
    96
}
fn default_vit_depth() -> i64 {
    4
}
fn default_vit_heads() -> i64 {
    3
}

impl Default for ClassifierSection {
    fn default() -> Self {
        Self {
            pretrained: None,
            preset: default_vit_preset(),
            patch_size: default_patch(),
            hidden_size: default_vit_hidden(),
            num_hidden_layers: default_vit_depth(),
            num_attention_heads: default_vit_heads(),
            train: TrainConfig {
                optimizer: Optimizer::Adamw,
                lr: 1e-3,
                weight_decay: 0.05,
                momentum: default_momentum(),
                epochs: 15,
                batch_size: 64,
                warmup_epochs: 1.0,
                grad_clip: Some(1.0),
                select: Selection::WorstGroupVal,
            },
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct LanguageModelSection {
    /// A local HF GPT-2 folder (config.json, model.safetensors, tokenizer.json). Unset: pretrain a small GPT-2
    /// with a word-level tokenizer on the caption corpus (text only, never the experiment's images).
    pub pretrained: Option<PathBuf>,
    pub n_embd: i64,
    pub n_layer: i64,
    pub n_head: i64,
    /// Words seen fewer times in the corpus map to `<unk>`.
    pub tokenizer_min_freq: u32,
    /// Corpus sentences held out for the validation loss.
    pub val_sentences: usize,
    pub train: TrainConfig,
}

impl Default for LanguageModelSection {
    fn default() -> Self {
        Self {
            pretrained: None,
            n_embd: 96,
            n_layer: 2,
            n_head: 2,
            tokenizer_min_freq: 2,
            val_sentences: 1000,
            train: TrainConfig {
                epochs: 2,
                lr: 2e-3,
                batch_size: 64,
                ..TrainConfig::default()
            },
        }
    }
}

/// Where the (image, caption) pairs that train the translator come from (the role COCO plays in the paper).
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, rename_all = "snake_case", tag = "kind")]
pub enum CaptionSource {
    /// A synthetic balanced caption set, generated into `root` when missing (`captions.csv` + `corpus.txt`).
    Synth {
        root: PathBuf,
        #[serde(default)]
        config: CaptionSetConfig,
    },
    /// A synthetic balanced Cats & Dogs & apples caption set, generated into `root` when missing.
    CatsApples {
        root: PathBuf,
        #[serde(default)]
        config: CatsApplesCaptionConfig,
    },
    /// A CSV `image,caption` (image paths relative to the CSV).
    Csv { path: PathBuf },
    /// COCO captions JSON (`captions_train2017.json`) and its image folder.
    Coco { captions: PathBuf, images: PathBuf },
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct TranslatorSection {
    /// Classifier layer whose tokens are translated (HF hidden_states index; -1 = last_hidden_state).
    pub layer: i64,
    /// K: prefix embeddings handed to the language model.
    pub prefix_len: i64,
    pub hidden_dim: i64,
    pub captions: Option<CaptionSource>,
    /// Share of the caption images held out for the validation loss.
    pub val_fraction: f64,
    pub train: TrainConfig,
}

impl Default for TranslatorSection {
    fn default() -> Self {
        Self {
            layer: -1,
            prefix_len: 4,
            hidden_dim: 256,
            captions: None,
            val_fraction: 0.1,
            train: TrainConfig {
                epochs: 4,
                lr: 1e-3,
                batch_size: 64,
                ..TrainConfig::default()
            },
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct ExplainSection {
    /// Sentences sampled per image (paper: 1000).
    pub samples_per_image: usize,
    /// Nucleus sampling mass (paper: 0.95), in (0, 1].
    pub top_p: f64,
    pub temperature: f64,
    /// EOS is blocked before this many words (paper: 20).
    pub min_words: usize,
    /// Sentences are cut at this many words (paper: 30).
    pub max_words: usize,
    /// Dominant words kept per image.
    pub top_k: usize,
    /// Sequences decoded together (images x samples) in one batch.
    pub batch_rows: usize,
    pub words: WordConfig,
    /// Explain the train/test splits even when `mitigation.methods` is only `[erm]` (faithfulness tests).
    pub run: bool,
}

impl Default for ExplainSection {
    fn default() -> Self {
        Self {
            samples_per_image: 20,
            top_p: 0.95,
            temperature: 1.0,
            min_words: 4,
            max_words: 16,
            top_k: 10,
            batch_rows: 2048,
            words: WordConfig::default(),
            run: false,
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct MitigationSection {
    /// Methods to run and report: `erm`, `random`, `texplain`, `oracle`.
    pub methods: Vec<String>,
    /// Class index -> words that name the class (flagging rule: the top word is not a class word).
    pub class_words: BTreeMap<i64, Vec<String>>,
    pub gradcam: GradcamSection,
    /// Fine-tuning of the ERM model on the masked selected samples (paper 4.3).
    pub finetune: TrainConfig,
}

impl Default for MitigationSection {
    fn default() -> Self {
        Self {
            methods: vec!["erm".into()],
            class_words: BTreeMap::new(),
            gradcam: GradcamSection::default(),
            finetune: TrainConfig {
                epochs: 3,
                lr: 2e-4,
                batch_size: 64,
                select: Selection::Last,
                ..TrainConfig::default()
            },
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct GradcamSection {
    /// Classifier layer of the activations (HF hidden_states index, -1 = last_hidden_state); must not lie
    /// after the translator's layer. Unset: the translator's layer.
    pub layer: Option<i64>,
    pub threshold: Threshold,
    /// Masked pixels become `zero` or the image's `mean` colour.
    pub mask_value: MaskValue,
    /// Sampled sentences holding the target word that are teacher-forced per image.
    pub sentences_per_image: usize,
    /// Overlay PNGs (image + heat map) written per seed.
    pub overlays: usize,
    pub batch_size: usize,
}

impl Default for GradcamSection {
    fn default() -> Self {
        Self {
            layer: None,
            threshold: Threshold::default(),
            mask_value: MaskValue::Zero,
            sentences_per_image: 8,
            overlays: 12,
            batch_size: 32,
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum MaskValue {
    Zero,
    Mean,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct ReportSection {
    /// The paper's numbers, printed beside ours in `table.md`.
    #[serde(default)]
    pub paper: Option<PaperTable>,
}

/// The methods the pipeline can run in this build.
pub const BUILT_METHODS: &[&str] = &["erm", "random", "texplain", "oracle"];

/// A validated experiment: what `texplain run` executes.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub config: Config,
    /// The config file it came from.
    pub source: PathBuf,
    pub out_dir: PathBuf,
    pub device: tch::Device,
}

impl Experiment {
    /// Loads `path` (following `base:`), applies `--set` overrides, and validates.
    pub fn load(path: &Path, sets: &[String]) -> Result<Self> {
        let merged = load_merged(path, &mut Vec::new())?;
        let config: Config =
            from_value(merged.clone()).with_context(|| format!("config {}", path.display()))?;
        let config = if sets.is_empty() {
            config
        } else {
            let mut value = merged;
            for set in sets {
                apply_set(&mut value, set)?;
            }
            from_value(value).with_context(|| {
                format!(
                    "config {} after the overrides --set {}",
                    path.display(),
                    sets.join(" --set ")
                )
            })?
        };
        Self::from_config(config, path)
    }

    pub fn from_config(config: Config, source: &Path) -> Result<Self> {
        validate(&config).with_context(|| format!("config {}", source.display()))?;
        let device =
            parse_device(&config.device).with_context(|| format!("config {}", source.display()))?;
        let out_dir = config
            .out_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("results").join(&config.name));
        Ok(Self {
            config,
            source: source.to_path_buf(),
            out_dir,
            device,
        })
    }

    /// The resolved config as YAML (what `texplain config` prints and `config.resolved.yaml` holds).
    pub fn resolved_yaml(&self) -> Result<String> {
        let mut config = self.config.clone();
        config.out_dir = Some(self.out_dir.clone());
        Ok(serde_yaml::to_string(&config)?)
    }
}

fn from_value(value: Value) -> Result<Config> {
    // Through a string so that serde_yaml reports the key path ("classifier.train: unknown field ...").
    let text = serde_yaml::to_string(&value)?;
    serde_yaml::from_str(&text).map_err(|e| anyhow!("{e}"))
}

/// Reads a YAML file and merges it over its `base:` chain (paths relative to the file that names them).
fn load_merged(path: &Path, chain: &mut Vec<PathBuf>) -> Result<Value> {
    let canonical = path
        .canonicalize()
        .with_context(|| format!("config file {} not found", path.display()))?;
    if chain.contains(&canonical) {
        bail!(
            "config {}: `base:` chain loops back to {}",
            chain[0].display(),
            canonical.display()
        );
    }
    chain.push(canonical);
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    let mut value: Value = serde_yaml::from_str(&text)
        .with_context(|| format!("config {} is not valid YAML", path.display()))?;
    let Value::Mapping(map) = &mut value else {
        bail!(
            "config {}: the top level must be a mapping of sections",
            path.display()
        );
    };
    let Some(base) = map.remove("base") else {
        return Ok(value);
    };
    let base_rel = base.as_str().ok_or_else(|| {
        anyhow!(
            "config {}: `base` must be a file path, found {base:?}",
            path.display()
        )
    })?;
    let base_path = path.parent().unwrap_or(Path::new(".")).join(base_rel);
    let mut merged =
        load_merged(&base_path, chain).with_context(|| format!("base of {}", path.display()))?;
    merge(&mut merged, value);
    Ok(merged)
}

/// Deep-merges `over` into `base`: mappings merge key by key, anything else replaces.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Applies one `path.to.key=value` override; the value is parsed as YAML (`3`, `0.5`, `true`, `[0, 1]`, `text`).
pub fn apply_set(root: &mut Value, set: &str) -> Result<()> {
    let (path, raw) = set
        .split_once('=')
        .ok_or_else(|| anyhow!("--set {set:?}: expected path.to.key=value"))?;
    let keys: Vec<&str> = path.split('.').collect();
    if keys.iter().any(|k| k.is_empty()) {
        bail!("--set {set:?}: the key path {path:?} has an empty segment");
    }
    let value: Value = serde_yaml::from_str(raw)
        .with_context(|| format!("--set {set:?}: value {raw:?} is not YAML"))?;
    let mut node = root;
    for (i, key) in keys.iter().enumerate() {
        let Value::Mapping(map) = node else {
            bail!(
                "--set {set:?}: {} is not a section, cannot set {key:?} inside it",
                keys[..i].join(".")
            );
        };
        let key_value = Value::String(key.to_string());
        if i + 1 == keys.len() {
            map.insert(key_value, value);
            return Ok(());
        }
        node = map
            .entry(key_value)
            .or_insert_with(|| Value::Mapping(Mapping::new()));
    }
    unreachable!("the loop returns at the last key")
}

/// Range checks that types alone cannot express.
fn validate(cfg: &Config) -> Result<()> {
    if cfg.seeds.is_empty() {
        bail!("seeds: the seed list is empty; give at least one seed");
    }
    if cfg.name.trim().is_empty() {
        bail!("name: must not be empty");
    }
    if cfg.threads.is_some_and(|t| t < 1) {
        bail!(
            "threads: {} is not a positive thread count",
            cfg.threads.unwrap()
        );
    }
    if cfg.data.image_size < 8 {
        bail!(
            "data.image_size: {} is too small (at least 8 px)",
            cfg.data.image_size
        );
    }
    if !cfg.data.root.exists() && cfg.data.synth.is_none() && cfg.data.cats_apples.is_none() {
        bail!(
            "data.root: the folder {} does not exist (give a Waterbirds folder with metadata.csv, or a data.synth block to generate one there)",
            cfg.data.root.display()
        );
    }
    let c = &cfg.classifier;
    if let Some(dir) = &c.pretrained {
        require_files(
            "classifier.pretrained",
            dir,
            &["config.json", "model.safetensors"],
        )?;
    } else if !["tiny", "vit-base-patch16-384"].contains(&c.preset.as_str()) {
        bail!(
            "classifier.preset: unknown preset {:?} (tiny, vit-base-patch16-384)",
            c.preset
        );
    }
    if c.patch_size < 1 || cfg.data.image_size % c.patch_size != 0 {
        bail!(
            "classifier.patch_size: {} must divide data.image_size {}",
            c.patch_size,
            cfg.data.image_size
        );
    }
    if c.num_attention_heads < 1 || c.hidden_size % c.num_attention_heads != 0 {
        bail!(
            "classifier.hidden_size: {} must be a multiple of num_attention_heads {}",
            c.hidden_size,
            c.num_attention_heads
        );
    }
    validate_train("classifier.train", &c.train)?;
    if let Some(dir) = &cfg.language_model.pretrained {
        require_files(
            "language_model.pretrained",
            dir,
            &["config.json", "model.safetensors", "tokenizer.json"],
        )?;
    }
    let e = &cfg.explain;
    if !(e.top_p > 0.0 && e.top_p <= 1.0) {
        bail!("explain.top_p: {} is outside (0, 1]", e.top_p);
    }
    if e.temperature <= 0.0 || e.temperature.is_nan() {
        bail!("explain.temperature: {} must be positive", e.temperature);
    }
    if e.samples_per_image == 0 {
        bail!("explain.samples_per_image: must be at least 1");
    }
    if e.min_words > e.max_words || e.max_words == 0 {
        bail!(
            "explain.min_words {} / max_words {}: need 0 <= min_words <= max_words, max_words >= 1",
            e.min_words,
            e.max_words
        );
    }
    for method in &cfg.mitigation.methods {
        if !["erm", "random", "texplain", "oracle"].contains(&method.as_str()) {
            bail!("mitigation.methods: unknown method {method:?} (erm, random, texplain, oracle)");
        }
        if !BUILT_METHODS.contains(&method.as_str()) {
            bail!(
                "mitigation.methods: {method:?} is not built yet in this version of texplain (built: {}); remove it from the config",
                BUILT_METHODS.join(", ")
            );
        }
    }
    if cfg.mitigation.methods.is_empty() {
        bail!("mitigation.methods: the method list is empty");
    }
    if cfg.data.cats_apples.is_some() && cfg.data.kind != DataKind::CatsApples {
        bail!("data.cats_apples: a Cats & Apples generator block needs data.kind: cats_apples");
    }
    if cfg.data.synth.is_some() && cfg.data.kind != DataKind::Waterbirds {
        bail!("data.synth: the synthetic Waterbirds generator needs data.kind: waterbirds (use data.cats_apples)");
    }
    if let Some(v) = &cfg.data.variant {
        if !crate::data::synth::VARIANTS.contains(&v.as_str()) {
            bail!(
                "data.variant: unknown variant {v:?} ({})",
                crate::data::synth::VARIANTS.join(", ")
            );
        }
        if let Some(s) = &cfg.data.synth {
            if !s.variants || s.variant_splits != crate::data::synth::VariantSplits::All {
                bail!("data.variant: {v:?} is read with every split, so data.synth needs variants: true and variant_splits: all");
            }
        }
    }
    if cfg.explain.run || cfg.mitigation.methods.iter().any(|m| m != "erm") {
        validate_explanation(cfg)?;
    }
    Ok(())
}

/// Checks the sections that the explanation and mitigation stages read.
fn validate_explanation(cfg: &Config) -> Result<()> {
    let lm = &cfg.language_model;
    if lm.pretrained.is_none() {
        if lm.n_embd < 1 || lm.n_head < 1 || lm.n_embd % lm.n_head != 0 {
            bail!(
                "language_model.n_embd: {} must be a positive multiple of n_head {}",
                lm.n_embd,
                lm.n_head
            );
        }
        if lm.n_layer < 1 {
            bail!("language_model.n_layer: {} must be at least 1", lm.n_layer);
        }
        validate_train("language_model.train", &lm.train)?;
    }
    let t = &cfg.translator;
    let depth = cfg.classifier.num_hidden_layers;
    if cfg.classifier.pretrained.is_none() && !(t.layer == -1 || (0..=depth).contains(&t.layer)) {
        bail!(
            "translator.layer: {} is outside -1 and 0..={depth} (the classifier's hidden_states)",
            t.layer
        );
    }
    if t.prefix_len < 1 || t.hidden_dim < 1 {
        bail!(
            "translator.prefix_len {} / hidden_dim {}: both must be positive",
            t.prefix_len,
            t.hidden_dim
        );
    }
    if !(0.0..1.0).contains(&t.val_fraction) {
        bail!(
            "translator.val_fraction: {} must lie in [0, 1)",
            t.val_fraction
        );
    }
    match &t.captions {
        None => bail!(
            "translator.captions: methods other than erm explain the classifier and need a caption set (kind: synth, csv or coco)"
        ),
        Some(CaptionSource::Csv { path }) if !path.is_file() => {
            bail!("translator.captions.path: the file {} does not exist", path.display())
        }
        Some(CaptionSource::Coco { captions, images }) => {
            if !captions.is_file() {
                bail!("translator.captions.captions: the file {} does not exist", captions.display());
            }
            if !images.is_dir() {
                bail!("translator.captions.images: the folder {} does not exist", images.display());
            }
        }
        _ => {}
    }
    validate_train("translator.train", &t.train)?;
    let m = &cfg.mitigation;
    for class in [0, 1] {
        if m.class_words.get(&class).is_none_or(|w| w.is_empty()) {
            bail!("mitigation.class_words: class {class} has no words (e.g. {{0: [bird], 1: [bird]}})");
        }
    }
    if let Some(layer) = m.gradcam.layer.filter(|&l| l != t.layer) {
        bail!(
            "mitigation.gradcam.layer: {layer} differs from translator.layer {}; GradCAM at a layer other than the translator's is not built yet",
            t.layer
        );
    }
    match m.gradcam.threshold {
        Threshold::MeanStd { k } if !k.is_finite() => {
            bail!("mitigation.gradcam.threshold.k: {k} is not a number")
        }
        Threshold::Quantile { q } if !(0.0..=1.0).contains(&q) => {
            bail!("mitigation.gradcam.threshold.q: {q} is outside [0, 1]")
        }
        _ => {}
    }
    if m.gradcam.batch_size == 0 || m.gradcam.sentences_per_image == 0 {
        bail!("mitigation.gradcam.batch_size / sentences_per_image: both must be at least 1");
    }
    validate_train("mitigation.finetune", &m.finetune)?;
    let e = &cfg.explain;
    if e.top_k == 0 || e.batch_rows == 0 {
        bail!("explain.top_k / batch_rows: both must be at least 1");
    }
    if m.methods.iter().any(|x| x == "oracle")
        && cfg.data.synth.is_none()
        && !cfg.data.root.join("fg_masks").is_dir()
    {
        bail!(
            "mitigation.methods: oracle needs the true bird masks ({}/fg_masks), which this data folder lacks",
            cfg.data.root.display()
        );
    }
    Ok(())
}

fn validate_train(path: &str, t: &TrainConfig) -> Result<()> {
    if !(t.lr > 0.0 && t.lr.is_finite()) {
        bail!("{path}.lr: {} must be a positive number", t.lr);
    }
    if t.batch_size == 0 {
        bail!("{path}.batch_size: must be at least 1");
    }
    if t.weight_decay < 0.0 {
        bail!(
            "{path}.weight_decay: {} must not be negative",
            t.weight_decay
        );
    }
    if t.warmup_epochs < 0.0 || t.warmup_epochs > t.epochs as f64 {
        bail!(
            "{path}.warmup_epochs: {} must lie in [0, epochs = {}]",
            t.warmup_epochs,
            t.epochs
        );
    }
    if t.grad_clip.is_some_and(|c| c <= 0.0) {
        bail!(
            "{path}.grad_clip: {} must be positive",
            t.grad_clip.unwrap()
        );
    }
    Ok(())
}

fn require_files(path: &str, dir: &Path, files: &[&str]) -> Result<()> {
    let missing: Vec<&str> = files
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if !dir.is_dir() {
        bail!("{path}: the folder {} does not exist", dir.display());
    }
    if !missing.is_empty() {
        bail!(
            "{path}: the folder {} lacks {}",
            dir.display(),
            missing.join(", ")
        );
    }
    Ok(())
}

/// `auto` picks CUDA device 0 when libtorch sees one, else the CPU.
pub fn parse_device(text: &str) -> Result<tch::Device> {
    match text {
        "auto" => Ok(tch::Device::cuda_if_available()),
        "cpu" => Ok(tch::Device::Cpu),
        "cuda" => cuda(0),
        other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(n)) => cuda(n),
            _ => bail!("device: {other:?} is not one of auto, cpu, cuda, cuda:N"),
        },
    }
}

fn cuda(n: usize) -> Result<tch::Device> {
    let count = tch::Cuda::device_count() as usize;
    if n >= count {
        bail!("device: cuda:{n} was asked for, but libtorch sees {count} CUDA device(s)");
    }
    Ok(tch::Device::Cuda(n))
}
