//! `texplain emit slurm|k8s RUN_DIR`: writes a planned run's waves as Slurm job arrays (`<run>/slurm/`) or
//! Kubernetes Indexed Jobs (`<run>/k8s/`), each with a `submit.sh` ([`crate::pipeline::emit`]).
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

use crate::pipeline::{emit, plan};

#[derive(clap::Subcommand, Debug)]
pub enum EmitCommand {
    /// One sbatch job array per wave and a submit.sh chaining them with --dependency=afterok.
    Slurm(EmitArgs),
    /// One Indexed Job per wave and a submit.sh that waits for each.
    K8s(EmitArgs),
}

#[derive(clap::Args, Debug)]
pub struct EmitArgs {
    /// A run directory with a plan (texplain plan CONFIG --out RUN_DIR).
    pub run_dir: PathBuf,
    /// The config the tasks run (default: RUN_DIR/config.resolved.yaml, written by texplain plan).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The texplain command on the cluster's nodes.
    #[arg(long, default_value = "texplain")]
    pub texplain: String,
    /// The folder tasks start in (the config's relative data paths resolve from it; default: this folder).
    #[arg(long)]
    pub workdir: Option<PathBuf>,
    /// Tasks of one wave at once.
    #[arg(long, default_value_t = 8)]
    pub parallel: usize,
    /// Memory of a task in GiB (raised where a unit's estimate needs more).
    #[arg(long, default_value_t = 16)]
    pub mem_gib: u64,
    /// CPU cores (and threads) of a task.
    #[arg(long, default_value_t = 4)]
    pub cpus: usize,
    /// Slurm partition.
    #[arg(long)]
    pub partition: Option<String>,
    /// Slurm account.
    #[arg(long)]
    pub account: Option<String>,
    /// Kubernetes: the container image holding texplain.
    #[arg(long, default_value = "texplain:latest")]
    pub image: String,
    /// Kubernetes: the ReadWriteMany PersistentVolumeClaim holding the run directory and the data.
    #[arg(long, default_value = "texplain-runs")]
    pub volume: String,
    /// Kubernetes: where the volume is mounted (default: the working folder).
    #[arg(long)]
    pub mount: Option<PathBuf>,
}

fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

pub fn run(cmd: EmitCommand) -> Result<()> {
    let (args, kind) = match cmd {
        EmitCommand::Slurm(args) => (args, "slurm"),
        EmitCommand::K8s(args) => (args, "k8s"),
    };
    let plan = plan::read(&args.run_dir)?;
    let here = std::env::current_dir().context("reading the current folder")?;
    let absolute = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            here.join(p)
        }
    };
    let run = absolute(&args.run_dir);
    let workdir = args.workdir.as_deref().map_or(here.clone(), absolute);
    let cluster = emit::Cluster {
        texplain: args.texplain,
        config: text(
            &args
                .config
                .as_deref()
                .map_or(run.join("config.resolved.yaml"), absolute),
        ),
        run: text(&run),
        workdir: text(&workdir),
        parallel: args.parallel,
        mem_gib: args.mem_gib,
        cpus: args.cpus,
        partition: args.partition,
        account: args.account,
        image: args.image,
        volume: args.volume,
        mount: text(&args.mount.as_deref().map_or(workdir.clone(), absolute)),
    };
    let files = match kind {
        "slurm" => emit::slurm(&plan, &cluster),
        _ => emit::k8s(&plan, &cluster),
    };
    let dir = run.join(kind);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, body) in &files {
        let path = dir.join(name);
        crate::util::write_atomic(&path, body)?;
        #[cfg(unix)]
        if name.ends_with(".sh") || name.ends_with(".sbatch") {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("making {} executable", path.display()))?;
        }
    }
    println!(
        "{} file(s) in {}; submit with {}/submit.sh",
        files.len(),
        dir.display(),
        dir.display()
    );
    Ok(())
}
