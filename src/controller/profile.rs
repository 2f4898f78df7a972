//! The RegistryProfile reconciler: build the client (Secret / CA read through
//! the API), probe on create/change and every `spec.probe.interval`, write the
//! status with server-side apply when it changed, publish Events on capability
//! changes, and keep the registry directory policies discover through.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::warn;

use super::diff;
use super::writer::Written;
use super::{Context, Error};
use crate::conditions::{self, Status, new_condition};
use crate::crd::{
    CredentialsProvider, RegistryProfile, RegistryProfileSpec, RegistryProfileStatus,
};
use crate::probe::{self, ProbeOptions, status::StatusContext};
use crate::reason::Reason;
use crate::registry::BrokenProfile;
use crate::registry::RegistryClient;
use crate::registry::profile_config::{self as pf, CaObject, ProfileObjects};

/// Kind label in metrics.
pub const KIND: &str = "registryprofile";
/// Shortest time between two probes asked for by discovery (a registry whose answers flap must
/// not be probed in a loop).
pub const FORCED_PROBE_MIN_INTERVAL: Duration = Duration::from_secs(60);

/// Probes asked for before their interval, because discovery saw the registry's referrers
/// answer change (it gained the API, lost it, fixed its `Content-Type`).
#[derive(Debug, Default)]
pub struct ProbeRequests {
    /// Profile → when a forced probe last ran (`None`: never), for those with a request pending.
    pending: parking_lot::Mutex<std::collections::BTreeSet<String>>,
    last_forced: parking_lot::Mutex<std::collections::HashMap<String, std::time::Instant>>,
}

impl ProbeRequests {
    /// Asks for a probe of `profile` at its next reconcile.
    pub fn request(&self, profile: &str) {
        self.pending.lock().insert(profile.to_string());
    }

    /// Whether `profile` must be probed now: a request is pending and no forced probe ran in
    /// the last [`FORCED_PROBE_MIN_INTERVAL`]. Consumes the request when it answers true.
    pub fn take(&self, profile: &str) -> bool {
        let mut pending = self.pending.lock();
        if !pending.contains(profile) {
            return false;
        }
        let mut last = self.last_forced.lock();
        if last
            .get(profile)
            .is_some_and(|t| t.elapsed() < FORCED_PROBE_MIN_INTERVAL)
        {
            return false;
        }
        pending.remove(profile);
        last.insert(profile.to_string(), std::time::Instant::now());
        true
    }

    /// Forgets a deleted profile.
    pub fn forget(&self, profile: &str) {
        self.pending.lock().remove(profile);
        self.last_forced.lock().remove(profile);
    }
}

/// How soon a profile with a broken (not invalid) reference is looked at again.
pub const BROKEN_RECHECK: Duration = Duration::from_secs(60);

/// The objects a spec references, read from the API, plus a fingerprint of
/// their versions. `Err` only for API failures other than 404.
async fn read_objects(
    client: &kube::Client,
    spec: &RegistryProfileSpec,
) -> Result<(Option<Secret>, Option<OwnedCa>, String), Error> {
    let mut fingerprint = serde_json::to_string(spec)?;
    let secret = match &spec.credentials_secret_ref {
        None => None,
        Some(r) => {
            let s = Api::<Secret>::namespaced(client.clone(), &r.namespace)
                .get_opt(&r.name)
                .await?;
            fingerprint.push_str(&format!(
                "|secret:{}",
                s.as_ref()
                    .and_then(|s| s.metadata.resource_version.clone())
                    .unwrap_or_default()
            ));
            s
        }
    };
    let ca = match &spec.ca_bundle {
        None => None,
        Some(b) => {
            if let Some(r) = &b.config_map_ref {
                let c = Api::<ConfigMap>::namespaced(client.clone(), &r.namespace)
                    .get_opt(&r.name)
                    .await?;
                fingerprint.push_str(&version_mark("cm", c.as_ref()));
                Some(OwnedCa::ConfigMap(c))
            } else if let Some(r) = &b.secret_ref {
                let s = Api::<Secret>::namespaced(client.clone(), &r.namespace)
                    .get_opt(&r.name)
                    .await?;
                fingerprint.push_str(&version_mark("casecret", s.as_ref()));
                Some(OwnedCa::Secret(s))
            } else {
                None
            }
        }
    };
    Ok((secret, ca, fingerprint))
}

/// `|label:resourceVersion` of an object a client is built from, for its fingerprint (an absent
/// object has an empty version).
fn version_mark<K: Resource>(label: &str, obj: Option<&K>) -> String {
    let version = obj.and_then(|o| o.meta().resource_version.as_deref());
    format!("|{label}:{}", version.unwrap_or_default())
}

enum OwnedCa {
    ConfigMap(Option<ConfigMap>),
    Secret(Option<Secret>),
}

/// The status of a profile that cannot be probed: `Ready=False` with the
/// reason and a message naming the field; `Stalled=True` when the spec itself
/// is invalid. Probe results of earlier runs are kept.
pub fn broken_status(
    b: &BrokenProfile,
    generation: Option<i64>,
    previous: Option<&RegistryProfileStatus>,
    now: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
) -> RegistryProfileStatus {
    let stalled = pf::is_invalid_spec(b);
    let fresh = vec![
        new_condition(
            conditions::READY,
            Status::False,
            b.reason.as_str(),
            b.message.clone(),
            generation,
            now,
        ),
        new_condition(
            conditions::RECONCILING,
            Status::False,
            b.reason.as_str(),
            "",
            generation,
            now,
        ),
        new_condition(
            conditions::STALLED,
            Status::from(stalled),
            b.reason.as_str(),
            if stalled {
                b.message.clone()
            } else {
                String::new()
            },
            generation,
            now,
        ),
    ];
    let prev_conditions = previous.map(|p| p.conditions.as_slice()).unwrap_or(&[]);
    RegistryProfileStatus {
        observed_generation: generation,
        conditions: conditions::merge(prev_conditions, fresh),
        ..previous.cloned().unwrap_or_default()
    }
}

/// Reconciles one RegistryProfile.
pub async fn reconcile(obj: Arc<RegistryProfile>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.measured_reconcile(KIND, &obj.name_any(), reconcile_inner(&obj, &ctx))
        .await
}

async fn reconcile_inner(obj: &RegistryProfile, ctx: &Context) -> Result<Action, Error> {
    let name = obj.name_any();
    let generation = obj.metadata.generation;
    // Conditions are merged from the last status this replica wrote, not an older copy.
    let base = ctx.index.profile_status_base(&name, obj.status.as_ref());
    let previous = base.as_ref();
    let now = ctx.now();

    let host = pf::registry_host(&obj.spec).unwrap_or_default();
    let (secret, ca, fingerprint) = match read_objects(&ctx.client, &obj.spec).await {
        Ok(x) => x,
        Err(e) => {
            // Keep the profile known (broken) so policies do not wait for it.
            let b = BrokenProfile {
                reason: Reason::CredentialsUnavailable,
                message: format!("reading the objects referenced by the spec failed: {e}"),
            };
            if ctx.profiles.set(&name, &host, "", Err(b), None) {
                ctx.all_policies.send_modify(|n| *n += 1);
            }
            return Err(e);
        }
    };
    // ECR tokens last 12 h: with `credentialsProvider: AwsEcr` the client is rebuilt every 6 h.
    let mut fingerprint = fingerprint;
    let aws_credentials = if obj.spec.credentials_provider == CredentialsProvider::AwsEcr {
        let bucket = now.0.as_second() / (6 * 3600);
        fingerprint.push_str(&format!("|aws:{bucket}"));
        if ctx
            .profiles
            .client_if_current(&name, &fingerprint)
            .is_none()
        {
            Some(
                crate::lifecycle::aws::ecr_credentials_for(&obj.spec.registry_url)
                    .await
                    .map_err(|e| BrokenProfile {
                        reason: Reason::CredentialsUnavailable,
                        message: format!("spec.credentialsProvider: AwsEcr: {e}"),
                    }),
            )
        } else {
            None
        }
    } else {
        None
    };
    let ca_ref = ca.as_ref().map(|c| match c {
        OwnedCa::ConfigMap(c) => CaObject::ConfigMap(c.as_ref()),
        OwnedCa::Secret(s) => CaObject::Secret(s.as_ref()),
    });
    let known = ctx.profiles.names().contains(&name);
    let built = pf::probe_interval(&obj.spec).and_then(|interval| {
        let client = match ctx.profiles.client_if_current(&name, &fingerprint) {
            Some(c) => c,
            None => {
                if known {
                    // New credentials, CA or URL: what the old client saw is not evidence.
                    tracing::debug!("profile inputs changed: rebuilding its client");
                }
                let mut cfg = pf::client_config(
                    &obj.spec,
                    ProfileObjects {
                        credentials: secret.as_ref(),
                        ca: ca_ref,
                    },
                    ctx.counters.clone(),
                )?;
                if let Some(creds) = aws_credentials {
                    cfg.credentials = creds?;
                }
                let client = RegistryClient::new(cfg).map_err(|e| BrokenProfile {
                    reason: Reason::InvalidSpec,
                    message: format!("spec: {e}"),
                })?;
                if known {
                    ctx.discoverer.invalidate_registry(client.registry());
                }
                client
            }
        };
        Ok((client, interval))
    });
    let mode = obj.spec.discovery.mode;
    let (client, interval) = match built {
        Ok(x) => x,
        Err(b) => {
            warn!(reason = %b.reason, message = %b.message, "registry profile cannot be used");
            if ctx
                .profiles
                .set(&name, &host, &fingerprint, Err(b.clone()), None)
            {
                ctx.all_policies.send_modify(|n| *n += 1);
            }
            if !ctx.is_leader() {
                return Ok(Action::await_change());
            }
            let status = broken_status(&b, generation, previous, &now);
            if previous != Some(&status)
                && ctx.writer.apply_status(KIND, obj, &status).await? == Written::Yes
            {
                ctx.index.wrote_profile(&name, &status);
            }
            return Ok(if pf::is_invalid_spec(&b) {
                Action::await_change()
            } else {
                Action::requeue(BROKEN_RECHECK)
            });
        }
    };

    // The hint from the stored status counts only if it describes this spec.
    let stored_hint = previous
        .filter(|s| s.observed_generation == generation)
        .and_then(|s| s.discovery_mode);
    let mut due = diff::probe_due(previous, generation, &now, interval);
    if due.is_err() && ctx.is_leader() && ctx.probe_requests.take(&name) {
        tracing::info!("the registry's referrers answer changed: probing before the interval");
        due = Ok(());
    }
    if !ctx.is_leader() || due.is_err() {
        if ctx
            .profiles
            .set(&name, &host, &fingerprint, Ok((client, mode)), stored_hint)
        {
            ctx.all_policies.send_modify(|n| *n += 1);
        }
        // Every gauge from the stored status (a restart, a standby): not only capabilities,
        // reachability and lifecycle findings too.
        if let Some(p) = previous {
            ctx.metrics.set_profile_from_status(&name, p);
        }
        return Ok(match due {
            _ if !ctx.is_leader() => Action::await_change(),
            Err(left) => Action::requeue(left.max(Duration::from_secs(1))),
            Ok(()) => Action::requeue(interval),
        });
    }

    let report = probe::run(&client, &ProbeOptions::for_profile(&obj.spec)).await;
    let mut status = probe::status::from_report(
        &report,
        &StatusContext {
            generation,
            requested_mode: mode,
            insecure_skip_tls_verify: obj.spec.insecure_skip_tls_verify,
            previous,
            now: now.clone(),
        },
    );
    let lifecycle_result = super::lifecycle::findings(&ctx.client, &obj.spec).await;
    super::lifecycle::apply(&mut status, lifecycle_result, generation, previous, &now);
    ctx.metrics
        .set_lifecycle(&name, &status.lifecycle_findings, report.is_reachable());
    if ctx.profiles.set(
        &name,
        &host,
        &fingerprint,
        Ok((client, mode)),
        status.discovery_mode,
    ) {
        ctx.all_policies.send_modify(|n| *n += 1);
    }
    ctx.metrics.set_capabilities(&name, &status.capabilities);

    if !ctx.is_leader() {
        return Ok(Action::requeue(interval));
    }
    if diff::profile_status_needs_write(previous, &status, &now, interval)
        && ctx.writer.apply_status(KIND, obj, &status).await? == Written::Yes
    {
        ctx.index.wrote_profile(&name, &status);
    }
    let prev_caps = previous
        .filter(|p| p.last_probe_time.is_some())
        .map(|p| &p.capabilities);
    let reference = obj.object_ref(&());
    for ev in diff::capability_events(prev_caps, &status.capabilities) {
        ctx.writer.publish(&ev, "Probe", &reference, None).await;
    }
    Ok(Action::requeue(interval))
}

/// Transient failures: per-object jittered, capped backoff.
pub fn error_policy(obj: Arc<RegistryProfile>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.failed_reconcile(KIND, &obj.name_any(), err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forced_probes_are_taken_once_and_rate_limited() {
        let p = ProbeRequests::default();
        assert!(!p.take("harbor"), "nothing asked");
        p.request("harbor");
        assert!(p.take("harbor"));
        assert!(!p.take("harbor"), "consumed");
        // Asked again at once: kept pending, not run within the minimum interval.
        p.request("harbor");
        assert!(!p.take("harbor"));
        p.forget("harbor");
        p.request("harbor");
        assert!(p.take("harbor"), "a forgotten profile starts afresh");
    }
}
