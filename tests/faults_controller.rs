//! Controller restarts and tolerance of old statuses (tower-test mocked API,
//! real distribution 2.8 registry): a reconcile killed at any point and a
//! fresh controller process started afterwards converge to the status an
//! uninterrupted run writes, without publishing the same Events again; a
//! status written by a previous (or newer) version with unknown fields still
//! deserialises and is used as the previous status.
//!
//! The API-server mock and seeding are the ones of `controller_reconcile.rs`
//! (`refwarden_testkit::controller`).

use refwarden_testkit::controller::*;

use std::sync::Arc;
use std::time::Duration;

use refwarden::controller::policy;
use refwarden::crd::{ReferrerPolicy, ReferrerPolicyStatus, RegistryProfileStatus};
use serde_json::{Value, json};

type TestResult = refwarden_testkit::Result<()>;

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

fn with_status(
    obj: &ReferrerPolicy,
    status: Option<&Value>,
) -> refwarden_testkit::Result<ReferrerPolicy> {
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
async fn restart_runs()
-> refwarden_testkit::Result<(Value, Vec<Event>, Vec<(u64, Value, Vec<Event>)>)> {
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
    refwarden_testkit::init_tracing();
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
    refwarden_testkit::init_tracing();
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
