//! The ReferrerPolicy CRD rejects bad specs at apply time (openAPIV3Schema and
//! CEL, checked offline by `refwarden::validation`): unknown presets, an empty
//! `require`, bad globs, bad durations, bad names, out-of-range numbers.

use kube::CustomResourceExt;
use refwarden::crd::ReferrerPolicy;
use serde_json::{Value, json};

fn policy(spec: Value) -> Value {
    json!({
        "apiVersion": "refwarden.dev/v1alpha1",
        "kind": "ReferrerPolicy",
        "metadata": {"name": "test", "namespace": "default"},
        "spec": spec,
    })
}

fn errors(spec: Value) -> Vec<String> {
    match refwarden::validation::validate(&ReferrerPolicy::crd(), &policy(spec)) {
        Ok(()) => vec![],
        Err(v) => v.iter().map(ToString::to_string).collect(),
    }
}

/// A valid spec with `patch` merged into it (objects merged one level deep).
fn with(patch: Value) -> Value {
    let mut spec = json!({"require": [{"name": "signature", "preset": "signature"}]});
    if let (Some(s), Some(p)) = (spec.as_object_mut(), patch.as_object()) {
        for (k, v) in p {
            s.insert(k.clone(), v.clone());
        }
    }
    spec
}

#[track_caller]
fn assert_rejected(spec: Value, field: &str) {
    let errs = errors(spec.clone());
    assert!(
        errs.iter().any(|e| e.contains(field)),
        "spec {spec} should be rejected naming {field}, got {errs:?}"
    );
}

#[test]
fn valid_specs_pass() {
    for spec in [
        with(json!({})),
        with(json!({
            "images": {"include": ["ghcr.io/acme/**", "docker.io/library/*"], "exclude": ["**/debug-*"]},
            "subjectMatch": "Exact",
            "registryProfiles": ["ghcr"],
            "recheckInterval": "1h30m",
            "maxReportedViolations": 500,
        })),
        json!({"require": [
            {"name": "sbom", "artifactTypes": ["application/spdx+json"], "minCount": 2},
            {"name": "sig", "legacyTagSuffixes": ["sig"]},
        ]}),
    ] {
        assert_eq!(errors(spec.clone()), Vec::<String>::new(), "{spec}");
    }
}

#[test]
fn require_is_checked() {
    assert_rejected(json!({}), "require");
    assert_rejected(json!({"require": []}), "require");
    assert_rejected(
        json!({"require": [{"name": "x", "preset": "Tattoo"}]}),
        "preset",
    );
    // CEL: something to look for.
    assert_rejected(json!({"require": [{"name": "x"}]}), "preset");
    assert_rejected(
        json!({"require": [{"name": "x", "artifactTypes": [], "legacyTagSuffixes": []}]}),
        "preset",
    );
    assert_rejected(
        json!({"require": [{"name": "Bad_Name", "preset": "sbom"}]}),
        "name",
    );
    assert_rejected(json!({"require": [{"name": "", "preset": "sbom"}]}), "name");
    assert_rejected(
        json!({"require": [{"name": "-x", "preset": "sbom"}]}),
        "name",
    );
    assert_rejected(
        json!({"require": [{"name": "x", "artifactTypes": ["not a media type"]}]}),
        "artifactTypes",
    );
    assert_rejected(
        json!({"require": [{"name": "x", "legacyTagSuffixes": ["exe"]}]}),
        "legacyTagSuffixes",
    );
    for n in [0, 101, -1] {
        assert_rejected(
            json!({"require": [{"name": "x", "preset": "sbom", "minCount": n}]}),
            "minCount",
        );
    }
    let many: Vec<Value> = (0..33)
        .map(|i| json!({"name": format!("r{i}"), "preset": "sbom"}))
        .collect();
    assert_rejected(json!({"require": many}), "require");
}

#[test]
fn other_fields_are_checked() {
    for glob in [
        "Ghcr.io/x",
        "a//b",
        "/a",
        "a/",
        "a b",
        "nginx",
        "*",
        "ghcr.io",
    ] {
        assert_rejected(with(json!({"images": {"include": [glob]}})), "include");
        assert_rejected(with(json!({"images": {"exclude": [glob]}})), "exclude");
    }
    for d in ["", "10", "1d", "ten minutes", "-5m", "5 m"] {
        assert_rejected(with(json!({"recheckInterval": d})), "recheckInterval");
    }
    assert_rejected(with(json!({"subjectMatch": "Fuzzy"})), "subjectMatch");
    for n in [0, 501] {
        assert_rejected(
            with(json!({"maxReportedViolations": n})),
            "maxReportedViolations",
        );
    }
    assert_rejected(with(json!({"recheckInterval": 5})), "recheckInterval");
    assert_rejected(with(json!({"require": "signature"})), "require");
}
