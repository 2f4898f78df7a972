//! What commands print: terminal tables, and the structured forms (`-o json|yaml`,
//! `--format jsonpath=…`) with the JSON error object every structured run prints on failure.

use std::process::ExitCode;

use serde::Serialize;

use crate::crd::{Capability, RegistryProfileStatus};
use crate::probe::{ProbeOptions, ProbeReport};

/// A structured rendering of a command's result.
#[derive(Clone, Debug)]
pub enum Structured {
    /// Pretty JSON.
    Json,
    /// YAML.
    Yaml,
    /// The nodes an RFC 9535 JSONPath selects from the JSON form, one per line (strings
    /// unquoted, everything else as compact JSON), like `kubectl -o jsonpath`.
    JsonPath(serde_json_path::JsonPath),
}

/// What `-o` / `--format` asks for: one of the command's own renderings (`T`: table, tree,
/// junit…) or a structured one.
#[derive(Clone, Debug)]
pub enum Output<T> {
    /// The command's own text rendering.
    Text(T),
    /// JSON, YAML or a JSONPath selection.
    Structured(Structured),
}

impl<T> Output<T> {
    /// The structured form, if that is what was asked for.
    pub fn structured(&self) -> Option<&Structured> {
        match self {
            Output::Structured(s) => Some(s),
            Output::Text(_) => None,
        }
    }
}

/// Parses `-o` / `--format`: `json`, `yaml`, `jsonpath=EXPR`, or a value of `T`.
pub fn parse_output<T: clap::ValueEnum>(s: &str) -> Result<Output<T>, String> {
    match s {
        "json" => return Ok(Output::Structured(Structured::Json)),
        "yaml" => return Ok(Output::Structured(Structured::Yaml)),
        _ => {}
    }
    if let Some(expr) = s.strip_prefix("jsonpath=") {
        return parse_jsonpath(expr).map(|p| Output::Structured(Structured::JsonPath(p)));
    }
    T::from_str(s, true).map(Output::Text).map_err(|_| {
        let own: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_string()))
            .collect();
        format!(
            "unknown output {s:?}: one of {}, json, yaml, jsonpath=EXPR",
            own.join(", ")
        )
    })
}

/// Parses a `jsonpath=` selection: RFC 9535 (`$.referrers[*].digest`), or kubectl's form
/// (`{.referrers[*].digest}`).
pub fn parse_jsonpath(expr: &str) -> Result<serde_json_path::JsonPath, String> {
    let e = expr.trim();
    let e = match e.strip_prefix('{').and_then(|x| x.strip_suffix('}')) {
        Some(inner) => inner.trim(),
        None => e,
    };
    let e = if e.starts_with('$') {
        e.to_string()
    } else if e.starts_with('.') || e.starts_with('[') {
        format!("${e}")
    } else {
        format!("$.{e}")
    };
    serde_json_path::JsonPath::parse(&e).map_err(|err| format!("jsonpath {expr:?}: {err}"))
}

impl Structured {
    /// Renders `value`.
    pub fn render<T: Serialize>(&self, value: &T) -> Result<String, String> {
        match self {
            Structured::Json => serde_json::to_string_pretty(value)
                .map(|s| s + "\n")
                .map_err(|e| e.to_string()),
            Structured::Yaml => serde_norway::to_string(value).map_err(|e| e.to_string()),
            Structured::JsonPath(path) => {
                let v = serde_json::to_value(value).map_err(|e| e.to_string())?;
                let mut out = String::new();
                for node in path.query(&v).all() {
                    match node {
                        serde_json::Value::String(s) => out.push_str(s),
                        other => out.push_str(&other.to_string()),
                    }
                    out.push('\n');
                }
                Ok(out)
            }
        }
    }

    /// Prints `value`; a failure to render is exit 1.
    pub fn print<T: Serialize>(&self, value: &T) -> Result<(), ExitCode> {
        match self.render(value) {
            Ok(s) => {
                out!("{s}");
                Ok(())
            }
            Err(e) => {
                eprintln!("error: cannot render the output: {e}");
                Err(ExitCode::FAILURE)
            }
        }
    }
}

/// The object a structured run prints on stdout when it fails, so a pipeline reading
/// stdout sees why: `{"error": {"exitCode": 2, "reason": "BadInput", "message": "…"}}`.
#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
pub struct ErrorObject<'a> {
    /// The exit code the command ends with.
    pub exit_code: u8,
    /// `BadInput`, `RegistryError`, `Unavailable`, `Failed`.
    pub reason: &'a str,
    /// What went wrong (the same text as on stderr).
    pub message: &'a str,
}

/// Reports a failure: `error: …` on stderr, and with a structured format the error object on
/// stdout (a JSONPath selection prints nothing). Returns the exit code.
pub fn fail(structured: Option<&Structured>, code: u8, reason: &str, message: &str) -> ExitCode {
    eprintln!("error: {message}");
    let object = ErrorObject {
        exit_code: code,
        reason,
        message,
    };
    let doc = serde_json::json!({ "error": object });
    match structured {
        Some(Structured::Json) => {
            if let Ok(s) = serde_json::to_string_pretty(&doc) {
                outln!("{s}");
            }
        }
        Some(Structured::Yaml) => {
            if let Ok(s) = serde_norway::to_string(&doc) {
                out!("{s}");
            }
        }
        Some(Structured::JsonPath(_)) | None => {}
    }
    ExitCode::from(code)
}

/// Renders rows as aligned columns (two spaces between columns).
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = String::new();
    let render = |cells: Vec<&str>, out: &mut String| {
        let last = cells.len().saturating_sub(1);
        for (i, c) in cells.iter().enumerate() {
            out.push_str(c);
            if i != last {
                let pad = widths[i].saturating_sub(c.chars().count()) + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    };
    render(header.to_vec(), &mut out);
    for row in rows {
        render(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

fn cap_row(name: &str, c: &Capability) -> Vec<String> {
    vec![
        name.to_string(),
        c.state.to_string(),
        c.reason.clone(),
        c.http_status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into()),
        c.message.clone().unwrap_or_default(),
    ]
}

/// The capability matrix of `refwarden probe`.
pub fn probe_table(
    url: &str,
    opts: &ProbeOptions,
    report: &ProbeReport,
    status: &RegistryProfileStatus,
) -> String {
    let mut out = String::new();
    out.push_str(&format!("Registry      {url}\n"));
    out.push_str(&format!(
        "API version   {}\n",
        report.distribution_api_version.as_deref().unwrap_or("-")
    ));
    let digest = match (&report.test_digest, &report.test_digest_problem) {
        (Some(d), _) => d.clone(),
        (None, Some((reason, message))) => format!("not resolved ({reason}: {message})"),
        (None, None) => "-".into(),
    };
    out.push_str(&format!(
        "Test image    {}:{} -> {digest}\n",
        opts.test_repository, opts.test_tag
    ));
    out.push_str(&format!(
        "Score         {}/{}\n",
        status.score, status.score_out_of
    ));
    out.push_str(&format!(
        "Discovery     {}\n",
        status
            .discovery_mode
            .map(|m| m.to_string())
            .unwrap_or_else(|| "undecided (Auto: detected per request)".into())
    ));
    if let Err((reason, message)) = &report.reachable {
        out.push_str(&format!("Unreachable   {reason}: {message}\n"));
    }
    out.push('\n');
    let caps = &report.capabilities;
    let rows = vec![
        cap_row("distribution version", &report.api_version),
        cap_row("referrers API", &caps.referrers_api),
        cap_row("artifactType filter", &caps.artifact_type_filter),
        cap_row("chunked upload", &caps.chunked_upload),
        cap_row("cross-repo mount", &caps.cross_repo_mount),
        cap_row("delete manifests", &caps.delete_manifests),
        cap_row("delete blobs", &caps.delete_blobs),
    ];
    out.push_str(&table(
        &["CAPABILITY", "STATE", "REASON", "HTTP", "DETAIL"],
        &rows,
    ));
    out.push('\n');
    out.push_str(&format!("Requests      {}\n", report.requests));
    for note in &report.notes {
        out.push_str(&format!("Note          {note}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, clap::ValueEnum, PartialEq, Eq)]
    enum Own {
        Table,
        Tree,
    }

    #[test]
    fn outputs_parse_and_jsonpath_selects() {
        assert!(matches!(
            parse_output::<Own>("tree"),
            Ok(Output::Text(Own::Tree))
        ));
        assert!(matches!(
            parse_output::<Own>("yaml"),
            Ok(Output::Structured(Structured::Yaml))
        ));
        let e = parse_output::<Own>("xml").unwrap_err();
        assert!(e.contains("table, tree, json, yaml, jsonpath=EXPR"), "{e}");
        assert!(parse_output::<Own>("jsonpath=$.a[").is_err());
        let v = serde_json::json!({"referrers": [{"digest": "sha256:a", "size": 3}, {"digest": "sha256:b", "size": 4}]});
        for expr in [
            "$.referrers[*].digest",
            "{.referrers[*].digest}",
            ".referrers[*].digest",
        ] {
            let Ok(Output::Structured(s)) = parse_output::<Own>(&format!("jsonpath={expr}")) else {
                panic!("{expr}");
            };
            assert_eq!(s.render(&v).unwrap(), "sha256:a\nsha256:b\n", "{expr}");
        }
        let Ok(Output::Structured(s)) = parse_output::<Own>("jsonpath=$.referrers[0]") else {
            panic!()
        };
        assert_eq!(
            s.render(&v).unwrap(),
            "{\"digest\":\"sha256:a\",\"size\":3}\n"
        );
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(
            &["A", "BB"],
            &[vec!["xxx".into(), "y".into()], vec!["z".into(), "w".into()]],
        );
        assert_eq!(t, "A    BB\nxxx  y\nz    w\n");
    }
}
