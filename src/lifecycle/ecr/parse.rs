//! Parses an ECR lifecycle policy text and checks it against AWS's rules (the violations AWS
//! would reject it for).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::{
    ActionType, CountType, EcrPolicy, EcrRule, EcrViolation, MAX_POLICY_CHARS, StorageClass,
    TagStatus, rule_label,
};

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
