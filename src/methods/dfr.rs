//! Deep Feature Reweighting on the validation set, "DFR^Val" (Kirichenko, Izmailov & Wilson, "Last Layer
//! Re-Training is Sufficient for Robustness to Spurious Correlations", ICLR 2023), following the reference
//! implementation PolinaKirichenko/deep_feature_reweighting, `dfr_evaluate_spurious.py` (`dfr_on_validation_tune`,
//! `dfr_on_validation_eval`, run with its defaults `--balance_dfr_val` and `--notrain_dfr_val`).
//!
//! The ERM model is frozen; only its last layer is retrained, on group-balanced validation data:
//! * Features: the head's input for every image, without augmentation ([`features`]: for our ViT the final CLS token
//!   after the last layernorm; the reference takes ResNet-50's average-pooled output).
//! * Tuning ([`tune_c`], `dfr_on_validation_tune`, 1 repetition): shuffle the validation set and split it in half
//!   ([`split_halves`]: the first ⌊n/2⌋ are held out, the rest train); subsample the training half so every group
//!   has as many samples as its smallest group ([`balanced_subsample`]); fit a `StandardScaler` on that subsample
//!   and apply it to both halves; for each C of the grid fit an ℓ1 logistic regression and score the worst-group
//!   accuracy on the held-out half; keep the C with the best score (summed over repetitions), the first in grid
//!   order on ties (`np.argmax`). Class weights stay 1:1 (the reference only tunes them when training data is mixed in).
//! * Final model ([`dfr_val`], `dfr_on_validation_eval`, 20 repetitions): a `StandardScaler` fitted on the features of
//!   the *training split*; each repetition subsamples the whole validation set to balanced groups and fits with the
//!   chosen C; the 20 coefficient vectors and intercepts are averaged into the final linear head.
//! * Logistic regression ([`fit_l1_logistic`]): the reference's `LogisticRegression(penalty="l1", C=c,
//!   solver="liblinear")` solves min ‖θ‖₁ + C Σ_i log(1 + exp(−ỹ_i θ·x̃_i)), where x̃ = (x, 1) and ỹ = ±1; liblinear
//!   penalises the intercept like every weight (intercept_scaling = 1), and so do we by default. We minimise the same
//!   objective divided by C·n — the mean log-loss plus λ‖θ‖₁ with λ = 1/(C·n) — with FISTA (Beck & Teboulle 2009)
//!   and gradient-based adaptive restart (O'Donoghue & Candès 2015), in f64 on the CPU, step 1/L with
//!   L = λ_max(X̃ᵀX̃)/(4n). It stops when the optimality (KKT) violation — max over coordinates of |∇_j + λ sign θ_j|
//!   where θ_j ≠ 0 and max(0, |∇_j| − λ) where θ_j = 0, ∇ the gradient of the mean log-loss — is at most `tol`
//!   (default 1e-5), checked every 10 iterations, or after `max_iter` (default 20 000) iterations, which is reported
//!   in [`Fit::converged`] rather than an error (sklearn warns). liblinear's own stopping rule differs; the minimiser is
//!   the same. Predictions follow sklearn: class 1 when θ·x̃ > 0.
//! * C grid: the reference's Waterbirds grid [1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01] ([`C_GRID_WATERBIRDS`]).
//! * Labels must be 0/1 (binary tasks: Waterbirds, Cats & Apples). The random streams differ from numpy's; the
//!   procedure is the same.
use anyhow::{bail, ensure, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::data::InputPipeline;
use crate::metrics;
use crate::models::vit::Vit;

/// The reference's C grid for Waterbirds (`C_OPTIONS` in `dfr_evaluate_spurious.py`).
pub const C_GRID_WATERBIRDS: [f64; 7] = [1.0, 0.7, 0.3, 0.1, 0.07, 0.03, 0.01];

/// Solver settings of [`fit_l1_logistic`] (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogRegConfig {
    pub max_iter: usize,
    /// Largest optimality (KKT) violation accepted, in units of the mean log-loss gradient.
    pub tol: f64,
    /// Penalise the intercept like the weights (liblinear does).
    pub penalize_intercept: bool,
}

impl Default for LogRegConfig {
    fn default() -> Self {
        Self {
            max_iter: 20_000,
            tol: 1e-5,
            penalize_intercept: true,
        }
    }
}

/// DFR^Val's settings (see the module docs for the defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DfrConfig {
    /// Inverse regularisation strengths to choose from, in tie-breaking order.
    pub c_grid: Vec<f64>,
    /// Random half-splits of the validation set the C choice sums over (reference: 1).
    pub tune_retrains: usize,
    /// Balanced subsamples of the validation set whose fits are averaged into the final head (reference: 20).
    pub final_retrains: usize,
    /// Seed of the splits and subsamples.
    pub seed: u64,
    pub logreg: LogRegConfig,
}

impl Default for DfrConfig {
    fn default() -> Self {
        Self {
            c_grid: C_GRID_WATERBIRDS.to_vec(),
            tune_retrains: 1,
            final_retrains: 20,
            seed: 0,
            logreg: LogRegConfig::default(),
        }
    }
}

/// sklearn's `StandardScaler`: per-feature mean and population standard deviation; a constant feature keeps
/// scale 1. Both f64 [d] on the CPU.
#[derive(Debug)]
pub struct StandardScaler {
    pub mean: Tensor,
    pub scale: Tensor,
}

impl StandardScaler {
    /// Fits on features `x` [n, d] (n > 0).
    pub fn fit(x: &Tensor) -> Result<Self> {
        let (n, _) = x.size2()?;
        ensure!(n > 0, "cannot fit a scaler on no samples");
        let x = as_f64_cpu(x);
        let mean = x.mean_dim(0, false, Kind::Double);
        let std = (&x - &mean)
            .square()
            .mean_dim(0, false, Kind::Double)
            .sqrt();
        let scale = std.where_self(&std.gt(0.0), &std.ones_like());
        Ok(Self { mean, scale })
    }

    /// (x − mean) / scale, f64 [n, d].
    pub fn transform(&self, x: &Tensor) -> Tensor {
        (as_f64_cpu(x) - &self.mean) / &self.scale
    }
}

/// A binary linear classifier θ·x + b on (already scaled) features.
#[derive(Debug)]
pub struct LogisticModel {
    /// f64 [d].
    pub weight: Tensor,
    pub bias: f64,
}

impl LogisticModel {
    /// Decision values θ·x + b, f64 [n].
    pub fn decision(&self, x: &Tensor) -> Tensor {
        as_f64_cpu(x).matmul(&self.weight) + self.bias
    }

    /// Class 1 where the decision value is positive, else 0 (sklearn).
    pub fn predict(&self, x: &Tensor) -> Vec<i64> {
        Vec::<i64>::try_from(self.decision(x).gt(0.0).to_kind(Kind::Int64))
            .expect("decision values are 1-d")
    }
}

/// What [`fit_l1_logistic`] returns.
#[derive(Debug)]
pub struct Fit {
    pub model: LogisticModel,
    pub iterations: usize,
    /// Whether the optimality violation reached `tol` within `max_iter` iterations.
    pub converged: bool,
}

fn as_f64_cpu(x: &Tensor) -> Tensor {
    x.to_device(Device::Cpu).to_kind(Kind::Double)
}

/// ℓ1-penalised logistic regression on features `x` [n, d] and 0/1 labels `y`: liblinear's problem
/// min ‖θ‖₁ + C Σ log-loss, solved by FISTA (see the module docs).
pub fn fit_l1_logistic(x: &Tensor, y: &[i64], c: f64, cfg: &LogRegConfig) -> Result<Fit> {
    let (n, d) = x.size2()?;
    ensure!(n > 0, "cannot fit a logistic regression on no samples");
    ensure!(
        y.len() == n as usize,
        "{} labels for {n} feature rows",
        y.len()
    );
    ensure!(c.is_finite() && c > 0.0, "C must be positive, got {c}");
    if let Some(bad) = y.iter().find(|&&v| v != 0 && v != 1) {
        bail!("logistic regression needs 0/1 labels, got {bad}");
    }
    let opts = (Kind::Double, Device::Cpu);
    let nf = n as f64;
    let xt = Tensor::cat(&[as_f64_cpu(x), Tensor::ones([n, 1], opts)], 1); // [n, d+1]
    let xt_t = xt.tr().contiguous(); // [d+1, n]
    let labels = Tensor::from_slice(&y.iter().map(|&v| v as f64).collect::<Vec<_>>());
    let lambda = 1.0 / (c * nf);
    let mut penalty = vec![lambda; d as usize + 1];
    if !cfg.penalize_intercept {
        penalty[d as usize] = 0.0;
    }
    let penalty = Tensor::from_slice(&penalty); // λ_j [d+1]
    let lipschitz = (xt_t.matmul(&xt) / nf)
        .linalg_eigvalsh("L")
        .max()
        .double_value(&[])
        / 4.0;
    let step = 1.0 / lipschitz.max(1e-12);
    let shrink = &penalty * step;
    let grad = |theta: &Tensor| xt_t.matmul(&(xt.matmul(theta).sigmoid() - &labels)) / nf;
    let prox = |v: &Tensor| v.sign() * (v.abs() - &shrink).relu();
    let violation = |theta: &Tensor| {
        let g = grad(theta);
        let on = (&g + &penalty * theta.sign()).abs();
        let off = (g.abs() - &penalty).relu();
        on.where_self(&theta.ne(0.0), &off).max().double_value(&[])
    };

    let mut theta = Tensor::zeros([d + 1], opts);
    let mut z = theta.copy();
    let mut t = 1.0f64;
    let mut iterations = 0;
    let mut converged = false;
    while iterations < cfg.max_iter {
        iterations += 1;
        let next = prox(&(&z - grad(&z) * step));
        // Restart the momentum when it points uphill (O'Donoghue & Candès' gradient scheme).
        let uphill = (&z - &next).dot(&(&next - &theta)).double_value(&[]) > 0.0;
        if uphill {
            t = 1.0;
            z = next.copy();
        } else {
            let t_next = (1.0 + (1.0 + 4.0 * t * t).sqrt()) / 2.0;
            z = &next + (&next - &theta) * ((t - 1.0) / t_next);
            t = t_next;
        }
        theta = next;
        if (iterations % 10 == 0 || iterations == cfg.max_iter) && violation(&theta) <= cfg.tol {
            converged = true;
            break;
        }
    }
    let bias = theta.double_value(&[d]);
    Ok(Fit {
        model: LogisticModel {
            weight: theta.narrow(0, 0, d),
            bias,
        },
        iterations,
        converged,
    })
}

/// Indices of a group-balanced subsample: every group `0..=max(groups)` shuffled and cut to the size of the smallest
/// one, concatenated group by group (the reference's `np.concatenate([x[g[:min_g]] for g in g_idx])`).
pub fn balanced_subsample(groups: &[i64], rng: &mut ChaCha8Rng) -> Result<Vec<usize>> {
    let by_group = members_by_group(groups)?;
    let smallest = by_group.iter().map(Vec::len).min().unwrap_or(0);
    let mut out = Vec::with_capacity(smallest * by_group.len());
    for mut members in by_group {
        members.shuffle(rng);
        out.extend_from_slice(&members[..smallest]);
    }
    Ok(out)
}

/// Sample indices of each group `0..=max(groups)`; every such group must have a sample.
fn members_by_group(groups: &[i64]) -> Result<Vec<Vec<usize>>> {
    ensure!(!groups.is_empty(), "no samples to group");
    if let Some(g) = groups.iter().find(|&&g| g < 0) {
        bail!("negative group id {g}");
    }
    let n_groups = *groups.iter().max().expect("non-empty") as usize + 1;
    let mut by_group = vec![Vec::new(); n_groups];
    for (i, &g) in groups.iter().enumerate() {
        by_group[g as usize].push(i);
    }
    if let Some(g) = by_group.iter().position(Vec::is_empty) {
        bail!("group {g} has no samples (groups 0..{n_groups} must all be present)");
    }
    Ok(by_group)
}

/// A random half-split of `0..n`: (held out, train) with ⌊n/2⌋ and ⌈n/2⌉ indices (the reference's
/// `idx[:n_val]`, `idx[n_val:]` of a shuffled range).
pub fn split_halves(n: usize, rng: &mut ChaCha8Rng) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(rng);
    let train = idx.split_off(n / 2);
    (idx, train)
}

/// Worst-group accuracy of `preds`; every group `0..=max(groups)` must have a sample.
pub fn worst_group_accuracy(preds: &[i64], labels: &[i64], groups: &[i64]) -> Result<f64> {
    let n_groups = members_by_group(groups)?.len();
    let accs = metrics::group_accuracies(preds, labels, groups, n_groups)?;
    Ok(metrics::worst_group(&accs))
}

fn rows(x: &Tensor, idx: &[usize]) -> Tensor {
    x.index_select(
        0,
        &Tensor::from_slice(&idx.iter().map(|&i| i as i64).collect::<Vec<_>>())
            .to_device(x.device()),
    )
}

fn pick<T: Copy>(v: &[T], idx: &[usize]) -> Vec<T> {
    idx.iter().map(|&i| v[i]).collect()
}

/// Worst-group accuracy on (`eval_x`, `eval_y`, `eval_g`) of the ℓ1 logistic regression fitted on (`train_x`,
/// `train_y`) for each C of `c_grid`, with a `StandardScaler` fitted on `train_x` (one tuning repetition of the
/// reference). Returns one accuracy per C, in grid order.
pub fn score_c_grid(
    (train_x, train_y): (&Tensor, &[i64]),
    (eval_x, eval_y, eval_g): (&Tensor, &[i64], &[i64]),
    c_grid: &[f64],
    cfg: &LogRegConfig,
) -> Result<Vec<f64>> {
    let scaler = StandardScaler::fit(train_x)?;
    let (train_s, eval_s) = (scaler.transform(train_x), scaler.transform(eval_x));
    c_grid
        .iter()
        .map(|&c| {
            let fit = fit_l1_logistic(&train_s, train_y, c, cfg)?;
            if !fit.converged {
                tracing::warn!(
                    c,
                    iterations = fit.iterations,
                    "DFR logistic regression did not converge"
                );
            }
            worst_group_accuracy(&fit.model.predict(&eval_s), eval_y, eval_g)
        })
        .collect()
}

/// The C choice of DFR^Val on validation features `x` [n, d], labels and groups: per repetition a random
/// half-split, a balanced subsample of the training half, and [`score_c_grid`]; returns the C with the best summed
/// worst-group accuracy (first in grid order on ties) and each C's mean score.
pub fn tune_c(
    x: &Tensor,
    y: &[i64],
    groups: &[i64],
    cfg: &DfrConfig,
    rng: &mut ChaCha8Rng,
) -> Result<(f64, Vec<(f64, f64)>)> {
    ensure!(!cfg.c_grid.is_empty(), "the C grid is empty");
    ensure!(cfg.tune_retrains > 0, "tune_retrains must be at least 1");
    let n = y.len();
    ensure!(
        groups.len() == n && x.size()[0] == n as i64,
        "features, labels and groups differ in length"
    );
    let mut totals = vec![0.0; cfg.c_grid.len()];
    for _ in 0..cfg.tune_retrains {
        let (held, rest) = split_halves(n, rng);
        let balanced: Vec<usize> = balanced_subsample(&pick(groups, &rest), rng)?
            .into_iter()
            .map(|k| rest[k])
            .collect();
        let scores = score_c_grid(
            (&rows(x, &balanced), &pick(y, &balanced)),
            (&rows(x, &held), &pick(y, &held), &pick(groups, &held)),
            &cfg.c_grid,
            &cfg.logreg,
        )?;
        for (t, s) in totals.iter_mut().zip(scores) {
            *t += s;
        }
    }
    let best = totals
        .iter()
        .enumerate()
        .fold(0, |b, (i, &t)| if t > totals[b] { i } else { b });
    let mean = cfg
        .c_grid
        .iter()
        .zip(&totals)
        .map(|(&c, &t)| (c, t / cfg.tune_retrains as f64))
        .collect();
    Ok((cfg.c_grid[best], mean))
}

/// DFR^Val's retrained last layer: the scaler (fitted on the training split) and the averaged logistic model.
#[derive(Debug)]
pub struct DfrModel {
    pub scaler: StandardScaler,
    /// Averaged over the final repetitions, on scaled features.
    pub model: LogisticModel,
    /// The chosen C.
    pub c: f64,
    /// (C, mean held-out worst-group accuracy) for every C of the grid.
    pub tuning: Vec<(f64, f64)>,
    /// Whether every final fit converged.
    pub converged: bool,
}

impl DfrModel {
    /// Predicted classes for raw features `x` [n, d].
    pub fn predict(&self, x: &Tensor) -> Vec<i64> {
        self.model.predict(&self.scaler.transform(x))
    }

    /// The model as a two-class linear head on raw features, f32 weight [2, d] and bias [2] (HF `classifier`
    /// layout): class 0's row is zero and class 1's holds the scaler folded into the weights, so the logits' argmax
    /// is [`DfrModel::predict`] (ties go to class 0 in both).
    pub fn linear_head(&self) -> (Tensor, Tensor) {
        let w = &self.model.weight / &self.scaler.scale; // [d]
        let b = self.model.bias - (&w * &self.scaler.mean).sum(Kind::Double).double_value(&[]);
        let weight = Tensor::stack(&[w.zeros_like(), w], 0).to_kind(Kind::Float);
        let bias = Tensor::from_slice(&[0.0f32, b as f32]);
        (weight, bias)
    }
}

/// DFR^Val (see the module docs): tunes C on random halves of the validation set (`val_x` [n, d], labels, groups),
/// then averages `final_retrains` fits on balanced subsamples of the whole validation set, with features scaled by
/// a `StandardScaler` fitted on the training split's features `train_x` [m, d].
pub fn dfr_val(
    val_x: &Tensor,
    val_y: &[i64],
    val_groups: &[i64],
    train_x: &Tensor,
    cfg: &DfrConfig,
) -> Result<DfrModel> {
    ensure!(cfg.final_retrains > 0, "final_retrains must be at least 1");
    ensure!(
        train_x.size().get(1) == val_x.size().get(1),
        "train features {:?} and validation features {:?} differ in width",
        train_x.size(),
        val_x.size()
    );
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let (c, tuning) = tune_c(val_x, val_y, val_groups, cfg, &mut rng)?;
    let scaler = StandardScaler::fit(train_x)?;
    let scaled = scaler.transform(val_x);
    let (mut weights, mut biases, mut converged) = (Vec::new(), Vec::new(), true);
    for _ in 0..cfg.final_retrains {
        let idx = balanced_subsample(val_groups, &mut rng)?;
        let fit = fit_l1_logistic(&rows(&scaled, &idx), &pick(val_y, &idx), c, &cfg.logreg)?;
        converged &= fit.converged;
        weights.push(fit.model.weight);
        biases.push(fit.model.bias);
    }
    if !converged {
        tracing::warn!(c, "some DFR final fits did not converge");
    }
    let model = LogisticModel {
        weight: Tensor::stack(&weights, 0).mean_dim(0, false, Kind::Double),
        bias: biases.iter().sum::<f64>() / biases.len() as f64,
    };
    Ok(DfrModel {
        scaler,
        model,
        c,
        tuning,
        converged,
    })
}

/// The head's input features of `vit` for u8 images [n, 3, H, W]: the CLS token of the last hidden state (after the
/// final layernorm), f32 [n, d] on the CPU, computed in batches without gradients and without augmentation.
pub fn features(
    vit: &Vit,
    images_u8: &Tensor,
    input: &InputPipeline,
    batch_size: usize,
) -> Result<Tensor> {
    let n = images_u8.size()[0];
    let d = vit.config().hidden_size;
    let mut out = Vec::new();
    for start in (0..n).step_by(batch_size.max(1)) {
        let len = (n - start).min(batch_size.max(1) as i64);
        let xs = input.eval_batch(&images_u8.narrow(0, start, len));
        let cls = tch::no_grad(|| vit.forward_features(&xs, -1, false))?
            .tokens
            .select(1, 0);
        out.push(cls.to_device(Device::Cpu));
    }
    Ok(if out.is_empty() {
        Tensor::zeros([0, d], (Kind::Float, Device::Cpu))
    } else {
        Tensor::cat(&out, 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn rng(seed: u64) -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(seed)
    }

    /// x = ±1 (one feature), four samples each; label 1 for 3 of the 4 at x = +1 and 1 of the 4 at x = −1.
    /// The data are symmetric under (x, y) → (−x, 1 − y), so the intercept is 0 and, with λ = 1/(C n), the mean
    /// log-loss gradient in w is σ(w) − 3/4: the ℓ1 solution is σ(w) = 3/4 − λ, w = 0 once λ ≥ 1/4.
    fn symmetric_data() -> (Tensor, Vec<i64>) {
        let x = [1.0, 1.0, 1.0, 1.0, -1.0, -1.0, -1.0, -1.0];
        let y = vec![1, 1, 1, 0, 1, 0, 0, 0];
        (Tensor::from_slice(&x).view([8, 1]), y)
    }

    fn tight() -> LogRegConfig {
        LogRegConfig {
            tol: 1e-10,
            max_iter: 100_000,
            ..Default::default()
        }
    }

    #[test]
    fn logistic_regression_matches_the_hand_solution() {
        let (x, y) = symmetric_data();
        // Practically unpenalised: the maximum-likelihood w = logit(3/4) = ln 3.
        let fit = fit_l1_logistic(&x, &y, 1e8, &tight()).unwrap();
        assert!(fit.converged);
        let w = fit.model.weight.double_value(&[0]);
        assert!((w - 3f64.ln()).abs() < 1e-5, "{w}");
        assert!(fit.model.bias.abs() < 1e-6);
        // C = 1, n = 8: λ = 1/8, σ(w) = 5/8, w = ln(5/3).
        let fit = fit_l1_logistic(&x, &y, 1.0, &tight()).unwrap();
        let w = fit.model.weight.double_value(&[0]);
        assert!((w - (5.0f64 / 3.0).ln()).abs() < 1e-6, "{w}");
        assert!(fit.model.bias.abs() < 1e-8);
        // C = 0.4: λ = 0.3125 ≥ 1/4, the ℓ1 penalty zeroes w exactly; everything is predicted 0 (no positive score).
        let fit = fit_l1_logistic(&x, &y, 0.4, &tight()).unwrap();
        assert_eq!(fit.model.weight.double_value(&[0]), 0.0);
        assert_eq!(fit.model.predict(&x), vec![0; 8]);
    }

    #[test]
    fn logistic_regression_separates_separable_data_with_the_right_feature() {
        // Label = [x0 > 0]; x1 is noise. With C = 1 the ℓ1 fit classifies every point and leans on x0.
        let mut r = rng(3);
        let n = 200;
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        for i in 0..n {
            let y = i % 2;
            let x0 = if y == 1 { 1.0 } else { -1.0 } * r.gen_range(0.2..2.0);
            xs.extend([x0, r.gen_range(-1.0..1.0)]);
            ys.push(y);
        }
        let x = Tensor::from_slice(&xs).view([n, 2]);
        let fit = fit_l1_logistic(&x, &ys, 1.0, &LogRegConfig::default()).unwrap();
        assert!(fit.converged, "{} iterations", fit.iterations);
        assert_eq!(fit.model.predict(&x), ys);
        let w: Vec<f64> = Vec::try_from(&fit.model.weight).unwrap();
        assert!(w[0] > 1.0 && w[1].abs() < 0.1 * w[0], "{w:?}");
    }

    #[test]
    fn logistic_regression_rejects_bad_input() {
        let x = Tensor::zeros([2, 1], (Kind::Float, Device::Cpu));
        let cfg = LogRegConfig::default();
        assert!(fit_l1_logistic(&x, &[0, 2], 1.0, &cfg).is_err());
        assert!(fit_l1_logistic(&x, &[0], 1.0, &cfg).is_err());
        assert!(fit_l1_logistic(&x, &[0, 1], 0.0, &cfg).is_err());
    }

    #[test]
    fn balanced_subsample_equalises_groups() {
        let groups = [0i64, 0, 0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 3];
        let idx = balanced_subsample(&groups, &mut rng(0)).unwrap();
        assert_eq!(idx.len(), 8);
        let mut counts = [0; 4];
        for &i in &idx {
            counts[groups[i] as usize] += 1;
        }
        assert_eq!(counts, [2, 2, 2, 2]);
        let mut dedup = idx.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(dedup.len(), idx.len(), "no sample twice");
        // A different seed draws a different subsample of the big groups.
        let other: Vec<Vec<usize>> = (1..6)
            .map(|s| balanced_subsample(&groups, &mut rng(s)).unwrap())
            .collect();
        assert!(other.iter().any(|o| *o != idx));
        // Group 2 missing between 0 and 3.
        let err = balanced_subsample(&[0, 1, 3], &mut rng(0)).unwrap_err();
        assert!(err.to_string().contains("group 2 has no samples"), "{err}");
    }

    #[test]
    fn split_halves_partition_the_range() {
        let (held, train) = split_halves(7, &mut rng(1));
        assert_eq!((held.len(), train.len()), (3, 4));
        let mut all: Vec<usize> = held.iter().chain(&train).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..7).collect::<Vec<_>>());
    }

    #[test]
    fn scaler_standardises_with_population_std() {
        let x = Tensor::from_slice(&[1.0f32, 5.0, 3.0, 5.0]).view([2, 2]);
        let s = StandardScaler::fit(&x).unwrap();
        assert_eq!(Vec::<f64>::try_from(&s.mean).unwrap(), vec![2.0, 5.0]);
        // Column 0: std 1 (ddof 0); column 1 is constant and keeps scale 1.
        assert_eq!(Vec::<f64>::try_from(&s.scale).unwrap(), vec![1.0, 1.0]);
        let z: Vec<f64> = Vec::try_from(s.transform(&x).view([-1])).unwrap();
        assert_eq!(z, vec![-1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn c_is_chosen_by_worst_group_accuracy() {
        // Training data as in `symmetric_data`: C = 1 keeps w = ln(5/3) > 0; C ≤ 0.5 zeroes it and predicts 0
        // everywhere. Held-out groups: 0 = (x = +1, y = 1), 1 = (x = −1, y = 0) — nine of group 1, so predicting 0
        // everywhere is 90 % accurate on average but 0 % on group 0.
        let (train_x, train_y) = symmetric_data();
        let mut eval_x = vec![1.0];
        let (mut eval_y, mut eval_g) = (vec![1], vec![0]);
        for _ in 0..9 {
            eval_x.push(-1.0);
            eval_y.push(0);
            eval_g.push(1);
        }
        let eval_x = Tensor::from_slice(&eval_x).view([10, 1]);
        let grid = [0.1, 1.0, 0.3];
        let scores = score_c_grid(
            (&train_x, &train_y),
            (&eval_x, &eval_y, &eval_g),
            &grid,
            &LogRegConfig::default(),
        )
        .unwrap();
        assert_eq!(scores, vec![0.0, 1.0, 0.0]);
    }

    /// Normal draws from a seeded stream (Box–Muller).
    fn normal(r: &mut ChaCha8Rng) -> f64 {
        let (u, v): (f64, f64) = (r.gen_range(1e-12..1.0), r.gen());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// Features (core, spurious, 3 noise) for the given groups: core = ±1 by class plus noise, spurious = ±2 by place.
    fn synth_features(groups: &[i64], r: &mut ChaCha8Rng) -> Tensor {
        let mut xs = Vec::new();
        for &g in groups {
            let (y, p) = ((g / 2) as f64, (g % 2) as f64);
            xs.push((2.0 * y - 1.0) + 0.7 * normal(r));
            xs.push(2.0 * (2.0 * p - 1.0) + 0.5 * normal(r));
            for _ in 0..3 {
                xs.push(normal(r));
            }
        }
        Tensor::from_slice(&xs).view([groups.len() as i64, 5])
    }

    fn groups_with_counts(counts: [usize; 4]) -> Vec<i64> {
        (0..4i64)
            .flat_map(|g| std::iter::repeat_n(g, counts[g as usize]))
            .collect()
    }

    #[test]
    fn dfr_val_ignores_the_spurious_feature() {
        let mut r = rng(7);
        // Training split: 95 % of each class on its usual place (groups 0 and 3); validation as in Waterbirds, each
        // class split evenly over the places; test balanced.
        let train_g = groups_with_counts([700, 37, 12, 220]);
        let val_g = groups_with_counts([120, 120, 40, 40]);
        let test_g = groups_with_counts([200, 200, 200, 200]);
        let (train_x, val_x, test_x) = (
            synth_features(&train_g, &mut r),
            synth_features(&val_g, &mut r),
            synth_features(&test_g, &mut r),
        );
        let labels = |g: &[i64]| g.iter().map(|&g| g / 2).collect::<Vec<_>>();
        let cfg = DfrConfig::default();
        let dfr = dfr_val(&val_x, &labels(&val_g), &val_g, &train_x, &cfg).unwrap();
        assert!(dfr.converged);
        assert_eq!(dfr.tuning.len(), 7);
        assert!(C_GRID_WATERBIRDS.contains(&dfr.c));
        let preds = dfr.predict(&test_x);
        let worst = worst_group_accuracy(&preds, &labels(&test_g), &test_g).unwrap();
        // The core feature alone gives Φ(1/0.7) ≈ 0.92 in every group; leaning on the spurious one would fail a
        // minority group.
        assert!(worst > 0.85, "test worst-group accuracy {worst}");
        let w: Vec<f64> = Vec::try_from(&dfr.model.weight).unwrap();
        assert!(w[0] > 4.0 * w[1].abs(), "weights {w:?}");
        // The folded head predicts the same classes.
        let (weight, bias) = dfr.linear_head();
        let logits = test_x.to_kind(Kind::Float).matmul(&weight.tr()) + bias;
        let head: Vec<i64> = Vec::try_from(logits.argmax(-1, false)).unwrap();
        assert_eq!(head, preds);
        // Same seed, same model.
        let again = dfr_val(&val_x, &labels(&val_g), &val_g, &train_x, &cfg).unwrap();
        assert_eq!(again.c, dfr.c);
        assert!(again
            .model
            .weight
            .allclose(&dfr.model.weight, 0.0, 0.0, false));
    }

    #[test]
    fn features_are_the_heads_input() {
        use crate::models::vit::Config;
        tch::manual_seed(0);
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let vit = Vit::new(&vs.root(), &Config::tiny(16, 4));
        let images = Tensor::randint(256, [5, 3, 16, 16], (Kind::Uint8, Device::Cpu));
        let input = InputPipeline {
            normalize: Default::default(),
            augment: Default::default(),
            device: Device::Cpu,
        };
        let f = features(&vit, &images, &input, 2).unwrap();
        assert_eq!(f.size(), vec![5, 96]);
        let vars = vs.variables();
        let logits = f.matmul(&vars["classifier.weight"].tr()) + &vars["classifier.bias"];
        let want = tch::no_grad(|| vit.forward_t(&input.eval_batch(&images), false));
        assert!(logits.allclose(&want, 1e-5, 1e-5, false));
    }
}
