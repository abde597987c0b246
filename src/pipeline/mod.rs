//! `texplain run`: the experiment pipeline over a run directory (paper sections 2–4.3). [`run`] is the one place
//! that shows the whole data flow; each stage lives in its own module, takes the run's context and the typed
//! outputs of the stages it reads, and returns its own typed output:
//!
//! ```text
//! shared by seeds   pretrain::run           <run>/pretrain/      classifier pretrained on the upstream corpus
//!                   lm::CaptionData::load   caption pairs + corpus (generated when synthetic)
//!                   lm::run                 <run>/lm/            tokenizer + GPT-2 (or a pretrained folder)
//! per seed          erm::run                seed-<s>/erm/        classifier (HF folder), metrics, results
//!                   regime::run             seed-<s>/regime/     linear probes: is the bird in the features?
//!                   translator::run         seed-<s>/translator/ classifier tokens -> LM prefix
//!                   explain::run            seed-<s>/explain/    sentences, top words per image and class
//!                   clouds::run             seed-<s>/clouds/     word clouds per class x split
//!                   flags::run              seed-<s>/flags/      flagged samples and their target words
//!                   masks::run              seed-<s>/masks/      word-targeted relevance masks, their quality
//!                   finetune::run           seed-<s>/<method>/   fine-tuned model's results
//! baselines         masktune::run           seed-<s>/masktune/   ERM fine-tuned on predicted-class GradCAM masks
//!                   jtt::run                seed-<s>/jtt/        error set upsampled, retrained from ERM's init
//!                   dfr::run                seed-<s>/dfr/        last layer retrained on validation features
//!                   groupdro::run           seed-<s>/groupdro/   online group DRO from ERM's init
//! at the end        report::run             results.csv, table.md
//!                   report_html::write      report.html (also after a failed run)
//! ```
//! Which stages run follows from `mitigation.methods`: the masked fine-tunings
//! ([`crate::methods::Method::masked_finetune`]) after the explanation stages, each baseline by its method, all four
//! on one skeleton ([`retrain`]: key, starting point, evaluation, results).
//! A config with an `analysis` section runs that analysis' flow instead ([`in9`]: the ImageNet-9 / Background
//! Challenge analysis), on the same run directory conventions and stage cache.
//! Every stage is keyed by a hash of what it was computed from ([`stage::StageKey`]: settings and the content
//! digests of the stages it reads), built in `<stage>.partial/` and renamed into place, so a rerun skips finished
//! stages and redoes interrupted ones. One run at a time writes into a run directory ([`lock::RunLock`]), and
//! `run.json` says whether the run finished or failed, and with which error.
pub mod clouds;
pub mod context;
pub mod dfr;
pub mod erm;
pub mod explain;
pub mod faithfulness;
pub mod finetune;
pub mod flags;
pub mod groupdro;
pub mod in9;
pub mod jtt;
pub mod lm;
pub mod lock;
pub mod masks;
pub mod masks_eval;
pub mod masktune;
pub mod outcome;
pub mod pretrain;
pub mod regime;
pub mod report;
pub mod report_html;
pub mod retrain;
pub mod stage;
pub mod translator;

use anyhow::{Context, Result};

use crate::config::Experiment;
use crate::methods::Method;
use crate::runtime::{device_name, set_threads};
use crate::util::{write_atomic, write_json};
use context::{Run, Splits};
use stage::RunInfo;

/// Runs an experiment end to end (resuming finished stages) and prints its Table-1 layout.
pub fn run(exp: &Experiment) -> Result<()> {
    exp.preflight()?;
    let cfg = &exp.config;
    set_threads(cfg.threads);
    let out = &exp.out_dir;
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating the run directory {}", out.display()))?;
    let _lock = lock::RunLock::acquire(out)?;
    write_atomic(&out.join("config.resolved.yaml"), exp.resolved_yaml()?)?;
    let mut info = RunInfo::start(device_name(exp.device), cfg.seeds.clone());
    write_json(&out.join("run.json"), &info)?;

    let result = match &cfg.analysis {
        Some(_) => in9::run_stages(exp),
        None => run_stages(exp),
    };
    info.finished_unix = Some(stage::unix_now());
    match &result {
        Ok(_) => info.status = "finished".into(),
        Err(err) => {
            info.status = "failed".into();
            info.error = Some(format!("{err:#}"));
        }
    }
    let recorded = write_json(&out.join("run.json"), &info);
    // The report shows a failed run too; its own failure never hides the run's error.
    let report = report_html::write(out);
    let table = result?;
    recorded?;
    println!("{table}");
    println!("report: {}", report?.display());
    Ok(())
}

/// Every stage of the run, then the report; returns the Table-1 layout.
fn run_stages(exp: &Experiment) -> Result<String> {
    let cfg = &exp.config;
    let pretrained = pretrain::run(exp)?;
    let run = Run::new(exp, Splits::load(exp)?);
    let methods = exp.methods();
    let explainers = if exp.explains() {
        let captions = lm::CaptionData::load(exp)?;
        let lm = lm::run(exp, &captions)?;
        Some((captions, lm))
    } else {
        None
    };
    let mut outputs = report::Outputs::default();
    for &seed in &cfg.seeds {
        let span = tracing::info_span!("seed", seed);
        let _enter = span.enter();
        let ctx = run.seed(seed);
        let erm = erm::run(&ctx, pretrained.as_ref())?;
        outputs.rows.extend(erm.results()?);
        outputs
            .regime
            .push(regime::run(&ctx, &erm, pretrained.as_ref())?);
        if let Some((captions, lm)) = &explainers {
            explained(&ctx, &methods, &erm, lm, captions, &mut outputs)?;
        }
        for &method in &methods {
            let done = match method {
                // ERM ran above, the masked fine-tunings with the explanations.
                Method::Erm
                | Method::Random
                | Method::Texplain
                | Method::Oracle
                | Method::OracleRandom
                | Method::Frame
                | Method::ObjectComplement
                | Method::OracleObject => continue,
                Method::Masktune => masktune::run(&ctx, &erm)?,
                Method::Jtt => jtt::run(&ctx, pretrained.as_ref())?,
                Method::Dfr => dfr::run(&ctx, &erm)?,
                Method::Groupdro => groupdro::run(&ctx, pretrained.as_ref())?,
            };
            outputs.rows.extend(done.results()?);
        }
    }
    report::run(exp, &outputs)
}

/// The stages that explain the ERM classifier (translator, explain, clouds) and, for the methods that fine-tune a
/// selection with masks (Random, TExplain, oracle), flags, masks and their fine-tuning; their flag summary and
/// result rows go into `outputs`.
fn explained(
    ctx: &context::Seed,
    methods: &[Method],
    erm: &erm::Erm,
    lm: &lm::Lm,
    captions: &lm::CaptionData,
    outputs: &mut report::Outputs,
) -> Result<()> {
    let mut classifier = erm.classifier(ctx.exp().device)?;
    classifier.vs.freeze();
    let vit = &classifier.model;
    let translator = translator::run(ctx, erm, vit, lm, captions)?;
    let explained = explain::run(ctx, erm, &translator, vit, lm)?;
    clouds::run(ctx, &explained)?;
    let finetuned: Vec<Method> = methods
        .iter()
        .copied()
        .filter(|m| m.masked_finetune().is_some())
        .collect();
    if finetuned.is_empty() {
        return Ok(());
    }
    let flags = flags::run(ctx, &explained, erm, vit)?;
    outputs.flags.push(flags.summary()?);
    let masks = masks::run(ctx, &explained, &flags, erm, vit, &translator, lm)?;
    outputs.masks.push(report::SeedMasks {
        seed: ctx.seed,
        summaries: masks.summary()?,
        sanity: masks.sanity()?,
    });
    for method in finetuned {
        let done = finetune::run(ctx, method, erm, &flags, &masks)?;
        outputs.rows.extend(done.results()?);
    }
    Ok(())
}
