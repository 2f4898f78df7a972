//! docs/architecture.md stays true: its file list is exactly the files under `src/`, and each
//! module imports only what its row of the module map allows.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn doc() -> String {
    std::fs::read_to_string(root().join("docs/architecture.md")).expect("docs/architecture.md")
}

fn rust_files(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p.strip_prefix(root()).expect("under root");
            out.insert(rel.display().to_string());
        }
    }
}

/// The backticked names of a line, e.g. `` `mod.rs` `` → `mod.rs`.
fn ticked(line: &str) -> Vec<String> {
    line.split('`')
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, s)| s.to_string())
        .collect()
}

/// The "Files" list: `- \`src/dir/\`: \`a.rs\`, …` (continuation lines indented) and
/// `- \`src/x.rs\`, …`.
fn documented_files(doc: &str) -> BTreeSet<String> {
    let start = doc.find("Files, each with").expect("the Files list");
    let end = doc[start..].find("## ").map_or(doc.len(), |e| start + e);
    let mut files = BTreeSet::new();
    let mut dir = String::new();
    for line in doc[start..end].lines() {
        let names = ticked(line);
        let mut names = names.into_iter();
        if line.starts_with("- ") {
            dir.clear();
            if let Some(first) = names.next() {
                if first.ends_with('/') {
                    dir = first;
                } else {
                    files.insert(first);
                }
            }
        }
        for n in names {
            if n.ends_with(".rs") {
                files.insert(if dir.is_empty() {
                    n
                } else {
                    format!("{dir}{n}")
                });
            }
        }
    }
    files
}

#[test]
fn the_file_list_is_the_files_under_src() {
    let documented = documented_files(&doc());
    let mut actual = BTreeSet::new();
    rust_files(&root().join("src"), &mut actual);
    let missing: Vec<_> = actual.difference(&documented).collect();
    let gone: Vec<_> = documented.difference(&actual).collect();
    assert!(
        missing.is_empty() && gone.is_empty(),
        "docs/architecture.md is stale: files not listed {missing:?}; listed but not found {gone:?}"
    );
    // Every file says its job in its first line (`//!`), main.rs apart.
    for f in &actual {
        if f == "src/main.rs" {
            continue;
        }
        let text = std::fs::read_to_string(root().join(f)).expect("read");
        assert!(
            text.trim_start().starts_with("//!"),
            "{f}: the first line must say the module's job (`//! …`)"
        );
    }
}

/// Module name (`policy`, `oci`) of a map row's `src/…` path.
fn module_of(path: &str) -> String {
    path.trim_start_matches("src/")
        .trim_end_matches('/')
        .trim_end_matches(".rs")
        .to_string()
}

#[test]
fn modules_import_only_what_the_map_allows() {
    let doc = doc();
    // (layer, module) → allowed imports.
    let mut rows: Vec<(u32, String, String)> = Vec::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 6 {
            continue;
        }
        let paths = ticked(cells[2]);
        let (Ok(layer), [path]) = (cells[1].parse::<u32>(), paths.as_slice()) else {
            continue;
        };
        rows.push((layer, module_of(path), cells[4].to_string()));
    }
    assert!(
        rows.len() >= 15,
        "the module map has a row per module: {rows:?}"
    );
    let layer_of: BTreeMap<String, u32> = rows.iter().map(|(l, m, _)| (m.clone(), *l)).collect();
    for (layer, module, allowed) in &rows {
        let allowed: BTreeSet<String> = if allowed.starts_with("everything below") {
            layer_of
                .iter()
                .filter(|(_, l)| **l < *layer)
                .map(|(m, _)| m.clone())
                .collect()
        } else if allowed == "—" {
            BTreeSet::new()
        } else {
            allowed
                .split(&[',', ' ', '(', ')'][..])
                .map(str::trim)
                .filter(|w| layer_of.contains_key(*w))
                .map(str::to_string)
                .collect()
        };
        let path = root().join("src").join(module);
        let mut files = BTreeSet::new();
        if path.is_dir() {
            rust_files(&path, &mut files);
        } else {
            files.insert(format!("src/{module}.rs"));
        }
        for f in files {
            let text: String = std::fs::read_to_string(root().join(&f))
                .expect("read")
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            for (i, _) in text.match_indices("crate::") {
                let used: String = text[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if used.is_empty() || used == *module || !layer_of.contains_key(&used) {
                    continue;
                }
                assert!(
                    allowed.contains(&used),
                    "{f} imports crate::{used}, which docs/architecture.md does not allow for {module} (allowed: {allowed:?})"
                );
            }
        }
    }
}
