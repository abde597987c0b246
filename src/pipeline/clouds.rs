//! The clouds stage (paper Figure 2 style): one word cloud per class x explained split, from the explain stage's
//! `words-by-class.csv`, the class's own words (`mitigation.class_words`) in red. A stage of its own so that
//! recolouring the clouds never re-samples the explanations. Output: `seed-<s>/clouds/cloud-<split>-<class>.png`.
use anyhow::Result;
use std::collections::{BTreeMap, HashSet};

use super::context::Seed;
use super::explain::{class_names, Explained};
use super::stage::{run_stage, Stage, StageDone, StageKey};
use crate::data::Split;
use crate::text::wordcloud;

/// Draws the clouds of a seed's explanations.
pub fn run(ctx: &Seed, explained: &Explained) -> Result<StageDone> {
    let (exp, seed) = (ctx.exp(), ctx.seed);
    let class_words = &exp.config.mitigation.class_words;
    let mut key = StageKey::new(Stage::Clouds);
    key.add("seed", &seed)
        .reads("explain", &explained.done.content)
        .add("class_words", class_words);
    run_stage(&ctx.dir, Stage::Clouds, &key, |dir| {
        let mut clouds: BTreeMap<(Split, String), Vec<(String, f64)>> = BTreeMap::new();
        for row in explained.class_words()? {
            clouds
                .entry((row.split, row.class))
                .or_default()
                .push((row.word, row.freq));
        }
        let names = class_names(exp);
        for ((split, class), words) in clouds {
            let highlighted: HashSet<String> = names
                .iter()
                .position(|n| *n == class)
                .and_then(|y| class_words.get(&(y as i64)))
                .into_iter()
                .flatten()
                .cloned()
                .collect();
            let options = wordcloud::CloudOptions {
                title: Some(format!("seed {seed}: {class}, {split}")),
                ..Default::default()
            };
            let cloud = wordcloud::render(&words, &highlighted, &options);
            wordcloud::save_png(&cloud, &dir.join(format!("cloud-{split}-{class}.png")))?;
        }
        Ok(())
    })
}
