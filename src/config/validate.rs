//! Range checks that types alone cannot express, each error naming the key path and the value ([`validate`]),
//! and the filesystem checks of a run ([`preflight`]): the folders and files a config points at. `texplain config`
//! runs only the first, so a config can be inspected on a machine without the data.
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;
use std::path::Path;

use super::estimate::{explain_needs, machine_memory, LmShape};
use super::schema::{
    AnalysisKind, AnalysisSection, CaptionSource, Config, DataKind, Method, RelevanceMethod,
    Threshold, TrainConfig,
};

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
    if cfg.analysis.is_none() && cfg.data.root.as_os_str().is_empty() {
        bail!("data.root: missing; give the Waterbirds-format folder (or where data.synth generates it)");
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
    if let Some(p) = &cfg.pretrain {
        if let Some(dir) = &c.pretrained {
            bail!(
                "pretrain: the classifier is pretrained here, and classifier.pretrained also names {}; keep one",
                dir.display()
            );
        }
        if let Some(synth) = &p.synth {
            synth.validate().context("pretrain.synth")?;
            if synth.size as i64 != cfg.data.image_size {
                bail!(
                    "pretrain.synth.size: {} differs from data.image_size {}; the classifier sees one image size",
                    synth.size,
                    cfg.data.image_size
                );
            }
        }
        validate_train("pretrain.train", &p.train)?;
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
    if let Some(a) = &cfg.analysis {
        return validate_analysis(cfg, a);
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

/// Checks an `analysis` section and the sections its flow reads (the classifier's source, the explanation's).
fn validate_analysis(cfg: &Config, a: &AnalysisSection) -> Result<()> {
    match a.kind {
        AnalysisKind::In9 => {
            if cfg.pretrain.is_none() && cfg.classifier.pretrained.is_none() {
                bail!(
                    "analysis: kind in9 explains a pretrained multi-class classifier; give a pretrain section (trained here) or classifier.pretrained (an HF ViT folder)"
                );
            }
            match (&a.challenge, &cfg.pretrain) {
                (None, None) => bail!(
                    "analysis.challenge: unset and there is no pretrain.root whose bg_challenge/ it would default to; give the Background Challenge folder"
                ),
                (None, Some(p)) if p.synth.as_ref().is_some_and(|s| !s.challenge) => bail!(
                    "pretrain.synth.challenge: false writes no bg_challenge/, which analysis.challenge (unset) reads; set it true or give analysis.challenge"
                ),
                _ => {}
            }
            if a.explain_variants.is_empty() {
                bail!("analysis.explain_variants: empty; name at least one variant (e.g. [original, only_bg_t])");
            }
            let distinct: BTreeSet<&str> = a.explain_variants.iter().map(|v| v.name()).collect();
            if distinct.len() != a.explain_variants.len() {
                bail!(
                    "analysis.explain_variants: {:?} lists a variant twice",
                    a.explain_variants
                );
            }
            if a.top_k == 0 {
                bail!("analysis.top_k: must be at least 1");
            }
            if a.images_per_class == Some(0) {
                bail!(
                    "analysis.images_per_class: 0 explains nothing; leave it unset for all images"
                );
            }
            for (place, words) in &a.place_words {
                if words.iter().all(|w| w.trim().is_empty()) {
                    bail!("analysis.place_words.{place}: no word names this place");
                }
            }
        }
    }
    validate_explainer(cfg)?;
    validate_explain_section(cfg)
}

/// Checks the sections that the explanation and mitigation stages read.
fn validate_explanation(cfg: &Config) -> Result<()> {
    validate_explainer(cfg)?;
    validate_mitigation(cfg)?;
    validate_explain_section(cfg)
}

/// The language model and the translator (with its caption set).
fn validate_explainer(cfg: &Config) -> Result<()> {
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
        None => bail!("translator.captions: explaining the classifier (methods other than erm, or an analysis) needs a caption set (kind: synth, upstream, cats_apples, csv or coco)"),
        Some(CaptionSource::Upstream { config, .. }) => {
            config.validate().context("translator.captions.config")?
        }
        Some(_) => {}
    }
    validate_train("translator.train", &t.train)
}

/// The mitigation section: class words, the masks' relevance method and threshold, the fine-tuning recipe.
fn validate_mitigation(cfg: &Config) -> Result<()> {
    let m = &cfg.mitigation;
    for class in [0, 1] {
        if m.class_words.get(&class).is_none_or(|w| w.is_empty()) {
            bail!("mitigation.class_words: class {class} has no words (e.g. {{0: [bird], 1: [bird]}})");
        }
    }
    validate_relevance(cfg)?;
    match m.masks.threshold {
        Threshold::MeanStd { k } if !k.is_finite() => {
            bail!("mitigation.masks.threshold.k: {k} is not a number")
        }
        Threshold::Quantile { q } if !(0.0..=1.0).contains(&q) => {
            bail!("mitigation.masks.threshold.q: {q} is outside [0, 1]")
        }
        Threshold::TopK { percent } if !(0.0..=100.0).contains(&percent) => {
            bail!("mitigation.masks.threshold.percent: {percent} is outside [0, 100]")
        }
        _ => {}
    }
    if m.masks.batch_size == 0 || m.masks.sentences_per_image == 0 {
        bail!("mitigation.masks.batch_size / sentences_per_image: both must be at least 1");
    }
    validate_train("mitigation.finetune", &m.finetune)
}

/// The explain section's sizes and what the config alone says of the explain stage's needs.
fn validate_explain_section(cfg: &Config) -> Result<()> {
    let (lm, t) = (&cfg.language_model, &cfg.translator);
    let e = &cfg.explain;
    if e.top_k == 0 || e.batch_rows == 0 {
        bail!("explain.top_k / batch_rows: both must be at least 1");
    }
    // What the config alone says of the explain stage's needs; a pretrained LM's shape is read in the preflight.
    let shape = match lm.pretrained {
        None => LmShape::pretrained_here(lm),
        Some(_) => LmShape::SMALLEST,
    };
    explain_needs(e, t.prefix_len, &shape, None).check(None, false)
}

/// Whether HF `hidden_states` index `a` lies after `b` (-1, `last_hidden_state`, lies after every index).
fn layer_after(a: i64, b: i64) -> bool {
    match (a, b) {
        (-1, -1) => false,
        (-1, _) => true,
        (_, -1) => false,
        (a, b) => a > b,
    }
}

/// The masks stage's relevance method: parameters of the method named, GradCAM's layer against the translator's,
/// rollout's blocks, occlusion's windows against the patch grid (the last two where the classifier's shape is
/// known from the config).
fn validate_relevance(cfg: &Config) -> Result<()> {
    let g = &cfg.mitigation.masks;
    let t = cfg.translator.layer;
    let spec = g.relevance();
    spec.check("mitigation.masks.")?;
    let scratch = cfg.classifier.pretrained.is_none();
    let depth = cfg.classifier.num_hidden_layers;
    match spec.method {
        RelevanceMethod::Gradcam => {
            if let Some(layer) = spec.layer {
                if layer < -1 {
                    bail!(
                        "mitigation.masks.layer: {layer} is no hidden_states index (-1 for the last, or 0 and above)"
                    );
                }
                if scratch && layer > depth {
                    bail!(
                        "mitigation.masks.layer: {layer} is outside -1 and 0..={depth} (the classifier's hidden_states)"
                    );
                }
                if layer_after(layer, t) {
                    bail!(
                        "mitigation.masks.layer: {layer} lies after translator.layer {t}; the word's score flows from the translator's layer, so GradCAM's layer must not come after it"
                    );
                }
            }
        }
        RelevanceMethod::Rollout if t == 0 => bail!(
            "mitigation.masks.method: rollout needs attention blocks before translator.layer, which is 0 (the embeddings)"
        ),
        RelevanceMethod::Rollout => {}
        RelevanceMethod::ValuePaths if t == 0 => bail!(
            "mitigation.masks.method: value_paths needs attention blocks before translator.layer, which is 0 (the embeddings)"
        ),
        RelevanceMethod::ValuePaths => {}
        RelevanceMethod::Occlusion => {
            let window = spec.occlusion.unwrap_or_default().window;
            let grid = cfg.data.image_size / cfg.classifier.patch_size.max(1);
            if scratch && window > grid {
                bail!(
                    "mitigation.masks.occlusion.window: {window} exceeds the classifier's patch grid of {grid} x {grid}"
                );
            }
        }
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

/// The filesystem checks of a run: every folder and file the config reads must exist (or be generated by it), and
/// the explain stage must fit this machine with the data's image counts (`on_accelerator`: the KV cache lives in
/// the accelerator's memory, whose size is not checked here).
pub fn preflight(cfg: &Config, on_accelerator: bool) -> Result<()> {
    let data = &cfg.data;
    let generated = data.synth.is_some() || data.cats_apples.is_some();
    if cfg.analysis.is_none() && !data.root.exists() && !generated {
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
    if let Some(p) = &cfg.pretrain {
        let in9l = p.root.join(crate::data::upstream::IN9L_DIR);
        if p.synth.is_none() && !in9l.is_dir() {
            bail!(
                "pretrain.root: {} does not exist (give a folder with in9l/train and in9l/val class folders, or a pretrain.synth block to generate the synthetic corpus there)",
                in9l.display()
            );
        }
    }
    if let Some(a) = &cfg.analysis {
        preflight_analysis(cfg, a)?;
    }
    let explains = cfg.analysis.is_some()
        || cfg.explain.run
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
    let shape = match &cfg.language_model.pretrained {
        None => LmShape::pretrained_here(&cfg.language_model),
        Some(dir) => {
            let path = dir.join("config.json");
            let lm = crate::models::gpt2::Config::from_hf_json(&path).with_context(|| {
                format!("language_model.pretrained: reading {}", path.display())
            })?;
            LmShape {
                n_layer: lm.n_layer.max(0) as u128,
                n_embd: lm.n_embd.max(0) as u128,
                n_positions: lm.n_positions.max(0) as u128,
                word_level: false,
            }
        }
    };
    explain_needs(
        &cfg.explain,
        cfg.translator.prefix_len,
        &shape,
        explained_images(cfg)?,
    )
    .check(machine_memory(), !on_accelerator)
}

/// The folders an analysis reads: the Background Challenge folder (or the corpus that will write it).
fn preflight_analysis(cfg: &Config, a: &AnalysisSection) -> Result<()> {
    match a.kind {
        AnalysisKind::In9 => match (&a.challenge, &cfg.pretrain) {
            (Some(dir), _) if !dir.join("original").is_dir() => bail!(
                "analysis.challenge: {} holds no original/ folder (give a Background Challenge folder: original/val/<class>/..., only_bg_t/val/..., ...)",
                dir.display()
            ),
            (None, Some(p)) if p.synth.is_none() && !challenge_root(cfg).join("original").is_dir() => {
                bail!(
                    "analysis.challenge: unset, and {} does not exist (give analysis.challenge, or a pretrain.synth block that writes it)",
                    challenge_root(cfg).display()
                )
            }
            _ => Ok(()),
        },
    }
}

/// The Background Challenge folder an analysis reads: `analysis.challenge`, or `<pretrain.root>/bg_challenge`.
pub fn challenge_root(cfg: &Config) -> std::path::PathBuf {
    let given = cfg.analysis.as_ref().and_then(|a| a.challenge.clone());
    given.unwrap_or_else(|| {
        cfg.pretrain
            .as_ref()
            .map(|p| p.root.join(crate::data::upstream::BG_CHALLENGE_DIR))
            .unwrap_or_default()
    })
}

/// Images of the explained splits (train, test): counted in `metadata.csv`, or those the synthetic generator will
/// write; `None` when neither is known yet (a Cats & Apples set still to be generated). For an analysis, the
/// images of one explained variant, twice (its variants are explained one after the other).
fn explained_images(cfg: &Config) -> Result<Option<[u64; 2]>> {
    if let Some(a) = &cfg.analysis {
        let synth = cfg.pretrain.as_ref().and_then(|p| p.synth.as_ref());
        let per_class = match (a.challenge.is_none(), synth) {
            (true, Some(s)) => Some(s.challenge_per_class),
            _ => None,
        };
        let n = per_class.map(|c| {
            let c = a.images_per_class.map_or(c, |k| k.min(c));
            (c * crate::data::upstream_scene::Category::all().len()) as u64
        });
        return Ok(n.map(|n| [n, n]));
    }
    let data = &cfg.data;
    let root = match data.variant {
        Some(v) => data.root.join("variants").join(v.name()),
        None => data.root.clone(),
    };
    let metadata = root.join("metadata.csv");
    if metadata.is_file() {
        let mut reader = csv::Reader::from_path(&metadata)
            .with_context(|| format!("reading {}", metadata.display()))?;
        let headers = reader
            .headers()
            .with_context(|| format!("reading {}", metadata.display()))?;
        let column = headers
            .iter()
            .position(|h| h == "split")
            .with_context(|| format!("{}: no `split` column", metadata.display()))?;
        let mut counts = [0u64; 2];
        for (i, row) in reader.records().enumerate() {
            let row = row.with_context(|| format!("{} row {}", metadata.display(), i + 2))?;
            match row.get(column).map(str::trim) {
                Some("0") => counts[0] += 1,
                Some("2") => counts[1] += 1,
                _ => {}
            }
        }
        return Ok(Some(counts));
    }
    Ok(data.synth.as_ref().map(|s| {
        let counts = crate::data::synth::group_counts(s.scale, s.correlation);
        [0, 2].map(|split| counts[split].iter().sum::<usize>() as u64)
    }))
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
