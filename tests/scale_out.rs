//! Scale-out on a tiny synthetic config: `texplain plan` is deterministic on every shipped config; running the
//! plan's units one by one (`texplain run --wave K --index I`) and through the local executor (`texplain run-plan
//! --jobs 2`) gives the same stages (keys and content digests) and the same `table.md` as a serial `texplain run`;
//! a unit whose upstream has not finished fails naming it and writes nothing; a unit killed mid-way finishes on
//! rerun; two processes on one unit build it once; no build folder, temporary file or lease is left behind.
mod common;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use texplain::data::Split;
use texplain::pipeline::explain::{
    chunk_seed, chunks, sample_in_chunks, shard_chunks, CHUNK_IMAGES,
};

use common::{files, finished_stages, stage_records, stderr, texplain, BIN};

/// The tiny end-to-end config of `tests/pipeline.rs` with a baseline (DFR) in place of the oracle.
fn tiny_config(dir: &Path, data: &Path) -> PathBuf {
    let finetune = "  finetune: {lr: 1.0e-4, epochs: 1, batch_size: 32}\n";
    let text = common::tiny_pipeline_config_text(data)
        .replace(
            "methods: [erm, random, texplain, oracle]",
            "methods: [erm, random, texplain, dfr]",
        )
        .replace(
            finetune,
            &format!(
                "{finetune}  baselines:\n    dfr: {{c_grid: [1.0, 0.1], final_retrains: 3}}\n"
            ),
        );
    assert!(
        text.contains("dfr: {c_grid"),
        "the tiny config's finetune line moved"
    );
    let path = dir.join("tiny.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The units of the tiny config, in plan order.
const TINY_UNITS: [&str; 13] = [
    "data",
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
    "seed-3/dfr",
    "report",
];

fn texplain_ok(args: &[&str]) -> String {
    let out = texplain(args);
    assert!(out.status.success(), "texplain {args:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Each stage's (key, content digest), by folder.
fn digests(run: &Path) -> Vec<(String, String, String)> {
    stage_records(run)
        .into_iter()
        .map(|(stage, r)| {
            (
                stage,
                r["key"].as_str().unwrap().to_string(),
                r["content"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn plan_json(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("plan/plan.json")).unwrap()).unwrap()
}

#[test]
fn the_plan_of_every_shipped_config_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&configs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 5, "{names:?}");
    for config in &names {
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        texplain_ok(&["plan", s(config), "--out", s(&a)]);
        texplain_ok(&["plan", s(config), "--out", s(&b)]);
        let plan_a = files(&a.join("plan"));
        assert!(
            plan_a.iter().any(|f| f.ends_with("plan.json")),
            "{plan_a:?}"
        );
        assert_eq!(plan_a, files(&b.join("plan")), "{}", config.display());
        for f in &plan_a {
            assert_eq!(
                std::fs::read(a.join("plan").join(f)).unwrap(),
                std::fs::read(b.join("plan").join(f)).unwrap(),
                "{}: {}",
                config.display(),
                f.display()
            );
        }
        std::fs::remove_dir_all(&a).unwrap();
        std::fs::remove_dir_all(&b).unwrap();
    }

    // The tiny config's units, waves and needs.
    let config = tiny_config(tmp.path(), &tmp.path().join("data"));
    let run = tmp.path().join("tiny");
    let printed = texplain_ok(&["plan", s(&config), "--out", s(&run)]);
    let plan = plan_json(&run);
    let ids: Vec<&str> = plan["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, TINY_UNITS);
    let wave0 = std::fs::read_to_string(run.join("plan/wave-0.txt")).unwrap();
    assert_eq!(wave0, "data\n");
    let wave1 = std::fs::read_to_string(run.join("plan/wave-1.txt")).unwrap();
    assert_eq!(wave1, "lm\nseed-3/erm\n");
    let explain = &plan["units"][5];
    assert_eq!(
        explain["needs"],
        serde_json::json!(["data", "seed-3/erm", "seed-3/translator", "lm"])
    );
    assert_eq!(explain["gpu"], false, "device: cpu wants no accelerator");
    assert!(explain["memory_bytes"].as_u64().unwrap() > 0);
    assert!(printed.contains("13 unit(s) in 8 wave(s)"), "{printed}");
    assert!(!run.join("seed-3").exists(), "planning computes nothing");

    // One writer of the plan and config.resolved.yaml: beside a live unit run (a lease of another host), planning
    // the same config again changes nothing, and another plan is refused.
    std::fs::create_dir_all(run.join(".locks")).unwrap();
    std::fs::write(
        run.join(".locks/seed-3__erm.lock"),
        "1 other-node slurm:9_1\n",
    )
    .unwrap();
    let resolved = std::fs::read(run.join("config.resolved.yaml")).unwrap();
    texplain_ok(&["plan", s(&config), "--out", s(&run)]);
    let other = texplain(&["plan", s(&config), "--out", s(&run), "--seeds", "3,4"]);
    assert!(!other.status.success());
    assert!(
        stderr(&other).contains("unit seed-3/erm (pid 1 on other-node, job slurm:9_1)"),
        "{}",
        stderr(&other)
    );
    assert_eq!(
        std::fs::read(run.join("config.resolved.yaml")).unwrap(),
        resolved
    );
    assert_eq!(plan_json(&run), plan);
}

/// What a finished run must not hold: build folders, temporary files, unit leases.
fn leftovers(run: &Path) -> Vec<PathBuf> {
    let mut left: Vec<PathBuf> = written(run)
        .into_iter()
        .filter(|f| {
            let f = f.to_string_lossy();
            f.contains(".partial") || f.ends_with(".tmp") || f.starts_with(".locks/")
        })
        .collect();
    left.sort();
    left
}

/// The files under `run`, outside the plan.
fn written(run: &Path) -> Vec<PathBuf> {
    files(run)
        .into_iter()
        .filter(|f| !f.starts_with("plan"))
        .collect()
}

#[test]
fn units_in_wave_order_and_run_plan_match_the_serial_run() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), &tmp.path().join("data"));

    let serial = tmp.path().join("serial");
    let done = common::run(&config, &serial, &[]);
    assert!(done.status.success(), "{}", stderr(&done));
    let table = std::fs::read_to_string(serial.join("table.md")).unwrap();

    // Sharded explanations: 3 (uneven) and 4 shard units merged by the explain unit give the serial run's bytes.
    for of in [3usize, 4] {
        assert_shards_match_the_serial_run(
            &config,
            &serial,
            of,
            &tmp.path().join(format!("shards-{of}")),
        );
    }

    // A unit whose upstream has not finished fails naming it and writes nothing.
    let units = tmp.path().join("units");
    texplain_ok(&["plan", s(&config), "--out", s(&units)]);
    let before = files(&units);
    let early = common::run(&config, &units, &["--unit", "seed-3/explain"]);
    assert!(!early.status.success());
    let err = stderr(&early);
    assert!(
        err.contains("needs unit lm, which has not finished"),
        "{err}"
    );
    assert_eq!(files(&units), before, "a refused unit writes nothing");
    let unknown = common::run(&config, &units, &["--unit", "seed-3/nope"]);
    assert!(
        stderr(&unknown).contains("no such unit"),
        "{}",
        stderr(&unknown)
    );

    // Every unit in wave order, as a scheduler's array tasks would run them.
    let plan = plan_json(&units);
    for wave in 0..plan["waves"].as_u64().unwrap() {
        let list = std::fs::read_to_string(units.join(format!("plan/wave-{wave}.txt"))).unwrap();
        for index in 0..list.lines().count() {
            let (w, i) = (wave.to_string(), index.to_string());
            let out = common::run(&config, &units, &["--wave", &w, "--index", &i]);
            assert!(out.status.success(), "wave {w} index {i}: {}", stderr(&out));
        }
    }
    assert_eq!(digests(&units), digests(&serial));
    assert_eq!(
        std::fs::read_to_string(units.join("table.md")).unwrap(),
        table
    );
    assert!(units.join("run.json").exists() && units.join("report.html").exists());

    // Running a finished unit again finds it finished; the array index comes from the scheduler's variable.
    let again = Command::new(BIN)
        .args(["run", s(&config), "--out", s(&units), "--wave", "2"])
        .env("SLURM_ARRAY_TASK_ID", "0")
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(finished_stages(&stderr(&again), &units).is_empty());
    assert!(stderr(&again).contains("finished earlier with the same inputs; skipped"));

    // The local executor with four workers.
    let parallel = tmp.path().join("parallel");
    let out = Command::new(BIN)
        .args([
            "run-plan",
            s(&config),
            "--out",
            s(&parallel),
            "--jobs",
            "4",
            "--threads",
            "1",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(digests(&parallel), digests(&serial));
    assert_eq!(
        std::fs::read_to_string(parallel.join("table.md")).unwrap(),
        table
    );
    assert_eq!(
        leftovers(&parallel),
        Vec::<PathBuf>::new(),
        "no partial stage, temporary file or unit lease is left"
    );
}

/// Copies the serial run's upstream stages into `run`, plans it with `of` explain shards, runs the shard units and
/// the explain unit, and checks the explain stage's files are the serial run's, byte for byte.
fn assert_shards_match_the_serial_run(config: &Path, serial: &Path, of: usize, run: &Path) {
    common::copy_dir(serial, run);
    std::fs::remove_dir_all(run.join("seed-3/explain")).unwrap();
    let of_s = of.to_string();
    texplain_ok(&[
        "plan",
        s(config),
        "--out",
        s(run),
        "--explain-shards",
        &of_s,
    ]);
    let plan = plan_json(run);
    assert_eq!(plan["explain_shards"], of);
    let shards: Vec<String> = (0..of)
        .map(|i| format!("seed-3/explain#{i}of{of}"))
        .collect();
    let explain = plan["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == "seed-3/explain")
        .unwrap();
    let mut needs: Vec<String> = ["data", "seed-3/erm", "seed-3/translator", "lm"]
        .map(String::from)
        .to_vec();
    needs.extend(shards.iter().cloned());
    assert_eq!(explain["needs"], serde_json::json!(needs));
    // The merge refuses to start before its shards finished.
    let early = common::run(config, run, &["--unit", "seed-3/explain"]);
    assert!(!early.status.success());
    assert!(
        stderr(&early).contains(&format!("needs unit {}", shards[0])),
        "{}",
        stderr(&early)
    );
    for shard in &shards {
        let out = common::run(config, run, &["--unit", shard]);
        assert!(out.status.success(), "{shard}: {}", stderr(&out));
    }
    let merged = common::run(config, run, &["--unit", "seed-3/explain"]);
    assert!(merged.status.success(), "{}", stderr(&merged));
    let serial_explain = serial.join("seed-3/explain");
    let names = files(&serial_explain);
    assert!(
        names.iter().any(|f| f.ends_with("sentences-train.jsonl")),
        "{names:?}"
    );
    assert_eq!(files(&run.join("seed-3/explain")), names);
    for f in names.iter().filter(|f| !f.ends_with("stage.json")) {
        assert!(
            std::fs::read(run.join("seed-3/explain").join(f)).unwrap()
                == std::fs::read(serial_explain.join(f)).unwrap(),
            "{of} shards: {} differs from the serial run's",
            f.display()
        );
    }
    // The same key and content digest (the record differs only in its seconds).
    let (record, serial_record) = (
        common::stage_record(&run.join("seed-3/explain")),
        common::stage_record(&serial_explain),
    );
    assert_eq!(record["key"], serial_record["key"]);
    assert_eq!(record["content"], serial_record["content"]);
    // The shards cut on chunks of 64 images: with 3 shards every shard holds some images of the train split.
    let train = std::fs::read_to_string(serial_explain.join("sentences-train.jsonl")).unwrap();
    assert!(
        train.lines().count() > 2 * CHUNK_IMAGES,
        "the tiny train split spans 3 chunks"
    );
    if of == 3 {
        for shard in &shards {
            let text =
                std::fs::read_to_string(run.join(shard).join("sentences-train.jsonl")).unwrap();
            assert!(text.lines().count() >= 1, "{shard} is empty");
        }
    }
}

#[test]
fn a_unit_killed_midway_finishes_on_rerun_and_two_processes_on_one_unit_build_it_once() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), &tmp.path().join("data"));
    let run = tmp.path().join("run");
    texplain_ok(&["plan", s(&config), "--out", s(&run)]);
    let data = common::run(&config, &run, &["--unit", "data"]);
    assert!(data.status.success(), "{}", stderr(&data));

    // A worker killed inside the stage (its folder complete, not yet renamed into place) leaves its build folder
    // and its lease behind.
    let mut killed = Command::new(BIN)
        .args(["run", s(&config), "--out", s(&run), "--unit", "seed-3/erm"])
        .env("TEXPLAIN_TEST_PAUSE_IN", "erm")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = run.join("seed-3").join(format!(
        "erm.{}-{}.partial",
        ::texplain::util::host_name(),
        killed.id()
    ));
    let started = std::time::Instant::now();
    while !partial.join("stage.json").exists() {
        assert!(
            started.elapsed().as_secs() < 300,
            "the worker never reached {}",
            partial.display()
        );
        assert!(
            killed.try_wait().unwrap().is_none(),
            "the paused worker exited"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    killed.kill().unwrap();
    killed.wait().unwrap();
    assert!(run.join(".locks/seed-3__erm.lock").exists());
    assert!(!run.join("seed-3/erm").exists());
    let start = || {
        Command::new(BIN)
            .args(["run", s(&config), "--out", s(&run), "--unit", "seed-3/erm"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (start(), start());
    let logs: Vec<String> = [a, b]
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", stderr(&out));
            stderr(&out)
        })
        .collect();
    let built: Vec<usize> = logs
        .iter()
        .map(|log| finished_stages(log, &run).len())
        .collect();
    assert_eq!(built.iter().sum::<usize>(), 1, "{logs:?}");
    let other = &logs[built.iter().position(|&n| n == 0).unwrap()];
    assert!(other.contains("skipped"), "{other}");
    assert!(run.join("seed-3/erm/stage.json").exists());
    assert!(
        logs.iter()
            .any(|l| l.contains("is no longer running; taking the lock over")),
        "the dead worker's lease is taken over: {logs:?}"
    );
    assert_eq!(
        leftovers(&run),
        Vec::<PathBuf>::new(),
        "the killed worker's build folder and lease are cleared"
    );
}

/// Compares `text` with the golden file `tests/golden/<name>`, after `@RUN@` replaces the run directory; with
/// `TEXPLAIN_UPDATE_GOLDEN=1` writes it instead.
fn assert_golden(name: &str, text: &str, run: &Path) {
    let text = text.replace(s(run), "@RUN@");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var("TEXPLAIN_UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (TEXPLAIN_UPDATE_GOLDEN=1 writes it)",
            path.display()
        )
    });
    assert_eq!(text, golden, "{name} differs from its golden file");
}

#[test]
fn emitted_slurm_and_kubernetes_files_match_their_golden_files() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), &tmp.path().join("data"));
    let run = tmp.path().join("run");
    // device: auto asks for the accelerator where there is one: the model units want a GPU.
    texplain_ok(&["plan", s(&config), "--out", s(&run), "--set", "device=auto"]);
    let cluster = [
        "--texplain",
        "/opt/texplain/bin/texplain",
        "--workdir",
        "/work/project",
        "--parallel",
        "4",
        "--partition",
        "gpu",
        "--account",
        "lab",
        "--image",
        "registry.example/texplain:1",
        "--volume",
        "texplain-runs",
    ];
    for kind in ["slurm", "k8s"] {
        let mut args = vec!["emit", kind, s(&run)];
        args.extend(cluster);
        let printed = texplain_ok(&args);
        assert!(printed.contains("submit.sh"), "{printed}");
        let dir = run.join(kind);
        let names = files(&dir);
        let waves = plan_json(&run)["waves"].as_u64().unwrap() as usize;
        assert_eq!(names.len(), waves + 1, "{names:?}");
        for name in &names {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            assert_golden(&format!("{kind}/{}", name.display()), &text, &run);
        }
        let scripts: Vec<PathBuf> = names
            .iter()
            .filter(|n| n.extension().is_some_and(|e| e == "sh" || e == "sbatch"))
            .map(|n| dir.join(n))
            .collect();
        match Command::new("shellcheck").arg("--version").output() {
            Ok(_) => {
                let out = Command::new("shellcheck").args(&scripts).output().unwrap();
                assert!(
                    out.status.success(),
                    "shellcheck: {}",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
            Err(_) => {
                eprintln!("shellcheck is not installed: the emitted {kind} scripts are not linted")
            }
        }
    }
}

/// A stand-in for the explain stage's sampler: one draw of the global generator per image, as the describer draws
/// its tokens.
fn draws(images: Range<usize>) -> anyhow::Result<Vec<(usize, f64)>> {
    let r = tch::Tensor::rand([images.len() as i64], (tch::Kind::Double, tch::Device::Cpu));
    Ok(images.zip(Vec::<f64>::try_from(&r)?).collect())
}

/// The explain stage reseeds per chunk of images (the one process-wide generator: a test of its own binary, beside
/// tests that only start processes).
#[test]
fn shards_cut_on_chunks_and_merged_in_order_give_the_unsharded_stream() {
    // 3 chunks of 64 and one of 8.
    let n = 3 * CHUNK_IMAGES + 8;
    assert_eq!(chunks(n), 4);
    assert_eq!(shard_chunks(n, 0, 1), 0..4);
    assert_eq!(
        (0..3).map(|i| shard_chunks(n, i, 3)).collect::<Vec<_>>(),
        [0..1, 1..2, 2..4],
        "3 shards of 4 chunks: uneven, contiguous"
    );
    assert_eq!(
        shard_chunks(10, 2, 4),
        0..0,
        "more shards than chunks: empty ones"
    );
    let whole = sample_in_chunks(5, Split::Train, n, 0..chunks(n), draws).unwrap();
    assert_eq!(whole.len(), n);
    assert!(whole.iter().enumerate().all(|(i, (img, _))| i == *img));
    for of in [1, 3, 4] {
        let merged: Vec<(usize, f64)> = (0..of)
            .flat_map(|i| {
                sample_in_chunks(5, Split::Train, n, shard_chunks(n, i, of), draws).unwrap()
            })
            .collect();
        assert_eq!(merged, whole, "{of} shard(s)");
    }
    // Another split, or another seed, draws another stream.
    let test = sample_in_chunks(5, Split::Test, n, 0..chunks(n), draws).unwrap();
    assert_ne!(test, whole);
    assert_ne!(
        chunk_seed(5, Split::Train, 1),
        chunk_seed(6, Split::Train, 1)
    );
}
