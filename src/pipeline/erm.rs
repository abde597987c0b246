//! The ERM stage (paper section 4.3, step 1): train the classifier on the spuriously correlated training set
//! (from scratch, or from the pretrain stage's or `classifier.pretrained`'s checkpoint with a new 2-label head),
//! select by worst-group validation
//! accuracy, evaluate on val and test. Output: `seed-<s>/erm/` = an HF ViT folder, `metrics.csv`, `results.csv`.
use anyhow::{Context, Result};
use std::path::Path;
use tch::nn;

use super::context::{scratch_config, Seed};
use super::pretrain::Pretrained;
use super::stage::{run_stage, Stage, StageDone, StageKey};
use crate::config::Experiment;
use crate::methods::Method;
use crate::models::vit::Vit;
use crate::report::{self, ResultRow};
use crate::runtime::{set_seed, stage_seed};
use crate::train::ClassifierTraining;
use crate::util::folder_digest;
use rand_chacha::ChaCha8Rng;

/// The files of a pretrained classifier folder (HF ViT layout) that ERM reads, and that its key hashes.
pub const PRETRAINED_FILES: [&str; 2] = ["config.json", "model.safetensors"];

/// A classifier held in memory with its variables.
pub struct Classifier {
    pub vs: nn::VarStore,
    pub model: Vit,
}

impl Classifier {
    /// Loads an HF ViT folder written by a stage (`config.json` + `model.safetensors`), keeping its head.
    pub fn load(dir: &Path, device: tch::Device) -> Result<Self> {
        let mut vs = nn::VarStore::new(device);
        let (model, _) = Vit::from_hf_folder(&mut vs, dir, None)?;
        Ok(Self { vs, model })
    }

    /// Writes the HF ViT folder (`config.json` + `model.safetensors`) into `dir`.
    pub fn save(&self, dir: &Path) -> Result<()> {
        Ok(self.model.save_hf_folder(&self.vs, dir)?)
    }
}

/// The finished ERM stage of a seed.
pub struct Erm {
    pub done: StageDone,
}

impl Erm {
    /// The selected ERM classifier.
    pub fn classifier(&self, device: tch::Device) -> Result<Classifier> {
        Classifier::load(&self.done.dir, device)
    }

    /// Its val and test rows.
    pub fn results(&self) -> Result<Vec<ResultRow>> {
        Ok(report::read_results_csv(
            &self.done.dir.join("results.csv"),
        )?)
    }
}

/// The initial classifier of ERM: the pretrain stage's classifier or `classifier.pretrained`, with a new 2-label
/// head, or the preset from scratch (drawn from libtorch's generator as it stands; see [`starting_point`]).
pub fn initial_classifier(exp: &Experiment, pretrained: Option<&Pretrained>) -> Result<Classifier> {
    let mut vs = nn::VarStore::new(exp.device);
    let dir = pretrained
        .map(|p| p.dir())
        .or(exp.config.classifier.pretrained.as_deref());
    let model = match dir {
        Some(dir) => {
            let (model, report) = Vit::from_hf_folder(&mut vs, dir, Some(2))?;
            tracing::info!(?report, "pretrained classifier loaded");
            model
        }
        None => Vit::new(&vs.root(), &scratch_config(exp)),
    };
    Ok(Classifier { vs, model })
}

/// ERM's initial classifier ([`initial_classifier`]) and the random stream ERM trains with: the stage seed of `erm`
/// is set first, so the scratch initialisation (or the new head on the pretrained checkpoint) is the same for every
/// stage that calls this (JTT and group DRO train anew from exactly ERM's starting point).
pub fn starting_point(
    ctx: &Seed,
    pretrained: Option<&Pretrained>,
) -> Result<(Classifier, ChaCha8Rng)> {
    let rng = set_seed(stage_seed(ctx.seed, "erm"));
    Ok((initial_classifier(ctx.exp(), pretrained)?, rng))
}

/// Adds to `key` what ERM's starting point and training come from, after the seed: the data's fingerprint, its
/// input pipeline, the `classifier` section (architecture, `classifier.pretrained`, ERM's recipe) and the content
/// of the starting checkpoint (the pretrain stage's, or `classifier.pretrained`'s files). ERM keys on it, and so
/// do the stages that train anew from [`starting_point`] (JTT, group DRO: [`super::retrain::Start::ErmInit`]).
pub fn key_starting_point(
    key: &mut StageKey,
    ctx: &Seed,
    pretrained: Option<&Pretrained>,
) -> Result<()> {
    let cfg = &ctx.exp().config;
    key.add("data", &ctx.splits().fingerprint)
        .add("normalize", &cfg.data.normalize)
        .add("augment", &cfg.data.augment)
        .add("classifier", &cfg.classifier);
    if let Some(p) = pretrained {
        key.reads("pretrain", &p.done.content);
    } else if let Some(dir) = &cfg.classifier.pretrained {
        // The starting checkpoint's bytes, not only its path (added only then, so scratch keys stay as they were).
        let content = folder_digest(dir, &PRETRAINED_FILES)
            .context("classifier.pretrained: hashing the folder's files")?;
        key.reads("pretrained", &content);
    }
    Ok(())
}

pub fn run(ctx: &Seed, pretrained: Option<&Pretrained>) -> Result<Erm> {
    let (exp, seed, splits) = (ctx.exp(), ctx.seed, ctx.splits());
    let cfg = &exp.config;
    let mut key = StageKey::new(Stage::Erm);
    key.add("seed", &seed);
    key_starting_point(&mut key, ctx, pretrained)?;
    let done = run_stage(&ctx.dir, Stage::Erm, &key, |dir| {
        let (classifier, mut rng) = starting_point(ctx, pretrained)?;
        let training = ClassifierTraining::erm(
            &classifier.model,
            &splits.train,
            Some(&splits.val),
            &cfg.classifier.train,
            ctx.input(),
        );
        let summary = training.run(&classifier.vs, &mut rng, dir)?;
        tracing::info!(seed, epoch = summary.selected_epoch, val_worst = ?summary.val_worst_group, "ERM model selected");
        classifier.save(dir)?;
        let rows = ctx.run.evaluate(
            &classifier.model,
            seed,
            Method::Erm,
            cfg.classifier.train.batch_size,
        );
        report::write_results_csv(&dir.join("results.csv"), &rows)?;
        Ok(())
    })?;
    Ok(Erm { done })
}
