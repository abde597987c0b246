//! The summary stage of the ImageNet-9 analysis: per category, what its cloud says (the top word, the share of its
//! own words, its top place word and that word's share, paper Figure 5) beside how much the classifier leans on its
//! background (Only-BG-T accuracy, the share of its Only-BG-T images predicted as a category of the same habitat,
//! the category's BG-gap, what it predicts from the background alone, paper Figure 6), the cloud of its Only-BG-T
//! images when explained (what the explanation says with the object hidden), the category's habitat in the data
//! when the corpus records backgrounds (`upstream_metadata.csv` beside the challenge folder), and Spearman's ρ across
//! categories between the cloud measures and the reliance measures ([`crate::in9`]). The place words are
//! `analysis.place_words`, or the upstream caption grammar's place nouns. Output: `seed-<s>/summary/` =
//! `summary.json` ([`AnalysisSummary`]), `table.md`, `relation.png` (top place word share against the share of
//! Only-BG-T images read as the habitat, per category with one).
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::explain::Explained;
use super::predictions::Predictions;
use super::SeedRun;
use crate::data::bg_challenge::Variant;
use crate::data::upstream_captions::place_nouns;
use crate::data::upstream_scene::UpstreamBackground;
use crate::in9::figures::scatter;
use crate::in9::{
    background_shares, class_words, habitat_mates, habitats, place_word_map, read_cloud, summarize,
    summary_markdown, AnalysisSummary, CategoryRow,
};
use crate::pipeline::stage::{run_stage, Stage, StageDone, StageKey};
use crate::text::wordcloud::save_png;
use crate::text::words::WordFilter;
use crate::util::{read_json, sha256_file, write_atomic, write_json};

/// The metadata file of a synthetic corpus, beside its `bg_challenge/` folder.
pub const METADATA: &str = "upstream_metadata.csv";

/// The finished summary stage of a seed.
pub struct Summary {
    pub done: StageDone,
}

impl Summary {
    pub fn summary(&self) -> Result<AnalysisSummary> {
        read_json(&self.done.dir.join("summary.json"))
    }
}

/// Place -> its words: the configured ones, or the upstream caption grammar's place nouns.
pub fn place_words(configured: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
    if !configured.is_empty() {
        return configured.clone();
    }
    UpstreamBackground::ALL
        .iter()
        .map(|b| {
            (
                b.name().to_string(),
                place_nouns(*b).iter().map(|w| w.to_string()).collect(),
            )
        })
        .collect()
}

/// `upstream_metadata.csv` beside the challenge folder, when there is one.
fn metadata_path(challenge: &Path) -> Option<PathBuf> {
    challenge
        .parent()
        .map(|p| p.join(METADATA))
        .filter(|p| p.is_file())
}

/// `<class folder>/<file name>` -> background of the challenge's images, from the corpus' metadata.
fn challenge_backgrounds(path: &Path) -> Result<BTreeMap<String, String>> {
    let mut rdr =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let headers = rdr
        .headers()
        .with_context(|| format!("reading {}", path.display()))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h == name)
            .with_context(|| format!("{}: no `{name}` column", path.display()))
    };
    let (split, file, background) = (col("split")?, col("filename")?, col("background")?);
    let mut out = BTreeMap::new();
    for (i, row) in rdr.records().enumerate() {
        let row = row.with_context(|| format!("{} row {}", path.display(), i + 2))?;
        if row.get(split) != Some("bg_challenge") {
            continue;
        }
        let f = Path::new(row.get(file).unwrap_or(""));
        let (Some(name), Some(class)) = (f.file_name(), f.parent().and_then(|p| p.file_name()))
        else {
            continue;
        };
        out.insert(
            format!("{}/{}", class.to_string_lossy(), name.to_string_lossy()),
            row.get(background).unwrap_or("").to_string(),
        );
    }
    Ok(out)
}

/// Relates the seed's clouds to the classifier's predictions (or finds it done).
pub fn run(ctx: &SeedRun, explained: &Explained, predictions: &Predictions) -> Result<Summary> {
    let (analysis, seed) = (ctx.analysis, ctx.seed);
    let (exp, section) = (analysis.exp, analysis.section);
    let places = place_words(&section.place_words);
    let metadata = metadata_path(&analysis.challenge);
    let metadata_digest = match &metadata {
        Some(p) => Some(sha256_file(p)?.0),
        None => None,
    };
    let mut key = StageKey::new(Stage::Summary);
    key.add("seed", &seed)
        .reads("explain", &explained.done.content)
        .reads("predictions", &predictions.done.content)
        .add("class_words", &section.class_words)
        .add("place_words", &places)
        .add("words", &exp.config.explain.words)
        .add("metadata", &metadata_digest);
    let done = run_stage(&ctx.dir, Stage::Summary, &key, |dir| {
        let filter = WordFilter::new(&exp.config.explain.words)?;
        let place_map = place_word_map(&filter, &places);
        let variant: Variant = section.explain_variants[0];
        // The clouds of the read variant, and of Only-BG-T when it was explained too.
        let mut clouds: BTreeMap<(String, String), Vec<(String, f64)>> = BTreeMap::new();
        for row in explained.class_words()? {
            clouds
                .entry((row.variant, row.class))
                .or_default()
                .push((row.word, row.freq));
        }
        let hidden = (variant != Variant::OnlyBgT
            && section.explain_variants.contains(&Variant::OnlyBgT))
        .then_some(Variant::OnlyBgT);
        // The backgrounds of the explained images, per category, when the corpus records them.
        let backgrounds = match &metadata {
            Some(p) => Some(challenge_backgrounds(p)?),
            None => None,
        };
        let mut image_backgrounds: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut pool = BTreeSet::new();
        if let Some(bgs) = &backgrounds {
            pool.extend(bgs.values().cloned());
            for img in explained.images(variant)? {
                if let Some(b) = bgs.get(&img.file) {
                    image_backgrounds
                        .entry(img.class)
                        .or_default()
                        .push(b.clone());
                }
            }
        }
        // Every category's habitats first: the Only-BG-T predictions are read against them.
        let class_habitats: BTreeMap<String, Vec<String>> = image_backgrounds
            .iter()
            .map(|(c, b)| {
                let shares = background_shares(b.iter().map(String::as_str));
                (c.clone(), habitats(&shares, pool.len()))
            })
            .collect();
        let p = predictions.summary()?;
        let mut rows = Vec::new();
        for class in &analysis.label_names {
            let extra = section.class_words.get(class).cloned().unwrap_or_default();
            let red = class_words(&filter, class, &extra);
            let cloud_of = |v: Variant| {
                clouds
                    .get(&(v.name().to_string(), class.clone()))
                    .cloned()
                    .unwrap_or_default()
            };
            let words = cloud_of(variant);
            let cloud = read_cloud(&words, &red, &place_map);
            let only_bg_t_cloud = hidden.map(|v| read_cloud(&cloud_of(v), &red, &place_map));
            let shares = image_backgrounds
                .get(class)
                .map(|b| background_shares(b.iter().map(String::as_str)));
            let habitat = shares.as_ref().map(|s| habitats(s, pool.len()));
            let habitat_share = match (&shares, &habitat) {
                (Some(s), Some(h)) => Some(h.iter().map(|b| s[b]).sum::<f64>()),
                _ => None,
            };
            let habitat_word_freq = habitat.as_ref().map(|h| {
                words
                    .iter()
                    .filter(|(w, _)| !red.contains(w))
                    .filter(|(w, _)| {
                        place_map
                            .get(w)
                            .is_some_and(|ps| h.iter().any(|b| ps.contains(b)))
                    })
                    .map(|(_, f)| f)
                    .sum::<f64>()
            });
            let cloud_names_habitat = habitat
                .as_ref()
                .filter(|h| !h.is_empty())
                .map(|h| cloud.top_place_names.iter().any(|n| h.contains(n)));
            let c = p.class(class);
            let acc = |v: Variant| c.and_then(|c| c.accuracy.get(v.name()).copied());
            let predicted = c.map(|c| c.only_bg_t_predicted.clone()).unwrap_or_default();
            let mates = habitat
                .as_ref()
                .and_then(|h| habitat_mates(&predicted, h, &class_habitats));
            rows.push(CategoryRow {
                class: class.clone(),
                class_words: red.into_iter().collect(),
                cloud,
                only_bg_t_cloud,
                habitats: habitat,
                habitat_share,
                habitat_word_freq,
                cloud_names_habitat,
                original: acc(Variant::Original),
                only_bg_t: acc(Variant::OnlyBgT),
                only_bg_t_top_k: c
                    .and_then(|c| c.accuracy_top_k.get(Variant::OnlyBgT.name()).copied()),
                mixed_same: acc(Variant::MixedSame),
                mixed_rand: acc(Variant::MixedRand),
                bg_gap: c.and_then(|c| c.bg_gap),
                only_bg_t_predicted: predicted,
                only_bg_t_habitat_mates: mates.map(|m| m.0),
                habitat_mates_chance: mates.map(|m| m.1),
            });
        }
        let summary = summarize(seed, variant.name(), rows);
        write_json(&dir.join("summary.json"), &summary)?;
        write_atomic(&dir.join("table.md"), summary_markdown(&summary))?;
        let points: Vec<(String, f64, f64)> = summary
            .rows
            .iter()
            .map(|r| {
                (
                    r.class.clone(),
                    r.cloud.top_place_freq,
                    r.only_bg_t_habitat_mates.unwrap_or(f64::NAN),
                )
            })
            .collect();
        let rho = summary
            .correlations
            .iter()
            .find(|c| c.x == "top_place_freq" && c.y == "only_bg_t_habitat_mates")
            .and_then(|c| c.rho);
        let title = format!(
            "Per category: the cloud's top place word vs Only-BG-T read as the habitat (ρ {})",
            rho.map_or("–".into(), |r| format!("{r:+.2}"))
        );
        save_png(
            &scatter(
                &points,
                "top place word share of the category's cloud",
                "Only-BG-T images predicted as a category of its habitat",
                &title,
            ),
            &dir.join("relation.png"),
        )
    })?;
    Ok(Summary { done })
}
