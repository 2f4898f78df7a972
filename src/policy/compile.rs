//! Compiling a ReferrerPolicy spec: the checks beyond the CRD schema (selectors, globs,
//! requirements, durations), each error naming its field, into a [`CompiledPolicy`].

use std::collections::BTreeSet;

use super::glob::RepoFilter;
use super::selector;
use crate::crd::ReferrerPolicySpec;
use crate::registry::ImageReference;

/// A spec that cannot be evaluated; `field` names where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidSpec {
    /// Path of the field, e.g. `spec.images.include[2]`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn invalid(field_and_message: String) -> InvalidSpec {
    match field_and_message.split_once(": ") {
        Some((f, m)) => InvalidSpec {
            field: f.to_string(),
            message: m.to_string(),
        },
        None => InvalidSpec {
            field: "spec".into(),
            message: field_and_message,
        },
    }
}

/// A validated policy, ready to match.
#[derive(Clone, Debug)]
pub struct CompiledPolicy {
    /// The spec.
    pub spec: ReferrerPolicySpec,
    pub(super) filter: RepoFilter,
    /// Recheck interval.
    pub recheck_interval: std::time::Duration,
}

impl CompiledPolicy {
    /// Whether `spec.images` checks a repository (`registry/path`).
    pub fn checks_repository(&self, repository: &str) -> bool {
        self.filter.check(repository).0
    }
}

/// Validates a spec beyond what the schema checks. Errors name the field.
pub fn compile(spec: &ReferrerPolicySpec) -> Result<CompiledPolicy, InvalidSpec> {
    if let Some(s) = &spec.namespace_selector {
        selector::validate(s, "spec.namespaceSelector").map_err(invalid)?;
    }
    if let Some(s) = &spec.pod_selector {
        selector::validate(s, "spec.podSelector").map_err(invalid)?;
    }
    let filter = RepoFilter::new(&spec.images.include, &spec.images.exclude).map_err(invalid)?;
    if spec.require.is_empty() {
        return Err(InvalidSpec {
            field: "spec.require".into(),
            message: "at least one requirement is needed".into(),
        });
    }
    let mut names = BTreeSet::new();
    for (i, r) in spec.require.iter().enumerate() {
        if r.name.is_empty() {
            return Err(InvalidSpec {
                field: format!("spec.require[{i}].name"),
                message: "must not be empty".into(),
            });
        }
        if !names.insert(r.name.as_str()) {
            return Err(InvalidSpec {
                field: format!("spec.require[{i}].name"),
                message: format!("{:?} is used by another requirement", r.name),
            });
        }
        if r.preset.is_none()
            && r.artifact_types.is_empty()
            && r.legacy_tag_suffixes.is_empty()
            && r.formats.is_empty()
        {
            return Err(InvalidSpec {
                field: format!("spec.require[{i}]"),
                message: "set preset, artifactTypes, legacyTagSuffixes or formats".into(),
            });
        }
        if let Some(j) = r
            .formats
            .iter()
            .position(|f| *f == crate::discovery::Format::Unclassified)
        {
            return Err(InvalidSpec {
                field: format!("spec.require[{i}].formats[{j}]"),
                message: "\"unclassified\" is not a format a referrer can be required to have"
                    .into(),
            });
        }
        if let Some(repo) = &r.repository {
            referrers_repository(repo).map_err(|message| InvalidSpec {
                field: format!("spec.require[{i}].repository"),
                message,
            })?;
        }
        if r.min_count == 0 {
            return Err(InvalidSpec {
                field: format!("spec.require[{i}].minCount"),
                message: "must be at least 1".into(),
            });
        }
    }
    let recheck: kube::core::Duration = spec.recheck_interval.parse().map_err(|e| InvalidSpec {
        field: "spec.recheckInterval".into(),
        message: format!("{:?} is not a duration: {e}", spec.recheck_interval),
    })?;
    let recheck_interval: std::time::Duration = recheck.into();
    if recheck_interval < std::time::Duration::from_secs(10) {
        return Err(InvalidSpec {
            field: "spec.recheckInterval".into(),
            message: "must be at least 10s".into(),
        });
    }
    if spec.max_reported_violations == 0 {
        return Err(InvalidSpec {
            field: "spec.maxReportedViolations".into(),
            message: "must be at least 1".into(),
        });
    }
    Ok(CompiledPolicy {
        spec: spec.clone(),
        filter,
        recheck_interval,
    })
}

/// `registry/path` of a requirement's `repository`, parsed (a tag or digest is refused: the
/// digest looked up is the running one).
pub fn referrers_repository(repo: &str) -> Result<ImageReference, String> {
    let r = ImageReference::parse(repo).map_err(|e| format!("{repo:?}: {e}"))?;
    if r.digest.is_some()
        || repo
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'))
    {
        return Err(format!(
            "{repo:?}: name a repository (registry/path) without a tag or digest"
        ));
    }
    if !repo.contains('/') {
        return Err(format!("{repo:?}: name the registry too (registry/path)"));
    }
    Ok(r)
}
