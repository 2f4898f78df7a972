//! Quay auto-prune and tag expiration (lifecycle-gc.md §7).

use super::model::{APP_SAMPLE_TAGS, ReferrerShape, finding, invalid, labels};
use crate::crd::{
    Confidence, FindingKind, LifecycleFinding, QuayLifecycleSpec, RegistryFamily, Severity,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

const FAMILY: RegistryFamily = RegistryFamily::Quay;
/// Pattern that, with `tagPatternMatches: false`, keeps auto-prune away from referrer tags.
pub const REFERRER_TAGS: &str = r"^sha256-[a-f0-9]{64}(\.(sig|att|sbom))?$";

/// Findings for Quay settings.
pub fn analyze(spec: &QuayLifecycleSpec) -> Vec<LifecycleFinding> {
    let mut out = Vec::new();
    for (i, p) in spec.auto_prune.iter().enumerate() {
        let rule = format!("autoPrune[{i}]");
        let value_ok = match (p.method.as_str(), &p.value) {
            ("number_of_tags", IntOrString::Int(n)) => *n >= 1,
            ("number_of_tags", IntOrString::String(s)) => s.parse::<u32>().is_ok_and(|n| n >= 1),
            ("creation_date", IntOrString::String(s)) => {
                super::model::parse_age_seconds(s).is_some()
                    || s.ends_with('m') && s[..s.len() - 1].parse::<u32>().is_ok()
            }
            ("creation_date", IntOrString::Int(_)) => false,
            (m, _) => {
                out.push(invalid(
                    FAMILY,
                    &rule,
                    &format!("{rule}.method"),
                    &format!("{m:?} is not number_of_tags or creation_date"),
                ));
                continue;
            }
        };
        if !value_ok {
            out.push(invalid(
                FAMILY,
                &rule,
                &format!("{rule}.value"),
                "number_of_tags takes a positive count, creation_date an age like 30d",
            ));
            continue;
        }
        let re = match p.tag_pattern.as_deref().map(regex::Regex::new) {
            None => None,
            Some(Ok(r)) => Some(r),
            Some(Err(e)) => {
                out.push(invalid(
                    FAMILY,
                    &rule,
                    &format!("{rule}.tagPattern"),
                    &format!("not a valid regex: {e}"),
                ));
                continue;
            }
        };
        if spec.cosign_prune_fix {
            continue;
        }
        let applies = |t: &str| match &re {
            None => true,
            Some(r) => r.is_match(t) == p.tag_pattern_matches,
        };
        let shapes: Vec<ReferrerShape> = ReferrerShape::ALL
            .into_iter()
            .filter(|s| s.sample_tag().is_some_and(|t| applies(&t)))
            .collect();
        if shapes.is_empty() {
            continue;
        }
        let fix = format!(
            "Keep auto-prune away from referrer tags: {{\"method\":\"{}\",\"value\":{},\"tagPattern\":\"{}\",\"tagPatternMatches\":false}} (or run a Quay build with PROJQUAY-11682 and set cosignPruneFix: true).",
            p.method,
            serde_json::to_string(&p.value).unwrap_or_default(),
            REFERRER_TAGS.replace('\\', "\\\\")
        );
        out.push(finding(
            FAMILY,
            &rule,
            FindingKind::DeletesReferrers,
            Severity::High,
            Confidence::Reported,
            format!(
                "auto-prune ({} {}) applies to {}: released Quay versions{} prune them like image tags while the images they describe stay (fixed only on master/redhat-3.18 by PROJQUAY-11682, in no release tag yet).",
                p.method,
                serde_json::to_string(&p.value).unwrap_or_default(),
                labels(&shapes),
                spec.version.as_deref().map(|v| format!(" (configured: {v})")).unwrap_or_default()
            ),
            fix.clone(),
        ));
        if p.method == "number_of_tags" && APP_SAMPLE_TAGS.iter().any(|t| applies(t)) {
            out.push(finding(
                FAMILY,
                &rule,
                FindingKind::CountsReferrers,
                Severity::Medium,
                Confidence::Reported,
                "number_of_tags counts cosign tags as tags, so fewer image tags are kept.",
                fix,
            ));
        }
    }
    if spec.tag_expiration {
        out.push(finding(
            FAMILY,
            "tagExpiration",
            FindingKind::OrphansReferrers,
            Severity::Low,
            Confidence::Inferred,
            "When the tags of an image with referrers expire, Quay keeps the manifest because referrers point at it (data/model/gc.py), and referrers keep their hidden $temp tags: subject and referrers stay forever as untagged storage. Nothing breaks; quota leaks.",
            "Delete referrers along with images you let expire (e.g. `oras manifest delete` on each referrer), or do not set expirations on images that carry referrers.",
        ));
    }
    out
}
