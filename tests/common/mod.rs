//! What the integration tests share: the `texplain` binary and its runs, the stages a run's log says it computed,
//! the `stage.json` records of a run directory and the check of their pinned keys, and walking, copying and
//! digesting folders. Each test file takes what it needs (`mod common;`), so the rest is dead code there.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `texplain` binary of this build.
pub const BIN: &str = env!("CARGO_BIN_EXE_texplain");

/// `texplain ARGS...`.
pub fn texplain(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("the texplain binary runs")
}

/// The command `texplain run CONFIG --out OUT`.
fn run_command(config: &Path, out: &Path) -> Command {
    let mut command = Command::new(BIN);
    command.arg("run").arg(config).arg("--out").arg(out);
    command
}

/// `texplain run CONFIG --out OUT ARGS...`.
pub fn run(config: &Path, out: &Path, args: &[&str]) -> Output {
    run_command(config, out)
        .args(args)
        .output()
        .expect("the texplain binary runs")
}

/// The command `texplain data synth-waterbirds --scale 0.01 --size 16 --out OUT` (119 images of 16 px), to which a
/// test adds its own flags.
pub fn tiny_synth_command(out: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .args([
            "data",
            "synth-waterbirds",
            "--scale",
            "0.01",
            "--size",
            "16",
        ])
        .arg("--out")
        .arg(out);
    command
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The stages (folders relative to the run directory `out`) that a run's log says it computed (`stage finished`).
pub fn finished_stages(log: &str, out: &Path) -> BTreeSet<String> {
    let prefix = format!("stage{{name={}/", out.display());
    log.lines()
        .filter(|line| line.contains("stage finished"))
        .filter_map(|line| {
            let rest = &line[line.find(&prefix)? + prefix.len()..];
            Some(rest[..rest.find('}')?].to_string())
        })
        .collect()
}

/// The set of `stages`, for comparing with [`finished_stages`].
pub fn stage_set(stages: &[&str]) -> BTreeSet<String> {
    stages.iter().map(|s| s.to_string()).collect()
}

/// The build folder of `stage` (relative to the run directory) of the writer with process id `pid` on this host:
/// `<stage>.<host>-<pid>.partial` (`texplain::util::build_in_partial`).
pub fn partial(out: &Path, stage: &str, pid: u32) -> PathBuf {
    out.join(format!(
        "{stage}.{}-{pid}.partial",
        texplain::util::host_name()
    ))
}

/// Every build folder (`*.partial`) below `dir`, relative to it, sorted.
pub fn partials(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().ends_with(".partial") {
                found.push(path.strip_prefix(dir).unwrap().to_path_buf());
            } else if path.is_dir() {
                pending.push(path);
            }
        }
    }
    found.sort();
    found
}

/// Starts `texplain run` paused inside `stage` (the `TEXPLAIN_TEST_PAUSE_IN` hook of `pipeline::stage`) and returns
/// once its build folder exists: the run is then building or paused inside that stage, never past it.
pub fn start_inside(config: &Path, out: &Path, stage: &str) -> Child {
    let name = stage.rsplit('/').next().unwrap();
    start_paused(config, out, name, |pid| partial(out, stage, pid))
}

/// Starts `texplain run` with `TEXPLAIN_TEST_PAUSE_IN=pause` and returns once `reached(its pid)` exists.
pub fn start_paused(
    config: &Path,
    out: &Path,
    pause: &str,
    reached: impl Fn(u32) -> PathBuf,
) -> Child {
    let mut child = run_command(config, out)
        .env("TEXPLAIN_TEST_PAUSE_IN", pause)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let reached = reached(child.id());
    let started = Instant::now();
    while !reached.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the run ended ({status}) before it reached {}",
                reached.display()
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{} not reached",
            reached.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

/// Every file below `dir`, relative to it, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Copies every file below `from` to the same place below `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    for f in files(from) {
        let dst = to.join(&f);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&f), dst).unwrap();
    }
}

/// The content digest (`util::content_digest` over every file's relative path and SHA-256) of a folder, and its
/// number of files.
pub fn tree_digest(dir: &Path) -> (String, usize) {
    let files = texplain::util::list_files(dir).unwrap();
    let digests: Vec<(String, String)> = files
        .iter()
        .map(|f| {
            (
                f.clone(),
                texplain::util::sha256_file(&dir.join(f)).unwrap().0,
            )
        })
        .collect();
    (
        texplain::util::content_digest(digests.iter().map(|(f, d)| (f.as_str(), d.as_str()))),
        files.len(),
    )
}

/// The `stage.json` of the stage folder `dir`.
pub fn stage_record(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("stage.json")).unwrap()).unwrap()
}

/// The `stage.json` of every stage below `run`, by stage folder relative to `run`.
pub fn stage_records(run: &Path) -> BTreeMap<String, serde_json::Value> {
    files(run)
        .into_iter()
        .filter(|f| f.file_name().is_some_and(|n| n == "stage.json"))
        .map(|f| {
            let stage = f.parent().unwrap();
            (
                stage.to_string_lossy().into_owned(),
                stage_record(&run.join(stage)),
            )
        })
        .collect()
}

/// A stage's pinned key: its folder, the `settings` hash of its `stage.json` (config sections, seed, data
/// fingerprint) and the stages whose content it reads.
pub type PinnedStage<'a> = (&'a str, &'a str, &'a [&'a str]);

/// Checks the `stage.json` of every stage under `run` against `pinned`, so that moving code around cannot silently
/// invalidate existing run directories. The full key adds the content digests of the stages read, which depend on
/// the machine's arithmetic; each is checked to be the content its upstream stage recorded instead: a stage in
/// `shared` (shared by the seeds, at the top of the run directory), any other in the reading stage's seed folder.
pub fn assert_stage_keys_are_pinned(run: &Path, pinned: &[PinnedStage], shared: &[&str]) {
    let records = stage_records(run);
    let found: Vec<(String, String, Vec<String>)> = records
        .iter()
        .map(|(stage, record)| {
            (
                stage.clone(),
                record["settings"].as_str().unwrap().to_string(),
                record["reads"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .cloned()
                    .collect(),
            )
        })
        .collect();
    let mut pinned: Vec<(String, String, Vec<String>)> = pinned
        .iter()
        .map(|(stage, settings, reads)| {
            (
                stage.to_string(),
                settings.to_string(),
                reads.iter().map(|r| r.to_string()).collect(),
            )
        })
        .collect();
    pinned.sort();
    assert_eq!(found, pinned, "stage keys moved; found:\n{found:#?}");
    for (stage, record) in &records {
        for (name, content) in record["reads"].as_object().unwrap() {
            let upstream = if shared.contains(&name.as_str()) {
                name.to_string()
            } else {
                let seed = Path::new(stage).parent().unwrap();
                seed.join(name).to_string_lossy().into_owned()
            };
            assert_eq!(
                content, &records[&upstream]["content"],
                "{stage} reads {upstream}"
            );
        }
    }
}

/// The ViT of the tiny end-to-end configs (seconds on a CPU): the architecture lines of a `classifier:` section.
pub const TINY_VIT: &str = "  hidden_size: 32
  num_hidden_layers: 2
  num_attention_heads: 2
  patch_size: 8
";

/// The `language_model` and `translator` sections of the tiny end-to-end configs, the translator trained on the
/// caption set of `kind` (`synth` or `upstream`) generated in `<data>/captions`.
pub fn tiny_text_models(data: &Path, kind: &str) -> String {
    format!(
        "language_model:
  n_embd: 32
  n_layer: 1
  n_head: 2
  val_sentences: 50
  train: {{lr: 3.0e-3, epochs: 1, batch_size: 64}}
translator:
  hidden_dim: 32
  captions:
    kind: {kind}
    root: {data}/captions
    config: {{n_images: 120, size: 32, corpus_sentences: 1500, supersample: 1}}
  train: {{lr: 1.0e-3, epochs: 1, batch_size: 32}}
",
        data = data.display()
    )
}

/// The tiny end-to-end config of `tests/pipeline.rs` (seconds on a CPU; its stage keys are pinned there): ERM,
/// Random, TExplain and the oracle on one seed of a 32 px synthetic set. Other tests derive theirs from it.
pub fn tiny_pipeline_config_text(data: &Path) -> String {
    format!(
        r#"name: tiny
seeds: [3]
device: cpu
threads: 1
data:
  root: {data}/wb
  synth: {{scale: 0.04, size: 32, seed: 5, variants: false, supersample: 1}}
  image_size: 32
classifier:
{vit}  train: {{lr: 1.0e-3, epochs: 2, batch_size: 32}}
{text_models}explain: {{samples_per_image: 3, max_words: 8, min_words: 2, top_k: 5}}
mitigation:
  methods: [erm, random, texplain, oracle]
  class_words: {{0: [bird], 1: [bird]}}
  masks: {{overlays: 2, sentences_per_image: 2}}
  finetune: {{lr: 1.0e-4, epochs: 1, batch_size: 32}}
"#,
        data = data.display(),
        vit = TINY_VIT,
        text_models = tiny_text_models(data, "synth"),
    )
}

/// Per image of a [n, 1, h, w] 0/1 mask: the centroid (x, y) in [0, 1] and whether the mask touches the border.
pub fn centroids_and_border(masks: &tch::Tensor) -> Vec<((f64, f64), bool)> {
    let (n, h, w) = (masks.size()[0], masks.size()[2], masks.size()[3]);
    let m: Vec<u8> = Vec::try_from(masks.reshape([-1])).unwrap();
    let (h, w) = (h as usize, w as usize);
    (0..n as usize)
        .map(|k| {
            let img = &m[k * h * w..(k + 1) * h * w];
            let (mut sx, mut sy, mut on, mut border) = (0.0, 0.0, 0.0, false);
            for y in 0..h {
                for x in 0..w {
                    if img[y * w + x] > 0 {
                        sx += (x as f64 + 0.5) / w as f64;
                        sy += (y as f64 + 0.5) / h as f64;
                        on += 1.0;
                        border |= x == 0 || y == 0 || x == w - 1 || y == h - 1;
                    }
                }
            }
            assert!(on > 0.0, "image {k} has an empty mask");
            ((sx / on, sy / on), border)
        })
        .collect()
}
