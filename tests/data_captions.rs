//! The synthetic caption set (bird-free scenes never say "bird"; visible birds are named; its bytes pinned), the
//! upstream caption set (every category and bare place on every place; objects and places named; object-free scenes
//! name no object), the real caption readers (CSV, COCO JSON), image loading, Cats & Apples, and `inspect`.
use std::collections::HashMap;
use std::path::Path;
use texplain::data::captions::{
    load_coco, load_csv, load_images, synth_caption_set, CaptionSetConfig,
};
use texplain::data::cats_apples::{self, CatsApplesConfig};
use texplain::data::inspect::inspect;
use texplain::data::scene::Species;
use texplain::data::upstream_captions::{
    caption_set, object_words, place_nouns, UpstreamCaptionConfig, SCENES_FILE,
};
use texplain::data::upstream_scene::{Category, UpstreamBackground};
use texplain::data::waterbirds::{load_with_attr, read_metadata};
use texplain::data::{LoadOptions, Split};

mod common;

use common::tree_digest;

fn words(s: &str) -> Vec<&str> {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect()
}

#[test]
fn caption_set_is_balanced_and_birdless_scenes_never_say_bird() {
    let d = tempfile::tempdir().unwrap();
    let cfg = CaptionSetConfig {
        n_images: 168,
        size: 32,
        corpus_sentences: 2000,
        ..CaptionSetConfig::default()
    };
    let s = synth_caption_set(&cfg, d.path()).unwrap();
    assert_eq!(s.n_images, 168);
    assert_eq!(s.n_captions, 168 * 5);
    // One full cycle: 10 species + 4 no-bird slots, x 6 backgrounds x 2 distractor settings.
    assert_eq!(s.n_without_bird, 4 * 6 * 2);

    let mut scenes = csv::Reader::from_path(d.path().join("scenes.csv")).unwrap();
    let info: HashMap<String, (bool, f32)> = scenes
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), (&r[1] == "1", r[5].parse().unwrap()))
        })
        .collect();
    let pairs = load_csv(&d.path().join("captions.csv")).unwrap();
    assert_eq!(pairs.len(), 168 * 5);
    let species: Vec<&str> = Species::ALL.iter().map(|s| s.word()).collect();
    let (mut big, mut big_named) = (0, 0);
    for p in &pairs {
        assert!(p.image.is_file(), "{:?}", p.image);
        let rel = p
            .image
            .strip_prefix(d.path())
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let (has_bird, vis) = info[&rel];
        let ws = words(&p.caption);
        let names_bird = ws.iter().any(|w| *w == "bird" || species.contains(w));
        if !has_bird {
            assert!(!names_bird, "bird-free scene {rel}: {:?}", p.caption);
        }
        if has_bird && vis >= 0.25 {
            big += 1;
            big_named += names_bird as usize;
        }
    }
    assert!(big > 0);
    assert_eq!(big, big_named, "a clearly visible bird is always named");

    let corpus = std::fs::read_to_string(d.path().join("corpus.txt")).unwrap();
    let lines: Vec<&str> = corpus.lines().collect();
    assert_eq!(lines.len(), 2000);
    let birdless = lines.iter().filter(|l| !words(l).contains(&"bird")).count();
    assert!(
        birdless > 400,
        "the corpus must hold sentences without 'bird' ({birdless})"
    );

    let paths: Vec<_> = pairs.iter().take(6).map(|p| p.image.clone()).collect();
    let t = load_images(
        &paths,
        &LoadOptions {
            image_size: 16,
            skip_corrupt: false,
        },
    )
    .unwrap();
    assert_eq!(t.size(), vec![6, 3, 16, 16]);
    let mut bad = paths.clone();
    bad.push(d.path().join("images/nope.png"));
    let e = load_images(&bad, &LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("1 image(s)") && e.contains("nope.png"), "{e}");
}

#[test]
fn the_waterbirds_caption_set_keeps_its_bytes() {
    // Written by the grammar before it grew to the upstream scenes (commit 2cd294b): the Waterbirds caption set and
    // corpus, which the quickstart's reference results depend on, are unchanged byte for byte.
    let d = tempfile::tempdir().unwrap();
    let cfg = CaptionSetConfig {
        n_images: 60,
        size: 32,
        seed: 4,
        corpus_sentences: 300,
        ..CaptionSetConfig::default()
    };
    synth_caption_set(&cfg, d.path()).unwrap();
    assert_eq!(
        tree_digest(d.path()),
        (
            "5d27aff77b64e675ad640077f73c8ed162b6605d2734fe516d7d50c08a31b28d".to_string(),
            63
        )
    );
}

#[test]
fn upstream_caption_set_is_balanced_and_names_objects_and_places() {
    let d = tempfile::tempdir().unwrap();
    // 22 categories + 7 object-free slots (0.25 of the cycle), x 13 places: one full cycle.
    let cfg = UpstreamCaptionConfig {
        n_images: 29 * 13,
        size: 24,
        corpus_sentences: 3000,
        supersample: 1,
        ..UpstreamCaptionConfig::default()
    };
    let s = caption_set(&cfg, d.path()).unwrap();
    assert_eq!(s.n_images, 29 * 13);
    assert_eq!(s.n_captions, 29 * 13 * 5);
    assert_eq!(s.n_without_object, 7 * 13);
    assert_eq!(s.n_without_bird, 19 * 13, "bare places and the 12 objects");
    let mut scenes = csv::Reader::from_path(d.path().join(SCENES_FILE)).unwrap();
    let mut cells: HashMap<(String, String), usize> = HashMap::new();
    let mut info: HashMap<String, (String, String, f32)> = HashMap::new();
    for r in scenes.records() {
        let r = r.unwrap();
        *cells
            .entry((r[1].to_string(), r[2].to_string()))
            .or_default() += 1;
        info.insert(
            r[0].to_string(),
            (r[1].to_string(), r[2].to_string(), r[3].parse().unwrap()),
        );
    }
    // Every category, and no object, on every place: no caption ties an object to a place.
    for c in Category::all() {
        for b in UpstreamBackground::ALL {
            assert_eq!(cells[&(c.word().to_string(), b.name().to_string())], 1);
        }
    }
    for b in UpstreamBackground::ALL {
        assert_eq!(cells[&(String::new(), b.name().to_string())], 7);
    }
    let objects: Vec<&str> = Category::all()
        .into_iter()
        .filter(|c| !c.is_bird())
        .map(|c| c.word())
        .collect();
    let species: Vec<&str> = Species::ALL.iter().map(|s| s.word()).collect();
    let (mut visible, mut named) = (0, 0);
    for p in load_csv(&d.path().join("captions.csv")).unwrap() {
        let rel = p.image.strip_prefix(d.path()).unwrap().to_str().unwrap();
        let (object, place, vis) = &info[rel];
        let ws = words(&p.caption);
        let bg = UpstreamBackground::ALL
            .into_iter()
            .find(|b| b.name() == place)
            .unwrap();
        assert!(
            place_nouns(bg).iter().any(|n| ws.contains(n)),
            "{place}: {:?}",
            p.caption
        );
        let named_object = |w: &str| objects.contains(&w) || w == "bird" || species.contains(&w);
        if object.is_empty() {
            assert!(
                !ws.iter().any(|w| named_object(w)),
                "bare {place}: {:?}",
                p.caption
            );
            continue;
        }
        let cat = Category::all()
            .into_iter()
            .find(|c| c.word() == object)
            .unwrap();
        let own = object_words(cat);
        assert!(
            !ws.iter().any(|w| named_object(w) && !own.contains(w)),
            "{object}: {:?}",
            p.caption
        );
        if *vis >= 0.25 {
            visible += 1;
            named += usize::from(own.iter().any(|w| ws.contains(w)));
        }
    }
    assert!(visible > 100, "{visible}");
    assert_eq!(visible, named, "a clearly visible object is always named");
    // The LM's corpus speaks of every object and every place.
    let corpus = std::fs::read_to_string(d.path().join("corpus.txt")).unwrap();
    let lines: Vec<&str> = corpus.lines().collect();
    assert_eq!(lines.len(), 3000);
    let vocabulary: std::collections::HashSet<&str> = lines.iter().flat_map(|l| words(l)).collect();
    for w in objects.iter().chain(&["bird"]) {
        assert!(vocabulary.contains(w), "{w}");
    }
    for b in UpstreamBackground::ALL {
        assert!(
            place_nouns(b).iter().any(|n| vocabulary.contains(n)),
            "{b:?}"
        );
    }
    // Same config, same bytes; another seed, other images.
    let again = tempfile::tempdir().unwrap();
    caption_set(&cfg, again.path()).unwrap();
    assert_eq!(tree_digest(d.path()), tree_digest(again.path()));
    let other = tempfile::tempdir().unwrap();
    caption_set(&UpstreamCaptionConfig { seed: 2, ..cfg }, other.path()).unwrap();
    assert_ne!(
        std::fs::read(d.path().join("images/000001.png")).unwrap(),
        std::fs::read(other.path().join("images/000001.png")).unwrap()
    );
}

#[test]
fn coco_and_csv_readers() {
    let d = tempfile::tempdir().unwrap();
    let json = r#"{"info":{},"images":[{"id":9,"file_name":"000000000009.jpg","height":480,"width":640},
        {"id":25,"file_name":"000000000025.jpg"}],
        "annotations":[{"image_id":9,"id":1,"caption":"A plate of food. "},{"image_id":25,"id":2,"caption":"A giraffe."},
        {"image_id":9,"id":3,"caption":"Broccoli on a plate"}]}"#;
    let jp = d.path().join("captions_train2017.json");
    std::fs::write(&jp, json).unwrap();
    let pairs = load_coco(&jp, Path::new("/coco/train2017")).unwrap();
    assert_eq!(pairs.len(), 3);
    assert_eq!(
        pairs[0].image,
        Path::new("/coco/train2017/000000000009.jpg")
    );
    assert_eq!(pairs[0].caption, "A plate of food.");
    assert_eq!(
        pairs[1].image,
        Path::new("/coco/train2017/000000000025.jpg")
    );
    std::fs::write(
        &jp,
        r#"{"images":[],"annotations":[{"image_id":4,"caption":"x"}]}"#,
    )
    .unwrap();
    let e = load_coco(&jp, Path::new("/x")).unwrap_err().to_string();
    assert!(
        e.contains("captions_train2017.json") && e.contains("image_id 4"),
        "{e}"
    );

    let cp = d.path().join("sub/pairs.csv");
    std::fs::create_dir_all(cp.parent().unwrap()).unwrap();
    std::fs::write(&cp, "image,caption\r\nimg/a.png,\"a bird, on a lake\"\r\n").unwrap();
    let pairs = load_csv(&cp).unwrap();
    assert_eq!(pairs[0].image, d.path().join("sub/img/a.png"));
    assert_eq!(pairs[0].caption, "a bird, on a lake");
    std::fs::write(&cp, "file,text\n").unwrap();
    let e = load_csv(&cp).unwrap_err().to_string();
    assert!(e.contains("[\"image\", \"caption\"]"), "{e}");
}

#[test]
fn cats_apples_puts_apples_on_every_train_cat_and_captions_mention_them() {
    let d = tempfile::tempdir().unwrap();
    let cfg = CatsApplesConfig {
        n_train: 40,
        n_val: 10,
        n_test: 40,
        size: 32,
        ..CatsApplesConfig::default()
    };
    let s = cats_apples::generate(&cfg, d.path()).unwrap();
    assert_eq!(
        s.counts[0],
        [20, 0, 0, 20],
        "train: dogs never, cats always with an apple"
    );
    assert!(
        s.counts[2][1] > 0 && s.counts[2][2] > 0,
        "test: apples on both classes at random {:?}",
        s.counts
    );
    let rows = read_metadata(&d.path().join("metadata.csv"), "apple").unwrap();
    let apple: HashMap<i64, i64> = rows.iter().map(|r| (r.img_id, r.place)).collect();
    let mut rdr = csv::Reader::from_path(d.path().join("captions.csv")).unwrap();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let id: i64 = rec[0].parse().unwrap();
        assert_eq!(
            words(&rec[1]).contains(&"apple"),
            apple[&id] == 1,
            "{:?}",
            &rec[1]
        );
    }
    let ds = load_with_attr(
        d.path(),
        Split::Test,
        &LoadOptions {
            image_size: 32,
            skip_corrupt: false,
        },
        "apple",
    )
    .unwrap();
    assert_eq!(ds.len(), 40);
    assert!(ds.bird_masks.is_some());
}

#[test]
fn inspect_counts_fixture_and_writes_sheet() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/waterbirds_mini");
    let d = tempfile::tempdir().unwrap();
    let png = d.path().join("sheet.png");
    let r = inspect(&fixture, &png).unwrap();
    assert_eq!(r.counts, [[1, 1, 1, 1], [0, 0, 0, 1], [1, 1, 0, 0]]);
    let table = r.to_string();
    assert!(
        table.contains("train") && table.contains("g3 y1 place1"),
        "{table}"
    );
    let img = image::open(&png).unwrap();
    assert_eq!(img.height(), 4 * 66);
}

#[test]
fn inspect_caption_set_counts_prominence_tiers() {
    let d = tempfile::tempdir().unwrap();
    let cfg = CaptionSetConfig {
        n_images: 84,
        size: 16,
        corpus_sentences: 10,
        ..CaptionSetConfig::default()
    };
    synth_caption_set(&cfg, d.path()).unwrap();
    let png = d.path().join("sheet.png");
    let r = texplain::data::inspect::inspect_caption_set(d.path(), &png).unwrap();
    assert_eq!(r.tiers.iter().sum::<usize>(), 84);
    assert!(r.tiers[0] >= 24 && r.tiers[3] > 0, "{:?}", r.tiers);
    assert!(png.is_file());
}
