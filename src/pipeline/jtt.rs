//! The JTT stage (Liu et al., "Just Train Twice: Improving Group Robustness without Training Group Information",
//! ICML 2021; the mechanics and the reference's defaults are in [`crate::methods::jtt`]): for every T of the grid an
//! identification model, ERM's recipe stopped after T epochs from ERM's initialisation, whose training errors form
//! the error set; for every (T, λ_up) a final model trained anew from the same initialisation on the training set
//! with the error set upsampled λ_up times (its epoch chosen as ERM's is); the point with the best validation
//! worst-group accuracy is JTT's result. Group labels are read on the validation split only (model selection).
//!
//! Every identification and final model is a step of the stage (`seed-<s>/jtt.steps/`,
//! [`super::stage::run_stage_in_steps`]): a run killed inside the grid keeps the trainings it finished.
//!
//! Output: `seed-<s>/jtt/` = `grid.csv` (per point: error-set size and its groups, selected epoch, val and test
//! worst-group and average, the chosen point marked), `metrics.csv` and `results.csv` of the chosen point,
//! `id-T<T>/` (the identification run's `metrics.csv`, `errors.csv`: img_id and group of each error) and
//! `final-T<T>-up<λ>/{metrics,curves}.csv`; the chosen point's `curves.csv` beside its `metrics.csv`.
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::Path;

use super::context::Seed;
use super::outcome::MethodResults;
use super::pretrain::Pretrained;
use super::retrain::{retrain_stage_in_steps, Retrained, Start};
use crate::data::{Split, N_GROUPS};
use crate::methods::jtt::{self, JttParams};
use crate::methods::Method;
use crate::report::{self, ResultRow};
use crate::train::{self, ClassifierTraining, ModelSelection, Sampling};
use crate::util::write_atomic;

/// One trained point of the grid.
struct Point {
    params: JttParams,
    n_errors: usize,
    errors_by_group: [usize; N_GROUPS],
    selected_epoch: u32,
    rows: Vec<ResultRow>,
}

impl Point {
    fn row(&self, split: Split) -> Option<&ResultRow> {
        self.rows.iter().find(|r| r.split == split)
    }

    fn val_worst(&self) -> f64 {
        self.row(Split::Val).map_or(f64::NAN, |r| r.worst_group)
    }
}

/// Runs JTT's grid from ERM's initialisation and keeps the point with the best validation worst-group accuracy.
pub fn run(ctx: &Seed, pretrained: Option<&Pretrained>) -> Result<MethodResults> {
    let (exp, seed, splits) = (ctx.exp(), ctx.seed, ctx.splits());
    let cfg = &exp.config.mitigation.baselines.jtt;
    let recipe = &exp.recipes().jtt;
    retrain_stage_in_steps(
        ctx,
        Method::Jtt,
        Start::ErmInit(pretrained),
        cfg,
        |dir, steps, retraining| {
            let train = &splits.train;
            let n = train.len();
            let groups = train.groups();
            let eval_batch = recipe.batch_size.max(256);

            // 1. Identification models: the recipe stopped after T epochs, last epoch kept.
            let id_recipe = train::TrainConfig {
                select: ModelSelection::Last,
                ..recipe.clone()
            };
            let mut errors: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
            for &t in &cfg.grid.id_epochs {
                let name = format!("id-T{t}");
                let step = steps.step(&name, |sub| {
                    let (classifier, mut rng) = retraining.starting_point()?;
                    let training = ClassifierTraining {
                        stop_after: Some(t),
                        ..retraining.erm_training(&classifier, &id_recipe)
                    };
                    training
                        .run(&classifier.vs, &mut rng, sub)
                        .with_context(|| format!("JTT identification model, T = {t}"))?;
                    let preds =
                        train::predict(&classifier.model, &train.images, ctx.input(), eval_batch);
                    let set = jtt::error_set(&preds, &train.y)?;
                    let mut csv = String::from("img_id,group\n");
                    for &e in &set {
                        let _ = writeln!(csv, "{},{}", train.img_ids[e], groups[e]);
                    }
                    write_atomic(&sub.join("errors.csv"), csv)
                })?;
                let set = read_error_set(&step.join("errors.csv"), &train.img_ids)?;
                copy_files(&step, &dir.join(&name), &["metrics.csv", "errors.csv"])?;
                tracing::info!(seed, t, errors = set.len(), "JTT error set");
                errors.insert(t, set);
            }

            // 2. Final models, one per (T, λ_up), from the same initialisation.
            let mut points = Vec::new();
            for params in cfg.grid.points() {
                let set = &errors[&params.id_epochs];
                let name = format!("final-T{}-up{}", params.id_epochs, params.lambda_up);
                let step = steps.step(&name, |sub| {
                    let indices = jtt::upsampled_indices(n, set, params.lambda_up)?;
                    let (classifier, mut rng) = retraining.starting_point()?;
                    let training = ClassifierTraining {
                        sampling: Sampling::Indices(
                            indices.into_iter().map(|i| i as usize).collect(),
                        ),
                        ..retraining.erm_training(&classifier, recipe)
                    };
                    let summary =
                        training
                            .run(&classifier.vs, &mut rng, sub)
                            .with_context(|| {
                                format!(
                                    "JTT final model, T = {}, lambda_up = {}",
                                    params.id_epochs, params.lambda_up
                                )
                            })?;
                    retraining.evaluate(&classifier.model, recipe.batch_size, sub)?;
                    write_atomic(
                        &sub.join(SELECTED_EPOCH_FILE),
                        summary.selected_epoch.to_string(),
                    )
                })?;
                copy_files(&step, &dir.join(&name), &["metrics.csv"])?;
                if let Some(curve) = train::curves::read_curves(&step)? {
                    train::curves::write_curves(&dir.join(&name), &curve)?;
                }
                let mut errors_by_group = [0; N_GROUPS];
                for &e in set {
                    errors_by_group[groups[e] as usize] += 1;
                }
                let selected = std::fs::read_to_string(step.join(SELECTED_EPOCH_FILE))
                    .with_context(|| format!("reading {}/{SELECTED_EPOCH_FILE}", step.display()))?;
                let point = Point {
                    params,
                    n_errors: set.len(),
                    errors_by_group,
                    selected_epoch: selected.trim().parse().with_context(|| {
                        format!("{}/{SELECTED_EPOCH_FILE}: not an epoch", step.display())
                    })?,
                    rows: report::read_results_csv(&step.join("results.csv"))?,
                };
                tracing::info!(
                    seed,
                    t = params.id_epochs,
                    lambda_up = params.lambda_up,
                    val_worst = point.val_worst(),
                    "JTT grid point"
                );
                points.push(point);
            }

            // 3. The point with the best validation worst-group accuracy (first in grid order on ties).
            let scores: Vec<(JttParams, f64)> =
                points.iter().map(|p| (p.params, p.val_worst())).collect();
            let Some(chosen) = jtt::select(&scores) else {
                bail!("JTT: no grid point has a validation worst-group accuracy (is a validation group empty?)");
            };
            write_atomic(&dir.join("grid.csv"), grid_csv(&points, chosen))?;
            let chosen_dir = dir.join(format!(
                "final-T{}-up{}",
                chosen.id_epochs, chosen.lambda_up
            ));
            std::fs::copy(chosen_dir.join("metrics.csv"), dir.join("metrics.csv"))
                .with_context(|| format!("copying {}/metrics.csv", chosen_dir.display()))?;
            if let Some(curve) = train::curves::read_curves(&chosen_dir)? {
                train::curves::write_curves(dir, &curve)?;
            }
            tracing::info!(
                seed,
                t = chosen.id_epochs,
                lambda_up = chosen.lambda_up,
                "JTT point chosen"
            );
            let best = points
                .into_iter()
                .find(|p| p.params == chosen)
                .expect("the chosen point is one of the grid's");
            Ok(Retrained::Rows(best.rows))
        },
    )
}

/// A final model's step keeps its selected epoch here (its results in `results.csv`); neither goes into the stage.
const SELECTED_EPOCH_FILE: &str = "selected_epoch";

/// The training-set indices of an identification step's `errors.csv` (`img_id,group` per error, in error-set order).
fn read_error_set(path: &Path, img_ids: &[i64]) -> Result<Vec<usize>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let index: HashMap<i64, usize> = img_ids.iter().enumerate().map(|(i, &id)| (id, i)).collect();
    text.lines()
        .skip(1)
        .enumerate()
        .map(|(line, row)| {
            let id = row.split(',').next().and_then(|id| id.parse::<i64>().ok());
            id.and_then(|id| index.get(&id).copied()).with_context(|| {
                format!(
                    "{} line {}: {row:?} names no training image",
                    path.display(),
                    line + 2
                )
            })
        })
        .collect()
}

/// Copies `files` of a finished step into the stage's folder `to`.
fn copy_files(from: &Path, to: &Path, files: &[&str]) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for file in files {
        std::fs::copy(from.join(file), to.join(file))
            .with_context(|| format!("copying {}/{file} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

/// `grid.csv`: one line per grid point, the chosen one marked.
fn grid_csv(points: &[Point], chosen: JttParams) -> String {
    let mut csv = String::from("id_epochs,lambda_up,n_errors");
    for g in 0..N_GROUPS {
        let _ = write!(csv, ",errors_g{g}");
    }
    csv.push_str(
        ",selected_epoch,val_worst_group,val_avg_plain,test_worst_group,test_avg_train_weighted,chosen\n",
    );
    for p in points {
        let metric = |split, f: fn(&ResultRow) -> f64| p.row(split).map_or(f64::NAN, f);
        let _ = write!(
            csv,
            "{},{},{}",
            p.params.id_epochs, p.params.lambda_up, p.n_errors
        );
        for count in p.errors_by_group {
            let _ = write!(csv, ",{count}");
        }
        let _ = writeln!(
            csv,
            ",{},{:.6},{:.6},{:.6},{:.6},{}",
            p.selected_epoch,
            metric(Split::Val, |r| r.worst_group),
            metric(Split::Val, |r| r.avg_plain),
            metric(Split::Test, |r| r.worst_group),
            metric(Split::Test, |r| r.avg_train_weighted),
            u8::from(p.params == chosen)
        );
    }
    csv
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(t: u32, up: usize, val_worst: f64) -> Point {
        let row = |split| ResultRow {
            seed: 0,
            method: "jtt".into(),
            split,
            group_acc: vec![0.9, val_worst, 0.8, 0.95],
            worst_group: val_worst,
            avg_train_weighted: 0.9,
            avg_plain: 0.85,
            n: 10,
        };
        Point {
            params: JttParams {
                id_epochs: t,
                lambda_up: up,
            },
            n_errors: 3,
            errors_by_group: [0, 2, 1, 0],
            selected_epoch: 4,
            rows: vec![row(Split::Val), row(Split::Test)],
        }
    }

    /// The grid's validation scores pick the point `grid.csv` marks.
    #[test]
    fn grid_csv_marks_the_point_chosen_on_validation() {
        let points = [point(2, 5, 0.4), point(2, 20, 0.7), point(5, 5, 0.7)];
        let scores: Vec<_> = points.iter().map(|p| (p.params, p.val_worst())).collect();
        let chosen = jtt::select(&scores).unwrap();
        assert_eq!(
            (chosen.id_epochs, chosen.lambda_up),
            (2, 20),
            "ties go to the first"
        );
        let csv = grid_csv(&points, chosen);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "id_epochs,lambda_up,n_errors,errors_g0,errors_g1,errors_g2,errors_g3,selected_epoch,\
             val_worst_group,val_avg_plain,test_worst_group,test_avg_train_weighted,chosen"
        );
        assert_eq!(
            lines[2],
            "2,20,3,0,2,1,0,4,0.700000,0.850000,0.700000,0.900000,1"
        );
        assert!(
            lines[1].ends_with(",0") && lines[3].ends_with(",0"),
            "{csv}"
        );
        assert_eq!(lines.len(), 4);
    }
}
