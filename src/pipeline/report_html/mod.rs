//! `report.html` of a run directory: written at the end of every `texplain run` (both flows, failed runs too) and
//! rebuilt by `texplain report RUN_DIR`. It reads only what the run left on disk (`run.json`,
//! `config.resolved.yaml`, `results.csv`, `table.md`, each seed's stage folders and their `stage.json`), so it
//! opens for a run that failed half-way, saying which stage failed and why, and is never stale. Composed from the
//! parts of [`crate::report::html`]; one section per part of the run:
//!
//! * `run`: status (the error chain of a failed run, the interrupted `.partial` stages), `run.json`;
//! * `accuracy`: Table 1 beside its plot (a dot per seed, the mean, the paired 95 % interval against ERM, the
//!   paper's figures), the paired differences of the arms beside theirs, and the reference check's verdict;
//! * `regime`, `flags`, `masks` (AUROC of every map and its controls, an overlay grid per arm), `explanations`
//!   (word clouds, top words with their shares, sampled sentences per group), `curves` (each seed's `curves.csv`
//!   per stage), `timings` (seconds per stage from `stage.json`), `config`;
//! * an ImageNet-9 analysis (no `results.csv`) shows its `table.md` beside the figures its stages drew.
//!
//! Sections whose files are missing are left out; a section whose files cannot be read says so in place.
mod explanations;
mod masks;
mod outcome;
mod sections;

use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::report::html::{document, escape, write_page, Section};

/// The report's file name in the run directory.
pub const REPORT_FILE: &str = "report.html";

/// The fields of `run.json` the report reads.
#[derive(Deserialize, Debug, Default)]
pub struct RunJson {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub git_commit: Option<String>,
    #[serde(default)]
    pub device: String,
    #[serde(default)]
    pub started_unix: Option<u64>,
    #[serde(default)]
    pub finished_unix: Option<u64>,
}

/// The seed folders of a run (`seed-<s>`), by seed.
pub fn seed_dirs(run: &Path) -> Vec<(u64, PathBuf)> {
    let mut seeds: Vec<(u64, PathBuf)> = std::fs::read_dir(run)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let seed = name.strip_prefix("seed-")?.parse().ok()?;
            e.path().is_dir().then(|| (seed, e.path()))
        })
        .collect();
    seeds.sort();
    seeds
}

/// A section from `build`, or, where its files cannot be read, one that says why; `None` when it has nothing.
fn section(
    id: &str,
    title: &str,
    build: impl FnOnce() -> Result<Option<String>>,
) -> Option<Section> {
    match build() {
        Ok(Some(body)) => Some(Section::new(id, title, body)),
        Ok(None) => None,
        Err(err) => Some(Section::new(
            id,
            title,
            format!(
                "<p class=\"note\">This section could not be drawn: {}</p>",
                escape(&format!("{err:#}"))
            ),
        )),
    }
}

/// The `name` of the run's resolved config.
fn config_name(run: &Path) -> Option<String> {
    let text = std::fs::read_to_string(run.join("config.resolved.yaml")).ok()?;
    let config: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    config.get("name")?.as_str().map(String::from)
}

/// The page of the run directory `run`.
pub fn render(run: &Path) -> Result<String> {
    let info: RunJson = match std::fs::read_to_string(run.join("run.json")) {
        Ok(text) => serde_json::from_str(&text)
            .with_context(|| format!("parsing {}", run.join("run.json").display()))?,
        Err(_) => RunJson::default(),
    };
    // The run is named by its directory, as `texplain check-reference` names its reference.
    let name = std::fs::canonicalize(run)
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| run.display().to_string());
    let seeds = seed_dirs(run);
    let status = if info.status.is_empty() {
        "no run.json".to_string()
    } else {
        info.status.clone()
    };
    let sections: Vec<Section> = [
        section("run", "Run", || outcome::run(run, &info).map(Some)),
        section("accuracy", "Accuracy (Table 1)", || {
            outcome::accuracy(run, &name)
        }),
        section("analysis", "Analysis", || outcome::analysis(run, &seeds)),
        section("regime", "Regime check", || sections::regime(&seeds)),
        section("flags", "Flags", || sections::flags(&seeds)),
        section("masks", "Masks", || masks::masks(run, &seeds)),
        section("explanations", "Explanations", || {
            explanations::explanations(run, &seeds)
        }),
        section("curves", "Training curves", || sections::curves(&seeds)),
        section("timings", "Timings", || outcome::timings(run)),
        section("config", "Config", || outcome::config(run)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let subtitle = format!(
        "status: {status} · seeds: {} · {}",
        seeds
            .iter()
            .map(|(s, _)| s.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        run.display()
    );
    let title = match config_name(run) {
        Some(config) if config != name => format!("texplain run {name} (config {config})"),
        _ => format!("texplain run {name}"),
    };
    Ok(document(&title, &subtitle, &sections))
}

/// Writes `<run>/report.html` atomically and returns its path.
pub fn write(run: &Path) -> Result<PathBuf> {
    let path = run.join(REPORT_FILE);
    write_page(&path, &render(run)?)?;
    Ok(path)
}
