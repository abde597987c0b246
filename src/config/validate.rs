//! Range checks that types alone cannot express, each error naming the key path and the value ([`validate`]),
//! and the filesystem checks of a run ([`preflight`]): the folders and files a config points at. `texplain config`
//! runs only the first, so a config can be inspected on a machine without the data.
use anyhow::{bail, Result};
use std::collections::BTreeSet;
use std::path::Path;

use super::schema::{CaptionSource, Config, DataKind, Method, Threshold, TrainConfig};

/// Range checks of every value (no filesystem access).
pub fn validate(cfg: &Config) -> Result<()> {
    if cfg.seeds.is_empty() {
        bail!("seeds: the seed list is empty; give at least one seed");
    }
    let distinct: BTreeSet<u64> = cfg.seeds.iter().copied().collect();
    if distinct.len() != cfg.seeds.len() {
        bail!(
            "seeds: {:?} lists a seed twice; each seed is one run of every stage",
            cfg.seeds
        );
    }
    if cfg.name.trim().is_empty() {
        bail!("name: must not be empty");
    }
    if let Some(t) = cfg.threads.filter(|&t| t < 1) {
        bail!("threads: {t} is not a positive thread count");
    }
    if cfg.data.image_size < 8 {
        bail!(
            "data.image_size: {} is too small (at least 8 px)",
            cfg.data.image_size
        );
    }
    let c = &cfg.classifier;
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
    if cfg.mitigation.methods.is_empty() {
        bail!("mitigation.methods: the method list is empty");
    }
    if cfg.data.cats_apples.is_some() && cfg.data.kind != DataKind::CatsApples {
        bail!("data.cats_apples: a Cats & Apples generator block needs data.kind: cats_apples");
    }
    if cfg.data.synth.is_some() && cfg.data.kind != DataKind::Waterbirds {
        bail!("data.synth: the synthetic Waterbirds generator needs data.kind: waterbirds (use data.cats_apples)");
    }
    if let (Some(v), Some(s)) = (&cfg.data.variant, &cfg.data.synth) {
        if !s.variants || s.variant_splits != crate::data::synth::VariantSplits::All {
            bail!(
                "data.variant: {} is read with every split, so data.synth needs variants: true and variant_splits: all",
                v.name()
            );
        }
    }
    let explains = cfg.explain.run
        || cfg
            .mitigation
            .methods
            .iter()
            .any(|m| m.needs_explanations());
    if explains {
        validate_explanation(cfg)?;
    }
    super::baselines::validate(cfg)
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
    if t.captions.is_none() {
        bail!("translator.captions: methods other than erm explain the classifier and need a caption set (kind: synth, csv or coco)");
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
    Ok(())
}

pub(super) fn validate_train(path: &str, t: &TrainConfig) -> Result<()> {
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
    if let Some(clip) = t.grad_clip.filter(|&c| c <= 0.0) {
        bail!("{path}.grad_clip: {clip} must be positive");
    }
    Ok(())
}

/// The filesystem checks of a run: every folder and file the config reads must exist (or be generated by it).
pub fn preflight(cfg: &Config) -> Result<()> {
    let data = &cfg.data;
    let generated = data.synth.is_some() || data.cats_apples.is_some();
    if !data.root.exists() && !generated {
        bail!(
            "data.root: the folder {} does not exist (give a Waterbirds folder with metadata.csv, or a data.synth block to generate one there)",
            data.root.display()
        );
    }
    if let Some(dir) = &cfg.classifier.pretrained {
        require_files(
            "classifier.pretrained",
            dir,
            &["config.json", "model.safetensors"],
        )?;
    }
    let explains = cfg.explain.run
        || cfg
            .mitigation
            .methods
            .iter()
            .any(|m| m.needs_explanations());
    if !explains {
        return Ok(());
    }
    if let Some(dir) = &cfg.language_model.pretrained {
        require_files(
            "language_model.pretrained",
            dir,
            &["config.json", "model.safetensors", "tokenizer.json"],
        )?;
    }
    match &cfg.translator.captions {
        Some(CaptionSource::Csv { path }) if !path.is_file() => {
            bail!(
                "translator.captions.path: the file {} does not exist",
                path.display()
            )
        }
        Some(CaptionSource::Coco { captions, images }) => {
            if !captions.is_file() {
                bail!(
                    "translator.captions.captions: the file {} does not exist",
                    captions.display()
                );
            }
            if !images.is_dir() {
                bail!(
                    "translator.captions.images: the folder {} does not exist",
                    images.display()
                );
            }
        }
        _ => {}
    }
    let oracle = cfg.mitigation.methods.iter().any(|m| m.needs_true_masks());
    if oracle && !generated && !data.root.join("fg_masks").is_dir() {
        bail!(
            "mitigation.methods: {} needs the true bird masks ({}/fg_masks), which this data folder lacks",
            Method::Oracle,
            data.root.display()
        );
    }
    Ok(())
}

fn require_files(path: &str, dir: &Path, files: &[&str]) -> Result<()> {
    if !dir.is_dir() {
        bail!("{path}: the folder {} does not exist", dir.display());
    }
    let missing: Vec<&str> = files
        .iter()
        .copied()
        .filter(|f| !dir.join(f).is_file())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{path}: the folder {} lacks {}",
            dir.display(),
            missing.join(", ")
        );
    }
    Ok(())
}
