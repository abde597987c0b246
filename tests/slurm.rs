//! A real Slurm runs the plan (issue 22): a tiny quickstart-shaped config (ERM, Random, TExplain and the oracle on
//! one seed of a 32 px synthetic set) is planned, `texplain emit slurm` writes its job arrays, the emitted
//! `submit.sh` submits them to a one-node cluster on localhost and the test waits for every array task; the run's
//! `table.md` and stage digests must equal those of a serial `texplain run` of the same config.
//!
//! The cluster comes from `scripts/install-slurm.sh` (the Debian packages slurmctld, slurmd, slurm-client and munge,
//! installed and started once). Where it cannot be installed the test prints why and skips: never silently green,
//! and with `TEXPLAIN_REQUIRE_SLURM=1` (`make test-slurm`) a skip is a failure. With `TEXPLAIN_SLURM_LOG=PATH` the
//! test also writes what Slurm printed (submit output, the job table, the diff against the serial `table.md` and
//! its first table) to PATH: experiments/scale-out/slurm-quickstart-tiny.log is such a log.
mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{stage_records, stderr, texplain, BIN};

/// The longest the test waits for the cluster to finish every wave.
const TIMEOUT: Duration = Duration::from_secs(600);

/// The tiny end-to-end config of `tests/pipeline.rs`: the quickstart's methods (ERM, Random, TExplain, the oracle) in
/// miniature, on one seed (seconds on a CPU).
fn tiny_config(dir: &Path, data: &Path) -> PathBuf {
    let path = dir.join("tiny.yaml");
    std::fs::write(&path, common::tiny_pipeline_config_text(data)).unwrap();
    path
}

/// The cluster's partition, the cluster installed and started when missing; `Err` says why there is none.
fn slurm() -> Result<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-slurm.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(stderr(&out).trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(out: std::process::Output, what: &str) -> String {
    assert!(out.status.success(), "{what}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Each stage's (folder, key, content digest).
fn digests(run: &Path) -> Vec<(String, String, String)> {
    stage_records(run)
        .into_iter()
        .map(|(stage, r)| {
            let field = |f: &str| r[f].as_str().unwrap().to_string();
            (stage, field("key"), field("content"))
        })
        .collect()
}

/// The job ids `submit.sh` printed (`wave K: job ID`), one per wave.
fn job_ids(submitted: &str) -> Vec<String> {
    submitted
        .lines()
        .filter_map(|l| l.split(": job ").nth(1))
        .map(|id| id.trim().to_string())
        .collect()
}

/// One `scontrol show job -o` line per array task of `job`: (the task's id `JOB_TASK`, name, state, exit code,
/// run time). `sacct` needs slurmdbd and a database, which the one-node cluster has not; slurmctld keeps finished
/// jobs for an hour (`MinJobAge`).
fn tasks(job: &str) -> Vec<[String; 5]> {
    let out = Command::new("scontrol")
        .args(["show", "job", "-o", job])
        .output()
        .expect("scontrol runs");
    let mut tasks: Vec<[String; 5]> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| {
            let field = |name: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(&format!("{name}=")))
                    .unwrap_or("?")
                    .to_string()
            };
            [
                format!("{}_{}", field("ArrayJobId"), field("ArrayTaskId")),
                field("JobName"),
                field("JobState"),
                field("ExitCode"),
                field("RunTime"),
            ]
        })
        .collect();
    // scontrol lists an array's tasks last first.
    tasks.sort_by_key(|t| {
        t[0].rsplit('_')
            .next()
            .and_then(|i| i.parse::<usize>().ok())
    });
    tasks
}

/// Waits until none of `jobs` is queued or running; fails (cancelling them) on a dependency that can no longer be
/// met (a wave failed) or after [`TIMEOUT`].
fn wait(jobs: &[String], logs: &Path) {
    let started = Instant::now();
    loop {
        let out = Command::new("squeue")
            .args(["-h", "-o", "%i %T %r", "-j", &jobs.join(",")])
            .output()
            .expect("squeue runs");
        let queue = String::from_utf8_lossy(&out.stdout).into_owned();
        if queue.trim().is_empty() {
            return;
        }
        let stuck = queue.contains("DependencyNeverSatisfied");
        if stuck || started.elapsed() > TIMEOUT {
            let _ = Command::new("scancel").args(jobs).status();
            let mut printed = String::new();
            for f in common::files(logs) {
                let _ = write!(
                    printed,
                    "\n== {}\n{}",
                    f.display(),
                    std::fs::read_to_string(logs.join(&f)).unwrap_or_default()
                );
            }
            panic!(
                "{}: {queue}{printed}",
                if stuck {
                    "a wave failed"
                } else {
                    "the cluster did not finish in time"
                }
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The number of units in the plan of `run`.
fn plan_units(run: &Path) -> usize {
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("plan/plan.json")).unwrap())
            .unwrap();
    plan["units"].as_array().unwrap().len()
}

/// The lines of `a` and `b` that differ (`-` serial, `+` Slurm); empty where they are equal.
fn diff(a: &str, b: &str) -> String {
    let (a, b): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
    let mut out = String::new();
    for i in 0..a.len().max(b.len()) {
        let (x, y) = (a.get(i), b.get(i));
        if x != y {
            if let Some(x) = x {
                let _ = writeln!(out, "-{x}");
            }
            if let Some(y) = y {
                let _ = writeln!(out, "+{y}");
            }
        }
    }
    out
}

#[test]
fn the_plans_slurm_job_arrays_on_a_real_cluster_match_the_serial_run() {
    let partition = match slurm() {
        Ok(p) => p,
        Err(why) => {
            let required = std::env::var("TEXPLAIN_REQUIRE_SLURM").is_ok_and(|v| v == "1");
            assert!(!required, "TEXPLAIN_REQUIRE_SLURM=1 but no Slurm: {why}");
            eprintln!(
                "SKIPPED: no Slurm cluster, so the plan did not run on a real scheduler: {why}"
            );
            return;
        }
    };
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), &tmp.path().join("data"));

    let serial = tmp.path().join("serial");
    ok(common::run(&config, &serial, &[]), "the serial run");
    let table = std::fs::read_to_string(serial.join("table.md")).unwrap();

    let run = tmp.path().join("slurm-run");
    let planned = ok(
        texplain(&["plan", s(&config), "--out", s(&run)]),
        "texplain plan",
    );
    // Runnable on the local cluster: its partition, one core and 1 GiB a task, two tasks at once, this build's
    // binary; device: cpu requests no GPU.
    let emitted = ok(
        texplain(&[
            "emit",
            "slurm",
            s(&run),
            "--partition",
            &partition,
            "--cpus",
            "1",
            "--mem-gib",
            "1",
            "--parallel",
            "2",
            "--texplain",
            BIN,
            "--workdir",
            s(tmp.path()),
        ]),
        "texplain emit slurm",
    );
    let dir = run.join("slurm");
    for f in common::files(&dir) {
        let text = std::fs::read_to_string(dir.join(&f)).unwrap();
        assert!(!text.contains("--gres"), "{}: {text}", f.display());
    }
    let submitted = ok(
        Command::new("bash")
            .arg(dir.join("submit.sh"))
            .output()
            .unwrap(),
        "submit.sh",
    );
    let jobs = job_ids(&submitted);
    let waves = common::files(&run.join("plan"))
        .iter()
        .filter(|f| f.to_string_lossy().starts_with("wave-"))
        .count();
    assert_eq!(jobs.len(), waves, "one job array per wave: {submitted}");
    wait(&jobs, &dir.join("logs"));

    let mut table_of_jobs = String::new();
    let mut failed = Vec::new();
    let mut seen = 0;
    for job in &jobs {
        for [id, name, state, exit, time] in tasks(job) {
            seen += 1;
            let _ = writeln!(
                table_of_jobs,
                "{id:<10} {name:<22} {state:<10} {exit:<8} {time}"
            );
            if state != "COMPLETED" {
                failed.push(id);
            }
        }
    }
    let slurm_table = std::fs::read_to_string(run.join("table.md")).unwrap_or_default();
    let differs = diff(&table, &slurm_table);
    let (stages, serial_stages) = (digests(&run), digests(&serial));
    if let Some(path) = std::env::var("TEXPLAIN_SLURM_LOG")
        .ok()
        .filter(|p| !p.is_empty())
    {
        let version = Command::new("sinfo").arg("--version").output().unwrap();
        let log = format!(
            "# tests/slurm.rs on a one-node cluster ({}, partition {partition}); the run directory is @RUN@, the test's folder @TMP@, this build's binary @TEXPLAIN@\n\
             $ texplain plan @TMP@/tiny.yaml --out @RUN@\n{planned}\
             $ texplain emit slurm @RUN@ --partition {partition} --cpus 1 --mem-gib 1 --parallel 2 ...\n{emitted}\
             $ cat @RUN@/slurm/wave-6.sbatch\n{}\
             $ @RUN@/slurm/submit.sh\n{submitted}\
             # The array tasks (scontrol show job; sacct needs slurmdbd):\n\
             {:<10} {:<22} {:<10} {:<8} RunTime\n{table_of_jobs}\
             # Stage records (folder, key, content digest) of the Slurm run against the serial run: {} stages, {}\n\
             # table.md of the Slurm run against the serial texplain run: {}\n{differs}\
             # Its first table:\n{}",
            String::from_utf8_lossy(&version.stdout).trim(),
            std::fs::read_to_string(dir.join("wave-6.sbatch")).unwrap_or_default(),
            "JobId",
            "JobName",
            "State",
            "ExitCode",
            stages.len(),
            if stages == serial_stages {
                "identical"
            } else {
                "DIFFERENT"
            },
            if differs.is_empty() {
                "identical"
            } else {
                "DIFFERENT"
            },
            slurm_table.split("\n\n").take(2).collect::<Vec<_>>().join("\n\n"),
        )
        .replace(s(&run), "@RUN@")
        .replace(s(tmp.path()), "@TMP@")
        .replace(BIN, "@TEXPLAIN@");
        std::fs::write(&path, log).unwrap();
    }
    let units = plan_units(&run);
    assert_eq!(seen, units, "one array task per unit:\n{table_of_jobs}");
    assert!(
        failed.is_empty(),
        "array tasks that did not complete: {failed:?}\n{table_of_jobs}"
    );
    assert_eq!(differs, "", "table.md of the Slurm run differs");
    assert_eq!(slurm_table, table);
    assert_eq!(stages, serial_stages);
    assert!(run.join("run.json").exists() && run.join("results.csv").exists());
}
