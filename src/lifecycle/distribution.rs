//! CNCF distribution garbage collection (lifecycle-gc.md §2).

use super::model::finding;
use crate::crd::{
    Confidence, DistributionLifecycleSpec, FindingKind, LifecycleFinding, RegistryFamily, Severity,
};

const FAMILY: RegistryFamily = RegistryFamily::Distribution;

/// Major version from `2.8.3`, `v3.0.0`, … (`None` when absent or unparseable).
fn major(v: Option<&str>) -> Option<u64> {
    v?.trim()
        .trim_start_matches('v')
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// Findings for a distribution GC configuration.
pub fn analyze(spec: &DistributionLifecycleSpec) -> Vec<LifecycleFinding> {
    let mut out = Vec::new();
    let Some(gc) = &spec.garbage_collection else {
        return out;
    };
    if !gc.delete_untagged {
        return out;
    }
    let rule = "garbageCollection.deleteUntagged";
    let no_m = "Run `registry garbage-collect` without --delete-untagged (-m); it then only removes unreferenced blobs.";
    out.push(finding(
        FAMILY,
        rule,
        FindingKind::DeletesReferrers,
        Severity::High,
        Confidence::Inferred,
        "--delete-untagged deletes every manifest no tag points at; distribution never follows `subject`, so untagged OCI 1.1 referrers are deleted while their tagged subject stays (registry/storage/garbagecollect.go).",
        format!("{no_m} Referrers stay safe only while something tags them: push them with the referrers tag schema (an index tagged sha256-<hex>, what ORAS/cosign/notation do when the registry has no referrers API)."),
    ));
    match major(spec.version.as_deref()) {
        Some(m) if m >= 3 => {}
        known => out.push(finding(
            FAMILY,
            rule,
            FindingKind::DeletesReferrers,
            Severity::High,
            Confidence::Documented,
            format!(
                "{}: --delete-untagged also deletes the untagged children of tagged indexes, which include the referrers listed by fallback referrers indexes (sha256-<hex>) and multi-arch images (distribution#3178, fixed in v3.0.0 by #4285).",
                if known.is_some() { "distribution 2.x" } else { "version not set, assuming 2.x" }
            ),
            format!("Upgrade to distribution v3.0.0 or later (set spec.lifecycle.distribution.version), or {}", no_m.to_lowercase()),
        )),
    }
    out.push(finding(
        FAMILY,
        rule,
        FindingKind::OrphansReferrers,
        Severity::Low,
        Confidence::Inferred,
        "Fallback referrers indexes (sha256-<hex>) and cosign tags (sha256-<hex>.sig/.att/.sbom) are tags, so GC keeps them after their subject is deleted or untagged; nothing ever removes them.",
        "When deleting an image, also delete the manifests tagged sha256-<hex> and sha256-<hex>.sig/.att/.sbom for its digest (e.g. `regctl manifest rm <repo>:sha256-<hex>.sig`).",
    ));
    out
}
