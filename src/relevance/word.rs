//! Word-targeted relevance (paper section 4.3): where in the image the classifier's features make the language
//! model say a given word. The score of an image is the teacher-forced log-probability of its target word over
//! sampled sentences that contain it, given the translator's prefix; its gradient with respect to the classifier's
//! token activations gives the GradCAM map ([`super::gradcam`]), its gradient with respect to the attention the
//! rollout map ([`super::rollout`]), its drop under masking the occlusion map ([`super::occlusion`]), its
//! gradient × input per token slot the contribution map ([`super::contribution`]) ([`WordRelevance`]). The score is
//! the literal-token one here or the attribute one of [`super::attribute`] (`RelevanceSpec::score`); the object
//! complement ([`super::complement`]) reads no word.
use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

use super::attribute::{attribute_log_odds, AttributeTarget, Concept, WordScore};
use super::complement::object_complement;
use super::contribution::contribution;
use super::gradcam::gradcam;
use super::maps::{contrastive, RelevanceMaps, ScoreFn};
use super::mask::{self, MaskValue};
use super::method::{RelevanceMethod, RelevanceSpec};
use super::occlusion::occlusion;
use super::rollout::gradient_rollout_with;
use super::value_paths::value_paths;
use crate::data::InputPipeline;
use crate::explain::lm::{pad_batch, LanguageModel};
use crate::models::gpt2::Gpt2;
use crate::models::translator::Translator;
use crate::models::vit::Vit;

/// TExplain's word-targeted score (paper 4.3): the log-probability of each image's target word under the frozen
/// LM, teacher-forced over the image's sentences, given the translator's prefix for its tokens
/// ([`target_log_prob`]). Use with `score_layer` = the translator's layer.
pub fn word_score<'a>(
    translator: &'a Translator,
    lm: &'a Gpt2,
    sentences: &'a [Vec<Vec<i64>>],
    targets: &'a [i64],
) -> impl FnMut(&Tensor) -> Result<Tensor> + 'a {
    move |tokens: &Tensor| {
        let prefix = translator.forward(tokens)?; // [b, k, d_lm]
        target_log_prob(lm, &prefix, sentences, targets) // [b]
    }
}

/// The attribute word score (log-odds of the target concept's words against the competing place words,
/// [`attribute_log_odds`]) of each image for its tokens at the translator's layer. Use with `score_layer` = the
/// translator's layer.
pub fn attribute_score<'a>(
    translator: &'a Translator,
    lm: &'a Gpt2,
    targets: &'a [Option<AttributeTarget>],
) -> impl FnMut(&Tensor) -> Result<Tensor> + 'a {
    move |tokens: &Tensor| {
        let prefix = translator.forward(tokens)?; // [b, k, d_lm]
        attribute_log_odds(lm, &prefix, targets) // [b]
    }
}

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

/// The word a sample's map targets, as a token, and the image's sentences (token ids) that hold it; for the
/// attribute score ([`WordTarget::attribute`]) also the concept's token sets and where the score reads.
#[derive(Debug, Clone, PartialEq)]
pub struct WordTarget {
    pub token: i64,
    pub sentences: Vec<Vec<i64>>,
    /// The attribute score's inputs (`None` for the literal-token score).
    pub attribute: Option<AttributeTarget>,
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
            attribute: None,
        }))
    }

    /// The attribute score's target of a `concept` (its words and the competing place words) among an image's
    /// sampled `sentences` ([`AttributeTarget::new`]); `None` when the tokenizer spells no target or no competing
    /// word.
    pub fn attribute(
        lm: &LanguageModel,
        concept: &Concept,
        sentences: &[String],
        max_sentences: usize,
        max_tokens: usize,
    ) -> Result<Option<Self>> {
        let Some(a) = AttributeTarget::new(lm, concept, sentences, max_sentences, max_tokens)?
        else {
            return Ok(None);
        };
        Ok(Some(Self {
            token: a.target[0],
            sentences: a.sentences.clone(),
            attribute: Some(a),
        }))
    }

    /// Whether the score falls back on no sentence of the image: the literal score finds no sentence holding the
    /// token (it scores the token as the first word), the attribute score none holding a place word (it reads the
    /// first position after the prefix).
    pub fn is_fallback(&self) -> bool {
        match &self.attribute {
            Some(a) => a.fallback,
            None => self.sentences.is_empty(),
        }
    }
}

/// The fallbacks among mapped targets (images with a target): `(n_images, n_fallback)`.
pub fn count_fallbacks<'a>(targets: impl IntoIterator<Item = &'a WordTarget>) -> (usize, usize) {
    targets.into_iter().fold((0, 0), |(n, f), t| {
        (n + 1, f + usize::from(t.is_fallback()))
    })
}

/// Word-targeted relevance of any method ([`RelevanceSpec`]) for the score that reads the translator's layer.
pub struct WordRelevance<'a> {
    pub vit: &'a Vit,
    pub translator: &'a Translator,
    pub lm: &'a LanguageModel,
    pub input: &'a InputPipeline,
    /// The classifier layer the translator reads (HF hidden_states index; -1 = last): the score's layer.
    pub layer: i64,
    pub spec: RelevanceSpec,
    /// The masks' fill, which occlusion's windows take where it is one colour ([`super::mask::colour_fill`]).
    pub mask_value: MaskValue,
}

/// The (token, sentences) pairs of a batch's targets; an image without a target scores EOS on no sentence.
fn unzip_targets(targets: &[Option<WordTarget>], eos: i64) -> (Vec<i64>, Vec<Vec<Vec<i64>>>) {
    targets
        .iter()
        .map(|t| match t {
            Some(t) => (t.token, t.sentences.clone()),
            None => (eos, Vec::new()),
        })
        .unzip()
}

impl WordRelevance<'_> {
    /// Maps (patches and pixels, on the CPU) for u8 `images` [b, 3, H, W]; an image without a target gets an
    /// all-zero map. `class_targets` (the class word of each image) are needed by a contrastive spec only: the
    /// map is then the target word's minus the class word's, clipped at 0.
    pub fn maps(
        &self,
        images: &Tensor,
        targets: &[Option<WordTarget>],
        class_targets: Option<&[Option<WordTarget>]>,
    ) -> Result<RelevanceMaps> {
        let size = images.size4()?.2;
        let xs = self.input.eval_batch(images);
        let mut maps = self.base(&xs, images, targets)?;
        if self.spec.contrastive {
            let Some(class_targets) = class_targets else {
                bail!("a contrastive map needs the class word of every image");
            };
            let class_maps = self.base(&xs, images, class_targets)?;
            maps = contrastive(&maps, &class_maps, size)?;
        }
        let keep = Tensor::from_slice(&targets.iter().map(Option::is_some).collect::<Vec<_>>())
            .to_kind(Kind::Float)
            .to_device(maps.patches.device());
        Ok(RelevanceMaps {
            patches: (&maps.patches * keep.view([-1, 1])).to_device(Device::Cpu),
            pixels: (&maps.pixels * keep.view([-1, 1, 1, 1])).to_device(Device::Cpu),
        })
    }

    /// The word score of each image (log-probability of its target word, [`target_log_prob`], or the attribute
    /// log-odds, as the spec's `score` says), no gradient; on the CPU, NaN where an image has no target.
    pub fn scores(&self, images: &Tensor, targets: &[Option<WordTarget>]) -> Result<Vec<f64>> {
        let xs = self.input.eval_batch(images);
        let s = tch::no_grad(|| -> Result<Tensor> {
            let read = self.vit.forward_features(&xs, self.layer, false)?.tokens; // [b, p+1, d]
            self.with_score(targets, &mut |score| score(&read)) // [b]
        })?;
        let s: Vec<f64> = Vec::try_from(s.to_kind(Kind::Double).to_device(Device::Cpu))?;
        Ok(s.into_iter()
            .zip(targets)
            .map(|(v, t)| if t.is_some() { v } else { f64::NAN })
            .collect())
    }

    /// The share of the CLS slot in the per-slot contribution (`|c_CLS| / Σ_i |c_i|`, [`contribution`]) of each
    /// image's word score, on the CPU, NaN where an image has no target.
    pub fn cls_shares(&self, images: &Tensor, targets: &[Option<WordTarget>]) -> Result<Vec<f64>> {
        let xs = self.input.eval_batch(images);
        let share = self.with_score(targets, &mut |score| {
            Ok(contribution(self.vit, &xs, self.layer, score)?.cls_share)
        })?;
        let share: Vec<f64> = Vec::try_from(share.to_kind(Kind::Double).to_device(Device::Cpu))?;
        Ok(share
            .into_iter()
            .zip(targets)
            .map(|(v, t)| if t.is_some() { v } else { f64::NAN })
            .collect())
    }

    /// Runs `f` with the word score the spec names for `targets`.
    fn with_score<T>(
        &self,
        targets: &[Option<WordTarget>],
        f: &mut dyn FnMut(&mut ScoreFn<'_>) -> Result<T>,
    ) -> Result<T> {
        match self.spec.score {
            WordScore::Literal => {
                let (tokens, sentences) = unzip_targets(targets, self.lm.eos());
                let mut score = word_score(self.translator, &self.lm.model, &sentences, &tokens);
                f(&mut score)
            }
            WordScore::Attribute => {
                let attributes = targets
                    .iter()
                    .map(|t| match t {
                        None => Ok(None),
                        Some(WordTarget {
                            attribute: Some(a), ..
                        }) => Ok(Some(a.clone())),
                        Some(_) => bail!(
                            "the attribute word score needs attribute targets (WordTarget::attribute)"
                        ),
                    })
                    .collect::<Result<Vec<_>>>()?;
                let mut score = attribute_score(self.translator, &self.lm.model, &attributes);
                f(&mut score)
            }
        }
    }

    /// The map of the spec's base method for one set of targets.
    fn base(
        &self,
        xs: &Tensor,
        images: &Tensor,
        targets: &[Option<WordTarget>],
    ) -> Result<RelevanceMaps> {
        if self.spec.method == RelevanceMethod::ObjectComplement {
            return object_complement(self.vit, xs);
        }
        self.with_score(targets, &mut |score| self.base_with(xs, images, score))
    }

    /// The map of the spec's base method of a word `score`.
    fn base_with(
        &self,
        xs: &Tensor,
        images: &Tensor,
        score: &mut ScoreFn<'_>,
    ) -> Result<RelevanceMaps> {
        match self.spec.method {
            RelevanceMethod::Gradcam => gradcam(
                self.vit,
                xs,
                self.spec.layer.unwrap_or(self.layer),
                self.layer,
                score,
            ),
            RelevanceMethod::Rollout => gradient_rollout_with(
                self.vit,
                xs,
                self.layer,
                self.spec.readout.unwrap_or_default(),
                score,
            ),
            RelevanceMethod::Occlusion => {
                // [b, 3, 1, 1] u8: the masks' own fill where it is one colour, black for the donor fills (the
                // masks stage refuses those with occlusion at config load; masks-eval scores with black windows).
                let fill = mask::colour_fill(images, self.mask_value);
                let fill = self.input.eval_batch(&fill);
                let params = self.spec.occlusion.unwrap_or_default();
                occlusion(self.vit, xs, &fill, params, self.layer, score)
            }
            RelevanceMethod::Contribution => {
                Ok(contribution(self.vit, xs, self.layer, score)?.maps)
            }
            RelevanceMethod::ObjectComplement => object_complement(self.vit, xs),
            RelevanceMethod::ValuePaths => value_paths(
                self.vit,
                xs,
                self.layer,
                self.spec.readout.unwrap_or_default(),
                score,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallbacks_are_counted_per_score() {
        let literal = |sentences: Vec<Vec<i64>>| WordTarget {
            token: 5,
            sentences,
            attribute: None,
        };
        let attribute = |sentences: &[Vec<i64>]| {
            let a = AttributeTarget::from_ids(&[vec![5]], &[vec![8]], sentences, 4, 0).unwrap();
            WordTarget {
                token: 5,
                sentences: a.sentences.clone(),
                attribute: Some(a),
            }
        };
        let targets = [
            literal(vec![vec![1, 5, 0]]),
            literal(Vec::new()),
            attribute(&[vec![1, 8, 0]]),
            attribute(&[vec![1, 2, 0], vec![3, 0]]),
            attribute(&[]),
        ];
        let flags: Vec<bool> = targets.iter().map(WordTarget::is_fallback).collect();
        assert_eq!(flags, [false, true, false, true, true]);
        assert_eq!(count_fallbacks(&targets), (5, 3));
        assert_eq!(count_fallbacks(&targets[..1]), (1, 0));
    }
}
