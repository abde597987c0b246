//! The translator stage (paper section 3): per seed, since each seed has its own classifier, train the 3-layer
//! linear translator from the classifier's tokens to the language model's prefix on the caption set, classifier and
//! LM frozen. Output: `seed-<s>/translator/` = `config.json`, `model.safetensors`, `losses.csv`. [`train`] serves
//! both flows: the mitigation pipeline's ERM classifier ([`run`]) and the ImageNet-9 analysis' pretrained one.
use anyhow::Result;
use rand::seq::SliceRandom;
use std::collections::HashSet;
use std::path::Path;
use tch::{nn, Tensor};

use super::context::Seed;
use super::erm::Erm;
use super::lm::{write_losses, CaptionData, Lm};
use super::stage::{run_stage, Stage, StageDone, StageKey};
use crate::config::{Experiment, TranslatorSection};
use crate::data::InputPipeline;
use crate::explain::lm::{CaptionExample, TranslatorTraining};
use crate::models::translator::{self, Translator};
use crate::models::vit::Vit;
use crate::runtime::{set_seed, stage_seed};

/// A trained translator, frozen, with its stage.
pub struct TrainedTranslator {
    pub done: StageDone,
    pub vs: nn::VarStore,
    pub model: Translator,
}

/// Token activations of `layer` for u8 `images`, in batches without gradients, kept on the model's device.
pub fn classifier_tokens(
    vit: &Vit,
    images: &Tensor,
    layer: i64,
    input: &InputPipeline,
    batch: usize,
) -> Result<Tensor> {
    let n = images.size()[0];
    let mut out = Vec::new();
    tch::no_grad(|| -> Result<()> {
        for start in (0..n).step_by(batch) {
            let len = (n - start).min(batch as i64);
            let xs = input.eval_batch(&images.narrow(0, start, len));
            out.push(vit.forward_features(&xs, layer, false)?.tokens); // [b, p+1, d]
        }
        Ok(())
    })?;
    Ok(Tensor::cat(&out, 0))
}

/// Trains the seed's translator on the ERM classifier (or finds it trained) and loads it.
pub fn run(
    ctx: &Seed,
    erm: &Erm,
    vit: &Vit,
    lm: &Lm,
    captions: &CaptionData,
) -> Result<TrainedTranslator> {
    let classifier = ClassifierRead {
        name: "erm",
        content: &erm.done.content,
        model: vit,
    };
    train(
        ctx.exp(),
        ctx.seed,
        &ctx.dir,
        classifier,
        lm,
        captions,
        ctx.input(),
    )
}

/// The translator section as the stage key holds it. The readout is there only when it is not `flatten`, so a
/// flattening translator keeps the key (and checkpoint) it had before the field existed.
fn section_key(cfg: &TranslatorSection) -> serde_json::Value {
    let mut section = serde_json::json!({
        "layer": cfg.layer, "prefix_len": cfg.prefix_len, "hidden_dim": cfg.hidden_dim,
        "val_fraction": cfg.val_fraction, "train": cfg.train,
    });
    if !cfg.readout.is_flatten() {
        section["readout"] = serde_json::json!(cfg.readout);
    }
    section
}

/// The frozen classifier a translator reads: the model, and as its key names it, the stage (or pretrained folder)
/// and its content.
#[derive(Clone, Copy)]
pub struct ClassifierRead<'a> {
    /// `erm` in the mitigation pipeline; `pretrain` (or `pretrained`) in the ImageNet-9 analysis.
    pub name: &'a str,
    pub content: &'a str,
    pub model: &'a Vit,
}

/// Trains a translator from the classifier's tokens to `lm`'s prefix on the caption set into `<seed_dir>/translator/` (or
/// finds it trained there), keyed on the seed, the classifier's and LM's content, the caption set and the section.
pub fn train(
    exp: &Experiment,
    seed: u64,
    seed_dir: &Path,
    classifier: ClassifierRead,
    lm: &Lm,
    captions: &CaptionData,
    input: &InputPipeline,
) -> Result<TrainedTranslator> {
    let cfg = &exp.config.translator;
    let vit = classifier.model;
    let mut key = StageKey::new(Stage::Translator);
    key.add("seed", &seed)
        .reads(classifier.name, classifier.content)
        .reads("lm", &lm.content)
        .add("captions", &captions.fingerprint);
    key.add("translator", &section_key(cfg));
    let translator_cfg = translator::Config {
        in_tokens: vit.num_tokens(),
        in_dim: vit.config().hidden_size,
        hidden_dim: cfg.hidden_dim,
        prefix_len: cfg.prefix_len,
        out_dim: lm.model.n_embd(),
        token_subset: None,
        readout: cfg.readout,
    };
    let done = run_stage(seed_dir, Stage::Translator, &key, |dir| {
        let mut rng = set_seed(stage_seed(seed, "translator"));
        let features = classifier_tokens(vit, &captions.images, cfg.layer, input, 256)?; // [m, p+1, d]
        let n_images = captions.images.size()[0] as usize;
        let mut images: Vec<usize> = (0..n_images).collect();
        images.shuffle(&mut rng);
        let n_val =
            ((n_images as f64 * cfg.val_fraction).round() as usize).min(n_images.saturating_sub(1));
        let val_images: HashSet<usize> = images[..n_val].iter().copied().collect();
        let (mut train, mut val) = (Vec::new(), Vec::new());
        for (image, caption) in &captions.captions {
            let example = CaptionExample {
                image: *image,
                ids: lm.model.encode_sentence(caption)?,
            };
            if val_images.contains(image) {
                val.push(example)
            } else {
                train.push(example)
            }
        }
        let vs = nn::VarStore::new(exp.device);
        let model = Translator::new(&vs.root(), &translator_cfg);
        let training = TranslatorTraining {
            translator: &model,
            lm: &lm.model,
            features: &features,
            train: &train,
            val: &val,
            cfg: &cfg.train,
        };
        let (losses, val_loss) = training.run(&vs, &mut rng)?;
        tracing::info!(seed, val_loss, "translator trained");
        model.save_folder(&vs, dir)?;
        write_losses(&dir.join("losses.csv"), &losses, val_loss)
    })?;
    let mut vs = nn::VarStore::new(exp.device);
    let model = Translator::from_folder(&mut vs, &done.dir)?;
    vs.freeze();
    Ok(TrainedTranslator { done, vs, model })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::translator::Readout;

    #[test]
    fn only_a_changed_readout_changes_the_key() {
        let flatten = TranslatorSection::default();
        let key = section_key(&flatten);
        let mut fields: Vec<&String> = key.as_object().unwrap().keys().collect();
        fields.sort();
        assert_eq!(
            fields,
            ["hidden_dim", "layer", "prefix_len", "train", "val_fraction"]
        );
        let mean = TranslatorSection {
            readout: Readout::Mean,
            ..TranslatorSection::default()
        };
        let key_mean = section_key(&mean);
        assert_eq!(key_mean["readout"], "mean");
        assert_ne!(key, key_mean);
        let sum = TranslatorSection {
            readout: Readout::Sum,
            ..TranslatorSection::default()
        };
        assert_eq!(section_key(&sum)["readout"], "sum");
    }
}
