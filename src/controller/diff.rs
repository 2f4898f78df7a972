//! Pure decisions of the reconcilers: whether a status must be written, which
//! capability changes and compliance changes deserve an Event.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::crd::{
    Capabilities, Capability, CapabilityState, PolicyViolation, ReferrerPolicyStatus,
    RegistryProfileStatus,
};
use crate::reason::Reason;

fn older_than(last: Option<&Time>, now: &Time, interval: Duration) -> bool {
    match last {
        None => true,
        Some(t) => {
            let age = now.0.duration_since(t.0);
            age.as_secs_f64() >= interval.as_secs_f64()
        }
    }
}

/// A RegistryProfile status is written when anything but `lastProbeTime`
/// changed, or when the stored `lastProbeTime` is at least `interval` old.
pub fn profile_status_needs_write(
    previous: Option<&RegistryProfileStatus>,
    new: &RegistryProfileStatus,
    now: &Time,
    interval: Duration,
) -> bool {
    let Some(prev) = previous else {
        return true;
    };
    let strip = |s: &RegistryProfileStatus| RegistryProfileStatus {
        last_probe_time: None,
        ..s.clone()
    };
    strip(prev) != strip(new)
        || (new.last_probe_time.is_some()
            && older_than(prev.last_probe_time.as_ref(), now, interval))
}

/// A ReferrerPolicy status is written when anything but `lastEvaluationTime`
/// changed, or when the stored `lastEvaluationTime` is at least `interval` old
/// (a heartbeat at most once per recheck interval).
pub fn policy_status_needs_write(
    previous: Option<&ReferrerPolicyStatus>,
    new: &ReferrerPolicyStatus,
    now: &Time,
    interval: Duration,
) -> bool {
    let Some(prev) = previous else {
        return true;
    };
    let strip = |s: &ReferrerPolicyStatus| ReferrerPolicyStatus {
        last_evaluation_time: None,
        ..s.clone()
    };
    strip(prev) != strip(new)
        || (new.last_evaluation_time.is_some()
            && older_than(prev.last_evaluation_time.as_ref(), now, interval))
}

/// Whether a profile must be probed now: never probed, spec changed since the
/// last probe, or the last probe is at least `interval` old. Otherwise the time
/// left until the next probe.
pub fn probe_due(
    previous: Option<&RegistryProfileStatus>,
    generation: Option<i64>,
    now: &Time,
    interval: Duration,
) -> Result<(), Duration> {
    let Some(prev) = previous else {
        return Ok(());
    };
    let Some(last) = prev.last_probe_time.as_ref() else {
        return Ok(());
    };
    if prev.observed_generation != generation {
        return Ok(());
    }
    let ready = crate::conditions::find(&prev.conditions, crate::conditions::READY);
    if ready.is_none_or(|c| is_broken_reason(&c.reason)) {
        return Ok(());
    }
    // A registry that failed the last probe is tried again sooner.
    let interval = if ready.is_some_and(|c| c.status == "True") {
        interval
    } else {
        interval.min(RETRY_UNREADY)
    };
    let age = now.0.duration_since(last.0).as_secs_f64().max(0.0);
    let left = interval.as_secs_f64() - age;
    if left <= 0.0 {
        Ok(())
    } else {
        Err(Duration::from_secs_f64(left))
    }
}

/// How soon a profile whose last probe failed (`Ready=False`) is probed again.
pub const RETRY_UNREADY: Duration = Duration::from_secs(300);

/// Whether a `Ready` reason says the profile cannot be used until its spec or the objects it
/// names change (a probe would not help).
fn is_broken_reason(reason: &str) -> bool {
    matches!(
        Reason::parse(reason),
        Some(
            Reason::InvalidSpec
                | Reason::CredentialsNotFound
                | Reason::CredentialsInvalid
                | Reason::CaBundleNotFound
                | Reason::CaBundleInvalid
        )
    )
}

/// How grave an Event to publish is: its Kubernetes Event type (Normal or Warning).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventSeverity {
    /// Normal
    Normal,
    /// Warning
    Warning,
}

/// An Event to publish (reason + note), before it is bound to an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedEvent {
    /// Normal or Warning.
    pub severity: EventSeverity,
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable note (≤ 1 kB).
    pub note: String,
}

/// Event notes are at most 1 kB.
pub const MAX_NOTE: usize = 1000;

/// Truncates a note to [`MAX_NOTE`] bytes on a char boundary.
pub fn bounded_note(mut s: String) -> String {
    if s.len() > MAX_NOTE {
        let mut cut = MAX_NOTE - 3;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

fn capability_list(c: &Capabilities) -> [(&'static str, &Capability); 6] {
    [
        ("referrersApi", &c.referrers_api),
        ("artifactTypeFilter", &c.artifact_type_filter),
        ("chunkedUpload", &c.chunked_upload),
        ("crossRepoMount", &c.cross_repo_mount),
        ("deleteManifests", &c.delete_manifests),
        ("deleteBlobs", &c.delete_blobs),
    ]
}

/// Events for capability changes between two probes (`previous: None`: first
/// probe, no events). The referrers API gets its own reasons
/// (`ReferrersApiLost` Warning, `ReferrersApiAvailable`); other changes are one
/// `CapabilitiesChanged` event (Warning when something was Supported before).
pub fn capability_events(previous: Option<&Capabilities>, new: &Capabilities) -> Vec<PlannedEvent> {
    let Some(prev) = previous else {
        return vec![];
    };
    let mut out = Vec::new();
    let (pr, nr) = (&prev.referrers_api, &new.referrers_api);
    let mut referrers_reported = false;
    if pr.state == CapabilityState::Supported && nr.state == CapabilityState::Unsupported {
        out.push(PlannedEvent {
            severity: EventSeverity::Warning,
            reason: "ReferrersApiLost".into(),
            note: bounded_note(format!(
                "the registry no longer serves the OCI referrers API ({}); discovery falls back to the tag schema",
                nr.reason
            )),
        });
        referrers_reported = true;
    } else if pr.state != CapabilityState::Supported && nr.state == CapabilityState::Supported {
        out.push(PlannedEvent {
            severity: EventSeverity::Normal,
            reason: "ReferrersApiAvailable".into(),
            note: bounded_note(format!(
                "the registry serves the OCI referrers API ({})",
                nr.reason
            )),
        });
        referrers_reported = true;
    }
    let mut changes = Vec::new();
    let mut lost = false;
    for ((name, p), (_, n)) in capability_list(prev).into_iter().zip(capability_list(new)) {
        if p.state == n.state || (name == "referrersApi" && referrers_reported) {
            continue;
        }
        lost |= p.state == CapabilityState::Supported;
        changes.push(format!("{name}: {} -> {} ({})", p.state, n.state, n.reason));
    }
    if !changes.is_empty() {
        out.push(PlannedEvent {
            severity: if lost {
                EventSeverity::Warning
            } else {
                EventSeverity::Normal
            },
            reason: "CapabilitiesChanged".into(),
            note: bounded_note(changes.join("; ")),
        });
    }
    out
}

/// `(image, digest)` of a violation or image.
pub type ImageId = (String, String);

/// What changed between two evaluations of a policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ComplianceChange {
    /// Images that miss referrers now and did not before (or missed others), with the missing
    /// requirement names.
    pub newly_non_compliant: Vec<(ImageId, Vec<String>)>,
    /// Images that missed referrers before and are compliant now (still selected, not Unknown).
    pub compliant_again: Vec<ImageId>,
}

impl ComplianceChange {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.newly_non_compliant.is_empty() && self.compliant_again.is_empty()
    }
}

/// Diffs the previous non-compliant images against the new evaluation.
/// `selected`: every image the policy selects now; `unknown`: those Unknown now.
pub fn compliance_change(
    previous: &BTreeMap<ImageId, Vec<String>>,
    violations: &[PolicyViolation],
    selected: &BTreeSet<ImageId>,
    unknown: &BTreeSet<ImageId>,
) -> ComplianceChange {
    let now: BTreeMap<ImageId, Vec<String>> = violations
        .iter()
        .map(|v| ((v.image.clone(), v.digest.clone()), v.missing_labels()))
        .collect();
    // An image whose missing list changed is reported again, with what is missing now.
    let newly_non_compliant = now
        .iter()
        .filter(|(k, m)| previous.get(*k) != Some(*m))
        .map(|(k, m)| (k.clone(), m.clone()))
        .collect();
    let compliant_again = previous
        .keys()
        .filter(|k| !now.contains_key(*k) && selected.contains(*k) && !unknown.contains(*k))
        .cloned()
        .collect();
    ComplianceChange {
        newly_non_compliant,
        compliant_again,
    }
}

/// Events on the policy for a compliance change (at most one per direction).
pub fn compliance_events(change: &ComplianceChange) -> Vec<PlannedEvent> {
    let mut out = Vec::new();
    if !change.newly_non_compliant.is_empty() {
        let list: Vec<String> = change
            .newly_non_compliant
            .iter()
            .map(|((image, digest), missing)| {
                format!("{image}@{digest} (missing: {})", missing.join(", "))
            })
            .collect();
        out.push(PlannedEvent {
            severity: EventSeverity::Warning,
            reason: "ImageNonCompliant".into(),
            note: bounded_note(format!(
                "{} image(s) now miss required referrers: {}",
                list.len(),
                list.join("; ")
            )),
        });
    }
    if !change.compliant_again.is_empty() {
        let list: Vec<String> = change
            .compliant_again
            .iter()
            .map(|(image, digest)| format!("{image}@{digest}"))
            .collect();
        out.push(PlannedEvent {
            severity: EventSeverity::Normal,
            reason: "ImageCompliant".into(),
            note: bounded_note(format!(
                "{} image(s) carry their required referrers again: {}",
                list.len(),
                list.join("; ")
            )),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conditions::{Status, new_condition};
    use k8s_openapi::jiff::Timestamp;

    fn t(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).expect("timestamp"))
    }

    #[test]
    fn profile_status_write_ignores_probe_time_until_interval() {
        let prev = RegistryProfileStatus {
            observed_generation: Some(1),
            score: 2,
            last_probe_time: Some(t(1000)),
            ..Default::default()
        };
        let mut new = prev.clone();
        new.last_probe_time = Some(t(1010));
        let hour = Duration::from_secs(3600);
        assert!(!profile_status_needs_write(
            Some(&prev),
            &new,
            &t(1010),
            hour
        ));
        assert!(profile_status_needs_write(
            Some(&prev),
            &new,
            &t(1000 + 3600),
            hour
        ));
        new.score = 3;
        assert!(profile_status_needs_write(
            Some(&prev),
            &new,
            &t(1010),
            hour
        ));
        assert!(profile_status_needs_write(None, &new, &t(1010), hour));
    }

    #[test]
    fn policy_status_write_on_change_or_heartbeat() {
        let c = new_condition("Ready", Status::True, "Evaluated", "m", Some(1), &t(1));
        let prev = ReferrerPolicyStatus {
            observed_generation: Some(1),
            conditions: vec![c.clone()],
            last_evaluation_time: Some(t(100)),
            ..Default::default()
        };
        let mut new = prev.clone();
        new.last_evaluation_time = Some(t(160));
        let ten = Duration::from_secs(600);
        assert!(!policy_status_needs_write(Some(&prev), &new, &t(160), ten));
        assert!(policy_status_needs_write(Some(&prev), &new, &t(700), ten));
        new.observed_generation = Some(2);
        assert!(policy_status_needs_write(Some(&prev), &new, &t(160), ten));
    }

    #[test]
    fn probe_is_due_on_new_generation_or_interval() {
        let ready = new_condition("Ready", Status::True, "ProbeSucceeded", "", Some(1), &t(0));
        let prev = RegistryProfileStatus {
            observed_generation: Some(1),
            conditions: vec![ready],
            last_probe_time: Some(t(1000)),
            ..Default::default()
        };
        let hour = Duration::from_secs(3600);
        assert_eq!(probe_due(None, Some(1), &t(1000), hour), Ok(()));
        assert_eq!(
            probe_due(Some(&prev), Some(1), &t(1600), hour),
            Err(Duration::from_secs(3000))
        );
        assert_eq!(probe_due(Some(&prev), Some(2), &t(1600), hour), Ok(()));
        assert_eq!(probe_due(Some(&prev), Some(1), &t(4600), hour), Ok(()));
        let mut broken = prev.clone();
        broken.conditions = vec![new_condition(
            "Ready",
            Status::False,
            "CredentialsNotFound",
            "",
            Some(1),
            &t(0),
        )];
        assert_eq!(probe_due(Some(&broken), Some(1), &t(1600), hour), Ok(()));
        let mut down = prev.clone();
        down.conditions = vec![new_condition(
            "Ready",
            Status::False,
            "Unreachable",
            "",
            Some(1),
            &t(0),
        )];
        assert_eq!(
            probe_due(Some(&down), Some(1), &t(1100), hour),
            Err(Duration::from_secs(200))
        );
    }

    #[test]
    fn referrers_api_lost_is_a_warning() {
        let prev = Capabilities {
            referrers_api: Capability::supported("IndexReturned", Some(200), ""),
            chunked_upload: Capability::supported("Accepted", Some(202), ""),
            ..Default::default()
        };
        let new = Capabilities {
            referrers_api: Capability::unsupported("NotFound", Some(404), ""),
            chunked_upload: Capability::supported("Accepted", Some(202), ""),
            ..Default::default()
        };
        let ev = capability_events(Some(&prev), &new);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].severity, EventSeverity::Warning);
        assert_eq!(ev[0].reason, "ReferrersApiLost");
        assert!(capability_events(None, &new).is_empty());
        assert!(capability_events(Some(&new), &new).is_empty());
        let back = capability_events(Some(&new), &prev);
        assert_eq!(back[0].reason, "ReferrersApiAvailable");
        assert_eq!(back.len(), 1);
    }

    #[test]
    fn other_capability_changes_are_one_event() {
        let prev = Capabilities {
            chunked_upload: Capability::supported("Accepted", Some(202), ""),
            ..Default::default()
        };
        let new = Capabilities {
            chunked_upload: Capability::unknown("Unreachable", None, ""),
            delete_blobs: Capability::unsupported("MethodNotAllowed", Some(405), ""),
            ..Default::default()
        };
        let ev = capability_events(Some(&prev), &new);
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].reason, "CapabilitiesChanged");
        assert_eq!(ev[0].severity, EventSeverity::Warning);
        assert_eq!(
            ev[0].note,
            "chunkedUpload: Supported -> Unknown (Unreachable); deleteBlobs: Unknown -> Unsupported (MethodNotAllowed)"
        );
    }

    fn v(image: &str, digest: &str, missing: &[&str]) -> PolicyViolation {
        PolicyViolation {
            unverified: Vec::new(),
            image: image.into(),
            digest: digest.into(),
            missing: missing.iter().map(|s| s.to_string()).collect(),
            workloads: vec![],
            discovery_method: None,
            reference: None,
            pods: 1,
        }
    }

    fn id(i: &str, d: &str) -> ImageId {
        (i.to_string(), d.to_string())
    }

    #[test]
    fn compliance_diff_and_events() {
        let previous: BTreeMap<ImageId, Vec<String>> = [
            (id("r/a", "sha256:1"), vec!["signature".to_string()]),
            (id("r/b", "sha256:2"), vec!["sbom".to_string()]),
            (id("r/gone", "sha256:3"), vec!["sbom".to_string()]),
            (id("r/unk", "sha256:4"), vec!["sbom".to_string()]),
        ]
        .into();
        let violations = vec![
            v("r/a", "sha256:1", &["signature"]),
            v("r/c", "sha256:5", &["sbom"]),
        ];
        let selected: BTreeSet<ImageId> = [
            id("r/a", "sha256:1"),
            id("r/b", "sha256:2"),
            id("r/c", "sha256:5"),
            id("r/unk", "sha256:4"),
        ]
        .into();
        let unknown: BTreeSet<ImageId> = [id("r/unk", "sha256:4")].into();
        let change = compliance_change(&previous, &violations, &selected, &unknown);
        assert_eq!(
            change.newly_non_compliant,
            vec![(id("r/c", "sha256:5"), vec!["sbom".to_string()])]
        );
        assert_eq!(change.compliant_again, vec![id("r/b", "sha256:2")]);
        let ev = compliance_events(&change);
        assert_eq!(ev.len(), 2);
        assert_eq!(ev[0].reason, "ImageNonCompliant");
        assert_eq!(
            ev[0].note,
            "1 image(s) now miss required referrers: r/c@sha256:5 (missing: sbom)"
        );
        assert_eq!(ev[1].reason, "ImageCompliant");
        // Same evaluation again: nothing new.
        let now: BTreeMap<ImageId, Vec<String>> = violations
            .iter()
            .map(|x| ((x.image.clone(), x.digest.clone()), x.missing.clone()))
            .collect();
        assert!(compliance_change(&now, &violations, &selected, &unknown).is_empty());
        // Still non-compliant, but missing something else now: reported with the new list.
        let changed = vec![
            v("r/a", "sha256:1", &["signature", "vex"]),
            v("r/c", "sha256:5", &["sbom"]),
        ];
        let change = compliance_change(&now, &changed, &selected, &unknown);
        assert_eq!(
            change.newly_non_compliant,
            vec![(
                id("r/a", "sha256:1"),
                vec!["signature".to_string(), "vex".to_string()]
            )]
        );
    }

    #[test]
    fn notes_are_bounded() {
        let n = bounded_note("é".repeat(800));
        assert!(n.len() <= MAX_NOTE);
        assert!(n.ends_with("..."));
    }

    #[test]
    fn an_unverified_requirement_says_why_in_the_event_and_is_reported_again_when_that_changes() {
        let mut x = v("r/a", "sha256:1", &["signature"]);
        x.unverified.push(crate::crd::UnverifiedReferrer {
            requirement: "signature".into(),
            referrer: "sha256:9".into(),
            format: "cosign-simple-signing".into(),
            reason: "NoSignatureByTrustedKey".into(),
            message: "m".into(),
        });
        let selected = BTreeSet::from([id("r/a", "sha256:1")]);
        let change = compliance_change(
            &BTreeMap::new(),
            std::slice::from_ref(&x),
            &selected,
            &BTreeSet::new(),
        );
        let ev = compliance_events(&change);
        assert_eq!(
            ev[0].note,
            "1 image(s) now miss required referrers: r/a@sha256:1 (missing: signature (unverified: NoSignatureByTrustedKey))"
        );
        // Remembered with its reason: the same reason is not reported again, another one is.
        let memory: BTreeMap<ImageId, Vec<String>> =
            change.newly_non_compliant.into_iter().collect();
        let again = compliance_change(
            &memory,
            std::slice::from_ref(&x),
            &selected,
            &BTreeSet::new(),
        );
        assert!(again.newly_non_compliant.is_empty());
        x.unverified[0].reason = "DigestMismatch".into();
        let changed = compliance_change(
            &memory,
            std::slice::from_ref(&x),
            &selected,
            &BTreeSet::new(),
        );
        assert_eq!(changed.newly_non_compliant.len(), 1);
    }
}
