//! Range checks that types alone cannot express, each error naming the key path and the value ([`validate`]),
//! the baselines' blocks (`mitigation.baselines`) among them. No filesystem access: `texplain config` runs only
//! these, so a config can be inspected on a machine without the data ([`super::preflight`] checks the files).
use anyhow::{bail, Context, Result};
use std::collections::BTreeSet;

use super::estimate::{explain_needs, LmShape};
use super::recipes::BaselineRecipes;
use super::schema::{
    AnalysisKind, AnalysisSection, CaptionSource, Config, DataKind, DfrSection, GroupDroSection,
    JttSection, MasktuneSection, Method, RelevanceMethod, Threshold, TrainConfig,
};

/// Range checks of every value (no filesystem access); `recipes`: the baselines' recipes resolved from `cfg`.
pub fn validate(cfg: &Config, recipes: &BaselineRecipes) -> Result<()> {
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
    if cfg.data.synth.is_some() && cfg.data.kind == DataKind::CatsApples {
        bail!("data.synth: the synthetic Waterbirds generator needs data.kind: waterbirds or waterbirds_object (use data.cats_apples)");
    }
    if let Some(o) = cfg
        .data
        .synth
        .as_ref()
        .and_then(|s| s.spurious_object.as_ref())
    {
        o.validate().context("data.synth")?;
    }
    if cfg.data.kind == DataKind::WaterbirdsObject
        && cfg
            .data
            .synth
            .as_ref()
            .is_some_and(|s| s.spurious_object.is_none())
    {
        bail!("data.kind: waterbirds_object reads the object column, which data.synth writes only with data.synth.spurious_object; add it (e.g. {{kind: dock, correlation: 0.9, size: 0.3}})");
    }
    if let Some(synth) = &cfg.data.synth {
        synth.validate().context("data.synth")?;
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
    validate_baselines(cfg, recipes)
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
        Some(CaptionSource::Synth { config, .. }) => {
            if let Some(o) = &config.objects {
                o.validate().context("translator.captions.config")?
            }
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
        RelevanceMethod::Contribution => {}
        RelevanceMethod::ObjectComplement if scratch && depth == 0 => bail!(
            "mitigation.masks.method: object_complement needs the classifier's attention blocks, and it has none"
        ),
        RelevanceMethod::ObjectComplement => {}
        RelevanceMethod::ValuePaths if t == 0 => bail!(
            "mitigation.masks.method: value_paths needs attention blocks before translator.layer, which is 0 (the embeddings)"
        ),
        RelevanceMethod::ValuePaths => {}
        RelevanceMethod::Occlusion => {
            if g.mask_value.one_colour() != g.mask_value {
                bail!(
                    "mitigation.masks.method: occlusion fills its windows with one colour, but \
                     mitigation.masks.mask_value is {} (another image's pixels); use zero or mean, or another \
                     method (texplain masks-eval scores occlusion with black windows on such a run)",
                    g.mask_value.name()
                );
            }
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

/// Range checks of the `mitigation.baselines` blocks of the methods the config runs, each error naming the key
/// path and the value. (A block of a method not run is not checked: the default JTT grid does not fit a config whose
/// classifier trains for one epoch, and need not.)
fn validate_baselines(cfg: &Config, recipes: &BaselineRecipes) -> Result<()> {
    let runs = |m: Method| cfg.mitigation.methods.contains(&m);
    let b = &cfg.mitigation.baselines;
    if runs(Method::Masktune) {
        validate_masktune(cfg, &b.masktune)?;
    }
    if runs(Method::Jtt) {
        validate_jtt(&recipes.jtt, &b.jtt)?;
    }
    if runs(Method::Dfr) {
        validate_dfr(&b.dfr)?;
    }
    if runs(Method::Groupdro) {
        validate_groupdro(&b.groupdro)?;
    }
    Ok(())
}

/// The key path of the baselines' blocks.
const PATH: &str = "mitigation.baselines";

fn validate_masktune(cfg: &Config, m: &MasktuneSection) -> Result<()> {
    let path = PATH;
    let depth = cfg.classifier.num_hidden_layers;
    if cfg.classifier.pretrained.is_none() {
        let layer = m.layer_for(depth);
        if !(0..depth).contains(&layer) {
            bail!(
                "{path}.masktune.layer: {layer} is outside 0..{depth}; the head reads only the CLS token, so the \
                 patch tokens after the last block ({depth}, or -1) have no gradient (the last block's input is {})",
                depth - 1
            );
        }
    } else if let Some(layer) = m.layer.filter(|&l| l < 0) {
        bail!("{path}.masktune.layer: {layer} must be a hidden_states index >= 0 below the classifier's depth");
    }
    if m.batch_size == 0 {
        bail!("{path}.masktune.batch_size: must be at least 1");
    }
    if let Some(t) = &m.finetune {
        validate_train(&format!("{path}.masktune.finetune"), t)?;
    }
    Ok(())
}

/// `recipe`: JTT's resolved training recipe (the identification model is it, stopped after T epochs).
fn validate_jtt(recipe: &TrainConfig, j: &JttSection) -> Result<()> {
    let path = PATH;
    if let Some(t) = &j.train {
        validate_train(&format!("{path}.jtt.train"), t)?;
    }
    if j.grid.id_epochs.is_empty() || j.grid.lambda_up.is_empty() {
        bail!(
            "{path}.jtt.grid: id_epochs {:?} and lambda_up {:?} must both list at least one value",
            j.grid.id_epochs,
            j.grid.lambda_up
        );
    }
    for &t in &j.grid.id_epochs {
        if t == 0 || t > recipe.epochs {
            bail!(
                "{path}.jtt.grid.id_epochs: {t} is outside 1..={} (the identification model is the training \
                 recipe stopped after T of its {} epochs)",
                recipe.epochs,
                recipe.epochs
            );
        }
    }
    if BTreeSet::from_iter(&j.grid.id_epochs).len() != j.grid.id_epochs.len()
        || BTreeSet::from_iter(&j.grid.lambda_up).len() != j.grid.lambda_up.len()
    {
        bail!(
            "{path}.jtt.grid: id_epochs {:?} / lambda_up {:?} list a value twice",
            j.grid.id_epochs,
            j.grid.lambda_up
        );
    }
    Ok(())
}

fn validate_dfr(d: &DfrSection) -> Result<()> {
    let path = PATH;
    if d.c_grid.is_empty() {
        bail!("{path}.dfr.c_grid: the C grid is empty");
    }
    if let Some(c) = d.c_grid.iter().find(|c| !(c.is_finite() && **c > 0.0)) {
        bail!("{path}.dfr.c_grid: {c} is not a positive number");
    }
    if d.tune_retrains == 0 || d.final_retrains == 0 {
        bail!(
            "{path}.dfr.tune_retrains {} / final_retrains {}: both must be at least 1",
            d.tune_retrains,
            d.final_retrains
        );
    }
    if !(d.logreg.tol.is_finite() && d.logreg.tol > 0.0) || d.logreg.max_iter == 0 {
        bail!(
            "{path}.dfr.logreg: tol {} must be positive and max_iter {} at least 1",
            d.logreg.tol,
            d.logreg.max_iter
        );
    }
    if d.batch_size == 0 {
        bail!("{path}.dfr.batch_size: must be at least 1");
    }
    Ok(())
}

fn validate_groupdro(g: &GroupDroSection) -> Result<()> {
    let path = PATH;
    if !(g.step_size.is_finite() && g.step_size >= 0.0) {
        bail!(
            "{path}.groupdro.step_size: {} must be a number >= 0",
            g.step_size
        );
    }
    if !(g.generalization_adjustment.is_finite() && g.generalization_adjustment >= 0.0) {
        bail!(
            "{path}.groupdro.generalization_adjustment: {} must be a number >= 0",
            g.generalization_adjustment
        );
    }
    if let Some(t) = &g.train {
        validate_train(&format!("{path}.groupdro.train"), t)?;
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
    if let Some(clip) = t.grad_clip.filter(|&c| c <= 0.0) {
        bail!("{path}.grad_clip: {clip} must be positive");
    }
    Ok(())
}
