//! The pretrain stage (shared by seeds, like `lm/`): the classifier architecture of `classifier` with one output
//! per upstream category, trained on the corpus of `pretrain.root` (the synthetic upstream corpus, generated when
//! missing, or a user's IN-9L folders). ERM of every seed then starts from it with a new 2-label head, exactly as
//! it starts from a user's HF checkpoint (`classifier.pretrained`). Output: `pretrain/` = an HF ViT folder
//! (`config.json` with `id2label`, `model.safetensors`), `metrics.csv`, `summary.json` (validation accuracy, and
//! the Background Challenge accuracies and BG-gap when the corpus has `bg_challenge/`). `texplain pretrain` runs
//! this stage alone.
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::nn;

use super::context::{generate_into, scratch_config};
use super::stage::{run_stage, Stage, StageDone, StageKey};
use crate::config::{Experiment, PretrainSection};
use crate::data::bg_challenge::{self, Variant};
use crate::data::upstream::{self, BG_CHALLENGE_DIR, IN9L_DIR};
use crate::data::{InputPipeline, LoadOptions, Split};
use crate::models::vit::Vit;
use crate::pretrain::{BgChallengeAccuracy, PretrainSummary, Pretraining};
use crate::runtime::{set_seed, stage_seed};
use crate::util::{read_json, tree_fingerprint, write_json};

/// The Background Challenge variants a pretrained classifier is scored on.
pub const CHALLENGE_VARIANTS: [Variant; 5] = [
    Variant::Original,
    Variant::OnlyFg,
    Variant::OnlyBgT,
    Variant::MixedSame,
    Variant::MixedRand,
];

/// The finished pretrain stage: an HF ViT folder that ERM starts from.
pub struct Pretrained {
    pub done: StageDone,
}

impl Pretrained {
    pub fn dir(&self) -> &Path {
        &self.done.dir
    }

    pub fn summary(&self) -> Result<PretrainSummary> {
        read_json(&self.done.dir.join("summary.json"))
    }
}

/// Generates the synthetic corpus when configured and missing; returns the IN-9L folder.
fn corpus(p: &PretrainSection) -> Result<PathBuf> {
    let in9l = p.root.join(IN9L_DIR);
    if !in9l.is_dir() {
        let synth = p.synth.as_ref().with_context(|| {
            format!(
                "pretrain.root: {} does not exist and the config has no pretrain.synth block",
                in9l.display()
            )
        })?;
        tracing::info!(root = %p.root.display(), "generating the synthetic upstream corpus");
        generate_into(&p.root, |dir| upstream::generate(synth, dir).map(|_| ()))?;
    }
    Ok(in9l)
}

/// Pretrains the classifier on the upstream corpus (or finds it pretrained); `None` without a `pretrain` section.
pub fn run(exp: &Experiment) -> Result<Option<Pretrained>> {
    let Some(p) = &exp.config.pretrain else {
        return Ok(None);
    };
    let in9l = corpus(p)?;
    let challenge = p.root.join(BG_CHALLENGE_DIR);
    let data = &exp.config.data;
    let mut key = StageKey::new(Stage::Pretrain);
    key.add("corpus", &tree_fingerprint(&p.root)?)
        .add("classifier", &scratch_config(exp))
        .add("train", &p.train)
        .add("normalize", &data.normalize)
        .add("augment", &data.augment);
    let done = run_stage(&exp.out_dir, Stage::Pretrain, &key, |dir| {
        let mut rng = set_seed(stage_seed(0, "pretrain"));
        let opts = LoadOptions {
            image_size: data.image_size,
            skip_corrupt: data.skip_corrupt,
        };
        let train = bg_challenge::load_in9l(&in9l, Split::Train, &opts)?;
        let val = bg_challenge::load_in9l(&in9l, Split::Val, &opts)?;
        bg_challenge::check_same_classes(
            &train.class_dirs,
            &in9l.join(Split::Train.name()),
            &val.class_dirs,
            &in9l.join(Split::Val.name()),
        )?;
        let mut cfg = scratch_config(exp);
        cfg.num_labels = train.num_classes() as i64;
        cfg.id2label = Some(
            train
                .label_names
                .iter()
                .enumerate()
                .map(|(i, n)| (i as i64, n.clone()))
                .collect::<BTreeMap<_, _>>(),
        );
        let vs = nn::VarStore::new(exp.device);
        let model = Vit::new(&vs.root(), &cfg);
        let input = InputPipeline {
            normalize: data.normalize.clone(),
            augment: data.augment.clone(),
            device: exp.device,
        };
        let (epoch, val_acc) = Pretraining {
            model: &model,
            train: &train,
            val: &val,
            cfg: &p.train,
            input: &input,
        }
        .run(&vs, &mut rng, dir)?;
        tracing::info!(
            epoch,
            val_accuracy = val_acc.accuracy,
            val_worst_class = val_acc.worst_class,
            "classifier pretrained"
        );
        model.save_hf_folder(&vs, dir)?;
        let bg = if challenge.is_dir() {
            let loaded =
                bg_challenge::load_bg_challenge(&challenge, &CHALLENGE_VARIANTS, &opts, false)?;
            Some(BgChallengeAccuracy::of(&model, &loaded, &input))
        } else {
            None
        };
        let summary = PretrainSummary {
            label_names: train.label_names.clone(),
            n_train: train.len(),
            n_val: val.len(),
            selected_epoch: epoch,
            val: val_acc,
            bg_challenge: bg,
        };
        write_json(&dir.join("summary.json"), &summary)
    })?;
    Ok(Some(Pretrained { done }))
}

/// `texplain pretrain`: runs the pretrain stage of a config alone and prints its summary.
pub fn command(exp: &Experiment) -> Result<()> {
    exp.preflight()?;
    crate::runtime::set_threads(exp.config.threads);
    std::fs::create_dir_all(&exp.out_dir)
        .with_context(|| format!("creating the run directory {}", exp.out_dir.display()))?;
    let pretrained = run(exp)?.context(
        "pretrain: the config has no pretrain section (pretrain.root, pretrain.synth, pretrain.train)",
    )?;
    let s = pretrained.summary()?;
    println!(
        "pretrained on {} images of {} classes; epoch {}: val accuracy {:.1} %, worst class {:.1} %",
        s.n_train,
        s.label_names.len(),
        s.selected_epoch,
        100.0 * s.val.accuracy,
        100.0 * s.val.worst_class
    );
    if let Some(bg) = &s.bg_challenge {
        for (variant, acc) in &bg.accuracy {
            println!("  {variant:<12} {:.1} %", 100.0 * acc);
        }
        if let Some(gap) = bg.bg_gap {
            println!(
                "  BG-gap (mixed_same - mixed_rand): {:+.1} points",
                100.0 * gap
            );
        }
    }
    println!("checkpoint: {}", pretrained.dir().display());
    Ok(())
}
