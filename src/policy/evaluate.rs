//! Pure policy evaluation: which images a policy selects, whether their
//! discovered referrers meet its requirements, and the status that follows (built in
//! `policy::status`, re-exported here).
//!
//! The controller and `refwarden evaluate` both call these functions (through
//! `policy::run`), so they cannot disagree.

use crate::reason::Reason;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use super::glob::RepoFilter;
use super::pods::{ImageKey, ImageSource, PodImage, PodInfo};
use super::selector;
use super::verification::{ImageVerdicts, RequirementVerdict};
use crate::crd::{
    ComplianceSummary, PolicyViolation, ReferrerPolicySpec, Requirement, SubjectMatch,
    UnknownImage, UnverifiedReferrer, VerifiedReferrer, WorkloadRef,
};
use crate::discovery::presets;
use crate::discovery::{AttachedTo, DiscoveryMethod, DiscoveryOutcome, DiscoveryReport, Referrer};
use crate::registry::ImageReference;

pub use super::status::{invalid_spec_status, reconciling_status, status};

/// Condition type: every selected image carries its required referrers.
pub const COMPLIANT: &str = "Compliant";
/// Reason of `Ready=False`: an include glob matches none of the repositories the selected pods run.
pub const GLOB_MATCHES_NOTHING: &str = "GlobMatchesNothing";
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

impl CompiledPolicy {
    /// Whether `spec.images` checks a repository (`registry/path`).
    pub fn checks_repository(&self, repository: &str) -> bool {
        self.filter.check(repository).0
    }
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
        if r.preset.is_none()
            && r.artifact_types.is_empty()
            && r.legacy_tag_suffixes.is_empty()
            && r.formats.is_empty()
        {
            return Err(InvalidSpec {
                field: format!("spec.require[{i}]"),
                message: "set preset, artifactTypes, legacyTagSuffixes or formats".into(),
            });
        }
        if let Some(j) = r
            .formats
            .iter()
            .position(|f| *f == crate::discovery::Format::Unclassified)
        {
            return Err(InvalidSpec {
                field: format!("spec.require[{i}].formats[{j}]"),
                message: "\"unclassified\" is not a format a referrer can be required to have"
                    .into(),
            });
        }
        if let Some(repo) = &r.repository {
            referrers_repository(repo).map_err(|message| InvalidSpec {
                field: format!("spec.require[{i}].repository"),
                message,
            })?;
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

/// `registry/path` of a requirement's `repository`, parsed (a tag or digest is refused: the
/// digest looked up is the running one).
pub fn referrers_repository(repo: &str) -> Result<ImageReference, String> {
    let r = ImageReference::parse(repo).map_err(|e| format!("{repo:?}: {e}"))?;
    if r.digest.is_some()
        || repo
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
    {
        return Err(format!(
            "{repo:?}: name a repository (registry/path) without a tag or digest"
        ));
    }
    if !repo.contains('/') {
        return Err(format!("{repo:?}: name the registry too (registry/path)"));
    }
    Ok(r)
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
    /// Selected pods running it.
    pub pods: u32,
}

/// A reference only known by tag, to resolve through the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagUse {
    /// The parsed reference.
    pub reference: ImageReference,
    /// Workloads running it.
    pub workloads: BTreeSet<WorkloadRef>,
    /// Selected pods running it.
    pub pods: u32,
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
    /// Selected pods running it.
    pub pods: u32,
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
    /// Distinct repositories the selected pods run, before `spec.images` filters them.
    pub repositories_seen: u32,
    /// Indexes of `spec.images.include` globs that match none of those repositories.
    pub unmatched_includes: Vec<usize>,
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
            entry.pods += t.pods;
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
                    pods: 0,
                });
            entry.workloads.extend(t.workloads);
            entry.pods += t.pods;
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
    namespace_selected(policy, &pod.namespace, namespaces)
        && selector::matches(policy.spec.pod_selector.as_ref(), &pod.labels)
}

fn namespace_selected(policy: &CompiledPolicy, ns: &str, namespaces: &NamespaceLabels) -> bool {
    let mut fallback = BTreeMap::new();
    selector::matches(
        policy.spec.namespace_selector.as_ref(),
        namespace_labels(namespaces, ns, &mut fallback),
    )
}

/// Selects pods and their images.
///
/// Each namespace's selector answer and each distinct image's `spec.images` answer is computed
/// once per call (pods share [`PodImage`]s), and nothing is cloned for an image or workload
/// already recorded: this runs for every policy over every pod.
pub fn select<'a>(
    policy: &CompiledPolicy,
    pods: impl IntoIterator<Item = &'a PodInfo>,
    namespaces: &NamespaceLabels,
) -> Selection {
    let mut sel = Selection::default();
    let mut ns_selected: HashMap<&'a str, bool> = HashMap::new();
    let mut image_selected: HashMap<*const PodImage, bool> = HashMap::new();
    let mut repositories: HashSet<&'a str> = HashSet::new();
    let mut include_matched = vec![false; policy.filter.include_len()];
    for pod in pods {
        let ns_ok = *ns_selected
            .entry(pod.namespace.as_str())
            .or_insert_with(|| namespace_selected(policy, &pod.namespace, namespaces));
        if !ns_ok || !selector::matches(policy.spec.pod_selector.as_ref(), &pod.labels) {
            continue;
        }
        sel.pods += 1;
        for c in &pod.images {
            // A name that does not parse has no repository to filter on: it stays selected
            // (and is reported Unknown).
            let wanted = *image_selected.entry(Arc::as_ptr(c)).or_insert_with(|| {
                let Some(path) = c.repository_path.as_deref() else {
                    return true;
                };
                repositories.insert(path);
                let (selected, includes) = policy.filter.check(path);
                for i in includes {
                    include_matched[i] = true;
                }
                selected
            });
            if !wanted {
                continue;
            }
            match &c.source {
                ImageSource::Digest { key, index } => {
                    if !sel.images.contains_key(key) {
                        sel.images.insert(
                            key.clone(),
                            ImageUse {
                                image: c.image.clone(),
                                ..Default::default()
                            },
                        );
                    }
                    let Some(entry) = sel.images.get_mut(key) else {
                        continue;
                    };
                    if let Some(i) = index
                        && !entry.index.contains(i)
                    {
                        entry.index.insert(i.clone());
                    }
                    entry.pods += 1;
                    if !entry.workloads.contains(&pod.workload) {
                        entry.workloads.insert(pod.workload.clone());
                    }
                }
                ImageSource::Tag(r) => {
                    let entry = sel.tags.entry(r.whole()).or_insert_with(|| TagUse {
                        reference: r.clone(),
                        workloads: BTreeSet::new(),
                        pods: 0,
                    });
                    entry.pods += 1;
                    if !entry.workloads.contains(&pod.workload) {
                        entry.workloads.insert(pod.workload.clone());
                    }
                }
                ImageSource::Unresolvable {
                    image,
                    reason,
                    message,
                } => {
                    let digest = c
                        .image_id
                        .as_deref()
                        .map(super::pods::normalise_image_id)
                        .map(str::to_string);
                    let entry = sel
                        .unknown
                        .entry(image.clone())
                        .or_insert_with(|| UnknownUse {
                            digest,
                            reason: reason.clone(),
                            message: message.clone(),
                            workloads: BTreeSet::new(),
                            pods: 0,
                        });
                    entry.pods += 1;
                    if !entry.workloads.contains(&pod.workload) {
                        entry.workloads.insert(pod.workload.clone());
                    }
                }
            }
        }
    }
    sel.repositories_seen = u32::try_from(repositories.len()).unwrap_or(u32::MAX);
    if !repositories.is_empty() {
        sel.unmatched_includes = (0..include_matched.len())
            .filter(|i| !include_matched[*i])
            .collect();
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

/// Whether one referrer satisfies one requirement (ignoring where it is attached): its
/// `formats` (when set) admit the referrer's format, and its preset, artifact types or legacy
/// tag suffixes match (with only `formats` set, the format is enough).
pub fn referrer_satisfies(req: &Requirement, r: &Referrer) -> bool {
    if !req.formats.is_empty() && !req.formats.iter().any(|f| r.format.satisfies(*f)) {
        return false;
    }
    if req.preset.is_none() && req.artifact_types.is_empty() && req.legacy_tag_suffixes.is_empty() {
        return !req.formats.is_empty();
    }
    if let Some(p) = req.preset
        && let Some(preset) = presets::preset(p.name())
        && presets::referrer_satisfies(preset, r)
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
    requirement_met_by(req, subject_match, report, &|_| true)
}

/// [`requirement_met`] counting only the referrers `counts` accepts (a `verify` requirement
/// counts the ones that verified).
pub fn requirement_met_by(
    req: &Requirement,
    subject_match: SubjectMatch,
    report: &DiscoveryReport,
    counts: &dyn Fn(&Referrer) -> bool,
) -> bool {
    let need = req.min_count.max(1) as usize;
    let distinct = |attached: &[AttachedTo], subject: Option<&str>| -> usize {
        report
            .referrers
            .iter()
            .filter(|r| attached.contains(&r.attached_to))
            .filter(|r| subject.is_none_or(|s| r.subject == s))
            .filter(|r| referrer_satisfies(req, r))
            .filter(|r| counts(r))
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
                            + distinct(&[AttachedTo::Platform], Some(&p.digest))
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

/// Maps a failure reason ([`Reason`], or the profile's own `RegistryProfileInvalid`) to the
/// policy's coarser Unknown reason.
pub fn unknown_reason(failure: &str) -> &'static str {
    match Reason::parse(failure) {
        Some(Reason::AuthFailed | Reason::InsufficientPermissions) => "AuthFailed",
        Some(Reason::SubjectNotFound | Reason::TagNotFound) => "ImageNotFound",
        Some(Reason::ReferrersApiUnsupported) => "ReferrersApiUnsupported",
        Some(Reason::InvalidResponse | Reason::BodyTooLarge) => "InvalidRegistryResponse",
        Some(Reason::InvalidConfig) => "RegistryProfileInvalid",
        None if failure == "RegistryProfileInvalid" => "RegistryProfileInvalid",
        _ => "RegistryUnavailable",
    }
}

/// An image that carries every required referrer: listed for reports (JUnit, SARIF) that
/// name each image; the status only counts them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompliantImage {
    /// Normalised repository.
    pub image: String,
    /// The image as a pod names it (first seen).
    pub reference: Option<String>,
    /// The running digest.
    pub digest: String,
    /// Selected pods running it.
    pub pods: u32,
    /// Workloads running it (bounded like violations').
    pub workloads: Vec<WorkloadRef>,
    /// How its referrers were discovered.
    pub discovery_method: Option<String>,
    /// The referrers that verified for its `verify` requirements.
    pub verified: Vec<VerifiedReferrer>,
}

/// The result of judging every selected image.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// Counts.
    pub summary: ComplianceSummary,
    /// Every compliant image, sorted by (image, digest).
    pub compliant: Vec<CompliantImage>,
    /// Every violation, sorted by (image, digest).
    pub violations: Vec<PolicyViolation>,
    /// Every Unknown image, sorted by (image, digest).
    pub unknown: Vec<UnknownImage>,
    /// See [`Selection::repositories_seen`].
    pub repositories_seen: u32,
    /// See [`Selection::unmatched_includes`].
    pub unmatched_includes: Vec<usize>,
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

/// Unverified referrers listed per violation at most.
pub const MAX_UNVERIFIED_PER_IMAGE: usize = 5;

/// What an image's requirements come to.
struct JudgedRequirements {
    /// Names of the requirements certainly not met.
    missing: Vec<String>,
    /// Why the `verify` ones among them did not verify.
    unverified: Vec<UnverifiedReferrer>,
    /// The referrers that verified (for met `verify` requirements).
    verified: Vec<VerifiedReferrer>,
    /// A `verify` requirement that could not be decided (reason, message).
    unknown: Option<(String, String)>,
}

fn judge_requirements(
    policy: &CompiledPolicy,
    report: &DiscoveryReport,
    verdicts: Option<&ImageVerdicts>,
) -> JudgedRequirements {
    let mut out = JudgedRequirements {
        missing: Vec::new(),
        unverified: Vec::new(),
        verified: Vec::new(),
        unknown: None,
    };
    for req in &policy.spec.require {
        if req.verify.is_none() {
            if !requirement_met(req, policy.spec.subject_match, report) {
                out.missing.push(req.name.clone());
            }
            continue;
        }
        match verdicts.and_then(|v| v.get(&req.name)) {
            Some(RequirementVerdict::Met(v)) => out.verified.extend(v.iter().cloned()),
            Some(RequirementVerdict::Unknown { reason, message }) => {
                if out.unknown.is_none() {
                    out.unknown = Some((
                        reason.clone(),
                        format!("requirement {}: {message}", req.name),
                    ));
                }
            }
            Some(RequirementVerdict::Unmet(u)) => {
                out.missing.push(req.name.clone());
                out.unverified.extend(u.iter().cloned());
            }
            None => out.missing.push(req.name.clone()),
        }
    }
    out.unverified.truncate(MAX_UNVERIFIED_PER_IMAGE);
    out.verified.truncate(MAX_UNVERIFIED_PER_IMAGE);
    out
}

/// Judges a selection given the discovery outcome of each image (`None`: not discovered,
/// Unknown) and, for requirements with `verify`, the verification verdicts.
pub fn judge(
    policy: &CompiledPolicy,
    selection: &Selection,
    outcomes: &BTreeMap<ImageKey, Arc<DiscoveryOutcome>>,
    verdicts: &BTreeMap<ImageKey, ImageVerdicts>,
) -> Evaluation {
    let mut eval = Evaluation {
        summary: ComplianceSummary {
            pods: selection.pods,
            ..Default::default()
        },
        repositories_seen: selection.repositories_seen,
        unmatched_includes: selection.unmatched_includes.clone(),
        ..Default::default()
    };
    for (key, use_) in &selection.images {
        let image = key.repository_path();
        match outcomes.get(key).map(Arc::as_ref) {
            Some(DiscoveryOutcome::Found(report)) => {
                let verdicts = verdicts.get(key);
                let judged = judge_requirements(policy, report, verdicts);
                if let Some((reason, message)) =
                    judged.unknown.filter(|_| judged.missing.is_empty())
                {
                    eval.summary.unknown += 1;
                    eval.unknown.push(UnknownImage {
                        image,
                        digest: Some(key.digest.clone()),
                        reason: unknown_reason(&reason).to_string(),
                        message: format!("verifying: {reason}: {message}"),
                        pods: use_.pods,
                        workloads: bounded(&use_.workloads),
                    });
                } else if judged.missing.is_empty() {
                    eval.summary.compliant += 1;
                    if !judged.verified.is_empty() {
                        eval.summary.verified += 1;
                    }
                    eval.compliant.push(CompliantImage {
                        image,
                        reference: (!use_.image.is_empty()).then(|| use_.image.clone()),
                        digest: key.digest.clone(),
                        pods: use_.pods,
                        workloads: bounded(&use_.workloads),
                        discovery_method: methods_label(&report.methods),
                        verified: judged.verified,
                    });
                } else {
                    eval.summary.non_compliant += 1;
                    if !judged.unverified.is_empty() {
                        eval.summary.unverified += 1;
                    }
                    eval.violations.push(PolicyViolation {
                        image,
                        reference: (!use_.image.is_empty()).then(|| use_.image.clone()),
                        digest: key.digest.clone(),
                        pods: use_.pods,
                        missing: judged.missing,
                        workloads: bounded(&use_.workloads),
                        discovery_method: methods_label(&report.methods),
                        unverified: judged.unverified,
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
                    pods: use_.pods,
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
                    pods: use_.pods,
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
            pods: u.pods,
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
            pods: t.pods,
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
