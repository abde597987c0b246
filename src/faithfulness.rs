//! Faithfulness of explanations (TExplain paper section 4.1, Faithfulness Test I, and its Waterbirds analogue in
//! section 5.8): do the words of a finished run's sentences follow what the image shows?
//!
//! From a run's sampled sentences and the dataset's `metadata.csv`, [`share_table`] counts, per
//! (split, class, attribute value), the share of sentences that contain a word of each word set (the dataset
//! family's, from [`crate::data::words`]):
//! - Waterbirds: water words vs land words for water- and land-background images (a classifier that uses the
//!   background is explained with the background's words, whatever the bird);
//! - Cats & Apples: apple words for cats and dogs with and without an apple (a classifier that learned "apple =
//!   cat" is explained with "apple" on cats, even on test cats without an apple).
//!
//! `texplain faithfulness <run-dir>` (`pipeline::faithfulness`) prints the tables of a run as markdown.
use anyhow::{bail, Result};
use std::collections::{BTreeMap, HashMap};

use crate::data::words::WordSet;

/// img_id -> (y, attribute).
pub type Labels = HashMap<i64, (i64, i64)>;

/// One row of the table: images of one class (or all) with one attribute value (or all) in one split.
#[derive(Debug, Clone, PartialEq)]
pub struct ShareRow {
    pub split: String,
    /// Class name, or `all`.
    pub class: String,
    /// Attribute value name, or `all`.
    pub attr: String,
    pub images: usize,
    pub sentences: usize,
    /// Per word set (in the given order): share of the sentences that mention it.
    pub shares: Vec<f64>,
}

/// Lower-cased alphanumeric words of a sentence, after [`crate::text::words::normalise`].
fn words_of(sentence: &str) -> Vec<String> {
    crate::text::words::normalise(sentence)
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Shares of sentences mentioning each word set, per (class, attribute) cell, per attribute over classes, per
/// class over attributes and overall. `labels` maps img_id to (y, attribute); a sentence of an unknown image is
/// an error (the run and the dataset do not match).
pub fn share_table(
    split: &str,
    sentences: &[(i64, String)],
    labels: &Labels,
    sets: &[WordSet],
    class_names: [&str; 2],
    attr_names: [&str; 2],
) -> Result<Vec<ShareRow>> {
    // (class or -1 for all, attr or -1 for all) -> (images, sentences, hits per set)
    type Cell = (std::collections::BTreeSet<i64>, usize, Vec<usize>);
    let mut cells: BTreeMap<(i64, i64), Cell> = BTreeMap::new();
    for (id, sentence) in sentences {
        let Some(&(y, a)) = labels.get(id) else {
            bail!("sentence of img_id {id} ({split}): no such image in the dataset's metadata.csv");
        };
        if !(0..2).contains(&y) || !(0..2).contains(&a) {
            bail!("img_id {id}: y {y} / attribute {a} are not binary");
        }
        let words = words_of(sentence);
        let hits: Vec<bool> = sets
            .iter()
            .map(|s| words.iter().any(|w| s.words.contains(w)))
            .collect();
        for key in [(y, a), (-1, a), (y, -1), (-1, -1)] {
            let cell = cells
                .entry(key)
                .or_insert_with(|| (Default::default(), 0, vec![0; sets.len()]));
            cell.0.insert(*id);
            cell.1 += 1;
            for (c, &h) in cell.2.iter_mut().zip(&hits) {
                *c += h as usize;
            }
        }
    }
    let name = |i: i64, names: [&str; 2]| {
        if i < 0 {
            "all".to_string()
        } else {
            names[i as usize].to_string()
        }
    };
    // Cells first, then per-attribute and per-class margins, then the total.
    let mut keys: Vec<(i64, i64)> = cells.keys().copied().collect();
    keys.sort_by_key(|&(c, a)| ((c < 0) as u8 + 2 * (a < 0) as u8, c, a));
    Ok(keys
        .into_iter()
        .map(|k| {
            let (ids, n, hits) = &cells[&k];
            ShareRow {
                split: split.to_string(),
                class: name(k.0, class_names),
                attr: name(k.1, attr_names),
                images: ids.len(),
                sentences: *n,
                shares: hits.iter().map(|&h| h as f64 / *n as f64).collect(),
            }
        })
        .collect())
}

/// The rows as a markdown table.
pub fn markdown(rows: &[ShareRow], sets: &[WordSet]) -> String {
    let mut out = String::from("| split | class | attribute | images | sentences |");
    for s in sets {
        out.push_str(&format!(" {} words |", s.name));
    }
    out.push_str("\n|---|---|---|---:|---:|");
    out.push_str(&"---:|".repeat(sets.len()));
    out.push('\n');
    for r in rows {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |",
            r.split, r.class, r.attr, r.images, r.sentences
        ));
        for s in &r.shares {
            out.push_str(&format!(" {:.3} |", s));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::words::{attr_names, word_sets};
    use crate::data::DataKind;

    fn tiny() -> (Vec<(i64, String)>, Labels) {
        // img 1: landbird on water, img 2: waterbird on land, img 3: waterbird on water.
        let labels = HashMap::from([(1, (0, 1)), (2, (1, 0)), (3, (1, 1))]);
        let sentences = [
            (1, "a small bird on the lake"),
            (1, "waves, and a grey sky"),
            (2, "a bird in the forest"),
            (2, "tall trees by the lake."),
            (3, "the Ocean under clouds"),
            (3, "a duck"),
        ]
        .into_iter()
        .map(|(i, s)| (i, s.to_string()))
        .collect();
        (sentences, labels)
    }

    #[test]
    fn shares_per_cell_and_margin() {
        let (sentences, labels) = tiny();
        let sets = word_sets(DataKind::Waterbirds);
        let rows = share_table(
            "test",
            &sentences,
            &labels,
            &sets,
            ["landbird", "waterbird"],
            attr_names(DataKind::Waterbirds),
        )
        .unwrap();
        let get = |class: &str, attr: &str| {
            rows.iter()
                .find(|r| r.class == class && r.attr == attr)
                .unwrap_or_else(|| panic!("no row {class}/{attr}"))
        };
        // (class, attr, images, sentences, water share, land share)
        let table = [
            ("landbird", "water bg", 1, 2, 1.0, 0.0),
            ("waterbird", "land bg", 1, 2, 0.5, 1.0),
            ("waterbird", "water bg", 1, 2, 0.5, 0.0),
            ("all", "water bg", 2, 4, 0.75, 0.0),
            ("all", "land bg", 1, 2, 0.5, 1.0),
            ("waterbird", "all", 2, 4, 0.5, 0.5),
            ("all", "all", 3, 6, 4.0 / 6.0, 2.0 / 6.0),
        ];
        for (class, attr, images, n, water, land) in table {
            let r = get(class, attr);
            assert_eq!((r.images, r.sentences), (images, n), "{class}/{attr}");
            assert!((r.shares[0] - water).abs() < 1e-12, "{class}/{attr} water");
            assert!((r.shares[1] - land).abs() < 1e-12, "{class}/{attr} land");
        }
        // Cells come before margins, the total last.
        assert_eq!(
            rows.last().map(|r| (&*r.class, &*r.attr)),
            Some(("all", "all"))
        );
        assert_eq!(rows.len(), 3 + 2 + 2 + 1);
        let md = markdown(&rows, &sets);
        assert!(
            md.contains("| test | all | all | 3 | 6 | 0.667 | 0.333 |"),
            "{md}"
        );
    }

    #[test]
    fn whole_words_only_and_unknown_images_fail() {
        let labels = HashMap::from([(1, (1, 1))]);
        let sets = vec![WordSet::new("sea", &["sea"])];
        let sentences = vec![(1, "seagulls near the seashore".to_string())];
        let rows = share_table("t", &sentences, &labels, &sets, ["a", "b"], ["x", "y"]).unwrap();
        assert_eq!(rows[0].shares, vec![0.0]);
        let err = share_table(
            "t",
            &[(9, "sea".into())],
            &labels,
            &sets,
            ["a", "b"],
            ["x", "y"],
        );
        assert!(err.unwrap_err().to_string().contains("img_id 9"));
    }
}
