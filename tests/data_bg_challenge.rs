//! The ImageNet-9 / Background Challenge loader on the committed real-layout fixture and on malformed copies of
//! it, and .npy masks written by NumPy (fixtures written by scripts/make_bg_challenge_fixtures.py).
use std::path::{Path, PathBuf};
use tch::Kind;
use texplain::data::bg_challenge::{
    load_bg_challenge, load_class_folders, load_in9l, load_variant, Variant,
};
use texplain::data::npy;
use texplain::data::{DataError, LoadOptions, Split};

mod common;

use common::{copy_dir, files};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn opts(size: i64) -> LoadOptions {
    LoadOptions {
        image_size: size,
        skip_corrupt: false,
    }
}

fn mini() -> PathBuf {
    fixtures().join("bg_challenge_mini")
}

#[test]
fn loader_reads_the_real_layout_fixture() {
    let in9l = mini().join("in9l");
    let train = load_in9l(&in9l, Split::Train, &opts(32)).unwrap();
    assert_eq!(
        train.class_dirs,
        ["00_dog", "01_bird", "02_wheeled vehicle"]
    );
    assert_eq!(train.label_names, ["dog", "bird", "wheeled vehicle"]);
    assert_eq!(train.labels, [0, 0, 1, 1, 2, 2]);
    assert_eq!(train.files[4], "02_wheeled vehicle/n02701002_1004.JPEG");
    let val = load_in9l(&in9l, Split::Val, &opts(32)).unwrap();
    assert_eq!(val.labels, [0, 1, 2]);

    let root = mini().join("bg_challenge");
    let bgc = load_bg_challenge(&root, &Variant::ALL, &opts(32), true).unwrap();
    assert_eq!(bgc.label_names, ["dog", "bird", "wheeled vehicle"]);
    let orig = &bgc.variants[&Variant::Original];
    assert_eq!(orig.images.size(), [3, 3, 32, 32]);
    let mask = orig.fg_masks.as_ref().unwrap();
    assert_eq!(mask.size(), [3, 1, 32, 32]);
    // The 48x40 JPEG and its 40x48 uint8 mask keep one geometry through resize + centre crop: the red ellipse is
    // where the mask says.
    let red = orig.images.narrow(1, 0, 1).to_kind(Kind::Float);
    let m = mask.to_kind(Kind::Bool);
    let red_in = red.masked_select(&m).mean(Kind::Float).double_value(&[]);
    let red_out = red
        .masked_select(&m.logical_not())
        .mean(Kind::Float)
        .double_value(&[]);
    assert!(
        red_in > 180.0 && red_out < 60.0,
        "red inside {red_in}, outside {red_out}"
    );
    let mixed = &bgc.variants[&Variant::MixedRand];
    assert_eq!(
        mixed.files[0],
        "00_dog/fg_n02085620_10009_bg_n02701002_10011.JPEG"
    );
    assert_eq!(mixed.fg_masks.as_ref().unwrap(), mask);
    // Without masks nothing needs fg_mask/.
    let only_fg = load_variant(&root, Variant::OnlyFg, &opts(16), false).unwrap();
    assert!(only_fg.fg_masks.is_none());
    assert_eq!(only_fg.images.size(), [3, 3, 16, 16]);
}

fn err_of(r: Result<impl std::fmt::Debug, DataError>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn loader_names_what_is_wrong_in_a_malformed_layout() {
    let variants = [
        Variant::Original,
        Variant::OnlyFg,
        Variant::MixedRand,
        Variant::MixedSame,
    ];
    let fresh = || {
        let t = tempfile::tempdir().unwrap();
        copy_dir(&mini(), t.path());
        t
    };
    // A class folder missing from one variant.
    let t = fresh();
    let bgc = t.path().join("bg_challenge");
    std::fs::remove_dir_all(bgc.join("mixed_rand/val/01_bird")).unwrap();
    let e = err_of(load_bg_challenge(&bgc, &variants, &opts(32), false));
    assert!(
        e.contains("mixed_rand/val") && e.contains("missing [\"01_bird\"]"),
        "{e}"
    );
    // An extra class in the masks.
    let t = fresh();
    let bgc = t.path().join("bg_challenge");
    std::fs::create_dir_all(bgc.join("fg_mask/val/03_reptile")).unwrap();
    let e = err_of(load_bg_challenge(&bgc, &variants, &opts(32), true));
    assert!(
        e.contains("fg_mask/val") && e.contains("extra [\"03_reptile\"]"),
        "{e}"
    );
    // An unreadable .npy.
    let t = fresh();
    let bgc = t.path().join("bg_challenge");
    std::fs::write(
        bgc.join("fg_mask/val/01_bird/n01530575_10010.npy"),
        b"not numpy",
    )
    .unwrap();
    let e = err_of(load_bg_challenge(&bgc, &variants, &opts(32), true));
    assert!(
        e.contains("n01530575_10010.npy") && e.contains("bad magic"),
        "{e}"
    );
    // A missing .npy.
    std::fs::remove_file(bgc.join("fg_mask/val/01_bird/n01530575_10010.npy")).unwrap();
    let e = err_of(load_variant(&bgc, Variant::MixedSame, &opts(32), true));
    assert!(
        e.contains("n01530575_10010.npy") && e.contains("mask(s) missing"),
        "{e}"
    );
    // An image that does not decode.
    let t = fresh();
    let bad = t.path().join("in9l/train/00_dog/n02085620_1000.JPEG");
    std::fs::write(&bad, b"\xff\xd8 truncated").unwrap();
    let e = err_of(load_in9l(&t.path().join("in9l"), Split::Train, &opts(32)));
    assert!(
        e.contains("n02085620_1000.JPEG") && e.contains("could not be decoded"),
        "{e}"
    );
    // ... unless corrupt images are skipped.
    let skip = LoadOptions {
        image_size: 32,
        skip_corrupt: true,
    };
    let d = load_in9l(&t.path().join("in9l"), Split::Train, &skip).unwrap();
    assert_eq!(d.labels, [0, 1, 1, 2, 2]);
    // An empty class folder, a missing variant, a mixed file that names no foreground.
    let t = fresh();
    for f in files(&t.path().join("in9l/val/01_bird")) {
        std::fs::remove_file(t.path().join("in9l/val/01_bird").join(f)).unwrap();
    }
    let e = err_of(load_in9l(&t.path().join("in9l"), Split::Val, &opts(32)));
    assert!(
        e.contains("in9l/val/01_bird") && e.contains("no images"),
        "{e}"
    );
    let bgc = t.path().join("bg_challenge");
    std::fs::remove_dir_all(bgc.join("only_fg")).unwrap();
    let e = err_of(load_bg_challenge(&bgc, &variants, &opts(32), false));
    assert!(
        e.contains("only_fg/val") && e.contains("no such folder"),
        "{e}"
    );
    let dir = bgc.join("mixed_same/val/00_dog");
    let f = files(&dir).remove(0);
    std::fs::rename(dir.join(&f), dir.join("n02085620_10009.JPEG")).unwrap();
    let e = err_of(load_variant(&bgc, Variant::MixedSame, &opts(32), true));
    assert!(
        e.contains("mixed_same/val") && e.contains("fg_<name>_bg_<other>"),
        "{e}"
    );
    // Loose files next to the class folders are not classes.
    std::fs::write(bgc.join("original/val/README.txt"), b"x").unwrap();
    assert_eq!(
        load_class_folders(&bgc.join("original/val"), &opts(16))
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn npy_files_written_by_numpy_decode_alike() {
    let dir = fixtures().join("npy");
    let pattern: Vec<u8> = std::fs::read_to_string(dir.join("pattern.txt"))
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    assert_eq!(pattern.len(), 12);
    for f in [
        "mask_u1.npy",
        "mask_b1.npy",
        "mask_f4.npy",
        "mask_f8_fortran.npy",
        "mask_i8_hw1.npy",
        "mask_u2_big_endian.npy",
        "mask_u1_v2.npy",
    ] {
        let (h, w, m) = npy::read_mask(&dir.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!((h, w), (3, 4), "{f}");
        assert_eq!(m, pattern, "{f}");
    }
    let a = npy::parse(&std::fs::read(dir.join("mask_u2_big_endian.npy")).unwrap()).unwrap();
    assert_eq!(a.dtype, npy::Dtype::U16);
    assert_eq!(a.data[1], 300.0);
    // Our writer produces numpy's bytes exactly.
    assert_eq!(
        npy::write_u8(&[3, 4], &pattern),
        std::fs::read(dir.join("mask_u1.npy")).unwrap()
    );
    let real = mini().join("bg_challenge/fg_mask/val/01_bird/n01530575_10010.npy");
    let (h, w, m) = npy::read_mask(&real).unwrap();
    assert_eq!(npy::write_u8(&[h, w], &m), std::fs::read(&real).unwrap());
}
