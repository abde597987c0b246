//! End to end on a tiny synthetic config: `texplain run` writes every stage and the Table-1 outputs; a run killed
//! inside any stage resumes (finished stages skipped, the interrupted one redone) and ends with the same results as
//! an uninterrupted run; a stage redone with other bytes redoes the stages that read it, one redone with the same
//! bytes does not; two runs into one directory exclude each other; a diverging training fails naming the stage,
//! epoch and step, and `run.json` records the failure; a demo run leaves a checkout clean and checks its
//! reference; `texplain explain` reads the run directory; every method (the field's baselines too) runs, writes
//! its artifacts and is keyed without moving the other stages' keys; a bf16 run finishes and redoes only the stages
//! whose precision changed (and what reads them).
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::{
    assert_stage_keys_are_pinned, copy_dir, finished_stages, partials, run, stage_record,
    stage_set, start_inside, start_paused, stderr, texplain, PinnedStage, BIN,
};

/// A config small enough to run in seconds; data folders are shared between the runs of this file.
fn tiny_config(dir: &Path, data: &Path) -> PathBuf {
    let path = dir.join("tiny.yaml");
    std::fs::write(&path, common::tiny_pipeline_config_text(data)).unwrap();
    path
}

/// The tiny config with every method of `Method::ALL` but the arms ([`tiny_config_arms`]), the baselines sized to
/// seconds.
fn tiny_config_all_methods(dir: &Path, data: &Path) -> PathBuf {
    let text = common::tiny_pipeline_config_text(data).replace(
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

/// Every stage of the tiny config in the order a run reaches them, as folders relative to the run directory.
const STAGES: [&str; 11] = [
    "lm",
    "seed-3/erm",
    "seed-3/regime",
    "seed-3/translator",
    "seed-3/explain",
    "seed-3/clouds",
    "seed-3/flags",
    "seed-3/masks",
    "seed-3/random",
    "seed-3/texplain",
    "seed-3/oracle",
];

/// The stages shared by the seeds, at the top of the run directory.
const SHARED_STAGES: &[&str] = &["lm", "pretrain"];

#[test]
fn run_resumes_after_a_kill_inside_every_stage_and_matches_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), &tmp.path().join("data"));

    let straight = tmp.path().join("straight");
    let done = run(&config, &straight, &[]);
    assert!(done.status.success(), "{}", stderr(&done));
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
    assert!(
        !straight.join(".lock").exists(),
        "a finished run lets go of its lock"
    );
    assert_eq!(
        finished_stages(&stderr(&done), &straight),
        stage_set(&STAGES)
    );
    assert_stage_keys_are_pinned(&straight, PINNED_STAGE_SETTINGS, SHARED_STAGES);
    let table = std::fs::read_to_string(straight.join("table.md")).unwrap();
    for method in ["erm", "random", "texplain", "oracle"] {
        assert!(table.contains(&format!("| {method} |")), "{table}");
    }
    assert_masks_are_scored(&straight, "gradcam@-1");

    // Kill a run inside each stage in turn, each run resuming the one killed before it.
    let resumed = tmp.path().join("resumed");
    for (i, stage) in STAGES.iter().enumerate() {
        let mut child = start_inside(&config, &resumed, stage);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            !resumed.join(stage).exists(),
            "the kill landed inside {stage}: it must not look finished"
        );
        for earlier in &STAGES[..i] {
            assert!(
                resumed.join(earlier).join("stage.json").exists(),
                "{earlier} finished before the kill inside {stage}"
            );
        }
        assert!(
            resumed.join(".lock").exists(),
            "a killed run leaves its lock behind"
        );
    }

    let again = run(&config, &resumed, &[]);
    let log = stderr(&again);
    assert!(again.status.success(), "{log}");
    assert!(
        log.contains("is no longer running; taking the lock over"),
        "the killed run's lock is stale: {log}"
    );
    assert_eq!(
        finished_stages(&log, &resumed),
        stage_set(&["seed-3/oracle"]),
        "only the stage killed last is redone: {log}"
    );
    assert_eq!(
        partials(&resumed),
        Vec::<std::path::PathBuf>::new(),
        "the killed runs' build folders are removed"
    );
    assert!(!resumed.join(".lock").exists());
    assert_eq!(
        std::fs::read_to_string(straight.join("results.csv")).unwrap(),
        std::fs::read_to_string(resumed.join("results.csv")).unwrap(),
        "a resumed run ends with the same results as an uninterrupted one"
    );

    // A third run finds every stage finished and changes nothing.
    let third = run(&config, &resumed, &[]);
    assert!(third.status.success());
    let log = stderr(&third);
    assert!(
        !log.contains("stage finished"),
        "nothing is recomputed: {log}"
    );

    // `texplain explain` reads the run directory.
    let explained = texplain(&["explain", straight.to_str().unwrap(), "--split", "test"]);
    assert!(explained.status.success(), "{}", stderr(&explained));
    let text = String::from_utf8_lossy(&explained.stdout);
    assert!(
        text.contains("test / landbird") && text.contains("test / waterbird"),
        "{text}"
    );
    assert!(!text.contains("train /"), "--split filters: {text}");
}

/// The masks stage scores its maps against the true bird masks beside a random map and the oracle (overall, on
/// place words, per target word), runs its sanity checks, and the table shows both.
fn assert_masks_are_scored(run: &Path, relevance: &str) {
    let read = |file: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(run.join("seed-3/masks").join(file)).unwrap())
            .unwrap()
    };
    let summary = read("summary.json");
    let entries = summary.as_array().unwrap();
    assert!(!entries.is_empty(), "{summary}");
    for entry in entries {
        assert_eq!(entry["relevance"], relevance, "{entry}");
        for report in [&entry["quality"], &entry["place_words"]] {
            for map in ["map", "random", "oracle"] {
                let q = &report[map];
                assert!(
                    q["n_images"].is_u64() && q.get("auroc").is_some(),
                    "{entry}"
                );
            }
            assert!(report["by_label"].is_object(), "{entry}");
        }
        let oracle = &entry["quality"]["oracle"];
        if oracle["n_scored"].as_u64().unwrap() > 0 {
            assert_eq!(oracle["auroc"].as_f64(), Some(1.0), "{entry}");
            assert_eq!(oracle["masked_on_bird"].as_f64(), Some(0.0), "{entry}");
            let auroc = entry["quality"]["map"]["auroc"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&auroc), "{entry}");
        }
    }
    let sanity = read("sanity.json");
    assert_eq!(sanity["relevance"], relevance, "{sanity}");
    assert!(
        sanity.get("randomised_spearman").is_some() && sanity["sentence_share"].is_array(),
        "{sanity}"
    );
    let table = std::fs::read_to_string(run.join("table.md")).unwrap();
    assert!(
        table.contains(&format!("Masks: relevance `{relevance}`"))
            && table.contains("| texplain | relevance |")
            && table.contains("| texplain | oracle |")
            && table.contains("Sanity: rank correlation"),
        "{table}"
    );
}

#[test]
fn other_relevance_methods_run_and_masks_eval_scores_them_on_val() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), &tmp.path().join("data"));
    let out = tmp.path().join("run");
    let done = run(
        &config,
        &out,
        &[
            "--set",
            "mitigation.methods=[erm,texplain]",
            "--set",
            "mitigation.masks={method: rollout, contrastive: true, threshold: {rule: top_k, percent: 50}, overlays: 1, sentences_per_image: 2}",
        ],
    );
    assert!(done.status.success(), "{}", stderr(&done));
    assert_masks_are_scored(&out, "contrastive(rollout)");

    let eval = texplain(&[
        "masks-eval",
        out.to_str().unwrap(),
        "--max-images",
        "40",
        "--relevance",
        "{method: gradcam, layer: 1}",
        "--relevance",
        "{method: occlusion, occlusion: {window: 2, stride: 2}, contrastive: true}",
        "--threshold",
        "{rule: otsu}",
    ]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    let text = String::from_utf8_lossy(&eval.stdout);
    for row in [
        "| gradcam@1 |",
        "| contrastive(occlusion(2/2)) |",
        "| random map |",
        "| oracle |",
        "{\"rule\":\"otsu\"}",
    ] {
        assert!(text.contains(row), "{row}: {text}");
    }
    assert!(text.contains("seed 3, val split: 40 images"), "{text}");
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("seed-3/masks-eval-val.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["candidates"].as_array().unwrap().len(), 2, "{json}");
    assert!(out.join("seed-3/masks-eval-val.md").exists());

    // The per-slot contribution with the attribute word score and the object complement, in masks-eval and in the
    // masks stage, with the word score's fallbacks counted.
    let eval = texplain(&[
        "masks-eval",
        out.to_str().unwrap(),
        "--max-images",
        "24",
        "--relevance",
        "{method: contribution, score: attribute}",
        "--relevance",
        "{method: object_complement}",
        "--threshold",
        "{rule: top_k, percent: 50}",
    ]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    let text = String::from_utf8_lossy(&eval.stdout);
    for row in [
        "| attribute(contribution) |",
        "| object_complement |",
        "`attribute(contribution)` attribute score, ",
    ] {
        assert!(text.contains(row), "{row}: {text}");
    }
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("seed-3/masks-eval-val.json")).unwrap(),
    )
    .unwrap();
    let c = &json["candidates"][0];
    assert_eq!(c["word_score"]["kind"], "attribute", "{json}");
    assert!(
        c["cls_share"]
            .as_f64()
            .is_some_and(|s| (0.0..=1.0).contains(&s)),
        "{json}"
    );
    assert!(
        c["word_score"]["n_fallback"].as_u64() <= c["word_score"]["n_images"].as_u64(),
        "{json}"
    );
    let done = run(
        &config,
        &out,
        &[
            "--set",
            "mitigation.methods=[erm,texplain]",
            "--set",
            "mitigation.masks={method: contribution, score: attribute, threshold: {rule: top_k, percent: 50}, overlays: 1, sentences_per_image: 2, mask_value: donor_background}",
        ],
    );
    assert!(done.status.success(), "{}", stderr(&done));
    assert_masks_are_scored(&out, "attribute(contribution)");
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("seed-3/masks/summary.json")).unwrap(),
    )
    .unwrap();
    let first = &summary[0];
    assert_eq!(first["word_score"]["kind"], "attribute", "{summary}");
    assert!(first["cls_share"].as_f64().is_some(), "{summary}");

    // On a run whose masks take a donor fill, occlusion (one colour per window) fills with black and says so; the
    // every-slot value-path map runs end to end.
    let eval = texplain(&[
        "masks-eval",
        out.to_str().unwrap(),
        "--max-images",
        "8",
        "--relevance",
        "{method: occlusion, occlusion: {window: 2, stride: 2}}",
        "--relevance",
        "{method: value_paths, readout: tokens, score: attribute}",
        "--threshold",
        "{rule: top_k, percent: 50}",
    ]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    let text = String::from_utf8_lossy(&eval.stdout);
    for row in [
        "| occlusion(2/2) |",
        "| attribute(value_paths(tokens)) |",
        "Occlusion fills its windows with `zero`",
    ] {
        assert!(text.contains(row), "{row}: {text}");
    }

    let bad = texplain(&[
        "masks-eval",
        out.to_str().unwrap(),
        "--relevance",
        "{method: lrp}",
    ]);
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("--relevance \"{method: lrp}\""),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn every_method_runs_writes_its_artifacts_and_is_skipped_on_rerun() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config_all_methods(tmp.path(), &tmp.path().join("data"));
    let out = tmp.path().join("all");
    let done = run(&config, &out, &[]);
    assert!(done.status.success(), "{}", stderr(&done));
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

    // The other stages are keyed as without the baselines (their config section is no input of theirs); the
    // baselines' keys are pinned beside them.
    let pinned: Vec<_> = PINNED_STAGE_SETTINGS
        .iter()
        .chain(PINNED_BASELINE_STAGE_SETTINGS)
        .copied()
        .collect();
    assert_stage_keys_are_pinned(&out, &pinned, SHARED_STAGES);

    // A rerun finds every stage finished.
    let again = run(&config, &out, &[]);
    assert!(again.status.success());
    let log = stderr(&again);
    assert!(
        !log.contains("stage finished"),
        "nothing is recomputed: {log}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("results.csv")).unwrap(),
        all
    );

    // Killed inside each baseline stage in turn (the stages before them copied from the uninterrupted run),
    // a run redoes only the stage killed last and ends with the same results.
    let resumed = tmp.path().join("resumed");
    let baselines = BASELINE_STAGES.map(|s| format!("seed-3/{s}"));
    copy_dir(&out, &resumed);
    for stage in &baselines {
        std::fs::remove_dir_all(resumed.join(stage)).unwrap();
    }
    std::fs::remove_file(resumed.join("results.csv")).unwrap();
    for (i, stage) in baselines.iter().enumerate() {
        let mut child = start_inside(&config, &resumed, stage);
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            !resumed.join(stage).exists(),
            "the kill landed inside {stage}: it must not look finished"
        );
        for earlier in &baselines[..i] {
            assert!(
                resumed.join(earlier).join("stage.json").exists(),
                "{earlier} finished before the kill inside {stage}"
            );
        }
    }
    let again = run(&config, &resumed, &[]);
    let log = stderr(&again);
    assert!(again.status.success(), "{log}");
    assert_eq!(
        finished_stages(&log, &resumed),
        stage_set(&[baselines[baselines.len() - 1].as_str()]),
        "only the stage killed last is redone: {log}"
    );
    assert_eq!(
        std::fs::read_to_string(resumed.join("results.csv")).unwrap(),
        all,
        "a resumed run ends with the same results as an uninterrupted one"
    );

    // JTT keeps the trainings of its grid that a killed run finished: killed once its first final model is in
    // place, a run reuses that model and the identification model and trains only the other final model.
    std::fs::remove_dir_all(resumed.join("seed-3/jtt")).unwrap();
    let steps = resumed.join("seed-3/jtt.steps");
    let mut child = start_paused(&config, &resumed, "jtt/final-T1-up2", |_| {
        steps.join("final-T1-up2")
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!resumed.join("seed-3/jtt").exists());
    let again = run(&config, &resumed, &[]);
    let log = stderr(&again);
    assert!(again.status.success(), "{log}");
    for step in ["id-T1", "final-T1-up2"] {
        assert!(
            log.contains(&format!("step={}/{step}", steps.display()))
                && log.contains("step finished earlier with the same inputs; reused"),
            "{step} is reused: {log}"
        );
    }
    assert!(!steps.exists(), "the steps go once the stage is in place");
    assert_eq!(
        std::fs::read_to_string(resumed.join("results.csv")).unwrap(),
        all,
        "JTT resumed from its steps gives the uninterrupted run's results"
    );
    assert_eq!(
        std::fs::read_to_string(resumed.join("seed-3/jtt/grid.csv")).unwrap(),
        grid
    );
}

/// The baseline stages in the order a run reaches them.
const BASELINE_STAGES: [&str; 4] = ["masktune", "jtt", "dfr", "groupdro"];

#[test]
fn an_upstream_stage_redone_with_other_bytes_redoes_what_read_it() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), &tmp.path().join("data"));
    let out = tmp.path().join("run");
    let first = run(&config, &out, &[]);
    assert!(first.status.success(), "{}", stderr(&first));

    // ERM's checkpoint is lost (as on a fresh clone: checkpoints are not committed) and ERM redone: here it writes
    // the same bytes, so nothing that read it is redone.
    std::fs::remove_file(out.join("seed-3/erm/model.safetensors")).unwrap();
    let same = run(&config, &out, &[]);
    let log = stderr(&same);
    assert!(same.status.success(), "{log}");
    assert!(
        log.contains("model.safetensors is missing; redoing it"),
        "{log}"
    );
    assert_eq!(
        finished_stages(&log, &out),
        stage_set(&["seed-3/erm"]),
        "identical bytes keep every downstream stage: {log}"
    );

    // On another machine the redone ERM writes other bytes. Simulated: the ERM folder of a run with another
    // learning rate, recorded under this run's ERM key (what a redo with the same inputs would record).
    let other = tmp.path().join("other");
    let erm_only = run(
        &config,
        &other,
        &[
            "--set",
            "classifier.train.lr=3.0e-3",
            "--set",
            "mitigation.methods=[erm]",
        ],
    );
    assert!(erm_only.status.success(), "{}", stderr(&erm_only));
    let erm = out.join("seed-3/erm");
    let key = stage_record(&erm)["key"].clone();
    std::fs::remove_dir_all(&erm).unwrap();
    copy_dir(&other.join("seed-3/erm"), &erm);
    let mut swapped = stage_record(&erm);
    assert_ne!(
        swapped["content"],
        stage_record(&out.join("seed-3/translator"))["reads"]["erm"]
    );
    swapped["key"] = key;
    std::fs::write(erm.join("stage.json"), swapped.to_string()).unwrap();

    let redone = run(&config, &out, &[]);
    let log = stderr(&redone);
    assert!(redone.status.success(), "{log}");
    assert_eq!(
        finished_stages(&log, &out),
        stage_set(&STAGES[2..]),
        "every stage that read ERM, directly or not, is redone; ERM and the LM are not: {log}"
    );
    let rows = |dir: &Path, method: &str| -> Vec<String> {
        std::fs::read_to_string(dir.join("results.csv"))
            .unwrap()
            .lines()
            .filter(|l| l.split(',').nth(1) == Some(method))
            .map(String::from)
            .collect()
    };
    assert_eq!(
        rows(&out, "erm"),
        rows(&other, "erm"),
        "the table reports the ERM that the fine-tuning started from"
    );
    assert_eq!(
        stage_record(&out.join("seed-3/translator"))["reads"]["erm"],
        stage_record(&erm)["content"]
    );
}

#[test]
fn a_bf16_run_finishes_and_redoes_only_the_stages_whose_precision_changed() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), &tmp.path().join("data"));
    let out = tmp.path().join("run");
    let methods = ["--set", "mitigation.methods=[erm, texplain]"];
    let first = run(&config, &out, &methods);
    assert!(first.status.success(), "{}", stderr(&first));

    // ERM, the translator and the explanation in bf16; the LM stays f32.
    let bf16 = [
        "--set",
        "classifier.train.precision=bf16",
        "--set",
        "translator.train.precision=bf16",
        "--set",
        "explain.precision=bf16",
    ];
    let args: Vec<&str> = methods.iter().chain(&bf16).copied().collect();
    let again = run(&config, &out, &args);
    let log = stderr(&again);
    assert!(again.status.success(), "{log}");
    let redone = finished_stages(&log, &out);
    assert!(!redone.contains("lm"), "the f32 LM is kept: {redone:?}");
    for stage in [
        "seed-3/erm",
        "seed-3/translator",
        "seed-3/explain",
        "seed-3/texplain",
    ] {
        assert!(
            redone.contains(stage),
            "{stage} is redone in bf16: {redone:?}"
        );
    }
    let resolved = std::fs::read_to_string(out.join("config.resolved.yaml")).unwrap();
    assert_eq!(resolved.matches("precision: bf16").count(), 3, "{resolved}");
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert!(table.contains("| texplain |"), "{table}");
}

#[test]
fn a_second_run_into_the_same_directory_fails_at_once_naming_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), &tmp.path().join("data"));
    let out = tmp.path().join("run");
    let mut first = start_inside(&config, &out, "seed-3/erm");
    let holder = first.id();
    let lock = out.join(".lock");
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap().trim(),
        holder.to_string()
    );
    let run_json = std::fs::read_to_string(out.join("run.json")).unwrap();

    let second = run(&config, &out, &[]);
    let err = stderr(&second);
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(!second.status.success());
    assert!(
        err.contains(&format!("pid {holder}")) && err.contains(&lock.display().to_string()),
        "the error names the lock and its holder: {err}"
    );
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap().trim(),
        holder.to_string(),
        "the refused run leaves the holder's lock alone"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("run.json")).unwrap(),
        run_json,
        "the refused run writes nothing"
    );
}

#[test]
fn a_diverging_training_fails_naming_stage_epoch_and_step_and_run_json_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), &tmp.path().join("data"));
    let out = tmp.path().join("run");
    // 1e6 for 1e-6: Adam's steps are about lr whatever the gradient's norm, so clipping does not save it (lr 1000
    // gives a finite loss of ~5e6 here, no divergence the loop could see).
    let failed = run(&config, &out, &["--set", "classifier.train.lr=1e6"]);
    let err = stderr(&failed);
    assert!(!failed.status.success());
    let stage = out.join("seed-3/erm");
    assert!(
        err.contains(&format!("stage {}", stage.display()))
            && err.contains("at epoch 1, step")
            && err.contains("training diverged"),
        "{err}"
    );
    assert!(!stage.exists(), "a diverged stage must not look finished");
    let left = partials(&out);
    assert!(
        left.len() == 1 && left[0].to_string_lossy().starts_with("seed-3/erm."),
        "the failed stage's build folder is left for the report: {left:?}"
    );
    assert!(!out.join("results.csv").exists() && !out.join("table.md").exists());
    assert!(
        !out.join(".lock").exists(),
        "a failed run lets go of its lock"
    );
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(info["status"], "failed", "{info}");
    let recorded = info["error"].as_str().unwrap();
    assert!(
        recorded.contains("seed-3/erm") && recorded.contains("training diverged"),
        "{info}"
    );
    assert!(info["finished_unix"].as_u64().is_some(), "{info}");
}

/// `git -C repo ARGS...`, which must succeed; its stdout.
fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["-c", "user.name=test", "-c", "user.email=test@example.org"])
        .args(args)
        .output()
        .expect("git runs (the demo test checks `git status` of a checkout)");
    assert!(out.status.success(), "git {args:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_demo_run_leaves_the_checkout_clean_and_checks_its_reference() {
    // A checkout with this repository's .gitignore and a config whose default run directory is results/tiny.
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("checkout");
    std::fs::create_dir_all(repo.join("configs")).unwrap();
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(".gitignore"),
        repo.join(".gitignore"),
    )
    .unwrap();
    let config = tiny_config(&repo.join("configs"), &tmp.path().join("data"));
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "checkout"]);
    let texplain = |args: &[&str]| {
        let out = Command::new(BIN)
            .current_dir(&repo)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let config = config.strip_prefix(&repo).unwrap().to_str().unwrap();
    // A first run's table becomes the committed reference...
    texplain(&["run", config]);
    let reference = repo.join("results/reference/tiny");
    std::fs::create_dir_all(&reference).unwrap();
    for file in ["results.csv", "table.md"] {
        std::fs::copy(repo.join("results/tiny").join(file), reference.join(file)).unwrap();
    }
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "reference"]);
    let committed = git(&repo, &["ls-files", "results"]);
    assert_eq!(
        committed.lines().collect::<Vec<_>>(),
        [
            "results/reference/tiny/results.csv",
            "results/reference/tiny/table.md"
        ],
        "only the reference is committed; the run directory is ignored"
    );

    // ...and the demo (what `make demo` runs: the run, then the reference check) leaves the checkout clean.
    texplain(&["run", config]);
    let verdict = texplain(&["check-reference", "results/tiny"]);
    assert!(
        verdict.contains("results/reference/tiny/results.csv")
            && verdict.contains("Verdict: within seed noise"),
        "{verdict}"
    );
    assert_eq!(
        git(&repo, &["status", "--porcelain"]),
        "",
        "the demo leaves no change behind"
    );
    assert!(repo.join("results/tiny/results.csv").exists());
}

#[test]
fn the_reference_check_names_what_moved_and_fails_only_when_strict() {
    let tmp = tempfile::tempdir().unwrap();
    let header = "seed,method,split,acc_g0,acc_g1,worst_group,avg_train_weighted,avg_plain,n\n";
    let table = |rows: &[(u64, &str, f64, f64)]| -> String {
        let mut text = header.to_string();
        for (seed, method, worst, avg) in rows {
            text.push_str(&format!(
                "{seed},{method},test,{avg},{worst},{worst},{avg},{avg},100\n"
            ));
        }
        text
    };
    let reference = tmp.path().join("reference.csv");
    std::fs::write(
        &reference,
        table(&[
            (0, "erm", 0.70, 0.95),
            (1, "erm", 0.72, 0.94),
            (2, "erm", 0.71, 0.96),
            (0, "texplain", 0.80, 0.95),
            (1, "texplain", 0.82, 0.95),
            (2, "texplain", 0.81, 0.95),
        ]),
    )
    .unwrap();
    // TExplain's average dropped 10 points; everything else moved by less than a seed's spread.
    let run = tmp.path().join("run.csv");
    std::fs::write(
        &run,
        table(&[
            (0, "erm", 0.71, 0.95),
            (1, "erm", 0.71, 0.95),
            (2, "erm", 0.72, 0.95),
            (0, "texplain", 0.81, 0.85),
            (1, "texplain", 0.80, 0.85),
            (2, "texplain", 0.82, 0.85),
        ]),
    )
    .unwrap();
    let check = |strict: bool| {
        let (run, reference) = (run.to_str().unwrap(), reference.to_str().unwrap());
        let strict: &[&str] = if strict { &["--strict"] } else { &[] };
        texplain(&[&["check-reference", run, reference][..], strict].concat())
    };
    let lenient = check(false);
    assert!(lenient.status.success(), "{}", stderr(&lenient));
    let text = String::from_utf8_lossy(&lenient.stdout);
    assert!(
        text.contains("Verdict: 1 of 4 moved beyond seed noise: texplain average -10.0 pp"),
        "{text}"
    );
    assert!(
        text.contains("| texplain | average |") && text.contains("| moved |"),
        "{text}"
    );
    let strict = check(true);
    assert!(
        !strict.status.success(),
        "--strict fails when something moved"
    );
    assert!(stderr(&strict).contains("--strict"), "{}", stderr(&strict));
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
    let result = run(&config, &out, &[]);
    assert!(!result.status.success());
    let err = stderr(&result);
    assert!(
        err.contains("bad.yaml") && err.contains("data.root") && err.contains("/nonexistent/wb"),
        "{err}"
    );
    assert!(!out.exists(), "no run directory for a rejected config");
}

/// The tiny config with the arms that separate selection from masks beside Random, TExplain and the oracle.
fn tiny_config_arms(dir: &Path, data: &Path) -> PathBuf {
    let text = common::tiny_pipeline_config_text(data).replace(
        "  methods: [erm, random, texplain, oracle]\n",
        "  methods: [erm, random, texplain, oracle, oracle_random, frame, object_complement, texplain_lent, \
         random_lent]\n",
    );
    assert!(text.contains("frame"), "the methods line moved: {text}");
    let path = dir.join("arms.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_arms_that_separate_selection_from_masks_run_and_report_paired_differences() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config_arms(tmp.path(), &tmp.path().join("data"));
    let out = tmp.path().join("arms");
    let done = run(&config, &out, &[]);
    assert!(done.status.success(), "{}", stderr(&done));
    let arms = [
        "oracle_random",
        "frame",
        "object_complement",
        "texplain_lent",
        "random_lent",
    ];
    let all = std::fs::read_to_string(out.join("results.csv")).unwrap();
    for method in arms {
        for split in ["val", "test"] {
            let prefix = format!("3,{method},{split},");
            assert!(all.lines().any(|l| l.starts_with(&prefix)), "{all}");
        }
    }
    let json = |path: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(path)).unwrap()).unwrap()
    };
    let masks = json("seed-3/masks/summary.json");
    let relevance = |method: &str| {
        masks
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["method"] == method)
            .unwrap_or_else(|| panic!("{method}: {masks}"))
            .clone()
    };
    // oracle_random: Random's draw, the whole true background masked and nothing of the bird.
    let oracle_random = json("seed-3/oracle_random/masks.json");
    assert_eq!(oracle_random["relevance"], "true_background");
    assert_eq!(
        oracle_random["n_selected"],
        relevance("random")["n_selected"],
        "{oracle_random}"
    );
    assert_eq!(oracle_random["background_iou"].as_f64(), Some(1.0));
    assert_eq!(oracle_random["masked_on_bird"].as_f64(), Some(0.0));
    // frame: TExplain's selection at TExplain's coverage, sample by sample.
    let frame = json("seed-3/frame/masks.json");
    let texplain = relevance("texplain");
    assert_eq!(frame["relevance"], "centre_prior");
    for field in ["n_selected", "n_masked"] {
        assert_eq!(frame[field], texplain[field], "{field}: {frame} {texplain}");
    }
    let coverage = |e: &serde_json::Value| e["mean_masked_fraction"].as_f64().unwrap();
    assert!(
        (coverage(&frame) - coverage(&texplain)).abs() < 1e-6,
        "{frame} {texplain}"
    );
    let complement = json("seed-3/object_complement/masks.json");
    assert_eq!(complement["relevance"], "object_complement");
    assert_eq!(complement["n_selected"], texplain["n_selected"]);
    assert!((0.0..=1.0).contains(&coverage(&complement)), "{complement}");
    assert!(
        !out.join("seed-3/texplain/masks.json").exists(),
        "relevance masks are summarised in the masks stage"
    );
    // The lent arms: TExplain's and Random's selections, their masks lent from the samples that target the run's
    // spurious word (named in the masks' name), which the flags decide.
    for (lent, own) in [("texplain_lent", "texplain"), ("random_lent", "random")] {
        let summary = json(&format!("seed-3/{lent}/masks.json"));
        let name = summary["relevance"].as_str().unwrap();
        assert!(
            name.starts_with("relevance_lent(") && name.ends_with(')'),
            "{summary}"
        );
        assert_eq!(summary["n_selected"], relevance(own)["n_selected"]);
    }

    // table.md: the arms after the oracle, then the paired differences of every pair that ran (one seed: no
    // interval).
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    let order: Vec<usize> = [
        "| erm |",
        "| random |",
        "| texplain |",
        "| oracle |",
        "| oracle_random |",
        "| frame |",
        "| object_complement |",
        "| texplain_lent |",
        "| random_lent |",
        "Paired differences",
        "| texplain − random | 1 |",
        "| texplain − frame | 1 |",
        "| oracle − oracle_random | 1 |",
        "| texplain − object_complement | 1 |",
        "| texplain_lent − texplain | 1 |",
        "| texplain_lent − random_lent | 1 |",
    ]
    .iter()
    .map(|m| {
        table
            .find(m)
            .unwrap_or_else(|| panic!("{m} missing: {table}"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{table}");

    // The stages of the tiny config keep their keys; the arms' are pinned beside them.
    let pinned: Vec<_> = PINNED_STAGE_SETTINGS
        .iter()
        .chain(PINNED_ARM_STAGE_SETTINGS)
        .copied()
        .collect();
    assert_stage_keys_are_pinned(&out, &pinned, SHARED_STAGES);

    // The donor fill: the same run with `mask_value: donor` redoes the masked arms (their keys carry the fill) and
    // the oracle fine-tunes on its true background filled with the donors' pixels. With the off-bird diagnostic,
    // TExplain's masks keep off the true bird and are summarised in its own folder.
    let key = |stage: &str| json(&format!("seed-3/{stage}/stage.json"))["key"].clone();
    let (erm, oracle) = (key("erm"), key("oracle"));
    let donor = run(
        &config,
        &out,
        &[
            "--set",
            "mitigation.masks.mask_value=donor",
            "--set",
            "mitigation.masks.off_true_bird=true",
            "--set",
            "mitigation.methods=[erm, texplain, oracle]",
        ],
    );
    assert!(donor.status.success(), "{}", stderr(&donor));
    assert_eq!(key("erm"), erm, "ERM reads no masks");
    assert_ne!(
        key("oracle"),
        oracle,
        "the fill is part of a masked arm's key"
    );
    let results = std::fs::read_to_string(out.join("seed-3/oracle/results.csv")).unwrap();
    assert_eq!(results.lines().count(), 3, "{results}"); // header, val, test
    let off_bird = json("seed-3/texplain/masks.json");
    assert_eq!(
        off_bird["relevance"], "relevance_off_true_bird",
        "{off_bird}"
    );
    assert_eq!(off_bird["masked_on_bird"].as_f64(), Some(0.0), "{off_bird}");
}

/// Every stage's settings (the `settings` hash of its `stage.json`: config sections, seed, data fingerprint) and the
/// stages whose content it reads, for the tiny config, pinned so that moving code around cannot silently invalidate
/// existing run directories. A deliberate change of what a stage is keyed on updates this list and says so in its
/// commit. The full key adds the content digests of the stages read, which depend on the machine's arithmetic; the
/// check below ties each to the upstream stage's recorded content instead.
const PINNED_STAGE_SETTINGS: &[PinnedStage] = &[
    (
        "lm",
        "0a53ed5b9d89c3d56eb9a3661e548aaf5883510ec0242ad2c3f926c3c3c04f6f",
        &[],
    ),
    (
        "seed-3/clouds",
        "835f53b6c9c5ed2d485082816136e6e9cecc9640c13dc3ce076faad958805101",
        &["explain"],
    ),
    (
        "seed-3/erm",
        "d5345f54b14acbef3f6f3664dfab95c563917ce96d8e08ef2dd2f70869998bae",
        &[],
    ),
    (
        "seed-3/explain",
        "d04e05a45773ce85b89b5be1206ce876c8d7adf9c11ce1d96d88dee1b3cb64b4",
        &["erm", "lm", "translator"],
    ),
    (
        "seed-3/flags",
        "6cba31fa0c3bd45befa437bdf4a8bffa27386799a794af7059a1f7230d60676d",
        &["erm", "explain"],
    ),
    (
        "seed-3/masks",
        "691eb90508d14fef9bfbe8b7a1f2fa4b612f128ed0f1ebc462c93762b5b69bef",
        &["erm", "explain", "flags", "lm", "translator"],
    ),
    (
        "seed-3/oracle",
        "8bb12fffeff3258290119c97ce1a249dc734f2fa0814d1b287f0202ee239794e",
        &["erm", "flags", "masks"],
    ),
    (
        "seed-3/random",
        "0d4080024bdb4085f9fc458b5d8bf5fba8ac41aa7f073b5b6c8f30630505bb9c",
        &["erm", "flags", "masks"],
    ),
    (
        "seed-3/regime",
        "f6e79d2f27422e994a9fdf20fae74e9c492a05a257e0c995eaa3df33fafaea93",
        &["erm"],
    ),
    (
        "seed-3/texplain",
        "69cfc84e86a64a03a76b0ab907c14209840b1204264e41474e002e5b96545a7b",
        &["erm", "flags", "masks"],
    ),
    (
        "seed-3/translator",
        "ff77da0afe01eaddc22b83ed94c2bd1e09f20c98ff42345a84ab1f5a239ba2a9",
        &["erm", "lm"],
    ),
];

/// The baselines' stages in the all-methods config ([`tiny_config_all_methods`]), pinned as above. MaskTune and DFR
/// read ERM's checkpoint; JTT and group DRO read no stage of this config (they train anew from ERM's starting point
/// and key on what it comes from, and would read `pretrain` in a config with one).
const PINNED_BASELINE_STAGE_SETTINGS: &[PinnedStage] = &[
    (
        "seed-3/dfr",
        "c399dcbf778848a42ea14c224918e28d799c96913f83c5c9291d009d8caec1f4",
        &["erm"],
    ),
    (
        "seed-3/groupdro",
        "4b8a1fbeea5e4ee7e03bafc49f88c696e2425939cd9c0ca0dbe0ebe6a2d28b49",
        &[],
    ),
    (
        "seed-3/jtt",
        "eb1db097b437ba1eeca94944ab793dc5d435562ce049701443e6e1d843c62da3",
        &[],
    ),
    (
        "seed-3/masktune",
        "c37b2143a994472c2346574b3b1cbbd3d26ff6089f5affb57fdabc958b7507bb",
        &["erm"],
    ),
];

/// The arms' stages in the arms config ([`tiny_config_arms`]), pinned as above: each reads what the oracle reads.
const PINNED_ARM_STAGE_SETTINGS: &[PinnedStage] = &[
    (
        "seed-3/frame",
        "609763f9343d28043bc31b87bb677bb8ad6291a6190cd92f7f754819df63880c",
        &["erm", "flags", "masks"],
    ),
    (
        "seed-3/object_complement",
        "8796e9dc0793393fc164313d5c54bd4238539d83906a45edbffb5b66ebc04845",
        &["erm", "flags", "masks"],
    ),
    (
        "seed-3/oracle_random",
        "c3a90a06fa2c42131a9fd9c66dee5a5b36900e357e3294eb52f2891d677fc8e5",
        &["erm", "flags", "masks"],
    ),
    (
        "seed-3/random_lent",
        "4d2a40367d04fcdfb4b9f84f888852d618dd4c8fc3915305fa81c1c176cb68e4",
        &["erm", "flags", "masks"],
    ),
    (
        "seed-3/texplain_lent",
        "125a262c77087c4f178aaf6071b3ac5cd3d62e15f5c53960302ca239e5452eab",
        &["erm", "flags", "masks"],
    ),
];
