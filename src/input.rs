//! Reading the files refwarden is given, under one rule: bounded size (refused before being
//! read whole), `-` for standard input, and strict decoding — unknown fields and wrong types
//! are errors naming the file, the document and the field path.

use std::io::Read;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// Largest input file read (and largest standard input).
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

/// The path that means standard input.
pub const STDIN: &str = "-";

/// Whether `path` is `-` (standard input).
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == STDIN
}

/// Reads a file (or standard input for `-`) of at most [`MAX_INPUT_BYTES`]. A larger file is
/// refused from its size before anything is read; standard input is read up to the limit.
pub fn read_bounded(path: &Path) -> Result<String, String> {
    read_bounded_with(path, MAX_INPUT_BYTES)
}

/// [`read_bounded`] with another limit.
pub fn read_bounded_with(path: &Path, limit: u64) -> Result<String, String> {
    let mut bytes = Vec::new();
    if is_stdin(path) {
        std::io::stdin()
            .lock()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        if bytes.len() as u64 > limit {
            return Err(format!(
                "standard input is larger than the {} MiB limit",
                limit / (1024 * 1024)
            ));
        }
    } else {
        let meta = std::fs::metadata(path).map_err(|e| format!("cannot read: {e}"))?;
        if meta.len() > limit {
            return Err(format!(
                "the file is {} MiB, over the {} MiB limit: refused without reading it",
                meta.len().div_ceil(1024 * 1024),
                limit / (1024 * 1024)
            ));
        }
        std::fs::File::open(path)
            .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
            .map_err(|e| format!("cannot read: {e}"))?;
        if bytes.len() as u64 > limit {
            return Err(format!(
                "the file grew over the {} MiB limit while being read",
                limit / (1024 * 1024)
            ));
        }
    }
    String::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))
}

/// A strict decoding failure: the field path (`spec.require[0].preset`, `<root>`) and what is
/// wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// Where in the document.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Decodes `v` into `T`, rejecting unknown fields (except under the prefixes in `ignored`,
/// e.g. `status` of built-in objects) and naming the field of any error.
pub fn decode_strict<T: DeserializeOwned>(v: &Value, ignored: &[&str]) -> Result<T, FieldError> {
    let mut unknown: Vec<String> = Vec::new();
    let result: Result<T, _> = {
        let mut record = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
        let ignoring = serde_ignored::Deserializer::new(v, &mut record);
        serde_path_to_error::deserialize(ignoring)
    };
    // A typo usually shows twice (`statuss` unknown, `status` missing): the unknown
    // field is the one to name, so it wins over the decoding error it caused.
    let first_unknown = unknown.iter().map(|p| tidy_path(p)).find(|p| {
        !ignored
            .iter()
            .any(|i| p == i || p.starts_with(&format!("{i}.")))
    });
    match (result, first_unknown) {
        (Err(e), Some(field)) => Err(FieldError {
            field,
            message: format!("unknown field (and then: {})", e.into_inner()),
        }),
        (Err(e), None) => {
            let path = e.path().to_string();
            Err(FieldError {
                field: if path == "." {
                    "<root>".to_string()
                } else {
                    path
                },
                message: e.into_inner().to_string(),
            })
        }
        (Ok(_), Some(field)) => Err(FieldError {
            field,
            message: "unknown field".into(),
        }),
        (Ok(value), None) => Ok(value),
    }
}

/// Parses JSON or YAML text (JSON first when it looks like JSON) and decodes it strictly.
pub fn decode_text_strict<T: DeserializeOwned>(text: &str) -> Result<T, FieldError> {
    let value: Value = if text.trim_start().starts_with(['{', '[']) {
        serde_json::from_str(text).map_err(|e| FieldError {
            field: "<document>".into(),
            message: format!("invalid JSON: {e}"),
        })?
    } else {
        serde_norway::from_str(text).map_err(|e| FieldError {
            field: "<document>".into(),
            message: format!("invalid YAML: {e}"),
        })?
    };
    decode_strict(&value, &[])
}

/// `spec.?.containers.?.0.image` (serde_ignored) → `spec.containers[0].image`.
fn tidy_path(p: &str) -> String {
    let mut out = String::new();
    for seg in p.split('.') {
        if seg == "?" || seg.is_empty() {
            continue;
        }
        if seg.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "camelCase")]
    struct Spec {
        #[allow(dead_code)]
        keep_n: Option<u32>,
        #[allow(dead_code)]
        rules: Option<Vec<Rule>>,
    }

    #[derive(serde::Deserialize, Debug)]
    struct Rule {
        #[allow(dead_code)]
        name: String,
    }

    #[test]
    fn unknown_fields_and_types_name_the_path() {
        let e = decode_text_strict::<Spec>("keepn: 3\n").unwrap_err();
        assert_eq!(e.field, "keepn");
        assert_eq!(e.message, "unknown field");
        let e = decode_text_strict::<Spec>(r#"{"rules":[{"name":"a","nmae":"b"}]}"#).unwrap_err();
        assert_eq!(e.field, "rules[0].nmae");
        let e = decode_text_strict::<Spec>("keepN: lots\n").unwrap_err();
        assert_eq!(e.field, "keepN");
        assert!(decode_text_strict::<Spec>("keepN: 3\n").is_ok());
        let v = serde_json::json!({"keepN": 1, "status": {"x": 1}});
        assert!(decode_strict::<Spec>(&v, &["status"]).is_ok());
        assert!(decode_strict::<Spec>(&v, &[]).is_err());
    }

    #[test]
    fn oversized_files_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.yaml");
        std::fs::write(&p, vec![b'a'; 2048]).unwrap();
        let e = read_bounded_with(&p, 1024).unwrap_err();
        assert!(e.contains("limit"), "{e}");
        assert_eq!(read_bounded_with(&p, 4096).unwrap().len(), 2048);
    }
}
