//! GitLab container registry cleanup policies (lifecycle-gc.md §6).

use super::model::{APP_SAMPLE_TAGS, ReferrerShape, anchored_regex, finding, invalid, labels};
use crate::crd::{
    Confidence, FindingKind, GitlabCleanupPolicy, LifecycleFinding, RegistryFamily, Severity,
};

const FAMILY: RegistryFamily = RegistryFamily::GitLab;
/// The `name_regex_keep` alternative that keeps referrer tags.
pub const KEEP_REFERRERS: &str = r"sha256-[a-f0-9]{64}(\.(sig|att|sbom))?";

/// Findings for a GitLab cleanup policy.
pub fn analyze(p: &GitlabCleanupPolicy) -> Vec<LifecycleFinding> {
    let mut out = Vec::new();
    if let Some(k) = p.keep_n
        && ![1, 5, 10, 25, 50, 100].contains(&k)
    {
        out.push(invalid(
            FAMILY,
            "keep_n",
            "keep_n",
            &format!("{k} is not one of 1, 5, 10, 25, 50, 100"),
        ));
    }
    if let Some(o) = &p.older_than
        && !["7d", "14d", "30d", "90d"].contains(&o.as_str())
    {
        out.push(invalid(
            FAMILY,
            "older_than",
            "older_than",
            &format!("{o:?} is not one of 7d, 14d, 30d, 90d"),
        ));
    }
    if let Some(c) = &p.cadence
        && !["1d", "7d", "14d", "1month", "3month"].contains(&c.as_str())
    {
        out.push(invalid(
            FAMILY,
            "cadence",
            "cadence",
            &format!("{c:?} is not one of 1d, 7d, 14d, 1month, 3month"),
        ));
    }
    let delete = regex_field(p.name_regex.as_deref(), "name_regex", &mut out);
    let keep = regex_field(p.name_regex_keep.as_deref(), "name_regex_keep", &mut out);
    if !out.is_empty() || !p.enabled {
        return out;
    }
    let Some(delete) = delete else { return out };
    // GitLab: drop `latest`, keep name_regex matches, drop name_regex_keep matches.
    let candidate = |t: &str| {
        t != "latest" && delete.is_match(t) && !keep.as_ref().is_some_and(|k| k.is_match(t))
    };
    let ref_shapes: Vec<ReferrerShape> = ReferrerShape::ALL
        .into_iter()
        .filter(|s| s.sample_tag().is_some_and(|t| candidate(&t)))
        .collect();
    let apps = APP_SAMPLE_TAGS.iter().any(|t| candidate(t));
    let new_keep = match p.name_regex_keep.as_deref().filter(|s| !s.is_empty()) {
        Some(k) => format!("{k}|{KEEP_REFERRERS}"),
        None => KEEP_REFERRERS.to_string(),
    };
    let keep_fix = format!(
        "Set name_regex_keep to {new_keep:?} (RE2, anchored by GitLab), e.g. `curl -X PUT -H 'PRIVATE-TOKEN: …' --data-urlencode 'container_expiration_policy_attributes[name_regex_keep]={new_keep}' https://gitlab.example.com/api/v4/projects/<id>`."
    );
    if !ref_shapes.is_empty() {
        out.push(finding(
            FAMILY,
            "name_regex",
            FindingKind::DeletesReferrers,
            Severity::High,
            Confidence::Reported,
            format!(
                "name_regex {:?} matches {} and name_regex_keep does not keep them: the cleanup policy deletes them like image tags (older than {}, beyond keep_n {}) while the images they describe stay. GitLab's docs never mention signatures; users report it.",
                p.name_regex.as_deref().unwrap_or_default(),
                labels(&ref_shapes),
                p.older_than.as_deref().unwrap_or("any age"),
                p.keep_n.map(|k| k.to_string()).unwrap_or_else(|| "unset".into())
            ),
            keep_fix.clone(),
        ));
        if apps && p.keep_n.is_some() {
            out.push(finding(
                FAMILY,
                "keep_n",
                FindingKind::CountsReferrers,
                Severity::Medium,
                Confidence::Reported,
                format!(
                    "keep_n {} counts referrer tags together with image tags, so fewer real images are kept.",
                    p.keep_n.unwrap_or_default()
                ),
                keep_fix,
            ));
        }
    }
    if apps {
        out.push(finding(
            FAMILY,
            "name_regex",
            FindingKind::OrphansReferrers,
            Severity::Low,
            Confidence::Inferred,
            "The policy deletes image tags by name only: the sha256-<hex>.sig/.att/.sbom tags of a deleted image stay and keep their manifests alive.",
            "Delete the sha256-<digest>.* tags of images you remove (e.g. with `regctl tag rm`), or sign with OCI 1.1 referrers so no tags are involved.",
        ));
    }
    out
}

/// The anchored regex a policy field holds (`None` when unset or empty); an invalid one is
/// reported into `out`.
fn regex_field(
    value: Option<&str>,
    field: &str,
    out: &mut Vec<LifecycleFinding>,
) -> Option<regex::Regex> {
    match value.filter(|s| !s.is_empty()).map(anchored_regex)? {
        Ok(r) => Some(r),
        Err(e) => {
            out.push(invalid(
                FAMILY,
                field,
                field,
                &format!("not a valid RE2 regex: {e}"),
            ));
            None
        }
    }
}
