//! `report.html` in a real browser: a tiny run's report loads in headless Chromium with no console error and no
//! broken image, holds one plot per table and fits a 1280 px window without horizontal scrolling; its training
//! curves come from the `curves.csv` every training stage wrote; `texplain report` rebuilds it; a failed run's
//! report says which stage failed and why; `texplain compare --html` writes the accuracy plot across runs.
//!
//! Chromium comes from `scripts/install-chromium.sh` (the Debian package `chromium`); where it cannot be installed
//! the browser checks are skipped with a message saying so, and everything else still runs.
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use common::{run, stderr, texplain};

/// The tiny end-to-end config of `tests/pipeline.rs`, with a third overlay and two fine-tuning epochs (curves
/// with more than one point).
fn tiny_config(dir: &Path, data: &Path) -> PathBuf {
    let text = common::tiny_pipeline_config_text(data)
        .replace("overlays: 2,", "overlays: 3,")
        .replace(
            "finetune: {lr: 1.0e-4, epochs: 1,",
            "finetune: {lr: 1.0e-4, epochs: 2,",
        );
    let path = dir.join("tiny.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The browser, installed when missing; `Err` says why there is none.
fn chromium() -> Result<PathBuf, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-chromium.sh");
    let out = Command::new("bash")
        .arg(&script)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
    }
    Ok(PathBuf::from(
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    ))
}

/// Installed first in the page's head: records script errors, failed loads (broken images) and console errors.
const RECORDER: &str = "<script>window.__errors=[];\
    window.addEventListener('error',function(e){__errors.push(e.message||('failed to load '+(e.target&&(e.target.src||e.target.href))))},true);\
    (function(){var f=console.error;console.error=function(){__errors.push('console.error: '+Array.prototype.join.call(arguments,' '));f.apply(console,arguments)}})();\
    </script>";

/// Run at load: the checks, written into the page as JSON for `--dump-dom` to read back.
const CHECKER: &str = "<script>window.addEventListener('load',function(){\
    var imgs=Array.prototype.slice.call(document.images);\
    var pairs=Array.prototype.slice.call(document.querySelectorAll('div.pair'));\
    var tables=document.querySelectorAll('table.data');\
    var r={errors:__errors,\
      images:imgs.length,\
      broken:imgs.filter(function(i){return !(i.complete&&i.naturalWidth>0)}).map(function(i){return i.getAttribute('src')}),\
      tables:tables.length,\
      tables_outside_pairs:Array.prototype.filter.call(tables,function(t){return !t.closest('div.pair')}).length,\
      pairs_short_of_plots:pairs.filter(function(p){return p.querySelectorAll('.plot').length<p.querySelectorAll('table.data').length}).length,\
      plots:document.querySelectorAll('.plot').length,\
      scroll_width:document.documentElement.scrollWidth,inner_width:window.innerWidth};\
    var pre=document.createElement('pre');pre.id='browser-check';pre.textContent=JSON.stringify(r);\
    document.body.appendChild(pre);});</script>";

/// Loads `page` (a copy beside it, with the recorder and checker added) in headless Chromium at 1280 px and
/// returns the checker's JSON and the browser's console lines.
fn check_in_browser(browser: &Path, page: &Path) -> (serde_json::Value, Vec<String>) {
    let html = std::fs::read_to_string(page).unwrap();
    let checked = html
        .replacen("<head>", &format!("<head>{RECORDER}"), 1)
        .replacen("</body>", &format!("{CHECKER}</body>"), 1);
    let copy = page.with_file_name("report-checked.html");
    std::fs::write(&copy, checked).unwrap();
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,900",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", copy.canonicalize().unwrap().display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    let json = dom
        .split("<pre id=\"browser-check\">")
        .nth(1)
        .and_then(|rest| rest.split("</pre>").next())
        .unwrap_or_else(|| {
            panic!(
                "no check result in the DOM; chromium said: {}",
                stderr(&out)
            )
        })
        .replace("&quot;", "\"")
        .replace("&amp;", "&");
    let console = stderr(&out)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(String::from)
        .collect();
    (serde_json::from_str(&json).unwrap(), console)
}

#[test]
fn a_tiny_runs_report_loads_in_a_browser_with_every_image_one_plot_per_table_and_no_scrolling() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tiny_config(tmp.path(), &tmp.path().join("data"));
    let out_dir = tmp.path().join("run");
    let done = run(&config, &out_dir, &[]);
    assert!(done.status.success(), "{}", stderr(&done));
    let report = out_dir.join("report.html");
    let printed = String::from_utf8_lossy(&done.stdout);
    assert!(
        printed.contains(&format!("report: {}", report.display())),
        "texplain run ends by printing the report's path: {printed}"
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(!html.contains("<script"), "the report needs no script");
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "nothing is loaded from the network"
    );
    for section in [
        "run",
        "accuracy",
        "regime",
        "flags",
        "masks",
        "explanations",
        "curves",
        "timings",
        "config",
    ] {
        assert!(
            html.contains(&format!("<section id=\"{section}\">")),
            "no {section} section"
        );
    }
    // Every classifier training wrote its curve, one row per epoch.
    let erm = std::fs::read_to_string(out_dir.join("seed-3/erm/curves.csv")).unwrap();
    assert_eq!(erm.lines().count(), 1 + 2, "{erm}");
    assert!(
        erm.starts_with("epoch,train_loss,val_worst_group,val_avg\n1,"),
        "{erm}"
    );
    for method in ["random", "texplain", "oracle"] {
        assert!(out_dir
            .join(format!("seed-3/{method}/curves.csv"))
            .is_file());
    }
    assert!(html.contains("aria-label=\"training curves, seed 3\""));
    // `texplain report` rebuilds the page in place.
    std::fs::remove_file(&report).unwrap();
    let rebuilt = texplain(&["report", out_dir.to_str().unwrap()]);
    assert!(rebuilt.status.success(), "{}", stderr(&rebuilt));
    assert_eq!(std::fs::read_to_string(&report).unwrap(), html);

    let browser = match chromium() {
        Ok(browser) => browser,
        Err(why) => {
            println!("SKIPPED the browser checks of report.html: Chromium cannot be installed here ({why})");
            return;
        }
    };
    let (check, console) = check_in_browser(&browser, &report);
    assert_eq!(check["errors"], serde_json::json!([]), "{check}");
    assert!(console.is_empty(), "console: {console:?}");
    assert_eq!(check["broken"], serde_json::json!([]), "{check}");
    assert!(
        check["images"].as_u64().unwrap() >= 4,
        "clouds and overlays: {check}"
    );
    assert!(check["tables"].as_u64().unwrap() >= 5, "{check}");
    assert_eq!(check["tables_outside_pairs"], 0, "{check}");
    assert_eq!(check["pairs_short_of_plots"], 0, "{check}");
    assert!(
        check["scroll_width"].as_u64().unwrap() <= check["inner_width"].as_u64().unwrap(),
        "horizontal scrolling at 1280 px: {check}"
    );

    // The same plot across runs: `texplain compare --html`.
    let page = tmp.path().join("compare/compare.html");
    let compared = texplain(&[
        "compare",
        out_dir.to_str().unwrap(),
        "--html",
        page.to_str().unwrap(),
    ]);
    assert!(compared.status.success(), "{}", stderr(&compared));
    let (check, console) = check_in_browser(&browser, &page);
    assert_eq!(check["errors"], serde_json::json!([]), "{check}");
    assert!(console.is_empty(), "console: {console:?}");
    assert_eq!(
        (check["tables"].as_u64(), check["plots"].as_u64()),
        (Some(1), Some(1)),
        "{check}"
    );
}

#[test]
fn a_failed_runs_report_opens_and_names_the_stage_and_its_error() {
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("failed");
    std::fs::create_dir_all(run_dir.join("seed-3/erm.partial")).unwrap();
    let error = format!(
        "stage {}: train: the loss is NaN at epoch 1, step 2 (batch 2 of the epoch): training diverged",
        run_dir.join("seed-3/erm").display()
    );
    std::fs::write(
        run_dir.join("run.json"),
        serde_json::json!({"status": "failed", "error": error, "device": "cpu", "seeds": [3]})
            .to_string(),
    )
    .unwrap();
    let out = texplain(&["report", run_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(run_dir.join("report.html")).unwrap();
    assert!(html.contains("status: failed"), "{html}");
    assert!(
        html.contains(&format!(
            "<strong>The run failed</strong> in stage <code>{}</code>",
            run_dir.join("seed-3/erm").display()
        )),
        "{html}"
    );
    assert!(html.contains("training diverged") && html.contains("<code>seed-3/erm.partial</code>"));
    assert!(
        !html.contains("<section id=\"accuracy\">"),
        "no results, no accuracy section"
    );
    let missing = texplain(&["report", tmp.path().join("nothing").to_str().unwrap()]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("nothing: not a run directory"));
}
