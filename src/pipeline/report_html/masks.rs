//! The masks section of `report.html`: the AUROC of every relevance map and its controls (random map, centre
//! prior, oracle) per selection beside their bars, and a grid of overlays per arm, the same images first.
use anyhow::Result;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::sections::{file_name, pngs};
use crate::metrics::mean_std;
use crate::pipeline::masks::MaskSummary;
use crate::relevance::quality::{MaskQualityReport, QualitySummary};
use crate::report::html::plots::{bars, BarSeries};
use crate::report::html::{escape, pair, table};
use crate::util::read_json;

/// Overlays shown per arm.
const OVERLAYS_PER_ARM: usize = 8;

/// The maps of a masks quality report, in table order.
const MASK_MAPS: [&str; 4] = ["relevance", "random map", "centre prior", "oracle"];

/// `mean ± std` with 3 decimals of the values there are; `–` without any.
fn num(values: impl Iterator<Item = Option<f64>>) -> String {
    let v: Vec<f64> = values.flatten().filter(|x| x.is_finite()).collect();
    match mean_std(&v) {
        (m, _) if m.is_nan() => "–".to_string(),
        (m, s) if s.is_nan() => format!("{m:.3}"),
        (m, s) => format!("{m:.3} ± {s:.3}"),
    }
}

/// AUROC of every map against its controls per selection (the masks stage's and the arms' own `masks.json`),
/// beside its bars, and a grid of overlays per arm.
pub fn masks(run: &Path, seeds: &[(u64, PathBuf)]) -> Result<Option<String>> {
    let mut summaries: Vec<MaskSummary> = Vec::new();
    for (_, dir) in seeds {
        let stage = dir.join("masks/summary.json");
        if stage.is_file() {
            summaries.extend(read_json::<Vec<MaskSummary>>(&stage)?);
        }
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let arm = entry.path().join("masks.json");
            if arm.is_file() {
                summaries.push(read_json(&arm)?);
            }
        }
    }
    let grid = overlay_grid(run, seeds);
    if summaries.is_empty() && grid.is_empty() {
        return Ok(None);
    }
    let mut out = String::new();
    // The selections whose maps were scored (against true masks), in name order.
    let selections: Vec<String> = summaries
        .iter()
        .filter(|s| s.quality.is_some())
        .map(|s| s.method.name().to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let maps = MASK_MAPS;
    let quality = |method: &str| -> Vec<&MaskQualityReport> {
        summaries
            .iter()
            .filter(|s| s.method.name() == method)
            .filter_map(|s| s.quality.as_ref())
            .collect()
    };
    let mut rows = Vec::new();
    for method in &selections {
        let reports = quality(method);
        for (m, map) in maps.iter().enumerate() {
            if reports.is_empty() {
                continue;
            }
            let qs: Vec<_> = reports.iter().map(|r| map_of(r, m)).collect();
            rows.push(vec![
                method.clone(),
                map.to_string(),
                qs.iter().map(|q| q.n_scored).sum::<usize>().to_string(),
                num(qs.iter().map(|q| q.auroc)),
                num(qs.iter().map(|q| q.place_auroc)),
                num(qs.iter().map(|q| q.object_auroc)),
            ]);
        }
    }
    if !rows.is_empty() {
        let series: Vec<BarSeries> = maps
            .iter()
            .enumerate()
            .map(|(m, map)| BarSeries {
                name: map.to_string(),
                values: selections
                    .iter()
                    .map(|method| {
                        let v: Vec<f64> = quality(method)
                            .iter()
                            .filter_map(|r| map_of(r, m).auroc)
                            .filter(|x| x.is_finite())
                            .collect();
                        let (mean, sd) = mean_std(&v);
                        (!mean.is_nan()).then_some((mean, (!sd.is_nan()).then_some(sd)))
                    })
                    .collect(),
            })
            .collect();
        let plot = bars(
            "AUROC against the true background (0.5 = chance)",
            "AUROC",
            &selections,
            &series,
            Some((0.0, 1.0)),
        )?;
        let header: Vec<String> = [
            "Selection",
            "Map",
            "Images",
            "AUROC",
            "AUROC vs place",
            "AUROC vs object",
        ]
        .map(String::from)
        .to_vec();
        out.push_str(
            "<p>Quality of the relevance maps over each selection's training samples with a target word, beside a \
             random map, the centre prior (distance from the image centre) and the oracle (mean ± std over seeds). \
             The per-word and sanity tables are in <a href=\"table.md\">table.md</a>.</p>",
        );
        out.push_str(&pair(
            &plot,
            &table(&header, &rows, &[false, false, true, true, true, true]),
        ));
    }
    out.push_str(&grid);
    Ok(Some(out))
}

/// The map `m` of [`MASK_MAPS`] in a quality report.
fn map_of(r: &MaskQualityReport, m: usize) -> &QualitySummary {
    match m {
        0 => &r.map,
        1 => &r.random,
        2 => &r.centre,
        _ => &r.oracle,
    }
}

/// The image id at the start of an overlay's file name (`<img_id>-g<group>-<target>.png`).
fn overlay_id(file: &str) -> Option<i64> {
    file.split('-').next()?.parse().ok()
}

/// The first seed's overlays per arm (the masks stage draws TExplain's selection; an arm's folder may hold its
/// own `overlays/`), the images that several arms share first, so the same images line up across arms.
fn overlay_grid(run: &Path, seeds: &[(u64, PathBuf)]) -> String {
    let Some((seed, dir)) = seeds
        .iter()
        .find(|(_, d)| d.join("masks/overlays").is_dir())
    else {
        return String::new();
    };
    let mut arms: Vec<(String, Vec<String>)> = Vec::new();
    let mut folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("overlays").is_dir())
        .collect();
    folders.sort();
    for folder in folders {
        let name = folder
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let label = if name == "masks" {
            "texplain (the masks stage's word maps)".to_string()
        } else {
            name
        };
        arms.push((label, pngs(run, &folder.join("overlays"))));
    }
    let mut shared: BTreeMap<i64, usize> = BTreeMap::new();
    for (_, files) in &arms {
        for id in files.iter().filter_map(|f| overlay_id(file_name(f))) {
            *shared.entry(id).or_default() += 1;
        }
    }
    let mut out = format!(
        "<h3>Overlays, seed {seed}</h3><p class=\"note\">Each strip: the image, its map over it, the image \
         masked. Images that several arms masked come first, in the same order in every arm. Arms whose masks are \
         made in their own stage without overlays (Random, oracle) show none.</p>"
    );
    for (label, mut files) in arms {
        files.sort_by_key(|f| {
            let id = overlay_id(file_name(f));
            (
                std::cmp::Reverse(id.and_then(|i| shared.get(&i)).copied().unwrap_or(0)),
                id,
            )
        });
        let _ = write!(out, "<h3>{}</h3><div class=\"grid\">", escape(&label));
        for f in files.iter().take(OVERLAYS_PER_ARM) {
            let _ = write!(
                out,
                "<figure><img src=\"{0}\" alt=\"{1}\" height=\"96\"><figcaption>{1}</figcaption></figure>",
                escape(f),
                escape(file_name(f).trim_end_matches(".png"))
            );
        }
        out.push_str("</div>");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_ids_come_from_the_file_name() {
        assert_eq!(overlay_id("34-g0-forest.png"), Some(34));
        assert_eq!(overlay_id("cam.png"), None);
        assert_eq!(
            file_name("seed-0/masks/overlays/7-g2-forest.png"),
            "7-g2-forest.png"
        );
    }
}
