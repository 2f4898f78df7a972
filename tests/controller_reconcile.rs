//! The reconcilers against kube's mocked API (tower-test, as controller-rs
//! does): every API call is recorded and answered, and the tests assert the
//! exact status patches and Events. Discovery and probes run the real engine
//! against Debian's docker-registry (distribution 2.8) on 127.0.0.1, seeded
//! with a referrers tag-schema index and cosign tags.

use refwarden_testkit::controller::*;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::controller::Action;
use kube::runtime::reflector;
use refwarden::controller::stores::PodEntry;
use refwarden::controller::{Context, ReconcileSettings, policy, profile};
use refwarden::crd::{
    Capabilities, Capability, DiscoveryMode, ReferrerPolicy, RegistryProfile, RegistryProfileStatus,
};
use refwarden_testkit::{DistributionOptions, DistributionRegistry, SeedAuth, Seeder};
use serde_json::{Value, json};

type TestResult = refwarden_testkit::Result<()>;

fn cond(type_: &str, status: &str, reason: &str, message: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "lastTransitionTime": ts(NOW), "observedGeneration": 1})
}

#[track_caller]
fn assert_status_patch(call: &Call, plural: &str, name: &str) {
    assert_eq!(call.method, "PATCH", "{call:?}");
    assert_eq!(
        call.path,
        format!("/apis/refwarden.dev/v1alpha1/{plural}/{name}/status")
    );
    assert!(
        call.query.contains("fieldManager=refwarden"),
        "{}",
        call.query
    );
    assert!(call.query.contains("force=true"), "{}", call.query);
    assert_eq!(call.body["apiVersion"], "refwarden.dev/v1alpha1");
}

#[track_caller]
fn assert_event(
    call: &Call,
    type_: &str,
    reason: &str,
    regarding_kind: &str,
    regarding_name: &str,
) {
    assert_eq!(call.method, "POST", "{call:?}");
    let ns = call.body["regarding"]["namespace"]
        .as_str()
        .unwrap_or("default");
    assert_eq!(
        call.path,
        format!("/apis/events.k8s.io/v1/namespaces/{ns}/events")
    );
    let b = &call.body;
    assert_eq!(b["type"], type_, "{b}");
    assert_eq!(b["reason"], reason, "{b}");
    assert_eq!(b["reportingController"], "refwarden.dev/controller");
    assert_eq!(b["reportingInstance"], "refwarden-0");
    assert_eq!(b["regarding"]["kind"], regarding_kind, "{b}");
    assert_eq!(b["regarding"]["name"], regarding_name, "{b}");
    let note = b["note"].as_str().unwrap_or_default();
    assert!(
        !note.contains("signed") && !note.contains("verified"),
        "{note}"
    );
}

/// A policy seen for the first time (or with a new generation) first gets a
/// `Reconciling=True` status (kstatus InProgress); returns the calls after it.
#[track_caller]
fn after_reconciling(mut calls: Vec<Call>, name: &str) -> Vec<Call> {
    assert!(!calls.is_empty(), "no calls");
    let first = calls.remove(0);
    assert_status_patch(&first, "referrerpolicies", name);
    assert_eq!(
        first.body["status"]["conditions"][0],
        json!({"type": "Reconciling", "status": "True", "reason": "Evaluating",
               "message": "evaluating generation 1", "observedGeneration": 1,
               "lastTransitionTime": ts(NOW)}),
        "{first:?}"
    );
    assert!(
        first.body["status"].get("observedGeneration").is_none(),
        "{first:?}"
    );
    calls
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliant_policy_gets_exact_status_and_no_events() -> TestResult {
    refwarden_testkit::init_tracing();
    let s = seeded().await?;
    let (client, api) = mock_client();
    let ctx = test_context(client);
    with_local_profile(&ctx, &s.reg);
    let image = format!("{}/signed/app@{}", s.reg.host(), s.signed);
    ctx.pods
        .insert(pod("web-abc123-x1", "web", &image, "pod-uid-1"));
    let obj = policy_obj(
        "signed",
        "web",
        json!({"require": [{"name": "signature", "preset": "signature"},
                           {"name": "sbom", "preset": "sbom"}]}),
    );

    let action = policy::reconcile(Arc::new(obj), ctx.clone()).await?;
    assert_eq!(action, Action::requeue(Duration::from_secs(600)));
    let calls = after_reconciling(api.calls(), "signed");
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_status_patch(&calls[0], "referrerpolicies", "signed");
    assert_eq!(
        calls[0].body,
        json!({
            "apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
            "status": {
                "observedGeneration": 1,
                "conditions": [
                    cond("Ready", "True", "Evaluated", "1 pods, 1 images: 1 compliant, 0 missing referrers, 0 unknown"),
                    cond("Compliant", "True", "AllCompliant", "all 1 images carry the required referrers"),
                    cond("Reconciling", "False", "Evaluated", ""),
                    cond("Stalled", "False", "Evaluated", ""),
                ],
                "lastEvaluationTime": ts(NOW),
                "summary": {"pods": 1, "images": 1, "compliant": 1, "nonCompliant": 0, "unknown": 0},
            }
        })
    );
    let text = ctx.metrics.render();
    assert!(
        text.contains("refwarden_policy_images{policy=\"signed\",state=\"compliant\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("refwarden_discovery_cache_misses_total 1"),
        "{text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_compliant_then_compliant_again_with_events_and_no_duplicates() -> TestResult {
    refwarden_testkit::init_tracing();
    let s = seeded().await?;
    let (client, api) = mock_client();
    let ctx = test_context(client);
    with_local_profile(&ctx, &s.reg);
    let image = format!("{}/plain/app@{}", s.reg.host(), s.plain);
    ctx.pods
        .insert(pod("shop-abc123-x1", "shop", &image, "pod-uid-2"));
    let mut obj = policy_obj("plain", "shop", json!({}));

    // 1. First evaluation: non-compliant.
    policy::reconcile(Arc::new(obj.clone()), ctx.clone()).await?;
    let calls = after_reconciling(api.take(), "plain");
    assert_eq!(calls.len(), 3, "{calls:#?}");
    assert_status_patch(&calls[0], "referrerpolicies", "plain");
    let status = &calls[0].body["status"];
    let method = status["violations"][0]["discoveryMethod"].clone();
    assert!(method.is_string(), "{status}");
    let repo = format!("{}/plain/app", s.reg.host());
    assert_eq!(
        calls[0].body,
        json!({
            "apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
            "status": {
                "observedGeneration": 1,
                "conditions": [
                    cond("Ready", "True", "Evaluated", "1 pods, 1 images: 0 compliant, 1 missing referrers, 0 unknown"),
                    cond("Compliant", "False", "MissingReferrers", "1 of 1 images miss required referrers"),
                    cond("Reconciling", "False", "Evaluated", ""),
                    cond("Stalled", "False", "Evaluated", ""),
                ],
                "lastEvaluationTime": ts(NOW),
                "summary": {"pods": 1, "images": 1, "compliant": 0, "nonCompliant": 1, "unknown": 0},
                "violations": [{
                    "image": repo, "digest": s.plain, "missing": ["signature"],
                    "reference": format!("{repo}@{}", s.plain), "pods": 1,
                    "workloads": [{"namespace": "shop", "kind": "Deployment", "name": "shop"}],
                    "discoveryMethod": method,
                }],
            }
        })
    );
    assert_event(
        &calls[1],
        "Warning",
        "ImageNonCompliant",
        "ReferrerPolicy",
        "plain",
    );
    assert_eq!(
        calls[1].body["note"],
        format!(
            "1 image(s) now miss required referrers: {repo}@{} (missing: signature)",
            s.plain
        )
    );
    assert_event(
        &calls[2],
        "Warning",
        "MissingReferrers",
        "Pod",
        "shop-abc123-x1",
    );
    assert_eq!(
        calls[2].path,
        "/apis/events.k8s.io/v1/namespaces/shop/events"
    );
    assert_eq!(calls[2].body["regarding"]["uid"], "pod-uid-2");
    assert_eq!(calls[2].body["related"]["name"], "plain");
    assert_eq!(
        calls[2].body["note"],
        format!(
            "ReferrerPolicy plain: image(s) missing required referrers: {repo}@{} (missing: signature)",
            s.plain
        )
    );

    // 2. Same world, stored status: no write, no Event.
    obj.status = Some(serde_json::from_value(status.clone())?);
    policy::reconcile(Arc::new(obj.clone()), ctx.clone()).await?;
    assert!(api.take().is_empty(), "unchanged evaluation must not write");

    // 3. The image gets a cosign signature: compliant again.
    s.seeder
        .push_cosign_tag("plain/app", &s.plain, "sig")
        .await?;
    ctx.discoverer.invalidate_all();
    policy::reconcile(Arc::new(obj.clone()), ctx.clone()).await?;
    let calls = api.take();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert_status_patch(&calls[0], "referrerpolicies", "plain");
    let st = &calls[0].body["status"];
    assert_eq!(st["summary"]["compliant"], 1);
    assert!(st.get("violations").is_none(), "{st}");
    assert_eq!(
        st["conditions"][1],
        cond(
            "Compliant",
            "True",
            "AllCompliant",
            "all 1 images carry the required referrers"
        )
    );
    assert_event(
        &calls[1],
        "Normal",
        "ImageCompliant",
        "ReferrerPolicy",
        "plain",
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_registry_makes_images_unknown() -> TestResult {
    refwarden_testkit::init_tracing();
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let url = format!("http://{dead}");
    let (client, api) = mock_client();
    let ctx = test_context(client);
    ctx.profiles.set(
        "dead",
        &dead.to_string(),
        "fp",
        Ok((fast_client(&url), DiscoveryMode::Auto)),
        None,
    );
    let digest = format!("sha256:{}", "ab".repeat(32));
    let image = format!("{dead}/gone/app@{digest}");
    ctx.pods
        .insert(pod("gone-abc123-x1", "gone", &image, "pod-uid-3"));
    let obj = policy_obj("gone", "gone", json!({"recheckInterval": "5m"}));

    let action = policy::reconcile(Arc::new(obj), ctx.clone()).await?;
    assert_ne!(
        action,
        Action::requeue(Duration::from_secs(300)),
        "registry trouble retries sooner"
    );
    let calls = after_reconciling(api.calls(), "gone");
    assert_eq!(
        calls.len(),
        1,
        "Unknown is never a violation, so no Event: {calls:#?}"
    );
    assert_status_patch(&calls[0], "referrerpolicies", "gone");
    let mut body = calls[0].body.clone();
    let message = body["status"]["unknown"][0]["message"].take();
    assert!(
        message
            .as_str()
            .unwrap_or_default()
            .contains(&dead.to_string()),
        "{message}"
    );
    let reason = body["status"]["unknown"][0]["reason"].clone();
    assert_eq!(reason, "RegistryUnavailable");
    assert_eq!(
        body,
        json!({
            "apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
            "status": {
                "observedGeneration": 1,
                "conditions": [
                    cond("Ready", "True", "Evaluated", "1 pods, 1 images: 0 compliant, 0 missing referrers, 1 unknown"),
                    cond("Compliant", "Unknown", "RegistryUnavailable", "referrers of 1 of 1 images could not be discovered"),
                    cond("Reconciling", "False", "Evaluated", ""),
                    cond("Stalled", "False", "Evaluated", ""),
                ],
                "lastEvaluationTime": ts(NOW),
                "summary": {"pods": 1, "images": 1, "compliant": 0, "nonCompliant": 0, "unknown": 1},
                "unknown": [{
                    "image": format!("{dead}/gone/app"), "digest": digest, "reason": "RegistryUnavailable",
                    "message": Value::Null, "pods": 1,
                    "workloads": [{"namespace": "shop", "kind": "Deployment", "name": "gone"}],
                }],
            }
        })
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_spec_is_stalled_and_awaits_change() -> TestResult {
    let (client, api) = mock_client();
    let ctx = test_context(client);
    let obj = policy_obj("bad", "x", json!({"recheckInterval": "5s"}));
    let action = policy::reconcile(Arc::new(obj), ctx.clone()).await?;
    assert_eq!(action, Action::await_change());
    let calls = after_reconciling(api.calls(), "bad");
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert_status_patch(&calls[0], "referrerpolicies", "bad");
    let msg = "spec.recheckInterval: must be at least 10s";
    assert_eq!(
        calls[0].body,
        json!({
            "apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
            "status": {
                "observedGeneration": 1,
                "conditions": [
                    cond("Ready", "False", "InvalidSpec", msg),
                    cond("Compliant", "Unknown", "InvalidSpec", "the policy is not evaluated until its spec is fixed"),
                    cond("Reconciling", "False", "InvalidSpec", ""),
                    cond("Stalled", "True", "InvalidSpec", msg),
                ],
                "summary": {"pods": 0, "images": 0, "compliant": 0, "nonCompliant": 0, "unknown": 0},
            }
        })
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_replica_writes_nothing() -> TestResult {
    let (client, api) = mock_client();
    let ctx = test_context(client);
    ctx.set_leader(false);
    let obj = policy_obj("bad", "x", json!({"recheckInterval": "5s"}));
    let action = policy::reconcile(Arc::new(obj), ctx.clone()).await?;
    assert_eq!(action, Action::await_change());
    assert!(api.calls().is_empty());
    Ok(())
}

fn profile_obj(spec: Value, status: Option<RegistryProfileStatus>) -> RegistryProfile {
    let mut p: RegistryProfile = serde_json::from_value(json!({
        "apiVersion": "refwarden.dev/v1alpha1", "kind": "RegistryProfile",
        "metadata": {"name": "dist", "generation": 1, "uid": "uid-dist"},
        "spec": spec,
    }))
    .expect("profile");
    p.status = status;
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_probe_writes_capabilities_and_reports_lost_referrers_api() -> TestResult {
    refwarden_testkit::init_tracing();
    let reg = DistributionRegistry::start(DistributionOptions::default())?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    seeder.push_image("probe/app", "1.0").await?;
    let (client, api) = mock_client();
    let ctx = test_context(client);
    // The last probe (an older generation) saw the referrers API.
    let previous = RegistryProfileStatus {
        observed_generation: Some(0),
        capabilities: Capabilities {
            referrers_api: Capability::supported("IndexReturned", Some(200), ""),
            ..Default::default()
        },
        last_probe_time: Some(t(NOW - 60)),
        ..Default::default()
    };
    let obj = profile_obj(
        json!({"registryUrl": reg.url(), "plainHttp": true, "testRepository": "probe/app",
               "testTag": "1.0", "probe": {"interval": "1h", "writeProbes": false}}),
        Some(previous),
    );
    let action = profile::reconcile(Arc::new(obj), ctx.clone()).await?;
    assert_eq!(action, Action::requeue(Duration::from_secs(3600)));
    let calls = api.calls();
    assert!(calls.len() >= 2, "{calls:#?}");
    assert_status_patch(&calls[0], "registryprofiles", "dist");
    let st = &calls[0].body["status"];
    assert_eq!(st["observedGeneration"], 1);
    assert_eq!(
        st["capabilities"]["referrersApi"]["state"], "Unsupported",
        "{st}"
    );
    assert_eq!(st["discoveryMode"], "TagFallback");
    assert_eq!(st["lastProbeTime"], ts(NOW));
    assert_eq!(st["scoreOutOf"], 5);
    let ready = st["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(ready["status"], "True", "{st}");
    assert_eq!(ready["reason"], "ProbeSucceeded");
    assert_event(
        &calls[1],
        "Warning",
        "ReferrersApiLost",
        "RegistryProfile",
        "dist",
    );
    assert_eq!(
        calls[1].path,
        "/apis/events.k8s.io/v1/namespaces/default/events"
    );
    for c in &calls[2..] {
        assert_event(
            c,
            c.body["type"].as_str().unwrap_or_default(),
            "CapabilitiesChanged",
            "RegistryProfile",
            "dist",
        );
    }
    // The directory now routes the registry's images through the profile, tag fallback.
    let entry = ctx
        .profiles
        .directory()
        .entry_for(&reg.host(), &[])
        .map_err(|b| b.message)?;
    assert_eq!(entry.profile.as_deref(), Some("dist"));
    assert_eq!(
        entry.hint,
        Some(refwarden::crd::EffectiveDiscoveryMode::TagFallback)
    );
    let text = ctx.metrics.render();
    assert!(text.contains("refwarden_registry_capability{registry_profile=\"dist\",capability=\"referrersApi\",state=\"Unsupported\"} 1"), "{text}");
    assert!(
        text.contains(&format!(
            "refwarden_registry_requests_total{{registry=\"{}\",endpoint=\"base\",status=\"200\"}}",
            reg.host()
        )),
        "{text}"
    );

    // Probed again right away with the stored status: not due, nothing written.
    let stored: RegistryProfileStatus = serde_json::from_value(st.clone())?;
    api.take();
    let obj = profile_obj(
        json!({"registryUrl": reg.url(), "plainHttp": true, "testRepository": "probe/app",
               "testTag": "1.0", "probe": {"interval": "1h", "writeProbes": false}}),
        Some(stored),
    );
    let action = profile::reconcile(Arc::new(obj), ctx.clone()).await?;
    assert_eq!(action, Action::requeue(Duration::from_secs(3600)));
    assert!(api.calls().is_empty(), "{:#?}", api.calls());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_secret_sets_ready_false_naming_the_field() -> TestResult {
    let (client, api) = mock_client();
    let ctx = test_context(client);
    let obj = profile_obj(
        json!({"registryUrl": "https://registry.invalid",
               "credentialsSecretRef": {"namespace": "ops", "name": "creds"}}),
        None,
    );
    let action = profile::reconcile(Arc::new(obj), ctx.clone()).await?;
    assert_eq!(action, Action::requeue(profile::BROKEN_RECHECK));
    let calls = api.calls();
    assert_eq!(calls.len(), 2, "{calls:#?}");
    assert_eq!(calls[0].method, "GET");
    assert_eq!(calls[0].path, "/api/v1/namespaces/ops/secrets/creds");
    assert_status_patch(&calls[1], "registryprofiles", "dist");
    let msg = "spec.credentialsSecretRef: Secret ops/creds not found";
    assert_eq!(
        calls[1].body,
        json!({
            "apiVersion": "refwarden.dev/v1alpha1", "kind": "RegistryProfile",
            "status": {
                "observedGeneration": 1,
                "conditions": [
                    cond("Ready", "False", "CredentialsNotFound", msg),
                    cond("Reconciling", "False", "CredentialsNotFound", ""),
                    cond("Stalled", "False", "CredentialsNotFound", ""),
                ],
                "capabilities": {
                    "referrersApi": {"state": "Unknown", "reason": ""},
                    "artifactTypeFilter": {"state": "Unknown", "reason": ""},
                    "chunkedUpload": {"state": "Unknown", "reason": ""},
                    "crossRepoMount": {"state": "Unknown", "reason": ""},
                    "deleteManifests": {"state": "Unknown", "reason": ""},
                    "deleteBlobs": {"state": "Unknown", "reason": ""},
                },
                "score": 0, "scoreOutOf": 0, "lifecycleFindings": [],
            }
        })
    );
    // Policies see the profile as broken: its images are Unknown, never compliant.
    let err = ctx
        .profiles
        .directory()
        .entry_for("registry.invalid", &[])
        .expect_err("broken profile");
    assert_eq!(err.reason, "CredentialsNotFound");
    Ok(())
}

/// What passes the schema but cannot work: a Secret of the wrong type, a CA bundle that is not
/// there or not PEM. Each is `Ready=False` with a reason and a message naming the field
/// (`Stalled=False`: fixing the Secret or ConfigMap, not the spec, heals it, and the controller
/// rechecks); policies get the broken profile for its registry (so its images are Unknown).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_secret_or_ca_reference_sets_ready_false_naming_the_field() -> TestResult {
    let creds = json!({"namespace": "ops", "name": "creds"});
    // (what, spec, objects the API serves by path, Ready reason, Ready message start)
    type Case = (
        &'static str,
        Value,
        Vec<(String, Value)>,
        &'static str,
        &'static str,
    );
    let cases: Vec<Case> = vec![
        (
            "Secret of the wrong type",
            json!({"registryUrl": "https://registry.invalid", "credentialsSecretRef": creds}),
            vec![(
                "/api/v1/namespaces/ops/secrets/creds".into(),
                json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                       "metadata": {"name": "creds", "namespace": "ops"},
                       "data": {"token": "c2VjcmV0LXRva2Vu"}}),
            )],
            "CredentialsInvalid",
            "spec.credentialsSecretRef: Secret ops/creds",
        ),
        (
            "CA ConfigMap that does not exist",
            json!({"registryUrl": "https://registry.invalid",
                   "caBundle": {"configMapRef": {"namespace": "ops", "name": "ca", "key": "ca.crt"}}}),
            vec![],
            "CaBundleNotFound",
            "spec.caBundle.configMapRef: ConfigMap ops/ca not found",
        ),
        (
            "CA Secret without PEM",
            json!({"registryUrl": "https://registry.invalid",
                   "caBundle": {"secretRef": {"namespace": "ops", "name": "ca", "key": "ca.crt"}}}),
            vec![(
                "/api/v1/namespaces/ops/secrets/ca".into(),
                json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                       "metadata": {"name": "ca", "namespace": "ops"},
                       "data": {"ca.crt": "bm90IGEgY2VydGlmaWNhdGU="}}),
            )],
            "CaBundleInvalid",
            "spec.caBundle.secretRef: Secret ops/ca key ca.crt",
        ),
    ];
    for (what, spec, objects, reason, message_start) in cases {
        let (client, api) = mock_client_with_secrets(objects);
        let ctx = test_context(client);
        let action = profile::reconcile(Arc::new(profile_obj(spec, None)), ctx.clone()).await?;
        assert_eq!(action, Action::requeue(profile::BROKEN_RECHECK), "{what}");
        let calls = api.calls();
        let patch = calls.last().expect("a status patch");
        assert_status_patch(patch, "registryprofiles", "dist");
        let conditions = patch.body["status"]["conditions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let find = |t: &str| conditions.iter().find(|c| c["type"] == t).cloned();
        let ready = find("Ready").expect("Ready");
        assert_eq!(
            (ready["status"].as_str(), ready["reason"].as_str()),
            (Some("False"), Some(reason)),
            "{what}"
        );
        let message = ready["message"].as_str().unwrap_or_default();
        assert!(message.starts_with(message_start), "{what}: {message}");
        assert!(
            !message.contains("c2VjcmV0") && !message.contains("secret-token"),
            "{what}: {message}"
        );
        let stalled = find("Stalled").expect("Stalled");
        assert_eq!(stalled["status"], "False", "{what}: {stalled}");
        let err = ctx
            .profiles
            .directory()
            .entry_for("registry.invalid", &[])
            .expect_err("broken profile");
        assert_eq!(err.reason, reason, "{what}");
    }
    Ok(())
}

/// Replaces every timestamp in a status with a placeholder.
fn without_times(mut v: Value) -> Value {
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, x) in m.iter_mut() {
                    if k == "lastTransitionTime" || k == "lastEvaluationTime" {
                        *x = Value::String("<time>".into());
                    } else {
                        walk(x);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut v);
    v
}

/// `refwarden evaluate` and the controller run the same reconcile code: the same
/// policy, pods and registry give the same status object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluate_cli_writes_the_status_the_controller_writes() -> TestResult {
    let s = seeded().await?;
    let signed = format!("{}/signed/app@{}", s.reg.host(), s.signed);
    let plain = format!("{}/plain/app@{}", s.reg.host(), s.plain);
    let require = json!({"require": [{"name": "signature", "preset": "signature"},
                                     {"name": "sbom", "preset": "sbom"}]});

    // The controller, from its stores.
    let (client, api) = mock_client();
    let ctx = test_context(client);
    with_local_profile(&ctx, &s.reg);
    ctx.pods
        .insert(pod("web-abc123-x1", "web", &signed, "uid-1"));
    ctx.pods
        .insert(pod("web-abc123-x2", "web", &plain, "uid-2"));
    let obj = policy_obj("shared", "web", require.clone());
    policy::reconcile(Arc::new(obj.clone()), ctx.clone()).await?;
    let patch = api
        .calls()
        .into_iter()
        .rfind(|c| c.method == "PATCH")
        .ok_or("no status patch")?;
    let controller_status = patch.body["status"].clone();

    // `refwarden evaluate`, from files holding the same objects.
    let dir = tempfile::tempdir()?;
    let pod_json = |name: &str, image: &str| {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"namespace": "shop", "name": name, "uid": name,
                "labels": {"app": "web", "pod-template-hash": "abc123"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "web-abc123", "uid": "rs", "controller": true}]},
            "spec": {"containers": [{"name": "main", "image": image}]},
            "status": {"containerStatuses": [{"name": "main", "image": image,
                "imageID": format!("docker-pullable://{image}"), "ready": true, "restartCount": 0}]}
        })
    };
    let docs = [
        json!({"apiVersion": "v1", "kind": "List",
               "items": [pod_json("web-abc123-x1", &signed), pod_json("web-abc123-x2", &plain)]}),
        serde_json::to_value(&obj)?,
        json!({"apiVersion": "refwarden.dev/v1alpha1", "kind": "RegistryProfile",
               "metadata": {"name": "local"},
               "spec": {"registryUrl": s.reg.url(), "plainHttp": true}}),
    ];
    for (i, d) in docs.iter().enumerate() {
        std::fs::write(dir.path().join(format!("{i}.json")), serde_json::to_vec(d)?)?;
    }
    let path = dir.path().display().to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_refwarden"))
            .args([
                "evaluate",
                "-f",
                &path,
                "--registry-profile-status-from",
                "file",
                "-o",
                "json",
            ])
            .output()
    })
    .await??;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout)?;
    let cli_status = report["referrerPolicies"][0]["status"].clone();
    assert_eq!(cli_status["summary"]["nonCompliant"], 1, "{cli_status}");
    assert_eq!(without_times(cli_status), without_times(controller_status));
    Ok(())
}

/// `--use-image-pull-secrets`: a registry without a RegistryProfile that needs
/// credentials is read with the selected pods' dockerconfigjson imagePullSecret;
/// without the opt-in the same image is Unknown (AuthFailed), never a violation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_pull_secrets_opt_in_provides_credentials() -> TestResult {
    use base64::Engine as _;
    let reg = DistributionRegistry::start(DistributionOptions {
        auth: refwarden_testkit::Auth::Htpasswd {
            users: vec![("puller".into(), "pull-pass-77".into())],
        },
        delete_enabled: true,
    })?;
    let seeder = Seeder::new(
        &reg.url(),
        SeedAuth::Basic("puller".into(), "pull-pass-77".into()),
    )?;
    let img = seeder.push_image("private/app", "v1").await?;
    seeder
        .push_cosign_tag("private/app", &img.digest, "sig")
        .await?;
    let image = format!("{}/private/app@{}", reg.host(), img.digest);
    let auth = base64::engine::general_purpose::STANDARD.encode("puller:pull-pass-77");
    let dockerconfig = json!({"auths": {reg.host(): {"auth": auth}}}).to_string();
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
        "metadata": {"name": "regcred", "namespace": "shop"},
        "data": {".dockerconfigjson": base64::engine::general_purpose::STANDARD.encode(dockerconfig)}
    });
    let pod_with_secret = |keep: bool| -> refwarden_testkit::Result<PodEntry> {
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"namespace": "shop", "name": "priv-abc123-x1", "uid": "u-priv",
                "labels": {"app": "priv", "pod-template-hash": "abc123"}},
            "spec": {"containers": [{"name": "main", "image": image}],
                     "imagePullSecrets": [{"name": "regcred"}]},
            "status": {"containerStatuses": [{"name": "main", "image": image,
                "imageID": image, "ready": true, "restartCount": 0}]},
        }))?;
        Ok(PodEntry::from_pod(&p, keep))
    };
    let obj = policy_obj("private", "priv", json!({}));

    for opt_in in [false, true] {
        let (client, api) = mock_client_with_secrets(vec![(
            "/api/v1/namespaces/shop/secrets/regcred".into(),
            secret.clone(),
        )]);
        let (policies, _) = reflector::store::<ReferrerPolicy>();
        let (profiles, _) = reflector::store::<RegistryProfile>();
        let ctx = Context::new(
            client,
            ReconcileSettings {
                instance: Some("refwarden-0".into()),
                use_image_pull_secrets: opt_in,
                // No RegistryProfile: the registry is plain HTTP only because it is named.
                insecure_registries: vec![reg.host()],
                ..ReconcileSettings::default()
            },
            policies,
            profiles,
        )
        .with_clock(|| t(NOW));
        ctx.pods.set_ready();
        ctx.namespaces.set_ready();
        ctx.set_leader(true);
        let ctx = Arc::new(ctx);
        ctx.pods.insert(pod_with_secret(opt_in)?);
        policy::reconcile(Arc::new(obj.clone()), ctx.clone()).await?;
        let calls = api.calls();
        let read_secret = calls
            .iter()
            .any(|c| c.method == "GET" && c.path.ends_with("/secrets/regcred"));
        assert_eq!(read_secret, opt_in, "{calls:#?}");
        let status = &calls
            .iter()
            .rfind(|c| c.method == "PATCH")
            .ok_or("no status patch")?
            .body["status"];
        if opt_in {
            assert_eq!(status["summary"]["compliant"], 1, "{status}");
        } else {
            assert_eq!(status["summary"]["unknown"], 1, "{status}");
            assert_eq!(status["summary"]["nonCompliant"], 0, "{status}");
            assert_eq!(status["unknown"][0]["reason"], "AuthFailed", "{status}");
        }
        // The password never reaches status or events.
        for c in &calls {
            assert!(!c.body.to_string().contains("pull-pass-77"), "{c:?}");
        }
        // A recheck within the TTL reuses the Secret read above.
        policy::reconcile(Arc::new(obj.clone()), ctx.clone()).await?;
        let reads = api
            .calls()
            .iter()
            .filter(|c| c.method == "GET" && c.path.ends_with("/secrets/regcred"))
            .count();
        assert_eq!(reads, usize::from(opt_in), "Secret read once per TTL");
    }
    Ok(())
}
