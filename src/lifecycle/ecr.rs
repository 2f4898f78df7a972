//! Amazon ECR lifecycle policies: parse, validate with AWS's rules, and classify
//! each rule against the ways referrers are stored.
//!
//! Semantics (lifecycle-gc.md §1): all rules are evaluated together and applied by
//! priority (lowest number first); an image is acted on by at most one rule, the
//! first whose *tagging requirements* it matches (shielding); lower rules still see
//! shielded images when counting. ECR has no "keep" action: an image is protected
//! only by being matched first by a rule whose own criterion it does not meet.
//!
//! Parsing and AWS's validation are in `parse`; the rule model and the classification here.

use super::model::{APP_SAMPLE_TAGS, ReferrerShape, finding, invalid, labels};
use crate::crd::{Confidence, FindingKind, LifecycleFinding, RegistryFamily, Severity};

mod parse;

pub use parse::{NotJson, parse_policy, unknown_fields};

const FAMILY: RegistryFamily = RegistryFamily::Ecr;
/// Maximum length of `lifecyclePolicyText` (PutLifecyclePolicy).
pub const MAX_POLICY_CHARS: usize = 30_720;
/// Age (days) from which a rule that selects only referrer tags is taken as a shield.
pub const SHIELD_MIN_DAYS: i64 = 365;
/// Count from which a rule that selects only referrer tags is taken as a shield.
pub const SHIELD_MIN_COUNT: i64 = 10_000;

/// `selection.tagStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagStatus {
    Tagged,
    Untagged,
    Any,
}

/// `selection.storageClass`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum StorageClass {
    Standard,
    Archive,
}

/// `selection.countType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountType {
    ImageCountMoreThan,
    SinceImagePushed,
    SinceImagePulled,
    SinceImageTransitioned,
}

/// `action.type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionType {
    /// Delete.
    Expire,
    /// Move to the archive storage class.
    Transition,
}

/// One valid lifecycle rule.
#[derive(Clone, Debug, PartialEq)]
pub struct EcrRule {
    pub priority: i64,
    pub description: Option<String>,
    pub tag_status: TagStatus,
    pub tag_prefix_list: Vec<String>,
    pub tag_pattern_list: Vec<String>,
    pub storage_class: StorageClass,
    pub count_type: CountType,
    pub count_number: i64,
    pub action: ActionType,
}

/// A parsed, valid policy. Rules are sorted by priority.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct EcrPolicy {
    pub rules: Vec<EcrRule>,
}

/// One violation of AWS's validation rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcrViolation {
    /// `rulePriority N`, `rules[i]` when the priority is missing, or `policy`.
    pub rule: String,
    /// JSON path of the field, e.g. `rules[0].selection.countNumber`.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for EcrViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.rule, self.field, self.message)
    }
}

/// Label of a rule in findings.
pub fn rule_label(priority: i64) -> String {
    format!("rulePriority {priority}")
}

impl EcrRule {
    /// Whether an image with these tags meets the rule's tagging requirements.
    pub fn matches_tags(&self, tags: &[String]) -> bool {
        match self.tag_status {
            TagStatus::Any => true,
            TagStatus::Untagged => tags.is_empty(),
            TagStatus::Tagged => {
                if tags.is_empty() {
                    return false;
                }
                if !self.tag_pattern_list.is_empty() {
                    self.tag_pattern_list
                        .iter()
                        .all(|p| tags.iter().any(|t| wildcard_match(p, t)))
                } else {
                    self.tag_prefix_list
                        .iter()
                        .all(|p| tags.iter().any(|t| t.starts_with(p.as_str())))
                }
            }
        }
    }

    fn is_count(&self) -> bool {
        self.count_type == CountType::ImageCountMoreThan
    }

    /// A generous threshold: referrers of running images are very unlikely to reach it.
    fn generous(&self) -> bool {
        match self.count_type {
            CountType::ImageCountMoreThan => self.count_number >= SHIELD_MIN_COUNT,
            _ => self.count_number >= SHIELD_MIN_DAYS,
        }
    }

    fn criterion(&self) -> String {
        match self.count_type {
            CountType::ImageCountMoreThan => {
                format!("beyond the newest {} images", self.count_number)
            }
            CountType::SinceImagePushed => format!("{} days after push", self.count_number),
            CountType::SinceImagePulled => {
                format!("{} days after the last pull", self.count_number)
            }
            CountType::SinceImageTransitioned => {
                format!("{} days after archiving", self.count_number)
            }
        }
    }
}

/// `*` wildcard match of a whole tag (ECR `tagPatternList`).
pub fn wildcard_match(pattern: &str, tag: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = tag.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let (mut star, mut mark) = (None::<usize>, 0usize);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// Findings for one policy text (`context` prefixes messages, e.g. the repository).
pub fn analyze_policy_text(text: &str, context: Option<&str>) -> Vec<LifecycleFinding> {
    let prefix = context.map(|c| format!("{c}: ")).unwrap_or_default();
    match parse_policy(text) {
        Err(e) => vec![invalid(
            FAMILY,
            "policy",
            "lifecyclePolicyText",
            &format!("{prefix}{e}"),
        )],
        Ok((_, violations)) if !violations.is_empty() => violations
            .iter()
            .map(|x| {
                invalid(
                    FAMILY,
                    x.rule.clone(),
                    &x.field,
                    &format!("{prefix}{}", x.message),
                )
            })
            .collect(),
        Ok((policy, _)) => {
            let mut f = analyze_policy(&policy);
            for x in &mut f {
                x.message = format!("{prefix}{}", x.message);
            }
            f
        }
    }
}

/// Tagged samples: ordinary images and referrer tags; `None` tag = untagged OCI 1.1 referrer.
fn owner<'a>(policy: &'a EcrPolicy, tags: &[String]) -> Option<&'a EcrRule> {
    policy
        .rules
        .iter()
        .filter(|r| r.storage_class == StorageClass::Standard)
        .find(|r| r.matches_tags(tags))
}

fn shape_tags(s: ReferrerShape) -> Vec<String> {
    s.sample_tag().into_iter().collect()
}

fn matches_app(rule: &EcrRule) -> bool {
    APP_SAMPLE_TAGS
        .iter()
        .any(|t| rule.matches_tags(&[t.to_string()]))
}

/// A rule that only selects referrer tags, with a threshold no running image's referrers reach.
pub fn is_shield(rule: &EcrRule) -> bool {
    rule.tag_status == TagStatus::Tagged
        && rule.action == ActionType::Expire
        && rule.generous()
        && !matches_app(rule)
}

/// The first free priority below `below` (for a shield rule), or `None` when 1..below is full.
fn free_priority_below(policy: &EcrPolicy, below: i64) -> Option<i64> {
    (1..below)
        .rev()
        .find(|p| !policy.rules.iter().any(|r| r.priority == *p))
}

/// The shield rule JSON at `priority`.
pub fn shield_rule_json(priority: i64) -> String {
    format!(
        r#"{{"rulePriority":{priority},"description":"Shield OCI fallback and cosign referrer tags (sha256-*) from lower-priority rules","selection":{{"tagStatus":"tagged","tagPatternList":["sha256-*"],"countType":"sinceImagePushed","countUnit":"days","countNumber":3650}},"action":{{"type":"expire"}}}}"#
    )
}

fn shield_fix(policy: &EcrPolicy, rule: &EcrRule) -> String {
    let placement = match free_priority_below(policy, rule.priority) {
        Some(p) => format!(
            "add this rule (priority {p}, before rule {})",
            rule.priority
        ),
        None => format!(
            "renumber the rules so a priority below {} is free, then add this rule there",
            rule.priority
        ),
    };
    let p = free_priority_below(policy, rule.priority).unwrap_or(1);
    let own = if !matches_app(rule) {
        format!(
            " Rule {} selects only referrer tags: deleting it, or raising its countNumber past how long images run, also works.",
            rule.priority
        )
    } else {
        String::new()
    };
    format!(
        "ECR has no keep action; an image that matches a higher-priority rule's tags cannot be expired or archived by a lower-priority rule, and a tagPatternList cannot exclude tags. {placement}; it only expires sha256-* tags 3650 days after push (pick more than any image runs): {}{own}",
        shield_rule_json(p)
    )
}

fn untagged_fix(rule: &EcrRule) -> String {
    let replacement = format!(
        r#"{{"rulePriority":{},"description":"untagged images older than a year","selection":{{"tagStatus":"untagged","countType":"sinceImagePushed","countUnit":"days","countNumber":365}},"action":{{"type":"expire"}}}}"#,
        rule.priority
    );
    let what = if rule.tag_status == TagStatus::Any {
        "Replace the tagStatus any rule with tagged rules that select your release tags (e.g. \"tagPatternList\":[\"v*\"]), which never match untagged referrers"
    } else {
        "Remove the untagged rule"
    };
    format!(
        "ECR cannot tell untagged referrers from other untagged images in a selection, and it already expires OCI 1.1 referrers within 24 h after their subject is deleted (documented), so no rule is needed for them. {what}, or keep untagged images for longer than any deployed image runs: {replacement}"
    )
}

fn count_fix(rule: &EcrRule) -> String {
    let replacement = format!(
        r#"{{"rulePriority":{},"selection":{{"tagStatus":"tagged","tagPatternList":["v*"],"countType":"imageCountMoreThan","countNumber":{}}},"action":{{"type":"{}"{}}}}}"#,
        rule.priority,
        rule.count_number,
        if rule.action == ActionType::Expire {
            "expire"
        } else {
            "transition"
        },
        if rule.action == ActionType::Transition {
            r#","targetStorageClass":"archive""#
        } else {
            ""
        }
    );
    format!(
        "Count only release tags (adapt the pattern to yours; sha256-* tags and untagged referrers do not match it): {replacement}. Or raise countNumber to {} × (1 + referrers per image), e.g. {} for one signature and one SBOM per image.",
        rule.count_number,
        rule.count_number.saturating_mul(3)
    )
}

/// Classifies a valid policy (no simulation).
pub fn analyze_policy(policy: &EcrPolicy) -> Vec<LifecycleFinding> {
    let mut out = Vec::new();
    for rule in &policy.rules {
        let label = rule_label(rule.priority);
        // Which referrer shapes this rule acts on (it is their first matching rule).
        let owned: Vec<ReferrerShape> = ReferrerShape::ALL
            .into_iter()
            .filter(|s| {
                rule.storage_class == StorageClass::Standard
                    && owner(policy, &shape_tags(*s)).map(|r| r.priority) == Some(rule.priority)
            })
            .collect();
        let tagged_owned: Vec<ReferrerShape> =
            owned.iter().copied().filter(|s| s.is_tagged()).collect();
        let oci_owned = owned.contains(&ReferrerShape::Oci11);
        let verb = match rule.action {
            ActionType::Expire => "expires (deletes)",
            ActionType::Transition => "archives",
        };
        let kind = match rule.action {
            ActionType::Expire => FindingKind::DeletesReferrers,
            ActionType::Transition => FindingKind::HidesReferrers,
        };
        let consequence = match rule.action {
            ActionType::Expire => "while their subjects stay",
            ActionType::Transition => {
                "while their subjects stay active; the referrers API (ListImageReferrers) lists only ACTIVE artifacts unless asked for ARCHIVED, so verification fails"
            }
        };
        let severity = if rule.generous() {
            Severity::Medium
        } else {
            Severity::High
        };
        if !tagged_owned.is_empty() && !is_shield(rule) {
            out.push(finding(
                FAMILY,
                &label,
                kind,
                severity,
                Confidence::Inferred,
                format!(
                    "rule {} {verb} {} {}: these tags are ordinary tags to ECR and this is the first rule whose tag selection matches them (criterion: {}). Follows from the rule grammar; no AWS page states it.",
                    rule.priority,
                    labels(&tagged_owned),
                    consequence,
                    rule.criterion()
                ),
                shield_fix(policy, rule),
            ));
        }
        if oci_owned {
            out.push(finding(
                FAMILY,
                &label,
                kind,
                severity,
                Confidence::Reported,
                format!(
                    "rule {} (tagStatus {}) {verb} {} {} (criterion: {}). Users report lifecycle rules act on signatures and other reference artifacts like images (aws/containers-roadmap#2613); AWS does not document it.",
                    rule.priority,
                    if rule.tag_status == TagStatus::Any { "any" } else { "untagged" },
                    ReferrerShape::Oci11.label(),
                    consequence,
                    rule.criterion()
                ),
                untagged_fix(rule),
            ));
        }
        // Counting sees every image whose tags match, shielded or not.
        if rule.is_count() {
            let counted: Vec<ReferrerShape> = ReferrerShape::ALL
                .into_iter()
                .filter(|s| rule.matches_tags(&shape_tags(*s)))
                .collect();
            if !counted.is_empty() && matches_app(rule) {
                let tagged = counted.iter().any(|s| s.is_tagged());
                out.push(finding(
                    FAMILY,
                    &label,
                    FindingKind::CountsReferrers,
                    Severity::Medium,
                    if tagged {
                        Confidence::Inferred
                    } else {
                        Confidence::Reported
                    },
                    format!(
                        "rule {} keeps the newest {} images, but it also counts {}: with referrers counted as images it keeps fewer real images than {} (shielding does not stop counting).{}",
                        rule.priority,
                        rule.count_number,
                        labels(&counted),
                        rule.count_number,
                        if tagged {
                            ""
                        } else {
                            " Counting untagged referrers is reported by users (aws/containers-roadmap#2613), not documented."
                        }
                    ),
                    count_fix(rule),
                ));
            }
        }
        // Archiving subjects archives their referrers (documented).
        if rule.action == ActionType::Transition && matches_app(rule) {
            out.push(finding(
                FAMILY,
                &label,
                FindingKind::HidesReferrers,
                Severity::Low,
                Confidence::Documented,
                format!(
                    "rule {} archives images; ECR archives their referrers within 24 h, and ListImageReferrers then lists them only with artifactStatus ARCHIVED or ANY. Whether restoring a subject restores its referrers is not documented.",
                    rule.priority
                ),
                "Restore archived images with their referrers (UpdateImageStorageClass on each referrer too), and make verifiers that must see archived referrers ask ListImageReferrers with filter artifactStatus ANY; or raise the transition rule's countNumber past how long images run.",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard() {
        assert!(wildcard_match("prod*", "production-team1"));
        assert!(wildcard_match("*prod*", "repo-production"));
        assert!(wildcard_match(
            "sha256-*",
            &format!("sha256-{}.sig", "a".repeat(64))
        ));
        assert!(!wildcard_match("v*", "sha256-abc"));
        assert!(wildcard_match("*", ""));
        assert!(!wildcard_match("a*b", "acbd"));
        assert!(wildcard_match("a*b*", "acbd"));
    }
}
