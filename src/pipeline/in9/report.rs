//! The report of the ImageNet-9 analysis (not a stage: rewritten at the end of every run from the stages' files):
//! `<run>/summary.json` (the classifier's validation accuracy, the Background Challenge accuracies and BG-gap, every
//! seed's per-category summary) and `<run>/table.md` (the Background Challenge table, then each seed's clouds
//! against predictions), which `texplain run` prints.
use anyhow::Result;
use serde::Serialize;

use super::predictions::Predictions;
use super::summary::Summary;
use super::Analysis;
use crate::in9::{predictions_markdown, summary_markdown, AnalysisSummary, PredictionSummary};
use crate::pipeline::pretrain::Pretrained;
use crate::pretrain::ClassAccuracy;
use crate::util::{write_atomic, write_json};

/// `<run>/summary.json`.
#[derive(Serialize, Debug)]
pub struct In9Report {
    /// The classifier's IN-9L validation accuracy (when the run pretrained it).
    pub pretrain_val: Option<ClassAccuracy>,
    pub predictions: PredictionSummary,
    pub seeds: Vec<AnalysisSummary>,
}

/// Writes the report and returns `table.md`.
pub fn run(
    analysis: &Analysis,
    pretrained: Option<&Pretrained>,
    predictions: &Predictions,
    summaries: &[Summary],
) -> Result<String> {
    let out = &analysis.exp.out_dir;
    let report = In9Report {
        pretrain_val: match pretrained {
            Some(p) => Some(p.summary()?.val),
            None => None,
        },
        predictions: predictions.summary()?,
        seeds: summaries
            .iter()
            .map(Summary::summary)
            .collect::<Result<_>>()?,
    };
    let mut table = String::new();
    if let Some(v) = &report.pretrain_val {
        table.push_str(&format!(
            "Classifier: IN-9L validation accuracy {:.1} % (worst class {:.1} %).\n\n",
            100.0 * v.accuracy,
            100.0 * v.worst_class
        ));
    }
    table.push_str(&predictions_markdown(&report.predictions));
    for s in &report.seeds {
        table.push('\n');
        table.push_str(&summary_markdown(s));
    }
    write_json(&out.join("summary.json"), &report)?;
    write_atomic(&out.join("table.md"), &table)?;
    Ok(table)
}
