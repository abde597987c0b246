//! The ImageNet-9 / Background Challenge analysis (`analysis: {kind: in9}`) on a tiny config: `texplain run` pretrains
//! the classifier on a habitat-correlated corpus, scores it on every variant, trains the translator on the upstream
//! caption set, explains the challenge images and writes clouds, word CSVs, the prediction figures and the summary;
//! a rerun skips every stage, a run killed inside a stage resumes to the same outputs, the stage keys are pinned,
//! and bad configs or a classifier whose labels are not the challenge's classes fail with named errors.
use std::path::{Path, PathBuf};

mod common;

use common::{
    assert_stage_keys_are_pinned, finished_stages, partial, run, stage_set, start_paused, stderr,
    texplain, PinnedStage,
};

fn config_text(data: &Path) -> String {
    format!(
        r#"name: tiny-in9
seeds: [3]
device: cpu
threads: 1
data:
  image_size: 32
pretrain:
  root: {data}/upstream
  synth: {{size: 32, seed: 9, train_per_class: 26, val_per_class: 4, challenge_per_class: 4, supersample: 1, background_affinity: 0.7}}
  train: {{lr: 2.0e-3, epochs: 1, batch_size: 64}}
classifier:
{vit}{text_models}explain:
  samples_per_image: 3
  max_words: 8
  min_words: 2
  top_k: 5
  words:
    synonyms:
      bird: [bird, duck, swan, heron, pelican, gull, sparrow, finch, robin, owl, jay]
      water: [water, lake, ocean, sea, pond, waves]
analysis:
  kind: in9
  images_per_class: 2
"#,
        data = data.display(),
        vit = common::TINY_VIT,
        text_models = common::tiny_text_models(data, "upstream"),
    )
}

fn write_config(dir: &Path, data: &Path) -> PathBuf {
    let path = dir.join("in9.yaml");
    std::fs::write(&path, config_text(data)).unwrap();
    path
}

/// Every stage's settings hash and the stages it reads, for the tiny config (see tests/pipeline.rs): pinned so that
/// moving code cannot silently invalidate run directories.
const PINNED: &[PinnedStage] = &[
    (
        "lm",
        "dbee0296818b2c67353394b0d7b4f1cc22a712004adcb668b5626d14d6a2c9d9",
        &[],
    ),
    (
        "predictions",
        "33b769654202a88d6cdcab3c88ac0a3a171afafc8e99d0aace225335dcd49cdb",
        &["pretrain"],
    ),
    (
        "pretrain",
        "73d4ac19170bc63db6ceb08e3330578c8667b3df527dc0ae03580c5ff4e987f7",
        &[],
    ),
    (
        "seed-3/clouds",
        "6994992e40f99a5d5bc8d46913d734eac1056d0143ff843d988df80a928923c0",
        &["explain"],
    ),
    (
        "seed-3/explain",
        "3c8c282b80d439e66487f4f254a2aa145c5e3a35d0a34603b9e8f6e477012b74",
        &["lm", "pretrain", "translator"],
    ),
    (
        "seed-3/summary",
        "3f887df8da0d591059c2419e462c6dff7fcc257aa13220847e95476508a1eb39",
        &["explain", "predictions"],
    ),
    (
        "seed-3/translator",
        "c390484fbd82c50685ab01033e358231d463044cd3db0e903fad466b61956370",
        &["lm", "pretrain"],
    ),
];

/// The stages shared by the seeds, at the top of the run directory.
const SHARED_STAGES: &[&str] = &["pretrain", "lm", "predictions"];

/// The files whose bytes a resumed run must reproduce.
const OUTPUTS: [&str; 6] = [
    "predictions/summary.json",
    "seed-3/explain/words-by-class.csv",
    "seed-3/clouds/words-original-car.csv",
    "seed-3/summary/summary.json",
    "summary.json",
    "table.md",
];

#[test]
fn the_analysis_writes_its_artifacts_resumes_and_keys_its_stages() {
    let tmp = tempfile::tempdir().unwrap();
    let config = write_config(tmp.path(), &tmp.path().join("data"));
    let straight = tmp.path().join("straight");
    let done = run(&config, &straight, &[]);
    assert!(done.status.success(), "{}", stderr(&done));
    for file in [
        "run.json",
        "pretrain/summary.json",
        "predictions/accuracy.csv",
        "predictions/predictions.csv",
        "predictions/table.md",
        "predictions/predictions.png",
        "predictions/accuracy.png",
        "lm/tokenizer.json",
        "seed-3/translator/model.safetensors",
        "seed-3/explain/images-original.csv",
        "seed-3/explain/sentences-only_bg_t.jsonl",
        "seed-3/explain/words-original.csv",
        "seed-3/clouds/cloud-original-car.png",
        "seed-3/clouds/cloud-only_bg_t-umbrella.png",
        "seed-3/clouds/words-original-duck.csv",
        "seed-3/clouds/clouds-original.png",
        "seed-3/summary/table.md",
        "seed-3/summary/relation.png",
    ] {
        assert!(straight.join(file).is_file(), "missing {file}");
    }
    let run_json = std::fs::read_to_string(straight.join("run.json")).unwrap();
    assert!(run_json.contains("\"finished\""), "{run_json}");
    // 2 explained images per category and variant.
    let images =
        std::fs::read_to_string(straight.join("seed-3/explain/images-original.csv")).unwrap();
    assert_eq!(images.lines().count(), 1 + 22 * 2);
    // The summary relates every category's cloud to its predictions; the synthetic corpus gives habitats.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(straight.join("summary.json")).unwrap())
            .unwrap();
    let seed = &summary["seeds"][0];
    assert_eq!(seed["rows"].as_array().unwrap().len(), 22);
    assert_eq!(seed["variant"], "original");
    let car = seed["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["class"] == "car")
        .unwrap();
    // 3 of its 4 challenge images are on the street; 2 are explained.
    assert!(
        car["habitats"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("street")),
        "{car}"
    );
    let duck = seed["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["class"] == "duck")
        .unwrap();
    assert_eq!(
        duck["class_words"],
        serde_json::json!(["bird"]),
        "synonyms merge species into bird"
    );
    assert!(!seed["correlations"].as_array().unwrap().is_empty());
    let predictions = &summary["predictions"];
    assert!(predictions["bg_gap"].is_number(), "{predictions}");
    assert_eq!(
        predictions["accuracy"].as_object().unwrap().len(),
        8,
        "every variant is scored"
    );
    let table = String::from_utf8_lossy(&done.stdout);
    assert!(
        table.contains("BG-gap") && table.contains("| car |"),
        "{table}"
    );
    assert_stage_keys_are_pinned(&straight, PINNED, SHARED_STAGES);

    // A rerun finds every stage finished.
    let again = run(&config, &straight, &[]);
    let log = stderr(&again);
    assert!(again.status.success(), "{log}");
    assert!(finished_stages(&log, &straight).is_empty(), "{log}");

    // A run killed inside the explain stage resumes: the finished stages are skipped, the interrupted one redone,
    // and the outputs are those of the uninterrupted run.
    let resumed = tmp.path().join("resumed");
    let mut child = start_paused(&config, &resumed, "explain", |pid| {
        partial(&resumed, "seed-3/explain", pid).join("stage.json")
    });
    let partial = partial(&resumed, "seed-3/explain", child.id());
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!resumed.join("seed-3/explain").exists());
    let finish = run(&config, &resumed, &[]);
    let log = stderr(&finish);
    assert!(finish.status.success(), "{log}");
    assert!(
        log.contains("finished earlier with the same inputs"),
        "{log}"
    );
    // explain, clouds and summary are computed again, nothing before them.
    assert_eq!(
        finished_stages(&log, &resumed),
        stage_set(&["seed-3/explain", "seed-3/clouds", "seed-3/summary"]),
        "{log}"
    );
    assert!(!partial.exists());
    for f in OUTPUTS {
        assert_eq!(
            std::fs::read(straight.join(f)).unwrap(),
            std::fs::read(resumed.join(f)).unwrap(),
            "{f} differs after resuming"
        );
    }

    // A classifier whose head is not the challenge's classes is refused, naming both: the pretrained 22-way
    // classifier against the 3-class real-layout fixture.
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bg_challenge_mini/bg_challenge");
    let mismatched = tmp.path().join("mismatch.yaml");
    std::fs::write(
        &mismatched,
        format!(
            r#"name: mismatch
seeds: [3]
device: cpu
threads: 1
data:
  image_size: 32
classifier:
  pretrained: {pretrained}
translator:
  captions: {{kind: upstream, root: {data}/captions, config: {{n_images: 120, size: 32, corpus_sentences: 1500, supersample: 1}}}}
analysis:
  kind: in9
  challenge: {fixture}
"#,
            pretrained = straight.join("pretrain").display(),
            data = tmp.path().join("data").display(),
            fixture = fixture.display()
        ),
    )
    .unwrap();
    let refused = run(&mismatched, &tmp.path().join("mismatch"), &[]);
    assert!(!refused.status.success());
    let e = stderr(&refused);
    assert!(
        e.contains("22 outputs") && e.contains("3 classes") && e.contains("wheeled vehicle"),
        "{e}"
    );
}

#[test]
fn bad_analysis_configs_fail_with_named_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let base = config_text(&tmp.path().join("data"));
    let check = |name: &str, text: String, expected: &[&str]| {
        let path = tmp.path().join(format!("{name}.yaml"));
        std::fs::write(&path, text).unwrap();
        let out = texplain(&["config", path.to_str().unwrap()]);
        assert!(!out.status.success(), "{name} was accepted");
        let e = stderr(&out);
        for x in expected {
            assert!(e.contains(x), "{name}: {e}");
        }
    };
    let no_classifier = base.replace("pretrain:\n", "unused_pretrain:\n");
    assert!(no_classifier.contains("unused_pretrain"));
    // An unknown key is named by serde; without the pretrain section the analysis has no classifier.
    check("unknown", no_classifier, &["unused_pretrain"]);
    let mut without = String::new();
    let mut skip = false;
    for line in base.lines() {
        if line == "pretrain:" {
            skip = true;
            continue;
        }
        if skip && line.starts_with("  ") {
            continue;
        }
        skip = false;
        without.push_str(line);
        without.push('\n');
    }
    check(
        "no-classifier",
        without,
        &["analysis", "pretrain", "classifier.pretrained"],
    );
    check(
        "variants",
        base.replace(
            "  kind: in9\n",
            "  kind: in9\n  explain_variants: [original, original]\n",
        ),
        &["analysis.explain_variants", "twice"],
    );
    check(
        "top-k",
        base.replace("  kind: in9\n", "  kind: in9\n  top_k: 0\n"),
        &["analysis.top_k"],
    );
    check(
        "kind",
        base.replace("  kind: in9\n", "  kind: in10\n"),
        &["in10"],
    );
    check(
        "affinity",
        base.replace("background_affinity: 0.7", "background_affinity: 1.7"),
        &["pretrain.synth", "background_affinity", "1.7"],
    );
    check(
        "captions",
        base.replace(
            "n_images: 120, size: 32,",
            "n_images: 120, size: 32, object_size: [0.5, 0.2],",
        ),
        &["translator.captions.config", "object_size"],
    );
    // The mitigation pipeline still needs its data folder.
    let waterbirds = "name: wb\ndata:\n  image_size: 32\nclassifier:\n  train: {lr: 1.0e-3, epochs: 1, batch_size: 8}\n";
    check("no-root", waterbirds.to_string(), &["data.root"]);
}
