//! The Grafana dashboard of the chart (charts/refwarden/dashboards/refwarden.json, rendered into a
//! ConfigMap by `metrics.grafanaDashboard.enabled`):
//!
//! - it validates against Grafana's published JSON Schemas (tests/fixtures/grafana/, vendored from
//!   the Grafana Foundation SDK): the dashboard model, each panel's options and field config by
//!   panel type, each query against the Prometheus data-query schema — and the same validation
//!   rejects broken variants, so it is known to bite;
//! - layout, ids, data sources, variables and legends are consistent;
//! - its PromQL (panels and variables) and the PrometheusRule's name only metrics that
//!   src/controller/metrics.rs registers (tests/emulator_gitops.rs checks names *and labels*
//!   against the /metrics of a running controller);
//! - the ConfigMap carries the sidecar label and the unchanged JSON, and validates offline.

#[path = "fixtures/helm/tools.rs"]
mod tools;

#[path = "fixtures/grafana/promql.rs"]
mod promql;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use tools::*;

const DASHBOARD: &str = "charts/refwarden/dashboards/refwarden.json";
const SCHEMAS: &str = "tests/fixtures/grafana";

fn dashboard() -> Value {
    let text = std::fs::read_to_string(root().join(DASHBOARD)).expect(DASHBOARD);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

fn schema_file(name: &str) -> Value {
    let path = root().join(SCHEMAS).join(format!("{name}.jsonschema.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("schema JSON")
}

/// A validator for `#/definitions/<def>` of a vendored schema file.
fn validator(file: &str, def: &str) -> jsonschema::Validator {
    let s = schema_file(file);
    assert!(
        s["definitions"].get(def).is_some(),
        "{file}.jsonschema.json has no definition {def}"
    );
    let rooted = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": s["definitions"],
        "$ref": format!("#/definitions/{def}"),
    });
    jsonschema::draft7::new(&rooted)
        .unwrap_or_else(|e| panic!("{file}.jsonschema.json#{def} does not compile: {e}"))
}

fn errors_of(v: &jsonschema::Validator, instance: &Value, what: &str) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{what}{}: {e}", e.instance_path().as_str()))
        .collect()
}

/// The schema file of each panel type used (Grafana plugin id → vendored schema) and whether it
/// defines a `FieldConfig` (the panel's `fieldConfig.defaults.custom`).
fn panel_schema(panel_type: &str) -> Option<(&'static str, bool)> {
    match panel_type {
        "timeseries" => Some(("timeseries", true)),
        "stat" => Some(("stat", false)),
        "table" => Some(("table", true)),
        "state-timeline" => Some(("statetimeline", true)),
        "bargauge" => Some(("bargauge", false)),
        _ => None,
    }
}

/// Every schema violation of a dashboard: the dashboard model, then each panel's options, field
/// config and queries against the schemas of its type.
fn schema_violations(d: &Value) -> Vec<String> {
    let mut errors = errors_of(&validator("dashboard", "Dashboard"), d, "dashboard");
    let query = validator("prometheus", "Dataquery");
    let mut by_type: BTreeMap<String, (jsonschema::Validator, Option<jsonschema::Validator>)> =
        BTreeMap::new();
    for (i, p) in panels(d).iter().enumerate() {
        let t = p["type"].as_str().unwrap_or("");
        if t == "row" {
            continue;
        }
        let at = format!("panels[{i}] {:?} ({t})", p["title"].as_str().unwrap_or(""));
        let Some((file, has_field_config)) = panel_schema(t) else {
            errors.push(format!("{at}: no vendored schema for panel type {t:?}"));
            continue;
        };
        let (options, field_config) = by_type.entry(t.to_string()).or_insert_with(|| {
            (
                validator(file, "Options"),
                has_field_config.then(|| validator(file, "FieldConfig")),
            )
        });
        errors.extend(errors_of(options, &p["options"], &format!("{at} options")));
        let custom = &p["fieldConfig"]["defaults"]["custom"];
        match field_config {
            Some(fc) => {
                let custom = if custom.is_null() {
                    json!({})
                } else {
                    custom.clone()
                };
                errors.extend(errors_of(
                    fc,
                    &custom,
                    &format!("{at} fieldConfig.defaults.custom"),
                ));
            }
            None if !custom.is_null() => {
                errors.push(format!("{at}: {t} panels have no custom field config"));
            }
            None => {}
        }
        for (j, t) in p["targets"].as_array().into_iter().flatten().enumerate() {
            errors.extend(errors_of(&query, t, &format!("{at} targets[{j}]")));
        }
    }
    errors
}

/// Top-level panels and the panels of collapsed rows.
fn panels(d: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        out.push(p.clone());
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner.iter().cloned());
        }
    }
    out
}

#[test]
fn dashboard_validates_against_grafanas_published_schemas() {
    let d = dashboard();
    let errors = schema_violations(&d);
    assert!(
        errors.is_empty(),
        "{DASHBOARD} violates Grafana's schema:\n  {}",
        errors.join("\n  ")
    );
    // Every panel type has its schema applied (nothing validated only as an open object).
    let types: BTreeSet<String> = panels(&d)
        .iter()
        .filter_map(|p| p["type"].as_str().map(String::from))
        .collect();
    assert_eq!(
        types,
        BTreeSet::from(
            [
                "bargauge",
                "row",
                "stat",
                "state-timeline",
                "table",
                "timeseries"
            ]
            .map(String::from)
        )
    );
}

/// A named edit of the dashboard.
type Edit = (&'static str, Box<dyn Fn(&mut Value)>);

#[test]
fn the_schema_validation_rejects_broken_dashboards() {
    // Each edit breaks one rule of Grafana's model; the validation above must notice every one.
    let edits: Vec<Edit> = vec![
        (
            "no schemaVersion",
            Box::new(|d| {
                d.as_object_mut().expect("object").remove("schemaVersion");
            }),
        ),
        (
            "unknown top-level field",
            Box::new(|d| d["rowz"] = json!([])),
        ),
        (
            "panel wider than the grid",
            Box::new(|d| d["panels"][1]["gridPos"]["w"] = json!(25)),
        ),
        (
            "panel type empty",
            Box::new(|d| d["panels"][1]["type"] = json!("")),
        ),
        (
            "variable of an unknown type",
            Box::new(|d| d["templating"]["list"][0]["type"] = json!("dropdown")),
        ),
        (
            "threshold without a color",
            Box::new(|d| {
                d["panels"][1]["fieldConfig"]["defaults"]["thresholds"]["steps"][0]
                    .as_object_mut()
                    .expect("step")
                    .remove("color");
            }),
        ),
        (
            "stat option out of its enum",
            Box::new(|d| d["panels"][1]["options"]["colorMode"] = json!("rainbow")),
        ),
        (
            "time series tooltip without sort",
            Box::new(|d| {
                let p = d["panels"]
                    .as_array_mut()
                    .expect("panels")
                    .iter_mut()
                    .find(|p| p["type"] == "timeseries")
                    .expect("a timeseries panel");
                p["options"]["tooltip"]
                    .as_object_mut()
                    .expect("tooltip")
                    .remove("sort");
            }),
        ),
        (
            "query without expr",
            Box::new(|d| {
                d["panels"][1]["targets"][0]
                    .as_object_mut()
                    .expect("target")
                    .remove("expr");
            }),
        ),
        (
            "query with a misspelt field",
            Box::new(|d| d["panels"][1]["targets"][0]["legendFromat"] = json!("x")),
        ),
    ];
    for (what, edit) in edits {
        let mut d = dashboard();
        edit(&mut d);
        assert!(
            !schema_violations(&d).is_empty(),
            "the schema validation accepted a dashboard with {what}"
        );
    }
}

#[test]
fn vendored_schemas_are_the_unchanged_copies_the_readme_names() {
    use sha2::Digest;
    let readme = std::fs::read_to_string(root().join(SCHEMAS).join("README.md")).expect("README");
    assert!(readme.contains("Apache License 2.0") && readme.contains("grafana-foundation-sdk"));
    assert!(root().join(SCHEMAS).join("LICENSE").is_file());
    let mut files = Vec::new();
    for e in std::fs::read_dir(root().join(SCHEMAS)).expect("dir") {
        let name = e.expect("entry").file_name().to_string_lossy().to_string();
        if name.ends_with(".jsonschema.json") {
            files.push(name);
        }
    }
    files.sort();
    assert!(!files.is_empty());
    for f in files {
        let bytes = std::fs::read(root().join(SCHEMAS).join(&f)).expect("read");
        let sum = hex::encode(sha2::Sha256::digest(&bytes));
        assert!(
            readme.contains(&format!("{sum}  {f}")),
            "{SCHEMAS}/README.md does not list {f} with its SHA-256 {sum}"
        );
    }
}

fn grid_overlap(a: &Value, b: &Value) -> bool {
    let r = |p: &Value| {
        let g = &p["gridPos"];
        (
            g["x"].as_i64().unwrap_or(0),
            g["y"].as_i64().unwrap_or(0),
            g["w"].as_i64().unwrap_or(0),
            g["h"].as_i64().unwrap_or(0),
        )
    };
    let (ax, ay, aw, ah) = r(a);
    let (bx, by, bw, bh) = r(b);
    ax < bx + bw && bx < ax + aw && ay < by + bh && by < ay + ah
}

/// `{{label}}` references of a legend format.
fn legend_labels(legend: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = legend;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim().to_string());
        rest = &after[end + 2..];
    }
    out
}

/// Grafana variables (`$name`, `${name}`) a text uses.
fn variables_used(text: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)").expect("regex");
    re.captures_iter(text).map(|c| c[1].to_string()).collect()
}

#[test]
fn layout_ids_datasources_variables_and_legends_are_consistent() {
    let d = dashboard();
    assert_eq!(
        d["uid"], "refwarden-overview",
        "a stable uid (links, provisioning)"
    );
    assert!(
        d.get("id").is_none() || d["id"].is_null(),
        "no instance-specific id"
    );
    let all = panels(&d);
    let mut failures = Vec::new();
    let mut ids = BTreeSet::new();
    for p in &all {
        let id = p["id"].as_i64().expect("panel id");
        if !ids.insert(id) {
            failures.push(format!("duplicate panel id {id}"));
        }
        let g = &p["gridPos"];
        let (x, w) = (g["x"].as_i64().unwrap_or(-1), g["w"].as_i64().unwrap_or(-1));
        if x < 0 || w < 1 || x + w > 24 {
            failures.push(format!(
                "{}: gridPos {g} leaves the 24-column grid",
                p["title"]
            ));
        }
    }
    for (i, a) in all.iter().enumerate() {
        for b in &all[i + 1..] {
            if grid_overlap(a, b) {
                failures.push(format!("{} overlaps {}", a["title"], b["title"]));
            }
        }
    }
    // Variables: defined once, all used, and every use defined (or a Grafana built-in).
    let vars: Vec<&Value> = d["templating"]["list"]
        .as_array()
        .expect("variables")
        .iter()
        .collect();
    let defined: BTreeSet<String> = vars
        .iter()
        .filter_map(|v| v["name"].as_str().map(String::from))
        .collect();
    assert_eq!(defined.len(), vars.len(), "variable names are unique");
    let ds = vars
        .iter()
        .find(|v| v["type"] == "datasource")
        .expect("a data source variable");
    assert_eq!(ds["query"], "prometheus");
    let want_ds = json!({"type": "prometheus", "uid": format!("${{{}}}", ds["name"].as_str().expect("name"))});
    let mut used = BTreeSet::new();
    for v in vars.iter().filter(|v| v["type"] == "query") {
        if v["datasource"] != want_ds {
            failures.push(format!(
                "variable {}: datasource {}",
                v["name"], v["datasource"]
            ));
        }
        used.extend(variables_used(v["query"].as_str().unwrap_or("")));
        if v["query"] != v["definition"] {
            failures.push(format!(
                "variable {}: definition differs from query",
                v["name"]
            ));
        }
    }
    for p in all.iter().filter(|p| p["type"] != "row") {
        let title = p["title"].as_str().unwrap_or("");
        if p["datasource"] != want_ds {
            failures.push(format!("{title}: panel datasource {}", p["datasource"]));
        }
        if p["description"].as_str().is_none_or(str::is_empty) {
            failures.push(format!("{title}: no description"));
        }
        let targets = p["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            failures.push(format!("{title}: no query"));
        }
        let mut ref_ids = BTreeSet::new();
        for t in &targets {
            if t["datasource"] != want_ds {
                failures.push(format!("{title}: query datasource {}", t["datasource"]));
            }
            if !ref_ids.insert(t["refId"].as_str().unwrap_or("").to_string()) {
                failures.push(format!("{title}: duplicate refId {}", t["refId"]));
            }
            let expr = t["expr"].as_str().unwrap_or("");
            used.extend(variables_used(expr));
            // A legend may only name labels the query keeps (its `by (…)` labels).
            if let Ok(r) = promql::reads(expr) {
                for l in legend_labels(t["legendFormat"].as_str().unwrap_or("")) {
                    if !r.grouping.contains(&l) {
                        failures.push(format!(
                            "{title}: legend {{{{{l}}}}} is not a `by` label of {expr:?}"
                        ));
                    }
                }
            }
        }
    }
    used.insert(ds["name"].as_str().expect("name").to_string());
    let builtins = ["__rate_interval", "__interval", "__range", "__all"];
    for u in &used {
        if !defined.contains(u) && !builtins.contains(&u.as_str()) {
            failures.push(format!("variable ${u} is used but not defined"));
        }
    }
    for v in &defined {
        if !used.contains(v) {
            failures.push(format!("variable {v} is defined but never used"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every PromQL expression of the dashboard: (where, expression). Variable queries contribute
/// their `label_values` selector.
pub fn dashboard_exprs(d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for v in d["templating"]["list"].as_array().expect("variables") {
        if v["type"] == "query" {
            let q = v["query"].as_str().expect("query string");
            let (sel, _) = q
                .trim()
                .strip_prefix("label_values(")
                .and_then(|s| s.strip_suffix(')'))
                .and_then(|s| s.rsplit_once(','))
                .unwrap_or_else(|| {
                    panic!("variable {}: not a label_values(…) query: {q}", v["name"])
                });
            out.push((format!("variable {}", v["name"]), sel.to_string()));
        }
    }
    for p in panels(d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                format!(
                    "panel {:?} {}",
                    p["title"].as_str().unwrap_or(""),
                    t["refId"]
                ),
                t["expr"].as_str().expect("expr").to_string(),
            ));
        }
    }
    out
}

fn prometheus_rule_exprs() -> Vec<(String, String)> {
    let objs = parse_yaml(&run_ok(
        &helm(),
        &[
            "template",
            "refwarden",
            "charts/refwarden",
            "--namespace",
            "refwarden",
            "-f",
            "tests/fixtures/helm/full-values.yaml",
            "--show-only",
            "templates/prometheusrule.yaml",
        ],
    ));
    let rule = find(&objs, "PrometheusRule", "refwarden");
    rule["spec"]["groups"][0]["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|r| {
            (
                format!("alert {}", r["alert"].as_str().unwrap_or("?")),
                r["expr"].as_str().expect("expr").to_string(),
            )
        })
        .collect()
}

/// Base names (without `refwarden_` and the `_total`/`_bucket`/`_sum`/`_count` suffixes) that
/// src/controller/metrics.rs can register: every snake_case string literal of the file.
fn registered_base_names() -> BTreeSet<String> {
    let src =
        std::fs::read_to_string(root().join("src/controller/metrics.rs")).expect("metrics.rs");
    let re = regex::Regex::new(r#""([a-z][a-z0-9_]*)""#).expect("regex");
    re.captures_iter(&src).map(|c| c[1].to_string()).collect()
}

#[test]
fn every_query_names_only_metrics_the_controller_registers() {
    let registered = registered_base_names();
    assert!(
        registered.contains("policy_images"),
        "parsing metrics.rs found {registered:?}"
    );
    let d = dashboard();
    let mut exprs = dashboard_exprs(&d);
    exprs.extend(prometheus_rule_exprs());
    let mut failures = Vec::new();
    let mut metrics_read = BTreeSet::new();
    for (at, expr) in &exprs {
        let r = match promql::reads(expr) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{at}: {e}"));
                continue;
            }
        };
        if r.selectors.is_empty() {
            failures.push(format!("{at}: reads no metric: {expr}"));
        }
        for s in r.selectors {
            if s.metric == "ALERTS" {
                continue;
            }
            let base = s
                .metric
                .strip_prefix("refwarden_")
                .map(|b| {
                    ["_total", "_bucket", "_sum", "_count"]
                        .iter()
                        .find_map(|suf| b.strip_suffix(suf).filter(|x| registered.contains(*x)))
                        .unwrap_or(b)
                })
                .unwrap_or("");
            if !registered.contains(base) {
                failures.push(format!(
                    "{at}: {} is not a metric of src/controller/metrics.rs",
                    s.metric
                ));
            }
            metrics_read.insert(s.metric);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The dashboard covers every metric family the controller exports.
    for m in [
        "refwarden_policy_images",
        "refwarden_registry_capability",
        "refwarden_registry_reachable",
        "refwarden_lifecycle_findings",
        "refwarden_registry_requests_total",
        "refwarden_discovery_cache_hits_total",
        "refwarden_discovery_cache_misses_total",
        "refwarden_discovery_unknown_total",
        "refwarden_discovery_cache_entries",
        "refwarden_reconcile_duration_seconds_bucket",
        "refwarden_reconcile_errors_total",
        "refwarden_reconciles_total",
        "refwarden_api_writes_total",
        "refwarden_leader",
    ] {
        assert!(metrics_read.contains(m), "no panel reads {m}");
    }
    // The alerts panel matches every alert of the PrometheusRule.
    let alerts_expr = exprs
        .iter()
        .find(|(_, e)| e.contains("ALERTS{"))
        .map(|(_, e)| e.clone())
        .expect("an ALERTS panel");
    let re = regex::Regex::new(r#"alertname=~"([^"]+)""#).expect("regex");
    let pattern = format!(
        "^(?:{})$",
        &re.captures(&alerts_expr).expect("alertname matcher")[1]
    );
    let alertname = regex::Regex::new(&pattern).expect("alertname regex");
    for (at, _) in prometheus_rule_exprs() {
        let name = at.trim_start_matches("alert ");
        assert!(alertname.is_match(name), "the alerts panel misses {name}");
    }
}

#[test]
fn the_promql_reader_finds_metrics_labels_and_rejects_garbage() {
    let r = promql::reads(
        r#"histogram_quantile(0.99, sum by (le, kind) (rate(refwarden_reconcile_duration_seconds_bucket{namespace=~"$namespace"}[$__rate_interval]) * on (namespace, pod) group_left () max by (namespace, pod) (refwarden_leader{namespace=~"$namespace"}))) > 1e-3"#,
    )
    .expect("parses");
    let metrics: Vec<&str> = r.selectors.iter().map(|s| s.metric.as_str()).collect();
    assert_eq!(
        metrics,
        [
            "refwarden_reconcile_duration_seconds_bucket",
            "refwarden_leader"
        ]
    );
    assert_eq!(r.selectors[0].labels, ["namespace"]);
    assert_eq!(
        r.grouping,
        ["le", "kind", "namespace", "pod", "namespace", "pod"]
    );
    let r = promql::reads(r#"count(x{a="}{", b!~'q\'z'} offset 5m) or vector(0)"#).expect("parses");
    assert_eq!(
        r.selectors,
        [promql::Selector {
            metric: "x".into(),
            labels: vec!["a".into(), "b".into()]
        }]
    );
    for bad in [
        "sum(x",
        "x)",
        r#"{a="b"}"#,
        r#"x{a=b}"#,
        "x[5m",
        r#"x{a="b""#,
    ] {
        assert!(promql::reads(bad).is_err(), "{bad:?} should not parse");
    }
    // Exposition parsing: counters get _total, histograms their series, labels from samples.
    let e = promql::Exported::parse(
        "# TYPE refwarden_reconciles counter\nrefwarden_reconciles_total{kind=\"a\"} 1\n\
         # TYPE refwarden_reconcile_duration_seconds histogram\n\
         # TYPE refwarden_leader gauge\nrefwarden_leader 1\n\
         refwarden_registry_requests_total{registry=\"h:1\",endpoint=\"base\",status=\"error\"} 2\n",
    );
    assert!(
        e.declared
            .contains("refwarden_reconcile_duration_seconds_bucket")
    );
    assert_eq!(
        e.sampled["refwarden_reconciles_total"],
        BTreeSet::from(["kind".to_string()])
    );
    assert!(e.sampled["refwarden_leader"].is_empty());
    let (problems, unjudged) = promql::check_against(
        r#"sum by (kind, oops) (refwarden_reconciles_total{kind="a", nope="b"}) + refwarden_missing"#,
        &e,
        &[],
    );
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(unjudged.is_empty());
    let (problems, unjudged) = promql::check_against(
        "rate(refwarden_reconcile_duration_seconds_bucket[5m])",
        &e,
        &[],
    );
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(unjudged, ["refwarden_reconcile_duration_seconds_bucket"]);
}

#[test]
fn the_configmap_carries_the_dashboard_and_the_sidecar_label() {
    let base = [
        "template",
        "refwarden",
        "charts/refwarden",
        "--namespace",
        "refwarden",
    ];
    // Off by default.
    let objs = parse_yaml(&run_ok(&helm(), &base));
    assert!(of_kind(&objs, "ConfigMap").is_empty());
    let mut args = base.to_vec();
    args.extend([
        "--set",
        "metrics.grafanaDashboard.enabled=true",
        "--set",
        "metrics.grafanaDashboard.namespace=monitoring",
        "--set",
        "metrics.grafanaDashboard.label=grafana_dashboard",
        "--set",
        "metrics.grafanaDashboard.labelValue=refwarden",
        "--set",
        "metrics.grafanaDashboard.annotations.grafana_folder=Supply chain",
        "--set",
        "metrics.grafanaDashboard.labels.team=platform",
    ]);
    let objs = parse_yaml(&run_ok(&helm(), &args));
    let cm = find(&objs, "ConfigMap", "refwarden-dashboard");
    assert_eq!(cm["metadata"]["namespace"], "monitoring");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "refwarden");
    assert_eq!(cm["metadata"]["labels"]["team"], "platform");
    assert_eq!(
        cm["metadata"]["labels"]["app.kubernetes.io/name"],
        "refwarden"
    );
    assert_eq!(
        cm["metadata"]["annotations"]["grafana_folder"],
        "Supply chain"
    );
    let data = cm["data"].as_object().expect("data");
    assert_eq!(data.keys().collect::<Vec<_>>(), ["refwarden.json"]);
    let text = data["refwarden.json"].as_str().expect("string");
    let rendered: Value = serde_json::from_str(text).expect("the ConfigMap holds JSON");
    assert_eq!(
        rendered,
        dashboard(),
        "the ConfigMap holds the dashboard unchanged"
    );
    // ConfigMaps hold 1 MiB; kubectl's client-side apply annotation 256 KiB.
    assert!(text.len() < 256 * 1024, "dashboard is {} bytes", text.len());
    let unchecked = validate_offline(std::slice::from_ref(cm), "dashboard ConfigMap");
    assert!(unchecked.is_empty());
    // The sidecar label defaults to kube-prometheus-stack's (grafana_dashboard: "1").
    let objs = parse_yaml(&run_ok(
        &helm(),
        &[
            &base[..],
            &["--set", "metrics.grafanaDashboard.enabled=true"],
        ]
        .concat(),
    ));
    let cm = find(&objs, "ConfigMap", "refwarden-dashboard");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(cm["metadata"]["namespace"], "refwarden");
}
