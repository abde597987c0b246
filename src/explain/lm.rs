//! The frozen language model of TExplain and the two trainings around it (paper sections 2 and 3):
//! - [`LanguageModel`]: a GPT-2 and its tokenizer, loaded from an HF folder, with the token facts sampling needs;
//! - pretraining a small GPT-2 on the text-only caption corpus (when no pretrained LM is given);
//! - training the translator with classifier and LM frozen: LM cross-entropy of a caption given the prefix
//!   (as ClipCap trains its mapping network).
//!
//! Both trainings run through the one loop, [`crate::train::fit`].
use anyhow::Result;
use rand_chacha::ChaCha8Rng;
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

use crate::models::gpt2::Gpt2;
use crate::models::translator::Translator;
use crate::text::tokenizer::{self, Tokenizer, TokenizerKind};
use crate::train::{fit, Sampling, TrainConfig};

/// The frozen language model and its tokenizer (an HF GPT-2 folder: config.json, model.safetensors,
/// tokenizer.json).
pub struct LanguageModel {
    pub vs: nn::VarStore,
    pub model: Gpt2,
    pub tokenizer: Tokenizer,
}

impl LanguageModel {
    /// Loads an HF GPT-2 folder onto `device`, frozen.
    pub fn from_folder(dir: &Path, device: Device) -> Result<Self> {
        let tokenizer = tokenizer::load(&dir.join("tokenizer.json"))?;
        let mut vs = nn::VarStore::new(device);
        let (model, report) = Gpt2::from_hf_folder(&mut vs, dir)?;
        tracing::debug!(?report, "language model loaded");
        vs.freeze();
        Ok(Self {
            vs,
            model,
            tokenizer,
        })
    }

    /// `[vocab]` bool: whether each token starts a word (every word-level token; `Ġ`-initial BPE tokens).
    pub fn word_start(&self) -> Tensor {
        let vocab = self.model.config().vocab_size as usize;
        let eos = self.tokenizer.eos_id();
        let starts: Vec<bool> = (0..vocab as u32)
            .map(|id| {
                id != eos
                    && match self.tokenizer.kind() {
                        TokenizerKind::WordLevel => true,
                        _ => self
                            .tokenizer
                            .id_to_token(id)
                            .is_some_and(|t| t.starts_with('Ġ')),
                    }
            })
            .collect();
        Tensor::from_slice(&starts)
    }

    /// Token ids of a caption followed by EOS.
    pub fn encode_sentence(&self, text: &str) -> Result<Vec<i64>> {
        let mut ids: Vec<i64> = self
            .tokenizer
            .encode(text)?
            .into_iter()
            .map(i64::from)
            .collect();
        ids.push(self.tokenizer.eos_id() as i64);
        Ok(ids)
    }

    /// The EOS token (also BOS and padding).
    pub fn eos(&self) -> i64 {
        self.tokenizer.eos_id() as i64
    }

    /// Width of the token embeddings (the translator's output width).
    pub fn n_embd(&self) -> i64 {
        self.model.config().n_embd
    }
}

/// Right-pads token sequences with `pad` into `[b, t]` ids and a `[b, t]` 0/1 mask of real tokens.
pub fn pad_batch(seqs: &[&[i64]], pad: i64, device: Device) -> (Tensor, Tensor) {
    let t = seqs.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
    let mut ids = vec![pad; seqs.len() * t];
    let mut mask = vec![0f32; seqs.len() * t];
    for (row, seq) in seqs.iter().enumerate() {
        ids[row * t..row * t + seq.len()].copy_from_slice(seq);
        mask[row * t..row * t + seq.len()]
            .iter_mut()
            .for_each(|m| *m = 1.0);
    }
    let shape = [seqs.len() as i64, t as i64];
    (
        Tensor::from_slice(&ids).reshape(shape).to_device(device),
        Tensor::from_slice(&mask).reshape(shape).to_device(device),
    )
}

/// Mean cross-entropy over masked positions. `logits` [b, t, v], `targets` [b, t], `mask` [b, t].
pub fn masked_lm_loss(logits: &Tensor, targets: &Tensor, mask: &Tensor) -> Tensor {
    let (b, t, v) = logits.size3().expect("logits are [b, t, vocab]");
    let nll = logits
        .reshape([b * t, v])
        .log_softmax(-1, Kind::Float)
        .gather(1, &targets.reshape([b * t, 1]), false)
        .neg()
        .reshape([b, t]);
    (nll * mask).sum(Kind::Float) / mask.sum(Kind::Float).clamp_min(1.0)
}

/// Next-token loss of caption `ids` [b, t] (EOS-terminated, padded) after prefix embeddings [b, k, d]:
/// position k-1+j predicts token j. The LM is frozen, so it runs in eval mode (no dropout).
pub fn prefix_caption_loss(
    lm: &Gpt2,
    prefix: &Tensor,
    ids: &Tensor,
    mask: &Tensor,
) -> Result<Tensor> {
    let k = prefix.size()[1];
    let t = ids.size()[1];
    let tokens = Tensor::embedding(lm.wte(), ids, -1, false, false); // [b, t, d]
    let embeds = Tensor::cat(&[prefix, &tokens], 1); // [b, k+t, d]
    let logits = lm.forward_embeds(&embeds.narrow(1, 0, k + t - 1), None, false)?; // [b, k+t-1, v]
    Ok(masked_lm_loss(&logits.narrow(1, k - 1, t), ids, mask))
}

/// Trains with [`fit`] on `n_train` examples, logging each epoch's loss, then the mean loss over `n_val`
/// held-out examples without gradients. `batch_loss(indices, held_out)` is the mean loss of those train (or, when
/// `held_out`, validation) examples. Returns (train loss per epoch, validation loss).
fn fit_with_val_loss(
    vs: &nn::VarStore,
    cfg: &TrainConfig,
    (n_train, n_val): (usize, usize),
    what: &str,
    rng: &mut ChaCha8Rng,
    batch_loss: impl Fn(&[usize], bool) -> Result<Tensor>,
) -> Result<(Vec<f64>, f64)> {
    let epochs = fit(
        vs,
        cfg,
        &Sampling::Shuffle(n_train),
        rng,
        what,
        |chunk| batch_loss(chunk, false),
        |e| {
            tracing::info!(epoch = e.epoch, loss = e.train_loss, "{what}");
            Ok(())
        },
    )?;
    let val_loss = tch::no_grad(|| -> Result<f64> {
        let mut sum = 0.0;
        let all: Vec<usize> = (0..n_val).collect();
        for chunk in all.chunks(cfg.batch_size) {
            sum += batch_loss(chunk, true)?.double_value(&[]) * chunk.len() as f64;
        }
        Ok(sum / n_val.max(1) as f64)
    })?;
    Ok((epochs.iter().map(|e| e.train_loss).collect(), val_loss))
}

/// Pretrains `lm` on token sequences (each starts with BOS and ends with EOS). Returns the mean train loss per
/// epoch and the held-out loss on `val`.
pub fn pretrain_lm(
    lm: &Gpt2,
    vs: &nn::VarStore,
    train: &[Vec<i64>],
    val: &[Vec<i64>],
    cfg: &TrainConfig,
    pad: i64,
    rng: &mut ChaCha8Rng,
) -> Result<(Vec<f64>, f64)> {
    let device = vs.device();
    fit_with_val_loss(
        vs,
        cfg,
        (train.len(), val.len()),
        "language model",
        rng,
        |index, held_out| {
            let set = if held_out { val } else { train };
            let seqs: Vec<&[i64]> = index.iter().map(|&i| set[i].as_slice()).collect();
            next_token_loss(lm, &seqs, pad, device, !held_out)
        },
    )
}

/// Plain language-model loss of BOS-initial sequences: position i predicts token i+1.
fn next_token_loss(
    lm: &Gpt2,
    seqs: &[&[i64]],
    pad: i64,
    device: Device,
    train: bool,
) -> Result<Tensor> {
    let (ids, mask) = pad_batch(seqs, pad, device);
    let t = ids.size()[1];
    let logits = lm.forward(&ids.narrow(1, 0, t - 1), None, train)?; // [b, t-1, v]
    Ok(masked_lm_loss(
        &logits,
        &ids.narrow(1, 1, t - 1),
        &mask.narrow(1, 1, t - 1),
    ))
}

/// One caption of a caption set: which cached feature row it describes, and its EOS-terminated token ids.
pub struct CaptionExample {
    pub image: usize,
    pub ids: Vec<i64>,
}

/// Training the translator with the LM frozen, on cached classifier features.
pub struct TranslatorTraining<'a> {
    pub translator: &'a Translator,
    pub lm: &'a LanguageModel,
    /// Classifier token activations `[n_images, p+1, d]`, one row per caption image.
    pub features: &'a Tensor,
    pub train: &'a [CaptionExample],
    pub val: &'a [CaptionExample],
    pub cfg: &'a TrainConfig,
}

impl TranslatorTraining<'_> {
    /// Trains the translator (its variables in `vs`). Returns (train loss per epoch, validation loss on `val`).
    pub fn run(&self, vs: &nn::VarStore, rng: &mut ChaCha8Rng) -> Result<(Vec<f64>, f64)> {
        let device = vs.device();
        let batch_loss = |examples: &[&CaptionExample]| -> Result<Tensor> {
            let index: Vec<i64> = examples.iter().map(|e| e.image as i64).collect();
            let feats = self.features.index_select(
                0,
                &Tensor::from_slice(&index).to_device(self.features.device()),
            );
            let prefix = self.translator.forward(&feats.to_device(device))?; // [b, k, d_lm]
            let seqs: Vec<&[i64]> = examples.iter().map(|e| e.ids.as_slice()).collect();
            let (ids, mask) = pad_batch(&seqs, self.lm.eos(), device);
            prefix_caption_loss(&self.lm.model, &prefix, &ids, &mask)
        };
        fit_with_val_loss(
            vs,
            self.cfg,
            (self.train.len(), self.val.len()),
            "translator",
            rng,
            |index, held_out| {
                let set = if held_out { self.val } else { self.train };
                batch_loss(&index.iter().map(|&i| &set[i]).collect::<Vec<_>>())
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_and_masked_loss_ignore_padded_positions() {
        let (ids, mask) = pad_batch(&[&[1, 2, 3], &[4]], 0, Device::Cpu);
        assert_eq!(
            Vec::<i64>::try_from(ids.reshape([-1])).unwrap(),
            vec![1, 2, 3, 4, 0, 0]
        );
        assert_eq!(
            Vec::<f32>::try_from(mask.reshape([-1])).unwrap(),
            vec![1., 1., 1., 1., 0., 0.]
        );
        // Uniform logits over 5 tokens: loss ln 5 whatever the targets, and padded positions do not count.
        let logits = Tensor::zeros([2, 3, 5], (Kind::Float, Device::Cpu));
        let loss = masked_lm_loss(&logits, &ids, &mask).double_value(&[]);
        assert!((loss - 5f64.ln()).abs() < 1e-6);
        let peaked = Tensor::zeros([2, 3, 5], (Kind::Float, Device::Cpu));
        let _ = peaked.get(1).get(1).get(0).fill_(100.0); // a padded position, confidently wrong target? ignored
        let loss2 = masked_lm_loss(&peaked, &ids, &mask).double_value(&[]);
        assert!((loss2 - loss).abs() < 1e-6);
    }
}
