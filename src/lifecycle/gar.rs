//! Google Artifact Registry cleanup policies (lifecycle-gc.md §4). Whether cleanup
//! skips, counts or cascades attachments is not confirmed by Google.

use super::model::{ReferrerShape, finding, invalid, labels, parse_age_seconds};
use crate::crd::{
    Confidence, FindingKind, GarCleanupPolicy, GarCondition, GarLifecycleSpec, LifecycleFinding,
    RegistryFamily, Severity,
};

const FAMILY: RegistryFamily = RegistryFamily::Gar;

/// Parses a gcloud policy file (JSON array) into a spec.
pub fn parse_policy_file(text: &str) -> Result<GarLifecycleSpec, serde_json::Error> {
    let policies: Vec<GarCleanupPolicy> = serde_json::from_str(text)?;
    Ok(GarLifecycleSpec {
        policies,
        dry_run: false,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum TagState {
    Tagged,
    Untagged,
    Any,
}

fn matches(c: &GarCondition, state: TagState, tag: Option<&str>) -> bool {
    let tagged = tag.is_some();
    let state_ok = match state {
        TagState::Any => true,
        TagState::Tagged => tagged,
        TagState::Untagged => !tagged,
    };
    let prefix_ok = c.tag_prefixes.is_empty()
        || tag.is_some_and(|t| c.tag_prefixes.iter().any(|p| t.starts_with(p.as_str())));
    state_ok
        && prefix_ok
        && c.version_name_prefixes.is_empty()
        && c.package_name_prefixes.is_empty()
}

fn state_of(c: &GarCondition) -> Result<TagState, String> {
    match c
        .tag_state
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("any") => Ok(TagState::Any),
        Some("tagged") => Ok(TagState::Tagged),
        Some("untagged") => Ok(TagState::Untagged),
        Some(o) => Err(format!("{o:?} is not tagged, untagged or any")),
    }
}

/// Findings for GAR cleanup policies.
pub fn analyze(spec: &GarLifecycleSpec) -> Vec<LifecycleFinding> {
    let mut out = Vec::new();
    if spec.policies.len() > 10 {
        out.push(invalid(
            FAMILY,
            "policies",
            "policies",
            &format!(
                "{} policies; at most 10 per repository",
                spec.policies.len()
            ),
        ));
    }
    let mut deletes = Vec::new();
    let mut keeps = Vec::new();
    let mut most_recent = Vec::new();
    for p in &spec.policies {
        let f = |field: &str| format!("{}.{field}", p.name);
        let action = p.action.type_.to_ascii_lowercase();
        if action != "delete" && action != "keep" {
            out.push(invalid(
                FAMILY,
                &p.name,
                &f("action.type"),
                &format!("{:?} is not Delete or Keep", p.action.type_),
            ));
            continue;
        }
        match (&p.condition, &p.most_recent_versions) {
            (Some(_), Some(_)) => {
                out.push(invalid(
                    FAMILY,
                    &p.name,
                    &p.name,
                    "condition and mostRecentVersions cannot share one policy",
                ));
                continue;
            }
            (None, None) => {
                out.push(invalid(
                    FAMILY,
                    &p.name,
                    &p.name,
                    "needs a condition or mostRecentVersions",
                ));
                continue;
            }
            (None, Some(m)) => {
                if action != "keep" {
                    out.push(invalid(
                        FAMILY,
                        &p.name,
                        &f("mostRecentVersions"),
                        "only valid with action Keep",
                    ));
                    continue;
                }
                if m.keep_count.is_some_and(|k| k < 1) {
                    out.push(invalid(
                        FAMILY,
                        &p.name,
                        &f("mostRecentVersions.keepCount"),
                        "must be at least 1",
                    ));
                    continue;
                }
                most_recent.push(p);
            }
            (Some(c), None) => {
                let state = match state_of(c) {
                    Ok(s) => s,
                    Err(e) => {
                        out.push(invalid(FAMILY, &p.name, &f("condition.tagState"), &e));
                        continue;
                    }
                };
                let mut bad = false;
                for (k, v) in [("olderThan", &c.older_than), ("newerThan", &c.newer_than)] {
                    if let Some(d) = v
                        && parse_age_seconds(d).is_none()
                    {
                        out.push(invalid(
                            FAMILY,
                            &p.name,
                            &f(&format!("condition.{k}")),
                            &format!("{d:?} is not a duration like 30d or 2592000s"),
                        ));
                        bad = true;
                    }
                }
                if bad {
                    continue;
                }
                if action == "delete" {
                    deletes.push((p, c, state));
                } else {
                    keeps.push((c, state));
                }
            }
        }
    }
    if out.iter().any(|f| f.kind == FindingKind::InvalidPolicy) || spec.dry_run {
        return out;
    }
    // Keep wins over delete: a keep without age bounds that matches the sample protects it.
    let kept = |tag: Option<&str>| {
        keeps
            .iter()
            .any(|(c, s)| c.older_than.is_none() && c.newer_than.is_none() && matches(c, *s, tag))
    };
    for (p, c, state) in &deletes {
        let hit: Vec<ReferrerShape> = ReferrerShape::ALL
            .into_iter()
            .filter(|s| {
                let t = s.sample_tag();
                matches(c, *state, t.as_deref()) && !kept(t.as_deref())
            })
            .collect();
        let tagged: Vec<ReferrerShape> = hit.iter().copied().filter(|s| s.is_tagged()).collect();
        let deletes_referrers = |message: String, fix: String| {
            finding(
                FAMILY,
                &p.name,
                FindingKind::DeletesReferrers,
                Severity::High,
                Confidence::Inferred,
                message,
                fix,
            )
        };
        if !tagged.is_empty() {
            out.push(deletes_referrers(
                format!("Delete policy {:?} matches {} (tags starting with sha256-), which are ordinary tagged versions to GAR.", p.name, labels(&tagged)),
                r#"Add a keep policy (keep wins over delete): {"name":"keep-referrer-tags","action":{"type":"Keep"},"condition":{"tagState":"tagged","tagPrefixes":["sha256-"]}}"#.into(),
            ));
        }
        if hit.contains(&ReferrerShape::Oci11) {
            out.push(deletes_referrers(
                format!("Delete policy {:?} selects untagged versions{}; OCI 1.1 referrers (GAR attachments) are untagged, and Google does not say whether cleanup skips them.", p.name, c.older_than.as_deref().map(|o| format!(" older than {o}")).unwrap_or_default()),
                format!(
                    r#"Until Google documents it, keep untagged versions longer than any deployed image runs: {{"name":"{}","action":{{"type":"Delete"}},"condition":{{"tagState":"untagged","olderThan":"365d"}}}}, or add {{"name":"keep-untagged","action":{{"type":"Keep"}},"condition":{{"tagState":"untagged"}}}} and test with cleanupPolicyDryRun."#,
                    p.name
                ),
            ));
        }
    }
    if !deletes.is_empty() {
        for p in most_recent {
            out.push(finding(
                FAMILY,
                &p.name,
                FindingKind::CountsReferrers,
                Severity::Medium,
                Confidence::Inferred,
                format!(
                    "Keep policy {:?} keeps the {} most recent versions; sha256-* referrer tags are versions too, and attachments may be counted (not confirmed by Google), so fewer images are kept.",
                    p.name,
                    p.most_recent_versions.as_ref().and_then(|m| m.keep_count).unwrap_or_default()
                ),
                "Raise keepCount to cover referrers (keepCount × (1 + referrers per image)), and keep referrer tags with a tagPrefixes [\"sha256-\"] keep policy.",
            ));
        }
    }
    out
}
