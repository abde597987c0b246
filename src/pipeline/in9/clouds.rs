//! The clouds stage of the ImageNet-9 analysis (paper Figure 5): a word cloud and a word CSV per category and
//! explained variant, from the explain stage's `words-by-class.csv`, the category's own words in red (its label and
//! `analysis.class_words`, as counted after the synonyms of `explain.words`), and a contact sheet of every category's
//! cloud per variant. A stage of its own so that recolouring re-samples nothing. Output: `seed-<s>/clouds/` =
//! `cloud-<variant>-<class>.png`, `words-<variant>-<class>.csv`, `clouds-<variant>.png`.
use anyhow::Result;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

use super::explain::Explained;
use super::{file_label, SeedRun};
use crate::in9::class_words;
use crate::in9::figures::contact_sheet;
use crate::pipeline::stage::{run_stage, Stage, StageDone, StageKey};
use crate::text::wordcloud::{self, CloudOptions};
use crate::text::words::WordFilter;
use crate::util::write_csv_rows;

/// One row of `words-<variant>-<class>.csv`: a word of the category's cloud.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct CloudWordRow {
    pub rank: usize,
    pub word: String,
    pub count: u64,
    /// Share of all counted words of the category's sentences.
    pub freq: f64,
    /// Drawn in red: a word of the category itself.
    pub class_word: bool,
}

/// A cloud's word: rank, word, count, freq.
type RankedWord = (usize, String, u64, f64);

/// Clouds per row of the contact sheet.
const SHEET_COLUMNS: usize = 4;

/// Draws the clouds of a seed's explanations (or finds them drawn).
pub fn run(ctx: &SeedRun, explained: &Explained) -> Result<StageDone> {
    let (analysis, seed) = (ctx.analysis, ctx.seed);
    let (exp, section) = (analysis.exp, analysis.section);
    let mut key = StageKey::new(Stage::Clouds);
    key.add("seed", &seed)
        .reads("explain", &explained.done.content)
        .add("class_words", &section.class_words)
        .add("words", &exp.config.explain.words);
    run_stage(&ctx.dir, Stage::Clouds, &key, |dir| {
        let filter = WordFilter::new(&exp.config.explain.words)?;
        let mut clouds: BTreeMap<(String, String), Vec<RankedWord>> = BTreeMap::new();
        for row in explained.class_words()? {
            clouds
                .entry((row.variant, row.class))
                .or_default()
                .push((row.rank, row.word, row.count, row.freq));
        }
        for &variant in &section.explain_variants {
            let mut tiles = Vec::new();
            for class in &analysis.label_names {
                let words = clouds
                    .get(&(variant.name().to_string(), class.clone()))
                    .cloned()
                    .unwrap_or_default();
                let extra = section.class_words.get(class).cloned().unwrap_or_default();
                let red = class_words(&filter, class, &extra);
                let rows: Vec<CloudWordRow> = words
                    .iter()
                    .map(|(rank, word, count, freq)| CloudWordRow {
                        rank: *rank,
                        word: word.clone(),
                        count: *count,
                        freq: *freq,
                        class_word: red.contains(word),
                    })
                    .collect();
                let stem = format!("{variant}-{}", file_label(class));
                write_csv_rows(&dir.join(format!("words-{stem}.csv")), &rows)?;
                let weights: Vec<(String, f64)> =
                    words.iter().map(|(_, w, _, f)| (w.clone(), *f)).collect();
                let highlighted: HashSet<String> = red.iter().cloned().collect();
                let full = CloudOptions {
                    title: Some(format!("{class}: {variant} (seed {seed})")),
                    ..Default::default()
                };
                wordcloud::save_png(
                    &wordcloud::render(&weights, &highlighted, &full),
                    &dir.join(format!("cloud-{stem}.png")),
                )?;
                let small = CloudOptions {
                    width: 300,
                    height: 200,
                    min_font: 9.0,
                    max_font: 44.0,
                    max_words: 25,
                    title: Some(class.clone()),
                    title_font: 15.0,
                    ..Default::default()
                };
                tiles.push(wordcloud::render(&weights, &highlighted, &small));
            }
            let sheet = contact_sheet(
                &tiles,
                SHEET_COLUMNS,
                &format!(
                    "What the classifier's features say per category ({variant} images, seed {seed}; own words in red)"
                ),
            );
            wordcloud::save_png(&sheet, &dir.join(format!("clouds-{variant}.png")))?;
        }
        Ok(())
    })
}
