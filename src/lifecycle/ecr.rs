//! Amazon ECR lifecycle policies: parse, validate with AWS's rules, and classify
//! each rule against the ways referrers are stored.
//!
//! Semantics (lifecycle-gc.md §1): all rules are evaluated together and applied by
//! priority (lowest number first); an image is acted on by at most one rule, the
//! first whose *tagging requirements* it matches (shielding); lower rules still see
//! shielded images when counting. ECR has no "keep" action: an image is protected
//! only by being matched first by a rule whose own criterion it does not meet.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::model::{APP_SAMPLE_TAGS, ReferrerShape, finding, invalid, labels};
use crate::crd::{Confidence, FindingKind, LifecycleFinding, RegistryFamily, Severity};

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

/// The policy text is not JSON at all.
#[derive(Debug, thiserror::Error)]
#[error("the lifecycle policy is not JSON: {0}")]
pub struct NotJson(pub String);

/// Fields of a policy text the ECR lifecycle format does not have (`rules[0].selektion`): bad
/// input rather than a rule AWS would reject.
pub fn unknown_fields(text: &str) -> Vec<String> {
    match parse_policy(text) {
        Ok((_, violations)) => violations
            .into_iter()
            .filter(|v| v.message == UNKNOWN_PROPERTY)
            .map(|v| v.field)
            .collect(),
        Err(_) => Vec::new(),
    }
}

const UNKNOWN_PROPERTY: &str = "unknown property";

/// Parses and validates a policy. `Ok((policy, violations))`: when `violations` is not
/// empty the policy is invalid (AWS would reject it) and `policy` holds the rules that
/// parsed. `Err` only when the text is not JSON.
pub fn parse_policy(text: &str) -> Result<(EcrPolicy, Vec<EcrViolation>), NotJson> {
    let value: Value = serde_json::from_str(text).map_err(|e| NotJson(e.to_string()))?;
    let mut v = Vec::new();
    let push = |v: &mut Vec<EcrViolation>, rule: &str, field: String, message: String| {
        v.push(EcrViolation {
            rule: rule.to_string(),
            field,
            message,
        })
    };
    if text.chars().count() > MAX_POLICY_CHARS {
        push(
            &mut v,
            "policy",
            "lifecyclePolicyText".into(),
            format!("longer than {MAX_POLICY_CHARS} characters"),
        );
    }
    let Some(obj) = value.as_object() else {
        push(
            &mut v,
            "policy",
            "<root>".into(),
            "must be a JSON object with \"rules\"".into(),
        );
        return Ok((EcrPolicy::default(), v));
    };
    for k in obj.keys() {
        if k != "rules" {
            push(&mut v, "policy", k.clone(), UNKNOWN_PROPERTY.into());
        }
    }
    let rules_v = match obj.get("rules").and_then(Value::as_array) {
        Some(r) if !r.is_empty() => r,
        Some(_) => {
            push(
                &mut v,
                "policy",
                "rules".into(),
                "must hold at least one rule".into(),
            );
            return Ok((EcrPolicy::default(), v));
        }
        None => {
            push(
                &mut v,
                "policy",
                "rules".into(),
                "required array is missing".into(),
            );
            return Ok((EcrPolicy::default(), v));
        }
    };
    let mut rules = Vec::new();
    for (i, r) in rules_v.iter().enumerate() {
        if let Some(rule) = parse_rule(i, r, &mut v) {
            rules.push(rule);
        }
    }
    cross_rule_checks(&rules, &mut v);
    rules.sort_by_key(|r| r.priority);
    Ok((EcrPolicy { rules }, v))
}

fn parse_rule(i: usize, r: &Value, v: &mut Vec<EcrViolation>) -> Option<EcrRule> {
    let base = format!("rules[{i}]");
    let Some(obj) = r.as_object() else {
        v.push(EcrViolation {
            rule: base.clone(),
            field: base,
            message: "a rule must be a JSON object".into(),
        });
        return None;
    };
    let priority = obj.get("rulePriority").and_then(Value::as_i64);
    let label = priority.map(rule_label).unwrap_or_else(|| base.clone());
    let before = v.len();
    let mut err = |field: String, message: String| {
        v.push(EcrViolation {
            rule: label.clone(),
            field,
            message,
        })
    };
    for k in obj.keys() {
        if !["rulePriority", "description", "selection", "action"].contains(&k.as_str()) {
            err(format!("{base}.{k}"), UNKNOWN_PROPERTY.into());
        }
    }
    match obj.get("rulePriority") {
        None => err(format!("{base}.rulePriority"), "required".into()),
        Some(p) if p.as_i64().is_none() => {
            err(format!("{base}.rulePriority"), "must be an integer".into())
        }
        _ => {}
    }
    let description = match obj.get("description") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            err(format!("{base}.description"), "must be a string".into());
            None
        }
    };
    let sel_path = format!("{base}.selection");
    let empty = serde_json::Map::new();
    let sel = match obj.get("selection") {
        Some(Value::Object(s)) => s,
        Some(_) => {
            err(sel_path.clone(), "must be an object".into());
            &empty
        }
        None => {
            err(sel_path.clone(), "required".into());
            &empty
        }
    };
    for k in sel.keys() {
        if ![
            "tagStatus",
            "tagPatternList",
            "tagPrefixList",
            "storageClass",
            "countType",
            "countUnit",
            "countNumber",
        ]
        .contains(&k.as_str())
        {
            err(format!("{sel_path}.{k}"), UNKNOWN_PROPERTY.into());
        }
    }
    let tag_status = match sel.get("tagStatus").and_then(Value::as_str) {
        Some("tagged") => Some(TagStatus::Tagged),
        Some("untagged") => Some(TagStatus::Untagged),
        Some("any") => Some(TagStatus::Any),
        Some(other) => {
            err(
                format!("{sel_path}.tagStatus"),
                format!("{other:?} is not one of tagged, untagged, any"),
            );
            None
        }
        None => {
            err(
                format!("{sel_path}.tagStatus"),
                "required (tagged, untagged or any)".into(),
            );
            None
        }
    };
    let mut string_list = |key: &str| -> Option<Vec<String>> {
        let val = sel.get(key)?;
        let list = val.as_array().and_then(|a| {
            a.iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
        });
        match list {
            Some(l) if l.is_empty() => {
                err(format!("{sel_path}.{key}"), "must not be empty".into());
                Some(l)
            }
            Some(l) => Some(l),
            None => {
                err(
                    format!("{sel_path}.{key}"),
                    "must be an array of strings".into(),
                );
                Some(Vec::new())
            }
        }
    };
    let prefixes = string_list("tagPrefixList");
    let patterns = string_list("tagPatternList");
    if let Some(pats) = &patterns {
        for (j, p) in pats.iter().enumerate() {
            if p.matches('*').count() > 4 {
                err(
                    format!("{sel_path}.tagPatternList[{j}]"),
                    format!("{p:?} has more than four * wildcards"),
                );
            }
        }
    }
    match tag_status {
        Some(TagStatus::Tagged) => {
            if prefixes.is_some() && patterns.is_some() {
                err(
                    sel_path.clone(),
                    "a rule takes either tagPrefixList or tagPatternList, not both".into(),
                );
            } else if prefixes.is_none() && patterns.is_none() {
                err(
                    sel_path.clone(),
                    "tagStatus tagged needs tagPrefixList or tagPatternList".into(),
                );
            }
        }
        Some(ts) => {
            let name = if ts == TagStatus::Any {
                "any"
            } else {
                "untagged"
            };
            if prefixes.is_some() {
                err(
                    format!("{sel_path}.tagPrefixList"),
                    format!("only allowed with tagStatus tagged, not {name}"),
                );
            }
            if patterns.is_some() {
                err(
                    format!("{sel_path}.tagPatternList"),
                    format!("only allowed with tagStatus tagged, not {name}"),
                );
            }
        }
        None => {}
    }
    let count_type = match sel.get("countType").and_then(Value::as_str) {
        Some("imageCountMoreThan") => Some(CountType::ImageCountMoreThan),
        Some("sinceImagePushed") => Some(CountType::SinceImagePushed),
        Some("sinceImagePulled") => Some(CountType::SinceImagePulled),
        Some("sinceImageTransitioned") => Some(CountType::SinceImageTransitioned),
        Some(o) => {
            err(
                format!("{sel_path}.countType"),
                format!(
                    "{o:?} is not one of imageCountMoreThan, sinceImagePushed, sinceImagePulled, sinceImageTransitioned"
                ),
            );
            None
        }
        None => {
            err(format!("{sel_path}.countType"), "required".into());
            None
        }
    };
    match (count_type, sel.get("countUnit")) {
        (Some(CountType::ImageCountMoreThan), Some(_)) => err(
            format!("{sel_path}.countUnit"),
            "not allowed with countType imageCountMoreThan".into(),
        ),
        (Some(ct), None) if ct != CountType::ImageCountMoreThan => err(
            format!("{sel_path}.countUnit"),
            "required with the since* count types (value days)".into(),
        ),
        (_, Some(u)) if u.as_str() != Some("days") => err(
            format!("{sel_path}.countUnit"),
            format!("{u} is not days (the only unit)"),
        ),
        _ => {}
    }
    let count_number = match sel.get("countNumber") {
        None => {
            err(format!("{sel_path}.countNumber"), "required".into());
            None
        }
        Some(n) => match n.as_i64() {
            Some(n) if n >= 1 => Some(n),
            Some(n) => {
                err(
                    format!("{sel_path}.countNumber"),
                    format!("{n} is not a positive integer (0 is not accepted)"),
                );
                None
            }
            None => {
                err(
                    format!("{sel_path}.countNumber"),
                    format!("{n} is not an integer"),
                );
                None
            }
        },
    };
    let storage_class = match sel.get("storageClass") {
        None => Some(StorageClass::Standard),
        Some(s) => match s.as_str() {
            Some("standard") => Some(StorageClass::Standard),
            Some("archive") => Some(StorageClass::Archive),
            _ => {
                err(
                    format!("{sel_path}.storageClass"),
                    format!("{s} is not one of standard, archive"),
                );
                None
            }
        },
    };
    match (count_type, storage_class) {
        (Some(CountType::SinceImageTransitioned), Some(StorageClass::Standard)) => err(
            format!("{sel_path}.storageClass"),
            "countType sinceImageTransitioned requires storageClass archive".into(),
        ),
        (Some(ct), Some(StorageClass::Archive)) if ct != CountType::SinceImageTransitioned => err(
            format!("{sel_path}.storageClass"),
            "storageClass archive is only allowed with countType sinceImageTransitioned".into(),
        ),
        _ => {}
    }
    let act_path = format!("{base}.action");
    let action_obj = match obj.get("action") {
        Some(Value::Object(a)) => a,
        Some(_) => {
            err(act_path.clone(), "must be an object".into());
            &empty
        }
        None => {
            err(act_path.clone(), "required".into());
            &empty
        }
    };
    for k in action_obj.keys() {
        if k != "type" && k != "targetStorageClass" {
            err(format!("{act_path}.{k}"), UNKNOWN_PROPERTY.into());
        }
    }
    let action = match action_obj.get("type").and_then(Value::as_str) {
        Some("expire") => Some(ActionType::Expire),
        Some("transition") => Some(ActionType::Transition),
        Some(o) => {
            err(
                format!("{act_path}.type"),
                format!("{o:?} is not one of expire, transition"),
            );
            None
        }
        None => {
            err(
                format!("{act_path}.type"),
                "required (expire or transition)".into(),
            );
            None
        }
    };
    let target = action_obj.get("targetStorageClass");
    match (action, target) {
        (Some(ActionType::Transition), None) => err(
            format!("{act_path}.targetStorageClass"),
            "required with action type transition (value archive)".into(),
        ),
        (Some(ActionType::Transition), Some(t)) if t.as_str() != Some("archive") => err(
            format!("{act_path}.targetStorageClass"),
            format!("{t} is not archive (the only value)"),
        ),
        (Some(ActionType::Expire), Some(_)) => err(
            format!("{act_path}.targetStorageClass"),
            "only allowed with action type transition".into(),
        ),
        _ => {}
    }
    match (count_type, action) {
        (Some(CountType::SinceImagePulled), Some(ActionType::Expire)) => err(
            format!("{sel_path}.countType"),
            "sinceImagePulled is only allowed with action transition".into(),
        ),
        (Some(CountType::SinceImageTransitioned), Some(ActionType::Transition)) => err(
            format!("{sel_path}.countType"),
            "sinceImageTransitioned is only allowed with action expire".into(),
        ),
        _ => {}
    }
    if v.len() > before {
        return None;
    }
    Some(EcrRule {
        priority: priority?,
        description,
        tag_status: tag_status?,
        tag_prefix_list: prefixes.unwrap_or_default(),
        tag_pattern_list: patterns.unwrap_or_default(),
        storage_class: storage_class?,
        count_type: count_type?,
        count_number: count_number?,
        action: action?,
    })
}

fn cross_rule_checks(rules: &[EcrRule], v: &mut Vec<EcrViolation>) {
    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    for r in rules {
        *seen.entry(r.priority).or_default() += 1;
    }
    for (p, n) in &seen {
        if *n > 1 {
            v.push(EcrViolation {
                rule: rule_label(*p),
                field: "rulePriority".into(),
                message: format!(
                    "{n} rules share priority {p}; each rule needs a unique rulePriority"
                ),
            });
        }
    }
    let max = rules.iter().map(|r| r.priority).max().unwrap_or(0);
    let any_rules: Vec<&EcrRule> = rules
        .iter()
        .filter(|r| r.tag_status == TagStatus::Any)
        .collect();
    for r in &any_rules {
        if r.priority != max || seen.get(&max).copied().unwrap_or(0) > 1 {
            v.push(EcrViolation {
                rule: rule_label(r.priority),
                field: "selection.tagStatus".into(),
                message: format!(
                    "a tagStatus any rule must have the highest rulePriority (runs last); {} is higher",
                    max
                ),
            });
        }
    }
    let mut untagged: BTreeMap<StorageClass, Vec<i64>> = BTreeMap::new();
    let mut prefix_sets: BTreeMap<(StorageClass, BTreeSet<String>), Vec<i64>> = BTreeMap::new();
    for r in rules {
        if r.tag_status == TagStatus::Untagged {
            untagged
                .entry(r.storage_class)
                .or_default()
                .push(r.priority);
        }
        if !r.tag_prefix_list.is_empty() {
            let set: BTreeSet<String> = r.tag_prefix_list.iter().cloned().collect();
            prefix_sets
                .entry((r.storage_class, set))
                .or_default()
                .push(r.priority);
        }
    }
    for (class, ps) in untagged {
        if ps.len() > 1 {
            for p in &ps[1..] {
                v.push(EcrViolation {
                    rule: rule_label(*p),
                    field: "selection.tagStatus".into(),
                    message: format!(
                        "only one rule per storage class may select untagged images; rules {ps:?} do ({class:?})"
                    ),
                });
            }
        }
    }
    for ((_, set), ps) in prefix_sets {
        if ps.len() > 1 {
            for p in &ps[1..] {
                v.push(EcrViolation {
                    rule: rule_label(*p),
                    field: "selection.tagPrefixList".into(),
                    message: format!(
                        "rules {ps:?} use the same prefix set {set:?}; rules of one storage class need a unique set of prefixes"
                    ),
                });
            }
        }
    }
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
