//! Harbor tag retention and GC (lifecycle-gc.md §3).
//!
//! `.sig` cosign tags and OCI 1.1 referrers are accessories (never retention
//! candidates, deleted with their subject). Legacy `.att` / `.sbom` tags are not:
//! they are ordinary tagged artifacts, counted and deletable.

use super::model::{APP_SAMPLE_TAGS, ReferrerShape, finding, invalid, labels};
use crate::crd::{
    Confidence, FindingKind, HarborLifecycleSpec, HarborRetentionRule, LifecycleFinding,
    RegistryFamily, Severity,
};

const FAMILY: RegistryFamily = RegistryFamily::Harbor;

/// Doublestar pattern → anchored regex (`**` any, `*` no `/`, `?`, `{a,b}`, `[..]`).
pub fn doublestar_regex(p: &str) -> Result<regex::Regex, regex::Error> {
    let mut out = String::from("^");
    let chars: Vec<char> = p.chars().collect();
    let mut i = 0;
    let mut depth = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                out.push_str(".*");
                i += 1;
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '{' => {
                depth += 1;
                out.push_str("(?:");
            }
            '}' if depth > 0 => {
                depth -= 1;
                out.push(')');
            }
            ',' if depth > 0 => out.push('|'),
            '[' => {
                let end = chars[i..].iter().position(|&x| x == ']').map(|e| e + i);
                match end {
                    Some(e) => {
                        let class: String = chars[i + 1..e].iter().collect();
                        out.push('[');
                        out.push_str(&class.replacen(
                            '!',
                            "^",
                            usize::from(class.starts_with('!')),
                        ));
                        out.push(']');
                        i = e;
                    }
                    None => out.push_str(r"\["),
                }
            }
            c => out.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    out.push('$');
    regex::Regex::new(&out)
}

const COUNT_TEMPLATES: &[&str] = &["latestPushedK", "latestPulledN", "latestActiveK"];
const KNOWN_TEMPLATES: &[&str] = &[
    "latestPushedK",
    "latestPulledN",
    "nDaysSinceLastPush",
    "nDaysSinceLastPull",
    "always",
    "latestActiveK",
    "lastXDays",
    "nothing",
];

fn selects(_rule: &HarborRetentionRule, res: &[(bool, regex::Regex)], tag: &str) -> bool {
    res.iter().all(|(matches, r)| r.is_match(tag) == *matches)
}

/// Findings for Harbor retention / GC.
pub fn analyze(spec: &HarborLifecycleSpec) -> Vec<LifecycleFinding> {
    let mut out = Vec::new();
    let Some(ret) = &spec.retention else {
        return out;
    };
    if ret.rules.len() > 15 {
        out.push(invalid(
            FAMILY,
            "retention",
            "rules",
            &format!(
                "{} rules; Harbor allows at most 15 per project",
                ret.rules.len()
            ),
        ));
    }
    let mut compiled = Vec::new();
    for (i, r) in ret.rules.iter().enumerate() {
        let name = format!("rules[{i}]");
        if !KNOWN_TEMPLATES.contains(&r.template.as_str()) {
            out.push(invalid(
                FAMILY,
                &name,
                &format!("{name}.template"),
                &format!("unknown template {:?}", r.template),
            ));
            continue;
        }
        let mut res = Vec::new();
        for (j, s) in r.tag_selectors.iter().enumerate() {
            let matches = match s.decoration.as_str() {
                "matches" => true,
                "excludes" => false,
                d => {
                    out.push(invalid(
                        FAMILY,
                        &name,
                        &format!("{name}.tag_selectors[{j}].decoration"),
                        &format!("{d:?} is not matches or excludes"),
                    ));
                    continue;
                }
            };
            match doublestar_regex(&s.pattern) {
                Ok(re) => res.push((matches, re)),
                Err(e) => out.push(invalid(
                    FAMILY,
                    &name,
                    &format!("{name}.tag_selectors[{j}].pattern"),
                    &e.to_string(),
                )),
            }
        }
        if !r.disabled {
            compiled.push((i, r, res));
        }
    }
    if out.iter().any(|f| f.kind == FindingKind::InvalidPolicy) || compiled.is_empty() {
        return out;
    }
    let shapes = [ReferrerShape::CosignAtt, ReferrerShape::CosignSbom];
    // A tag is surely kept when an `always` rule selects it.
    let always_kept = |t: &str| {
        compiled
            .iter()
            .any(|(_, r, res)| r.template == "always" && selects(r, res, t))
    };
    let exposed: Vec<ReferrerShape> = shapes
        .into_iter()
        .filter(|s| s.sample_tag().is_some_and(|t| !always_kept(&t)))
        .collect();
    let fix = r#"Add a retention rule that always retains legacy attestation/SBOM tags: {"action":"retain","template":"always","params":{},"tag_selectors":[{"kind":"doublestar","decoration":"matches","pattern":"sha256-*.{att,sbom}"}],"scope_selectors":{"repository":[{"kind":"doublestar","decoration":"repoMatches","pattern":"**"}]}}; better, push attestations and SBOMs as OCI 1.1 referrers, which Harbor links as accessories."#;
    if !exposed.is_empty() {
        out.push(finding(
            FAMILY,
            "retention",
            FindingKind::DeletesReferrers,
            Severity::High,
            Confidence::Inferred,
            format!(
                "{} are not linked as accessories (only .sig is), so retention treats them as ordinary artifacts: what no rule retains is deleted, and no rule always retains them. From Harbor's code (cosign middleware), not documented.",
                labels(&exposed)
            ),
            fix,
        ));
    }
    for (i, r, res) in &compiled {
        if !COUNT_TEMPLATES.contains(&r.template.as_str()) {
            continue;
        }
        let counted: Vec<ReferrerShape> = shapes
            .into_iter()
            .filter(|s| s.sample_tag().is_some_and(|t| selects(r, res, &t)))
            .collect();
        if !counted.is_empty() && APP_SAMPLE_TAGS.iter().any(|t| selects(r, res, t)) {
            out.push(finding(
                FAMILY,
                format!("rules[{i}]"),
                FindingKind::CountsReferrers,
                Severity::Medium,
                Confidence::Inferred,
                format!(
                    "rules[{i}] ({} {:?}) counts {} as artifacts, so it retains fewer images than it says.",
                    r.template,
                    r.params,
                    labels(&counted)
                ),
                "Narrow the counting rule's matches pattern to your release tags (e.g. \"v*\"), so sha256-* tags are not counted, and retain sha256-*.{att,sbom} with an always rule (see the retention finding); or push attestations and SBOMs as OCI 1.1 referrers.",
            ));
        }
    }
    out
}
