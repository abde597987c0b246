//! Sanity-run and faithfulness plumbing: all-split Background-Challenge variants (same rows as the main set, main
//! set unchanged), `data.variant` / `data.label: place` in `load_splits`, and the balanced Cats & Apples caption set.
use std::collections::HashMap;
use std::path::Path;
use texplain::config::Experiment;
use texplain::data::cats_apples::{self, CatsApplesCaptionConfig};
use texplain::data::synth::{generate, SynthConfig, VariantSplits, VARIANTS};
use texplain::data::waterbirds::read_metadata;

fn tiny(variant_splits: VariantSplits) -> SynthConfig {
    SynthConfig {
        scale: 0.01,
        size: 16,
        seed: 3,
        supersample: 1,
        variant_splits,
        ..SynthConfig::default()
    }
}

/// (img_id, y, split, place) of every row.
fn rows(path: &Path) -> Vec<(i64, i64, i64, i64)> {
    read_metadata(path, "place")
        .unwrap()
        .iter()
        .map(|r| (r.img_id, r.y, r.split.code(), r.place))
        .collect()
}

#[test]
fn all_split_variants_hold_the_main_rows_and_leave_the_main_set_unchanged() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let all = generate(&tiny(VariantSplits::All), a.path()).unwrap();
    let test_only = generate(&tiny(VariantSplits::Test), b.path()).unwrap();
    assert_eq!(all.n_images, test_only.n_images);
    assert_eq!(all.n_variant_images, 3 * all.n_images);
    // The main set is byte-identical whatever the variants hold.
    for f in ["metadata.csv", "captions.csv"] {
        assert_eq!(
            std::fs::read(a.path().join(f)).unwrap(),
            std::fs::read(b.path().join(f)).unwrap(),
            "{f}"
        );
    }
    let main = rows(&a.path().join("metadata.csv"));
    for v in VARIANTS {
        let vrows = rows(&a.path().join("variants").join(v).join("metadata.csv"));
        assert_eq!(vrows.len(), main.len(), "{v}");
        for (m, r) in main.iter().zip(&vrows) {
            assert_eq!(
                (m.0, m.1, m.2),
                (r.0, r.1, r.2),
                "{v}: same image, class, split"
            );
            // mixed_rand moves the bird to the other place; fg_only/bg_only keep it.
            let place = if v == "mixed_rand" { 1 - m.3 } else { m.3 };
            assert_eq!(r.3, place, "{v}");
        }
        // Test rows are the same images as the test-only variants (same RNG streams).
        let test_only_rows = rows(&b.path().join("variants").join(v).join("metadata.csv"));
        let tests: Vec<_> = vrows.iter().filter(|r| r.2 == 2).copied().collect();
        assert_eq!(tests, test_only_rows, "{v}");
        let first_test = read_metadata(&b.path().join("metadata.csv"), "place")
            .unwrap()
            .into_iter()
            .find(|r| r.split.code() == 2)
            .unwrap();
        let f = Path::new("variants").join(v).join(&first_test.img_filename);
        assert_eq!(
            std::fs::read(a.path().join(&f)).unwrap(),
            std::fs::read(b.path().join(&f)).unwrap(),
            "{f:?}"
        );
    }
}

fn experiment(dir: &Path, extra: &str) -> Experiment {
    let yaml = format!(
        "name: t\ndata:\n  root: {}\n  image_size: 16\n  synth: {{scale: 0.01, size: 16, seed: 3, supersample: 1, variants: true, variant_splits: all}}\n{extra}classifier:\n  patch_size: 8\n  train: {{lr: 0.001, epochs: 1, batch_size: 8}}\n",
        dir.join("synth").display()
    );
    let path = dir.join("c.yaml");
    std::fs::write(&path, yaml).unwrap();
    Experiment::load(&path, &[]).unwrap()
}

#[test]
fn load_splits_reads_a_variant_and_swaps_the_label_to_place() {
    let d = tempfile::tempdir().unwrap();
    let plain = texplain::pipeline::context::Splits::load(&experiment(d.path(), "")).unwrap();
    let bg = texplain::pipeline::context::Splits::load(&experiment(
        d.path(),
        "  variant: bg_only\n  label: place\n",
    ))
    .unwrap();
    for (p, b) in [
        (&plain.train, &bg.train),
        (&plain.val, &bg.val),
        (&plain.test, &bg.test),
    ] {
        assert_eq!(p.img_ids, b.img_ids);
        assert_eq!(p.y, b.place, "the class moved to the attribute slot");
        assert_eq!(p.place, b.y, "the place is the label");
        // Different pixels: the bird is painted out.
        assert!(!p.images.equal(&b.images));
    }
    assert_ne!(plain.fingerprint, bg.fingerprint);
    // A variant needs every split in the variant folder.
    let yaml = format!(
        "name: t\ndata:\n  root: {}\n  image_size: 16\n  variant: fg_only\n  synth: {{variants: true}}\n",
        d.path().join("x").display()
    );
    let path = d.path().join("bad.yaml");
    std::fs::write(&path, yaml).unwrap();
    let err = format!("{:#}", Experiment::load(&path, &[]).unwrap_err());
    assert!(err.contains("variant_splits: all"), "{err}");
}

#[test]
fn cats_apples_caption_set_is_balanced_and_names_what_is_drawn() {
    let d = tempfile::tempdir().unwrap();
    let cfg = CatsApplesCaptionConfig {
        n_images: 24,
        size: 16,
        captions_per_image: 3,
        corpus_sentences: 300,
        supersample: 1,
        ..CatsApplesCaptionConfig::default()
    };
    let s = cats_apples::caption_set(&cfg, d.path()).unwrap();
    assert_eq!((s.n_images, s.n_captions, s.n_without_bird), (24, 72, 8));
    // image -> (pet, apple)
    let scenes: HashMap<String, (String, bool)> =
        std::fs::read_to_string(d.path().join("scenes.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].to_string(), (f[1].to_string(), f[2] == "1"))
            })
            .collect();
    let mut combos: HashMap<(String, bool), usize> = HashMap::new();
    for v in scenes.values() {
        *combos.entry(v.clone()).or_default() += 1;
    }
    assert_eq!(combos.len(), 6, "cat/dog/none x apple/no apple: {combos:?}");
    assert!(combos.values().all(|&c| c == 4), "{combos:?}");
    let pairs = texplain::data::captions::load_csv(&d.path().join("captions.csv")).unwrap();
    for p in &pairs {
        let name = p.image.strip_prefix(d.path()).unwrap().to_string_lossy();
        let (pet, apple) = &scenes[name.as_ref()];
        let words: Vec<&str> = p.caption.split(' ').collect();
        assert_eq!(words.contains(&"apple"), *apple, "{}", p.caption);
        let says_cat = words.contains(&"cat") || words.contains(&"kitten");
        let says_dog = words.contains(&"dog") || words.contains(&"puppy");
        assert_eq!(
            (says_cat, says_dog),
            (pet == "cat", pet == "dog"),
            "{}",
            p.caption
        );
    }
    let corpus = std::fs::read_to_string(d.path().join("corpus.txt")).unwrap();
    let lines: Vec<&str> = corpus.lines().collect();
    assert_eq!(lines.len(), 300);
    let share = |ws: &[&str]| {
        let hit = |l: &&&str| l.split(' ').any(|w| ws.contains(&w));
        lines.iter().filter(hit).count() as f64 / 300.0
    };
    // A third of the scenes each: cats, dogs, no pet; half with an apple.
    let (apple, cat, dog) = (
        share(&["apple"]),
        share(&["cat", "kitten"]),
        share(&["dog", "puppy"]),
    );
    assert!((0.4..0.6).contains(&apple), "{apple}");
    assert!(
        (0.25..0.42).contains(&cat) && (0.25..0.42).contains(&dog),
        "{cat} {dog}"
    );
}
