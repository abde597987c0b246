//! `texplain data inspect`: split x group counts of a Waterbirds-family folder and a contact sheet (a few samples
//! per group, one labelled row per group) to eyeball what a data set shows. Every image of the folder is decoded
//! (as the run's loader will, truncated JPEGs included), and each one that does not decode is named.
use super::draw::png_rgb;
use super::waterbirds::{check_image, decode_image, read_metadata};
use super::{write_atomic, Split};
use anyhow::Context;
use rayon::prelude::*;
use std::fmt;
use std::path::{Path, PathBuf};

/// Samples per group on the contact sheet.
pub const SHEET_COLUMNS: usize = 10;
const TILE: usize = 64;
const LABEL_W: usize = 24;

#[derive(Debug, Clone)]
pub struct InspectReport {
    /// The attribute column (`place`, `apple` for Cats & Apples, `object` for the object setting).
    pub attr: String,
    /// [split][group] counts, g = 2*y + attr.
    pub counts: [[usize; 4]; 3],
}

impl fmt::Display for InspectReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.attr;
        writeln!(
            f,
            "{:<6} {:>12} {:>12} {:>12} {:>12} {:>7}",
            "split",
            format!("g0 y0 {a}0"),
            format!("g1 y0 {a}1"),
            format!("g2 y1 {a}0"),
            format!("g3 y1 {a}1"),
            "total"
        )?;
        for s in Split::ALL {
            let c = self.counts[s.code() as usize];
            writeln!(
                f,
                "{:<6} {:>12} {:>12} {:>12} {:>12} {:>7}",
                s.name(),
                c[0],
                c[1],
                c[2],
                c[3],
                c.iter().sum::<usize>()
            )?;
        }
        Ok(())
    }
}

/// 3x5 bitmap glyphs for the row labels ("g0".."g3").
fn glyph(ch: char) -> [u8; 5] {
    match ch {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        'g' => [0b011, 0b100, 0b101, 0b101, 0b011],
        _ => [0; 5],
    }
}

fn draw_text(img: &mut [u8], width: usize, x0: usize, y0: usize, text: &str, px: usize) {
    for (k, ch) in text.chars().enumerate() {
        let g = glyph(ch);
        for (r, bits) in g.iter().enumerate() {
            for c in 0..3 {
                if bits >> (2 - c) & 1 == 1 {
                    for dy in 0..px {
                        for dx in 0..px {
                            let x = x0 + (k * 4 + c) * px + dx;
                            let y = y0 + r * px + dy;
                            let i = (y * width + x) * 3;
                            img[i..i + 3].copy_from_slice(&[255, 255, 255]);
                        }
                    }
                }
            }
        }
    }
}

/// `texplain data inspect`: the report of [`inspect_caption_set`] for a synthetic caption set (a `scenes.csv` and
/// no `metadata.csv`), of [`inspect`] for any other folder, as text; both write the contact sheet to `out_png`.
pub fn inspect_folder(dir: &Path, out_png: &Path) -> anyhow::Result<String> {
    Ok(
        if !dir.join("metadata.csv").is_file() && dir.join("scenes.csv").is_file() {
            inspect_caption_set(dir, out_png)?.to_string()
        } else {
            inspect(dir, out_png)?.to_string()
        },
    )
}

/// How many unreadable images an error names one by one (the rest are counted).
const MAX_NAMED: usize = 50;

/// Decodes every image of `rows` under `dir` in parallel; an error names each one that does not decode (its
/// metadata line, path and the decoder's reason), in metadata order.
fn check_all_images(
    dir: &Path,
    meta: &Path,
    rows: &[super::waterbirds::MetaRow],
) -> anyhow::Result<()> {
    let bad: Vec<String> = rows
        .par_iter()
        .filter_map(|r| {
            let path = dir.join(&r.img_filename);
            check_image(&path)
                .err()
                .map(|e| format!("  {}:{} {}: {e}", meta.display(), r.line, path.display()))
        })
        .collect();
    if bad.is_empty() {
        return Ok(());
    }
    let more = bad.len().saturating_sub(MAX_NAMED);
    let mut msg = format!(
        "{} of {} images listed in {} cannot be decoded:\n{}",
        bad.len(),
        rows.len(),
        meta.display(),
        bad[..bad.len().min(MAX_NAMED)].join("\n")
    );
    if more > 0 {
        msg.push_str(&format!("\n  ... and {more} more"));
    }
    anyhow::bail!(msg)
}

/// Counts the folder's groups per split, decodes every image (an error names each unreadable one) and writes a
/// contact sheet (rows g0..g3, up to [`SHEET_COLUMNS`] samples each, preferring test images where groups are
/// balanced) to `out_png`.
pub fn inspect(dir: &Path, out_png: &Path) -> anyhow::Result<InspectReport> {
    let meta = dir.join("metadata.csv");
    let header =
        std::fs::read_to_string(&meta).with_context(|| format!("reading {}", meta.display()))?;
    // The folder's designed attribute: `apple` (Cats & Apples), `object` (the object setting), else `place`.
    let columns: Vec<&str> = header
        .lines()
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .collect();
    let attr = ["apple", "object"]
        .into_iter()
        .find(|a| columns.contains(a))
        .unwrap_or("place");
    let rows = read_metadata(&meta, attr)?;
    check_all_images(dir, &meta, &rows)?;
    let mut counts = [[0usize; 4]; 3];
    let mut picks: [Vec<PathBuf>; 4] = Default::default();
    for r in &rows {
        let g = super::group(r.y, r.place) as usize;
        counts[r.split.code() as usize][g] += 1;
    }
    for pass in [Split::Test, Split::Val, Split::Train] {
        for r in rows.iter().filter(|r| r.split == pass) {
            let g = super::group(r.y, r.place) as usize;
            if picks[g].len() < SHEET_COLUMNS {
                picks[g].push(dir.join(&r.img_filename));
            }
        }
    }
    let labels: Vec<String> = (0..4).map(|g| format!("g{g}")).collect();
    write_sheet(&picks, &labels, out_png)?;
    Ok(InspectReport {
        attr: attr.to_string(),
        counts,
    })
}

/// Writes a contact sheet: one labelled row of tiles per entry of `rows`.
fn write_sheet(rows: &[Vec<PathBuf>], labels: &[String], out_png: &Path) -> anyhow::Result<()> {
    let width = LABEL_W + SHEET_COLUMNS * (TILE + 2);
    let height = rows.len() * (TILE + 2);
    let mut sheet = vec![32u8; width * height * 3];
    for (g, paths) in rows.iter().enumerate() {
        draw_text(
            &mut sheet,
            width,
            2,
            g * (TILE + 2) + TILE / 2 - 5,
            &labels[g],
            2,
        );
        for (k, p) in paths.iter().take(SHEET_COLUMNS).enumerate() {
            let chw = decode_image(p, TILE as u32)
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
            let (x0, y0) = (LABEL_W + k * (TILE + 2), g * (TILE + 2));
            for y in 0..TILE {
                for x in 0..TILE {
                    let i = ((y0 + y) * width + x0 + x) * 3;
                    for c in 0..3 {
                        sheet[i + c] = chw[c * TILE * TILE + y * TILE + x];
                    }
                }
            }
        }
    }
    write_atomic(out_png, &png_rgb(width, height, &sheet)?)?;
    Ok(())
}

/// Counts of a synthetic caption set by how prominently its captions may name the bird.
#[derive(Debug, Clone)]
pub struct CaptionSetReport {
    /// [no bird, faint, secondary, main] image counts (see [`super::captions::prominence`]).
    pub tiers: [usize; 4],
}

impl fmt::Display for CaptionSetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.tiers;
        writeln!(
            f,
            "{:<8} {:>7} {:>7} {:>9} {:>7}",
            "", "no-bird", "faint", "secondary", "main"
        )?;
        writeln!(
            f,
            "{:<8} {:>7} {:>7} {:>9} {:>7}",
            "images", t[0], t[1], t[2], t[3]
        )
    }
}

/// Contact sheet of a synthetic caption set (`scenes.csv` from [`super::captions::synth_caption_set`]): rows 0..3 =
/// no bird (including invisible ones), faint, secondary, main bird.
pub fn inspect_caption_set(dir: &Path, out_png: &Path) -> anyhow::Result<CaptionSetReport> {
    use super::captions::{prominence, Prominence};
    let path = dir.join("scenes.csv");
    let mut rdr =
        csv::Reader::from_path(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut rows: Vec<Vec<PathBuf>> = vec![Vec::new(); 4];
    let mut tiers = [0usize; 4];
    for rec in rdr.records() {
        let rec = rec.with_context(|| format!("reading {}", path.display()))?;
        let vis: f32 = rec
            .get(5)
            .unwrap_or("")
            .parse()
            .with_context(|| format!("{}: bad visibility {:?}", path.display(), rec.get(5)))?;
        let tier = match (rec.get(1) == Some("1"), prominence(vis)) {
            (false, _) | (true, Prominence::Invisible) => 0,
            (true, Prominence::Faint) => 1,
            (true, Prominence::Secondary) => 2,
            (true, Prominence::Main) => 3,
        };
        tiers[tier] += 1;
        rows[tier].push(dir.join(rec.get(0).unwrap_or("")));
    }
    let labels: Vec<String> = (0..4).map(|t| t.to_string()).collect();
    write_sheet(&rows, &labels, out_png)?;
    Ok(CaptionSetReport { tiers })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder of three PNGs (one per listed row) in the Waterbirds layout.
    fn folder() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let mut meta = String::from("img_id,img_filename,y,split,place,place_filename\n");
        for i in 0..3 {
            let name = format!("a/{i}.png");
            std::fs::create_dir_all(dir.path().join("a")).unwrap();
            let px = vec![(i * 60) as u8; 8 * 8 * 3];
            std::fs::write(dir.path().join(&name), png_rgb(8, 8, &px).unwrap()).unwrap();
            meta.push_str(&format!("{},{name},{},2,{},x.jpg\n", i + 1, i % 2, i % 2));
        }
        std::fs::write(dir.path().join("metadata.csv"), meta).unwrap();
        dir
    }

    #[test]
    fn every_image_is_decoded_and_each_unreadable_one_named() {
        let dir = folder();
        let png = dir.path().join("sheet.png");
        let report = inspect(dir.path(), &png).unwrap();
        assert_eq!(report.counts[2], [2, 0, 0, 1]);
        // A JPEG cut short decodes to grey rows without an error in the `image` crate; inspect must catch it,
        // and a file that is not an image at all.
        let img = image::RgbImage::from_pixel(16, 16, image::Rgb([10, 200, 30]));
        let mut jpeg = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
        std::fs::write(dir.path().join("a/1.png"), &jpeg[..jpeg.len() / 2]).unwrap();
        std::fs::write(dir.path().join("a/2.png"), b"not an image").unwrap();
        let err = format!("{:#}", inspect(dir.path(), &png).unwrap_err());
        assert!(err.contains("2 of 3 images"), "{err}");
        assert!(
            err.contains("a/1.png") && err.contains("truncated JPEG"),
            "{err}"
        );
        assert!(
            err.contains("a/2.png") && err.contains("metadata.csv:4"),
            "{err}"
        );
        assert!(!err.contains("a/0.png"), "{err}");
    }
}
