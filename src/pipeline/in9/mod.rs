//! `texplain run` of a config with `analysis: {kind: in9}`: the ImageNet-9 / Background Challenge analysis (paper
//! section 4.3, Figures 5 and 6), a flow of its own beside the mitigation pipeline, on the same stage cache:
//!
//! ```text
//! shared      pretrain::run        <run>/pretrain/           the multi-class classifier (or classifier.pretrained)
//!             predictions::run     <run>/predictions/        top-k per image, accuracy per variant and category,
//!                                                            BG-gap, Only-BG-T grid and accuracy bars (PNG)
//!             lm::CaptionData      the balanced caption set (objects and places; generated when synthetic)
//!             lm::run              <run>/lm/                 the language model
//! per seed    translator::train    seed-<s>/translator/      classifier tokens -> LM prefix (classifier frozen)
//!             explain::run         seed-<s>/explain/         sentences and words of the explained variants
//!             clouds::run          seed-<s>/clouds/          a cloud and a word CSV per category, class words red
//!             summary::run         seed-<s>/summary/         clouds against predictions per category, Spearman ρ
//! at the end  report::run          summary.json, table.md
//! ```
//! The classifier is frozen throughout: the pretrain stage's (trained on the corpus' IN-9L folders) or
//! `classifier.pretrained`'s, whose `id2label` must name the challenge's class folders in order.
pub mod clouds;
pub mod explain;
pub mod predictions;
pub mod report;
pub mod summary;

use anyhow::{bail, Context, Result};
use std::path::PathBuf;

use super::erm::{Classifier, PRETRAINED_FILES};
use super::lm::{self, CaptionData};
use super::pretrain::{self, Pretrained};
use super::translator::{self, ClassifierRead};
use crate::config::{AnalysisSection, Experiment};
use crate::data::bg_challenge::{label_name, list_classes, variant_dir, Variant};
use crate::data::{InputPipeline, LoadOptions};
use crate::models::vit::Vit;
use crate::util::{folder_digest, sha256_parts, tree_fingerprint};

/// The frozen classifier the analysis explains, as stage keys name it.
pub struct ClassifierSource {
    pub dir: PathBuf,
    /// `pretrain` (the stage) or `pretrained` (`classifier.pretrained`).
    pub name: &'static str,
    pub content: String,
}

/// What the stages of an analysis share.
pub struct Analysis<'a> {
    pub exp: &'a Experiment,
    pub section: &'a AnalysisSection,
    pub input: InputPipeline,
    pub opts: LoadOptions,
    /// The Background Challenge folder.
    pub challenge: PathBuf,
    /// Its identity in stage keys: the paths and sizes of its files, and the load options.
    pub challenge_fingerprint: String,
    pub classifier: ClassifierSource,
    /// The class folders of `original/val`, sorted (the label order), and their names.
    pub class_dirs: Vec<String>,
    pub label_names: Vec<String>,
}

impl<'a> Analysis<'a> {
    /// The analysis of `exp`, its classifier the pretrain stage's (when it ran) or `classifier.pretrained`.
    pub fn new(exp: &'a Experiment, pretrained: Option<&Pretrained>) -> Result<Self> {
        let cfg = &exp.config;
        let section = cfg
            .analysis
            .as_ref()
            .context("analysis: the config has no analysis section")?;
        let classifier = match (pretrained, &cfg.classifier.pretrained) {
            (Some(p), _) => ClassifierSource {
                dir: p.dir().to_path_buf(),
                name: "pretrain",
                content: p.done.content.clone(),
            },
            (None, Some(dir)) => ClassifierSource {
                dir: dir.clone(),
                name: "pretrained",
                content: folder_digest(dir, &PRETRAINED_FILES)
                    .context("classifier.pretrained: hashing the folder's files")?,
            },
            (None, None) => bail!(
                "analysis: no classifier to explain (give a pretrain section or classifier.pretrained)"
            ),
        };
        let challenge = exp.challenge_root();
        let original = variant_dir(&challenge, Variant::Original);
        let class_dirs = list_classes(&original)
            .with_context(|| format!("analysis.challenge: reading {}", challenge.display()))?;
        let opts = LoadOptions {
            image_size: cfg.data.image_size,
            skip_corrupt: cfg.data.skip_corrupt,
        };
        let challenge_fingerprint = sha256_parts(&[
            tree_fingerprint(&challenge)?.as_bytes(),
            &serde_json::to_vec(&opts)?,
        ]);
        Ok(Self {
            exp,
            section,
            input: InputPipeline {
                normalize: cfg.data.normalize.clone(),
                augment: cfg.data.augment.clone(),
                device: exp.device,
            },
            opts,
            challenge,
            challenge_fingerprint,
            classifier,
            label_names: class_dirs.iter().map(|c| label_name(c)).collect(),
            class_dirs,
        })
    }

    /// Checks that the classifier's head is the challenge's classes: as many outputs, and `id2label` (when the
    /// folder has one) naming the class folders in order.
    pub fn check_labels(&self, vit: &Vit) -> Result<()> {
        let cfg = vit.config();
        let dir = self.classifier.dir.display();
        if cfg.num_labels as usize != self.label_names.len() {
            bail!(
                "{dir}: the classifier has {} outputs, the Background Challenge folder {} has {} classes ({:?})",
                cfg.num_labels,
                self.challenge.display(),
                self.label_names.len(),
                self.class_dirs
            );
        }
        if let Some(id2label) = &cfg.id2label {
            let names: Vec<&String> = id2label.values().collect();
            let expected: Vec<&String> = self.label_names.iter().collect();
            if names != expected {
                bail!(
                    "{dir}: id2label {names:?} does not name the classes of {} in folder order ({expected:?})",
                    self.challenge.display()
                );
            }
        }
        Ok(())
    }

    /// The context of one seed's stages.
    pub fn seed(&self, seed: u64) -> SeedRun<'_> {
        SeedRun {
            analysis: self,
            seed,
            dir: self.exp.out_dir.join(format!("seed-{seed}")),
        }
    }

    /// The frozen classifier `model` as a translator reads it and its key names it.
    pub fn classifier_read<'b>(&'b self, model: &'b Vit) -> ClassifierRead<'b> {
        ClassifierRead {
            name: self.classifier.name,
            content: &self.classifier.content,
            model,
        }
    }
}

/// One seed of an analysis: the stages under `<run>/seed-<s>/`.
pub struct SeedRun<'a> {
    pub analysis: &'a Analysis<'a>,
    pub seed: u64,
    pub dir: PathBuf,
}

/// A category's name as part of a file name: characters other than letters, digits and `-` become `_`.
pub fn file_label(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Every stage of the analysis, then the report; returns the printed table.
pub fn run_stages(exp: &Experiment) -> Result<String> {
    let pretrained = pretrain::run(exp)?;
    let analysis = Analysis::new(exp, pretrained.as_ref())?;
    let mut classifier = Classifier::load(&analysis.classifier.dir, exp.device)?;
    classifier.vs.freeze();
    let vit = &classifier.model;
    analysis.check_labels(vit)?;
    let predictions = predictions::run(&analysis, vit)?;
    let captions = CaptionData::load(exp)?;
    let lm = lm::run(exp, &captions)?;
    let mut summaries = Vec::new();
    for &seed in &exp.config.seeds {
        let span = tracing::info_span!("seed", seed);
        let _enter = span.enter();
        let ctx = analysis.seed(seed);
        let translator = translator::train(
            exp,
            seed,
            &ctx.dir,
            analysis.classifier_read(vit),
            &lm,
            &captions,
            &analysis.input,
        )?;
        let explained = explain::run(&ctx, &translator, vit, &lm)?;
        clouds::run(&ctx, &explained)?;
        summaries.push(summary::run(&ctx, &explained, &predictions)?);
    }
    report::run(&analysis, pretrained.as_ref(), &predictions, &summaries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_labels_are_safe() {
        assert_eq!(file_label("wheeled vehicle"), "wheeled_vehicle");
        assert_eq!(file_label("car"), "car");
        assert_eq!(file_label("a/b"), "a_b");
    }
}
