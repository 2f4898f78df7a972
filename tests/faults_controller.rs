//! Controller restarts and tolerance of old statuses (tower-test mocked API,
//! real distribution 2.8 registry): a reconcile killed at any point and a
//! fresh controller process started afterwards converge to the status an
//! uninterrupted run writes, without publishing the same Events again; a
//! status written by a previous (or newer) version with unknown fields still
//! deserialises and is used as the previous status.
//!
//! The API-server mock and seeding are the ones of `controller_reconcile.rs`.

// The API-server mock is shared verbatim with controller_reconcile.rs.
#![allow(dead_code)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::client::Body;
use kube::runtime::reflector;
use refwarden::controller::stores::PodEntry;
use refwarden::controller::{Context, Settings, policy};
use refwarden::crd::{
    DiscoveryMode, ReferrerPolicy, ReferrerPolicyStatus, RegistryProfile, RegistryProfileStatus,
};
use refwarden::registry::{RegistryClient, RegistryClientConfig};
use serde_json::{Value, json};
use support::{DistributionOptions, DistributionRegistry, SeedAuth, Seeder, media};

type TestResult = support::Result<()>;

/// 2026-01-01T00:00:00Z
const NOW: i64 = 1_767_225_600;

fn t(secs: i64) -> Time {
    Time(Timestamp::from_second(secs).expect("timestamp"))
}

/// One recorded API call.
#[derive(Clone, Debug)]
struct Call {
    method: String,
    path: String,
    query: String,
    body: Value,
}

/// Answers every call like an API server would for our requests and records it.
struct ApiServer {
    calls: Arc<Mutex<Vec<Call>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("lock").clone()
    }
    fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().expect("lock"))
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn mock_client() -> (Client, ApiServer) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let rec = calls.clone();
    let task = tokio::spawn(async move {
        // Bounded: the test aborts the task when it drops the server.
        for _ in 0..10_000 {
            let Some((req, send)) = handle.next_request().await else {
                return;
            };
            let method = req.method().to_string();
            let path = req.uri().path().to_string();
            let query = req.uri().query().unwrap_or_default().to_string();
            let bytes = req.into_body().collect_bytes().await.unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            rec.lock().expect("lock").push(Call {
                method: method.clone(),
                path: path.clone(),
                query,
                body: body.clone(),
            });
            let (status, answer) = if method == "GET" && path.contains("/secrets/") {
                (
                    StatusCode::NOT_FOUND,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "reason": "NotFound", "code": 404, "message": "not found"}),
                )
            } else if method == "PATCH" && path.ends_with("/status") {
                let name = path.rsplit('/').nth(1).unwrap_or_default().to_string();
                let mut obj = body.clone();
                obj["metadata"] = json!({"name": name, "generation": 1, "resourceVersion": "2"});
                // Enough of a spec for either kind to deserialise.
                obj["spec"] = json!({"require": [], "registryUrl": "https://unused.example"});
                (StatusCode::OK, obj)
            } else if path.starts_with("/apis/events.k8s.io/v1/") {
                (StatusCode::CREATED, body)
            } else {
                (
                    StatusCode::NOT_FOUND,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "reason": "NotFound", "code": 404, "message": "unexpected call"}),
                )
            };
            let resp = Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(Body::from(serde_json::to_vec(&answer).unwrap_or_default()))
                .expect("response");
            send.send_response(resp);
        }
    });
    (Client::new(service, "default"), ApiServer { calls, task })
}

fn test_context(client: Client) -> Arc<Context> {
    let (policies, _) = reflector::store::<ReferrerPolicy>();
    let (profiles, _) = reflector::store::<RegistryProfile>();
    let mut ctx = Context::new(
        client,
        Settings {
            instance: Some("refwarden-0".into()),
            ..Settings::default()
        },
        policies,
        profiles,
    );
    ctx.clock = Arc::new(|| t(NOW));
    ctx.pods.set_ready();
    ctx.namespaces.set_ready();
    ctx.set_leader(true);
    Arc::new(ctx)
}

fn fast_client(url: &str) -> RegistryClient {
    refwarden::registry::ensure_crypto_provider();
    let mut cfg = RegistryClientConfig::new(url, true).expect("config");
    cfg.retry.base_delay = Duration::from_millis(10);
    cfg.retry.max_retries = 1;
    cfg.timeout = Duration::from_secs(5);
    RegistryClient::new(cfg).expect("client")
}

fn pod(name: &str, app: &str, image: &str, uid: &str) -> PodEntry {
    let p: Pod = serde_json::from_value(json!({
        "metadata": {
            "namespace": "shop", "name": name, "uid": uid,
            "labels": {"app": app, "pod-template-hash": "abc123"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": format!("{app}-abc123"), "uid": "rs", "controller": true}],
        },
        "spec": {"containers": [{"name": "main", "image": image}]},
        "status": {"containerStatuses": [{"name": "main", "image": image,
            "imageID": format!("docker-pullable://{image}"), "ready": true,
            "restartCount": 0}]},
    }))
    .expect("pod");
    PodEntry::from_pod(&p, false)
}

fn policy_obj(name: &str, app: &str, extra: Value) -> ReferrerPolicy {
    let mut spec = json!({
        "podSelector": {"matchLabels": {"app": app}},
        "require": [{"name": "signature", "preset": "signature"}],
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
        "metadata": {"name": name, "generation": 1, "uid": format!("uid-{name}")},
        "spec": spec,
    }))
    .expect("policy")
}

/// A distribution registry with `signed/app` (cosign signature tag + an SBOM in
/// the referrers tag-schema index) and `plain/app` (nothing).
struct Seeded {
    reg: DistributionRegistry,
    seeder: Seeder,
    signed: String,
    plain: String,
}

async fn seeded() -> support::Result<Seeded> {
    let reg = DistributionRegistry::start(DistributionOptions::default())?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    let signed = seeder.push_image("signed/app", "v1").await?;
    seeder
        .push_cosign_tag("signed/app", &signed.digest, "sig")
        .await?;
    let sbom = seeder
        .push_artifact(
            "signed/app",
            Some(&signed.subject()),
            media::SPDX_JSON,
            br#"{"spdxVersion":"SPDX-2.3"}"#,
            None,
        )
        .await?;
    seeder
        .push_referrers_tag_index("signed/app", &signed.digest, &[sbom.descriptor()])
        .await?;
    let plain = seeder.push_image("plain/app", "v1").await?;
    Ok(Seeded {
        reg,
        seeder,
        signed: signed.digest,
        plain: plain.digest,
    })
}

fn with_local_profile(ctx: &Context, reg: &DistributionRegistry) {
    ctx.profiles.set(
        "local",
        &reg.host(),
        "fingerprint",
        Ok((fast_client(&reg.url()), DiscoveryMode::Auto)),
        None,
    );
}

fn events(calls: &[Call]) -> Vec<(String, String, String)> {
    calls
        .iter()
        .filter(|c| c.method == "POST" && c.path.starts_with("/apis/events.k8s.io/"))
        .map(|c| {
            (
                c.body["reason"].as_str().unwrap_or_default().to_string(),
                c.body["regarding"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                c.body["note"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn last_status(calls: &[Call]) -> Option<Value> {
    calls
        .iter()
        .rev()
        .find(|c| c.method == "PATCH" && c.path.ends_with("/status"))
        .map(|c| c.body["status"].clone())
}

fn with_status(obj: &ReferrerPolicy, status: Option<&Value>) -> support::Result<ReferrerPolicy> {
    let mut o = obj.clone();
    o.status = match status {
        Some(s) => Some(serde_json::from_value(s.clone())?),
        None => None,
    };
    Ok(o)
}

type Event = (String, String, String);

/// The uninterrupted run's final status and events, then for each kill point
/// the final status and the events of the killed run plus the restarted one.
async fn restart_runs() -> support::Result<(Value, Vec<Event>, Vec<(u64, Value, Vec<Event>)>)> {
    let s = seeded().await?;
    let image = format!("{}/plain/app@{}", s.reg.host(), s.plain);
    let obj = policy_obj("plain", "shop", json!({}));

    // The uninterrupted run: the reference status and events.
    let (client, api) = mock_client();
    let ctx = test_context(client);
    with_local_profile(&ctx, &s.reg);
    ctx.pods
        .insert(pod("shop-abc123-x1", "shop", &image, "pod-uid-2"));
    policy::reconcile(Arc::new(obj.clone()), ctx.clone()).await?;
    let reference_calls = api.take();
    let reference = last_status(&reference_calls).ok_or("no status written")?;
    let reference_events = events(&reference_calls);
    assert!(
        !reference_events.is_empty(),
        "a non-compliant image is announced"
    );

    // Kill a reconcile (drop its future) at several points, starting from the
    // stored status the uninterrupted run left, then start a new process.
    let mut runs = Vec::new();
    for kill_after in [0u64, 1, 5, 20, 60, 150] {
        let stored = reference.clone();
        let (client, api) = mock_client();
        let killed = test_context(client);
        with_local_profile(&killed, &s.reg);
        killed
            .pods
            .insert(pod("shop-abc123-x1", "shop", &image, "pod-uid-2"));
        let o = with_status(&obj, Some(&stored))?;
        let _ = tokio::time::timeout(
            Duration::from_millis(kill_after),
            policy::reconcile(Arc::new(o), killed.clone()),
        )
        .await;
        drop(killed);
        let mut calls = api.take();
        let written = last_status(&calls).unwrap_or(stored);

        // The new process: fresh memory and caches, the status as stored.
        let (client, api) = mock_client();
        let ctx = test_context(client);
        with_local_profile(&ctx, &s.reg);
        ctx.pods
            .insert(pod("shop-abc123-x1", "shop", &image, "pod-uid-2"));
        let o = with_status(&obj, Some(&written))?;
        tokio::time::timeout(
            Duration::from_secs(30),
            policy::reconcile(Arc::new(o), ctx.clone()),
        )
        .await??;
        calls.extend(api.take());
        let final_status = last_status(&calls).unwrap_or(written);
        runs.push((kill_after, final_status, events(&calls)));
    }
    Ok((reference, reference_events, runs))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_reconcile_then_restarted_converges() -> TestResult {
    support::init_tracing();
    let (reference, reference_events, runs) = restart_runs().await?;
    for (kill_after, status, evs) in runs {
        assert_eq!(status, reference, "kill after {kill_after} ms: converges");
        // Policy-level events are diffed against the stored status: never again.
        for e in evs.iter().filter(|e| e.1 == "plain") {
            assert!(
                !reference_events.contains(e),
                "kill after {kill_after} ms: policy event published again: {e:?}"
            );
        }
    }
    Ok(())
}

/// After a restart the per-Pod `MissingReferrers` Warning is not published again:
/// `policy::baseline` seeds the warned (pod, image) pairs from the stored violations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_publishes_no_pod_warning_twice() -> TestResult {
    support::init_tracing();
    let (_, reference_events, runs) = restart_runs().await?;
    for (kill_after, _, evs) in runs {
        for e in &evs {
            assert!(
                !reference_events.contains(e),
                "kill after {kill_after} ms: event published again after the restart: {e:?}"
            );
        }
    }
    Ok(())
}

#[test]
fn statuses_with_unknown_fields_are_tolerated() -> TestResult {
    let policy_status = json!({
        "observedGeneration": 3,
        "conditions": [{"type": "Ready", "status": "True", "reason": "Evaluated",
            "message": "m", "lastTransitionTime": "2026-01-01T00:00:00Z",
            "observedGeneration": 3, "futureConditionField": 1}],
        "lastEvaluationTime": "2026-01-01T00:00:00Z",
        "summary": {"pods": 1, "images": 1, "compliant": 0, "nonCompliant": 1, "unknown": 0,
            "suppressed": 7},
        "violations": [{"image": "r/a", "digest": "sha256:00", "missing": ["signature"],
            "workloads": [], "severity": "high"}],
        "unknown": [],
        "removedInV2": {"anything": [1, 2, 3]},
        "evaluationDurationSeconds": 1.5,
    });
    let s: ReferrerPolicyStatus = serde_json::from_value(policy_status)?;
    assert_eq!(s.observed_generation, Some(3));
    assert_eq!(s.violations.len(), 1);
    assert_eq!(s.summary.non_compliant, 1);

    let obj = json!({
        "apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
        "metadata": {"name": "p", "generation": 3},
        "spec": {"require": [{"name": "s", "preset": "signature"}], "newSpecField": true},
        "status": {"observedGeneration": 3, "oldField": "x", "summary": {"pods": 0,
            "images": 0, "compliant": 0, "nonCompliant": 0, "unknown": 0}},
    });
    let p: ReferrerPolicy = serde_json::from_value(obj)?;
    assert!(p.status.is_some());

    let profile_status = json!({
        "observedGeneration": 2,
        "conditions": [],
        "legacyScore": 3,
        "capabilities": {"referrersApi": {"state": "Supported", "reason": "IndexReturned",
            "futureField": "x"}, "somethingNew": {"state": "Supported"}},
    });
    let ps: RegistryProfileStatus = serde_json::from_value(profile_status)?;
    assert_eq!(ps.observed_generation, Some(2));
    Ok(())
}
