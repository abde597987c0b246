//! The run's outcome in `report.html`: its status (the stage a failed run stopped in, with the error), Table 1 and
//! the paired differences beside their plots with the reference's verdict, an ImageNet-9 analysis' tables and
//! figures, the seconds per stage and the resolved config.
use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::sections::pngs;
use super::RunJson;
use crate::data::Split;
use crate::report::html::plots::{bars, BarSeries};
use crate::report::html::{accuracy, escape, md_to_html, pair, table};
use crate::report::{self, PaperTable};
use crate::util::read_json;

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

/// The spurious attribute of the run's groups (`data.kind`'s, `place` where the config cannot be read).
fn attribute_of(run: &Path) -> &'static str {
    let kind = || -> Option<crate::data::DataKind> {
        let text = std::fs::read_to_string(run.join("config.resolved.yaml")).ok()?;
        let config: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
        serde_yaml::from_value(config.get("data")?.get("kind")?.clone()).ok()
    };
    kind().map_or("place", |k| k.attr_column())
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
            &md_to_html(&report::table_md(
                &rows,
                Split::Test,
                paper.as_ref(),
                attribute_of(run)
            ))
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
}
