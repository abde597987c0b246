//! `texplain run-plan`: a local executor of a plan's units ([`super::plan`]), in the manner of `make -j N`: up to
//! `jobs` worker processes at once, each running one unit (`texplain run --unit ID`, built by the caller), a unit
//! started only once every unit it reads has finished, ready units taken in plan order (so wave by wave). The
//! executor never starts a unit twice; the unit locks ([`super::lock::UnitLock`]) keep other executors or manual
//! runs on the same directory from building it at the same time. On the first failed unit it starts nothing more,
//! waits for the running ones and fails naming the unit.
use anyhow::{bail, Context, Result};
use std::process::{Child, Command};
use std::time::Duration;

use super::plan::Unit;

/// Where a unit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    Running,
    Done,
}

/// The next unit to start: the first waiting one whose needs all finished.
fn ready(units: &[Unit], state: &[State]) -> Option<usize> {
    (0..units.len()).find(|&i| {
        state[i] == State::Waiting && units[i].needs.iter().all(|&n| state[n] == State::Done)
    })
}

/// Runs every unit through `command(unit id)`, at most `jobs` at once; returns the ids in the order they finished.
pub fn run(units: &[Unit], jobs: usize, command: impl Fn(&str) -> Command) -> Result<Vec<String>> {
    if jobs == 0 {
        bail!("--jobs: must be at least 1");
    }
    let mut state = vec![State::Waiting; units.len()];
    let mut running: Vec<(usize, Child)> = Vec::new();
    let mut finished = Vec::new();
    let mut failed: Option<String> = None;
    loop {
        while failed.is_none() && running.len() < jobs {
            let Some(next) = ready(units, &state) else {
                break;
            };
            let id = units[next].id();
            tracing::info!(unit = %id, "starting");
            let child = command(&id)
                .spawn()
                .with_context(|| format!("starting the worker of unit {id}"))?;
            state[next] = State::Running;
            running.push((next, child));
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        let mut still = Vec::with_capacity(running.len());
        for (i, mut child) in running {
            match child.try_wait() {
                Ok(None) => still.push((i, child)),
                Ok(Some(status)) if status.success() => {
                    state[i] = State::Done;
                    finished.push(units[i].id());
                }
                Ok(Some(status)) => {
                    failed
                        .get_or_insert_with(|| format!("unit {} failed ({status})", units[i].id()));
                }
                Err(err) => {
                    failed.get_or_insert_with(|| format!("unit {}: {err}", units[i].id()));
                }
            }
        }
        running = still;
    }
    if let Some(why) = failed {
        bail!("{why}; the units that finished are kept, rerun to go on");
    }
    if let Some(i) = state.iter().position(|&s| s != State::Done) {
        bail!(
            "unit {} never became ready (its needs did not finish)",
            units[i].id()
        );
    }
    Ok(finished)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::plan::Work;

    fn unit(seed: u64, needs: &[usize]) -> Unit {
        Unit {
            work: Work::Data,
            seed: Some(seed),
            needs: needs.to_vec(),
        }
    }

    #[test]
    fn units_start_after_their_needs_and_a_failure_stops_the_rest() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("log");
        // 0 <- 1, 0 <- 2, {1, 2} <- 3: each worker appends its id on start and end.
        let units = [unit(0, &[]), unit(1, &[0]), unit(2, &[0]), unit(3, &[1, 2])];
        let shell = |id: &str| {
            let mut c = Command::new("sh");
            c.arg("-c").arg(format!(
                "echo start {id} >> {0}; sleep 0.2; echo end {id} >> {0}",
                log.display()
            ));
            c
        };
        let done = run(&units, 2, shell).unwrap();
        assert_eq!(done.len(), 4);
        assert_eq!(done[0], "seed-0/data");
        assert_eq!(done[3], "seed-3/data");
        let text = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let at = |l: &str| lines.iter().position(|x| *x == l).unwrap();
        assert!(at("end seed-0/data") < at("start seed-1/data"));
        assert!(at("end seed-0/data") < at("start seed-2/data"));
        // With two workers, 1 and 2 run at once.
        assert!(at("start seed-2/data") < at("end seed-1/data"));
        assert!(at("end seed-1/data") < at("start seed-3/data"));
        assert!(at("end seed-2/data") < at("start seed-3/data"));

        let failing = |id: &str| {
            let mut c = Command::new("sh");
            c.arg("-c").arg(if id == "seed-1/data" {
                "exit 3"
            } else {
                "true"
            });
            c
        };
        let err = run(&units, 1, failing).unwrap_err().to_string();
        assert!(err.contains("unit seed-1/data failed"), "{err}");
    }
}
