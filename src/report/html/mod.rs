//! `report.html`: a self-contained page (inline CSS and SVG, no script, no CDN; images as relative links) that
//! shows a run's tables beside plots of them. This module holds the page's parts, on plain data: HTML escaping,
//! the markdown tables of `table.md` as HTML ([`md_to_html`]), a table beside its plot ([`pair`]), the page
//! ([`document`]); [`plots`] draws with `plotters`' SVG backend; [`accuracy`] turns results rows into the accuracy
//! plot (a dot per seed, the mean, the paired 95 % interval against ERM, the paper's figures) that the run report
//! and `texplain compare --html` share ([`compare_page`]). What a run directory holds is read by
//! `pipeline::report_html`, which composes the run's page from these parts.
//!
//! Layout rule the browser test checks: every data table sits in a `div.pair` together with its plot
//! (`svg.plot`), and the page fits a 1280 px window (plots scale to the column, wide tables scroll inside their own
//! box).
pub mod accuracy;
pub mod plots;

use anyhow::Result;
use std::fmt::Write as _;
use std::path::Path;

use crate::data::Split;
use crate::report::ResultRow;

/// `text` with `& < > " '` escaped for HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escaped text with markdown's `` `code` `` spans as `<code>`.
fn inline(text: &str) -> String {
    let mut out = String::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 {
            let _ = write!(out, "<code>{}</code>", escape(part));
        } else {
            out.push_str(&escape(part));
        }
    }
    out
}

/// The cells of a markdown table line `| a | b |`.
fn cells(line: &str) -> Vec<&str> {
    let line = line.trim();
    let line = line.strip_prefix('|').unwrap_or(line);
    let line = line.strip_suffix('|').unwrap_or(line);
    line.split('|').map(str::trim).collect()
}

/// A markdown separator line (`|---|---:|`): whether each column is right-aligned.
fn alignments(line: &str) -> Option<Vec<bool>> {
    let cells = cells(line);
    cells
        .iter()
        .all(|c| !c.is_empty() && c.chars().all(|ch| matches!(ch, '-' | ':')))
        .then(|| cells.iter().map(|c| c.ends_with(':')).collect())
}

/// An HTML table (class `data`) of `header` and `rows`, right-aligning the columns `right` marks.
pub fn table(header: &[String], rows: &[Vec<String>], right: &[bool]) -> String {
    let align = |i: usize| {
        if right.get(i).copied().unwrap_or(false) {
            " class=\"num\""
        } else {
            ""
        }
    };
    let mut out = String::from("<div class=\"scroll\"><table class=\"data\"><thead><tr>");
    for (i, h) in header.iter().enumerate() {
        let _ = write!(out, "<th{}>{}</th>", align(i), inline(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let _ = write!(out, "<td{}>{}</td>", align(i), inline(c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// The markdown of `table.md` (paragraphs and pipe tables) as HTML: each table as a [`table`], each other block
/// of lines as a paragraph.
pub fn md_to_html(md: &str) -> String {
    let lines: Vec<&str> = md.lines().collect();
    let mut out = String::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let flush = |paragraph: &mut Vec<&str>, out: &mut String| {
        if !paragraph.is_empty() {
            let _ = write!(out, "<p>{}</p>", inline(&paragraph.join(" ")));
            paragraph.clear();
        }
    };
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let next = lines.get(i + 1).copied().unwrap_or_default();
        if line.trim_start().starts_with('|') && alignments(next).is_some() {
            flush(&mut paragraph, &mut out);
            let header: Vec<String> = cells(line).into_iter().map(String::from).collect();
            let right = alignments(next).unwrap_or_default();
            let mut rows = Vec::new();
            i += 2;
            while i < lines.len() && lines[i].trim_start().starts_with('|') {
                rows.push(cells(lines[i]).into_iter().map(String::from).collect());
                i += 1;
            }
            out.push_str(&table(&header, &rows, &right));
            continue;
        }
        if line.trim().is_empty() {
            flush(&mut paragraph, &mut out);
        } else {
            paragraph.push(line);
        }
        i += 1;
    }
    flush(&mut paragraph, &mut out);
    out
}

/// A plot beside the table it draws (the unit the browser test counts: one plot per table).
pub fn pair(plot: &str, table: &str) -> String {
    format!("<div class=\"pair\"><figure>{plot}</figure>{table}</div>")
}

/// A section of the page: its anchor, heading and body.
pub struct Section {
    pub id: String,
    pub title: String,
    pub body: String,
}

impl Section {
    pub fn new(id: &str, title: &str, body: String) -> Self {
        Self {
            id: id.to_string(),
            title: title.to_string(),
            body,
        }
    }
}

const STYLE: &str = "
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1d232a;background:#f6f7f9;line-height:1.45}
header{background:#1d3557;color:#fff;padding:18px 24px}
header h1{margin:0 0 4px;font-size:1.5em}
header p{margin:0;opacity:.9}
nav{background:#fff;border-bottom:1px solid #dde1e6;padding:8px 24px;position:sticky;top:0}
nav a{margin-right:14px;color:#1d3557;text-decoration:none;font-size:.95em}
main{max-width:1220px;margin:0 auto;padding:8px 24px 40px}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:4px 20px 16px;margin:18px 0}
h2{font-size:1.25em;border-bottom:1px solid #eef0f3;padding-bottom:6px}
h3{font-size:1.05em;margin:18px 0 6px}
figure{margin:8px 0}
svg.plot{width:100%;height:auto;display:block}
.scroll{overflow-x:auto;max-width:100%}
table.data{border-collapse:collapse;font-size:.88em;margin:8px 0}
table.data th,table.data td{border-bottom:1px solid #e5e8ec;padding:4px 8px;text-align:left;white-space:nowrap}
table.data th{background:#f0f3f6}
table.data .num{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:10px}
.grid figure{margin:0;max-width:100%}
.grid img{max-width:100%;image-rendering:pixelated;border:1px solid #dde1e6}
.grid figcaption{font-size:.8em;color:#555}
img.wide{max-width:100%}
pre{background:#f0f3f6;padding:10px;white-space:pre-wrap;word-break:break-word;font-size:.85em}
.failed{background:#fde8e8;border-color:#e0a0a0}
.note{color:#555;font-size:.92em}
code{background:#f0f3f6;padding:0 3px;border-radius:3px}
";

/// The whole page: a header (title and one line under it), a navigation bar of the sections and the sections.
pub fn document(title: &str, subtitle: &str, sections: &[Section]) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t}</title><style>{STYLE}</style></head><body>\
         <header><h1>{t}</h1><p>{s}</p></header><nav>",
        t = escape(title),
        s = escape(subtitle),
    );
    for s in sections {
        let _ = write!(
            out,
            "<a href=\"#{}\">{}</a>",
            escape(&s.id),
            escape(&s.title)
        );
    }
    out.push_str("</nav><main>");
    for s in sections {
        let _ = write!(
            out,
            "<section id=\"{}\"><h2>{}</h2>{}</section>",
            escape(&s.id),
            escape(&s.title),
            s.body
        );
    }
    out.push_str("</main></body></html>\n");
    out
}

/// Writes a page atomically (a temporary file renamed into place, [`crate::util::write_atomic`]): a killed run
/// never leaves half a page.
pub fn write_page(path: &Path, html: &str) -> Result<()> {
    crate::util::write_atomic(path, html)
}

/// `texplain compare --html`: the accuracy plot of every (run, method) of `runs` (each named, with its rows), on
/// `split`, each against its own run's ERM, and the comparison table `table_md` (markdown) beside it.
pub fn compare_page(
    runs: &[(String, Vec<ResultRow>)],
    split: Split,
    table_md: &str,
) -> Result<String> {
    let plot = accuracy::plot_runs(runs, split, None)?;
    let body = format!(
        "<p class=\"note\">{}</p>{}",
        escape(accuracy::LEGEND),
        pair(&plot, &md_to_html(table_md))
    );
    let names: Vec<&str> = runs.iter().map(|(n, _)| n.as_str()).collect();
    Ok(document(
        "texplain compare",
        &format!("split {split}: {}", names.join(", ")),
        &[Section::new("accuracy", "Accuracy across runs", body)],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_and_code_spans() {
        assert_eq!(escape("a<b & \"c\"'"), "a&lt;b &amp; &quot;c&quot;&#39;");
        assert_eq!(inline("relevance `x<y`"), "relevance <code>x&lt;y</code>");
    }

    #[test]
    fn markdown_tables_and_paragraphs_become_html() {
        let md = "Split `test`: accuracy\nin %.\n\n| Method | Worst |\n|---|---:|\n| erm | 51.1 ± 4.6 |\n\nAfter.\n";
        assert_eq!(
            md_to_html(md),
            "<p>Split <code>test</code>: accuracy in %.</p>\
             <div class=\"scroll\"><table class=\"data\"><thead><tr><th>Method</th><th class=\"num\">Worst</th>\
             </tr></thead><tbody><tr><td>erm</td><td class=\"num\">51.1 ± 4.6</td></tr></tbody></table></div>\
             <p>After.</p>"
        );
    }

    #[test]
    fn the_document_links_its_sections() {
        let page = document(
            "run <q>",
            "finished",
            &[Section::new("flags", "Flags", "<p>x</p>".into())],
        );
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("<title>run &lt;q&gt;</title>"));
        assert!(page.contains("<a href=\"#flags\">Flags</a>"));
        assert!(page.contains("<section id=\"flags\"><h2>Flags</h2><p>x</p></section>"));
        assert!(!page.contains("<script"), "the page needs no script");
    }
}
