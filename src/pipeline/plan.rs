//! The work units of a run (`texplain plan`, `texplain run --unit`, `texplain run-plan`): the stages that
//! `texplain run` walks, in its order, each with the units it reads, grouped into waves by dependency level. The
//! shape follows a build system's plan (a DAG of named targets, as `make -n` or Ninja's `-t commands` print it):
//! units are *named* (`seed-3/explain`, the stage's folder), not keyed, because a stage's key chains the content
//! digests of its upstream stages, which exist only once those have run.
//!
//! [`units`] is the one list of the run's stages: [`super::run`] walks it for a whole run and
//! [`super::run_unit`] walks one unit's upstream closure ([`closure`]), so the plan cannot drift from what runs.
//! Besides the stages there are two units of bookkeeping: `data` (generates the data, caption and corpus folders
//! the stages read, so two workers never generate one folder) and `report` (checks every stage finished and writes
//! `results.csv`, `table.md`, `run.json`, `report.html`). A config with an `analysis` section is one unit,
//! `analysis`, the whole ImageNet-9 flow. With `--explain-shards N` each seed's explain stage is N shard units
//! (`seed-<s>/explain#<i>of<N>`, each the sentences of its chunks of images) and the `seed-<s>/explain` unit merges
//! them in dataset order: the explain stage reseeds per chunk ([`super::explain::CHUNK_IMAGES`]), so its files are
//! the same bytes, and its key the same, for every N; the plan records N (`explain_shards`, left out when 1) and a
//! unit run reads it from there.
//!
//! `plan/plan.json` and `plan/wave-<k>.txt` (one unit id a line, the array index is the line number) are written
//! together, with `config.resolved.yaml`, by [`prepare`] and read by [`read`] and [`read_wave`].
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use super::stage::Stage;
use crate::config::estimate::{explain_needs, LmShape};
use crate::config::Experiment;
use crate::methods::Method;
use crate::util::write_atomic;

/// What a unit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Generate the data, caption and corpus folders the stages read (when configured and missing).
    Data,
    /// One stage of the stage cache, in `<run>/` (shared) or `<run>/seed-<s>/`.
    Stage(Stage),
    /// Shard `index` of `of` of a seed's explain stage (`seed-<s>/explain#<index>of<of>/`, a stage of its own): the
    /// sentences of its chunks of images ([`super::explain::shard_chunks`]), merged by the explain stage.
    ExplainShard { index: usize, of: usize },
    /// Check every stage finished and write the run's tables, `run.json` and `report.html`.
    Report,
    /// The whole ImageNet-9 analysis flow (`pipeline::in9`), one unit.
    Analysis,
}

impl Work {
    fn name(self) -> String {
        match self {
            Work::Data => "data".into(),
            Work::Stage(stage) => stage.name().into(),
            Work::ExplainShard { index, of } => shard_name(index, of),
            Work::Report => "report".into(),
            Work::Analysis => "analysis".into(),
        }
    }

    /// Whether the unit runs a model (and so wants the accelerator when the config asks for one).
    fn runs_a_model(self) -> bool {
        matches!(self, Work::Analysis | Work::ExplainShard { .. })
            || matches!(self, Work::Stage(s) if !matches!(s, Stage::Clouds))
    }
}

/// The folder (and unit name) of shard `index` of `of` of the explain stage: `explain#<index>of<of>`.
pub fn shard_name(index: usize, of: usize) -> String {
    format!("{}#{index}of{of}", Stage::Explain.name())
}

/// One unit of the plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    pub work: Work,
    pub seed: Option<u64>,
    /// Indices (into the plan's units) of the units it reads directly; always earlier units.
    pub needs: Vec<usize>,
}

impl Unit {
    /// `data`, `lm`, `seed-3/explain`, ...: the stage's folder relative to the run directory.
    pub fn id(&self) -> String {
        match self.seed {
            Some(seed) => format!("seed-{seed}/{}", self.work.name()),
            None => self.work.name(),
        }
    }
}

/// The units of `exp` in the order `texplain run` walks them; with `explain_shards` above 1 each seed's explain
/// stage is that many shard units and the explain unit merges them (`texplain plan --explain-shards N`).
pub fn units(exp: &Experiment, explain_shards: usize) -> Vec<Unit> {
    let mut plan = Plan::default();
    if exp.config.analysis.is_some() {
        plan.push(Work::Analysis, None, &[]);
        return plan.units;
    }
    // The pretrain stage reads (and generates) its own corpus, before the data is loaded.
    let pretrain = exp
        .config
        .pretrain
        .is_some()
        .then(|| plan.push(Work::Stage(Stage::Pretrain), None, &[]));
    let data = plan.push(Work::Data, None, &[]);
    // ERM, JTT, GroupDRO start from the pretrained classifier when there is one.
    let start: Vec<usize> = [pretrain, Some(data)].into_iter().flatten().collect();
    let methods = exp.methods();
    let lm = exp
        .explains()
        .then(|| plan.push(Work::Stage(Stage::Lm), None, &[data]));
    let masked: Vec<Method> = methods
        .iter()
        .copied()
        .filter(|m| m.masked_finetune().is_some())
        .collect();
    for &seed in &exp.config.seeds {
        let s = Some(seed);
        let erm = plan.push(Work::Stage(Stage::Erm), s, &start);
        let mut with_erm = start.clone();
        with_erm.push(erm);
        plan.push(Work::Stage(Stage::Regime), s, &with_erm);
        if let Some(lm) = lm {
            let translator = plan.push(Work::Stage(Stage::Translator), s, &[data, erm, lm]);
            let mut reads = vec![data, erm, translator, lm];
            if explain_shards > 1 {
                for index in 0..explain_shards {
                    let of = explain_shards;
                    reads.push(plan.push(Work::ExplainShard { index, of }, s, &reads[..4]));
                }
            }
            let explain = plan.push(Work::Stage(Stage::Explain), s, &reads);
            plan.push(Work::Stage(Stage::Clouds), s, &[explain]);
            if !masked.is_empty() {
                let flags = plan.push(Work::Stage(Stage::Flags), s, &[data, explain, erm]);
                let masks = plan.push(
                    Work::Stage(Stage::Masks),
                    s,
                    &[data, explain, flags, erm, translator, lm],
                );
                for &method in &masked {
                    plan.push(
                        Work::Stage(Stage::Method(method)),
                        s,
                        &[data, erm, flags, masks],
                    );
                }
            }
        }
        for &method in &methods {
            let needs: &[usize] = match method {
                Method::Masktune | Method::Dfr => &[data, erm],
                Method::Jtt | Method::Groupdro => &start,
                // ERM above, the masked fine-tunings with the explanations.
                Method::Erm
                | Method::Random
                | Method::Texplain
                | Method::Oracle
                | Method::OracleRandom
                | Method::Frame
                | Method::ObjectComplement
                | Method::OracleObject
                | Method::OracleObjectBalanced
                | Method::TexplainLent
                | Method::RandomLent => continue,
            };
            plan.push(Work::Stage(Stage::Method(method)), s, needs);
        }
    }
    let all: Vec<usize> = (0..plan.units.len()).collect();
    plan.push(Work::Report, None, &all);
    plan.units
}

#[derive(Default)]
struct Plan {
    units: Vec<Unit>,
}

impl Plan {
    fn push(&mut self, work: Work, seed: Option<u64>, needs: &[usize]) -> usize {
        self.units.push(Unit {
            work,
            seed,
            needs: needs.to_vec(),
        });
        self.units.len() - 1
    }
}

/// The wave of each unit: 0 without needs, else one more than the latest wave it needs.
pub fn waves(units: &[Unit]) -> Vec<usize> {
    let mut wave = Vec::with_capacity(units.len());
    for unit in units {
        let w = unit.needs.iter().map(|&n| wave[n] + 1).max().unwrap_or(0);
        wave.push(w);
    }
    wave
}

/// The index of the unit `id`, or an error listing the plan's units.
pub fn find(units: &[Unit], id: &str) -> Result<usize> {
    units.iter().position(|u| u.id() == id).with_context(|| {
        let ids: Vec<String> = units.iter().map(Unit::id).collect();
        format!(
            "--unit {id}: the plan of this config has no such unit (it has {})",
            ids.join(", ")
        )
    })
}

/// Whether each unit is `target` or one it reads, directly or not: what [`super::run_unit`] walks.
pub fn closure(units: &[Unit], target: usize) -> Vec<bool> {
    let mut wanted = vec![false; units.len()];
    wanted[target] = true;
    for i in (0..=target).rev() {
        if wanted[i] {
            for &n in &units[i].needs {
                wanted[n] = true;
            }
        }
    }
    wanted
}

/// One unit as `plan.json` records it.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UnitRecord {
    pub id: String,
    pub stage: String,
    pub seed: Option<u64>,
    pub wave: usize,
    pub needs: Vec<String>,
    pub gpu: bool,
    /// The explain stage's sampling memory (KV cache of one batch, `config::estimate`); `null` where there is no
    /// estimate.
    pub memory_bytes: Option<u64>,
}

/// `plan/plan.json`.
#[derive(Serialize, Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlanRecord {
    pub name: String,
    pub waves: usize,
    /// The shards of each seed's explain stage (`--explain-shards`); left out when 1.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub explain_shards: usize,
    pub units: Vec<UnitRecord>,
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// The explain shards of the plan in the run directory `run` ([`PlanRecord::explain_shards`]); 1 without a plan
/// (a unit run of an unplanned directory, or the serial run).
pub fn explain_shards(run: &Path) -> Result<usize> {
    if !dir(run).join("plan.json").exists() {
        return Ok(1);
    }
    Ok(read(run)?.explain_shards)
}

/// The plan of `exp` as `plan.json` records it, with `explain_shards` shards of each explain stage (at least 1).
pub fn record(exp: &Experiment, explain_shards: usize) -> Result<PlanRecord> {
    if explain_shards == 0 {
        bail!("--explain-shards: must be at least 1");
    }
    let units = units(exp, explain_shards);
    let wave = waves(&units);
    let cfg = &exp.config;
    // The config's device, not the resolved one: the plan is the same on every machine.
    let gpu = cfg.device != "cpu";
    let explain_memory = {
        let shape = match &cfg.language_model.pretrained {
            None => LmShape::pretrained_here(&cfg.language_model),
            Some(_) => LmShape::SMALLEST,
        };
        let needs = explain_needs(&cfg.explain, cfg.translator.prefix_len, &shape, None);
        u64::try_from(needs.kv_cache_bytes).ok()
    };
    let records = units
        .iter()
        .zip(&wave)
        .map(|(unit, &w)| UnitRecord {
            id: unit.id(),
            stage: match unit.work {
                Work::ExplainShard { .. } => Stage::Explain.name().to_string(),
                other => other.name(),
            },
            seed: unit.seed,
            wave: w,
            needs: unit.needs.iter().map(|&n| units[n].id()).collect(),
            gpu: gpu && unit.work.runs_a_model(),
            memory_bytes: match unit.work {
                Work::Stage(Stage::Explain) if explain_shards == 1 => explain_memory,
                Work::ExplainShard { .. } => explain_memory,
                _ => None,
            },
        })
        .collect();
    Ok(PlanRecord {
        name: cfg.name.clone(),
        waves: wave.iter().max().map_or(0, |w| w + 1),
        explain_shards,
        units: records,
    })
}

/// The plan's folder in a run directory.
pub fn dir(run: &Path) -> PathBuf {
    run.join("plan")
}

fn wave_file(run: &Path, wave: usize) -> PathBuf {
    dir(run).join(format!("wave-{wave}.txt"))
}

/// The lines of `wave-<k>.txt`: the ids of the wave's units, in plan order.
pub fn wave_lists(plan: &PlanRecord) -> Vec<String> {
    (0..plan.waves)
        .map(|w| {
            plan.units
                .iter()
                .filter(|u| u.wave == w)
                .map(|u| format!("{}\n", u.id))
                .collect()
        })
        .collect()
}

/// The files of the plan of `exp` (`plan/plan.json`, `plan/wave-<k>.txt`) and `config.resolved.yaml`, by path.
fn plan_files(exp: &Experiment, plan: &PlanRecord) -> Result<Vec<(PathBuf, String)>> {
    let run = &exp.out_dir;
    let mut json = serde_json::to_string_pretty(plan)?;
    json.push('\n');
    let mut files = vec![
        (dir(run).join("plan.json"), json),
        (run.join("config.resolved.yaml"), exp.resolved_yaml()?),
    ];
    for (w, list) in wave_lists(plan).into_iter().enumerate() {
        files.push((wave_file(run, w), list));
    }
    Ok(files)
}

/// Plans `exp` and writes the plan into its run directory with `config.resolved.yaml` beside it (the CONFIG of the
/// units' commands and of the emitted scripts); returns the plan. `texplain plan` and `texplain run-plan` start here.
///
/// Of a run driven by units, this is the one writer of `config.resolved.yaml` (a unit run never writes it; the
/// serial `texplain run` writes its own under the whole-run lock). A file that already holds the same bytes is
/// left as it is, so planning again beside running units changes nothing; a plan or config that differs is not
/// written while unit runs hold leases in the directory ([`super::lock::live_units`]).
pub fn prepare(exp: &Experiment, explain_shards: usize) -> Result<PlanRecord> {
    let plan = record(exp, explain_shards)?;
    let files = plan_files(exp, &plan)?;
    let changed: Vec<&(PathBuf, String)> = files
        .iter()
        .filter(|(path, text)| std::fs::read(path).ok().as_deref() != Some(text.as_bytes()))
        .collect();
    if !changed.is_empty() {
        let live = super::lock::live_units(&exp.out_dir, super::lock::LeaseTimes::from_env()?);
        if !live.is_empty() {
            bail!(
                "{}: unit runs are working on its current plan ({}); {} would change under them: plan into another \
                 --out, or wait for them",
                exp.out_dir.display(),
                live.join(", "),
                changed[0].0.display()
            );
        }
    }
    for (path, text) in changed {
        write_atomic(path, text)?;
    }
    Ok(plan)
}

/// Reads `plan/plan.json` of the run directory `run`.
pub fn read(run: &Path) -> Result<PlanRecord> {
    let path = dir(run).join("plan.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (write the plan first: texplain plan CONFIG --out {})",
            path.display(),
            run.display()
        )
    })?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The unit at line `index` of `plan/wave-<wave>.txt` (the array task of a scheduler).
pub fn read_wave(run: &Path, wave: usize, index: usize) -> Result<String> {
    let path = wave_file(run, wave);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "--wave {wave}: reading {} (write the plan first: texplain plan CONFIG)",
            path.display()
        )
    })?;
    let ids: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    match ids.get(index) {
        Some(id) => Ok(id.trim().to_string()),
        None => bail!(
            "--index {index}: {} lists {} unit(s) (indices 0 to {})",
            path.display(),
            ids.len(),
            ids.len().saturating_sub(1)
        ),
    }
}

/// What `texplain plan` prints: each wave with its units, and the counts.
pub fn summary(plan: &PlanRecord) -> String {
    let mut out = String::new();
    for (w, list) in wave_lists(plan).iter().enumerate() {
        let ids: Vec<&str> = list.lines().collect();
        out.push_str(&format!(
            "wave {w}: {} unit(s): {}\n",
            ids.len(),
            ids.join(" ")
        ));
    }
    let gpu = plan.units.iter().filter(|u| u.gpu).count();
    out.push_str(&format!(
        "{} unit(s) in {} wave(s), {gpu} on the accelerator\n",
        plan.units.len(),
        plan.waves
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(needs: &[usize]) -> Unit {
        Unit {
            work: Work::Data,
            seed: None,
            needs: needs.to_vec(),
        }
    }

    #[test]
    fn waves_are_dependency_levels_and_the_closure_follows_needs() {
        // 0 <- 1 <- 3, 0 <- 2, 4 reads 2 and 3.
        let units = [unit(&[]), unit(&[0]), unit(&[0]), unit(&[1]), unit(&[2, 3])];
        assert_eq!(waves(&units), vec![0, 1, 1, 2, 3]);
        assert_eq!(closure(&units, 3), vec![true, true, false, true, false]);
        assert_eq!(closure(&units, 2), vec![true, false, true, false, false]);
        assert_eq!(closure(&units, 4), vec![true; 5]);
    }

    #[test]
    fn ids_are_stage_folders() {
        let u = Unit {
            work: Work::Stage(Stage::Method(Method::Texplain)),
            seed: Some(3),
            needs: vec![],
        };
        assert_eq!(u.id(), "seed-3/texplain");
        assert_eq!(unit(&[]).id(), "data");
    }
}
