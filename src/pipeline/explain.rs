//! TExplain stages (paper section 2): the caption set, the language model (shared by seeds), the translator
//! (one per seed, since each seed has its own classifier) and the explanations of the train and test sets.
use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use tch::{nn, Tensor};

use crate::config::{CaptionSource, Experiment};
use crate::data::captions::{self, CaptionPair};
use crate::data::LoadOptions;
use crate::explain::lm::{self, CaptionExample};
use crate::explain::sample::{sample_sentences, Nucleus};
use crate::explain::sentences;
use crate::models::gpt2::{self, Gpt2};
use crate::models::translator::{self, Translator};
use crate::models::vit::Vit;
use crate::rundir::{run_stage, write_atomic, StageDone, StageKey};
use crate::runtime::{set_seed, stage_seed};
use crate::text::tokenizer::{self, Tokenizer, TokenizerKind};
use crate::text::wordcloud;
use crate::text::words::{dominant_words, WordCounter, WordFilter};
use crate::train::InputPipeline;

/// The translator's (image, caption) pairs with their images decoded, and the text corpus for LM pretraining.
pub struct CaptionData {
    /// u8 [m, 3, h, w], one row per distinct image.
    pub images: Tensor,
    /// (row in `images`, caption).
    pub captions: Vec<(usize, String)>,
    pub corpus: Vec<String>,
    pub fingerprint: String,
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Loads (generating a synthetic set first when configured and missing) the caption pairs and corpus.
pub fn load_captions(exp: &Experiment) -> Result<CaptionData> {
    let source = exp.config.translator.captions.as_ref().context(
        "translator.captions: the explanation stages need a caption set (synth, csv or coco)",
    )?;
    let (pairs, corpus): (Vec<CaptionPair>, Option<Vec<String>>) = match source {
        CaptionSource::Synth { root, config } => {
            if !root.join("captions.csv").exists() {
                tracing::info!(root = %root.display(), "generating the synthetic caption set");
                super::generate_into(root, |dir| {
                    captions::synth_caption_set(config, dir).map(|_| ())
                })?;
            }
            let corpus = captions::load_corpus(&root.join("corpus.txt"))?;
            (
                captions::load_csv(&root.join("captions.csv"))?,
                Some(corpus),
            )
        }
        CaptionSource::CatsApples { root, config } => {
            if !root.join("captions.csv").exists() {
                tracing::info!(root = %root.display(), "generating the Cats & Apples caption set");
                super::generate_into(root, |dir| {
                    crate::data::cats_apples::caption_set(config, dir).map(|_| ())
                })?;
            }
            let corpus = captions::load_corpus(&root.join("corpus.txt"))?;
            (
                captions::load_csv(&root.join("captions.csv"))?,
                Some(corpus),
            )
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
    let corpus = corpus.unwrap_or_else(|| caption_rows.iter().map(|(_, c)| c.clone()).collect());
    let text: String = caption_rows
        .iter()
        .map(|(r, c)| format!("{r}\t{c}\n"))
        .collect();
    let fingerprint = sha256_hex(&[
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
    Ok(CaptionData {
        images,
        captions: caption_rows,
        corpus,
        fingerprint,
    })
}

/// The frozen language model and its tokenizer.
pub struct LanguageModel {
    pub vs: nn::VarStore,
    pub lm: Gpt2,
    pub tokenizer: Tokenizer,
    /// Identity for downstream stage keys.
    pub hash: String,
}

impl LanguageModel {
    /// `[vocab]` bool: whether each token starts a word (every word-level token; `Ġ`-initial BPE tokens).
    pub fn word_start(&self) -> Tensor {
        let vocab = self.lm.config().vocab_size as usize;
        let eos = self.tokenizer.eos_id();
        let starts: Vec<bool> = (0..vocab as u32)
            .map(|id| {
                id != eos
                    && match self.tokenizer.kind() {
                        TokenizerKind::WordLevel => true,
                        _ => self
                            .tokenizer
                            .id_to_token(id)
                            .is_some_and(|t| t.starts_with('Ġ')),
                    }
            })
            .collect();
        Tensor::from_slice(&starts)
    }

    /// Token ids of a caption followed by EOS.
    pub fn encode_sentence(&self, text: &str) -> Result<Vec<i64>> {
        let mut ids: Vec<i64> = self
            .tokenizer
            .encode(text)?
            .into_iter()
            .map(i64::from)
            .collect();
        ids.push(self.tokenizer.eos_id() as i64);
        Ok(ids)
    }
}

/// Loads the pretrained LM folder, or pretrains a small GPT-2 on the corpus in `<run>/lm/` (shared by seeds).
pub fn language_model_stage(exp: &Experiment, captions: &CaptionData) -> Result<LanguageModel> {
    let cfg = &exp.config.language_model;
    let (dir, hash) = match &cfg.pretrained {
        Some(dir) => {
            let config = std::fs::read(dir.join("config.json"))?;
            let size = std::fs::metadata(dir.join("model.safetensors"))?.len();
            (
                dir.clone(),
                sha256_hex(&[
                    dir.to_string_lossy().as_bytes(),
                    &config,
                    &size.to_le_bytes(),
                ]),
            )
        }
        None => {
            let mut key = StageKey::new("lm");
            key.add("language_model", cfg)
                .add("corpus", &captions.fingerprint);
            let done = run_stage(&exp.out_dir, "lm", &key, |dir| {
                pretrain_language_model(exp, captions, dir)
            })?;
            (done.dir, done.hash)
        }
    };
    let tokenizer = tokenizer::load(&dir.join("tokenizer.json"))?;
    let mut vs = nn::VarStore::new(exp.device);
    let (lm, report) = Gpt2::from_hf_folder(&mut vs, &dir)?;
    tracing::debug!(?report, "language model loaded");
    vs.freeze();
    Ok(LanguageModel {
        vs,
        lm,
        tokenizer,
        hash,
    })
}

fn pretrain_language_model(exp: &Experiment, captions: &CaptionData, dir: &Path) -> Result<()> {
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
        n_positions: 128,
        ..gpt2::Config::tiny(tokenizer.vocab_size() as i64, eos, eos)
    };
    let vs = nn::VarStore::new(exp.device);
    let lm = Gpt2::new(&vs.root(), &gpt_cfg);
    let (losses, val_loss) = lm::pretrain_lm(&lm, &vs, &train, &val, &cfg.train, eos, &mut rng)?;
    tracing::info!(
        val_loss,
        vocab = gpt_cfg.vocab_size,
        "language model pretrained"
    );
    crate::models::save_safetensors(&vs, &dir.join("model.safetensors"))?;
    gpt_cfg.to_hf_json(&dir.join("config.json"))?;
    write_losses(&dir.join("losses.csv"), &losses, val_loss)
}

fn write_losses(path: &Path, train: &[f64], val: f64) -> Result<()> {
    let mut csv = String::from("epoch,train_loss\n");
    for (i, loss) in train.iter().enumerate() {
        csv.push_str(&format!("{},{loss:.6}\n", i + 1));
    }
    csv.push_str(&format!("val,{val:.6}\n"));
    write_atomic(path, csv)
}

/// Token activations of `layer` for u8 `images`, in batches without gradients, kept on the model's device.
pub fn classifier_tokens(
    vit: &Vit,
    images: &Tensor,
    layer: i64,
    input: &InputPipeline,
    batch: usize,
) -> Result<Tensor> {
    let n = images.size()[0];
    let mut out = Vec::new();
    tch::no_grad(|| -> Result<()> {
        for start in (0..n).step_by(batch) {
            let len = (n - start).min(batch as i64);
            let xs = input.eval_batch(&images.narrow(0, start, len));
            out.push(vit.forward_features(&xs, layer, false)?.tokens); // [b, p+1, d]
        }
        Ok(())
    })?;
    Ok(Tensor::cat(&out, 0))
}

/// A trained translator.
pub struct TrainedTranslator {
    pub vs: nn::VarStore,
    pub translator: Translator,
}

/// Trains the seed's translator with classifier and LM frozen (LM cross-entropy of captions given the prefix).
pub fn translator_stage(
    exp: &Experiment,
    seed: u64,
    seed_dir: &Path,
    erm: &StageDone,
    vit: &Vit,
    lm: &LanguageModel,
    captions: &CaptionData,
) -> Result<(StageDone, TrainedTranslator)> {
    let cfg = &exp.config.translator;
    let mut key = StageKey::new("translator");
    key.add("seed", &seed)
        .add("erm", &erm.hash)
        .add("lm", &lm.hash)
        .add("captions", &captions.fingerprint);
    key.add(
        "translator",
        &serde_json::json!({
            "layer": cfg.layer, "prefix_len": cfg.prefix_len, "hidden_dim": cfg.hidden_dim,
            "val_fraction": cfg.val_fraction, "train": cfg.train,
        }),
    );
    let input = super::input_pipeline(exp);
    let translator_cfg = translator::Config {
        in_tokens: vit.num_tokens(),
        in_dim: vit.config().hidden_size,
        hidden_dim: cfg.hidden_dim,
        prefix_len: cfg.prefix_len,
        out_dim: lm.lm.config().n_embd,
        token_subset: None,
    };
    let done = run_stage(seed_dir, "translator", &key, |dir| {
        let mut rng = set_seed(stage_seed(seed, "translator"));
        let features = classifier_tokens(vit, &captions.images, cfg.layer, &input, 256)?; // [m, p+1, d]
        let n_images = captions.images.size()[0] as usize;
        let mut images: Vec<usize> = (0..n_images).collect();
        images.shuffle(&mut rng);
        let n_val =
            ((n_images as f64 * cfg.val_fraction).round() as usize).min(n_images.saturating_sub(1));
        let val_images: HashSet<usize> = images[..n_val].iter().copied().collect();
        let (mut train, mut val) = (Vec::new(), Vec::new());
        for (image, caption) in &captions.captions {
            let example = CaptionExample {
                image: *image,
                ids: lm.encode_sentence(caption)?,
            };
            if val_images.contains(image) {
                val.push(example)
            } else {
                train.push(example)
            }
        }
        let vs = nn::VarStore::new(exp.device);
        let translator = Translator::new(&vs.root(), &translator_cfg);
        let pad = lm.tokenizer.eos_id() as i64;
        let (losses, val_loss) = lm::train_translator(
            &translator,
            &vs,
            &lm.lm,
            &features,
            &train,
            &val,
            &cfg.train,
            pad,
            &mut rng,
        )?;
        tracing::info!(seed, val_loss, "translator trained");
        crate::models::save_safetensors(&vs, &dir.join("model.safetensors"))?;
        translator_cfg.to_json(&dir.join("config.json"))?;
        write_losses(&dir.join("losses.csv"), &losses, val_loss)
    })?;
    let mut vs = nn::VarStore::new(exp.device);
    let translator = Translator::new(&vs.root(), &translator_cfg);
    let opts = crate::models::LoadOpts::default();
    crate::models::load_safetensors(&mut vs, &done.dir.join("model.safetensors"), &opts)?;
    vs.freeze();
    Ok((done, TrainedTranslator { vs, translator }))
}

/// The explanations of one split: sampled sentences and word counts per image.
pub struct Explanations {
    /// Per image (dataset order): its sampled sentences as text.
    pub sentences: Vec<Vec<String>>,
    pub counts: Vec<WordCounter>,
}

/// Samples `samples_per_image` sentences for every u8 image [n, 3, h, w] and counts their words.
pub fn explain_images(
    exp: &Experiment,
    vit: &Vit,
    translator: &Translator,
    lm: &LanguageModel,
    images: &Tensor,
    filter: &WordFilter,
) -> Result<Explanations> {
    let e = &exp.config.explain;
    let input = super::input_pipeline(exp);
    let nucleus = Nucleus {
        top_p: e.top_p,
        temperature: e.temperature,
        min_words: e.min_words,
        max_words: e.max_words,
    };
    let word_start = lm.word_start();
    let eos = lm.tokenizer.eos_id() as i64;
    // Rows decoded together: images x samples, bounded so the KV cache stays small.
    let images_per_batch = (e.batch_rows / e.samples_per_image).max(1) as i64;
    let n = images.size()[0];
    let mut sentences = Vec::with_capacity(n as usize);
    let progress = crate::progress::bar(n as u64, "explain");
    for start in (0..n).step_by(images_per_batch as usize) {
        let len = (n - start).min(images_per_batch);
        let prefix = tch::no_grad(|| -> Result<Tensor> {
            let xs = input.eval_batch(&images.narrow(0, start, len));
            let tokens = vit
                .forward_features(&xs, exp.config.translator.layer, false)?
                .tokens;
            Ok(translator.forward(&tokens)?)
        })?; // [b, k, d_lm]
        for samples in sample_sentences(
            &lm.lm,
            &prefix,
            e.samples_per_image,
            &nucleus,
            eos,
            &word_start,
        )? {
            let texts = samples
                .iter()
                .map(|ids| lm.tokenizer.decode(ids))
                .collect::<Result<Vec<_>, _>>()?;
            sentences.push(texts);
        }
        progress.inc(len as u64);
    }
    progress.finish_and_clear();
    let counts = sentences
        .iter()
        .map(|s| WordCounter::from_sentences(filter, s))
        .collect();
    Ok(Explanations { sentences, counts })
}

/// Words drawn in a class x split cloud (more crowd the canvas and slow the placement down).
const CLOUD_WORDS: usize = 25;

/// Class names (y = 0 / 1) for file names and cloud titles: they come from `data.kind` (landbird/waterbird,
/// dog/cat), or name the place when `data.label: place` swapped the label.
pub fn class_names(exp: &Experiment) -> [&'static str; 2] {
    use crate::config::{DataKind, Label};
    match (exp.config.data.label, exp.config.data.kind) {
        (Label::Y, kind) => kind.class_names(),
        (Label::Place, DataKind::Waterbirds) => ["land", "water"],
        (Label::Place, DataKind::CatsApples) => ["no_apple", "apple"],
    }
}

/// Explains the train and test splits with the seed's translator: `sentences-<split>.jsonl`,
/// `words-<split>.csv` (top words per image), `words-by-class.csv`, and one word cloud per class x split.
#[allow(clippy::too_many_arguments)]
pub fn explain_stage(
    exp: &Experiment,
    seed: u64,
    seed_dir: &Path,
    translator_done: &StageDone,
    vit: &Vit,
    translator: &Translator,
    lm: &LanguageModel,
    splits: &super::Splits,
) -> Result<StageDone> {
    let e = &exp.config.explain;
    let mut key = StageKey::new("explain");
    key.add("seed", &seed)
        .add("translator", &translator_done.hash)
        .add("data", &splits.fingerprint)
        .add("explain", e);
    key.add("class_words", &exp.config.mitigation.class_words);
    key.add(
        "formats",
        &[sentences::FORMAT, crate::text::words::NORMALISATION],
    );
    let filter = WordFilter::new(&e.words)?;
    run_stage(seed_dir, "explain", &key, |dir| {
        set_seed(stage_seed(seed, "explain"));
        let mut by_class = String::from("split,class,rank,word,count,freq\n");
        for (split, data) in [("train", &splits.train), ("test", &splits.test)] {
            let explained = explain_images(exp, vit, translator, lm, &data.images, &filter)?;
            let per_image = data.img_ids.iter().copied();
            let per_image = per_image.zip(explained.sentences.iter().map(Vec::as_slice));
            sentences::write(&dir.join(sentences::file_name(split)), per_image)?;
            let per_image: Vec<(u64, &WordCounter)> = data
                .img_ids
                .iter()
                .map(|&id| id as u64)
                .zip(&explained.counts)
                .collect();
            crate::text::words::write_image_top_words(
                &dir.join(format!("words-{split}.csv")),
                &per_image,
                e.top_k,
            )?;
            for (class, name) in class_names(exp).iter().enumerate() {
                let mut total = WordCounter::new();
                for (counts, &y) in explained.counts.iter().zip(&data.y) {
                    if y == class as i64 {
                        total.merge(counts);
                    }
                }
                let top = dominant_words(&total, CLOUD_WORDS);
                for (rank, (word, count, freq)) in top.iter().take(e.top_k).enumerate() {
                    by_class.push_str(&format!(
                        "{split},{name},{},{word},{count},{freq:.6}\n",
                        rank + 1
                    ));
                }
                let class_words: HashSet<String> = exp
                    .config
                    .mitigation
                    .class_words
                    .get(&(class as i64))
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                let options = wordcloud::CloudOptions {
                    title: Some(format!("seed {seed}: {name}, {split}")),
                    ..Default::default()
                };
                let words: Vec<(String, f64)> = top.into_iter().map(|(w, _, f)| (w, f)).collect();
                let cloud = wordcloud::render(&words, &class_words, &options);
                wordcloud::save_png(&cloud, &dir.join(format!("cloud-{split}-{name}.png")))?;
            }
        }
        write_atomic(&dir.join("words-by-class.csv"), by_class)
    })
}

/// `texplain explain`: print the dominant words of a finished run, per class and split, or explain new images
/// with a seed's classifier, translator and language model (and write their word clouds).
#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// A run directory written by `texplain run`.
    pub run_dir: PathBuf,
    /// Explain these image files instead of printing the run's words (repeatable).
    #[arg(long = "image")]
    pub images: Vec<PathBuf>,
    /// Only this split (train or test).
    #[arg(long)]
    pub split: Option<String>,
    /// Only this class (its name in the run: landbird or waterbird, dog or cat).
    #[arg(long)]
    pub class: Option<String>,
    /// The seed whose models explain (default: the run's first seed).
    #[arg(long)]
    pub seed: Option<u64>,
}

pub fn explain_command(args: &ExplainArgs) -> Result<()> {
    let config = args.run_dir.join("config.resolved.yaml");
    let exp = Experiment::load(&config, &[])
        .with_context(|| format!("{} is not a finished run directory", args.run_dir.display()))?;
    let seed = args.seed.unwrap_or(exp.config.seeds[0]);
    let seed_dir = args.run_dir.join(format!("seed-{seed}"));
    let mut out = String::new();
    if args.images.is_empty() {
        let path = seed_dir.join("explain").join("words-by-class.csv");
        let mut reader =
            csv::Reader::from_path(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut current = (String::new(), String::new());
        for record in reader.records() {
            let r = record.with_context(|| format!("reading {}", path.display()))?;
            let (split, class, rank, word, freq) = (&r[0], &r[1], &r[2], &r[3], &r[5]);
            if args.split.as_deref().is_some_and(|s| s != split)
                || args.class.as_deref().is_some_and(|c| c != class)
            {
                continue;
            }
            if (split, class) != (current.0.as_str(), current.1.as_str()) {
                current = (split.to_string(), class.to_string());
                out.push_str(&format!("\n{split} / {class} (seed {seed}):\n"));
            }
            out.push_str(&format!(
                "  {rank:>2}. {word:<12} {:.3}\n",
                freq.parse::<f64>().unwrap_or(f64::NAN)
            ));
        }
        out.push_str(&format!(
            "\nword clouds: {}/cloud-<split>-<class>.png\n",
            seed_dir.join("explain").display()
        ));
    } else {
        let captions = load_captions(&exp)?;
        let lm = language_model_stage(&exp, &captions)?;
        let (_, vit, _) = super::load_classifier(&exp, &seed_dir.join("erm"))?;
        let translator_dir = seed_dir.join("translator");
        let mut vs = nn::VarStore::new(exp.device);
        let translator = Translator::new(
            &vs.root(),
            &translator::Config::from_json(&translator_dir.join("config.json"))?,
        );
        crate::models::load_safetensors(
            &mut vs,
            &translator_dir.join("model.safetensors"),
            &Default::default(),
        )?;
        let opts = LoadOptions {
            image_size: exp.config.data.image_size,
            skip_corrupt: false,
        };
        let images = captions::load_images(&args.images, &opts)?;
        let filter = WordFilter::new(&exp.config.explain.words)?;
        set_seed(stage_seed(seed, "explain-cli"));
        let explained = explain_images(&exp, &vit, &translator, &lm, &images, &filter)?;
        let cloud_dir = seed_dir.join("explain").join("images");
        let class_words: HashSet<String> = exp
            .config
            .mitigation
            .class_words
            .values()
            .flatten()
            .cloned()
            .collect();
        for (path, counts) in args.images.iter().zip(&explained.counts) {
            let top = dominant_words(counts, exp.config.explain.top_k);
            out.push_str(&format!("\n{}:\n", path.display()));
            for (rank, (word, _, freq)) in top.iter().enumerate() {
                out.push_str(&format!("  {:>2}. {word:<12} {freq:.3}\n", rank + 1));
            }
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "image".into());
            let words: Vec<(String, f64)> = top.into_iter().map(|(w, _, f)| (w, f)).collect();
            let options = wordcloud::CloudOptions {
                title: Some(stem.clone()),
                ..Default::default()
            };
            let png = cloud_dir.join(format!("{stem}.png"));
            wordcloud::save_png(&wordcloud::render(&words, &class_words, &options), &png)?;
            out.push_str(&format!("  cloud: {}\n", png.display()));
        }
    }
    use std::io::Write;
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}
