//! Shared fixtures of the reconciler tests (`controller_reconcile`, `faults_controller`):
//! a recording mock of the Kubernetes API (tower-test, as controller-rs does), a test
//! `Context`, pods, policies, and a distribution registry seeded with referrers.

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
use refwarden::controller::{Context, ReconcileSettings};
use refwarden::crd::{DiscoveryMode, ReferrerPolicy, RegistryProfile};
use refwarden::registry::{RegistryClient, RegistryClientConfig};
use serde_json::{Value, json};

use crate::{DistributionOptions, DistributionRegistry, SeedAuth, Seeder, media};

/// 2026-01-01T00:00:00Z
pub const NOW: i64 = 1_767_225_600;

pub fn t(secs: i64) -> Time {
    Time(Timestamp::from_second(secs).expect("timestamp"))
}

pub fn ts(secs: i64) -> Value {
    serde_json::to_value(t(secs)).expect("time serialises")
}

/// One recorded API call.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: String,
    pub body: Value,
}

/// Answers every call like an API server would for our requests and records it.
pub struct ApiServer {
    calls: Arc<Mutex<Vec<Call>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("lock").clone()
    }
    pub fn take(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.lock().expect("lock"))
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn mock_client() -> (Client, ApiServer) {
    mock_client_with_secrets(Vec::new())
}

/// Like [`mock_client`], answering `GET` of the given Secrets (`(path, object)`).
pub fn mock_client_with_secrets(secrets: Vec<(String, Value)>) -> (Client, ApiServer) {
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
            let known = secrets
                .iter()
                .find(|(p, _)| *p == path)
                .map(|(_, v)| v.clone());
            let (status, answer) = if let (true, Some(secret)) = (method == "GET", known) {
                (StatusCode::OK, secret)
            } else if method == "GET" && path.contains("/secrets/") {
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

pub fn test_context(client: Client) -> Arc<Context> {
    let (policies, _) = reflector::store::<ReferrerPolicy>();
    let (profiles, _) = reflector::store::<RegistryProfile>();
    let ctx = Context::new(
        client,
        ReconcileSettings {
            instance: Some("refwarden-0".into()),
            ..ReconcileSettings::default()
        },
        policies,
        profiles,
    )
    .with_clock(|| t(NOW));
    ctx.pods.set_ready();
    ctx.namespaces.set_ready();
    ctx.set_leader(true);
    Arc::new(ctx)
}

pub fn fast_client(url: &str) -> RegistryClient {
    refwarden::registry::ensure_crypto_provider();
    let mut cfg = RegistryClientConfig::new(url, true).expect("config");
    cfg.retry.base_delay = Duration::from_millis(10);
    cfg.retry.max_retries = 1;
    cfg.timeout = Duration::from_secs(5);
    RegistryClient::new(cfg).expect("client")
}

pub fn pod(name: &str, app: &str, image: &str, uid: &str) -> PodEntry {
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

pub fn policy_obj(name: &str, app: &str, extra: Value) -> ReferrerPolicy {
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
pub struct Seeded {
    pub reg: DistributionRegistry,
    pub seeder: Seeder,
    pub signed: String,
    pub plain: String,
}

pub async fn seeded() -> crate::Result<Seeded> {
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

pub fn with_local_profile(ctx: &Context, reg: &DistributionRegistry) {
    ctx.profiles.set(
        "local",
        &reg.host(),
        "fingerprint",
        Ok((fast_client(&reg.url()), DiscoveryMode::Auto)),
        None,
    );
}
