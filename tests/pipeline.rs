//! End to end on a tiny synthetic config: `texplain run` writes every stage and the Table-1 outputs, a killed
//! run resumes (finished stages skipped, the interrupted one redone) and ends with the same results as an
//! uninterrupted run, and `texplain explain` reads the run directory.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_texplain");

/// A config small enough to run in seconds; data folders are shared between the runs of this file.
fn tiny_config(dir: &Path, data: &Path) -> PathBuf {
    let path = dir.join("tiny.yaml");
    std::fs::write(&path, tiny_config_text(data)).unwrap();
    path
}

fn tiny_config_text(data: &Path) -> String {
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
  hidden_size: 32
  num_hidden_layers: 2
  num_attention_heads: 2
  patch_size: 8
  train: {{lr: 1.0e-3, epochs: 2, batch_size: 32}}
language_model:
  n_embd: 32
  n_layer: 1
  n_head: 2
  val_sentences: 50
  train: {{lr: 3.0e-3, epochs: 1, batch_size: 64}}
translator:
  hidden_dim: 32
  captions:
    kind: synth
    root: {data}/captions
    config: {{n_images: 120, size: 32, corpus_sentences: 1500, supersample: 1}}
  train: {{lr: 1.0e-3, epochs: 1, batch_size: 32}}
explain: {{samples_per_image: 3, max_words: 8, min_words: 2, top_k: 5}}
mitigation:
  methods: [erm, random, texplain, oracle]
  class_words: {{0: [bird], 1: [bird]}}
  gradcam: {{overlays: 2, sentences_per_image: 2}}
  finetune: {{lr: 1.0e-4, epochs: 1, batch_size: 32}}
"#,
        data = data.display()
    )
}

/// The tiny config with every method of `Method::ALL`, the baselines sized to seconds.
fn tiny_config_all_methods(dir: &Path, data: &Path) -> PathBuf {
    let text = tiny_config_text(data).replace(
        "  methods: [erm, random, texplain, oracle]\n",
        "  methods: [erm, random, texplain, oracle, masktune, jtt, dfr, groupdro]\n  baselines:\n    \
         masktune: {overlays: 3, save_masks: true}\n    \
         jtt: {grid: {id_epochs: [1], lambda_up: [2, 4]}}\n    \
         dfr: {c_grid: [1.0, 0.1], final_retrains: 3}\n",
    );
    assert!(text.contains("masktune"), "the methods line moved: {text}");
    let path = dir.join("all.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run(config: &Path, out: &Path) -> std::process::Output {
    Command::new(BIN)
        .args([
            "run",
            config.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
        .output()
        .expect("the texplain binary runs")
}

#[test]
fn run_resumes_after_a_kill_and_matches_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), &tmp.path().join("data"));

    let straight = tmp.path().join("straight");
    let done = run(&config, &straight);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    for file in [
        "config.resolved.yaml",
        "run.json",
        "results.csv",
        "table.md",
        "lm/tokenizer.json",
        "seed-3/erm/model.safetensors",
        "seed-3/translator/model.safetensors",
        "seed-3/explain/words-train.csv",
        "seed-3/clouds/cloud-test-waterbird.png",
        "seed-3/flags/flags.csv",
        "seed-3/masks/masks.safetensors",
        "seed-3/texplain/results.csv",
        "seed-3/random/results.csv",
        "seed-3/oracle/results.csv",
    ] {
        assert!(straight.join(file).exists(), "missing {file}");
    }
    assert_stage_keys_are_pinned(&straight);
    let table = std::fs::read_to_string(straight.join("table.md")).unwrap();
    for method in ["erm", "random", "texplain", "oracle"] {
        assert!(table.contains(&format!("| {method} |")), "{table}");
    }

    // Kill a second run in the middle of a stage, after the LM and ERM stages finished.
    let resumed = tmp.path().join("resumed");
    let mut child = Command::new(BIN)
        .args([
            "run",
            config.to_str().unwrap(),
            "--out",
            resumed.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let partial = resumed.join("seed-3/translator.partial");
    while !partial.exists()
        && child.try_wait().unwrap().is_none()
        && started.elapsed() < Duration::from_secs(120)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().ok();
    child.wait().unwrap();
    assert!(
        resumed.join("seed-3/erm/stage.json").exists(),
        "ERM finished before the kill"
    );
    assert!(
        !resumed.join("seed-3/translator").exists(),
        "the interrupted stage must not look finished"
    );

    let again = run(&config, &resumed);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let log = String::from_utf8_lossy(&again.stderr);
    assert!(
        log.contains("skipped"),
        "finished stages are skipped on rerun: {log}"
    );
    assert!(!resumed.join("seed-3/translator.partial").exists());
    assert_eq!(
        std::fs::read_to_string(straight.join("results.csv")).unwrap(),
        std::fs::read_to_string(resumed.join("results.csv")).unwrap(),
        "a resumed run ends with the same results as an uninterrupted one"
    );

    // A third run finds every stage finished and changes nothing.
    let third = run(&config, &resumed);
    assert!(third.status.success());
    let log = String::from_utf8_lossy(&third.stderr);
    assert!(
        !log.contains("stage finished"),
        "nothing is recomputed: {log}"
    );

    // `texplain explain` reads the run directory.
    let explained = Command::new(BIN)
        .args(["explain", straight.to_str().unwrap(), "--split", "test"])
        .output()
        .unwrap();
    assert!(
        explained.status.success(),
        "{}",
        String::from_utf8_lossy(&explained.stderr)
    );
    let text = String::from_utf8_lossy(&explained.stdout);
    assert!(
        text.contains("test / landbird") && text.contains("test / waterbird"),
        "{text}"
    );
    assert!(!text.contains("train /"), "--split filters: {text}");
}

#[test]
fn every_method_runs_writes_its_artifacts_and_is_skipped_on_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config_all_methods(tmp.path(), &tmp.path().join("data"));
    let out = tmp.path().join("all");
    let done = run(&config, &out);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    for file in [
        "seed-3/masktune/metrics.csv",
        "seed-3/masktune/summary.json",
        "seed-3/masktune/masks.safetensors",
        "seed-3/jtt/grid.csv",
        "seed-3/jtt/metrics.csv",
        "seed-3/jtt/id-T1/errors.csv",
        "seed-3/jtt/id-T1/metrics.csv",
        "seed-3/jtt/final-T1-up2/metrics.csv",
        "seed-3/jtt/final-T1-up4/metrics.csv",
        "seed-3/dfr/tuning.csv",
        "seed-3/dfr/summary.json",
        "seed-3/dfr/head.safetensors",
        "seed-3/groupdro/metrics.csv",
        "seed-3/groupdro/summary.json",
    ] {
        assert!(out.join(file).exists(), "missing {file}");
    }
    // Every method's folder holds its val and test rows, and the run's results.csv gathers them all.
    let all = std::fs::read_to_string(out.join("results.csv")).unwrap();
    for method in [
        "erm", "random", "texplain", "oracle", "masktune", "jtt", "dfr", "groupdro",
    ] {
        let own =
            std::fs::read_to_string(out.join(format!("seed-3/{method}/results.csv"))).unwrap();
        for split in ["val", "test"] {
            let prefix = format!("3,{method},{split},");
            assert_eq!(
                own.lines().filter(|l| l.starts_with(&prefix)).count(),
                1,
                "{method} {split}: {own}"
            );
            assert!(all.lines().any(|l| l.starts_with(&prefix)), "{all}");
        }
    }

    // MaskTune's summary scores its masks against the true background (the synthetic data ship bird masks).
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("seed-3/masktune/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["layer"], 1, "default layer: L - 1 of a 2-block ViT");
    let iou = summary["quality"]["background_iou"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&iou), "{summary}");
    let auroc = summary["quality"]["auroc"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&auroc), "{summary}");
    let overlays = std::fs::read_dir(out.join("seed-3/masktune/overlays"))
        .unwrap()
        .count();
    assert_eq!(overlays, 3);

    // JTT's grid: one line per point, exactly one chosen, and the chosen point's validation worst group is the
    // best of the grid and is what results.csv reports.
    let grid = std::fs::read_to_string(out.join("seed-3/jtt/grid.csv")).unwrap();
    let header: Vec<&str> = grid.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let points: Vec<Vec<&str>> = grid
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(points.len(), 2, "{grid}");
    let chosen: Vec<&Vec<&str>> = points.iter().filter(|p| p[col("chosen")] == "1").collect();
    assert_eq!(chosen.len(), 1, "{grid}");
    let val_worst = |p: &Vec<&str>| p[col("val_worst_group")].parse::<f64>().unwrap();
    assert!(
        points.iter().all(|p| val_worst(p) <= val_worst(chosen[0])),
        "{grid}"
    );
    let jtt_val = std::fs::read_to_string(out.join("seed-3/jtt/results.csv")).unwrap();
    let reported: f64 = jtt_val
        .lines()
        .find(|l| l.starts_with("3,jtt,val,"))
        .unwrap()
        .split(',')
        .nth(7)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (reported - val_worst(chosen[0])).abs() < 1e-5,
        "{grid}\n{jtt_val}"
    );

    // DFR's tuning table has one line per C, one of them chosen.
    let tuning = std::fs::read_to_string(out.join("seed-3/dfr/tuning.csv")).unwrap();
    assert_eq!(tuning.lines().count(), 3, "{tuning}");
    assert_eq!(
        tuning.lines().filter(|l| l.ends_with(",1")).count(),
        1,
        "{tuning}"
    );

    // table.md: every method in the Table-1 order; the two that train on group labels are marked.
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    let order: Vec<usize> = [
        "| erm |",
        "| random |",
        "| texplain |",
        "| oracle |",
        "| masktune |",
        "| jtt |",
        "| dfr † |",
        "| groupdro † |",
    ]
    .iter()
    .map(|m| {
        table
            .find(m)
            .unwrap_or_else(|| panic!("{m} missing: {table}"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{table}");
    assert!(
        table.contains("† trains on group labels: dfr (the validation split's")
            && table.contains("groupdro (the training split's"),
        "{table}"
    );

    // A rerun finds every stage finished.
    let again = run(&config, &out);
    assert!(again.status.success());
    let log = String::from_utf8_lossy(&again.stderr);
    assert!(
        !log.contains("stage finished"),
        "nothing is recomputed: {log}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("results.csv")).unwrap(),
        all
    );
}

#[test]
fn bad_config_fails_with_a_named_error_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("bad.yaml");
    std::fs::write(
        &config,
        "name: bad\ndata: {root: /nonexistent/wb, image_size: 32}\n",
    )
    .unwrap();
    let out = tmp.path().join("out");
    let result = run(&config, &out);
    assert!(!result.status.success());
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(
        err.contains("bad.yaml") && err.contains("data.root") && err.contains("/nonexistent/wb"),
        "{err}"
    );
    assert!(!out.exists(), "no run directory for a rejected config");
}

/// Every stage's key (the hash in its `stage.json`) for the tiny config, pinned so that moving code around cannot
/// silently invalidate existing run directories. A deliberate change of what a stage is keyed on updates this list
/// and says so in its commit.
const PINNED_STAGE_KEYS: &[(&str, &str)] = &[
    (
        "lm",
        "43bf57d4a229ff1914b4cca603ceb3d3c9684fade512c9afc7069ce97b559d34",
    ),
    (
        "seed-3/clouds",
        "e2b09301b1f1eb6894da6d99eb7f167e15a03a3a0a4544422751f5ef0608607e",
    ),
    (
        "seed-3/erm",
        "b5902049f9bb607d5479810d88757151c618a3cdb6686a0df0703a41638ec4bd",
    ),
    (
        "seed-3/explain",
        "899b07b49e0110b9710f5cfc38a86876f1b910c843cd80b3a7e0e025203e9a97",
    ),
    (
        "seed-3/flags",
        "d0f30156000aff4bda960d5a3b037a1ef1ca4f13dd1902dfcb1951fb40b529ee",
    ),
    (
        "seed-3/masks",
        "9f68d07157d70153fffeb23a49dbe2cef6dcd6428aaa51df0e5079ec66bd53c9",
    ),
    (
        "seed-3/oracle",
        "61a3903af8110fe900445d7c5aa35bd78c163081b81af151869a9ac7476349c4",
    ),
    (
        "seed-3/random",
        "f48809cc7826122997c4f98e252220b8b4e2ea24703fa7f1b7d452ee703ce198",
    ),
    (
        "seed-3/texplain",
        "3ba31fc1581206455028360f12b6b5fb97e181c60ba023bd25760849082350e2",
    ),
    (
        "seed-3/translator",
        "f0b27cb02ae8a48848767733c5de0894223fa4c9c92cb714b60f15a7efb2c5af",
    ),
];

fn assert_stage_keys_are_pinned(run: &Path) {
    let mut found = Vec::new();
    let mut pending = vec![run.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.file_name().is_some_and(|n| n == "stage.json") {
                let record: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
                let stage = path.parent().unwrap().strip_prefix(run).unwrap();
                found.push((
                    stage.to_string_lossy().into_owned(),
                    record["hash"].as_str().unwrap().to_string(),
                ));
            }
        }
    }
    found.sort();
    let pinned: Vec<(String, String)> = PINNED_STAGE_KEYS
        .iter()
        .map(|(s, h)| (s.to_string(), h.to_string()))
        .collect();
    assert_eq!(found, pinned, "stage keys moved; found:\n{found:#?}");
}
