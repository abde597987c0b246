//! The emitted Kubernetes Indexed Jobs (issue 22) against the Kubernetes API's schema, offline: `texplain emit k8s`
//! of every shipped config (and of the tiny test config, with the accelerator requested) is checked by
//! `kubernetes-validate --strict` (every field known, every type right), and by the API server's rules that the schema
//! leaves out: a Job name of at most 63 characters of `[a-z0-9-]`, `completionMode: Indexed`, at most `completions`
//! pods at once.
//!
//! kubernetes-validate (PyPI) comes from `scripts/install-kubernetes-validate.sh`, installed once into a virtual
//! environment under ~/.cache/texplain. Where it cannot be installed the schema check is skipped with a message
//! saying so (a failure under `TEXPLAIN_REQUIRE_K8S_VALIDATE=1`); the API server's rules are checked regardless.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{stderr, texplain};

/// The `kubernetes-validate` command, installed when missing; `Err` says why there is none.
fn kubernetes_validate() -> Result<PathBuf, String> {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-kubernetes-validate.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(stderr(&out).trim().to_string());
    }
    Ok(PathBuf::from(
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    ))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(args: &[&str]) {
    let out = texplain(args);
    assert!(out.status.success(), "texplain {args:?}: {}", stderr(&out));
}

/// Plans `config` into `run`, emits its Indexed Jobs and returns their files.
fn emitted(config: &Path, run: &Path, set: &[&str]) -> Vec<PathBuf> {
    let mut plan = vec!["plan", s(config), "--out", s(run)];
    plan.extend(set);
    ok(&plan);
    ok(&[
        "emit",
        "k8s",
        s(run),
        "--image",
        "registry.example/texplain:1",
        "--volume",
        "texplain-runs",
        "--workdir",
        "/work/project",
    ]);
    let dir = run.join("k8s");
    let yaml: Vec<PathBuf> = common::files(&dir)
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "yaml"))
        .map(|f| dir.join(f))
        .collect();
    assert!(!yaml.is_empty(), "no manifest in {}", dir.display());
    yaml
}

/// The API server's rules that the schema leaves out.
fn check_api_rules(file: &Path) {
    let job: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let name = job["metadata"]["name"].as_str().unwrap();
    assert!(
        name.len() <= 63
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.starts_with('-')
            && !name.ends_with('-'),
        "{}: the Job name {name:?} is not a DNS label of at most 63 characters",
        file.display()
    );
    let spec = &job["spec"];
    assert_eq!(
        spec["completionMode"].as_str(),
        Some("Indexed"),
        "{}",
        file.display()
    );
    let (completions, parallelism) = (
        spec["completions"].as_u64().unwrap(),
        spec["parallelism"].as_u64().unwrap(),
    );
    assert!(
        (1..=completions).contains(&parallelism),
        "{}: parallelism {parallelism} of {completions} completions",
        file.display()
    );
    assert_eq!(
        spec["template"]["spec"]["restartPolicy"].as_str(),
        Some("Never"),
        "backoffLimitPerIndex needs restartPolicy Never: {}",
        file.display()
    );
}

#[test]
fn the_emitted_indexed_jobs_of_every_shipped_config_validate_against_the_kubernetes_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&configs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    names.sort();
    assert!(names.len() >= 5, "{names:?}");
    let mut manifests = Vec::new();
    for (i, config) in names.iter().enumerate() {
        manifests.extend(emitted(config, &tmp.path().join(format!("run-{i}")), &[]));
    }
    // The tiny config with device: auto asks for the accelerator on its model units (nvidia.com/gpu).
    let tiny = tmp.path().join("tiny.yaml");
    std::fs::write(
        &tiny,
        common::tiny_pipeline_config_text(&tmp.path().join("data")),
    )
    .unwrap();
    let gpu = emitted(&tiny, &tmp.path().join("tiny"), &["--set", "device=auto"]);
    assert!(gpu.iter().any(|f| std::fs::read_to_string(f)
        .unwrap()
        .contains("nvidia.com/gpu: 1")));
    manifests.extend(gpu);
    for file in &manifests {
        check_api_rules(file);
    }

    let validate = match kubernetes_validate() {
        Ok(bin) => bin,
        Err(why) => {
            let required = std::env::var("TEXPLAIN_REQUIRE_K8S_VALIDATE").is_ok_and(|v| v == "1");
            assert!(
                !required,
                "TEXPLAIN_REQUIRE_K8S_VALIDATE=1 but no kubernetes-validate: {why}"
            );
            eprintln!(
                "SKIPPED: the {} emitted manifests were not checked against the Kubernetes schema: {why}",
                manifests.len()
            );
            return;
        }
    };
    let out = Command::new(&validate)
        .arg("--strict")
        .args(&manifests)
        .output()
        .unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(out.status.success(), "kubernetes-validate: {printed}");
    let passed = printed
        .lines()
        .filter(|l| l.contains(" passed for resource job/"))
        .count();
    assert_eq!(passed, manifests.len(), "{printed}");

    // The check has teeth: a misspelt field fails it.
    let broken = tmp.path().join("broken.yaml");
    let text = std::fs::read_to_string(&manifests[0]).unwrap();
    std::fs::write(
        &broken,
        text.replace("backoffLimitPerIndex:", "backoffLimitPerIndx:"),
    )
    .unwrap();
    let out = Command::new(&validate)
        .arg("--strict")
        .arg(&broken)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("'backoffLimitPerIndx' was unexpected"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
