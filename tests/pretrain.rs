//! The pretrained regime on a tiny config: `texplain pretrain` writes an HF ViT folder (with `id2label`) that
//! reloads with the accuracy it reported, `texplain run` starts ERM from it and writes the regime check (linear
//! probes on scratch, pretrained and ERM features) into the run directory and `table.md`; JTT and group DRO, which
//! train anew from ERM's starting point, key on the pretrained checkpoint as ERM does.
use std::path::{Path, PathBuf};

use tch::{nn, Device};
use texplain::data::bg_challenge::load_in9l;
use texplain::data::{InputPipeline, LoadOptions, Split};
use texplain::models::vit::Vit;
use texplain::pipeline::regime::{Features, RegimeSummary};
use texplain::pretrain::{ClassAccuracy, PretrainSummary};

mod common;

fn tiny_config(dir: &Path) -> PathBuf {
    let text = format!(
        r#"name: tiny-pretrain
seeds: [0, 1]
device: cpu
threads: 1
data:
  root: {dir}/wb
  synth: {{scale: 0.04, size: 32, seed: 5, variants: false, supersample: 1}}
  image_size: 32
pretrain:
  root: {dir}/upstream
  synth: {{size: 32, seed: 9, train_per_class: 26, val_per_class: 13, challenge_per_class: 13, supersample: 1}}
  train: {{lr: 2.0e-3, epochs: 2, batch_size: 64}}
classifier:
{vit}  train: {{lr: 1.0e-3, epochs: 2, batch_size: 32}}
"#,
        dir = dir.display(),
        vit = common::TINY_VIT,
    );
    let path = dir.join("tiny.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// `texplain ARGS...`, which must succeed.
fn texplain(args: &[&str]) -> std::process::Output {
    let out = common::texplain(args);
    assert!(
        out.status.success(),
        "texplain {args:?}: {}",
        common::stderr(&out)
    );
    out
}

#[test]
fn pretrain_then_erm_with_the_regime_check() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path());
    let run = tmp.path().join("run");
    let printed = texplain(&[
        "pretrain",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&printed.stdout);
    assert!(
        text.contains("val accuracy") && text.contains("BG-gap"),
        "{text}"
    );

    // The checkpoint is an HF folder: id2label names the upstream classes, and it reloads with the validation
    // accuracy the stage reported.
    let dir = run.join("pretrain");
    let summary: PretrainSummary =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary.label_names.len(), 22);
    let mut vs = nn::VarStore::new(Device::Cpu);
    let (model, report) = Vit::from_hf_folder(&mut vs, &dir, None).unwrap();
    assert!(
        report.missing.is_empty() && report.unused.is_empty(),
        "{report:?}"
    );
    let names = model.config().id2label.clone().unwrap();
    assert_eq!(
        names.values().cloned().collect::<Vec<_>>(),
        summary.label_names
    );
    let opts = LoadOptions {
        image_size: 32,
        skip_corrupt: false,
    };
    let val = load_in9l(&tmp.path().join("upstream/in9l"), Split::Val, &opts).unwrap();
    let input = InputPipeline {
        normalize: Default::default(),
        augment: Default::default(),
        device: Device::Cpu,
    };
    let reloaded = ClassAccuracy::of(&model, &val, &input);
    assert_eq!(reloaded.accuracy, summary.val.accuracy);

    // A run reuses the pretrain stage and starts ERM from it; every seed gets the three probes.
    let out = texplain(&[
        "run",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("pretrain") && log.contains("skipped"),
        "the pretrain stage is reused: {log}"
    );
    for seed in [0, 1] {
        let path = run.join(format!("seed-{seed}/regime/summary.json"));
        let regime: RegimeSummary =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let kinds: Vec<Features> = regime.probes.iter().map(|p| p.features).collect();
        assert_eq!(
            kinds,
            [
                Features::ScratchInit,
                Features::PretrainedInit,
                Features::Erm
            ]
        );
        for p in &regime.probes {
            assert_eq!(p.group_acc.len(), 4);
            assert!((0.0..=1.0).contains(&p.worst_group), "{p:?}");
            let min = p.group_acc.iter().copied().fold(f64::INFINITY, f64::min);
            assert_eq!(
                p.worst_group, min,
                "worst group is the lowest group accuracy"
            );
        }
    }
    let table = std::fs::read_to_string(run.join("table.md")).unwrap();
    for line in [
        "Regime check",
        "| scratch_init | 2 |",
        "| pretrained_init | 2 |",
        "| erm | 2 |",
    ] {
        assert!(table.contains(line), "{line} missing from\n{table}");
    }

    // JTT and group DRO train anew from ERM's starting point, here the pretrained checkpoint with a new head: they
    // key on the pretrain stage's content, as ERM does, and the finished stages are reused.
    let out = texplain(&[
        "run",
        config.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--set",
        "mitigation.methods=[erm, jtt, groupdro]",
        "--set",
        "mitigation.baselines.jtt.grid={id_epochs: [1], lambda_up: [2]}",
    ]);
    let log = String::from_utf8_lossy(&out.stderr);
    let record = |stage: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(run.join(stage).join("stage.json")).unwrap())
            .unwrap()
    };
    let pretrain_content = record("pretrain")["content"].clone();
    for seed in [0, 1] {
        let erm = format!("seed-{seed}/erm}}");
        assert!(
            !log.lines()
                .any(|l| l.contains("stage finished") && l.contains(&erm)),
            "ERM is reused: {log}"
        );
        for stage in ["erm", "jtt", "groupdro"] {
            let reads = &record(&format!("seed-{seed}/{stage}"))["reads"];
            assert_eq!(
                reads,
                &serde_json::json!({ "pretrain": pretrain_content }),
                "seed-{seed}/{stage}"
            );
        }
    }
}
