//! The accuracy plot of a run's report and of `texplain compare --html`: per (run, method), worst-group and average
//! (train-weighted, Table 1's "Average") accuracy on a split, a dot per seed, the mean, and the paired 95 %
//! Student-t interval of the per-seed difference to the run's ERM ([`crate::stats::t_interval`], as
//! `report::paired_differences_md` and `texplain compare` compute it), drawn at ERM's mean over the shared seeds;
//! the paper's mean ± std beside ours where the config gives them.
use anyhow::Result;
use std::collections::BTreeMap;

use super::plots::{dot_panels, BarSeries, DotRow};
use crate::data::Split;
use crate::methods::{table_order, Method};
use crate::metrics::mean_std;
use crate::report::{PaperTable, ResultRow};

/// What the plot draws, for the page to say under it.
pub const LEGEND: &str = "Dots: one per seed; coloured bar: the mean over seeds; black line below: ERM's mean \
    plus the 95 % Student-t interval of the mean paired (per-seed) difference to ERM, over the seeds both ran; grey \
    triangle and whisker above: the paper's mean ± std. Accuracy in %, average = train-group-weighted.";

/// Which accuracy a panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    WorstGroup,
    Average,
}

impl Panel {
    fn title(self) -> &'static str {
        match self {
            Panel::WorstGroup => "Worst-group accuracy",
            Panel::Average => "Average accuracy",
        }
    }

    fn of(self, row: &ResultRow) -> f64 {
        match self {
            Panel::WorstGroup => row.worst_group,
            Panel::Average => row.avg_train_weighted,
        }
    }

    fn paper(self, entry: &crate::report::PaperEntry) -> [f64; 2] {
        match self {
            Panel::WorstGroup => entry.worst_group,
            Panel::Average => entry.average,
        }
    }
}

/// The rows of one panel: per run (in order) and method (in table order), the seeds' values in percent, their
/// mean, the paired interval against the run's ERM (none for ERM itself, or below two shared seeds) and the
/// paper's figure. A method is labelled by its name with one run, `run/method` with several.
pub fn dot_rows(
    runs: &[(String, Vec<ResultRow>)],
    split: Split,
    paper: Option<&PaperTable>,
    panel: Panel,
) -> Vec<DotRow> {
    let mut out = Vec::new();
    for (run, rows) in runs {
        let mut by_method: BTreeMap<&str, BTreeMap<u64, f64>> = BTreeMap::new();
        for r in rows.iter().filter(|r| r.split == split) {
            by_method
                .entry(r.method.as_str())
                .or_default()
                .insert(r.seed, 100.0 * panel.of(r));
        }
        let mut methods: Vec<&str> = by_method.keys().copied().collect();
        methods.sort_by(|a, b| table_order(a, b));
        let erm = by_method.get(Method::Erm.name());
        for method in methods {
            let seeds = &by_method[method];
            let values: Vec<f64> = seeds.values().copied().collect();
            let interval = erm
                .filter(|_| method != Method::Erm.name())
                .and_then(|erm| {
                    let shared: Vec<(f64, f64)> = seeds
                        .iter()
                        .filter_map(|(s, v)| erm.get(s).map(|b| (*v, *b)))
                        .collect();
                    let diffs: Vec<f64> = shared.iter().map(|(v, b)| v - b).collect();
                    let base = mean_std(&shared.iter().map(|p| p.1).collect::<Vec<_>>()).0;
                    crate::stats::t_interval(&diffs, crate::report::Interval::LEVEL)
                        .map(|(lo, hi)| (base + lo, base + hi))
                });
            out.push(DotRow {
                label: if runs.len() == 1 {
                    method.to_string()
                } else {
                    format!("{run}/{method}")
                },
                mean: mean_std(&values).0,
                values,
                interval,
                paper: paper
                    .and_then(|p| p.get(method))
                    .map(|e| panel.paper(e))
                    .map(|[m, s]| (m, s)),
            });
        }
    }
    out
}

/// The bars of `report::paired_differences_md`: per pair of [`crate::report::PAIRED_ARMS`] that both ran
/// (categories `arm − base`), the mean paired difference in percentage points of worst-group and average
/// accuracy with the half-width of its 95 % Student-t interval as the whisker (none below two shared seeds).
pub fn paired_bars(rows: &[ResultRow], split: Split) -> (Vec<String>, Vec<BarSeries>) {
    let value = |method: Method, panel: Panel| -> BTreeMap<u64, f64> {
        rows.iter()
            .filter(|r| r.split == split && r.method == method.name())
            .map(|r| (r.seed, 100.0 * panel.of(r)))
            .collect()
    };
    let mut categories = Vec::new();
    let mut series: Vec<BarSeries> = [Panel::WorstGroup, Panel::Average]
        .iter()
        .map(|p| BarSeries {
            name: p.title().to_lowercase(),
            values: Vec::new(),
        })
        .collect();
    for (arm, base) in crate::report::PAIRED_ARMS {
        if value(arm, Panel::WorstGroup).is_empty() || value(base, Panel::WorstGroup).is_empty() {
            continue;
        }
        categories.push(format!("{} − {}", arm.name(), base.name()));
        for (s, panel) in [Panel::WorstGroup, Panel::Average].into_iter().enumerate() {
            let (a, b) = (value(arm, panel), value(base, panel));
            let diffs: Vec<f64> = a
                .iter()
                .filter_map(|(seed, v)| b.get(seed).map(|w| v - w))
                .collect();
            let mean = mean_std(&diffs).0;
            let half = crate::stats::t_interval(&diffs, crate::report::Interval::LEVEL)
                .map(|(lo, hi)| (hi - lo) / 2.0);
            series[s]
                .values
                .push((!mean.is_nan()).then_some((mean, half)));
        }
    }
    (categories, series)
}

/// The two-panel accuracy plot (worst-group, average) of `runs` on `split`.
pub fn plot_runs(
    runs: &[(String, Vec<ResultRow>)],
    split: Split,
    paper: Option<&PaperTable>,
) -> Result<String> {
    let panels: Vec<(String, Vec<DotRow>)> = [Panel::WorstGroup, Panel::Average]
        .into_iter()
        .map(|p| {
            (
                format!("{} ({split})", p.title()),
                dot_rows(runs, split, paper, p),
            )
        })
        .collect();
    dot_panels("accuracy per method", &panels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::sample_rows;

    #[test]
    fn rows_hold_seeds_means_paired_intervals_and_paper_figures() {
        let runs = vec![("run".to_string(), sample_rows())];
        let paper = PaperTable::waterbirds_table1();
        let rows = dot_rows(&runs, Split::Test, Some(&paper), Panel::WorstGroup);
        let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["erm", "random", "texplain"]);
        let erm = &rows[0];
        assert_eq!(erm.values, [19.0, 21.0, 23.0]);
        assert!((erm.mean - 21.0).abs() < 1e-9);
        assert_eq!((erm.interval, erm.paper), (None, Some((78.0, 7.3))));
        // TExplain − ERM per seed: 31, 39, 47 points; mean 39, sd 8, t_{0.975,2} = 4.3027: 39 ± 19.87, drawn at
        // ERM's mean 21.
        let (lo, hi) = rows[2].interval.unwrap();
        assert!((lo - (21.0 + 39.0 - 19.874)).abs() < 1e-2, "{lo}");
        assert!((hi - (21.0 + 39.0 + 19.874)).abs() < 1e-2, "{hi}");
        assert_eq!(rows[2].paper, Some((88.2, 2.9)));
        // Random ran one seed: no interval.
        assert_eq!(rows[1].interval, None);
        let avg = dot_rows(&runs, Split::Test, None, Panel::Average);
        assert_eq!(avg[0].values, [96.0, 97.0, 98.0]);
        assert_eq!(avg[0].paper, None);
    }

    #[test]
    fn several_runs_label_their_methods_and_pair_within_each_run() {
        let runs = vec![
            ("a".to_string(), sample_rows()),
            ("b".to_string(), sample_rows()),
        ];
        let rows = dot_rows(&runs, Split::Test, None, Panel::WorstGroup);
        let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "a/erm",
                "a/random",
                "a/texplain",
                "b/erm",
                "b/random",
                "b/texplain"
            ]
        );
        assert_eq!(rows[2].interval, rows[5].interval);
        let svg = plot_runs(&runs, Split::Test, None).unwrap();
        // TExplain − Random shares seed 0 only: the mean difference, no interval.
        let (categories, series) = paired_bars(&runs[0].1, Split::Test);
        assert_eq!(categories, ["texplain − random"]);
        assert_eq!(series[0].values, [Some((50.0 - 40.0, None))]);
        assert!(super::super::plots::has_text(&svg, "b/texplain"));
    }
}
