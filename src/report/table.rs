//! The paper's Table-1 layout in markdown ([`table_md`]), the cell formats every table of the crate shares, and
//! the mark of the methods that train on group labels.
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::ResultRow;
use crate::data::Split;
use crate::methods::{table_order, GroupLabels, Method};
use crate::metrics::mean_std;

/// A paper's reported numbers: method -> worst-group and average accuracy as [mean, std] in percent.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PaperTable(pub BTreeMap<String, PaperEntry>);

/// One method's line of a paper table, in percent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperEntry {
    pub worst_group: [f64; 2],
    pub average: [f64; 2],
}

impl PaperTable {
    /// Waterbirds, TExplain paper Table 1 (ViT-B/16 at 384 px, mean ± std over seeds).
    pub fn waterbirds_table1() -> Self {
        let e = |w: [f64; 2], a: [f64; 2]| PaperEntry {
            worst_group: w,
            average: a,
        };
        PaperTable(BTreeMap::from([
            ("ERM".to_string(), e([78.0, 7.3], [95.2, 0.5])),
            ("Random".to_string(), e([82.3, 3.6], [96.4, 0.2])),
            ("TExplain".to_string(), e([88.2, 2.9], [96.7, 0.6])),
        ]))
    }

    /// Case-insensitive lookup (`erm` finds `ERM`).
    pub fn get(&self, method: &str) -> Option<&PaperEntry> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(method))
            .map(|(_, v)| v)
    }
}

/// `78.0 ± 7.3` in percent from fractions; a NaN std (one seed) prints the mean alone; a NaN mean prints `–`.
pub fn fmt_pct_pm(mean: f64, std: f64) -> String {
    if mean.is_nan() {
        "–".to_string()
    } else if std.is_nan() {
        format!("{:.1}", 100.0 * mean)
    } else {
        format!("{:.1} ± {:.1}", 100.0 * mean, 100.0 * std)
    }
}

fn fmt_pct(x: f64) -> String {
    if x.is_nan() {
        "–".to_string()
    } else {
        format!("{:.1}", 100.0 * x)
    }
}

/// Signed difference in percentage points, e.g. `+3.2`.
pub(super) fn fmt_pct_signed(x: f64) -> String {
    if x.is_nan() {
        "–".to_string()
    } else {
        format!("{:+.1}", 100.0 * x)
    }
}

/// A paper's `[mean, std]`; a NaN std (a figure published without one) prints the mean alone.
fn fmt_paper(v: [f64; 2]) -> String {
    if v[1].is_nan() {
        format!("{:.1}", v[0])
    } else {
        format!("{:.1} ± {:.1}", v[0], v[1])
    }
}

/// The mark of a method that trains on group labels (see [`group_label_note`]).
pub const GROUP_LABEL_MARK: &str = "†";

/// A method's name as tables print it: marked with [`GROUP_LABEL_MARK`] when it trains on group labels.
pub fn method_label(method: &str) -> String {
    match Method::from_name(method) {
        Some(m) if m.trains_on_group_labels() => format!("{method} {GROUP_LABEL_MARK}"),
        _ => method.to_string(),
    }
}

/// The footnote of a table holding `methods`: which of them train on group labels and on which split's; `None`
/// when none does.
pub fn group_label_note<'a>(methods: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut marked: Vec<String> = Vec::new();
    for name in methods {
        let Some(m) = Method::from_name(name) else {
            continue;
        };
        let which = match m.group_labels() {
            GroupLabels::Selection => continue,
            GroupLabels::Train => "the training split's, in its objective",
            GroupLabels::Val => "the validation split's, as its training data",
        };
        let line = format!("{name} ({which})");
        if !marked.contains(&line) {
            marked.push(line);
        }
    }
    (!marked.is_empty()).then(|| {
        format!(
            "{GROUP_LABEL_MARK} trains on group labels: {}. Every method uses the validation groups to select a \
             model (worst-group validation accuracy); these use them to train as well.",
            marked.join("; ")
        )
    })
}

/// Mean and std over seeds of one metric per row.
pub(super) fn stat(rows: &[&ResultRow], f: impl Fn(&ResultRow) -> f64) -> (f64, f64) {
    mean_std(&rows.iter().map(|r| f(r)).collect::<Vec<_>>())
}

/// The paper's Table-1 layout for one split, in markdown (see the module docs); `attribute` names the spurious
/// attribute of the groups g = 2*y + attribute (`DataKind::attr_column`: place, object, apple).
pub fn table_md(
    rows: &[ResultRow],
    split: Split,
    paper: Option<&PaperTable>,
    attribute: &str,
) -> String {
    let rows: Vec<&ResultRow> = rows.iter().filter(|r| r.split == split).collect();
    let mut methods: Vec<&str> = rows
        .iter()
        .map(|r| r.method.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    methods.sort_by(|a, b| table_order(a, b));
    let n_groups = rows.iter().map(|r| r.group_acc.len()).max().unwrap_or(0);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "Split `{split}`: accuracy in %, mean ± std (ddof=1) over seeds. Average = train-group-weighted \
         (group_DRO/WILDS convention), Plain = accuracy over all samples, g = 2*y + {attribute}."
    );
    out.push('\n');
    let mut header = vec![
        "Method".to_string(),
        "Seeds".into(),
        "Worst-group".into(),
        "Average".into(),
        "Plain".into(),
    ];
    header.extend((0..n_groups).map(|g| format!("g{g}")));
    if paper.is_some() {
        header.extend(["Paper worst-group".to_string(), "Paper average".to_string()]);
    }
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        header
            .iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { "---|" } else { "---:|" })
            .collect::<String>()
    );
    for &m in &methods {
        let mrows: Vec<&ResultRow> = rows.iter().copied().filter(|r| r.method == m).collect();
        let seeds: BTreeSet<u64> = mrows.iter().map(|r| r.seed).collect();
        let (wm, ws) = stat(&mrows, |r| r.worst_group);
        let (am, as_) = stat(&mrows, |r| r.avg_train_weighted);
        let (pm, ps) = stat(&mrows, |r| r.avg_plain);
        let mut cells = vec![
            method_label(m),
            seeds.len().to_string(),
            fmt_pct_pm(wm, ws),
            fmt_pct_pm(am, as_),
            fmt_pct_pm(pm, ps),
        ];
        for g in 0..n_groups {
            let (gm, _) = stat(&mrows, |r| r.group_acc.get(g).copied().unwrap_or(f64::NAN));
            cells.push(fmt_pct(gm));
        }
        if let Some(p) = paper {
            match p.get(m) {
                Some(e) => cells.extend([fmt_paper(e.worst_group), fmt_paper(e.average)]),
                None => cells.extend(["–".to_string(), "–".to_string()]),
            }
        }
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    if let Some(note) = group_label_note(methods) {
        let _ = writeln!(out, "\n{note}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::{row, sample_rows};

    #[test]
    fn table_md_exact_strings() {
        let t = table_md(
            &sample_rows(),
            Split::Test,
            Some(&PaperTable::waterbirds_table1()),
            "object",
        );
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].ends_with("g = 2*y + object."), "{}", lines[0]);
        assert_eq!(
            lines[2],
            "| Method | Seeds | Worst-group | Average | Plain | g0 | g1 | g2 | g3 | Paper worst-group | Paper average |"
        );
        assert_eq!(
            lines[3],
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        // erm worst: 19, 21, 23 -> 21.0 ± 2.0; average 96, 97, 98 -> 97.0 ± 1.0; plain 80, 82, 84 -> 82.0 ± 2.0
        assert_eq!(
            lines[4],
            "| erm | 3 | 21.0 ± 2.0 | 97.0 ± 1.0 | 82.0 ± 2.0 | 100.0 | 60.0 | 21.0 | 97.0 | 78.0 ± 7.3 | 95.2 ± 0.5 |"
        );
        // random: one seed -> no std
        assert_eq!(
            lines[5],
            "| random | 1 | 40.0 | 90.0 | 70.0 | 90.0 | 60.0 | 40.0 | 90.0 | 82.3 ± 3.6 | 96.4 ± 0.2 |"
        );
        assert_eq!(
            lines[6],
            "| texplain | 3 | 60.0 ± 10.0 | 91.0 ± 1.0 | 80.0 ± 0.0 | 90.0 | 70.0 | 60.0 | 90.0 | 88.2 ± 2.9 | 96.7 ± 0.6 |"
        );
        assert_eq!(
            lines.len(),
            7,
            "no footnote without a method that trains on group labels"
        );

        // Methods that train on group labels are marked, with a footnote naming the split; a published figure
        // without a std prints its mean alone.
        let mut rows = sample_rows();
        for (method, worst) in [("groupdro", 0.8), ("dfr", 0.85), ("jtt", 0.7)] {
            rows.push(row(
                0,
                method,
                "test",
                [0.9, 0.8, 0.85, 0.9],
                worst,
                0.9,
                0.88,
            ));
        }
        let mut paper = PaperTable::waterbirds_table1();
        paper.0.insert(
            "GroupDRO".into(),
            PaperEntry {
                worst_group: [91.4, f64::NAN],
                average: [93.5, f64::NAN],
            },
        );
        let t = table_md(&rows, Split::Test, Some(&paper), "place");
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[7].starts_with("| jtt | 1 | 70.0 |"), "{t}");
        assert!(lines[8].starts_with("| dfr † | 1 | 85.0 |"), "{t}");
        assert!(
            lines[9].starts_with("| groupdro † | 1 | 80.0 |")
                && lines[9].ends_with("| 91.4 | 93.5 |"),
            "{t}"
        );
        assert_eq!(lines[10], "");
        assert_eq!(
            lines[11],
            "† trains on group labels: dfr (the validation split's, as its training data); groupdro (the training \
             split's, in its objective). Every method uses the validation groups to select a model (worst-group \
             validation accuracy); these use them to train as well."
        );

        let val = table_md(&sample_rows(), Split::Val, None, "place");
        assert_eq!(
            val.lines().nth(4).unwrap(),
            "| erm | 1 | 50.0 | 50.0 | 50.0 | 50.0 | 50.0 | 50.0 | 50.0 |"
        );
    }

    #[test]
    fn paper_table_yaml() {
        let yaml = "ERM: {worst_group: [78.0, 7.3], average: [95.2, 0.5]}\n\
                    Random: {worst_group: [82.3, 3.6], average: [96.4, 0.2]}\n\
                    TExplain: {worst_group: [88.2, 2.9], average: [96.7, 0.6]}\n";
        let t: PaperTable = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(t, PaperTable::waterbirds_table1());
        assert!(
            serde_yaml::from_str::<PaperTable>("ERM: {worst: [1, 2], average: [1, 2]}").is_err()
        );
    }
}
