//! Pure mapping from a [`ProbeReport`] to the RegistryProfile `status`.
//!
//! Used by the controller and by `refwarden probe -o json`, so the CLI and the
//! CRD cannot drift apart.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::ProbeReport;
use crate::conditions::{self, Status, new_condition};
use crate::crd::{
    CapabilityState, DiscoveryMode, EffectiveDiscoveryMode, RegistryProfileStatus, SCORE_OUT_OF,
};

/// The discovery mode in effect for a requested mode and a referrers verdict.
/// `None` when `Auto` and the probe could not decide.
pub fn effective_mode(
    requested: DiscoveryMode,
    referrers: CapabilityState,
) -> Option<EffectiveDiscoveryMode> {
    match (requested, referrers) {
        (DiscoveryMode::Native, _) => Some(EffectiveDiscoveryMode::Native),
        (DiscoveryMode::TagFallback, _) => Some(EffectiveDiscoveryMode::TagFallback),
        (DiscoveryMode::Auto, CapabilityState::Supported) => Some(EffectiveDiscoveryMode::Native),
        (DiscoveryMode::Auto, CapabilityState::Unsupported) => {
            Some(EffectiveDiscoveryMode::TagFallback)
        }
        (DiscoveryMode::Auto, CapabilityState::Unknown) => None,
    }
}

/// Inputs of the status besides the report.
#[derive(Clone, Debug)]
pub struct StatusContext<'a> {
    /// `metadata.generation` of the object (None for the CLI).
    pub generation: Option<i64>,
    /// Requested discovery mode.
    pub requested_mode: DiscoveryMode,
    /// Whether TLS verification is off.
    pub insecure_skip_tls_verify: bool,
    /// The status currently stored, to keep `lastTransitionTime`s.
    pub previous: Option<&'a RegistryProfileStatus>,
    /// Now.
    pub now: Time,
}

/// The status a probe report leads to.
pub fn from_report(report: &ProbeReport, ctx: &StatusContext<'_>) -> RegistryProfileStatus {
    let gen_ = ctx.generation;
    let now = &ctx.now;
    let referrers = &report.capabilities.referrers_api;
    let mode = effective_mode(ctx.requested_mode, referrers.state);

    let mut fresh = Vec::new();
    match &report.reachable {
        Ok(()) => {
            fresh.push(new_condition(
                conditions::READY,
                Status::True,
                "ProbeSucceeded",
                format!(
                    "score {}/{}, discovery mode {}",
                    report.score,
                    SCORE_OUT_OF,
                    mode.map(|m| m.to_string())
                        .unwrap_or_else(|| "undecided (Auto)".into())
                ),
                gen_,
                now,
            ));
            fresh.push(new_condition(
                conditions::REACHABLE,
                Status::True,
                "Answered",
                format!(
                    "GET /v2/ answered{}",
                    report
                        .distribution_api_version
                        .as_deref()
                        .map(|v| format!(" with API version {v}"))
                        .unwrap_or_default()
                ),
                gen_,
                now,
            ));
        }
        Err((reason, message)) => {
            for type_ in [conditions::READY, conditions::REACHABLE] {
                fresh.push(new_condition(
                    type_,
                    Status::False,
                    reason.as_str(),
                    message.clone(),
                    gen_,
                    now,
                ));
            }
        }
    }
    for type_ in [conditions::RECONCILING, conditions::STALLED] {
        fresh.push(new_condition(
            type_,
            Status::False,
            "ProbeComplete",
            "",
            gen_,
            now,
        ));
    }
    let referrers_status = match referrers.state {
        CapabilityState::Supported => Status::True,
        CapabilityState::Unsupported => Status::False,
        CapabilityState::Unknown => Status::Unknown,
    };
    fresh.push(new_condition(
        conditions::REFERRERS_API_SUPPORTED,
        referrers_status,
        &referrers.reason,
        referrers.message.clone().unwrap_or_default(),
        gen_,
        now,
    ));
    if ctx.insecure_skip_tls_verify {
        fresh.push(new_condition(
            conditions::TLS_VERIFICATION_DISABLED,
            Status::True,
            "InsecureSkipTlsVerify",
            "spec.insecureSkipTlsVerify is true: registry certificates are not verified",
            gen_,
            now,
        ));
    }
    let previous = ctx.previous.map(|p| p.conditions.as_slice()).unwrap_or(&[]);

    RegistryProfileStatus {
        observed_generation: gen_,
        conditions: conditions::merge(previous, fresh),
        distribution_api_version: report.distribution_api_version.clone(),
        test_digest: report.test_digest.clone(),
        capabilities: report.capabilities.clone(),
        score: report.score,
        score_out_of: SCORE_OUT_OF,
        discovery_mode: mode,
        last_probe_time: Some(now.clone()),
        // Lifecycle analysis is not part of the probe: keep what it last wrote.
        lifecycle_findings: ctx
            .previous
            .map(|p| p.lifecycle_findings.clone())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{Capabilities, Capability};
    use k8s_openapi::jiff::Timestamp;

    fn t(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).expect("valid timestamp"))
    }

    fn report(referrers: Capability, reachable: bool) -> ProbeReport {
        ProbeReport {
            registry: "r:5000".into(),
            reachable: if reachable {
                Ok(())
            } else {
                Err((
                    crate::reason::Reason::Unreachable,
                    "connection refused".into(),
                ))
            },
            distribution_api_version: Some("registry/2.0".into()),
            api_version: Capability::supported("VersionHeader", Some(200), ""),
            test_digest: Some("sha256:00".into()),
            test_digest_problem: None,
            capabilities: Capabilities {
                referrers_api: referrers,
                ..Default::default()
            },
            score: 1,
            notes: vec![],
            requests: 3,
        }
    }

    #[test]
    fn effective_modes() {
        use CapabilityState::*;
        use EffectiveDiscoveryMode::{Native, TagFallback};
        for (requested, referrers_api, want) in [
            (DiscoveryMode::Auto, Supported, Some(Native)),
            (DiscoveryMode::Auto, Unsupported, Some(TagFallback)),
            (DiscoveryMode::Auto, Unknown, None),
            (DiscoveryMode::TagFallback, Supported, Some(TagFallback)),
            (DiscoveryMode::Native, Unsupported, Some(Native)),
        ] {
            assert_eq!(
                effective_mode(requested, referrers_api),
                want,
                "{requested:?} with {referrers_api:?}"
            );
        }
    }

    #[test]
    fn reachable_report_is_ready_with_conditions() {
        let ctx = StatusContext {
            generation: Some(4),
            requested_mode: DiscoveryMode::Auto,
            insecure_skip_tls_verify: false,
            previous: None,
            now: t(10),
        };
        let s = from_report(
            &report(Capability::unsupported("NotFound", Some(404), "x"), true),
            &ctx,
        );
        assert_eq!(s.observed_generation, Some(4));
        assert_eq!(s.score_out_of, 5);
        assert_eq!(s.discovery_mode, Some(EffectiveDiscoveryMode::TagFallback));
        let ready = conditions::find(&s.conditions, "Ready").expect("Ready");
        assert_eq!(ready.status, "True");
        assert_eq!(ready.observed_generation, Some(4));
        let refs = conditions::find(&s.conditions, "ReferrersApiSupported").expect("cond");
        assert_eq!(refs.status, "False");
        assert_eq!(refs.reason, "NotFound");
        assert!(conditions::find(&s.conditions, "TlsVerificationDisabled").is_none());
    }

    #[test]
    fn unreachable_report_is_not_ready_and_keeps_times() {
        let ctx = StatusContext {
            generation: Some(1),
            requested_mode: DiscoveryMode::Auto,
            insecure_skip_tls_verify: true,
            previous: None,
            now: t(10),
        };
        let first = from_report(
            &report(Capability::unknown("Unreachable", None, ""), false),
            &ctx,
        );
        let ready = conditions::find(&first.conditions, "Ready").expect("Ready");
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason, "Unreachable");
        assert!(conditions::find(&first.conditions, "TlsVerificationDisabled").is_some());
        let ctx2 = StatusContext {
            previous: Some(&first),
            now: t(20),
            ..ctx
        };
        let second = from_report(
            &report(Capability::unknown("Unreachable", None, ""), false),
            &ctx2,
        );
        let ready2 = conditions::find(&second.conditions, "Ready").expect("Ready");
        assert_eq!(ready2.last_transition_time, t(10));
        assert_eq!(second.last_probe_time, Some(t(20)));
    }
}
