//! The masks stage (paper section 4.3, step 4): word-targeted relevance masks for every sample a method fine-tunes
//! on with relevance masks (TExplain's flagged samples and Random's draw), each targeting its own first non-class
//! word, with the relevance method and threshold of `mitigation.masks`. Output: `seed-<s>/masks/` =
//! `masks.safetensors` (u8 masks `[n, 1, H, W]` and their training-split `rows`), `summary.json` (per method:
//! coverage, agreement with the true background, and the threshold-free quality of the maps beside a random map
//! and the oracle, overall, per target word and on place words; the word score and its fallback count; for the
//! contribution map the CLS slot's share), `sanity.json` (the maps of a classifier with
//! randomised weights against the trained one's, the target word's probability per background),
//! `overlays/*.png`; read back through [`Masks`].
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
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
use crate::data::words::{attr_names, attribute_concept, place_words};
use crate::data::{Dataset, Split};
use crate::flags::Flag;
use crate::methods::Method;
use crate::models::vit::Vit;
use crate::relevance::attribute::{Concept, WordScore, WordScoreCount};
use crate::relevance::mask;
use crate::relevance::method::RelevanceMethod;
use crate::relevance::quality::{
    bracketed_quality, bracketed_report, Bracketed, MaskQualityReport, Truth,
};
use crate::relevance::sanity::{means_by_word_and_place, spearman_per_image, WordByPlace};
use crate::relevance::threshold::{cat_masks, threshold_masks};
use crate::relevance::word::{WordRelevance, WordTarget};
use crate::runtime::stage_seed;
use crate::text::words::WordFilter;
use crate::util::{read_json, write_atomic, write_json};

/// Images whose maps the randomisation sanity check recomputes with a randomised classifier.
pub const SANITY_IMAGES: usize = 64;

/// Mask quality of one method's selection (one entry of `summary.json`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct MaskSummary {
    pub method: Method,
    pub n_selected: usize,
    pub n_masked: usize,
    pub mean_masked_fraction: f64,
    /// IoU of the masks with the true background, and the share of masked pixels on the bird (over every
    /// selected image, with or without a target word).
    pub background_iou: Option<f64>,
    pub masked_on_bird: Option<f64>,
    /// The relevance method ([`crate::relevance::RelevanceSpec::name`]).
    pub relevance: String,
    /// Quality of the maps and masks of the selected images with a target word, beside a random map and the
    /// oracle, also per target word (needs the true bird masks).
    pub quality: Option<MaskQualityReport>,
    /// The same over the images whose target word names a place ([`place_words`]).
    pub place_words: Option<MaskQualityReport>,
    /// The word score the maps differentiate and how many of the selection's images with a target fell back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub word_score: Option<WordScoreCount>,
    /// `method: contribution`: the CLS slot's mean share `|c_CLS| / Σ_i |c_i|` of the per-slot contribution over
    /// the selection's images with a target (dropped from the map).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cls_share: Option<f64>,
}

/// The sanity checks of a masks stage (`sanity.json`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct MaskSanity {
    pub relevance: String,
    /// Images whose maps were recomputed with the randomised classifier (the first selected ones with a target).
    pub n_images: usize,
    /// Images whose Spearman correlation is defined (neither map constant).
    pub n_defined: usize,
    /// Mean Spearman rank correlation between the trained and the randomised classifier's patch maps (Adebayo et
    /// al. 2018): near 1 = the map ignores what the classifier learned.
    pub randomised_spearman: Option<f64>,
    /// The target word's teacher-forced probability (exp of the mapped score) per background, over the
    /// selected images targeting it; with `mitigation.masks.score: attribute`, exp of the log-odds: the odds of the
    /// target concept's words against the competing place words.
    pub word_probability: Vec<WordByPlace>,
    /// The share of an image's sampled sentences that mention each target word, per background, over every
    /// training image.
    pub sentence_share: Vec<WordByPlace>,
}

/// The finished masks stage of a seed.
pub struct Masks {
    pub done: StageDone,
}

impl Masks {
    const FILE: &'static str = "masks.safetensors";

    /// `summary.json`: one entry per relevance-masked method.
    pub fn summary(&self) -> Result<Vec<MaskSummary>> {
        read_json(&self.done.dir.join("summary.json"))
    }

    /// `sanity.json`.
    pub fn sanity(&self) -> Result<MaskSanity> {
        read_json(&self.done.dir.join("sanity.json"))
    }

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

/// Word-targeted relevance masks for every sample of the relevance-masked methods' selections.
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
    let g = &exp.config.mitigation.masks;
    let mut key = StageKey::new(Stage::Masks);
    key.add("seed", &seed)
        .reads("explain", &explained.done.content)
        .reads("flags", &flags.done.content)
        .reads("erm", &erm.done.content)
        .reads("translator", &translator.done.content)
        .reads("lm", &lm.content)
        .add("masks", g);
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
        let spec = g.relevance();
        let score_layer = exp.config.translator.layer;
        let name = spec.name(score_layer);
        let sentences = sentences_by_image(explained)?;
        let mapper = WordRelevance {
            vit,
            translator: &translator.model,
            lm: &lm.model,
            input: ctx.input(),
            layer: score_layer,
            spec,
            mask_value: g.mask_value,
        };
        let train = &splits.train;
        let targets = Targets {
            lm: &lm.model,
            flags: &flags.flags,
            sentences: &sentences,
            train,
            class_words: &exp.config.mitigation.class_words,
            per_image: g.sentences_per_image,
            score: spec.score,
            kind: exp.config.data.kind,
            synonyms: &exp.config.explain.words.synonyms,
            max_tokens: (lm.model.model.config().n_positions - exp.config.translator.prefix_len)
                .max(1) as usize,
        };
        let grid = vit.config().grid();
        let random_seed = stage_seed(seed, "masks-random-maps");
        let texplain = selection(Method::Texplain, flags, seed).unwrap_or_default();
        let overlay_rows: BTreeSet<usize> = texplain.iter().take(g.overlays).copied().collect();
        let (mut all_masks, mut overlay_cams) = (Vec::new(), HashMap::new());
        let mut quality: HashMap<usize, Bracketed> = HashMap::new();
        let mut probabilities: Vec<(usize, f64)> = Vec::new();
        let mut fallback: HashMap<usize, bool> = HashMap::new();
        let mut cls_share: HashMap<usize, f64> = HashMap::new();
        let truth = Truth::of(train);
        let progress = crate::progress::bar(rows.len() as u64, name.as_str());
        for chunk in rows.chunks(g.batch_size.max(1)) {
            let (words, classes) = targets.of(chunk, spec.contrastive)?;
            let index = Tensor::from_slice(&chunk.iter().map(|&r| r as i64).collect::<Vec<_>>());
            let images = train.images.index_select(0, &index);
            let maps = mapper.maps(&images, &words, classes.as_deref())?;
            for (&r, w) in chunk.iter().zip(&words) {
                if let Some(w) = w {
                    fallback.insert(r, w.is_fallback());
                }
            }
            if spec.method == RelevanceMethod::Contribution {
                let shares = mapper.cls_shares(&images, &words)?;
                cls_share.extend(
                    chunk
                        .iter()
                        .copied()
                        .zip(shares)
                        .filter(|(_, v)| !v.is_nan()),
                );
            }
            all_masks.push(threshold_masks(&maps.pixels, g.threshold)?);
            if let Some(truth) = &truth {
                let seeds: Vec<u64> = chunk
                    .iter()
                    .map(|&r| random_seed.wrapping_add(r as u64))
                    .collect();
                let per = bracketed_quality(
                    &maps.pixels,
                    &truth.select(&index),
                    Some(g.threshold),
                    grid,
                    &seeds,
                )?;
                quality.extend(chunk.iter().copied().zip(per));
            }
            let scores = mapper.scores(&images, &words)?;
            probabilities.extend(chunk.iter().copied().zip(scores.into_iter().map(f64::exp)));
            for (k, &r) in chunk.iter().enumerate() {
                if overlay_rows.contains(&r) {
                    overlay_cams.insert(r, maps.pixels.get(k as i64));
                }
            }
            progress.inc(chunk.len() as u64);
        }
        progress.finish_and_clear();
        let size = exp.config.data.image_size;
        let masks = cat_masks(&all_masks, size);
        let row_of: HashMap<usize, i64> = rows
            .iter()
            .enumerate()
            .map(|(k, &r)| (r, k as i64))
            .collect();
        let places = place_words(exp.config.data.kind);
        let summaries = selections
            .iter()
            .map(|(method, chosen)| {
                let mut summary = summarize(*method, &name, chosen, &masks, &row_of, train, seed);
                let (n_images, n_fallback) = (
                    chosen.iter().filter(|r| fallback.contains_key(r)).count(),
                    chosen.iter().filter(|r| fallback.get(r) == Some(&true)).count(),
                );
                summary.word_score = Some(WordScoreCount {
                    kind: spec.score,
                    n_images,
                    n_fallback,
                });
                let shares: Vec<f64> = chosen.iter().filter_map(|r| cls_share.get(r).copied()).collect();
                summary.cls_share =
                    (!shares.is_empty()).then(|| shares.iter().sum::<f64>() / shares.len() as f64);
                tracing::info!(seed, %method, relevance = %name, n_images, n_fallback, "word score fallbacks");
                if !quality.is_empty() {
                    let (q, p) = selection_quality(
                        &name,
                        g.threshold,
                        chosen,
                        &flags.flags,
                        &quality,
                        &places,
                    )?;
                    summary.quality = Some(q);
                    summary.place_words = Some(p);
                }
                Ok(summary)
            })
            .collect::<Result<Vec<_>>>()?;
        write_json(&dir.join("summary.json"), &summaries)?;
        let sanity_rows: Vec<usize> = texplain
            .iter()
            .chain(&rows)
            .copied()
            .filter(|&r| flags.flags[r].target.is_some())
            .collect::<Vec<_>>();
        let mut seen = BTreeSet::new();
        let sanity_rows: Vec<usize> = sanity_rows
            .into_iter()
            .filter(|r| seen.insert(*r))
            .take(SANITY_IMAGES)
            .collect();
        let sanity = sanity_checks(ctx, &mapper, &targets, &sanity_rows, &probabilities, &name)?;
        write_json(&dir.join("sanity.json"), &sanity)?;
        Masks::write(dir, &masks, &rows)?;
        let overlays: Vec<(usize, i64, Tensor)> = texplain
            .iter()
            .take(g.overlays)
            .map(|r| (*r, row_of[r], overlay_cams.remove(r).expect("kept")))
            .collect();
        write_overlays(
            train,
            &flags.flags,
            &overlays,
            &masks,
            &dir.join("overlays"),
        )
    })?;
    Ok(Masks { done })
}

/// What a batch of training rows targets: each row's target word and, for a contrastive map, its class word, as
/// tokens and the image's sampled sentences that hold them.
struct Targets<'a> {
    lm: &'a crate::explain::lm::LanguageModel,
    flags: &'a [Flag],
    sentences: &'a HashMap<i64, Vec<String>>,
    train: &'a Dataset,
    class_words: &'a std::collections::BTreeMap<i64, Vec<String>>,
    per_image: usize,
    max_tokens: usize,
    /// Which word score the targets are built for; the attribute score's concepts come from the data family's
    /// word sets and `explain.words.synonyms`.
    score: WordScore,
    kind: crate::data::DataKind,
    synonyms: &'a std::collections::BTreeMap<String, Vec<String>>,
}

type RowTargets = Vec<Option<WordTarget>>;

impl Targets<'_> {
    fn own(&self, r: usize) -> &[String] {
        self.sentences
            .get(&self.train.img_ids[r])
            .map_or(&[][..], Vec::as_slice)
    }

    /// The target of `word` for row `r`, for the word score the stage uses.
    fn target(&self, r: usize, word: &str) -> Result<Option<WordTarget>> {
        word_target(
            self.lm,
            self.score,
            self.kind,
            self.synonyms,
            word,
            self.own(r),
            self.per_image,
            self.max_tokens,
        )
    }

    fn of(&self, rows: &[usize], contrastive: bool) -> Result<(RowTargets, Option<RowTargets>)> {
        let words = rows
            .iter()
            .map(|&r| {
                let Some(word) = self.flags[r].target.as_deref() else {
                    return Ok(None);
                };
                self.target(r, word)
            })
            .collect::<Result<Vec<_>>>()?;
        if !contrastive {
            return Ok((words, None));
        }
        let classes = rows
            .iter()
            .map(|&r| {
                let y = self.train.y[r];
                let word = self
                    .class_words
                    .get(&y)
                    .and_then(|w| w.first())
                    .with_context(|| format!("mitigation.class_words: no word for class {y}"))?;
                self.target(r, word)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok((words, Some(classes)))
    }
}

/// The target of `word` among an image's sampled `sentences` for the word `score`: the literal token
/// ([`WordTarget::new`]) or the attribute concept ([`attribute_concept`], [`WordTarget::attribute`]).
#[allow(clippy::too_many_arguments)]
pub fn word_target(
    lm: &crate::explain::lm::LanguageModel,
    score: WordScore,
    kind: crate::data::DataKind,
    synonyms: &std::collections::BTreeMap<String, Vec<String>>,
    word: &str,
    sentences: &[String],
    per_image: usize,
    max_tokens: usize,
) -> Result<Option<WordTarget>> {
    match score {
        WordScore::Literal => WordTarget::new(lm, word, sentences, per_image, max_tokens),
        WordScore::Attribute => {
            let (target, competing) = attribute_concept(kind, synonyms, word);
            let concept = Concept { target, competing };
            WordTarget::attribute(lm, &concept, sentences, per_image, max_tokens)
        }
    }
}

/// The quality report of one selection's images with a target word, and of those whose word names a place.
fn selection_quality(
    name: &str,
    threshold: crate::relevance::Threshold,
    chosen: &[usize],
    flags: &[Flag],
    quality: &HashMap<usize, Bracketed>,
    places: &BTreeSet<String>,
) -> Result<(MaskQualityReport, MaskQualityReport)> {
    let with_target: Vec<(usize, &str)> = chosen
        .iter()
        .filter_map(|&r| flags[r].target.as_deref().map(|w| (r, w)))
        .collect();
    let report = |rows: &[(usize, &str)]| {
        let per: Vec<Bracketed> = rows.iter().map(|(r, _)| quality[r].clone()).collect();
        let labels: Vec<String> = rows.iter().map(|(_, w)| w.to_string()).collect();
        bracketed_report(name, Some(threshold), &per, &labels)
    };
    let on_places: Vec<(usize, &str)> = with_target
        .iter()
        .copied()
        .filter(|(_, w)| places.contains(*w))
        .collect();
    Ok((report(&with_target)?, report(&on_places)?))
}

/// The randomisation check on `rows` and the target word's probability and sentence share per background.
fn sanity_checks(
    ctx: &Seed,
    mapper: &WordRelevance,
    targets: &Targets,
    rows: &[usize],
    probabilities: &[(usize, f64)],
    name: &str,
) -> Result<MaskSanity> {
    let (exp, seed) = (ctx.exp(), ctx.seed);
    let train = targets.train;
    let place_names: Vec<String> = attr_names(exp.config.data.kind)
        .iter()
        .map(|s| s.to_string())
        .collect();
    let place_of = |r: usize| place_names[train.place[r].clamp(0, 1) as usize].clone();
    // A classifier of the same shape with freshly drawn weights (Adebayo et al.'s full model randomisation).
    let vs = tch::nn::VarStore::new(exp.device);
    tch::manual_seed(stage_seed(seed, "masks-randomised-classifier") as i64);
    let random_vit = Vit::new(&vs.root(), mapper.vit.config());
    let randomised = WordRelevance {
        vit: &random_vit,
        ..*mapper
    };
    let (mut trained, mut random) = (Vec::new(), Vec::new());
    for chunk in rows.chunks(exp.config.mitigation.masks.batch_size.max(1)) {
        let (words, classes) = targets.of(chunk, mapper.spec.contrastive)?;
        let index = Tensor::from_slice(&chunk.iter().map(|&r| r as i64).collect::<Vec<_>>());
        let images = train.images.index_select(0, &index);
        trained.push(mapper.maps(&images, &words, classes.as_deref())?.patches);
        random.push(
            randomised
                .maps(&images, &words, classes.as_deref())?
                .patches,
        );
    }
    let (n_defined, randomised_spearman) = if trained.is_empty() {
        (0, None)
    } else {
        let (per, mean) = spearman_per_image(&Tensor::cat(&trained, 0), &Tensor::cat(&random, 0))?;
        (per.iter().flatten().count(), mean)
    };
    let flags = targets.flags;
    let word_probability = means_by_word_and_place(
        probabilities.iter().filter_map(|&(r, p)| {
            flags[r]
                .target
                .as_ref()
                .map(|w| (w.clone(), place_of(r), p))
        }),
        &place_names,
    );
    let words: BTreeSet<&String> = probabilities
        .iter()
        .filter_map(|&(r, _)| flags[r].target.as_ref())
        .collect();
    let filter = WordFilter::new(&exp.config.explain.words)?;
    let mut shares = Vec::new();
    for r in 0..train.len() {
        let own = targets.own(r);
        if own.is_empty() {
            continue;
        }
        let said: Vec<BTreeSet<String>> = own
            .iter()
            .map(|s| filter.words(s).into_iter().collect())
            .collect();
        for &w in &words {
            let share = said.iter().filter(|s| s.contains(w)).count() as f64 / said.len() as f64;
            shares.push((w.clone(), place_of(r), share));
        }
    }
    let sanity = MaskSanity {
        relevance: name.to_string(),
        n_images: rows.len(),
        n_defined,
        randomised_spearman,
        word_probability,
        sentence_share: means_by_word_and_place(shares, &place_names),
    };
    tracing::info!(
        seed,
        relevance = name,
        spearman = ?sanity.randomised_spearman,
        "masks sanity: trained vs randomised classifier"
    );
    Ok(sanity)
}

/// Sampled training sentences per img_id.
fn sentences_by_image(explained: &Explained) -> Result<HashMap<i64, Vec<String>>> {
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    for (id, sentence) in explained.sentences(Split::Train)? {
        out.entry(id).or_default().push(sentence);
    }
    Ok(out)
}

/// Coverage and agreement with the true background of one method's masks (`masks`: one per row of `row_of`).
pub(super) fn summarize(
    method: Method,
    relevance: &str,
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
        "relevance masks"
    );
    MaskSummary {
        method,
        n_selected: chosen.len(),
        n_masked,
        mean_masked_fraction: mean_fraction,
        background_iou: iou,
        masked_on_bird: on_bird,
        relevance: relevance.to_string(),
        quality: None,
        place_words: None,
        word_score: None,
        cls_share: None,
    }
}

/// Overlays (original | cam overlay | masked, one PNG each) for (training row, row in `masks`, pixel map).
fn write_overlays(
    train: &Dataset,
    flags: &[Flag],
    rows: &[(usize, i64, Tensor)],
    masks: &Tensor,
    overlay_dir: &Path,
) -> Result<()> {
    for (r, k, cam) in rows {
        let (r, k) = (*r, *k);
        let image = train.images.get(r as i64); // [3, H, W]
        let mask = masks.get(k);
        let panels = [
            image.shallow_clone(),
            mask::overlay(&image, cam, &mask),
            mask::black_out(&image.unsqueeze(0), &mask.unsqueeze(0)).squeeze_dim(0),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::stage::StageDone;

    /// Every arm draws TExplain's flagged samples or Random's draw, the very same rows as the method it shares
    /// its selection with.
    #[test]
    fn each_arm_selects_the_rows_of_the_method_it_shares_a_selection_with() {
        let flags = Flags {
            done: StageDone {
                dir: std::path::PathBuf::new(),
                content: String::new(),
                skipped: false,
            },
            flags: (0..40)
                .map(|i| Flag {
                    img_id: i,
                    top_words: vec![],
                    flagged: i % 5 == 1,
                    target: None,
                })
                .collect(),
        };
        let flagged: Vec<usize> = (0..40).filter(|i| i % 5 == 1).collect();
        let random = selection(Method::Random, &flags, 7).unwrap();
        assert_eq!(random.len(), flagged.len());
        assert_ne!(random, flagged, "a draw of 8 of 40 is not the flagged rows");
        assert_eq!(selection(Method::OracleRandom, &flags, 7), Some(random));
        for m in [
            Method::Texplain,
            Method::Oracle,
            Method::Frame,
            Method::ObjectComplement,
            Method::OracleObject,
            Method::OracleObjectBalanced,
        ] {
            assert_eq!(selection(m, &flags, 7).as_ref(), Some(&flagged), "{m}");
        }
        assert_eq!(selection(Method::Erm, &flags, 7), None);
    }
}
