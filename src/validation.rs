//! Offline validation of custom resources against their CRD, as the API server
//! would do at apply time: the openAPIV3Schema (types, patterns, enums, ranges,
//! required fields, defaults) and the CEL `x-kubernetes-validations` rules.
//!
//! Used by tests (the schema must reject bad specs) and by commands that read
//! resources from files, so a bad file gets the same message `kubectl apply` would.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

/// One reason an object is invalid, with the JSON path of the field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Path of the offending field, e.g. `spec.registryUrl`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

fn schema_of(crd: &CustomResourceDefinition) -> Option<Value> {
    let version = crd.spec.versions.iter().find(|v| v.storage)?;
    let schema = version.schema.as_ref()?.open_api_v3_schema.as_ref()?;
    serde_json::to_value(schema).ok()
}

/// Converts an OpenAPI v3 structural schema into a JSON Schema a validator understands:
/// `nullable: true` becomes a type union with `null`; Kubernetes extensions are dropped.
fn to_json_schema(v: &Value) -> Value {
    convert(v, 0)
}

fn convert(v: &Value, depth: usize) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = serde_json::Map::new();
            let nullable = map
                .get("nullable")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            for (k, val) in map {
                if k.starts_with("x-kubernetes-") || k == "nullable" {
                    continue;
                }
                if k == "properties" || k == "patternProperties" || k == "definitions" {
                    if let Value::Object(props) = val {
                        let converted = props
                            .iter()
                            .map(|(pk, pv)| (pk.clone(), convert(pv, depth + 1)))
                            .collect();
                        out.insert(k.clone(), Value::Object(converted));
                    }
                    continue;
                }
                out.insert(k.clone(), convert(val, depth + 1));
            }
            // Like `kubectl apply --validate=strict`: unknown fields are errors (below the
            // root, where apiVersion/kind/metadata live outside the schema's properties).
            let preserves = map
                .get("x-kubernetes-preserve-unknown-fields")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if depth > 0
                && !preserves
                && map.contains_key("properties")
                && !map.contains_key("additionalProperties")
            {
                out.insert("additionalProperties".into(), Value::Bool(false));
            }
            if nullable && let Some(Value::String(t)) = out.get("type").cloned() {
                out.insert("type".into(), serde_json::json!([t, "null"]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| convert(i, depth + 1)).collect()),
        other => other.clone(),
    }
}

fn pointer_to_path(pointer: &str) -> String {
    let p = pointer.trim_start_matches('/').replace('/', ".");
    if p.is_empty() { "<root>".into() } else { p }
}

/// Validates `object` (a whole custom resource) against `crd`. Returns every violation found.
pub fn validate(crd: &CustomResourceDefinition, object: &Value) -> Result<(), Vec<Violation>> {
    let Some(schema) = schema_of(crd) else {
        return Err(vec![Violation {
            field: "<crd>".into(),
            message: "the CRD has no openAPIV3Schema".into(),
        }]);
    };
    let mut violations = Vec::new();
    let json_schema = to_json_schema(&schema);
    match jsonschema::validator_for(&json_schema) {
        Ok(validator) => {
            for e in validator.iter_errors(object) {
                let mut field = pointer_to_path(e.instance_path().as_str());
                let message = e.to_string();
                // A missing required property is reported on its parent: name it.
                if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } =
                    e.kind()
                    && let Some(first) = unexpected.first()
                {
                    field = if field == "<root>" {
                        first.clone()
                    } else {
                        format!("{field}.{first}")
                    };
                }
                if let jsonschema::error::ValidationErrorKind::Required { property } = e.kind() {
                    let prop = property.as_str().unwrap_or_default();
                    field = if field == "<root>" {
                        prop.to_string()
                    } else {
                        format!("{field}.{prop}")
                    };
                }
                violations.push(Violation { field, message });
            }
        }
        Err(e) => violations.push(Violation {
            field: "<crd>".into(),
            message: format!("the CRD schema does not compile: {e}"),
        }),
    }
    // CEL rules only make sense on a structurally valid object.
    if violations.is_empty()
        && let Err(errors) = kube::core::cel::Validator::new().validate(&schema, object, None)
    {
        for e in errors.into_vec() {
            violations.push(Violation {
                field: if e.field_path.is_empty() {
                    "<root>".into()
                } else {
                    e.field_path.clone()
                },
                message: e.message.clone(),
            });
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}
