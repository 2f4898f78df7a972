//! The OpenReports API types refwarden writes (`Report` / `ClusterReport` and their fields, as
//! published upstream: see the parent module) and the schema they declare.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{ANNOTATION_HASH, ANNOTATION_OMITTED, CLUSTER_REPORT_KIND, GROUP, VERSION};

/// `results[].result`.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ResultStatus {
    /// The requirement is not met.
    Fail,
    /// The requirement could not be evaluated (the image is Unknown).
    Error,
    /// Not met, not scored (refwarden does not write it).
    Warn,
    /// The requirement is met.
    Pass,
    /// The image is not checked by the policy (`spec.images` leaves it out).
    Skip,
}

/// `results[].severity` (refwarden leaves it unset).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResultSeverity {
    /// critical
    Critical,
    /// high
    High,
    /// medium
    Medium,
    /// low
    Low,
    /// info
    Info,
}

/// `metav1.Timestamp` (seconds and nanos).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ResultTimestamp {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Nanoseconds, 0 to 999,999,999.
    pub nanos: i32,
}

impl ResultTimestamp {
    /// From a Kubernetes `Time`.
    pub fn from_time(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> Self {
        Self {
            seconds: t.0.as_second(),
            nanos: t.0.subsec_nanosecond().max(0),
        }
    }
}

/// The part of `corev1.ObjectReference` refwarden writes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportObjectRef {
    /// API version of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Namespace of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// UID of the referent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// `ReportSummary`: counts of results.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Summary {
    /// Requirements met.
    pub pass: i64,
    /// Requirements not met.
    pub fail: i64,
    /// Not met and not scored.
    pub warn: i64,
    /// Not evaluated.
    pub error: i64,
    /// Not checked.
    pub skip: i64,
}

impl Summary {
    pub(super) fn add(&mut self, s: ResultStatus) {
        match s {
            ResultStatus::Pass => self.pass += 1,
            ResultStatus::Fail => self.fail += 1,
            ResultStatus::Warn => self.warn += 1,
            ResultStatus::Error => self.error += 1,
            ResultStatus::Skip => self.skip += 1,
        }
    }

    pub(super) fn sum(&mut self, o: &Summary) {
        self.pass += o.pass;
        self.fail += o.fail;
        self.warn += o.warn;
        self.error += o.error;
        self.skip += o.skip;
    }

    /// Every result counted.
    pub fn total(&self) -> i64 {
        self.pass + self.fail + self.warn + self.error + self.skip
    }
}

/// `Limits`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Results in the report at most.
    pub max_results: i64,
    /// Only results with these statuses are reported (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub status_filter: Vec<ResultStatus>,
}

/// `ReportConfiguration`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Configuration {
    /// Limits of the report.
    pub limits: Limits,
}

/// `ReportResult`: one requirement of one policy on one image of one workload.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportResult {
    /// `refwarden`.
    pub source: String,
    /// The ReferrerPolicy.
    pub policy: String,
    /// The requirement (`spec.require[].name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// [`CATEGORY`](super::CATEGORY).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<ResultSeverity>,
    /// When the result was found (the write that changed the report).
    pub timestamp: ResultTimestamp,
    /// The outcome.
    pub result: ResultStatus,
    /// Scored results (all of refwarden's).
    pub scored: bool,
    /// The workload (Go field `Subjects`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ReportObjectRef>,
    /// Human-readable outcome.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `image`, `digest`, `discoveryMethod`, `missing`, `pods`, `preset`, `formats`, `reason`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

/// The fields of a `Report` / `ClusterReport` beside `apiVersion`, `kind` and `metadata`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportBody {
    /// `refwarden`.
    pub source: String,
    /// The Namespace (Report) or the ReferrerPolicy (ClusterReport).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ReportObjectRef>,
    /// [`MAX_RESULTS`](super::MAX_RESULTS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<Configuration>,
    /// Counts of every result (also those left out by the size bound).
    pub summary: Summary,
    /// Results, sorted and bounded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub results: Vec<ReportResult>,
}

/// A `Report` or `ClusterReport` object.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// [`API_VERSION`](super::API_VERSION).
    pub api_version: String,
    /// [`REPORT_KIND`](super::REPORT_KIND) or [`CLUSTER_REPORT_KIND`](super::CLUSTER_REPORT_KIND).
    pub kind: String,
    /// Name, namespace, labels, annotations, ownerReferences.
    pub metadata: ObjectMeta,
    /// The rest.
    #[serde(flatten)]
    pub body: ReportBody,
}

impl Report {
    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    /// Results left out by the size bound.
    pub fn omitted(&self) -> usize {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_OMITTED))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// [`ANNOTATION_HASH`](super::ANNOTATION_HASH), when set.
    pub fn hash(&self) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(ANNOTATION_HASH))
            .map(String::as_str)
    }
}

/// The `openAPIV3Schema` of [`Report`] as refwarden's types declare it (built like kube-derive
/// builds a CRD schema): what an API server would keep of what refwarden writes. Tests install a
/// CRD with it, so a field the types do not declare would be pruned and noticed.
pub fn openapi_schema() -> serde_json::Value {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(schemars::transform::AddNullable::default())
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .with_transform(kube::core::schema::OptionalEnum)
        .into_generator();
    let mut schema =
        serde_json::to_value(generator.into_root_schema_for::<ReportBody>()).unwrap_or_default();
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("title");
        obj.remove("description");
        obj.remove("required");
        if let Some(props) = obj
            .get_mut("properties")
            .and_then(serde_json::Value::as_object_mut)
        {
            props.insert("apiVersion".into(), serde_json::json!({"type": "string"}));
            props.insert("kind".into(), serde_json::json!({"type": "string"}));
            props.insert("metadata".into(), serde_json::json!({"type": "object"}));
        }
    }
    schema
}

/// A CRD for `kind` (`Report` or `ClusterReport`) with [`openapi_schema`] (tests only: refwarden
/// does not ship the OpenReports CRDs).
pub fn crd_from_types(kind: &str) -> serde_json::Value {
    let (plural, scope) = if kind == CLUSTER_REPORT_KIND {
        ("clusterreports", "Cluster")
    } else {
        ("reports", "Namespaced")
    };
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{GROUP}")},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": kind,
                "listKind": format!("{kind}List"),
                "plural": plural,
                "singular": kind.to_ascii_lowercase(),
            },
            "scope": scope,
            "versions": [{
                "name": VERSION,
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": openapi_schema()},
            }],
        },
    })
}
