//! The flags stage (paper section 4.3, step 3): every training sample's top words, whether it is flagged (its top
//! word is not a class word) and its target word. Output: `seed-<s>/flags/` = `flags.csv` (training-split order),
//! `summary.json` (flag rate, precision/recall against the minority groups and against ERM's errors, and how often
//! the top words name the spurious attribute among the images that carry it and the others); read back
//! through [`Flags`].
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

use super::context::Seed;
use super::erm::Erm;
use super::explain::Explained;
use super::stage::{run_stage, Stage, StageDone, StageKey};
use crate::data::{Dataset, Split};
use crate::flags::{flag, Flag, FlagSummary};
use crate::models::vit::Vit;
use crate::runtime::{set_seed, stage_seed};
use crate::util::{read_csv_rows, read_json, write_csv_rows, write_json};

/// One row of `flags.csv`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct FlagRow {
    img_id: i64,
    group: i64,
    y: i64,
    /// Space-separated, most frequent first.
    top_words: String,
    /// 0 or 1.
    flagged: u8,
    /// Empty when there is none.
    target: String,
}

/// The finished flags stage of a seed.
pub struct Flags {
    pub done: StageDone,
    /// One per training sample, in training-split order.
    pub flags: Vec<Flag>,
}

impl Flags {
    /// Writes `flags.csv` for `flags` (training-split order).
    pub fn write(dir: &Path, train: &Dataset, flags: &[Flag]) -> Result<()> {
        let rows: Vec<FlagRow> = flags
            .iter()
            .enumerate()
            .map(|(i, f)| FlagRow {
                img_id: f.img_id,
                group: train.group(i),
                y: train.y[i],
                top_words: f.top_words.join(" "),
                flagged: u8::from(f.flagged),
                target: f.target.clone().unwrap_or_default(),
            })
            .collect();
        write_csv_rows(&dir.join("flags.csv"), &rows)
    }

    /// Reads `flags.csv` of a finished stage, checking it describes `train` row by row.
    pub fn read(done: StageDone, train: &Dataset) -> Result<Self> {
        let path = done.dir.join("flags.csv");
        let rows: Vec<FlagRow> = read_csv_rows(&path)?;
        if rows.len() != train.len() {
            bail!(
                "{}: {} rows for a training split of {} images",
                path.display(),
                rows.len(),
                train.len()
            );
        }
        let flags = rows
            .into_iter()
            .zip(&train.img_ids)
            .enumerate()
            .map(|(i, (row, &id))| {
                if row.img_id != id {
                    bail!(
                        "{} row {}: img_id {} where the training split has {id}",
                        path.display(),
                        i + 2,
                        row.img_id
                    );
                }
                Ok(Flag {
                    img_id: row.img_id,
                    top_words: row.top_words.split_whitespace().map(String::from).collect(),
                    flagged: row.flagged == 1,
                    target: (!row.target.is_empty()).then_some(row.target),
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { done, flags })
    }

    /// `summary.json` of the stage.
    pub fn summary(&self) -> Result<FlagSummary> {
        read_json(&self.done.dir.join("summary.json"))
    }

    /// Indices of the flagged training samples (TExplain's selection), ascending.
    pub fn flagged(&self) -> Vec<usize> {
        crate::flags::flagged_indices(&self.flags)
    }

    /// As many training indices as are flagged, drawn at random with the seed's selection stream (the Random
    /// baseline's selection), ascending.
    pub fn random(&self, seed: u64) -> Vec<usize> {
        let mut rng = set_seed(stage_seed(seed, "random-selection"));
        crate::flags::random_selection(self.flags.len(), self.flagged().len(), &mut rng)
    }
}

/// Flags the training set from its explanations.
pub fn run(ctx: &Seed, explained: &Explained, erm: &Erm, erm_model: &Vit) -> Result<Flags> {
    let (exp, seed) = (ctx.exp(), ctx.seed);
    let class_words = &exp.config.mitigation.class_words;
    let train = &ctx.splits().train;
    let mut key = StageKey::new(Stage::Flags);
    key.add("seed", &seed)
        .reads("explain", &explained.done.content)
        .reads("erm", &erm.done.content)
        .add("class_words", class_words);
    let done = run_stage(&ctx.dir, Stage::Flags, &key, |dir| {
        let top = explained.image_words(Split::Train)?;
        let flags = (0..train.len())
            .map(|i| {
                let id = train.img_ids[i];
                let words = top.get(&id).cloned().unwrap_or_default();
                let words_of_class = class_words.get(&train.y[i]).with_context(|| {
                    format!("mitigation.class_words: no words for class {}", train.y[i])
                })?;
                let (flagged, target) = flag(&words, words_of_class);
                Ok(Flag {
                    img_id: id,
                    top_words: words,
                    flagged,
                    target,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Flags::write(dir, train, &flags)?;
        let preds = crate::train::predict(erm_model, &train.images, ctx.input(), 256);
        let attribute = crate::data::words::attribute_words(exp.config.data.kind);
        let summary = FlagSummary::new(&flags, train, &preds, &attribute.words);
        let rates = summary.attribute_words.as_ref();
        tracing::info!(
            seed,
            flagged = summary.n_flagged,
            fraction = summary.flagged_fraction,
            attribute_words_carrying = ?rates.and_then(|r| r.carrying.in_top_words),
            attribute_words_without = ?rates.and_then(|r| r.without.in_top_words),
            "training set flagged (and how often its top words name the attribute)"
        );
        write_json(&dir.join("summary.json"), &summary)
    })?;
    Flags::read(done, train)
}
