//! Batched nucleus sampling from the frozen language model given translator prefixes (paper section 2:
//! "N sentences per image with nucleus sampling, p = 0.95").
//!
//! All images of a batch and all their samples decode together, one row each, with the KV cache: the prefix is
//! run once, then one token per step for every row. Word limits are counted on tokens that start a word (every
//! token of a word-level tokenizer; `Ġ`-initial tokens of GPT-2's BPE): EOS is blocked before `min_words`, and a
//! row ends when it would start word `max_words + 1`. Determinism: one tch generator seeded by the caller.
//!
//! Step count: with a word-level vocabulary (every token but EOS starts a word) a row holds exactly `max_words`
//! words after `max_words` tokens, so decoding stops there instead of sampling one more token only to see it start
//! a new word; the forward pass after the last sampled token is skipped; and on the CPU (where a host read costs
//! nothing) the all-rows-finished check runs every step, on CUDA every 8 steps to keep the queue full.
use tch::{Device, Kind, Tensor};

use crate::models::gpt2::{Gpt2, KvCache};

/// Sampling settings (the `explain` section of a config).
#[derive(Debug, Clone, Copy)]
pub struct Nucleus {
    pub top_p: f64,
    pub temperature: f64,
    pub min_words: usize,
    pub max_words: usize,
}

/// Keeps the smallest set of most probable tokens whose mass reaches `top_p` and samples from it.
/// `logits`: [rows, vocab] -> token ids [rows].
pub fn sample_top_p(logits: &Tensor, top_p: f64, temperature: f64) -> Tensor {
    let probs = (logits / temperature).softmax(-1, Kind::Float); // [rows, vocab]
    let (sorted, order) = probs.sort(-1, true);
    let before = sorted.cumsum(-1, Kind::Float) - &sorted; // mass of the strictly more probable tokens
    let kept = sorted.masked_fill(&before.gt(top_p), 0.0); // the first token always survives (before = 0)
    let choice = kept.multinomial(1, false); // [rows, 1]; multinomial renormalises
    order.gather(-1, &choice, false).squeeze_dim(-1)
}

/// Samples `n` sentences for each prefix. `prefix`: [b, k, d_lm]. Returns token ids per image per sample,
/// without the EOS. `word_start`: [vocab] bool, whether a token starts a word.
pub fn sample_sentences(
    lm: &Gpt2,
    prefix: &Tensor,
    n: usize,
    cfg: &Nucleus,
    eos_id: i64,
    word_start: &Tensor,
) -> anyhow::Result<Vec<Vec<Vec<u32>>>> {
    let (b, k, d) = prefix.size3()?;
    let rows = b * n as i64;
    let device = prefix.device();
    // Whether every token but EOS starts a word (word-level tokenizer): then the word count is the token count.
    let word_level = word_start
        .logical_or(
            &Tensor::arange(word_start.size1()?, (Kind::Int64, word_start.device())).eq(eos_id),
        )
        .all()
        .int64_value(&[])
        == 1;
    let max_steps = if word_level {
        cfg.max_words as i64
    } else {
        cfg.max_words as i64 * 4 // BPE words can span tokens
    }
    .min(lm.config().n_positions - k);
    anyhow::ensure!(
        max_steps > 0,
        "sampling needs max_words > 0 and room after the {k} prefix positions, got max_words {}",
        cfg.max_words
    );
    let check_every = if device.is_cuda() { 8 } else { 1 };
    let word_start = word_start.to_device(device).to_kind(Kind::Int64); // [vocab] 0/1
    let tokens = tch::no_grad(|| -> anyhow::Result<Tensor> {
        let prefix = prefix
            .unsqueeze(1)
            .expand([b, n as i64, k, d], false)
            .reshape([rows, k, d]); // [rows, k, d]
        let mut cache = KvCache::new(lm.config().n_layer);
        let mut logits = lm
            .forward_embeds(&prefix, Some(&mut cache), false)?
            .select(1, k - 1); // [rows, vocab]
        let mut words = Tensor::zeros([rows], (Kind::Int64, device));
        let mut done = Tensor::zeros([rows], (Kind::Bool, device));
        let mut out = Vec::with_capacity(max_steps as usize);
        for step in 0..max_steps {
            let blocked = words.lt(cfg.min_words as i64); // [rows]
            let eos_column = logits.select(1, eos_id);
            let _ = eos_column
                .shallow_clone()
                .masked_fill_(&blocked, f64::NEG_INFINITY);
            let next = sample_top_p(&logits, cfg.top_p, cfg.temperature); // [rows]
            words += word_start.index_select(0, &next);
            let ends = next.eq(eos_id).logical_or(&words.gt(cfg.max_words as i64));
            done = done.logical_or(&ends);
            let next = next.masked_fill(&done, eos_id);
            out.push(next.shallow_clone());
            // A device->host sync every `check_every` steps to stop early; the rows themselves never leave the
            // device. No forward pass after the last token.
            if step + 1 == max_steps
                || (step % check_every == check_every - 1 && done.all().int64_value(&[]) == 1)
            {
                break;
            }
            let embeds = Tensor::embedding(lm.wte(), &next.unsqueeze(1), -1, false, false); // [rows, 1, d]
            logits = lm
                .forward_embeds(&embeds, Some(&mut cache), false)?
                .select(1, 0);
        }
        Ok(Tensor::stack(&out, 1)) // [rows, steps]
    })?;
    let tokens = tokens.to_device(Device::Cpu).to_kind(Kind::Int64);
    let steps = tokens.size()[1] as usize;
    let flat: Vec<i64> = Vec::try_from(tokens.reshape([-1]))?;
    let mut per_image = Vec::with_capacity(b as usize);
    for image in 0..b as usize {
        let mut samples = Vec::with_capacity(n);
        for s in 0..n {
            let row = &flat[(image * n + s) * steps..(image * n + s + 1) * steps];
            samples.push(
                row.iter()
                    .take_while(|&&t| t != eos_id)
                    .map(|&t| t as u32)
                    .collect(),
            );
        }
        per_image.push(samples);
    }
    Ok(per_image)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::gpt2::Config;
    use tch::nn;

    /// A random 2-layer GPT-2 over 50 tokens (EOS = 0) and a prefix for 2 images.
    fn tiny_lm() -> (nn::VarStore, Gpt2, Tensor) {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let cfg = Config {
            n_embd: 16,
            n_layer: 2,
            n_head: 2,
            n_positions: 32,
            ..Config::tiny(50, 0, 0)
        };
        let lm = Gpt2::new(&vs.root(), &cfg);
        let prefix = Tensor::randn([2, 3, 16], (Kind::Float, Device::Cpu));
        (vs, lm, prefix)
    }

    #[test]
    fn word_limits_bound_the_sentences() {
        let (_vs, lm, prefix) = tiny_lm();
        // Word-level vocabulary: every token but EOS starts a word. Even tokens start words in the BPE-like case.
        let word_level = Tensor::arange(50, (Kind::Int64, Device::Cpu)).ne(0);
        let bpe_like = Tensor::arange(50, (Kind::Int64, Device::Cpu))
            .remainder(2)
            .eq(0)
            .logical_and(&word_level);
        for (mask, min_words, max_words) in
            [(&word_level, 6, 6), (&word_level, 2, 5), (&bpe_like, 3, 4)]
        {
            let cfg = Nucleus {
                top_p: 0.95,
                temperature: 1.0,
                min_words,
                max_words,
            };
            let out = sample_sentences(&lm, &prefix, 4, &cfg, 0, mask).unwrap();
            assert_eq!(out.len(), 2);
            let starts: Vec<bool> = Vec::try_from(mask).unwrap();
            for sentence in out.iter().flatten() {
                let words = sentence.iter().filter(|&&t| starts[t as usize]).count();
                assert!(
                    (min_words..=max_words).contains(&words),
                    "{words} words outside {min_words}..={max_words}: {sentence:?}"
                );
                assert!(!sentence.contains(&0), "EOS inside a sentence");
                if min_words == max_words && std::ptr::eq(mask, &word_level) {
                    assert_eq!(sentence.len(), max_words);
                }
            }
        }
    }

    #[test]
    fn top_p_keeps_only_the_nucleus() {
        tch::manual_seed(0);
        // Probabilities 0.6, 0.3, 0.1: top_p 0.5 keeps only token 0; 0.8 keeps tokens 0 and 1.
        let logits = Tensor::from_slice(&[0.6f32, 0.3, 0.1])
            .log()
            .unsqueeze(0)
            .repeat([2000, 1]);
        let only_first = sample_top_p(&logits, 0.5, 1.0);
        assert_eq!(only_first.eq(0).sum(Kind::Int64).int64_value(&[]), 2000);
        let two = sample_top_p(&logits, 0.8, 1.0);
        assert_eq!(
            two.eq(2).sum(Kind::Int64).int64_value(&[]),
            0,
            "token 2 lies outside the 0.8 nucleus"
        );
        let ones = two.eq(1).sum(Kind::Int64).int64_value(&[]) as f64 / 2000.0;
        assert!(
            (ones - 1.0 / 3.0).abs() < 0.05,
            "renormalised 0.3/0.9, got {ones}"
        );
    }
}
