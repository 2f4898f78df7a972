//! Unit tests of the OpenReports builder: results per requirement, statuses, the size bound.

use super::*;
use crate::crd::{PolicyViolation, UnknownImage};
use crate::policy::evaluate::CompliantImage;
use crate::policy::pods::ContainerImage;

const REG: &str = "r.example";

fn digest(n: u32) -> String {
    format!("sha256:{n:064x}")
}

fn pod(ns: &str, name: &str, workload: (&str, &str), repo: &str, d: u32) -> PodInfo {
    PodInfo::of_workload(
        ns,
        name,
        workload,
        [ContainerImage {
            image: format!("{REG}/{repo}:1.0"),
            image_id: Some(format!("{REG}/{repo}@{}", digest(d))),
        }],
    )
}

fn req(name: &str, preset: &str) -> Requirement {
    serde_json::from_value(serde_json::json!({"name": name, "preset": preset}))
        .expect("requirement")
}

fn compliant(repo: &str, d: u32) -> CompliantImage {
    CompliantImage {
        verified: Vec::new(),
        image: format!("{REG}/{repo}"),
        reference: Some(format!("{REG}/{repo}:1.0")),
        digest: digest(d),
        pods: 1,
        workloads: vec![],
        discovery_method: Some("native".into()),
    }
}

fn violation(repo: &str, d: u32, missing: &[&str]) -> PolicyViolation {
    PolicyViolation {
        unverified: Vec::new(),
        image: format!("{REG}/{repo}"),
        reference: Some(format!("{REG}/{repo}:1.0")),
        digest: digest(d),
        pods: 1,
        missing: missing.iter().map(|m| m.to_string()).collect(),
        workloads: vec![],
        discovery_method: Some("tag-schema".into()),
    }
}

fn unknown(repo: &str, d: u32) -> UnknownImage {
    UnknownImage {
        image: format!("{REG}/{repo}"),
        digest: Some(digest(d)),
        reason: "RegistryUnavailable".into(),
        message: "connection refused".into(),
        pods: 1,
        workloads: vec![],
    }
}

fn ts(s: i64) -> ResultTimestamp {
    ResultTimestamp {
        seconds: s,
        nanos: 0,
    }
}

const POLICY: PolicyRef<'static> = PolicyRef {
    name: "p",
    uid: Some("uid-p"),
};

fn run(pods: &[PodInfo], eval: &Evaluation, reqs: &[Requirement], now: ResultTimestamp) -> Built {
    let checks = |path: &str| !path.ends_with("/excluded");
    build(&BuildInput {
        policy: POLICY,
        requirements: reqs,
        evaluation: eval,
        checks_repository: &checks,
        pods: pods.iter().collect(),
        now,
    })
}

fn statuses(r: &Report) -> Vec<(String, String, ResultStatus)> {
    r.body
        .results
        .iter()
        .map(|x| {
            (
                x.resources[0].name.clone().unwrap_or_default(),
                x.rule.clone().unwrap_or_default(),
                x.result,
            )
        })
        .collect()
}

#[test]
fn one_result_per_workload_image_and_requirement_with_every_status() {
    let pods = vec![
        pod("a", "web-0", ("StatefulSet", "web"), "signed", 1),
        pod("a", "web-1", ("StatefulSet", "web"), "signed", 1),
        pod("a", "bare", ("Pod", "bare"), "bare", 2),
        pod("a", "down", ("Pod", "down"), "down", 3),
        pod("a", "side", ("Pod", "side"), "excluded", 4),
    ];
    let eval = Evaluation {
        compliant: vec![compliant("signed", 1)],
        violations: vec![violation("bare", 2, &["sig"])],
        unknown: vec![unknown("down", 3)],
        ..Default::default()
    };
    let reqs = [req("sig", "signature"), req("sbom", "sbom")];
    let built = run(&pods, &eval, &reqs, ts(100));
    assert_eq!(built.namespaced.len(), 1);
    let r = &built.namespaced["a"];
    use ResultStatus::*;
    // Sorted: failures, errors, passes, skips; then workload, image and requirement.
    assert_eq!(
        statuses(r),
        vec![
            ("bare".into(), "sig".into(), Fail),
            ("down".into(), "sbom".into(), Error),
            ("down".into(), "sig".into(), Error),
            ("bare".into(), "sbom".into(), Pass),
            ("web".into(), "sbom".into(), Pass),
            ("web".into(), "sig".into(), Pass),
            ("side".into(), "sbom".into(), Skip),
            ("side".into(), "sig".into(), Skip),
        ]
    );
    assert_eq!(
        r.body.summary,
        Summary {
            pass: 3,
            fail: 1,
            warn: 0,
            error: 2,
            skip: 2
        }
    );
    let fail = &r.body.results[0];
    assert_eq!(fail.policy, "p");
    assert_eq!(fail.source, SOURCE);
    assert!(fail.scored);
    assert_eq!(fail.timestamp, ts(100));
    assert_eq!(fail.properties["digest"], digest(2));
    assert_eq!(fail.properties["image"], format!("{REG}/bare:1.0"));
    assert_eq!(fail.properties["missing"], "sig");
    assert_eq!(fail.properties["discoveryMethod"], "tag-schema");
    assert_eq!(fail.properties["preset"], "signature");
    assert_eq!(
        fail.resources,
        vec![ReportObjectRef {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            namespace: Some("a".into()),
            name: Some("bare".into()),
            uid: None,
        }]
    );
    assert!(fail.message.as_deref().is_some_and(|m| m.contains("sig")));
    let err = &r.body.results[1];
    assert_eq!(err.properties["reason"], "RegistryUnavailable");
    // Two replicas of one StatefulSet: one result per requirement, counting both pods.
    let web = r
        .body
        .results
        .iter()
        .find(|x| x.resources[0].name.as_deref() == Some("web"))
        .expect("web");
    assert_eq!(web.properties["pods"], "2");
    assert_eq!(web.resources[0].api_version.as_deref(), Some("apps/v1"));
    assert_eq!(web.properties["discoveryMethod"], "native");
    // Metadata: name, namespace, labels, owner (a cluster-scoped ReferrerPolicy).
    assert_eq!(r.name(), "refwarden-p");
    assert_eq!(r.metadata.namespace.as_deref(), Some("a"));
    let labels = r.metadata.labels.clone().unwrap_or_default();
    assert_eq!(labels[LABEL_POLICY], "p");
    assert_eq!(labels[LABEL_MANAGED_BY], "refwarden");
    let owners = r.metadata.owner_references.clone().unwrap_or_default();
    assert_eq!(owners.len(), 1);
    assert_eq!(
        (owners[0].kind.as_str(), owners[0].uid.as_str()),
        ("ReferrerPolicy", "uid-p")
    );
    assert_eq!(r.omitted(), 0);
    assert_eq!(
        r.body.scope.as_ref().and_then(|s| s.kind.as_deref()),
        Some("Namespace")
    );
    // The ClusterReport: one line per (namespace × requirement), the summary of every result.
    let c = &built.cluster;
    assert_eq!(c.kind, CLUSTER_REPORT_KIND);
    assert_eq!(c.metadata.namespace, None);
    assert_eq!(c.body.summary, r.body.summary);
    assert_eq!(
        statuses(c),
        vec![
            ("a".into(), "sig".into(), Fail),
            ("a".into(), "sbom".into(), Error)
        ]
    );
    assert_eq!(c.body.results[0].properties["fail"], "1");
}

#[test]
fn a_report_per_namespace_deterministic_and_hashed_without_timestamps() {
    let pods = vec![
        pod("b", "x", ("Deployment", "x"), "signed", 1),
        pod("a", "y", ("Deployment", "y"), "bare", 2),
    ];
    let eval = Evaluation {
        compliant: vec![compliant("signed", 1)],
        violations: vec![violation("bare", 2, &["sig"])],
        ..Default::default()
    };
    let reqs = [req("sig", "signature")];
    let one = run(&pods, &eval, &reqs, ts(100));
    assert_eq!(one.namespaced.keys().collect::<Vec<_>>(), vec!["a", "b"]);
    assert_eq!(one, run(&pods, &eval, &reqs, ts(100)), "deterministic");
    let later = run(&pods, &eval, &reqs, ts(999));
    for (ns, r) in &one.namespaced {
        assert_eq!(
            r.hash(),
            later.namespaced[ns].hash(),
            "timestamps are not content"
        );
        assert!(r.hash().is_some());
    }
    assert_ne!(
        one.namespaced["a"].body.results[0].timestamp,
        later.namespaced["a"].body.results[0].timestamp
    );
    // A compliance change changes the hash.
    let fixed = Evaluation {
        compliant: vec![compliant("signed", 1), compliant("bare", 2)],
        ..Default::default()
    };
    let after = run(&pods, &fixed, &reqs, ts(100));
    assert_ne!(one.namespaced["a"].hash(), after.namespaced["a"].hash());
    assert_eq!(one.namespaced["b"].hash(), after.namespaced["b"].hash());
    assert_eq!(
        after.namespaced["a"].body.results[0].result,
        ResultStatus::Pass
    );
}

#[test]
fn images_never_discovered_are_errors_and_names_are_bounded() {
    let pods = vec![pod("a", "x", ("Pod", "x"), "lost", 9)];
    let built = run(
        &pods,
        &Evaluation::default(),
        &[req("sig", "signature")],
        ts(1),
    );
    let r = &built.namespaced["a"];
    assert_eq!(r.body.results[0].result, ResultStatus::Error);
    assert_eq!(r.body.results[0].properties["reason"], "NotDiscovered");
    let long = "p".repeat(253);
    let name = report_name(&long);
    assert!(
        name.len() <= 253 && name.starts_with("refwarden-p"),
        "{name}"
    );
    assert_eq!(name, report_name(&long), "stable");
    let label = policy_label_value(&long);
    assert!(label.len() <= 63 && label.starts_with("sha256-"), "{label}");
}

/// 5,000 pods, each its own workload, in one namespace: the Report stays within the bound, says
/// how many results it leaves out, and its summary still counts every one.
#[test]
fn five_thousand_pods_stay_within_the_size_bound() {
    let pods: Vec<PodInfo> = (0..5_000)
        .map(|i| {
            pod(
                "big",
                &format!("pod-{i:05}"),
                ("Pod", &format!("pod-{i:05}")),
                "bare",
                2,
            )
        })
        .collect();
    let eval = Evaluation {
        violations: vec![violation("bare", 2, &["sig"])],
        ..Default::default()
    };
    let reqs = [req("sig", "signature"), req("sbom", "sbom")];
    let built = run(&pods, &eval, &reqs, ts(1));
    let r = &built.namespaced["big"];
    let size = serde_json::to_vec(r).expect("json").len();
    assert!(size <= MAX_REPORT_BYTES, "{size} bytes");
    assert!(r.body.results.len() <= MAX_RESULTS);
    assert_eq!(r.body.results.len() + r.omitted(), 10_000);
    assert!(r.omitted() > 0);
    assert_eq!(r.body.summary.fail, 5_000);
    assert_eq!(r.body.summary.pass, 5_000);
    // What is kept first: the failures.
    assert!(
        r.body
            .results
            .iter()
            .all(|x| x.result == ResultStatus::Fail)
    );
    let c = &built.cluster;
    assert_eq!(c.body.summary.total(), 10_000);
    assert_eq!(c.body.results.len(), 2);
    eprintln!(
        "5,000 pods: Report {size} bytes, {} results kept, {} omitted",
        r.body.results.len(),
        r.omitted()
    );
}

#[test]
fn the_byte_bound_applies_before_the_count_bound() {
    // Long image names make each result large: fewer than MAX_RESULTS fit in MAX_REPORT_BYTES.
    let repo = format!("team/{}", "x".repeat(400));
    let pods: Vec<PodInfo> = (0..3_000)
        .map(|i| pod("a", &format!("p{i}"), ("Pod", &format!("p{i}")), &repo, 2))
        .collect();
    let eval = Evaluation {
        violations: vec![violation(&repo, 2, &["sig"])],
        ..Default::default()
    };
    let built = run(&pods, &eval, &[req("sig", "signature")], ts(1));
    let r = &built.namespaced["a"];
    let size = serde_json::to_vec(r).expect("json").len();
    assert!(size <= MAX_REPORT_BYTES, "{size}");
    assert!(
        r.body.results.len() < MAX_RESULTS,
        "{}",
        r.body.results.len()
    );
    assert!(
        size > MAX_REPORT_BYTES - 10_000,
        "filled up to the bound: {size}"
    );
    assert_eq!(r.body.results.len() + r.omitted(), 3_000);
}

#[test]
fn the_types_schema_declares_every_field_written() {
    let schema = openapi_schema();
    let props = schema["properties"].as_object().expect("properties");
    for f in [
        "apiVersion",
        "kind",
        "metadata",
        "source",
        "scope",
        "configuration",
        "summary",
        "results",
    ] {
        assert!(props.contains_key(f), "{f}: {schema}");
    }
    let result = &schema["properties"]["results"]["items"];
    assert_eq!(
        result["properties"]["result"]["enum"],
        serde_json::json!(["fail", "error", "warn", "pass", "skip"])
    );
    assert_eq!(
        result["properties"]["properties"]["additionalProperties"]["type"],
        "string"
    );
    assert_eq!(
        result["properties"]["timestamp"]["properties"]["nanos"]["format"],
        "int32"
    );
}
