//! The ReferrerPolicy reconciler: [`evaluate_policy`] over the pod store, the
//! namespace labels, the registry directory and the shared Discoverer; status
//! by server-side apply when it changed; Events on compliance changes (policy)
//! and `MissingReferrers` Warnings on the affected pods.
//!
//! refwarden never mutates workloads: pods only get Events.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use tracing::warn;

use super::diff::{self, EventSeverity, ImageId, PlannedEvent};
use super::stores::PodEntry;
use super::writer::Written;
use super::{Context, Error, PolicyMemory};
use crate::crd::{ReferrerPolicy, ReferrerPolicyStatus};
use crate::policy::evaluate::selects_pod;
use crate::policy::pods::ImageSource;
use crate::policy::{PolicyInput, evaluate_policy, select};
use crate::reason::UnknownReason;

/// Kind label in metrics.
pub const KIND: &str = "referrerpolicy";
/// How soon a policy looks again while its inputs are still loading.
pub const NOT_SYNCED_RECHECK: Duration = Duration::from_secs(2);

/// Reconciles one ReferrerPolicy.
pub async fn reconcile(obj: Arc<ReferrerPolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    ctx.measured_reconcile(KIND, &obj.name_any(), reconcile_inner(&obj, &ctx))
        .await
}

fn pod_ref(p: &PodEntry) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: Some(p.info.namespace.clone()),
        name: Some(p.info.name.clone()),
        uid: p.uid.clone(),
        ..Default::default()
    }
}

/// `(image, digest)` of every container of a pod that runs a known digest.
fn pod_images(p: &PodEntry) -> BTreeSet<ImageId> {
    p.info
        .images
        .iter()
        .filter_map(|c| match &c.source {
            ImageSource::Digest { key, .. } => Some((key.repository_path(), key.digest.clone())),
            _ => None,
        })
        .collect()
}

/// The docker config of a `kubernetes.io/dockerconfigjson` Secret (`None` for any other Secret).
fn docker_config_of(
    ns: &str,
    name: &str,
    secret: &k8s_openapi::api::core::v1::Secret,
) -> Option<Arc<crate::registry::DockerConfig>> {
    if secret.type_.as_deref() != Some("kubernetes.io/dockerconfigjson") {
        return None;
    }
    let bytes = secret.data.as_ref()?.get(".dockerconfigjson")?;
    match crate::registry::DockerConfig::parse(&bytes.0) {
        Ok(c) => Some(Arc::new(c)),
        Err(_) => {
            tracing::debug!(namespace = %ns, secret = %name, "imagePullSecret is not a valid dockerconfigjson");
            None
        }
    }
}

/// Distinct imagePullSecrets read per reconcile at most.
const MAX_PULL_SECRETS: usize = 100;

/// `--use-image-pull-secrets`: credentials from the imagePullSecrets of the pods this
/// policy selects, for registries that have no RegistryProfile. A Secret that is
/// missing, unreadable or not a dockerconfigjson is skipped (those images are then
/// looked up anonymously, and Unknown if the registry wants credentials).
/// The ConfigMaps and Secrets the policy's `verify` blocks name, read one by one (`get`, as the
/// RBAC allows). An object that is absent, or that the controller may not read, is left out: the
/// policy then says which field names it (Ready=False) and is retried. Other API errors are
/// returned (the reconcile backs off).
/// How soon a policy whose `verify` trust could not be read is tried again.
const TRUST_RETRY: Duration = Duration::from_secs(60);

async fn load_trust(
    ctx: &Context,
    obj: &ReferrerPolicy,
) -> Result<crate::policy::TrustObjects, Error> {
    use crate::policy::trust::{ObjectKind, config_map_data, references, secret_data};
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    let mut objects = crate::policy::TrustObjects::default();
    let absent =
        |e: &kube::Error| matches!(e, kube::Error::Api(s) if s.code == 403 || s.code == 404);
    for name in references(&obj.spec) {
        if let Some(data) = ctx.trust_objects.get(&name).await {
            objects.insert(name, data.as_ref().clone());
            continue;
        }
        let (kind, ns, n) = &name;
        let read = match kind {
            ObjectKind::ConfigMap => kube::Api::<ConfigMap>::namespaced(ctx.client.clone(), ns)
                .get_opt(n)
                .await
                .map(|o| o.map(|cm| config_map_data(&cm).1)),
            ObjectKind::Secret => kube::Api::<Secret>::namespaced(ctx.client.clone(), ns)
                .get_opt(n)
                .await
                .map(|o| o.map(|s| secret_data(&s).1)),
        };
        match read {
            Ok(Some(data)) => {
                ctx.trust_objects
                    .insert(name.clone(), Arc::new(data.clone()))
                    .await;
                objects.insert(name, data);
            }
            Ok(None) => {}
            Err(e) if absent(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(objects)
}

async fn load_pull_secrets(
    ctx: &Context,
    obj: &ReferrerPolicy,
    pods: &[Arc<PodEntry>],
    namespaces: &crate::policy::NamespaceLabels,
    directory: &crate::registry::RegistryDirectory,
) {
    use k8s_openapi::api::core::v1::Secret;
    let Some(compiled) = ctx.compiled_policy(obj) else {
        return;
    };
    let wanted: BTreeSet<(String, String)> = pods
        .iter()
        .filter(|p| !p.pull_secrets.is_empty() && selects_pod(&compiled, &p.info, namespaces))
        .flat_map(|p| {
            p.pull_secrets
                .iter()
                .map(|s| (p.info.namespace.clone(), s.clone()))
        })
        .take(MAX_PULL_SECRETS)
        .collect();
    for (ns, name) in wanted {
        // Concurrent misses share one GET; errors are not cached.
        let read = ctx
            .pull_secrets
            .try_get_with((ns.clone(), name.clone()), async {
                let api = kube::Api::<Secret>::namespaced(ctx.client.clone(), &ns);
                let secret = api.get_opt(&name).await?;
                Ok::<_, kube::Error>(secret.and_then(|s| docker_config_of(&ns, &name, &s)))
            })
            .await;
        let config = match read {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(e) => {
                tracing::debug!(namespace = %ns, secret = %name, error = %e, "cannot read imagePullSecret");
                continue;
            }
        };
        let source = format!("{ns}/{name}");
        for key in config.hosts() {
            // Keys may be URLs (`https://index.docker.io/v1/`): keep host[:port].
            let host = key
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or_default();
            if !host.is_empty() {
                directory.set_pull_credentials(host, &source, config.credentials_for(host));
            }
        }
    }
}

/// What one evaluation of a policy leads to: the status to write and the Events to publish,
/// computed without I/O from the evaluation and what the last one published.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The status to apply (`None`: the base status is current).
    pub status: Option<ReferrerPolicyStatus>,
    /// Events on the policy.
    pub policy_events: Vec<PlannedEvent>,
    /// Warnings on pods, by pod key (`namespace/name`).
    pub pod_events: Vec<(String, PlannedEvent)>,
    /// Pods owed a Warning beyond `max_pod_events` (published by the next evaluation, which
    /// is scheduled at once: [`DEFERRED_RECHECK`]).
    pub deferred_pods: usize,
    /// What to remember for the next evaluation.
    pub memory: PolicyMemory,
}

/// When pod Warnings were deferred by the per-evaluation limit, the next evaluation runs
/// after this (from cache: it costs no registry request).
pub const DEFERRED_RECHECK: Duration = Duration::from_secs(1);

/// What [`plan`] decides from.
#[derive(Clone, Debug)]
pub struct PlanInput<'a> {
    /// The policy's name.
    pub name: &'a str,
    /// The status the evaluation started from (the last written, else the stored one).
    pub base: Option<&'a ReferrerPolicyStatus>,
    /// The status the evaluation computed.
    pub status: &'a ReferrerPolicyStatus,
    /// Its violations (every one, not only those the status lists).
    pub violations: &'a [crate::crd::PolicyViolation],
    /// Images Unknown now.
    pub unknown: &'a BTreeSet<ImageId>,
    /// Images the policy selects now.
    pub selected: &'a BTreeSet<ImageId>,
    /// Selected pods (key) and the images with a digest they run.
    pub pods: &'a [(String, BTreeSet<ImageId>)],
    /// What the last evaluation published (`None` on this replica's first one: derived from
    /// the base status, so a restart or failover does not publish again).
    pub memory: Option<PolicyMemory>,
    /// Now.
    pub now: &'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    /// The recheck interval (status heartbeat).
    pub recheck: Duration,
    /// Pod Warnings per evaluation at most (the rest wait for the next one).
    pub max_pod_events: usize,
}

/// Computes the [`Plan`] of one evaluation (pure).
///
/// The policy gets `ImageNonCompliant` for images that miss referrers now and did not, or
/// missed others (the note lists what is missing now) and `ImageCompliant` for those that
/// carry them again; each affected pod gets one `MissingReferrers` Warning per change of what
/// its images miss.
pub fn plan(input: &PlanInput<'_>) -> Plan {
    let status =
        diff::policy_status_needs_write(input.base, input.status, input.now, input.recheck)
            .then(|| input.status.clone());
    let previous = input
        .memory
        .clone()
        .unwrap_or_else(|| baseline(input.base, input.pods));
    let change = diff::compliance_change(
        &previous.non_compliant,
        input.violations,
        input.selected,
        input.unknown,
    );
    let policy_events = diff::compliance_events(&change);
    let non_compliant: BTreeMap<ImageId, Vec<String>> = input
        .violations
        .iter()
        .map(|v| ((v.image.clone(), v.digest.clone()), v.missing_labels()))
        .collect();

    let mut warned = BTreeMap::new();
    let mut pod_events = Vec::new();
    let mut deferred_pods = 0;
    for (key, images) in input.pods {
        let mut lines = Vec::new();
        let mut pairs = Vec::new();
        for id in images {
            let Some(missing) = non_compliant.get(id) else {
                continue;
            };
            let pair = (key.clone(), id.0.clone(), id.1.clone());
            if previous.warned.get(&pair) == Some(missing) {
                warned.insert(pair, missing.clone());
                continue;
            }
            lines.push(format!(
                "{}@{} (missing: {})",
                id.0,
                id.1,
                missing.join(", ")
            ));
            pairs.push((pair, missing.clone()));
        }
        if lines.is_empty() {
            continue;
        }
        if pod_events.len() >= input.max_pod_events {
            // Rate limit: the rest is warned about on the next evaluation.
            deferred_pods += 1;
            continue;
        }
        pod_events.push((
            key.clone(),
            PlannedEvent {
                severity: EventSeverity::Warning,
                reason: "MissingReferrers".into(),
                note: diff::bounded_note(format!(
                    "ReferrerPolicy {}: image(s) missing required referrers: {}",
                    input.name,
                    lines.join("; ")
                )),
            },
        ));
        warned.extend(pairs);
    }
    Plan {
        status,
        policy_events,
        pod_events,
        deferred_pods,
        memory: PolicyMemory {
            non_compliant,
            warned,
        },
    }
}

async fn reconcile_inner(obj: &ReferrerPolicy, ctx: &Context) -> Result<Action, Error> {
    let name = obj.name_any();
    if !ctx.is_leader() {
        // Standbys keep their stores warm and serve gauges from the stored status.
        if let Some(s) = &obj.status {
            ctx.metrics.set_policy_from_status(&name, s);
        }
        return Ok(Action::await_change());
    }
    if !ctx.synced() {
        return Ok(Action::requeue(NOT_SYNCED_RECHECK));
    }
    let now = ctx.now();
    // Conditions are merged from the last status this replica wrote, not from an older copy
    // the watch may still hold.
    let mut base = ctx.index.policy_status_base(&name, obj.status.as_ref());
    let generation = obj.metadata.generation;
    let pods = ctx.pods.snapshot();
    let namespaces = ctx.namespaces.snapshot();
    let directory = ctx.profiles.directory();
    if ctx.settings.use_image_pull_secrets {
        load_pull_secrets(ctx, obj, &pods, &namespaces, &directory).await;
    }
    // A new or changed spec: say so (kstatus `Reconciling=True`) before evaluating it.
    if base
        .as_ref()
        .is_none_or(|p| p.observed_generation != generation)
    {
        let reconciling =
            crate::policy::evaluate::reconciling_status(generation, base.as_ref(), &now);
        if ctx.writer.apply_status(KIND, obj, &reconciling).await? == Written::Yes {
            ctx.index.wrote_policy(&name, &reconciling);
        }
        base = Some(reconciling);
    }
    let trust = load_trust(ctx, obj).await?;
    let result = evaluate_policy(
        &PolicyInput {
            name: &name,
            spec: &obj.spec,
            generation,
            previous: base.as_ref(),
            trust: &trust,
        },
        pods.iter().map(|p| &p.info),
        &namespaces,
        &directory,
        &ctx.discoverer,
        &ctx.verifier,
        now.clone(),
    )
    .await;

    let Some(evaluation) = result.evaluation else {
        // Invalid spec: Ready=False/Stalled=True, wait for a spec change.
        if let Some(e) = &result.invalid {
            warn!(field = %e.field, message = %e.message, "invalid ReferrerPolicy spec");
        }
        ctx.metrics.forget_policy(&name);
        if diff::policy_status_needs_write(base.as_ref(), &result.status, &now, Duration::MAX)
            && ctx.writer.apply_status(KIND, obj, &result.status).await? == Written::Yes
        {
            ctx.index.wrote_policy(&name, &result.status);
        }
        // Trust read from ConfigMaps / Secrets (not watched) may appear or be fixed later.
        if result
            .invalid
            .as_ref()
            .is_some_and(|e| e.field.contains(".verify."))
        {
            return Ok(Action::requeue(TRUST_RETRY));
        }
        return Ok(Action::await_change());
    };
    let s = &evaluation.summary;
    ctx.metrics
        .set_policy(&name, s.compliant, s.non_compliant, s.unknown);
    ctx.metrics
        .set_policy_verification(&name, s.verified, s.unverified);
    let compiled = ctx.compiled_policy(obj);
    let recheck = compiled
        .as_ref()
        .map(|c| c.recheck_interval)
        .unwrap_or(Duration::from_secs(600));
    let selected_pods: Vec<&Arc<PodEntry>> = match &compiled {
        Some(c) => pods
            .iter()
            .filter(|p| selects_pod(c, &p.info, &namespaces))
            .collect(),
        None => vec![],
    };
    let selected: BTreeSet<ImageId> = match &compiled {
        Some(c) => select(c, selected_pods.iter().map(|p| &p.info), &namespaces)
            .images
            .keys()
            .map(|k| (k.repository_path(), k.digest.clone()))
            .collect(),
        None => BTreeSet::new(),
    };
    let unknown: BTreeSet<ImageId> = evaluation
        .unknown
        .iter()
        .filter_map(|u| u.digest.clone().map(|d| (u.image.clone(), d)))
        .collect();
    let pod_images_by_key: Vec<(String, BTreeSet<ImageId>)> = selected_pods
        .iter()
        .map(|p| (p.key(), pod_images(p)))
        .collect();
    // Reports first (bounded API calls), so their condition goes out with this status.
    let mut status = result.status.clone();
    if let Some(c) = &compiled
        && let Some(cond) =
            super::openreports::sync(ctx, obj, c, &evaluation, &selected_pods, &now).await
    {
        let previous = base
            .as_ref()
            .map(|b| b.conditions.as_slice())
            .unwrap_or(&[]);
        status.conditions.retain(|x| x.type_ != cond.type_);
        status
            .conditions
            .extend(crate::conditions::merge(previous, vec![cond]));
    }
    let plan = plan(&PlanInput {
        name: &name,
        base: base.as_ref(),
        status: &status,
        violations: &evaluation.violations,
        unknown: &unknown,
        selected: &selected,
        pods: &pod_images_by_key,
        memory: ctx.index.policy(&name).memory,
        now: &now,
        recheck,
        max_pod_events: ctx.settings.max_events_per_reconcile,
    });
    if let Some(status) = &plan.status
        && ctx.writer.apply_status(KIND, obj, status).await? == Written::Yes
    {
        ctx.index.wrote_policy(&name, status);
    }
    let reference = obj.object_ref(&());
    for ev in &plan.policy_events {
        ctx.writer.publish(ev, "Evaluate", &reference, None).await;
    }
    let by_key: BTreeMap<String, &Arc<PodEntry>> =
        selected_pods.iter().map(|p| (p.key(), *p)).collect();
    for (key, ev) in &plan.pod_events {
        if let Some(p) = by_key.get(key) {
            ctx.writer
                .publish(ev, "Evaluate", &pod_ref(p), Some(reference.clone()))
                .await;
        }
    }
    let deferred = plan.deferred_pods > 0;
    ctx.index
        .update_policy(&name, |st| st.memory = Some(plan.memory));

    // Registry trouble: look again sooner (per-object backoff), bounded by recheckInterval.
    let transient = evaluation
        .unknown
        .iter()
        .any(|u| !UnknownReason::parse(&u.reason).is_some_and(UnknownReason::is_permanent));
    let key = format!("{KIND}/{name}");
    Ok(if deferred {
        Action::requeue(DEFERRED_RECHECK)
    } else if transient {
        Action::requeue(ctx.unknown_backoff.fail(&key).min(recheck))
    } else {
        ctx.unknown_backoff.reset(&key);
        Action::requeue(recheck)
    })
}

/// What is known before this replica's first evaluation: the stored violations, and the pods
/// that run them — warned (about those missing lists) by the replica that wrote them, so a
/// restart or a failover does not warn them again.
fn baseline(
    previous: Option<&ReferrerPolicyStatus>,
    pods: &[(String, BTreeSet<ImageId>)],
) -> PolicyMemory {
    let non_compliant: BTreeMap<ImageId, Vec<String>> = previous
        .map(|s| {
            s.violations
                .iter()
                .map(|v| ((v.image.clone(), v.digest.clone()), v.missing_labels()))
                .collect()
        })
        .unwrap_or_default();
    let warned = pods
        .iter()
        .flat_map(|(key, images)| {
            let non_compliant = &non_compliant;
            images.iter().filter_map(move |id| {
                non_compliant
                    .get(id)
                    .map(|m| ((key.clone(), id.0.clone(), id.1.clone()), m.clone()))
            })
        })
        .collect();
    PolicyMemory {
        non_compliant,
        warned,
    }
}

/// Transient failures: per-object jittered, capped backoff.
pub fn error_policy(obj: Arc<ReferrerPolicy>, err: &Error, ctx: Arc<Context>) -> Action {
    ctx.failed_reconcile(KIND, &obj.name_any(), err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::PolicyViolation;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn t(s: i64) -> Time {
        Time(Timestamp::from_second(s).expect("time"))
    }

    fn v(digest: &str, missing: &[&str]) -> PolicyViolation {
        PolicyViolation {
            unverified: Vec::new(),
            image: "r/app".into(),
            digest: digest.into(),
            missing: missing.iter().map(|m| m.to_string()).collect(),
            workloads: vec![],
            discovery_method: None,
            reference: None,
            pods: 1,
        }
    }

    fn id(digest: &str) -> ImageId {
        ("r/app".to_string(), digest.to_string())
    }

    /// Runs `plan` for one pod running `sha256:1` with `violations`, from `memory`.
    fn run(violations: &[PolicyViolation], memory: Option<PolicyMemory>) -> Plan {
        let selected = BTreeSet::from([id("sha256:1")]);
        let pods = vec![("ns/pod".to_string(), selected.clone())];
        let status = ReferrerPolicyStatus::default();
        plan(&PlanInput {
            name: "p",
            base: None,
            status: &status,
            violations,
            unknown: &BTreeSet::new(),
            selected: &selected,
            pods: &pods,
            memory,
            now: &t(1000),
            recheck: Duration::from_secs(600),
            max_pod_events: 50,
        })
    }

    #[test]
    fn events_carry_what_is_missing_now() {
        // Non-compliant: one policy Event and one pod Warning, naming `signature`.
        let first = run(
            &[v("sha256:1", &["signature"])],
            Some(PolicyMemory::default()),
        );
        assert_eq!(first.policy_events.len(), 1);
        assert!(first.policy_events[0].note.contains("(missing: signature)"));
        assert_eq!(first.pod_events.len(), 1);
        assert!(first.pod_events[0].1.note.contains("(missing: signature)"));
        // The same again: nothing new.
        let same = run(&[v("sha256:1", &["signature"])], Some(first.memory.clone()));
        assert!(same.policy_events.is_empty() && same.pod_events.is_empty());
        // Compliant, then non-compliant with another list: new Events with the current list.
        let ok = run(&[], Some(first.memory.clone()));
        assert_eq!(ok.policy_events[0].reason, "ImageCompliant");
        let again = run(&[v("sha256:1", &["signature", "vex"])], Some(ok.memory));
        assert!(
            again.policy_events[0]
                .note
                .contains("(missing: signature, vex)")
        );
        assert!(
            again.pod_events[0]
                .1
                .note
                .contains("(missing: signature, vex)")
        );
        // Still non-compliant, missing something else: reported again, too.
        let changed = run(&[v("sha256:1", &["vex"])], Some(again.memory));
        assert!(changed.policy_events[0].note.contains("(missing: vex)"));
        assert!(changed.pod_events[0].1.note.contains("(missing: vex)"));
    }

    #[test]
    fn a_restart_publishes_nothing_the_stored_status_already_says() {
        let stored = ReferrerPolicyStatus {
            violations: vec![v("sha256:1", &["signature"])],
            ..Default::default()
        };
        let selected = BTreeSet::from([id("sha256:1")]);
        let pods = vec![("ns/pod".to_string(), selected.clone())];
        let p = plan(&PlanInput {
            name: "p",
            base: Some(&stored),
            status: &stored,
            violations: &stored.violations,
            unknown: &BTreeSet::new(),
            selected: &selected,
            pods: &pods,
            memory: None,
            now: &t(1000),
            recheck: Duration::from_secs(600),
            max_pod_events: 50,
        });
        assert!(p.policy_events.is_empty(), "{:?}", p.policy_events);
        assert!(p.pod_events.is_empty(), "{:?}", p.pod_events);
        assert_eq!(p.status, None, "unchanged status: no write");
    }

    #[test]
    fn pod_warnings_are_rate_limited_and_retried() {
        let selected = BTreeSet::from([id("sha256:1")]);
        let pods: Vec<(String, BTreeSet<ImageId>)> = (0..5)
            .map(|i| (format!("ns/pod-{i}"), selected.clone()))
            .collect();
        let status = ReferrerPolicyStatus::default();
        let violations = [v("sha256:1", &["signature"])];
        let input = PlanInput {
            name: "p",
            base: None,
            status: &status,
            violations: &violations,
            unknown: &BTreeSet::new(),
            selected: &selected,
            pods: &pods,
            memory: Some(PolicyMemory::default()),
            now: &t(1000),
            recheck: Duration::from_secs(600),
            max_pod_events: 2,
        };
        let first = plan(&input);
        assert_eq!(first.pod_events.len(), 2);
        assert_eq!(
            first.deferred_pods, 3,
            "owed a Warning: the next evaluation comes at once"
        );
        let second = plan(&PlanInput {
            memory: Some(first.memory),
            ..input.clone()
        });
        assert_eq!(second.pod_events.len(), 2, "the next two pods");
        assert_eq!(second.deferred_pods, 1);
        assert!(second.policy_events.is_empty());
        let third = plan(&PlanInput {
            memory: Some(second.memory),
            ..input.clone()
        });
        assert_eq!((third.pod_events.len(), third.deferred_pods), (1, 0));
    }
}
