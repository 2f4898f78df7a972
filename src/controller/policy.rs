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
use tracing::{Instrument, info_span, warn};

use super::diff::{self, ImageId, PlannedEvent, Severity};
use super::stores::PodEntry;
use super::{Context, Error, PolicyMemory};
use crate::crd::{ReferrerPolicy, ReferrerPolicyStatus};
use crate::policy::evaluate::selects_pod;
use crate::policy::pods::ImageSource;
use crate::policy::{PolicyInput, evaluate_policy, select};

/// Kind label in metrics.
pub const KIND: &str = "referrerpolicy";
/// How soon a policy looks again while its inputs are still loading.
pub const NOT_SYNCED_RECHECK: Duration = Duration::from_secs(2);

/// Unknown reasons that are not registry trouble (retrying does not help).
const PERMANENT_UNKNOWN: &[&str] = &["DigestNotResolvable", "InvalidImageReference"];

/// Reconciles one ReferrerPolicy.
pub async fn reconcile(obj: Arc<ReferrerPolicy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = obj.name_any();
    let span = info_span!("reconcile", kind = KIND, name = %name);
    async move {
        let _timer = ctx.metrics.measure(KIND);
        let action = reconcile_inner(&obj, &ctx).await?;
        ctx.backoff.reset(&format!("{KIND}/{name}"));
        Ok(action)
    }
    .instrument(span)
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
async fn load_pull_secrets(
    ctx: &Context,
    obj: &ReferrerPolicy,
    pods: &[Arc<PodEntry>],
    namespaces: &crate::policy::NamespaceLabels,
    directory: &crate::policy::RegistryDirectory,
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

async fn reconcile_inner(obj: &ReferrerPolicy, ctx: &Context) -> Result<Action, Error> {
    let name = obj.name_any();
    if !ctx.is_leader() {
        // Standbys keep their stores warm; the leader evaluates.
        return Ok(Action::await_change());
    }
    if !ctx.synced() {
        return Ok(Action::requeue(NOT_SYNCED_RECHECK));
    }
    let now = ctx.now();
    let previous = obj.status.as_ref();
    let generation = obj.metadata.generation;
    let pods = ctx.pods.snapshot();
    let namespaces = ctx.namespaces.snapshot();
    let directory = ctx.profiles.directory();
    if ctx.settings.use_image_pull_secrets {
        load_pull_secrets(ctx, obj, &pods, &namespaces, &directory).await;
    }
    // A new or changed spec: say so (kstatus `Reconciling=True`) before evaluating it.
    if previous.is_none_or(|p| p.observed_generation != generation) {
        let reconciling = crate::policy::evaluate::reconciling_status(generation, previous, &now);
        ctx.apply_status(obj, &reconciling).await?;
    }
    let result = evaluate_policy(
        &PolicyInput {
            name: &name,
            spec: &obj.spec,
            generation,
            previous,
        },
        pods.iter().map(|p| &p.info),
        &namespaces,
        &directory,
        &ctx.discoverer,
        now.clone(),
    )
    .await;

    let Some(evaluation) = result.evaluation else {
        // Invalid spec: Ready=False/Stalled=True, wait for a spec change.
        if let Some(e) = &result.invalid {
            warn!(field = %e.field, message = %e.message, "invalid ReferrerPolicy spec");
        }
        ctx.metrics.forget_policy(&name);
        if write_needed(previous, &result.status, &now, Duration::MAX) {
            ctx.apply_status(obj, &result.status).await?;
        }
        return Ok(Action::await_change());
    };
    let s = &evaluation.summary;
    ctx.metrics
        .set_policy(&name, s.compliant, s.non_compliant, s.unknown);
    let recheck = ctx
        .compiled_policy(obj)
        .map(|c| c.recheck_interval)
        .unwrap_or(Duration::from_secs(600));
    if write_needed(previous, &result.status, &now, recheck) {
        ctx.apply_status(obj, &result.status).await?;
    }

    // Events: diff against what this replica saw last (or the stored status after a restart).
    let compiled = ctx.compiled_policy(obj);
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
    let mut memory = {
        let mem = ctx.memory.lock().unwrap_or_else(|p| p.into_inner());
        mem.get(&name).cloned()
    }
    .unwrap_or_else(|| baseline(previous, &selected_pods));
    let change = diff::compliance_change(
        &memory.non_compliant,
        &evaluation.violations,
        &selected,
        &unknown,
    );
    let reference = obj.object_ref(&());
    for ev in diff::compliance_events(&change) {
        ctx.publish(&ev, "Evaluate", &reference, None).await;
    }
    memory.non_compliant = evaluation
        .violations
        .iter()
        .map(|v| ((v.image.clone(), v.digest.clone()), v.missing.clone()))
        .collect();

    // Warnings on pods running non-compliant images, once per (pod, image).
    let missing_of: BTreeMap<&ImageId, &Vec<String>> = memory.non_compliant.iter().collect();
    let mut still_warned = BTreeSet::new();
    let mut published = 0usize;
    for p in &selected_pods {
        let key = p.key();
        let mut new_lines = Vec::new();
        let mut pairs = Vec::new();
        for id in pod_images(p) {
            let Some(missing) = missing_of.get(&id) else {
                continue;
            };
            let pair = (key.clone(), id.0.clone(), id.1.clone());
            if memory.warned.contains(&pair) {
                still_warned.insert(pair);
                continue;
            }
            new_lines.push(format!(
                "{}@{} (missing: {})",
                id.0,
                id.1,
                missing.join(", ")
            ));
            pairs.push(pair);
        }
        if new_lines.is_empty() {
            continue;
        }
        if published >= ctx.settings.max_events_per_reconcile {
            // Rate limit: the rest is warned about on the next evaluation.
            continue;
        }
        let ev = PlannedEvent {
            severity: Severity::Warning,
            reason: "MissingReferrers".into(),
            note: diff::bounded_note(format!(
                "ReferrerPolicy {name}: image(s) missing required referrers: {}",
                new_lines.join("; ")
            )),
        };
        ctx.publish(&ev, "Evaluate", &pod_ref(p), Some(reference.clone()))
            .await;
        published += 1;
        still_warned.extend(pairs);
    }
    memory.warned = still_warned;
    ctx.memory
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name.clone(), memory);

    // Registry trouble: look again sooner (per-object backoff), bounded by recheckInterval.
    let transient = evaluation
        .unknown
        .iter()
        .any(|u| !PERMANENT_UNKNOWN.contains(&u.reason.as_str()));
    let key = format!("{KIND}/{name}");
    Ok(if transient {
        Action::requeue(ctx.unknown_backoff.fail(&key).min(recheck))
    } else {
        ctx.unknown_backoff.reset(&key);
        Action::requeue(recheck)
    })
}

fn write_needed(
    previous: Option<&ReferrerPolicyStatus>,
    new: &ReferrerPolicyStatus,
    now: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time,
    interval: Duration,
) -> bool {
    diff::policy_status_needs_write(previous, new, now, interval)
}

/// What is known before this replica's first evaluation: the stored violations, and
/// the pods that run them — warned by the replica that wrote them, so a restart or a
/// failover does not warn them again.
fn baseline(previous: Option<&ReferrerPolicyStatus>, pods: &[&Arc<PodEntry>]) -> PolicyMemory {
    let non_compliant: BTreeMap<ImageId, Vec<String>> = previous
        .map(|s| {
            s.violations
                .iter()
                .map(|v| ((v.image.clone(), v.digest.clone()), v.missing.clone()))
                .collect()
        })
        .unwrap_or_default();
    let warned = pods
        .iter()
        .flat_map(|p| {
            let key = p.key();
            pod_images(p)
                .into_iter()
                .filter(|id| non_compliant.contains_key(id))
                .map(move |id| (key.clone(), id.0, id.1))
        })
        .collect();
    PolicyMemory {
        non_compliant,
        warned,
    }
}

/// Transient failures: per-object jittered, capped backoff.
pub fn error_policy(obj: Arc<ReferrerPolicy>, err: &Error, ctx: Arc<Context>) -> Action {
    let name = obj.name_any();
    warn!(kind = KIND, name = %name, error = %err, "reconcile failed");
    ctx.metrics.failure(KIND, err.metric_label());
    Action::requeue(ctx.backoff.fail(&format!("{KIND}/{name}")))
}
