//! Dominant words of a set of sentences (paper section 2, "dominant words"; section 4.3 uses the top word per image
//! to flag samples). Sentences are lower-cased, split into words, stripped of punctuation and stopwords, optionally
//! mapped to a canonical synonym, and counted.
//!
//! Counting rule: **every occurrence** counts (term frequency over the sentence set), as word clouds do
//! (`wordcloud.WordCloud.process_text`); a word repeated within one sentence counts each time. `freq` is a word's
//! share of all kept word occurrences in the set, so the frequencies of a set sum to 1.
//!
//! Tokenisation rule: a word is a maximal run of alphanumeric characters and apostrophes; apostrophes at its ends
//! are trimmed, a possessive `'s` is dropped (`bird's` -> `bird`), remaining apostrophes are kept (`don't`), so NLTK
//! stopwords like `don't` match. Words without a letter (numbers) and one-character words are dropped, as in
//! word-cloud tools; everything else (including `-` and `_`) separates words.
//!
//! Normalisation first ([`normalise`]): a byte-level language model writes control characters (newlines, tabs,
//! `\r`, ...) and U+FFFD where a token ended inside a UTF-8 sequence; control characters become spaces, runs of
//! whitespace collapse to one space, and U+FFFD is dropped (so `bi\u{FFFD}rd` counts as `bird`).
//!
//! Aggregation (per class × split) is a plain sum of per-image counters ([`WordCounter::merge`]).
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// NLTK's English stopword list (`nltk.corpus.stopwords.words("english")`, the classic 179-word version).
#[rustfmt::skip]
pub const ENGLISH_STOPWORDS: &[&str] = &[
    "i", "me", "my", "myself", "we", "our", "ours", "ourselves", "you", "you're", "you've", "you'll", "you'd",
    "your", "yours", "yourself", "yourselves", "he", "him", "his", "himself", "she", "she's", "her", "hers",
    "herself", "it", "it's", "its", "itself", "they", "them", "their", "theirs", "themselves", "what", "which",
    "who", "whom", "this", "that", "that'll", "these", "those", "am", "is", "are", "was", "were", "be", "been",
    "being", "have", "has", "had", "having", "do", "does", "did", "doing", "a", "an", "the", "and", "but", "if",
    "or", "because", "as", "until", "while", "of", "at", "by", "for", "with", "about", "against", "between", "into",
    "through", "during", "before", "after", "above", "below", "to", "from", "up", "down", "in", "out", "on", "off",
    "over", "under", "again", "further", "then", "once", "here", "there", "when", "where", "why", "how", "all",
    "any", "both", "each", "few", "more", "most", "other", "some", "such", "no", "nor", "not", "only", "own",
    "same", "so", "than", "too", "very", "s", "t", "can", "will", "just", "don", "don't", "should", "should've",
    "now", "d", "ll", "m", "o", "re", "ve", "y", "ain", "aren", "aren't", "couldn", "couldn't", "didn", "didn't",
    "doesn", "doesn't", "hadn", "hadn't", "hasn", "hasn't", "haven", "haven't", "isn", "isn't", "ma", "mightn",
    "mightn't", "mustn", "mustn't", "needn", "needn't", "shan", "shan't", "shouldn", "shouldn't", "wasn", "wasn't",
    "weren", "weren't", "won", "won't", "wouldn", "wouldn't",
];

/// Word-processing options from the experiment config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WordConfig {
    /// Stopwords on top of [`ENGLISH_STOPWORDS`] (e.g. "image", "picture", "photo").
    pub extra_stopwords: Vec<String>,
    /// canonical word -> its synonyms, e.g. `water: [water, lake, ocean, sea, pond]`; each synonym counts as the
    /// canonical word. The canonical word always maps to itself.
    pub synonyms: BTreeMap<String, Vec<String>>,
}

/// Errors in word processing: a bad word configuration.
#[derive(Debug, thiserror::Error)]
pub enum WordsError {
    #[error("synonym `{word}` is listed under both `{first}` and `{second}`")]
    AmbiguousSynonym {
        word: String,
        first: String,
        second: String,
    },
    #[error("synonym group `{canonical}`: `{word}` is not a single word after normalisation")]
    BadSynonym { canonical: String, word: String },
}

/// Identity of the word rules, for stage keys: a change to [`normalise`] or [`split_words`] changes every count.
pub const NORMALISATION: &str =
    "words-v2: control chars to space, whitespace collapsed, U+FFFD dropped";

/// A sentence as words are counted from it: control characters become spaces, runs of whitespace collapse to
/// one space (none at the ends), and the replacement character U+FFFD (a partial UTF-8 sequence) is dropped.
pub fn normalise(sentence: &str) -> String {
    let mut out = String::with_capacity(sentence.len());
    let mut space = false;
    for c in sentence.chars() {
        if c == char::REPLACEMENT_CHARACTER {
            continue;
        }
        if c.is_control() || c.is_whitespace() {
            space = true;
            continue;
        }
        if space && !out.is_empty() {
            out.push(' ');
        }
        space = false;
        out.push(c);
    }
    out
}

/// Split `sentence` into normalised words (lower-case, punctuation stripped), before stopword/synonym handling.
pub fn split_words(sentence: &str) -> Vec<String> {
    let lower = normalise(sentence).to_lowercase();
    lower
        // Typographic apostrophes count as apostrophes.
        .split(|c: char| !(c.is_alphanumeric() || c == '\'' || c == '’'))
        .filter_map(|raw| {
            let w = raw.replace('’', "'");
            let w = w.trim_matches('\'');
            let w = w.strip_suffix("'s").unwrap_or(w);
            (w.chars().count() >= 2 && w.chars().any(char::is_alphabetic)).then(|| w.to_string())
        })
        .collect()
}

/// Stopword removal and synonym mapping, built once from a [`WordConfig`].
#[derive(Debug, Clone)]
pub struct WordFilter {
    stopwords: BTreeSet<String>,
    canonical: HashMap<String, String>,
}

impl WordFilter {
    /// Validate `cfg` (a synonym may belong to one group only, and must be one word) and build the filter.
    pub fn new(cfg: &WordConfig) -> Result<Self, WordsError> {
        let mut stopwords: BTreeSet<String> =
            ENGLISH_STOPWORDS.iter().map(|s| s.to_string()).collect();
        for w in &cfg.extra_stopwords {
            stopwords.extend(split_words(w));
        }
        let mut canonical: HashMap<String, String> = HashMap::new();
        for (canon, syns) in &cfg.synonyms {
            let one_word = |w: &str| -> Result<String, WordsError> {
                match split_words(w).as_slice() {
                    [single] => Ok(single.clone()),
                    _ => Err(WordsError::BadSynonym {
                        canonical: canon.clone(),
                        word: w.to_string(),
                    }),
                }
            };
            let c = one_word(canon)?;
            for s in std::iter::once(canon).chain(syns) {
                let s = one_word(s)?;
                match canonical.get(&s) {
                    Some(prev) if *prev != c => {
                        return Err(WordsError::AmbiguousSynonym {
                            word: s,
                            first: prev.clone(),
                            second: c,
                        })
                    }
                    _ => {
                        canonical.insert(s, c.clone());
                    }
                }
            }
        }
        Ok(Self {
            stopwords,
            canonical,
        })
    }

    /// The counted words of one sentence: split, stopwords removed, synonyms mapped to their canonical word.
    /// A stopword is checked before synonym mapping, so a word listed as a synonym is never dropped by it.
    pub fn words(&self, sentence: &str) -> Vec<String> {
        split_words(sentence)
            .into_iter()
            .filter_map(|w| {
                if let Some(c) = self.canonical.get(&w) {
                    Some(c.clone())
                } else if self.stopwords.contains(&w) {
                    None
                } else {
                    Some(w)
                }
            })
            .collect()
    }

    /// Is `word` (already normalised) a stopword?
    pub fn is_stopword(&self, word: &str) -> bool {
        self.stopwords.contains(word)
    }
}

/// Word occurrence counts over a set of sentences (one image's explanations, or a class × split aggregate).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WordCounter {
    /// word -> occurrences
    pub counts: BTreeMap<String, u64>,
    /// Sentences added.
    pub n_sentences: u64,
}

impl WordCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Count the words of one sentence (every occurrence).
    pub fn add_sentence(&mut self, filter: &WordFilter, sentence: &str) {
        self.n_sentences += 1;
        for w in filter.words(sentence) {
            *self.counts.entry(w).or_default() += 1;
        }
    }

    /// A counter over `sentences`.
    pub fn from_sentences<S: AsRef<str>>(filter: &WordFilter, sentences: &[S]) -> Self {
        let mut c = Self::new();
        for s in sentences {
            c.add_sentence(filter, s.as_ref());
        }
        c
    }

    /// Add another counter's counts and sentences (aggregation over images is a plain sum).
    pub fn merge(&mut self, other: &WordCounter) {
        self.n_sentences += other.n_sentences;
        for (w, &n) in &other.counts {
            *self.counts.entry(w.clone()).or_default() += n;
        }
    }

    /// Total kept word occurrences.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }
}

/// The `k` most frequent words as (word, count, freq = count / total), sorted by count descending, then word
/// ascending, so ties are deterministic.
pub fn dominant_words(counts: &WordCounter, k: usize) -> Vec<(String, u64, f64)> {
    let total = counts.total();
    let mut v: Vec<(&String, u64)> = counts.counts.iter().map(|(w, &n)| (w, n)).collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    v.into_iter()
        .take(k)
        .map(|(w, n)| (w.clone(), n, n as f64 / total as f64))
        .collect()
}

/// The first dominant word that is not `class_word` (the paper's "target word" of a flagged sample).
pub fn first_non_class_word(counts: &WordCounter, class_word: &str) -> Option<String> {
    dominant_words(counts, usize::MAX)
        .into_iter()
        .map(|(w, _, _)| w)
        .find(|w| w != class_word)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(extra: &[&str], syn: &[(&str, &[&str])]) -> WordConfig {
        WordConfig {
            extra_stopwords: extra.iter().map(|s| s.to_string()).collect(),
            synonyms: syn
                .iter()
                .map(|(c, s)| (c.to_string(), s.iter().map(|x| x.to_string()).collect()))
                .collect(),
        }
    }

    #[test]
    fn stopword_list_is_nltk_sized_and_unique() {
        let set: BTreeSet<&str> = ENGLISH_STOPWORDS.iter().copied().collect();
        assert_eq!(ENGLISH_STOPWORDS.len(), 179);
        assert_eq!(set.len(), 179);
    }

    #[test]
    fn split_words_table() {
        let cases: &[(&str, &[&str])] = &[
            ("A bird, on the WATER.", &["bird", "on", "the", "water"]),
            (
                "The bird's wings don't move!",
                &["the", "bird", "wings", "don't", "move"],
            ),
            // Numbers and one-character words are dropped; typographic apostrophes normalised, then `'s` dropped.
            (
                "It’s a sea-gull; 42 birds (2x)",
                &["it", "sea", "gull", "birds", "2x"],
            ),
            ("'quoted' words_here", &["quoted", "words", "here"]),
            ("", &[]),
        ];
        for (s, want) in cases {
            assert_eq!(split_words(s), *want, "{s:?}");
        }
    }

    #[test]
    fn control_characters_and_partial_utf8_are_normalised_before_counting() {
        let cases: &[(&str, &str)] = &[
            ("  a\tbird\n\non\r\nthe   lake \u{b}", "a bird on the lake"),
            (
                "bell\u{7}nul\u{0}esc\u{1b}[31m del\u{7f}",
                "bell nul esc [31m del",
            ),
            ("bi\u{FFFD}rd \u{FFFD}\u{FFFD} wa\u{FFFD}ter", "bird water"),
            ("\u{FFFD}\n\u{FFFD}", ""),
            ("nbsp\u{a0}and\u{2028}line sep", "nbsp and line sep"),
        ];
        for (s, want) in cases {
            assert_eq!(normalise(s), *want, "{s:?}");
        }
        assert_eq!(
            split_words("wa\u{FFFD}ter\tbi\u{FFFD}\u{FFFD}rds\n"),
            ["water", "birds"]
        );
        let f = WordFilter::new(&WordConfig::default()).unwrap();
        let c =
            WordCounter::from_sentences(&f, &["bi\u{FFFD}rd\non the\tla\u{FFFD}ke\r\n", "bird"]);
        assert_eq!(dominant_words(&c, 1)[0].0, "bird");
        assert_eq!((c.counts["bird"], c.counts["lake"], c.total()), (2, 1, 3));
    }

    #[test]
    fn filter_stopwords_and_synonyms() {
        let f = WordFilter::new(&cfg(
            &["Photo"],
            &[
                ("water", &["lake", "ocean", "Sea"]),
                ("bird", &["birds", "duck"]),
            ],
        ))
        .unwrap();
        let cases: &[(&str, &[&str])] = &[
            ("A photo of a duck on the lake.", &["bird", "water"]),
            (
                "Birds fly over the ocean and the sea",
                &["bird", "fly", "water", "water"],
            ),
            ("there is nothing here", &["nothing"]),
        ];
        for (s, want) in cases {
            assert_eq!(f.words(s), *want, "{s:?}");
        }
        assert!(f.is_stopword("photo") && f.is_stopword("the") && !f.is_stopword("bird"));
    }

    #[test]
    fn filter_config_errors() {
        let err = WordFilter::new(&cfg(&[], &[("water", &["lake"]), ("land", &["lake"])]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "synonym `lake` is listed under both `land` and `water`"
        );
        let err = WordFilter::new(&cfg(&[], &[("water", &["big lake"])]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "synonym group `water`: `big lake` is not a single word after normalisation"
        );
        // serde: unknown fields are rejected, missing ones default.
        assert!(serde_yaml::from_str::<WordConfig>("extra_stopword: [x]").is_err());
        let c: WordConfig = serde_yaml::from_str("synonyms: {water: [lake]}").unwrap();
        assert!(c.extra_stopwords.is_empty() && c.synonyms["water"] == ["lake"]);
    }

    #[test]
    fn counting_and_dominant_words() {
        let f = WordFilter::new(&WordConfig::default()).unwrap();
        // Every occurrence counts, also within one sentence.
        let c = WordCounter::from_sentences(
            &f,
            &["water water bird", "a bird on the water", "forest trees"],
        );
        assert_eq!(c.n_sentences, 3);
        assert_eq!(c.total(), 7);
        let top = dominant_words(&c, 3);
        let want = [("water", 3u64), ("bird", 2), ("forest", 1)];
        for ((w, n, fr), (ww, wn)) in top.iter().zip(want) {
            assert_eq!((w.as_str(), *n), (ww, wn));
            assert!((fr - wn as f64 / 7.0).abs() < 1e-12);
        }
        assert_eq!(top.len(), 3); // ties "forest"/"trees" broken alphabetically
        assert_eq!(first_non_class_word(&c, "water").as_deref(), Some("bird"));
        assert_eq!(first_non_class_word(&c, "bird").as_deref(), Some("water"));
        assert_eq!(first_non_class_word(&WordCounter::new(), "bird"), None);
        assert!(dominant_words(&WordCounter::new(), 5).is_empty());
    }

    #[test]
    fn merge_is_a_sum() {
        let f = WordFilter::new(&WordConfig::default()).unwrap();
        let a = WordCounter::from_sentences(&f, &["bird water"]);
        let b = WordCounter::from_sentences(&f, &["water land", "land"]);
        let mut s = WordCounter::new();
        s.merge(&a);
        s.merge(&b);
        assert_eq!(
            s,
            WordCounter::from_sentences(&f, &["bird water", "water land", "land"])
        );
    }
}
