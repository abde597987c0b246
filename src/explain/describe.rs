//! Explaining images in sentences (paper section 2): classifier tokens -> translator prefix -> nucleus sampling of
//! N sentences per image from the frozen language model.
use anyhow::Result;
use tch::Tensor;

use super::lm::LanguageModel;
use super::sample::{sample_sentences, Nucleus};
use crate::data::InputPipeline;
use crate::models::translator::Translator;
use crate::models::vit::Vit;
use crate::precision::Precision;

/// Everything that turns an image into sentences.
pub struct Describer<'a> {
    pub vit: &'a Vit,
    pub translator: &'a Translator,
    pub lm: &'a LanguageModel,
    pub input: &'a InputPipeline,
    /// The classifier layer the translator reads (HF hidden_states index; -1 = last).
    pub layer: i64,
    pub nucleus: Nucleus,
    pub samples_per_image: usize,
    /// Sequences decoded together (images x samples), bounding the KV cache.
    pub batch_rows: usize,
    /// Compute precision of the classifier, translator and LM forward passes ([`crate::precision`]); the
    /// nucleus itself always works on f32 logits.
    pub precision: Precision,
}

impl Describer<'_> {
    /// `samples_per_image` sentences for every u8 image [n, 3, h, w], in image order.
    pub fn sentences(&self, images: &Tensor) -> Result<Vec<Vec<String>>> {
        crate::precision::autocast(self.precision, || self.sentences_in_region(images))
    }

    fn sentences_in_region(&self, images: &Tensor) -> Result<Vec<Vec<String>>> {
        let word_start = self.lm.word_start();
        let eos = self.lm.eos();
        let images_per_batch = (self.batch_rows / self.samples_per_image).max(1) as i64;
        let n = images.size()[0];
        let mut sentences = Vec::with_capacity(n as usize);
        let progress = crate::progress::bar(n as u64, "explain");
        for start in (0..n).step_by(images_per_batch as usize) {
            let len = (n - start).min(images_per_batch);
            let prefix = tch::no_grad(|| -> Result<Tensor> {
                let xs = self.input.eval_batch(&images.narrow(0, start, len));
                let tokens = self.vit.forward_features(&xs, self.layer, false)?.tokens; // [b, p+1, d]
                Ok(self.translator.forward(&tokens)?)
            })?; // [b, k, d_lm]
            for samples in sample_sentences(
                &self.lm.model,
                &prefix,
                self.samples_per_image,
                &self.nucleus,
                eos,
                &word_start,
            )? {
                let texts = samples
                    .iter()
                    .map(|ids| self.lm.tokenizer.decode(ids))
                    .collect::<Result<Vec<_>, _>>()?;
                sentences.push(texts);
            }
            progress.inc(len as u64);
        }
        progress.finish_and_clear();
        Ok(sentences)
    }
}
