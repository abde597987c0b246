//! The masks stage (paper section 4.3, step 4): word-targeted GradCAM masks for every sample a method fine-tunes
//! on with relevance masks (TExplain's flagged samples and Random's draw), each targeting its own first non-class
//! word. Output: `seed-<s>/masks/` = `masks.safetensors` (u8 masks `[n, 1, H, W]` and their training-split
//! `rows`), `summary.json` (coverage and agreement with the true background per method), `overlays/*.png`; read
//! back through [`Masks`].
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use tch::{Kind, Tensor};

use super::context::Seed;
use super::erm::Erm;
use super::explain::Explained;
use super::flags::Flags;
use super::lm::Lm;
use super::stage::{run_stage, Stage, StageDone, StageKey};
use super::translator::TrainedTranslator;
use crate::data::{Dataset, Split};
use crate::flags::Flag;
use crate::methods::Method;
use crate::models::vit::Vit;
use crate::relevance::mask::{self, MaskValue};
use crate::relevance::threshold::threshold_masks;
use crate::relevance::word::{WordGradcam, WordTarget};
use crate::util::{write_atomic, write_json};

/// Mask quality of one method's selection (`summary.json`).
#[derive(Serialize)]
struct MaskSummary {
    method: Method,
    n_selected: usize,
    n_masked: usize,
    mean_masked_fraction: f64,
    /// IoU of the masks with the true background, and the share of masked pixels on the bird.
    background_iou: Option<f64>,
    masked_on_bird: Option<f64>,
}

/// The finished masks stage of a seed.
pub struct Masks {
    pub done: StageDone,
}

impl Masks {
    const FILE: &'static str = "masks.safetensors";

    /// Writes the masks (bool or u8 `[n, 1, H, W]`) of training rows `rows`.
    pub fn write(dir: &Path, masks: &Tensor, rows: &[usize]) -> Result<()> {
        let index = Tensor::from_slice(&rows.iter().map(|&r| r as i64).collect::<Vec<_>>());
        let tensors = [("masks", masks.to_kind(Kind::Uint8)), ("rows", index)];
        Tensor::write_safetensors(&tensors, dir.join(Self::FILE)).context("writing the masks")
    }

    /// The masks (bool `[k, 1, H, W]`) of training rows `chosen`, each of which must have one.
    pub fn for_rows(&self, chosen: &[usize]) -> Result<Tensor> {
        let path = self.done.dir.join(Self::FILE);
        let stored = Tensor::read_safetensors(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let get = |name: &str| {
            stored
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, t)| t.shallow_clone())
                .with_context(|| format!("{}: no tensor `{name}`", path.display()))
        };
        let (all, rows) = (get("masks")?, get("rows")?);
        let rows: Vec<i64> = Vec::try_from(rows)?;
        let position: HashMap<i64, i64> = rows
            .iter()
            .enumerate()
            .map(|(k, &r)| (r, k as i64))
            .collect();
        let picks = chosen
            .iter()
            .map(|&r| {
                position
                    .get(&(r as i64))
                    .copied()
                    .with_context(|| format!("{}: training row {r} has no mask", path.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(all
            .index_select(0, &Tensor::from_slice(&picks))
            .to_kind(Kind::Bool))
    }
}

/// The selection a method fine-tunes on.
pub fn selection(method: Method, flags: &Flags, seed: u64) -> Option<Vec<usize>> {
    use crate::methods::SampleSelection;
    method.selection().map(|s| match s {
        SampleSelection::Flagged => flags.flagged(),
        SampleSelection::Random => flags.random(seed),
    })
}

/// Word-targeted GradCAM masks for every sample of the relevance-masked methods' selections.
pub fn run(
    ctx: &Seed,
    explained: &Explained,
    flags: &Flags,
    erm: &Erm,
    vit: &Vit,
    translator: &TrainedTranslator,
    lm: &Lm,
) -> Result<Masks> {
    let (exp, seed, splits) = (ctx.exp(), ctx.seed, ctx.splits());
    let g = &exp.config.mitigation.gradcam;
    let mut key = StageKey::new(Stage::Masks);
    key.add("seed", &seed)
        .reads("explain", &explained.done.content)
        .reads("flags", &flags.done.content)
        .reads("erm", &erm.done.content)
        .reads("translator", &translator.done.content)
        .reads("lm", &lm.content)
        .add("gradcam", g);
    key.add("class_words", &exp.config.mitigation.class_words);
    let done = run_stage(&ctx.dir, Stage::Masks, &key, |dir| {
        let methods = [Method::Texplain, Method::Random];
        let selections: Vec<(Method, Vec<usize>)> = methods
            .into_iter()
            .filter_map(|m| selection(m, flags, seed).map(|s| (m, s)))
            .collect();
        let rows: Vec<usize> = selections
            .iter()
            .flat_map(|(_, s)| s.iter().copied())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let sentences = sentences_by_image(explained)?;
        let mapper = WordGradcam {
            vit,
            translator: &translator.model,
            lm: &lm.model,
            input: ctx.input(),
            layer: exp.config.translator.layer,
        };
        let train = &splits.train;
        let context = lm.model.model.config().n_positions - exp.config.translator.prefix_len;
        let max_tokens = context.max(1) as usize;
        let (mut all_masks, mut all_cams) = (Vec::new(), Vec::new());
        let progress = crate::progress::bar(rows.len() as u64, "gradcam");
        for chunk in rows.chunks(g.batch_size.max(1)) {
            let targets = chunk
                .iter()
                .map(|&r| {
                    let Some(word) = flags.flags[r].target.as_deref() else {
                        return Ok(None);
                    };
                    let own = sentences
                        .get(&train.img_ids[r])
                        .map_or(&[][..], Vec::as_slice);
                    WordTarget::new(&lm.model, word, own, g.sentences_per_image, max_tokens)
                })
                .collect::<Result<Vec<_>>>()?;
            let index = Tensor::from_slice(&chunk.iter().map(|&r| r as i64).collect::<Vec<_>>());
            let cams = mapper.cams(&train.images.index_select(0, &index), &targets)?; // [b, 1, H, W]
            all_masks.push(threshold_masks(&cams, g.threshold)?);
            all_cams.push(cams);
            progress.inc(chunk.len() as u64);
        }
        progress.finish_and_clear();
        let size = exp.config.data.image_size;
        let (masks, cams) = if all_masks.is_empty() {
            let empty = Tensor::zeros([0, 1, size, size], (Kind::Float, tch::Device::Cpu));
            (empty.to_kind(Kind::Bool), empty)
        } else {
            (Tensor::cat(&all_masks, 0), Tensor::cat(&all_cams, 0))
        };
        let row_of: HashMap<usize, i64> = rows
            .iter()
            .enumerate()
            .map(|(k, &r)| (r, k as i64))
            .collect();
        let summaries: Vec<MaskSummary> = selections
            .iter()
            .map(|(method, chosen)| summarize(*method, chosen, &masks, &row_of, train, seed))
            .collect();
        write_json(&dir.join("summary.json"), &summaries)?;
        Masks::write(dir, &masks, &rows)?;
        let texplain = selection(Method::Texplain, flags, seed).unwrap_or_default();
        let overlay_rows: Vec<(usize, i64)> = texplain
            .iter()
            .take(g.overlays)
            .map(|r| (*r, row_of[r]))
            .collect();
        write_overlays(
            train,
            &flags.flags,
            &overlay_rows,
            &masks,
            &cams,
            &dir.join("overlays"),
        )
    })?;
    Ok(Masks { done })
}

/// Sampled training sentences per img_id.
fn sentences_by_image(explained: &Explained) -> Result<HashMap<i64, Vec<String>>> {
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    for (id, sentence) in explained.sentences(Split::Train)? {
        out.entry(id).or_default().push(sentence);
    }
    Ok(out)
}

/// Coverage and agreement with the true background of one method's masks.
fn summarize(
    method: Method,
    chosen: &[usize],
    masks: &Tensor,
    row_of: &HashMap<usize, i64>,
    train: &Dataset,
    seed: u64,
) -> MaskSummary {
    let index = Tensor::from_slice(&chosen.iter().map(|r| row_of[r]).collect::<Vec<_>>());
    let m = masks.index_select(0, &index);
    let per_image = m
        .to_kind(Kind::Float)
        .mean_dim(&[1i64, 2, 3][..], false, Kind::Float);
    let n_masked = per_image.gt(0.0).sum(Kind::Int64).int64_value(&[]) as usize;
    let (iou, on_bird) = match &train.bird_masks {
        Some(bird) if !chosen.is_empty() => {
            let bird = bird.index_select(
                0,
                &Tensor::from_slice(&chosen.iter().map(|&r| r as i64).collect::<Vec<_>>()),
            );
            let (iou, on_bird) = mask::mask_scores(&m, &bird);
            (Some(iou), Some(on_bird))
        }
        _ => (None, None),
    };
    let mean_fraction = if chosen.is_empty() {
        0.0
    } else {
        per_image.mean(Kind::Float).double_value(&[])
    };
    tracing::info!(
        seed,
        %method,
        n = chosen.len(),
        mean_fraction,
        ?iou,
        ?on_bird,
        "GradCAM masks"
    );
    MaskSummary {
        method,
        n_selected: chosen.len(),
        n_masked,
        mean_masked_fraction: mean_fraction,
        background_iou: iou,
        masked_on_bird: on_bird,
    }
}

/// Overlays (original | cam overlay | masked, one PNG each) for (training row, row in `masks`/`cams`) pairs.
fn write_overlays(
    train: &Dataset,
    flags: &[Flag],
    rows: &[(usize, i64)],
    masks: &Tensor,
    cams: &Tensor,
    overlay_dir: &Path,
) -> Result<()> {
    for &(r, k) in rows {
        let image = train.images.get(r as i64); // [3, H, W]
        let mask = masks.get(k);
        let panels = [
            image.shallow_clone(),
            mask::overlay(&image, &cams.get(k), &mask),
            mask::apply_masks(&image.unsqueeze(0), &mask.unsqueeze(0), MaskValue::Zero)
                .squeeze_dim(0),
        ];
        let strip = Tensor::cat(&panels, 2); // [3, H, 3W]
        let target = flags[r].target.as_deref().unwrap_or("none");
        let name = format!("{}-g{}-{}.png", train.img_ids[r], train.group(r), target);
        save_u8_png(&strip, &overlay_dir.join(name))?;
    }
    Ok(())
}

/// Writes a u8 [3, H, W] tensor as PNG.
pub fn save_u8_png(image: &Tensor, path: &Path) -> Result<()> {
    let (c, h, w) = image.size3()?;
    if c != 3 {
        bail!("expected an RGB image tensor, got {c} channels");
    }
    let hwc = image
        .permute([1, 2, 0])
        .contiguous()
        .to_device(tch::Device::Cpu);
    let bytes: Vec<u8> = Vec::try_from(hwc.reshape([-1]))?;
    let img = image::RgbImage::from_raw(w as u32, h as u32, bytes).context("image buffer size")?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    write_atomic(path, png)
}
