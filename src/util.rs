//! The bottom layer: atomic file writes, content hashing, and building a folder under a `.partial` name that is
//! renamed into place only when complete. Every other module writes through these; nothing here knows about
//! experiments, stages or models.
//!
//! Safe on a filesystem shared by several hosts (NFS, Lustre, a ReadWriteMany volume), in the manner of Maildir's
//! delivery: every temporary name is unique to its writer (`<name>.<host>-<pid>[-<n>].tmp`, a folder
//! `<name>.<host>-<pid>.partial`), a file is written, `fsync`ed and only then renamed over its final name (rename
//! within one folder is atomic on POSIX filesystems and on NFS), and a folder built while another process put the
//! same folder in place first is discarded ([`Placed::FoundFinished`]): the caller verifies and uses the winner.
use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// For `#[serde(skip_serializing_if = "crate::util::is_default")]`: a knob added with today's behaviour as its
/// default is left out of what it serializes into (`synth.json`, stage keys), so earlier folders and keys hold.
pub fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// `path` with `suffix` appended to its last component (`a/b` + `.tmp` = `a/b.tmp`).
pub fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// This machine's host name (`gethostname`; in a Kubernetes pod, the pod's name), recorded in unit leases and in
/// temporary names so that a pid is only ever judged on its own host.
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

/// Whether a process with this id exists on this host (`kill(pid, 0)`: success, or a process we may not signal).
#[cfg(unix)]
pub fn pid_alive(pid: u32) -> bool {
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

/// Without a way to ask, every process counts as alive (its leftovers are removed by hand).
#[cfg(not(unix))]
pub fn pid_alive(_pid: u32) -> bool {
    true
}

/// The id of a process that has just exited (for the tests of stale-writer cleanup).
#[cfg(test)]
pub(crate) fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    dead
}

/// `<host>-<pid>`: what makes this process's temporary names its own.
pub fn writer_tag() -> String {
    format!("{}-{}", host_name(), std::process::id())
}

/// The writer a tag names: (host, pid), split at the last `-` (host names may hold dashes, pids never do).
fn parse_tag(tag: &str) -> Option<(&str, u32)> {
    let (host, pid) = tag.rsplit_once('-')?;
    Some((host, pid.parse().ok()?))
}

/// A temporary name beside `path` that no other writer (another host, process or thread) uses:
/// `<path>.<host>-<pid>-<n>.tmp`.
pub fn temp_path(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    with_suffix(path, &format!(".{}-{n}.tmp", writer_tag()))
}

/// Flushes the file `tmp` to stable storage and renames it to `path`; removes `tmp` when either fails.
pub fn sync_and_rename(tmp: &Path, path: &Path) -> std::io::Result<()> {
    let done = std::fs::File::open(tmp)
        .and_then(|f| f.sync_all())
        .and_then(|()| std::fs::rename(tmp, path));
    if done.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    done
}

/// Writes `bytes` to `path` through a temporary name of this writer's own ([`temp_path`]) in the same folder,
/// `fsync` and a rename, creating parent folders, so readers never see a half-written file and two writers never
/// write into one temporary file. The one primitive every module writes artifacts with.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = temp_path(path);
    if let Err(err) = std::fs::write(&tmp, bytes) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err);
    }
    sync_and_rename(&tmp, path)
}

/// [`write_file_atomic`] with the path in the error.
pub fn write_atomic(path: &Path, bytes: impl AsRef<[u8]>) -> Result<()> {
    write_file_atomic(path, bytes.as_ref()).with_context(|| format!("writing {}", path.display()))
}

/// Serializes `value` as pretty JSON and writes it atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<()> {
    write_atomic(path, serde_json::to_vec_pretty(value)?)
}

/// Reads and parses a JSON file, naming the file in the error.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// SHA-256 as lower-case hex.
pub fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 over `parts`, each followed by a zero byte (so `["ab", "c"]` and `["a", "bc"]` differ), as hex.
pub fn sha256_parts(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
        hasher.update([0]);
    }
    hex(&hasher.finalize())
}

/// SHA-256 of `bytes`, as hex.
pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// SHA-256 of a file's bytes (streamed, so a checkpoint of any size is hashed in constant memory) and its size.
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = Sha256::new();
    let bytes = std::io::copy(&mut file, &mut hasher)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok((hex(&hasher.finalize()), bytes))
}

/// The content digest of a set of files: SHA-256 over each (name, SHA-256 of its bytes) pair in name order, so it
/// changes when a file's bytes, its name or the set of files change, and never depends on where the files lie.
pub fn content_digest<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut files: Vec<(&str, &str)> = files.into_iter().collect();
    files.sort();
    let mut hasher = Sha256::new();
    for (name, digest) in files {
        for part in [name, digest] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
    }
    hex(&hasher.finalize())
}

/// The [`content_digest`] of the files `names` of the folder `dir` (e.g. a pretrained model's `config.json`,
/// `model.safetensors` and `tokenizer.json`), naming the missing file in the error.
pub fn folder_digest(dir: &Path, names: &[&str]) -> Result<String> {
    let digests = names
        .iter()
        .map(|name| Ok((*name, sha256_file(&dir.join(name))?.0)))
        .collect::<Result<Vec<_>>>()?;
    Ok(content_digest(
        digests.iter().map(|(n, d)| (*n, d.as_str())),
    ))
}

/// How [`build_in_partial`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// This process built the folder and renamed it into place.
    Built,
    /// Another process put the folder in place while this one built it; this one's copy was discarded, and the
    /// caller verifies the one in place.
    FoundFinished,
}

/// The leftover build folders of `dest` that no live writer owns: the plain `<dest>.partial` of earlier versions,
/// this process's own, and those of a process of this host that is no longer running. A build folder of another
/// host is left alone (its pid means nothing here).
fn stale_partials(dest: &Path) -> Vec<PathBuf> {
    let (Some(parent), Some(name)) = (dest.parent(), dest.file_name()) else {
        return Vec::new();
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let name = name.to_string_lossy();
    let (here, me) = (host_name(), std::process::id());
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut stale: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            let file = e.file_name();
            let file = file.to_string_lossy();
            if file == format!("{name}.partial") {
                return true;
            }
            let Some(tag) = file
                .strip_prefix(&format!("{name}."))
                .and_then(|t| t.strip_suffix(".partial"))
            else {
                return false;
            };
            parse_tag(tag).is_some_and(|(host, pid)| host == here && (pid == me || !pid_alive(pid)))
        })
        .map(|e| e.path())
        .collect();
    stale.sort();
    stale
}

/// Builds `dest` by running `build` on `<dest>.<host>-<pid>.partial` and renaming it to `dest` once `build`
/// succeeded, so an interrupted build is never mistaken for a finished one and two writers never share a build
/// folder. Leftover build folders of writers that are gone (an interrupted earlier build on this host) are removed
/// first; `dest` itself must not exist. When another process put `dest` in place meanwhile, this one's folder is
/// removed and [`Placed::FoundFinished`] returned.
pub fn build_in_partial(dest: &Path, build: impl FnOnce(&Path) -> Result<()>) -> Result<Placed> {
    for stale in stale_partials(dest) {
        tracing::info!(partial = %stale.display(), "removing the build folder of an interrupted earlier build");
        std::fs::remove_dir_all(&stale).with_context(|| format!("removing {}", stale.display()))?;
    }
    let partial = with_suffix(dest, &format!(".{}.partial", writer_tag()));
    std::fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    build(&partial)?;
    let discard = |partial: &Path| {
        tracing::warn!(dest = %dest.display(), "another process finished it first; discarding this copy");
        std::fs::remove_dir_all(partial)
            .with_context(|| format!("removing {}", partial.display()))?;
        Ok(Placed::FoundFinished)
    };
    if dest.exists() {
        return discard(&partial);
    }
    match std::fs::rename(&partial, dest) {
        Ok(()) => Ok(Placed::Built),
        // Renaming a folder onto a non-empty one fails: another process won the race.
        Err(_) if dest.exists() => discard(&partial),
        Err(err) => Err(err)
            .with_context(|| format!("renaming {} to {}", partial.display(), dest.display())),
    }
}

/// Files under `dir` (recursively), relative to it, sorted.
pub fn list_files(dir: &Path) -> Result<Vec<String>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in
            std::fs::read_dir(&current).with_context(|| format!("listing {}", current.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(rel) = path.strip_prefix(dir) {
                files.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// The identity of a folder tree of many files (an image corpus): SHA-256 over every file's relative path and
/// size, without reading the files.
pub fn tree_fingerprint(dir: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    for file in list_files(dir)? {
        let len = std::fs::metadata(dir.join(&file))
            .with_context(|| format!("reading {}", dir.join(&file).display()))?
            .len();
        hasher.update(file.as_bytes());
        hasher.update([0]);
        hasher.update(len.to_le_bytes());
    }
    Ok(hex(&hasher.finalize()))
}

/// Writes `rows` as CSV (a header from the row type's field names) atomically.
pub fn write_csv_rows<T: Serialize>(path: &Path, rows: &[T]) -> Result<()> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for row in rows {
        writer
            .serialize(row)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing {}: {}", path.display(), e.error()))?;
    write_atomic(path, bytes)
}

/// Reads a CSV written by [`write_csv_rows`] (columns matched by header name), naming the file and line of a bad
/// row.
pub fn read_csv_rows<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let mut reader =
        csv::Reader::from_path(path).with_context(|| format!("reading {}", path.display()))?;
    reader
        .deserialize()
        .enumerate()
        .map(|(i, row)| row.with_context(|| format!("{} row {}", path.display(), i + 2)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_separated_in_the_hash() {
        assert_ne!(sha256_parts(&[b"ab", b"c"]), sha256_parts(&[b"a", b"bc"]));
        assert_eq!(
            sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn content_digest_follows_names_and_bytes_not_the_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        for dir in [&a, &b] {
            write_atomic(&dir.join("config.json"), "{}").unwrap();
            write_atomic(&dir.join("model.safetensors"), "weights").unwrap();
        }
        let names = ["config.json", "model.safetensors"];
        let digest = folder_digest(&a, &names).unwrap();
        assert_eq!(
            digest,
            folder_digest(&b, &names).unwrap(),
            "the path is no part of it"
        );
        assert_eq!(
            sha256_file(&a.join("model.safetensors")).unwrap(),
            (sha256(b"weights"), 7)
        );
        write_atomic(&b.join("model.safetensors"), "weightz").unwrap();
        assert_ne!(digest, folder_digest(&b, &names).unwrap(), "bytes count");
        let (x, y) = (sha256(b"x"), sha256(b"y"));
        assert_ne!(
            content_digest([("a", x.as_str()), ("b", y.as_str())]),
            content_digest([("a", y.as_str()), ("b", x.as_str())]),
            "names count"
        );
        assert_eq!(
            content_digest([("a", x.as_str()), ("b", y.as_str())]),
            content_digest([("b", y.as_str()), ("a", x.as_str())]),
            "order does not"
        );
        let err = format!("{:#}", folder_digest(&a, &["tokenizer.json"]).unwrap_err());
        assert!(err.contains("tokenizer.json"), "{err}");
    }

    #[test]
    fn csv_rows_round_trip_and_bad_rows_are_named() {
        #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
        struct Row {
            id: i64,
            word: String,
        }
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("rows.csv");
        let rows = vec![
            Row {
                id: 1,
                word: "a, \"quoted\"\nline".into(),
            },
            Row {
                id: 2,
                word: String::new(),
            },
        ];
        write_csv_rows(&path, &rows).unwrap();
        assert_eq!(read_csv_rows::<Row>(&path).unwrap(), rows);
        std::fs::write(&path, "id,word\n1,a\nx,b\n").unwrap();
        let err = format!("{:#}", read_csv_rows::<Row>(&path).unwrap_err());
        assert!(err.contains("rows.csv row 3"), "{err}");
    }

    #[test]
    fn a_failed_build_leaves_only_its_own_partial_folder_and_a_rerun_clears_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("set");
        let failed = build_in_partial(&dest, |dir| {
            write_atomic(&dir.join("half"), "x")?;
            anyhow::bail!("interrupted")
        });
        assert!(failed.is_err());
        assert!(!dest.exists());
        let ours = with_suffix(&dest, &format!(".{}.partial", writer_tag()));
        assert!(
            ours.join("half").exists(),
            "the failed build's folder is named after its writer"
        );
        // Leftovers: an earlier version's plain name and a dead local process (removed), another host's (kept).
        let dead = dead_pid();
        let old = with_suffix(&dest, ".partial");
        let gone = with_suffix(&dest, &format!(".{}-{dead}.partial", host_name()));
        let remote = with_suffix(&dest, ".other-node.example-7.partial");
        for dir in [&old, &gone, &remote] {
            std::fs::create_dir_all(dir).unwrap();
        }
        let placed = build_in_partial(&dest, |dir| write_atomic(&dir.join("full"), "y")).unwrap();
        assert_eq!(placed, Placed::Built);
        assert!(dest.join("full").exists() && !dest.join("half").exists());
        for dir in [&ours, &old, &gone] {
            assert!(!dir.exists(), "{}", dir.display());
        }
        assert!(
            remote.exists(),
            "another host's build folder is not judged by a pid here"
        );
    }

    #[test]
    fn a_build_that_loses_the_race_discards_its_copy() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("set");
        let placed = build_in_partial(&dest, |dir| {
            write_atomic(&dir.join("mine"), "x")?;
            // Another process finishes first.
            write_atomic(&dest.join("theirs"), "y")
        })
        .unwrap();
        assert_eq!(placed, Placed::FoundFinished);
        assert!(dest.join("theirs").exists() && !dest.join("mine").exists());
        let left: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, ["set"], "the losing copy is removed");
    }

    #[test]
    fn atomic_writes_leave_no_temporary_file_and_names_are_unique() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("a/run.json");
        write_atomic(&path, "{}").unwrap();
        write_atomic(&path, "{\"x\": 1}").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"x\": 1}");
        let left: Vec<_> = std::fs::read_dir(tmp.path().join("a"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(left, ["run.json"]);
        let (a, b) = (temp_path(&path), temp_path(&path));
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(&format!("run.json.{}-", writer_tag())) && name.ends_with(".tmp"),
            "{name}"
        );
        assert_eq!(parse_tag("node-1.example-42"), Some(("node-1.example", 42)));
        assert_eq!(parse_tag("v2"), None);
    }
}
