//! `curves.csv`: the training curve of a classifier's training, one row per epoch (`epoch,train_loss,
//! val_worst_group,val_avg`), written by [`super::ClassifierTraining::run`] beside the stage's `metrics.csv` and read
//! back by the run report (`report::html`). A plain subset of `metrics.csv` in one schema for every training stage
//! (ERM, the fine-tuned arms, the baselines), so a reader needs no knowledge of the group columns.
//!
//! The file is a by-product, not an artifact: the stage cache leaves it out of a stage's recorded files and content
//! digest (`pipeline::stage`), so writing it changes no key, and a stage that finished before curves were written
//! simply has none. Empty cells: epoch 0 (the model as it starts) has no training loss; a training without a
//! validation split has no validation columns. Accuracies are fractions in [0, 1].
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::path::Path;

use crate::util::write_atomic;

/// The file's name in a stage's folder.
pub const CURVES_FILE: &str = "curves.csv";

const HEADER: &str = "epoch,train_loss,val_worst_group,val_avg";

/// One epoch of a training curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    pub epoch: u32,
    pub train_loss: Option<f64>,
    pub val_worst_group: Option<f64>,
    pub val_avg: Option<f64>,
}

fn cell(value: Option<f64>) -> String {
    value.map_or(String::new(), |v| format!("{v:.6}"))
}

/// The CSV text of `points`.
pub fn curves_csv(points: &[CurvePoint]) -> String {
    let mut csv = format!("{HEADER}\n");
    for p in points {
        let _ = writeln!(
            csv,
            "{},{},{},{}",
            p.epoch,
            cell(p.train_loss),
            cell(p.val_worst_group),
            cell(p.val_avg)
        );
    }
    csv
}

/// Writes `points` to `<dir>/curves.csv` atomically.
pub fn write_curves(dir: &Path, points: &[CurvePoint]) -> Result<()> {
    write_atomic(&dir.join(CURVES_FILE), curves_csv(points))
}

/// Parses the text of a `curves.csv`; `path` names the file in errors (with the line and column at fault).
pub fn parse_curves(text: &str, path: &Path) -> Result<Vec<CurvePoint>> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    if header.trim() != HEADER {
        bail!(
            "{}: header is {header:?}, expected {HEADER:?}",
            path.display()
        );
    }
    let columns: Vec<&str> = HEADER.split(',').collect();
    let mut points = Vec::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != columns.len() {
            bail!(
                "{}: line {}: {} cells, expected {}",
                path.display(),
                i + 2,
                cells.len(),
                columns.len()
            );
        }
        let number = |c: usize| -> Result<Option<f64>> {
            let text = cells[c].trim();
            if text.is_empty() {
                return Ok(None);
            }
            text.parse().map(Some).with_context(|| {
                format!(
                    "{}: line {}, column `{}`: {text:?} is not a number",
                    path.display(),
                    i + 2,
                    columns[c]
                )
            })
        };
        points.push(CurvePoint {
            epoch: cells[0].trim().parse().with_context(|| {
                format!(
                    "{}: line {}, column `epoch`: {:?} is not an epoch",
                    path.display(),
                    i + 2,
                    cells[0]
                )
            })?,
            train_loss: number(1)?,
            val_worst_group: number(2)?,
            val_avg: number(3)?,
        });
    }
    Ok(points)
}

/// Reads `<dir>/curves.csv`; `None` when the stage wrote none (it finished before curves were written).
pub fn read_curves(dir: &Path) -> Result<Option<Vec<CurvePoint>>> {
    let path = dir.join(CURVES_FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    parse_curves(&text, &path).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curves_round_trip_with_empty_cells() {
        let points = vec![
            CurvePoint {
                epoch: 0,
                train_loss: None,
                val_worst_group: Some(0.25),
                val_avg: Some(0.5),
            },
            CurvePoint {
                epoch: 1,
                train_loss: Some(0.5625),
                val_worst_group: Some(0.375),
                val_avg: Some(0.625),
            },
        ];
        let csv = curves_csv(&points);
        assert_eq!(
            csv,
            "epoch,train_loss,val_worst_group,val_avg\n0,,0.250000,0.500000\n1,0.562500,0.375000,0.625000\n"
        );
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_curves(dir.path()).unwrap(), None);
        write_curves(dir.path(), &points).unwrap();
        assert_eq!(read_curves(dir.path()).unwrap(), Some(points));
    }

    #[test]
    fn bad_curves_name_the_file_line_and_column() {
        let path = Path::new("seed-0/erm/curves.csv");
        let err = parse_curves("epoch,loss\n", path).unwrap_err();
        assert!(
            format!("{err}").contains("seed-0/erm/curves.csv: header"),
            "{err}"
        );
        let err = parse_curves(&format!("{HEADER}\n1,0.5,x,0.2\n"), path).unwrap_err();
        assert_eq!(
            format!("{err}"),
            "seed-0/erm/curves.csv: line 2, column `val_worst_group`: \"x\" is not a number"
        );
        let err = parse_curves(&format!("{HEADER}\n1,0.5\n"), path).unwrap_err();
        assert!(
            format!("{err}").contains("line 2: 2 cells, expected 4"),
            "{err}"
        );
    }
}
