//! `texplain run`: the experiment pipeline over a run directory (DESIGN.md "Run directory", paper section 4.3).
//!
//! ```text
//! results/<experiment>/
//!   config.resolved.yaml  run.json
//!   lm/                   tokenizer.json, model.safetensors, config.json (shared by seeds)
//!   seed-<s>/erm/         model.safetensors, config.json, metrics.csv, results.csv
//!   seed-<s>/translator/  model.safetensors, config.json, losses.csv
//!   seed-<s>/explain/     sentences-*.jsonl, words-*.csv, words-by-class.csv, cloud-*.png
//!   seed-<s>/flags/       flags.csv, summary.json
//!   seed-<s>/masks/       masks.safetensors, summary.json, overlays/
//!   seed-<s>/<method>/    fine-tuned model metrics and results.csv (texplain, random, oracle)
//!   results.csv           one row per (seed, method, split)
//!   table.md              Table-1 layout, mean ± std over seeds
//! ```
//! Every stage is keyed by a hash of what it was computed from (config sections, seed, data fingerprint,
//! upstream stages), so a rerun skips finished stages and redoes interrupted ones.
pub mod explain;
pub mod mitigate;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::Path;
use tch::nn;

use crate::config::{Experiment, Label};
use crate::data::{waterbirds, Dataset, LoadOptions, Split};
use crate::metrics;
use crate::models::vit::{self, Vit};
use crate::report::{self, ResultRow};
use crate::rundir::{run_stage, write_atomic, write_json, RunInfo, StageDone, StageKey};
use crate::runtime::{device_name, set_seed, set_threads, stage_seed};
use crate::train::{self, InputPipeline};

/// The three splits of a Waterbirds-format folder, decoded once and kept in memory as u8 tensors.
pub struct Splits {
    pub train: Dataset,
    pub val: Dataset,
    pub test: Dataset,
    /// SHA-256 of metadata.csv and the load options: the data's identity in every stage key.
    pub fingerprint: String,
}

impl Splits {
    /// Per-group counts of the training split (the weights of `avg_train_weighted`).
    pub fn train_group_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; crate::data::N_GROUPS];
        for g in self.train.groups() {
            counts[g as usize] += 1;
        }
        counts
    }
}

pub fn run(exp: &Experiment) -> Result<()> {
    let cfg = &exp.config;
    set_threads(cfg.threads);
    let out = &exp.out_dir;
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating the run directory {}", out.display()))?;
    write_atomic(&out.join("config.resolved.yaml"), exp.resolved_yaml()?)?;
    let mut info = RunInfo::start(device_name(exp.device), cfg.seeds.clone());
    write_json(&out.join("run.json"), &info)?;

    let splits = load_splits(exp)?;
    let methods = mitigate::ordered_methods(&cfg.mitigation.methods);
    let mitigates = methods.iter().any(|m| m != "erm");
    let explains = mitigates || cfg.explain.run;
    let (captions, lm) = if explains {
        let captions = explain::load_captions(exp)?;
        let lm = explain::language_model_stage(exp, &captions)?;
        (Some(captions), Some(lm))
    } else {
        (None, None)
    };
    let mut rows = Vec::new();
    for &seed in &cfg.seeds {
        let span = tracing::info_span!("seed", seed);
        let _enter = span.enter();
        let seed_dir = out.join(format!("seed-{seed}"));
        let erm = erm_stage(exp, &splits, seed, &seed_dir)?;
        rows.extend(report::read_results_csv(&erm.dir.join("results.csv"))?);
        let (Some(captions), Some(lm)) = (&captions, &lm) else {
            continue;
        };
        let (mut vit_vs, vit, _) = load_classifier(exp, &erm.dir)?;
        vit_vs.freeze();
        let (translator_done, translator) =
            explain::translator_stage(exp, seed, &seed_dir, &erm, &vit, lm, captions)?;
        let explained = explain::explain_stage(
            exp,
            seed,
            &seed_dir,
            &translator_done,
            &vit,
            &translator.translator,
            lm,
            &splits,
        )?;
        if !mitigates {
            continue;
        }
        mitigate::flag_stage(exp, seed, &seed_dir, &explained, &vit, &splits)?;
        let masks = mitigate::mask_stage(
            exp,
            seed,
            &seed_dir,
            &explained,
            &vit,
            &translator,
            lm,
            &splits,
        )?;
        for method in methods.iter().filter(|m| *m != "erm") {
            let done = mitigate::finetune_stage(
                exp, seed, &seed_dir, method, &erm, &masks, &explained, &splits,
            )?;
            rows.extend(report::read_results_csv(&done.dir.join("results.csv"))?);
        }
    }
    report::write_results_csv(&out.join("results.csv"), &rows)?;
    let table = report::table_md(&rows, "test", cfg.report.paper.as_ref());
    write_atomic(&out.join("table.md"), &table)?;
    println!("{table}");

    info.finished_unix = Some(crate::rundir::unix_now());
    info.status = "finished".into();
    write_json(&out.join("run.json"), &info)
}

/// Generates the synthetic set when a generator block (`data.synth` or `data.cats_apples`) is given and
/// `data.root` is missing, then loads all splits of `data.root` (or of its `variants/<data.variant>` folder).
///
/// With `data.label: place` the loaded `y` and `place` are swapped, so the classifier learns the attribute and the
/// groups read g = 2*place + y (e.g. group 1 = land background with a waterbird).
pub fn load_splits(exp: &Experiment) -> Result<Splits> {
    let data = &exp.config.data;
    if !data.root.join("metadata.csv").exists() {
        if let Some(cfg) = &data.cats_apples {
            tracing::info!(root = %data.root.display(), "generating the Cats & Apples set");
            generate_into(&data.root, |dir| {
                crate::data::cats_apples::generate(cfg, dir).map(|_| ())
            })?;
        } else {
            let synth = data.synth.as_ref().with_context(|| {
                format!(
                    "data.root: {} has no metadata.csv and the config has no data.synth block",
                    data.root.display()
                )
            })?;
            tracing::info!(root = %data.root.display(), "generating the synthetic Waterbirds set");
            generate_into(&data.root, |dir| {
                crate::data::synth::generate(synth, dir).map(|_| ())
            })?;
        }
    }
    let root = match &data.variant {
        Some(v) => data.root.join("variants").join(v),
        None => data.root.clone(),
    };
    let opts = LoadOptions {
        image_size: data.image_size,
        skip_corrupt: data.skip_corrupt,
    };
    let attr = data.kind.attr_column();
    let load = |split| -> Result<Dataset> {
        let mut d = waterbirds::load_with_attr(&root, split, &opts, attr)
            .with_context(|| format!("loading {split} split of {}", root.display()))?;
        if data.label == Label::Place {
            std::mem::swap(&mut d.y, &mut d.place);
        }
        Ok(d)
    };
    let metadata = std::fs::read(root.join("metadata.csv"))
        .with_context(|| format!("reading {}/metadata.csv", root.display()))?;
    let mut hasher = Sha256::new();
    hasher.update(&metadata);
    hasher.update(serde_json::to_vec(&opts)?);
    // The label choice changes what every stage learns; the default keeps the historical fingerprint.
    if data.label != Label::Y {
        hasher.update(serde_json::to_vec(&data.label)?);
    }
    let fingerprint = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let splits = Splits {
        train: load(Split::Train)?,
        val: load(Split::Val)?,
        test: load(Split::Test)?,
        fingerprint,
    };
    tracing::info!(
        train = splits.train.len(),
        val = splits.val.len(),
        test = splits.test.len(),
        "data loaded"
    );
    Ok(splits)
}

/// Generates a dataset into `<root>.partial` and renames it to `root` once complete, so an interrupted
/// generation is never mistaken for a finished one.
pub fn generate_into(root: &Path, generate: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let mut partial = root.as_os_str().to_owned();
    partial.push(".partial");
    let partial = std::path::PathBuf::from(partial);
    if root.exists() {
        anyhow::bail!(
            "{} exists but is not a finished dataset; move it away (it is never deleted) or point the config elsewhere",
            root.display()
        );
    }
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("removing {}", partial.display()))?;
    }
    generate(&partial).with_context(|| format!("generating {}", root.display()))?;
    std::fs::rename(&partial, root)
        .with_context(|| format!("renaming {} to {}", partial.display(), root.display()))
}

pub fn input_pipeline(exp: &Experiment) -> InputPipeline {
    InputPipeline {
        normalize: exp.config.data.normalize.clone(),
        augment: exp.config.data.augment.clone(),
        device: exp.device,
    }
}

/// The architecture of a classifier trained from scratch: the configured preset.
pub fn classifier_config(exp: &Experiment) -> Result<vit::Config> {
    let c = &exp.config.classifier;
    Ok(match c.preset.as_str() {
        "vit-base-patch16-384" => vit::Config::vit_base_patch16_384(2),
        _ => vit::Config {
            hidden_size: c.hidden_size,
            num_hidden_layers: c.num_hidden_layers,
            num_attention_heads: c.num_attention_heads,
            intermediate_size: 4 * c.hidden_size,
            num_labels: 2,
            ..vit::Config::tiny(exp.config.data.image_size, c.patch_size)
        },
    })
}

/// ERM (paper 4.3 step 1): train the classifier on the spuriously correlated training set, select by
/// worst-group validation accuracy, evaluate on val and test.
fn erm_stage(exp: &Experiment, splits: &Splits, seed: u64, seed_dir: &Path) -> Result<StageDone> {
    let cfg = &exp.config;
    let mut key = StageKey::new("erm");
    key.add("seed", &seed)
        .add("data", &splits.fingerprint)
        .add("normalize", &cfg.data.normalize)
        .add("augment", &cfg.data.augment)
        .add("classifier", &cfg.classifier);
    run_stage(seed_dir, "erm", &key, |dir| {
        let mut rng = set_seed(stage_seed(seed, "erm"));
        let mut vs = nn::VarStore::new(exp.device);
        let (model, vit_cfg) = match &cfg.classifier.pretrained {
            Some(dir) => {
                let (model, report) = Vit::from_hf_folder(&mut vs, dir, Some(2))?;
                tracing::info!(?report, "pretrained classifier loaded");
                let cfg = model.config().clone();
                (model, cfg)
            }
            None => {
                let vit_cfg = classifier_config(exp)?;
                (Vit::new(&vs.root(), &vit_cfg), vit_cfg)
            }
        };
        let input = input_pipeline(exp);
        let summary = train::train_classifier(
            &model,
            &mut vs,
            &splits.train,
            Some(&splits.val),
            &cfg.classifier.train,
            &input,
            &mut rng,
            dir,
        )?;
        tracing::info!(seed, epoch = summary.selected_epoch, val_worst = ?summary.val_worst_group, "ERM model selected");
        save_classifier(&vs, &vit_cfg, dir)?;
        let rows = evaluate_rows(
            &model,
            splits,
            &input,
            seed,
            "erm",
            cfg.classifier.train.batch_size,
        );
        report::write_results_csv(&dir.join("results.csv"), &rows)?;
        Ok(())
    })
}

/// Loads a classifier saved by a stage (`config.json` + `model.safetensors` in `dir`).
pub fn load_classifier(exp: &Experiment, dir: &Path) -> Result<(nn::VarStore, Vit, vit::Config)> {
    let cfg = vit::Config::from_hf_json(&dir.join("config.json"))?;
    let mut vs = nn::VarStore::new(exp.device);
    let model = Vit::new(&vs.root(), &cfg);
    crate::models::load_safetensors(
        &mut vs,
        &dir.join("model.safetensors"),
        &Vit::load_opts(false),
    )?;
    Ok((vs, model, cfg))
}

fn save_classifier(vs: &nn::VarStore, cfg: &vit::Config, dir: &Path) -> Result<()> {
    crate::models::save_safetensors(vs, &dir.join("model.safetensors"))?;
    cfg.to_hf_json(&dir.join("config.json"))?;
    Ok(())
}

/// Result rows (val and test) for one method and seed.
pub fn evaluate_rows(
    model: &Vit,
    splits: &Splits,
    input: &InputPipeline,
    seed: u64,
    method: &str,
    batch_size: usize,
) -> Vec<ResultRow> {
    let train_counts = splits.train_group_counts();
    [("val", &splits.val), ("test", &splits.test)]
        .into_iter()
        .map(|(split, data)| {
            let eval = train::evaluate(model, data, input, batch_size.max(256));
            ResultRow {
                seed,
                method: method.to_string(),
                split: split.to_string(),
                group_acc: eval
                    .group_acc
                    .iter()
                    .map(|a| a.unwrap_or(f64::NAN))
                    .collect(),
                worst_group: eval.worst_group(),
                avg_train_weighted: metrics::avg_train_weighted(&eval.group_acc, &train_counts)
                    .unwrap_or(f64::NAN),
                avg_plain: eval.avg_plain,
                n: data.len(),
            }
        })
        .collect()
}
