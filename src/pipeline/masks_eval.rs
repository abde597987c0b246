//! `texplain masks-eval`: which relevance method and threshold find the spurious region, measured on a split that
//! trains nothing (val by default) of a finished run, so that `mitigation.masks` can be chosen without looking
//! at the test set or at the samples fine-tuning trains on.
//!
//! With a seed's classifier, translator and language model it explains the split's images as the explain stage
//! explains train and test (`explain.samples_per_image` sentences, its own seed stream), flags them with the run's
//! class words and the paper's rule, and maps the target word of every flagged image with each candidate method
//! ([`RelevanceSpec`]); each map is scored against the true bird masks ([`crate::relevance::quality`]): AUROC, IoU
//! at matched coverage and pointing game (threshold-free), and per threshold rule the masks' coverage, IoU with
//! the background and share on the bird, beside a random map and the oracle, over all flagged images and over
//! those whose target word names a place ([`crate::data::words::place_words`]). Output: the markdown tables on stdout
//! and in `<run>/seed-<s>/masks-eval-<split>.md`, every figure in `masks-eval-<split>.json` beside it.
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use tch::Tensor;

use super::erm::Classifier;
use super::lm::CaptionData;
use super::stage::Stage;
use crate::config::Experiment;
use crate::data::words::place_words;
use crate::data::{InputPipeline, Split};
use crate::flags::flag;
use crate::models::translator::Translator;
use crate::relevance::attribute::{WordScore, WordScoreCount};
use crate::relevance::mask::MaskValue;
use crate::relevance::method::{RelevanceMethod, RelevanceSpec};
use crate::relevance::quality::{bracketed_quality, bracketed_report, MaskQualityReport, Truth};
use crate::relevance::rollout::Readout;
use crate::relevance::word::{count_fallbacks, WordRelevance, WordTarget};
use crate::relevance::Threshold;
use crate::runtime::{set_seed, stage_seed};
use crate::text::words::{dominant_words, WordCounter, WordFilter};
use crate::util::{write_atomic, write_json};

/// `texplain masks-eval`: relevance methods and thresholds against the true bird masks on a held-out split. Its
/// flags: `src/cli/masks_eval.rs`.
#[derive(Debug, Clone)]
pub struct MasksEvalOptions {
    /// A run directory written by `texplain run` (its erm, translator and lm stages finished).
    pub run_dir: PathBuf,
    /// The seed whose models explain and are explained (`None`: the run's first seed).
    pub seed: Option<u64>,
    /// The split whose images are explained and mapped.
    pub split: Split,
    /// Relevance methods as YAML ([`RelevanceSpec`]); empty: [`default_candidates`].
    pub relevance: Vec<String>,
    /// Threshold rules as YAML ([`Threshold`]); empty: [`default_thresholds`].
    pub thresholds: Vec<String>,
    /// Leave occlusion (the slow reference) out of the default methods.
    pub no_occlusion: bool,
    /// Explain at most this many images of the split (evenly spaced over it).
    pub max_images: Option<usize>,
}

/// One threshold's figures of one method (`masks-eval-<split>.json`).
#[derive(Serialize)]
struct ThresholdFigures {
    threshold: Threshold,
    all: MaskQualityReport,
    place_words: MaskQualityReport,
}

#[derive(Serialize)]
struct Candidate {
    relevance: String,
    spec: RelevanceSpec,
    /// The word score the maps differentiate and how many mapped images fell back.
    word_score: WordScoreCount,
    /// `method: contribution`: the CLS slot's mean share of the per-slot contribution.
    #[serde(skip_serializing_if = "Option::is_none")]
    cls_share: Option<f64>,
    thresholds: Vec<ThresholdFigures>,
}

#[derive(Serialize)]
struct EvalReport {
    seed: u64,
    split: Split,
    n_images: usize,
    n_flagged: usize,
    /// Flagged images with a target word the tokenizer can spell (the mapped ones).
    n_mapped: usize,
    n_place_words: usize,
    /// The split's mean share of place pixels, where the data ship place masks: the coverage of the
    /// place-matched `top_k` rule among the thresholds.
    place_share: Option<f64>,
    /// What occlusion fills its windows with (the run's fill, or black where that fill is a donor's pixels).
    occlusion_fill: MaskValue,
    target_words: BTreeMap<String, usize>,
    candidates: Vec<Candidate>,
}

/// The default candidates: GradCAM at every layer from the embeddings to the translator's, rollout, occlusion,
/// the per-slot contribution, the CLS reader on value paths, each plain and contrastive; then GradCAM at the
/// translator's layer and the contribution with the attribute word score, and the object complement (no word).
pub fn default_candidates(depth: i64, score_layer: i64, occlusion: bool) -> Vec<RelevanceSpec> {
    let last = if score_layer == -1 {
        depth
    } else {
        score_layer
    };
    let mut layers: Vec<i64> = (0..=last.min(depth)).collect();
    if score_layer == -1 {
        layers.push(-1);
    }
    let mut bases: Vec<RelevanceSpec> = layers
        .into_iter()
        .map(|l| RelevanceSpec {
            layer: Some(l),
            ..RelevanceSpec::default()
        })
        .collect();
    if last > 0 {
        for readout in [Readout::Cls, Readout::Tokens] {
            bases.push(RelevanceSpec {
                method: RelevanceMethod::Rollout,
                readout: (readout != Readout::Cls).then_some(readout),
                ..RelevanceSpec::default()
            });
        }
    }
    if occlusion {
        bases.push(RelevanceSpec {
            method: RelevanceMethod::Occlusion,
            ..RelevanceSpec::default()
        });
    }
    let contribution = RelevanceSpec {
        method: RelevanceMethod::Contribution,
        ..RelevanceSpec::default()
    };
    bases.push(contribution);
    let value_paths = RelevanceSpec {
        method: RelevanceMethod::ValuePaths,
        ..RelevanceSpec::default()
    };
    if last > 0 {
        bases.push(value_paths);
    }
    let contrastive: Vec<RelevanceSpec> = bases
        .iter()
        .map(|s| RelevanceSpec {
            contrastive: true,
            ..*s
        })
        .collect();
    let mut out: Vec<RelevanceSpec> = bases.into_iter().chain(contrastive).collect();
    for base in [RelevanceSpec::default(), contribution] {
        out.push(RelevanceSpec {
            score: WordScore::Attribute,
            ..base
        });
    }
    if depth > 0 {
        out.push(RelevanceSpec {
            method: RelevanceMethod::ObjectComplement,
            ..RelevanceSpec::default()
        });
    }
    out
}

/// The default thresholds: the run's rule first, then the rules that can cover a background.
pub fn default_thresholds(run: Threshold) -> Vec<Threshold> {
    let mut out = vec![run];
    for t in [
        Threshold::MeanStd { k: 0.0 },
        Threshold::MeanStd { k: 1.0 },
        Threshold::MeanStd { k: 2.0 },
        Threshold::TopK { percent: 30.0 },
        Threshold::TopK { percent: 50.0 },
        Threshold::TopK { percent: 70.0 },
        Threshold::Otsu {},
    ] {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

fn parse_yaml<T: serde::de::DeserializeOwned>(flag: &str, text: &str) -> Result<T> {
    serde_yaml::from_str(text).with_context(|| format!("--{flag} {text:?}"))
}

/// `mean` to 3 decimals, `–` for none.
fn f3(x: Option<f64>) -> String {
    x.map_or("–".into(), |v| format!("{v:.3}"))
}

pub fn command(args: &MasksEvalOptions) -> Result<()> {
    use std::io::Write;
    let out = evaluate(args)?;
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(())
}

/// Runs the evaluation, writes its files into the seed's folder and returns the markdown.
pub fn evaluate(args: &MasksEvalOptions) -> Result<String> {
    let config = args.run_dir.join("config.resolved.yaml");
    let exp = Experiment::load(&config, &[])
        .with_context(|| format!("{} is not a run directory", args.run_dir.display()))?;
    let cfg = &exp.config;
    let seed = args.seed.unwrap_or(cfg.seeds[0]);
    let seed_dir = args.run_dir.join(format!("seed-{seed}"));
    let g = &cfg.mitigation.masks;
    let specs: Vec<RelevanceSpec> = args
        .relevance
        .iter()
        .map(|t| {
            let spec: RelevanceSpec = parse_yaml("relevance", t)?;
            spec.check("--relevance ")?;
            Ok(spec)
        })
        .collect::<Result<_>>()?;
    let thresholds: Vec<Threshold> = if args.thresholds.is_empty() {
        default_thresholds(g.threshold)
    } else {
        args.thresholds
            .iter()
            .map(|t| {
                let rule: Threshold = parse_yaml("threshold", t)?;
                rule.validate()
                    .with_context(|| format!("--threshold {t:?}"))?;
                Ok(rule)
            })
            .collect::<Result<_>>()?
    };

    let splits = super::context::Splits::load(&exp)?;
    let data = match args.split {
        Split::Train => &splits.train,
        Split::Val => &splits.val,
        Split::Test => &splits.test,
    };
    let n = args.max_images.unwrap_or(data.len()).min(data.len());
    // Evenly spaced over the split (its files are often ordered by group).
    let data = data.select(
        &(0..n)
            .map(|k| k * data.len() / n.max(1))
            .collect::<Vec<_>>(),
    );
    let Some(truth) = Truth::of(&data) else {
        bail!(
            "the {} split of {} ships no true bird masks (fg_masks/): nothing to score the maps against",
            args.split,
            cfg.data.root.display()
        );
    };
    // A coverage matched to the place: top-k at the split's mean share of place pixels (issue 24), beside the
    // default rules, where the data ship place masks.
    let mut thresholds = thresholds;
    let place_share = truth.place.as_ref().map(mean_share);
    if let (true, Some(share)) = (args.thresholds.is_empty(), place_share) {
        let rule = Threshold::TopK {
            percent: (1000.0 * share).round() / 10.0,
        };
        if !thresholds.contains(&rule) {
            thresholds.push(rule);
        }
    }
    let captions = CaptionData::load(&exp)?;
    let lm = super::lm::run(&exp, &captions)?;
    let mut classifier = Classifier::load(&seed_dir.join(Stage::Erm.name()), exp.device)?;
    classifier.vs.freeze();
    let vit = &classifier.model;
    let mut vs = tch::nn::VarStore::new(exp.device);
    let translator = Translator::from_folder(&mut vs, &seed_dir.join(Stage::Translator.name()))?;
    vs.freeze();
    let input = InputPipeline {
        normalize: cfg.data.normalize.clone(),
        augment: cfg.data.augment.clone(),
        device: exp.device,
    };
    let score_layer = cfg.translator.layer;
    let specs = if specs.is_empty() {
        default_candidates(
            vit.config().num_hidden_layers,
            score_layer,
            !args.no_occlusion,
        )
    } else {
        specs
    };

    // Explain and flag the split as the explain and flags stages do the training split.
    set_seed(stage_seed(seed, &format!("masks-eval-{}", args.split)));
    let describer = super::explain::describer(&exp, vit, &translator, &lm.model, &input);
    let sentences = describer.sentences(&data.images)?;
    let filter = WordFilter::new(&cfg.explain.words)?;
    let mut mapped: Vec<(usize, String)> = Vec::new();
    let mut n_flagged = 0;
    for (i, s) in sentences.iter().enumerate() {
        let counts = WordCounter::from_sentences(&filter, s);
        let words: Vec<String> = dominant_words(&counts, cfg.explain.top_k)
            .into_iter()
            .map(|(w, _, _)| w)
            .collect();
        let class_words = cfg
            .mitigation
            .class_words
            .get(&data.y[i])
            .with_context(|| format!("mitigation.class_words: no words for class {}", data.y[i]))?;
        let (flagged, target) = flag(&words, class_words);
        n_flagged += usize::from(flagged);
        if let (true, Some(word)) = (flagged, target) {
            mapped.push((i, word));
        }
    }
    let max_tokens =
        (lm.model.model.config().n_positions - cfg.translator.prefix_len).max(1) as usize;
    let mut targets: Vec<Option<WordTarget>> = Vec::new();
    let mut classes: Vec<Option<WordTarget>> = Vec::new();
    for (i, word) in &mapped {
        targets.push(WordTarget::new(
            &lm.model,
            word,
            &sentences[*i],
            g.sentences_per_image,
            max_tokens,
        )?);
        let class_word = &cfg.mitigation.class_words[&data.y[*i]][0];
        classes.push(WordTarget::new(
            &lm.model,
            class_word,
            &sentences[*i],
            g.sentences_per_image,
            max_tokens,
        )?);
    }
    // Only the images whose word the tokenizer spells have a map.
    let keep: Vec<usize> = (0..mapped.len())
        .filter(|&k| targets[k].is_some())
        .collect();
    let rows: Vec<usize> = keep.iter().map(|&k| mapped[k].0).collect();
    let labels: Vec<String> = keep.iter().map(|&k| mapped[k].1.clone()).collect();
    let targets: Vec<Option<WordTarget>> = keep.iter().map(|&k| targets[k].clone()).collect();
    let classes: Vec<Option<WordTarget>> = keep.iter().map(|&k| classes[k].clone()).collect();
    // The attribute score's targets of the same images, when a candidate asks for it.
    let (attribute_targets, attribute_classes) =
        if specs.iter().any(|s| s.score == WordScore::Attribute) {
            let mut t = Vec::new();
            let mut c = Vec::new();
            for &k in &keep {
                let (i, word) = &mapped[k];
                let target = |w: &str| {
                    super::masks::word_target(
                        &lm.model,
                        WordScore::Attribute,
                        cfg.data.kind,
                        &cfg.explain.words.synonyms,
                        w,
                        &sentences[*i],
                        g.sentences_per_image,
                        max_tokens,
                    )
                };
                t.push(target(word)?);
                c.push(target(&cfg.mitigation.class_words[&data.y[*i]][0])?);
            }
            (t, c)
        } else {
            (Vec::new(), Vec::new())
        };
    let places = place_words(cfg.data.kind);
    let on_place: Vec<usize> = (0..rows.len())
        .filter(|&k| places.contains(&labels[k]))
        .collect();
    let mut target_words: BTreeMap<String, usize> = BTreeMap::new();
    for w in &labels {
        *target_words.entry(w.clone()).or_default() += 1;
    }
    tracing::info!(
        seed,
        split = %args.split,
        images = n,
        flagged = n_flagged,
        mapped = rows.len(),
        place_words = on_place.len(),
        "masks-eval: split explained and flagged"
    );

    let index = Tensor::from_slice(&rows.iter().map(|&r| r as i64).collect::<Vec<_>>());
    let images = data.images.index_select(0, &index);
    let truth = truth.select(&index);
    let random_seed = stage_seed(seed, &format!("masks-eval-random-maps-{}", args.split));
    let seeds: Vec<u64> = rows
        .iter()
        .map(|&r| random_seed.wrapping_add(r as u64))
        .collect();
    let grid = vit.config().grid();
    let batch = g.batch_size.max(1);
    let mut candidates = Vec::new();
    for spec in &specs {
        let name = spec.name(score_layer);
        let (targets, classes) = match spec.score {
            WordScore::Literal => (&targets, &classes),
            WordScore::Attribute => (&attribute_targets, &attribute_classes),
        };
        let (n_images, n_fallback) = count_fallbacks(targets.iter().flatten());
        let word_score = WordScoreCount {
            kind: spec.score,
            n_images,
            n_fallback,
        };
        let mut shares: Vec<f64> = Vec::new();
        let mapper = WordRelevance {
            vit,
            translator: &translator,
            lm: &lm.model,
            input: &input,
            layer: score_layer,
            spec: *spec,
            mask_value: g.mask_value,
        };
        let progress = crate::progress::bar(rows.len() as u64, &name);
        let mut parts = Vec::new();
        for start in (0..rows.len()).step_by(batch) {
            let len = batch.min(rows.len() - start);
            let maps = mapper.maps(
                &images.narrow(0, start as i64, len as i64),
                &targets[start..start + len],
                Some(&classes[start..start + len]),
            )?;
            parts.push(maps.pixels);
            if spec.method == RelevanceMethod::Contribution {
                let s = mapper.cls_shares(
                    &images.narrow(0, start as i64, len as i64),
                    &targets[start..start + len],
                )?;
                shares.extend(s.into_iter().filter(|v| !v.is_nan()));
            }
            progress.inc(len as u64);
        }
        progress.finish_and_clear();
        let maps = if parts.is_empty() {
            truth.bird.to_kind(tch::Kind::Float)
        } else {
            Tensor::cat(&parts, 0)
        };
        let mut figures = Vec::new();
        for &threshold in &thresholds {
            let per = bracketed_quality(&maps, &truth, Some(threshold), grid, &seeds)?;
            let all = bracketed_report(&name, Some(threshold), &per, &labels)?;
            let pick = |v: &[usize]| -> (Vec<_>, Vec<String>) {
                (
                    v.iter().map(|&k| per[k].clone()).collect(),
                    v.iter().map(|&k| labels[k].clone()).collect(),
                )
            };
            let (p, l) = pick(&on_place);
            let place_words = bracketed_report(&name, Some(threshold), &p, &l)?;
            figures.push(ThresholdFigures {
                threshold,
                all,
                place_words,
            });
        }
        tracing::info!(
            relevance = %name,
            auroc_place_words = ?figures.first().and_then(|f| f.place_words.map.auroc),
            "masks-eval"
        );
        candidates.push(Candidate {
            relevance: name,
            spec: *spec,
            word_score,
            cls_share: (!shares.is_empty())
                .then(|| shares.iter().sum::<f64>() / shares.len() as f64),
            thresholds: figures,
        });
    }
    let report = EvalReport {
        seed,
        split: args.split,
        n_images: n,
        n_flagged,
        n_mapped: rows.len(),
        n_place_words: on_place.len(),
        place_share,
        occlusion_fill: g.mask_value.one_colour(),
        target_words,
        candidates,
    };
    let md = markdown(&report, &exp.config.name);
    let stem = format!("masks-eval-{}", args.split);
    write_json(&seed_dir.join(format!("{stem}.json")), &report)?;
    write_atomic(&seed_dir.join(format!("{stem}.md")), &md)?;
    Ok(md)
}

/// The share of nonzero pixels over a `[b, 1, H, W]` mask batch.
fn mean_share(mask: &Tensor) -> f64 {
    mask.ne(0)
        .to_kind(tch::Kind::Float)
        .mean(tch::Kind::Float)
        .double_value(&[])
}

/// A target word's cell of the per-word column: its AUROC, and against the object's pixels where it has one.
fn word_cell(word: &str, q: &crate::relevance::quality::QualitySummary) -> String {
    match q.object_auroc {
        Some(o) => format!("{word} {} (object {})", f3(q.auroc), f3(Some(o))),
        None => format!("{word} {}", f3(q.auroc)),
    }
}

/// The two tables: threshold-free figures per method (place-word targets, then all), thresholded figures per
/// method and rule (place-word targets).
fn markdown(r: &EvalReport, name: &str) -> String {
    let mut out = String::new();
    let words: Vec<String> = r
        .target_words
        .iter()
        .map(|(w, n)| format!("{w} {n}"))
        .collect();
    let _ = write!(
        out,
        "Relevance maps against the true bird masks: run `{name}`, seed {}, {} split: {} images, {} flagged, {} \
         mapped (target words: {}), {} with a place word.\n\n\
         Threshold-free (AUROC of the map separating background from bird pixels; AUROC of the place's pixels, sky \
         excluded, against the rest where the data ship place masks; the share of images on which the map's \
         background AUROC beats the centre prior's, ties one half, with a 95 % Wilson interval; IoU at matched \
         coverage; pointing game), on the flagged images whose target word names a place, and AUROC over all mapped \
         images and per target word. The centre prior scores distance from the image centre and never looks at the \
         image: where it scores high, 0.5 is not this benchmark's chance level. Where the data ship the spurious \
         object's masks: AUROC of the object's pixels against the rest, over the mapped images that carry it (all \
         targets, and per target word in parentheses).\n\n\
         | Relevance | AUROC (place words) | AUROC vs place mask | Beats centre prior | IoU @ matched coverage | Pointing game | AUROC (all) | AUROC vs object (all) | AUROC per word |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---|\n",
        r.seed,
        r.split,
        r.n_images,
        r.n_flagged,
        r.n_mapped,
        words.join(", "),
        r.n_place_words,
    );
    let row = |out: &mut String,
               label: &str,
               p: &crate::relevance::quality::QualitySummary,
               wins: Option<&crate::relevance::quality::WinRate>,
               a: Option<f64>,
               object: Option<f64>,
               by: String| {
        let _ = writeln!(
            out,
            "| {label} | {} | {} | {} | {} | {} | {} | {} | {by} |",
            f3(p.auroc),
            f3(p.place_auroc),
            wins.map_or("–".to_string(), |w| format!(
                "{:.2} [{:.2}, {:.2}]",
                w.rate, w.low, w.high
            )),
            f3(p.matched_iou),
            f3(p.pointing_game),
            f3(a),
            f3(object),
        );
    };
    let mut best: Option<(f64, &str)> = None;
    for c in &r.candidates {
        let Some(f) = c.thresholds.first() else {
            continue;
        };
        let by: Vec<String> = f
            .all
            .by_label
            .iter()
            .map(|(w, q)| word_cell(w, q))
            .collect();
        row(
            &mut out,
            &c.relevance,
            &f.place_words.map,
            f.place_words.over_centre.background.as_ref(),
            f.all.map.auroc,
            f.all.map.object_auroc,
            by.join(", "),
        );
        if let Some(a) = f.place_words.map.auroc {
            if best.is_none_or(|(b, _)| a > b) {
                best = Some((a, &c.relevance));
            }
        }
    }
    if let Some(f) = r.candidates.first().and_then(|c| c.thresholds.first()) {
        let by: Vec<String> = f
            .all
            .random_by_label
            .iter()
            .map(|(w, q)| word_cell(w, q))
            .collect();
        row(
            &mut out,
            "random map",
            &f.place_words.random,
            None,
            f.all.random.auroc,
            f.all.random.object_auroc,
            by.join(", "),
        );
        row(
            &mut out,
            "centre prior",
            &f.place_words.centre,
            None,
            f.all.centre.auroc,
            f.all.centre.object_auroc,
            String::new(),
        );
        row(
            &mut out,
            "oracle",
            &f.place_words.oracle,
            None,
            f.all.oracle.auroc,
            f.all.oracle.object_auroc,
            String::new(),
        );
    }
    if let Some((a, name)) = best {
        let _ = writeln!(out, "\nBest AUROC on place words: `{name}` ({a:.3}).");
    }
    let notes: Vec<String> = r
        .candidates
        .iter()
        .filter(|c| c.spec.method != RelevanceMethod::ObjectComplement)
        .map(|c| {
            let w = &c.word_score;
            let cls = c
                .cls_share
                .map_or(String::new(), |s| format!(", CLS slot's share {s:.3}"));
            format!(
                "`{}` {} score, {} of {} fell back{cls}",
                c.relevance,
                w.kind.name(),
                w.n_fallback,
                w.n_images
            )
        })
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(
            out,
            "\nWord-score fallbacks (images none of whose sentences holds the target's token, literal score, or a \
             place word, attribute score; `object_complement` reads no word): {}.",
            notes.join("; ")
        );
    }
    if r.candidates
        .iter()
        .any(|c| c.spec.method == RelevanceMethod::Occlusion)
    {
        let _ = writeln!(
            out,
            "\nOcclusion fills its windows with `{}` (the run's fill where it is one colour, black where it is \
             another image's pixels).",
            r.occlusion_fill.name()
        );
    }
    if let Some(share) = r.place_share {
        let _ = writeln!(
            out,
            "\nPlace share of the split: {:.1} % of the pixels are the place (the coverage of the place-matched \
             `top_k` rule below).",
            100.0 * share
        );
    }
    out.push_str(
        "\nThresholded, on the place-word images (coverage = masked share of the image; mask IoU with the true \
         background; share of masked pixels on the bird; the random map thresholded by the same rule):\n\n\
         | Relevance | Threshold | Coverage | Mask IoU | Masked on bird | Empty masks | Random: coverage | Random: mask IoU |\n\
         |---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for c in &r.candidates {
        for f in &c.thresholds {
            let q = &f.place_words;
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                c.relevance,
                serde_json::to_string(&f.threshold).unwrap_or_default(),
                f3(q.map.coverage),
                f3(q.map.background_iou),
                f3(q.map.masked_on_bird),
                q.map.n_empty_masks.map_or("–".into(), |n| n.to_string()),
                f3(q.random.coverage),
                f3(q.random.background_iou),
            );
        }
    }
    if let Some(f) = r.candidates.first().and_then(|c| c.thresholds.first()) {
        let _ = writeln!(
            out,
            "| oracle | true background | {} | {} | {} | | | |",
            f3(f.place_words.oracle.coverage),
            f3(f.place_words.oracle.background_iou),
            f3(f.place_words.oracle.masked_on_bird),
        );
    }
    out
}
