//! Batched nucleus sampling from the frozen language model given translator prefixes (paper section 2:
//! "N sentences per image with nucleus sampling, p = 0.95").
//!
//! All images of a batch and all their samples decode together, one row each, with the KV cache: the prefix is
//! run once per image and its cache repeated for the samples, then one token per step for every row. Word limits
//! are counted on tokens that start a word (every token of a word-level tokenizer; `Ġ`-initial tokens of GPT-2's
//! BPE): EOS is blocked before `min_words`, and a row ends when it would start word `max_words + 1`. Determinism: one tch generator seeded by the caller.
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
///
/// On the CPU by rejection ([`nucleus_by_rejection`]): sorting every row of the vocabulary at every step was the
/// larger part of a sampling step there. On CUDA by sorting ([`nucleus_by_sort`]): the GPU sorts fast and the
/// rejection loop would need a host read per step.
pub fn sample_top_p(logits: &Tensor, top_p: f64, temperature: f64) -> Tensor {
    let probs = if temperature == 1.0 {
        logits.softmax(-1, Kind::Float)
    } else {
        (logits / temperature).softmax(-1, Kind::Float)
    }; // [rows, vocab]
    if probs.device().is_cuda() {
        nucleus_by_sort(&probs, top_p)
    } else {
        nucleus_by_rejection(&probs, top_p)
    }
}

/// Nucleus sampling by sorting: `probs` [rows, vocab] (rows sum to 1) -> token ids [rows].
pub fn nucleus_by_sort(probs: &Tensor, top_p: f64) -> Tensor {
    let (sorted, order) = probs.sort(-1, true);
    let before = sorted.cumsum(-1, Kind::Float) - &sorted; // mass of the strictly more probable tokens
    let kept = sorted.masked_fill(&before.gt(top_p), 0.0); // the first token always survives (before = 0)
    let choice = kept.multinomial(1, false); // [rows, 1]; multinomial renormalises
    order.gather(-1, &choice, false).squeeze_dim(-1)
}

/// Candidates drawn per row and round in [`nucleus_by_rejection`]: 2 is the fewest that libtorch draws from a
/// cumulative sum (a single draw takes its exponential-noise path, one random number per vocabulary entry).
const CANDIDATES: i64 = 2;
/// Rounds before [`nucleus_by_rejection`] hands the remaining rows to [`nucleus_by_sort`].
const MAX_ROUNDS: usize = 8;

/// Nucleus sampling without sorting, exact: draw from the full distribution and keep the first draw that lies in
/// the nucleus. A token lies in it when the tokens strictly more probable than it hold at most `top_p` of the mass
/// (the criterion of [`nucleus_by_sort`]; tied probabilities all count as inside), so accepted draws follow the
/// renormalised nucleus distribution. Every draw is accepted with probability >= `top_p`, so after a round of 2
/// candidates a row is undecided with probability <= (1 - top_p)^2 (0.25% at 0.95); later rounds redraw only for
/// those rows, and rows still undecided after [`MAX_ROUNDS`] rounds are sampled by sorting.
/// `probs` [rows, vocab] -> token ids [rows].
pub fn nucleus_by_rejection(probs: &Tensor, top_p: f64) -> Tensor {
    let mut chosen = rejection_round(probs, top_p); // [rows], -1 = undecided
    for _ in 1..MAX_ROUNDS {
        let open = chosen.lt(0).nonzero().squeeze_dim(-1); // [u]
        if open.size()[0] == 0 {
            return chosen;
        }
        let redrawn = rejection_round(&probs.index_select(0, &open), top_p); // [u]
        chosen = chosen.index_put(&[Some(open)], &redrawn, false);
    }
    let sorted = nucleus_by_sort(probs, top_p);
    chosen.where_self(&chosen.ge(0), &sorted)
}

/// One round of [`nucleus_by_rejection`]: the first of [`CANDIDATES`] draws per row that lies in the nucleus, or
/// -1. `probs` [rows, vocab] -> [rows].
fn rejection_round(probs: &Tensor, top_p: f64) -> Tensor {
    let candidates = probs.multinomial(CANDIDATES, true); // [rows, c]
    let p = probs.gather(-1, &candidates, false).unsqueeze(-1); // [rows, c, 1]
    let all = probs.unsqueeze(1); // [rows, 1, vocab]
    let before = all
        .masked_fill(&all.le_tensor(&p), 0.0)
        .sum_dim_intlist(-1, false, Kind::Float); // [rows, c]: mass strictly more probable than each draw
    let inside = before.le(top_p); // [rows, c]
    let first = inside.to_kind(Kind::Float).argmax(-1, true); // [rows, 1]: the first accepted draw
    let pick = candidates.gather(-1, &first, false).squeeze_dim(-1); // [rows]
    pick.masked_fill(&inside.any_dim(-1, false).logical_not(), -1)
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
    let (b, k, _) = prefix.size3()?;
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
        // The samples of an image share its prefix: run it once per image, then repeat the cached keys/values
        // and the last logits n times (rows image-major: image * n + sample).
        let mut cache = KvCache::with_capacity(lm.config().n_layer, k + max_steps);
        let last = lm
            .forward_embeds(prefix, Some(&mut cache), false)?
            .select(1, k - 1); // [b, vocab]
        let per_row =
            Tensor::arange(b, (Kind::Int64, device)).repeat_interleave_self_int(n as i64, 0, None); // [rows]
        cache.select(&per_row);
        let mut logits = last.index_select(0, &per_row); // [rows, vocab]
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
        let probs = Tensor::from_slice(&[0.6f32, 0.3, 0.1])
            .unsqueeze(0)
            .repeat([2000, 1]);
        let logits = probs.log();
        let samplers: [(&str, &dyn Fn(f64) -> Tensor); 3] = [
            ("sample_top_p", &|p| sample_top_p(&logits, p, 1.0)),
            ("by_sort", &|p| nucleus_by_sort(&probs, p)),
            ("by_rejection", &|p| nucleus_by_rejection(&probs, p)),
        ];
        for (name, sample) in samplers {
            let only_first = sample(0.5);
            assert_eq!(
                only_first.eq(0).sum(Kind::Int64).int64_value(&[]),
                2000,
                "{name}"
            );
            let two = sample(0.8);
            assert_eq!(
                two.eq(2).sum(Kind::Int64).int64_value(&[]),
                0,
                "{name}: token 2 lies outside the 0.8 nucleus"
            );
            let ones = two.eq(1).sum(Kind::Int64).int64_value(&[]) as f64 / 2000.0;
            assert!(
                (ones - 1.0 / 3.0).abs() < 0.05,
                "{name}: renormalised 0.3/0.9, got {ones}"
            );
            let all = sample(1.0);
            let twos = all.eq(2).sum(Kind::Int64).int64_value(&[]) as f64 / 2000.0;
            assert!(
                (twos - 0.1).abs() < 0.03,
                "{name}: top_p 1 keeps all, got {twos}"
            );
        }
    }

    #[test]
    fn rejection_and_sorting_agree_on_a_flat_distribution() {
        // Near-uniform rows (a random LM): the nucleus is most of the vocabulary and draws get rejected often
        // enough to exercise the acceptance test. Both samplers must give the same token frequencies.
        tch::manual_seed(3);
        let logits = Tensor::randn([1, 20], (Kind::Float, Device::Cpu)) * 0.5;
        let probs = logits.softmax(-1, Kind::Float).repeat([20000, 1]);
        let freq = |t: Tensor| t.bincount(None::<Tensor>, 20).to_kind(Kind::Float) / 20000.0;
        let a = freq(nucleus_by_sort(&probs, 0.7));
        let b = freq(nucleus_by_rejection(&probs, 0.7));
        let max_gap = (&a - &b).abs().max().double_value(&[]);
        assert!(max_gap < 0.015, "{a} vs {b}");
        let outside = a.eq(0.0).sum(Kind::Int64).int64_value(&[]);
        assert!(outside > 0, "top_p 0.7 leaves some tokens out");
        assert!(a.eq(0.0).eq_tensor(&b.eq(0.0)).all().int64_value(&[]) == 1);
    }
}
