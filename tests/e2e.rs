//! End-to-end test against a real cluster (k3d) with the controller installed.
//!
//! Skipped unless `REFWARDEN_E2E_KUBECONFIG` names a kubeconfig; with
//! `REFWARDEN_E2E_REQUIRED=1` a missing kubeconfig fails instead. `e2e/run.sh`
//! creates the cluster, the registry, installs refwarden and runs this test.
//!
//! Environment:
//! - `REFWARDEN_E2E_KUBECONFIG`: kubeconfig of the cluster.
//! - `REFWARDEN_E2E_REGISTRY_PUSH`: registry URL reachable from this machine (e.g. `http://127.0.0.1:5050`).
//! - `REFWARDEN_E2E_REGISTRY_CLUSTER`: the same registry as pods and the controller see it
//!   (e.g. `k3d-refwarden-registry:5000`).
//! - The registry holds runnable images `e2e/signed:1.0` and `e2e/bare:1.0` (pushed by `e2e/run.sh`).

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use refwarden::crd::{ReferrerPolicy, RegistryProfile};
use refwarden_testkit::{SeedAuth, Seeder};
use serde_json::json;

type TestResult = refwarden_testkit::Result<()>;

const NS: &str = "refwarden-e2e";
const FIELD_MANAGER: &str = "refwarden-e2e";

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Whether to run: `Ok(Some(kubeconfig))` to run, `Ok(None)` to skip, `Err` when the
/// run is required (`REFWARDEN_E2E_REQUIRED=1`) but no kubeconfig is given.
fn decide(kubeconfig: Option<String>, required: bool) -> Result<Option<String>, String> {
    match (kubeconfig, required) {
        (Some(k), _) => Ok(Some(k)),
        (None, true) => Err(
            "REFWARDEN_E2E_REQUIRED=1 but REFWARDEN_E2E_KUBECONFIG is not set (run e2e/run.sh)"
                .into(),
        ),
        (None, false) => Ok(None),
    }
}

/// `None` when the test is to be skipped; panics when it is required but cannot run.
fn kubeconfig() -> Option<String> {
    let required = env("REFWARDEN_E2E_REQUIRED").as_deref() == Some("1");
    match decide(env("REFWARDEN_E2E_KUBECONFIG"), required) {
        Ok(Some(k)) => Some(k),
        Ok(None) => {
            eprintln!("skipping the e2e test: set REFWARDEN_E2E_KUBECONFIG (see e2e/README.md)");
            None
        }
        Err(e) => panic!("{e}"),
    }
}

async fn client(path: &str) -> refwarden_testkit::Result<Client> {
    let kc = Kubeconfig::read_from(path)?;
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(cfg)?)
}

async fn apply<K>(api: &Api<K>, name: &str, obj: serde_json::Value) -> refwarden_testkit::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(obj),
    )
    .await?;
    Ok(())
}

fn deployment(name: &str, image: &str) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "app", "image": image,
                    "command": ["sh", "-c", "sleep 3600"]
                }]}
            }
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_reports_compliance_of_running_workloads() -> TestResult {
    let Some(path) = kubeconfig() else {
        return Ok(());
    };
    let push =
        env("REFWARDEN_E2E_REGISTRY_PUSH").ok_or("REFWARDEN_E2E_REGISTRY_PUSH is not set")?;
    let cluster_host =
        env("REFWARDEN_E2E_REGISTRY_CLUSTER").ok_or("REFWARDEN_E2E_REGISTRY_CLUSTER is not set")?;
    let client = client(&path).await?;

    // Attach a signature and an SBOM to e2e/signed through the OCI tag schema.
    let seeder = Seeder::new(&push, SeedAuth::None)?;
    let head = refwarden_testkit::http_client()?
        .head(format!("{push}/v2/e2e/signed/manifests/1.0"))
        .header(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await?;
    let header = |name: &str| {
        head.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let signed = header("docker-content-digest").ok_or("no digest for e2e/signed:1.0")?;
    let media_type = header("content-type").ok_or("no media type for e2e/signed:1.0")?;
    let size: u64 = header("content-length")
        .and_then(|l| l.parse().ok())
        .ok_or("no size for e2e/signed:1.0")?;
    let subject = refwarden_testkit::seed::Subject::new(&signed, &media_type, size);
    let mut descriptors = Vec::new();
    for t in [
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        "application/spdx+json",
    ] {
        let a = seeder
            .push_artifact("e2e/signed", Some(&subject), t, b"{\"e2e\":true}", None)
            .await?;
        descriptors.push(a.descriptor());
    }
    seeder
        .push_referrers_tag_index("e2e/signed", &signed, &descriptors)
        .await?;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    apply(
        &namespaces,
        NS,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS, "labels": {"refwarden-e2e": "yes"}}}),
    )
    .await?;
    let profiles: Api<RegistryProfile> = Api::all(client.clone());
    apply(
        &profiles,
        "e2e-local",
        json!({
            "apiVersion": "refwarden.dev/v1alpha1", "kind": "RegistryProfile",
            "metadata": {"name": "e2e-local"},
            "spec": {
                "registryUrl": format!("http://{cluster_host}"), "plainHttp": true,
                "testRepository": "e2e/signed", "testTag": "1.0",
                "probe": {"interval": "5m"}
            }
        }),
    )
    .await?;
    let policies: Api<ReferrerPolicy> = Api::all(client.clone());
    apply(
        &policies,
        "e2e-signed-and-sbom",
        json!({
            "apiVersion": "refwarden.dev/v1alpha1", "kind": "ReferrerPolicy",
            "metadata": {"name": "e2e-signed-and-sbom"},
            "spec": {
                "namespaceSelector": {"matchLabels": {"refwarden-e2e": "yes"}},
                "require": [
                    {"name": "signature", "preset": "signature"},
                    {"name": "sbom", "preset": "sbom"}
                ],
                "recheckInterval": "30s"
            }
        }),
    )
    .await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    for (name, image) in [
        ("signed", format!("{cluster_host}/e2e/signed:1.0")),
        ("bare", format!("{cluster_host}/e2e/bare:1.0")),
    ] {
        apply(&deployments, name, deployment(name, &image)).await?;
    }

    // Bounded wait for the controller to report both images.
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        let p = policies.get("e2e-signed-and-sbom").await?;
        if let Some(s) = p.status.as_ref()
            && s.summary.compliant + s.summary.non_compliant >= 2
        {
            break s.clone();
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for the policy status: {:?}", p.status).into());
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    };
    assert_eq!(status.summary.compliant, 1, "{status:?}");
    assert_eq!(status.summary.non_compliant, 1, "{status:?}");
    let v = &status.violations[0];
    assert!(v.image.ends_with("/e2e/bare"), "{v:?}");
    assert_eq!(v.missing, vec!["signature".to_string(), "sbom".to_string()]);
    assert_eq!(v.workloads[0].kind, "Deployment");
    assert_eq!(v.workloads[0].name, "bare");
    let compliant = refwarden::conditions::find(&status.conditions, "Compliant")
        .ok_or("Compliant condition")?;
    assert_eq!(compliant.status, "False");

    let rp = profiles.get("e2e-local").await?;
    let rps = rp.status.ok_or("RegistryProfile has no status")?;
    assert_eq!(
        rps.discovery_mode,
        Some(refwarden::crd::EffectiveDiscoveryMode::TagFallback)
    );
    let ready = refwarden::conditions::find(&rps.conditions, "Ready").ok_or("Ready")?;
    assert_eq!(ready.status, "True");

    // Clean up what the test created.
    let _ = namespaces.delete(NS, &DeleteParams::default()).await;
    let _ = policies
        .delete("e2e-signed-and-sbom", &DeleteParams::default())
        .await;
    let _ = profiles.delete("e2e-local", &DeleteParams::default()).await;
    Ok(())
}

#[test]
fn skip_or_fail_is_decided_by_the_environment() {
    // Documented behaviour: without a kubeconfig the e2e test skips, unless required.
    assert_eq!(decide(None, false), Ok(None));
    assert!(decide(None, true).is_err());
    assert_eq!(decide(Some("k".into()), false), Ok(Some("k".into())));
    assert_eq!(decide(Some("k".into()), true), Ok(Some("k".into())));
}
