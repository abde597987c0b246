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
//!                   (explain::run_shard     seed-<s>/explain#<i>of<N>/ a plan's shards, merged by explain::run)
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
//! The list of units above lives in one place, [`plan::units`] (each stage with the units it reads): [`run`] walks
//! all of it, [`run_unit`] (`texplain run --unit`) one unit's upstream closure, `texplain plan` writes it as waves,
//! and the local executor ([`executor`], `texplain run-plan`) and the cluster files ([`emit`]) run its units
//! apart. Which stages run follows from `mitigation.methods`: the masked fine-tunings
//! ([`crate::methods::Method::masked_finetune`]) after the explanation stages, each baseline by its method, all four
//! on one skeleton ([`retrain`]: key, starting point, evaluation, results).
//! A config with an `analysis` section runs that analysis' flow instead ([`in9`]: the ImageNet-9 / Background
//! Challenge analysis), on the same run directory conventions and stage cache.
//! Every stage is keyed by a hash of what it was computed from ([`stage::StageKey`]: settings and the content
//! digests of the stages it reads), built in `<stage>.<host>-<pid>.partial/` and renamed into place, so a rerun
//! skips finished stages and redoes interrupted ones. One whole run at a time writes into a run directory ([`lock::RunLock`]), or
//! any number of unit runs, one per unit ([`lock::UnitLock`]: a lease recording host, pid and job, refreshed while it
//! builds, so workers on several hosts of a shared filesystem can run units side by side), and
//! `run.json` says whether the run finished or failed, and with which error.
pub mod clouds;
pub mod context;
pub mod dfr;
pub mod emit;
pub mod erm;
pub mod executor;
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
pub mod plan;
pub mod pretrain;
pub mod regime;
pub mod report;
pub mod report_html;
pub mod retrain;
pub mod stage;
pub mod translator;

use anyhow::{bail, Context, Result};

use crate::config::Experiment;
use crate::methods::Method;
use crate::runtime::{device_name, set_threads};
use crate::util::{write_atomic, write_json};
use context::{Run, Splits};
use stage::{RunInfo, Stage};

/// Runs an experiment end to end (resuming finished stages) and prints its Table-1 layout.
///
/// The one writer of each run-level file: the serial run writes `config.resolved.yaml` and `run.json` under the
/// whole-run lock, which never coexists with unit runs ([`lock::RunLock::acquire`]). Of a run driven by units,
/// [`plan::prepare`] writes `config.resolved.yaml` and the `report` unit (or the `analysis` unit) writes `run.json`,
/// `results.csv`, `table.md` and `report.html`; every other unit writes only its own stage folder.
pub fn run(exp: &Experiment) -> Result<()> {
    run_whole(exp, true)
}

/// [`run`]; `write_config`: whether this run writes `config.resolved.yaml` (not the `analysis` unit, whose plan
/// wrote it).
fn run_whole(exp: &Experiment, write_config: bool) -> Result<()> {
    exp.preflight()?;
    let cfg = &exp.config;
    set_threads(cfg.threads);
    let out = &exp.out_dir;
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating the run directory {}", out.display()))?;
    let _lock = lock::RunLock::acquire(out)?;
    if write_config {
        write_atomic(&out.join("config.resolved.yaml"), exp.resolved_yaml()?)?;
    }
    let mut info = RunInfo::start(device_name(exp.device), cfg.seeds.clone());
    write_json(&out.join("run.json"), &info)?;

    let result = run_stages(exp);
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

/// Every unit of the plan in order ([`plan::units`]: every stage, then the report); returns the Table-1 layout.
fn run_stages(exp: &Experiment) -> Result<String> {
    let mut walk = Walk::new(exp);
    for unit in &plan::units(exp, 1) {
        walk.step(unit)?;
    }
    walk.table.context("the plan has no report unit")
}

/// `texplain run --unit ID`: runs one unit of the plan ([`plan::units`]) and nothing else. The units it reads are
/// walked first with building switched off ([`stage::set_may_build`]): each must have finished, or the run stops
/// naming it before writing anything. Then the unit takes its lock ([`lock::UnitLock`]; a second process on the
/// same unit waits, then finds it finished) and is built, or skipped when it finished earlier. The `report` unit
/// writes `run.json` and `report.html` too; the `analysis` unit is the whole [`run`]. No unit writes
/// `config.resolved.yaml` ([`plan::prepare`] does).
pub fn run_unit(exp: &Experiment, id: &str) -> Result<()> {
    let units = plan::units(exp, plan::explain_shards(&exp.out_dir)?);
    let target = plan::find(&units, id)?;
    if units[target].work == plan::Work::Analysis {
        return run_whole(exp, false);
    }
    exp.preflight()?;
    let cfg = &exp.config;
    set_threads(cfg.threads);
    let wanted = plan::closure(&units, target);
    let mut walk = Walk::new(exp);
    for (i, unit) in units.iter().enumerate().take(target) {
        if !wanted[i] {
            continue;
        }
        stage::set_may_build(false);
        let walked = walk.step(unit);
        stage::set_may_build(true);
        if let Err(err) = walked {
            let upstream = unit.id();
            if err.chain().any(|e| e.is::<stage::NotFinished>()) {
                bail!(
                    "unit {id} needs unit {upstream}, which has not finished ({err:#}); run it first: texplain run \
                     CONFIG --unit {upstream}"
                );
            }
            return Err(err).with_context(|| format!("reading unit {upstream}"));
        }
    }
    let out = &exp.out_dir;
    std::fs::create_dir_all(out)
        .with_context(|| format!("creating the run directory {}", out.display()))?;
    let _lock = lock::UnitLock::acquire(out, id)?;
    let info = RunInfo::start(device_name(exp.device), cfg.seeds.clone());
    walk.step(&units[target])
        .with_context(|| format!("unit {id}"))?;
    if let Some(table) = &walk.table {
        let info = RunInfo {
            finished_unix: Some(stage::unix_now()),
            status: "finished".into(),
            ..info
        };
        write_json(&out.join("run.json"), &info)?;
        println!("{table}");
        println!("report: {}", report_html::write(out)?.display());
    }
    Ok(())
}

/// What one seed's units returned so far.
struct SeedOutputs {
    seed: u64,
    erm: Option<erm::Erm>,
    /// ERM's classifier, frozen: what the explanation stages read.
    classifier: Option<erm::Classifier>,
    translator: Option<translator::TrainedTranslator>,
    explained: Option<explain::Explained>,
    /// The finished explain shards walked so far (a plan with `--explain-shards`), in shard order.
    explain_shards: Vec<std::path::PathBuf>,
    flags: Option<flags::Flags>,
    masks: Option<masks::Masks>,
}

impl SeedOutputs {
    fn new(seed: u64) -> Self {
        Self {
            seed,
            erm: None,
            classifier: None,
            translator: None,
            explained: None,
            explain_shards: Vec::new(),
            flags: None,
            masks: None,
        }
    }
}

/// The typed outputs of the units walked so far, and the report's inputs.
struct Walk<'a> {
    exp: &'a Experiment,
    /// `Some(None)` without a `pretrain` section.
    pretrained: Option<Option<pretrain::Pretrained>>,
    run: Option<Run<'a>>,
    captions: Option<lm::CaptionData>,
    lm: Option<lm::Lm>,
    seed: Option<SeedOutputs>,
    outputs: report::Outputs,
    /// The Table-1 layout, once the report (or the analysis) ran.
    table: Option<String>,
}

/// The output of a unit walked earlier; an error when the plan did not walk it first (its needs are wrong).
fn got<'o, T>(output: &'o Option<T>, unit: &str) -> Result<&'o T> {
    output
        .as_ref()
        .with_context(|| format!("the plan read unit {unit} before walking it"))
}

impl<'a> Walk<'a> {
    fn new(exp: &'a Experiment) -> Self {
        Self {
            exp,
            pretrained: exp.config.pretrain.is_none().then_some(None),
            run: None,
            captions: None,
            lm: None,
            seed: None,
            outputs: report::Outputs::default(),
            table: None,
        }
    }

    /// Runs (or finds finished) one unit, from the outputs of the units it reads.
    fn step(&mut self, unit: &plan::Unit) -> Result<()> {
        let Walk {
            exp,
            pretrained,
            run,
            captions,
            lm,
            seed: seeded,
            outputs,
            table,
        } = self;
        let exp: &'a Experiment = exp;
        let stage = match unit.work {
            plan::Work::Data => {
                *run = Some(Run::new(exp, Splits::load(exp)?));
                if exp.explains() {
                    *captions = Some(lm::CaptionData::load(exp)?);
                }
                return Ok(());
            }
            plan::Work::Report => {
                *table = Some(report::run(exp, outputs)?);
                return Ok(());
            }
            plan::Work::Analysis => {
                *table = Some(in9::run_stages(exp)?);
                return Ok(());
            }
            plan::Work::Stage(stage) => stage,
            plan::Work::ExplainShard { .. } => Stage::Explain,
        };
        let Some(seed) = unit.seed else {
            match stage {
                Stage::Pretrain => *pretrained = Some(pretrain::run(exp)?),
                Stage::Lm => *lm = Some(lm::run(exp, got(captions, "data")?)?),
                other => bail!("{} is not a stage shared by the seeds", other.name()),
            }
            return Ok(());
        };
        let pre = got(pretrained, "pretrain")?.as_ref();
        let ctx = got(run, "data")?.seed(seed);
        if seeded.as_ref().is_none_or(|s| s.seed != seed) {
            *seeded = Some(SeedOutputs::new(seed));
        }
        let Some(s) = seeded.as_mut() else {
            unreachable!("set just above")
        };
        let erm = "erm";
        if matches!(
            stage,
            Stage::Translator | Stage::Explain | Stage::Flags | Stage::Masks
        ) && s.classifier.is_none()
        {
            let mut classifier = got(&s.erm, erm)?.classifier(exp.device)?;
            classifier.vs.freeze();
            s.classifier = Some(classifier);
        }
        let vit = || got(&s.classifier, erm).map(|c| &c.model);
        if let plan::Work::ExplainShard { index, of } = unit.work {
            let done = explain::run_shard(
                &ctx,
                got(&s.erm, erm)?,
                got(&s.translator, "translator")?,
                vit()?,
                got(lm, "lm")?,
                (index, of),
            )?;
            s.explain_shards.push(done.dir);
            return Ok(());
        }
        match stage {
            Stage::Erm => {
                let done = erm::run(&ctx, pre)?;
                outputs.rows.extend(done.results()?);
                s.erm = Some(done);
            }
            Stage::Regime => outputs
                .regime
                .push(regime::run(&ctx, got(&s.erm, erm)?, pre)?),
            Stage::Translator => {
                s.translator = Some(translator::run(
                    &ctx,
                    got(&s.erm, erm)?,
                    vit()?,
                    got(lm, "lm")?,
                    got(captions, "data")?,
                )?)
            }
            Stage::Explain => {
                s.explained = Some(explain::run(
                    &ctx,
                    got(&s.erm, erm)?,
                    got(&s.translator, "translator")?,
                    vit()?,
                    got(lm, "lm")?,
                    &s.explain_shards,
                )?)
            }
            Stage::Clouds => {
                clouds::run(&ctx, got(&s.explained, "explain")?)?;
            }
            Stage::Flags => {
                let done = flags::run(
                    &ctx,
                    got(&s.explained, "explain")?,
                    got(&s.erm, erm)?,
                    vit()?,
                )?;
                outputs.flags.push(done.summary()?);
                s.flags = Some(done);
            }
            Stage::Masks => {
                let done = masks::run(
                    &ctx,
                    got(&s.explained, "explain")?,
                    got(&s.flags, "flags")?,
                    got(&s.erm, erm)?,
                    vit()?,
                    got(&s.translator, "translator")?,
                    got(lm, "lm")?,
                )?;
                outputs.masks.push(report::SeedMasks {
                    seed,
                    summaries: done.summary()?,
                    sanity: done.sanity()?,
                });
                s.masks = Some(done);
            }
            Stage::Method(method) => {
                let rows = match method {
                    Method::Erm => bail!("erm is its own stage, not a method stage"),
                    Method::Random
                    | Method::Texplain
                    | Method::Oracle
                    | Method::OracleRandom
                    | Method::Frame
                    | Method::ObjectComplement
                    | Method::OracleObject
                    | Method::OracleObjectBalanced
                    | Method::TexplainLent
                    | Method::RandomLent => finetune::run(
                        &ctx,
                        method,
                        got(&s.erm, erm)?,
                        got(&s.flags, "flags")?,
                        got(&s.masks, "masks")?,
                    )?
                    .results()?,
                    Method::Masktune => masktune::run(&ctx, got(&s.erm, erm)?)?.results()?,
                    Method::Jtt => jtt::run(&ctx, pre)?.results()?,
                    Method::Dfr => dfr::run(&ctx, got(&s.erm, erm)?)?.results()?,
                    Method::Groupdro => groupdro::run(&ctx, pre)?.results()?,
                };
                outputs.rows.extend(rows);
            }
            Stage::Pretrain | Stage::Lm | Stage::Predictions | Stage::Summary => {
                bail!("{} is not a stage of a seed", stage.name())
            }
        }
        Ok(())
    }
}
