//! The regime, flags and training-curves sections of `report.html`, and what every section shares (finding a
//! seed's files, PNG links, percent cells). Each section reads its files from the run directory and returns its
//! HTML body, `None` when the run has nothing for it.
use anyhow::Result;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::flags::FlagSummary;
use crate::metrics::mean_std;
use crate::pipeline::regime::RegimeSummary;
use crate::pipeline::report::{flags_md, regime_md};
use crate::report::html::plots::{bars, line_panels, BarSeries, Line};
use crate::report::html::{md_to_html, pair};
use crate::train::curves::{read_curves, CurvePoint};
use crate::util::read_json;

/// The PNG files of `dir`, sorted, as paths relative to `run`.
pub(super) fn pngs(run: &Path, dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .filter_map(|p| p.strip_prefix(run).ok().map(|p| p.display().to_string()))
        .collect();
    out.sort();
    out
}

/// The JSON files `<seed>/<file>` of every seed that has one.
pub(super) fn per_seed<T: serde::de::DeserializeOwned>(
    seeds: &[(u64, PathBuf)],
    file: &str,
) -> Result<Vec<T>> {
    seeds
        .iter()
        .map(|(_, d)| d.join(file))
        .filter(|p| p.is_file())
        .map(|p| read_json(&p))
        .collect()
}

/// `(mean, std)` in percent of the finite values, `None` without any.
pub(super) fn pct(values: impl Iterator<Item = f64>) -> Option<(f64, Option<f64>)> {
    let v: Vec<f64> = values
        .filter(|x| x.is_finite())
        .map(|x| 100.0 * x)
        .collect();
    let (m, s) = mean_std(&v);
    (!m.is_nan()).then_some((m, (!s.is_nan()).then_some(s)))
}

/// The linear probes per feature source, beside their bars.
pub fn regime(seeds: &[(u64, PathBuf)]) -> Result<Option<String>> {
    let summaries: Vec<RegimeSummary> = per_seed(seeds, "regime/summary.json")?;
    if summaries.is_empty() {
        return Ok(None);
    }
    let mut by: BTreeMap<_, Vec<_>> = BTreeMap::new();
    for p in summaries.iter().flat_map(|s| &s.probes) {
        by.entry(p.features).or_default().push(p);
    }
    let categories: Vec<String> = by.keys().map(|f| f.name().to_string()).collect();
    type Pick = fn(&crate::pipeline::regime::Probe) -> f64;
    let metrics: [(&str, Pick); 3] = [
        ("worst-group", |p| p.worst_group),
        ("average (train-weighted)", |p| p.avg_train_weighted),
        ("plain", |p| p.avg_plain),
    ];
    let series: Vec<BarSeries> = metrics
        .iter()
        .map(|(name, f)| BarSeries {
            name: name.to_string(),
            values: by.values().map(|ps| pct(ps.iter().map(|p| f(p)))).collect(),
        })
        .collect();
    let plot = bars(
        "linear probes on frozen features (test, %)",
        "%",
        &categories,
        &series,
        Some((0.0, 100.0)),
    )?;
    Ok(Some(pair(&plot, &md_to_html(&regime_md(&summaries)))))
}

/// How many samples are flagged, and how well they find the minority groups and ERM's errors.
pub fn flags(seeds: &[(u64, PathBuf)]) -> Result<Option<String>> {
    let flags: Vec<FlagSummary> = per_seed(seeds, "flags/summary.json")?;
    if flags.is_empty() {
        return Ok(None);
    }
    type Pick = fn(&FlagSummary) -> Option<f64>;
    let metrics: [(&str, Pick); 5] = [
        ("flagged", |s| Some(s.flagged_fraction)),
        ("minority precision", |s| s.minority_precision),
        ("minority recall", |s| s.minority_recall),
        ("ERM-error precision", |s| s.erm_error_precision),
        ("ERM-error recall", |s| s.erm_error_recall),
    ];
    let categories: Vec<String> = metrics.iter().map(|(n, _)| n.to_string()).collect();
    let series = [BarSeries {
        name: format!("mean ± std over {} seed(s)", flags.len()),
        values: metrics
            .iter()
            .map(|(_, f)| pct(flags.iter().filter_map(f)))
            .collect(),
    }];
    let mut plots = bars(
        "flags (training split, %)",
        "%",
        &categories,
        &series,
        Some((0.0, 100.0)),
    )?;
    let rates: Vec<_> = flags
        .iter()
        .filter_map(|s| s.attribute_words.as_ref())
        .collect();
    if !rates.is_empty() {
        let categories = vec!["carrying it".to_string(), "without it".to_string()];
        let series = [
            BarSeries {
                name: "in the top words".into(),
                values: vec![
                    pct(rates.iter().filter_map(|r| r.carrying.in_top_words)),
                    pct(rates.iter().filter_map(|r| r.without.in_top_words)),
                ],
            },
            BarSeries {
                name: "the top word".into(),
                values: vec![
                    pct(rates.iter().filter_map(|r| r.carrying.top_word)),
                    pct(rates.iter().filter_map(|r| r.without.top_word)),
                ],
            },
        ];
        plots.push_str(&bars(
            "do the explanations name the spurious attribute? (%)",
            "%",
            &categories,
            &series,
            Some((0.0, 100.0)),
        )?);
    }
    Ok(Some(pair(&plots, &md_to_html(&flags_md(&flags)))))
}

pub(super) fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// A stage's folder name and its training curve.
type StageCurve = (String, Vec<CurvePoint>);

/// Each seed's training curves (`curves.csv`) per stage: the training loss and the validation worst-group and
/// average accuracy per epoch.
pub fn curves(seeds: &[(u64, PathBuf)]) -> Result<Option<String>> {
    let mut stages: Vec<String> = Vec::new();
    let mut per_seed: Vec<(u64, Vec<StageCurve>)> = Vec::new();
    for (seed, dir) in seeds {
        let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        folders.sort();
        let mut found = Vec::new();
        for folder in folders {
            if let Some(points) = read_curves(&folder)? {
                let name = folder
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                if !stages.contains(&name) {
                    stages.push(name.clone());
                }
                found.push((name, points));
            }
        }
        if !found.is_empty() {
            per_seed.push((*seed, found));
        }
    }
    if per_seed.is_empty() {
        return Ok(None);
    }
    let mut out = String::from(
        "<p class=\"note\">One plot per seed, one line per training stage (from its <code>curves.csv</code>); \
         validation accuracy in %, an epoch 0, where a stage has one, is the model as it starts, a candidate of the model selection.</p>",
    );
    type Pick = fn(&CurvePoint) -> Option<f64>;
    let panels: [(&str, Pick); 3] = [
        ("training loss", |p| p.train_loss),
        ("val worst-group (%)", |p| {
            p.val_worst_group.map(|v| 100.0 * v)
        }),
        ("val average (%)", |p| p.val_avg.map(|v| 100.0 * v)),
    ];
    for (seed, found) in per_seed {
        let panels: Vec<(String, Vec<Line>)> = panels
            .iter()
            .map(|(title, f)| {
                let lines = found
                    .iter()
                    .map(|(stage, points)| Line {
                        name: stage.clone(),
                        colour_index: stages.iter().position(|s| s == stage).unwrap_or(0),
                        points: points
                            .iter()
                            .filter_map(|p| f(p).map(|v| (p.epoch as f64, v)))
                            .collect(),
                    })
                    .filter(|l| !l.points.is_empty())
                    .collect();
                (title.to_string(), lines)
            })
            .collect();
        let _ = write!(
            out,
            "<h3>Seed {seed}</h3><figure>{}</figure>",
            line_panels(&format!("training curves, seed {seed}"), "epoch", &panels)?
        );
    }
    Ok(Some(out))
}
