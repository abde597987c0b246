//! The settings of a training ([`TrainConfig`]: optimiser, learning rate and schedule, epochs, batch size,
//! gradient clipping, model selection, precision) and which weights of a ViT classifier it changes
//! ([`Trainable`]). The YAML `train` sections of the experiment config are these structs.
use serde::{Deserialize, Serialize};
use tch::nn;

use crate::precision::Precision;

/// Optimisation settings shared by every trained part (ERM, LM pretraining, translator, fine-tuning).
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    #[serde(default)]
    pub optimizer: Optimizer,
    pub lr: f64,
    #[serde(default)]
    pub weight_decay: f64,
    /// SGD momentum (ignored by AdamW).
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    pub epochs: u32,
    pub batch_size: usize,
    /// Linear warmup, in epochs (fractions allowed), before the cosine decay.
    #[serde(default)]
    pub warmup_epochs: f64,
    /// Clip the global gradient norm to this value.
    #[serde(default)]
    pub grad_clip: Option<f64>,
    /// Which epoch's weights to keep.
    #[serde(default)]
    pub select: ModelSelection,
    /// Compute precision of the training steps: `f32` (the default) or `bf16` (bf16 matrix products with f32
    /// master weights; layer norm, softmax, the loss and the optimiser state stay f32: [`crate::precision`]).
    /// Evaluation stays f32.
    #[serde(default)]
    pub precision: Precision,
}

pub(crate) fn default_momentum() -> f64 {
    0.9
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            optimizer: Optimizer::Adamw,
            lr: 1e-3,
            weight_decay: 0.0,
            momentum: default_momentum(),
            epochs: 1,
            batch_size: 64,
            warmup_epochs: 0.0,
            grad_clip: Some(1.0),
            select: ModelSelection::Last,
            precision: Precision::F32,
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Optimizer {
    #[default]
    Adamw,
    Sgd,
}

/// Which epoch's weights a training keeps (YAML `select`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ModelSelection {
    /// Best worst-group validation accuracy (the field's standard model selection).
    #[default]
    WorstGroupVal,
    Last,
}

/// Which weights of a ViT classifier a training may change (YAML `all`, `head`, or `{last_blocks: k}`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Trainable {
    #[default]
    All,
    /// The classification head only (a linear probe trained end to end).
    Head,
    /// The last `k` encoder blocks, the final layernorm and the head.
    LastBlocks(usize),
}

impl Trainable {
    /// Whether the parameter `name` (HF ViT names) is trained, in a ViT of `depth` blocks.
    pub fn trains(self, name: &str, depth: usize) -> bool {
        let head = name.starts_with("classifier.");
        match self {
            Trainable::All => true,
            Trainable::Head => head,
            Trainable::LastBlocks(k) => {
                head || name.starts_with("vit.layernorm.")
                    || name
                        .strip_prefix("vit.encoder.layer.")
                        .and_then(|rest| rest.split('.').next())
                        .and_then(|i| i.parse::<usize>().ok())
                        .is_some_and(|i| i + k >= depth)
            }
        }
    }

    /// Turns off the gradients of every variable of `vs` this rule does not train.
    pub fn apply(self, vs: &nn::VarStore, depth: usize) {
        for (name, var) in vs.variables() {
            if !self.trains(&name, depth) {
                let _ = var.set_requires_grad(false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trainable_rules_pick_hf_vit_names() {
        let names = [
            ("vit.embeddings.cls_token", [true, false, false]),
            (
                "vit.encoder.layer.0.attention.attention.query.weight",
                [true, false, false],
            ),
            ("vit.encoder.layer.1.output.dense.bias", [true, false, true]),
            (
                "vit.encoder.layer.2.layernorm_after.weight",
                [true, false, true],
            ),
            ("vit.layernorm.weight", [true, false, true]),
            ("classifier.weight", [true, true, true]),
        ];
        for (name, want) in names {
            let got = [Trainable::All, Trainable::Head, Trainable::LastBlocks(2)]
                .map(|t| t.trains(name, 3));
            assert_eq!(got, want, "{name}");
        }
    }
}
