//! Training: the one training loop ([`fit`]) and what it is built from: optimiser construction (AdamW / SGD with
//! momentum, no weight decay on norms, biases and embeddings), warmup + cosine learning-rate schedule, gradient
//! clipping and a stop on a non-finite loss. ERM and fine-tuning ([`ClassifierTraining`], model selection by
//! worst-group validation accuracy), language-model pretraining and translator training (`explain::lm`) all run
//! through it.
//!
//! Follows the ERM recipe of group_DRO (Sagawa et al. 2020) and the nanoGPT optimiser grouping; no trainer
//! framework, just a loop.
//!
//! * `config`: the settings ([`TrainConfig`]) and which weights train ([`Trainable`]);
//! * `fit`: the loop, the sampling of each epoch, optimiser, schedule, mini-batches, weight snapshots;
//! * `objective`: the loss of a classifier's step ([`Objective`]: cross-entropy, or online group DRO);
//! * `classifier`: a classifier's training with per-epoch validation and model selection;
//! * `eval`: predictions and per-group accuracy;
//! * [`curves`]: `curves.csv`, the per-epoch training curve every classifier training writes.
mod classifier;
mod config;
pub mod curves;
mod eval;
mod fit;
mod objective;

pub use classifier::{ClassifierTraining, TrainSummary};
pub(crate) use config::default_momentum;
pub use config::{ModelSelection, Optimizer, TrainConfig, Trainable};
pub use eval::{evaluate, predict, Evaluation};
pub use fit::{
    build_optimizer, fit, is_no_decay, restore_vars, snapshot_vars, Batch, Epoch, LrSchedule,
    Sampling, TrainingLoop,
};
pub use objective::{group_losses, GroupDro, GroupDroConfig, Objective};
