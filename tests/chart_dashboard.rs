//! The Grafana dashboard of the chart (charts/refwarden/dashboards/refwarden.json, rendered into a
//! ConfigMap by `metrics.grafanaDashboard.enabled`):
//!
//! - it validates against JSON Schemas of Grafana's own types (generated into
//!   .tools/schemas/grafana by scripts/install-deps.sh from the TypeScript declarations of the npm
//!   package @grafana/schema, not committed; see tests/fixtures/grafana/README.md): the dashboard
//!   model, each panel's options and field config by panel type; each query is checked against the
//!   fields of Grafana's Prometheus query — and the same validation rejects broken variants, so it
//!   is known to bite;
//! - layout, ids, data sources, variables and legends are consistent;
//! - its PromQL (panels and variables) and the PrometheusRule's name only metrics that
//!   src/controller/metrics.rs registers (tests/emulator_gitops.rs checks names *and labels*
//!   against the /metrics of a running controller);
//! - the ConfigMap carries the sidecar label and the unchanged JSON, and validates offline.

use refwarden_testkit::promql;

use std::collections::{BTreeMap, BTreeSet};

use refwarden_testkit::helm::*;
use serde_json::{Map, Value, json};

const DASHBOARD: &str = "charts/refwarden/dashboards/refwarden.json";
/// Where scripts/install-deps.sh generates the schemas (with a `VERSION` naming the pinned npm
/// packages they come from).
const SCHEMAS: &str = ".tools/schemas/grafana";
const INSTALL_HINT: &str = "run `make deps` (scripts/install-deps.sh generates Grafana's JSON \
     Schemas from the npm package @grafana/schema into .tools/schemas/grafana)";

fn dashboard() -> Value {
    let text = std::fs::read_to_string(root().join(DASHBOARD)).expect(DASHBOARD);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD} is not JSON: {e}"))
}

/// A generated schema file; a missing one fails the test (like a missing tool, it never skips).
fn schema_file(name: &str) -> Value {
    let path = root().join(SCHEMAS).join(format!("{name}.jsonschema.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}: {INSTALL_HINT}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {INSTALL_HINT}", path.display()))
}

/// Adds what the generated schemas cannot say (see `amend`) to property `prop` of definition
/// `def`; the property must exist, so a renamed one fails here rather than going unchecked.
fn constrain(defs: &mut Map<String, Value>, file: &str, def: &str, prop: &str, extra: Value) {
    let p = defs
        .get_mut(def)
        .and_then(|d| d["properties"].get_mut(prop))
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("{file}.jsonschema.json: {def} has no property {prop}"));
    p.extend(extra.as_object().expect("object").clone());
}

/// Declares property `prop` of definition `def`, which Grafana writes but its types omit; once
/// @grafana/schema declares it, this fails, so the amendment is dropped rather than kept.
fn declare(defs: &mut Map<String, Value>, file: &str, def: &str, prop: &str, schema: Value) {
    let props = defs
        .get_mut(def)
        .and_then(|d| d["properties"].as_object_mut())
        .unwrap_or_else(|| panic!("{file}.jsonschema.json has no definition {def}"));
    assert!(
        !props.contains_key(prop),
        "{file}.jsonschema.json: {def} declares {prop} now: drop its amendment in amend()"
    );
    props.insert(prop.to_string(), schema);
}

/// What the schemas generated from TypeScript lose, put back. TypeScript has no bounds, so the
/// CUE constraints of Grafana's dashboard kind (`w: uint32 & >0 & <=24`, `type: string &
/// strings.MinRunes(1)`, …) arrive as plain `number` / `string`; and a few fields that Grafana
/// itself writes are missing from the types.
fn amend(file: &str, defs: &mut Map<String, Value>) {
    match file {
        "dashboard" => {
            // The 24-column grid of the dashboard kind's GridPos, and a non-empty panel plugin id.
            let bounds = [
                ("h", json!({"type": "integer", "exclusiveMinimum": 0})),
                (
                    "w",
                    json!({"type": "integer", "exclusiveMinimum": 0, "maximum": 24}),
                ),
                (
                    "x",
                    json!({"type": "integer", "minimum": 0, "exclusiveMaximum": 24}),
                ),
                ("y", json!({"type": "integer", "minimum": 0})),
            ];
            for (prop, extra) in bounds {
                constrain(defs, file, "GridPos", prop, extra);
            }
            constrain(defs, file, "Panel", "type", json!({"minLength": 1}));
            // Grafana saves a query variable's query as shown in its editor in `definition`;
            // the v2 dashboard schema of the same package declares it (QueryVariableSpec
            // `definition?: string`), the v0 VariableModel does not.
            declare(
                defs,
                file,
                "VariableModel",
                "definition",
                json!({"type": "string"}),
            );
        }
        "statetimeline" => {
            // The state timeline panel registers the time series' null-value editors
            // (`spanNulls`, `insertNulls`) as custom field config; its FieldConfig type omits
            // them. They take the time series' types.
            let ts = schema_file("timeseries");
            for prop in ["spanNulls", "insertNulls"] {
                let schema = ts["definitions"]["FieldConfig"]["properties"][prop].clone();
                assert!(
                    schema.is_object(),
                    "timeseries.jsonschema.json: FieldConfig has no {prop}"
                );
                declare(defs, file, "FieldConfig", prop, schema);
            }
        }
        _ => {}
    }
}

/// A validator for `#/definitions/<def>` of a generated schema file, amended.
fn validator(file: &str, def: &str) -> jsonschema::Validator {
    let s = schema_file(file);
    let mut defs = s["definitions"]
        .as_object()
        .unwrap_or_else(|| panic!("{file}.jsonschema.json has no definitions: {INSTALL_HINT}"))
        .clone();
    assert!(
        defs.contains_key(def),
        "{file}.jsonschema.json has no definition {def}"
    );
    amend(file, &mut defs);
    let rooted = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "definitions": defs,
        "$ref": format!("#/definitions/{def}"),
    });
    jsonschema::draft7::new(&rooted)
        .unwrap_or_else(|e| panic!("{file}.jsonschema.json#{def} does not compile: {e}"))
}

/// Violations of `instance`, each naming where (`what` + JSON pointer) and which schema.
fn errors_of(v: &(String, jsonschema::Validator), instance: &Value, what: &str) -> Vec<String> {
    v.1.iter_errors(instance)
        .map(|e| format!("{what}{}: {e} [{}]", e.instance_path().as_str(), v.0))
        .collect()
}

fn named_validator(file: &str, def: &str) -> (String, jsonschema::Validator) {
    (
        format!("{file}.jsonschema.json#{def}"),
        validator(file, def),
    )
}

/// The schema file of each panel type used (Grafana plugin id → generated schema) and whether it
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

/// Label of the query violations (`query_violations`).
const QUERY_CHECK: &str = "Prometheus query fields";

/// The fields a Prometheus query (a panel target) may have, and what each must be. @grafana/schema
/// has no Prometheus data-query type, so this is checked without a schema: the common `DataQuery`
/// fields of @grafana/schema (refId, datasource, hide, queryType), the fields of the `Prometheus`
/// query type of Grafana's Prometheus data source (the npm package @grafana/prometheus,
/// dist/types/dataquery.d.ts: expr, legendFormat, editorMode, format, instant, range, exemplar,
/// intervalFactor, scopes, adhocFilters, groupByKeys) and the query options Grafana stores with a
/// query (interval, intervalMs, maxDataPoints, timeRange, resultAssertions).
fn query_field_ok(field: &str, v: &Value) -> Option<bool> {
    Some(match field {
        "refId" | "legendFormat" | "queryType" | "interval" => v.is_string(),
        "expr" => v.as_str().is_some_and(|s| !s.trim().is_empty()),
        "hide" | "instant" | "range" | "exemplar" => v.is_boolean(),
        "editorMode" => matches!(v.as_str(), Some("code" | "builder")),
        "format" => matches!(v.as_str(), Some("time_series" | "table" | "heatmap")),
        "intervalFactor" | "intervalMs" | "maxDataPoints" => v.is_number(),
        "datasource" | "timeRange" | "resultAssertions" => v.is_object(),
        "scopes" | "adhocFilters" | "groupByKeys" => v.is_array(),
        _ => return None,
    })
}

fn query_violations(t: &Value, at: &str) -> Vec<String> {
    let Some(fields) = t.as_object() else {
        return vec![format!("{at}: not an object [{QUERY_CHECK}]")];
    };
    let mut errors = Vec::new();
    for required in ["refId", "expr"] {
        if !fields.contains_key(required) {
            errors.push(format!("{at}: no {required} [{QUERY_CHECK}]"));
        }
    }
    for (k, v) in fields {
        match query_field_ok(k, v) {
            None => errors.push(format!("{at}: unknown field {k:?} [{QUERY_CHECK}]")),
            Some(false) => errors.push(format!("{at}: {k} = {v} is not valid [{QUERY_CHECK}]")),
            Some(true) => {}
        }
    }
    errors
}

/// Every schema violation of a dashboard: the dashboard model, then each panel's options, field
/// config and queries against the schemas of its type.
fn schema_violations(d: &Value) -> Vec<String> {
    let mut errors = errors_of(&named_validator("dashboard", "Dashboard"), d, "dashboard");
    type Validators = (
        (String, jsonschema::Validator),
        Option<(String, jsonschema::Validator)>,
    );
    let mut by_type: BTreeMap<String, Validators> = BTreeMap::new();
    for (i, p) in panels(d).iter().enumerate() {
        let t = p["type"].as_str().unwrap_or("");
        if t == "row" {
            continue;
        }
        let at = format!("panels[{i}] {:?} ({t})", p["title"].as_str().unwrap_or(""));
        let Some((file, has_field_config)) = panel_schema(t) else {
            errors.push(format!("{at}: no schema for panel type {t:?}"));
            continue;
        };
        let (options, field_config) = by_type.entry(t.to_string()).or_insert_with(|| {
            (
                named_validator(file, "Options"),
                has_field_config.then(|| named_validator(file, "FieldConfig")),
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
            errors.extend(query_violations(t, &format!("{at} targets[{j}]")));
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

/// The first top-level panel of a type (the broken variants below edit it).
fn first_of<'a>(d: &'a mut Value, panel_type: &str) -> &'a mut Value {
    d["panels"]
        .as_array_mut()
        .expect("panels")
        .iter_mut()
        .find(|p| p["type"] == panel_type)
        .unwrap_or_else(|| panic!("no {panel_type} panel"))
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

/// A named edit of the dashboard and the check that must reject it (a schema
/// `<file>.jsonschema.json#<definition>`, or the query check).
type Edit = (&'static str, &'static str, Box<dyn Fn(&mut Value)>);

#[test]
fn the_schema_validation_rejects_broken_dashboards() {
    // Each edit breaks one rule of Grafana's model; the validation above must notice every one,
    // through the schema (or check) named: at least one for every schema used.
    let edits: Vec<Edit> = vec![
        (
            "no schemaVersion",
            "dashboard.jsonschema.json#Dashboard",
            Box::new(|d| {
                d.as_object_mut().expect("object").remove("schemaVersion");
            }),
        ),
        (
            "unknown top-level field",
            "dashboard.jsonschema.json#Dashboard",
            Box::new(|d| d["rowz"] = json!([])),
        ),
        (
            "panel wider than the grid",
            "dashboard.jsonschema.json#Dashboard",
            Box::new(|d| d["panels"][1]["gridPos"]["w"] = json!(25)),
        ),
        (
            "panel type empty",
            "dashboard.jsonschema.json#Dashboard",
            Box::new(|d| d["panels"][1]["type"] = json!("")),
        ),
        (
            "variable of an unknown type",
            "dashboard.jsonschema.json#Dashboard",
            Box::new(|d| d["templating"]["list"][0]["type"] = json!("dropdown")),
        ),
        (
            "threshold without a color",
            "dashboard.jsonschema.json#Dashboard",
            Box::new(|d| {
                d["panels"][1]["fieldConfig"]["defaults"]["thresholds"]["steps"][0]
                    .as_object_mut()
                    .expect("step")
                    .remove("color");
            }),
        ),
        (
            "stat option out of its enum",
            "stat.jsonschema.json#Options",
            Box::new(|d| first_of(d, "stat")["options"]["colorMode"] = json!("rainbow")),
        ),
        (
            "time series tooltip without sort",
            "timeseries.jsonschema.json#Options",
            Box::new(|d| {
                first_of(d, "timeseries")["options"]["tooltip"]
                    .as_object_mut()
                    .expect("tooltip")
                    .remove("sort");
            }),
        ),
        (
            "time series draw style out of its enum",
            "timeseries.jsonschema.json#FieldConfig",
            Box::new(|d| {
                first_of(d, "timeseries")["fieldConfig"]["defaults"]["custom"]["drawStyle"] =
                    json!("zigzag")
            }),
        ),
        (
            "table cell height out of its enum",
            "table.jsonschema.json#Options",
            Box::new(|d| first_of(d, "table")["options"]["cellHeight"] = json!("huge")),
        ),
        (
            "table cell type unknown",
            "table.jsonschema.json#FieldConfig",
            Box::new(|d| {
                first_of(d, "table")["fieldConfig"]["defaults"]["custom"]["cellOptions"] =
                    json!({"type": "rainbow"})
            }),
        ),
        (
            "state timeline value alignment out of its enum",
            "statetimeline.jsonschema.json#Options",
            Box::new(|d| first_of(d, "state-timeline")["options"]["alignValue"] = json!("middle")),
        ),
        (
            "state timeline line width not a number",
            "statetimeline.jsonschema.json#FieldConfig",
            Box::new(|d| {
                first_of(d, "state-timeline")["fieldConfig"]["defaults"]["custom"]["lineWidth"] =
                    json!("thick")
            }),
        ),
        (
            "state timeline spanNulls not boolean or number",
            "statetimeline.jsonschema.json#FieldConfig",
            Box::new(|d| {
                first_of(d, "state-timeline")["fieldConfig"]["defaults"]["custom"]["spanNulls"] =
                    json!("yes")
            }),
        ),
        (
            "bar gauge display mode out of its enum",
            "bargauge.jsonschema.json#Options",
            Box::new(|d| first_of(d, "bargauge")["options"]["displayMode"] = json!("fancy")),
        ),
        (
            "query without expr",
            QUERY_CHECK,
            Box::new(|d| {
                d["panels"][1]["targets"][0]
                    .as_object_mut()
                    .expect("target")
                    .remove("expr");
            }),
        ),
        (
            "query with a misspelt field",
            QUERY_CHECK,
            Box::new(|d| d["panels"][1]["targets"][0]["legendFromat"] = json!("x")),
        ),
        (
            "query format out of its enum",
            QUERY_CHECK,
            Box::new(|d| d["panels"][1]["targets"][0]["format"] = json!("graph")),
        ),
    ];
    let mut failures = Vec::new();
    for (what, check, edit) in edits {
        let mut d = dashboard();
        edit(&mut d);
        let errors = schema_violations(&d);
        if !errors.iter().any(|e| e.ends_with(&format!("[{check}]"))) {
            failures.push(format!(
                "{check} accepted a dashboard with {what} (other violations: {errors:?})"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_panel_schema_rejects_unknown_fields() {
    // Schemas generated from TypeScript close an object only where its type has no index
    // signature: a misspelt key must be rejected in every options / field-config object checked.
    let d = dashboard();
    let mut failures = Vec::new();
    for t in ["timeseries", "stat", "table", "state-timeline", "bargauge"] {
        let (file, has_field_config) = panel_schema(t).expect("schema");
        let mut objects = vec![("options", "Options")];
        if has_field_config {
            objects.push(("custom", "FieldConfig"));
        }
        for (object, def) in objects {
            let mut broken = d.clone();
            let p = first_of(&mut broken, t);
            let target = if object == "options" {
                &mut p["options"]
            } else {
                &mut p["fieldConfig"]["defaults"]["custom"]
            };
            target["colour"] = json!("red");
            let check = format!("[{file}.jsonschema.json#{def}]");
            if !schema_violations(&broken)
                .iter()
                .any(|e| e.ends_with(&check))
            {
                failures.push(format!("{check} accepts an unknown field in {t} {object}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `KEY="value"` of scripts/install-deps.sh.
fn install_deps_pin(key: &str) -> String {
    let script =
        std::fs::read_to_string(root().join("scripts/install-deps.sh")).expect("install-deps.sh");
    let re = regex::Regex::new(&format!(r#"(?m)^{key}="([^"]+)""#)).expect("regex");
    re.captures(&script)
        .unwrap_or_else(|| panic!("scripts/install-deps.sh sets no {key}"))[1]
        .to_string()
}

#[test]
fn generated_schemas_come_from_the_pinned_packages_the_readme_names() {
    let pins = ["GRAFANA_SCHEMA_PKG", "TS_JSON_SCHEMA_PKG", "TYPESCRIPT_PKG"].map(install_deps_pin);
    let readme = std::fs::read_to_string(root().join("tests/fixtures/grafana/README.md"))
        .expect("tests/fixtures/grafana/README.md");
    for pin in &pins {
        assert!(
            readme.contains(pin),
            "tests/fixtures/grafana/README.md does not name {pin}"
        );
    }
    let stamp = root().join(SCHEMAS).join("VERSION");
    let stamp = std::fs::read_to_string(&stamp)
        .unwrap_or_else(|e| panic!("{}: {e}: {INSTALL_HINT}", stamp.display()));
    assert_eq!(
        stamp.trim(),
        pins.join(" "),
        "{SCHEMAS} was generated from other versions: {INSTALL_HINT}"
    );
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
