//! One run at a time in a run directory: `<run>/.lock`, a pid file in the lock-file convention of mail spools and
//! package managers. It is created atomically (`O_CREAT | O_EXCL`, [`std::fs::OpenOptions::create_new`]) and holds
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

/// The pid a lock file holds; `None` when it cannot be read or parsed.
fn holder(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

impl RunLock {
    /// Takes `<dir>/.lock` for this process, or fails naming the live holder's pid.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join(LOCK_FILE);
        let pid = std::process::id();
        for _ in 0..3 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    file.write_all(format!("{pid}\n").as_bytes())
                        .and_then(|()| file.sync_all())
                        .with_context(|| format!("writing the lock {}", path.display()))?;
                    return Ok(Self { path, pid });
                }
                Err(err) if err.kind() == ErrorKind::AlreadyExists => {}
                Err(err) => {
                    return Err(err)
                        .with_context(|| format!("creating the lock {}", path.display()))
                }
            }
            // A holder that has just created the file may not have written its pid yet.
            let held = holder(&path).or_else(|| {
                std::thread::sleep(Duration::from_millis(200));
                holder(&path)
            });
            match held {
                Some(other) if other != pid && alive(other) => bail!(
                    "{}: another texplain run (pid {other}) is writing into {}; wait for it to finish, or give this \
                     run another --out",
                    path.display(),
                    dir.display()
                ),
                Some(other) => tracing::warn!(
                    lock = %path.display(),
                    "the run that held the lock (pid {other}) is no longer running; taking the lock over"
                ),
                None => tracing::warn!(
                    lock = %path.display(),
                    "the lock holds no process id; taking it over"
                ),
            }
            if holder(&path) != held {
                continue; // another run took the stale lock over first: look again
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == ErrorKind::NotFound => {}
                Err(err) => {
                    return Err(err)
                        .with_context(|| format!("removing the stale lock {}", path.display()))
                }
            }
        }
        bail!(
            "{}: could not take the lock (other runs keep taking it); try again",
            path.display()
        )
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Only our own lock: a run that took over a lock it thought stale must not lose it to us.
        if holder(&self.path) == Some(self.pid) {
            if let Err(err) = std::fs::remove_file(&self.path) {
                tracing::warn!(lock = %self.path.display(), "could not remove the lock: {err}");
            }
        }
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
        assert_eq!(holder(&path), Some(std::process::id()));
        drop(lock);
        assert!(!path.exists(), "a released lock is removed");

        // pid 1 is always alive.
        std::fs::write(&path, "1\n").unwrap();
        let err = format!("{:#}", RunLock::acquire(tmp.path()).unwrap_err());
        assert!(err.contains("pid 1") && err.contains(".lock"), "{err}");
        assert_eq!(holder(&path), Some(1), "a live holder's lock is left alone");

        // A process that has exited.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        std::fs::write(&path, format!("{dead}\n")).unwrap();
        let taken = RunLock::acquire(tmp.path()).unwrap();
        assert_eq!(holder(taken.path()), Some(std::process::id()));

        // Garbage is taken over too.
        drop(taken);
        std::fs::write(&path, "not a pid").unwrap();
        assert!(RunLock::acquire(tmp.path()).is_ok());
    }
}
