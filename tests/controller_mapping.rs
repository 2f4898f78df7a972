//! A pod change re-evaluates only the policies that select the pod (old or new
//! version); the pod store keeps only what policies need and ignores
//! irrelevant updates.

use std::sync::Arc;

use http::{Request, Response};
use k8s_openapi::api::core::v1::Pod;
use kube::client::Body;
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::watcher;
use refwarden::controller::stores::PodChange;
use refwarden::controller::{Context, ReconcileSettings};
use refwarden::crd::{ReferrerPolicy, RegistryProfile};
use serde_json::json;

fn policy(
    name: &str,
    selector: serde_json::Value,
    ns_selector: Option<serde_json::Value>,
) -> ReferrerPolicy {
    let mut spec =
        json!({"podSelector": selector, "require": [{"name": "sig", "preset": "signature"}]});
    if let Some(n) = ns_selector {
        spec["namespaceSelector"] = n;
    }
    serde_json::from_value(json!({
        "apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
        "metadata": {"name": name, "generation": 1}, "spec": spec,
    }))
    .expect("policy")
}

fn pod(ns: &str, name: &str, app: &str, image: &str, phase_note: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"namespace": ns, "name": name, "labels": {"app": app},
                     "annotations": {"note": phase_note}},
        "spec": {"containers": [{"name": "c", "image": image}]},
    }))
    .expect("pod")
}

fn names(refs: Vec<ObjectRef<ReferrerPolicy>>) -> Vec<String> {
    let mut v: Vec<String> = refs.into_iter().map(|r| r.name).collect();
    v.sort();
    v
}

#[tokio::test]
async fn pod_changes_map_to_selecting_policies_only() {
    let (service, _handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let (policies, mut writer) = reflector::store::<ReferrerPolicy>();
    let (profiles, _) = reflector::store::<RegistryProfile>();
    for p in [
        policy("web", json!({"matchLabels": {"app": "web"}}), None),
        policy("db", json!({"matchLabels": {"app": "db"}}), None),
        policy(
            "prod-all",
            json!({}),
            Some(json!({"matchLabels": {"env": "prod"}})),
        ),
        // Invalid (bad operator): never matches, never panics.
        policy(
            "broken",
            json!({"matchExpressions": [{"key": "a", "operator": "Near"}]}),
            None,
        ),
    ] {
        writer.apply_watcher_event(&watcher::Event::Apply(p));
    }
    let ctx = Arc::new(Context::new(
        client,
        ReconcileSettings::default(),
        policies,
        profiles,
    ));
    ctx.namespaces
        .insert("shop", [("env".to_string(), "prod".to_string())].into());
    ctx.namespaces.insert("dev", Default::default());

    // New web pod in dev: only "web".
    let web = pod("dev", "w1", "web", "ghcr.io/acme/web:1", "a");
    let change = ctx
        .pods
        .apply_event(&watcher::Event::Apply(web.clone()))
        .expect("new pod");
    assert_eq!(names(ctx.policies_for(&change)), vec!["web"]);

    // An update that changes nothing policies read (an annotation): no re-evaluation.
    let same = pod("dev", "w1", "web", "ghcr.io/acme/web:1", "b");
    assert!(ctx.pods.apply_event(&watcher::Event::Apply(same)).is_none());

    // Relabelled web -> db: both the old and the new selector's policies.
    let relabelled = pod("dev", "w1", "db", "ghcr.io/acme/web:1", "b");
    let change = ctx
        .pods
        .apply_event(&watcher::Event::Apply(relabelled.clone()))
        .expect("change");
    assert_eq!(names(ctx.policies_for(&change)), vec!["db", "web"]);

    // A pod in a prod namespace: the namespace-selecting policy too.
    let shop = pod("shop", "s1", "web", "ghcr.io/acme/web:2", "a");
    let change = ctx
        .pods
        .apply_event(&watcher::Event::Apply(shop.clone()))
        .expect("new pod");
    assert_eq!(names(ctx.policies_for(&change)), vec!["prod-all", "web"]);

    // Deletion re-evaluates the policies that selected it.
    let change = ctx
        .pods
        .apply_event(&watcher::Event::Delete(shop))
        .expect("deleted");
    assert!(matches!(change, PodChange::One(Some(_), None)));
    assert_eq!(names(ctx.policies_for(&change)), vec!["prod-all", "web"]);
    assert_eq!(ctx.pods.len(), 1);

    // A re-list replaces the store atomically and re-evaluates everything.
    assert!(ctx.pods.apply_event(&watcher::Event::Init).is_none());
    assert!(
        ctx.pods
            .apply_event(&watcher::Event::InitApply(web))
            .is_none()
    );
    assert_eq!(ctx.pods.len(), 1, "old contents stay until InitDone");
    let all = ctx
        .pods
        .apply_event(&watcher::Event::InitDone)
        .expect("resync");
    assert!(matches!(all, PodChange::All));
    assert!(ctx.pods.is_ready());
    assert_eq!(ctx.pods.snapshot()[0].info.labels.get("app"), Some("web"));
    assert_eq!(names(ctx.policies_for(&all)).len(), 4);
}

/// Pods share their images in the store; a re-list forgets the images only removed pods ran.
#[test]
fn the_pod_store_shares_images_and_forgets_them_on_relist() {
    let store = refwarden::controller::stores::PodStore::new(false);
    let a1 = pod("shop", "a1", "web", "ghcr.io/acme/web:1", "a");
    let a2 = pod("shop", "a2", "web", "ghcr.io/acme/web:1", "a");
    let b = pod("shop", "b", "db", "ghcr.io/acme/db:1", "b");
    assert!(store.apply_event(&watcher::Event::Init).is_none());
    for p in [&a1, &a2, &b] {
        assert!(
            store
                .apply_event(&watcher::Event::InitApply(p.clone()))
                .is_none()
        );
    }
    assert!(store.apply_event(&watcher::Event::InitDone).is_some());
    assert_eq!(store.len(), 3);
    assert_eq!(store.distinct_images(), 2, "a1 and a2 share one image");
    let snap = store.snapshot();
    assert!(std::sync::Arc::ptr_eq(
        &snap[0].info.images[0],
        &snap[1].info.images[0]
    ));
    drop(snap);
    // Re-list without the db pod.
    assert!(store.apply_event(&watcher::Event::Init).is_none());
    for p in [&a1, &a2] {
        assert!(
            store
                .apply_event(&watcher::Event::InitApply(p.clone()))
                .is_none()
        );
    }
    assert!(store.apply_event(&watcher::Event::InitDone).is_some());
    assert_eq!(store.len(), 2);
    assert_eq!(store.distinct_images(), 1);
}
