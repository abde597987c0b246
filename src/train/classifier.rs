//! Training a ViT classifier on a Waterbirds-format dataset ([`ClassifierTraining`]): ERM, fine-tuning on masked
//! samples and the retraining baselines, each epoch evaluated per group on the validation split, the epoch kept by
//! worst-group validation accuracy (group_DRO's model selection, Sagawa et al. 2020), `metrics.csv` and
//! `curves.csv` ([`super::curves`]) written.
use anyhow::{Context, Result};
use rand_chacha::ChaCha8Rng;
use std::cell::{Cell, RefCell};
use std::path::Path;
use tch::{nn, Kind, Tensor};

use super::config::{ModelSelection, TrainConfig};
use super::curves::{write_curves, CurvePoint};
use super::eval::{evaluate, Evaluation};
use super::fit::{restore_vars, snapshot_vars, Batch, Epoch, Sampling, TrainingLoop};
use super::objective::Objective;
use crate::data::{Dataset, InputPipeline};
use crate::models::vit::Vit;
use crate::util::write_atomic;

/// What [`ClassifierTraining::run`] reports back.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub selected_epoch: u32,
    pub val_worst_group: Option<f64>,
}

/// Training a classifier on a dataset: ERM, and fine-tuning on masked samples.
pub struct ClassifierTraining<'a> {
    pub model: &'a Vit,
    pub train: &'a Dataset,
    /// Evaluated after every epoch (per-group accuracy in `metrics.csv`), and used for model selection when
    /// `cfg.select` is `worst_group_val`.
    pub val: Option<&'a Dataset>,
    pub cfg: &'a TrainConfig,
    pub input: &'a InputPipeline,
    /// Which training samples each epoch visits.
    pub sampling: Sampling,
    pub objective: Objective,
    /// Stop after this many epochs of the `cfg.epochs`-epoch schedule (`None`: train them all); see [`TrainingLoop`].
    pub stop_after: Option<u32>,
    /// With `select: worst_group_val`, the model as it starts (epoch 0) competes with the trained epochs.
    pub include_start: bool,
}

impl<'a> ClassifierTraining<'a> {
    /// ERM's training: every sample once per epoch, cross-entropy.
    pub fn erm(
        model: &'a Vit,
        train: &'a Dataset,
        val: Option<&'a Dataset>,
        cfg: &'a TrainConfig,
        input: &'a InputPipeline,
    ) -> Self {
        Self {
            model,
            train,
            val,
            cfg,
            input,
            sampling: Sampling::Shuffle(train.len()),
            objective: Objective::CrossEntropy,
            stop_after: None,
            include_start: false,
        }
    }

    /// Trains the model (its variables live in `vs`), selects an epoch's weights by `cfg.select` and leaves `vs`
    /// holding them. Writes `metrics.csv` (one row per epoch) into `out_dir`.
    pub fn run(
        &self,
        vs: &nn::VarStore,
        rng: &mut ChaCha8Rng,
        out_dir: &Path,
    ) -> Result<TrainSummary> {
        let Self {
            model,
            train,
            val,
            cfg,
            input,
            ..
        } = *self;
        self.sampling.check(train.len())?;
        let labels = Tensor::from_slice(&train.y).to_device(input.device);
        // The objective's state (group DRO's weights) is updated by every step and read at each epoch's end.
        let loss = RefCell::new(self.objective.start(train, input.device)?);
        let mut csv = MetricsCsv::new(val.is_some());
        let mut curve = Vec::new();
        let selecting = cfg.select == ModelSelection::WorstGroupVal;
        let mut best = BestEpoch::default();
        if let (true, true, Some(val)) = (self.include_start, selecting, val) {
            // Epoch 0: the model as it starts, a candidate of the selection like any trained epoch.
            let eval = self.validate(val);
            csv.start_row();
            csv.val_columns(&eval);
            csv.end_row();
            curve.push(point(0, None, Some(&eval)));
            best.offer(0, &eval, vs);
        }
        // Correct training predictions of the current epoch (counted per batch, read at its end).
        let correct = Cell::new(0i64);
        let epoch_len = self.sampling.epoch_len();
        let last_epoch = self.stop_after.unwrap_or(cfg.epochs);
        TrainingLoop {
            vs,
            cfg,
            sampling: &self.sampling,
            what: "train",
            stop_after: last_epoch,
        }
        .run(
            rng,
            |chunk| {
                let batch = Batch::new(chunk, &train.images, &labels, input)?;
                let logits = model.forward_t(&batch.xs, true); // [b, classes]
                correct.set(correct.get() + n_correct(&logits, &batch.ys));
                Ok(loss.borrow_mut().of_batch(&logits, &batch))
            },
            |e| {
                csv.train_columns(e, correct.take() as f64 / epoch_len as f64);
                if let Some(val) = val {
                    let eval = self.validate(val);
                    csv.val_columns(&eval);
                    curve.push(point(e.epoch, Some(e.train_loss), Some(&eval)));
                    tracing::info!(
                        epoch = e.epoch,
                        train_loss = e.train_loss,
                        val_worst_group = eval.worst_group(),
                        val_avg = eval.avg_plain
                    );
                    if selecting {
                        best.offer(e.epoch, &eval, vs);
                    }
                } else {
                    curve.push(point(e.epoch, Some(e.train_loss), None));
                    tracing::info!(epoch = e.epoch, train_loss = e.train_loss);
                }
                loss.borrow().log_epoch(e.epoch);
                csv.end_row();
                Ok(())
            },
        )?;
        write_atomic(&out_dir.join("metrics.csv"), &csv.0)
            .context("writing the per-epoch metrics")?;
        write_curves(out_dir, &curve)?;
        Ok(best.restore(vs).unwrap_or(TrainSummary {
            selected_epoch: last_epoch,
            val_worst_group: None,
        }))
    }

    /// The model's per-group accuracy on `val` (in batches of at least 256).
    fn validate(&self, val: &Dataset) -> Evaluation {
        evaluate(self.model, val, self.input, self.cfg.batch_size.max(256))
    }
}

/// An epoch's point of `curves.csv`.
fn point(epoch: u32, train_loss: Option<f64>, eval: Option<&Evaluation>) -> CurvePoint {
    CurvePoint {
        epoch,
        train_loss,
        val_worst_group: eval.map(Evaluation::worst_group),
        val_avg: eval.map(|e| e.avg_plain),
    }
}

/// How many of the batch's predictions (argmax of `logits` `[b, classes]`) equal the labels `ys` `[b]`.
fn n_correct(logits: &Tensor, ys: &Tensor) -> i64 {
    tch::no_grad(|| {
        logits
            .argmax(-1, false)
            .eq_tensor(ys)
            .sum(Kind::Int64)
            .int64_value(&[])
    })
}

/// `metrics.csv`: one row per epoch, the training columns then, with a validation set, its per-group accuracies,
/// worst group and plain average.
struct MetricsCsv(String);

impl MetricsCsv {
    fn new(with_val: bool) -> Self {
        let mut csv = String::from("epoch,lr,train_loss,train_acc");
        if with_val {
            for g in 0..crate::data::N_GROUPS {
                csv.push_str(&format!(",val_acc_g{g}"));
            }
            csv.push_str(",val_worst_group,val_avg_plain");
        }
        csv.push('\n');
        Self(csv)
    }

    /// The row of epoch 0, the model as it starts: no training columns.
    fn start_row(&mut self) {
        self.0.push_str("0,,,");
    }

    fn train_columns(&mut self, e: &Epoch, train_acc: f64) {
        self.0.push_str(&format!(
            "{},{:.6e},{:.6},{:.6}",
            e.epoch, e.lr, e.train_loss, train_acc
        ));
    }

    fn val_columns(&mut self, eval: &Evaluation) {
        for acc in &eval.group_acc {
            self.0.push_str(&format!(
                ",{}",
                acc.map_or(String::new(), |a| format!("{a:.6}"))
            ));
        }
        self.0
            .push_str(&format!(",{:.6},{:.6}", eval.worst_group(), eval.avg_plain));
    }

    fn end_row(&mut self) {
        self.0.push('\n');
    }
}

/// Model selection by worst-group validation accuracy: the best epoch offered so far, with a copy of its weights.
#[derive(Default)]
struct BestEpoch(Option<Candidate>);

struct Candidate {
    val_worst_group: f64,
    val_avg: f64,
    epoch: u32,
    weights: Vec<(String, Tensor)>,
}

impl BestEpoch {
    /// Keeps `epoch` (the weights now in `vs`) when its validation `eval` beats the best so far. Ties on the worst
    /// group (common early, when a minority group is all wrong) go to the better average.
    fn offer(&mut self, epoch: u32, eval: &Evaluation, vs: &nn::VarStore) {
        let (worst, avg) = (eval.worst_group(), eval.avg_plain);
        if self
            .0
            .as_ref()
            .is_none_or(|b| (worst, avg) > (b.val_worst_group, b.val_avg))
        {
            self.0 = Some(Candidate {
                val_worst_group: worst,
                val_avg: avg,
                epoch,
                weights: snapshot_vars(vs),
            });
        }
    }

    /// Copies the best epoch's weights back into `vs`; `None` when no epoch was offered.
    fn restore(self, vs: &nn::VarStore) -> Option<TrainSummary> {
        let best = self.0?;
        restore_vars(vs, &best.weights);
        Some(TrainSummary {
            selected_epoch: best.epoch,
            val_worst_group: Some(best.val_worst_group),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::GroupDroConfig;
    use rand::SeedableRng;
    use tch::Device;

    #[test]
    fn group_dro_with_balanced_sampling_trains_and_a_diverging_loss_stops() {
        use crate::data::{AugmentConfig, NormalizeConfig};
        use crate::models::vit::Config;
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = Vit::new(&vs.root(), &Config::tiny(16, 4));
        let n = 8;
        let train = Dataset {
            images: Tensor::randint(256, [n, 3, 16, 16], (Kind::Uint8, Device::Cpu)),
            y: vec![0, 0, 0, 0, 1, 1, 1, 1],
            place: vec![0, 0, 0, 1, 1, 1, 1, 0],
            img_ids: (0..n).collect(),
            filenames: (0..n).map(|i| format!("{i}.png")).collect(),
            bird_masks: None,
            place_masks: None,
            object_masks: None,
        };
        let cfg = TrainConfig {
            epochs: 2,
            batch_size: 4,
            grad_clip: None,
            ..TrainConfig::default()
        };
        let input = InputPipeline {
            normalize: NormalizeConfig::default(),
            augment: AugmentConfig {
                flip: false,
                random_resized_crop: None,
            },
            device: Device::Cpu,
        };
        let dir = tempfile::tempdir().unwrap();
        let init = snapshot_vars(&vs);
        let training = ClassifierTraining {
            sampling: Sampling::Weighted {
                // group_DRO's balanced weights N / n_g for the groups 0, 0, 0, 1, 3, 3, 3, 2.
                weights: [3.0, 3.0, 3.0, 1.0, 3.0, 3.0, 3.0, 1.0]
                    .map(|n_g| 8.0 / n_g)
                    .to_vec(),
                draws: 12,
            },
            objective: Objective::GroupDro(GroupDroConfig::default()),
            ..ClassifierTraining::erm(&model, &train, None, &cfg, &input)
        };
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        training.run(&vs, &mut rng, dir.path()).unwrap();
        let metrics = std::fs::read_to_string(dir.path().join("metrics.csv")).unwrap();
        let rows: Vec<&str> = metrics.lines().skip(1).collect();
        assert_eq!(rows.len(), 2, "{metrics}");
        for row in rows {
            let loss: f64 = row.split(',').nth(2).unwrap().parse().unwrap();
            assert!(loss.is_finite() && loss > 0.0, "{row}");
        }
        assert!(snapshot_vars(&vs)
            .iter()
            .zip(&init)
            .any(|((_, x), (_, y))| !x.equal(y)));

        // A learning rate that blows the weights up stops the training with the epoch and step named.
        let wild = TrainConfig {
            lr: 1e12,
            grad_clip: None,
            ..cfg.clone()
        };
        restore_vars(&vs, &init);
        let err = ClassifierTraining::erm(&model, &train, None, &wild, &input)
            .run(&vs, &mut rng, dir.path())
            .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("training diverged") && msg.contains("at epoch") && msg.contains("step"),
            "{msg}"
        );
    }
}
