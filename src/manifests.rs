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

/// The `apiVersion` of refwarden's kinds.
pub const REFWARDEN_API_VERSION: &str = "refwarden.dev/v1alpha1";
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
    /// ConfigMaps and Secrets, for the trust `verify` blocks name (their data is never printed).
    pub trust: crate::policy::TrustObjects,
    /// Documents of kinds refwarden does not read: (origin, apiVersion/kind).
    pub skipped: Vec<(Origin, String)>,
    /// Files found in folders that are not Kubernetes manifests: (path, why).
    pub skipped_files: Vec<(PathBuf, String)>,
    /// Where each workload (top-level owner of the pods) was read first, for reports that
    /// point at files (SARIF).
    pub workload_origins: BTreeMap<WorkloadRef, Origin>,
}

fn load_error(origin: &Origin, field: impl Into<String>, message: impl Into<String>) -> LoadError {
    LoadError {
        origin: origin.clone(),
        field: field.into(),
        message: message.into(),
    }
}

/// A file to read, and whether it was named on the command line (a file found in a folder
/// that is not a Kubernetes manifest is skipped with a note; one named explicitly is an error).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct InputFile {
    /// The path (`-` for standard input).
    pub path: PathBuf,
    /// Named on the command line.
    pub explicit: bool,
}

/// Files under `paths` (folders recursively: `*.yaml`, `*.yml`, `*.json`), sorted; `-` is
/// standard input.
pub fn collect_files(paths: &[PathBuf]) -> Result<Vec<InputFile>, LoadError> {
    let mut files = Vec::new();
    for p in paths {
        let origin = Origin {
            file: p.clone(),
            document: 0,
        };
        if crate::input::is_stdin(p) {
            files.push(InputFile {
                path: p.clone(),
                explicit: true,
            });
            continue;
        }
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
                        files.push(InputFile {
                            path,
                            explicit: false,
                        });
                    }
                }
            }
        } else {
            files.push(InputFile {
                path: p.clone(),
                explicit: true,
            });
        }
    }
    files.sort();
    files.dedup_by(|a, b| a.path == b.path);
    Ok(files)
}

/// Why a file found in a folder is not read as Kubernetes manifests, if it is not one: a
/// kustomization, a Helm chart file or template, or a file whose documents have no `kind`.
pub fn not_a_manifest(path: &Path, text: &str) -> Option<&'static str> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    if matches!(
        name,
        "kustomization.yaml" | "kustomization.yml" | "Kustomization"
    ) {
        return Some("a kustomization");
    }
    if matches!(name, "Chart.yaml" | "values.yaml" | "values.schema.json") {
        return Some("a Helm chart file");
    }
    if text.contains("{{") {
        return Some("a template (`{{ … }}`)");
    }
    None
}

/// Parses one file (or standard input) into its documents (JSON values), skipping empty
/// documents. The size is bounded before anything is read ([`crate::input::MAX_INPUT_BYTES`]).
pub fn parse_file(path: &Path) -> Result<Vec<(Origin, Value)>, LoadError> {
    let origin0 = Origin {
        file: path.to_path_buf(),
        document: 1,
    };
    let text = crate::input::read_bounded(path).map_err(|e| load_error(&origin0, "<file>", e))?;
    parse_text(path, &text)
}

/// [`parse_file`] on text already read.
pub fn parse_text(path: &Path, text: &str) -> Result<Vec<(Origin, Value)>, LoadError> {
    let origin0 = Origin {
        file: path.to_path_buf(),
        document: 1,
    };
    let mut docs = Vec::new();
    if path.extension().and_then(|x| x.to_str()) == Some("json")
        || (crate::input::is_stdin(path) && text.trim_start().starts_with(['{', '[']))
    {
        let v: Value = serde_json::from_str(text)
            .map_err(|e| load_error(&origin0, "<document>", format!("invalid JSON: {e}")))?;
        docs.push((origin0, v));
        return Ok(docs);
    }
    for (i, de) in serde_norway::Deserializer::from_str(text).enumerate() {
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
/// (`status` of built-in objects is not read and not checked.)
pub fn decode_strict<T: DeserializeOwned>(origin: &Origin, v: &Value) -> Result<T, LoadError> {
    crate::input::decode_strict(v, &["status", "apiVersion", "kind"])
        .map_err(|e| load_error(origin, e.field, e.message))
}

/// Decodes a refwarden object: valid against its CRD's schema, every field known, its
/// `status` included.
fn decode_refwarden<T: CustomResourceExt + DeserializeOwned>(
    origin: &Origin,
    v: &Value,
) -> Result<T, LoadError> {
    crate::validation::validate(&T::crd(), v).map_err(|errs| {
        let first = &errs[0];
        load_error(origin, &first.field, &first.message)
    })?;
    crate::input::decode_strict(v, &["apiVersion", "kind"])
        .map_err(|e| load_error(origin, e.field, e.message))
}

fn kind_of(v: &Value) -> (String, String) {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    (s("apiVersion"), s("kind"))
}

/// Pods counted for one workload read from a file, at most.
const MAX_REPLICAS: usize = 1000;

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
        ("refwarden.dev", _) if api_version != REFWARDEN_API_VERSION => {
            return Err(load_error(
                origin,
                "apiVersion",
                format!(
                    "{api_version:?} is not served: refwarden's kinds are {REFWARDEN_API_VERSION}"
                ),
            ));
        }
        ("refwarden.dev", "ReferrerPolicy") => {
            inputs
                .policies
                .push((origin.clone(), decode_refwarden(origin, v)?));
        }
        ("refwarden.dev", "RegistryProfile") => {
            inputs
                .profiles
                .push((origin.clone(), decode_refwarden(origin, v)?));
        }
        ("refwarden.dev", other) => {
            let hint = ["ReferrerPolicy", "RegistryProfile"]
                .into_iter()
                .find(|k| {
                    other
                        .to_ascii_lowercase()
                        .starts_with(&k.to_ascii_lowercase())
                })
                .map(|k| format!(" (did you mean {k}?)"))
                .unwrap_or_default();
            return Err(load_error(
                origin,
                "kind",
                format!(
                    "{other:?} is not a refwarden kind: ReferrerPolicy or RegistryProfile{hint}"
                ),
            ));
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
            inputs
                .workload_origins
                .entry(info.workload.clone())
                .or_insert_with(|| origin.clone());
            inputs.pods.push(info);
        }
        ("v1", "ConfigMap") => {
            let mut cm: k8s_openapi::api::core::v1::ConfigMap = decode_strict(origin, v)?;
            name_of(origin, v)?;
            cm.metadata.namespace = Some(ns_of(v));
            inputs.trust.insert_config_map(&cm);
        }
        ("v1", "Secret") => {
            // Not decode_strict: its error could quote a value.
            let mut secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(v.clone())
                .map_err(|_| {
                    load_error(
                        origin,
                        "data",
                        "not a valid Secret (data values must be base64)",
                    )
                })?;
            name_of(origin, v)?;
            secret.metadata.namespace = Some(ns_of(v));
            inputs.trust.insert_secret(&secret);
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
            // (template, its field, the pods it runs: replicas, parallelism; a DaemonSet's
            // count depends on the nodes, so it counts one).
            let (template, field, replicas) = match kind.as_str() {
                "Deployment" => {
                    let d = decode_strict::<Deployment>(origin, v)?.spec;
                    (Some(d.template), "spec.template", d.replicas)
                }
                "StatefulSet" => {
                    let d = decode_strict::<StatefulSet>(origin, v)?.spec;
                    (Some(d.template), "spec.template", d.replicas)
                }
                "DaemonSet" => (
                    Some(decode_strict::<DaemonSet>(origin, v)?.spec.template),
                    "spec.template",
                    None,
                ),
                "ReplicaSet" => {
                    let d = decode_strict::<ReplicaSet>(origin, v)?.spec;
                    (d.template, "spec.template", d.replicas)
                }
                "Job" => {
                    let d = decode_strict::<Job>(origin, v)?.spec;
                    let r = d.as_ref().and_then(|s| s.parallelism);
                    (d.map(|s| s.template), "spec.template", r)
                }
                _ => {
                    let spec = decode_strict::<CronJob>(origin, v)?.spec.job_template.spec;
                    let r = spec.as_ref().and_then(|s| s.parallelism);
                    (
                        spec.map(|s| s.template),
                        "spec.jobTemplate.spec.template",
                        r,
                    )
                }
            };
            let replicas = match replicas {
                None => 1,
                Some(r) if r < 0 => {
                    return Err(load_error(
                        origin,
                        match kind.as_str() {
                            "Job" => "spec.parallelism",
                            "CronJob" => "spec.jobTemplate.spec.parallelism",
                            _ => "spec.replicas",
                        },
                        "must not be negative",
                    ));
                }
                Some(r) => (r as usize).min(MAX_REPLICAS),
            };
            let info = template_pod(origin, &namespace, workload, template.as_ref(), field)?;
            inputs
                .workload_origins
                .entry(info.workload.clone())
                .or_insert_with(|| origin.clone());
            // Counts are of pods: a Deployment of 3 replicas is 3 selected pods.
            for i in 0..replicas {
                let mut pod = info.clone();
                pod.name = format!("{}-{i}", info.name);
                inputs.pods.push(pod);
            }
        }
        _ => inputs
            .skipped
            .push((origin.clone(), format!("{api_version}/{kind}"))),
    }
    Ok(())
}

/// Reads every file under `paths`. A file found in a folder that is not a Kubernetes manifest
/// (a kustomization, a Helm template, documents without `kind`) is skipped and noted; named
/// explicitly it is an error.
pub fn load(paths: &[PathBuf]) -> Result<Inputs, LoadError> {
    let mut inputs = Inputs::default();
    for file in collect_files(paths)? {
        let origin0 = Origin {
            file: file.path.clone(),
            document: 0,
        };
        let text = crate::input::read_bounded(&file.path)
            .map_err(|e| load_error(&origin0, "<file>", e))?;
        if !file.explicit
            && let Some(why) = not_a_manifest(&file.path, &text)
        {
            inputs
                .skipped_files
                .push((file.path.clone(), why.to_string()));
            continue;
        }
        let docs = parse_text(&file.path, &text)?;
        if !file.explicit && !docs.is_empty() && docs.iter().all(|(_, v)| v.get("kind").is_none()) {
            inputs
                .skipped_files
                .push((file.path.clone(), "no document has a kind".to_string()));
            continue;
        }
        for (origin, v) in docs {
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
            serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "c"}}),
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
        assert_eq!(inputs.skipped[0].1, "v1/Service");
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
