//! The YAML schema: serde structs that mirror an experiment file one to one (`deny_unknown_fields`, defaults
//! filled in). Sections reuse the parameter structs of the code they configure (`train::TrainConfig`,
//! `data::SynthConfig`, `relevance::Threshold`, ...), so the method code never sees this module.
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub use super::baselines::{
    BaselinesSection, DfrSection, GroupDroSection, GroupSampling, JttSection, MasktuneSection,
};
use crate::data::bg_challenge::Variant as ChallengeVariant;
use crate::data::captions::CaptionSetConfig;
use crate::data::cats_apples::{CatsApplesCaptionConfig, CatsApplesConfig};
use crate::data::synth::Variant;
use crate::data::upstream::UpstreamConfig;
use crate::data::upstream_captions::UpstreamCaptionConfig;
use crate::data::{AugmentConfig, NormalizeConfig, SynthConfig};
pub use crate::data::{DataKind, Label};
pub use crate::methods::Method;
pub use crate::models::translator::Readout as TranslatorReadout;
pub use crate::precision::Precision;
pub use crate::relevance::attribute::WordScore;
pub use crate::relevance::mask::MaskValue;
pub use crate::relevance::occlusion::Occlusion;
pub use crate::relevance::rollout::Readout;
pub use crate::relevance::{RelevanceMethod, RelevanceSpec, Threshold};
use crate::report::PaperTable;
use crate::text::words::WordConfig;
use crate::train::default_momentum;
pub use crate::train::{ModelSelection, Optimizer, TrainConfig, Trainable};

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
    /// Pretraining of the classifier on an upstream corpus before ERM (the role ImageNet plays in the paper).
    #[serde(default)]
    pub pretrain: Option<PretrainSection>,
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
    /// An analysis other than the mitigation pipeline (`kind: in9`: the ImageNet-9 / Background Challenge analysis
    /// of paper section 4.3); `texplain run` then runs that flow instead ([`crate::pipeline::in9`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisSection>,
}

fn default_seeds() -> Vec<u64> {
    vec![0]
}
fn default_device() -> String {
    "auto".into()
}

/// The classifier's pretraining: a multi-class classifier of the `classifier` architecture trained on an upstream
/// corpus in the IN-9L layout; ERM then starts from it with a new 2-label head (as from `classifier.pretrained`).
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct PretrainSection {
    /// The corpus folder: `in9l/{train,val}/NN_class/*` (the synthetic upstream corpus or a user's ImageNet-9
    /// folders), optionally with `bg_challenge/` beside it.
    pub root: PathBuf,
    /// When set and `root` is missing, the synthetic upstream corpus is generated there first.
    #[serde(default)]
    pub synth: Option<UpstreamConfig>,
    pub train: TrainConfig,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct DataSection {
    /// A Waterbirds-format folder (`metadata.csv` + images). Required unless an `analysis` reads other data (the
    /// ImageNet-9 analysis reads only `image_size`, `normalize`, `augment` and `skip_corrupt` of this section).
    #[serde(default)]
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
    pub variant: Option<Variant>,
    /// The class the classifier is trained and evaluated on: `y` (the default) or the attribute (`place`).
    /// With `place`, `y` and `place` are swapped at load time, so groups become g = 2*place + y.
    #[serde(default)]
    pub label: Label,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct ClassifierSection {
    /// A local HF folder for `ViTForImageClassification` (config.json + model.safetensors).
    #[serde(default)]
    pub pretrained: Option<PathBuf>,
    /// Architecture when training from scratch: `tiny` (sized by the fields below) or `vit-base-patch16-384`.
    #[serde(default)]
    pub preset: Preset,
    #[serde(default = "default_patch")]
    pub patch_size: i64,
    #[serde(default = "default_vit_hidden")]
    pub hidden_size: i64,
    #[serde(default = "default_vit_depth")]
    pub num_hidden_layers: i64,
    #[serde(default = "default_vit_heads")]
    pub num_attention_heads: i64,
    /// ERM's recipe (unused by an analysis that trains no ERM model, which may leave it out).
    #[serde(default = "default_classifier_train")]
    pub train: TrainConfig,
}

fn default_classifier_train() -> TrainConfig {
    ClassifierSection::default().train
}

/// The architecture of a classifier trained from scratch.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Preset {
    /// Sized by `classifier.hidden_size`, `num_hidden_layers`, `num_attention_heads`, `patch_size`.
    #[default]
    #[serde(rename = "tiny")]
    Tiny,
    /// The shape of `google/vit-base-patch16-384`.
    #[serde(rename = "vit-base-patch16-384")]
    VitBasePatch16_384,
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
            preset: Preset::Tiny,
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
                select: ModelSelection::WorstGroupVal,
                precision: Default::default(),
            },
        }
    }
}

/// Positions (context length) of the GPT-2 that `texplain run` pretrains when `language_model.pretrained` is unset.
pub const LM_POSITIONS: i64 = 128;

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
    /// A synthetic balanced caption set of the upstream corpus' scenes (22 categories and bare places on 13 places),
    /// generated into `root` when missing: the translator of the ImageNet-9 analysis names objects and places.
    Upstream {
        root: PathBuf,
        #[serde(default)]
        config: UpstreamCaptionConfig,
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
    /// How the translator reads the layer's tokens: `flatten` (the paper's: each token slot its own read weights,
    /// the default), `mean` (`T(mean_i A_i)`) or `sum` (`T(sum_i A_i)`), position-shared readouts under which
    /// word-GradCAM is CAM, or `attention` (learned attention pooling, [`crate::models::translator::Readout`]).
    /// Written only when not `flatten`.
    #[serde(skip_serializing_if = "TranslatorReadout::is_flatten")]
    pub readout: TranslatorReadout,
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
            readout: TranslatorReadout::Flatten,
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
    /// Sequences decoded together (images x samples) in one batch: a batch holds
    /// max(batch_rows / samples_per_image, 1) whole images, so below `samples_per_image` it decodes one image
    /// (`samples_per_image` rows) at a time. It bounds the KV cache ([`super::estimate`]).
    pub batch_rows: usize,
    pub words: WordConfig,
    /// Explain the train/test splits even when `mitigation.methods` is only `[erm]` (faithfulness tests).
    pub run: bool,
    /// Compute precision of the explanation's forward passes (classifier, translator, LM decoding): `f32` (the
    /// default) or `bf16` ([`crate::precision`]).
    pub precision: Precision,
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
            precision: Precision::F32,
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct MitigationSection {
    /// Methods to run and report (any of [`Method`]); reported in the Table-1 order.
    pub methods: Vec<Method>,
    /// Class index -> words that name the class (flagging rule: the top word is not a class word).
    pub class_words: BTreeMap<i64, Vec<String>>,
    #[serde(alias = "gradcam")]
    pub masks: MaskSection,
    /// Fine-tuning of the ERM model on the masked selected samples (paper 4.3).
    pub finetune: TrainConfig,
    /// What the fine-tuning sees and changes, beyond its optimiser settings.
    pub recipe: RecipeSection,
    /// The field's baselines' parameters (`masktune`, `jtt`, `dfr`, `groupdro`), see [`super::baselines`].
    pub baselines: BaselinesSection,
}

/// The fine-tuning recipe: which samples, how they are drawn, which weights move, and whether the ERM model itself
/// may be kept (model selection including the starting point).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RecipeSection {
    pub train_set: TrainSet,
    pub sampling: RecipeSampling,
    /// `all`, `head` or `{last_blocks: k}`.
    #[serde(with = "serde_yaml::with::singleton_map")]
    pub trainable: Trainable,
    /// With `finetune.select: worst_group_val`, the ERM model (epoch 0) competes with the fine-tuned epochs.
    pub include_start: bool,
}

/// The samples fine-tuning trains on.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TrainSet {
    /// The method's selection, masked (the paper).
    #[default]
    Selection,
    /// The whole training set with the selection masked, the rest as it is.
    All,
}

/// How fine-tuning draws its samples.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum RecipeSampling {
    /// Each sample once per epoch.
    #[default]
    Shuffle,
    /// Drawn with replacement so that both classes are equally likely (class labels only, no group labels).
    ClassBalanced,
}

impl Default for MitigationSection {
    fn default() -> Self {
        Self {
            methods: vec![Method::Erm],
            class_words: BTreeMap::new(),
            masks: MaskSection::default(),
            recipe: RecipeSection::default(),
            finetune: TrainConfig {
                epochs: 3,
                lr: 2e-4,
                batch_size: 64,
                select: ModelSelection::Last,
                ..TrainConfig::default()
            },
            baselines: BaselinesSection::default(),
        }
    }
}

/// The masks stage (`mitigation.masks`; `mitigation.gradcam`, its first name, is still read): which relevance
/// method maps each sample's target word, and the rule that turns the map into a mask.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct MaskSection {
    /// `gradcam` (at `layer`), `rollout` (gradient-weighted attention rollout), `occlusion` (slow reference),
    /// `contribution` (per-slot ⟨∂s/∂A_i, A_i⟩) or `object_complement` (1 − the classifier's rollout; no word).
    pub method: RelevanceMethod,
    /// GradCAM's classifier layer (HF hidden_states index, -1 = last_hidden_state); must not lie after the
    /// translator's layer, from which the word's score still flows. Unset: the translator's layer. Only for
    /// `method: gradcam`.
    pub layer: Option<i64>,
    /// The target word's map minus the class word's (the first of `class_words` of the sample's class), clipped
    /// at 0.
    pub contrastive: bool,
    /// Occlusion's windows, `{window: 1, stride: 1}` (patches) when unset. Only for `method: occlusion`.
    pub occlusion: Option<Occlusion>,
    /// Which rows of rollout's relevance matrix make the map: `cls` (when unset) or `tokens` (every token the
    /// translator reads, weighted by its own relevance). Only for `method: rollout`.
    pub readout: Option<Readout>,
    /// The word score the map differentiates: `literal` (the target's first token; the default) or `attribute`
    /// (the log-odds of the target concept's words against the competing place words). Left out of the stage key
    /// while `literal`, so runs of the default keep their keys.
    #[serde(skip_serializing_if = "is_literal")]
    pub score: WordScore,
    /// `{rule: mean_std, k: 2.0}` (MaskTune's), `{rule: quantile, q: 0.7}`, `{rule: top_k, percent: 50}` or
    /// `{rule: otsu}`.
    pub threshold: Threshold,
    /// Masked pixels become `zero`, the image's `mean` colour (either also occlusion's fill), `donor`: the same
    /// pixels of another training image drawn at random ([`MaskValue::Donor`]), or `donor_background`: another
    /// masked sample's pixels under its own mask, black elsewhere ([`MaskValue::DonorBackground`]).
    pub mask_value: MaskValue,
    /// A diagnostic, not a method: every fine-tuning arm's masks keep off the true bird (`fg_masks/`), so a word
    /// map's masks can be scored with what they hide of the background alone. Left out of the stage keys while
    /// false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub off_true_bird: bool,
    /// Sampled sentences holding the target word that are teacher-forced per image.
    pub sentences_per_image: usize,
    /// Overlay PNGs (image + heat map) written per seed.
    pub overlays: usize,
    pub batch_size: usize,
}

impl MaskSection {
    /// The relevance method as the method code takes it.
    pub fn relevance(&self) -> RelevanceSpec {
        RelevanceSpec {
            method: self.method,
            layer: self.layer,
            contrastive: self.contrastive,
            occlusion: self.occlusion,
            readout: self.readout,
            score: self.score,
        }
    }
}

fn is_literal(score: &WordScore) -> bool {
    *score == WordScore::Literal
}

impl Default for MaskSection {
    fn default() -> Self {
        Self {
            method: RelevanceMethod::Gradcam,
            layer: None,
            contrastive: false,
            occlusion: None,
            readout: None,
            score: WordScore::Literal,
            threshold: Threshold::default(),
            mask_value: MaskValue::Zero,
            off_true_bird: false,
            sentences_per_image: 8,
            overlays: 12,
            batch_size: 32,
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct ReportSection {
    /// The paper's numbers, printed beside ours in `table.md`.
    #[serde(default)]
    pub paper: Option<PaperTable>,
}

/// Which analysis a config runs instead of the mitigation pipeline.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AnalysisKind {
    /// The ImageNet-9 / Background Challenge analysis (paper section 4.3, Figures 5 and 6; Xiao et al. 2020): the
    /// pretrained multi-class classifier explained per category (word clouds), and its predictions when the object
    /// is hidden (Only-BG-T) or its background swapped (Mixed-Same, Mixed-Rand: the BG-gap).
    In9,
}

/// The analysis section (`analysis:`). The classifier is the pretrain stage's (or `classifier.pretrained`, an HF
/// folder whose `id2label` names the challenge's classes in folder order), frozen; its translator learns from
/// `translator.captions`, its language model is `language_model`'s, its sentences follow `explain`.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct AnalysisSection {
    pub kind: AnalysisKind,
    /// The Background Challenge folder (`original/val/<class>/...`, `only_bg_t/val/...`, ...); unset: the
    /// `bg_challenge/` folder of `pretrain.root`.
    #[serde(default)]
    pub challenge: Option<PathBuf>,
    /// The variants whose images are explained (clouds per category of each).
    #[serde(default = "default_explained_variants")]
    pub explain_variants: Vec<ChallengeVariant>,
    /// Explained images per category and variant (the first in file order); unset: all.
    #[serde(default)]
    pub images_per_class: Option<usize>,
    /// Predictions listed per image (top-k), and the k of top-k accuracy.
    #[serde(default = "default_top_k")]
    pub top_k: usize,
    /// Label name -> words drawn in red in its clouds beside the label's own words (after synonyms).
    #[serde(default)]
    pub class_words: BTreeMap<String, Vec<String>>,
    /// Place -> the words that name it; unset: the upstream caption grammar's place nouns.
    #[serde(default)]
    pub place_words: BTreeMap<String, Vec<String>>,
}

fn default_explained_variants() -> Vec<ChallengeVariant> {
    vec![ChallengeVariant::Original, ChallengeVariant::OnlyBgT]
}
fn default_top_k() -> usize {
    3
}
