//! Pure policy evaluation: the per-image verdict (compliant, violation or Unknown) that a
//! policy's selection, discovery outcomes and verification verdicts come to.
//!
//! The steps before it live in their own modules, re-exported here so `policy::evaluate` stays
//! the one path: `compile` (the spec checked), `select` (the images a policy selects),
//! `requirement` (whether referrers meet a requirement); the status that follows is built in
//! `policy::status`. The controller and `refwarden evaluate` both call these functions (through
//! `policy::run`), so they cannot disagree.

use crate::reason::{Reason, UnknownReason};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::pods::ImageKey;
use super::verification::{ImageVerdicts, RequirementVerdict};
use crate::crd::{
    ComplianceSummary, PolicyViolation, UnknownImage, UnverifiedReferrer, VerifiedReferrer,
    WorkloadRef,
};
use crate::discovery::{DiscoveryMethod, DiscoveryOutcome, DiscoveryReport};

pub use super::compile::{CompiledPolicy, InvalidSpec, compile, referrers_repository};
use super::requirement::requirement_met;
pub use super::requirement::{missing_requirements, referrer_satisfies, requirement_met_by};
pub use super::select::{NamespaceLabels, Selection, select, selects_pod};
pub use super::status::{invalid_spec_status, reconciling_status, status};

/// Condition type: every selected image carries its required referrers.
pub const COMPLIANT: &str = "Compliant";
/// Reason of `Ready=False`: an include glob matches none of the repositories the selected pods run.
pub const GLOB_MATCHES_NOTHING: &str = "GlobMatchesNothing";
/// Workloads listed per violation at most.
pub const MAX_WORKLOADS_PER_IMAGE: usize = 10;

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
    unknown: Option<(Reason, String)>,
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
                    out.unknown = Some((*reason, format!("requirement {}: {message}", req.name)));
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
                        reason: UnknownReason::of(reason).to_string(),
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
                    reason: UnknownReason::of(*reason).to_string(),
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
            reason: u.reason.to_string(),
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
            reason: UnknownReason::DigestNotResolvable.to_string(),
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
