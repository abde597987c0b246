//! The data layer: the Waterbirds on-disk format (real or synthetic), in-memory datasets as uint8 tensors, and the
//! tensor transforms (normalisation, batched augmentation) used by training.
//!
//! Format and group convention follow group_DRO (Sagawa et al. 2020) / WILDS `waterbirds_v1.0`: `metadata.csv` with
//! `img_id,img_filename,y,split,place,place_filename`, group g = 2*y + place (docs/ARCHITECTURE.md, "Data").
pub mod bg_challenge;
pub mod captions;
pub mod cats_apples;
pub mod draw;
pub mod inspect;
pub mod jpeg;
pub mod npy;
pub mod scene;
pub mod synth;
pub mod upstream;
pub mod upstream_captions;
pub mod upstream_scene;
pub mod waterbirds;
pub mod words;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use tch::{Kind, Tensor};

pub use captions::{CaptionPair, CaptionSetConfig};
pub use synth::{SynthConfig, SynthSummary};

/// Dataset split, with the integer codes of the `split` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];

    /// The code written in `metadata.csv` (0 train, 1 val, 2 test).
    pub fn code(self) -> i64 {
        match self {
            Split::Train => 0,
            Split::Val => 1,
            Split::Test => 2,
        }
    }

    pub fn from_code(code: i64) -> Option<Split> {
        match code {
            0 => Some(Split::Train),
            1 => Some(Split::Val),
            2 => Some(Split::Test),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Split {
    type Err = DataError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "train" => Ok(Split::Train),
            "val" | "valid" | "validation" => Ok(Split::Val),
            "test" => Ok(Split::Test),
            other => Err(DataError::Invalid(format!(
                "unknown split {other:?} (expected train, val or test)"
            ))),
        }
    }
}

/// Group index g = 2*y + place (group_DRO convention: 0 landbird/land, 1 landbird/water, 2 waterbird/land,
/// 3 waterbird/water).
/// Groups of a two-class, two-place dataset (g = 2y + place).
pub const N_GROUPS: usize = 4;

/// The dataset family of a Waterbirds-format folder (config `data.kind`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DataKind {
    /// Waterbirds (real or synthetic): attribute column `place`, y 0 landbird / 1 waterbird.
    #[default]
    Waterbirds,
    /// Cats & Apples: attribute column `apple`, y 0 dog / 1 cat.
    CatsApples,
    /// Synthetic Waterbirds with a spurious object (`data.synth.spurious_object`): attribute column `object`
    /// (group g = 2y + object), classes as Waterbirds.
    WaterbirdsObject,
}

impl DataKind {
    /// The metadata column of the spurious attribute.
    pub fn attr_column(self) -> &'static str {
        match self {
            DataKind::Waterbirds => "place",
            DataKind::CatsApples => "apple",
            DataKind::WaterbirdsObject => "object",
        }
    }

    /// Class names (y = 0 / 1) for file names and word-cloud titles.
    pub fn class_names(self) -> [&'static str; 2] {
        match self {
            DataKind::Waterbirds | DataKind::WaterbirdsObject => ["landbird", "waterbird"],
            DataKind::CatsApples => ["dog", "cat"],
        }
    }
}

/// The label a classifier learns (config `data.label`): the class `y`, or the spurious attribute (`place`), in
/// which case `y` and `place` are swapped at load time and groups read g = 2*place + y.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    #[default]
    Y,
    Place,
}

impl Label {
    /// Class names (label 0 / 1) of a dataset family under this label.
    pub fn class_names(self, kind: DataKind) -> [&'static str; 2] {
        match (self, kind) {
            (Label::Y, kind) => kind.class_names(),
            (Label::Place, DataKind::Waterbirds) => ["land", "water"],
            (Label::Place, DataKind::CatsApples) => ["no_apple", "apple"],
            (Label::Place, DataKind::WaterbirdsObject) => ["no_object", "object"],
        }
    }
}

pub fn group(y: i64, place: i64) -> i64 {
    2 * y + place
}

/// Errors of the data layer. Every variant names the file and, for per-row problems, how many rows are bad and the
/// first few of them, so one run tells the user everything that is wrong.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: CSV error: {message}")]
    Csv { path: PathBuf, message: String },
    #[error("{path}: missing column(s) {missing:?} (header has {found:?})")]
    MissingColumns {
        path: PathBuf,
        missing: Vec<String>,
        found: Vec<String>,
    },
    #[error("{path}: {count} row(s) with invalid values, first: {first}")]
    BadRows {
        path: PathBuf,
        count: usize,
        first: String,
    },
    #[error("{path}: {count} image(s) listed in the metadata do not exist, first: {first}")]
    MissingImages {
        path: PathBuf,
        count: usize,
        first: String,
    },
    #[error("{path}: {count} image(s) could not be decoded, first: {first}")]
    CorruptImages {
        path: PathBuf,
        count: usize,
        first: String,
    },
    #[error("{path}: {message}")]
    Json { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> DataError {
        DataError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How many offenders an error message lists.
pub const FIRST_OFFENDERS: usize = 5;

/// Joins the first [`FIRST_OFFENDERS`] items of a list of offenders into one message fragment.
pub(crate) fn first_offenders(items: &[String]) -> String {
    let mut s = items
        .iter()
        .take(FIRST_OFFENDERS)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if items.len() > FIRST_OFFENDERS {
        s.push_str(&format!("; ... ({} more)", items.len() - FIRST_OFFENDERS));
    }
    s
}

/// Options for decoding images into tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadOptions {
    /// Side of the square output: the shorter side is resized to this, then the centre is cropped.
    pub image_size: i64,
    /// Skip (with a warning) images that are missing or cannot be decoded instead of failing.
    pub skip_corrupt: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            image_size: 64,
            skip_corrupt: false,
        }
    }
}

/// Training-time augmentation, applied batched on uint8 tensors by [`augment`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Random horizontal flip with probability 1/2.
    pub flip: bool,
    /// Random-resized-crop area scale range `[min, max]` (torchvision default `[0.08, 1.0]`); `None` disables it.
    pub random_resized_crop: Option<[f64; 2]>,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            flip: true,
            random_resized_crop: None,
        }
    }
}

/// Per-channel normalisation applied after scaling pixels to [0, 1].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NormalizeConfig {
    pub mean: [f64; 3],
    pub std: [f64; 3],
}

impl Default for NormalizeConfig {
    /// The HF ViT image processor's default (mean = std = 0.5), which maps pixels to [-1, 1].
    fn default() -> Self {
        NormalizeConfig {
            mean: [0.5; 3],
            std: [0.5; 3],
        }
    }
}

/// A split of a Waterbirds-format dataset, decoded once and kept in memory.
#[derive(Debug)]
pub struct Dataset {
    /// [n, 3, h, w] uint8 on the CPU.
    pub images: Tensor,
    pub y: Vec<i64>,
    /// The spurious attribute (Waterbirds: place; Cats & Apples: apple).
    pub place: Vec<i64>,
    pub img_ids: Vec<i64>,
    pub filenames: Vec<String>,
    /// [n, 1, h, w] uint8, 1 = bird, when the folder ships `fg_masks/`.
    pub bird_masks: Option<Tensor>,
    /// [n, 1, h, w] uint8, 1 = the place's pixels (water or land; not the sky, the bird or an object), when the
    /// folder ships `place_masks/`.
    pub place_masks: Option<Tensor>,
    /// [n, 1, h, w] uint8, 1 = the spurious object, when the folder ships `object_masks/`.
    pub object_masks: Option<Tensor>,
}

impl Dataset {
    pub fn len(&self) -> usize {
        self.y.len()
    }

    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    pub fn group(&self, i: usize) -> i64 {
        group(self.y[i], self.place[i])
    }

    pub fn groups(&self) -> Vec<i64> {
        (0..self.len()).map(|i| self.group(i)).collect()
    }

    /// The rows `idx` (in that order) as a new dataset.
    pub fn select(&self, idx: &[usize]) -> Dataset {
        let index = Tensor::from_slice(&idx.iter().map(|&i| i as i64).collect::<Vec<_>>());
        Dataset {
            images: self.images.index_select(0, &index),
            y: idx.iter().map(|&i| self.y[i]).collect(),
            place: idx.iter().map(|&i| self.place[i]).collect(),
            img_ids: idx.iter().map(|&i| self.img_ids[i]).collect(),
            filenames: idx.iter().map(|&i| self.filenames[i].clone()).collect(),
            bird_masks: self.bird_masks.as_ref().map(|m| m.index_select(0, &index)),
            place_masks: self.place_masks.as_ref().map(|m| m.index_select(0, &index)),
            object_masks: self
                .object_masks
                .as_ref()
                .map(|m| m.index_select(0, &index)),
        }
    }
}

/// uint8 images [.., 3, h, w] -> float (x/255 - mean)/std on the images' device.
pub fn normalize(images_u8: &Tensor, mean: [f64; 3], std: [f64; 3]) -> Tensor {
    let dev = images_u8.device();
    // [3, 1, 1] broadcasts over [3, h, w] and [b, 3, h, w] alike.
    let shape = [3i64, 1, 1];
    let mean = Tensor::from_slice(&mean.map(|m| m as f32))
        .to_device(dev)
        .view(shape);
    let std = Tensor::from_slice(&std.map(|s| s as f32))
        .to_device(dev)
        .view(shape);
    // [b, 3, h, w]
    (images_u8.to_kind(Kind::Float) / 255.0 - mean) / std
}

/// Batched random-resized-crop and horizontal flip on a uint8 batch [b, 3, h, w]; returns uint8 of the same shape.
///
/// One affine grid per image (crop box and flip folded into `theta`) and one bilinear `grid_sampler_2d` for the
/// batch, so there is no per-pixel loop on the host. Random numbers come from libtorch's generator: results are
/// deterministic after `tch::manual_seed`. Crop boxes follow torchvision's `RandomResizedCrop` (area in `scale`,
/// aspect ratio log-uniform in [3/4, 4/3]); boxes that do not fit are clamped into the image instead of retried.
pub fn augment(batch_u8: &Tensor, cfg: &AugmentConfig) -> Result<Tensor, DataError> {
    let (b, c, h, w) = batch_u8.size4().map_err(|_| {
        DataError::Invalid(format!(
            "augment expects [b, c, h, w], got {:?}",
            batch_u8.size()
        ))
    })?;
    if let Some([lo, hi]) = cfg.random_resized_crop {
        if !(lo > 0.0 && lo <= hi && hi <= 1.0) {
            return Err(DataError::Invalid(format!(
                "random_resized_crop must be [min, max] with 0 < min <= max <= 1, got [{lo}, {hi}]"
            )));
        }
    }
    if b == 0 || (!cfg.flip && cfg.random_resized_crop.is_none()) {
        return Ok(batch_u8.shallow_clone());
    }
    let dev = batch_u8.device();
    let opts = (Kind::Float, dev);
    // Half-extents (sx, sy) and centres (cx, cy) of the crop in normalised [-1, 1] coordinates. [b]
    let (sx, sy, cx, cy) = match cfg.random_resized_crop {
        Some([lo, hi]) => {
            let area = Tensor::rand([b], opts) * (hi - lo) + lo;
            let log_r = Tensor::rand([b], opts) * ((4.0f64 / 3.0).ln() - (3.0f64 / 4.0).ln())
                + (3.0f64 / 4.0).ln();
            let ratio = log_r.exp(); // width / height of the crop
            let sx = (&area * &ratio).sqrt().clamp(0.0, 1.0);
            let sy = (&area / &ratio).sqrt().clamp(0.0, 1.0);
            let cx = (Tensor::rand([b], opts) * 2.0 - 1.0) * (1.0 - &sx);
            let cy = (Tensor::rand([b], opts) * 2.0 - 1.0) * (1.0 - &sy);
            (sx, sy, cx, cy)
        }
        None => (
            Tensor::ones([b], opts),
            Tensor::ones([b], opts),
            Tensor::zeros([b], opts),
            Tensor::zeros([b], opts),
        ),
    };
    let sign = if cfg.flip {
        // -1 flips the sampling grid horizontally. [b]
        Tensor::rand([b], opts).lt(0.5).to_kind(Kind::Float) * -2.0 + 1.0
    } else {
        Tensor::ones([b], opts)
    };
    let zeros = Tensor::zeros([b], opts);
    // theta [b, 2, 3] maps output coords to input coords: x_in = sign*sx*x_out + cx, y_in = sy*y_out + cy.
    let row0 = Tensor::stack(&[&sx * &sign, zeros.shallow_clone(), cx], 1);
    let row1 = Tensor::stack(&[zeros, sy, cy], 1);
    let theta = Tensor::stack(&[row0, row1], 1);
    // [b, h, w, 2]
    let grid = Tensor::affine_grid_generator(&theta, [b, c, h, w], false);
    // mode 0 = bilinear, padding 1 = border.
    Ok(batch_u8
        .to_kind(Kind::Float)
        .grid_sampler_2d(&grid, 0, 1, false)
        .round()
        .clamp(0.0, 255.0)
        .to_kind(Kind::Uint8))
}

/// How images become model inputs: normalisation and (train only) augmentation.
#[derive(Debug, Clone)]
pub struct InputPipeline {
    pub normalize: NormalizeConfig,
    pub augment: AugmentConfig,
    pub device: tch::Device,
}

impl InputPipeline {
    /// u8 images [b, 3, h, w] (any device) -> normalised f32 on the device.
    pub fn eval_batch(&self, images_u8: &Tensor) -> Tensor {
        normalize(
            &images_u8.to_device(self.device),
            self.normalize.mean,
            self.normalize.std,
        )
    }

    /// u8 images [b, 3, h, w] (any device) -> augmented, normalised f32 on the device.
    pub fn train_batch(&self, images_u8: &Tensor) -> Result<Tensor, DataError> {
        let augmented = augment(&images_u8.to_device(self.device), &self.augment)?;
        Ok(normalize(
            &augmented,
            self.normalize.mean,
            self.normalize.std,
        ))
    }
}

/// Writes `bytes` to `path` atomically (`path.tmp` then rename), creating parent folders.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataError> {
    crate::util::write_file_atomic(path, bytes).map_err(|e| DataError::io(path, e))
}
