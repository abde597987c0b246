//! The bottom layer: atomic file writes, content hashing, and building a folder under a `.partial` name that is
//! renamed into place only when complete. Every other module writes through these; nothing here knows about
//! experiments, stages or models.
use anyhow::{Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

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

/// Writes `bytes` to `path` through `path.tmp` in the same folder and a rename, creating parent folders, so
/// readers never see a half-written file. The one primitive every module writes artifacts with.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = with_suffix(path, ".tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
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

/// Builds `dest` by running `build` on `<dest>.partial` and renaming it to `dest` once `build` succeeded, so an
/// interrupted build is never mistaken for a finished one. A leftover `.partial` folder (an interrupted earlier
/// build) is removed first; `dest` itself must not exist.
pub fn build_in_partial(dest: &Path, build: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let partial = with_suffix(dest, ".partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .with_context(|| format!("removing {}", partial.display()))?;
    }
    std::fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    build(&partial)?;
    std::fs::rename(&partial, dest)
        .with_context(|| format!("renaming {} to {}", partial.display(), dest.display()))
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
    fn a_failed_build_leaves_only_the_partial_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("set");
        let failed = build_in_partial(&dest, |dir| {
            write_atomic(&dir.join("half"), "x")?;
            anyhow::bail!("interrupted")
        });
        assert!(failed.is_err());
        assert!(!dest.exists());
        build_in_partial(&dest, |dir| write_atomic(&dir.join("full"), "y")).unwrap();
        assert!(dest.join("full").exists() && !dest.join("half").exists());
        assert!(!with_suffix(&dest, ".partial").exists());
    }
}
