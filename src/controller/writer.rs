//! The controller's one writer to the Kubernetes API: status applies (server-side apply, field
//! manager `refwarden`), OpenReports objects (`--reports=openreports`, the same apply) and
//! Events (`events.k8s.io/v1`), only while this replica holds the leader Lease, each call bounded
//! by a timeout and counted in `refwarden_api_writes_total`.
//!
//! Events: a repeat of the same Event (same object, reason, action and **note**) within the
//! series window updates that Event's `series`; an Event whose note changed is a new Event, so
//! `kubectl events` always shows what is wrong now (kube-runtime's `Recorder` keys its series
//! without the note and would keep the first one).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as KubeEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Client, Resource};

use super::diff::{EventSeverity, PlannedEvent};
use super::metrics::Metrics;
use super::{Error, FIELD_MANAGER};

/// How long a repeated Event extends the same series (kube-runtime's window).
pub const SERIES_WINDOW: SignedDuration = SignedDuration::from_mins(6);
/// Longest a single API write may take.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Series remembered at most (the oldest half is dropped beyond it).
const MAX_SERIES: usize = 10_000;

/// What identifies an Event for series: everything a reader compares, the note included.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct EventKey {
    warning: bool,
    reason: String,
    action: String,
    note: String,
    regarding: (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ),
    related: Option<(Option<String>, Option<String>, Option<String>)>,
}

#[derive(Clone, Debug)]
struct Series {
    name: String,
    count: i32,
    last: Timestamp,
}

/// Whether a write happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// Sent and accepted.
    Yes,
    /// Not sent: this replica does not hold the Lease.
    NotLeader,
}

/// See the module documentation.
pub struct Writer {
    client: Client,
    leader: Arc<AtomicBool>,
    controller: String,
    instance: String,
    metrics: Arc<Metrics>,
    series: Mutex<HashMap<EventKey, Series>>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("controller", &self.controller)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

fn object_ref_key(
    r: &ObjectReference,
) -> (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    (
        r.kind.clone(),
        r.namespace.clone(),
        r.name.clone(),
        r.uid.clone(),
    )
}

impl Writer {
    /// A writer for `client`, writing only while `leader` is set; Events report
    /// `controller` / `instance`.
    pub fn new(
        client: Client,
        leader: Arc<AtomicBool>,
        controller: &str,
        instance: Option<String>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            client,
            leader,
            controller: controller.to_string(),
            instance: instance.unwrap_or_else(|| controller.to_string()),
            metrics,
            series: Mutex::new(HashMap::new()),
        }
    }

    fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Acquire)
    }

    /// Forgets the Event series (a new leader starts its own; a standby never writes).
    pub fn reset(&self) {
        self.series.lock().clear();
    }

    /// Applies `status` to the status subresource of `obj` with server-side apply.
    pub async fn apply_status<K>(
        &self,
        kind: &str,
        obj: &K,
        status: &impl serde::Serialize,
    ) -> Result<Written, Error>
    where
        K: Resource<DynamicType = (), Scope = kube::core::ClusterResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
    {
        if !self.is_leader() {
            self.metrics.write(kind, "status", "not_leader");
            return Ok(Written::NotLeader);
        }
        let name = obj.meta().name.clone().ok_or(Error::MissingName)?;
        let api: Api<K> = Api::all(self.client.clone());
        let patch = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": status,
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let patch = Patch::Apply(&patch);
        let call = api.patch_status(&name, &params, &patch);
        self.timed_write(kind, "status", call, format!("status of {name}"))
            .await
    }

    /// Applies a whole object (an OpenReports `Report` / `ClusterReport`) with server-side apply,
    /// field manager `refwarden`, forced; `kind` labels the write metric (`report`,
    /// `clusterreport`).
    pub async fn apply_object(
        &self,
        kind: &str,
        api: &Api<DynamicObject>,
        name: &str,
        obj: &serde_json::Value,
    ) -> Result<Written, Error> {
        if !self.is_leader() {
            self.metrics.write(kind, "apply", "not_leader");
            return Ok(Written::NotLeader);
        }
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let patch = Patch::Apply(obj);
        let call = api.patch(name, &params, &patch);
        self.timed_write(kind, "apply", call, format!("{kind} {name}"))
            .await
    }

    /// Deletes an object this controller wrote (a 404 is success: it is gone).
    pub async fn delete_object(
        &self,
        kind: &str,
        api: &Api<DynamicObject>,
        name: &str,
    ) -> Result<Written, Error> {
        if !self.is_leader() {
            self.metrics.write(kind, "delete", "not_leader");
            return Ok(Written::NotLeader);
        }
        let params = DeleteParams::default();
        let call = async {
            match api.delete(name, &params).await {
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                r => r.map(drop),
            }
        };
        self.timed_write(kind, "delete", call, format!("deleting {kind} {name}"))
            .await
    }

    /// Awaits one API write for at most [`WRITE_TIMEOUT`] and counts how it went under
    /// `kind` / `op`; `what` names the write in the timeout error.
    async fn timed_write<T>(
        &self,
        kind: &str,
        op: &str,
        call: impl Future<Output = Result<T, kube::Error>>,
        what: String,
    ) -> Result<Written, Error> {
        match tokio::time::timeout(WRITE_TIMEOUT, call).await {
            Ok(Ok(_)) => {
                self.metrics.write(kind, op, "ok");
                Ok(Written::Yes)
            }
            Ok(Err(e)) => {
                self.metrics.write(kind, op, "error");
                Err(Error::Kube(e))
            }
            Err(_) => {
                self.metrics.write(kind, op, "timeout");
                Err(Error::Timeout(what))
            }
        }
    }

    /// Publishes an Event about `regarding` (a failure is logged, never fatal: status is the
    /// source of truth).
    pub async fn publish(
        &self,
        ev: &PlannedEvent,
        action: &str,
        regarding: &ObjectReference,
        related: Option<ObjectReference>,
    ) -> Written {
        let kind = regarding
            .kind
            .as_deref()
            .unwrap_or("object")
            .to_ascii_lowercase();
        if !self.is_leader() {
            self.metrics.write(&kind, "event", "not_leader");
            return Written::NotLeader;
        }
        let key = EventKey {
            warning: ev.severity == EventSeverity::Warning,
            reason: ev.reason.clone(),
            action: action.to_string(),
            note: ev.note.clone(),
            regarding: object_ref_key(regarding),
            related: related
                .as_ref()
                .map(|r| (r.kind.clone(), r.namespace.clone(), r.name.clone())),
        };
        let now = Timestamp::now();
        let repeat = {
            let mut series = self.series.lock();
            series.retain(|_, s| s.last + SERIES_WINDOW > now);
            if series.len() > MAX_SERIES {
                series.clear();
            }
            series.get(&key).cloned()
        };
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let api: Api<KubeEvent> = Api::namespaced(self.client.clone(), &namespace);
        let result = match &repeat {
            Some(s) => {
                let patch = serde_json::json!({
                    "series": EventSeries {
                        count: s.count + 1,
                        last_observed_time: MicroTime(now),
                    }
                });
                let params = PatchParams::default();
                let patch = Patch::Merge(&patch);
                let call = api.patch(&s.name, &params, &patch);
                tokio::time::timeout(WRITE_TIMEOUT, call)
                    .await
                    .map(|r| r.map(|_| (s.name.clone(), s.count + 1)))
            }
            None => {
                let name = format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or(&self.controller),
                    now.as_nanosecond()
                );
                let event = KubeEvent {
                    action: Some(action.to_string()),
                    reason: Some(ev.reason.clone()),
                    note: Some(ev.note.clone()),
                    event_time: Some(MicroTime(now)),
                    regarding: Some(regarding.clone()),
                    related,
                    reporting_controller: Some(self.controller.clone()),
                    reporting_instance: Some(self.instance.clone()),
                    type_: Some(
                        match ev.severity {
                            EventSeverity::Normal => "Normal",
                            EventSeverity::Warning => "Warning",
                        }
                        .to_string(),
                    ),
                    metadata: ObjectMeta {
                        name: Some(name.clone()),
                        namespace: Some(namespace.clone()),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                let params = PostParams::default();
                let call = api.create(&params, &event);
                tokio::time::timeout(WRITE_TIMEOUT, call)
                    .await
                    .map(|r| r.map(|_| (name, 1)))
            }
        };
        match result {
            Ok(Ok((name, count))) => {
                self.metrics.write(&kind, "event", "ok");
                self.series.lock().insert(
                    key,
                    Series {
                        name,
                        count,
                        last: now,
                    },
                );
            }
            Ok(Err(e)) => {
                self.metrics.write(&kind, "event", "error");
                tracing::warn!(reason = %ev.reason, error = %e, "cannot publish Event");
            }
            Err(_) => {
                self.metrics.write(&kind, "event", "timeout");
                tracing::warn!(reason = %ev.reason, "publishing an Event timed out");
            }
        }
        Written::Yes
    }
}
