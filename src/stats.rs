//! Confidence intervals for a mean over a few seeds, as `texplain compare` reports for paired per-seed
//! differences between two methods.
//!
//! * [`t_interval`]: mean ± t_{1−α/2, n−1} · sd / √n, sd the sample standard deviation (ddof = 1, as
//!   [`crate::metrics::mean_std`]). The Student-t quantile ([`student_t_quantile`]) is computed here: for integer
//!   degrees of freedom ν the two-sided mass P(|T| ≤ t) is a finite series in θ = atan(t/√ν) (Abramowitz & Stegun
//!   26.7.3 for odd ν, 26.7.4 for even ν), inverted by bisection to 1e-12.
//! * [`bootstrap_interval`]: the percentile bootstrap of the mean — `resamples` resamples of the n values with
//!   replacement, the mean of each, and the α/2 and 1 − α/2 quantiles of those means (linear interpolation between
//!   order statistics, numpy's default). Seeded (ChaCha8), so one input always gives one interval. With a handful of
//!   seeds it is narrower than the t interval (it has no small-sample correction), which is why t is the default.
//! * Fewer than two finite values give no interval (`None`): one seed says nothing about the spread.
//!
//! And Spearman's rank correlation ([`spearman`]) across categories, for the Background Challenge analysis: the
//! Pearson correlation of the average ranks (ties share their mean rank, as `scipy.stats.spearmanr`).
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::metrics::mean_std;

/// P(|T| ≤ t) for Student's t with `df` ≥ 1 degrees of freedom and t ≥ 0 (Abramowitz & Stegun 26.7.3–4).
pub fn student_t_two_sided_mass(t: f64, df: u32) -> f64 {
    assert!(
        df >= 1,
        "the t distribution needs at least one degree of freedom"
    );
    if t.is_infinite() {
        return 1.0;
    }
    let theta = (t / f64::from(df).sqrt()).atan();
    let (sin, cos) = theta.sin_cos();
    let cos2 = cos * cos;
    if df % 2 == 1 {
        // (2/π) [θ + sin θ (cos θ + (2/3) cos³θ + … + (2·4···(ν−3))/(1·3···(ν−2)) cos^(ν−2)θ)]
        let mut sum = 0.0;
        if df > 1 {
            let mut term = cos;
            sum = term;
            let mut k = 1;
            while 2 * k + 1 < df {
                term *= cos2 * f64::from(2 * k) / f64::from(2 * k + 1);
                sum += term;
                k += 1;
            }
        }
        std::f64::consts::FRAC_2_PI * (theta + sin * sum)
    } else {
        // sin θ [1 + (1/2) cos²θ + (1·3)/(2·4) cos⁴θ + … + (1·3···(ν−3))/(2·4···(ν−2)) cos^(ν−2)θ]
        let (mut term, mut sum) = (1.0, 1.0);
        let mut k = 1;
        while 2 * k < df {
            term *= cos2 * f64::from(2 * k - 1) / f64::from(2 * k);
            sum += term;
            k += 1;
        }
        sin * sum
    }
}

/// The `p` quantile of Student's t with `df` ≥ 1 degrees of freedom, for 0 < p < 1 (e.g. p = 0.975, df = 2:
/// 4.302653).
pub fn student_t_quantile(p: f64, df: u32) -> f64 {
    assert!(p > 0.0 && p < 1.0, "quantile level {p} is outside (0, 1)");
    if p < 0.5 {
        return -student_t_quantile(1.0 - p, df);
    }
    let target = 2.0 * p - 1.0; // P(|T| <= t)
    if target == 0.0 {
        return 0.0;
    }
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    while student_t_two_sided_mass(hi, df) < target {
        lo = hi;
        hi *= 2.0;
    }
    while hi - lo > 1e-12 * hi.max(1.0) {
        let mid = 0.5 * (lo + hi);
        if student_t_two_sided_mass(mid, df) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

fn finite(xs: &[f64]) -> Option<&[f64]> {
    (xs.len() >= 2 && xs.iter().all(|x| x.is_finite())).then_some(xs)
}

/// The `level` (e.g. 0.95) Student-t interval of the mean of `xs`; `None` for fewer than two values or a
/// non-finite one.
pub fn t_interval(xs: &[f64], level: f64) -> Option<(f64, f64)> {
    let xs = finite(xs)?;
    let (mean, sd) = mean_std(xs);
    let q = student_t_quantile(1.0 - (1.0 - level) / 2.0, xs.len() as u32 - 1);
    let half = q * sd / (xs.len() as f64).sqrt();
    Some((mean - half, mean + half))
}

/// The `q` quantile of ascending `sorted` values with linear interpolation (numpy's default).
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (i, frac) = (pos.floor() as usize, pos - pos.floor());
    match sorted.get(i + 1) {
        Some(next) => sorted[i] + frac * (next - sorted[i]),
        None => sorted[i],
    }
}

/// The `level` percentile-bootstrap interval of the mean of `xs` from `resamples` resamples drawn with `seed`;
/// `None` for fewer than two values, a non-finite one, or no resamples.
pub fn bootstrap_interval(
    xs: &[f64],
    level: f64,
    resamples: usize,
    seed: u64,
) -> Option<(f64, f64)> {
    let xs = finite(xs)?;
    if resamples == 0 {
        return None;
    }
    let n = xs.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| (0..n).map(|_| xs[rng.gen_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let alpha = 1.0 - level;
    Some((
        quantile_sorted(&means, alpha / 2.0),
        quantile_sorted(&means, 1.0 - alpha / 2.0),
    ))
}

/// 1-based ranks of `xs`, ties given the mean of the ranks they span.
pub fn average_ranks(xs: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.sort_by(|&a, &b| xs[a].total_cmp(&xs[b]));
    let mut ranks = vec![0.0; xs.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && xs[order[j + 1]] == xs[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// Spearman's rank correlation of paired values; `None` for fewer than three pairs, a non-finite value, unequal
/// lengths, or a side whose values are all equal (no ranking to correlate).
pub fn spearman(xs: &[f64], ys: &[f64]) -> Option<f64> {
    if xs.len() != ys.len() || xs.len() < 3 || xs.iter().chain(ys).any(|v| !v.is_finite()) {
        return None;
    }
    let (rx, ry) = (average_ranks(xs), average_ranks(ys));
    let n = xs.len() as f64;
    let (mx, my) = (rx.iter().sum::<f64>() / n, ry.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in rx.iter().zip(&ry) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    (sxx > 0.0 && syy > 0.0).then(|| sxy / (sxx * syy).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_tables() {
        // mpmath, 30 digits: the root of 1 − I_{ν/(ν+t²)}(ν/2, 1/2) / 2 = p.
        let cases = [
            (0.975, 1, 12.706_204_736_174_693),
            (0.975, 2, 4.302_652_729_749_462),
            (0.975, 3, 3.182_446_305_283_708),
            (0.975, 4, 2.776_445_105_197_794),
            (0.975, 9, 2.262_157_162_798_205),
            (0.975, 29, 2.045_229_642_132_704),
            (0.95, 5, 2.015_048_373_333_024),
            (0.995, 10, 3.169_272_672_616_951),
            (0.975, 1000, 1.962_339_080_826_408),
        ];
        for (p, df, want) in cases {
            let got = student_t_quantile(p, df);
            assert!(
                (got - want).abs() < 1e-9 * want,
                "t({p}, {df}) = {got}, want {want}"
            );
        }
        assert!((student_t_quantile(0.025, 2) + 4.302_652_729_749_464).abs() < 1e-9);
        assert_eq!(student_t_quantile(0.5, 7), 0.0);
        // ν = 1 is the Cauchy distribution: P(|T| ≤ 1) = 1/2.
        assert!((student_t_two_sided_mass(1.0, 1) - 0.5).abs() < 1e-15);
    }

    #[test]
    fn t_interval_by_hand() {
        // Differences [1, 2, 3]: mean 2, sd 1, t_{0.975, 2} = 4.302653 -> 2 ± 4.302653/√3 = [-0.484, 4.484].
        let (lo, hi) = t_interval(&[1.0, 2.0, 3.0], 0.95).unwrap();
        let half = 4.302_652_729_749_464 / 3f64.sqrt();
        assert!((lo - (2.0 - half)).abs() < 1e-9 && (hi - (2.0 + half)).abs() < 1e-9);
        assert!(
            (lo + 0.484).abs() < 1e-3 && (hi - 4.484).abs() < 1e-3,
            "[{lo}, {hi}]"
        );
        assert_eq!(t_interval(&[5.0], 0.95), None);
        assert_eq!(t_interval(&[], 0.95), None);
        assert_eq!(t_interval(&[1.0, f64::NAN], 0.95), None);
        // Equal differences: a zero-width interval.
        assert_eq!(t_interval(&[0.5, 0.5], 0.95), Some((0.5, 0.5)));
    }

    #[test]
    fn bootstrap_interval_is_seeded_and_brackets_the_mean() {
        let xs = [0.3, 1.7, 2.2, 3.9, 4.1, 5.6, 7.3, 10.9];
        let a = bootstrap_interval(&xs, 0.95, 10_000, 0).unwrap();
        assert_eq!(bootstrap_interval(&xs, 0.95, 10_000, 0), Some(a));
        assert_ne!(bootstrap_interval(&xs, 0.95, 10_000, 1), Some(a));
        // Resampled means lie between the data's min and max and bracket the sample mean 4.5.
        assert!(0.3 <= a.0 && a.0 < 4.5 && 4.5 < a.1 && a.1 <= 10.9, "{a:?}");
        // Two values: the resampled mean is 1, 1.5 or 2 with probabilities 1/4, 1/2, 1/4; the 2.5 % and 97.5 %
        // quantiles are the extremes.
        assert_eq!(
            bootstrap_interval(&[1.0, 2.0], 0.95, 10_000, 3),
            Some((1.0, 2.0))
        );
        assert_eq!(bootstrap_interval(&[1.0], 0.95, 10_000, 0), None);
        assert_eq!(bootstrap_interval(&xs, 0.95, 0, 0), None);
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let s = [1.0, 2.0, 4.0, 8.0];
        // numpy.quantile([1, 2, 4, 8], [0, 0.25, 0.5, 1]) = [1, 1.75, 3, 8]
        assert_eq!(quantile_sorted(&s, 0.0), 1.0);
        assert_eq!(quantile_sorted(&s, 0.25), 1.75);
        assert_eq!(quantile_sorted(&s, 0.5), 3.0);
        assert_eq!(quantile_sorted(&s, 1.0), 8.0);
    }

    #[test]
    fn spearman_matches_scipy_with_ties() {
        // numpy.corrcoef of the average ranks = scipy.stats.spearmanr: 0.8207826816681234, 0.316227766016838.
        assert_eq!(
            average_ranks(&[5.0, 6.0, 7.0, 8.0, 7.0]),
            [1.0, 2.0, 3.5, 5.0, 3.5]
        );
        let r = spearman(&[1.0, 2.0, 3.0, 4.0, 5.0], &[5.0, 6.0, 7.0, 8.0, 7.0]).unwrap();
        assert!((r - 0.8207826816681234).abs() < 1e-12, "{r}");
        let r = spearman(&[0.3, 0.1, 0.1, 0.5], &[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert!((r - 0.316227766016838).abs() < 1e-12, "{r}");
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        assert_eq!(spearman(&[1.0, 2.0], &[1.0, 2.0]), None);
        assert_eq!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
        assert_eq!(spearman(&[1.0, f64::NAN, 2.0], &[1.0, 2.0, 3.0]), None);
    }
}
