//! What each dataset family's words and attribute values are called: the word sets a faithfulness table counts
//! (TExplain paper section 4.1, Faithfulness Test I, and its Waterbirds analogue in section 5.8), the words that
//! name the spurious attribute (the masks stage's place words), and the names of the attribute's two values.
//! Waterbirds' water and land words are the nouns its caption grammar uses ([`super::captions`]); the object
//! setting's object words are the spurious object's caption nouns ([`super::scene::ObjectKind::words`]).
use std::collections::BTreeSet;

use super::captions::{LAND_WORDS, WATER_WORDS};
use super::scene::ObjectKind;
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

/// The nouns of every spurious-object kind (the object setting's attribute words).
pub fn object_words() -> Vec<&'static str> {
    ObjectKind::ALL
        .iter()
        .flat_map(|k| k.words())
        .copied()
        .collect()
}

/// The word sets of a dataset family: water/land words for Waterbirds, apple/cat/dog words for Cats & Apples,
/// the object's words beside water/land for the object setting.
pub fn word_sets(kind: DataKind) -> Vec<WordSet> {
    match kind {
        DataKind::WaterbirdsObject => vec![
            WordSet::new("object", &object_words()),
            WordSet::new("water", &WATER_WORDS),
            WordSet::new("land", &LAND_WORDS),
        ],
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

/// The words that name the spurious attribute, whose maps should cover it: Waterbirds' water and land nouns
/// (after the usual synonym merges they are the canonical words, e.g. `water`, `forest`, `field`), Cats & Apples'
/// apple words, the object setting's object words (`dock`, ...).
pub fn place_words(kind: DataKind) -> BTreeSet<String> {
    let attr_sets: &[&str] = match kind {
        DataKind::Waterbirds => &["water", "land"],
        DataKind::CatsApples => &["apple"],
        DataKind::WaterbirdsObject => &["object"],
    };
    word_sets(kind)
        .into_iter()
        .filter(|set| attr_sets.contains(&set.name.as_str()))
        .flat_map(|set| set.words)
        .collect()
}

/// The words that name the attribute's value 1 (water for Waterbirds, the apple for Cats & Apples, the object for
/// the object setting): the words an explanation should hold where the image carries that value.
pub fn attribute_words(kind: DataKind) -> WordSet {
    let name = match kind {
        DataKind::Waterbirds => "water",
        DataKind::CatsApples => "apple",
        DataKind::WaterbirdsObject => "object",
    };
    word_sets(kind)
        .into_iter()
        .find(|set| set.name == name)
        .expect("every family's word sets hold its attribute's set")
}

/// Names of the attribute values (0 / 1) of a dataset family.
pub fn attr_names(kind: DataKind) -> [&'static str; 2] {
    match kind {
        DataKind::Waterbirds => ["land bg", "water bg"],
        DataKind::CatsApples => ["no apple", "apple"],
        DataKind::WaterbirdsObject => ["no object", "object"],
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
        // The object setting's spurious words are the dock's, not the places'.
        let dock = place_words(DataKind::WaterbirdsObject);
        assert_eq!(
            dock.into_iter().collect::<Vec<_>>(),
            ["dock", "jetty", "pier"]
        );
        let sets = word_sets(DataKind::WaterbirdsObject);
        assert_eq!(
            sets.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            ["object", "water", "land"]
        );
    }
}
