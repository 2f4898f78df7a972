//! Reading Kubernetes manifests from files for `refwarden evaluate`: YAML and
//! JSON, multi-document, folders, `kind: List` (`kubectl get pods -A -o json`).
//!
//! Bad input is an error naming the file, the document and the field; unknown
//! kinds are listed and skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Namespace, Pod, PodTemplateSpec};
use kube::CustomResourceExt;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::crd::{ReferrerPolicy, RegistryProfile, WorkloadRef};
use crate::policy::PodInfo;
use crate::policy::pods::workload_of;

/// Where a document came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// File path.
    pub file: PathBuf,
    /// 1-based document number in the file (items of a List count as their List's document).
    pub document: usize,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.document == 0 {
            write!(f, "{}", self.file.display())
        } else {
            write!(f, "{}: document {}", self.file.display(), self.document)
        }
    }
}

/// Bad input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {field}: {message}")]
pub struct LoadError {
    /// Where.
    pub origin: Origin,
    /// Field path (`spec.require[0].preset`), or `<document>` for a parse error.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// What the files hold.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// ReferrerPolicies.
    pub policies: Vec<(Origin, ReferrerPolicy)>,
    /// RegistryProfiles.
    pub profiles: Vec<(Origin, RegistryProfile)>,
    /// Pods, and workloads turned into the pods they would run.
    pub pods: Vec<PodInfo>,
    /// Namespace labels from Namespace objects.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// Documents of kinds refwarden does not read: (origin, apiVersion/kind).
    pub skipped: Vec<(Origin, String)>,
}

fn load_error(origin: &Origin, field: impl Into<String>, message: impl Into<String>) -> LoadError {
    LoadError {
        origin: origin.clone(),
        field: field.into(),
        message: message.into(),
    }
}

/// Files under `paths` (folders recursively: `*.yaml`, `*.yml`, `*.json`), sorted.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = Vec::new();
    for p in paths {
        let origin = Origin {
            file: p.clone(),
            document: 0,
        };
        let meta = std::fs::metadata(p)
            .map_err(|e| load_error(&origin, "<file>", format!("cannot read: {e}")))?;
        if meta.is_dir() {
            let mut stack = vec![p.clone()];
            let mut seen = 0usize;
            while let Some(dir) = stack.pop() {
                seen += 1;
                if seen > 100_000 {
                    return Err(load_error(&origin, "<file>", "too many folders"));
                }
                let entries = std::fs::read_dir(&dir).map_err(|e| {
                    load_error(
                        &Origin {
                            file: dir.clone(),
                            document: 0,
                        },
                        "<file>",
                        format!("cannot read folder: {e}"),
                    )
                })?;
                for e in entries.flatten() {
                    let path = e.path();
                    if path.is_dir() {
                        stack.push(path);
                    } else if path
                        .extension()
                        .and_then(|x| x.to_str())
                        .is_some_and(|x| matches!(x, "yaml" | "yml" | "json"))
                    {
                        files.push(path);
                    }
                }
            }
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// Parses one file into its documents (JSON values), skipping empty documents.
pub fn parse_file(path: &Path) -> Result<Vec<(Origin, Value)>, LoadError> {
    let origin0 = Origin {
        file: path.to_path_buf(),
        document: 1,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| load_error(&origin0, "<file>", format!("cannot read: {e}")))?;
    let mut docs = Vec::new();
    if path.extension().and_then(|x| x.to_str()) == Some("json") {
        let v: Value = serde_json::from_str(&text)
            .map_err(|e| load_error(&origin0, "<document>", format!("invalid JSON: {e}")))?;
        docs.push((origin0, v));
        return Ok(docs);
    }
    for (i, de) in serde_norway::Deserializer::from_str(&text).enumerate() {
        let origin = Origin {
            file: path.to_path_buf(),
            document: i + 1,
        };
        let v = Value::deserialize(de)
            .map_err(|e| load_error(&origin, "<document>", format!("invalid YAML: {e}")))?;
        if v.is_null() {
            continue;
        }
        docs.push((origin, v));
    }
    Ok(docs)
}

/// Decodes a value into `T`, rejecting unknown fields and naming the field of any error.
pub fn decode_strict<T: DeserializeOwned>(origin: &Origin, v: &Value) -> Result<T, LoadError> {
    let mut unknown: Vec<String> = Vec::new();
    let result: Result<T, _> = {
        let mut record = |path: serde_ignored::Path<'_>| unknown.push(path.to_string());
        let ignoring = serde_ignored::Deserializer::new(v, &mut record);
        serde_path_to_error::deserialize(ignoring)
    };
    let value = result.map_err(|e| {
        let path = e.path().to_string();
        load_error(
            origin,
            if path == "." {
                "<root>".to_string()
            } else {
                path
            },
            e.into_inner().to_string(),
        )
    })?;
    // `status` of built-ins is not read; everything else must be known.
    if let Some(field) = unknown
        .iter()
        .map(|p| tidy_path(p))
        .find(|p| !p.starts_with("status") && p != "apiVersion" && p != "kind")
    {
        return Err(load_error(origin, field, "unknown field"));
    }
    Ok(value)
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

fn kind_of(v: &Value) -> (String, String) {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    (s("apiVersion"), s("kind"))
}

fn template_pod(
    origin: &Origin,
    namespace: &str,
    workload: WorkloadRef,
    template: Option<&PodTemplateSpec>,
    field: &str,
) -> Result<PodInfo, LoadError> {
    let template = template.ok_or_else(|| load_error(origin, field, "missing pod template"))?;
    let mut meta = template.metadata.clone().unwrap_or_default();
    meta.namespace = Some(namespace.to_string());
    meta.name = Some(format!("{}-template", workload.name));
    meta.owner_references = None;
    let pod = Pod {
        metadata: meta,
        spec: template.spec.clone(),
        status: None,
    };
    let mut info = PodInfo::from_pod(&pod);
    info.workload = workload;
    Ok(info)
}

fn ns_of(v: &Value) -> String {
    v.pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string()
}

fn name_of(origin: &Origin, v: &Value) -> Result<String, LoadError> {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .ok_or_else(|| load_error(origin, "metadata.name", "missing"))
}

/// Adds one document (or the items of a List) to `inputs`.
pub fn add_document(inputs: &mut Inputs, origin: &Origin, v: &Value) -> Result<(), LoadError> {
    if !v.is_object() {
        return Err(load_error(
            origin,
            "<document>",
            "not a Kubernetes object (expected a mapping)",
        ));
    }
    let (api_version, kind) = kind_of(v);
    if kind.is_empty() {
        return Err(load_error(origin, "kind", "missing"));
    }
    let group = api_version.split('/').next().unwrap_or("");
    match (group, kind.as_str()) {
        (_, "List") | (_, "PodList") | (_, "DeploymentList") => {
            let items = v
                .get("items")
                .and_then(Value::as_array)
                .ok_or_else(|| load_error(origin, "items", "a List needs an items array"))?;
            for (i, item) in items.iter().enumerate() {
                add_document(inputs, origin, item).map_err(|mut e| {
                    e.field = format!("items[{i}].{}", e.field);
                    e
                })?;
            }
        }
        ("refwarden.dev", "ReferrerPolicy") => {
            crate::validation::validate(&ReferrerPolicy::crd(), v).map_err(|errs| {
                let first = &errs[0];
                load_error(origin, &first.field, &first.message)
            })?;
            inputs
                .policies
                .push((origin.clone(), decode_strict(origin, v)?));
        }
        ("refwarden.dev", "RegistryProfile") => {
            crate::validation::validate(&RegistryProfile::crd(), v).map_err(|errs| {
                let first = &errs[0];
                load_error(origin, &first.field, &first.message)
            })?;
            inputs
                .profiles
                .push((origin.clone(), decode_strict(origin, v)?));
        }
        ("v1", "Pod") => {
            let pod: Pod = decode_strict(origin, v)?;
            let mut info = PodInfo::from_pod(&pod);
            if info.namespace.is_empty() {
                info.namespace = "default".into();
                info.workload = workload_of(
                    "default",
                    &info.name,
                    &info.labels,
                    pod.metadata.owner_references.as_deref().unwrap_or_default(),
                );
            }
            inputs.pods.push(info);
        }
        ("v1", "Namespace") => {
            let ns: Namespace = decode_strict(origin, v)?;
            let name = name_of(origin, v)?;
            let mut labels = ns.metadata.labels.unwrap_or_default();
            labels.insert("kubernetes.io/metadata.name".into(), name.clone());
            inputs.namespaces.insert(name, labels);
        }
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch", "Job" | "CronJob") => {
            let name = name_of(origin, v)?;
            let namespace = ns_of(v);
            let workload = WorkloadRef {
                namespace: namespace.clone(),
                kind: kind.clone(),
                name,
            };
            let (template, field) = match kind.as_str() {
                "Deployment" => (
                    Some(decode_strict::<Deployment>(origin, v)?.spec.template),
                    "spec.template",
                ),
                "StatefulSet" => (
                    Some(decode_strict::<StatefulSet>(origin, v)?.spec.template),
                    "spec.template",
                ),
                "DaemonSet" => (
                    Some(decode_strict::<DaemonSet>(origin, v)?.spec.template),
                    "spec.template",
                ),
                "ReplicaSet" => (
                    decode_strict::<ReplicaSet>(origin, v)?.spec.template,
                    "spec.template",
                ),
                "Job" => (
                    decode_strict::<Job>(origin, v)?.spec.map(|s| s.template),
                    "spec.template",
                ),
                _ => (
                    decode_strict::<CronJob>(origin, v)?
                        .spec
                        .job_template
                        .spec
                        .map(|s| s.template),
                    "spec.jobTemplate.spec.template",
                ),
            };
            inputs.pods.push(template_pod(
                origin,
                &namespace,
                workload,
                template.as_ref(),
                field,
            )?);
        }
        _ => inputs
            .skipped
            .push((origin.clone(), format!("{api_version}/{kind}"))),
    }
    Ok(())
}

/// Reads every file under `paths`.
pub fn load(paths: &[PathBuf]) -> Result<Inputs, LoadError> {
    let mut inputs = Inputs::default();
    for file in collect_files(paths)? {
        for (origin, v) in parse_file(&file)? {
            add_document(&mut inputs, &origin, &v)?;
        }
    }
    Ok(inputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin {
            file: PathBuf::from("x.yaml"),
            document: 2,
        }
    }

    #[test]
    fn unknown_fields_in_built_ins_are_named() {
        let v = serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "a", "image": "nginx", "imagePullPolicyy": "Always"}]}}}
        });
        let mut inputs = Inputs::default();
        let e = add_document(&mut inputs, &origin(), &v).expect_err("unknown field");
        assert_eq!(e.field, "spec.template.spec.containers[0].imagePullPolicyy");
        assert_eq!(
            e.to_string(),
            "x.yaml: document 2: spec.template.spec.containers[0].imagePullPolicyy: unknown field"
        );
    }

    #[test]
    fn wrong_types_name_the_field() {
        let v = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "image": 42}]}
        });
        let e = add_document(&mut Inputs::default(), &origin(), &v).expect_err("type");
        assert_eq!(e.field, "spec.containers[0].image");
    }

    #[test]
    fn workloads_become_template_pods_and_unknown_kinds_are_skipped() {
        let mut inputs = Inputs::default();
        for v in [
            serde_json::json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly", "namespace": "ops"},
                "spec": {"schedule": "@daily", "jobTemplate": {"spec": {"template": {"metadata": {"labels": {"app": "n"}}, "spec": {"containers": [{"name": "c", "image": "ghcr.io/acme/job:1"}], "restartPolicy": "Never"}}}}}}),
            serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
            serde_json::json!({"apiVersion": "v1", "kind": "List", "items": [
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1", "namespace": "a"}, "spec": {"containers": [{"name": "x", "image": "nginx"}]}}
            ]}),
        ] {
            add_document(&mut inputs, &origin(), &v).expect("valid");
        }
        assert_eq!(inputs.pods.len(), 2);
        let cj = &inputs.pods[0];
        assert_eq!(
            (
                cj.workload.kind.as_str(),
                cj.workload.name.as_str(),
                cj.namespace.as_str()
            ),
            ("CronJob", "nightly", "ops")
        );
        assert_eq!(cj.labels.get("app"), Some("n"));
        assert_eq!(cj.images[0].image, "ghcr.io/acme/job:1");
        assert_eq!(inputs.skipped.len(), 1);
        assert_eq!(inputs.skipped[0].1, "v1/ConfigMap");
        assert_eq!(inputs.pods[1].workload.kind, "Pod");
    }

    #[test]
    fn crd_documents_are_schema_checked() {
        let v = serde_json::json!({"apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
            "metadata": {"name": "p"}, "spec": {"require": [{"name": "sig", "preset": "signed"}]}});
        let e = add_document(&mut Inputs::default(), &origin(), &v).expect_err("bad preset");
        assert_eq!(e.field, "spec.require.0.preset");
        let v = serde_json::json!({"apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
            "metadata": {"name": "p"}, "spec": {"require": []}});
        let e = add_document(&mut Inputs::default(), &origin(), &v).expect_err("empty require");
        assert_eq!(e.field, "spec.require");
        let v = serde_json::json!({"apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
            "metadata": {"name": "p"}, "spec": {"require": [{"name": "sig", "preset": "signature"}], "extra": 1}});
        let e = add_document(&mut Inputs::default(), &origin(), &v).expect_err("unknown field");
        assert_eq!(e.field, "spec.extra");
    }
}
