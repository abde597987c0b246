//! The explanations section of `report.html`: word clouds per class and split, the top words with their shares
//! beside their bars, and a few sampled sentences per group.
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::sections::{file_name, pngs};
use crate::data::Split;
use crate::report::html::plots::{bars, BarSeries};
use crate::report::html::{escape, pair, table};

/// Images whose sampled sentences are shown per group.
const SENTENCE_IMAGES_PER_GROUP: usize = 2;

/// One line of `words-by-class.csv`.
struct ClassWord {
    split: String,
    class: String,
    word: String,
    freq: f64,
}

/// `words-by-class.csv` (`split,class,rank,word,count,freq`); `None` for another layout.
fn class_words(path: &Path) -> Result<Option<Vec<ClassWord>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    if lines.next() != Some("split,class,rank,word,count,freq") {
        return Ok(None);
    }
    lines
        .enumerate()
        .map(|(i, line)| {
            let cells: Vec<&str> = line.split(',').collect();
            let bad = || anyhow::anyhow!("{}: line {}: {line:?}", path.display(), i + 2);
            if cells.len() != 6 {
                return Err(bad());
            }
            Ok(ClassWord {
                split: cells[0].to_string(),
                class: cells[1].to_string(),
                word: cells[3].to_string(),
                freq: cells[5].parse().map_err(|_| bad())?,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Word clouds per class and split, the top words with their shares, and a few sampled sentences per group, of
/// the first seed that explained.
pub fn explanations(run: &Path, seeds: &[(u64, PathBuf)]) -> Result<Option<String>> {
    let Some((seed, dir)) = seeds
        .iter()
        .find(|(_, d)| d.join("explain").is_dir() || d.join("clouds").is_dir())
    else {
        return Ok(None);
    };
    let mut out = format!("<p class=\"note\">Seed {seed}.</p>");
    let clouds = pngs(run, &dir.join("clouds"));
    if !clouds.is_empty() {
        out.push_str("<h3>Word clouds</h3><div class=\"grid\">");
        for c in &clouds {
            let _ = write!(
                out,
                "<figure><img src=\"{0}\" alt=\"{1}\" width=\"280\"><figcaption>{1}</figcaption></figure>",
                escape(c),
                escape(file_name(c).trim_end_matches(".png"))
            );
        }
        out.push_str("</div>");
    }
    let words_csv = dir.join("explain/words-by-class.csv");
    if let Some(words) = words_csv
        .is_file()
        .then(|| class_words(&words_csv))
        .transpose()?
        .flatten()
    {
        let mut by: BTreeMap<(String, String), Vec<&ClassWord>> = BTreeMap::new();
        for w in &words {
            by.entry((w.split.clone(), w.class.clone()))
                .or_default()
                .push(w);
        }
        let rows: Vec<Vec<String>> = by
            .iter()
            .map(|((split, class), ws)| {
                let top: Vec<String> = ws
                    .iter()
                    .take(8)
                    .map(|w| format!("{} {:.1} %", w.word, 100.0 * w.freq))
                    .collect();
                vec![split.clone(), class.clone(), top.join(", ")]
            })
            .collect();
        let train: Vec<(&(String, String), &Vec<&ClassWord>)> =
            by.iter().filter(|((s, _), _)| s == "train").collect();
        let mut categories: Vec<String> = Vec::new();
        for (_, ws) in &train {
            for w in ws.iter().take(6) {
                if !categories.contains(&w.word) {
                    categories.push(w.word.clone());
                }
            }
        }
        let series: Vec<BarSeries> = train
            .iter()
            .map(|((_, class), ws)| BarSeries {
                name: class.clone(),
                values: categories
                    .iter()
                    .map(|c| {
                        ws.iter()
                            .find(|w| &w.word == c)
                            .map(|w| (100.0 * w.freq, None))
                    })
                    .collect(),
            })
            .collect();
        let plot = bars(
            "top words per class (training split, % of words)",
            "% of words",
            &categories,
            &series,
            None,
        )?;
        let header = ["Split", "Class", "Top words (share of all words)"]
            .map(String::from)
            .to_vec();
        let _ = write!(
            out,
            "<h3>Top words</h3>{}",
            pair(&plot, &table(&header, &rows, &[false, false, false]))
        );
    }
    out.push_str(&sentences(dir)?);
    Ok(Some(out))
}

/// A few sampled sentences of training images per group (groups from `flags/flags.csv`).
fn sentences(dir: &Path) -> Result<String> {
    let path = dir
        .join("explain")
        .join(crate::explain::sentences::file_name(Split::Train));
    if !path.is_file() {
        return Ok(String::new());
    }
    let mut groups: BTreeMap<i64, String> = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(dir.join("flags/flags.csv")) {
        for line in text.lines().skip(1) {
            let mut cells = line.split(',');
            if let (Some(id), Some(g)) = (cells.next(), cells.next()) {
                if let Ok(id) = id.parse() {
                    groups.insert(id, format!("group {g}"));
                }
            }
        }
    }
    let mut by_group: BTreeMap<String, Vec<(i64, Vec<String>)>> = BTreeMap::new();
    for image in crate::explain::sentences::read(&path)? {
        let group = groups
            .get(&image.img_id)
            .cloned()
            .unwrap_or_else(|| "all images".into());
        let list = by_group.entry(group).or_default();
        if list.len() < SENTENCE_IMAGES_PER_GROUP {
            list.push((image.img_id, image.sentences.into_iter().take(2).collect()));
        }
    }
    let mut out = String::from("<h3>Sampled sentences (training split)</h3>");
    for (group, images) in by_group {
        let _ = write!(out, "<p><strong>{}</strong></p><ul>", escape(&group));
        for (id, sentences) in images {
            let _ = write!(
                out,
                "<li>image {id}: {}</li>",
                escape(&sentences.join(" · "))
            );
        }
        out.push_str("</ul>");
    }
    Ok(out)
}
