//! Kubernetes label selectors (`matchLabels` + `matchExpressions`).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use super::pods::LabelSet;

/// Checks a selector is well formed. Errors name the field, e.g. `spec.podSelector.matchExpressions[0].operator`.
pub fn validate(selector: &LabelSelector, field: &str) -> Result<(), String> {
    for (i, e) in selector.match_expressions.iter().flatten().enumerate() {
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" | "NotIn" => {
                if values.is_empty() {
                    return Err(format!(
                        "{field}.matchExpressions[{i}].values: must be non-empty for operator {}",
                        e.operator
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    return Err(format!(
                        "{field}.matchExpressions[{i}].values: must be empty for operator {}",
                        e.operator
                    ));
                }
            }
            other => {
                return Err(format!(
                    "{field}.matchExpressions[{i}].operator: {other:?} is not one of In, NotIn, Exists, DoesNotExist"
                ));
            }
        }
        if e.key.is_empty() {
            return Err(format!(
                "{field}.matchExpressions[{i}].key: must not be empty"
            ));
        }
    }
    Ok(())
}

/// Whether `labels` match `selector` (None or empty selector: everything). Assumes [`validate`] passed.
pub fn matches(selector: Option<&LabelSelector>, labels: &impl LabelSet) -> bool {
    let Some(sel) = selector else {
        return true;
    };
    for (k, v) in sel.match_labels.iter().flatten() {
        if labels.label(k) != Some(v.as_str()) {
            return false;
        }
    }
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.label(&e.key);
        let ok = match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
            "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use std::collections::BTreeMap;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: if values.is_empty() {
                None
            } else {
                Some(values.iter().map(|s| s.to_string()).collect())
            },
        }
    }

    #[test]
    fn match_labels_and_expressions() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")]).into_iter().collect()),
            match_expressions: Some(vec![
                expr("tier", "In", &["front", "edge"]),
                expr("canary", "DoesNotExist", &[]),
                expr("env", "NotIn", &["dev"]),
            ]),
        };
        assert!(matches(
            Some(&sel),
            &labels(&[("app", "web"), ("tier", "front")])
        ));
        assert!(!matches(
            Some(&sel),
            &labels(&[("app", "web"), ("tier", "back")])
        ));
        assert!(!matches(
            Some(&sel),
            &labels(&[("app", "web"), ("tier", "front"), ("canary", "1")])
        ));
        assert!(!matches(
            Some(&sel),
            &labels(&[("app", "web"), ("tier", "edge"), ("env", "dev")])
        ));
        assert!(matches(None, &labels(&[])));
        assert!(matches(Some(&LabelSelector::default()), &labels(&[])));
    }

    #[test]
    fn invalid_selectors_name_the_field() {
        let sel = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![expr("a", "Equals", &["b"])]),
        };
        let err = validate(&sel, "spec.podSelector").expect_err("invalid");
        assert!(
            err.starts_with("spec.podSelector.matchExpressions[0].operator"),
            "{err}"
        );
        let sel = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![expr("a", "In", &[])]),
        };
        assert!(validate(&sel, "x").is_err());
    }
}
