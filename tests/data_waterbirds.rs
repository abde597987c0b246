//! The real-format Waterbirds loader on the committed fixture `tests/fixtures/waterbirds_mini/` (dotted CUB species
//! folders, odd-size JPEGs, PNGs, CRLF `metadata.csv`, `fg_masks/`) and every bad-input case.
//!
//! The fixture is made by [`write_fixture`]; `fixture_matches_its_generator` checks the committed bytes against
//! it. To remake it: `cargo test --release --test data_waterbirds -- --ignored regenerate_fixture`.
use image::{ImageBuffer, Luma, Rgb};
use std::path::{Path, PathBuf};
use texplain::data::waterbirds::load;
use texplain::data::{DataError, LoadOptions, Split};

mod common;

use common::{copy_dir, files};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/waterbirds_mini")
}

/// (img_id, file, y, split, place, place_filename, width, height, colour of the left/top half, of the other half)
type Row = (
    i64,
    &'static str,
    i64,
    i64,
    i64,
    &'static str,
    u32,
    u32,
    [u8; 3],
    [u8; 3],
);

const ROWS: [Row; 7] = [
    (
        1,
        "001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg",
        1,
        0,
        1,
        "/o/ocean/00002178.jpg",
        45,
        31,
        [200, 30, 30],
        [30, 30, 200],
    ),
    (
        2,
        "001.Black_footed_Albatross/Black_Footed_Albatross_0009_34.jpg",
        1,
        0,
        0,
        "/b/bamboo_forest/00004409.jpg",
        31,
        45,
        [30, 180, 30],
        [240, 240, 240],
    ),
    (
        3,
        "002.Laysan_Albatross/Laysan_Albatross_0002_1027.png",
        1,
        1,
        1,
        "/l/lake/natural/00001230.jpg",
        16,
        16,
        [10, 10, 10],
        [250, 250, 250],
    ),
    (
        4,
        "031.Black_billed_Cuckoo/Black_Billed_Cuckoo_0010_26242.jpg",
        0,
        0,
        0,
        "/f/forest/broadleaf/00000016.jpg",
        64,
        48,
        [120, 80, 40],
        [200, 200, 60],
    ),
    (
        5,
        "031.Black_billed_Cuckoo/Black_Billed_Cuckoo_0025_795.jpg",
        0,
        2,
        1,
        "/o/ocean/00003921.jpg",
        23,
        37,
        [90, 90, 200],
        [20, 120, 200],
    ),
    (
        6,
        "095.Baltimore_Oriole/Baltimore_Oriole_0043_87158.png",
        0,
        2,
        0,
        "/b/bamboo_forest/00000477.jpg",
        40,
        40,
        [240, 140, 20],
        [20, 20, 20],
    ),
    (
        7,
        "095.Baltimore_Oriole/Baltimore_Oriole_0101_87193.png",
        0,
        0,
        1,
        "/l/lake/natural/00000911.jpg",
        20,
        20,
        [60, 60, 60],
        [200, 220, 240],
    ),
];

/// Writes the fixture: two-colour images split along their longer axis, masks with 255 on the first half, and a
/// CRLF `metadata.csv` in the exact group_DRO header.
fn write_fixture(dir: &Path) {
    let mut meta = String::from("img_id,img_filename,y,split,place,place_filename\r\n");
    for (id, file, y, split, place, pf, w, h, a, b) in ROWS {
        let first_half = |x: u32, yy: u32| if w >= h { x < w / 2 } else { yy < h / 2 };
        let img = ImageBuffer::from_fn(w, h, |x, yy| Rgb(if first_half(x, yy) { a } else { b }));
        let mask = ImageBuffer::from_fn(w, h, |x, yy| {
            Luma([if first_half(x, yy) { 255u8 } else { 0 }])
        });
        let path = dir.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        img.save(&path).unwrap();
        let mpath = dir
            .join("fg_masks")
            .join(Path::new(file).with_extension("png"));
        std::fs::create_dir_all(mpath.parent().unwrap()).unwrap();
        mask.save(&mpath).unwrap();
        meta.push_str(&format!("{id},{file},{y},{split},{place},{pf}\r\n"));
    }
    std::fs::write(dir.join("metadata.csv"), meta).unwrap();
}

/// A writable copy of the fixture.
fn copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&fixture(), tmp.path());
    tmp
}

fn opts(size: i64) -> LoadOptions {
    LoadOptions {
        image_size: size,
        skip_corrupt: false,
    }
}

#[test]
#[ignore = "rewrites the committed fixture"]
fn regenerate_fixture() {
    let dir = fixture();
    let _ = std::fs::remove_dir_all(&dir);
    write_fixture(&dir);
}

#[test]
fn fixture_matches_its_generator() {
    let tmp = tempfile::tempdir().unwrap();
    write_fixture(tmp.path());
    assert_eq!(files(tmp.path()), files(&fixture()));
    for f in files(&fixture()) {
        assert_eq!(
            std::fs::read(tmp.path().join(&f)).unwrap(),
            std::fs::read(fixture().join(&f)).unwrap(),
            "{f:?}"
        );
    }
    let meta = std::fs::read_to_string(fixture().join("metadata.csv")).unwrap();
    assert!(
        meta.contains("\r\n"),
        "the fixture must exercise CRLF line endings"
    );
}

#[test]
fn loads_each_split_with_geometry_and_masks() {
    let ds = load(&fixture(), Split::Train, &opts(8)).unwrap();
    assert_eq!(ds.len(), 4);
    assert_eq!(ds.img_ids, vec![1, 2, 4, 7]);
    assert_eq!(ds.y, vec![1, 1, 0, 0]);
    assert_eq!(ds.place, vec![1, 0, 0, 1]);
    assert_eq!(ds.groups(), vec![3, 2, 0, 1]);
    assert_eq!(
        ds.filenames[0],
        "001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg"
    );
    assert_eq!(ds.images.size(), vec![4, 3, 8, 8]);
    assert_eq!(ds.images.kind(), tch::Kind::Uint8);
    // Image 1 (45x31 JPEG, red left / blue right) -> resized to 12x8, centre 8x8 keeps both halves.
    let px = |i: i64, c: i64, y: i64, x: i64| ds.images.int64_value(&[i, c, y, x]);
    assert!(px(0, 0, 4, 0) > 150 && px(0, 2, 4, 0) < 80, "left is red");
    assert!(px(0, 2, 4, 7) > 150 && px(0, 0, 4, 7) < 80, "right is blue");
    // Image 2 (31x45, portrait): green top, white bottom.
    assert!(px(1, 1, 0, 4) > 150 && px(1, 0, 0, 4) < 80);
    assert!(px(1, 0, 7, 4) > 200);
    let masks = ds.bird_masks.as_ref().expect("fixture ships fg_masks");
    assert_eq!(masks.size(), vec![4, 1, 8, 8]);
    assert_eq!(masks.int64_value(&[0, 0, 4, 0]), 1);
    assert_eq!(masks.int64_value(&[0, 0, 4, 7]), 0);
    assert_eq!(masks.int64_value(&[1, 0, 0, 4]), 1);
    assert_eq!(masks.int64_value(&[1, 0, 7, 4]), 0);

    let val = load(&fixture(), Split::Val, &opts(8)).unwrap();
    assert_eq!(val.img_ids, vec![3]);
    let test = load(&fixture(), Split::Test, &opts(5)).unwrap();
    assert_eq!(test.img_ids, vec![5, 6]);
    assert_eq!(test.images.size(), vec![2, 3, 5, 5]);
    let sub = test.select(&[1]);
    assert_eq!(sub.img_ids, vec![6]);
    assert_eq!(sub.images.size(), vec![1, 3, 5, 5]);
    assert_eq!(sub.bird_masks.unwrap().size(), vec![1, 1, 5, 5]);
}

#[test]
fn without_mask_folder_bird_masks_are_none() {
    let tmp = copy();
    std::fs::remove_dir_all(tmp.path().join("fg_masks")).unwrap();
    let ds = load(tmp.path(), Split::Train, &opts(8)).unwrap();
    assert!(ds.bird_masks.is_none());
}

fn rewrite_meta(dir: &Path, f: impl Fn(&str) -> String) {
    let p = dir.join("metadata.csv");
    let s = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, f(&s)).unwrap();
}

fn err_text(e: DataError) -> String {
    e.to_string()
}

#[test]
fn missing_columns_are_named() {
    let tmp = copy();
    rewrite_meta(tmp.path(), |s| {
        s.replacen(
            "img_id,img_filename,y,split,place,",
            "img_id,img_filename,label,split,",
            1,
        )
    });
    let e = err_text(load(tmp.path(), Split::Train, &opts(8)).unwrap_err());
    assert!(e.contains("metadata.csv"), "{e}");
    assert!(e.contains("missing column(s) [\"y\", \"place\"]"), "{e}");
}

#[test]
fn unknown_codes_report_count_lines_and_values() {
    let tmp = copy();
    rewrite_meta(tmp.path(), |s| {
        s.replace(
            "Black_Footed_Albatross_0046_18.jpg,1,0,1",
            "Black_Footed_Albatross_0046_18.jpg,7,0,1",
        )
        .replace(
            "Laysan_Albatross_0002_1027.png,1,1,1",
            "Laysan_Albatross_0002_1027.png,1,5,1",
        )
        .replace(
            "Baltimore_Oriole_0101_87193.png,0,0,1",
            "Baltimore_Oriole_0101_87193.png,0,0,water",
        )
    });
    let e = err_text(load(tmp.path(), Split::Train, &opts(8)).unwrap_err());
    assert!(e.contains("metadata.csv"), "{e}");
    assert!(e.contains("3 row(s)"), "{e}");
    assert!(e.contains("line 2: y=\"7\""), "{e}");
    assert!(e.contains("line 4: split=\"5\""), "{e}");
    assert!(e.contains("line 8: place=\"water\""), "{e}");
}

#[test]
fn missing_images_report_count_and_names() {
    let tmp = copy();
    std::fs::remove_file(tmp.path().join(ROWS[0].1)).unwrap();
    std::fs::remove_file(tmp.path().join(ROWS[3].1)).unwrap();
    let e = err_text(load(tmp.path(), Split::Train, &opts(8)).unwrap_err());
    assert!(e.contains("2 image(s)"), "{e}");
    assert!(e.contains("do not exist"), "{e}");
    assert!(
        e.contains("Black_Footed_Albatross_0046_18.jpg (line 2)"),
        "{e}"
    );
    assert!(
        e.contains("Black_Billed_Cuckoo_0010_26242.jpg (line 5)"),
        "{e}"
    );
    // Other splits are unaffected.
    assert_eq!(load(tmp.path(), Split::Test, &opts(8)).unwrap().len(), 2);
}

#[test]
fn corrupt_images_report_count_and_names() {
    let tmp = copy();
    std::fs::write(tmp.path().join(ROWS[1].1), b"not a jpeg at all").unwrap();
    let e = err_text(load(tmp.path(), Split::Train, &opts(8)).unwrap_err());
    assert!(e.contains("1 image(s) could not be decoded"), "{e}");
    assert!(
        e.contains("Black_Footed_Albatross_0009_34.jpg (line 3)"),
        "{e}"
    );
}

#[test]
fn skip_corrupt_drops_missing_and_corrupt_images() {
    let tmp = copy();
    std::fs::write(tmp.path().join(ROWS[1].1), b"garbage").unwrap();
    std::fs::remove_file(tmp.path().join(ROWS[6].1)).unwrap();
    let o = LoadOptions {
        image_size: 8,
        skip_corrupt: true,
    };
    let ds = load(tmp.path(), Split::Train, &o).unwrap();
    assert_eq!(ds.img_ids, vec![1, 4]);
    assert_eq!(ds.images.size(), vec![2, 3, 8, 8]);
    assert_eq!(ds.bird_masks.unwrap().size(), vec![2, 1, 8, 8]);
}

#[test]
fn split_parsing_and_groups() {
    for (s, split, code) in [
        ("train", Split::Train, 0),
        ("val", Split::Val, 1),
        ("TEST", Split::Test, 2),
    ] {
        let parsed: Split = s.parse().unwrap();
        assert_eq!(parsed, split);
        assert_eq!(parsed.code(), code);
        assert_eq!(Split::from_code(code), Some(split));
        assert_eq!(split.to_string(), s.to_lowercase());
    }
    assert!("holdout".parse::<Split>().is_err());
    assert_eq!(
        [(0, 0), (0, 1), (1, 0), (1, 1)].map(|(y, p)| texplain::data::group(y, p)),
        [0, 1, 2, 3]
    );
}
