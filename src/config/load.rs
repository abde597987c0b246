//! Loading a config file: YAML, `base:` inheritance (mappings merge key by key, paths relative to the file that
//! names them, loops rejected) and `--set path.to.key=value` overrides (the value parsed as YAML). Errors name the
//! file, the key path and the value. Sections renamed since configs were written under their old names
//! ([`LEGACY_NAMES`]) are renamed in every file of the chain and in `--set` paths before anything merges, so an old
//! base file and a new child (or the reverse) name one section.
use anyhow::{anyhow, bail, Context, Result};
use serde_yaml::{Mapping, Value};
use std::path::{Path, PathBuf};

use super::schema::Config;

/// Sections under an old name: (parent section, old name, current name).
const LEGACY_NAMES: [(&str, &str, &str); 1] = [("mitigation", "gradcam", "masks")];

/// Renames the old section names of one file's mapping; a file that holds both names is an error naming both.
fn rename_legacy(value: &mut Value, path: &Path) -> Result<()> {
    for (parent, old, new) in LEGACY_NAMES {
        let Some(Value::Mapping(section)) = value.get_mut(parent) else {
            continue;
        };
        let Some(body) = section.remove(old) else {
            continue;
        };
        if section.contains_key(new) {
            bail!(
                "config {}: {parent}.{old} is the old name of {parent}.{new}; give only one of them",
                path.display()
            );
        }
        section.insert(Value::String(new.to_string()), body);
    }
    Ok(())
}

/// A `--set` key path with the old section names replaced (`mitigation.gradcam.x` -> `mitigation.masks.x`).
fn current_path(path: &str) -> String {
    for (parent, old, new) in LEGACY_NAMES {
        let prefix = format!("{parent}.{old}");
        if path == prefix || path.starts_with(&format!("{prefix}.")) {
            return format!("{parent}.{new}{}", &path[prefix.len()..]);
        }
    }
    path.to_string()
}

/// Loads `path` with its `base:` chain and the `sets` overrides into the schema (not yet range-checked).
pub fn load(path: &Path, sets: &[String]) -> Result<Config> {
    let merged = load_merged(path, &mut Vec::new())?;
    let config: Config =
        from_value(merged.clone()).with_context(|| format!("config {}", path.display()))?;
    if sets.is_empty() {
        return Ok(config);
    }
    let mut value = merged;
    for set in sets {
        apply_set(&mut value, set)?;
    }
    from_value(value).with_context(|| {
        format!(
            "config {} after the overrides --set {}",
            path.display(),
            sets.join(" --set ")
        )
    })
}

fn from_value(value: Value) -> Result<Config> {
    // Through a string so that serde_yaml reports the key path ("classifier.train: unknown field ...").
    let text = serde_yaml::to_string(&value)?;
    serde_yaml::from_str(&text).map_err(|e| anyhow!("{e}"))
}

/// Reads a YAML file and merges it over its `base:` chain (paths relative to the file that names them).
fn load_merged(path: &Path, chain: &mut Vec<PathBuf>) -> Result<Value> {
    let canonical = path
        .canonicalize()
        .with_context(|| format!("config file {} not found", path.display()))?;
    if chain.contains(&canonical) {
        bail!(
            "config {}: `base:` chain loops back to {}",
            chain[0].display(),
            canonical.display()
        );
    }
    chain.push(canonical);
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config {}", path.display()))?;
    let mut value: Value = serde_yaml::from_str(&text)
        .with_context(|| format!("config {} is not valid YAML", path.display()))?;
    rename_legacy(&mut value, path)?;
    let Value::Mapping(map) = &mut value else {
        bail!(
            "config {}: the top level must be a mapping of sections",
            path.display()
        );
    };
    let Some(base) = map.remove("base") else {
        return Ok(value);
    };
    let base_rel = base.as_str().ok_or_else(|| {
        anyhow!(
            "config {}: `base` must be a file path, found {base:?}",
            path.display()
        )
    })?;
    let base_path = path.parent().unwrap_or(Path::new(".")).join(base_rel);
    let mut merged =
        load_merged(&base_path, chain).with_context(|| format!("base of {}", path.display()))?;
    merge(&mut merged, value);
    Ok(merged)
}

/// Deep-merges `over` into `base`: mappings merge key by key, anything else replaces.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Applies one `path.to.key=value` override; the value is parsed as YAML (`3`, `0.5`, `true`, `[0, 1]`, `text`).
pub fn apply_set(root: &mut Value, set: &str) -> Result<()> {
    let (path, raw) = set
        .split_once('=')
        .ok_or_else(|| anyhow!("--set {set:?}: expected path.to.key=value"))?;
    let current = current_path(path);
    let keys: Vec<&str> = current.split('.').collect();
    if keys.iter().any(|k| k.is_empty()) {
        bail!("--set {set:?}: the key path {path:?} has an empty segment");
    }
    let value: Value = serde_yaml::from_str(raw)
        .with_context(|| format!("--set {set:?}: value {raw:?} is not YAML"))?;
    let mut node = root;
    for (i, key) in keys.iter().enumerate() {
        let Value::Mapping(map) = node else {
            bail!(
                "--set {set:?}: {} is not a section, cannot set {key:?} inside it",
                keys[..i].join(".")
            );
        };
        let key_value = Value::String(key.to_string());
        if i + 1 == keys.len() {
            map.insert(key_value, value);
            return Ok(());
        }
        node = map
            .entry(key_value)
            .or_insert_with(|| Value::Mapping(Mapping::new()));
    }
    unreachable!("the loop returns at the last key")
}
