//! Drawing primitives for the synthetic data sets: a float RGB canvas, filled shapes in pixel coordinates
//! (rotated ellipses, tapered capsules, polygons), similarity transforms for sprites, value noise for textures,
//! box down-sampling (the canvases are drawn at `ss`x the output size for anti-aliasing) and PNG encoding.
//!
//! Hand-written rather than imageproc because every shape must also be written into the exact bird mask and drawn
//! under an arbitrary rotation/flip; a point-in-shape test per pixel does both with one code path.
use image::{codecs::png::PngEncoder, ExtendedColorType, ImageEncoder};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// Linear RGB in [0, 1].
pub type Rgb = [f32; 3];

pub fn rgb(r: u8, g: u8, b: u8) -> Rgb {
    [r as f32 / 255.0, g as f32 / 255.0, b as f32 / 255.0]
}

pub fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

pub fn scale(a: Rgb, k: f32) -> Rgb {
    [
        (a[0] * k).clamp(0.0, 1.0),
        (a[1] * k).clamp(0.0, 1.0),
        (a[2] * k).clamp(0.0, 1.0),
    ]
}

/// A filled shape in canvas pixel coordinates (x right, y down).
#[derive(Debug, Clone)]
pub enum Shape {
    /// Ellipse with centre, radii and rotation (radians) of the `rx` axis.
    Ellipse {
        c: (f32, f32),
        rx: f32,
        ry: f32,
        angle: f32,
    },
    /// A segment with radius `r0` at `a` tapering linearly to `r1` at `b` (necks, bills, legs, stalks).
    Capsule {
        a: (f32, f32),
        b: (f32, f32),
        r0: f32,
        r1: f32,
    },
    Polygon(Vec<(f32, f32)>),
}

/// Similarity transform (uniform scale, rotation, optional horizontal mirror, translation) from a sprite's local
/// frame to canvas pixels.
#[derive(Debug, Clone, Copy)]
pub struct Similarity {
    pub scale: f32,
    pub angle: f32,
    pub mirror: bool,
    pub tx: f32,
    pub ty: f32,
}

impl Similarity {
    pub fn apply(&self, p: (f32, f32)) -> (f32, f32) {
        let x = if self.mirror { -p.0 } else { p.0 };
        let (s, c) = self.angle.sin_cos();
        (
            self.tx + self.scale * (c * x - s * p.1),
            self.ty + self.scale * (s * x + c * p.1),
        )
    }

    pub fn shape(&self, shape: &Shape) -> Shape {
        match shape {
            Shape::Ellipse { c, rx, ry, angle } => {
                let a = if self.mirror { -angle } else { *angle };
                Shape::Ellipse {
                    c: self.apply(*c),
                    rx: rx * self.scale,
                    ry: ry * self.scale,
                    angle: a + self.angle,
                }
            }
            Shape::Capsule { a, b, r0, r1 } => Shape::Capsule {
                a: self.apply(*a),
                b: self.apply(*b),
                r0: r0 * self.scale,
                r1: r1 * self.scale,
            },
            Shape::Polygon(pts) => Shape::Polygon(pts.iter().map(|p| self.apply(*p)).collect()),
        }
    }
}

impl Shape {
    /// Axis-aligned bounding box (x0, y0, x1, y1).
    pub fn bbox(&self) -> (f32, f32, f32, f32) {
        match self {
            Shape::Ellipse { c, rx, ry, .. } => {
                let r = rx.max(*ry);
                (c.0 - r, c.1 - r, c.0 + r, c.1 + r)
            }
            Shape::Capsule { a, b, r0, r1 } => {
                let r = r0.max(*r1);
                (
                    a.0.min(b.0) - r,
                    a.1.min(b.1) - r,
                    a.0.max(b.0) + r,
                    a.1.max(b.1) + r,
                )
            }
            Shape::Polygon(pts) => pts.iter().fold(
                (f32::MAX, f32::MAX, f32::MIN, f32::MIN),
                |(x0, y0, x1, y1), p| (x0.min(p.0), y0.min(p.1), x1.max(p.0), y1.max(p.1)),
            ),
        }
    }

    pub fn contains(&self, x: f32, y: f32) -> bool {
        match self {
            Shape::Ellipse { c, rx, ry, angle } => {
                let (s, co) = angle.sin_cos();
                let (dx, dy) = (x - c.0, y - c.1);
                let u = co * dx + s * dy;
                let v = -s * dx + co * dy;
                (u / rx).powi(2) + (v / ry).powi(2) <= 1.0
            }
            Shape::Capsule { a, b, r0, r1 } => {
                let (vx, vy) = (b.0 - a.0, b.1 - a.1);
                let len2 = vx * vx + vy * vy;
                let t = if len2 > 0.0 {
                    (((x - a.0) * vx + (y - a.1) * vy) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (px, py) = (a.0 + t * vx, a.1 + t * vy);
                let r = r0 + (r1 - r0) * t;
                (x - px).powi(2) + (y - py).powi(2) <= r * r
            }
            Shape::Polygon(pts) => {
                // Even-odd crossing test.
                let mut inside = false;
                let n = pts.len();
                let mut j = n.wrapping_sub(1);
                for i in 0..n {
                    let (xi, yi) = pts[i];
                    let (xj, yj) = pts[j];
                    if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
                        inside = !inside;
                    }
                    j = i;
                }
                inside
            }
        }
    }
}

/// A circle of radius `r` centred at `c`.
pub fn circle(c: (f32, f32), r: f32) -> Shape {
    Shape::Ellipse {
        c,
        rx: r,
        ry: r,
        angle: 0.0,
    }
}

/// An ellipse with radii `rx`, `ry`, its `rx` axis rotated by `angle` radians.
pub fn ell(c: (f32, f32), rx: f32, ry: f32, angle: f32) -> Shape {
    Shape::Ellipse { c, rx, ry, angle }
}

/// A capsule from `a` (radius `r0`) to `b` (radius `r1`).
pub fn cap(a: (f32, f32), b: (f32, f32), r0: f32, r1: f32) -> Shape {
    Shape::Capsule { a, b, r0, r1 }
}

/// An axis-aligned rectangle from (`x0`, `y0`) to (`x1`, `y1`).
pub fn rect(x0: f32, y0: f32, x1: f32, y1: f32) -> Shape {
    Shape::Polygon(vec![(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
}

/// The upper half of an ellipse centred at `c` as polygon points (domes: mushroom caps, umbrellas).
pub fn dome(c: (f32, f32), rx: f32, ry: f32, steps: usize) -> Vec<(f32, f32)> {
    (0..=steps)
        .map(|k| {
            let t = std::f32::consts::PI * k as f32 / steps as f32;
            (c.0 + rx * t.cos(), c.1 - ry * t.sin())
        })
        .collect()
}

/// A random size factor `1 ± amount` (one draw), for proportions that vary between drawings.
pub fn jit(rng: &mut ChaCha8Rng, amount: f32) -> f32 {
    1.0 + rng.gen_range(-amount..=amount)
}

/// A float RGB canvas with an optional coverage mask (1 where a masked sprite was drawn).
#[derive(Debug, Clone)]
pub struct Canvas {
    pub w: usize,
    pub h: usize,
    /// Row-major RGB, len w*h*3.
    pub px: Vec<f32>,
    /// Row-major, len w*h; only written by [`Canvas::fill_masked`].
    pub mask: Vec<f32>,
}

impl Canvas {
    pub fn new(w: usize, h: usize, color: Rgb) -> Canvas {
        let mut px = Vec::with_capacity(w * h * 3);
        for _ in 0..w * h {
            px.extend_from_slice(&color);
        }
        Canvas {
            w,
            h,
            px,
            mask: vec![0.0; w * h],
        }
    }

    #[inline]
    pub fn set(&mut self, x: usize, y: usize, c: Rgb) {
        let i = (y * self.w + x) * 3;
        self.px[i..i + 3].copy_from_slice(&c);
    }

    #[inline]
    pub fn get(&self, x: usize, y: usize) -> Rgb {
        let i = (y * self.w + x) * 3;
        [self.px[i], self.px[i + 1], self.px[i + 2]]
    }

    /// Sets every pixel from `f(x, y)` where x, y are pixel centres in units of the canvas.
    pub fn paint(&mut self, f: impl Fn(f32, f32) -> Rgb) {
        for y in 0..self.h {
            for x in 0..self.w {
                let c = f(x as f32 + 0.5, y as f32 + 0.5);
                self.set(x, y, c);
            }
        }
    }

    fn pixel_range(&self, shape: &Shape) -> Option<(usize, usize, usize, usize)> {
        let (x0, y0, x1, y1) = shape.bbox();
        let x0 = x0.floor().max(0.0) as usize;
        let y0 = y0.floor().max(0.0) as usize;
        let x1 = (x1.ceil() as i64).min(self.w as i64 - 1);
        let y1 = (y1.ceil() as i64).min(self.h as i64 - 1);
        if x1 < 0 || y1 < 0 || x0 as i64 > x1 || y0 as i64 > y1 {
            return None;
        }
        Some((x0, y0, x1 as usize, y1 as usize))
    }

    pub fn fill(&mut self, shape: &Shape, color: Rgb) {
        self.fill_with(shape, false, |_, _| color);
    }

    /// Fills `shape` and marks it in the mask (sprite pixels, e.g. the bird).
    pub fn fill_masked(&mut self, shape: &Shape, color: Rgb) {
        self.fill_with(shape, true, |_, _| color);
    }

    /// Fills `shape` with a colour that may depend on the pixel (shading, texture); optionally marks the mask.
    pub fn fill_with(&mut self, shape: &Shape, masked: bool, f: impl Fn(f32, f32) -> Rgb) {
        let Some((x0, y0, x1, y1)) = self.pixel_range(shape) else {
            return;
        };
        for y in y0..=y1 {
            for x in x0..=x1 {
                let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
                if shape.contains(fx, fy) {
                    self.set(x, y, f(fx, fy));
                    if masked {
                        self.mask[y * self.w + x] = 1.0;
                    }
                }
            }
        }
    }

    /// Clears the mask where `shape` covers it (an occluder drawn in front of the sprite).
    pub fn fill_occluding(&mut self, shape: &Shape, color: Rgb) {
        let Some((x0, y0, x1, y1)) = self.pixel_range(shape) else {
            return;
        };
        for y in y0..=y1 {
            for x in x0..=x1 {
                if shape.contains(x as f32 + 0.5, y as f32 + 0.5) {
                    self.set(x, y, color);
                    self.mask[y * self.w + x] = 0.0;
                }
            }
        }
    }

    /// `self` where `sprite.mask` is 0, `sprite` where it is 1; the mask of the result is the sprite's.
    pub fn composite(&self, sprite: &Canvas) -> Canvas {
        let mut out = self.clone();
        for i in 0..self.w * self.h {
            let m = sprite.mask[i];
            if m > 0.0 {
                for k in 0..3 {
                    out.px[i * 3 + k] = sprite.px[i * 3 + k];
                }
            }
        }
        out.mask.copy_from_slice(&sprite.mask);
        out
    }

    /// Box-filter down-sampling by an integer factor to 8-bit RGB (row-major HWC) and the mask (0/255, a pixel is
    /// bird when at least half of its sub-pixels are).
    pub fn downsample(&self, ss: usize) -> (Vec<u8>, Vec<u8>) {
        let (w, h) = (self.w / ss, self.h / ss);
        let mut rgb = vec![0u8; w * h * 3];
        let mut mask = vec![0u8; w * h];
        let norm = 1.0 / (ss * ss) as f32;
        for y in 0..h {
            for x in 0..w {
                let mut acc = [0f32; 4];
                for dy in 0..ss {
                    for dx in 0..ss {
                        let i = (y * ss + dy) * self.w + x * ss + dx;
                        acc[0] += self.px[i * 3];
                        acc[1] += self.px[i * 3 + 1];
                        acc[2] += self.px[i * 3 + 2];
                        acc[3] += self.mask[i];
                    }
                }
                let o = y * w + x;
                for k in 0..3 {
                    rgb[o * 3 + k] = (acc[k] * norm * 255.0).round().clamp(0.0, 255.0) as u8;
                }
                mask[o] = if acc[3] * norm >= 0.5 { 255 } else { 0 };
            }
        }
        (rgb, mask)
    }
}

/// Hash of (seed, x, y) to [0, 1) (SplitMix64 finaliser): the lattice of the value noise.
#[inline]
pub fn hash01(seed: u64, x: i64, y: i64) -> f32 {
    let mut z = seed
        ^ (x as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (y as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 40) as f32 / (1u64 << 24) as f32
}

/// Smooth value noise in [0, 1] with lattice spacing 1 (scale the coordinates to set the feature size).
pub fn value_noise(seed: u64, x: f32, y: f32) -> f32 {
    let (xf, yf) = (x.floor(), y.floor());
    let (xi, yi) = (xf as i64, yf as i64);
    let (tx, ty) = (x - xf, y - yf);
    let (sx, sy) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
    let a = hash01(seed, xi, yi);
    let b = hash01(seed, xi + 1, yi);
    let c = hash01(seed, xi, yi + 1);
    let d = hash01(seed, xi + 1, yi + 1);
    let top = a + (b - a) * sx;
    let bot = c + (d - c) * sx;
    top + (bot - top) * sy
}

/// Two-octave fractal value noise in [0, 1].
pub fn fbm(seed: u64, x: f32, y: f32) -> f32 {
    0.65 * value_noise(seed, x, y) + 0.35 * value_noise(seed ^ 0x5555, x * 2.1, y * 2.1)
}

/// Encodes 8-bit RGB (HWC) as PNG bytes; deterministic for equal input.
pub fn png_rgb(w: usize, h: usize, rgb: &[u8]) -> Result<Vec<u8>, image::ImageError> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out).write_image(rgb, w as u32, h as u32, ExtendedColorType::Rgb8)?;
    Ok(out)
}

/// Encodes an 8-bit grey image (e.g. a 0/255 mask) as PNG bytes.
pub fn png_gray(w: usize, h: usize, px: &[u8]) -> Result<Vec<u8>, image::ImageError> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out).write_image(px, w as u32, h as u32, ExtendedColorType::L8)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_contain_their_centre_and_not_far_points() {
        let shapes = [
            Shape::Ellipse {
                c: (10.0, 10.0),
                rx: 5.0,
                ry: 2.0,
                angle: 0.3,
            },
            Shape::Capsule {
                a: (5.0, 10.0),
                b: (15.0, 10.0),
                r0: 2.0,
                r1: 1.0,
            },
            Shape::Polygon(vec![(5.0, 5.0), (15.0, 5.0), (15.0, 15.0), (5.0, 15.0)]),
        ];
        for s in &shapes {
            assert!(s.contains(10.0, 10.0), "{s:?}");
            assert!(!s.contains(30.0, 30.0), "{s:?}");
        }
    }

    #[test]
    fn mirror_flips_x() {
        let t = Similarity {
            scale: 2.0,
            angle: 0.0,
            mirror: true,
            tx: 10.0,
            ty: 5.0,
        };
        assert_eq!(t.apply((1.0, 1.0)), (8.0, 7.0));
    }

    #[test]
    fn downsample_thresholds_mask_at_half() {
        let mut c = Canvas::new(4, 2, [0.0; 3]);
        c.mask = vec![1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0];
        let (_, m) = c.downsample(2);
        assert_eq!(m, vec![255, 0]);
    }
}
