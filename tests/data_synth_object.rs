//! The object setting of the synthetic Waterbirds (issue 24, Build 2): train (y, object) counts follow the object's
//! correlation exactly and place its own, val/test are balanced, the loader reads the `object` attribute and the
//! object masks, captions name the dock exactly where it is drawn, the caption set carries it independently of the
//! bird, and a `waterbirds_object` config without the object is refused.
use std::collections::HashMap;
use texplain::config::Experiment;
use texplain::data::captions::{synth_caption_set, CaptionSetConfig};
use texplain::data::scene::object::CaptionObjects;
use texplain::data::scene::SpuriousObject;
use texplain::data::synth::{generate, object_cell_counts, SynthConfig};
use texplain::data::waterbirds::{load_with_attr, read_metadata};
use texplain::data::words::object_words;
use texplain::data::{LoadOptions, Split};

fn names_object(caption: &str) -> bool {
    let words = object_words();
    caption.split_whitespace().any(|w| words.contains(&w))
}

fn object_cfg() -> SynthConfig {
    SynthConfig {
        scale: 0.05,
        size: 32,
        correlation: 0.7,
        seed: 3,
        variants: false,
        spurious_object: Some(SpuriousObject::default()),
        place_masks: true,
        ..SynthConfig::default()
    }
}

#[test]
fn object_counts_masks_and_captions() {
    let d = tempfile::tempdir().unwrap();
    let cfg = object_cfg();
    let summary = generate(&cfg, d.path()).unwrap();
    let meta = std::fs::read_to_string(d.path().join("metadata.csv")).unwrap();
    assert_eq!(
        meta.lines().next().unwrap(),
        "img_id,img_filename,y,split,place,place_filename,object"
    );
    // Every (split, y, object, place) cell holds exactly its count.
    let cells = object_cell_counts(0.05, 0.7, 0.9);
    let objects = read_metadata(&d.path().join("metadata.csv"), "object").unwrap();
    let places = read_metadata(&d.path().join("metadata.csv"), "place").unwrap();
    let mut got = [[[0usize; 2]; 4]; 3];
    for (o, p) in objects.iter().zip(&places) {
        got[o.split.code() as usize][(2 * o.y + o.place) as usize][p.place as usize] += 1;
    }
    assert_eq!(got, cells);
    // Train at scale 0.05: landbirds 175 + 9 = 184, waterbirds 3 + 53 = 56; 10 % / 90 % carry the dock.
    let yo = got.map(|s| s.map(|p| p[0] + p[1]));
    assert_eq!(yo[0], [166, 18, 6, 50]);
    assert_eq!(summary.object_counts, Some(yo));
    // Val and test: the dock on half of each class, and half of each (class, dock) cell on each place.
    assert_eq!(yo[1], [23, 23, 7, 7]);
    assert_eq!(yo[2], [113, 113, 32, 32]);
    assert_eq!(got[2][1], [57, 56]);

    // The loader reads the object as the attribute, with the bird and object masks.
    let opts = LoadOptions {
        image_size: 32,
        skip_corrupt: false,
    };
    let train = load_with_attr(d.path(), Split::Train, &opts, "object").unwrap();
    let n_obj = train.place.iter().filter(|&&a| a == 1).count();
    assert_eq!(n_obj, 18 + 50);
    let om = train
        .object_masks
        .as_ref()
        .expect("object_masks/ is written");
    let bm = train.bird_masks.as_ref().unwrap();
    let per_image =
        Vec::<i64>::try_from(om.sum_dim_intlist([1i64, 2, 3].as_slice(), false, tch::Kind::Int64))
            .unwrap();
    let mut visible = 0;
    for (i, &a) in train.place.iter().enumerate() {
        if a == 0 {
            assert_eq!(per_image[i], 0, "image {i} has no object but a mask");
        } else if per_image[i] > 0 {
            visible += 1;
        }
    }
    assert!(
        visible * 10 >= n_obj * 9,
        "{visible} of {n_obj} docks visible"
    );
    let overlap =
        (om.to_kind(tch::Kind::Int64) * bm.to_kind(tch::Kind::Int64)).sum(tch::Kind::Int64);
    assert_eq!(
        i64::try_from(overlap).unwrap(),
        0,
        "object and bird masks overlap"
    );
    // The place mask leaves the dock out, as it leaves the bird out.
    let pm = train.place_masks.as_ref().expect("place_masks/ is written");
    for (other, name) in [(om, "object"), (bm, "bird")] {
        let both =
            (pm.to_kind(tch::Kind::Int64) * other.to_kind(tch::Kind::Int64)).sum(tch::Kind::Int64);
        assert_eq!(
            i64::try_from(both).unwrap(),
            0,
            "place and {name} masks overlap"
        );
    }
    assert!(i64::try_from(pm.sum(tch::Kind::Int64)).unwrap() > 0);

    // Captions name the dock on every image that carries it and on no other.
    let mut rdr = csv::Reader::from_path(d.path().join("captions.csv")).unwrap();
    let mut caps: HashMap<i64, Vec<String>> = HashMap::new();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        caps.entry(rec[0].parse().unwrap())
            .or_default()
            .push(rec[1].to_string());
    }
    for r in &objects {
        let c = &caps[&r.img_id];
        assert_eq!(c.len(), 5);
        for s in c {
            assert_eq!(
                names_object(s),
                r.place == 1,
                "image {} ({}): {s:?}",
                r.img_id,
                r.place
            );
        }
    }
}

#[test]
fn the_caption_set_carries_the_dock_on_both_places_with_and_without_birds() {
    let d = tempfile::tempdir().unwrap();
    let cfg = CaptionSetConfig {
        n_images: 240,
        size: 32,
        corpus_sentences: 2000,
        objects: Some(CaptionObjects::default()),
        ..CaptionSetConfig::default()
    };
    synth_caption_set(&cfg, d.path()).unwrap();
    let mut rdr = csv::Reader::from_path(d.path().join("scenes.csv")).unwrap();
    assert_eq!(rdr.headers().unwrap().iter().next_back(), Some("object"));
    let mut with: HashMap<String, bool> = HashMap::new();
    // [bird][water] scenes with the dock.
    let mut cells = [[0usize; 2]; 2];
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let on = &rec[7] == "dock";
        with.insert(rec[0].to_string(), on);
        let water = matches!(&rec[3], "Ocean" | "Lake" | "Pond");
        if on {
            cells[usize::from(&rec[1] == "1")][usize::from(water)] += 1;
        }
    }
    let n_on = with.values().filter(|&&v| v).count();
    assert!(
        (40..=105).contains(&n_on),
        "{n_on} of 240 scenes with the dock (fraction 0.3)"
    );
    assert!(cells.iter().flatten().all(|&c| c > 0), "{cells:?}");
    let mut rdr = csv::Reader::from_path(d.path().join("captions.csv")).unwrap();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        assert_eq!(names_object(&rec[1]), with[&rec[0]], "{:?}", &rec[1]);
    }
    let corpus = std::fs::read_to_string(d.path().join("corpus.txt")).unwrap();
    let n = corpus.lines().filter(|l| names_object(l)).count();
    assert!(
        (500..=700).contains(&n),
        "{n} of 2000 corpus sentences name the dock"
    );
}

#[test]
fn waterbirds_object_needs_the_object() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    let yaml = |extra: &str| {
        format!(
            "name: t\ndata:\n  kind: waterbirds_object\n  root: {}\n  image_size: 32\n  synth: {{size: 32{extra}}}\nclassifier:\n  patch_size: 8\n  train: {{lr: 0.001, epochs: 1, batch_size: 4}}\n",
            dir.path().join("wb").display()
        )
    };
    std::fs::write(&path, yaml("")).unwrap();
    let err = format!("{:#}", Experiment::load(&path, &[]).unwrap_err());
    assert!(
        err.contains("waterbirds_object") && err.contains("spurious_object"),
        "{err}"
    );
    std::fs::write(
        &path,
        yaml(", spurious_object: {kind: dock, correlation: 0.9, size: 0.3}"),
    )
    .unwrap();
    let exp = Experiment::load(&path, &[]).unwrap();
    assert_eq!(exp.config.data.kind.attr_column(), "object");
    std::fs::write(
        &path,
        yaml(", spurious_object: {kind: dock, correlation: 2.0, size: 0.3}"),
    )
    .unwrap();
    let err = format!("{:#}", Experiment::load(&path, &[]).unwrap_err());
    assert!(
        err.contains("spurious_object.correlation") && err.contains('2'),
        "{err}"
    );
}
