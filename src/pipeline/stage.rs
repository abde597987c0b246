//! Stage bookkeeping of the run directory, and `run.json`.
//!
//! A stage is a folder `<run>/<stage>/` that holds everything the stage wrote plus `stage.json`, which records
//! the stage's key (a hash of what it was computed from: config sections, seed, the data's fingerprint and the
//! *content* digests of the stages and folders it reads) and a SHA-256 per written file, summed up in the stage's
//! content digest. The key starts with the [`RECORD_FORMAT`], so a stage written by a version with another format
//! is redone, never misread. Downstream stages key on that content digest, not on the upstream's key, so an upstream stage
//! redone with different bytes (its files were missing, on another machine) redoes everything that read it, and one
//! redone with the same bytes leaves them finished. A stage is built in `<stage>.<host>-<pid>.partial/` (a name of its
//! writer's own, [`crate::util::build_in_partial`]) and renamed into place only when it finished, so an interrupted
//! stage leaves no folder that could be half-trusted: the next run on that host deletes the `.partial` folder of
//! the writer that is gone and redoes the stage. A finished stage whose key matches and whose files all hash as
//! recorded is skipped. A writer that finds the stage put in place by another process meanwhile (two workers on a
//! shared filesystem) discards its own copy and verifies the winner's record (same key, every file hashing as
//! recorded) instead of failing or overwriting it.
//!
//! `stage.json` (format 3):
//!
//! ```text
//! { "format": 3, "stage": "translator",
//!   "key": "<sha256>",        the skip decision: every input below, the content digests included
//!   "settings": "<sha256>",   the inputs without the content digests (machine-independent; tests pin it)
//!   "inputs": ["format", "stage", "seed", "erm", ...], input names in key order
//!   "reads": {"erm": "<content digest>", ...},        content digests among the inputs, by name
//!   "seconds": 12.5,
//!   "files": [{"path": "model.safetensors", "bytes": 123, "sha256": "<sha256>"}, ...],
//!   "content": "<sha256>" }   util::content_digest over the files' (path, sha256): what downstream keys add
//! ```
//!
//! `files` leaves out the training curves (`curves.csv`, [`crate::train::curves`]): a by-product for the run
//! report that no stage reads, so writing it changes no content digest and no key.
//!
//! A long stage made of independent trainings (JTT's grid) keeps its finished steps across an interrupted run:
//! [`run_stage_in_steps`] hands the build a [`Steps`], whose steps are built in `<stage>.steps/<step>.<host>-<pid>.partial/` and
//! renamed into place when finished, under the stage's key; a rerun with the same key reuses them and redoes only
//! the step it was killed in. The `.steps` folder is removed once the stage is in place.
//!
//! Test hook: with `TEXPLAIN_TEST_PAUSE_IN=<stage folder>` in the environment (the stage's name; a shard's folder,
//! `explain#0of3`), the stage in the folder of that name sleeps once its `.partial` folder is complete and before
//! it is renamed into place, so a test can kill a run inside any stage, however fast; `<stage name>/<step>` sleeps once that step of a [`Steps`] is in place. Nothing else reads the
//! variable.
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::methods::Method;
use crate::train::curves::CURVES_FILE;
use crate::util::{
    build_in_partial, content_digest, hex, list_files, sha256_file, write_json, Placed,
};

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
    /// The ImageNet-9 analysis: the classifier's predictions on every Background Challenge variant (shared by seeds).
    Predictions,
    /// The ImageNet-9 analysis: clouds against predictions, per category (per seed).
    Summary,
    /// A mitigation method other than ERM: fine-tuning of the ERM model, or a baseline's own training or retraining
    /// (its folder is the method's name).
    Method(Method),
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
            Stage::Predictions => "predictions",
            Stage::Summary => "summary",
            Stage::Method(method) => method.name(),
        }
    }
}

/// The identity of a stage: a SHA-256 over named, serialized inputs (config sections, seed, data fingerprint) and
/// the content digests of what it reads (upstream stages, pretrained folders).
#[derive(Default, Clone)]
pub struct StageKey {
    /// Every input.
    hasher: Sha256,
    /// The inputs added with [`StageKey::add`] only.
    settings: Sha256,
    inputs: Vec<String>,
    reads: BTreeMap<String, String>,
}

fn hash_input(hasher: &mut Sha256, name: &str, text: &str) {
    hasher.update(name.as_bytes());
    hasher.update([0]);
    hasher.update(text.as_bytes());
    hasher.update([0]);
}

impl StageKey {
    pub fn new(stage: Stage) -> Self {
        let mut key = Self::default();
        key.add("format", &RECORD_FORMAT)
            .add("stage", &stage.name());
        key
    }

    /// Adds a named setting; anything serializable (a config section, a seed, the data's fingerprint).
    pub fn add(&mut self, name: &str, value: &impl Serialize) -> &mut Self {
        let text = serde_json::to_string(value).expect("config values serialize to JSON");
        hash_input(&mut self.hasher, name, &text);
        hash_input(&mut self.settings, name, &text);
        self.inputs.push(name.to_string());
        self
    }

    /// Adds the content digest of something the stage reads: an upstream stage's [`StageDone::content`], or a
    /// pretrained folder's [`crate::util::folder_digest`].
    pub fn reads(&mut self, name: &str, content: &str) -> &mut Self {
        let text = serde_json::to_string(content).expect("a digest serializes to JSON");
        hash_input(&mut self.hasher, name, &text);
        self.inputs.push(name.to_string());
        self.reads.insert(name.to_string(), content.to_string());
        self
    }

    /// The key: what the skip decision compares.
    pub fn hash(&self) -> String {
        hex(&self.hasher.clone().finalize())
    }

    /// The key without the content digests.
    pub fn settings_hash(&self) -> String {
        hex(&self.settings.clone().finalize())
    }
}

/// The `format` of the `stage.json` this code writes, and the first input of every key. Format 3 serialises every
/// config field, defaults included, and keys every stage on all its settings; a stage of an earlier format is
/// redone.
pub const RECORD_FORMAT: u32 = 3;

/// One written file of a stage.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct FileRecord {
    /// Relative to the stage's folder.
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// `stage.json` (see the module docs).
#[derive(Serialize, Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct StageRecord {
    pub format: u32,
    pub stage: String,
    pub key: String,
    pub settings: String,
    pub inputs: Vec<String>,
    pub reads: BTreeMap<String, String>,
    pub seconds: f64,
    /// Every file the stage wrote; a stage missing one, or whose file no longer hashes as recorded, is redone.
    pub files: Vec<FileRecord>,
    pub content: String,
}

impl StageRecord {
    /// The [`crate::util::content_digest`] of `files`.
    fn digest(files: &[FileRecord]) -> String {
        content_digest(files.iter().map(|f| (f.path.as_str(), f.sha256.as_str())))
    }

    /// Reads `stage.json` of `dir`; `None` when there is none, it cannot be parsed or it is of another format (the
    /// stage is redone).
    fn read(dir: &Path) -> Option<StageRecord> {
        let text = std::fs::read_to_string(dir.join("stage.json")).ok()?;
        match serde_json::from_str::<StageRecord>(&text) {
            Ok(record) if record.format == RECORD_FORMAT => Some(record),
            Ok(record) => {
                tracing::info!(stage = %dir.display(), format = record.format, "its stage.json is of an earlier format; redoing it");
                None
            }
            Err(_) => {
                tracing::info!(stage = %dir.display(), "its stage.json cannot be read; redoing it");
                None
            }
        }
    }

    /// Why this record does not stand for a finished stage of key `hash` in `dir` (other inputs, or a file that
    /// is no longer what the stage wrote); `None` when it does. The key is compared first: no file is hashed for a
    /// stage whose inputs changed.
    fn mismatch(&self, dir: &Path, hash: &str) -> Option<String> {
        if self.key != hash {
            return Some(format!(
                "written with other inputs (key {}, this run's {hash})",
                self.key
            ));
        }
        self.changed_file(dir)
    }

    /// Why the files of `dir` no longer are what the stage wrote; `None` when every file is there with the
    /// recorded size and SHA-256.
    fn changed_file(&self, dir: &Path) -> Option<String> {
        for file in &self.files {
            let path = dir.join(&file.path);
            match sha256_file(&path) {
                Err(_) => return Some(format!("{} is missing", file.path)),
                Ok((digest, bytes)) if bytes != file.bytes || digest != file.sha256 => {
                    return Some(format!("{} changed since the stage wrote it", file.path))
                }
                Ok(_) => {}
            }
        }
        None
    }
}

/// The files of a stage's folder that its record lists: all but the by-products no stage reads
/// ([`CURVES_FILE`], wherever it lies), so writing them changes no content digest and no downstream key.
fn recorded_files(dir: &Path) -> Result<Vec<String>> {
    let mut files = list_files(dir)?;
    files.retain(|f| Path::new(f).file_name().is_none_or(|n| n != CURVES_FILE));
    Ok(files)
}

/// The size and SHA-256 of each of `files` (relative to `dir`).
fn hash_files(dir: &Path, files: Vec<String>) -> Result<Vec<FileRecord>> {
    files
        .into_iter()
        .map(|path| {
            let (sha256, bytes) = sha256_file(&dir.join(&path))?;
            Ok(FileRecord {
                path,
                bytes,
                sha256,
            })
        })
        .collect()
}

/// A finished stage: its folder and the digest of its content (downstream stages key on it).
#[derive(Debug, Clone)]
pub struct StageDone {
    pub dir: PathBuf,
    /// [`StageRecord::content`]: the SHA-256 over its files' names and digests.
    pub content: String,
    pub skipped: bool,
}

/// The test hook of the module docs: sleeps for good when `TEXPLAIN_TEST_PAUSE_IN` names `stage`.
fn pause_for_tests(name: &str, partial: &Path) {
    if std::env::var("TEXPLAIN_TEST_PAUSE_IN").is_ok_and(|v| v == name) {
        tracing::warn!(partial = %partial.display(), "TEXPLAIN_TEST_PAUSE_IN: pausing inside the stage until killed");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// A stage or data folder that this process may not build (`texplain run --unit` walking an upstream unit that has
/// not finished): [`run_stage`] and [`super::context::generate_into`] return it before writing anything.
#[derive(Debug, thiserror::Error)]
#[error("{0} has not finished")]
pub struct NotFinished(pub String);

thread_local! {
    /// Whether [`run_stage`] may build what is not finished; see [`may_build`].
    static MAY_BUILD: std::cell::Cell<bool> = const { std::cell::Cell::new(true) };
}

/// Lets this thread build unfinished stages and data folders (`true`, a whole run and the unit being run) or only
/// reuse finished ones (`false`, the upstream units of `texplain run --unit`).
pub fn set_may_build(may: bool) {
    MAY_BUILD.with(|m| m.set(may));
}

/// Whether this thread may build unfinished stages ([`set_may_build`]); an error naming `what` when it may not.
pub fn may_build(what: &Path) -> Result<()> {
    if MAY_BUILD.with(|m| m.get()) {
        Ok(())
    } else {
        Err(NotFinished(what.display().to_string()).into())
    }
}

/// Runs `build` into `<parent>/<name>.<host>-<pid>.partial/` unless `<parent>/<name>/stage.json` already records `key`'s hash
/// and every file it lists still hashes as recorded.
///
/// A folder whose record is missing or differs is removed and the stage redone; a leftover `.partial` folder of a
/// writer that is gone (an interrupted run) is removed first. When another process puts the stage in place while
/// this one builds it, this one's copy is discarded and the winner verified ([`the_winner`]).
pub fn run_stage(
    parent: &Path,
    stage: Stage,
    key: &StageKey,
    build: impl FnOnce(&Path) -> Result<()>,
) -> Result<StageDone> {
    run_stage_in(parent, stage.name(), stage, key, build)
}

/// [`run_stage`] in the folder `<parent>/<folder>` instead of the stage's own name (a shard of a stage,
/// `explain#2of4`); the pause hook of the module docs names the folder.
pub fn run_stage_in(
    parent: &Path,
    folder: &str,
    stage: Stage,
    key: &StageKey,
    build: impl FnOnce(&Path) -> Result<()>,
) -> Result<StageDone> {
    let name = stage.name();
    let dir = parent.join(folder);
    let hash = key.hash();
    if let Some(record) = StageRecord::read(&dir) {
        match record.mismatch(&dir, &hash) {
            None => {
                tracing::info!(stage = %dir.display(), "finished earlier with the same inputs; skipped");
                return Ok(StageDone {
                    dir,
                    content: record.content,
                    skipped: true,
                });
            }
            Some(why) => tracing::info!(stage = %dir.display(), "{why}; redoing it"),
        }
    }
    may_build(&dir)?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let span = tracing::info_span!("stage", name = %dir.display());
    let _enter = span.enter();
    let started = Instant::now();
    let mut seconds = 0.0;
    let mut content = String::new();
    let placed = build_in_partial(&dir, |partial| {
        build(partial).with_context(|| format!("stage {}", dir.display()))?;
        seconds = started.elapsed().as_secs_f64();
        let files = hash_files(partial, recorded_files(partial)?)?;
        content = StageRecord::digest(&files);
        let record = StageRecord {
            format: RECORD_FORMAT,
            stage: name.to_string(),
            key: hash.clone(),
            settings: key.settings_hash(),
            inputs: key.inputs.clone(),
            reads: key.reads.clone(),
            seconds,
            files,
            content: content.clone(),
        };
        write_json(&partial.join("stage.json"), &record)?;
        pause_for_tests(folder, partial);
        Ok(())
    })?;
    if placed == Placed::FoundFinished {
        return the_winner(&dir, &hash);
    }
    tracing::info!(seconds, "stage finished");
    Ok(StageDone {
        dir,
        content,
        skipped: false,
    })
}

/// The stage another process put in place while this one built it (this one's copy was discarded): used when its
/// record holds the same key and its files hash as recorded, an error otherwise.
fn the_winner(dir: &Path, hash: &str) -> Result<StageDone> {
    let record = StageRecord::read(dir).with_context(|| {
        format!(
            "{}: another process put it in place, without a readable stage.json",
            dir.display()
        )
    })?;
    if let Some(why) = record.mismatch(dir, hash) {
        bail!(
            "{}: another process put it in place, {why}; is another run with another config writing into this \
             directory?",
            dir.display()
        );
    }
    tracing::info!(stage = %dir.display(), "finished by another process meanwhile; its copy verified and kept");
    Ok(StageDone {
        dir: dir.to_path_buf(),
        content: record.content,
        skipped: true,
    })
}

/// The finished steps of a stage run by [`run_stage_in_steps`] (see the module docs).
pub struct Steps {
    dir: PathBuf,
    stage: Stage,
}

/// The file in a `.steps` folder that names the stage key its steps were computed under.
const STEPS_KEY_FILE: &str = "key";

impl Steps {
    /// Opens `<parent>/<stage>.steps/` for the stage key `hash`, clearing it if it holds another key's steps.
    fn open(parent: &Path, stage: Stage, hash: &str) -> Result<Self> {
        let dir = Self::dir(parent, stage);
        let key_file = dir.join(STEPS_KEY_FILE);
        let same_key = std::fs::read_to_string(&key_file).is_ok_and(|k| k == hash);
        if !same_key {
            if dir.exists() {
                tracing::info!(steps = %dir.display(), "finished steps of other inputs; removing them");
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("removing {}", dir.display()))?;
            }
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            crate::util::write_atomic(&key_file, hash)?;
        }
        Ok(Steps { dir, stage })
    }

    fn dir(parent: &Path, stage: Stage) -> PathBuf {
        parent.join(format!("{}.steps", stage.name()))
    }

    /// The folder of step `name` (a plain folder name), built by `build` in `<name>.<host>-<pid>.partial/` unless a run of the
    /// same stage key already finished it.
    pub fn step(&self, name: &str, build: impl FnOnce(&Path) -> Result<()>) -> Result<PathBuf> {
        let dir = self.dir.join(name);
        if dir.is_dir() {
            tracing::info!(step = %dir.display(), "step finished earlier with the same inputs; reused");
            return Ok(dir);
        }
        // A step another process finished meanwhile is as good as ours: both are built under the same stage key.
        build_in_partial(&dir, build)?;
        pause_for_tests(&format!("{}/{name}", self.stage.name()), &dir);
        Ok(dir)
    }
}

/// [`run_stage`] for a stage whose build runs independent steps (each a training): the finished steps survive an
/// interrupted run of the same key, and the `.steps` folder is removed once the stage is in place.
pub fn run_stage_in_steps(
    parent: &Path,
    stage: Stage,
    key: &StageKey,
    build: impl FnOnce(&Path, &Steps) -> Result<()>,
) -> Result<StageDone> {
    let done = run_stage(parent, stage, key, |partial| {
        let steps = Steps::open(parent, stage, &key.hash())?;
        build(partial, &steps)
    })?;
    let steps = Steps::dir(parent, stage);
    if steps.exists() {
        std::fs::remove_dir_all(&steps).with_context(|| format!("removing {}", steps.display()))?;
    }
    Ok(done)
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
    /// `running`, `finished` or `failed`.
    pub status: String,
    /// The error a failed run stopped with (its whole context chain).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
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
            error: None,
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
    fn training_curves_are_left_out_of_the_record_and_content() {
        let tmp = tempfile::tempdir().unwrap();
        let build = |dir: &Path, curves: bool| {
            crate::util::write_atomic(&dir.join("model.bin"), "weights")?;
            if curves {
                crate::util::write_atomic(&dir.join(CURVES_FILE), "epoch\n")?;
                crate::util::write_atomic(&dir.join("id-T1").join(CURVES_FILE), "epoch\n")?;
            }
            Ok(())
        };
        let plain = run_stage(tmp.path(), Stage::Erm, &StageKey::new(Stage::Erm), |d| {
            build(d, false)
        })
        .unwrap();
        let other = tempfile::tempdir().unwrap();
        let with = run_stage(other.path(), Stage::Erm, &StageKey::new(Stage::Erm), |d| {
            build(d, true)
        })
        .unwrap();
        assert_eq!(with.content, plain.content);
        let record = StageRecord::read(&with.dir).unwrap();
        let files: Vec<&str> = record.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(files, ["model.bin"]);
        // Losing the curves is no reason to redo the stage.
        std::fs::remove_file(with.dir.join(CURVES_FILE)).unwrap();
        let again = run_stage(other.path(), Stage::Erm, &StageKey::new(Stage::Erm), |_| {
            panic!("the stage is finished")
        })
        .unwrap();
        assert!(again.skipped);
    }

    /// An upstream stage and a downstream stage keyed on its content; returns (upstream, downstream ran?).
    fn chain(root: &Path, upstream_bytes: &str) -> (StageDone, bool) {
        let up = run_stage(root, Stage::Erm, &StageKey::new(Stage::Erm), |dir| {
            crate::util::write_atomic(&dir.join("model.bin"), upstream_bytes)
        })
        .unwrap();
        let mut key = StageKey::new(Stage::Translator);
        key.reads("erm", &up.content);
        let mut ran = false;
        run_stage(root, Stage::Translator, &key, |dir| {
            ran = true;
            crate::util::write_atomic(&dir.join("out.txt"), "z")
        })
        .unwrap();
        (up, ran)
    }

    #[test]
    fn downstream_is_keyed_on_the_upstream_content_not_its_inputs() {
        let tmp = tempfile::tempdir().unwrap();
        let (first, ran) = chain(tmp.path(), "weights");
        assert!(ran && !first.skipped);
        // The upstream's file is lost and the stage redone with the same inputs; on another machine it writes other
        // bytes, so what read it must be redone.
        std::fs::remove_file(tmp.path().join("erm/model.bin")).unwrap();
        let (redone, ran) = chain(tmp.path(), "other weights");
        assert!(!redone.skipped);
        assert_ne!(redone.content, first.content);
        assert!(ran, "a downstream stage of changed bytes must be redone");
        // Redone with the same bytes again: the downstream stage is still valid.
        std::fs::remove_file(tmp.path().join("erm/model.bin")).unwrap();
        let (same, ran) = chain(tmp.path(), "other weights");
        assert!(!same.skipped && same.content == redone.content);
        assert!(!ran, "identical bytes keep the downstream stage");
        let record: StageRecord =
            crate::util::read_json(&tmp.path().join("translator/stage.json")).unwrap();
        assert_eq!(record.reads["erm"], same.content);
        assert_eq!(record.inputs, ["format", "stage", "erm"]);
        assert_eq!(record.settings, StageKey::new(Stage::Translator).hash());
    }

    #[test]
    fn a_file_edited_in_place_redoes_the_stage() {
        let tmp = tempfile::tempdir().unwrap();
        let key = StageKey::new(Stage::Erm);
        let build = |dir: &Path| crate::util::write_atomic(&dir.join("model.bin"), "weights");
        let done = run_stage(tmp.path(), Stage::Erm, &key, build).unwrap();
        let record: StageRecord = crate::util::read_json(&done.dir.join("stage.json")).unwrap();
        assert_eq!(record.format, RECORD_FORMAT);
        assert_eq!(
            record.files,
            [FileRecord {
                path: "model.bin".into(),
                bytes: 7,
                sha256: crate::util::sha256(b"weights"),
            }]
        );
        assert_eq!(record.content, done.content);
        // Same size, other bytes.
        std::fs::write(done.dir.join("model.bin"), "weighty").unwrap();
        let again = run_stage(tmp.path(), Stage::Erm, &key, build).unwrap();
        assert!(
            !again.skipped,
            "a checkpoint that is not what the stage wrote is not trusted"
        );
        assert_eq!(again.content, done.content);
    }

    #[test]
    fn a_record_of_an_earlier_format_is_redone() {
        let tmp = tempfile::tempdir().unwrap();
        let key = StageKey::new(Stage::Lm);
        let build = |dir: &Path| crate::util::write_atomic(&dir.join("model.bin"), "weights");
        let done = run_stage(tmp.path(), Stage::Lm, &key, build).unwrap();
        let path = done.dir.join("stage.json");
        let mut record: StageRecord = crate::util::read_json(&path).unwrap();
        record.format = RECORD_FORMAT - 1;
        write_json(&path, &record).unwrap();
        let again = run_stage(tmp.path(), Stage::Lm, &key, build).unwrap();
        assert!(
            !again.skipped,
            "an earlier format is redone, its key unread"
        );
        let record: StageRecord = crate::util::read_json(&path).unwrap();
        assert_eq!(record.format, RECORD_FORMAT);
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
        let left: Vec<String> = std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left, ["explain"], "the interrupted build folder is removed");
    }

    #[test]
    fn a_stage_another_process_finished_first_is_verified_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let theirs = tempfile::tempdir().unwrap();
        let key = StageKey::new(Stage::Erm);
        let won = run_stage(theirs.path(), Stage::Erm, &key, |dir| {
            crate::util::write_atomic(&dir.join("model.bin"), "their weights")
        })
        .unwrap();
        // While this process builds, the other one renames its finished stage into place.
        let put_in_place = |to: &Path| {
            std::fs::create_dir_all(to).unwrap();
            for f in ["model.bin", "stage.json"] {
                std::fs::copy(won.dir.join(f), to.join(f)).unwrap();
            }
        };
        let done = run_stage(tmp.path(), Stage::Erm, &key, |dir| {
            crate::util::write_atomic(&dir.join("model.bin"), "our weights")?;
            put_in_place(&tmp.path().join("erm"));
            Ok(())
        })
        .unwrap();
        assert!(done.skipped);
        assert_eq!(
            done.content, won.content,
            "the winner's content is what downstream keys read"
        );
        assert_eq!(
            std::fs::read_to_string(done.dir.join("model.bin")).unwrap(),
            "their weights"
        );
        let left: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, ["erm"], "this process's copy is discarded");

        // A winner of other inputs is an error, never silently used.
        let other = tempfile::tempdir().unwrap();
        let mut changed = StageKey::new(Stage::Erm);
        changed.add("lr", &0.5);
        let err = run_stage(other.path(), Stage::Erm, &changed, |dir| {
            crate::util::write_atomic(&dir.join("model.bin"), "our weights")?;
            put_in_place(&other.path().join("erm"));
            Ok(())
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("with other inputs"), "{err:#}");
    }
}
