//! Pure policy evaluation: which images a policy selects, whether their
//! discovered referrers meet its requirements, and the status that follows.
//!
//! The controller and `refwarden evaluate` both call these functions (through
//! `policy::reconcile`), so they cannot disagree.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::glob::RepoFilter;
use super::pods::{ImageKey, ImageSource, PodInfo, image_source};
use super::selector;
use crate::conditions::{self, Status, new_condition};
use crate::crd::{
    ComplianceSummary, PolicyViolation, ReferrerPolicySpec, ReferrerPolicyStatus, Requirement,
    SubjectMatch, UnknownImage, WorkloadRef,
};
use crate::discovery::presets;
use crate::discovery::{AttachedTo, DiscoveryMethod, DiscoveryOutcome, DiscoveryReport, Referrer};
use crate::registry::ImageReference;

/// Condition type: every selected image carries its required referrers.
pub const COMPLIANT: &str = "Compliant";
/// Workloads listed per violation at most.
pub const MAX_WORKLOADS_PER_IMAGE: usize = 10;

/// A spec that cannot be evaluated; `field` names where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidSpec {
    /// Path of the field, e.g. `spec.images.include[2]`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn invalid(field_and_message: String) -> InvalidSpec {
    match field_and_message.split_once(": ") {
        Some((f, m)) => InvalidSpec {
            field: f.to_string(),
            message: m.to_string(),
        },
        None => InvalidSpec {
            field: "spec".into(),
            message: field_and_message,
        },
    }
}

/// A validated policy, ready to match.
#[derive(Clone, Debug)]
pub struct CompiledPolicy {
    /// The spec.
    pub spec: ReferrerPolicySpec,
    filter: RepoFilter,
    /// Recheck interval.
    pub recheck_interval: std::time::Duration,
}

/// Validates a spec beyond what the schema checks. Errors name the field.
pub fn compile(spec: &ReferrerPolicySpec) -> Result<CompiledPolicy, InvalidSpec> {
    if let Some(s) = &spec.namespace_selector {
        selector::validate(s, "spec.namespaceSelector").map_err(invalid)?;
    }
    if let Some(s) = &spec.pod_selector {
        selector::validate(s, "spec.podSelector").map_err(invalid)?;
    }
    let filter = RepoFilter::new(&spec.images.include, &spec.images.exclude).map_err(invalid)?;
    if spec.require.is_empty() {
        return Err(InvalidSpec {
            field: "spec.require".into(),
            message: "at least one requirement is needed".into(),
        });
    }
    let mut names = BTreeSet::new();
    for (i, r) in spec.require.iter().enumerate() {
        if r.name.is_empty() {
            return Err(InvalidSpec {
                field: format!("spec.require[{i}].name"),
                message: "must not be empty".into(),
            });
        }
        if !names.insert(r.name.as_str()) {
            return Err(InvalidSpec {
                field: format!("spec.require[{i}].name"),
                message: format!("{:?} is used by another requirement", r.name),
            });
        }
        if r.preset.is_none() && r.artifact_types.is_empty() && r.legacy_tag_suffixes.is_empty() {
            return Err(InvalidSpec {
                field: format!("spec.require[{i}]"),
                message: "set preset, artifactTypes or legacyTagSuffixes".into(),
            });
        }
        if r.min_count == 0 {
            return Err(InvalidSpec {
                field: format!("spec.require[{i}].minCount"),
                message: "must be at least 1".into(),
            });
        }
    }
    let recheck: kube::core::Duration = spec.recheck_interval.parse().map_err(|e| InvalidSpec {
        field: "spec.recheckInterval".into(),
        message: format!("{:?} is not a duration: {e}", spec.recheck_interval),
    })?;
    let recheck_interval: std::time::Duration = recheck.into();
    if recheck_interval < std::time::Duration::from_secs(10) {
        return Err(InvalidSpec {
            field: "spec.recheckInterval".into(),
            message: "must be at least 10s".into(),
        });
    }
    if spec.max_reported_violations == 0 {
        return Err(InvalidSpec {
            field: "spec.maxReportedViolations".into(),
            message: "must be at least 1".into(),
        });
    }
    Ok(CompiledPolicy {
        spec: spec.clone(),
        filter,
        recheck_interval,
    })
}

/// Labels of each namespace, by name.
pub type NamespaceLabels = BTreeMap<String, BTreeMap<String, String>>;

/// How an image is used by the selected pods.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageUse {
    /// The image as a pod names it (first seen).
    pub image: String,
    /// Index digests pods pin while the runtime runs this (platform) digest.
    pub index: BTreeSet<String>,
    /// Top-level owners running it.
    pub workloads: BTreeSet<WorkloadRef>,
}

/// A reference only known by tag, to resolve through the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagUse {
    /// The parsed reference.
    pub reference: ImageReference,
    /// Workloads running it.
    pub workloads: BTreeSet<WorkloadRef>,
}

/// An image that is Unknown before any discovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownUse {
    /// The digest, when there is one.
    pub digest: Option<String>,
    /// Reason code.
    pub reason: String,
    /// Detail.
    pub message: String,
    /// Workloads running it.
    pub workloads: BTreeSet<WorkloadRef>,
}

/// What a policy selects from the pods.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    /// Selected pods.
    pub pods: u32,
    /// Images with a digest.
    pub images: BTreeMap<ImageKey, ImageUse>,
    /// Images known only by tag (`registry/repository:tag` → use).
    pub tags: BTreeMap<String, TagUse>,
    /// Images that cannot be looked up, by image string.
    pub unknown: BTreeMap<String, UnknownUse>,
}

impl Selection {
    /// Records that a tag resolved to `digest`.
    pub fn resolve_tag(&mut self, tag_key: &str, digest: &str) {
        if let Some(t) = self.tags.remove(tag_key) {
            let key = ImageKey {
                registry: t.reference.registry.clone(),
                repository: t.reference.repository.clone(),
                digest: digest.to_string(),
            };
            let entry = self.images.entry(key).or_default();
            if entry.image.is_empty() {
                entry.image = t.reference.whole();
            }
            entry.workloads.extend(t.workloads);
        }
    }

    /// Records that a tag could not be resolved.
    pub fn fail_tag(&mut self, tag_key: &str, reason: &str, message: &str) {
        if let Some(t) = self.tags.remove(tag_key) {
            let entry = self
                .unknown
                .entry(t.reference.whole())
                .or_insert_with(|| UnknownUse {
                    digest: None,
                    reason: reason.to_string(),
                    message: message.to_string(),
                    workloads: BTreeSet::new(),
                });
            entry.workloads.extend(t.workloads);
        }
    }
}

fn namespace_labels<'a>(
    namespaces: &'a NamespaceLabels,
    ns: &str,
    fallback: &'a mut BTreeMap<String, String>,
) -> &'a BTreeMap<String, String> {
    match namespaces.get(ns) {
        Some(l) => l,
        None => {
            // The API server labels every namespace with its name.
            fallback.insert("kubernetes.io/metadata.name".into(), ns.to_string());
            fallback
        }
    }
}

/// Whether a pod is selected by the policy's namespace and pod selectors.
pub fn selects_pod(policy: &CompiledPolicy, pod: &PodInfo, namespaces: &NamespaceLabels) -> bool {
    let mut fallback = BTreeMap::new();
    let ns_labels = namespace_labels(namespaces, &pod.namespace, &mut fallback);
    selector::matches(policy.spec.namespace_selector.as_ref(), ns_labels)
        && selector::matches(policy.spec.pod_selector.as_ref(), &pod.labels)
}

/// Selects pods and their images.
pub fn select<'a>(
    policy: &CompiledPolicy,
    pods: impl IntoIterator<Item = &'a PodInfo>,
    namespaces: &NamespaceLabels,
) -> Selection {
    let mut sel = Selection::default();
    for pod in pods {
        if !selects_pod(policy, pod, namespaces) {
            continue;
        }
        sel.pods += 1;
        for c in &pod.images {
            match image_source(c) {
                ImageSource::Digest { key, index } => {
                    if !policy.filter.matches(&key.repository_path()) {
                        continue;
                    }
                    let entry = sel.images.entry(key).or_default();
                    if entry.image.is_empty() {
                        entry.image = c.image.clone();
                    }
                    entry.index.extend(index);
                    entry.workloads.insert(pod.workload.clone());
                }
                ImageSource::Tag(r) => {
                    if !policy
                        .filter
                        .matches(&format!("{}/{}", r.registry, r.repository))
                    {
                        continue;
                    }
                    let key = r.whole();
                    let entry = sel.tags.entry(key).or_insert_with(|| TagUse {
                        reference: r.clone(),
                        workloads: BTreeSet::new(),
                    });
                    entry.workloads.insert(pod.workload.clone());
                }
                ImageSource::Unresolvable {
                    image,
                    reason,
                    message,
                } => {
                    // Filter on the repository when the name parses at all.
                    if let Ok(r) = ImageReference::parse(&image)
                        && !policy
                            .filter
                            .matches(&format!("{}/{}", r.registry, r.repository))
                    {
                        continue;
                    }
                    let digest = c
                        .image_id
                        .as_deref()
                        .map(super::pods::normalise_image_id)
                        .map(str::to_string);
                    let entry = sel.unknown.entry(image).or_insert_with(|| UnknownUse {
                        digest,
                        reason,
                        message,
                        workloads: BTreeSet::new(),
                    });
                    entry.workloads.insert(pod.workload.clone());
                }
            }
        }
    }
    sel
}

fn essence(media_type: &str) -> String {
    media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether one referrer satisfies one requirement (ignoring where it is attached).
pub fn referrer_satisfies(req: &Requirement, r: &Referrer) -> bool {
    if let Some(p) = req.preset
        && let Some(preset) = presets::preset(p.name())
        && presets::satisfies(preset, &r.kinds)
    {
        return true;
    }
    if let Some(at) = &r.artifact_type {
        let at = essence(at);
        if req.artifact_types.iter().any(|t| essence(t) == at) {
            return true;
        }
    }
    if r.method == DiscoveryMethod::CosignTag
        && let Some(tag) = &r.tag
        && req
            .legacy_tag_suffixes
            .iter()
            .any(|s| tag.ends_with(&format!(".{}", s.as_str())))
    {
        return true;
    }
    false
}

/// Whether a requirement is met.
///
/// `Exact`: by referrers of the running digest. `IndexOrPlatform`: also by referrers of
/// the index it belongs to; and when the running digest is an index (its platform
/// manifests are listed in the report), by referrers of its platform manifests — but
/// since refwarden cannot tell which platform a node runs, only when every platform
/// manifest carries enough of them.
fn requirement_met(
    req: &Requirement,
    subject_match: SubjectMatch,
    report: &DiscoveryReport,
) -> bool {
    let need = req.min_count.max(1) as usize;
    let distinct = |attached: &[AttachedTo], subject: Option<&str>| -> usize {
        report
            .referrers
            .iter()
            .filter(|r| attached.contains(&r.attached_to))
            .filter(|r| subject.is_none_or(|s| r.subject == s))
            .filter(|r| referrer_satisfies(req, r))
            .map(|r| r.digest.as_str())
            .collect::<BTreeSet<&str>>()
            .len()
    };
    match subject_match {
        SubjectMatch::Exact => distinct(&[AttachedTo::Requested], None) >= need,
        SubjectMatch::IndexOrPlatform => {
            distinct(&[AttachedTo::Requested, AttachedTo::Index], None) >= need
                || (!report.platforms.is_empty()
                    && report.platforms.iter().all(|p| {
                        distinct(&[AttachedTo::Requested, AttachedTo::Index], None)
                            + distinct(&[AttachedTo::Platform], Some(p))
                            >= need
                    }))
        }
    }
}

/// Names of the requirements a discovery report does not meet.
pub fn missing_requirements(
    requirements: &[Requirement],
    subject_match: SubjectMatch,
    report: &DiscoveryReport,
) -> Vec<String> {
    requirements
        .iter()
        .filter(|req| !requirement_met(req, subject_match, report))
        .map(|r| r.name.clone())
        .collect()
}

/// Maps a discovery failure reason to the policy's Unknown reason.
pub fn unknown_reason(discovery_reason: &str) -> &'static str {
    match discovery_reason {
        "AuthFailed" | "InsufficientPermissions" => "AuthFailed",
        "SubjectNotFound" | "TagNotFound" => "ImageNotFound",
        "ReferrersApiUnsupported" => "ReferrersApiUnsupported",
        "InvalidResponse" | "BodyTooLarge" => "InvalidRegistryResponse",
        "InvalidConfig" | "RegistryProfileInvalid" => "RegistryProfileInvalid",
        _ => "RegistryUnavailable",
    }
}

/// The result of judging every selected image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// Counts.
    pub summary: ComplianceSummary,
    /// Every violation, sorted by (image, digest).
    pub violations: Vec<PolicyViolation>,
    /// Every Unknown image, sorted by (image, digest).
    pub unknown: Vec<UnknownImage>,
}

fn bounded(workloads: &BTreeSet<WorkloadRef>) -> Vec<WorkloadRef> {
    workloads
        .iter()
        .take(MAX_WORKLOADS_PER_IMAGE)
        .cloned()
        .collect()
}

fn methods_label(methods: &[DiscoveryMethod]) -> Option<String> {
    if methods.is_empty() {
        None
    } else {
        Some(
            methods
                .iter()
                .map(DiscoveryMethod::as_str)
                .collect::<Vec<_>>()
                .join("+"),
        )
    }
}

/// Judges a selection given the discovery outcome of each image (`None`: not discovered, Unknown).
pub fn judge(
    policy: &CompiledPolicy,
    selection: &Selection,
    outcomes: &BTreeMap<ImageKey, Arc<DiscoveryOutcome>>,
) -> Evaluation {
    let mut eval = Evaluation {
        summary: ComplianceSummary {
            pods: selection.pods,
            ..Default::default()
        },
        ..Default::default()
    };
    for (key, use_) in &selection.images {
        let image = key.repository_path();
        match outcomes.get(key).map(Arc::as_ref) {
            Some(DiscoveryOutcome::Found(report)) => {
                let missing =
                    missing_requirements(&policy.spec.require, policy.spec.subject_match, report);
                if missing.is_empty() {
                    eval.summary.compliant += 1;
                } else {
                    eval.summary.non_compliant += 1;
                    eval.violations.push(PolicyViolation {
                        image,
                        digest: key.digest.clone(),
                        missing,
                        workloads: bounded(&use_.workloads),
                        discovery_method: methods_label(&report.methods),
                    });
                }
            }
            Some(DiscoveryOutcome::Unknown { reason, message }) => {
                eval.summary.unknown += 1;
                eval.unknown.push(UnknownImage {
                    image,
                    digest: Some(key.digest.clone()),
                    reason: unknown_reason(reason).to_string(),
                    message: format!("{reason}: {message}"),
                    workloads: bounded(&use_.workloads),
                });
            }
            None => {
                eval.summary.unknown += 1;
                eval.unknown.push(UnknownImage {
                    image,
                    digest: Some(key.digest.clone()),
                    reason: "NotDiscovered".into(),
                    message: "referrers were not discovered for this image".into(),
                    workloads: bounded(&use_.workloads),
                });
            }
        }
    }
    for (image, u) in &selection.unknown {
        eval.summary.unknown += 1;
        eval.unknown.push(UnknownImage {
            image: image.clone(),
            digest: u.digest.clone(),
            reason: u.reason.clone(),
            message: u.message.clone(),
            workloads: bounded(&u.workloads),
        });
    }
    for (tag, t) in &selection.tags {
        eval.summary.unknown += 1;
        eval.unknown.push(UnknownImage {
            image: tag.clone(),
            digest: None,
            reason: "DigestNotResolvable".into(),
            message: "only a tag is known and it was not resolved".into(),
            workloads: bounded(&t.workloads),
        });
    }
    eval.summary.images =
        eval.summary.compliant + eval.summary.non_compliant + eval.summary.unknown;
    eval.violations
        .sort_by(|a, b| (&a.image, &a.digest).cmp(&(&b.image, &b.digest)));
    eval.unknown
        .sort_by(|a, b| (&a.image, &a.digest).cmp(&(&b.image, &b.digest)));
    eval
}

/// The status an evaluation leads to. Lists are bounded by `maxReportedViolations`.
pub fn status(
    policy: &CompiledPolicy,
    eval: &Evaluation,
    generation: Option<i64>,
    previous: Option<&ReferrerPolicyStatus>,
    now: &Time,
) -> ReferrerPolicyStatus {
    let max = policy.spec.max_reported_violations.max(1) as usize;
    let s = &eval.summary;
    let (compliant_status, reason, message) = if s.non_compliant > 0 {
        (
            Status::False,
            "MissingReferrers",
            format!(
                "{} of {} images miss required referrers{}",
                s.non_compliant,
                s.images,
                if s.unknown > 0 {
                    format!("; {} unknown", s.unknown)
                } else {
                    String::new()
                }
            ),
        )
    } else if s.unknown > 0 {
        (
            Status::Unknown,
            "RegistryUnavailable",
            format!(
                "referrers of {} of {} images could not be discovered",
                s.unknown, s.images
            ),
        )
    } else if s.images == 0 {
        (
            Status::True,
            "NoImagesSelected",
            "no running image is selected by this policy".to_string(),
        )
    } else {
        (
            Status::True,
            "AllCompliant",
            format!("all {} images carry the required referrers", s.images),
        )
    };
    let fresh = vec![
        new_condition(
            conditions::READY,
            Status::True,
            "Evaluated",
            format!(
                "{} pods, {} images: {} compliant, {} missing referrers, {} unknown",
                s.pods, s.images, s.compliant, s.non_compliant, s.unknown
            ),
            generation,
            now,
        ),
        new_condition(
            COMPLIANT,
            compliant_status,
            reason,
            message,
            generation,
            now,
        ),
        new_condition(
            conditions::RECONCILING,
            Status::False,
            "Evaluated",
            "",
            generation,
            now,
        ),
        new_condition(
            conditions::STALLED,
            Status::False,
            "Evaluated",
            "",
            generation,
            now,
        ),
    ];
    let prev = previous.map(|p| p.conditions.as_slice()).unwrap_or(&[]);
    ReferrerPolicyStatus {
        observed_generation: generation,
        conditions: conditions::merge(prev, fresh),
        last_evaluation_time: Some(now.clone()),
        summary: eval.summary.clone(),
        violations: eval.violations.iter().take(max).cloned().collect(),
        unknown: eval.unknown.iter().take(max).cloned().collect(),
    }
}

/// The status written while a new generation of a policy is being evaluated:
/// the previous status with `Reconciling=True` (kstatus InProgress), and `Ready`
/// Unknown for a policy that was never evaluated. `observedGeneration` stays at
/// the generation the counts describe.
pub fn reconciling_status(
    generation: Option<i64>,
    previous: Option<&ReferrerPolicyStatus>,
    now: &Time,
) -> ReferrerPolicyStatus {
    let mut st = previous.cloned().unwrap_or_default();
    let gen_label = generation
        .map(|g| g.to_string())
        .unwrap_or_else(|| "?".into());
    let mut fresh = vec![new_condition(
        conditions::RECONCILING,
        Status::True,
        "Evaluating",
        format!("evaluating generation {gen_label}"),
        generation,
        now,
    )];
    if conditions::find(&st.conditions, conditions::READY).is_none() {
        fresh.push(new_condition(
            conditions::READY,
            Status::Unknown,
            "Evaluating",
            "first evaluation under way",
            generation,
            now,
        ));
    }
    let merged = conditions::merge(&st.conditions, fresh);
    st.conditions
        .retain(|c| !merged.iter().any(|m| m.type_ == c.type_));
    st.conditions.extend(merged);
    st
}

/// The status of a policy whose spec is invalid: `Ready=False`, `Stalled=True`
/// (so GitOps fails fast), reason `InvalidSpec`, message naming the field.
pub fn invalid_spec_status(
    err: &InvalidSpec,
    generation: Option<i64>,
    previous: Option<&ReferrerPolicyStatus>,
    now: &Time,
) -> ReferrerPolicyStatus {
    let message = err.to_string();
    let fresh = vec![
        new_condition(
            conditions::READY,
            Status::False,
            "InvalidSpec",
            message.clone(),
            generation,
            now,
        ),
        new_condition(
            COMPLIANT,
            Status::Unknown,
            "InvalidSpec",
            "the policy is not evaluated until its spec is fixed",
            generation,
            now,
        ),
        new_condition(
            conditions::RECONCILING,
            Status::False,
            "InvalidSpec",
            "",
            generation,
            now,
        ),
        new_condition(
            conditions::STALLED,
            Status::True,
            "InvalidSpec",
            message,
            generation,
            now,
        ),
    ];
    let prev = previous.map(|p| p.conditions.as_slice()).unwrap_or(&[]);
    ReferrerPolicyStatus {
        observed_generation: generation,
        conditions: conditions::merge(prev, fresh),
        last_evaluation_time: previous.and_then(|p| p.last_evaluation_time.clone()),
        summary: ComplianceSummary::default(),
        violations: vec![],
        unknown: vec![],
    }
}
