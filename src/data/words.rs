//! What each dataset family's words and attribute values are called: the word sets a faithfulness table counts
//! (TExplain paper section 4.1, Faithfulness Test I, and its Waterbirds analogue in section 5.8), the words that
//! name the spurious attribute (the masks stage's place words), and the names of the attribute's two values.
//! Waterbirds' water and land words are the nouns its caption grammar uses ([`super::captions`]).
use std::collections::BTreeSet;

use super::captions::{LAND_WORDS, WATER_WORDS};
use super::DataKind;

/// A named set of words; a sentence "mentions" the set when one of its words is a member.
#[derive(Debug, Clone, PartialEq)]
pub struct WordSet {
    pub name: String,
    pub words: Vec<String>,
}

impl WordSet {
    pub fn new(name: &str, words: &[&str]) -> Self {
        Self {
            name: name.to_string(),
            words: words.iter().map(|w| w.to_lowercase()).collect(),
        }
    }
}

/// The word sets of a dataset family: water/land words for Waterbirds, apple/cat/dog words for Cats & Apples.
pub fn word_sets(kind: DataKind) -> Vec<WordSet> {
    match kind {
        DataKind::Waterbirds => vec![
            WordSet::new("water", &WATER_WORDS),
            WordSet::new("land", &LAND_WORDS),
        ],
        DataKind::CatsApples => vec![
            WordSet::new("apple", &["apple", "apples"]),
            WordSet::new("cat", &["cat", "cats", "kitten"]),
            WordSet::new("dog", &["dog", "dogs", "puppy"]),
        ],
    }
}

/// The words that name the spurious attribute, whose maps should cover the background: Waterbirds' water and
/// land nouns (after the usual synonym merges they are the canonical words, e.g. `water`, `forest`, `field`),
/// Cats & Apples' apple words.
pub fn place_words(kind: DataKind) -> BTreeSet<String> {
    word_sets(kind)
        .into_iter()
        .filter(|set| matches!(set.name.as_str(), "water" | "land" | "apple"))
        .flat_map(|set| set.words)
        .collect()
}

/// Names of the attribute values (0 / 1) of a dataset family.
pub fn attr_names(kind: DataKind) -> [&'static str; 2] {
    match kind {
        DataKind::Waterbirds => ["land bg", "water bg"],
        DataKind::CatsApples => ["no apple", "apple"],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_words_are_the_attribute_sets_only() {
        let water = place_words(DataKind::Waterbirds);
        assert!(water.contains("water") && water.contains("forest"));
        let apples = place_words(DataKind::CatsApples);
        assert_eq!(apples.into_iter().collect::<Vec<_>>(), ["apple", "apples"]);
    }
}
