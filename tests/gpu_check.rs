//! `scripts/gpu-check.sh --dry-run` with the freshly built binary: the GPU check's steps on the CPU at tiny sizes,
//! f32 and bf16, ending in its markdown table. The PyTorch side runs when python3 has torch and transformers, and
//! is skipped with a message otherwise (the script says what it would run).
use std::process::Command;

mod common;

#[test]
fn gpu_check_dry_run_prints_the_table() {
    if Command::new("bash").arg("--version").output().is_err() {
        eprintln!("skipping: no bash to run scripts/gpu-check.sh");
        return;
    }
    let out = tempfile::tempdir().unwrap();
    let run = Command::new("bash")
        .args(["scripts/gpu-check.sh", "--dry-run"])
        .env("BIN", common::BIN)
        .env("OUT", out.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    for precision in ["f32", "bf16"] {
        for name in ["vit", "sampling"] {
            let path = out.path().join(format!("{name}-{precision}-texplain.json"));
            let json: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            assert_eq!(json["precision"], precision, "{}", path.display());
        }
    }
    let torch = Command::new("python3")
        .args(["-c", "import torch, transformers"])
        .output()
        .is_ok_and(|o| o.status.success());
    if torch {
        assert!(
            out.path().join("vit-bf16-pytorch.json").exists(),
            "{stdout}"
        );
    } else {
        eprintln!("python3 lacks torch/transformers: the dry run skipped the PyTorch reference");
        assert!(
            stdout.contains("skipping the PyTorch reference") && stdout.contains("would run"),
            "{stdout}"
        );
    }
    let python = Command::new("python3").arg("--version").output().is_ok();
    if python {
        for row in [
            "| figure | precision | texplain | PyTorch | texplain / PyTorch |",
            "train images/s | bf16 |",
            "sentences/s | f32 |",
            "projected minutes for 4795 x 1000 sentences",
        ] {
            assert!(stdout.contains(row), "missing {row:?} in\n{stdout}");
        }
    }
    assert!(
        stdout.contains("would run: timeout"),
        "the quickstart command: {stdout}"
    );
}
