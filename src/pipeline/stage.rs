//! Stage bookkeeping of the run directory, and `run.json`.
//!
//! A stage is a folder `<run>/<stage>/` that holds everything the stage wrote plus `stage.json`, which records
//! the hash of what the stage was computed from. A stage is built in `<stage>.partial/` and renamed into place
//! only when it finished, so an interrupted stage leaves no folder that could be half-trusted: the next run deletes
//! the `.partial` folder and redoes the stage. A finished stage whose recorded hash matches is skipped.
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::methods::Method;
use crate::util::{build_in_partial, hex, list_files, write_json};

/// A stage of `texplain run`, named as its folder (`<run>/lm/`, `<run>/seed-<s>/erm/`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The classifier pretrained on the upstream corpus (shared by seeds).
    Pretrain,
    /// The language model pretrained on the caption corpus (shared by seeds).
    Lm,
    Erm,
    Translator,
    Explain,
    /// Word clouds of the explanations per class and split.
    Clouds,
    Flags,
    Masks,
    /// Linear probes on frozen features: is the bird in the features?
    Regime,
    /// Fine-tuning of the ERM model by a mitigation method (its folder is the method's name).
    Finetune(Method),
}

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Pretrain => "pretrain",
            Stage::Lm => "lm",
            Stage::Erm => "erm",
            Stage::Translator => "translator",
            Stage::Explain => "explain",
            Stage::Clouds => "clouds",
            Stage::Flags => "flags",
            Stage::Masks => "masks",
            Stage::Regime => "regime",
            Stage::Finetune(method) => method.name(),
        }
    }
}

/// The identity of a stage: a SHA-256 over named, serialized inputs (config sections, seed, upstream hashes).
#[derive(Default, Clone)]
pub struct StageKey {
    hasher: Sha256,
    inputs: Vec<String>,
}

impl StageKey {
    pub fn new(stage: Stage) -> Self {
        let mut key = Self::default();
        key.add("stage", &stage.name());
        key
    }

    /// Adds a named input; anything serializable (a config section, a seed, an upstream stage's hash).
    pub fn add(&mut self, name: &str, value: &impl Serialize) -> &mut Self {
        let text = serde_json::to_string(value).expect("config values serialize to JSON");
        self.hasher.update(name.as_bytes());
        self.hasher.update([0]);
        self.hasher.update(text.as_bytes());
        self.hasher.update([0]);
        self.inputs.push(name.to_string());
        self
    }

    pub fn hash(&self) -> String {
        hex(&self.hasher.clone().finalize())
    }
}

#[derive(Serialize, Deserialize, Debug)]
struct StageRecord {
    stage: String,
    hash: String,
    inputs: Vec<String>,
    seconds: f64,
    /// Every file the stage wrote (relative to its folder); a stage missing one is redone.
    files: Vec<String>,
}

/// A finished stage: its folder and the hash it was computed from (downstream stages hash it in).
#[derive(Debug, Clone)]
pub struct StageDone {
    pub dir: PathBuf,
    pub hash: String,
    pub skipped: bool,
}

/// Runs `build` into `<parent>/<name>.partial/` unless `<parent>/<name>/stage.json` already records `key`'s hash.
///
/// A folder whose record is missing or differs is removed and the stage redone; a leftover `.partial` folder
/// (an interrupted run) is always removed first.
pub fn run_stage(
    parent: &Path,
    stage: Stage,
    key: &StageKey,
    build: impl FnOnce(&Path) -> Result<()>,
) -> Result<StageDone> {
    let name = stage.name();
    let dir = parent.join(name);
    let hash = key.hash();
    let record_path = dir.join("stage.json");
    if let Ok(text) = std::fs::read_to_string(&record_path) {
        if let Ok(record) = serde_json::from_str::<StageRecord>(&text) {
            let complete = record.files.iter().all(|f| dir.join(f).is_file());
            if record.hash == hash && complete {
                tracing::info!(stage = %dir.display(), "finished earlier with the same inputs; skipped");
                return Ok(StageDone {
                    dir,
                    hash,
                    skipped: true,
                });
            }
            if complete {
                tracing::info!(stage = %dir.display(), "inputs changed since it ran; redoing it");
            } else {
                tracing::info!(stage = %dir.display(), "some of its files are missing; redoing it");
            }
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let span = tracing::info_span!("stage", name = %dir.display());
    let _enter = span.enter();
    let started = Instant::now();
    let mut seconds = 0.0;
    build_in_partial(&dir, |partial| {
        build(partial).with_context(|| format!("stage {}", dir.display()))?;
        seconds = started.elapsed().as_secs_f64();
        let record = StageRecord {
            stage: name.to_string(),
            hash: hash.clone(),
            inputs: key.inputs.clone(),
            seconds,
            files: list_files(partial)?,
        };
        write_json(&partial.join("stage.json"), &record)
    })?;
    tracing::info!(seconds, "stage finished");
    Ok(StageDone {
        dir,
        hash,
        skipped: false,
    })
}

/// `run.json`: what produced the run directory.
#[derive(Serialize, Debug)]
pub struct RunInfo {
    pub git_commit: Option<String>,
    pub argv: Vec<String>,
    pub started_unix: u64,
    pub finished_unix: Option<u64>,
    pub device: String,
    pub tch_version: &'static str,
    pub libtorch_version: String,
    pub seeds: Vec<u64>,
    pub status: String,
}

impl RunInfo {
    pub fn start(device: String, seeds: Vec<u64>) -> Self {
        Self {
            git_commit: git_commit(),
            argv: std::env::args().collect(),
            started_unix: unix_now(),
            finished_unix: None,
            device,
            tch_version: TCH_VERSION,
            libtorch_version: libtorch_version(),
            seeds,
            status: "running".into(),
        }
    }
}

/// The tch crate version this binary was built with (pinned in Cargo.toml).
pub const TCH_VERSION: &str = "0.24.0";

/// The libtorch version, as torch-sys checked it at build time (`build-version`), read back from the library.
pub fn libtorch_version() -> String {
    let dir = option_env!("LIBTORCH").map(PathBuf::from);
    dir.and_then(|d| std::fs::read_to_string(d.join("build-version")).ok())
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| "2.11.0 (required by tch 0.24.0)".to_string())
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_is_skipped_when_hash_matches_and_redone_when_inputs_change() {
        let tmp = tempfile::tempdir().unwrap();
        let mut runs = 0;
        let mut key = StageKey::new(Stage::Erm);
        key.add("seed", &1u64);
        for _ in 0..2 {
            run_stage(tmp.path(), Stage::Erm, &key, |dir| {
                runs += 1;
                crate::util::write_atomic(&dir.join("out.txt"), "x")
            })
            .unwrap();
        }
        assert_eq!(runs, 1);
        key.add("lr", &0.1);
        let done = run_stage(tmp.path(), Stage::Erm, &key, |dir| {
            runs += 1;
            crate::util::write_atomic(&dir.join("out.txt"), "y")
        })
        .unwrap();
        assert_eq!(runs, 2);
        assert!(!done.skipped);
        assert_eq!(
            std::fs::read_to_string(done.dir.join("out.txt")).unwrap(),
            "y"
        );
    }

    #[test]
    fn stage_with_a_missing_file_is_redone() {
        let tmp = tempfile::tempdir().unwrap();
        let key = StageKey::new(Stage::Erm);
        let build = |dir: &Path| crate::util::write_atomic(&dir.join("sub/model.bin"), "weights");
        run_stage(tmp.path(), Stage::Erm, &key, build).unwrap();
        std::fs::remove_file(tmp.path().join("erm/sub/model.bin")).unwrap();
        let done = run_stage(tmp.path(), Stage::Erm, &key, build).unwrap();
        assert!(!done.skipped, "a deleted checkpoint must not be trusted");
        assert!(done.dir.join("sub/model.bin").exists());
        assert!(
            run_stage(tmp.path(), Stage::Erm, &key, build)
                .unwrap()
                .skipped
        );
    }

    #[test]
    fn interrupted_stage_is_redone_and_leaves_no_trusted_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let key = StageKey::new(Stage::Explain);
        let failed = run_stage(tmp.path(), Stage::Explain, &key, |dir| {
            crate::util::write_atomic(&dir.join("half.txt"), "half")?;
            anyhow::bail!("interrupted")
        });
        assert!(failed.is_err());
        assert!(
            !tmp.path().join("explain").exists(),
            "an interrupted stage must not look finished"
        );
        let done = run_stage(tmp.path(), Stage::Explain, &key, |dir| {
            crate::util::write_atomic(&dir.join("full.txt"), "full")
        })
        .unwrap();
        assert!(!done.skipped);
        assert!(done.dir.join("full.txt").exists());
        assert!(!done.dir.join("half.txt").exists());
        assert!(!tmp.path().join("explain.partial").exists());
    }
}
