//! OpenReports output (`openreports.io/v1alpha1` `Report` and `ClusterReport`), the successor of
//! the `wgpolicyk8s.io` PolicyReport API that Kyverno (1.15+, `--openreportsEnabled`), Policy
//! Reporter and Kubewarden's UI read.
//!
//! Pure: [`build`] turns one ReferrerPolicy's [`Evaluation`] and the pods it selects into one
//! `Report` per namespace and one `ClusterReport` summary; the controller
//! (`controller::openreports`) writes them. The types (in `api`, re-exported here) are refwarden's
//! own, written from the published API, which is **not** shipped here (install it from the
//! OpenReports project, see the README). They follow, field for field where refwarden uses a field:
//!
//! - `openreports/reports-api` `apis/openreports.io/v1alpha1/report_types.go` at commit
//!   `6e36367da1fba084d29385a3685ced74809ead6e` (`Report`, `ReportSummary`, `ReportResult`,
//!   `Limits`, `ReportConfiguration`; `ClusterReport` has the same fields, cluster-scoped),
//! - `apis/openreports.io/v1alpha1/common.go` at `7c718a47e0790481230090cad90e3b29dd4e3712`
//!   (result and severity values),
//! - the CRDs `crd/openreports.io/v1alpha1/openreports.io_clusterreports.yaml` at
//!   `6e36367da1fba084d29385a3685ced74809ead6e` and `chart/templates/openreports.io_reports.yaml`
//!   at `d63112a8e308b8b7820a02e113438c883d792dc8` (required: `results[].policy`,
//!   `results[].timestamp.{seconds,nanos}` when a timestamp is set, `configuration.limits` when a
//!   configuration is set; `results[].result` ∈ pass/fail/warn/error/skip; `severity` ∈
//!   critical/high/medium/low/info; `results[].resources` is the Go `Subjects` field).
//!
//! One result per (top-level workload × image × requirement): a workload running one image has
//! one result per requirement of the policy; the image and its digest are properties, so a
//! workload running two images has a result for each. Results are sorted (failures first, then
//! errors, passes, skips; then by workload, image, digest and requirement) and bounded: at most
//! [`MAX_RESULTS`] and [`MAX_REPORT_BYTES`] of JSON per object (etcd refuses objects over
//! 1.5 MiB); what is left out is counted in the [`ANNOTATION_OMITTED`] annotation, and the
//! `summary` always counts every result.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use sha2::{Digest, Sha256};

use crate::crd::{Requirement, WorkloadRef};
use crate::policy::Evaluation;
use crate::policy::pods::{ImageSource, PodInfo};

mod api;

pub use api::{
    Configuration, Limits, Report, ReportBody, ReportObjectRef, ReportResult, ResultSeverity,
    ResultStatus, ResultTimestamp, Summary, crd_from_types, openapi_schema,
};

/// API group of the OpenReports API.
pub const GROUP: &str = "openreports.io";
/// Version of the OpenReports API written.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of the objects written.
pub const API_VERSION: &str = "openreports.io/v1alpha1";
/// Kind of the namespaced report.
pub const REPORT_KIND: &str = "Report";
/// Kind of the cluster-scoped report.
pub const CLUSTER_REPORT_KIND: &str = "ClusterReport";
/// `source` of every report and result.
pub const SOURCE: &str = "refwarden";
/// `category` of every result.
pub const CATEGORY: &str = "Supply Chain Security";
/// Results per object at most (also written as `configuration.limits.maxResults`).
pub const MAX_RESULTS: usize = 2_000;
/// Serialised JSON size of one object at most (etcd's request limit is 1.5 MiB; this leaves room
/// for `managedFields` and the API server's metadata).
pub const MAX_REPORT_BYTES: usize = 1024 * 1024;
/// Bytes kept free for the annotations refwarden adds last and the API server's metadata.
const SERVER_METADATA_BYTES: usize = 2048;
/// Label: the ReferrerPolicy a report belongs to ([`policy_label_value`]).
pub const LABEL_POLICY: &str = "refwarden.dev/policy";
/// Label: who manages the object (`refwarden`), as Kyverno labels its reports.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// Annotation: how many results were left out by the size bound (absent: none).
pub const ANNOTATION_OMITTED: &str = "refwarden.dev/results-omitted";
/// Annotation: hash of the content without timestamps ([`content_hash`]): an unchanged report is
/// not written again, also after a restart.
pub const ANNOTATION_HASH: &str = "refwarden.dev/content-hash";

/// The ReferrerPolicy whose reports are built.
#[derive(Clone, Copy, Debug)]
pub struct PolicyRef<'a> {
    /// Name.
    pub name: &'a str,
    /// UID (the owner of the reports; `None`: no ownerReference).
    pub uid: Option<&'a str>,
}

/// What [`build`] reads.
pub struct BuildInput<'a> {
    /// The policy.
    pub policy: PolicyRef<'a>,
    /// Its requirements, in spec order.
    pub requirements: &'a [Requirement],
    /// Its evaluation.
    pub evaluation: &'a Evaluation,
    /// Whether `spec.images` checks a repository (`registry/path`).
    pub checks_repository: &'a dyn Fn(&str) -> bool,
    /// The pods the policy selects.
    pub pods: Vec<&'a PodInfo>,
    /// When the results were found.
    pub now: ResultTimestamp,
}

/// One policy's reports.
#[derive(Clone, Debug, PartialEq)]
pub struct Built {
    /// One Report per namespace with selected pods.
    pub namespaced: BTreeMap<String, Report>,
    /// The ClusterReport: one result per (namespace × requirement), and the summary of every
    /// namespace's results.
    pub cluster: Report,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ResultVerdict<'a> {
    Compliant {
        method: Option<&'a str>,
    },
    NonCompliant {
        missing: &'a [String],
        method: Option<&'a str>,
    },
    Unknown {
        reason: &'a str,
        message: &'a str,
    },
    NotChecked,
}

/// One (workload, image, digest) of a namespace.
#[derive(Debug)]
struct Use<'a> {
    reference: &'a str,
    pods: u32,
    verdict: ResultVerdict<'a>,
}

/// Name of the reports of a policy: `refwarden-<policy>`, shortened with a hash to fit a
/// DNS subdomain (253).
pub fn report_name(policy: &str) -> String {
    let name = format!("refwarden-{policy}");
    if name.len() <= 253 {
        return name;
    }
    let h = hex8(policy);
    let mut cut = 253 - h.len() - 1;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}-{h}", name[..cut].trim_end_matches(['-', '.']))
}

/// Value of [`LABEL_POLICY`]: the policy name when it is a valid label value (≤ 63), else a
/// hash of it (`sha256-<16 hex>`).
pub fn policy_label_value(policy: &str) -> String {
    if policy.len() <= 63 {
        policy.to_string()
    } else {
        format!("sha256-{}", &sha_hex(policy.as_bytes())[..16])
    }
}

fn sha_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn hex8(s: &str) -> String {
    sha_hex(s.as_bytes())[..8].to_string()
}

fn workload_api_version(kind: &str) -> &'static str {
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => "apps/v1",
        "Job" | "CronJob" => "batch/v1",
        _ => "v1",
    }
}

fn workload_ref(w: &WorkloadRef) -> ReportObjectRef {
    ReportObjectRef {
        api_version: Some(workload_api_version(&w.kind).to_string()),
        kind: Some(w.kind.clone()),
        namespace: Some(w.namespace.clone()),
        name: Some(w.name.clone()),
        uid: None,
    }
}

fn namespace_ref(ns: &str) -> ReportObjectRef {
    ReportObjectRef {
        api_version: Some("v1".into()),
        kind: Some("Namespace".into()),
        name: Some(ns.to_string()),
        ..Default::default()
    }
}

fn requirement_properties(r: &Requirement, props: &mut BTreeMap<String, String>) {
    if let Some(p) = r.preset
        && let Ok(serde_json::Value::String(s)) = serde_json::to_value(p)
    {
        props.insert("preset".into(), s);
    }
    if !r.formats.is_empty() {
        props.insert(
            "formats".into(),
            r.formats
                .iter()
                .map(|f| f.as_str())
                .collect::<Vec<_>>()
                .join(","),
        );
    }
}

fn metadata(
    name: String,
    namespace: Option<&str>,
    policy: PolicyRef<'_>,
    omitted: usize,
) -> ObjectMeta {
    let labels = BTreeMap::from([
        (LABEL_MANAGED_BY.to_string(), SOURCE.to_string()),
        (LABEL_POLICY.to_string(), policy_label_value(policy.name)),
    ]);
    let annotations = (omitted > 0)
        .then(|| BTreeMap::from([(ANNOTATION_OMITTED.to_string(), omitted.to_string())]));
    ObjectMeta {
        name: Some(name),
        namespace: namespace.map(str::to_string),
        labels: Some(labels),
        annotations,
        owner_references: policy.uid.map(|uid| {
            vec![OwnerReference {
                api_version: "refwarden.dev/v1alpha1".into(),
                kind: "ReferrerPolicy".into(),
                name: policy.name.to_string(),
                uid: uid.to_string(),
                controller: Some(true),
                block_owner_deletion: None,
            }]
        }),
        ..Default::default()
    }
}

type SortKey<'a> = (
    ResultStatus,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a String>,
    Option<&'a String>,
    Option<&'a str>,
);

/// Failures first, then errors, passes, skips; then namespace, workload name and kind, image,
/// digest, requirement.
fn sort_key(r: &ReportResult) -> SortKey<'_> {
    let res = r.resources.first();
    (
        r.result,
        res.and_then(|o| o.namespace.as_deref()),
        res.and_then(|o| o.name.as_deref()),
        res.and_then(|o| o.kind.as_deref()),
        r.properties.get("image"),
        r.properties.get("digest"),
        r.rule.as_deref(),
    )
}

/// A report of `results` (unsorted): sorts them, counts them, and keeps what fits the bound.
fn assemble(
    kind: &str,
    namespace: Option<&str>,
    scope: ReportObjectRef,
    policy: PolicyRef<'_>,
    mut results: Vec<ReportResult>,
    summary: Option<Summary>,
) -> Report {
    results.sort_by(|a, b| sort_key(a).cmp(&sort_key(b)));
    let summary = summary.unwrap_or_else(|| {
        let mut s = Summary::default();
        for r in &results {
            s.add(r.result);
        }
        s
    });
    let mut report = Report {
        api_version: API_VERSION.into(),
        kind: kind.into(),
        metadata: metadata(report_name(policy.name), namespace, policy, 0),
        body: ReportBody {
            source: SOURCE.into(),
            scope: Some(scope),
            configuration: Some(Configuration {
                limits: Limits {
                    max_results: MAX_RESULTS as i64,
                    status_filter: vec![],
                },
            }),
            summary,
            results: Vec::new(),
        },
    };
    // Room for the annotations added below (omitted count, content hash) and for what the API
    // server adds (uid, resourceVersion, creationTimestamp, generation, managedFields): the
    // stored object stays within the bound.
    let base = serde_json::to_vec(&report).map(|v| v.len()).unwrap_or(0) + SERVER_METADATA_BYTES;
    let mut size = base;
    let mut kept = 0;
    for r in &results {
        let len = serde_json::to_vec(r)
            .map(|v| v.len())
            .unwrap_or(usize::MAX / 2)
            + 1;
        if kept >= MAX_RESULTS || size + len > MAX_REPORT_BYTES {
            break;
        }
        size += len;
        kept += 1;
    }
    let omitted = results.len() - kept;
    results.truncate(kept);
    report.body.results = results;
    report.metadata = metadata(report_name(policy.name), namespace, policy, omitted);
    let hash = content_hash(&report);
    report
        .metadata
        .annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(ANNOTATION_HASH.into(), hash);
    report
}

/// Hash of a report's content without timestamps and without [`ANNOTATION_HASH`] (what decides
/// whether it is written again).
pub fn content_hash(report: &Report) -> String {
    let mut r = report.clone();
    for res in &mut r.body.results {
        res.timestamp = ResultTimestamp::default();
    }
    if let Some(a) = &mut r.metadata.annotations {
        a.remove(ANNOTATION_HASH);
    }
    sha_hex(&serde_json::to_vec(&r).unwrap_or_default())[..32].to_string()
}

/// Builds one policy's reports (pure; sorted and deterministic).
pub fn build(input: &BuildInput<'_>) -> Built {
    let eval = input.evaluation;
    let mut by_digest: HashMap<(&str, &str), ResultVerdict<'_>> = HashMap::new();
    let mut by_image: HashMap<&str, ResultVerdict<'_>> = HashMap::new();
    let compliant = eval.compliant.iter().map(|c| {
        let v = ResultVerdict::Compliant {
            method: c.discovery_method.as_deref(),
        };
        (&c.image, &c.digest, &c.reference, v)
    });
    let violations = eval.violations.iter().map(|c| {
        let v = ResultVerdict::NonCompliant {
            missing: &c.missing,
            method: c.discovery_method.as_deref(),
        };
        (&c.image, &c.digest, &c.reference, v)
    });
    for (image, digest, reference, v) in compliant.chain(violations) {
        by_digest.insert((image, digest), v);
        if let Some(r) = reference {
            by_image.entry(r).or_insert(v);
        }
    }
    for u in &eval.unknown {
        let v = ResultVerdict::Unknown {
            reason: &u.reason,
            message: &u.message,
        };
        match &u.digest {
            Some(d) => {
                by_digest.insert((&u.image, d), v);
                by_image.entry(&u.image).or_insert(v);
            }
            None => {
                by_image.insert(&u.image, v);
            }
        }
    }
    const NOT_DISCOVERED: ResultVerdict<'static> = ResultVerdict::Unknown {
        reason: "NotDiscovered",
        message: "referrers were not discovered for this image",
    };

    // namespace → (workload, image, digest) → use
    type Key<'a> = (&'a WorkloadRef, String, Option<String>);
    let mut uses: BTreeMap<&str, BTreeMap<Key<'_>, Use<'_>>> = BTreeMap::new();
    for pod in &input.pods {
        for c in &pod.images {
            let checked = c
                .repository_path
                .as_deref()
                .is_none_or(|p| (input.checks_repository)(p));
            let (image, digest, verdict) = match &c.source {
                ImageSource::Digest { key, .. } => {
                    let image = key.repository_path();
                    let v = if !checked {
                        ResultVerdict::NotChecked
                    } else {
                        by_digest
                            .get(&(image.as_str(), key.digest.as_str()))
                            .copied()
                            .unwrap_or(NOT_DISCOVERED)
                    };
                    (image, Some(key.digest.clone()), v)
                }
                ImageSource::Tag(r) => {
                    let whole = r.whole();
                    let v = if !checked {
                        ResultVerdict::NotChecked
                    } else {
                        by_image
                            .get(whole.as_str())
                            .copied()
                            .unwrap_or(NOT_DISCOVERED)
                    };
                    (whole, None, v)
                }
                ImageSource::Unresolvable {
                    image,
                    reason,
                    message,
                } => {
                    let v = if !checked {
                        ResultVerdict::NotChecked
                    } else {
                        by_image
                            .get(image.as_str())
                            .copied()
                            .unwrap_or(ResultVerdict::Unknown {
                                reason: reason.as_str(),
                                message,
                            })
                    };
                    (image.clone(), None, v)
                }
            };
            let entry = uses
                .entry(pod.namespace.as_str())
                .or_default()
                .entry((&pod.workload, image, digest))
                .or_insert(Use {
                    reference: &c.container.image,
                    pods: 0,
                    verdict,
                });
            entry.pods += 1;
        }
    }

    let mut namespaced = BTreeMap::new();
    let mut cluster_results = Vec::new();
    let mut total = Summary::default();
    for (ns, by_key) in uses {
        let mut results = Vec::new();
        for ((workload, image, digest), u) in &by_key {
            for req in input.requirements {
                results.push(result_of(input, req, workload, image, digest.as_deref(), u));
            }
        }
        let report = assemble(
            REPORT_KIND,
            Some(ns),
            namespace_ref(ns),
            input.policy,
            results,
            None,
        );
        total.sum(&report.body.summary);
        // The namespace's line in the ClusterReport, per requirement. Counted from every
        // result, not only those kept.
        for req in input.requirements {
            let mut s = Summary::default();
            for u in by_key.values() {
                s.add(status_of(req, &u.verdict));
            }
            cluster_results.push(namespace_result(input, req, ns, &s));
        }
        namespaced.insert(ns.to_string(), report);
    }
    let cluster = assemble(
        CLUSTER_REPORT_KIND,
        None,
        ReportObjectRef {
            api_version: Some("refwarden.dev/v1alpha1".into()),
            kind: Some("ReferrerPolicy".into()),
            name: Some(input.policy.name.to_string()),
            uid: input.policy.uid.map(str::to_string),
            ..Default::default()
        },
        input.policy,
        cluster_results,
        Some(total),
    );
    Built {
        namespaced,
        cluster,
    }
}

fn status_of(req: &Requirement, v: &ResultVerdict<'_>) -> ResultStatus {
    match v {
        ResultVerdict::Compliant { .. } => ResultStatus::Pass,
        ResultVerdict::NonCompliant { missing, .. } if missing.contains(&req.name) => {
            ResultStatus::Fail
        }
        ResultVerdict::NonCompliant { .. } => ResultStatus::Pass,
        ResultVerdict::Unknown { .. } => ResultStatus::Error,
        ResultVerdict::NotChecked => ResultStatus::Skip,
    }
}

fn result_of(
    input: &BuildInput<'_>,
    req: &Requirement,
    workload: &WorkloadRef,
    image: &str,
    digest: Option<&str>,
    u: &Use<'_>,
) -> ReportResult {
    let status = status_of(req, &u.verdict);
    let mut props = BTreeMap::new();
    props.insert("image".to_string(), u.reference.to_string());
    if let Some(d) = digest {
        props.insert("digest".into(), d.to_string());
    }
    props.insert("pods".into(), u.pods.to_string());
    requirement_properties(req, &mut props);
    let at = match digest {
        Some(d) => format!("{image}@{d}"),
        None => image.to_string(),
    };
    let message = match u.verdict {
        ResultVerdict::Compliant { method } | ResultVerdict::NonCompliant { method, .. } => {
            if let Some(m) = method {
                props.insert("discoveryMethod".into(), m.to_string());
            }
            if let ResultVerdict::NonCompliant { missing, .. } = u.verdict {
                props.insert("missing".into(), missing.join(","));
            }
            if status == ResultStatus::Fail {
                format!("{at} has no referrer meeting requirement {}", req.name)
            } else {
                format!("{at} carries a referrer meeting requirement {}", req.name)
            }
        }
        ResultVerdict::Unknown { reason, message } => {
            props.insert("reason".into(), reason.to_string());
            format!("{at}: not evaluated ({reason}): {message}")
        }
        ResultVerdict::NotChecked => {
            props.insert("reason".into(), "NotSelectedByImages".into());
            format!(
                "{at} is not checked by spec.images of ReferrerPolicy {}",
                input.policy.name
            )
        }
    };
    ReportResult {
        source: SOURCE.into(),
        policy: input.policy.name.to_string(),
        rule: Some(req.name.clone()),
        category: Some(CATEGORY.into()),
        severity: None,
        timestamp: input.now,
        result: status,
        scored: true,
        resources: vec![workload_ref(workload)],
        message: Some(message),
        properties: props,
    }
}

fn namespace_result(
    input: &BuildInput<'_>,
    req: &Requirement,
    ns: &str,
    s: &Summary,
) -> ReportResult {
    let status = if s.fail > 0 {
        ResultStatus::Fail
    } else if s.error > 0 {
        ResultStatus::Error
    } else if s.pass > 0 {
        ResultStatus::Pass
    } else {
        ResultStatus::Skip
    };
    let mut props = BTreeMap::from([
        ("pass".to_string(), s.pass.to_string()),
        ("fail".to_string(), s.fail.to_string()),
        ("error".to_string(), s.error.to_string()),
        ("skip".to_string(), s.skip.to_string()),
    ]);
    requirement_properties(req, &mut props);
    ReportResult {
        source: SOURCE.into(),
        policy: input.policy.name.to_string(),
        rule: Some(req.name.clone()),
        category: Some(CATEGORY.into()),
        severity: None,
        timestamp: input.now,
        result: status,
        scored: true,
        resources: vec![namespace_ref(ns)],
        message: Some(format!(
            "namespace {ns}: requirement {} met by {} of {} workload images ({} failing, {} not evaluated, {} not checked)",
            req.name,
            s.pass,
            s.total(),
            s.fail,
            s.error,
            s.skip
        )),
        properties: props,
    }
}

#[cfg(test)]
mod tests;
