//! Tokenizers for the language model, on top of HF `tokenizers` so every `tokenizer.json` stays HF-compatible.
//!
//! * [`train_word_level`] builds the small word-level vocabulary used by the from-scratch LM on synthetic captions:
//!   lower-case normaliser, whitespace + punctuation pre-tokenizer (`\w+|[^\w\s]+`), `<|endoftext|>` as id 0
//!   (BOS/EOS/pad, as in GPT-2) and `<unk>` as id 1. Its decoder is HF's `WordPiece` decoder with cleanup, which
//!   joins words with spaces and removes the space before punctuation (`a bird .` -> `a bird.`).
//! * [`load`] reads any `tokenizer.json`, including GPT-2's byte-level BPE (as in ClipCap, which decodes GPT-2).
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordlevel::{WordLevel, WordLevelTrainer};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::normalizers::Lowercase;
use tokenizers::pre_tokenizers::whitespace::Whitespace;
use tokenizers::{AddedToken, Tokenizer as HfTokenizer};

/// GPT-2's end-of-text token, used as BOS, EOS and padding.
pub const EOS_TOKEN: &str = "<|endoftext|>";
/// The unknown-word token of word-level vocabularies.
pub const UNK_TOKEN: &str = "<unk>";

/// Errors from building, loading, saving or running a tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    #[error("{context}: {source}")]
    Hf {
        context: String,
        source: tokenizers::Error,
    },
    #[error("{path}: tokenizer has no `{token}` token")]
    MissingToken { path: PathBuf, token: &'static str },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

type Result<T, E = TokenizerError> = std::result::Result<T, E>;

fn hf(context: impl Into<String>) -> impl FnOnce(tokenizers::Error) -> TokenizerError {
    let context = context.into();
    move |source| TokenizerError::Hf { context, source }
}

/// Which model a tokenizer uses; decides how words are spelled in tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenizerKind {
    WordLevel,
    /// Byte-level BPE, as GPT-2 (a leading space is part of a token: `Ġwater`).
    Bpe,
    Other,
}

/// A loaded tokenizer with the ids the pipeline needs.
#[derive(Clone)]
pub struct Tokenizer {
    inner: HfTokenizer,
    eos_id: u32,
    unk_id: Option<u32>,
    kind: TokenizerKind,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.kind)
            .field("vocab_size", &self.vocab_size())
            .field("eos_id", &self.eos_id)
            .finish()
    }
}

impl Tokenizer {
    /// Wrap an HF tokenizer; `source` names it in errors. It must know [`EOS_TOKEN`].
    pub fn from_hf(inner: HfTokenizer, source: &Path) -> Result<Self> {
        let eos_id = inner
            .token_to_id(EOS_TOKEN)
            .ok_or_else(|| TokenizerError::MissingToken {
                path: source.to_path_buf(),
                token: EOS_TOKEN,
            })?;
        let kind = match inner.get_model() {
            ModelWrapper::WordLevel(_) => TokenizerKind::WordLevel,
            ModelWrapper::BPE(_) => TokenizerKind::Bpe,
            _ => TokenizerKind::Other,
        };
        let unk_id =
            match inner.get_model() {
                ModelWrapper::WordLevel(_) => {
                    Some(inner.token_to_id(UNK_TOKEN).ok_or_else(|| {
                        TokenizerError::MissingToken {
                            path: source.to_path_buf(),
                            token: UNK_TOKEN,
                        }
                    })?)
                }
                _ => None,
            };
        Ok(Self {
            inner,
            eos_id,
            unk_id,
            kind,
        })
    }

    /// Token ids of `text`, without special tokens added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(hf(format!("encoding {text:?}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Readable text of `ids`; special tokens (EOS/padding) are skipped.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner
            .decode(ids, true)
            .map_err(hf(format!("decoding {} ids", ids.len())))
    }

    /// The text of one token as the decoder would print it on its own (for logs and debugging).
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    pub fn eos_id(&self) -> u32 {
        self.eos_id
    }

    /// Vocabulary size including added/special tokens (GPT-2: 50257).
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    pub fn kind(&self) -> TokenizerKind {
        self.kind
    }

    pub fn inner(&self) -> &HfTokenizer {
        &self.inner
    }

    /// The token sequences that spell `word` in running text, deduplicated, in a fixed order.
    ///
    /// Word-level: the single token of the lower-cased word (none if it is out of vocabulary).
    /// BPE: `word` and ` word` (a leading space changes the tokens), and the same for the capitalised form when it
    /// differs (`Water` starts sentences). Used to find the target word in sampled sentences for word-targeted
    /// scores (paper section 4.3).
    pub fn word_start_tokens(&self, word: &str) -> Result<Vec<Vec<u32>>> {
        let word = word.trim();
        if word.is_empty() {
            return Ok(Vec::new());
        }
        let mut variants = vec![word.to_string()];
        if self.kind != TokenizerKind::WordLevel {
            let mut chars = word.chars();
            let cap: String = chars
                .next()
                .map(|c| c.to_uppercase().chain(chars).collect())
                .unwrap_or_default();
            variants.push(format!(" {word}"));
            variants.push(cap.clone());
            variants.push(format!(" {cap}"));
        }
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for v in variants {
            let ids = self.encode(&v)?;
            let has_unk = self.unk_id.is_some_and(|u| ids.contains(&u));
            if !ids.is_empty() && !has_unk && seen.insert(ids.clone()) {
                out.push(ids);
            }
        }
        Ok(out)
    }

    /// Save as an HF `tokenizer.json` (atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = self
            .inner
            .to_string(true)
            .map_err(hf(format!("serialising tokenizer for {}", path.display())))?;
        crate::util::write_file_atomic(path, json.as_bytes()).map_err(|source| TokenizerError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Train a word-level tokenizer on `corpus_lines` (words seen fewer than `min_freq` times become `<unk>`) and save
/// it to `out` as `tokenizer.json`.
pub fn train_word_level(corpus_lines: &[String], min_freq: u32, out: &Path) -> Result<Tokenizer> {
    let trainer = WordLevelTrainer::builder()
        .min_frequency(u64::from(min_freq))
        .vocab_size(usize::MAX)
        .show_progress(false)
        .special_tokens(vec![
            AddedToken::from(EOS_TOKEN, true),
            AddedToken::from(UNK_TOKEN, true),
        ])
        .build()
        .map_err(|e| TokenizerError::Hf {
            context: "building the word-level trainer".into(),
            source: e.into(),
        })?;
    let model = WordLevel::builder()
        .unk_token(UNK_TOKEN.to_string())
        .build()
        .map_err(hf("building the word-level model"))?;
    let mut tk = HfTokenizer::new(model);
    tk.with_normalizer(Some(Lowercase))
        .with_pre_tokenizer(Some(Whitespace {}))
        .with_decoder(Some(WordPieceDecoder::new("##".to_string(), true)));
    let mut trainer = TrainerWrapper::from(trainer);
    tk.train(&mut trainer, corpus_lines.iter())
        .map_err(hf(format!(
            "training a word-level tokenizer on {} lines",
            corpus_lines.len()
        )))?;
    let tok = Tokenizer::from_hf(tk, out)?;
    tok.save(out)?;
    Ok(tok)
}

/// Load a `tokenizer.json` (word-level from [`train_word_level`], or GPT-2's byte-level BPE).
pub fn load(path: &Path) -> Result<Tokenizer> {
    let inner = HfTokenizer::from_file(path).map_err(hf(format!("loading {}", path.display())))?;
    Tokenizer::from_hf(inner, path)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
    use tokenizers::models::bpe::{BpeTrainer, BPE};
    use tokenizers::pre_tokenizers::byte_level::ByteLevel;

    fn corpus() -> Vec<String> {
        [
            "A large white bird with a long neck stands on the water.",
            "A small bird in the forest, near the trees.",
            "The lake has waves and rocks under clouds.",
            "a bird on the water",
            "forest trees and a path",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    const FIXTURE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tiny-gpt2/tokenizer.json"
    );

    /// Builds `tests/fixtures/tiny-gpt2/tokenizer.json`: a GPT-2-style byte-level BPE (same pre-tokenizer,
    /// decoder and post-processor settings as `gpt2/tokenizer.json`) trained on a few captions.
    pub(crate) fn build_tiny_gpt2() -> HfTokenizer {
        let lines: Vec<String> = corpus()
            .into_iter()
            .chain(["Water, water everywhere. The Bird's nest!".to_string()])
            .collect();
        let trainer = BpeTrainer::builder()
            .vocab_size(400)
            .min_frequency(1)
            .show_progress(false)
            .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
            .special_tokens(vec![AddedToken::from(EOS_TOKEN, true)])
            .build();
        let mut tk = HfTokenizer::new(BPE::default());
        tk.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)))
            .with_post_processor(Some(ByteLevel::new(false, true, true)))
            .with_decoder(Some(ByteLevelDecoder::default()));
        let mut trainer = TrainerWrapper::from(trainer);
        tk.train(&mut trainer, lines.iter()).unwrap();
        tk
    }

    /// Rewrites the committed fixture: `cargo test --release --lib text::tokenizer -- --ignored`.
    #[test]
    #[ignore]
    fn regenerate_tiny_gpt2_fixture() {
        let tk = build_tiny_gpt2();
        let p = Path::new(FIXTURE);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, tk.to_string(true).unwrap()).unwrap();
    }

    #[test]
    fn committed_fixture_is_reproducible() {
        let committed = std::fs::read_to_string(FIXTURE).unwrap();
        assert_eq!(build_tiny_gpt2().to_string(true).unwrap(), committed);
    }

    #[test]
    fn word_level_train_round_trip_save_load() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenizer.json");
        let tok = train_word_level(&corpus(), 1, &path).unwrap();
        assert_eq!(tok.kind(), TokenizerKind::WordLevel);
        assert_eq!(tok.eos_id(), 0);
        assert_eq!(tok.inner().token_to_id(UNK_TOKEN), Some(1));
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(files, ["tokenizer.json"], "no temporary file is left");

        let cases = [
            ("A bird on the water.", "a bird on the water."),
            ("The lake, near the trees.", "the lake, near the trees."),
            ("  forest   path  ", "forest path"),
        ];
        for (text, want) in cases {
            let ids = tok.encode(text).unwrap();
            assert_eq!(tok.decode(&ids).unwrap(), want, "{text:?} -> {ids:?}");
        }
        // Unknown words become <unk>, which decoding skips as a special token.
        let ids = tok.encode("a zebra").unwrap();
        assert_eq!(ids[1], 1);
        assert_eq!(tok.decode(&ids).unwrap(), "a");
        // EOS is recognised in text and skipped when decoding.
        let ids = tok.encode("<|endoftext|>a bird").unwrap();
        assert_eq!(ids[0], 0);
        assert_eq!(tok.decode(&ids).unwrap(), "a bird");

        let loaded = load(&path).unwrap();
        assert_eq!(loaded.vocab_size(), tok.vocab_size());
        let text = "A large white bird stands on the lake.";
        assert_eq!(loaded.encode(text).unwrap(), tok.encode(text).unwrap());
        // The file is plain HF JSON with the two special tokens first.
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(json["model"]["type"], "WordLevel");
        assert_eq!(json["model"]["vocab"][EOS_TOKEN], 0);
        assert_eq!(json["model"]["vocab"][UNK_TOKEN], 1);
    }

    #[test]
    fn word_level_min_freq() {
        let dir = tempfile::tempdir().unwrap();
        let tok = train_word_level(&corpus(), 2, &dir.path().join("t.json")).unwrap();
        // "bird" appears 3 times, "neck" once.
        assert_ne!(tok.encode("bird").unwrap(), vec![1]);
        assert_eq!(tok.encode("neck").unwrap(), vec![1]);
        assert_eq!(
            tok.word_start_tokens("neck").unwrap(),
            Vec::<Vec<u32>>::new()
        );
        let bird = tok.inner().token_to_id("bird").unwrap();
        assert_eq!(tok.word_start_tokens("Bird").unwrap(), vec![vec![bird]]);
    }

    #[test]
    fn gpt2_style_bpe_fixture() {
        let tok = load(Path::new(FIXTURE)).unwrap();
        assert_eq!(tok.kind(), TokenizerKind::Bpe);
        assert_eq!(tok.eos_id(), 0);
        for text in [
            "A large white bird on the water.",
            "Water, everywhere! The Bird's nest",
            "unseen words: zebra 42 ünïcode",
        ] {
            let ids = tok.encode(text).unwrap();
            assert_eq!(tok.decode(&ids).unwrap(), text);
        }
        let mut with_eos = tok.encode("a bird").unwrap();
        with_eos.push(tok.eos_id());
        assert_eq!(tok.decode(&with_eos).unwrap(), "a bird");

        // The leading space changes the tokens, so both spellings (and capitalised ones) are returned.
        let spellings = tok.word_start_tokens("water").unwrap();
        let decoded: Vec<String> = spellings
            .iter()
            .map(|ids| tok.decode(ids).unwrap())
            .collect();
        assert_eq!(decoded, vec!["water", " water", "Water", " Water"]);
        let uniq: BTreeSet<&Vec<u32>> = spellings.iter().collect();
        assert_eq!(uniq.len(), 4);
        // " water" is one merged token in this vocabulary.
        assert_eq!(spellings[1].len(), 1);
    }

    /// `gpt2/tokenizer.json` on the HF hub predates array merges: merges are `"Ġ w"` strings and the model carries
    /// `continuing_subword_prefix: ""`. Rewrite the fixture that way and check it loads and decodes the same.
    #[test]
    fn loads_legacy_gpt2_json_layout() {
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(FIXTURE).unwrap()).unwrap();
        let model = json["model"].as_object_mut().unwrap();
        let merges: Vec<serde_json::Value> = model["merges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| format!("{} {}", m[0].as_str().unwrap(), m[1].as_str().unwrap()).into())
            .collect();
        model.insert("merges".into(), merges.into());
        model.insert("continuing_subword_prefix".into(), "".into());
        model.insert("end_of_word_suffix".into(), "".into());
        model.remove("ignore_merges");
        model.remove("byte_fallback");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("tokenizer.json");
        std::fs::write(&p, serde_json::to_string(&json).unwrap()).unwrap();
        let legacy = load(&p).unwrap();
        let modern = load(Path::new(FIXTURE)).unwrap();
        let text = "A large white bird on the water.";
        assert_eq!(legacy.encode(text).unwrap(), modern.encode(text).unwrap());
        assert_eq!(legacy.decode(&legacy.encode(text).unwrap()).unwrap(), text);
    }

    #[test]
    fn load_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.json");
        std::fs::write(&p, "{not json").unwrap();
        let err = load(&p).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("loading {}", p.display())),
            "{err}"
        );
        let err = load(&dir.path().join("missing.json"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.json"), "{err}");
    }
}
