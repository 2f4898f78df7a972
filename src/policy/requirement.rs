//! Requirement matching: whether a referrer satisfies a requirement (formats, preset, artifact
//! types, legacy tag suffixes) and whether a discovery report meets it under `subjectMatch`.

use std::collections::BTreeSet;

use crate::crd::{Requirement, SubjectMatch};
use crate::discovery::presets;
use crate::discovery::{AttachedTo, DiscoveryMethod, DiscoveryReport, Referrer};

fn essence(media_type: &str) -> String {
    media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether one referrer satisfies one requirement (ignoring where it is attached): its
/// `formats` (when set) admit the referrer's format, and its preset, artifact types or legacy
/// tag suffixes match (with only `formats` set, the format is enough).
pub fn referrer_satisfies(req: &Requirement, r: &Referrer) -> bool {
    if !req.formats.is_empty() && !req.formats.iter().any(|f| r.format.satisfies(*f)) {
        return false;
    }
    if req.preset.is_none() && req.artifact_types.is_empty() && req.legacy_tag_suffixes.is_empty() {
        return !req.formats.is_empty();
    }
    if let Some(p) = req.preset
        && let Some(preset) = presets::preset(p.name())
        && presets::referrer_satisfies(preset, r)
    {
        return true;
    }
    if let Some(at) = &r.artifact_type {
        let at = essence(at);
        if req.artifact_types.iter().any(|t| essence(t) == at) {
            return true;
        }
    }
    if r.method == DiscoveryMethod::CosignTag
        && let Some(tag) = &r.tag
        && req
            .legacy_tag_suffixes
            .iter()
            .any(|s| tag.ends_with(&format!(".{}", s.as_str())))
    {
        return true;
    }
    false
}

/// Whether a requirement is met.
///
/// `Exact`: by referrers of the running digest. `IndexOrPlatform`: also by referrers of
/// the index it belongs to; and when the running digest is an index (its platform
/// manifests are listed in the report), by referrers of its platform manifests — but
/// since refwarden cannot tell which platform a node runs, only when every platform
/// manifest carries enough of them.
pub(super) fn requirement_met(
    req: &Requirement,
    subject_match: SubjectMatch,
    report: &DiscoveryReport,
) -> bool {
    requirement_met_by(req, subject_match, report, &|_| true)
}

/// [`requirement_met`] counting only the referrers `counts` accepts (a `verify` requirement
/// counts the ones that verified).
pub fn requirement_met_by(
    req: &Requirement,
    subject_match: SubjectMatch,
    report: &DiscoveryReport,
    counts: &dyn Fn(&Referrer) -> bool,
) -> bool {
    let need = req.min_count.max(1) as usize;
    let distinct = |attached: &[AttachedTo], subject: Option<&str>| -> usize {
        report
            .referrers
            .iter()
            .filter(|r| attached.contains(&r.attached_to))
            .filter(|r| subject.is_none_or(|s| r.subject == s))
            .filter(|r| referrer_satisfies(req, r))
            .filter(|r| counts(r))
            .map(|r| r.digest.as_str())
            .collect::<BTreeSet<&str>>()
            .len()
    };
    match subject_match {
        SubjectMatch::Exact => distinct(&[AttachedTo::Requested], None) >= need,
        SubjectMatch::IndexOrPlatform => {
            distinct(&[AttachedTo::Requested, AttachedTo::Index], None) >= need
                || (!report.platforms.is_empty()
                    && report.platforms.iter().all(|p| {
                        distinct(&[AttachedTo::Requested, AttachedTo::Index], None)
                            + distinct(&[AttachedTo::Platform], Some(&p.digest))
                            >= need
                    }))
        }
    }
}

/// Names of the requirements a discovery report does not meet.
pub fn missing_requirements(
    requirements: &[Requirement],
    subject_match: SubjectMatch,
    report: &DiscoveryReport,
) -> Vec<String> {
    requirements
        .iter()
        .filter(|req| !requirement_met(req, subject_match, report))
        .map(|r| r.name.clone())
        .collect()
}
