//! `results.csv`: one [`ResultRow`] per (seed, method, split) evaluation, written and read back losslessly.
use std::path::Path;

use super::{ReportError, Result};
use crate::data::Split;
use crate::util::write_file_atomic as write_atomic;

/// One evaluation of one method on one split for one seed.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    pub seed: u64,
    pub method: String,
    /// The evaluated split (`val` or `test` in a run's rows).
    pub split: Split,
    /// Accuracy of each group g = 2*y + place; NaN for an empty group.
    pub group_acc: Vec<f64>,
    pub worst_group: f64,
    pub avg_train_weighted: f64,
    pub avg_plain: f64,
    /// Number of evaluated samples.
    pub n: usize,
}

/// The `results.csv` text of `rows`. All rows must have the same number of groups.
pub fn results_to_csv(rows: &[ResultRow], path_for_errors: &Path) -> Result<String> {
    let n_groups = rows.first().map_or(0, |r| r.group_acc.len());
    let csv_err = |source| ReportError::Csv {
        path: path_for_errors.to_path_buf(),
        source,
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = vec!["seed".into(), "method".into(), "split".into()];
    header.extend((0..n_groups).map(|g| format!("acc_g{g}")));
    header.extend(["worst_group", "avg_train_weighted", "avg_plain", "n"].map(String::from));
    w.write_record(&header).map_err(csv_err)?;
    for (index, r) in rows.iter().enumerate() {
        if r.group_acc.len() != n_groups {
            return Err(ReportError::RaggedGroups {
                path: path_for_errors.to_path_buf(),
                index,
                seed: r.seed,
                method: r.method.clone(),
                got: r.group_acc.len(),
                expected: n_groups,
            });
        }
        let mut rec: Vec<String> = vec![r.seed.to_string(), r.method.clone(), r.split.to_string()];
        // `{}` on f64 prints the shortest string that parses back to the same value: lossless round trip.
        rec.extend(r.group_acc.iter().map(|a| a.to_string()));
        rec.extend([
            r.worst_group.to_string(),
            r.avg_train_weighted.to_string(),
            r.avg_plain.to_string(),
            r.n.to_string(),
        ]);
        w.write_record(&rec).map_err(csv_err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| csv_err(csv::Error::from(e.into_error())))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Write `rows` to `path` (atomically) as `results.csv`.
pub fn write_results_csv(path: &Path, rows: &[ResultRow]) -> Result<()> {
    let text = results_to_csv(rows, path)?;
    write_atomic(path, text.as_bytes()).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Read a `results.csv` file.
pub fn read_results_csv(path: &Path) -> Result<Vec<ResultRow>> {
    let text = std::fs::read_to_string(path).map_err(|source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_results_csv(&text, path)
}

/// Parse `results.csv` text; `path` only names the source in errors.
pub fn parse_results_csv(text: &str, path: &Path) -> Result<Vec<ResultRow>> {
    let path_buf = path.to_path_buf();
    let csv_err = |source| ReportError::Csv {
        path: path_buf.clone(),
        source,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let header = rdr.headers().map_err(csv_err)?.clone();
    let col = |name: &str| -> Result<usize> {
        header
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| ReportError::MissingColumn {
                path: path_buf.clone(),
                column: name.to_string(),
            })
    };
    let (c_seed, c_method, c_split) = (col("seed")?, col("method")?, col("split")?);
    let (c_worst, c_avg_w, c_avg_p, c_n) = (
        col("worst_group")?,
        col("avg_train_weighted")?,
        col("avg_plain")?,
        col("n")?,
    );
    // Group columns: every acc_g<k>, which must be exactly acc_g0..acc_g{G-1}.
    let mut group_cols: Vec<(usize, usize)> = Vec::new(); // (group index, column index)
    let mut found = Vec::new();
    for (ci, h) in header.iter().enumerate() {
        if let Some(k) = h.trim().strip_prefix("acc_g") {
            found.push(h.to_string());
            match k.parse::<usize>() {
                Ok(g) => group_cols.push((g, ci)),
                Err(_) => {
                    return Err(ReportError::GroupColumns {
                        path: path_buf.clone(),
                        found,
                    })
                }
            }
        }
    }
    group_cols.sort_unstable();
    if group_cols.iter().enumerate().any(|(i, &(g, _))| i != g) {
        return Err(ReportError::GroupColumns {
            path: path_buf.clone(),
            found,
        });
    }

    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(csv_err)?;
        let line = rec.position().map_or(0, |p| p.line());
        let field = |ci: usize| rec.get(ci).unwrap_or("").trim();
        let bad = |ci: usize, expected: &'static str| ReportError::BadValue {
            path: path_buf.clone(),
            line,
            column: header.get(ci).unwrap_or("?").to_string(),
            value: field(ci).to_string(),
            expected,
        };
        let float = |ci: usize| field(ci).parse::<f64>().map_err(|_| bad(ci, "a number"));
        let text_field = |ci: usize| {
            let v = field(ci);
            if v.is_empty() {
                Err(bad(ci, "a non-empty string"))
            } else {
                Ok(v.to_string())
            }
        };
        rows.push(ResultRow {
            seed: field(c_seed)
                .parse()
                .map_err(|_| bad(c_seed, "an unsigned integer"))?,
            method: text_field(c_method)?,
            split: field(c_split)
                .parse()
                .map_err(|_| bad(c_split, "a split (train, val or test)"))?,
            group_acc: group_cols
                .iter()
                .map(|&(_, ci)| float(ci))
                .collect::<Result<_>>()?,
            worst_group: float(c_worst)?,
            avg_train_weighted: float(c_avg_w)?,
            avg_plain: float(c_avg_p)?,
            n: field(c_n)
                .parse()
                .map_err(|_| bad(c_n, "an unsigned integer"))?,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::sample_rows;

    #[test]
    fn csv_round_trip() {
        let mut rows = sample_rows();
        rows[0].group_acc[2] = f64::NAN; // an empty group survives the round trip
        rows[1].worst_group = 1.0 / 3.0;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.csv");
        write_results_csv(&path, &rows).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(
            "seed,method,split,acc_g0,acc_g1,acc_g2,acc_g3,worst_group,avg_train_weighted,avg_plain,n\n0,erm,test,1,0.58,NaN,0.97,"
        ));
        let back = read_results_csv(&path).unwrap();
        assert_eq!(back.len(), rows.len());
        assert!(back[0].group_acc[2].is_nan());
        assert_eq!(back[1], rows[1]);
        assert_eq!(&back[2..], &rows[2..]);
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(files, ["results.csv"], "no temporary file is left");
    }

    #[test]
    fn reads_any_number_of_groups_and_column_order() {
        let text = "method,split,seed,acc_g1,acc_g0,worst_group,avg_train_weighted,avg_plain,n\n\
                    erm,test,3,0.5,0.75,0.5,0.6,0.7,10\n";
        let rows = parse_results_csv(text, Path::new("x.csv")).unwrap();
        assert_eq!(rows[0].group_acc, vec![0.75, 0.5]);
        assert_eq!(rows[0].seed, 3);
    }

    #[test]
    fn bad_csv_errors_name_file_line_and_column() {
        let p = Path::new("runs/a/results.csv");
        let cases = [
            (
                "seed,method,split,acc_g0,worst_group,avg_train_weighted,avg_plain,n\n0,erm,test,0.5,0.5,0.5,0.5,10\n1,erm,test,oops,0.5,0.5,0.5,10\n",
                "runs/a/results.csv: line 3, column `acc_g0`: cannot parse \"oops\" as a number",
            ),
            (
                "seed,method,split,acc_g0,worst_group,avg_plain,n\n",
                "runs/a/results.csv: header lacks column `avg_train_weighted`",
            ),
            (
                "seed,method,split,acc_g0,acc_g2,worst_group,avg_train_weighted,avg_plain,n\n",
                "runs/a/results.csv: group columns must be acc_g0..acc_g{G-1} without gaps, found [\"acc_g0\", \"acc_g2\"]",
            ),
            (
                "seed,method,split,acc_g0,worst_group,avg_train_weighted,avg_plain,n\n-1,erm,test,0.5,0.5,0.5,0.5,10\n",
                "runs/a/results.csv: line 2, column `seed`: cannot parse \"-1\" as an unsigned integer",
            ),
        ];
        for (text, want) in cases {
            let err = parse_results_csv(text, p).unwrap_err().to_string();
            assert_eq!(err, want);
        }
        let short =
            "seed,method,split,acc_g0,worst_group,avg_train_weighted,avg_plain,n\n0,erm,test\n";
        let err = parse_results_csv(short, p).unwrap_err().to_string();
        assert!(err.starts_with("runs/a/results.csv: "), "{err}");
    }
}
