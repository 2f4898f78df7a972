//! Lifecycle and GC risk analysis: which retention, cleanup and garbage-collection
//! rules delete, orphan, count or hide referrers (signatures, SBOMs, attestations).
//!
//! Everything here is pure except [`aws`], which reads ECR policies and images
//! through the AWS API. Entry points for the controller:
//! - [`analyze_spec`]: findings for the declared `spec.lifecycle` (inline ECR
//!   policy and every other family); ECR policies from a ConfigMap or the AWS API
//!   go through [`analyze_ecr_policy_text`] once the text is read.
//! - [`simulate::simulate`] + [`simulate::simulation_findings`] with an inventory.
//! - [`lifecycle_condition`] for the `LifecycleSafe` condition.

pub mod acr;
pub mod aws;
pub mod distribution;
pub mod ecr;
pub mod gar;
pub mod gitlab;
pub mod harbor;
pub mod model;
pub mod quay;
pub mod simulate;

use crate::conditions::Status;
use crate::crd::{LifecycleFinding, LifecycleSpec, RegistryFamily, Severity};

/// Condition type of the RegistryProfile: no lifecycle rule endangers referrers.
pub const LIFECYCLE_SAFE: &str = "LifecycleSafe";

/// Findings for an ECR lifecycle policy text (from a file, a ConfigMap key or
/// `GetLifecyclePolicy`). `context` (e.g. the repository) prefixes messages.
/// Invalid JSON or grammar gives `InvalidPolicy` findings, never an error.
pub fn analyze_ecr_policy_text(text: &str, context: Option<&str>) -> Vec<LifecycleFinding> {
    ecr::analyze_policy_text(text, context)
}

/// Findings for the declared lifecycle configuration. An ECR block that names a
/// ConfigMap or the AWS API contributes nothing here: the caller reads the text and
/// calls [`analyze_ecr_policy_text`].
pub fn analyze_spec(spec: &LifecycleSpec) -> Vec<LifecycleFinding> {
    let mut out = Vec::new();
    if let Some(e) = &spec.ecr
        && let Some(text) = &e.inline
    {
        out.extend(analyze_ecr_policy_text(text, None));
    }
    if let Some(d) = &spec.distribution {
        out.extend(distribution::analyze(d));
    }
    if let Some(h) = &spec.harbor {
        out.extend(harbor::analyze(h));
    }
    if let Some(g) = &spec.gar {
        out.extend(gar::analyze(g));
    }
    if let Some(a) = &spec.acr {
        out.extend(acr::analyze(a));
    }
    if let Some(g) = &spec.gitlab {
        out.extend(gitlab::analyze(g));
    }
    if let Some(q) = &spec.quay {
        out.extend(quay::analyze(q));
    }
    sort_findings(&mut out);
    out
}

/// A policy text of a family that cannot be read: a field the format does not have, a wrong
/// type, text that is not JSON/YAML. (A rule the vendor would reject is an `InvalidPolicy`
/// finding instead.)
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct PolicyParseError {
    /// The field path (`autoPrune[0].method`, `<document>`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl From<crate::input::FieldError> for PolicyParseError {
    fn from(e: crate::input::FieldError) -> Self {
        Self {
            field: e.field,
            message: e.message,
        }
    }
}

/// Findings for a policy file of any family: ECR lifecycle JSON, the gcloud cleanup policy
/// array (GAR) or the `spec.lifecycle.gar` block, or JSON/YAML of the family's
/// `spec.lifecycle` block for the others. Strict: a field the format does not have or a wrong
/// type is an error naming the field, never dropped.
pub fn analyze_policy_text(
    family: RegistryFamily,
    text: &str,
) -> Result<Vec<LifecycleFinding>, PolicyParseError> {
    use crate::input::decode_text_strict;
    let mut out = match family {
        RegistryFamily::Ecr => {
            if let Some(field) = ecr::unknown_fields(text).into_iter().next() {
                return Err(PolicyParseError {
                    field,
                    message: "unknown field (not part of the ECR lifecycle policy format)".into(),
                });
            }
            analyze_ecr_policy_text(text, None)
        }
        RegistryFamily::Gar => {
            let spec = if text.trim_start().starts_with('[') {
                crate::crd::GarLifecycleSpec {
                    policies: decode_text_strict(text)?,
                    dry_run: false,
                }
            } else {
                decode_text_strict(text)?
            };
            gar::analyze(&spec)
        }
        RegistryFamily::Distribution => distribution::analyze(&decode_text_strict(text)?),
        RegistryFamily::Harbor => harbor::analyze(&decode_text_strict(text)?),
        RegistryFamily::Acr => acr::analyze(&decode_text_strict(text)?),
        RegistryFamily::GitLab => gitlab::analyze(&decode_text_strict(text)?),
        RegistryFamily::Quay => quay::analyze(&decode_text_strict(text)?),
    };
    sort_findings(&mut out);
    Ok(out)
}

/// Highest severity first, then family and rule.
pub fn sort_findings(f: &mut [LifecycleFinding]) {
    f.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.registry_family.cmp(&b.registry_family))
            .then(a.rule.cmp(&b.rule))
            .then(a.kind.cmp(&b.kind))
    });
}

/// The `LifecycleSafe` condition: `(status, reason, message)`. True with reason
/// `NoRiskyRules` when there is no finding; False with `HighRisk`, `MediumRisk` or
/// `LowRisk` after the highest severity otherwise.
pub fn lifecycle_condition(findings: &[LifecycleFinding]) -> (Status, String, String) {
    let Some(top) = findings.iter().map(|f| f.severity).max() else {
        return (
            Status::True,
            "NoRiskyRules".into(),
            "no lifecycle rule deletes, orphans, counts or hides referrers".into(),
        );
    };
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let reason = match top {
        Severity::High => "HighRisk",
        Severity::Medium => "MediumRisk",
        Severity::Low => "LowRisk",
    };
    let first = findings
        .iter()
        .find(|f| f.severity == top)
        .map(|f| {
            format!(
                "; first: {} {} ({}): {}",
                f.registry_family, f.rule, f.kind, f.message
            )
        })
        .unwrap_or_default();
    (
        Status::False,
        reason.into(),
        format!(
            "{} lifecycle finding(s): {} High, {} Medium, {} Low{first}",
            findings.len(),
            count(Severity::High),
            count(Severity::Medium),
            count(Severity::Low)
        ),
    )
}
