//! The upstream corpus (our ImageNet stand-in): byte-identical reruns, label-independent backgrounds (the default
//! corpus pinned to its bytes from before the habitat knob, but for the knob's record), the habitat share with
//! `background_affinity`, every category and background present, nothing shared with Waterbirds, and the Background Challenge variants the
//! loader reads back consistent with the masks.
use rand::RngCore;
use rand::SeedableRng;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};
use texplain::data::bg_challenge::{load_bg_challenge, load_in9l, Variant};
use texplain::data::synth::{self, SynthConfig};
use texplain::data::upstream::{
    corpus_rng, generate, habitat_share, UpstreamConfig, BG_CHALLENGE_DIR, IN9L_DIR,
};
use texplain::data::upstream_scene::{Category, UpstreamBackground};
use texplain::data::{LoadOptions, Split};

mod common;

use common::{files, tree_digest};

/// A small corpus: 13 training images per category (one per background), 2 val, 2 challenge.
fn small(seed: u64) -> UpstreamConfig {
    UpstreamConfig {
        size: 32,
        seed,
        train_per_class: 13,
        val_per_class: 2,
        challenge_per_class: 2,
        ..UpstreamConfig::default()
    }
}

fn opts(size: i64) -> LoadOptions {
    LoadOptions {
        image_size: size,
        skip_corrupt: false,
    }
}

#[test]
fn same_config_gives_byte_identical_files() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    generate(&small(5), a.path()).unwrap();
    generate(&small(5), b.path()).unwrap();
    let fa = files(a.path());
    assert_eq!(fa, files(b.path()));
    // 22 x 17 images, 22 x 2 x 7 variant images, 22 x 2 masks, 2 metadata files.
    assert_eq!(fa.len(), 22 * 17 + 22 * 2 * 7 + 22 * 2 + 2);
    for f in &fa {
        assert_eq!(
            std::fs::read(a.path().join(f)).unwrap(),
            std::fs::read(b.path().join(f)).unwrap(),
            "{f:?}"
        );
    }
    // Another seed: as many files, the same names (but for the mixed variants, which name their random
    // partners), other pixels.
    generate(&small(6), c.path()).unwrap();
    let fc = files(c.path());
    assert_eq!(fc.len(), fa.len());
    let unmixed = |f: &&PathBuf| !f.to_string_lossy().contains("/mixed_");
    let pngs: Vec<&PathBuf> = fa
        .iter()
        .filter(unmixed)
        .filter(|f| f.extension().is_some_and(|e| e == "png"))
        .collect();
    assert!(pngs.len() > 22 * 17, "{}", pngs.len());
    assert!(fa.iter().filter(unmixed).eq(fc.iter().filter(unmixed)));
    let changed = pngs
        .iter()
        .filter(|f| {
            std::fs::read(a.path().join(f)).unwrap() != std::fs::read(c.path().join(f)).unwrap()
        })
        .count();
    assert_eq!(changed, pngs.len());
}

#[test]
fn the_default_corpus_keeps_its_bytes_from_before_the_habitat_knob() {
    // Digest of `small(5)` written by the generator before `background_affinity` existed (commit 2cd294b): the
    // default (affinity 0) corpus, and so the quickstart's pretraining, is unchanged byte for byte but for the knob
    // that upstream.json records since the stage-key format 3.
    let dir = tempfile::tempdir().unwrap();
    generate(&small(5), dir.path()).unwrap();
    let path = dir.path().join("upstream.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let knob = json["config"]
        .as_object_mut()
        .unwrap()
        .remove("background_affinity");
    assert_eq!(knob, Some(serde_json::json!(0.0)));
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    assert_eq!(
        tree_digest(dir.path()),
        (
            "7f80e6546a22d5a0283ffa228a85d8d649341e873c372237ad23b3a71061636e".to_string(),
            728
        )
    );
}

#[test]
fn affinity_puts_a_fixed_share_of_every_category_on_its_habitats() {
    let dir = tempfile::tempdir().unwrap();
    let a = 0.6;
    let cfg = UpstreamConfig {
        train_per_class: 40,
        val_per_class: 15,
        challenge_per_class: 9,
        background_affinity: a,
        ..small(3)
    };
    generate(&cfg, dir.path()).unwrap();
    let rows = metadata(dir.path());
    let mut cells: BTreeMap<(String, usize, String), usize> = BTreeMap::new();
    for r in &rows {
        *cells.entry(r.clone()).or_default() += 1;
    }
    let cats = Category::all();
    let (mut with, mut without) = (0, 0);
    for (part, n) in [("train", 40usize), ("val", 15), ("bg_challenge", 9)] {
        for (label, cat) in cats.iter().enumerate() {
            let habitats = cat.habitats();
            let n_h = habitat_share(n, a, habitats.len());
            assert_eq!(
                n_h,
                if habitats.is_empty() {
                    0
                } else {
                    (a * n as f64).round() as usize
                }
            );
            // The pool share of every background, and the habitat share of every habitat: floor or ceil.
            let pool = (n - n_h) as f64 / 13.0;
            let own = if habitats.is_empty() {
                0.0
            } else {
                n_h as f64 / habitats.len() as f64
            };
            let mut total = 0;
            let mut on_habitats = 0;
            for b in UpstreamBackground::ALL {
                let c = cells
                    .get(&(part.to_string(), label, b.name().to_string()))
                    .copied()
                    .unwrap_or(0);
                total += c;
                let (lo, hi) = if habitats.contains(&b) {
                    on_habitats += c;
                    (pool.floor() + own.floor(), pool.ceil() + own.ceil())
                } else {
                    (pool.floor(), pool.ceil())
                };
                assert!(
                    (lo..=hi).contains(&(c as f64)),
                    "{part} {} on {}: {c} outside [{lo}, {hi}]",
                    cat.word(),
                    b.name()
                );
            }
            assert_eq!(total, n, "{part} {}", cat.word());
            // Exactly n_h images beyond the habitats' pool share.
            let pool_on_habitats = on_habitats - n_h;
            assert!(
                (pool_on_habitats as f64) >= habitats.len() as f64 * pool.floor()
                    && (pool_on_habitats as f64) <= habitats.len() as f64 * pool.ceil(),
                "{part} {}: {on_habitats} on habitats",
                cat.word()
            );
            if habitats.is_empty() {
                without += 1;
            } else {
                with += 1;
            }
        }
    }
    assert!(with > 0 && without > 0, "both kinds of category are tested");
    // Cars: 24 of 40 training images on the street beyond the pool's 1 or 2.
    let street = cells[&("train".to_string(), 10, "street".to_string())];
    assert_eq!(cats[10].word(), "car");
    assert!((25..=26).contains(&street), "{street}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("upstream.json")).unwrap()).unwrap();
    assert_eq!(json["config"]["background_affinity"], a);
    // Same config, same bytes; the affinity's bad values are named.
    let again = tempfile::tempdir().unwrap();
    generate(&cfg, again.path()).unwrap();
    assert_eq!(tree_digest(dir.path()), tree_digest(again.path()));
    let bad = UpstreamConfig {
        background_affinity: 1.5,
        ..small(3)
    };
    let e = bad.validate().unwrap_err().to_string();
    assert!(
        e.contains("background_affinity") && e.contains("1.5"),
        "{e}"
    );
}

/// (part, label, background) of every row of upstream_metadata.csv.
fn metadata(dir: &Path) -> Vec<(String, usize, String)> {
    let mut rdr = csv::Reader::from_path(dir.join("upstream_metadata.csv")).unwrap();
    assert_eq!(
        rdr.headers().unwrap().iter().collect::<Vec<_>>(),
        [
            "split",
            "filename",
            "label",
            "class_dir",
            "background",
            "mixed_same",
            "mixed_rand",
            "mixed_next"
        ]
    );
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            assert!(dir.join(&r[1]).is_file(), "{}", &r[1]);
            (r[0].to_string(), r[2].parse().unwrap(), r[4].to_string())
        })
        .collect()
}

#[test]
fn backgrounds_are_balanced_within_every_category() {
    let dir = tempfile::tempdir().unwrap();
    // 26 per category on 13 backgrounds: exactly 2 per cell. 15 per category: 1 or 2 per cell.
    let cfg = UpstreamConfig {
        train_per_class: 26,
        val_per_class: 15,
        ..small(1)
    };
    generate(&cfg, dir.path()).unwrap();
    let rows = metadata(dir.path());
    let mut cells: BTreeMap<(String, usize, String), usize> = BTreeMap::new();
    for r in &rows {
        *cells.entry(r.clone()).or_default() += 1;
    }
    for (part, n) in [("train", 26usize), ("val", 15), ("bg_challenge", 2)] {
        // Each class is spread uniformly over the backgrounds: its chi-square statistic against the uniform
        // distribution is the smallest whole-image counts allow (r cells at ceil(e), the rest at floor(e)).
        let e = n as f64 / 13.0;
        let r = n % 13;
        let floor = (n / 13) as f64;
        let min_chi2 =
            (r as f64 * (floor + 1.0 - e).powi(2) + (13 - r) as f64 * (floor - e).powi(2)) / e;
        for label in 0..22 {
            let counts: Vec<usize> = UpstreamBackground::ALL
                .iter()
                .map(|b| {
                    cells
                        .get(&(part.to_string(), label, b.name().to_string()))
                        .copied()
                        .unwrap_or(0)
                })
                .collect();
            assert_eq!(counts.iter().sum::<usize>(), n, "{part} {label}");
            let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            assert!(hi - lo <= 1, "{part} class {label}: {counts:?}");
            let chi2 = counts
                .iter()
                .map(|&c| (c as f64 - e).powi(2) / e)
                .sum::<f64>();
            assert!(
                (chi2 - min_chi2).abs() < 1e-9,
                "{part} class {label}: chi2 {chi2} vs {min_chi2}"
            );
        }
        if n % 13 == 0 {
            assert_eq!(min_chi2, 0.0);
        }
    }
    // The summary agrees with the metadata.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("upstream.json")).unwrap()).unwrap();
    let train = &json["summary"]["counts"]["train"];
    assert_eq!(train[3][5], 2);
    assert_eq!(json["config"]["train_per_class"], 26);
}

#[test]
fn every_category_and_background_is_present_and_loads() {
    let dir = tempfile::tempdir().unwrap();
    let s = generate(&small(2), dir.path()).unwrap();
    let cats = Category::all();
    assert!(cats.iter().filter(|c| c.is_bird()).count() == 10);
    assert!(cats.iter().filter(|c| !c.is_bird()).count() >= 10);
    assert_eq!(s.backgrounds.len(), 13);
    let seen: HashSet<String> = metadata(dir.path()).into_iter().map(|r| r.2).collect();
    assert_eq!(seen.len(), 13);

    let train = load_in9l(&dir.path().join(IN9L_DIR), Split::Train, &opts(32)).unwrap();
    assert_eq!(train.len(), 22 * 13);
    assert_eq!(train.class_counts(), vec![13; 22]);
    assert_eq!(train.class_dirs, s.class_dirs);
    assert_eq!(train.label_names, s.label_names);
    assert_eq!(&train.label_names[..3], ["duck", "swan", "heron"]);
    assert!(train.label_names.contains(&"umbrella".to_string()));
    assert_eq!(train.images.size(), [22 * 13, 3, 32, 32]);
    assert_eq!(train.images.kind(), Kind::Uint8);
    let val = load_in9l(&dir.path().join(IN9L_DIR), Split::Val, &opts(32)).unwrap();
    assert_eq!(val.class_counts(), vec![2; 22]);
    assert!(load_in9l(&dir.path().join(IN9L_DIR), Split::Test, &opts(32)).is_err());

    let bgc = load_bg_challenge(
        &dir.path().join(BG_CHALLENGE_DIR),
        &Variant::ALL,
        &opts(32),
        true,
    )
    .unwrap();
    assert_eq!(bgc.variants.len(), 8);
    let get = |v: Variant| &bgc.variants[&v];
    let orig = get(Variant::Original);
    let mask = orig.fg_masks.as_ref().unwrap().to_kind(Kind::Bool); // [n, 1, s, s]
    let inside = |t: &Tensor| t.masked_select(&mask.expand_as(t));
    let outside = |t: &Tensor| t.masked_select(&mask.logical_not().expand_as(t));
    // Objects are present and not tiny.
    let cover = mask
        .to_kind(Kind::Float)
        .mean(Kind::Float)
        .double_value(&[]);
    assert!(cover > 0.05 && cover < 0.6, "mask coverage {cover}");
    for v in Variant::ALL {
        let d = get(v);
        assert_eq!(d.labels, orig.labels, "{v}");
        assert_eq!(
            d.fg_masks.as_ref().unwrap(),
            orig.fg_masks.as_ref().unwrap(),
            "{v}"
        );
    }
    // Only-FG is black off the object and equal to the original on it; No-FG the other way round.
    let fg = &get(Variant::OnlyFg).images;
    assert_eq!(outside(fg).count_nonzero(None).int64_value(&[]), 0);
    assert_eq!(inside(fg), inside(&orig.images));
    let nofg = &get(Variant::NoFg).images;
    assert_eq!(inside(nofg).count_nonzero(None).int64_value(&[]), 0);
    assert_eq!(outside(nofg), outside(&orig.images));
    // Only-BG-T hides the object and keeps (almost) nothing black.
    let bgt = &get(Variant::OnlyBgT).images;
    assert_eq!(outside(bgt).size(), outside(&orig.images).size());
    let black = |t: &Tensor| {
        t.sum_dim_intlist([1i64].as_slice(), false, Kind::Int64)
            .eq(0)
            .to_kind(Kind::Float)
            .mean(Kind::Float)
            .double_value(&[])
    };
    assert!(black(bgt) < 0.01, "only_bg_t black fraction {}", black(bgt));
    assert!(black(&get(Variant::OnlyBgB).images) > 0.05);
    // The mixed variants keep the object and change the background.
    for v in [Variant::MixedSame, Variant::MixedRand, Variant::MixedNext] {
        let m = &get(v).images;
        let same_obj = inside(m)
            .eq_tensor(&inside(&orig.images))
            .to_kind(Kind::Float)
            .mean(Kind::Float);
        let same_bg = outside(m)
            .eq_tensor(&outside(&orig.images))
            .to_kind(Kind::Float)
            .mean(Kind::Float);
        assert!(
            same_obj.double_value(&[]) > 0.5,
            "{v}: object kept {same_obj}"
        );
        assert!(
            same_bg.double_value(&[]) < 0.3,
            "{v}: background kept {same_bg}"
        );
    }
    // mixed_next takes its background from the next class.
    for f in &get(Variant::MixedNext).files {
        let (class, name) = f.split_once('/').unwrap();
        let label: usize = class[..2].parse().unwrap();
        let bg_word = name
            .split("_bg_")
            .nth(1)
            .unwrap()
            .rsplit_once('_')
            .unwrap()
            .0;
        assert_eq!(bg_word, cats[(label + 1) % 22].word(), "{f}");
    }
}

#[test]
fn nothing_is_shared_with_waterbirds() {
    // RNG domain separation: the corpus' streams are not the Waterbirds generator's streams for any seed.
    for seed in 0..4u64 {
        for stream in [0u64, 1, 2, 100, 1 << 40] {
            let mut ours = corpus_rng(seed, stream);
            let mut theirs = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            theirs.set_stream(stream);
            assert_ne!(
                ours.next_u64(),
                theirs.next_u64(),
                "seed {seed} stream {stream}"
            );
        }
    }
    // And no image: decode both sets at the same size and compare pixels.
    let (up, wb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(&small(0), up.path()).unwrap();
    synth::generate(
        &SynthConfig {
            size: 32,
            scale: 0.02,
            seed: 0,
            ..SynthConfig::default()
        },
        wb.path(),
    )
    .unwrap();
    let pixels = |dir: &Path| -> HashSet<Vec<u8>> {
        files(dir)
            .into_iter()
            .filter(|f| {
                f.extension().is_some_and(|e| e == "png")
                    && !f.components().any(|c| c.as_os_str() == "fg_masks")
            })
            .map(|f| image::open(dir.join(f)).unwrap().to_rgb8().into_raw())
            .collect()
    };
    let (a, b) = (pixels(up.path()), pixels(wb.path()));
    assert!(a.len() > 500 && b.len() > 200, "{} {}", a.len(), b.len());
    assert_eq!(a.intersection(&b).count(), 0);
}

#[test]
fn placement_anywhere_puts_objects_on_the_border_and_is_recorded_only_when_set() {
    use texplain::data::scene::Placement;
    // The share of challenge images whose object mask reaches the frame's outermost rows or columns.
    let touching = |placement: Placement| -> (f64, serde_json::Value) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = UpstreamConfig {
            challenge_per_class: 4,
            placement,
            ..small(3)
        };
        generate(&cfg, dir.path()).unwrap();
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("upstream.json")).unwrap(),
        )
        .unwrap();
        let bgc = load_bg_challenge(
            &dir.path().join(BG_CHALLENGE_DIR),
            &[Variant::Original],
            &opts(32),
            true,
        )
        .unwrap();
        let masks = bgc.variants[&Variant::Original].fg_masks.as_ref().unwrap(); // [n, 1, s, s]
        let border = common::centroids_and_border(masks);
        let share = border.iter().filter(|(_, b)| *b).count() as f64 / border.len() as f64;
        (share, json["config"]["placement"].clone())
    };
    let (inside, recorded) = touching(Placement::Inside {});
    assert_eq!(inside, 0.0, "inside keeps a 3 % margin");
    assert!(
        recorded.is_null(),
        "the default is left out of upstream.json: {recorded}"
    );
    let (anywhere, recorded) = touching(Placement::Anywhere { max_cut: 0.4 });
    assert!(
        anywhere > 0.3,
        "share of objects cut by the border: {anywhere}"
    );
    assert_eq!(recorded["kind"], "anywhere");
}
