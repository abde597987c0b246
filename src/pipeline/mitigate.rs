//! Mitigation stages (paper section 4.3, Table 1): flag training samples whose top word is not a class word,
//! mask the region their target word points at with word-targeted GradCAM, fine-tune the ERM model on the masked
//! samples; the Random baseline takes as many samples at random and masks them the same way; `oracle` takes
//! TExplain's selection masked with the true background.
use anyhow::{bail, Context, Result};
use rand::seq::index::sample;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use tch::{Kind, Tensor};

use super::explain::{LanguageModel, TrainedTranslator};
use super::Splits;
use crate::config::{Experiment, MaskValue};
use crate::explain::{gradcam, sentences};
use crate::metrics;
use crate::models::vit::Vit;
use crate::rundir::{run_stage, write_atomic, write_json, StageDone, StageKey};
use crate::runtime::{set_seed, stage_seed};
use crate::train;

/// One training sample's explanation verdict.
#[derive(Debug, Clone)]
pub struct Flag {
    pub index: usize,
    pub top_words: Vec<String>,
    pub flagged: bool,
    /// The first dominant word that is not a class word (None when every dominant word names the class).
    pub target: Option<String>,
}

/// The paper's rule: flagged when the top word is not one of the class's words; the target is the first
/// dominant word that is not a class word.
pub fn flag(top_words: &[String], class_words: &[String]) -> (bool, Option<String>) {
    let is_class = |w: &String| class_words.contains(w);
    let flagged = top_words.first().is_some_and(|w| !is_class(w));
    (flagged, top_words.iter().find(|w| !is_class(w)).cloned())
}

/// Reads `words-<split>.csv` (img_id,rank,word,count,freq) into ranked top words per img_id.
pub fn read_top_words(path: &Path) -> Result<HashMap<i64, Vec<String>>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    let mut ranked: HashMap<i64, Vec<(u32, String)>> = HashMap::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{} row {}", path.display(), line + 2))?;
        let field = |i: usize| {
            record
                .get(i)
                .with_context(|| format!("{} row {}: too few columns", path.display(), line + 2))
        };
        let id: i64 = field(0)?
            .parse()
            .with_context(|| format!("{} row {}: img_id", path.display(), line + 2))?;
        let rank: u32 = field(1)?
            .parse()
            .with_context(|| format!("{} row {}: rank", path.display(), line + 2))?;
        ranked
            .entry(id)
            .or_default()
            .push((rank, field(2)?.to_string()));
    }
    Ok(ranked
        .into_iter()
        .map(|(id, mut words)| {
            words.sort();
            (id, words.into_iter().map(|(_, w)| w).collect())
        })
        .collect())
}

#[derive(Serialize)]
struct FlagSummary {
    n_train: usize,
    n_flagged: usize,
    flagged_fraction: f64,
    /// Flagged set vs the minority groups (place differs from the class's usual place: g = 1, 2).
    minority_precision: Option<f64>,
    minority_recall: Option<f64>,
    /// Flagged set vs the training samples the ERM model gets wrong.
    erm_error_precision: Option<f64>,
    erm_error_recall: Option<f64>,
    flagged_per_group: Vec<usize>,
}

/// Flags the training set from its explanations; writes `flags.csv` and `summary.json`.
pub fn flag_stage(
    exp: &Experiment,
    seed: u64,
    seed_dir: &Path,
    explain: &StageDone,
    vit: &Vit,
    splits: &Splits,
) -> Result<StageDone> {
    let mut key = StageKey::new("flags");
    key.add("seed", &seed)
        .add("explain", &explain.hash)
        .add("class_words", &exp.config.mitigation.class_words);
    run_stage(seed_dir, "flags", &key, |dir| {
        let top = read_top_words(&explain.dir.join("words-train.csv"))?;
        let flags = compute_flags(exp, splits, &top)?;
        let train = &splits.train;
        let mut csv = String::from("img_id,group,y,top_words,flagged,target\n");
        for f in &flags {
            csv.push_str(&format!(
                "{},{},{},{},{},{}\n",
                train.img_ids[f.index],
                train.group(f.index),
                train.y[f.index],
                f.top_words.join(" "),
                u8::from(f.flagged),
                f.target.as_deref().unwrap_or("")
            ));
        }
        write_atomic(&dir.join("flags.csv"), csv)?;
        let flagged: Vec<usize> = flags
            .iter()
            .filter(|f| f.flagged)
            .map(|f| f.index)
            .collect();
        let minority: Vec<usize> = (0..train.len())
            .filter(|&i| matches!(train.group(i), 1 | 2))
            .collect();
        let preds = train::predict(vit, &train.images, &super::input_pipeline(exp), 256);
        let errors: Vec<usize> = (0..train.len())
            .filter(|&i| preds[i] != train.y[i])
            .collect();
        let vs_minority = metrics::precision_recall(&flagged, &minority);
        let vs_errors = metrics::precision_recall(&flagged, &errors);
        let mut per_group = vec![0; crate::data::N_GROUPS];
        for &i in &flagged {
            per_group[train.group(i) as usize] += 1;
        }
        let summary = FlagSummary {
            n_train: train.len(),
            n_flagged: flagged.len(),
            flagged_fraction: flagged.len() as f64 / train.len().max(1) as f64,
            minority_precision: vs_minority.precision,
            minority_recall: vs_minority.recall,
            erm_error_precision: vs_errors.precision,
            erm_error_recall: vs_errors.recall,
            flagged_per_group: per_group,
        };
        tracing::info!(
            seed,
            flagged = summary.n_flagged,
            fraction = summary.flagged_fraction,
            "training set flagged"
        );
        write_json(&dir.join("summary.json"), &summary)
    })
}

fn compute_flags(
    exp: &Experiment,
    splits: &Splits,
    top: &HashMap<i64, Vec<String>>,
) -> Result<Vec<Flag>> {
    let train = &splits.train;
    (0..train.len())
        .map(|i| {
            let words = top.get(&train.img_ids[i]).cloned().unwrap_or_default();
            let class_words = exp
                .config
                .mitigation
                .class_words
                .get(&train.y[i])
                .with_context(|| {
                    format!("mitigation.class_words: no words for class {}", train.y[i])
                })?;
            let (flagged, target) = flag(&words, class_words);
            Ok(Flag {
                index: i,
                top_words: words,
                flagged,
                target,
            })
        })
        .collect()
}

/// Reads `flags.csv` back (index order = training split order).
fn read_flags(exp: &Experiment, splits: &Splits, explain: &StageDone) -> Result<Vec<Flag>> {
    compute_flags(
        exp,
        splits,
        &read_top_words(&explain.dir.join("words-train.csv"))?,
    )
}

/// The selections that get masked: TExplain's flagged samples, and as many drawn at random.
pub struct Selections {
    pub texplain: Vec<usize>,
    pub random: Vec<usize>,
}

pub fn selections(
    exp: &Experiment,
    seed: u64,
    splits: &Splits,
    explain: &StageDone,
) -> Result<(Vec<Flag>, Selections)> {
    let flags = read_flags(exp, splits, explain)?;
    let texplain: Vec<usize> = flags
        .iter()
        .filter(|f| f.flagged)
        .map(|f| f.index)
        .collect();
    let mut rng = set_seed(stage_seed(seed, "random-selection"));
    let mut random = sample(&mut rng, splits.train.len(), texplain.len()).into_vec();
    random.sort_unstable();
    Ok((flags, Selections { texplain, random }))
}

#[derive(Serialize)]
struct MaskSummary {
    method: String,
    n_selected: usize,
    n_masked: usize,
    mean_masked_fraction: f64,
    /// IoU of the GradCAM masks with the true background, and the share of masked pixels on the bird.
    background_iou: Option<f64>,
    masked_on_bird: Option<f64>,
}

/// Word-targeted GradCAM masks for every selected sample (TExplain's and Random's); writes
/// `masks.safetensors` (u8 [n, 1, H, W] masks and their training-set rows), `summary.json` and overlays.
#[allow(clippy::too_many_arguments)]
pub fn mask_stage(
    exp: &Experiment,
    seed: u64,
    seed_dir: &Path,
    explain: &StageDone,
    vit: &Vit,
    translator: &TrainedTranslator,
    lm: &LanguageModel,
    splits: &Splits,
) -> Result<StageDone> {
    let g = &exp.config.mitigation.gradcam;
    let mut key = StageKey::new("masks");
    key.add("seed", &seed)
        .add("explain", &explain.hash)
        .add("gradcam", g);
    key.add("class_words", &exp.config.mitigation.class_words);
    run_stage(seed_dir, "masks", &key, |dir| {
        let (flags, sel) = selections(exp, seed, splits, explain)?;
        let rows: Vec<usize> = sel
            .texplain
            .iter()
            .chain(&sel.random)
            .copied()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let sentences = sentences::read_by_image(&explain.dir.join(sentences::file_name("train")))?;
        let (masks, cams) =
            gradcam_cams(exp, vit, translator, lm, splits, &flags, &rows, &sentences)?; // [n, 1, H, W]
        let row_of: HashMap<usize, i64> = rows
            .iter()
            .enumerate()
            .map(|(k, &r)| (r, k as i64))
            .collect();
        let mut summaries = Vec::new();
        for (method, chosen) in [("texplain", &sel.texplain), ("random", &sel.random)] {
            let index = Tensor::from_slice(&chosen.iter().map(|r| row_of[r]).collect::<Vec<_>>());
            let m = masks.index_select(0, &index);
            let per_image = m
                .to_kind(Kind::Float)
                .mean_dim(&[1i64, 2, 3][..], false, Kind::Float);
            let n_masked = per_image.gt(0.0).sum(Kind::Int64).int64_value(&[]) as usize;
            let (iou, on_bird) = match &splits.train.bird_masks {
                Some(bird) if !chosen.is_empty() => {
                    let bird = bird.index_select(
                        0,
                        &Tensor::from_slice(&chosen.iter().map(|&r| r as i64).collect::<Vec<_>>()),
                    );
                    let (iou, on_bird) = gradcam::mask_scores(&m, &bird);
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
                method,
                n = chosen.len(),
                mean_fraction,
                ?iou,
                ?on_bird,
                "GradCAM masks"
            );
            summaries.push(MaskSummary {
                method: method.into(),
                n_selected: chosen.len(),
                n_masked,
                mean_masked_fraction: mean_fraction,
                background_iou: iou,
                masked_on_bird: on_bird,
            });
        }
        write_json(&dir.join("summary.json"), &summaries)?;
        let index = Tensor::from_slice(&rows.iter().map(|&r| r as i64).collect::<Vec<_>>());
        let tensors = [("masks", masks.to_kind(Kind::Uint8)), ("rows", index)];
        Tensor::write_safetensors(&tensors, dir.join("masks.safetensors"))
            .context("writing the masks")?;
        let n_overlays = g.overlays.min(sel.texplain.len());
        let overlay_rows: Vec<(usize, i64)> = sel.texplain[..n_overlays]
            .iter()
            .map(|r| (*r, row_of[r]))
            .collect();
        write_overlays(
            splits,
            &flags,
            &overlay_rows,
            &masks,
            &cams,
            &dir.join("overlays"),
        )
    })
}

/// Target token and the image's sentences (token ids) that hold it, for the GradCAM score.
fn score_inputs(
    lm: &LanguageModel,
    target: Option<&str>,
    sentences: Option<&Vec<String>>,
    max_sentences: usize,
    max_tokens: usize,
) -> Result<Option<(i64, Vec<Vec<i64>>)>> {
    let Some(target) = target else {
        return Ok(None);
    };
    let spellings = lm.tokenizer.word_start_tokens(target)?;
    // A multi-token BPE word is scored by its first token (the word's onset), as the sentences are sampled.
    let Some(token) = spellings
        .iter()
        .filter_map(|s| s.first())
        .next()
        .map(|&t| t as i64)
    else {
        return Ok(None);
    };
    let mut chosen = Vec::new();
    for sentence in sentences.into_iter().flatten() {
        let mut ids = lm.encode_sentence(sentence)?;
        // Re-encoding the decoded text can take more tokens than were sampled (a lone byte token decodes to
        // U+FFFD, three bytes), so the sentence is cut to the LM's context after the prefix.
        ids.truncate(max_tokens);
        if ids.contains(&token) {
            chosen.push(ids);
            if chosen.len() == max_sentences {
                break;
            }
        }
    }
    Ok(Some((token, chosen)))
}

/// GradCAM masks (bool, true = masked) and cams ([n, 1, H, W] each) for rows of the training split. A sample
/// without a non-class target word gets an empty mask.
#[allow(clippy::too_many_arguments)]
fn gradcam_cams(
    exp: &Experiment,
    vit: &Vit,
    translator: &TrainedTranslator,
    lm: &LanguageModel,
    splits: &Splits,
    flags: &[Flag],
    rows: &[usize],
    sentences: &HashMap<i64, Vec<String>>,
) -> Result<(Tensor, Tensor)> {
    let g = &exp.config.mitigation.gradcam;
    let layer = exp.config.translator.layer;
    let size = exp.config.data.image_size;
    let input = super::input_pipeline(exp);
    let train = &splits.train;
    let (mut all_masks, mut all_cams) = (Vec::new(), Vec::new());
    let progress = crate::progress::bar(rows.len() as u64, "gradcam");
    for chunk in rows.chunks(g.batch_size.max(1)) {
        let mut targets = Vec::new();
        let mut sents = Vec::new();
        let mut has_target = Vec::new();
        for &r in chunk {
            let flag = &flags[r];
            match score_inputs(
                lm,
                flag.target.as_deref(),
                sentences.get(&train.img_ids[r]),
                g.sentences_per_image,
                (lm.lm.config().n_positions - exp.config.translator.prefix_len).max(1) as usize,
            )? {
                Some((token, s)) => {
                    targets.push(token);
                    sents.push(s);
                    has_target.push(true);
                }
                None => {
                    targets.push(lm.tokenizer.eos_id() as i64);
                    sents.push(Vec::new());
                    has_target.push(false);
                }
            }
        }
        let index = Tensor::from_slice(&chunk.iter().map(|&r| r as i64).collect::<Vec<_>>());
        let xs = input.eval_batch(&train.images.index_select(0, &index));
        let tokens = tch::no_grad(|| vit.forward_features(&xs, layer, false))?
            .tokens
            .detach()
            .set_requires_grad(true);
        let prefix = translator.translator.forward(&tokens)?; // [b, k, d_lm]
        let score = gradcam::target_log_prob(&lm.lm, &prefix, &sents, &targets)?; // [b]
        let cams = gradcam::cam_from_score(&tokens, &score, size); // [b, 1, H, W]
        let keep = Tensor::from_slice(&has_target)
            .to_device(cams.device())
            .view([-1, 1, 1, 1]);
        let masks = gradcam::threshold_masks(&cams, g.threshold).logical_and(&keep);
        all_masks.push(masks.to_device(tch::Device::Cpu));
        all_cams.push(cams.to_device(tch::Device::Cpu));
        progress.inc(chunk.len() as u64);
    }
    progress.finish_and_clear();
    if all_masks.is_empty() {
        let empty = Tensor::zeros([0, 1, size, size], (Kind::Bool, tch::Device::Cpu));
        return Ok((empty.shallow_clone(), empty.to_kind(Kind::Float)));
    }
    Ok((Tensor::cat(&all_masks, 0), Tensor::cat(&all_cams, 0)))
}

/// Overlays (original | cam overlay | masked, one PNG each) for (training row, row in `masks`/`cams`) pairs.
fn write_overlays(
    splits: &Splits,
    flags: &[Flag],
    rows: &[(usize, i64)],
    masks: &Tensor,
    cams: &Tensor,
    overlay_dir: &Path,
) -> Result<()> {
    for &(r, k) in rows {
        let image = splits.train.images.get(r as i64); // [3, H, W]
        let mask = masks.get(k);
        let panels = [
            image.shallow_clone(),
            gradcam::overlay(&image, &cams.get(k), &mask),
            gradcam::apply_masks(&image.unsqueeze(0), &mask.unsqueeze(0), false).squeeze_dim(0),
        ];
        let strip = Tensor::cat(&panels, 2); // [3, H, 3W]
        let target = flags[r].target.as_deref().unwrap_or("none");
        let train = &splits.train;
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

/// Fine-tunes the ERM model on one method's masked selection and evaluates it (paper 4.3 step 5).
#[allow(clippy::too_many_arguments)]
pub fn finetune_stage(
    exp: &Experiment,
    seed: u64,
    seed_dir: &Path,
    method: &str,
    erm: &StageDone,
    masks: &StageDone,
    explain: &StageDone,
    splits: &Splits,
) -> Result<StageDone> {
    let cfg = &exp.config.mitigation;
    let mut key = StageKey::new(method);
    key.add("seed", &seed)
        .add("erm", &erm.hash)
        .add("masks", &masks.hash)
        .add("finetune", &cfg.finetune);
    key.add("mask_value", &cfg.gradcam.mask_value);
    run_stage(seed_dir, method, &key, |dir| {
        let (_, sel) = selections(exp, seed, splits, explain)?;
        let chosen = match method {
            "texplain" | "oracle" => &sel.texplain,
            "random" => &sel.random,
            other => bail!("no fine-tuning method {other:?}"),
        };
        if chosen.is_empty() {
            // Nothing flagged: the procedure has no sample to fine-tune on, so its outcome is the ERM model.
            tracing::warn!(
                seed,
                "{method}: no training sample was flagged, so there is nothing to fine-tune on; \
                 {method} keeps the ERM model and reports its accuracy"
            );
            let (_, model, _) = super::load_classifier(exp, &erm.dir)?;
            let input = super::input_pipeline(exp);
            let rows = super::evaluate_rows(
                &model,
                splits,
                &input,
                seed,
                method,
                cfg.finetune.batch_size,
            );
            crate::report::write_results_csv(&dir.join("results.csv"), &rows)?;
            return Ok(());
        }
        let train = &splits.train;
        let index = Tensor::from_slice(&chosen.iter().map(|&r| r as i64).collect::<Vec<_>>());
        let region = if method == "oracle" {
            let bird = train
                .bird_masks
                .as_ref()
                .context("oracle: the data ship no true bird masks (fg_masks/)")?;
            bird.index_select(0, &index).eq(0) // mask the whole true background
        } else {
            let stored = Tensor::read_safetensors(masks.dir.join("masks.safetensors"))?;
            let get = |name: &str| {
                stored
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, t)| t.shallow_clone())
            };
            let (all, rows) = (
                get("masks").context("masks.safetensors: no `masks`")?,
                get("rows").context("masks.safetensors: no `rows`")?,
            );
            let rows: Vec<i64> = Vec::try_from(rows)?;
            let position: BTreeMap<i64, i64> = rows
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
                        .context("a selected sample has no mask")
                })
                .collect::<Result<Vec<_>>>()?;
            all.index_select(0, &Tensor::from_slice(&picks))
                .to_kind(Kind::Bool)
        };
        let mut subset = train.select(chosen);
        subset.images = gradcam::apply_masks(
            &subset.images,
            &region,
            cfg.gradcam.mask_value == MaskValue::Mean,
        );
        let (mut vs, model, _) = super::load_classifier(exp, &erm.dir)?;
        let mut rng = set_seed(stage_seed(seed, method));
        let input = super::input_pipeline(exp);
        let val =
            (cfg.finetune.select == crate::config::Selection::WorstGroupVal).then_some(&splits.val);
        train::train_classifier(
            &model,
            &mut vs,
            &subset,
            val,
            &cfg.finetune,
            &input,
            &mut rng,
            dir,
        )?;
        let rows = super::evaluate_rows(
            &model,
            splits,
            &input,
            seed,
            method,
            cfg.finetune.batch_size,
        );
        crate::report::write_results_csv(&dir.join("results.csv"), &rows)?;
        Ok(())
    })
}

/// The methods a config runs, in the Table-1 order, with `erm` first.
pub fn ordered_methods(methods: &[String]) -> Vec<String> {
    let order = ["erm", "random", "texplain", "oracle"];
    let chosen: HashSet<&str> = methods.iter().map(String::as_str).collect();
    order
        .iter()
        .filter(|m| chosen.contains(*m))
        .map(|m| m.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[&str]) -> Vec<String> {
        ws.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn flag_rule_follows_the_paper() {
        let class = words(&["bird"]);
        for (top, flagged, target) in [
            (words(&["bird", "water", "lake"]), false, Some("water")),
            (words(&["water", "bird"]), true, Some("water")),
            (words(&["forest", "trees"]), true, Some("forest")),
            (words(&["bird"]), false, None),
            (words(&[]), false, None),
        ] {
            let (f, t) = flag(&top, &class);
            assert_eq!((f, t.as_deref()), (flagged, target), "{top:?}");
        }
    }
}
