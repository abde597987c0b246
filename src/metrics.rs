//! Evaluation metrics for group-robustness (paper section 4.3, Table 1): per-group accuracy, worst-group accuracy,
//! the two "average accuracy" conventions, mean ± std over seeds, and precision/recall of a flagged sample set.
//!
//! Conventions follow group_DRO / WILDS (Sagawa et al. 2020, Koh et al. 2021):
//! * `avg_train_weighted` = sum_g (n_g^train / N^train) * acc_g — the "average accuracy" most Waterbirds papers quote;
//! * `avg_plain` = plain accuracy over all evaluated samples;
//! * `worst_group` = min over non-empty groups.
//!
//! `mean_std` uses the sample standard deviation (ddof = 1, like `numpy.std(ddof=1)` and pandas). For a single value
//! the sample std is undefined and we return NaN (as numpy/pandas do) rather than 0, so a one-seed run never looks
//! like a zero-variance result; reporting renders a NaN std as "mean" alone.
use std::collections::BTreeSet;

/// Errors from metric inputs that do not fit together.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MetricsError {
    #[error("length mismatch: {what} has {got} entries, expected {expected}")]
    LengthMismatch {
        what: &'static str,
        got: usize,
        expected: usize,
    },
    #[error("sample {index} has group {group}, outside 0..{n_groups}")]
    GroupOutOfRange {
        index: usize,
        group: i64,
        n_groups: usize,
    },
    #[error("group {group} has {train_count} training samples but no evaluated samples: its accuracy is undefined")]
    EmptyWeightedGroup { group: usize, train_count: usize },
    #[error("training counts sum to zero: cannot weight groups")]
    ZeroTrainTotal,
}

fn check_len(what: &'static str, got: usize, expected: usize) -> Result<(), MetricsError> {
    if got == expected {
        Ok(())
    } else {
        Err(MetricsError::LengthMismatch {
            what,
            got,
            expected,
        })
    }
}

/// Accuracy of each group `0..n_groups`; `None` for a group without samples.
pub fn group_accuracies(
    preds: &[i64],
    labels: &[i64],
    groups: &[i64],
    n_groups: usize,
) -> Result<Vec<Option<f64>>, MetricsError> {
    check_len("labels", labels.len(), preds.len())?;
    check_len("groups", groups.len(), preds.len())?;
    let mut correct = vec![0usize; n_groups];
    let mut total = vec![0usize; n_groups];
    for (index, ((&p, &y), &g)) in preds.iter().zip(labels).zip(groups).enumerate() {
        let gi = usize::try_from(g).ok().filter(|&gi| gi < n_groups).ok_or(
            MetricsError::GroupOutOfRange {
                index,
                group: g,
                n_groups,
            },
        )?;
        total[gi] += 1;
        correct[gi] += usize::from(p == y);
    }
    Ok(correct
        .iter()
        .zip(&total)
        .map(|(&c, &n)| (n > 0).then(|| c as f64 / n as f64))
        .collect())
}

/// Minimum accuracy over non-empty groups; NaN when every group is empty.
pub fn worst_group(accs: &[Option<f64>]) -> f64 {
    accs.iter()
        .flatten()
        .copied()
        .fold(None, |m: Option<f64>, a| Some(m.map_or(a, |m| m.min(a))))
        .unwrap_or(f64::NAN)
}

/// Plain accuracy (fraction of `preds == labels`); NaN for no samples.
pub fn avg_plain(preds: &[i64], labels: &[i64]) -> Result<f64, MetricsError> {
    check_len("labels", labels.len(), preds.len())?;
    if preds.is_empty() {
        return Ok(f64::NAN);
    }
    let correct = preds.iter().zip(labels).filter(|(p, y)| p == y).count();
    Ok(correct as f64 / preds.len() as f64)
}

/// sum_g (n_g^train / N^train) * acc_g (group_DRO / WILDS "average accuracy").
///
/// A group with training weight but no evaluated samples makes the number undefined, so that is an error;
/// a group with zero training samples contributes nothing whatever its accuracy.
pub fn avg_train_weighted(
    accs: &[Option<f64>],
    train_counts: &[usize],
) -> Result<f64, MetricsError> {
    check_len("train_counts", train_counts.len(), accs.len())?;
    let total: usize = train_counts.iter().sum();
    if total == 0 {
        return Err(MetricsError::ZeroTrainTotal);
    }
    let mut acc = 0.0;
    for (group, (a, &n)) in accs.iter().zip(train_counts).enumerate() {
        if n == 0 {
            continue;
        }
        let a = a.ok_or(MetricsError::EmptyWeightedGroup {
            group,
            train_count: n,
        })?;
        acc += n as f64 / total as f64 * a;
    }
    Ok(acc)
}

/// Mean and sample standard deviation (ddof = 1). One value: (x, NaN). No values: (NaN, NaN).
pub fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let mean = xs.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return (mean, f64::NAN);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (mean, var.sqrt())
}

/// Precision and recall of a flagged set against a target set (e.g. flagged samples vs. minority-group samples).
#[derive(Debug, Clone, PartialEq)]
pub struct PrecisionRecall {
    /// |flagged ∩ target|
    pub true_positives: usize,
    /// |flagged| (distinct)
    pub n_flagged: usize,
    /// |target| (distinct)
    pub n_target: usize,
    /// tp / |flagged|; `None` when nothing is flagged.
    pub precision: Option<f64>,
    /// tp / |target|; `None` when the target set is empty.
    pub recall: Option<f64>,
}

/// Precision/recall of `flagged` against `target`; duplicates in either list count once.
pub fn precision_recall<T: Ord>(flagged: &[T], target: &[T]) -> PrecisionRecall {
    let flagged: BTreeSet<&T> = flagged.iter().collect();
    let target: BTreeSet<&T> = target.iter().collect();
    let tp = flagged.intersection(&target).count();
    PrecisionRecall {
        true_positives: tp,
        n_flagged: flagged.len(),
        n_target: target.len(),
        precision: (!flagged.is_empty()).then(|| tp as f64 / flagged.len() as f64),
        recall: (!target.is_empty()).then(|| tp as f64 / target.len() as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// (preds, labels, groups, n_groups, expected accuracies)
    type GroupCase = (Vec<i64>, Vec<i64>, Vec<i64>, usize, Vec<Option<f64>>);

    #[test]
    fn group_accuracies_table() {
        let cases: Vec<GroupCase> = vec![
            (vec![], vec![], vec![], 2, vec![None, None]),
            (
                vec![0, 0, 1, 1],
                vec![0, 1, 1, 1],
                vec![0, 0, 1, 1],
                2,
                vec![Some(0.5), Some(1.0)],
            ),
            (
                vec![1, 0, 1],
                vec![1, 1, 1],
                vec![0, 3, 3],
                4,
                vec![Some(1.0), None, None, Some(0.5)],
            ),
        ];
        for (p, y, g, n, want) in cases {
            assert_eq!(
                group_accuracies(&p, &y, &g, n).unwrap(),
                want,
                "{p:?} {y:?} {g:?}"
            );
        }
    }

    #[test]
    fn group_accuracies_bad_input() {
        assert_eq!(
            group_accuracies(&[0, 1], &[0], &[0, 0], 2),
            Err(MetricsError::LengthMismatch {
                what: "labels",
                got: 1,
                expected: 2
            })
        );
        assert_eq!(
            group_accuracies(&[0, 1], &[0, 1], &[0, 2], 2),
            Err(MetricsError::GroupOutOfRange {
                index: 1,
                group: 2,
                n_groups: 2
            })
        );
        assert!(matches!(
            group_accuracies(&[0], &[0], &[-1], 2),
            Err(MetricsError::GroupOutOfRange { group: -1, .. })
        ));
    }

    #[test]
    fn worst_group_table() {
        let cases: Vec<(Vec<Option<f64>>, f64)> = vec![
            (vec![Some(1.0), Some(0.58), Some(0.19), Some(0.97)], 0.19),
            (vec![None, Some(0.7), None], 0.7),
            (vec![Some(0.0), Some(1.0)], 0.0),
        ];
        for (accs, want) in cases {
            assert!(close(worst_group(&accs), want), "{accs:?}");
        }
        assert!(worst_group(&[None, None]).is_nan());
        assert!(worst_group(&[]).is_nan());
    }

    #[test]
    fn avg_plain_table() {
        assert!(close(avg_plain(&[1, 0, 1, 1], &[1, 1, 1, 0]).unwrap(), 0.5));
        assert!(close(avg_plain(&[2], &[2]).unwrap(), 1.0));
        assert!(avg_plain(&[], &[]).unwrap().is_nan());
        assert!(avg_plain(&[1], &[]).is_err());
    }

    #[test]
    fn avg_train_weighted_waterbirds() {
        // Real Waterbirds training group counts, and the ERM test accuracies of a from-scratch probe (PyTorch).
        let train = [3498usize, 184, 56, 1057];
        let accs = [Some(1.0), Some(0.58), Some(0.19), Some(0.97)];
        // By hand: N = 4795; (3498*1.0 + 184*0.58 + 56*0.19 + 1057*0.97) / 4795
        //        = (3498 + 106.72 + 10.64 + 1025.29) / 4795 = 4640.65 / 4795 = 0.967810219...
        let want = 4640.65 / 4795.0;
        let got = avg_train_weighted(&accs, &train).unwrap();
        assert!(close(got, want), "{got} vs {want}");
        assert!((got - 0.9678).abs() < 1e-4);
    }

    #[test]
    fn avg_train_weighted_edge_cases() {
        // A group without training samples does not matter, even when it has no test samples.
        assert!(close(
            avg_train_weighted(&[Some(0.5), None], &[10, 0]).unwrap(),
            0.5
        ));
        assert_eq!(
            avg_train_weighted(&[Some(0.5), None], &[10, 2]),
            Err(MetricsError::EmptyWeightedGroup {
                group: 1,
                train_count: 2
            })
        );
        assert_eq!(
            avg_train_weighted(&[Some(0.5)], &[0]),
            Err(MetricsError::ZeroTrainTotal)
        );
        assert!(avg_train_weighted(&[Some(0.5)], &[1, 2]).is_err());
    }

    #[test]
    fn mean_std_table() {
        // numpy: np.std([0.78, 0.70, 0.86], ddof=1) = 0.08
        let cases: Vec<(Vec<f64>, f64, f64)> = vec![
            (vec![0.78, 0.70, 0.86], 0.78, 0.08),
            (vec![1.0, 1.0], 1.0, 0.0),
            (
                vec![2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0],
                5.0,
                (32.0f64 / 7.0).sqrt(),
            ),
        ];
        for (xs, m, s) in cases {
            let (gm, gs) = mean_std(&xs);
            assert!(close(gm, m) && close(gs, s), "{xs:?}: {gm} {gs}");
        }
        let (m, s) = mean_std(&[0.3]);
        assert!(close(m, 0.3) && s.is_nan());
        let (m, s) = mean_std(&[]);
        assert!(m.is_nan() && s.is_nan());
    }

    #[test]
    fn precision_recall_table() {
        let pr = precision_recall(&[1u64, 2, 3, 4], &[3, 4, 5, 6, 7, 8]);
        assert_eq!((pr.true_positives, pr.n_flagged, pr.n_target), (2, 4, 6));
        assert!(close(pr.precision.unwrap(), 0.5));
        assert!(close(pr.recall.unwrap(), 2.0 / 6.0));
        // Duplicates count once.
        let pr = precision_recall(&[1u64, 1, 2], &[1]);
        assert_eq!((pr.true_positives, pr.n_flagged), (1, 2));
        let pr = precision_recall::<u64>(&[], &[1]);
        assert_eq!((pr.precision, pr.recall), (None, Some(0.0)));
        let pr = precision_recall::<u64>(&[1], &[]);
        assert_eq!((pr.precision, pr.recall), (Some(0.0), None));
    }
}
