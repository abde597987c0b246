//! What the explain stage needs, estimated before anything runs so that a config that cannot fit is refused with the
//! estimate in the message. The sizes follow the code that spends them:
//!
//! * KV cache of one sampling batch (`explain::sample::sample_sentences` preallocates keys and values for every row
//!   and position): rows × n_layer × 2 × positions × n_embd × 4 bytes (f32). A batch holds
//!   max(⌊batch_rows / samples_per_image⌋, 1) images and samples_per_image rows per image, so `batch_rows` below
//!   `samples_per_image` still decodes one whole image per batch. Positions are the prefix plus the sampled tokens:
//!   `max_words` with a word-level tokenizer (the LM pretrained here), up to 4 × `max_words` with BPE (a pretrained
//!   HF GPT-2), never more than the LM's `n_positions`.
//! * Sentences: images × samples_per_image per explained split (train and test); the explain stage holds a whole
//!   split's sentences in memory before it writes `sentences-<split>.jsonl`, at about [`BYTES_PER_WORD`] bytes a
//!   word.
//!
//! [`ExplainNeeds::check`] refuses what overflows the sampler's 64-bit row index, what exceeds [`CEILING`] (more
//! than any machine holds: from the config alone, in [`super::validate`]), and, where the machine's memory is known
//! (the run's preflight), a KV cache on the CPU or a split's sentences that exceed it.
use anyhow::{bail, Result};

use super::schema::{ExplainSection, LanguageModelSection, LM_POSITIONS};

/// Bytes of a sentence per word, on disk (a word of ~6 letters, its space, the line's JSON quoting spread over it)
/// and, plus [`STRING_BYTES`] per sentence, in memory.
pub const BYTES_PER_WORD: u128 = 8;
/// Bytes of a `String` beside its text.
pub const STRING_BYTES: u128 = 24;
/// More than any one machine's (or accelerator's) memory, and more sentence text than a run should ever write:
/// 1 TiB.
pub const CEILING: u128 = 1 << 40;

/// The shape of the language model that samples the sentences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LmShape {
    pub n_layer: u128,
    pub n_embd: u128,
    pub n_positions: u128,
    /// Every token but EOS starts a word (so a sentence takes `max_words` tokens at most).
    pub word_level: bool,
}

impl LmShape {
    /// The LM that `texplain run` pretrains when `language_model.pretrained` is unset (word-level tokenizer).
    pub fn pretrained_here(lm: &LanguageModelSection) -> Self {
        Self {
            n_layer: lm.n_layer.max(0) as u128,
            n_embd: lm.n_embd.max(0) as u128,
            n_positions: LM_POSITIONS as u128,
            word_level: true,
        }
    }

    /// A lower bound of any LM's shape (one layer of width one, word-level): what the config alone says of a
    /// pretrained LM whose `config.json` was not read yet.
    pub const SMALLEST: LmShape = LmShape {
        n_layer: 1,
        n_embd: 1,
        n_positions: u128::MAX,
        word_level: true,
    };
}

/// The estimate of [`explain_needs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExplainNeeds {
    pub samples_per_image: u128,
    pub images_per_batch: u128,
    /// Rows decoded together: images_per_batch × samples_per_image.
    pub rows_per_batch: u128,
    /// Prefix plus sampled tokens.
    pub positions: u128,
    pub lm: LmShape,
    pub kv_cache_bytes: u128,
    /// Sentences of both explained splits, and of the larger one, when the image counts are known.
    pub sentences: Option<u128>,
    pub largest_split_sentences: Option<u128>,
    /// Bytes of both sentence files (on disk), and of the larger split's sentences in memory.
    pub file_bytes: Option<u128>,
    pub memory_bytes: Option<u128>,
}

/// Estimates what the explain stage needs for `e` with a translator prefix of `prefix_len`, the LM `lm`, and, when
/// known, the image counts of the explained splits (train, test). Pure: saturating 128-bit arithmetic.
pub fn explain_needs(
    e: &ExplainSection,
    prefix_len: i64,
    lm: &LmShape,
    images: Option<[u64; 2]>,
) -> ExplainNeeds {
    let samples = e.samples_per_image as u128;
    let mut images_per_batch = (e.batch_rows as u128 / samples.max(1)).max(1);
    if let Some([train, test]) = images {
        images_per_batch = images_per_batch.min(u128::from(train.max(test)).max(1));
    }
    let rows_per_batch = images_per_batch.saturating_mul(samples);
    let tokens_per_word = if lm.word_level { 1 } else { 4 };
    let prefix = prefix_len.max(0) as u128;
    let positions = prefix
        .saturating_add((e.max_words as u128).saturating_mul(tokens_per_word))
        .min(lm.n_positions);
    let kv_cache_bytes = [lm.n_layer, 2, positions, lm.n_embd, 4]
        .iter()
        .fold(rows_per_batch, |acc, &x| acc.saturating_mul(x));
    let sentence_bytes = (e.max_words as u128).saturating_mul(BYTES_PER_WORD);
    let per_split = images.map(|counts| counts.map(|n| u128::from(n).saturating_mul(samples)));
    let sentences = per_split.map(|[a, b]| a.saturating_add(b));
    let largest = per_split.map(|[a, b]| a.max(b));
    ExplainNeeds {
        samples_per_image: samples,
        images_per_batch,
        rows_per_batch,
        positions,
        lm: *lm,
        kv_cache_bytes,
        sentences,
        largest_split_sentences: largest,
        file_bytes: sentences.map(|n| n.saturating_mul(sentence_bytes)),
        memory_bytes: largest
            .map(|n| n.saturating_mul(sentence_bytes.saturating_add(STRING_BYTES))),
    }
}

/// `1.5 GiB`, `12.0 TiB`, ... (binary units); `more than 10^38 bytes` when the arithmetic saturated.
pub fn human_bytes(bytes: u128) -> String {
    if bytes == u128::MAX {
        return "more than 10^38 bytes".into();
    }
    let units = [
        "bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB",
    ];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

impl ExplainNeeds {
    /// `rows × n_layer × 2 × positions × n_embd × 4 bytes = total`, the KV cache of one batch spelled out.
    pub fn kv_cache(&self) -> String {
        format!(
            "{} per sampling batch ({} image(s) × {} samples = {} rows, × {} layer(s) × 2 (keys, values) × {} \
             positions × n_embd {} × 4 bytes)",
            human_bytes(self.kv_cache_bytes),
            self.images_per_batch,
            self.samples_per_image,
            self.rows_per_batch,
            self.lm.n_layer,
            self.positions,
            self.lm.n_embd
        )
    }

    /// Refuses what cannot run: `memory` is the machine's memory when known (the preflight), `kv_on_host` whether
    /// the KV cache lives in it (the run's device is the CPU). Errors name `explain.samples_per_image` and give the
    /// estimate.
    pub fn check(&self, memory: Option<u64>, kv_on_host: bool) -> Result<()> {
        let key = "explain.samples_per_image";
        let n = self.samples_per_image;
        if self.rows_per_batch > i64::MAX as u128 {
            bail!(
                "{key}: {n} samples per image make {} rows in one sampling batch, more than the sampler's 64-bit \
                 row index holds; lower explain.samples_per_image",
                self.rows_per_batch
            );
        }
        if let Some(sentences) = self.sentences.filter(|&s| s > u64::MAX as u128) {
            bail!("{key}: {n} samples per image make {sentences} sentences, more than a 64-bit count holds");
        }
        let memory = memory.map(u128::from);
        let limit = |what: &str| match memory {
            Some(m) if m < CEILING => format!("the {} of this machine's {what}", human_bytes(m)),
            _ => format!("{} (more than any machine holds)", human_bytes(CEILING)),
        };
        let kv_limit = memory
            .filter(|_| kv_on_host)
            .unwrap_or(CEILING)
            .min(CEILING);
        if self.kv_cache_bytes > kv_limit {
            let what = if kv_on_host {
                limit("memory")
            } else {
                limit("accelerator memory")
            };
            bail!(
                "{key}: {n} samples per image need a KV cache of {}, more than {what}; lower \
                 explain.samples_per_image (explain.batch_rows lowers the rows only down to one image per batch)",
                self.kv_cache()
            );
        }
        if let (Some(bytes), Some(sentences)) = (self.file_bytes, self.sentences) {
            if bytes > CEILING {
                bail!(
                    "{key}: {n} samples per image make {sentences} sentences, ≈ {} of sentence files (≈ {} \
                     bytes a word), more than {}; lower explain.samples_per_image",
                    human_bytes(bytes),
                    BYTES_PER_WORD,
                    human_bytes(CEILING)
                );
            }
        }
        if let (Some(bytes), Some(sentences)) = (self.memory_bytes, self.largest_split_sentences) {
            let limit_bytes = memory.unwrap_or(CEILING).min(CEILING);
            if bytes > limit_bytes {
                bail!(
                    "{key}: {n} samples per image make {sentences} sentences in the larger explained split, which \
                     the explain stage holds in memory: ≈ {}, more than {}; lower explain.samples_per_image",
                    human_bytes(bytes),
                    limit("memory")
                );
            }
        }
        Ok(())
    }
}

/// The machine's memory (`MemTotal` of `/proc/meminfo`); `None` where it cannot be read.
pub fn machine_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn explain(samples_per_image: usize, batch_rows: usize) -> ExplainSection {
        ExplainSection {
            samples_per_image,
            batch_rows,
            max_words: 16,
            ..ExplainSection::default()
        }
    }

    const LM: LmShape = LmShape {
        n_layer: 2,
        n_embd: 96,
        n_positions: 128,
        word_level: true,
    };

    #[test]
    fn kv_cache_follows_rows_layers_positions_and_width() {
        let needs = explain_needs(&explain(20, 2048), 4, &LM, None);
        assert_eq!(needs.images_per_batch, 102);
        assert_eq!(needs.rows_per_batch, 2040);
        assert_eq!(needs.positions, 20);
        assert_eq!(needs.kv_cache_bytes, 2040 * 2 * 2 * 20 * 96 * 4);
        assert!(needs.check(None, true).is_ok());
        // BPE: up to 4 tokens a word, capped by n_positions.
        let bpe = LmShape {
            word_level: false,
            ..LM
        };
        assert_eq!(
            explain_needs(&explain(20, 2048), 4, &bpe, None).positions,
            68
        );
        let short = LmShape {
            n_positions: 32,
            ..bpe
        };
        assert_eq!(
            explain_needs(&explain(20, 2048), 4, &short, None).positions,
            32
        );
    }

    #[test]
    fn batch_rows_below_samples_per_image_decodes_one_image_per_batch() {
        let needs = explain_needs(&explain(1000, 10), 4, &LM, None);
        assert_eq!((needs.images_per_batch, needs.rows_per_batch), (1, 1000));
        // A batch never holds more images than a split has.
        let needs = explain_needs(&explain(2, 2048), 4, &LM, Some([10, 3]));
        assert_eq!((needs.images_per_batch, needs.rows_per_batch), (10, 20));
        assert_eq!(needs.sentences, Some(26));
        assert_eq!(needs.largest_split_sentences, Some(20));
        assert_eq!(needs.file_bytes, Some(26 * 16 * BYTES_PER_WORD));
    }

    #[test]
    fn an_impossible_sample_count_is_refused_with_the_estimate() {
        let needs = explain_needs(&explain(100_000_000_000, 2048), 4, &LM, None);
        let err = format!("{:#}", needs.check(None, true).unwrap_err());
        assert!(
            err.contains("explain.samples_per_image: 100000000000")
                && err.contains("KV cache of 2.7 PiB")
                && err.contains("100000000000 rows")
                && err.contains("1.0 TiB"),
            "{err}"
        );
        // Even the smallest LM cannot hold it: refused from the config alone, whatever the pretrained LM is.
        let smallest = explain_needs(&explain(100_000_000_000, 2048), 4, &LmShape::SMALLEST, None);
        assert!(smallest.check(None, false).is_err());
        // The machine's memory, when known, bounds a CPU run's KV cache.
        let needs = explain_needs(&explain(100_000, 2048), 4, &LM, None);
        assert!(needs.check(None, true).is_ok());
        let err = format!("{:#}", needs.check(Some(1 << 30), true).unwrap_err());
        assert!(
            err.contains("this machine's memory") && err.contains("1.0 GiB"),
            "{err}"
        );
        assert!(
            needs.check(Some(1 << 30), false).is_ok(),
            "an accelerator's memory is not the host's"
        );
    }

    #[test]
    fn sentences_that_overflow_or_exceed_memory_are_refused() {
        let needs = explain_needs(&explain(usize::MAX, 1), 4, &LM, Some([u64::MAX, 1]));
        assert!(format!("{:#}", needs.check(None, false).unwrap_err())
            .contains("explain.samples_per_image"));
        let many = explain_needs(&explain(1000, 1000), 4, &LM, Some([4795, 5794]));
        assert_eq!(many.sentences, Some(10_589_000));
        assert!(many.check(Some(64 << 30), true).is_ok());
        let err = format!("{:#}", many.check(Some(512 << 20), true).unwrap_err());
        assert!(
            err.contains("5794000 sentences") && err.contains("in memory"),
            "{err}"
        );
    }

    #[test]
    fn bytes_are_printed_in_binary_units() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
        assert_eq!(human_bytes(u128::MAX), "more than 10^38 bytes");
    }
}
