//! Prometheus metrics (`/metrics`, OpenMetrics text via prometheus-client).
//!
//! All names carry the `refwarden_` prefix. Registry request counts and
//! discovery cache counters are read at scrape time from their owners
//! ([`RequestCounters`], [`Discoverer::stats`]).

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::crd::{Capabilities, CapabilityState};
use crate::discovery::Discoverer;
use crate::policy::Verifier;
use crate::registry::RequestCounters;

/// Labels of the per-policy compliance gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    /// ReferrerPolicy name.
    pub policy: String,
    /// compliant, non_compliant, unknown.
    pub state: String,
}

/// Labels of the capability gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CapabilityLabels {
    /// RegistryProfile name.
    pub registry_profile: String,
    /// Capability (referrersApi, …).
    pub capability: String,
    /// Supported, Unsupported, Unknown.
    pub state: String,
}

/// Labels of the lifecycle findings gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LifecycleLabels {
    /// RegistryProfile name.
    pub registry_profile: String,
    /// High, Medium, Low.
    pub severity: String,
}

/// Labels of per-profile gauges.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProfileLabels {
    /// RegistryProfile name.
    pub registry_profile: String,
}

/// Labels of reconcile metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// registryprofile or referrerpolicy.
    pub kind: String,
}

/// Labels of API writes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    /// Kind of the object written or an Event is about (referrerpolicy, registryprofile, pod).
    pub kind: String,
    /// status or event.
    pub op: String,
    /// ok, error, timeout, not_leader.
    pub result: String,
}

/// Labels of reconcile errors.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// registryprofile or referrerpolicy.
    pub kind: String,
    /// [`super::Error::metric_label`].
    pub error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    registry: String,
    endpoint: String,
    status: String,
}

/// Reads the shared counters on every scrape.
struct Sources {
    counters: Arc<RequestCounters>,
    discoverer: Discoverer,
    verifier: Arc<Verifier>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VerificationLabels {
    outcome: String,
    reason: String,
}

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sources")
    }
}

impl prometheus_client::collector::Collector for Sources {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snapshot = self.counters.snapshot();
        {
            let mut family = encoder.encode_descriptor(
                "registry_requests",
                "HTTP requests to registries (every attempt, including retries and token requests)",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for (registry, endpoint, status, n) in snapshot {
                let labels = RequestLabels {
                    registry,
                    endpoint: endpoint.as_str().to_string(),
                    status: status.map_or_else(|| "error".to_string(), |s| s.to_string()),
                };
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        let stats = self.discoverer.stats();
        for (name, help, value) in [
            (
                "discovery_cache_hits",
                "Discoveries answered from the shared cache (including coalesced asks)",
                stats.hits,
            ),
            (
                "discovery_cache_misses",
                "Discoveries actually run against a registry",
                stats.misses,
            ),
            (
                "discovery_unknown",
                "Discoveries that ended Unknown (registry errors)",
                stats.unknown,
            ),
        ] {
            let m = encoder.encode_descriptor(
                name,
                help,
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            ConstCounter::new(value).encode(m)?;
        }
        let m = encoder.encode_descriptor(
            "discovery_cache_entries",
            "Discovery outcomes currently cached (approximate)",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        ConstGauge::new(i64::try_from(stats.cached).unwrap_or(i64::MAX)).encode(m)?;
        {
            let mut family = encoder.encode_descriptor(
                "verifications",
                "Referrers read and verified (cache misses), by outcome (verified, unverified, unknown) and reason",
                None,
                prometheus_client::metrics::MetricType::Counter,
            )?;
            for ((outcome, reason), n) in self.verifier.stats.outcomes() {
                let labels = VerificationLabels {
                    outcome: outcome.to_string(),
                    reason,
                };
                ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
            }
        }
        let m = encoder.encode_descriptor(
            "verification_cache_hits",
            "Verification verdicts answered from the cache (no request, no signature check)",
            None,
            prometheus_client::metrics::MetricType::Counter,
        )?;
        ConstCounter::new(
            self.verifier
                .stats
                .cache_hits
                .load(std::sync::atomic::Ordering::Relaxed),
        )
        .encode(m)?;
        let m = encoder.encode_descriptor(
            "verification_cache_entries",
            "Verification verdicts currently cached",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        ConstGauge::new(i64::try_from(self.verifier.cached()).unwrap_or(i64::MAX)).encode(m)?;
        Ok(())
    }
}

/// Every metric of the controller.
pub struct Metrics {
    registry: Registry,
    /// Images per policy and compliance state.
    pub policy_images: Family<PolicyLabels, Gauge>,
    /// Images per policy whose `verify` requirements verified / did not.
    pub policy_verification: Family<PolicyLabels, Gauge>,
    /// 1 for the current state of each capability of each RegistryProfile.
    pub capability: Family<CapabilityLabels, Gauge>,
    /// Lifecycle findings per profile and severity.
    pub lifecycle_findings: Family<LifecycleLabels, Gauge>,
    /// 1 when the profile's registry answered its last probe.
    pub reachable: Family<ProfileLabels, Gauge>,
    /// Reconcile runs.
    pub reconciles: Family<KindLabels, Counter>,
    /// Reconcile failures.
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    /// Reconcile duration in seconds.
    pub reconcile_duration: Family<KindLabels, Histogram>,
    /// 1 while this replica holds the leader Lease.
    pub leader: Gauge<i64, AtomicI64Compat>,
    /// Status applies and Events sent to the Kubernetes API.
    pub writes: Family<WriteLabels, Counter>,
}

/// Atomic type of the leader gauge.
pub type AtomicI64Compat = std::sync::atomic::AtomicI64;

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Registers every metric; `counters`, `discoverer` and `verifier` are read at scrape time.
    pub fn new(
        counters: Arc<RequestCounters>,
        discoverer: Discoverer,
        verifier: Arc<Verifier>,
    ) -> Self {
        let mut registry = Registry::with_prefix("refwarden");
        let policy_verification = Family::<PolicyLabels, Gauge>::default();
        registry.register(
            "policy_verification_images",
            "Images of a ReferrerPolicy whose verify requirements verified (state=verified) or whose required referrers are present but do not verify (state=unverified)",
            policy_verification.clone(),
        );
        let policy_images = Family::<PolicyLabels, Gauge>::default();
        registry.register(
            "policy_images",
            "Images selected by a ReferrerPolicy, by compliance state",
            policy_images.clone(),
        );
        let capability = Family::<CapabilityLabels, Gauge>::default();
        registry.register(
            "registry_capability",
            "1 for the probed state of a RegistryProfile capability",
            capability.clone(),
        );
        let lifecycle_findings = Family::<LifecycleLabels, Gauge>::default();
        registry.register(
            "lifecycle_findings",
            "Lifecycle/GC rules that endanger referrers, per RegistryProfile and severity",
            lifecycle_findings.clone(),
        );
        let reachable = Family::<ProfileLabels, Gauge>::default();
        registry.register(
            "registry_reachable",
            "1 when the RegistryProfile's registry answered its last probe",
            reachable.clone(),
        );
        let reconciles = Family::<KindLabels, Counter>::default();
        registry.register("reconciles", "Reconcile runs", reconciles.clone());
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Reconcile failures by error",
            reconcile_errors.clone(),
        );
        let reconcile_duration = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0])
        });
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration",
            reconcile_duration.clone(),
        );
        let leader = Gauge::<i64, AtomicI64Compat>::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease and writes status",
            leader.clone(),
        );
        let writes = Family::<WriteLabels, Counter>::default();
        registry.register(
            "api_writes",
            "Status applies and Events sent to the Kubernetes API, by result",
            writes.clone(),
        );
        registry.register_collector(Box::new(Sources {
            counters,
            discoverer,
            verifier,
        }));
        Self {
            registry,
            policy_images,
            policy_verification,
            capability,
            lifecycle_findings,
            reachable,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            leader,
            writes,
        }
    }

    /// Counts one API write.
    pub fn write(&self, kind: &str, op: &str, result: &str) {
        self.writes
            .get_or_create(&WriteLabels {
                kind: kind.to_string(),
                op: op.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    /// Every gauge of a RegistryProfile from its stored status: capabilities, reachability
    /// (the `Reachable` condition) and lifecycle findings — after a restart or on a standby,
    /// before any probe of this replica.
    pub fn set_profile_from_status(
        &self,
        profile: &str,
        status: &crate::crd::RegistryProfileStatus,
    ) {
        self.set_capabilities(profile, &status.capabilities);
        let reachable = crate::conditions::find(&status.conditions, crate::conditions::REACHABLE)
            .is_some_and(|c| c.status == "True");
        self.set_lifecycle(profile, &status.lifecycle_findings, reachable);
    }

    /// The compliance gauges of a policy from its stored status (standbys, before an evaluation).
    pub fn set_policy_from_status(&self, policy: &str, status: &crate::crd::ReferrerPolicyStatus) {
        let s = &status.summary;
        if status.observed_generation.is_some() {
            self.set_policy(policy, s.compliant, s.non_compliant, s.unknown);
            self.set_policy_verification(policy, s.verified, s.unverified);
        }
    }

    /// Removes a deleted profile's gauges.
    pub fn forget_profile(&self, profile: &str) {
        let labels = ProfileLabels {
            registry_profile: profile.to_string(),
        };
        self.reachable.remove(&labels);
        for severity in ["High", "Medium", "Low"] {
            self.lifecycle_findings.remove(&LifecycleLabels {
                registry_profile: profile.to_string(),
                severity: severity.to_string(),
            });
        }
        for capability in CAPABILITY_NAMES {
            for state in [
                CapabilityState::Supported,
                CapabilityState::Unsupported,
                CapabilityState::Unknown,
            ] {
                self.capability.remove(&CapabilityLabels {
                    registry_profile: profile.to_string(),
                    capability: capability.to_string(),
                    state: state.to_string(),
                });
            }
        }
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Starts timing a reconcile of `kind`; the time is recorded when the guard drops.
    pub fn measure(&self, kind: &str) -> ReconcileTimer<'_> {
        let labels = KindLabels {
            kind: kind.to_string(),
        };
        self.reconciles.get_or_create(&labels).inc();
        ReconcileTimer {
            metrics: self,
            labels,
            start: Instant::now(),
        }
    }

    /// Counts a reconcile failure.
    pub fn failure(&self, kind: &str, error: &str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                kind: kind.to_string(),
                error: error.to_string(),
            })
            .inc();
    }

    /// Sets the compliance gauges of a policy.
    pub fn set_policy(&self, policy: &str, compliant: u32, non_compliant: u32, unknown: u32) {
        for (state, n) in [
            ("compliant", compliant),
            ("non_compliant", non_compliant),
            ("unknown", unknown),
        ] {
            self.policy_images
                .get_or_create(&PolicyLabels {
                    policy: policy.to_string(),
                    state: state.to_string(),
                })
                .set(i64::from(n));
        }
    }

    /// Sets the verification gauges of a policy (removed while it verifies nothing).
    pub fn set_policy_verification(&self, policy: &str, verified: u32, unverified: u32) {
        for (state, n) in [("verified", verified), ("unverified", unverified)] {
            let labels = PolicyLabels {
                policy: policy.to_string(),
                state: state.to_string(),
            };
            if verified == 0 && unverified == 0 {
                self.policy_verification.remove(&labels);
            } else {
                self.policy_verification
                    .get_or_create(&labels)
                    .set(i64::from(n));
            }
        }
    }

    /// Removes a deleted policy's gauges.
    pub fn forget_policy(&self, policy: &str) {
        self.set_policy_verification(policy, 0, 0);
        for state in ["compliant", "non_compliant", "unknown"] {
            self.policy_images.remove(&PolicyLabels {
                policy: policy.to_string(),
                state: state.to_string(),
            });
        }
    }

    /// Sets the lifecycle findings (per severity) and reachability gauges of a profile.
    pub fn set_lifecycle(
        &self,
        profile: &str,
        findings: &[crate::crd::LifecycleFinding],
        reachable: bool,
    ) {
        use crate::crd::Severity;
        for (sev, label) in [
            (Severity::High, "High"),
            (Severity::Medium, "Medium"),
            (Severity::Low, "Low"),
        ] {
            let n = findings.iter().filter(|f| f.severity == sev).count();
            self.lifecycle_findings
                .get_or_create(&LifecycleLabels {
                    registry_profile: profile.to_string(),
                    severity: label.to_string(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
        self.reachable
            .get_or_create(&ProfileLabels {
                registry_profile: profile.to_string(),
            })
            .set(i64::from(reachable));
    }

    /// Sets the capability gauges of a profile (1 for the current state, 0 for the others).
    pub fn set_capabilities(&self, profile: &str, caps: &Capabilities) {
        let list = CAPABILITY_NAMES.into_iter().zip([
            caps.referrers_api.state,
            caps.artifact_type_filter.state,
            caps.chunked_upload.state,
            caps.cross_repo_mount.state,
            caps.delete_manifests.state,
            caps.delete_blobs.state,
        ]);
        for (cap, state) in list {
            for s in [
                CapabilityState::Supported,
                CapabilityState::Unsupported,
                CapabilityState::Unknown,
            ] {
                self.capability
                    .get_or_create(&CapabilityLabels {
                        registry_profile: profile.to_string(),
                        capability: cap.to_string(),
                        state: s.to_string(),
                    })
                    .set(i64::from(s == state));
            }
        }
    }
}

/// The `capability` label values of `refwarden_registry_capability`.
const CAPABILITY_NAMES: [&str; 6] = [
    "referrersApi",
    "artifactTypeFilter",
    "chunkedUpload",
    "crossRepoMount",
    "deleteManifests",
    "deleteBlobs",
];

/// Records a reconcile's duration on drop.
pub struct ReconcileTimer<'a> {
    metrics: &'a Metrics,
    labels: KindLabels,
    start: Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.metrics
            .reconcile_duration
            .get_or_create(&self.labels)
            .observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::Capability;
    use crate::registry::Endpoint;

    #[test]
    fn renders_every_family() {
        let counters = Arc::new(RequestCounters::default());
        counters.record("ghcr.io:443", Endpoint::Referrers, Some(404));
        counters.record("ghcr.io:443", Endpoint::Base, None);
        let m = Metrics::new(counters, Discoverer::default(), Arc::default());
        m.set_policy("p", 3, 1, 0);
        m.set_capabilities(
            "ghcr",
            &Capabilities {
                referrers_api: Capability::unsupported("NotFound", Some(404), ""),
                ..Default::default()
            },
        );
        {
            let _t = m.measure("referrerpolicy");
        }
        m.failure("referrerpolicy", "kube");
        m.leader.set(1);
        let text = m.render();
        for needle in [
            "refwarden_policy_images{policy=\"p\",state=\"non_compliant\"} 1",
            "refwarden_registry_capability{registry_profile=\"ghcr\",capability=\"referrersApi\",state=\"Unsupported\"} 1",
            "refwarden_registry_capability{registry_profile=\"ghcr\",capability=\"referrersApi\",state=\"Supported\"} 0",
            "refwarden_registry_requests_total{registry=\"ghcr.io:443\",endpoint=\"referrers\",status=\"404\"} 1",
            "refwarden_registry_requests_total{registry=\"ghcr.io:443\",endpoint=\"base\",status=\"error\"} 1",
            "refwarden_discovery_cache_hits_total 0",
            "refwarden_reconcile_duration_seconds_count{kind=\"referrerpolicy\"} 1",
            "refwarden_reconcile_errors_total{kind=\"referrerpolicy\",error=\"kube\"} 1",
            "refwarden_leader 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }
}
