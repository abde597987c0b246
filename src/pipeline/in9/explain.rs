//! The explain stage of the ImageNet-9 analysis (paper section 2 applied to section 4.3's categories): the frozen
//! classifier, the seed's translator and the language model write `explain.samples_per_image` sentences for the
//! images of every explained Background Challenge variant (`analysis.explain_variants`; `images_per_class` of each
//! category, the first in file order, or all), counted into words per image and per category. Output:
//! `seed-<s>/explain/` = per variant `images-<variant>.csv` (img_id, file, label, class), `sentences-<variant>.jsonl`
//! ([`crate::explain::sentences`], img_id = row of the images file), `words-<variant>.csv` (top words per image),
//! and `words-by-class.csv` (variant, class, rank, word, count, freq); read back through [`Explained`].
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::path::Path;

use super::SeedRun;
use crate::data::bg_challenge::{load_variant, ClassFolders, Variant};
use crate::explain::sentences;
use crate::explain::words::{class_ranked, ranked};
use crate::in9::name_of;
use crate::models::vit::Vit;
use crate::pipeline::explain::{describer, ImageWord, CLASS_WORDS};
use crate::pipeline::lm::Lm;
use crate::pipeline::stage::{run_stage, Stage, StageDone, StageKey};
use crate::pipeline::translator::TrainedTranslator;
use crate::runtime::{set_seed, stage_seed};
use crate::text::words::{WordCounter, WordFilter, NORMALISATION};
use crate::util::{read_csv_rows, write_csv_rows};

/// One row of `images-<variant>.csv`: an explained image.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ExplainedImage {
    pub img_id: i64,
    /// `<class folder>/<file name>` inside the variant's `val/` folder.
    pub file: String,
    pub label: i64,
    pub class: String,
}

/// One row of `words-by-class.csv`: a category's word at a rank (from 1) over a variant's explained images.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct VariantClassWord {
    pub variant: String,
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
    /// Every category's words of every explained variant, in file order (variant, class, rank).
    pub fn class_words(&self) -> Result<Vec<VariantClassWord>> {
        read_csv_rows(&self.done.dir.join("words-by-class.csv"))
    }

    /// The explained images of a variant.
    pub fn images(&self, variant: Variant) -> Result<Vec<ExplainedImage>> {
        read_csv_rows(&images_path(&self.done.dir, variant))
    }
}

fn images_path(dir: &Path, variant: Variant) -> std::path::PathBuf {
    dir.join(format!("images-{variant}.csv"))
}

/// The rows of `data` the analysis explains: the first `per_class` of each category in file order, or all.
pub fn explained_rows(data: &ClassFolders, per_class: Option<usize>) -> Vec<usize> {
    let mut seen = vec![0usize; data.num_classes()];
    (0..data.len())
        .filter(|&i| {
            let c = data.labels[i] as usize;
            seen[c] += 1;
            per_class.is_none_or(|k| seen[c] <= k)
        })
        .collect()
}

/// Explains the variants' images with the seed's translator (or finds them explained).
pub fn run(ctx: &SeedRun, translator: &TrainedTranslator, vit: &Vit, lm: &Lm) -> Result<Explained> {
    let (analysis, seed) = (ctx.analysis, ctx.seed);
    let (exp, section) = (analysis.exp, analysis.section);
    let e = &exp.config.explain;
    let mut key = StageKey::new(Stage::Explain);
    key.add("seed", &seed)
        .reads("translator", &translator.done.content)
        .reads(analysis.classifier.name, &analysis.classifier.content)
        .reads("lm", &lm.content)
        .add("challenge", &analysis.challenge_fingerprint)
        .add("explain", e)
        .add("variants", &section.explain_variants)
        .add("images_per_class", &section.images_per_class)
        .add("formats", &[sentences::FORMAT, NORMALISATION]);
    let filter = WordFilter::new(&e.words)?;
    let describer = describer(exp, vit, &translator.model, &lm.model, &analysis.input);
    let done = run_stage(&ctx.dir, Stage::Explain, &key, |dir| {
        set_seed(stage_seed(seed, "explain"));
        let mut by_class = Vec::new();
        for &variant in &section.explain_variants {
            let all = load_variant(&analysis.challenge, variant, &analysis.opts, false)?;
            let data = all.select(&explained_rows(&all, section.images_per_class));
            tracing::info!(%variant, images = data.len(), "explaining");
            let sentences = describer.sentences(&data.images)?;
            let counts: Vec<WordCounter> = sentences
                .iter()
                .map(|s| WordCounter::from_sentences(&filter, s))
                .collect();
            let images: Vec<ExplainedImage> = data
                .files
                .iter()
                .zip(&data.labels)
                .enumerate()
                .map(|(i, (file, &label))| ExplainedImage {
                    img_id: i as i64,
                    file: file.clone(),
                    label,
                    class: name_of(&analysis.label_names, label),
                })
                .collect();
            write_csv_rows(&images_path(dir, variant), &images)?;
            sentences::write(
                &dir.join(format!("sentences-{variant}.jsonl")),
                images
                    .iter()
                    .zip(&sentences)
                    .map(|(img, s)| (img.img_id, s.as_slice())),
            )?;
            let words: Vec<ImageWord> = images
                .iter()
                .zip(&counts)
                .flat_map(|(img, c)| {
                    ranked(c, e.top_k).map(move |(rank, word, count, freq)| ImageWord {
                        img_id: img.img_id,
                        rank,
                        word,
                        count,
                        freq,
                    })
                })
                .collect();
            write_csv_rows(&dir.join(format!("words-{variant}.csv")), &words)?;
            for (label, class) in analysis.label_names.iter().enumerate() {
                let k = CLASS_WORDS.max(e.top_k);
                by_class.extend(class_ranked(&counts, &data.labels, label as i64, k).map(
                    |(rank, word, count, freq)| VariantClassWord {
                        variant: variant.name().to_string(),
                        class: class.clone(),
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
