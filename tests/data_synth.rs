//! The synthetic Waterbirds generator: byte-identical output for equal configs, group counts per split at two
//! scales, the real loader reading what it writes (with masks), test variants, and captions that name the place.
use std::collections::HashMap;
use std::path::Path;
use texplain::data::captions::{LAND_WORDS, WATER_WORDS};
use texplain::data::scene::Placement;
use texplain::data::synth::{generate, group_counts, SynthConfig, VARIANTS};
use texplain::data::waterbirds::{load, read_metadata};
use texplain::data::{LoadOptions, Split};

mod common;

use common::{files, tree_digest};

fn cfg(scale: f64, seed: u64) -> SynthConfig {
    SynthConfig {
        scale,
        seed,
        size: 32,
        ..SynthConfig::default()
    }
}

#[test]
fn same_config_gives_byte_identical_files() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(&cfg(0.01, 7), a.path()).unwrap();
    generate(&cfg(0.01, 7), b.path()).unwrap();
    let fa = files(a.path());
    assert_eq!(fa, files(b.path()));
    assert!(fa.len() > 100, "{} files", fa.len());
    for f in &fa {
        assert_eq!(
            std::fs::read(a.path().join(f)).unwrap(),
            std::fs::read(b.path().join(f)).unwrap(),
            "{f:?}"
        );
    }
    // A different seed changes the images.
    let c = tempfile::tempdir().unwrap();
    generate(&cfg(0.01, 8), c.path()).unwrap();
    let png = fa
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "png") && !f.starts_with("fg_masks"))
        .unwrap();
    let other = files(c.path());
    let same_name = other.iter().find(|f| *f == png);
    if let Some(f) = same_name {
        assert_ne!(
            std::fs::read(a.path().join(png)).unwrap(),
            std::fs::read(c.path().join(f)).unwrap()
        );
    }
}

#[test]
fn the_default_config_keeps_its_bytes() {
    // Pinned before the placement and place-mask knobs (issue 24): their defaults write the same folder, byte for
    // byte (synth.json included), so existing data roots and the stage keys that read them stay valid.
    let d = tempfile::tempdir().unwrap();
    generate(&cfg(0.01, 7), d.path()).unwrap();
    assert_eq!(
        tree_digest(d.path()),
        (
            "c73d3425153a80d5721bfe2b61691cdd9ef819f556e75e8b126d6c08453d8556".to_string(),
            592
        )
    );
}

#[test]
fn anywhere_placement_spreads_and_cuts_birds_and_place_masks_avoid_them() {
    let o = LoadOptions {
        image_size: 32,
        skip_corrupt: false,
    };
    // The default rule: every bird wholly inside the frame, and no place masks written.
    let d = tempfile::tempdir().unwrap();
    generate(
        &SynthConfig {
            variants: false,
            ..cfg(0.05, 2)
        },
        d.path(),
    )
    .unwrap();
    let ds = load(d.path(), Split::Train, &o).unwrap();
    assert!(ds.place_masks.is_none());
    let inside = common::centroids_and_border(ds.bird_masks.as_ref().unwrap());
    assert!(
        inside.iter().all(|(_, b)| !b),
        "an `inside` bird touches the border"
    );

    let d = tempfile::tempdir().unwrap();
    generate(
        &SynthConfig {
            placement: Placement::Anywhere { max_cut: 0.3 },
            bird_size: 0.5,
            bird_size_jitter: 0.3,
            place_masks: true,
            ..cfg(0.05, 2)
        },
        d.path(),
    )
    .unwrap();
    let ds = load(d.path(), Split::Train, &o).unwrap();
    let birds = ds.bird_masks.as_ref().unwrap();
    let spread = common::centroids_and_border(birds);
    assert!(spread.len() >= 200, "{} train images", spread.len());
    let mut quadrants = [0usize; 4];
    for ((x, y), _) in &spread {
        quadrants[(*x >= 0.5) as usize + 2 * (*y >= 0.5) as usize] += 1;
    }
    let cut = spread.iter().filter(|(_, b)| *b).count();
    assert!(
        quadrants.iter().all(|&q| q * 8 > spread.len()),
        "{quadrants:?}"
    );
    assert!(
        cut * 10 > spread.len(),
        "{cut} of {} birds cut",
        spread.len()
    );
    // The place mask never overlaps the bird and holds most of the rest of the image (the sky band and the
    // distractors are the remainder).
    let place = ds.place_masks.as_ref().unwrap();
    let overlap = (place * birds).sum(tch::Kind::Int64).int64_value(&[]);
    assert_eq!(overlap, 0);
    let frac = place
        .to_kind(tch::Kind::Float)
        .mean(tch::Kind::Float)
        .double_value(&[]);
    assert!((0.45..0.9).contains(&frac), "place covers {frac}");
    // Per image: images without sky (Forest, Bamboo, Pond) are place wherever no bird or distractor is, so some
    // image has a place mask covering over 80 %; sky images leave their top rows off it.
    let per_image =
        place
            .to_kind(tch::Kind::Float)
            .mean_dim([1i64, 2, 3].as_slice(), false, tch::Kind::Float);
    let top_row =
        place
            .narrow(2, 0, 1)
            .sum_dim_intlist([1i64, 2, 3].as_slice(), false, tch::Kind::Int64);
    let max = per_image.max().double_value(&[]);
    assert!(max > 0.8, "{max}");
    let sky_images = Vec::<i64>::try_from(top_row.eq(0))
        .unwrap()
        .iter()
        .sum::<i64>();
    assert!(
        sky_images * 4 > spread.len() as i64,
        "{sky_images} images with an empty top row"
    );
    eprintln!(
        "anywhere 0.3, bird 0.5 +- 30 %: quadrants {quadrants:?}, {cut} of {} cut, place {frac:.3}, \
         max {max:.3}, {sky_images} with sky",
        spread.len()
    );
}

#[test]
fn variants_carry_their_place_masks() {
    let o = LoadOptions {
        image_size: 32,
        skip_corrupt: false,
    };
    let d = tempfile::tempdir().unwrap();
    generate(
        &SynthConfig {
            place_masks: true,
            ..cfg(0.01, 4)
        },
        d.path(),
    )
    .unwrap();
    let main = load(d.path(), Split::Test, &o).unwrap();
    let place = main.place_masks.unwrap();
    let variant = |v: &str| {
        load(&d.path().join("variants").join(v), Split::Test, &o)
            .unwrap()
            .place_masks
            .unwrap()
    };
    // fg_only shows no place; bg_only shows it wherever the scene does and under the bird too.
    assert_eq!(variant("fg_only").sum(tch::Kind::Int64).int64_value(&[]), 0);
    let bg = variant("bg_only");
    assert_eq!(
        (&place * (bg.ones_like() - &bg))
            .sum(tch::Kind::Int64)
            .int64_value(&[]),
        0
    );
    assert!(
        bg.sum(tch::Kind::Int64).int64_value(&[]) > place.sum(tch::Kind::Int64).int64_value(&[])
    );
    // mixed_rand: another background, the same bird, never under it.
    let mixed = variant("mixed_rand");
    let birds = main.bird_masks.unwrap();
    assert_eq!((&mixed * &birds).sum(tch::Kind::Int64).int64_value(&[]), 0);
    assert!(mixed.sum(tch::Kind::Int64).int64_value(&[]) > 0);
}

fn counts_of(dir: &Path) -> [[usize; 4]; 3] {
    let mut c = [[0usize; 4]; 3];
    for r in read_metadata(&dir.join("metadata.csv"), "place").unwrap() {
        c[r.split.code() as usize][(2 * r.y + r.place) as usize] += 1;
    }
    c
}

#[test]
fn group_counts_per_split_at_two_scales() {
    for (scale, expect) in [
        (0.02, [[70, 4, 1, 21], [9, 9, 3, 3], [45, 45, 13, 13]]),
        (0.05, [[175, 9, 3, 53], [23, 23, 7, 7], [113, 113, 32, 32]]),
    ] {
        assert_eq!(group_counts(scale, 0.95), expect);
        let d = tempfile::tempdir().unwrap();
        let c = SynthConfig {
            variants: false,
            ..cfg(scale, 1)
        };
        let s = generate(&c, d.path()).unwrap();
        assert_eq!(s.counts, expect);
        assert_eq!(counts_of(d.path()), expect, "scale {scale}");
    }
    // Another correlation keeps the class totals of the scaled real train split.
    let c = group_counts(0.05, 0.5);
    assert_eq!(c[0][0] + c[0][1], 184);
    assert_eq!(c[0][2] + c[0][3], 56);
    assert_eq!(c[0][0], 92);
}

#[test]
fn real_loader_reads_the_synthetic_folder_with_masks_and_variants() {
    let d = tempfile::tempdir().unwrap();
    generate(&cfg(0.01, 3), d.path()).unwrap();
    let header = std::fs::read_to_string(d.path().join("metadata.csv")).unwrap();
    assert!(header.starts_with("img_id,img_filename,y,split,place,place_filename\n"));
    let first_row = header.lines().nth(1).unwrap();
    // Dotted species folder, PNG, places-style place_filename.
    let fields: Vec<&str> = first_row.split(',').collect();
    assert!(
        fields[1].contains('.') && fields[1].split('/').next().unwrap().contains('.'),
        "{first_row}"
    );
    assert!(
        fields[5].starts_with('/') && fields[5].ends_with(".jpg"),
        "{first_row}"
    );

    let o = LoadOptions {
        image_size: 32,
        skip_corrupt: false,
    };
    let test = load(d.path(), Split::Test, &o).unwrap();
    let masks = test.bird_masks.as_ref().unwrap();
    let frac = masks
        .to_kind(tch::Kind::Float)
        .mean(tch::Kind::Float)
        .double_value(&[]);
    assert!(
        (0.04..0.4).contains(&frac),
        "bird covers {frac} of the image"
    );
    for v in VARIANTS {
        let vd = d.path().join("variants").join(v);
        let ds = load(&vd, Split::Test, &o).unwrap();
        assert_eq!(ds.img_ids, test.img_ids, "{v}");
        assert_eq!(ds.y, test.y, "{v}");
        let expect_place: Vec<i64> = if v == "mixed_rand" {
            test.place.iter().map(|p| 1 - p).collect()
        } else {
            test.place.clone()
        };
        assert_eq!(ds.place, expect_place, "{v}");
        assert!(
            load(&vd, Split::Train, &o).unwrap().is_empty(),
            "{v} holds test rows only"
        );
    }
    // fg_only is black outside the bird (up to anti-aliased edge pixels just outside the thresholded mask).
    let fg = load(&d.path().join("variants/fg_only"), Split::Test, &o).unwrap();
    let m = fg.bird_masks.as_ref().unwrap();
    let bg = m.ones_like() - m;
    let outside = fg.images.to_kind(tch::Kind::Float) * bg.to_kind(tch::Kind::Float);
    let mean_outside = outside.sum(tch::Kind::Float).double_value(&[])
        / (3.0 * bg.sum(tch::Kind::Float).double_value(&[]));
    assert!(mean_outside < 5.0, "{mean_outside}");
}

fn is_water_caption(c: &str) -> bool {
    c.split(|ch: char| !ch.is_alphanumeric())
        .any(|w| WATER_WORDS.contains(&w))
}

fn is_land_caption(c: &str) -> bool {
    c.split(|ch: char| !ch.is_alphanumeric())
        .any(|w| LAND_WORDS.contains(&w))
}

#[test]
fn captions_name_the_place_and_mostly_say_bird() {
    let d = tempfile::tempdir().unwrap();
    let c = SynthConfig {
        variants: false,
        ..cfg(0.02, 5)
    };
    generate(&c, d.path()).unwrap();
    let place: HashMap<i64, i64> = read_metadata(&d.path().join("metadata.csv"), "place")
        .unwrap()
        .into_iter()
        .map(|r| (r.img_id, r.place))
        .collect();
    let mut rdr = csv::Reader::from_path(d.path().join("captions.csv")).unwrap();
    assert_eq!(
        rdr.headers().unwrap().iter().collect::<Vec<_>>(),
        ["img_id", "caption"]
    );
    let mut per_image: HashMap<i64, usize> = HashMap::new();
    let (mut n, mut bird) = (0, 0);
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let id: i64 = rec[0].parse().unwrap();
        let cap = &rec[1];
        *per_image.entry(id).or_default() += 1;
        assert_eq!(
            is_water_caption(cap),
            place[&id] == 1,
            "img {id} place {}: {cap:?}",
            place[&id]
        );
        assert_eq!(
            is_land_caption(cap),
            place[&id] == 0,
            "img {id} place {}: {cap:?}",
            place[&id]
        );
        n += 1;
        bird += cap.split(' ').any(|w| w == "bird") as usize;
    }
    assert_eq!(per_image.len(), place.len());
    assert!(per_image.values().all(|&k| k == 5));
    assert!(bird * 10 > n * 6, "{bird} of {n} captions say 'bird'");
}

/// Linear probes on raw pixels of the balanced synthetic test split: the place (spurious) must be far easier to
/// read off than the class (core). Slow-ish (~1 min on 2 cores), so ignored by default:
/// `cargo test --release --test data_synth -- --ignored --nocapture linear_probe`.
#[test]
#[ignore = "about a minute; run for the data write-up"]
fn linear_probe_place_is_easier_than_class() {
    use tch::{nn, nn::Module, nn::OptimizerConfig, Kind};
    let d = tempfile::tempdir().unwrap();
    generate(
        &SynthConfig {
            scale: 0.5,
            variants: false,
            ..SynthConfig::default()
        },
        d.path(),
    )
    .unwrap();
    let o = LoadOptions::default();
    let ds = load(d.path(), Split::Test, &o).unwrap();
    let n = ds.len() as i64;
    tch::manual_seed(0);
    let x = texplain::data::normalize(&ds.images, [0.5; 3], [0.5; 3]).view([n, -1]);
    let perm = tch::Tensor::randperm(n, (Kind::Int64, tch::Device::Cpu));
    let (tr, te) = (perm.narrow(0, 0, n / 2), perm.narrow(0, n / 2, n - n / 2));
    let mut accs = Vec::new();
    for labels in [&ds.place, &ds.y] {
        let t = tch::Tensor::from_slice(labels);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let lin = nn::linear(vs.root(), x.size()[1], 2, Default::default());
        let mut opt = nn::Adam::default().build(&vs, 1e-3).unwrap();
        for _ in 0..150 {
            let loss = lin
                .forward(&x.index_select(0, &tr))
                .cross_entropy_for_logits(&t.index_select(0, &tr));
            opt.backward_step(&loss);
        }
        let acc = lin
            .forward(&x.index_select(0, &te))
            .accuracy_for_logits(&t.index_select(0, &te));
        accs.push(acc.double_value(&[]));
    }
    eprintln!(
        "linear probe on pixels, held-out accuracy: place {:.3}, class y {:.3}",
        accs[0], accs[1]
    );
    assert!(accs[0] > 0.9 && accs[0] > accs[1] + 0.15, "{accs:?}");
}

#[test]
fn the_cli_sets_placement_and_place_masks() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("wb");
    let run = |extra: &[&str]| {
        common::tiny_synth_command(&out)
            .arg("--no-variants")
            .args(extra)
            .output()
            .unwrap()
    };
    let done = run(&[
        "--placement",
        "anywhere",
        "--max-cut",
        "0.2",
        "--place-masks",
    ]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("synth.json")).unwrap()).unwrap();
    assert_eq!(
        record["config"]["placement"],
        serde_json::json!({"kind": "anywhere", "max_cut": 0.2})
    );
    assert_eq!(record["config"]["place_masks"], true);
    let masks = files(&out.join("place_masks"));
    assert_eq!(masks.len(), 119);
    // --max-cut means nothing inside the frame.
    let refused = run(&["--max-cut", "0.2"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--max-cut 0.2"));
}

/// The centre prior's AUROC against the background (and the place) on 200 generated training images at 64 px: the
/// default placement at bird size 0.8 (the centred setting, configs/waterbirds-synth-centred.yaml) against the
/// quickstart's birds off-centre (configs/quickstart.yaml). `cargo test --release --test data_synth -- --ignored --nocapture centre_prior`.
#[test]
#[ignore = "a measurement for the data write-up (~20 s)"]
fn centre_prior_auroc_inside_versus_anywhere() {
    use texplain::relevance::quality::{centre_prior_maps, per_image_quality, Truth};
    let settings = [
        (
            "inside, bird 0.8 +- 15 %",
            SynthConfig {
                bird_size: 0.8,
                place_masks: true,
                ..SynthConfig::default()
            },
        ),
        (
            "anywhere max_cut 0.25, bird 0.65 +- 30 %",
            SynthConfig {
                bird_size: 0.65,
                bird_size_jitter: 0.3,
                placement: Placement::Anywhere { max_cut: 0.25 },
                place_masks: true,
                ..SynthConfig::default()
            },
        ),
    ];
    let mut aurocs = Vec::new();
    for (name, c) in settings {
        let d = tempfile::tempdir().unwrap();
        let c = SynthConfig {
            scale: 0.05,
            variants: false,
            ..c
        };
        generate(&c, d.path()).unwrap();
        let ds = load(d.path(), Split::Train, &LoadOptions::default()).unwrap();
        let n = 200;
        let truth = Truth::of(&ds).unwrap().narrow(0, n);
        let per = per_image_quality(&centre_prior_maps(n, 64), &truth, None).unwrap();
        let scored: Vec<_> = per.iter().flatten().collect();
        let mean = |f: &dyn Fn(&texplain::relevance::quality::ImageQuality) -> Option<f64>| {
            let v: Vec<f64> = scored.iter().filter_map(|q| f(q)).collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        let (bg, place) = (mean(&|q| Some(q.auroc)), mean(&|q| q.place_auroc));
        let bird_frac = 1.0 - mean(&|q| Some(q.background_fraction));
        eprintln!(
            "{name}: centre prior AUROC vs background {bg:.3}, vs place {place:.3}; bird {:.1} % of the image; \
             {} of {n} images scored",
            100.0 * bird_frac,
            scored.len()
        );
        aurocs.push(bg);
    }
    assert!(aurocs[1] < aurocs[0], "{aurocs:?}");
}
