//! The skeleton the field's baselines share (MaskTune, JTT, DFR, group DRO; paper Table 1): one stage
//! `seed-<s>/<method>/`, keyed on the seed, on where the method starts ([`Start`]) and on its own block of
//! `mitigation.baselines`; the method's own build in between; and the classifier it ends with evaluated on val and
//! test into `results.csv`. The method modules (`pipeline::{masktune,jtt,dfr,groupdro}`) hold only what is their
//! own.
use anyhow::Result;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::path::Path;

use super::context::Seed;
use super::erm::{self, Classifier, Erm};
use super::outcome::MethodResults;
use super::pretrain::Pretrained;
use super::stage::{run_stage, run_stage_in_steps, Stage, StageKey, Steps};
use crate::methods::Method;
use crate::models::vit::Vit;
use crate::report::{self, ResultRow};
use crate::runtime::{set_seed, stage_seed};
use crate::train::{ClassifierTraining, TrainConfig};

/// Where a baseline starts.
#[derive(Clone, Copy)]
pub enum Start<'a> {
    /// ERM's selected model (MaskTune, DFR): the stage reads ERM's checkpoint, and keys on its content.
    ErmModel(&'a Erm),
    /// ERM's initialisation, drawn anew as ERM drew it ([`erm::starting_point`]; JTT, group DRO): the stage reads
    /// no file of ERM's, and keys on what that starting point and ERM's recipe come from
    /// ([`erm::key_starting_point`]).
    ErmInit(Option<&'a Pretrained>),
}

/// A baseline's stage as its build sees it: the method, the seed and where it starts.
#[derive(Clone, Copy)]
pub struct Retraining<'a> {
    ctx: &'a Seed<'a>,
    method: Method,
    start: Start<'a>,
}

impl Retraining<'_> {
    /// The classifier the method starts from and the random stream it trains with: ERM's selected model and the
    /// method's own stream (its stage seed), or ERM's initialisation and ERM's stream (the same draws as ERM's).
    /// A build made of several trainings (JTT) calls it once per training.
    pub fn starting_point(&self) -> Result<(Classifier, ChaCha8Rng)> {
        let ctx = self.ctx;
        match self.start {
            Start::ErmModel(erm) => {
                let classifier = erm.classifier(ctx.exp().device)?;
                Ok((
                    classifier,
                    set_seed(stage_seed(ctx.seed, self.method.name())),
                ))
            }
            Start::ErmInit(pretrained) => erm::starting_point(ctx, pretrained),
        }
    }

    /// ERM's training of `classifier` with `recipe`: the training split, every sample once per epoch,
    /// cross-entropy, validated (and the epoch selected) on the validation split. A baseline that trains from
    /// ERM's initialisation changes what it changes (sampling, objective, epochs) on it.
    pub fn erm_training<'b>(
        &'b self,
        classifier: &'b Classifier,
        recipe: &'b TrainConfig,
    ) -> ClassifierTraining<'b> {
        let splits = self.ctx.splits();
        ClassifierTraining::erm(
            &classifier.model,
            &splits.train,
            Some(&splits.val),
            recipe,
            self.ctx.input(),
        )
    }

    /// Evaluates `model` as the method on val and test and writes the rows to `dir/results.csv` (the stage's
    /// folder, or a step's).
    pub fn evaluate(&self, model: &Vit, batch_size: usize, dir: &Path) -> Result<()> {
        let rows = self
            .ctx
            .run
            .evaluate(model, self.ctx.seed, self.method, batch_size);
        Ok(report::write_results_csv(&dir.join("results.csv"), &rows)?)
    }

    fn write_results(&self, retrained: Retrained, dir: &Path) -> Result<()> {
        match retrained {
            Retrained::Classifier {
                classifier,
                batch_size,
            } => self.evaluate(&classifier.model, batch_size, dir),
            Retrained::Rows(rows) => {
                Ok(report::write_results_csv(&dir.join("results.csv"), &rows)?)
            }
        }
    }
}

/// What a baseline's build ends with.
pub enum Retrained {
    /// Its classifier, evaluated on val and test in `batch_size` batches (boxed: a model is large).
    Classifier {
        classifier: Box<Classifier>,
        batch_size: usize,
    },
    /// Val and test rows evaluated inside the build (JTT: the chosen grid point's, evaluated in its step).
    Rows(Vec<ResultRow>),
}

impl Retrained {
    /// `classifier`, to be evaluated in `batch_size` batches.
    pub fn classifier(classifier: Classifier, batch_size: usize) -> Self {
        Retrained::Classifier {
            classifier: Box::new(classifier),
            batch_size,
        }
    }
}

/// Runs `method`'s stage from `start`, keyed on `block` (the method's `mitigation.baselines` block; see
/// [`retrain_key`]): `build` writes the method's own files into the stage folder and hands back what it retrained,
/// whose val and test rows go to `results.csv`.
pub fn retrain_stage(
    ctx: &Seed,
    method: Method,
    start: Start<'_>,
    block: &impl Serialize,
    build: impl FnOnce(&Path, &Retraining) -> Result<Retrained>,
) -> Result<MethodResults> {
    let stage = Stage::Method(method);
    let key = retrain_key(ctx, method, start, block)?;
    let retraining = Retraining { ctx, method, start };
    let done = run_stage(&ctx.dir, stage, &key, |dir| {
        let retrained = build(dir, &retraining)?;
        retraining.write_results(retrained, dir)
    })?;
    Ok(MethodResults { done })
}

/// [`retrain_stage`] for a baseline made of independent trainings (JTT's grid): each a step that a killed run
/// keeps ([`run_stage_in_steps`]).
pub fn retrain_stage_in_steps(
    ctx: &Seed,
    method: Method,
    start: Start<'_>,
    block: &impl Serialize,
    build: impl FnOnce(&Path, &Steps, &Retraining) -> Result<Retrained>,
) -> Result<MethodResults> {
    let stage = Stage::Method(method);
    let key = retrain_key(ctx, method, start, block)?;
    let retraining = Retraining { ctx, method, start };
    let done = run_stage_in_steps(&ctx.dir, stage, &key, |dir, steps| {
        let retrained = build(dir, steps, &retraining)?;
        retraining.write_results(retrained, dir)
    })?;
    Ok(MethodResults { done })
}

/// The key of a baseline's stage: the seed; ERM's content (from ERM's model) or what ERM's starting point comes
/// from (from ERM's initialisation); the method's block of `mitigation.baselines`, named after it. A method that
/// trains from ERM's model also keys on its resolved recipe, whose default (`classifier.train`) is no other input
/// of its; from ERM's initialisation the `classifier` section and the block already hold it.
fn retrain_key(
    ctx: &Seed,
    method: Method,
    start: Start<'_>,
    block: &impl Serialize,
) -> Result<StageKey> {
    let mut key = StageKey::new(Stage::Method(method));
    key.add("seed", &ctx.seed);
    match start {
        Start::ErmModel(erm) => {
            key.reads("erm", &erm.done.content);
        }
        Start::ErmInit(pretrained) => erm::key_starting_point(&mut key, ctx, pretrained)?,
    }
    key.add(method.name(), block);
    if let (Start::ErmModel(_), Some(recipe)) = (start, ctx.exp().recipes().of(method)) {
        key.add("finetune", recipe);
    }
    Ok(key)
}
