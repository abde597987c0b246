//! The sections of a run's `report.html` (see the parent module): each reads its files from the run directory and
//! returns its HTML body, `None` when the run has nothing for it.
use anyhow::{Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::RunJson;
use crate::data::Split;
use crate::flags::FlagSummary;
use crate::metrics::mean_std;
use crate::pipeline::masks::MaskSummary;
use crate::pipeline::regime::RegimeSummary;
use crate::pipeline::report::{flags_md, regime_md};
use crate::relevance::quality::{MaskQualityReport, QualitySummary};
use crate::report::html::plots::{bars, line_panels, BarSeries, Line};
use crate::report::html::{accuracy, escape, md_to_html, pair, table};
use crate::report::{self, PaperTable};
use crate::train::curves::read_curves;
use crate::util::read_json;

/// Overlays shown per arm, and sampled sentences per group.
const OVERLAYS_PER_ARM: usize = 8;
const SENTENCE_IMAGES_PER_GROUP: usize = 2;

/// The maps of a masks quality report, in table order.
const MASK_MAPS: [&str; 4] = ["relevance", "random map", "centre prior", "oracle"];

/// The stage a failed run's error names (`stage <dir>: ...`, as `stage::run_stage` wraps a build's error).
pub fn failed_stage(error: &str) -> Option<&str> {
    let start = error.find("stage ")? + "stage ".len();
    let rest = &error[start..];
    Some(rest[..rest.find(": ").unwrap_or(rest.len())].trim())
}

/// The `.partial` folders of the run and its seeds: stages interrupted or failed.
fn partial_dirs(run: &Path) -> Vec<String> {
    let mut dirs = vec![run.to_path_buf()];
    dirs.extend(super::seed_dirs(run).into_iter().map(|(_, d)| d));
    let mut out: Vec<String> = dirs
        .iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .filter_map(|e| {
            e.path()
                .strip_prefix(run)
                .ok()
                .map(|p| p.display().to_string())
        })
        .collect();
    out.sort();
    out
}

/// Status, the failure and `run.json`.
pub fn run(run: &Path, info: &RunJson) -> Result<String> {
    let mut out = String::new();
    match info.status.as_str() {
        "failed" => {
            let error = info.error.as_deref().unwrap_or("(no error recorded)");
            let stage = failed_stage(error).unwrap_or("(the error names no stage)");
            let _ = write!(
                out,
                "<div class=\"failed\"><p><strong>The run failed</strong> in stage <code>{}</code>. Its error:</p>\
                 <pre>{}</pre></div>",
                escape(stage),
                escape(error)
            );
        }
        "running" => out.push_str(
            "<p class=\"failed\">run.json says <code>running</code>: the run is going on, or was killed before \
             it could record how it ended.</p>",
        ),
        "finished" => out.push_str("<p>The run finished.</p>"),
        other => {
            let _ = write!(out, "<p>Status: {}</p>", escape(other));
        }
    }
    let partial = partial_dirs(run);
    if !partial.is_empty() {
        let _ = write!(
            out,
            "<p>Unfinished stages (their <code>.partial</code> folders, redone by the next run): {}</p>",
            partial
                .iter()
                .map(|p| format!("<code>{}</code>", escape(p)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = write!(
        out,
        "<p class=\"note\">Commit {} · device {} · {}</p>",
        escape(info.git_commit.as_deref().unwrap_or("unknown")),
        escape(&info.device),
        match (info.started_unix, info.finished_unix) {
            (Some(a), Some(b)) => format!("{} s from start to end", b.saturating_sub(a)),
            _ => "not finished".to_string(),
        }
    );
    if let Ok(text) = std::fs::read_to_string(run.join("run.json")) {
        let _ = write!(
            out,
            "<details><summary>run.json</summary><pre>{}</pre></details>",
            escape(&text)
        );
    }
    Ok(out)
}

/// The paper's table of the run's resolved config (`report.paper`), if it has one.
fn paper_of(run: &Path) -> Option<PaperTable> {
    let text = std::fs::read_to_string(run.join("config.resolved.yaml")).ok()?;
    let config: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    let paper = config.get("report")?.get("paper")?;
    serde_yaml::from_value(paper.clone()).ok()
}

/// Table 1 beside the accuracy plot, the arms' paired differences beside theirs, and the reference's verdict.
pub fn accuracy(run: &Path, name: &str) -> Result<Option<String>> {
    let csv = run.join("results.csv");
    if !csv.is_file() {
        return Ok(None);
    }
    let rows = report::read_results_csv(&csv)?;
    let paper = paper_of(run);
    let plot = accuracy::plot_runs(
        &[(name.to_string(), rows.clone())],
        Split::Test,
        paper.as_ref(),
    )?;
    let mut out = format!(
        "<p class=\"note\">{}</p>{}",
        escape(accuracy::LEGEND),
        pair(
            &plot,
            &md_to_html(&report::table_md(&rows, Split::Test, paper.as_ref()))
        )
    );
    if let Some(md) = report::paired_differences_md(&rows, Split::Test) {
        let (categories, series) = accuracy::paired_bars(&rows, Split::Test);
        let plot = bars(
            "paired differences (percentage points, 95 % t interval)",
            "percentage points",
            &categories,
            &series,
            None,
        )?;
        let _ = write!(
            out,
            "<h3>Paired differences</h3>{}",
            pair(&plot, &md_to_html(&md))
        );
    }
    let reference = Path::new("results/reference")
        .join(name)
        .join("results.csv");
    if reference.is_file() {
        let theirs = report::read_results_csv(&reference)?;
        let check = crate::reference::check(&rows, &theirs, Split::Test);
        let _ = write!(
            out,
            "<h3>Reference check</h3><p>Against <code>{}</code>: {}</p>",
            escape(&reference.display().to_string()),
            escape(&check.verdict())
        );
    }
    Ok(Some(out))
}

/// An ImageNet-9 analysis (no `results.csv`): its `table.md` beside the figures its stages drew.
pub fn analysis(run: &Path, seeds: &[(u64, PathBuf)]) -> Result<Option<String>> {
    let table_md = run.join("table.md");
    if run.join("results.csv").is_file() || !table_md.is_file() {
        return Ok(None);
    }
    let md = std::fs::read_to_string(&table_md)
        .with_context(|| format!("reading {}", table_md.display()))?;
    let mut figures = pngs(run, &run.join("predictions"));
    for (_, dir) in seeds {
        figures.extend(pngs(run, &dir.join("summary")));
    }
    let images: String = figures
        .iter()
        .map(|f| {
            format!(
                "<img class=\"plot wide\" src=\"{0}\" alt=\"{0}\">",
                escape(f)
            )
        })
        .collect();
    Ok(Some(pair(&images, &md_to_html(&md))))
}

/// The PNG files of `dir`, sorted, as paths relative to `run`.
fn pngs(run: &Path, dir: &Path) -> Vec<String> {
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
fn per_seed<T: serde::de::DeserializeOwned>(
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
fn pct(values: impl Iterator<Item = f64>) -> Option<(f64, Option<f64>)> {
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

/// `mean ± std` with 3 decimals of the values there are; `–` without any.
fn num(values: impl Iterator<Item = Option<f64>>) -> String {
    let v: Vec<f64> = values.flatten().filter(|x| x.is_finite()).collect();
    match mean_std(&v) {
        (m, _) if m.is_nan() => "–".to_string(),
        (m, s) if s.is_nan() => format!("{m:.3}"),
        (m, s) => format!("{m:.3} ± {s:.3}"),
    }
}

/// AUROC of every map against its controls per selection (the masks stage's and the arms' own `masks.json`),
/// beside its bars, and a grid of overlays per arm.
pub fn masks(run: &Path, seeds: &[(u64, PathBuf)]) -> Result<Option<String>> {
    let mut summaries: Vec<MaskSummary> = Vec::new();
    for (_, dir) in seeds {
        let stage = dir.join("masks/summary.json");
        if stage.is_file() {
            summaries.extend(read_json::<Vec<MaskSummary>>(&stage)?);
        }
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let arm = entry.path().join("masks.json");
            if arm.is_file() {
                summaries.push(read_json(&arm)?);
            }
        }
    }
    let grid = overlay_grid(run, seeds);
    if summaries.is_empty() && grid.is_empty() {
        return Ok(None);
    }
    let mut out = String::new();
    let mut selections: Vec<String> = summaries
        .iter()
        .map(|s| s.method.name().to_string())
        .collect();
    selections.dedup();
    let selections: Vec<String> = selections
        .into_iter()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let maps = MASK_MAPS;
    let quality = |method: &str| -> Vec<&MaskQualityReport> {
        summaries
            .iter()
            .filter(|s| s.method.name() == method)
            .filter_map(|s| s.quality.as_ref())
            .collect()
    };
    let mut rows = Vec::new();
    for method in &selections {
        let reports = quality(method);
        for (m, map) in maps.iter().enumerate() {
            if reports.is_empty() {
                continue;
            }
            let qs: Vec<_> = reports.iter().map(|r| map_of(r, m)).collect();
            rows.push(vec![
                method.clone(),
                map.to_string(),
                qs.iter().map(|q| q.n_scored).sum::<usize>().to_string(),
                num(qs.iter().map(|q| q.auroc)),
                num(qs.iter().map(|q| q.place_auroc)),
                num(qs.iter().map(|q| q.object_auroc)),
            ]);
        }
    }
    if !rows.is_empty() {
        let series: Vec<BarSeries> = maps
            .iter()
            .enumerate()
            .map(|(m, map)| BarSeries {
                name: map.to_string(),
                values: selections
                    .iter()
                    .map(|method| {
                        let v: Vec<f64> = quality(method)
                            .iter()
                            .filter_map(|r| map_of(r, m).auroc)
                            .filter(|x| x.is_finite())
                            .collect();
                        let (mean, sd) = mean_std(&v);
                        (!mean.is_nan()).then_some((mean, (!sd.is_nan()).then_some(sd)))
                    })
                    .collect(),
            })
            .collect();
        let plot = bars(
            "AUROC against the true background (0.5 = chance)",
            "AUROC",
            &selections,
            &series,
            Some((0.0, 1.0)),
        )?;
        let header: Vec<String> = [
            "Selection",
            "Map",
            "Images",
            "AUROC",
            "AUROC vs place",
            "AUROC vs object",
        ]
        .map(String::from)
        .to_vec();
        out.push_str(
            "<p>Quality of the relevance maps over each selection's training samples with a target word, beside a \
             random map, the centre prior (distance from the image centre) and the oracle (mean ± std over seeds). \
             The per-word and sanity tables are in <a href=\"table.md\">table.md</a>.</p>",
        );
        out.push_str(&pair(
            &plot,
            &table(&header, &rows, &[false, false, true, true, true, true]),
        ));
    }
    out.push_str(&grid);
    Ok(Some(out))
}

/// The map `m` of [`MASK_MAPS`] in a quality report.
fn map_of(r: &MaskQualityReport, m: usize) -> &QualitySummary {
    match m {
        0 => &r.map,
        1 => &r.random,
        2 => &r.centre,
        _ => &r.oracle,
    }
}

/// The image id at the start of an overlay's file name (`<img_id>-g<group>-<target>.png`).
fn overlay_id(file: &str) -> Option<i64> {
    file.split('-').next()?.parse().ok()
}

/// The first seed's overlays per arm (the masks stage draws TExplain's selection; an arm's folder may hold its
/// own `overlays/`), the images that several arms share first, so the same images line up across arms.
fn overlay_grid(run: &Path, seeds: &[(u64, PathBuf)]) -> String {
    let Some((seed, dir)) = seeds
        .iter()
        .find(|(_, d)| d.join("masks/overlays").is_dir())
    else {
        return String::new();
    };
    let mut arms: Vec<(String, Vec<String>)> = Vec::new();
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("overlays").is_dir())
        .collect();
    folders.sort();
    for folder in folders {
        let name = folder
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let label = if name == "masks" {
            "texplain (the masks stage's word maps)".to_string()
        } else {
            name
        };
        arms.push((label, pngs(run, &folder.join("overlays"))));
    }
    let mut shared: BTreeMap<i64, usize> = BTreeMap::new();
    for (_, files) in &arms {
        for id in files.iter().filter_map(|f| overlay_id(file_name(f))) {
            *shared.entry(id).or_default() += 1;
        }
    }
    let mut out = format!(
        "<h3>Overlays, seed {seed}</h3><p class=\"note\">Each strip: the image, its map over it, the image \
         masked. Images that several arms masked come first, in the same order in every arm. Arms whose masks are \
         made in their own stage without overlays (Random, oracle) show none.</p>"
    );
    for (label, mut files) in arms {
        files.sort_by_key(|f| {
            let id = overlay_id(file_name(f));
            (
                std::cmp::Reverse(id.and_then(|i| shared.get(&i)).copied().unwrap_or(0)),
                id,
            )
        });
        let _ = write!(out, "<h3>{}</h3><div class=\"grid\">", escape(&label));
        for f in files.iter().take(OVERLAYS_PER_ARM) {
            let _ = write!(
                out,
                "<figure><img src=\"{0}\" alt=\"{1}\" height=\"96\"><figcaption>{1}</figcaption></figure>",
                escape(f),
                escape(file_name(f).trim_end_matches(".png"))
            );
        }
        out.push_str("</div>");
    }
    out
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// One line of `words-by-class.csv`.
struct ClassWord {
    split: String,
    class: String,
    word: String,
    freq: f64,
}

/// `words-by-class.csv` (`split,class,rank,word,count,freq`); `None` for another layout.
fn class_words(path: &Path) -> Result<Option<Vec<ClassWord>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    if lines.next() != Some("split,class,rank,word,count,freq") {
        return Ok(None);
    }
    lines
        .enumerate()
        .map(|(i, line)| {
            let cells: Vec<&str> = line.split(',').collect();
            let bad = || anyhow::anyhow!("{}: line {}: {line:?}", path.display(), i + 2);
            if cells.len() != 6 {
                return Err(bad());
            }
            Ok(ClassWord {
                split: cells[0].to_string(),
                class: cells[1].to_string(),
                word: cells[3].to_string(),
                freq: cells[5].parse().map_err(|_| bad())?,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Word clouds per class and split, the top words with their shares, and a few sampled sentences per group, of
/// the first seed that explained.
pub fn explanations(run: &Path, seeds: &[(u64, PathBuf)]) -> Result<Option<String>> {
    let Some((seed, dir)) = seeds
        .iter()
        .find(|(_, d)| d.join("explain").is_dir() || d.join("clouds").is_dir())
    else {
        return Ok(None);
    };
    let mut out = format!("<p class=\"note\">Seed {seed}.</p>");
    let clouds = pngs(run, &dir.join("clouds"));
    if !clouds.is_empty() {
        out.push_str("<h3>Word clouds</h3><div class=\"grid\">");
        for c in &clouds {
            let _ = write!(
                out,
                "<figure><img src=\"{0}\" alt=\"{1}\" width=\"280\"><figcaption>{1}</figcaption></figure>",
                escape(c),
                escape(file_name(c).trim_end_matches(".png"))
            );
        }
        out.push_str("</div>");
    }
    let words_csv = dir.join("explain/words-by-class.csv");
    if let Some(words) = words_csv
        .is_file()
        .then(|| class_words(&words_csv))
        .transpose()?
        .flatten()
    {
        let mut by: BTreeMap<(String, String), Vec<&ClassWord>> = BTreeMap::new();
        for w in &words {
            by.entry((w.split.clone(), w.class.clone()))
                .or_default()
                .push(w);
        }
        let rows: Vec<Vec<String>> = by
            .iter()
            .map(|((split, class), ws)| {
                let top: Vec<String> = ws
                    .iter()
                    .take(8)
                    .map(|w| format!("{} {:.1} %", w.word, 100.0 * w.freq))
                    .collect();
                vec![split.clone(), class.clone(), top.join(", ")]
            })
            .collect();
        let train: Vec<(&(String, String), &Vec<&ClassWord>)> =
            by.iter().filter(|((s, _), _)| s == "train").collect();
        let mut categories: Vec<String> = Vec::new();
        for (_, ws) in &train {
            for w in ws.iter().take(6) {
                if !categories.contains(&w.word) {
                    categories.push(w.word.clone());
                }
            }
        }
        let series: Vec<BarSeries> = train
            .iter()
            .map(|((_, class), ws)| BarSeries {
                name: class.clone(),
                values: categories
                    .iter()
                    .map(|c| {
                        ws.iter()
                            .find(|w| &w.word == c)
                            .map(|w| (100.0 * w.freq, None))
                    })
                    .collect(),
            })
            .collect();
        let plot = bars(
            "top words per class (training split, % of words)",
            "% of words",
            &categories,
            &series,
            None,
        )?;
        let header = ["Split", "Class", "Top words (share of all words)"]
            .map(String::from)
            .to_vec();
        let _ = write!(
            out,
            "<h3>Top words</h3>{}",
            pair(&plot, &table(&header, &rows, &[false, false, false]))
        );
    }
    out.push_str(&sentences(dir)?);
    Ok(Some(out))
}

/// A few sampled sentences of training images per group (groups from `flags/flags.csv`).
fn sentences(dir: &Path) -> Result<String> {
    let path = dir
        .join("explain")
        .join(crate::explain::sentences::file_name(Split::Train));
    if !path.is_file() {
        return Ok(String::new());
    }
    let mut groups: BTreeMap<i64, String> = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(dir.join("flags/flags.csv")) {
        for line in text.lines().skip(1) {
            let mut cells = line.split(',');
            if let (Some(id), Some(g)) = (cells.next(), cells.next()) {
                if let Ok(id) = id.parse() {
                    groups.insert(id, format!("group {g}"));
                }
            }
        }
    }
    let mut by_group: BTreeMap<String, Vec<(i64, Vec<String>)>> = BTreeMap::new();
    for image in crate::explain::sentences::read(&path)? {
        let group = groups
            .get(&image.img_id)
            .cloned()
            .unwrap_or_else(|| "all images".into());
        let list = by_group.entry(group).or_default();
        if list.len() < SENTENCE_IMAGES_PER_GROUP {
            list.push((image.img_id, image.sentences.into_iter().take(2).collect()));
        }
    }
    let mut out = String::from("<h3>Sampled sentences (training split)</h3>");
    for (group, images) in by_group {
        let _ = write!(out, "<p><strong>{}</strong></p><ul>", escape(&group));
        for (id, sentences) in images {
            let _ = write!(
                out,
                "<li>image {id}: {}</li>",
                escape(&sentences.join(" · "))
            );
        }
        out.push_str("</ul>");
    }
    Ok(out)
}

/// Each seed's training curves (`curves.csv`) per stage: the training loss and the validation worst-group and
/// average accuracy per epoch.
pub fn curves(seeds: &[(u64, PathBuf)]) -> Result<Option<String>> {
    let mut stages: Vec<String> = Vec::new();
    let mut per_seed: Vec<(u64, Vec<(String, Vec<crate::train::curves::CurvePoint>)>)> = Vec::new();
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
         validation accuracy in %, epoch 0 = the model before fine-tuning where it competes in model selection.</p>",
    );
    type Pick = fn(&crate::train::curves::CurvePoint) -> Option<f64>;
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

/// Seconds per stage, from each stage's `stage.json`.
pub fn timings(run: &Path) -> Result<Option<String>> {
    let mut dirs = vec![run.to_path_buf()];
    dirs.extend(super::seed_dirs(run).into_iter().map(|(_, d)| d));
    let mut stages: Vec<(String, f64)> = Vec::new();
    for dir in dirs {
        let mut folders: Vec<PathBuf> = std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("stage.json").is_file())
            .collect();
        folders.sort();
        for folder in folders {
            let record: serde_json::Value = read_json(&folder.join("stage.json"))?;
            let seconds = record["seconds"].as_f64().unwrap_or(f64::NAN);
            let name = folder
                .strip_prefix(run)
                .unwrap_or(&folder)
                .display()
                .to_string();
            stages.push((name, seconds));
        }
    }
    if stages.is_empty() {
        return Ok(None);
    }
    let categories: Vec<String> = stages.iter().map(|(n, _)| n.clone()).collect();
    let series = [BarSeries {
        name: "seconds".into(),
        values: stages
            .iter()
            .map(|(_, s)| s.is_finite().then_some((*s, None)))
            .collect(),
    }];
    let plot = bars(
        "seconds per stage (when it was computed)",
        "seconds",
        &categories,
        &series,
        None,
    )?;
    let rows: Vec<Vec<String>> = stages
        .iter()
        .map(|(n, s)| vec![n.clone(), format!("{s:.1}")])
        .collect();
    let header = ["Stage", "Seconds"].map(String::from).to_vec();
    Ok(Some(format!(
        "<p class=\"note\">A stage skipped by a rerun keeps the seconds of the run that computed it.</p>{}",
        pair(&plot, &table(&header, &rows, &[false, true]))
    )))
}

/// The resolved config.
pub fn config(run: &Path) -> Result<Option<String>> {
    let Ok(text) = std::fs::read_to_string(run.join("config.resolved.yaml")) else {
        return Ok(None);
    };
    Ok(Some(format!(
        "<details><summary>config.resolved.yaml</summary><pre>{}</pre></details>",
        escape(&text)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failed_stage_is_read_from_the_error_chain() {
        assert_eq!(
            failed_stage("stage /tmp/run/seed-3/erm: train: the loss is NaN at epoch 1"),
            Some("/tmp/run/seed-3/erm")
        );
        assert_eq!(failed_stage("config: bad value"), None);
    }

    #[test]
    fn overlay_ids_come_from_the_file_name() {
        assert_eq!(overlay_id("34-g0-forest.png"), Some(34));
        assert_eq!(overlay_id("cam.png"), None);
        assert_eq!(
            file_name("seed-0/masks/overlays/7-g2-forest.png"),
            "7-g2-forest.png"
        );
    }
}
