//! The sampled sentences of one split on disk: `sentences-<split>.jsonl`, JSON lines, one object per image in
//! dataset order, `{"img_id": 12, "sentences": ["a bird on the lake", ...]}`.
//!
//! Why JSON lines: a language model with a byte-level BPE tokenizer (GPT-2) writes any string — newlines, tabs,
//! `\r`, other control characters, quotes, U+FFFD where a token ended inside a UTF-8 sequence, empty sentences.
//! JSON escapes every one of them, so [`read`] gives back exactly what [`write`] was given, and one line per image
//! keeps an image's sentences together. The writer and the reader live here side by side so they cannot drift
//! apart.
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Identity of the on-disk format, for stage keys: a change here must redo the stages that wrote the old files.
pub const FORMAT: &str = "sentences-jsonl-v1";

/// The file of one split's sentences inside an explain stage directory.
pub fn file_name(split: crate::data::Split) -> String {
    format!("sentences-{split}.jsonl")
}

/// One image's sampled sentences (one line of the file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageSentences {
    pub img_id: i64,
    pub sentences: Vec<String>,
}

/// Errors reading or writing a sentences file; each names the file (and the line for a bad record).
#[derive(Debug, thiserror::Error)]
pub enum SentencesError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line}: not a sentence record {{\"img_id\": <int>, \"sentences\": [<string>, ...]}}: {source}")]
    Record {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
}

/// The JSON-lines text of `images` ((img_id, sentences) in dataset order).
pub fn to_jsonl<'a>(images: impl IntoIterator<Item = (i64, &'a [String])>) -> String {
    let mut out = String::new();
    for (img_id, sentences) in images {
        #[derive(Serialize)]
        struct Line<'b> {
            img_id: i64,
            sentences: &'b [String],
        }
        // Serialising a struct of an integer and strings cannot fail.
        let line = serde_json::to_string(&Line { img_id, sentences })
            .expect("a sentence record serialises");
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Writes `images` to `path` atomically (temporary file + rename).
pub fn write<'a>(
    path: &Path,
    images: impl IntoIterator<Item = (i64, &'a [String])>,
) -> Result<(), SentencesError> {
    crate::util::write_file_atomic(path, to_jsonl(images).as_bytes()).map_err(|source| {
        SentencesError::Io {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// Parses JSON-lines text (blank lines are skipped); `path` only names the source in errors.
pub fn parse(text: &str, path: &Path) -> Result<Vec<ImageSentences>, SentencesError> {
    let mut out = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record = serde_json::from_str(line).map_err(|source| SentencesError::Record {
            path: path.to_path_buf(),
            line: i + 1,
            source,
        })?;
        out.push(record);
    }
    Ok(out)
}

/// Reads a file written by [`write`], in file order.
pub fn read(path: &Path) -> Result<Vec<ImageSentences>, SentencesError> {
    let text = std::fs::read_to_string(path).map_err(|source| SentencesError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

/// Reads a file written by [`write`] into img_id -> sentences (records of one img_id are concatenated).
pub fn read_by_image(path: &Path) -> Result<HashMap<i64, Vec<String>>, SentencesError> {
    let mut out: HashMap<i64, Vec<String>> = HashMap::new();
    for record in read(path)? {
        out.entry(record.img_id)
            .or_default()
            .extend(record.sentences);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nasty() -> Vec<String> {
        [
            "a bird on the lake",
            "tab\there",
            "new\nline",
            "carriage\rreturn\r\n",
            "bell\u{7} nul\u{0} esc\u{1b}[31m del\u{7f} c1\u{85}",
            "partial \u{FFFD}\u{FFFD} utf-8",
            "quotes \" ' \\ and a backslash \\n that is not a newline",
            "",
            " ",
            "commas, {braces} [brackets]: not: yaml",
            "line sep\u{2028}para sep\u{2029} bom\u{feff} zwsp\u{200b}",
            "émoji 🐦 中文",
        ]
        .into_iter()
        .map(String::from)
        .collect()
    }

    #[test]
    fn nasty_strings_round_trip_one_line_per_image() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(crate::data::Split::Train));
        let a = nasty();
        let b: Vec<String> = nasty().into_iter().rev().collect();
        let empty: Vec<String> = Vec::new();
        let images = [
            (12, a.as_slice()),
            (-3, empty.as_slice()),
            (7, b.as_slice()),
        ];
        write(&path, images).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(!text.contains('\t') && !text.contains('\r'), "{text:?}");
        let back = read(&path).unwrap();
        let want: Vec<ImageSentences> = images
            .iter()
            .map(|(id, s)| ImageSentences {
                img_id: *id,
                sentences: s.to_vec(),
            })
            .collect();
        assert_eq!(back, want);
        let by_image = read_by_image(&path).unwrap();
        assert_eq!(by_image[&12], a);
        assert_eq!(by_image[&7], b);
        assert!(by_image[&-3].is_empty());
    }

    #[test]
    fn bad_lines_name_file_and_line_and_blank_lines_are_skipped() {
        let path = Path::new("x/sentences-test.jsonl");
        let ok =
            "{\"img_id\": 1, \"sentences\": [\"a\"]}\n\n{\"img_id\": 2, \"sentences\": []}\r\n";
        assert_eq!(parse(ok, path).unwrap().len(), 2);
        for (text, line) in [
            ("{\"img_id\": 1, \"sentences\": [\"a\"]}\n1\ta lake\n", 2),
            ("{\"img_id\": \"one\", \"sentences\": []}\n", 1),
            ("{\"img_id\": 1, \"sentence\": []}\n", 1),
            ("{\"img_id\": 1, \"sentences\": [3]}\n", 1),
        ] {
            let err = parse(text, path).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("x/sentences-test.jsonl line {line}: ")),
                "{err}"
            );
        }
        let err = read(Path::new("/nonexistent/sentences-train.jsonl"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/sentences-train.jsonl"), "{err}");
    }
}
