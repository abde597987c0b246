//! Real on-disk formats, as a new user meets them (fixtures from `scripts/make_real_format_fixtures.py`):
//! `configs/waterbirds-table1.yaml` runs end to end on a tiny random HF ViT (1000-label head), a tiny random HF
//! GPT-2 with a byte-level BPE `tokenizer.json` (its sentences hold newlines, tabs, control characters and
//! U+FFFD, and re-encode to more tokens than its 128-position context holds), a waterbirds_v1.0-format folder and a COCO-format caption file; a truncated JPEG is reported as
//! corrupt (or skipped and counted) instead of being decoded into a half-grey image; logs written to a pipe carry
//! no colour codes.
use std::path::{Path, PathBuf};
use std::process::Command;

use texplain::data::{captions, waterbirds, DataError, LoadOptions, Split};

mod common;

use common::{texplain, BIN};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real-format")
}

fn table1_run(out: &Path, extra: &[String]) -> std::process::Output {
    let f = fixtures();
    let f = f.display();
    let mut sets = vec![
        format!("data.root={f}/waterbirds"),
        "data.image_size=32".into(),
        format!("classifier.pretrained={f}/vit"),
        "classifier.train.epochs=1".into(),
        "classifier.train.batch_size=8".into(),
        format!("language_model.pretrained={f}/gpt2"),
        format!("translator.captions.captions={f}/coco/annotations/captions_train2017.json"),
        format!("translator.captions.images={f}/coco/train2017"),
        "translator.train.epochs=1".into(),
        "translator.train.batch_size=8".into(),
        "explain.samples_per_image=4".into(),
        "mitigation.finetune.epochs=1".into(),
        "mitigation.finetune.batch_size=8".into(),
        "threads=2".into(),
    ];
    sets.extend_from_slice(extra);
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/waterbirds-table1.yaml");
    let mut cmd = Command::new(BIN);
    cmd.arg("run").arg(config);
    for s in &sets {
        cmd.args(["--set", s]);
    }
    cmd.args(["--seeds", "0", "--device", "cpu", "--out"])
        .arg(out)
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .output()
        .expect("the texplain binary runs")
}

#[test]
fn table1_config_runs_end_to_end_on_real_format_models_and_data() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let done = table1_run(&out, &[]);
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");

    // The byte-level LM wrote what such models write, and the run survived it.
    // One JSON object per line and image: {"img_id": .., "sentences": [..]}.
    let jsonl = std::fs::read_to_string(out.join("seed-0/explain/sentences-train.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 10, "one record per training image");
    let all: Vec<String> = records
        .iter()
        .flat_map(|r| r["sentences"].as_array().unwrap())
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    assert!(all.iter().any(|s| s.contains('\n')), "no newline sampled");
    assert!(
        all.iter().any(|s| s.contains('\u{FFFD}')),
        "no U+FFFD sampled"
    );
    assert!(
        all.iter()
            .any(|s| s.chars().any(|c| c.is_control() && c != '\n')),
        "no other control character sampled"
    );

    let results = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let table = std::fs::read_to_string(out.join("table.md")).unwrap();
    for method in ["erm", "random", "texplain"] {
        assert!(
            results.contains(&format!(",{method},test,")),
            "{method}: {results}"
        );
        assert!(
            table.contains(&format!("| {method} |")),
            "{method}: {table}"
        );
    }

    // The faithfulness command reads the same sentence files.
    let faith = texplain(&[
        "faithfulness",
        out.to_str().unwrap(),
        "--splits",
        "train,test",
    ]);
    let text = String::from_utf8_lossy(&faith.stdout);
    assert!(faith.status.success(), "{}", common::stderr(&faith));
    assert!(text.contains("| train | all | all | 10 | 40 |"), "{text}");
    assert!(text.contains("| test | all | all | 8 | 32 |"), "{text}");

    // Degenerate explanations: when every image's top word is a class word nothing is flagged; the run still
    // finishes, and TExplain and Random (as many random samples: none) keep the ERM model, with a warning.
    let words = std::fs::read_to_string(out.join("seed-0/explain/words-train.csv")).unwrap();
    let mut top: Vec<String> = words
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(1) == Some("1"))
        .map(|l| serde_json::to_string(l.split(',').nth(2).unwrap()).unwrap())
        .collect();
    top.sort();
    top.dedup();
    let list = top.join(", ");
    let class_words = format!("mitigation.class_words={{0: [{list}], 1: [{list}]}}");
    let again = table1_run(&out, &[class_words]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    let flags = std::fs::read_to_string(out.join("seed-0/flags/summary.json")).unwrap();
    assert!(flags.contains("\"n_flagged\": 0"), "{flags}");
    assert!(
        stderr.contains("texplain: no training sample was flagged"),
        "{stderr}"
    );
    let results = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let accuracies = |method: &str| -> Vec<String> {
        results
            .lines()
            .filter(|l| l.contains(&format!(",{method},")))
            .map(|l| l.split_once(&format!(",{method},")).unwrap().1.to_string())
            .collect()
    };
    assert_eq!(accuracies("erm").len(), 2, "{results}");
    assert_eq!(accuracies("texplain"), accuracies("erm"), "{results}");
    assert_eq!(accuracies("random"), accuracies("erm"), "{results}");
}

/// A copy of the real-format Waterbirds folder with its first training JPEG truncated inside its image data.
fn truncated_copy() -> (tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixtures().join("waterbirds");
    let dst = tmp.path().join("waterbirds");
    let meta = std::fs::read_to_string(src.join("metadata.csv")).unwrap();
    for line in meta.lines().skip(1) {
        let name = line.split(',').nth(1).unwrap();
        std::fs::create_dir_all(dst.join(name).parent().unwrap()).unwrap();
        std::fs::copy(src.join(name), dst.join(name)).unwrap();
    }
    std::fs::write(dst.join("metadata.csv"), &meta).unwrap();
    let first = meta.lines().nth(1).unwrap();
    assert_eq!(
        first.split(',').nth(3),
        Some("0"),
        "first row is a train row"
    );
    let name = first.split(',').nth(1).unwrap().to_string();
    let bytes = std::fs::read(dst.join(&name)).unwrap();
    // Cut a third of the way into the scan data, as an interrupted download of a real (large) JPEG is: the headers
    // are whole and the image crate decodes what is left without an error, into a partly grey image.
    let sos = bytes
        .windows(2)
        .position(|w| w == [0xFF, 0xDA])
        .expect("a JPEG scan");
    let cut = sos + (bytes.len() - sos) / 3;
    std::fs::write(dst.join(&name), &bytes[..cut]).unwrap();
    let decoded = image::load_from_memory(&bytes[..cut]);
    assert!(
        decoded.is_ok(),
        "the decoder itself accepts the truncated file"
    );
    (tmp, name)
}

#[test]
fn truncated_jpeg_is_reported_as_corrupt_or_skipped_and_counted() {
    let (tmp, name) = truncated_copy();
    let root = tmp.path().join("waterbirds");
    let opts = LoadOptions {
        image_size: 32,
        skip_corrupt: false,
    };
    let err = waterbirds::load(&root, Split::Train, &opts).unwrap_err();
    assert!(
        matches!(err, DataError::CorruptImages { count: 1, .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("1 image(s) could not be decoded") && text.contains(&name),
        "{text}"
    );
    assert!(text.contains("truncated JPEG"), "{text}");
    // The other splits do not hold the file.
    assert_eq!(
        waterbirds::load(&root, Split::Test, &opts).unwrap().len(),
        8
    );

    let skip = LoadOptions {
        skip_corrupt: true,
        ..opts.clone()
    };
    let train = waterbirds::load(&root, Split::Train, &skip).unwrap();
    assert_eq!(train.len(), 9, "the truncated image is skipped");
    assert!(!train.filenames.contains(&name));

    // The caption-set loader reports it the same way.
    let full = fixtures().join("waterbirds").join(&name);
    let err = captions::load_images(&[full.clone(), root.join(&name)], &opts).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("1 image(s) could not be decoded")
            && text.contains(&root.join(&name).display().to_string())
            && text.contains("truncated JPEG"),
        "{text}"
    );
    assert_eq!(
        captions::load_images(&[full], &opts).unwrap().size(),
        [1, 3, 32, 32]
    );
}

#[test]
fn logs_to_a_pipe_carry_no_colour_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let done = common::tiny_synth_command(&tmp.path().join("wb"))
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(
        stderr.contains("INFO") && stderr.contains("synthetic Waterbirds: 119 images"),
        "{stderr}"
    );
    assert!(!stderr.contains("\x1b["), "{stderr:?}");
}
