//! Kubernetes status conditions, kstatus-style.
//!
//! `Ready` / `Reconciling` / `Stalled` follow kstatus so Flux and Argo CD read
//! them without custom code. A condition keeps its `lastTransitionTime` when its
//! status did not change.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Condition type: the object is in its desired state.
pub const READY: &str = "Ready";
/// Condition type: the controller is working on the object.
pub const RECONCILING: &str = "Reconciling";
/// Condition type: the controller cannot make progress (e.g. invalid spec).
pub const STALLED: &str = "Stalled";
/// Condition type (RegistryProfile): the registry answered `/v2/`.
pub const REACHABLE: &str = "Reachable";
/// Condition type (RegistryProfile): the referrers API verdict.
pub const REFERRERS_API_SUPPORTED: &str = "ReferrersApiSupported";
/// Condition type (RegistryProfile): TLS verification is switched off.
pub const TLS_VERIFICATION_DISABLED: &str = "TlsVerificationDisabled";

/// Status of a condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// `"True"`
    True,
    /// `"False"`
    False,
    /// `"Unknown"`
    Unknown,
}

impl Status {
    /// The Kubernetes string.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::True => "True",
            Self::False => "False",
            Self::Unknown => "Unknown",
        }
    }
}

impl From<bool> for Status {
    fn from(b: bool) -> Self {
        if b { Self::True } else { Self::False }
    }
}

/// Builds a condition stamped with `now`.
pub fn new_condition(
    type_: &str,
    status: Status,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
    now: &Time,
) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: status.as_str().to_string(),
        reason: reason.to_string(),
        message: message.into(),
        observed_generation,
        last_transition_time: now.clone(),
    }
}

/// Merges freshly computed conditions into the previous ones: a condition whose
/// status did not change keeps its previous `lastTransitionTime`; one whose status
/// changed takes the fresh time, but never one earlier than the previous transition
/// (clocks and stale reads must not move it backwards). The result is ordered like
/// `fresh`; previous conditions of other types are dropped.
pub fn merge(previous: &[Condition], fresh: Vec<Condition>) -> Vec<Condition> {
    fresh
        .into_iter()
        .map(|mut c| {
            if let Some(old) = previous.iter().find(|o| o.type_ == c.type_)
                && (old.status == c.status || c.last_transition_time.0 < old.last_transition_time.0)
            {
                c.last_transition_time = old.last_transition_time.clone();
            }
            c
        })
        .collect()
}

/// Finds a condition by type.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    #[test]
    fn a_transition_never_moves_backwards() {
        let old = vec![new_condition(
            RECONCILING,
            Status::True,
            "A",
            "",
            Some(2),
            &t(200),
        )];
        // (when the fresh condition is dated, the transition time kept)
        for (at, kept) in [(198, 200), (205, 205)] {
            let fresh = vec![new_condition(
                RECONCILING,
                Status::False,
                "B",
                "",
                Some(2),
                &t(at),
            )];
            assert_eq!(merge(&old, fresh)[0].last_transition_time, t(kept));
        }
    }

    fn t(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).expect("valid timestamp"))
    }

    #[test]
    fn unchanged_status_keeps_transition_time() {
        let old = vec![new_condition(
            READY,
            Status::True,
            "A",
            "m",
            Some(1),
            &t(100),
        )];
        let fresh = vec![new_condition(
            READY,
            Status::True,
            "B",
            "m2",
            Some(2),
            &t(200),
        )];
        let merged = merge(&old, fresh);
        assert_eq!(merged[0].last_transition_time, t(100));
        assert_eq!(merged[0].reason, "B");
        assert_eq!(merged[0].observed_generation, Some(2));
    }

    #[test]
    fn changed_status_takes_new_transition_time() {
        let old = vec![new_condition(READY, Status::True, "A", "", None, &t(100))];
        let fresh = vec![new_condition(READY, Status::False, "B", "", None, &t(200))];
        assert_eq!(merge(&old, fresh)[0].last_transition_time, t(200));
    }

    #[test]
    fn new_condition_type_gets_now() {
        let fresh = vec![new_condition(
            STALLED,
            Status::False,
            "B",
            "",
            None,
            &t(300),
        )];
        let merged = merge(&[], fresh);
        assert_eq!(merged[0].last_transition_time, t(300));
        assert!(find(&merged, STALLED).is_some());
        assert!(find(&merged, READY).is_none());
    }
}
