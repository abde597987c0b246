//! The report step of `texplain run` (paper Table 1): every (seed, method, split) row of the run's stages into
//! `results.csv`, and into `table.md` the Table-1 layout of the test rows (mean ± std over seeds, the paper's
//! numbers beside), followed by what explains them: the regime check (linear probes on frozen features) and the
//! flags' rate and precision/recall, and the masks' quality against the true bird masks with their sanity checks.
//! Always rewritten from the stages' own outputs, so it is never stale.
use anyhow::Result;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::masks::{MaskSanity, MaskSummary};
use super::regime::{Features, RegimeSummary};
use crate::config::Experiment;
use crate::data::Split;
use crate::flags::{AttributeWordRates, FlagSummary};
use crate::metrics::mean_std;
use crate::relevance::quality::{MaskQualityReport, QualitySummary, WinRate};
use crate::relevance::sanity::WordByPlace;
use crate::report::{self, fmt_pct_pm, ResultRow};
use crate::util::write_atomic;

/// Everything a run's report is made of.
#[derive(Default)]
pub struct Outputs {
    pub rows: Vec<ResultRow>,
    pub regime: Vec<RegimeSummary>,
    pub flags: Vec<FlagSummary>,
    pub masks: Vec<SeedMasks>,
}

/// What a seed's masks stage recorded (`summary.json`, `sanity.json`).
pub struct SeedMasks {
    pub seed: u64,
    pub summaries: Vec<MaskSummary>,
    pub sanity: MaskSanity,
}

/// `mean ± std` (percent) of the values `f` picks, skipping NaN; `–` without any.
fn pct(values: impl Iterator<Item = f64>) -> String {
    let v: Vec<f64> = values.filter(|x| !x.is_nan()).collect();
    let (m, s) = mean_std(&v);
    fmt_pct_pm(m, s)
}

/// The regime table: one line per feature source.
pub fn regime_md(summaries: &[RegimeSummary]) -> String {
    let mut by: BTreeMap<Features, Vec<_>> = BTreeMap::new();
    for s in summaries {
        for p in &s.probes {
            by.entry(p.features).or_default().push(p);
        }
    }
    let mut out = String::from(
        "Regime check: linear probes on frozen features (fitted on group-balanced val as DFR does, scored on \
         test, %).\n\n| Features | Seeds | Worst-group | Average (train-weighted) | Plain |\n|---|---:|---:|---:|---:|\n",
    );
    for (features, probes) in by {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            features.name(),
            probes.len(),
            pct(probes.iter().map(|p| p.worst_group)),
            pct(probes.iter().map(|p| p.avg_train_weighted)),
            pct(probes.iter().map(|p| p.avg_plain)),
        );
    }
    out
}

/// The flags table: how many training samples are flagged and how well they find the minority groups.
pub fn flags_md(flags: &[FlagSummary]) -> String {
    let mut out = String::from(
        "Flags: training samples whose top word is not a class word (%, mean ± std over seeds; minority = groups \
         1 and 2).\n\n| Seeds | Flagged | Minority precision | Minority recall | ERM-error precision | ERM-error recall |\n\
         |---:|---:|---:|---:|---:|---:|\n",
    );
    let opt = |f: fn(&FlagSummary) -> Option<f64>| {
        pct(flags.iter().map(move |s| f(s).unwrap_or(f64::NAN)))
    };
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} |",
        flags.len(),
        pct(flags.iter().map(|s| s.flagged_fraction)),
        opt(|s| s.minority_precision),
        opt(|s| s.minority_recall),
        opt(|s| s.erm_error_precision),
        opt(|s| s.erm_error_recall),
    );
    let rates: Vec<&AttributeWordRates> = flags
        .iter()
        .filter_map(|s| s.attribute_words.as_ref())
        .collect();
    if let Some(first) = rates.first() {
        let cell = |f: fn(&AttributeWordRates) -> Option<f64>| {
            pct(rates.iter().map(move |r| f(r).unwrap_or(f64::NAN)))
        };
        let _ = write!(
            out,
            "\nDo the explanations name the spurious attribute? Training images whose top words hold one of {} \
             (%, mean ± std over seeds), among the images that carry it and the others:\n\n\
             | Images | In the top words | The top word |\n|---|---:|---:|\n\
             | carrying it | {} | {} |\n| without it | {} | {} |\n",
            first.words.join(", "),
            cell(|r| r.carrying.in_top_words),
            cell(|r| r.carrying.top_word),
            cell(|r| r.without.in_top_words),
            cell(|r| r.without.top_word),
        );
    }
    out
}

/// `mean ± std` of the values that are there, 3 decimals; `–` without any.
fn num(values: impl Iterator<Item = Option<f64>>) -> String {
    let v: Vec<f64> = values.flatten().filter(|x| x.is_finite()).collect();
    match mean_std(&v) {
        (m, _) if m.is_nan() => "–".to_string(),
        (m, s) if s.is_nan() => format!("{m:.3}"),
        (m, s) => format!("{m:.3} ± {s:.3}"),
    }
}

/// One table row of quality figures over seeds.
fn quality_cells(qs: &[&QualitySummary]) -> String {
    let images: usize = qs.iter().map(|q| q.n_scored).sum();
    format!(
        "{} | {} | {} | {} | {} | {} | {} | {} | {}",
        images,
        num(qs.iter().map(|q| q.auroc)),
        num(qs.iter().map(|q| q.place_auroc)),
        num(qs.iter().map(|q| q.object_auroc)),
        num(qs.iter().map(|q| q.matched_iou)),
        num(qs.iter().map(|q| q.pointing_game)),
        num(qs.iter().map(|q| q.coverage)),
        num(qs.iter().map(|q| q.background_iou)),
        num(qs.iter().map(|q| q.masked_on_bird)),
    )
}

/// The map's win rate over the centre prior (background AUROC), pooled over seeds: wins and ties added up, the
/// rate with its 95 % Wilson interval.
fn beats_centre(reports: &[&MaskQualityReport]) -> String {
    let rates: Vec<&WinRate> = reports
        .iter()
        .filter_map(|r| r.over_centre.background.as_ref())
        .collect();
    let n: usize = rates.iter().map(|w| w.n).sum();
    let score: f64 = rates
        .iter()
        .map(|w| w.wins as f64 + 0.5 * w.ties as f64)
        .sum();
    match crate::relevance::quality::proportion_interval(score, n) {
        Some((rate, low, high)) => format!("{rate:.2} [{low:.2}, {high:.2}]"),
        None => "–".to_string(),
    }
}

/// The masks' quality (map, random map, oracle; all selected samples with a target word and those whose word
/// names a place; per target word) and the sanity checks, over seeds.
pub fn masks_md(seeds: &[SeedMasks]) -> String {
    let mut out = String::from("Masks: ");
    let first = seeds.iter().flat_map(|s| &s.summaries).find_map(|s| {
        s.quality
            .as_ref()
            .map(|q| (s.relevance.clone(), q.threshold))
    });
    let Some((relevance, threshold)) = first else {
        out.push_str("no quality figures recorded (the data have no true bird masks).\n");
        return out;
    };
    let threshold = threshold
        .map(|t| serde_json::to_string(&t).unwrap_or_default())
        .unwrap_or_default();
    let _ = write!(
        out,
        "relevance `{relevance}`, threshold `{threshold}`. Quality against the true bird masks over the selected \
         training samples with a target word (the background is the positive class; AUROC vs place: the place's \
         pixels, sky excluded, against the rest, where the data ship place masks; AUROC vs object: the spurious \
         object's pixels against the rest, over the images that carry it; IoU at matched coverage: the \
         map's top pixels as many as the background has; mean ± std over seeds). The centre prior scores distance \
         from the image centre and never looks at the image: it is the chance level of a benchmark whose birds sit \
         in the middle. Beats centre: the share of images on which the map's AUROC beats the centre prior's (ties \
         one half), mean over seeds, with the seeds' pooled 95 % Wilson interval.\n\n\
         | Selection | Map | Images | AUROC | AUROC vs place | AUROC vs object | IoU @ matched coverage | Pointing game \
         | Coverage | Mask IoU | Masked on bird | Beats centre |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n"
    );
    let mut methods: Vec<_> = seeds
        .iter()
        .flat_map(|s| s.summaries.iter().map(|m| m.method))
        .collect();
    methods.sort();
    methods.dedup();
    for &method in &methods {
        for place_words in [false, true] {
            let subset = if place_words { " (place words)" } else { "" };
            let reports: Vec<&MaskQualityReport> = seeds
                .iter()
                .flat_map(|s| s.summaries.iter().filter(|m| m.method == method))
                .filter_map(|m| {
                    if place_words {
                        m.place_words.as_ref()
                    } else {
                        m.quality.as_ref()
                    }
                })
                .collect();
            if reports.is_empty() {
                continue;
            }
            let maps: [(&str, Vec<&QualitySummary>); 4] = [
                ("relevance", reports.iter().map(|r| &r.map).collect()),
                ("random map", reports.iter().map(|r| &r.random).collect()),
                ("centre prior", reports.iter().map(|r| &r.centre).collect()),
                ("oracle", reports.iter().map(|r| &r.oracle).collect()),
            ];
            for (map, qs) in maps {
                let beats = if map == "relevance" {
                    beats_centre(&reports)
                } else {
                    "–".to_string()
                };
                let _ = writeln!(
                    out,
                    "| {method}{subset} | {map} | {} | {beats} |",
                    quality_cells(&qs)
                );
            }
        }
    }
    out.push_str(
        "\nPer target word (relevance map; AUROC of a random map beside it).\n\n\
         | Selection | Word | Images | AUROC | AUROC random | IoU @ matched coverage | Coverage | Masked on bird |\n\
         |---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for &method in &methods {
        let reports: Vec<_> = seeds
            .iter()
            .flat_map(|s| s.summaries.iter().filter(|m| m.method == method))
            .filter_map(|m| m.quality.as_ref())
            .collect();
        let mut words: Vec<&String> = reports.iter().flat_map(|r| r.by_label.keys()).collect();
        words.sort();
        words.dedup();
        for word in words {
            let qs: Vec<&QualitySummary> = reports
                .iter()
                .filter_map(|r| r.by_label.get(word))
                .collect();
            let rs: Vec<&QualitySummary> = reports
                .iter()
                .filter_map(|r| r.random_by_label.get(word))
                .collect();
            let _ = writeln!(
                out,
                "| {method} | {word} | {} | {} | {} | {} | {} | {} |",
                qs.iter().map(|q| q.n_scored).sum::<usize>(),
                num(qs.iter().map(|q| q.auroc)),
                num(rs.iter().map(|q| q.auroc)),
                num(qs.iter().map(|q| q.matched_iou)),
                num(qs.iter().map(|q| q.coverage)),
                num(qs.iter().map(|q| q.masked_on_bird)),
            );
        }
    }
    let sanity: Vec<&MaskSanity> = seeds.iter().map(|s| &s.sanity).collect();
    if !sanity.is_empty() {
        let _ = write!(
            out,
            "\nSanity: rank correlation (Spearman) of the maps of a classifier with randomised weights against the \
             trained one's, over {} images: {} (near 1 = the map ignores what the classifier learned). The target \
             word's probability (teacher-forced, over the selected samples targeting it) and the share of sampled \
             sentences that mention it (over every training image), per background:\n\n\
             | Word | Background | Images (P) | P(word) | Sentence share |\n|---|---|---:|---:|---:|\n",
            sanity.iter().map(|s| s.n_defined).sum::<usize>(),
            num(sanity.iter().map(|s| s.randomised_spearman)),
        );
        let mut keys: Vec<(String, String)> = sanity
            .iter()
            .flat_map(|s| {
                s.word_probability
                    .iter()
                    .map(|w| (w.word.clone(), w.place.clone()))
            })
            .collect();
        keys.sort();
        keys.dedup();
        let find = |list: &[WordByPlace], (w, p): &(String, String)| {
            list.iter().find(|x| &x.word == w && &x.place == p).cloned()
        };
        for key in &keys {
            let probs: Vec<WordByPlace> = sanity
                .iter()
                .filter_map(|s| find(&s.word_probability, key))
                .collect();
            let shares: Vec<WordByPlace> = sanity
                .iter()
                .filter_map(|s| find(&s.sentence_share, key))
                .collect();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} |",
                key.0,
                key.1,
                probs.iter().map(|p| p.n).sum::<usize>(),
                num(probs.iter().map(|p| p.mean)),
                num(shares.iter().map(|p| p.mean)),
            );
        }
    }
    out
}

/// Writes `results.csv` and `table.md` into the run directory and returns the table.
pub fn run(exp: &Experiment, outputs: &Outputs) -> Result<String> {
    let out = &exp.out_dir;
    report::write_results_csv(&out.join("results.csv"), &outputs.rows)?;
    let mut table = report::table_md(
        &outputs.rows,
        Split::Test,
        exp.config.report.paper.as_ref(),
        exp.config.data.kind.attr_column(),
    );
    if let Some(paired) = report::paired_differences_md(&outputs.rows, Split::Test) {
        table.push('\n');
        table.push_str(&paired);
    }
    if !outputs.regime.is_empty() {
        table.push('\n');
        table.push_str(&regime_md(&outputs.regime));
    }
    if !outputs.flags.is_empty() {
        table.push('\n');
        table.push_str(&flags_md(&outputs.flags));
    }
    if !outputs.masks.is_empty() {
        table.push('\n');
        table.push_str(&masks_md(&outputs.masks));
    }
    write_atomic(&out.join("table.md"), &table)?;
    Ok(table)
}
