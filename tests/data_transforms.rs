//! Tensor transforms: normalisation values, augmentation determinism under `tch::manual_seed`, flips, and the
//! identity crop.
use std::sync::Mutex;
use tch::{Kind, Tensor};
use texplain::data::{augment, normalize, AugmentConfig};

/// libtorch's generator is global and the tests of this file run in parallel threads: every test that seeds it
/// and draws from it holds this lock, so another test's draws cannot interleave.
static GENERATOR: Mutex<()> = Mutex::new(());

fn batch() -> Tensor {
    // [4, 3, 8, 8]: a horizontal ramp, different per image.
    let ramp = Tensor::arange(8, (Kind::Float, tch::Device::Cpu)).view([1, 1, 1, 8]) * 30.0;
    let per = Tensor::arange(4, (Kind::Float, tch::Device::Cpu)).view([4, 1, 1, 1]);
    (ramp + per)
        .expand([4, 3, 8, 8], false)
        .to_kind(Kind::Uint8)
}

#[test]
fn normalize_maps_pixels_to_expected_values() {
    let x = Tensor::from_slice(&[0u8, 255, 51]).view([1, 3, 1, 1]);
    let y = normalize(&x, [0.5, 0.5, 0.2], [0.5, 0.5, 0.1]);
    let v: Vec<f32> = Vec::try_from(y.flatten(0, -1)).unwrap();
    assert!(
        (v[0] + 1.0).abs() < 1e-6 && (v[1] - 1.0).abs() < 1e-6 && v[2].abs() < 1e-5,
        "{v:?}"
    );
}

#[test]
fn augment_is_deterministic_given_manual_seed() {
    let _generator = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = AugmentConfig {
        flip: true,
        random_resized_crop: Some([0.3, 1.0]),
    };
    let x = batch();
    tch::manual_seed(3);
    let a = augment(&x, &cfg).unwrap();
    tch::manual_seed(3);
    let b = augment(&x, &cfg).unwrap();
    assert_eq!(a.size(), x.size());
    assert_eq!(a.kind(), Kind::Uint8);
    assert!(a.equal(&b));
    tch::manual_seed(4);
    assert!(!augment(&x, &cfg).unwrap().equal(&a));
}

#[test]
fn flip_only_gives_identity_or_mirror_per_image() {
    let _generator = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = AugmentConfig {
        flip: true,
        random_resized_crop: None,
    };
    let x = batch();
    tch::manual_seed(0);
    let y = augment(&Tensor::cat(&[&x, &x, &x, &x], 0), &cfg).unwrap();
    let mut flipped = 0;
    for i in 0..16 {
        let xi = x.get(i % 4);
        let yi = y.get(i);
        if yi.equal(&xi.flip([2])) {
            flipped += 1;
        } else {
            assert!(yi.equal(&xi), "image {i} is neither identity nor mirror");
        }
    }
    assert!(flipped > 0 && flipped < 16, "{flipped}");
}

#[test]
fn full_scale_crop_without_flip_is_identity() {
    let _generator = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let cfg = AugmentConfig {
        flip: false,
        random_resized_crop: Some([1.0, 1.0]),
    };
    let x = batch();
    tch::manual_seed(1);
    let y = augment(&x, &cfg).unwrap();
    // Aspect jitter at area 1 crops a little in one axis; values stay within the ramp's range.
    let diff = (y.to_kind(Kind::Float) - x.to_kind(Kind::Float))
        .abs()
        .max()
        .double_value(&[]);
    assert!(diff <= 60.0, "{diff}");
    let none = AugmentConfig {
        flip: false,
        random_resized_crop: None,
    };
    assert!(augment(&x, &none).unwrap().equal(&x));
    let bad = AugmentConfig {
        flip: false,
        random_resized_crop: Some([0.0, 2.0]),
    };
    assert!(augment(&x, &bad)
        .unwrap_err()
        .to_string()
        .contains("random_resized_crop"));
    assert!(
        augment(&x.get(0), &cfg).is_err(),
        "a 3-d tensor is rejected"
    );
}
