//! The ReferrerPolicy status: what an evaluation, a generation under evaluation or an invalid
//! spec writes (conditions, summary, bounded violation lists).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use super::evaluate::{COMPLIANT, CompiledPolicy, Evaluation, GLOB_MATCHES_NOTHING, InvalidSpec};
use crate::conditions::{self, Status, new_condition};
use crate::crd::{ReferrerPolicyStatus, VerifiedImage};

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
                "{} of {} images miss required referrers{}{}",
                s.non_compliant,
                s.images,
                if s.unverified > 0 {
                    format!(" ({} with referrers that do not verify)", s.unverified)
                } else {
                    String::new()
                },
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
    let counts = format!(
        "{} pods, {} images: {} compliant, {} missing referrers, {} unknown",
        s.pods, s.images, s.compliant, s.non_compliant, s.unknown
    );
    // An include glob that matches nothing the selected pods run is most likely a typo that
    // would leave images unchecked: not Ready, naming the glob (the rest is still evaluated).
    let ready = if eval.unmatched_includes.is_empty() {
        (Status::True, "Evaluated", counts)
    } else {
        let globs: Vec<String> = eval
            .unmatched_includes
            .iter()
            .map(|i| {
                let pattern = policy
                    .spec
                    .images
                    .include
                    .get(*i)
                    .map(String::as_str)
                    .unwrap_or_default();
                format!("spec.images.include[{i}] {pattern:?}")
            })
            .collect();
        (
            Status::False,
            GLOB_MATCHES_NOTHING,
            format!(
                "{} {} none of the {} repositories the selected pods run; fix or remove it ({counts})",
                globs.join(", "),
                if globs.len() == 1 { "matches" } else { "match" },
                eval.repositories_seen,
            ),
        )
    };
    let fresh = vec![
        new_condition(
            conditions::READY,
            ready.0,
            ready.1,
            ready.2,
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
    ReferrerPolicyStatus {
        last_evaluation_time: Some(now.clone()),
        summary: eval.summary.clone(),
        violations: eval.violations.iter().take(max).cloned().collect(),
        unknown: eval.unknown.iter().take(max).cloned().collect(),
        verified: verified_images(eval, max),
        ..merged_status(generation, previous, fresh)
    }
}

/// A status of `generation` with `fresh` merged into the `previous` conditions (to keep
/// their transition times) and nothing else set.
fn merged_status(
    generation: Option<i64>,
    previous: Option<&ReferrerPolicyStatus>,
    fresh: Vec<Condition>,
) -> ReferrerPolicyStatus {
    let prev = previous.map(|p| p.conditions.as_slice()).unwrap_or(&[]);
    ReferrerPolicyStatus {
        observed_generation: generation,
        conditions: conditions::merge(prev, fresh),
        ..ReferrerPolicyStatus::default()
    }
}

/// The compliant images whose `verify` requirements verified, bounded.
fn verified_images(eval: &Evaluation, max: usize) -> Vec<VerifiedImage> {
    eval.compliant
        .iter()
        .filter(|c| !c.verified.is_empty())
        .take(max)
        .map(|c| VerifiedImage {
            image: c.image.clone(),
            digest: c.digest.clone(),
            referrers: c.verified.clone(),
        })
        .collect()
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
    ReferrerPolicyStatus {
        last_evaluation_time: previous.and_then(|p| p.last_evaluation_time.clone()),
        ..merged_status(generation, previous, fresh)
    }
}
