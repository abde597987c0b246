//! One whole run, or one process per unit, in a run directory. The whole run (`texplain run`) holds `<run>/.lock`;
//! a unit run (`texplain run --unit`) holds `<run>/.locks/<unit>.lock` ([`UnitLock`]), waits while another process
//! builds the same unit, and refuses to start beside a whole run. Each is a pid file in the lock-file convention of
//! mail spools and package managers; a unit lock records `<pid> <host>` (a lock recorded on another host is
//! always respected: its pid means nothing here). It is created atomically (`O_CREAT | O_EXCL`,
//! [`std::fs::OpenOptions::create_new`]) and holds
//! the holder's process id; it is removed when the holder lets go ([`RunLock`] is dropped, on success and on an
//! error alike). A lock whose process is no longer alive (a run that was killed) is stale: the next run takes it
//! over with a warning. A run that finds a live holder fails at once and names its pid. Taking over is
//! read-check-remove-create, so two runs that find the same stale lock in the same instant could both take it; the
//! lock is re-read just before it is removed, which leaves a window of microseconds. A pid reused by an unrelated
//! process makes a stale lock look held: the error names the pid and the file, which can then be deleted by hand.
use anyhow::{bail, Context, Result};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The lock file's name inside the run directory.
pub const LOCK_FILE: &str = ".lock";

/// The folder of the per-unit locks inside the run directory.
pub const UNIT_LOCKS: &str = ".locks";

/// A held lock on a run directory; dropping it removes the lock file.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
    pid: u32,
}

/// Whether a process with this id exists (`kill(pid, 0)`: success, or a process we may not signal).
#[cfg(unix)]
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled; nothing is sent.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Without a way to ask, every holder counts as alive (the user deletes a stale lock by hand).
#[cfg(not(unix))]
fn alive(_pid: u32) -> bool {
    true
}

/// This machine's host name (`gethostname`), recorded beside the pid so a lock held on another host of a shared
/// filesystem is never judged by a local pid.
#[cfg(unix)]
pub fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length; gethostname NUL-terminates within it or truncates.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(not(unix))]
pub fn host_name() -> String {
    "unknown".to_string()
}

/// The holder a lock file names: `<pid> [<host>]`; `None` when it cannot be read or parsed.
fn holder(path: &Path) -> Option<(u32, Option<String>)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut words = text.split_whitespace();
    let pid = words.next()?.parse().ok()?;
    Some((pid, words.next().map(str::to_string)))
}

/// Whether the holder still holds: a live local pid, or any holder on another host (its pid means nothing here).
fn holds(pid: u32, host: Option<&str>, here: &str) -> bool {
    match host {
        Some(host) if host != here => true,
        _ => alive(pid),
    }
}

/// How [`take`] treats a live holder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Busy {
    /// Fail at once naming it (the whole-run lock).
    Fail,
    /// Wait until it lets go (a unit lock: the other process is building the same unit).
    Wait,
}

/// Creates the lock file `path` for this process (`O_EXCL`), taking over one whose holder is gone; it records the
/// host too when `with_host` (the unit locks; the whole-run lock keeps its plain pid).
fn take(path: &Path, busy: Busy, what: &str, with_host: bool) -> Result<u32> {
    let pid = std::process::id();
    let here = host_name();
    let mut takeovers = 0;
    loop {
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(mut file) => {
                let record = if with_host {
                    format!("{pid} {here}\n")
                } else {
                    format!("{pid}\n")
                };
                file.write_all(record.as_bytes())
                    .and_then(|()| file.sync_all())
                    .with_context(|| format!("writing the lock {}", path.display()))?;
                return Ok(pid);
            }
            Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
            Err(err) => {
                return Err(err).with_context(|| format!("creating the lock {}", path.display()))
            }
        }
        // A holder that has just created the file may not have written its pid yet.
        let held = holder(path).or_else(|| {
            std::thread::sleep(Duration::from_millis(200));
            holder(path)
        });
        match &held {
            Some((other, host)) if *other != pid && holds(*other, host.as_deref(), &here) => {
                let on = host.as_deref().unwrap_or(&here);
                match busy {
                    Busy::Fail => bail!(
                        "{}: another texplain run (pid {other} on {on}) is writing into {what}; wait for it to \
                         finish, or give this run another --out",
                        path.display(),
                    ),
                    Busy::Wait => {
                        tracing::info!(lock = %path.display(), "pid {other} on {on} is building {what}; waiting");
                        std::thread::sleep(Duration::from_millis(500));
                        continue;
                    }
                }
            }
            Some((other, _)) => tracing::warn!(
                lock = %path.display(),
                "the process that held the lock (pid {other}) is no longer running; taking the lock over"
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
        if holder(path) != held {
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

/// Removes `path` if this process still holds it: a process that took over a lock it thought stale must not lose
/// it to us.
fn release(path: &Path, pid: u32) {
    if holder(path).is_some_and(|(p, host)| p == pid && host.is_none_or(|h| h == host_name())) {
        if let Err(err) = std::fs::remove_file(path) {
            tracing::warn!(lock = %path.display(), "could not remove the lock: {err}");
        }
    }
}

impl RunLock {
    /// Takes `<dir>/.lock` for this process, or fails naming the live holder's pid.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let pid = take(&path, Busy::Fail, &dir.display().to_string(), false)?;
        Ok(Self { path, pid })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        release(&self.path, self.pid);
    }
}

/// A held lock on one unit of a run (`<run>/.locks/<unit id, / as __>.lock`), taken by `texplain run --unit` so
/// that two workers never build the same unit while workers on different units run at once. A second process on
/// the same unit waits for the first, then finds the unit finished. A unit run fails at once while a whole run
/// ([`RunLock`]) writes into the directory.
#[derive(Debug)]
pub struct UnitLock {
    path: PathBuf,
    pid: u32,
}

impl UnitLock {
    pub fn acquire(run: &Path, unit: &str) -> Result<Self> {
        let whole = run.join(LOCK_FILE);
        if let Some((pid, host)) = holder(&whole) {
            if holds(pid, host.as_deref(), &host_name()) {
                bail!(
                    "{}: a whole texplain run (pid {pid}) is writing into {}; units run only beside other units",
                    whole.display(),
                    run.display()
                );
            }
        }
        let dir = run.join(UNIT_LOCKS);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(format!("{}.lock", unit.replace('/', "__")));
        let pid = take(&path, Busy::Wait, &format!("unit {unit}"), true)?;
        Ok(Self { path, pid })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UnitLock {
    fn drop(&mut self) {
        release(&self.path, self.pid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_holder_is_named_and_a_dead_one_is_taken_over() {
        let tmp = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(tmp.path()).unwrap();
        let path = tmp.path().join(LOCK_FILE);
        assert_eq!(holder(&path).map(|h| h.0), Some(std::process::id()));
        drop(lock);
        assert!(!path.exists(), "a released lock is removed");

        // pid 1 is always alive.
        std::fs::write(&path, "1\n").unwrap();
        let err = format!("{:#}", RunLock::acquire(tmp.path()).unwrap_err());
        assert!(err.contains("pid 1") && err.contains(".lock"), "{err}");
        assert_eq!(
            holder(&path).map(|h| h.0),
            Some(1),
            "a live holder's lock is left alone"
        );

        // A process that has exited.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        std::fs::write(&path, format!("{dead}\n")).unwrap();
        let taken = RunLock::acquire(tmp.path()).unwrap();
        assert_eq!(holder(taken.path()).map(|h| h.0), Some(std::process::id()));

        // Garbage is taken over too.
        drop(taken);
        std::fs::write(&path, "not a pid").unwrap();
        assert!(RunLock::acquire(tmp.path()).is_ok());
    }

    #[test]
    fn another_hosts_lock_is_respected_and_a_unit_lock_is_per_unit() {
        let tmp = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();

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
        assert!(err.contains("a whole texplain run (pid 1)"), "{err}");
        std::fs::write(&path, format!("{dead}\n")).unwrap();

        // Units lock apart; a dead local holder's unit lock is taken over, recording pid and host.
        let erm = UnitLock::acquire(tmp.path(), "seed-3/erm").unwrap();
        let lm = UnitLock::acquire(tmp.path(), "lm").unwrap();
        assert!(erm.path().ends_with(".locks/seed-3__erm.lock"));
        assert_eq!(
            holder(erm.path()),
            Some((std::process::id(), Some(host_name())))
        );
        drop(erm);
        assert!(!tmp.path().join(".locks/seed-3__erm.lock").exists());
        let stale = tmp.path().join(".locks/seed-3__erm.lock");
        std::fs::write(&stale, format!("{dead} {}\n", host_name())).unwrap();
        let taken = UnitLock::acquire(tmp.path(), "seed-3/erm").unwrap();
        assert_eq!(holder(taken.path()).map(|h| h.0), Some(std::process::id()));
        drop((taken, lm));
    }
}
