//! The controller process: watches feeding the stores, the two kube-runtime Controllers (one per
//! kind) and the tasks between them, started by [`run`] with the [`RunOptions`] of the CLI.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, ListParams};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, predicates, watcher};
use kube::{Client, Resource};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use super::{Context, Error, ReconcileSettings, http, leader, policy, profile};
use crate::crd::{ReferrerPolicy, RegistryProfile};

/// Options of [`run`]: the process (endpoints, Lease, concurrency) and what reconcilers read.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Address of `/healthz`, `/readyz`, `/metrics`.
    pub listen_addr: std::net::SocketAddr,
    /// Elect a leader through a Lease (false: this replica always writes).
    pub leader_election: bool,
    /// Name of the Lease.
    pub lease_name: String,
    /// Namespace of the Lease.
    pub lease_namespace: String,
    /// Identity in the Lease and `reportingInstance` of Events (the pod name).
    pub identity: String,
    /// Concurrent reconciles per kind (0: unlimited).
    pub concurrency: u16,
    /// What reconcilers read (pull secrets, insecure registries, reports).
    pub settings: ReconcileSettings,
}

/// Checks both CRDs are served; a 404 is [`Error::CrdMissing`].
pub async fn check_crds(client: &Client) -> Result<(), Error> {
    let lp = ListParams::default().limit(1);
    let missing = |e: kube::Error, crd: &str| match &e {
        kube::Error::Api(s) if s.code == 404 => Error::CrdMissing(crd.to_string()),
        _ => Error::Kube(e),
    };
    Api::<RegistryProfile>::all(client.clone())
        .list_metadata(&lp)
        .await
        .map_err(|e| missing(e, "registryprofiles.refwarden.dev"))?;
    Api::<ReferrerPolicy>::all(client.clone())
        .list_metadata(&lp)
        .await
        .map_err(|e| missing(e, "referrerpolicies.refwarden.dev"))?;
    Ok(())
}

async fn run_pod_watcher(ctx: Arc<Context>) {
    let api: Api<Pod> = Api::all(ctx.client.clone());
    // Finished pods run nothing: leave them out of the store.
    let cfg = watcher::Config::default()
        .fields("status.phase!=Succeeded,status.phase!=Failed")
        .any_semantic();
    let mut stream = watcher(api, cfg).default_backoff().boxed();
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(ev) => {
                if let Some(change) = ctx.pods.apply_event(&ev) {
                    ctx.on_pod_change(&change);
                }
            }
            Err(e) => warn!(error = %e, "pod watch failed (retrying with backoff)"),
        }
    }
}

/// How long pod changes are gathered before the policies they concern are evaluated: a
/// throttle, not a debounce (a steady stream of pod changes cannot postpone an evaluation).
pub const POD_TRIGGER_WINDOW: Duration = Duration::from_millis(200);

/// Flushes the policies marked by pod changes once per [`POD_TRIGGER_WINDOW`].
async fn run_pod_triggers(ctx: Arc<Context>) {
    loop {
        ctx.pod_triggered.notified().await;
        tokio::time::sleep(POD_TRIGGER_WINDOW).await;
        ctx.flush_pod_triggers();
    }
}

/// Forwards the registries whose referrers answers discovery saw change to their profiles.
async fn run_answer_changes(ctx: Arc<Context>) {
    let mut rx = ctx.discoverer.subscribe_changes();
    while rx.changed().await.is_ok() {
        let changed = ctx.discoverer.take_changed();
        if !changed.is_empty() {
            ctx.on_answer_changes(&changed);
        }
    }
}

async fn run_namespace_watcher(ctx: Arc<Context>) {
    let api: Api<kube::core::PartialObjectMeta<Namespace>> = Api::all(ctx.client.clone());
    let mut stream = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .boxed();
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(ev) => {
                if ctx.namespaces.apply_event(&ev) {
                    ctx.all_policies.send_modify(|n| *n += 1);
                }
            }
            Err(e) => warn!(error = %e, "namespace watch failed (retrying with backoff)"),
        }
    }
}

/// One kind's objects as its Controller takes them: the reflector fills `writer`'s store and hands
/// every event to `on_event` (deletes, re-lists, standbys' gauges); reconciles follow spec
/// changes (generation) only.
fn watched<K>(
    api: Api<K>,
    writer: reflector::store::Writer<K>,
    on_event: impl Fn(&watcher::Event<K>) + Send + 'static,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    reflector::reflector(
        writer,
        watcher(api, watcher::Config::default().any_semantic()).default_backoff(),
    )
    .inspect(move |ev| {
        if let Ok(ev) = ev {
            on_event(ev);
        }
    })
    .applied_objects()
    .predicate_filter(predicates::generation, Default::default())
}

/// A Controller over `objects` that also reconciles everything when `all` is bumped and one
/// object when it is sent on `one`; stops on SIGTERM / Ctrl-C.
fn controller<K>(
    objects: impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    reader: Store<K>,
    config: kube::runtime::Config,
    all: tokio::sync::watch::Receiver<u64>,
    one: tokio::sync::mpsc::Receiver<ObjectRef<K>>,
) -> Controller<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    Controller::for_stream(objects, reader)
        .with_config(config)
        .reconcile_all_on(tokio_stream::wrappers::WatchStream::from_changes(all).map(|_| ()))
        .reconcile_on(tokio_stream::wrappers::ReceiverStream::new(one))
        .shutdown_on_signal()
}

/// The receiver kept in `slot` for the one Controller that reads it.
fn take_receiver<T>(slot: &Mutex<Option<T>>) -> Result<T, Error> {
    slot.lock()
        .take()
        .ok_or_else(|| Error::Setup("controller started twice".into()))
}

/// Logs a failed reconcile of `kind` (at debug: its `error_policy` has counted and requeued it).
fn log_failure<T, E: std::fmt::Display>(
    kind: &'static str,
) -> impl FnMut(Result<T, E>) -> std::future::Ready<()> {
    move |r| {
        if let Err(e) = r {
            tracing::debug!(error = %e, "{kind} reconcile");
        }
        std::future::ready(())
    }
}

/// Runs the controller until SIGTERM / Ctrl-C.
pub async fn run(opts: RunOptions) -> Result<(), Error> {
    let client = Client::try_default()
        .await
        .map_err(|e| Error::Setup(format!("cannot create a Kubernetes client: {e}")))?;
    check_crds(&client).await?;

    let (policy_reader, policy_writer) = reflector::store::<ReferrerPolicy>();
    let (profile_reader, profile_writer) = reflector::store::<RegistryProfile>();
    let settings = ReconcileSettings {
        instance: Some(opts.identity.clone()),
        ..opts.settings
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        settings,
        policy_reader.clone(),
        profile_reader.clone(),
    ));

    let server = tokio::spawn(http::serve(opts.listen_addr, ctx.clone()));
    tokio::spawn(run_pod_watcher(ctx.clone()));
    tokio::spawn(run_pod_triggers(ctx.clone()));
    tokio::spawn(run_namespace_watcher(ctx.clone()));
    tokio::spawn(run_answer_changes(ctx.clone()));
    if opts.leader_election {
        leader::spawn(
            client.clone(),
            &opts.lease_name,
            &opts.lease_namespace,
            &opts.identity,
            ctx.clone(),
        )
        .await?;
    } else {
        ctx.set_leader(true);
    }

    // No debounce: kube-runtime's resets its timer on every trigger, so steady pod churn would
    // starve a policy. Pod changes are throttled by `run_pod_triggers`; a reconcile asked for
    // while one runs is run once after it.
    let mut config = kube::runtime::Config::default();
    if opts.concurrency > 0 {
        config = config.concurrency(opts.concurrency);
    }

    let on_profile = ctx.clone();
    let profile_controller = controller(
        watched(Api::all(client.clone()), profile_writer, move |ev| {
            on_profile.on_profile_event(ev)
        }),
        profile_reader,
        config.clone(),
        ctx.all_profiles.subscribe(),
        take_receiver(&ctx.profile_rx)?,
    )
    .run(profile::reconcile, profile::error_policy, ctx.clone())
    .for_each(log_failure("registryprofile"));

    let on_policy = ctx.clone();
    let policy_controller = controller(
        watched(Api::all(client.clone()), policy_writer, move |ev| {
            on_policy.on_policy_event(ev)
        }),
        policy_reader,
        config,
        ctx.all_policies.subscribe(),
        take_receiver(&ctx.policy_rx)?,
    )
    .run(policy::reconcile, policy::error_policy, ctx.clone())
    .for_each(log_failure("referrerpolicy"));

    info!("controller started");
    tokio::join!(profile_controller, policy_controller);
    server.abort();
    if ctx.is_leader() {
        info!("shutting down (the Lease is released when the elector stops)");
    }
    Ok(())
}
