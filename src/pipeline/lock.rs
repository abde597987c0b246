//! One whole run, or one process per unit, in a run directory. The whole run (`texplain run`) holds `<run>/.lock`;
//! a unit run (`texplain run --unit`) holds a *lease* on `<run>/.locks/<unit>.lock` ([`UnitLock`]), waits while
//! another process builds the same unit, and refuses to start beside a whole run.
//!
//! The whole-run lock is a pid file in the lock-file convention of mail spools and package managers. A unit lease
//! follows the leases of distributed lock services (Chubby, etcd) on a shared filesystem (NFS, Lustre, a
//! ReadWriteMany volume), where no lock daemon is shared and a pid means nothing on another host: it records
//! `<pid> <host> <job>` (the job is `slurm:<job id>` or `slurm:<array job id>_<task>`, `k8s:<pod name>` inside a
//! pod, `-` elsewhere), and its holder refreshes its mtime every [`LeaseTimes::refresh`] from a background thread
//! while it builds. A holder on this host holds while its pid is alive; a holder on another host holds while its
//! lease is younger than [`LeaseTimes::expiry`] (`TEXPLAIN_LEASE_EXPIRY_S`, default 600 s), and an older one is
//! taken over with a warning (its holder was killed with its node, or lost the filesystem). The hosts' clocks must
//! agree to well within the expiry (NTP), since the age compares this host's clock with the mtime the filesystem
//! recorded.
//!
//! Both are created atomically (`O_CREAT | O_EXCL`, [`std::fs::OpenOptions::create_new`]; atomic on NFSv3 and
//! later) and removed when the holder lets go (dropped, on success and on an error alike), only if the holder still
//! holds it. A run that finds a live whole-run lock fails at once and names its pid; a unit run waits for a live
//! lease. Taking over is read-check-remove-create, so two runs that find the same stale lock in the same instant
//! could both take it; the lock is re-read just before it is removed, which leaves a window of microseconds, and a
//! stage built twice is still safe ([`crate::util::build_in_partial`]: the second copy is discarded). A pid reused
//! by an unrelated process makes a stale lock look held: the error names the pid and the file, which can then be
//! deleted by hand.
use anyhow::{bail, Context, Result};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::util::{host_name, pid_alive};

/// The lock file's name inside the run directory.
pub const LOCK_FILE: &str = ".lock";

/// The folder of the per-unit leases inside the run directory.
pub const UNIT_LOCKS: &str = ".locks";

/// The environment variable that sets [`LeaseTimes::expiry`] in seconds.
pub const EXPIRY_VAR: &str = "TEXPLAIN_LEASE_EXPIRY_S";

/// How long a lease of another host holds without a refresh, and how often its holder refreshes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTimes {
    pub expiry: Duration,
    pub refresh: Duration,
}

impl LeaseTimes {
    /// The default expiry: ten minutes, twenty refreshes.
    pub const DEFAULT_EXPIRY: Duration = Duration::from_secs(600);

    /// An expiry, refreshed every 30 s or a quarter of it, whichever is shorter (at least every 50 ms).
    pub fn with_expiry(expiry: Duration) -> Self {
        let refresh = (expiry / 4)
            .min(Duration::from_secs(30))
            .max(Duration::from_millis(50));
        Self { expiry, refresh }
    }

    /// From `TEXPLAIN_LEASE_EXPIRY_S` ([`LeaseTimes::parse`]).
    pub fn from_env() -> Result<Self> {
        Self::parse(std::env::var(EXPIRY_VAR).ok().as_deref())
    }

    /// From the value of `TEXPLAIN_LEASE_EXPIRY_S` (whole seconds, at least 1), the default when it is unset.
    pub fn parse(value: Option<&str>) -> Result<Self> {
        let Some(value) = value else {
            return Ok(Self::with_expiry(Self::DEFAULT_EXPIRY));
        };
        match value.trim().parse::<u64>() {
            Ok(secs) if secs >= 1 => Ok(Self::with_expiry(Duration::from_secs(secs))),
            _ => bail!(
                "{EXPIRY_VAR}={value}: the lease expiry must be a whole number of seconds, at least 1"
            ),
        }
    }
}

/// The scheduler's job this process runs in, as a lease records it: `slurm:<array job id>_<task>`,
/// `slurm:<job id>`, `k8s:<pod name>` (`HOSTNAME` inside a pod), or `-`.
fn job_id() -> String {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    if let (Some(array), Some(task)) = (var("SLURM_ARRAY_JOB_ID"), var("SLURM_ARRAY_TASK_ID")) {
        return format!("slurm:{array}_{task}");
    }
    if let Some(job) = var("SLURM_JOB_ID") {
        return format!("slurm:{job}");
    }
    if let (Some(_), Some(pod)) = (var("KUBERNETES_SERVICE_HOST"), var("HOSTNAME")) {
        return format!("k8s:{pod}");
    }
    "-".to_string()
}

/// A held lock on a run directory; dropping it removes the lock file.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

/// Who a lock file names: `<pid> [<host> [<job>]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Holder {
    pid: u32,
    host: Option<String>,
    job: Option<String>,
}

impl Holder {
    /// Where the holder runs, for messages.
    fn describe(&self, here: &str) -> String {
        let host = self.host.as_deref().unwrap_or(here);
        match self.job.as_deref().filter(|j| *j != "-") {
            Some(job) => format!("pid {} on {host}, job {job}", self.pid),
            None => format!("pid {} on {host}", self.pid),
        }
    }

    /// Whether this process is the holder.
    fn is_me(&self, here: &str) -> bool {
        self.pid == std::process::id() && self.host.as_deref().is_none_or(|h| h == here)
    }
}

/// The holder a lock file names, and how long ago its mtime was set; `None` when it cannot be read or parsed.
fn holder(path: &Path) -> Option<(Holder, Duration)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut words = text.split_whitespace();
    let pid = words.next()?.parse().ok()?;
    let held = Holder {
        pid,
        host: words.next().map(str::to_string),
        job: words.next().map(str::to_string),
    };
    let age = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default();
    Some((held, age))
}

/// Whether the holder still holds: a live pid on this host; on another host (where its pid means nothing here), a
/// lease refreshed within `expiry`.
fn holds(held: &Holder, age: Duration, here: &str, expiry: Duration) -> bool {
    match held.host.as_deref() {
        Some(host) if host != here => age < expiry,
        _ => pid_alive(held.pid),
    }
}

/// How [`take`] treats a live holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Busy {
    /// Fail at once naming it (the whole-run lock).
    Fail,
    /// Wait until it lets go or its lease expires (a unit lease: the other process is building the same unit).
    Wait,
}

/// What a lock file records: the plain pid (the whole-run lock) or a lease's `<pid> <host> <job>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    Pid,
    Lease,
}

/// Creates the lock file `path` for this process (`O_EXCL`), taking over one whose holder is gone.
fn take(path: &Path, busy: Busy, what: &str, record: Record, times: LeaseTimes) -> Result<()> {
    let pid = std::process::id();
    let here = host_name();
    let mut takeovers = 0;
    let mut waiting_on = None;
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(mut file) => {
                let text = match record {
                    Record::Pid => format!("{pid}\n"),
                    Record::Lease => format!("{pid} {here} {}\n", job_id()),
                };
                file.write_all(text.as_bytes())
                    .and_then(|()| file.sync_all())
                    .with_context(|| format!("writing the lock {}", path.display()))?;
                return Ok(());
            }
            Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
            Err(err) => {
                return Err(err).with_context(|| format!("creating the lock {}", path.display()))
            }
        }
        // A holder that has just created the file may not have written its pid yet.
        let found = holder(path).or_else(|| {
            std::thread::sleep(Duration::from_millis(200));
            holder(path)
        });
        match &found {
            Some((held, age)) if !held.is_me(&here) && holds(held, *age, &here, times.expiry) => {
                let who = held.describe(&here);
                match busy {
                    Busy::Fail => bail!(
                        "{}: another texplain run ({who}) is writing into {what}; wait for it to finish, or give \
                         this run another --out",
                        path.display(),
                    ),
                    Busy::Wait => {
                        if waiting_on.as_ref() != Some(held) {
                            tracing::info!(lock = %path.display(), "{who} is building {what}; waiting");
                            waiting_on = Some(held.clone());
                        }
                        std::thread::sleep(Duration::from_millis(500));
                        continue;
                    }
                }
            }
            Some((held, age)) if held.host.as_deref().is_some_and(|h| h != here) => tracing::warn!(
                lock = %path.display(),
                "the lease of {} was last refreshed {} s ago, longer than its expiry ({EXPIRY_VAR}={} s); taking it over",
                held.describe(&here),
                age.as_secs(),
                times.expiry.as_secs()
            ),
            Some((held, _)) => tracing::warn!(
                lock = %path.display(),
                "the process that held the lock ({}) is no longer running; taking the lock over",
                held.describe(&here)
            ),
            None => tracing::warn!(
                lock = %path.display(),
                "the lock holds no process id; taking it over"
            ),
        }
        takeovers += 1;
        if takeovers > 3 {
            bail!(
                "{}: could not take the lock (other runs keep taking it); try again",
                path.display()
            )
        }
        if holder(path).map(|h| h.0) != found.as_ref().map(|h| h.0.clone()) {
            continue; // another run took the stale lock over first: look again
        }
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::NotFound => {}
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("removing the stale lock {}", path.display()))
            }
        }
    }
}

/// Whether this process still holds `path`.
fn still_mine(path: &Path) -> bool {
    holder(path).is_some_and(|(h, _)| h.is_me(&host_name()))
}

/// Removes `path` if this process still holds it: a process that took over a lock it thought stale must not lose
/// it to us.
fn release(path: &Path) {
    if still_mine(path) {
        if let Err(err) = std::fs::remove_file(path) {
            tracing::warn!(lock = %path.display(), "could not remove the lock: {err}");
        }
    }
}

/// Sets the mtime of `path` to now, the filesystem's now on NFS (`utimensat` without times).
#[cfg(unix)]
fn touch(path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a NUL-terminated path that outlives the call; a null `times` means "now" for both stamps.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), std::ptr::null(), 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(unix))]
fn touch(path: &Path) -> std::io::Result<()> {
    std::fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(SystemTime::now())
}

/// The background thread that keeps a lease fresh: every `refresh` it sets the lease's mtime to now while this
/// process still holds it; it stops when its sender is dropped, or with a warning when the lease was taken over.
fn refresher(path: PathBuf, refresh: Duration) -> (mpsc::Sender<()>, JoinHandle<()>) {
    let (stop, stopped) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || loop {
        match stopped.recv_timeout(refresh) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => return,
        }
        if !still_mine(&path) {
            tracing::warn!(lock = %path.display(), "the lease was taken over by another process (it expired); no longer refreshing it");
            return;
        }
        if let Err(err) = touch(&path) {
            tracing::warn!(lock = %path.display(), "could not refresh the lease: {err}");
        }
    });
    (stop, thread)
}

/// The units of the run directory `run` whose lease is held (see [`holds`]), each with its holder: unit runs that
/// are writing into it now.
pub fn live_units(run: &Path, times: LeaseTimes) -> Vec<String> {
    let here = host_name();
    let Ok(entries) = std::fs::read_dir(run.join(UNIT_LOCKS)) else {
        return Vec::new();
    };
    let mut live: Vec<String> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let unit = name.strip_suffix(".lock")?.replace("__", "/");
            let (held, age) = holder(&e.path())?;
            (!held.is_me(&here) && holds(&held, age, &here, times.expiry))
                .then(|| format!("unit {unit} ({})", held.describe(&here)))
        })
        .collect();
    live.sort();
    live
}

impl RunLock {
    /// Takes `<dir>/.lock` for this process, or fails naming the live holder's pid, or the unit runs that hold
    /// leases in it (a whole run never writes beside unit runs: both would write `run.json`).
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let times = LeaseTimes::from_env()?;
        take(
            &path,
            Busy::Fail,
            &dir.display().to_string(),
            Record::Pid,
            times,
        )?;
        let lock = Self { path };
        // Checked after taking the lock, as a unit checks the lock after taking its lease: of a whole run and a unit
        // run that start in the same instant, at least one sees the other.
        let units = live_units(dir, times);
        if !units.is_empty() {
            bail!(
                "{}: unit runs are writing into it ({}); a whole run starts once they finished",
                dir.display(),
                units.join(", ")
            );
        }
        Ok(lock)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        release(&self.path);
    }
}

/// A held lease on one unit of a run (`<run>/.locks/<unit id, / as __>.lock`), taken by `texplain run --unit` so
/// that two workers never build the same unit while workers on different units run at once. A second process on
/// the same unit waits for the first, then finds the unit finished. A unit run fails at once while a whole run
/// ([`RunLock`]) writes into the directory. Its mtime is refreshed while it is held (see the module docs).
#[derive(Debug)]
pub struct UnitLock {
    path: PathBuf,
    refreshing: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
}

impl UnitLock {
    /// Takes the unit's lease with the expiry of `TEXPLAIN_LEASE_EXPIRY_S` ([`LeaseTimes::from_env`]).
    pub fn acquire(run: &Path, unit: &str) -> Result<Self> {
        Self::acquire_with(run, unit, LeaseTimes::from_env()?)
    }

    /// Takes the unit's lease with the given expiry and refresh period.
    pub fn acquire_with(run: &Path, unit: &str, times: LeaseTimes) -> Result<Self> {
        let whole = run.join(LOCK_FILE);
        let here = host_name();
        let whole_run = || {
            holder(&whole)
                .filter(|(held, age)| holds(held, *age, &here, times.expiry))
                .map(|(held, _)| {
                    anyhow::anyhow!(
                        "{}: a whole texplain run ({}) is writing into {}; units run only beside other units",
                        whole.display(),
                        held.describe(&here),
                        run.display()
                    )
                })
        };
        if let Some(err) = whole_run() {
            return Err(err);
        }
        let dir = run.join(UNIT_LOCKS);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{}.lock", unit.replace('/', "__")));
        take(
            &path,
            Busy::Wait,
            &format!("unit {unit}"),
            Record::Lease,
            times,
        )?;
        let lock = Self {
            refreshing: Some(refresher(path.clone(), times.refresh)),
            path,
        };
        // Again once the lease is held (see [`RunLock::acquire`]); dropping `lock` lets the lease go.
        if let Some(err) = whole_run() {
            return Err(err);
        }
        Ok(lock)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UnitLock {
    fn drop(&mut self) {
        if let Some((stop, thread)) = self.refreshing.take() {
            drop(stop);
            let _ = thread.join();
        }
        release(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::dead_pid;

    fn pid_of(path: &Path) -> Option<u32> {
        holder(path).map(|(h, _)| h.pid)
    }

    /// Sets the mtime of `path` `ago` into the past.
    fn age_by(path: &Path, ago: Duration) {
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(SystemTime::now() - ago)
            .unwrap();
    }

    #[test]
    fn a_live_holder_is_named_and_a_dead_one_is_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(tmp.path()).unwrap();
        let path = tmp.path().join(LOCK_FILE);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(lock);
        assert!(!path.exists(), "a released lock is removed");

        // pid 1 is always alive.
        std::fs::write(&path, "1\n").unwrap();
        let err = format!("{:#}", RunLock::acquire(tmp.path()).unwrap_err());
        assert!(err.contains("pid 1") && err.contains(".lock"), "{err}");
        assert_eq!(pid_of(&path), Some(1), "a live holder's lock is left alone");

        // A process that has exited.
        std::fs::write(&path, format!("{}\n", dead_pid())).unwrap();
        let taken = RunLock::acquire(tmp.path()).unwrap();
        assert_eq!(pid_of(taken.path()), Some(std::process::id()));

        // Garbage is taken over too.
        drop(taken);
        std::fs::write(&path, "not a pid").unwrap();
        assert!(RunLock::acquire(tmp.path()).is_ok());
    }

    #[test]
    fn another_hosts_lock_is_respected_and_a_unit_lock_is_per_unit() {
        let tmp = tempfile::tempdir().unwrap();
        let dead = dead_pid();

        // A pid that is dead here but recorded on another host still holds.
        let path = tmp.path().join(LOCK_FILE);
        std::fs::write(&path, format!("{dead} elsewhere-node\n")).unwrap();
        let err = format!("{:#}", RunLock::acquire(tmp.path()).unwrap_err());
        assert!(
            err.contains(&format!("pid {dead} on elsewhere-node")),
            "{err}"
        );

        // No unit runs beside a live whole run; none of a dead one.
        std::fs::write(&path, "1\n").unwrap();
        let err = format!(
            "{:#}",
            UnitLock::acquire(tmp.path(), "seed-3/erm").unwrap_err()
        );
        assert!(err.contains("a whole texplain run (pid 1"), "{err}");
        std::fs::write(&path, format!("{dead}\n")).unwrap();

        // Units lock apart; a dead local holder's unit lease is taken over, recording pid, host and job.
        let erm = UnitLock::acquire(tmp.path(), "seed-3/erm").unwrap();
        let lm = UnitLock::acquire(tmp.path(), "lm").unwrap();
        assert!(erm.path().ends_with(".locks/seed-3__erm.lock"));
        let (held, _) = holder(erm.path()).unwrap();
        assert_eq!(
            held,
            Holder {
                pid: std::process::id(),
                host: Some(host_name()),
                job: Some(job_id()),
            }
        );
        drop(erm);
        assert!(!tmp.path().join(".locks/seed-3__erm.lock").exists());
        let stale = tmp.path().join(".locks/seed-3__erm.lock");
        std::fs::write(&stale, format!("{dead} {} -\n", host_name())).unwrap();
        let taken = UnitLock::acquire(tmp.path(), "seed-3/erm").unwrap();
        assert_eq!(pid_of(taken.path()), Some(std::process::id()));
        drop((taken, lm));
    }

    #[test]
    fn a_whole_run_never_starts_beside_live_unit_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let locks = tmp.path().join(UNIT_LOCKS);
        std::fs::create_dir_all(&locks).unwrap();
        let lease = locks.join("seed-3__erm.lock");
        std::fs::write(&lease, "1 other-node k8s:texplain-wave-2-0\n").unwrap();
        let err = format!("{:#}", RunLock::acquire(tmp.path()).unwrap_err());
        assert!(
            err.contains("unit seed-3/erm (pid 1 on other-node, job k8s:texplain-wave-2-0)"),
            "{err}"
        );
        assert!(
            !tmp.path().join(LOCK_FILE).exists(),
            "the refused run let its lock go"
        );
        // An expired lease, or one of a dead local pid, is no unit run.
        age_by(&lease, Duration::from_secs(3600));
        std::fs::write(
            locks.join("lm.lock"),
            format!("{} {} -\n", dead_pid(), host_name()),
        )
        .unwrap();
        assert!(live_units(tmp.path(), LeaseTimes::parse(None).unwrap()).is_empty());
        assert!(RunLock::acquire(tmp.path()).is_ok());
    }

    #[test]
    fn a_live_lease_of_another_host_is_waited_on_and_an_expired_one_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let times = LeaseTimes::with_expiry(Duration::from_secs(600));
        let locks = tmp.path().join(UNIT_LOCKS);
        std::fs::create_dir_all(&locks).unwrap();
        let lease = locks.join("seed-3__explain.lock");
        // pid 1 of another node: alive or not, only its lease's age counts here.
        std::fs::write(&lease, "1 other-node slurm:77_3\n").unwrap();

        let (sent, got) = mpsc::channel();
        let run = tmp.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let lock = UnitLock::acquire_with(&run, "seed-3/explain", times);
            sent.send(()).unwrap();
            lock
        });
        assert!(
            got.recv_timeout(Duration::from_millis(1500)).is_err(),
            "a fresh lease of another host is respected"
        );
        assert_eq!(
            std::fs::read_to_string(&lease).unwrap(),
            "1 other-node slurm:77_3\n"
        );
        // The other host's lease stops being refreshed: past the expiry it is taken over.
        age_by(&lease, Duration::from_secs(601));
        got.recv_timeout(Duration::from_secs(10))
            .expect("an expired lease is taken over");
        let lock = waiter.join().unwrap().unwrap();
        let (held, _) = holder(lock.path()).unwrap();
        assert_eq!(held.pid, std::process::id());
        assert_eq!(held.host, Some(host_name()));
        drop(lock);
        assert!(!lease.exists());
    }

    #[test]
    fn a_held_lease_is_refreshed_and_one_taken_over_is_left_to_its_new_holder() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(
            LeaseTimes::parse(Some("120")).unwrap(),
            LeaseTimes {
                expiry: Duration::from_secs(120),
                refresh: Duration::from_secs(30)
            }
        );
        assert_eq!(
            LeaseTimes::parse(None).unwrap().expiry,
            Duration::from_secs(600)
        );
        let err = LeaseTimes::parse(Some("10m")).unwrap_err().to_string();
        assert!(err.contains("TEXPLAIN_LEASE_EXPIRY_S=10m"), "{err}");
        let times = LeaseTimes::with_expiry(Duration::from_millis(400));
        assert_eq!(times.refresh, Duration::from_millis(100));
        assert_eq!(
            LeaseTimes::with_expiry(LeaseTimes::DEFAULT_EXPIRY).refresh,
            Duration::from_secs(30)
        );
        let lock = UnitLock::acquire_with(tmp.path(), "lm", times).unwrap();
        age_by(lock.path(), Duration::from_secs(3600));
        std::thread::sleep(Duration::from_millis(600));
        let (_, age) = holder(lock.path()).unwrap();
        assert!(
            age < Duration::from_secs(5),
            "the holder refreshed its lease ({age:?} old)"
        );

        // A lease taken over from under its holder is no longer refreshed, nor removed by it.
        std::fs::write(lock.path(), "1 other-node -\n").unwrap();
        age_by(lock.path(), Duration::from_secs(3600));
        std::thread::sleep(Duration::from_millis(400));
        let (held, age) = holder(lock.path()).unwrap();
        assert_eq!(held.host.as_deref(), Some("other-node"));
        assert!(age > Duration::from_secs(3000), "{age:?}");
        let path = lock.path().to_path_buf();
        drop(lock);
        assert!(path.exists(), "the new holder keeps its lease");
    }
}
