//! Discovery on the REAL registry (Debian's docker-registry, distribution 2.8,
//! no referrers API): referrers through the OCI tag schema and cosign tags,
//! an artifact with a `subject` but no fallback tag stays undiscoverable, and
//! independent clients agree (the ORAS Python SDK pushes, the `oci-client`
//! crate lists).
//!
//! Needs `pip install oras` (see tests/peers/oras_push.py).

use std::collections::BTreeSet;
use std::process::Command;

use refwarden::crd::DiscoveryMode;
use refwarden::discovery::{
    ArtifactKind, Discoverer, DiscoveryMethod, DiscoveryOutcome, DiscoveryReport, DiscoveryRequest,
};
use refwarden::registry::{RegistryClient, RegistryClientConfig};
use refwarden_testkit::{DistributionOptions, DistributionRegistry, SeedAuth, Seeder, media};
use serde_json::{Value, json};

type TestResult = refwarden_testkit::Result<()>;

fn found(o: &DiscoveryOutcome) -> &DiscoveryReport {
    match o {
        DiscoveryOutcome::Found(r) => r,
        other => panic!("expected Found, got {other:?}"),
    }
}

use refwarden_testkit::peers::{oras_push, require_oras};

fn client(url: &str) -> RegistryClient {
    refwarden::registry::ensure_crypto_provider();
    RegistryClient::new(RegistryClientConfig::new(url, true).expect("config")).expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_finds_tag_schema_and_cosign_referrers_on_distribution() -> TestResult {
    refwarden_testkit::init_tracing();
    require_oras();
    let reg = DistributionRegistry::start(DistributionOptions::default())?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    let img = seeder.push_image("app", "v1").await?;

    // Independent client: ORAS Python SDK pushes an SBOM with a subject (and an orphan).
    let pushed = oras_push(&reg.host(), "app", &img.subject())?;
    let sbom = &pushed["sbom"];
    let orphan = &pushed["orphan"];
    assert_eq!(sbom["subject"].as_str(), Some(img.digest.as_str()));
    let sbom_digest = sbom["digest"].as_str().unwrap_or_default().to_string();
    let orphan_digest = orphan["digest"].as_str().unwrap_or_default().to_string();
    // The registry has no referrers API, so a client maintains the tag schema index.
    let descriptor = json!({
        "mediaType": sbom["mediaType"], "digest": sbom_digest, "size": sbom["size"],
        "artifactType": sbom["configMediaType"], "annotations": sbom["annotations"],
    });
    seeder
        .push_referrers_tag_index("app", &img.digest, &[descriptor])
        .await?;
    // cosign legacy tags.
    let sig = seeder.push_cosign_tag("app", &img.digest, "sig").await?;
    let att = seeder.push_cosign_tag("app", &img.digest, "att").await?;

    let c = client(&reg.url());
    let d = Discoverer::default();
    let out = d
        .discover(
            &c,
            DiscoveryMode::Auto,
            None,
            &DiscoveryRequest::new(c.registry(), "app", &img.digest),
        )
        .await;
    let rep = found(&out);
    assert_eq!(rep.referrers_api, Some(false));
    let got: BTreeSet<(String, DiscoveryMethod)> = rep
        .referrers
        .iter()
        .map(|r| (r.digest.clone(), r.method))
        .collect();
    let want: BTreeSet<(String, DiscoveryMethod)> = [
        (sbom_digest.clone(), DiscoveryMethod::TagSchema),
        (sig.digest.clone(), DiscoveryMethod::CosignTag),
        (att.digest.clone(), DiscoveryMethod::CosignTag),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want, "{rep:#?}");
    assert!(!got.iter().any(|(d, _)| *d == orphan_digest));
    let kinds = |digest: &str| {
        rep.referrers
            .iter()
            .find(|r| r.digest == digest)
            .map(|r| r.kinds.clone())
            .unwrap_or_default()
    };
    assert_eq!(kinds(&sbom_digest), vec![ArtifactKind::SpdxSbom]);
    assert_eq!(kinds(&sig.digest), vec![ArtifactKind::CosignSignature]);
    assert_eq!(kinds(&att.digest), vec![ArtifactKind::SlsaProvenance]);
    // referrers (404) + tag list + index tag + the index entry's manifest (checked: it must
    // have this subject) + .sig + .att (no .sbom tag: not fetched).
    assert_eq!(rep.requests, 6, "{rep:#?}");

    // Cross-check with the oci-client crate (falls back to the tag schema on 404).
    let oc = oci_client::Client::new(oci_client::client::ClientConfig {
        protocol: oci_client::client::ClientProtocol::Http,
        ..Default::default()
    });
    let reference =
        oci_client::Reference::with_digest(reg.host(), "app".to_string(), img.digest.clone());
    let theirs = oc
        .pull_referrers(&reference, None)
        .await
        .map_err(|e| format!("oci-client pull_referrers: {e}"))?;
    let theirs: BTreeSet<String> = theirs.manifests.iter().map(|m| m.digest.clone()).collect();
    let ours: BTreeSet<String> = rep
        .referrers
        .iter()
        .filter(|r| r.method == DiscoveryMethod::TagSchema)
        .map(|r| r.digest.clone())
        .collect();
    assert_eq!(ours, theirs);

    // Cosign legacy tags: the ORAS Python SDK lists the repository's `sha256-<hex>.sig/.att/.sbom`
    // tags and reads their manifests' digests; refwarden's cosign-tag referrers are exactly those.
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/peers/oras_cosign_tags.py"
    );
    let out = Command::new("python3")
        .arg(script)
        .args([reg.host().as_str(), "app", img.digest.as_str()])
        .output()?;
    assert!(
        out.status.success(),
        "oras_cosign_tags.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peer: std::collections::BTreeMap<String, String> = serde_json::from_slice(&out.stdout)?;
    let ours_cosign: std::collections::BTreeMap<String, String> = rep
        .referrers
        .iter()
        .filter(|r| r.method == DiscoveryMethod::CosignTag)
        .map(|r| (r.tag.clone().unwrap_or_default(), r.digest.clone()))
        .collect();
    assert_eq!(ours_cosign, peer);
    assert_eq!(peer.len(), 2, ".sig and .att: {peer:?}");

    // The CLI, as a user runs it (JSON output, tag resolved to the digest).
    let bin = env!("CARGO_BIN_EXE_refwarden");
    let out = Command::new(bin)
        .args([
            "discover",
            &format!("{}/app:v1", reg.host()),
            "--plain-http",
            "-o",
            "json",
        ])
        .output()?;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["result"], "found");
    assert_eq!(v["subject"], img.digest.as_str());
    assert_eq!(v["referrers"].as_array().map(Vec::len), Some(3));
    let tree = Command::new(bin)
        .args([
            "discover",
            &format!("{}/app:v1", reg.host()),
            "--plain-http",
        ])
        .output()?;
    assert_eq!(tree.status.code(), Some(0));
    let text = String::from_utf8_lossy(&tree.stdout);
    assert!(
        text.contains(&sbom_digest) && text.contains("tag-schema"),
        "{text}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_only_artifact_is_undiscoverable_without_referrers_api() -> TestResult {
    refwarden_testkit::init_tracing();
    require_oras();
    let reg = DistributionRegistry::start(DistributionOptions::default())?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    let img = seeder.push_image("app", "v2").await?;
    // What GHCR/GitLab hold: manifests with a subject, no fallback tag.
    let pushed = oras_push(&reg.host(), "app", &img.subject())?;
    assert!(pushed["orphan"]["digest"].is_string());
    seeder
        .push_artifact("app", Some(&img.subject()), media::SPDX_JSON, b"sbom", None)
        .await?;
    let c = client(&reg.url());
    let d = Discoverer::default();
    let out = d
        .discover(
            &c,
            DiscoveryMode::Auto,
            None,
            &DiscoveryRequest::new(c.registry(), "app", &img.digest),
        )
        .await;
    let rep = found(&out);
    assert!(rep.referrers.is_empty(), "{rep:#?}");
    assert_eq!(
        rep.referrers_api,
        Some(false),
        "registry has no referrers API"
    );
    assert_eq!(
        rep.methods,
        vec![DiscoveryMethod::TagSchema, DiscoveryMethod::CosignTag]
    );

    // Forced native on this registry: Unknown, not "no referrers".
    let out = Discoverer::default()
        .discover(
            &c,
            DiscoveryMode::Native,
            None,
            &DiscoveryRequest::new(c.registry(), "app", &img.digest),
        )
        .await;
    assert!(
        matches!(out.as_ref(), DiscoveryOutcome::Unknown { reason, .. } if reason == "ReferrersApiUnsupported"),
        "{out:?}"
    );
    Ok(())
}

#[test]
fn cli_exit_codes_for_bad_input_and_registry_errors() {
    let bin = env!("CARGO_BIN_EXE_refwarden");
    let out = Command::new(bin)
        .args(["discover", "Not A Reference"])
        .output()
        .expect("run refwarden");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Not A Reference"));
    // Nothing listens on this port: registry error.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let digest = format!("sha256:{}", "a".repeat(64));
    let out = Command::new(bin)
        .args([
            "discover",
            &format!("127.0.0.1:{port}/app@{digest}"),
            "--plain-http",
            "--timeout-seconds",
            "5",
        ])
        .output()
        .expect("run refwarden");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fallback tag index is written by clients, not the registry: an entry whose
/// manifest has another subject (a stale or hand-edited index) is not a referrer,
/// even when its descriptor carries an informative artifactType.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fallback_index_entries_must_have_the_subject() -> TestResult {
    let reg = DistributionRegistry::start(DistributionOptions::default())?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    let a = seeder.push_image("app", "a").await?;
    let b = seeder.push_image("app", "b").await?;
    // A signature of B, listed in A's fallback index (with its artifactType).
    let sig_of_b = seeder
        .push_artifact(
            "app",
            Some(&b.subject()),
            "application/vnd.dev.cosign.artifact.sig.v1+json",
            b"sig",
            None,
        )
        .await?;
    seeder
        .push_referrers_tag_index("app", &a.digest, &[sig_of_b.descriptor()])
        .await?;
    let c = client(&reg.url());
    let out = Discoverer::default()
        .discover(
            &c,
            DiscoveryMode::TagFallback,
            None,
            &DiscoveryRequest::new(c.registry(), "app", &a.digest),
        )
        .await;
    let rep = found(&out);
    assert!(rep.referrers.is_empty(), "{rep:#?}");
    assert!(
        rep.notes.iter().any(|n| n.contains("subject")),
        "the report says why: {:?}",
        rep.notes
    );
    // The same index under B's tag is B's real referrer.
    seeder
        .push_referrers_tag_index("app", &b.digest, &[sig_of_b.descriptor()])
        .await?;
    let out = Discoverer::default()
        .discover(
            &c,
            DiscoveryMode::TagFallback,
            None,
            &DiscoveryRequest::new(c.registry(), "app", &b.digest),
        )
        .await;
    let rep = found(&out);
    assert_eq!(rep.referrers.len(), 1, "{rep:#?}");
    assert_eq!(rep.referrers[0].digest, sig_of_b.digest);
    Ok(())
}
