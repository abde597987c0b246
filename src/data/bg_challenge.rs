//! Loader for ImageNet-9 and the Background Challenge (Xiao et al. 2020, "Noise or Signal: The Role of Image
//! Backgrounds in Object Recognition"; layout of the MadryLab/backgrounds_challenge release), read alike from a
//! user's real download and from our synthetic upstream corpus ([`super::upstream`]):
//!
//! ```text
//! in9l/{train,val}/<NN_class>/<name>.JPEG                  IN-9L: labelled class folders (torchvision ImageFolder)
//! bg_challenge/<variant>/val/<NN_class>/<name>.JPEG        original, only_fg, no_fg, only_bg_b, only_bg_t
//! bg_challenge/<mixed>/val/<NN_class>/fg_<name>_bg_<other>.JPEG   mixed_same, mixed_rand, mixed_next
//! bg_challenge/fg_mask/val/<NN_class>/<name>.npy           foreground mask of <name>, [h, w], 1 = object
//! ```
//!
//! Labels follow ImageFolder: the class folders of a split sorted by name, label = position; the label names
//! (id2label) are the folder names with their `NN_` prefix removed (`02_wheeled vehicle` -> `wheeled vehicle`).
//! Every variant must hold the same class folders. Images decode like the Waterbirds loader (shorter side resized,
//! centre crop) into one uint8 tensor; `.npy` masks get the same geometry (nearest neighbour).
use super::npy;
use super::waterbirds::{decode_all, decode_masks, resize_crop, stack_chw};
use super::{first_offenders, DataError, LoadOptions, Split};
use image::imageops::FilterType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use tch::Tensor;

/// The folder of the foreground masks next to the variants.
pub const FG_MASK_DIR: &str = "fg_mask";

/// The split folder inside each variant (the release ships the validation split only).
pub const VAL_DIR: &str = "val";

/// File extensions torchvision's ImageFolder takes as images (compared case-insensitively). Only PNG and JPEG
/// decode here; the others are listed so that they fail loudly instead of being skipped.
pub const IMAGE_EXTENSIONS: [&str; 9] = [
    "jpg", "jpeg", "png", "ppm", "bmp", "pgm", "tif", "tiff", "webp",
];

/// A Background Challenge variant of the IN-9 validation images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// The unmodified images.
    Original,
    /// The object on black (the segmentation mask applied).
    OnlyFg,
    /// The object blacked out.
    NoFg,
    /// The object's bounding box blacked out.
    OnlyBgB,
    /// The object's bounding box filled with a tile of the image's own background.
    OnlyBgT,
    /// The object on the background of another image of the same class.
    MixedSame,
    /// The object on the background of a random image.
    MixedRand,
    /// The object on the background of an image of the next class.
    MixedNext,
}

impl Variant {
    pub const ALL: [Variant; 8] = [
        Variant::Original,
        Variant::OnlyFg,
        Variant::NoFg,
        Variant::OnlyBgB,
        Variant::OnlyBgT,
        Variant::MixedSame,
        Variant::MixedRand,
        Variant::MixedNext,
    ];

    /// The folder name in the release.
    pub fn name(self) -> &'static str {
        match self {
            Variant::Original => "original",
            Variant::OnlyFg => "only_fg",
            Variant::NoFg => "no_fg",
            Variant::OnlyBgB => "only_bg_b",
            Variant::OnlyBgT => "only_bg_t",
            Variant::MixedSame => "mixed_same",
            Variant::MixedRand => "mixed_rand",
            Variant::MixedNext => "mixed_next",
        }
    }

    /// Mixed variants name their files `fg_<name>_bg_<other>`.
    pub fn is_mixed(self) -> bool {
        matches!(
            self,
            Variant::MixedSame | Variant::MixedRand | Variant::MixedNext
        )
    }

    /// The file stem of the image whose foreground (and `.npy` mask) a file of this variant shows.
    pub fn foreground_stem(self, file_stem: &str) -> Option<String> {
        if self.is_mixed() {
            let rest = file_stem.strip_prefix("fg_")?;
            let at = rest.find("_bg_")?;
            Some(rest[..at].to_string())
        } else {
            Some(file_stem.to_string())
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Variant {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Variant::ALL
            .into_iter()
            .find(|v| v.name() == s.trim())
            .ok_or_else(|| {
                DataError::Invalid(format!(
                    "unknown Background Challenge variant {s:?} (expected one of {})",
                    Variant::ALL.map(|v| v.name()).join(", ")
                ))
            })
    }
}

/// A labelled split of class folders, decoded once and kept in memory.
#[derive(Debug)]
pub struct ClassFolders {
    /// [n, 3, s, s] uint8 on the CPU.
    pub images: Tensor,
    /// Label per image: the index of its folder in `class_dirs`.
    pub labels: Vec<i64>,
    /// The class folder names, sorted; the label is the position.
    pub class_dirs: Vec<String>,
    /// id2label: `class_dirs` without the `NN_` prefix.
    pub label_names: Vec<String>,
    /// `<class_dir>/<file name>` per image, relative to the split folder.
    pub files: Vec<String>,
    /// [n, 1, s, s] uint8, 1 = object, when masks were loaded.
    pub fg_masks: Option<Tensor>,
}

impl ClassFolders {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn num_classes(&self) -> usize {
        self.class_dirs.len()
    }

    /// Images per label.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.num_classes()];
        for &l in &self.labels {
            c[l as usize] += 1;
        }
        c
    }

    /// The rows `idx` (in that order) as a new dataset with the same classes.
    pub fn select(&self, idx: &[usize]) -> ClassFolders {
        let index = Tensor::from_slice(&idx.iter().map(|&i| i as i64).collect::<Vec<_>>());
        ClassFolders {
            images: self.images.index_select(0, &index),
            labels: idx.iter().map(|&i| self.labels[i]).collect(),
            class_dirs: self.class_dirs.clone(),
            label_names: self.label_names.clone(),
            files: idx.iter().map(|&i| self.files[i].clone()).collect(),
            fg_masks: self.fg_masks.as_ref().map(|m| m.index_select(0, &index)),
        }
    }
}

/// `NN_name` -> `name`; other names unchanged.
pub fn label_name(class_dir: &str) -> String {
    match class_dir.split_once('_') {
        Some((nn, rest))
            if !nn.is_empty() && !rest.is_empty() && nn.bytes().all(|b| b.is_ascii_digit()) =>
        {
            rest.to_string()
        }
        _ => class_dir.to_string(),
    }
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    if !dir.is_dir() {
        return Err(DataError::Invalid(format!(
            "{}: no such folder",
            dir.display()
        )));
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let e = e.map_err(|e| DataError::io(dir, e))?;
        let name = e.file_name();
        // Hidden entries (.DS_Store, ._foo) are not data, as in ImageFolder's listing on every platform we target.
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        out.push(e.path());
    }
    out.sort();
    Ok(out)
}

/// The class folder names of a split folder, sorted (ImageFolder's order). Loose files are ignored.
pub fn list_classes(dir: &Path) -> Result<Vec<String>, DataError> {
    let classes: Vec<String> = read_dir_sorted(dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    if classes.is_empty() {
        return Err(DataError::Invalid(format!(
            "{}: no class folders (expected <split>/<NN_class>/<image>)",
            dir.display()
        )));
    }
    Ok(classes)
}

fn is_image(p: &Path) -> bool {
    p.is_file()
        && p.extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.as_str()))
}

/// Loads a split folder of class folders (`<dir>/<class>/<image>`).
pub fn load_class_folders(dir: &Path, opts: &LoadOptions) -> Result<ClassFolders, DataError> {
    if opts.image_size <= 0 {
        return Err(DataError::Invalid(format!(
            "image_size must be positive, got {}",
            opts.image_size
        )));
    }
    let size = opts.image_size as u32;
    let class_dirs = list_classes(dir)?;
    let mut paths = Vec::new();
    let mut labels = Vec::new();
    let mut files = Vec::new();
    for (label, class) in class_dirs.iter().enumerate() {
        let cdir = dir.join(class);
        let images: Vec<PathBuf> = read_dir_sorted(&cdir)?
            .into_iter()
            .filter(|p| is_image(p))
            .collect();
        if images.is_empty() {
            return Err(DataError::Invalid(format!(
                "{}: class folder holds no images ({})",
                cdir.display(),
                IMAGE_EXTENSIONS.join(", ")
            )));
        }
        for p in images {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            files.push(format!("{class}/{name}"));
            labels.push(label as i64);
            paths.push(p);
        }
    }
    let decoded = decode_all(&paths, size);
    let mut bufs = Vec::with_capacity(paths.len());
    let mut keep = Vec::with_capacity(paths.len());
    let mut corrupt = Vec::new();
    for (i, res) in decoded.into_iter().enumerate() {
        match res {
            Ok(b) => {
                bufs.push(b);
                keep.push(i);
            }
            Err(e) => corrupt.push(format!("{}: {e}", paths[i].display())),
        }
    }
    if !corrupt.is_empty() {
        if !opts.skip_corrupt {
            return Err(DataError::CorruptImages {
                path: dir.to_path_buf(),
                count: corrupt.len(),
                first: first_offenders(&corrupt),
            });
        }
        tracing::warn!(
            "{}: skipping {} corrupt image(s), first: {}",
            dir.display(),
            corrupt.len(),
            first_offenders(&corrupt)
        );
    }
    tracing::info!(
        "loaded {} images in {} classes from {}",
        bufs.len(),
        class_dirs.len(),
        dir.display()
    );
    Ok(ClassFolders {
        images: stack_chw(&bufs, size as i64, 3),
        labels: keep.iter().map(|&i| labels[i]).collect(),
        label_names: class_dirs.iter().map(|c| label_name(c)).collect(),
        class_dirs,
        files: keep.into_iter().map(|i| files[i].clone()).collect(),
        fg_masks: None,
    })
}

/// Loads `<root>/train` or `<root>/val` of an IN-9L folder (there is no test split).
pub fn load_in9l(root: &Path, split: Split, opts: &LoadOptions) -> Result<ClassFolders, DataError> {
    if split == Split::Test {
        return Err(DataError::Invalid(format!(
            "{}: IN-9L has train and val splits only (its test sets are the Background Challenge variants)",
            root.display()
        )));
    }
    load_class_folders(&root.join(split.name()), opts)
}

/// The folder of one variant: `<root>/<variant>/val`.
pub fn variant_dir(root: &Path, variant: Variant) -> PathBuf {
    root.join(variant.name()).join(VAL_DIR)
}

/// Reads one `.npy` mask and gives it the image geometry: [s*s] 0/1 bytes.
pub fn decode_npy_mask(path: &Path, size: u32) -> Result<Vec<u8>, String> {
    let (h, w, m) = npy::read_mask(path)?;
    let img =
        image::GrayImage::from_raw(w as u32, h as u32, m.into_iter().map(|v| v * 255).collect())
            .ok_or_else(|| format!("mask of {h}x{w} does not fit its data"))?;
    Ok(resize_crop(&img, size, FilterType::Nearest)
        .into_raw()
        .into_iter()
        .map(|v| (v >= 128) as u8)
        .collect())
}

/// The foreground masks of a loaded variant from `<root>/fg_mask/val/<class>/<stem>.npy`, [n, 1, s, s] uint8.
pub fn load_fg_masks(
    root: &Path,
    variant: Variant,
    data: &ClassFolders,
) -> Result<Tensor, DataError> {
    let mask_root = root.join(FG_MASK_DIR).join(VAL_DIR);
    let size = data.images.size().last().copied().unwrap_or(0);
    let mut paths = Vec::with_capacity(data.len());
    let mut bad = Vec::new();
    for f in &data.files {
        let p = Path::new(f);
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let class = p.parent().map(|c| c.to_path_buf()).unwrap_or_default();
        match variant.foreground_stem(&stem) {
            Some(s) => paths.push(mask_root.join(class).join(format!("{s}.npy"))),
            None => bad.push(format!(
                "{f}: a {variant} file name must be fg_<name>_bg_<other>"
            )),
        }
    }
    if !bad.is_empty() {
        return Err(DataError::Invalid(format!(
            "{}: {} file(s) whose foreground cannot be named, first: {}",
            variant_dir(root, variant).display(),
            bad.len(),
            first_offenders(&bad)
        )));
    }
    let missing: Vec<String> = paths
        .iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .collect();
    if !missing.is_empty() {
        return Err(DataError::Invalid(format!(
            "{}: {} foreground mask(s) missing for {}, first: {}",
            mask_root.display(),
            missing.len(),
            variant_dir(root, variant).display(),
            first_offenders(&missing)
        )));
    }
    decode_masks(&paths, &mask_root, size, |p| {
        decode_npy_mask(p, size as u32)
    })
}

/// Loads one variant (`<root>/<variant>/val`), with its foreground masks when `masks`.
pub fn load_variant(
    root: &Path,
    variant: Variant,
    opts: &LoadOptions,
    masks: bool,
) -> Result<ClassFolders, DataError> {
    let mut d = load_class_folders(&variant_dir(root, variant), opts)?;
    if masks {
        d.fg_masks = Some(load_fg_masks(root, variant, &d)?);
    }
    Ok(d)
}

/// Checks that `found` (the class folders of `dir`) are `expected` (those of `reference`).
pub fn check_same_classes(
    expected: &[String],
    reference: &Path,
    found: &[String],
    dir: &Path,
) -> Result<(), DataError> {
    if expected == found {
        return Ok(());
    }
    let missing: Vec<&String> = expected.iter().filter(|c| !found.contains(c)).collect();
    let extra: Vec<&String> = found.iter().filter(|c| !expected.contains(c)).collect();
    Err(DataError::Invalid(format!(
        "{}: class folders differ from {}: missing {missing:?}, extra {extra:?}",
        dir.display(),
        reference.display()
    )))
}

/// The loaded variants of a Background Challenge folder, all with the same classes.
#[derive(Debug)]
pub struct BgChallenge {
    pub class_dirs: Vec<String>,
    pub label_names: Vec<String>,
    pub variants: BTreeMap<Variant, ClassFolders>,
}

/// Loads `variants` of the Background Challenge folder `root` (the one holding `original/`, `fg_mask/`, ...).
/// The class folders of every variant (and of `fg_mask/val` when `masks`) are checked against each other before
/// any image is decoded.
pub fn load_bg_challenge(
    root: &Path,
    variants: &[Variant],
    opts: &LoadOptions,
    masks: bool,
) -> Result<BgChallenge, DataError> {
    let first = variants
        .first()
        .ok_or_else(|| DataError::Invalid("no Background Challenge variant requested".into()))?;
    let ref_dir = variant_dir(root, *first);
    let class_dirs = list_classes(&ref_dir)?;
    let mut dirs: Vec<PathBuf> = variants.iter().map(|v| variant_dir(root, *v)).collect();
    if masks {
        dirs.push(root.join(FG_MASK_DIR).join(VAL_DIR));
    }
    for d in &dirs[1..] {
        check_same_classes(&class_dirs, &ref_dir, &list_classes(d)?, d)?;
    }
    let mut out = BTreeMap::new();
    for &v in variants {
        out.insert(v, load_variant(root, v, opts, masks)?);
    }
    Ok(BgChallenge {
        label_names: class_dirs.iter().map(|c| label_name(c)).collect(),
        class_dirs,
        variants: out,
    })
}

/// The Background Challenge's BG-Gap: accuracy on Mixed-Same minus accuracy on Mixed-Rand (Xiao et al. 2020).
pub fn bg_gap(mixed_same_acc: f64, mixed_rand_acc: f64) -> f64 {
    mixed_same_acc - mixed_rand_acc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_names_drop_the_number_prefix() {
        for (dir, name) in [
            ("00_dog", "dog"),
            ("02_wheeled vehicle", "wheeled vehicle"),
            ("n01530575", "n01530575"),
            ("_x", "_x"),
            ("12_", "12_"),
            ("a1_b", "a1_b"),
        ] {
            assert_eq!(label_name(dir), name, "{dir}");
        }
    }

    #[test]
    fn foreground_stems_of_mixed_names() {
        assert_eq!(
            Variant::MixedRand.foreground_stem("fg_n01530575_10086_bg_n02085620_2650"),
            Some("n01530575_10086".into())
        );
        assert_eq!(Variant::MixedSame.foreground_stem("n01530575_10086"), None);
        assert_eq!(
            Variant::OnlyFg.foreground_stem("n01530575_10086"),
            Some("n01530575_10086".into())
        );
    }

    #[test]
    fn variant_names_roundtrip() {
        for v in Variant::ALL {
            assert_eq!(v.name().parse::<Variant>().unwrap(), v);
            let yaml = serde_yaml::to_string(&v).unwrap();
            assert_eq!(yaml.trim(), v.name());
        }
        assert!("mixed".parse::<Variant>().is_err());
    }
}
