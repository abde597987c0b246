//! Occlusion (Zeiler & Fergus 2014): the drop of the score when a window of patches is replaced by the masking fill.
//! A slow reference for the gradient methods: it measures what masking a region does to the score, which is what
//! the mitigation relies on, with no gradient or attention assumption.
//!
//! Each window position is one forward pass over the whole batch (the score sees the batch it was built for); a
//! patch's relevance is the mean drop over the windows that cover it, clipped at 0 (a region whose removal raises
//! the score does not speak for it).
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::maps::{check_score, RelevanceMaps, ScoreFn};
use crate::models::vit::Vit;

/// The windows: `window` x `window` patches, moved by `stride` patches (`stride <= window`, so that every patch is
/// covered); the last row and column of windows are flush with the grid's edge. YAML: `{window: 2, stride: 1}`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Occlusion {
    pub window: i64,
    pub stride: i64,
}

impl Default for Occlusion {
    /// One patch at a time.
    fn default() -> Self {
        Occlusion {
            window: 1,
            stride: 1,
        }
    }
}

/// Window offsets along one side of a grid of `grid` patches.
fn offsets(grid: i64, window: i64, stride: i64) -> Vec<i64> {
    let last = grid - window;
    let mut out: Vec<i64> = (0..=last).step_by(stride as usize).collect();
    if out.last() != Some(&last) {
        out.push(last);
    }
    out
}

/// Occlusion maps of the score that reads the tokens of layer `score_layer` (HF `hidden_states` index, -1 =
/// `last_hidden_state`). `xs`: pixel values `[b, c, H, W]` as the classifier takes them; `fill`: the replacement
/// in the same (normalised) space, broadcastable to `[b, c, 1, 1]` (`[c]` is read as one colour). The masking's
/// zero fill is the input pipeline applied to a black u8 pixel, its mean-colour fill the same for each image's
/// mean colour. The scores are computed without gradients.
pub fn occlusion(
    vit: &Vit,
    xs: &Tensor,
    fill: &Tensor,
    params: Occlusion,
    score_layer: i64,
    score: &mut ScoreFn<'_>,
) -> Result<RelevanceMaps> {
    let cfg = vit.config();
    let (ps, grid) = (cfg.patch_size, cfg.grid());
    let Occlusion { window, stride } = params;
    if window < 1 || window > grid || stride < 1 || stride > window {
        bail!("occlusion: window {window} and stride {stride} must satisfy 1 <= stride <= window <= {grid}");
    }
    vit.check_input(xs)?;
    let (b, c) = (xs.size()[0], xs.size()[1]);
    let fill = if fill.dim() == 1 {
        fill.view([1, -1, 1, 1])
    } else {
        fill.shallow_clone()
    }
    .to_kind(xs.kind())
    .to_device(xs.device());
    let mut run = |pixels: &Tensor| -> Result<Tensor> {
        let tokens = vit.forward_features(pixels, score_layer, false)?.tokens; // [b, p+1, d]
        let s = score(&tokens)?; // [b]
        check_score(&s, b)?;
        Ok(s.detach().to_kind(Kind::Float))
    };
    tch::no_grad(|| -> Result<RelevanceMaps> {
        let base = run(xs)?; // [b]
        let mut drops = Tensor::zeros([b, grid, grid], (Kind::Float, xs.device())); // [b, g, g]
        let counts = Tensor::zeros([1, grid, grid], (Kind::Float, xs.device())); // [1, g, g]
        let side = offsets(grid, window, stride);
        for &i in &side {
            for &j in &side {
                let occluded = xs.copy(); // [b, c, H, W]
                let mut region =
                    occluded
                        .narrow(2, i * ps, window * ps)
                        .narrow(3, j * ps, window * ps);
                region.copy_(&fill.expand([b, c, window * ps, window * ps], false));
                let drop = &base - run(&occluded)?; // [b]
                let cover = |t: &Tensor| t.narrow(1, i, window).narrow(2, j, window);
                let _ = cover(&drops).g_add_(&drop.view([b, 1, 1]));
                let _ = cover(&counts).g_add_scalar_(1.0);
            }
        }
        drops /= &counts;
        RelevanceMaps::from_patches(&drops.relu().reshape([b, grid * grid]), cfg.image_size)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::vit::Config;
    use tch::{nn, Device};

    #[test]
    fn offsets_cover_the_grid_and_end_flush() {
        assert_eq!(offsets(4, 1, 1), [0, 1, 2, 3]);
        assert_eq!(offsets(4, 2, 1), [0, 1, 2]);
        assert_eq!(offsets(5, 2, 2), [0, 2, 3]);
        assert_eq!(offsets(4, 4, 3), [0]);
    }

    #[test]
    fn occlusion_finds_the_one_patch_the_score_reads() {
        tch::manual_seed(5);
        let vs = nn::VarStore::new(Device::Cpu);
        let vit = Vit::new(&vs.root(), &Config::tiny(16, 4)); // 4 x 4 patches
        let xs = Tensor::randn([2, 3, 16, 16], (Kind::Float, Device::Cpu));
        let fill = Tensor::from_slice(&[-1f32, 0.0, 0.5]);
        // The score reads the embedding of patch 5 (grid row 1, column 1): its squared distance to the embedding of
        // the fill. Occluding a window over patch 5 drops it to 0; any other window leaves it unchanged.
        let filled = fill.view([1, 3, 1, 1]).expand([1, 3, 16, 16], false);
        let t_fill = vit
            .forward_features(&filled, 0, false)
            .unwrap()
            .tokens
            .select(1, 6);
        let mut score = |t: &Tensor| -> Result<Tensor> {
            Ok((t.select(1, 6) - &t_fill)
                .square()
                .sum_dim_intlist(-1, false, Kind::Float))
        };
        let base = score(&vit.forward_features(&xs, 0, false).unwrap().tokens).unwrap();
        assert!(base.min().double_value(&[]) > 0.0);
        let one = occlusion(&vit, &xs, &fill, Occlusion::default(), 0, &mut score).unwrap();
        let mut want = vec![0f32; 16];
        want[5] = 1.0;
        for image in 0..2 {
            let got = Vec::<f32>::try_from(one.patches.get(image)).unwrap();
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "{got:?}");
            }
        }
        // 2 x 2 windows, stride 1 (3 x 3 positions): a patch's value is the share of its windows that cover
        // patch 5, e.g. patch 0 lies in 1 window (which covers 5), patch 1 in 2 (both do), patch 2 in 2 (one does).
        let two = occlusion(
            &vit,
            &xs,
            &fill,
            Occlusion {
                window: 2,
                stride: 1,
            },
            0,
            &mut score,
        )
        .unwrap();
        let covering = |r: i64, c: i64| {
            let (mut all, mut with5) = (0f32, 0f32);
            for i in 0..3 {
                for j in 0..3 {
                    if (i..i + 2).contains(&r) && (j..j + 2).contains(&c) {
                        all += 1.0;
                        if (i..i + 2).contains(&1) && (j..j + 2).contains(&1) {
                            with5 += 1.0;
                        }
                    }
                }
            }
            with5 / all
        };
        let want: Vec<f32> = (0..16).map(|k| covering(k / 4, k % 4)).collect();
        let got = Vec::<f32>::try_from(two.patches.get(0)).unwrap();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
        }
        assert!(occlusion(
            &vit,
            &xs,
            &fill,
            Occlusion {
                window: 1,
                stride: 2
            },
            0,
            &mut score
        )
        .is_err());
    }
}
