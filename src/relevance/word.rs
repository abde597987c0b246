//! Word-targeted relevance (paper section 4.3): where in the image the classifier's features make the language
//! model say a given word. The score of an image is the teacher-forced log-probability of its target word over
//! sampled sentences that contain it, given the translator's prefix; its gradient with respect to the classifier's
//! token activations gives the GradCAM map ([`super::gradcam`]).
use anyhow::Result;
use tch::{Device, Kind, Tensor};

use super::gradcam::gradcam_from_score;
use crate::data::InputPipeline;
use crate::explain::lm::{pad_batch, LanguageModel};
use crate::models::gpt2::Gpt2;
use crate::models::translator::Translator;
use crate::models::vit::Vit;

/// Teacher-forced log-probability of `target` wherever it occurs in each sentence, after each image's prefix,
/// averaged over the image's sentences. `prefix` [b, k, d]; `sentences[i]` are image i's token sequences
/// (each must hold `targets[i]`; an image without one scores its word as the first token). Returns [b].
pub fn target_log_prob(
    lm: &Gpt2,
    prefix: &Tensor,
    sentences: &[Vec<Vec<i64>>],
    targets: &[i64],
) -> Result<Tensor> {
    let (b, k, _) = prefix.size3()?;
    let device = prefix.device();
    let mut rows: Vec<(usize, Vec<i64>)> = Vec::new();
    for (image, sents) in sentences.iter().enumerate() {
        if sents.is_empty() {
            rows.push((image, vec![targets[image]]));
        }
        rows.extend(sents.iter().map(|s| (image, s.clone())));
    }
    let seqs: Vec<&[i64]> = rows.iter().map(|(_, s)| s.as_slice()).collect();
    let (ids, mask) = pad_batch(&seqs, 0, device); // [r, t]
    let t = ids.size()[1];
    let owner = Tensor::from_slice(&rows.iter().map(|(i, _)| *i as i64).collect::<Vec<_>>())
        .to_device(device);
    let target_per_row = Tensor::from_slice(targets)
        .to_device(device)
        .index_select(0, &owner); // [r]
    let row_prefix = prefix.index_select(0, &owner); // [r, k, d]
    let tokens = Tensor::embedding(lm.wte(), &ids, -1, false, false); // [r, t, d]
    let embeds = Tensor::cat(&[&row_prefix, &tokens], 1).narrow(1, 0, k + t - 1); // [r, k+t-1, d]
    let logits = lm.forward_embeds(&embeds, None, false)?.narrow(1, k - 1, t); // [r, t, v]; position j predicts ids[j]
    let log_probs = logits
        .log_softmax(-1, Kind::Float)
        .gather(2, &ids.unsqueeze(-1), false)
        .squeeze_dim(-1); // [r, t]
    let is_target = ids
        .eq_tensor(&target_per_row.unsqueeze(1))
        .to_kind(Kind::Float)
        * &mask; // [r, t]
    let per_row = (log_probs * &is_target).sum_dim_intlist(1, false, Kind::Float)
        / is_target
            .sum_dim_intlist(1, false, Kind::Float)
            .clamp_min(1.0); // [r]
    let per_image = Tensor::zeros([b], (Kind::Float, device)).index_add(0, &owner, &per_row);
    let counts = Tensor::zeros([b], (Kind::Float, device)).index_add(
        0,
        &owner,
        &Tensor::ones_like(&per_row),
    );
    Ok(per_image / counts)
}

/// The word a sample's map targets, as a token, and the image's sentences (token ids) that hold it.
#[derive(Debug, Clone, PartialEq)]
pub struct WordTarget {
    pub token: i64,
    pub sentences: Vec<Vec<i64>>,
}

impl WordTarget {
    /// The target of `word` among an image's sampled `sentences` (at most `max_sentences` of those holding it),
    /// each cut to `max_tokens` tokens (the LM's context after the prefix: re-encoding decoded text can take more
    /// tokens than were sampled, since a lone byte token decodes to U+FFFD, three bytes). A multi-token BPE word
    /// is scored by its first token (the word's onset), as the sentences are sampled. `None` when the tokenizer
    /// cannot spell the word.
    pub fn new(
        lm: &LanguageModel,
        word: &str,
        sentences: &[String],
        max_sentences: usize,
        max_tokens: usize,
    ) -> Result<Option<Self>> {
        let spellings = lm.tokenizer.word_start_tokens(word)?;
        let Some(token) = spellings
            .iter()
            .filter_map(|s| s.first())
            .next()
            .map(|&t| t as i64)
        else {
            return Ok(None);
        };
        let mut chosen = Vec::new();
        for sentence in sentences {
            let mut ids = lm.encode_sentence(sentence)?;
            ids.truncate(max_tokens);
            if ids.contains(&token) {
                chosen.push(ids);
                if chosen.len() == max_sentences {
                    break;
                }
            }
        }
        Ok(Some(Self {
            token,
            sentences: chosen,
        }))
    }
}

/// Word-targeted GradCAM over the token activations of the translator's classifier layer.
pub struct WordGradcam<'a> {
    pub vit: &'a Vit,
    pub translator: &'a Translator,
    pub lm: &'a LanguageModel,
    pub input: &'a InputPipeline,
    /// The classifier layer the translator reads (HF hidden_states index; -1 = last).
    pub layer: i64,
}

impl WordGradcam<'_> {
    /// Maps [b, 1, H, W] in [0, 1] for u8 `images` [b, 3, H, W]; an image without a target gets an all-zero map.
    /// Returned on the CPU.
    pub fn cams(&self, images: &Tensor, targets: &[Option<WordTarget>]) -> Result<Tensor> {
        let (_, _, size, _) = images.size4()?;
        let eos = self.lm.eos();
        let (tokens_per_image, sentences): (Vec<i64>, Vec<Vec<Vec<i64>>>) = targets
            .iter()
            .map(|t| match t {
                Some(t) => (t.token, t.sentences.clone()),
                None => (eos, Vec::new()),
            })
            .unzip();
        let xs = self.input.eval_batch(images);
        let tokens = tch::no_grad(|| self.vit.forward_features(&xs, self.layer, false))?
            .tokens
            .detach()
            .set_requires_grad(true); // [b, p+1, d]
        let prefix = self.translator.forward(&tokens)?; // [b, k, d_lm]
        let score = target_log_prob(&self.lm.model, &prefix, &sentences, &tokens_per_image)?; // [b]
        let cams = gradcam_from_score(&tokens, &score, size)?.pixels; // [b, 1, H, W]
        let has_target: Vec<bool> = targets.iter().map(Option::is_some).collect();
        let keep = Tensor::from_slice(&has_target)
            .to_device(cams.device())
            .to_kind(Kind::Float)
            .view([-1, 1, 1, 1]);
        Ok((cams * keep).to_device(Device::Cpu))
    }
}
