//! `texplain emit slurm|k8s RUN_DIR`: a plan's waves ([`super::plan`]) as a cluster scheduler's jobs. Slurm: one
//! `sbatch` job array per wave (`--array=0-(n-1)%P`, `--requeue`, `srun texplain run CONFIG --wave K`, the array
//! index from `SLURM_ARRAY_TASK_ID`), chained by a `submit.sh` with `--dependency=afterok`, in the manner of
//! Hydra's submitit launcher (one array per sweep). Kubernetes: one Indexed Job per wave (`completionMode:
//! Indexed`, `backoffLimitPerIndex`, the index from `JOB_COMPLETION_INDEX`) and a `submit.sh` that applies each wave
//! and waits for it to complete. texplain only plans and runs units; the scheduler schedules. Pure: the files are
//! returned as (name, text), the caller writes them.
use serde::Serialize;
use std::path::Path;

use super::plan::PlanRecord;

/// What a user edits for their cluster.
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    /// The `texplain` binary (or command) on the cluster's nodes.
    pub texplain: String,
    /// The config every task runs (by default the run's `config.resolved.yaml`).
    pub config: String,
    /// The run directory, as the tasks see it (on the shared filesystem).
    pub run: String,
    /// The folder tasks start in (relative data paths of the config resolve from it).
    pub workdir: String,
    /// Tasks of one wave running at once.
    pub parallel: usize,
    /// Memory of a task without an estimate, GiB; raised to a unit's estimate where it has one.
    pub mem_gib: u64,
    /// CPU cores of a task (and its thread count's upper bound).
    pub cpus: usize,
    pub partition: Option<String>,
    pub account: Option<String>,
    /// Kubernetes: the container image holding `texplain`.
    pub image: String,
    /// Kubernetes: the PersistentVolumeClaim (ReadWriteMany) holding the run directory and the data, mounted at
    /// `mount`.
    pub volume: String,
    pub mount: String,
}

/// One wave: its index, unit count, whether a unit wants the accelerator, and the memory to request (GiB).
struct Wave {
    index: usize,
    units: usize,
    gpu: bool,
    mem_gib: u64,
}

const GIB: u64 = 1 << 30;

fn waves(plan: &PlanRecord, cluster: &Cluster) -> Vec<Wave> {
    (0..plan.waves)
        .map(|index| {
            let units: Vec<_> = plan.units.iter().filter(|u| u.wave == index).collect();
            let estimate = units
                .iter()
                .filter_map(|u| u.memory_bytes)
                .max()
                .map_or(0, |b| b.div_ceil(GIB));
            Wave {
                index,
                units: units.len(),
                gpu: units.iter().any(|u| u.gpu),
                mem_gib: cluster.mem_gib.max(cluster.mem_gib / 2 + estimate),
            }
        })
        .collect()
}

/// A Kubernetes object name: lower-case letters, digits and `-` (RFC 1123).
fn k8s_name(name: &str) -> String {
    let mut out: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    out = out.trim_matches('-').to_string();
    if out.is_empty() {
        "run".to_string()
    } else {
        out
    }
}

/// The Job of wave `k`: `texplain-<name>-wave-<k>`, the name shortened so that the whole stays within the 63
/// characters the API server allows a Job (its name becomes the `job-name` label of its pods).
fn job_name(name: &str, k: usize) -> String {
    let suffix = format!("-wave-{k}");
    let room = 63 - "texplain-".len() - suffix.len();
    let name = name[..name.len().min(room)].trim_end_matches('-');
    format!("texplain-{name}{suffix}")
}

/// A word quoted for the shell (single quotes).
fn sh(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The Slurm files: `wave-<k>.sbatch` per wave and `submit.sh`.
pub fn slurm(plan: &PlanRecord, cluster: &Cluster) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let logs = Path::new(&cluster.run).join("slurm").join("logs");
    let mut submit = String::from(
        "#!/bin/bash\n# Submits the plan's waves as Slurm job arrays, each wave after the previous one succeeded.\n\
         set -euo pipefail\ncd \"$(dirname \"$0\")\"\nmkdir -p logs\n",
    );
    for wave in waves(plan, cluster) {
        let k = wave.index;
        let mut s = String::from("#!/bin/bash\n");
        s += &format!(
            "#SBATCH --job-name=texplain-{}-w{k}\n",
            k8s_name(&plan.name)
        );
        s += &format!(
            "#SBATCH --array=0-{}%{}\n",
            wave.units - 1,
            cluster.parallel.max(1)
        );
        s += "#SBATCH --requeue\n";
        if let Some(p) = &cluster.partition {
            s += &format!("#SBATCH --partition={p}\n");
        }
        if let Some(a) = &cluster.account {
            s += &format!("#SBATCH --account={a}\n");
        }
        if wave.gpu {
            s += "#SBATCH --gres=gpu:1\n";
        }
        s += &format!("#SBATCH --mem={}G\n", wave.mem_gib);
        s += &format!("#SBATCH --cpus-per-task={}\n", cluster.cpus);
        s += &format!("#SBATCH --chdir={}\n", cluster.workdir);
        s += &format!("#SBATCH --output={}/wave-{k}-%a.out\n", logs.display());
        s += &format!(
            "# Wave {k} of {}: {} unit(s), listed in {}/plan/wave-{k}.txt; task i runs line i.\n",
            plan.waves, wave.units, cluster.run
        );
        s += "set -euo pipefail\n";
        s += &format!(
            "srun {} run {} --out {} --wave {k} --set threads={}\n",
            sh(&cluster.texplain),
            sh(&cluster.config),
            sh(&cluster.run),
            cluster.cpus
        );
        let name = format!("wave-{k}.sbatch");
        if k == 0 {
            submit += &format!("job=$(sbatch --parsable {name})\n");
        } else {
            submit +=
                &format!("job=$(sbatch --parsable --dependency=afterok:\"${{job%%;*}}\" {name})\n");
        }
        submit += &format!("echo \"wave {k}: job ${{job%%;*}}\"\n");
        files.push((name, s));
    }
    files.push(("submit.sh".to_string(), submit));
    files
}

/// The Kubernetes files: `wave-<k>.yaml` (an Indexed Job) per wave and `submit.sh`.
pub fn k8s(plan: &PlanRecord, cluster: &Cluster) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut submit = String::from(
        "#!/bin/bash\n# Applies the plan's waves as Kubernetes Indexed Jobs, each after the previous one completed.\n\
         set -euo pipefail\ncd \"$(dirname \"$0\")\"\n",
    );
    let name = k8s_name(&plan.name);
    for wave in waves(plan, cluster) {
        let k = wave.index;
        let job = job_name(&name, k);
        let command = [
            cluster.texplain.as_str(),
            "run",
            &cluster.config,
            "--out",
            &cluster.run,
            "--wave",
            &k.to_string(),
            "--set",
            &format!("threads={}", cluster.cpus),
        ]
        .iter()
        .map(|w| serde_json::to_string(w).expect("strings serialize"))
        .collect::<Vec<_>>()
        .join(", ");
        let gpu = if wave.gpu {
            "              nvidia.com/gpu: 1\n"
        } else {
            ""
        };
        let y = format!(
            "# Wave {k} of {waves}: {n} unit(s), listed in {run}/plan/wave-{k}.txt; completion index i runs line i.
apiVersion: batch/v1
kind: Job
metadata:
  name: {job}
  labels:
    app: texplain
    texplain/wave: \"{k}\"
spec:
  completionMode: Indexed
  completions: {n}
  parallelism: {parallel}
  backoffLimitPerIndex: 2
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: texplain
          image: {image}
          workingDir: {workdir}
          command: [{command}]
          resources:
            requests:
              cpu: \"{cpus}\"
              memory: {mem}Gi
            limits:
              memory: {mem}Gi
{gpu}          volumeMounts:
            - name: runs
              mountPath: {mount}
      volumes:
        - name: runs
          persistentVolumeClaim:
            claimName: {volume}
",
            waves = plan.waves,
            n = wave.units,
            run = cluster.run,
            parallel = cluster.parallel.max(1).min(wave.units),
            image = serde_json::to_string(&cluster.image).expect("strings serialize"),
            workdir = serde_json::to_string(&cluster.workdir).expect("strings serialize"),
            cpus = cluster.cpus,
            mem = wave.mem_gib,
            mount = serde_json::to_string(&cluster.mount).expect("strings serialize"),
            volume = k8s_name(&cluster.volume),
        );
        let file = format!("wave-{k}.yaml");
        submit += &format!(
            "kubectl apply -f {file}\nkubectl wait --for=condition=complete --timeout=-1s job/{job}\n"
        );
        files.push((file, y));
    }
    files.push(("submit.sh".to_string(), submit));
    files
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::plan::UnitRecord;

    fn unit(id: &str, wave: usize, gpu: bool, memory_bytes: Option<u64>) -> UnitRecord {
        UnitRecord {
            id: id.to_string(),
            stage: id.to_string(),
            seed: None,
            wave,
            needs: vec![],
            gpu,
            memory_bytes,
        }
    }

    #[test]
    fn waves_request_the_accelerator_and_the_estimated_memory() {
        let plan = PlanRecord {
            name: "Table 1_synth".to_string(),
            waves: 2,
            explain_shards: 1,
            units: vec![
                unit("data", 0, false, None),
                unit("a", 1, false, None),
                unit("b", 1, true, Some(40 * GIB + 1)),
                unit("c", 1, false, None),
            ],
        };
        let cluster = Cluster {
            texplain: "texplain".into(),
            config: "run/config.resolved.yaml".into(),
            run: "run".into(),
            workdir: "/w".into(),
            parallel: 2,
            mem_gib: 16,
            cpus: 4,
            partition: None,
            account: None,
            image: "img".into(),
            volume: "Runs".into(),
            mount: "/w".into(),
        };
        let slurm = slurm(&plan, &cluster);
        assert_eq!(slurm.len(), 3);
        let (w0, w1) = (&slurm[0].1, &slurm[1].1);
        assert!(
            w0.contains("--array=0-0%2\n") && !w0.contains("--gres") && w0.contains("--mem=16G\n")
        );
        // 16 / 2 + 41 GiB (the estimate, rounded up).
        assert!(
            w1.contains("--array=0-2%2\n")
                && w1.contains("--gres=gpu:1\n")
                && w1.contains("--mem=49G\n")
        );
        assert!(!w1.contains("--partition"), "{w1}");
        assert!(slurm[2]
            .1
            .contains("--dependency=afterok:\"${job%%;*}\" wave-1.sbatch"));
        let k8s = k8s(&plan, &cluster);
        assert!(k8s[1].1.contains("name: texplain-table-1-synth-wave-1\n"));
        assert!(k8s[1].1.contains("completions: 3\n  parallelism: 2\n"));
        assert!(k8s[1].1.contains("claimName: runs\n"));
        assert!(k8s[0].1.contains("parallelism: 1\n") && !k8s[0].1.contains("nvidia.com/gpu"));
    }

    #[test]
    fn job_names_stay_within_63_characters() {
        assert_eq!(job_name("tiny", 3), "texplain-tiny-wave-3");
        let long = k8s_name(&format!("{}_x", "a".repeat(43)));
        // 9 + 45 + 7 = 61 characters: kept whole.
        assert_eq!(job_name(&long, 7), format!("texplain-{long}-wave-7"));
        // Cut to the 46 characters left beside `-wave-12`; beside `-wave-100` the cut at 45 leaves a `-` last,
        // which goes.
        let longer = k8s_name(&"ab-".repeat(30));
        let expected = format!("texplain-{}a-wave-12", "ab-".repeat(15));
        assert_eq!((job_name(&longer, 12), expected.len()), (expected, 63));
        assert_eq!(
            job_name(&longer, 100),
            format!(
                "texplain-{}-wave-100",
                "ab-".repeat(15).trim_end_matches('-')
            )
        );
    }
}
