//! The explain stage (paper section 2): the seed's classifier, translator and language model write
//! `explain.samples_per_image` sentences for every train and test image, whose dominant words are counted per image
//! and per class. Output: `seed-<s>/explain/` = `sentences-<split>.jsonl` ([`crate::explain::sentences`]),
//! `words-<split>.csv` (top words per image), `words-by-class.csv`; read back through [`Explained`]. Also `texplain
//! explain`, which prints a run's words or explains new images.
//!
//! The sampling reseeds per chunk of [`CHUNK_IMAGES`] images (a seed from the run seed, the split and the chunk's
//! index, [`chunk_seed`]), in the manner of counter-based random streams (Philox, JAX's split keys): a chunk's
//! sentences depend on its own seed and images only. So the stage can be cut into shards on chunk boundaries
//! ([`run_shard`], `texplain plan --explain-shards N`) whose sentences, merged in dataset order, are the unsharded
//! stage's bytes.
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::context::Seed;
use super::erm::Erm;
use super::lm::{CaptionData, Lm};
use super::stage::{run_stage, run_stage_in, Stage, StageDone, StageKey};
use super::translator::TrainedTranslator;
use crate::config::Experiment;
use crate::data::InputPipeline;
use crate::data::{captions, LoadOptions, Split};
use crate::explain::describe::Describer;
use crate::explain::sample::Nucleus;
use crate::explain::sentences;
use crate::explain::words::{class_ranked, ranked};
use crate::models::translator::Translator;
use crate::models::vit::Vit;
use crate::runtime::{set_seed, stage_seed};
use crate::text::wordcloud;
use crate::text::words::{dominant_words, WordCounter, WordFilter};
use crate::util::{read_csv_rows, write_csv_rows};

/// The splits the explain stage explains.
pub const EXPLAINED_SPLITS: [Split; 2] = [Split::Train, Split::Test];

/// Words kept per class x split in `words-by-class.csv` (at least `explain.top_k`), enough for a word cloud.
pub const CLASS_WORDS: usize = 25;

/// One row of `words-<split>.csv`: an image's word at a rank (from 1).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ImageWord {
    pub img_id: i64,
    pub rank: usize,
    pub word: String,
    pub count: u64,
    pub freq: f64,
}

/// One row of `words-by-class.csv`: a class's word at a rank (from 1) over a split's images of that class.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ClassWord {
    pub split: Split,
    pub class: String,
    pub rank: usize,
    pub word: String,
    pub count: u64,
    pub freq: f64,
}

/// The finished explain stage of a seed, read through its files.
pub struct Explained {
    pub done: StageDone,
}

impl Explained {
    /// The explain stage of a finished run's seed folder (`<run>/seed-<s>`), for commands that read a run.
    pub fn in_seed_dir(seed_dir: &Path) -> Self {
        Self {
            done: StageDone {
                dir: seed_dir.join(Stage::Explain.name()),
                content: String::new(),
                skipped: true,
            },
        }
    }

    fn sentences_path(dir: &Path, split: Split) -> PathBuf {
        dir.join(sentences::file_name(split))
    }

    fn words_path(dir: &Path, split: Split) -> PathBuf {
        dir.join(format!("words-{split}.csv"))
    }

    /// Writes `sentences-<split>.jsonl`: every image's sampled sentences, in dataset order.
    pub fn write_sentences(dir: &Path, split: Split, rows: &[(i64, &[String])]) -> Result<()> {
        Ok(sentences::write(
            &Self::sentences_path(dir, split),
            rows.iter().copied(),
        )?)
    }

    /// The sampled sentences of a split as (img_id, sentence) pairs, in file order.
    pub fn sentences(&self, split: Split) -> Result<Vec<(i64, String)>> {
        Ok(
            sentences::read(&Self::sentences_path(&self.done.dir, split))?
                .into_iter()
                .flat_map(|r| r.sentences.into_iter().map(move |s| (r.img_id, s)))
                .collect(),
        )
    }

    /// Writes `words-<split>.csv`: every image's top-`k` words.
    pub fn write_image_words(
        dir: &Path,
        split: Split,
        images: &[(i64, &WordCounter)],
        k: usize,
    ) -> Result<()> {
        let rows: Vec<ImageWord> = images
            .iter()
            .flat_map(|&(img_id, counts)| {
                ranked(counts, k).map(move |(rank, word, count, freq)| ImageWord {
                    img_id,
                    rank,
                    word,
                    count,
                    freq,
                })
            })
            .collect();
        write_csv_rows(&Self::words_path(dir, split), &rows)
    }

    /// Each image's dominant words of a split, most frequent first, by img_id.
    pub fn image_words(&self, split: Split) -> Result<HashMap<i64, Vec<String>>> {
        let rows: Vec<ImageWord> = read_csv_rows(&Self::words_path(&self.done.dir, split))?;
        let mut ranked: HashMap<i64, Vec<(usize, String)>> = HashMap::new();
        for row in rows {
            ranked
                .entry(row.img_id)
                .or_default()
                .push((row.rank, row.word));
        }
        Ok(ranked
            .into_iter()
            .map(|(id, mut words)| {
                words.sort();
                (id, words.into_iter().map(|(_, w)| w).collect())
            })
            .collect())
    }

    /// The per class x split words (`words-by-class.csv`), in file order (split, class, rank).
    pub fn class_words(&self) -> Result<Vec<ClassWord>> {
        read_csv_rows(&self.done.dir.join("words-by-class.csv"))
    }
}

/// Class names (label 0 / 1) for file names and cloud titles.
pub fn class_names(exp: &Experiment) -> [&'static str; 2] {
    let data = &exp.config.data;
    data.label.class_names(data.kind)
}

/// The seed's describer: classifier tokens -> translator prefix -> nucleus sampling.
pub(super) fn describer<'a>(
    exp: &Experiment,
    vit: &'a Vit,
    translator: &'a Translator,
    lm: &'a crate::explain::lm::LanguageModel,
    input: &'a InputPipeline,
) -> Describer<'a> {
    let e = &exp.config.explain;
    Describer {
        vit,
        translator,
        lm,
        input,
        layer: exp.config.translator.layer,
        nucleus: Nucleus {
            top_p: e.top_p,
            temperature: e.temperature,
            min_words: e.min_words,
            max_words: e.max_words,
        },
        samples_per_image: e.samples_per_image,
        batch_rows: e.batch_rows,
        precision: e.precision,
    }
}

/// Images per reseeding chunk of the explain stage: the random stream of each chunk starts from its own seed
/// ([`chunk_seed`]), so a chunk's sentences do not depend on which images were sampled before it, and shards of
/// the stage cut on chunk boundaries ([`shard_chunks`]) give, merged in dataset order, the unsharded stage's bytes.
pub const CHUNK_IMAGES: usize = 64;

/// The stage key's marker of chunked reseeding, naming [`CHUNK_IMAGES`]: stages sampled from one stream per split
/// are redone, and so are they when the chunk size changes.
fn chunked_reseeding() -> String {
    format!("chunked reseeding, {CHUNK_IMAGES} images a chunk")
}

/// The number of chunks of `n_images` images.
pub fn chunks(n_images: usize) -> usize {
    n_images.div_ceil(CHUNK_IMAGES)
}

/// The chunks of shard `index` of `of` over `n_images` images: contiguous, in dataset order, their sizes differing
/// by at most one chunk (the last shards may be empty when there are fewer chunks than shards).
pub fn shard_chunks(n_images: usize, index: usize, of: usize) -> Range<usize> {
    let n = chunks(n_images);
    (index * n / of)..((index + 1) * n / of)
}

/// The seed of chunk `chunk` of `split` in the explain stage of the run seed `seed`.
pub fn chunk_seed(seed: u64, split: Split, chunk: usize) -> u64 {
    stage_seed(seed, &format!("explain/{split}/chunk-{chunk}"))
}

/// Runs `sample` on the image range of each chunk in `chunks` (in order), reseeding the random generators before
/// each with its [`chunk_seed`], and concatenates what it returns: one item per image, in dataset order.
pub fn sample_in_chunks<T>(
    seed: u64,
    split: Split,
    n_images: usize,
    chunks: Range<usize>,
    mut sample: impl FnMut(Range<usize>) -> Result<Vec<T>>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    for chunk in chunks {
        set_seed(chunk_seed(seed, split, chunk));
        let start = chunk * CHUNK_IMAGES;
        out.extend(sample(start..(start + CHUNK_IMAGES).min(n_images))?);
    }
    Ok(out)
}

/// The explain stage's key; a shard's adds its place ([`run_shard`]).
fn explain_key(ctx: &Seed, erm: &Erm, translator: &TrainedTranslator, lm: &Lm) -> StageKey {
    let mut key = StageKey::new(Stage::Explain);
    key.add("seed", &ctx.seed)
        .reads("translator", &translator.done.content)
        .reads("erm", &erm.done.content)
        .reads("lm", &lm.content)
        .add("data", &ctx.splits().fingerprint)
        .add("explain", &ctx.exp().config.explain);
    // What the stage writes and how it counts words; the word clouds (and their class words) are a stage of
    // their own, so recolouring them re-samples nothing.
    key.add(
        "formats",
        &[sentences::FORMAT, crate::text::words::NORMALISATION],
    );
    key.add("sampling", &chunked_reseeding());
    key
}

/// The images of `split` that the explain stage explains.
fn explained_data(splits: &super::context::Splits, split: Split) -> &crate::data::Dataset {
    match split {
        Split::Train => &splits.train,
        _ => &splits.test,
    }
}

/// Samples the sentences of `chunks` of `split`'s images, one list per image in dataset order.
fn sample_chunks(
    ctx: &Seed,
    describer: &Describer,
    split: Split,
    chunks: Range<usize>,
) -> Result<Vec<Vec<String>>> {
    let data = explained_data(ctx.splits(), split);
    sample_in_chunks(ctx.seed, split, data.img_ids.len(), chunks, |images| {
        let len = (images.end - images.start) as i64;
        describer.sentences(&data.images.narrow(0, images.start as i64, len))
    })
}

/// Shard `index` of `of` of the explain stage (`seed-<s>/explain#<index>of<of>/`, the unit of the same name): the
/// sentences of its chunks of each split ([`shard_chunks`]), in `sentences-<split>.jsonl`.
pub fn run_shard(
    ctx: &Seed,
    erm: &Erm,
    translator: &TrainedTranslator,
    vit: &Vit,
    lm: &Lm,
    (index, of): (usize, usize),
) -> Result<StageDone> {
    let mut key = explain_key(ctx, erm, translator, lm);
    key.add("shard", &[index, of]);
    let describer = describer(ctx.exp(), vit, &translator.model, &lm.model, ctx.input());
    let folder = super::plan::shard_name(index, of);
    run_stage_in(&ctx.dir, &folder, Stage::Explain, &key, |dir| {
        for split in EXPLAINED_SPLITS {
            let data = explained_data(ctx.splits(), split);
            let n = data.img_ids.len();
            let chunks = shard_chunks(n, index, of);
            let images = (chunks.start * CHUNK_IMAGES).min(n)..(chunks.end * CHUNK_IMAGES).min(n);
            let sentences = sample_chunks(ctx, &describer, split, chunks)?;
            let rows: Vec<(i64, &[String])> = data.img_ids[images]
                .iter()
                .copied()
                .zip(sentences.iter().map(Vec::as_slice))
                .collect();
            Explained::write_sentences(dir, split, &rows)?;
        }
        Ok(())
    })
}

/// The sentences of `split` merged from the finished shard folders `shards` (in shard order), checked to be every
/// image of the split once, in dataset order.
fn merge_shards(shards: &[PathBuf], split: Split, img_ids: &[i64]) -> Result<Vec<Vec<String>>> {
    let mut ids = Vec::with_capacity(img_ids.len());
    let mut merged = Vec::with_capacity(img_ids.len());
    for shard in shards {
        for record in sentences::read(&Explained::sentences_path(shard, split))? {
            ids.push(record.img_id);
            merged.push(record.sentences);
        }
    }
    if ids != img_ids {
        anyhow::bail!(
            "the explain shards {} hold {} {split} images, not the split's {} in dataset order; rerun their units",
            shards.iter().map(|s| s.display().to_string()).collect::<Vec<_>>().join(", "),
            ids.len(),
            img_ids.len()
        );
    }
    Ok(merged)
}

/// Explains the train and test splits with the seed's translator; with finished `shards` (the explain unit of a
/// sharded plan) it merges their sentences instead of sampling, which gives the same bytes.
pub fn run(
    ctx: &Seed,
    erm: &Erm,
    translator: &TrainedTranslator,
    vit: &Vit,
    lm: &Lm,
    shards: &[PathBuf],
) -> Result<Explained> {
    let (exp, splits) = (ctx.exp(), ctx.splits());
    let e = &exp.config.explain;
    let key = explain_key(ctx, erm, translator, lm);
    let filter = WordFilter::new(&e.words)?;
    let describer = describer(exp, vit, &translator.model, &lm.model, ctx.input());
    let done = run_stage(&ctx.dir, Stage::Explain, &key, |dir| {
        let mut by_class = Vec::new();
        for split in EXPLAINED_SPLITS {
            let data = explained_data(splits, split);
            let sentences = if shards.is_empty() {
                sample_chunks(ctx, &describer, split, 0..chunks(data.img_ids.len()))?
            } else {
                merge_shards(shards, split, &data.img_ids)?
            };
            let counts: Vec<WordCounter> = sentences
                .iter()
                .map(|s| WordCounter::from_sentences(&filter, s))
                .collect();
            let per_image: Vec<(i64, &[String])> = data
                .img_ids
                .iter()
                .copied()
                .zip(sentences.iter().map(Vec::as_slice))
                .collect();
            Explained::write_sentences(dir, split, &per_image)?;
            let words: Vec<(i64, &WordCounter)> =
                data.img_ids.iter().copied().zip(&counts).collect();
            Explained::write_image_words(dir, split, &words, e.top_k)?;
            for (class, name) in class_names(exp).iter().enumerate() {
                let k = CLASS_WORDS.max(e.top_k);
                by_class.extend(class_ranked(&counts, &data.y, class as i64, k).map(
                    |(rank, word, count, freq)| ClassWord {
                        split,
                        class: name.to_string(),
                        rank,
                        word,
                        count,
                        freq,
                    },
                ));
            }
        }
        write_csv_rows(&dir.join("words-by-class.csv"), &by_class)
    })?;
    Ok(Explained { done })
}

/// `texplain explain`: print the dominant words of a finished run, per class and split, or explain new images
/// with a seed's classifier, translator and language model (and write their word clouds). Its flags:
/// `src/cli/explain.rs`.
#[derive(Debug, Clone)]
pub struct ExplainOptions {
    /// A run directory written by `texplain run`.
    pub run_dir: PathBuf,
    /// Explain these image files instead of printing the run's words.
    pub images: Vec<PathBuf>,
    /// Only this split (train or test).
    pub split: Option<Split>,
    /// Only this class (its name in the run).
    pub class: Option<String>,
    /// The seed whose models explain (`None`: the run's first seed).
    pub seed: Option<u64>,
}

pub fn command(args: &ExplainOptions) -> Result<()> {
    let config = args.run_dir.join("config.resolved.yaml");
    let exp = Experiment::load(&config, &[])
        .with_context(|| format!("{} is not a finished run directory", args.run_dir.display()))?;
    let seed = args.seed.unwrap_or(exp.config.seeds[0]);
    let seed_dir = args.run_dir.join(format!("seed-{seed}"));
    let out = if args.images.is_empty() {
        print_run_words(args, &exp, &seed_dir, seed)?
    } else {
        explain_new_images(args, &exp, &seed_dir, seed)?
    };
    use std::io::Write;
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}

/// The run's top words per split and class (`words-by-class.csv`), as text.
fn print_run_words(
    args: &ExplainOptions,
    exp: &Experiment,
    seed_dir: &Path,
    seed: u64,
) -> Result<String> {
    let explained = Explained::in_seed_dir(seed_dir);
    let mut out = String::new();
    let mut groups: BTreeMap<(Split, String), Vec<ClassWord>> = BTreeMap::new();
    for row in explained.class_words()? {
        let wanted = args.split.is_none_or(|s| s == row.split)
            && args.class.as_deref().is_none_or(|c| c == row.class)
            && row.rank <= exp.config.explain.top_k;
        if wanted {
            groups
                .entry((row.split, row.class.clone()))
                .or_default()
                .push(row);
        }
    }
    for ((split, class), rows) in groups {
        out.push_str(&format!("\n{split} / {class} (seed {seed}):\n"));
        for r in rows {
            out.push_str(&format!("  {:>2}. {:<12} {:.3}\n", r.rank, r.word, r.freq));
        }
    }
    out.push_str(&format!(
        "\nword clouds: {}/cloud-<split>-<class>.png\n",
        seed_dir.join(Stage::Clouds.name()).display()
    ));
    Ok(out)
}

/// Explains image files with the seed's models; writes their clouds under `seed-<s>/explain-images/`.
fn explain_new_images(
    args: &ExplainOptions,
    exp: &Experiment,
    seed_dir: &Path,
    seed: u64,
) -> Result<String> {
    let captions = CaptionData::load(exp)?;
    let lm = super::lm::run(exp, &captions)?;
    let vit = super::erm::Classifier::load(&seed_dir.join(Stage::Erm.name()), exp.device)?;
    let mut vs = tch::nn::VarStore::new(exp.device);
    let translator = Translator::from_folder(&mut vs, &seed_dir.join(Stage::Translator.name()))?;
    let opts = LoadOptions {
        image_size: exp.config.data.image_size,
        skip_corrupt: false,
    };
    let images = captions::load_images(&args.images, &opts)?;
    let filter = WordFilter::new(&exp.config.explain.words)?;
    let input = InputPipeline {
        normalize: exp.config.data.normalize.clone(),
        augment: exp.config.data.augment.clone(),
        device: exp.device,
    };
    set_seed(stage_seed(seed, "explain-cli"));
    let sentences =
        describer(exp, &vit.model, &translator, &lm.model, &input).sentences(&images)?;
    let cloud_dir = seed_dir.join("explain-images");
    let class_words: HashSet<String> = exp
        .config
        .mitigation
        .class_words
        .values()
        .flatten()
        .cloned()
        .collect();
    let mut out = String::new();
    for (path, sentences) in args.images.iter().zip(&sentences) {
        let counts = WordCounter::from_sentences(&filter, sentences);
        let top = dominant_words(&counts, exp.config.explain.top_k);
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
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::words::WordConfig;

    #[test]
    fn word_files_round_trip() {
        let f = WordFilter::new(&WordConfig::default()).unwrap();
        let a = WordCounter::from_sentences(&f, &["bird bird water"]);
        let b = WordCounter::from_sentences(&f, &["forest"]);
        let dir = tempfile::tempdir().unwrap();
        Explained::write_image_words(dir.path(), Split::Train, &[(7, &a), (9, &b)], 2).unwrap();
        let explained = Explained {
            done: StageDone {
                dir: dir.path().to_path_buf(),
                content: String::new(),
                skipped: false,
            },
        };
        let words = explained.image_words(Split::Train).unwrap();
        assert_eq!(words[&7], ["bird", "water"]);
        assert_eq!(words[&9], ["forest"]);
        let sentences = ["a bird".to_string(), "on water".to_string()];
        Explained::write_sentences(dir.path(), Split::Test, &[(3, &sentences[..])]).unwrap();
        assert_eq!(
            explained.sentences(Split::Test).unwrap(),
            [(3, "a bird".to_string()), (3, "on water".to_string())]
        );
    }
}
