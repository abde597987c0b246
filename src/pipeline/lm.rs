//! The shared explanation inputs of a run (paper sections 2 and 3): the translator's caption set (generated first
//! when it is a synthetic one) and the frozen language model, loaded from a pretrained HF folder or pretrained here
//! on the caption corpus in `<run>/lm/` (once, shared by seeds).
use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{nn, Tensor};

use super::context::generate_into;
use super::stage::{run_stage, Stage, StageKey};
use crate::config::{CaptionSource, Experiment};
use crate::data::captions::{self, CaptionPair};
use crate::data::LoadOptions;
use crate::explain::lm::{self, LanguageModel};
use crate::models::gpt2::{self, Gpt2};
use crate::runtime::{set_seed, stage_seed};
use crate::text::tokenizer;
use crate::util::{folder_digest, sha256_parts, write_atomic};

/// The translator's (image, caption) pairs with their images decoded, and the text corpus for LM pretraining.
pub struct CaptionData {
    /// u8 [m, 3, h, w], one row per distinct image.
    pub images: Tensor,
    /// (row in `images`, caption).
    pub captions: Vec<(usize, String)>,
    pub corpus: Vec<String>,
    pub fingerprint: String,
}

impl CaptionData {
    /// Loads (generating a synthetic set first when configured and missing) the caption pairs and corpus.
    pub fn load(exp: &Experiment) -> Result<Self> {
        let source = exp.config.translator.captions.as_ref().context(
            "translator.captions: the explanation stages need a caption set (synth, upstream, cats_apples, csv or coco)",
        )?;
        let generated = |root: &Path,
                         what: &str,
                         generate: &dyn Fn(&Path) -> Result<()>|
         -> Result<(Vec<CaptionPair>, Option<Vec<String>>)> {
            if !root.join("captions.csv").exists() {
                tracing::info!(root = %root.display(), "generating the {what} caption set");
                generate_into(root, generate)?;
            }
            Ok((
                captions::load_csv(&root.join("captions.csv"))?,
                Some(captions::load_corpus(&root.join("corpus.txt"))?),
            ))
        };
        let (pairs, corpus) = match source {
            CaptionSource::Synth { root, config } => {
                generated(root, "synthetic", &|dir: &Path| {
                    captions::synth_caption_set(config, dir).map(|_| ())
                })?
            }
            CaptionSource::Upstream { root, config } => {
                generated(root, "upstream", &|dir: &Path| {
                    crate::data::upstream_captions::caption_set(config, dir).map(|_| ())
                })?
            }
            CaptionSource::CatsApples { root, config } => {
                generated(root, "Cats & Apples", &|dir: &Path| {
                    crate::data::cats_apples::caption_set(config, dir).map(|_| ())
                })?
            }
            CaptionSource::Csv { path } => (captions::load_csv(path)?, None),
            CaptionSource::Coco {
                captions: json,
                images,
            } => (captions::load_coco(json, images)?, None),
        };
        if pairs.is_empty() {
            bail!("translator.captions: the caption set holds no (image, caption) pair");
        }
        let mut rows: BTreeMap<PathBuf, usize> = BTreeMap::new();
        let mut paths = Vec::new();
        let mut caption_rows = Vec::with_capacity(pairs.len());
        for pair in &pairs {
            let row = *rows.entry(pair.image.clone()).or_insert_with(|| {
                paths.push(pair.image.clone());
                paths.len() - 1
            });
            caption_rows.push((row, pair.caption.clone()));
        }
        let opts = LoadOptions {
            image_size: exp.config.data.image_size,
            skip_corrupt: false,
        };
        let images = captions::load_images(&paths, &opts)?;
        // Text-only corpus for LM pretraining: the grammar's corpus when there is one, else the captions' text.
        let corpus =
            corpus.unwrap_or_else(|| caption_rows.iter().map(|(_, c)| c.clone()).collect());
        let text: String = caption_rows
            .iter()
            .map(|(r, c)| format!("{r}\t{c}\n"))
            .collect();
        let fingerprint = sha256_parts(&[
            text.as_bytes(),
            corpus.join("\n").as_bytes(),
            &opts.image_size.to_le_bytes(),
        ]);
        tracing::info!(
            images = paths.len(),
            captions = caption_rows.len(),
            corpus = corpus.len(),
            "caption set loaded"
        );
        Ok(Self {
            images,
            captions: caption_rows,
            corpus,
            fingerprint,
        })
    }
}

/// The language model a run explains with, and its identity for downstream stage keys.
pub struct Lm {
    pub model: LanguageModel,
    /// The content digest of its folder: the `lm/` stage's [`super::stage::StageDone::content`], or
    /// [`crate::util::folder_digest`] of a pretrained folder's [`PRETRAINED_FILES`].
    pub content: String,
}

/// The files of a pretrained LM folder (HF GPT-2 layout) that the run reads, and that its identity hashes.
pub const PRETRAINED_FILES: [&str; 3] = ["config.json", "model.safetensors", "tokenizer.json"];

/// Loads the pretrained LM folder, or pretrains a small GPT-2 on the corpus in `<run>/lm/` (shared by seeds).
pub fn run(exp: &Experiment, captions: &CaptionData) -> Result<Lm> {
    let cfg = &exp.config.language_model;
    let (dir, content) = match &cfg.pretrained {
        Some(dir) => (
            dir.clone(),
            folder_digest(dir, &PRETRAINED_FILES)
                .context("language_model.pretrained: hashing the folder's files")?,
        ),
        None => {
            let mut key = StageKey::new(Stage::Lm);
            key.add("language_model", cfg)
                .add("corpus", &captions.fingerprint);
            let done = run_stage(&exp.out_dir, Stage::Lm, &key, |dir| {
                pretrain(exp, captions, dir)
            })?;
            (done.dir, done.content)
        }
    };
    Ok(Lm {
        model: LanguageModel::from_folder(&dir, exp.device)?,
        content,
    })
}

/// Trains a word-level tokenizer and a small GPT-2 on the corpus; writes an HF GPT-2 folder and `losses.csv`.
fn pretrain(exp: &Experiment, captions: &CaptionData, dir: &Path) -> Result<()> {
    let cfg = &exp.config.language_model;
    let mut rng = set_seed(stage_seed(0, "lm"));
    let mut corpus = captions.corpus.clone();
    corpus.shuffle(&mut rng);
    let n_val = cfg.val_sentences.min(corpus.len() / 10);
    let (val_text, train_text) = corpus.split_at(n_val);
    let tokenizer = tokenizer::train_word_level(
        train_text,
        cfg.tokenizer_min_freq,
        &dir.join("tokenizer.json"),
    )?;
    let eos = tokenizer.eos_id() as i64;
    let encode = |lines: &[String]| -> Result<Vec<Vec<i64>>> {
        lines
            .iter()
            .map(|line| {
                let mut ids = vec![eos];
                ids.extend(tokenizer.encode(line)?.into_iter().map(i64::from));
                ids.push(eos);
                Ok(ids)
            })
            .collect()
    };
    let (train, val) = (encode(train_text)?, encode(val_text)?);
    let gpt_cfg = gpt2::Config {
        n_embd: cfg.n_embd,
        n_layer: cfg.n_layer,
        n_head: cfg.n_head,
        n_positions: crate::config::LM_POSITIONS,
        ..gpt2::Config::tiny(tokenizer.vocab_size() as i64, eos, eos)
    };
    let vs = nn::VarStore::new(exp.device);
    let model = Gpt2::new(&vs.root(), &gpt_cfg);
    let (losses, val_loss) = lm::pretrain_lm(&model, &vs, &train, &val, &cfg.train, eos, &mut rng)?;
    tracing::info!(
        val_loss,
        vocab = gpt_cfg.vocab_size,
        "language model pretrained"
    );
    model.save_hf_folder(&vs, dir)?;
    write_losses(&dir.join("losses.csv"), &losses, val_loss)
}

/// `losses.csv` of a language-model training: one train loss per epoch, then the validation loss.
pub fn write_losses(path: &Path, train: &[f64], val: f64) -> Result<()> {
    let mut csv = String::from("epoch,train_loss\n");
    for (i, loss) in train.iter().enumerate() {
        csv.push_str(&format!("{},{loss:.6}\n", i + 1));
    }
    csv.push_str(&format!("val,{val:.6}\n"));
    write_atomic(path, csv)
}
