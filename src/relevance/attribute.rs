//! The word score that reads the place (TExplain paper section 4.3, the word-targeted score, scored as an
//! attribute; issue 24, Build 4): instead of the teacher-forced log-probability of the target's literal first
//! token over the whole vocabulary, the log-odds of the target concept's words against the competing place words,
//!
//! ```text
//! s = mean over sentences, mean over place positions j of
//!     log Σ_{w ∈ target} p(w | prefix, sentence[..j]) − log Σ_{w ∈ competing} p(w | prefix, sentence[..j])
//! ```
//!
//! where each word counts through the first token of every one of its word-start spellings
//! ([`crate::text::tokenizer::Tokenizer::word_start_tokens`]: `water`, ` water`, `Water`, ` Water` for BPE, the
//! single token for the word-level tokenizer; distinct tokens summed once), and the place positions are where any
//! target or competing word is written in the image's sampled sentence (a full spelling starts there). An image
//! none of whose sentences holds a place word is scored at the first position after the prefix (what the LM would
//! write first): a fallback, counted ([`AttributeTarget::fallback`]). The literal-token score stays
//! ([`super::word::target_log_prob`]); which one a map differentiates is [`WordScore`].
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::explain::lm::{pad_batch, LanguageModel};
use crate::models::gpt2::Gpt2;

/// Which word score a word-targeted map differentiates (YAML `score:`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[serde(rename_all = "snake_case")]
pub enum WordScore {
    /// The teacher-forced log-probability of the target's literal first token where it is written
    /// ([`super::word::target_log_prob`]).
    #[default]
    Literal,
    /// The log-odds of the target concept's words against the competing place words where a place word is written
    /// ([`attribute_log_odds`]).
    Attribute,
}

impl WordScore {
    pub fn name(self) -> &'static str {
        match self {
            WordScore::Literal => "literal",
            WordScore::Attribute => "attribute",
        }
    }
}

/// Which word score a stage's maps differentiate and how many of its mapped images fell back (masks stage
/// `summary.json` and `texplain masks-eval`, `word_score: {kind, n_images, n_fallback}`): the literal score falls
/// back where no sampled sentence holds the target's token, the attribute score where none holds a place word.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct WordScoreCount {
    pub kind: WordScore,
    /// Images with a target word (mapped).
    pub n_images: usize,
    pub n_fallback: usize,
}

/// The words an attribute score sets against each other: the target concept's merged words and the competing
/// place words (built by [`crate::data::words::attribute_concept`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Concept {
    pub target: Vec<String>,
    pub competing: Vec<String>,
}

/// One image's attribute score inputs: the token sets, its sentences (token ids) and where in each the score is
/// read.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributeTarget {
    /// Distinct first tokens of the target words' spellings.
    pub target: Vec<i64>,
    /// Distinct first tokens of the competing words' spellings.
    pub competing: Vec<i64>,
    /// The sentences scored (token ids); with a fallback one sentence of one token, read at position 0.
    pub sentences: Vec<Vec<i64>>,
    /// Per sentence, the positions j whose token the score predicts (position j reads the prefix and
    /// `sentence[..j]`).
    pub positions: Vec<Vec<usize>>,
    /// No sampled sentence held a place word: scored at the first position after the prefix.
    pub fallback: bool,
}

impl AttributeTarget {
    /// From the spellings (token sequences) of the target and competing words and the image's sentences (token
    /// ids): the first `max_sentences` sentences holding a place word, each read where a place word starts.
    /// `fill`: the token of the fallback's one-token sentence (any token; position 0 reads the prefix alone).
    /// `None` when no target or no competing word has a spelling.
    pub fn from_ids(
        target: &[Vec<i64>],
        competing: &[Vec<i64>],
        sentences: &[Vec<i64>],
        max_sentences: usize,
        fill: i64,
    ) -> Option<Self> {
        let firsts = |spellings: &[Vec<i64>]| {
            let mut out: Vec<i64> = spellings
                .iter()
                .filter_map(|s| s.first().copied())
                .collect();
            out.sort_unstable();
            out.dedup();
            out
        };
        let (t, c) = (firsts(target), firsts(competing));
        if t.is_empty() || c.is_empty() {
            return None;
        }
        let spellings: Vec<&Vec<i64>> = target
            .iter()
            .chain(competing)
            .filter(|s| !s.is_empty())
            .collect();
        let (mut chosen, mut positions) = (Vec::new(), Vec::new());
        for ids in sentences {
            let at: Vec<usize> = (0..ids.len())
                .filter(|&j| spellings.iter().any(|s| ids[j..].starts_with(s)))
                .collect();
            if !at.is_empty() && chosen.len() < max_sentences {
                chosen.push(ids.clone());
                positions.push(at);
            }
        }
        let fallback = chosen.is_empty();
        if fallback {
            chosen.push(vec![fill]);
            positions.push(vec![0]);
        }
        Some(Self {
            target: t,
            competing: c,
            sentences: chosen,
            positions,
            fallback,
        })
    }

    /// [`Self::from_ids`] from the words and the image's sampled sentences (text), each encoded as the explain
    /// stage samples them and cut to `max_tokens`.
    pub fn new(
        lm: &LanguageModel,
        concept: &Concept,
        sentences: &[String],
        max_sentences: usize,
        max_tokens: usize,
    ) -> Result<Option<Self>> {
        let spell = |words: &[String]| -> Result<Vec<Vec<i64>>> {
            let mut out = Vec::new();
            for w in words {
                for s in lm.tokenizer.word_start_tokens(w)? {
                    out.push(s.into_iter().map(i64::from).collect());
                }
            }
            Ok(out)
        };
        let ids = sentences
            .iter()
            .map(|s| {
                let mut ids = lm.encode_sentence(s)?;
                ids.truncate(max_tokens);
                Ok(ids)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::from_ids(
            &spell(&concept.target)?,
            &spell(&concept.competing)?,
            &ids,
            max_sentences,
            lm.eos(),
        ))
    }
}

/// Pads token lists `[r][m_i]` into `[r, m]` ids and a `[r, m]` 0/1 mask.
fn pad_sets(sets: &[&[i64]], device: tch::Device) -> (Tensor, Tensor) {
    pad_batch(sets, 0, device)
}

/// log Σ over each row's token set of `log_probs` `[r, t, v]` -> `[r, t]`; `ids`, `mask` `[r, m]`.
fn log_sum_over(log_probs: &Tensor, ids: &Tensor, mask: &Tensor) -> Tensor {
    let t = log_probs.size()[1];
    let m = ids.size()[1];
    let picked = log_probs.gather(2, &ids.unsqueeze(1).expand([-1, t, m], false), false); // [r, t, m]
    let off = (mask.ones_like() - mask).unsqueeze(1) * -1e30; // [r, 1, m]
    (picked + off).logsumexp([2], false) // [r, t]
}

/// The attribute score of each image (module doc): `prefix` [b, k, d] and one [`AttributeTarget`] per image (an
/// image without one scores 0). Returns [b].
pub fn attribute_log_odds(
    lm: &Gpt2,
    prefix: &Tensor,
    targets: &[Option<AttributeTarget>],
) -> Result<Tensor> {
    let (b, k, _) = prefix.size3()?;
    if targets.len() as i64 != b {
        bail!("{} attribute targets for {b} images", targets.len());
    }
    let device = prefix.device();
    // One row per (image, sentence): the sentence, where it is read, the image's token sets.
    let mut rows: Vec<(usize, &[i64], &[usize], &AttributeTarget)> = Vec::new();
    for (image, t) in targets.iter().enumerate() {
        let Some(t) = t else { continue };
        for (s, at) in t.sentences.iter().zip(&t.positions) {
            rows.push((image, s, at, t));
        }
    }
    let out = Tensor::zeros([b], (Kind::Float, device));
    if rows.is_empty() {
        return Ok(out + prefix.sum(Kind::Float) * 0.0);
    }
    let seqs: Vec<&[i64]> = rows.iter().map(|r| r.1).collect();
    let (ids, _) = pad_batch(&seqs, 0, device); // [r, t]
    let t = ids.size()[1];
    let mut read = vec![0f32; rows.len() * t as usize];
    for (i, (_, _, at, _)) in rows.iter().enumerate() {
        for &j in *at {
            read[i * t as usize + j] = 1.0;
        }
    }
    let read = Tensor::from_slice(&read).view([-1, t]).to_device(device); // [r, t]
    let owner =
        Tensor::from_slice(&rows.iter().map(|r| r.0 as i64).collect::<Vec<_>>()).to_device(device);
    let row_prefix = prefix.index_select(0, &owner); // [r, k, d]
    let tokens = Tensor::embedding(lm.wte(), &ids, -1, false, false); // [r, t, d]
    let embeds = Tensor::cat(&[&row_prefix, &tokens], 1).narrow(1, 0, k + t - 1); // [r, k+t-1, d]
    let log_probs = lm
        .forward_embeds(&embeds, None, false)?
        .narrow(1, k - 1, t)
        .log_softmax(-1, Kind::Float); // [r, t, v]; position j predicts ids[j]
    let sets = |f: fn(&AttributeTarget) -> &[i64]| {
        let lists: Vec<&[i64]> = rows.iter().map(|r| f(r.3)).collect();
        pad_sets(&lists, device) // [r, m] each
    };
    let (t_ids, t_mask) = sets(|a| &a.target);
    let (c_ids, c_mask) = sets(|a| &a.competing);
    let odds =
        log_sum_over(&log_probs, &t_ids, &t_mask) - log_sum_over(&log_probs, &c_ids, &c_mask); // [r, t]
    let per_row = (odds * &read).sum_dim_intlist(1, false, Kind::Float)
        / read.sum_dim_intlist(1, false, Kind::Float).clamp_min(1.0); // [r]
    let per_image = out.index_add(0, &owner, &per_row);
    let counts = Tensor::zeros([b], (Kind::Float, device))
        .index_add(0, &owner, &Tensor::ones_like(&per_row))
        .clamp_min(1.0);
    Ok(per_image / counts) // [b]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::gpt2::Config;
    use tch::{nn, Device};

    #[test]
    fn positions_and_fallbacks_are_where_place_words_are_written() {
        // Target spellings: [5] and [6, 7] (a two-token spelling); competing: [8] and [5, 9] (shares 5's onset).
        let target = vec![vec![5], vec![6, 7]];
        let competing = vec![vec![8], vec![5, 9]];
        let sentences = vec![
            vec![1, 2, 3, 0],    // no place word
            vec![1, 5, 2, 8, 0], // 5 at 1, 8 at 3
            vec![6, 2, 6, 7, 0], // 6 alone at 0 is no spelling; [6, 7] at 2
            vec![8, 0],          // kept only when max_sentences >= 3
        ];
        let a = AttributeTarget::from_ids(&target, &competing, &sentences, 2, 99).unwrap();
        assert_eq!(a.target, [5, 6]);
        assert_eq!(a.competing, [5, 8]);
        assert_eq!(a.sentences, [sentences[1].clone(), sentences[2].clone()]);
        assert_eq!(a.positions, [vec![1, 3], vec![2]]);
        assert!(!a.fallback);
        let all = AttributeTarget::from_ids(&target, &competing, &sentences, 8, 99).unwrap();
        assert_eq!(all.positions, [vec![1, 3], vec![2], vec![0]]);
        let none = AttributeTarget::from_ids(&target, &competing, &sentences[..1], 8, 99).unwrap();
        assert!(none.fallback);
        assert_eq!(
            (none.sentences, none.positions),
            (vec![vec![99]], vec![vec![0]])
        );
        assert!(AttributeTarget::from_ids(&target, &[], &sentences, 8, 99).is_none());
    }

    #[test]
    fn the_score_is_the_log_odds_written_out() {
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let lm = Gpt2::new(&vs.root(), &Config::tiny(20, 0, 0));
        let d = lm.config().n_embd;
        let prefix = Tensor::randn([3, 2, d], (Kind::Float, Device::Cpu)); // [b, k, d]
        let a0 = AttributeTarget::from_ids(
            &[vec![5], vec![6]],
            &[vec![8], vec![9]],
            &[vec![1, 5, 2, 8, 0], vec![3, 9, 0], vec![4, 4, 0]],
            8,
            0,
        )
        .unwrap();
        let a2 = AttributeTarget::from_ids(&[vec![8]], &[vec![5], vec![6]], &[vec![1, 2, 0]], 8, 0)
            .unwrap(); // a fallback
        assert!(a2.fallback);
        let targets = [Some(a0.clone()), None, Some(a2.clone())];
        let got =
            Vec::<f64>::try_from(attribute_log_odds(&lm, &prefix, &targets).unwrap()).unwrap();
        // By explicit loops: each sentence alone after its image's prefix, the full vocabulary's softmax.
        let by_hand = |image: i64, a: &AttributeTarget| -> f64 {
            let mut per_sentence = Vec::new();
            for (s, at) in a.sentences.iter().zip(&a.positions) {
                let ids = Tensor::from_slice(s).view([1, -1]);
                let embeds = Tensor::cat(
                    &[
                        prefix.narrow(0, image, 1),
                        Tensor::embedding(lm.wte(), &ids, -1, false, false),
                    ],
                    1,
                );
                let logits = lm.forward_embeds(&embeds, None, false).unwrap(); // [1, k+t, v]
                let mut sum = 0.0;
                for &j in at {
                    let row =
                        Vec::<f64>::try_from(logits.get(0).get(1 + j as i64).to_kind(Kind::Double))
                            .unwrap();
                    let z: f64 = row.iter().map(|l| l.exp()).sum();
                    let p = |w: &[i64]| w.iter().map(|&w| row[w as usize].exp() / z).sum::<f64>();
                    sum += p(&a.target).ln() - p(&a.competing).ln();
                }
                per_sentence.push(sum / at.len() as f64);
            }
            per_sentence.iter().sum::<f64>() / per_sentence.len() as f64
        };
        let want = [by_hand(0, &a0), 0.0, by_hand(2, &a2)];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "got {got:?}, want {want:?}");
        }
        // The fallback reads the prefix alone: log p(8) - log (p(5) + p(6)) at the prefix's last position.
        assert_ne!(got[2], 0.0);
    }
}
