//! What each dataset family's words and attribute values are called: the word sets a faithfulness table counts
//! (TExplain paper section 4.1, Faithfulness Test I, and its Waterbirds analogue in section 5.8), the words that
//! name the spurious attribute (the masks stage's place words), and the names of the attribute's two values.
//! Waterbirds' water and land words are the nouns its caption grammar uses ([`super::captions`]); the object
//! setting's object words are the spurious object's caption nouns ([`super::scene::ObjectKind::words`]).
use std::collections::{BTreeMap, BTreeSet};

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

/// The words an attribute word score (issue 24, Build 4) sets against each other for a `target` word: the target
/// concept (the `synonyms` entry the word belongs to, canonical word first, or the word alone) and the competing
/// place words: the words of the family's other word sets when the concept belongs to one (a water target against
/// the land words and vice versa; apple against cat and dog), every word set's words otherwise; each set widened
/// by the synonyms of its words, the target's own words left out. `synonyms`: canonical word -> its synonyms.
pub fn attribute_concept(
    kind: DataKind,
    synonyms: &BTreeMap<String, Vec<String>>,
    target: &str,
) -> (Vec<String>, Vec<String>) {
    let target = target.to_lowercase();
    let group = |word: &str| -> Vec<String> {
        synonyms
            .iter()
            .find(|(c, s)| c.to_lowercase() == word || s.iter().any(|w| w.to_lowercase() == word))
            .map(|(c, s)| {
                let mut out = vec![c.to_lowercase()];
                out.extend(s.iter().map(|w| w.to_lowercase()));
                out
            })
            .unwrap_or_else(|| vec![word.to_string()])
    };
    let mut own = Vec::new();
    for w in group(&target) {
        if !own.contains(&w) {
            own.push(w);
        }
    }
    let sets = word_sets(kind);
    let widened: Vec<BTreeSet<String>> = sets
        .iter()
        .map(|set| set.words.iter().flat_map(|w| group(w)).collect())
        .collect();
    let holds_target = |s: &BTreeSet<String>| own.iter().any(|w| s.contains(w));
    let any_holds = widened.iter().any(holds_target);
    let competing: BTreeSet<String> = widened
        .iter()
        .filter(|s| !any_holds || !holds_target(s))
        .flatten()
        .filter(|w| !own.contains(w))
        .cloned()
        .collect();
    (own, competing.into_iter().collect())
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

    #[test]
    fn attribute_concepts_set_water_against_land() {
        let synonyms: BTreeMap<String, Vec<String>> = [
            (
                "water",
                &["water", "lake", "ocean", "sea", "pond", "waves"][..],
            ),
            (
                "forest",
                &["forest", "woods", "trees", "bamboo", "grove"][..],
            ),
            ("field", &["field", "meadow", "grass", "grassy"][..]),
            ("bird", &["bird", "duck"][..]),
        ]
        .into_iter()
        .map(|(c, s)| (c.to_string(), s.iter().map(|w| w.to_string()).collect()))
        .collect();
        let land = [
            "bamboo", "field", "forest", "grass", "grassy", "grove", "meadow", "trees", "woods",
        ];
        let (own, competing) = attribute_concept(DataKind::Waterbirds, &synonyms, "water");
        assert_eq!(own, ["water", "lake", "ocean", "sea", "pond", "waves"]);
        assert_eq!(competing, land);
        let (own, competing) = attribute_concept(DataKind::Waterbirds, &synonyms, "field");
        assert_eq!(own, ["field", "meadow", "grass", "grassy"]);
        assert_eq!(
            competing,
            ["lake", "ocean", "pond", "sea", "water", "waves"]
        );
        // A word of no set: its group against every place word.
        let (own, competing) = attribute_concept(DataKind::Waterbirds, &synonyms, "duck");
        assert_eq!(own, ["bird", "duck"]);
        assert_eq!(competing.len(), 6 + land.len());
        let (own, competing) = attribute_concept(DataKind::CatsApples, &BTreeMap::new(), "apple");
        assert_eq!(own, ["apple"]);
        assert_eq!(competing, ["cat", "cats", "dog", "dogs", "kitten", "puppy"]);
    }
}
