//! `refwarden controller`: kube-runtime Controllers for RegistryProfile and
//! ReferrerPolicy in one process (the controller-rs pattern: a [`Context`],
//! reconcile functions returning `Result<Action, Error>`, an `error_policy`).
//!
//! - [`profile`]: probes registries, writes RegistryProfile status, keeps the
//!   registry directory policies discover through.
//! - [`policy`]: evaluates ReferrerPolicies with [`crate::policy::evaluate_policy`]
//!   over the pod store, writes status, publishes Events.
//! - [`stores`]: pods (only `PodInfo`), namespace labels.
//! - [`index`]: per-object state (Event memory, compiled specs, last statuses
//!   written), fed by the watches' applies, deletes and re-lists.
//! - [`writer`]: the one writer of status, reports and Events, behind the leader gate.
//! - [`openreports`]: `--reports=openreports`: OpenReports `Report` / `ClusterReport` objects.
//! - [`leader`]: Lease-based leader election; every replica watches, only the
//!   leader writes status and Events.
//! - [`http`]: `/healthz`, `/readyz`, `/metrics`.
//! - [`runtime`]: the process: watches, the two Controllers, [`run`].

pub mod backoff;
pub mod diff;
pub mod http;
pub mod index;
pub mod leader;
pub mod lifecycle;
pub mod metrics;
pub mod openreports;
pub mod policy;
pub mod profile;
pub mod runtime;
pub mod stores;
pub mod writer;

use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use tracing::{Instrument, info, warn};

use crate::crd::{ReferrerPolicy, RegistryProfile};
use crate::discovery::{Discoverer, DiscovererConfig};
use crate::policy::evaluate::selects_pod;
use crate::policy::{CompiledPolicy, Verifier};
use crate::registry::{
    DockerConfig, ImplicitAccess, PlainHttp, RegistryProfileClients, RequestCounters,
};
use backoff::Backoff;
use index::Index;
use metrics::Metrics;
use stores::{NamespaceStore, PodChange, PodStore};
use writer::Writer;

pub use runtime::{POD_TRIGGER_WINDOW, RunOptions, check_crds, run};

/// Field manager of every status the controller applies.
pub const FIELD_MANAGER: &str = "refwarden";
/// `reportingController` of Events.
pub const REPORTING_CONTROLLER: &str = "refwarden.dev/controller";

/// Errors of a reconcile. Registry trouble is never an error here: it makes
/// images Unknown or capabilities Unknown.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A status could not be serialised.
    #[error("serialising status: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The object has no name (cannot happen for stored objects).
    #[error("object has no metadata.name")]
    MissingName,
    /// The CRDs are not installed.
    #[error(
        "the {0} CRD is not installed (the API answered 404): install it with `refwarden crds | kubectl apply -f -` (or the files in crds/)"
    )]
    CrdMissing(String),
    /// Setting up the controller failed.
    #[error("{0}")]
    Setup(String),
    /// A Kubernetes API write did not answer in time.
    #[error("writing {0} timed out")]
    Timeout(String),
}

impl Error {
    /// A low-cardinality label for the `reconcile_errors` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Serialize(_) => "serialize",
            Error::MissingName => "missing_name",
            Error::CrdMissing(_) => "crd_missing",
            Error::Setup(_) => "setup",
            Error::Timeout(_) => "timeout",
        }
    }
}

/// What reconcilers read from the command line (the rest of [`RunOptions`] is the process's).
#[derive(Clone, Debug)]
pub struct ReconcileSettings {
    /// Also use pods' `imagePullSecrets` for images without a RegistryProfile secret.
    pub use_image_pull_secrets: bool,
    /// Events published per reconcile at most (pod Warnings beyond it wait for the next one).
    pub max_events_per_reconcile: usize,
    /// `reportingInstance` of Events (the pod name).
    pub instance: Option<String>,
    /// Registries without a RegistryProfile reached over plain HTTP (`--insecure-registry`).
    pub insecure_registries: Vec<String>,
    /// Reports written beside the status (`--reports`).
    pub reports: openreports::ReportsMode,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        Self {
            use_image_pull_secrets: false,
            max_events_per_reconcile: 50,
            instance: None,
            insecure_registries: Vec::new(),
            reports: openreports::ReportsMode::None,
        }
    }
}

/// What the policy reconciler remembers between evaluations (for Event diffs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PolicyMemory {
    /// Non-compliant images of the last evaluation, with the missing requirement names.
    pub non_compliant: BTreeMap<diff::ImageId, Vec<String>>,
    /// (pod key, image, digest) already warned about, with the missing list they were warned of.
    pub warned: BTreeMap<(String, String, String), Vec<String>>,
}

/// Everything reconcilers share.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// The one writer of status, reports and Events (leader-gated).
    pub writer: Arc<Writer>,
    /// Per-object state (Event memory, compiled specs, statuses written).
    pub index: Index,
    /// The discovery cache shared by every policy.
    pub discoverer: Discoverer,
    /// The verification verdict cache shared by every policy.
    pub verifier: Arc<Verifier>,
    /// Request counters shared by every registry client.
    pub counters: Arc<RequestCounters>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Pods (only `PodInfo`).
    pub pods: PodStore,
    /// Namespace labels.
    pub namespaces: NamespaceStore,
    /// ReferrerPolicies (reflector).
    pub policies: Store<ReferrerPolicy>,
    /// RegistryProfiles (reflector).
    pub profile_store: Store<RegistryProfile>,
    /// The registry directory built from RegistryProfiles.
    pub profiles: RegistryProfileClients,
    /// Whether this replica holds the Lease (writes status and Events).
    pub leader: Arc<AtomicBool>,
    /// Per-object backoff for transient errors.
    pub backoff: Backoff,
    /// Per-policy backoff while images are Unknown because of registry errors.
    pub unknown_backoff: Backoff,
    /// Docker configs of the imagePullSecrets read for `--use-image-pull-secrets`, by
    /// (namespace, name); `None`: not found or not a dockerconfigjson. Kept for
    /// [`PULL_SECRET_TTL`] so a policy's evaluations do not GET them each time. (Never printed:
    /// `Context`'s Debug leaves it out.)
    pub pull_secrets: moka::future::Cache<(String, String), Option<Arc<DockerConfig>>>,
    /// The ConfigMaps / Secrets policies' `verify` blocks name, as found, kept for
    /// [`PULL_SECRET_TTL`] so evaluations do not GET them each time (an absent one is not kept:
    /// its creation is seen at the next retry). Never printed.
    pub trust_objects: moka::future::Cache<
        crate::policy::trust::ObjectName,
        Arc<crate::policy::trust::ObjectData>,
    >,
    /// What reconcilers read from the command line.
    pub settings: ReconcileSettings,
    /// The clock ([`now`] unless replaced by [`Context::with_clock`]).
    clock: Arc<dyn Fn() -> Time + Send + Sync>,
    /// Re-evaluates every policy when bumped (directory or leadership changes).
    pub all_policies: tokio::sync::watch::Sender<u64>,
    /// Re-reconciles every profile when bumped (leadership changes).
    pub all_profiles: tokio::sync::watch::Sender<u64>,
    /// Re-evaluates one policy.
    pub policy_tx: tokio::sync::mpsc::Sender<ObjectRef<ReferrerPolicy>>,
    policy_rx: Mutex<Option<tokio::sync::mpsc::Receiver<ObjectRef<ReferrerPolicy>>>>,
    /// Re-reconciles one profile.
    pub profile_tx: tokio::sync::mpsc::Sender<ObjectRef<RegistryProfile>>,
    profile_rx: Mutex<Option<tokio::sync::mpsc::Receiver<ObjectRef<RegistryProfile>>>>,
    /// Probes asked for by discovery before their interval.
    pub probe_requests: profile::ProbeRequests,
    /// Policies pod changes concern, sent on the next flush.
    pod_triggers: Mutex<std::collections::HashSet<ObjectRef<ReferrerPolicy>>>,
    pod_triggered: tokio::sync::Notify,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("pods", &self.pods.len())
            .field("leader", &self.leader.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// `Time` now.
pub fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// How long an imagePullSecret read for `--use-image-pull-secrets` is reused (a changed or
/// new Secret is seen within this time).
pub const PULL_SECRET_TTL: Duration = Duration::from_secs(60);

impl Context {
    /// A context over the given reflector stores. Not leader until told.
    pub fn new(
        client: Client,
        settings: ReconcileSettings,
        policies: Store<ReferrerPolicy>,
        profile_store: Store<RegistryProfile>,
    ) -> Self {
        let counters = Arc::new(RequestCounters::default());
        let discoverer = Discoverer::new(DiscovererConfig::default());
        let verifier = Arc::new(Verifier::new());
        let metrics = Arc::new(Metrics::new(
            counters.clone(),
            discoverer.clone(),
            verifier.clone(),
        ));
        let leader = Arc::new(AtomicBool::new(false));
        let (policy_tx, policy_rx) = tokio::sync::mpsc::channel(4096);
        let (profile_tx, profile_rx) = tokio::sync::mpsc::channel(256);
        Self {
            writer: Arc::new(Writer::new(
                client.clone(),
                leader.clone(),
                REPORTING_CONTROLLER,
                settings.instance.clone(),
                metrics.clone(),
            )),
            index: Index::default(),
            client,
            discoverer,
            verifier,
            profiles: RegistryProfileClients::new(ImplicitAccess {
                plain_http: if settings.insecure_registries.is_empty() {
                    PlainHttp::Never
                } else {
                    PlainHttp::Hosts(settings.insecure_registries.iter().cloned().collect())
                },
                counters: Some(counters.clone()),
                ..ImplicitAccess::default()
            }),
            counters,
            metrics,
            pods: PodStore::new(settings.use_image_pull_secrets),
            namespaces: NamespaceStore::default(),
            policies,
            profile_store,
            leader,
            backoff: Backoff::new(Duration::from_secs(5), Duration::from_secs(300)),
            unknown_backoff: Backoff::new(Duration::from_secs(60), Duration::from_secs(600)),
            pull_secrets: moka::future::Cache::builder()
                .max_capacity(1_000)
                .time_to_live(PULL_SECRET_TTL)
                .build(),
            trust_objects: moka::future::Cache::builder()
                .max_capacity(1_000)
                .time_to_live(PULL_SECRET_TTL)
                .build(),
            settings,
            clock: Arc::new(now),
            all_policies: tokio::sync::watch::channel(0).0,
            all_profiles: tokio::sync::watch::channel(0).0,
            policy_tx,
            policy_rx: Mutex::new(Some(policy_rx)),
            profile_tx,
            profile_rx: Mutex::new(Some(profile_rx)),
            probe_requests: profile::ProbeRequests::default(),
            pod_triggers: Mutex::new(std::collections::HashSet::new()),
            pod_triggered: tokio::sync::Notify::new(),
        }
    }

    /// Runs one reconcile of `kind` `name` in its span and timed; success resets the object's
    /// backoff (failures go to the kind's `error_policy`).
    pub async fn measured_reconcile(
        &self,
        kind: &'static str,
        name: &str,
        work: impl std::future::Future<Output = Result<Action, Error>>,
    ) -> Result<Action, Error> {
        let span = tracing::info_span!("reconcile", kind, name = %name);
        async {
            let _timer = self.metrics.measure(kind);
            let action = work.await?;
            self.backoff.reset(&format!("{kind}/{name}"));
            Ok(action)
        }
        .instrument(span)
        .await
    }

    /// A failed reconcile of `kind` `name` (the kinds' `error_policy`): logged, counted by its
    /// error's label, requeued after the object's jittered, capped backoff.
    pub fn failed_reconcile(&self, kind: &'static str, name: &str, err: &Error) -> Action {
        warn!(kind, name = %name, error = %err, "reconcile failed");
        self.metrics.failure(kind, err.metric_label());
        Action::requeue(self.backoff.fail(&format!("{kind}/{name}")))
    }

    /// Discovery saw these registries' referrers answers change: probe their profiles now.
    pub fn on_answer_changes(&self, registries: &[String]) {
        for registry in registries {
            for name in self.profiles.for_registry(registry) {
                self.probe_requests.request(&name);
                let r = ObjectRef::<RegistryProfile>::new(&name);
                if self.profile_tx.try_send(r).is_err() {
                    self.all_profiles.send_modify(|n| *n += 1);
                }
            }
        }
    }

    /// The same context reading time from `clock` instead of the system clock: a fixed clock
    /// makes the timestamps of statuses and Events reproducible.
    pub fn with_clock(mut self, clock: impl Fn() -> Time + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Now, by the context's clock.
    pub fn now(&self) -> Time {
        (self.clock)()
    }

    /// Whether this replica may write.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    /// Sets leadership (the elector calls this); re-reconciles everything when gained. What
    /// this replica remembers writing is forgotten either way: another replica may have
    /// written since.
    pub fn set_leader(&self, leader: bool) {
        let was = self.leader.swap(leader, Ordering::AcqRel);
        self.metrics.leader.set(i64::from(leader));
        if leader != was {
            self.index.forget_written();
            self.writer.reset();
        }
        if leader && !was {
            info!("became leader: reconciling every object");
            self.all_profiles.send_modify(|n| *n += 1);
            self.all_policies.send_modify(|n| *n += 1);
        } else if !leader && was {
            warn!("lost leadership: no more status or Event writes");
        }
    }

    /// The compiled spec of a policy, cached per generation; `None` when invalid.
    pub fn compiled_policy(&self, p: &ReferrerPolicy) -> Option<Arc<CompiledPolicy>> {
        self.index.compiled(p)
    }

    /// Forgets everything about a deleted ReferrerPolicy: its index state, gauges and backoffs;
    /// with reports on, the leader deletes its reports.
    pub fn forget_policy(&self, name: &str) {
        if self.settings.reports != openreports::ReportsMode::None
            && self.is_leader()
            && let Ok(rt) = tokio::runtime::Handle::try_current()
        {
            rt.spawn(openreports::delete_all(
                self.client.clone(),
                self.writer.clone(),
                name.to_string(),
            ));
        }
        self.index.delete_policy(name);
        self.metrics.forget_policy(name);
        self.backoff.reset(&format!("{}/{name}", policy::KIND));
        self.unknown_backoff
            .reset(&format!("{}/{name}", policy::KIND));
    }

    /// Forgets everything about a deleted RegistryProfile: its index state, gauges, backoff,
    /// probe requests, and its directory slot (client and credentials); policies are
    /// re-evaluated without it.
    pub fn forget_profile(&self, name: &str) {
        self.index.delete_profile(name);
        self.metrics.forget_profile(name);
        self.backoff.reset(&format!("{}/{name}", profile::KIND));
        self.probe_requests.forget(name);
        if let Some(registry) = self.profiles.remove(name) {
            // Verdicts reached with its credentials must not outlive it.
            self.discoverer.invalidate_registry(&registry);
            self.all_policies.send_modify(|n| *n += 1);
        }
    }

    /// A ReferrerPolicy watch event: a delete (or a re-list without the object) forgets it;
    /// on a replica that does not write, every applied object's gauges follow its stored status.
    pub fn on_policy_event(&self, ev: &watcher::Event<ReferrerPolicy>) {
        match ev {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                if !self.is_leader()
                    && let Some(s) = &p.status
                {
                    self.metrics.set_policy_from_status(&p.name_any(), s);
                }
            }
            watcher::Event::Delete(p) => self.forget_policy(&p.name_any()),
            watcher::Event::Init => {}
            watcher::Event::InitDone => {
                let existing: BTreeSet<String> =
                    self.policies.state().iter().map(|p| p.name_any()).collect();
                for gone in self.index.reset_policies(&existing) {
                    self.forget_policy(&gone);
                }
            }
        }
    }

    /// A RegistryProfile watch event (see [`Context::on_policy_event`]).
    pub fn on_profile_event(&self, ev: &watcher::Event<RegistryProfile>) {
        match ev {
            watcher::Event::Apply(p) | watcher::Event::InitApply(p) => {
                if !self.is_leader()
                    && let Some(s) = &p.status
                {
                    self.metrics.set_profile_from_status(&p.name_any(), s);
                }
            }
            watcher::Event::Delete(p) => self.forget_profile(&p.name_any()),
            watcher::Event::Init => {}
            watcher::Event::InitDone => {
                let existing: BTreeSet<String> = self
                    .profile_store
                    .state()
                    .iter()
                    .map(|p| p.name_any())
                    .collect();
                let known: BTreeSet<String> = self.profiles.names();
                for gone in self
                    .index
                    .reset_profiles(&existing)
                    .into_iter()
                    .chain(known.difference(&existing).cloned())
                {
                    self.forget_profile(&gone);
                }
            }
        }
    }

    /// Policies a pod change concerns: those selecting the old or the new pod.
    pub fn policies_for(&self, change: &PodChange) -> Vec<ObjectRef<ReferrerPolicy>> {
        let policies = self.policies.state();
        let PodChange::One(old, new) = change else {
            return policies
                .iter()
                .map(|p| ObjectRef::from_obj(p.as_ref()))
                .collect();
        };
        let ns = self.namespaces.snapshot();
        policies
            .iter()
            .filter(|p| {
                let Some(c) = self.compiled_policy(p) else {
                    return false;
                };
                [old, new]
                    .into_iter()
                    .flatten()
                    .any(|e| selects_pod(&c, &e.info, &ns))
            })
            .map(|p| ObjectRef::from_obj(p.as_ref()))
            .collect()
    }

    /// Re-evaluates the policies a pod change concerns: marks them for the next flush of
    /// [`runtime::run_pod_triggers`] (at most one evaluation per policy per [`POD_TRIGGER_WINDOW`],
    /// however many pods change, and never postponed by further changes).
    pub fn on_pod_change(&self, change: &PodChange) {
        if matches!(change, PodChange::All) {
            self.all_policies.send_modify(|n| *n += 1);
            return;
        }
        let refs = self.policies_for(change);
        if refs.is_empty() {
            return;
        }
        self.pod_triggers.lock().extend(refs);
        self.pod_triggered.notify_one();
    }

    /// Sends the policies marked by pod changes to the policy controller.
    pub fn flush_pod_triggers(&self) {
        let refs = std::mem::take(&mut *self.pod_triggers.lock());
        for r in refs {
            if self.policy_tx.try_send(r).is_err() {
                // Queue full: everything is re-evaluated instead (coalesced).
                self.all_policies.send_modify(|n| *n += 1);
                break;
            }
        }
    }

    /// Whether the stores policies read are loaded (pods, namespaces, profiles).
    pub fn synced(&self) -> bool {
        self.pods.is_ready() && self.namespaces.is_ready() && self.profiles_synced()
    }

    /// Whether every RegistryProfile in the store has been loaded into the directory.
    pub fn profiles_synced(&self) -> bool {
        let known = self.profiles.names();
        self.profile_store
            .state()
            .iter()
            .all(|p| known.contains(&p.name_any()))
    }
}
