//! Loader for the Waterbirds folder format of group_DRO (Sagawa et al. 2020, `waterbirds_v1.0`) and WILDS:
//! `metadata.csv` (`img_id,img_filename,y,split,place,place_filename`) next to the images in CUB species folders
//! (`001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg`). Our synthetic sets write the same format plus
//! `fg_masks/<img_filename with .png>` (the Background Challenge ships `fg_mask` the same way), loaded as bird masks,
//! and, where the generator wrote them, `place_masks/` (the place's pixels: water or land, sky excluded) and
//! `object_masks/` (the spurious object's pixels) in the same layout.
//!
//! Images are decoded once (in parallel with rayon), resized so the shorter side is `image_size` and centre-cropped
//! (the torchvision `Resize` + `CenterCrop` evaluation transform), and kept as one uint8 tensor.
use super::{first_offenders, DataError, Dataset, LoadOptions, Split};
use image::imageops::FilterType;
use rayon::prelude::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tch::Tensor;

/// Columns the loader needs (`place_filename` is informative only and may be absent).
pub const REQUIRED_COLUMNS: [&str; 5] = ["img_id", "img_filename", "y", "split", "place"];

/// The exact header our writers produce.
pub const HEADER: &str = "img_id,img_filename,y,split,place,place_filename";

/// Folder (under the dataset root) holding one PNG mask per image, 255 = bird.
pub const MASK_DIR: &str = "fg_masks";

/// Folder of the place masks (255 = the place's pixels: water or land, not the sky, the bird or an object).
pub const PLACE_MASK_DIR: &str = "place_masks";

/// Folder of the spurious object's masks (255 = the object; all 0 in an image without it).
pub const OBJECT_MASK_DIR: &str = "object_masks";

/// One parsed row of `metadata.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetaRow {
    /// 1-based line in the file (header = line 1).
    pub line: u64,
    pub img_id: i64,
    pub img_filename: String,
    pub y: i64,
    pub split: Split,
    /// The attribute column (Waterbirds `place`, Cats & Apples `apple`).
    pub place: i64,
}

/// Reads and validates `metadata.csv`, with `attr_column` as the binary spurious attribute. All problems are
/// collected and reported at once: missing columns by name, bad codes with line numbers and values.
pub fn read_metadata(path: &Path, attr_column: &str) -> Result<Vec<MetaRow>, DataError> {
    let csv_err = |e: csv::Error| DataError::Csv {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    // The csv reader accepts both LF and CRLF line endings.
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(file);
    let headers: Vec<String> = rdr
        .headers()
        .map_err(csv_err)?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    let wanted: Vec<&str> = REQUIRED_COLUMNS
        .iter()
        .map(|&c| if c == "place" { attr_column } else { c })
        .collect();
    let missing: Vec<String> = wanted
        .iter()
        .filter(|c| !headers.iter().any(|h| h == *c))
        .map(|c| c.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(DataError::MissingColumns {
            path: path.to_path_buf(),
            missing,
            found: headers,
        });
    }
    let col: HashMap<&str, usize> = wanted
        .iter()
        .map(|&c| (c, headers.iter().position(|h| h == c).unwrap_or(0)))
        .collect();
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let rec = rec.map_err(csv_err)?;
        // File line of the row (header = line 1; rows hold no embedded newlines in this format).
        let line = i as u64 + 2;
        let field = |c: &str| rec.get(col[c]).unwrap_or("");
        let mut problems = Vec::new();
        let int = |c: &str, ok: &dyn Fn(i64) -> bool, problems: &mut Vec<String>| -> i64 {
            match field(c).parse::<i64>() {
                Ok(v) if ok(v) => v,
                _ => {
                    problems.push(format!("{c}={:?}", field(c)));
                    -1
                }
            }
        };
        let img_id = int("img_id", &|_| true, &mut problems);
        let y = int("y", &|v| v == 0 || v == 1, &mut problems);
        let split = int("split", &|v| Split::from_code(v).is_some(), &mut problems);
        let place = int(attr_column, &|v| v == 0 || v == 1, &mut problems);
        let img_filename = field("img_filename").to_string();
        if img_filename.is_empty() {
            problems.push("img_filename is empty".into());
        }
        if problems.is_empty() {
            rows.push(MetaRow {
                line,
                img_id,
                img_filename,
                y,
                split: Split::from_code(split).unwrap_or(Split::Train),
                place,
            });
        } else {
            bad.push(format!("line {line}: {}", problems.join(", ")));
        }
    }
    if !bad.is_empty() {
        return Err(DataError::BadRows {
            path: path.to_path_buf(),
            count: bad.len(),
            first: format!(
                "{} (y and {attr_column} must be 0/1, split 0/1/2)",
                first_offenders(&bad)
            ),
        });
    }
    Ok(rows)
}

/// Resize geometry shared by images and masks: shorter side to `size`, then centre crop.
pub(crate) fn resize_crop<P: image::Pixel + 'static>(
    img: &image::ImageBuffer<P, Vec<P::Subpixel>>,
    size: u32,
    filter: FilterType,
) -> image::ImageBuffer<P, Vec<P::Subpixel>> {
    let (w, h) = img.dimensions();
    if w == size && h == size {
        return img.clone();
    }
    let (nw, nh) = if w <= h {
        (
            size,
            ((h as f64 * size as f64 / w as f64).round() as u32).max(size),
        )
    } else {
        (
            ((w as f64 * size as f64 / h as f64).round() as u32).max(size),
            size,
        )
    };
    let resized = image::imageops::resize(img, nw, nh, filter);
    let (x, y) = ((nw - size) / 2, (nh - size) / 2);
    image::imageops::crop_imm(&resized, x, y, size, size).to_image()
}

fn open_image(path: &Path) -> Result<image::DynamicImage, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    // The JPEG decoder turns a truncated file into a half-grey image without an error.
    super::jpeg::check_complete(&bytes)?;
    image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?
        .decode()
        .map_err(|e| e.to_string())
}

/// Whether an image file decodes whole (a truncated JPEG does not): `Err` with the reason otherwise.
pub fn check_image(path: &Path) -> Result<(), String> {
    open_image(path).map(drop)
}

/// Decodes one image (JPEG or PNG, any size, format guessed from the bytes) to CHW uint8 `size`x`size`.
pub fn decode_image(path: &Path, size: u32) -> Result<Vec<u8>, String> {
    let img = open_image(path)?.to_rgb8();
    let img = resize_crop(&img, size, FilterType::Triangle);
    let (s, raw) = (size as usize, img.into_raw());
    let mut chw = vec![0u8; 3 * s * s];
    for (i, px) in raw.chunks_exact(3).enumerate() {
        for c in 0..3 {
            chw[c * s * s + i] = px[c];
        }
    }
    Ok(chw)
}

/// Decodes a mask (grey PNG, >= 128 = foreground) with the image geometry (nearest neighbour) to 0/1 bytes.
pub fn decode_mask(path: &Path, size: u32) -> Result<Vec<u8>, String> {
    let img = open_image(path)?.to_luma8();
    let img = resize_crop(&img, size, FilterType::Nearest);
    Ok(img
        .into_raw()
        .into_iter()
        .map(|v| (v >= 128) as u8)
        .collect())
}

/// Decodes `paths` in parallel; returns the CHW bytes per path or the decode error.
pub(crate) fn decode_all(paths: &[PathBuf], size: u32) -> Vec<Result<Vec<u8>, String>> {
    paths.par_iter().map(|p| decode_image(p, size)).collect()
}

/// Stacks equally sized CHW byte buffers into a [n, 3, s, s] uint8 tensor.
pub(crate) fn stack_chw(bufs: &[Vec<u8>], size: i64, channels: i64) -> Tensor {
    let mut flat = Vec::with_capacity(bufs.len() * (channels * size * size) as usize);
    for b in bufs {
        flat.extend_from_slice(b);
    }
    Tensor::from_slice(&flat).view([bufs.len() as i64, channels, size, size])
}

/// Loads one split of a Waterbirds-format folder (`place` as the attribute column).
pub fn load(root: &Path, split: Split, opts: &LoadOptions) -> Result<Dataset, DataError> {
    load_with_attr(root, split, opts, "place")
}

/// Loads one split of a folder in the Waterbirds family format whose binary attribute column is `attr_column`.
pub fn load_with_attr(
    root: &Path,
    split: Split,
    opts: &LoadOptions,
    attr_column: &str,
) -> Result<Dataset, DataError> {
    if opts.image_size <= 0 {
        return Err(DataError::Invalid(format!(
            "image_size must be positive, got {}",
            opts.image_size
        )));
    }
    let size = opts.image_size as u32;
    let meta_path = root.join("metadata.csv");
    let rows: Vec<MetaRow> = read_metadata(&meta_path, attr_column)?
        .into_iter()
        .filter(|r| r.split == split)
        .collect();
    let describe = |r: &MetaRow| format!("{} (line {})", r.img_filename, r.line);

    let (present, absent): (Vec<MetaRow>, Vec<MetaRow>) = rows
        .into_iter()
        .partition(|r| root.join(&r.img_filename).is_file());
    if !absent.is_empty() {
        let names: Vec<String> = absent.iter().map(describe).collect();
        if !opts.skip_corrupt {
            return Err(DataError::MissingImages {
                path: meta_path,
                count: names.len(),
                first: first_offenders(&names),
            });
        }
        tracing::warn!(
            "{}: skipping {} missing image(s) of split {split}, first: {}",
            meta_path.display(),
            names.len(),
            first_offenders(&names)
        );
    }

    let paths: Vec<PathBuf> = present.iter().map(|r| root.join(&r.img_filename)).collect();
    let decoded = decode_all(&paths, size);
    let mut keep = Vec::with_capacity(present.len());
    let mut bufs = Vec::with_capacity(present.len());
    let mut corrupt = Vec::new();
    for (row, res) in present.into_iter().zip(decoded) {
        match res {
            Ok(b) => {
                keep.push(row);
                bufs.push(b);
            }
            Err(e) => corrupt.push(format!("{}: {e}", describe(&row))),
        }
    }
    if !corrupt.is_empty() {
        if !opts.skip_corrupt {
            return Err(DataError::CorruptImages {
                path: meta_path,
                count: corrupt.len(),
                first: first_offenders(&corrupt),
            });
        }
        tracing::warn!(
            "{}: skipping {} corrupt image(s) of split {split}, first: {}",
            meta_path.display(),
            corrupt.len(),
            first_offenders(&corrupt)
        );
    }

    let bird_masks = load_masks(root, MASK_DIR, &keep, size)?;
    let place_masks = load_masks(root, PLACE_MASK_DIR, &keep, size)?;
    let object_masks = load_masks(root, OBJECT_MASK_DIR, &keep, size)?;

    tracing::info!(
        "loaded {} images of split {split} from {}",
        keep.len(),
        root.display()
    );
    Ok(Dataset {
        images: stack_chw(&bufs, size as i64, 3),
        y: keep.iter().map(|r| r.y).collect(),
        place: keep.iter().map(|r| r.place).collect(),
        img_ids: keep.iter().map(|r| r.img_id).collect(),
        filenames: keep.into_iter().map(|r| r.img_filename).collect(),
        bird_masks,
        place_masks,
        object_masks,
    })
}

/// The masks `<root>/<dir>/<img_filename with .png>` of `rows` as `[n, 1, size, size]` u8 (1 = in the region),
/// `None` where the folder does not exist; every unreadable mask is named.
fn load_masks(
    root: &Path,
    dir: &str,
    rows: &[MetaRow],
    size: u32,
) -> Result<Option<Tensor>, DataError> {
    let mask_dir = root.join(dir);
    if !mask_dir.is_dir() {
        return Ok(None);
    }
    let paths: Vec<PathBuf> = rows
        .iter()
        .map(|r| mask_dir.join(Path::new(&r.img_filename).with_extension("png")))
        .collect();
    decode_masks(&paths, &mask_dir, size as i64, |p| decode_mask(p, size)).map(Some)
}

/// Decodes the masks at `paths` in parallel with `decode` (0/1 bytes of `size`x`size`) into `[n, 1, size, size]`
/// u8; an error on `folder` counts and names the masks that do not decode.
pub(crate) fn decode_masks(
    paths: &[PathBuf],
    folder: &Path,
    size: i64,
    decode: impl Fn(&Path) -> Result<Vec<u8>, String> + Sync,
) -> Result<Tensor, DataError> {
    let res: Vec<Result<Vec<u8>, String>> = paths.par_iter().map(|p| decode(p)).collect();
    let mut masks = Vec::with_capacity(res.len());
    let mut bad = Vec::new();
    for (p, r) in paths.iter().zip(res) {
        match r {
            Ok(m) => masks.push(m),
            Err(e) => bad.push(format!("{}: {e}", p.display())),
        }
    }
    if !bad.is_empty() {
        return Err(DataError::CorruptImages {
            path: folder.to_path_buf(),
            count: bad.len(),
            first: first_offenders(&bad),
        });
    }
    Ok(stack_chw(&masks, size, 1))
}
