//! The figures of the ImageNet-9 analysis as PNG, drawn with the `image` crate and the word clouds' bundled font
//! ([`crate::text::wordcloud::draw_text`]): the Only-BG-T prediction grid (paper Figure 6: images whose object is
//! hidden, and what the classifier still predicts), accuracy bars per category and variant (the Background
//! Challenge's own figure), a contact sheet of the category clouds (paper Figure 5) and a scatter of a cloud measure
//! against a reliance measure across categories.
use image::imageops::{self, FilterType};
use image::{Rgb, RgbImage};

use crate::text::wordcloud::{draw_text, text_size};

const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const INK: [u8; 3] = [40, 40, 40];
const GREY: [u8; 3] = [120, 120, 120];
const RULE: Rgb<u8> = Rgb([225, 225, 225]);
const RED: [u8; 3] = [204, 20, 20];

fn fill_rect(img: &mut RgbImage, x: i32, y: i32, w: i32, h: i32, c: Rgb<u8>) {
    let (iw, ih) = (img.width() as i32, img.height() as i32);
    for yy in y.max(0)..(y + h).min(ih) {
        for xx in x.max(0)..(x + w).min(iw) {
            img.put_pixel(xx as u32, yy as u32, c);
        }
    }
}

/// Draws a title at (x, y), its font shrunk until it fits the image's width.
fn title_line(img: &mut RgbImage, text: &str, x: i32, y: i32) {
    let room = img.width() as i32 - 2 * x;
    let mut size = 15.0f32;
    while size > 8.0 && text_size(text, size).0 > room {
        size *= 0.92;
    }
    draw_text(img, text, x, y, size, INK);
}

/// An HWC RGB buffer of side `size` as an image scaled (nearest neighbour) to `side`.
fn thumbnail(rgb: &[u8], size: usize, side: u32) -> RgbImage {
    let img = RgbImage::from_raw(size as u32, size as u32, rgb.to_vec())
        .unwrap_or_else(|| RgbImage::from_pixel(size as u32, size as u32, WHITE));
    imageops::resize(&img, side, side, FilterType::Nearest)
}

/// One category of the prediction grid.
#[derive(Debug, Clone)]
pub struct GridExample {
    pub class: String,
    /// Side of the images in pixels.
    pub size: usize,
    /// HWC RGB of the original image and of its Only-BG-T version.
    pub original: Vec<u8>,
    pub only_bg_t: Vec<u8>,
    /// The classifier's top predictions on the Only-BG-T image (class, probability).
    pub top: Vec<(String, f64)>,
}

/// Paper Figure 6 as a grid, two categories per row: each category's original image, its Only-BG-T image, and the
/// top predictions on the latter (the category's own name in red).
pub fn prediction_grid(examples: &[GridExample], title: &str) -> RgbImage {
    let thumb = 96u32;
    let text_w = 176i32;
    let block_w = 2 * thumb as i32 + 6 + 10 + text_w;
    let (margin, row_h, header) = (12i32, thumb as i32 + 10, 56i32);
    let cols = 2usize;
    let rows = examples.len().div_ceil(cols) as i32;
    let width = margin + cols as i32 * (block_w + margin);
    let height = header + rows * row_h + margin;
    let mut img = RgbImage::from_pixel(width as u32, height as u32, WHITE);
    title_line(&mut img, title, margin, 10);
    for c in 0..cols as i32 {
        let x = margin + c * (block_w + margin);
        draw_text(&mut img, "original", x + 2, 36, 11.0, GREY);
        draw_text(&mut img, "only_bg_t", x + thumb as i32 + 8, 36, 11.0, GREY);
        draw_text(
            &mut img,
            "predicted on only_bg_t",
            x + 2 * thumb as i32 + 16,
            36,
            11.0,
            GREY,
        );
    }
    for (i, e) in examples.iter().enumerate() {
        let (r, c) = ((i / cols) as i32, (i % cols) as i32);
        let (x, y) = (margin + c * (block_w + margin), header + r * row_h);
        imageops::overlay(
            &mut img,
            &thumbnail(&e.original, e.size, thumb),
            x as i64,
            y as i64,
        );
        imageops::overlay(
            &mut img,
            &thumbnail(&e.only_bg_t, e.size, thumb),
            (x + thumb as i32 + 6) as i64,
            y as i64,
        );
        let tx = x + 2 * thumb as i32 + 16;
        draw_text(&mut img, &e.class, tx, y + 2, 14.0, INK);
        for (k, (name, p)) in e.top.iter().enumerate() {
            let colour = if *name == e.class { RED } else { INK };
            let line = format!("{}. {name} {:.0}%", k + 1, 100.0 * p);
            draw_text(&mut img, &line, tx, y + 26 + 18 * k as i32, 12.0, colour);
        }
    }
    img
}

/// Bars per category (rows) and series (e.g. the variants): `rows` = (label, one value in [0, 1] per series; NaN
/// draws no bar), with a legend and grid lines at every 25 %.
pub fn accuracy_bars(rows: &[(String, Vec<f64>)], series: &[&str], title: &str) -> RgbImage {
    const COLOURS: [[u8; 3]; 6] = [
        [90, 90, 90],
        [204, 20, 20],
        [50, 100, 200],
        [140, 180, 230],
        [60, 150, 60],
        [230, 150, 40],
    ];
    let bar_h = 5i32;
    let row_h = series.len() as i32 * bar_h + 8;
    let label_w = rows
        .iter()
        .map(|(l, _)| text_size(l, 12.0).0)
        .max()
        .unwrap_or(0)
        + 16;
    let (margin, chart_w, header) = (12i32, 420i32, 64i32);
    let width = margin + label_w + chart_w + 3 * margin;
    let height = header + rows.len() as i32 * row_h + 2 * margin;
    let mut img = RgbImage::from_pixel(width as u32, height as u32, WHITE);
    title_line(&mut img, title, margin, 10);
    let mut lx = margin;
    for (k, s) in series.iter().enumerate() {
        let c = COLOURS[k % COLOURS.len()];
        fill_rect(&mut img, lx, 34, 12, 10, Rgb(c));
        lx += 16 + draw_text(&mut img, s, lx + 16, 34, 11.0, INK).0 + 14;
    }
    let x0 = margin + label_w;
    let top = header;
    let bottom = header + rows.len() as i32 * row_h;
    for q in 0..=4 {
        let x = x0 + chart_w * q / 4;
        fill_rect(&mut img, x, top - 4, 1, bottom - top + 4, RULE);
        let label = format!("{}%", 25 * q);
        let w = text_size(&label, 10.0).0;
        draw_text(&mut img, &label, x - w / 2, bottom + 4, 10.0, GREY);
    }
    for (i, (label, values)) in rows.iter().enumerate() {
        let y = top + i as i32 * row_h + 4;
        let (w, h) = text_size(label, 12.0);
        draw_text(
            &mut img,
            label,
            x0 - 8 - w,
            y + (row_h - 8 - h) / 2,
            12.0,
            INK,
        );
        for (k, v) in values.iter().enumerate() {
            if v.is_finite() {
                let len = (v.clamp(0.0, 1.0) * chart_w as f64).round() as i32;
                let c = COLOURS[k % COLOURS.len()];
                fill_rect(
                    &mut img,
                    x0,
                    y + k as i32 * bar_h,
                    len.max(1),
                    bar_h - 1,
                    Rgb(c),
                );
            }
        }
    }
    img
}

/// Images of equal size tiled `columns` to a row under a title (the category clouds, paper Figure 5).
pub fn contact_sheet(tiles: &[RgbImage], columns: usize, title: &str) -> RgbImage {
    let (tw, th) = tiles.first().map_or((1, 1), |t| t.dimensions());
    let columns = columns.max(1);
    let rows = tiles.len().div_ceil(columns) as u32;
    let (gap, header) = (6u32, 36u32);
    let width = gap + columns as u32 * (tw + gap);
    let height = header + rows * (th + gap) + gap;
    let mut img = RgbImage::from_pixel(width, height, Rgb([235, 235, 235]));
    title_line(&mut img, title, gap as i32 + 4, 10);
    for (i, t) in tiles.iter().enumerate() {
        let (r, c) = ((i / columns) as u32, (i % columns) as u32);
        imageops::overlay(
            &mut img,
            t,
            (gap + c * (tw + gap)) as i64,
            (header + r * (th + gap)) as i64,
        );
    }
    img
}

/// A scatter of labelled points (x, y in [0, 1]-ish), the axes scaled to the data.
pub fn scatter(
    points: &[(String, f64, f64)],
    x_label: &str,
    y_label: &str,
    title: &str,
) -> RgbImage {
    let (width, height) = (640i32, 480i32);
    let (left, right, top, bottom) = (64i32, 24i32, 48i32, 56i32);
    let mut img = RgbImage::from_pixel(width as u32, height as u32, WHITE);
    title_line(&mut img, title, 12, 10);
    let finite: Vec<&(String, f64, f64)> = points
        .iter()
        .filter(|(_, x, y)| x.is_finite() && y.is_finite())
        .collect();
    let max_of = |f: fn(&(String, f64, f64)) -> f64| {
        let m = finite.iter().map(|p| f(p)).fold(0.0f64, f64::max);
        if m <= 0.0 {
            1.0
        } else {
            (m * 1.1).min(1.0).max(m)
        }
    };
    let (xmax, ymax) = (max_of(|p| p.1), max_of(|p| p.2));
    let (pw, ph) = (width - left - right, height - top - bottom);
    let px = |x: f64| left + (x / xmax * pw as f64).round() as i32;
    let py = |y: f64| top + ph - (y / ymax * ph as f64).round() as i32;
    for q in 0..=4 {
        let (gx, gy) = (left + pw * q / 4, top + ph - ph * q / 4);
        fill_rect(&mut img, gx, top, 1, ph, RULE);
        fill_rect(&mut img, left, gy, pw, 1, RULE);
        let xl = format!("{:.0}%", 100.0 * xmax * q as f64 / 4.0);
        let yl = format!("{:.0}%", 100.0 * ymax * q as f64 / 4.0);
        let w = text_size(&xl, 10.0).0;
        draw_text(&mut img, &xl, gx - w / 2, top + ph + 6, 10.0, GREY);
        let w = text_size(&yl, 10.0).0;
        draw_text(&mut img, &yl, left - 8 - w, gy - 5, 10.0, GREY);
    }
    fill_rect(&mut img, left, top, 1, ph, Rgb(INK));
    fill_rect(&mut img, left, top + ph, pw, 1, Rgb(INK));
    let w = text_size(x_label, 12.0).0;
    draw_text(
        &mut img,
        x_label,
        left + (pw - w) / 2,
        height - 24,
        12.0,
        INK,
    );
    draw_text(&mut img, y_label, left, top - 16, 12.0, INK);
    for (label, x, y) in finite {
        let (cx, cy) = (px(*x), py(*y));
        fill_rect(&mut img, cx - 3, cy - 3, 7, 7, Rgb(RED));
        draw_text(&mut img, label, cx + 6, cy - 6, 10.0, INK);
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ink(img: &RgbImage) -> usize {
        img.pixels().filter(|p| p.0 != [255, 255, 255]).count()
    }

    #[test]
    fn figures_draw_every_part() {
        let e = GridExample {
            class: "car".into(),
            size: 8,
            original: vec![200; 8 * 8 * 3],
            only_bg_t: vec![30; 8 * 8 * 3],
            top: vec![("car".into(), 0.8), ("house".into(), 0.1)],
        };
        let grid = prediction_grid(&[e.clone(), e.clone(), e], "Only-BG-T");
        assert_eq!(grid.height(), 56 + 2 * 106 + 12);
        assert!(ink(&grid) > 3 * 2 * 96 * 96);
        // The class's own prediction is drawn in red.
        assert!(grid.pixels().any(|p| p.0 == RED));
        let bars = accuracy_bars(
            &[
                ("all".into(), vec![0.9, 0.2]),
                ("car".into(), vec![1.0, f64::NAN]),
            ],
            &["original", "only_bg_t"],
            "accuracy",
        );
        assert!(bars.pixels().any(|p| p.0 == [204, 20, 20]));
        let sheet = contact_sheet(&[grid.clone(), grid.clone(), grid], 2, "sheet");
        assert!(sheet.width() > 2 * 700);
        let s = scatter(
            &[("car".into(), 0.3, 0.9), ("dog".into(), 0.05, f64::NAN)],
            "top place share",
            "only_bg_t",
            "t",
        );
        assert!(s.pixels().any(|p| p.0 == RED));
    }
}
