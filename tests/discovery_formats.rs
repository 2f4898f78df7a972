//! Every signature, whoever wrote it, wherever the registry put it: artifacts laid out the way
//! each tool writes them (`refwarden_testkit::tools`) on a registry with the referrers API (the spec
//! registry, with the deviations of real registries switched on) and on the real distribution
//! 2.8 (no API), judged through `evaluate_policy` (the controller's and `refwarden evaluate`'s
//! reconcile function) and listed through the Discoverer as `refwarden discover` does. Costs are
//! asserted from the registries' access logs.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use refwarden::crd::{
    DiscoveryMode, Preset, ReferrerPolicySpec, ReferrerPolicyStatus, Requirement, SubjectMatch,
};
use refwarden::discovery::{
    ArtifactKind, AttachedTo, Discoverer, DiscovererConfig, DiscoveryMethod, DiscoveryOutcome,
    DiscoveryReport, DiscoveryRequest, Format, Reach, Referrer,
};
use refwarden::policy::{PodInfo, PolicyInput, evaluate_policy};
use refwarden::registry::{ImplicitAccess, PlainHttp, RegistryDirectory};
use refwarden::registry::{RegistryClient, RegistryClientConfig};
use refwarden_testkit::faults::{Action, FaultProxy, Rule, Synth};
use refwarden_testkit::tools::{self, Envelope};
use refwarden_testkit::{
    DescriptorTyping, DistributionOptions, DistributionRegistry, OciRegistry, Quirks,
    ReferrersMode, SeedAuth, Seeder, Subject,
};

type TestResult = refwarden_testkit::Result<()>;

const SIG: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

fn pod(name: &str, host: &str, repo: &str, digest: &str) -> PodInfo {
    refwarden_testkit::running_pod(
        name,
        format!("{host}/{repo}:v1"),
        format!("{host}/{repo}@{digest}"),
    )
}

fn spec_registry(q: Quirks) -> refwarden_testkit::Result<(OciRegistry, Seeder)> {
    refwarden_testkit::init_tracing();
    refwarden::registry::ensure_crypto_provider();
    let reg = OciRegistry::start(q)?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    Ok((reg, seeder))
}

fn client(url: &str) -> RegistryClient {
    refwarden::registry::ensure_crypto_provider();
    RegistryClient::new(RegistryClientConfig::new(url, true).expect("config")).expect("client")
}

fn requirement(name: &str, preset: Option<Preset>, formats: &[Format]) -> Requirement {
    Requirement {
        name: name.into(),
        preset,
        artifact_types: vec![],
        legacy_tag_suffixes: vec![],
        min_count: 1,
        formats: formats.to_vec(),
        repository: None,
        verify: None,
    }
}

fn policy(require: Vec<Requirement>, subject_match: SubjectMatch) -> ReferrerPolicySpec {
    let mut s = refwarden_testkit::signature_policy("signature", subject_match);
    s.require = require;
    s
}

async fn evaluate(
    spec: &ReferrerPolicySpec,
    pods: &[PodInfo],
    d: &Discoverer,
) -> ReferrerPolicyStatus {
    let input = PolicyInput {
        name: "p",
        spec,
        generation: Some(1),
        previous: None,
        trust: &Default::default(),
    };
    evaluate_policy(
        &input,
        pods.iter(),
        &BTreeMap::new(),
        // Test registries have no RegistryProfile: named plain HTTP, as `--plain-http` does.
        &RegistryDirectory::with_implicit(ImplicitAccess {
            plain_http: PlainHttp::All,
            ..ImplicitAccess::default()
        }),
        d,
        &refwarden::policy::Verifier::new(),
        Time(jiff::Timestamp::now()),
    )
    .await
    .status
}

/// `(compliant, non-compliant, unknown)`.
fn counts(s: &ReferrerPolicyStatus) -> (u32, u32, u32) {
    (
        s.summary.compliant,
        s.summary.non_compliant,
        s.summary.unknown,
    )
}

async fn discover_union(
    d: &Discoverer,
    c: &RegistryClient,
    repo: &str,
    digest: &str,
    depth: u32,
    platforms: bool,
) -> DiscoveryReport {
    let mut req = DiscoveryRequest::new(c.registry(), repo, digest);
    req.depth = depth;
    req.platforms = platforms;
    match d
        .discover(c, DiscoveryMode::Auto, None, &req)
        .await
        .as_ref()
    {
        DiscoveryOutcome::Found(r) => r.clone(),
        other => panic!("{repo}@{digest}: {other:?}"),
    }
}

fn by_digest<'a>(r: &'a DiscoveryReport, digest: &str) -> &'a Referrer {
    r.referrers
        .iter()
        .find(|x| x.digest == digest)
        .unwrap_or_else(|| panic!("{digest} not in {r:#?}"))
}

/// Most signed images in use were signed by cosign ≤ 2, which writes `.sig` / `.att` tags even
/// on registries with the referrers API (ECR, ACR, Zot, Quay, Docker Hub). Auto mode must find
/// them; a natively signed image still costs one request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosign2_tags_on_a_registry_with_the_api() -> TestResult {
    let (reg, seeder) = spec_registry(Quirks::default())?;
    let host = reg.host();
    let native = seeder.push_image("app", "native").await?;
    seeder
        .push_artifact("app", Some(&native.subject()), SIG, b"native sig", None)
        .await?;
    let tagged = seeder.push_image("app", "cosign2").await?;
    let sig = tools::cosign2_sign(&seeder, "app", &tagged.digest).await?;
    let att = tools::cosign2_attest(&seeder, "app", &tagged.digest, tools::SLSA_V1).await?;
    let bare = seeder.push_image("app", "bare").await?;
    let pods = vec![
        pod("native", &host, "app", &native.digest),
        pod("tagged", &host, "app", &tagged.digest),
        pod("bare", &host, "app", &bare.digest),
    ];
    let spec = refwarden_testkit::signature_policy("signature", SubjectMatch::Exact);
    let d = Discoverer::default();
    reg.clear_access_log();
    let status = evaluate(&spec, &pods, &d).await;
    assert_eq!(counts(&status), (2, 1, 0), "{status:#?}");
    assert_eq!(status.violations[0].digest, bare.digest);
    // The natively signed image: its one referrers listing, nothing else.
    let on = |digest: &str| {
        reg.access_log()
            .iter()
            .filter(|e| e.path.contains(&digest["sha256:".len()..]))
            .count()
    };
    assert_eq!(on(&native.digest), 1);
    // The tag-signed one: its listing, then only the tags that exist (.sig and .att).
    assert_eq!(on(&tagged.digest), 1 + 2, "{:#?}", reg.access_log());
    // One tag list for the repository, shared by both images that missed natively.
    assert_eq!(reg.count_requests("GET", "/v2/app/tags/list"), 1);
    assert_eq!(reg.request_count(), 3 + 1 + 2);
    // Warm: nothing.
    reg.clear_access_log();
    let again = evaluate(&spec, &pods, &d).await;
    assert_eq!(counts(&again), (2, 1, 0));
    assert_eq!(reg.request_count(), 0);

    // What `refwarden discover` lists for the tag-signed image: by the method that found each.
    let c = client(&reg.url());
    let r = discover_union(&Discoverer::default(), &c, "app", &tagged.digest, 0, false).await;
    assert_eq!(r.referrers_api, Some(true));
    let s = by_digest(&r, &sig);
    assert_eq!(
        (s.method, s.format, s.kinds.clone()),
        (
            DiscoveryMethod::CosignTag,
            Format::CosignSimpleSigning,
            vec![ArtifactKind::CosignSignature]
        )
    );
    assert!(s.tag.as_deref().is_some_and(|t| t.ends_with(".sig")));
    let a = by_digest(&r, &att);
    assert_eq!(a.format, Format::CosignAttestation);
    assert_eq!(a.kinds, vec![ArtifactKind::SlsaProvenance]);
    assert_eq!(a.predicate_type.as_deref(), Some(tools::SLSA_V1));
    Ok(())
}

/// cosign 3 writes sigstore bundles: as referrers where the API exists, else through a
/// `sha256-<hex>` index that ggcr < 0.21.6 typed `application/vnd.oci.empty.v1+json` without
/// annotations. Both are found and classified from the manifest; a requirement can ask for the
/// bundle format only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosign3_bundles_as_referrers_and_through_the_untyped_fallback_index() -> TestResult {
    let (reg, seeder) = spec_registry(Quirks::default())?;
    let host = reg.host();
    let img = seeder.push_image("app", "v1").await?;
    let bundle =
        tools::bundle_referrer(&seeder, "app", &img.subject(), tools::COSIGN_SIGN_PREDICATE)
            .await?;
    let old = seeder.push_image("app", "cosign2").await?;
    tools::cosign2_sign(&seeder, "app", &old.digest).await?;
    let bundles_only = policy(
        vec![requirement(
            "bundle",
            Some(Preset::Signature),
            &[Format::SigstoreBundleV03],
        )],
        SubjectMatch::Exact,
    );
    let pods = vec![
        pod("bundle", &host, "app", &img.digest),
        pod("old", &host, "app", &old.digest),
    ];
    let d = Discoverer::default();
    reg.clear_access_log();
    let status = evaluate(&bundles_only, &pods, &d).await;
    assert_eq!(counts(&status), (1, 1, 0), "{status:#?}");
    assert_eq!(
        status.violations[0].digest, old.digest,
        "a .sig is not a bundle"
    );
    let on_bundle = reg
        .access_log()
        .iter()
        .filter(|e| e.path.contains(&img.digest["sha256:".len()..]))
        .count();
    assert_eq!(
        on_bundle, 1,
        "a typed, annotated bundle referrer: one request"
    );
    let c = client(&reg.url());
    let r = discover_union(&Discoverer::default(), &c, "app", &img.digest, 0, false).await;
    let b = by_digest(&r, &bundle.digest);
    assert_eq!(
        (b.method, b.format, b.kinds.clone()),
        (
            DiscoveryMethod::Native,
            Format::SigstoreBundleV03,
            vec![ArtifactKind::SigstoreBundle]
        )
    );
    assert_eq!(
        b.predicate_type.as_deref(),
        Some(tools::COSIGN_SIGN_PREDICATE)
    );
    assert_eq!(
        b.annotations
            .get("dev.sigstore.bundle.content")
            .map(String::as_str),
        Some("dsse-envelope")
    );

    // distribution 2.8 (no API): the bundle behind an untyped ggcr fallback index.
    let dist = DistributionRegistry::start(DistributionOptions::default())?;
    let ds = Seeder::new(&dist.url(), SeedAuth::None)?;
    let img = ds.push_image("app", "v1").await?;
    let bundle =
        tools::bundle_referrer(&ds, "app", &img.subject(), tools::COSIGN_SIGN_PREDICATE).await?;
    tools::ggcr_fallback_index_untyped(&ds, "app", &img.digest, &bundle).await?;
    let status = evaluate(
        &bundles_only,
        &[pod("bundle", &dist.host(), "app", &img.digest)],
        &Discoverer::default(),
    )
    .await;
    assert_eq!(counts(&status), (1, 0, 0), "{status:#?}");
    let r = discover_union(
        &Discoverer::default(),
        &client(&dist.url()),
        "app",
        &img.digest,
        0,
        false,
    )
    .await;
    let b = by_digest(&r, &bundle.digest);
    assert_eq!(b.method, DiscoveryMethod::TagSchema);
    assert_eq!(b.format, Format::SigstoreBundleV03);
    assert_eq!(
        b.artifact_type.as_deref(),
        Some(tools::BUNDLE_V03),
        "classified from the manifest"
    );
    Ok(())
}

/// notation signatures: the envelope (JWS or COSE) is read only when a requirement asks for it;
/// notation 1.2–1.3 writes the tag index next to the API's answer, found once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notation_jws_and_cose() -> TestResult {
    let (reg, seeder) = spec_registry(Quirks::default())?;
    let host = reg.host();
    let jws_img = seeder.push_image("app", "jws").await?;
    let jws = tools::notation_sign(&seeder, "app", &jws_img.subject(), Envelope::Jws, true).await?;
    let cose_img = seeder.push_image("app", "cose").await?;
    let cose =
        tools::notation_sign(&seeder, "app", &cose_img.subject(), Envelope::Cose, false).await?;
    let pods = vec![
        pod("jws", &host, "app", &jws_img.digest),
        pod("cose", &host, "app", &cose_img.digest),
    ];
    // Any notation signature: each image costs its one listing.
    let any = policy(
        vec![requirement("sig", Some(Preset::NotationSignature), &[])],
        SubjectMatch::Exact,
    );
    let d = Discoverer::default();
    reg.clear_access_log();
    assert_eq!(counts(&evaluate(&any, &pods, &d).await), (2, 0, 0));
    assert_eq!(reg.request_count(), 2);
    // COSE only: the envelopes are read to decide.
    let cose_only = policy(
        vec![requirement("sig", None, &[Format::NotationCose])],
        SubjectMatch::Exact,
    );
    let status = evaluate(&cose_only, &pods, &Discoverer::default()).await;
    assert_eq!(counts(&status), (1, 1, 0), "{status:#?}");
    assert_eq!(status.violations[0].digest, jws_img.digest);

    let c = client(&reg.url());
    let r = discover_union(&Discoverer::default(), &c, "app", &jws_img.digest, 0, false).await;
    assert_eq!(
        r.referrers.len(),
        1,
        "API answer and tag index merged: {r:#?}"
    );
    let j = by_digest(&r, &jws.digest);
    assert_eq!(
        (j.method, j.format),
        (DiscoveryMethod::Native, Format::NotationJws)
    );
    let r = discover_union(
        &Discoverer::default(),
        &c,
        "app",
        &cose_img.digest,
        0,
        false,
    )
    .await;
    assert_eq!(by_digest(&r, &cose.digest).format, Format::NotationCose);
    Ok(())
}

/// BuildKit attestations inside the index (and, from 0.32, also as referrers of each platform),
/// with docker/github-builder's bundle signature on each attestation manifest (a referrer of a
/// referrer): found with platforms and depth, usable by IndexOrPlatform.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buildkit_indexes_with_signed_attestation_manifests() -> TestResult {
    let (reg, seeder) = spec_registry(Quirks::default())?;
    let host = reg.host();
    let bk = tools::buildkit_image(&seeder, "app", "v1", true).await?;
    let mut sigs = Vec::new();
    for att in &bk.attestations {
        let s = Subject::new(att, refwarden_testkit::media::OCI_MANIFEST, 1);
        sigs.push(
            tools::bundle_referrer(&seeder, "app", &s, tools::COSIGN_SIGN_PREDICATE)
                .await?
                .digest,
        );
    }
    let c = client(&reg.url());
    let r = discover_union(&Discoverer::default(), &c, "app", &bk.index.digest, 1, true).await;
    assert_eq!(r.platforms.len(), 2);
    assert_eq!(
        r.platforms
            .iter()
            .map(|p| p.platform.clone())
            .collect::<Vec<_>>(),
        vec![
            Some("linux/amd64".to_string()),
            Some("linux/arm64".to_string())
        ]
    );
    for (i, att) in bk.attestations.iter().enumerate() {
        let a = by_digest(&r, att);
        assert_eq!(a.format, Format::BuildkitAttestation);
        assert_eq!(a.attached_to, AttachedTo::Platform);
        assert_eq!(a.subject, bk.index.images[i].digest);
        assert_eq!(
            a.platform.as_deref(),
            Some(bk.index.images[i].platform.as_str())
        );
        assert!(a.kinds.contains(&ArtifactKind::SpdxSbom), "{a:?}");
        assert!(a.kinds.contains(&ArtifactKind::SlsaProvenance), "{a:?}");
        // Found in the index and as a referrer: listed once.
        assert_eq!(r.referrers.iter().filter(|x| x.digest == *att).count(), 1);
        assert_eq!(
            a.referrers
                .iter()
                .map(|x| x.digest.clone())
                .collect::<Vec<_>>(),
            vec![sigs[i].clone()],
            "the signature on the attestation manifest is nested under it"
        );
    }
    // A policy requiring an SBOM on the running index: met through its platforms.
    let sbom = policy(
        vec![requirement("sbom", Some(Preset::Sbom), &[])],
        SubjectMatch::IndexOrPlatform,
    );
    let status = evaluate(
        &sbom,
        &[pod("bk", &host, "app", &bk.index.digest)],
        &Discoverer::default(),
    )
    .await;
    assert_eq!(counts(&status), (1, 0, 0), "{status:#?}");

    // Without the 0.32 referrers (in the index only), on distribution 2.8.
    let dist = DistributionRegistry::start(DistributionOptions::default())?;
    let ds = Seeder::new(&dist.url(), SeedAuth::None)?;
    let bk = tools::buildkit_image(&ds, "app", "v1", false).await?;
    let status = evaluate(
        &sbom,
        &[pod("bk", &dist.host(), "app", &bk.index.digest)],
        &Discoverer::default(),
    )
    .await;
    assert_eq!(counts(&status), (1, 0, 0), "{status:#?}");
    Ok(())
}

/// actions/attest pushes a SLSA provenance bundle (typed, annotated, and a typed fallback index):
/// it is provenance, not a signature of the image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_artifact_attestations_are_provenance_not_signatures() -> TestResult {
    let (reg, seeder) = spec_registry(Quirks::default())?;
    let host = reg.host();
    let img = seeder.push_image("app", "v1").await?;
    let att = tools::bundle_referrer(&seeder, "app", &img.subject(), tools::SLSA_V1).await?;
    tools::typed_fallback_index(&seeder, "app", &img.digest, &[&att]).await?;
    let pods = vec![pod("app", &host, "app", &img.digest)];
    let signature = refwarden_testkit::signature_policy("signature", SubjectMatch::Exact);
    assert_eq!(
        counts(&evaluate(&signature, &pods, &Discoverer::default()).await),
        (0, 1, 0)
    );
    let provenance = policy(
        vec![requirement("provenance", Some(Preset::SlsaProvenance), &[])],
        SubjectMatch::Exact,
    );
    assert_eq!(
        counts(&evaluate(&provenance, &pods, &Discoverer::default()).await),
        (1, 0, 0)
    );
    let r = discover_union(
        &Discoverer::default(),
        &client(&reg.url()),
        "app",
        &img.digest,
        0,
        false,
    )
    .await;
    let a = by_digest(&r, &att.digest);
    assert_eq!(
        (a.format, a.kinds.clone()),
        (
            Format::SigstoreBundleV03,
            vec![ArtifactKind::SlsaProvenance]
        )
    );
    assert_eq!(r.referrers.len(), 1, "API and tag index: once");
    Ok(())
}

/// `oras attach` an SBOM, then a signature onto the SBOM (as in Red Hat's Quay post): the
/// signature is a referrer of the referrer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_on_sboms() -> TestResult {
    let (reg, seeder) = spec_registry(Quirks::default())?;
    let img = seeder.push_image("app", "v1").await?;
    let sbom = tools::oras_attach_sbom(&seeder, "app", &img.subject()).await?;
    let on_sbom = Subject::new(&sbom.digest, &sbom.media_type, sbom.size);
    let sig = seeder
        .push_artifact("app", Some(&on_sbom), SIG, b"sbom sig", None)
        .await?;
    let r = discover_union(
        &Discoverer::default(),
        &client(&reg.url()),
        "app",
        &img.digest,
        1,
        false,
    )
    .await;
    let s = by_digest(&r, &sbom.digest);
    assert_eq!(s.format, Format::Spdx);
    assert_eq!(
        s.referrers
            .iter()
            .map(|x| (x.digest.clone(), x.format))
            .collect::<Vec<_>>(),
        vec![(sig.digest, Format::CosignSimpleSigning)]
    );
    Ok(())
}

/// cosign's `COSIGN_REPOSITORY` / Kyverno's `repository`: signatures of `app` stored in
/// `signatures` (same registry) or on another registry; a requirement names the repository.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_in_another_repository() -> TestResult {
    let (reg, seeder) = spec_registry(Quirks::default())?;
    let host = reg.host();
    let img = seeder.push_image("app", "v1").await?;
    // cosign 2 with COSIGN_REPOSITORY: the .sig tag lives in `signatures` (whose own image
    // content is unrelated).
    seeder.push_image("signatures", "unrelated").await?;
    tools::cosign2_sign(&seeder, "signatures", &img.digest).await?;
    let pods = vec![pod("app", &host, "app", &img.digest)];
    let mut with_repo = requirement("signature", Some(Preset::Signature), &[]);
    with_repo.repository = Some(format!("{host}/signatures"));
    assert_eq!(
        counts(
            &evaluate(
                &refwarden_testkit::signature_policy("signature", SubjectMatch::Exact),
                &pods,
                &Discoverer::default()
            )
            .await
        ),
        (0, 1, 0)
    );
    let status = evaluate(
        &policy(vec![with_repo], SubjectMatch::Exact),
        &pods,
        &Discoverer::default(),
    )
    .await;
    assert_eq!(counts(&status), (1, 0, 0), "{status:#?}");

    // cosign 3 (≥ 3.0.3) bundles with COSIGN_REPOSITORY on another registry without the API:
    // distribution 2.8, through the untyped fallback index in that repository.
    let dist = DistributionRegistry::start(DistributionOptions::default())?;
    let ds = Seeder::new(&dist.url(), SeedAuth::None)?;
    ds.push_image("sigs", "unrelated").await?;
    let bundle =
        tools::bundle_referrer(&ds, "sigs", &img.subject(), tools::COSIGN_SIGN_PREDICATE).await?;
    tools::ggcr_fallback_index_untyped(&ds, "sigs", &img.digest, &bundle).await?;
    let mut elsewhere = requirement(
        "signature",
        Some(Preset::Signature),
        &[Format::SigstoreBundleV03],
    );
    elsewhere.repository = Some(format!("{}/sigs", dist.host()));
    let status = evaluate(
        &policy(vec![elsewhere.clone()], SubjectMatch::Exact),
        &pods,
        &Discoverer::default(),
    )
    .await;
    assert_eq!(counts(&status), (1, 0, 0), "{status:#?}");

    // The other registry down: Unknown, never a violation.
    drop(dist);
    let status = evaluate(
        &policy(vec![elsewhere], SubjectMatch::Exact),
        &pods,
        &Discoverer::default(),
    )
    .await;
    assert_eq!(counts(&status), (0, 0, 1), "{status:#?}");
    assert!(
        status.unknown[0].message.contains("referrers repository"),
        "{:?}",
        status.unknown
    );
    Ok(())
}

/// The deviations of real registries, each a switch of the spec registry: GHCR's empty index and
/// its redirect to github.com (answering 429), ACR's descriptors without `artifactType`,
/// descriptors typed `oci.empty`. Signatures in cosign tags are still found; classification
/// reads a manifest only when a requirement needs it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registries_that_half_work() -> TestResult {
    let spec = refwarden_testkit::signature_policy("signature", SubjectMatch::Exact);

    // GHCR 200 {"manifests":[]}: not proof of absence.
    let (reg, seeder) = spec_registry(Quirks {
        referrers: ReferrersMode::AlwaysEmptyIndex,
        ..Quirks::default()
    })?;
    let img = seeder.push_image("app", "v1").await?;
    tools::cosign2_sign(&seeder, "app", &img.digest).await?;
    let status = evaluate(
        &spec,
        &[pod("app", &reg.host(), "app", &img.digest)],
        &Discoverer::default(),
    )
    .await;
    assert_eq!(counts(&status), (1, 0, 0), "{status:#?}");

    // GHCR 303 → github.com → 429: no usable API; the tags answer; github.com hears nothing.
    let github = FaultProxy::standalone()?;
    github.set_rules(vec![Rule::any(Action::Respond(
        Synth::new(429).header("Retry-After", "60"),
    ))]);
    let (reg, seeder) = spec_registry(Quirks {
        referrers: ReferrersMode::RedirectElsewhere,
        redirect_elsewhere: Some(github.url()),
        ..Quirks::default()
    })?;
    let img = seeder.push_image("app", "v1").await?;
    tools::cosign2_sign(&seeder, "app", &img.digest).await?;
    let unsigned = seeder.push_image("app", "v2").await?;
    let pods = vec![
        pod("signed", &reg.host(), "app", &img.digest),
        pod("unsigned", &reg.host(), "app", &unsigned.digest),
    ];
    let status = evaluate(&spec, &pods, &Discoverer::default()).await;
    assert_eq!(counts(&status), (1, 1, 0), "{status:#?}");
    assert_eq!(status.violations[0].digest, unsigned.digest);
    assert!(github.log().is_empty(), "{:?}", github.log());

    // Descriptors without artifactType (ACR/CMK) or typed oci.empty: a compliant image whose
    // signature descriptor says what it is costs one request; an uninformative one is read only
    // because the requirement needs it.
    for typing in [DescriptorTyping::Omitted, DescriptorTyping::OciEmpty] {
        let (reg, seeder) = spec_registry(Quirks {
            descriptor_artifact_type: typing,
            ..Quirks::default()
        })?;
        let img = seeder.push_image("app", "v1").await?;
        let bundle =
            tools::bundle_referrer(&seeder, "app", &img.subject(), tools::COSIGN_SIGN_PREDICATE)
                .await?;
        reg.clear_access_log();
        let status = evaluate(
            &spec,
            &[pod("app", &reg.host(), "app", &img.digest)],
            &Discoverer::default(),
        )
        .await;
        assert_eq!(counts(&status), (1, 0, 0), "{typing:?}: {status:#?}");
        assert_eq!(
            reg.count_requests("GET", &format!("/manifests/{}", bundle.digest)),
            1,
            "{typing:?}: classified from its manifest"
        );
    }
    Ok(())
}

/// The cost gates: a compliant image costs one request cold and none warm, whatever the number
/// of policies; the repository's tag list is read once per window and shared by every digest
/// that needs it; only tags that exist are fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compliant_images_cost_one_request_and_tag_lists_are_shared() -> TestResult {
    let (reg, seeder) = spec_registry(Quirks::default())?;
    let host = reg.host();
    let mut pods = Vec::new();
    let mut natively = Vec::new();
    for i in 0..6 {
        let img = seeder.push_image("app", &format!("n{i}")).await?;
        seeder
            .push_artifact(
                "app",
                Some(&img.subject()),
                SIG,
                format!("n{i}").as_bytes(),
                None,
            )
            .await?;
        natively.push(img.digest.clone());
        pods.push(pod(&format!("n{i}"), &host, "app", &img.digest));
    }
    for i in 0..4 {
        let img = seeder.push_image("app", &format!("t{i}")).await?;
        tools::cosign2_sign(&seeder, "app", &img.digest).await?;
        pods.push(pod(&format!("t{i}"), &host, "app", &img.digest));
    }
    for i in 0..3 {
        let img = seeder.push_image("other", &format!("t{i}")).await?;
        tools::cosign2_sign(&seeder, "other", &img.digest).await?;
        pods.push(pod(&format!("o{i}"), &host, "other", &img.digest));
    }
    let d = Discoverer::default();
    reg.clear_access_log();
    let spec = refwarden_testkit::signature_policy("signature", SubjectMatch::Exact);
    let mut second = spec.clone();
    second.require[0].name = "sig".into();
    let (a, b) = tokio::join!(evaluate(&spec, &pods, &d), evaluate(&second, &pods, &d));
    assert_eq!(counts(&a), (13, 0, 0), "{a:#?}");
    assert_eq!(counts(&b), (13, 0, 0));
    for digest in &natively {
        let n = reg
            .access_log()
            .iter()
            .filter(|e| e.path.contains(&digest["sha256:".len()..]))
            .count();
        assert_eq!(n, 1, "natively compliant {digest}: one request cold");
    }
    assert_eq!(reg.count_requests("GET", "/v2/app/tags/list"), 1);
    assert_eq!(reg.count_requests("GET", "/v2/other/tags/list"), 1);
    // 13 listings, 2 tag lists, one .sig per tag-signed image.
    assert_eq!(reg.request_count(), 13 + 2 + 7);
    assert_eq!(d.stats().tag_lists, 2);
    reg.clear_access_log();
    evaluate(&spec, &pods, &d).await;
    assert_eq!(reg.request_count(), 0, "warm");
    Ok(())
}

/// A tag list read before a discovery began is not trusted to say a signature is absent: an image
/// signed after the repository was listed is seen (the list is read again, once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_tag_list_does_not_hide_a_new_signature() -> TestResult {
    let (reg, seeder) = spec_registry(Quirks::default())?;
    let host = reg.host();
    let first = seeder.push_image("app", "v1").await?;
    let d = Discoverer::new(DiscovererConfig {
        tag_absence_slack: std::time::Duration::ZERO,
        ..DiscovererConfig::default()
    });
    let spec = refwarden_testkit::signature_policy("signature", SubjectMatch::Exact);
    let status = evaluate(&spec, &[pod("first", &host, "app", &first.digest)], &d).await;
    assert_eq!(counts(&status), (0, 1, 0));
    assert_eq!(reg.count_requests("GET", "/tags/list"), 1);
    // A new image, signed with cosign 2, deployed after the list was read.
    let second = seeder.push_image("app", "v2").await?;
    tools::cosign2_sign(&seeder, "app", &second.digest).await?;
    let status = evaluate(&spec, &[pod("second", &host, "app", &second.digest)], &d).await;
    assert_eq!(counts(&status), (1, 0, 0), "{status:#?}");
    assert_eq!(reg.count_requests("GET", "/tags/list"), 2);
    Ok(())
}

/// The listing alone (what policies ask first) leaves uninformative descriptors unclassified and
/// reads nothing but the API; the union classifies them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_leaves_uninformative_descriptors_unclassified() -> TestResult {
    let (reg, seeder) = spec_registry(Quirks {
        descriptor_artifact_type: DescriptorTyping::Omitted,
        ..Quirks::default()
    })?;
    let img = seeder.push_image("app", "v1").await?;
    let sbom = tools::oras_attach_sbom(&seeder, "app", &img.subject()).await?;
    let c = client(&reg.url());
    let d = Discoverer::default();
    let mut req = DiscoveryRequest::new(c.registry(), "app", &img.digest);
    req.reach = Reach::Listing;
    let out = d.discover(&c, DiscoveryMode::Auto, None, &req).await;
    let DiscoveryOutcome::Found(r) = out.as_ref() else {
        panic!("{out:?}")
    };
    assert_eq!(r.requests, 1);
    assert_eq!(r.referrers[0].format, Format::Unclassified);
    assert!(r.referrers[0].kinds.is_empty());
    let r = discover_union(&d, &c, "app", &img.digest, 0, false).await;
    let s = by_digest(&r, &sbom.digest);
    assert_eq!(
        (s.format, s.kinds.clone()),
        (Format::Spdx, vec![ArtifactKind::SpdxSbom])
    );
    Ok(())
}

/// Cross-check with an independent pusher: the ORAS Python SDK attaches an SBOM and an in-toto
/// statement to the image, then the same two onto the SBOM; refwarden's union at depth 1 lists
/// exactly what it pushed, nested where it put it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oras_attached_chains_are_found_nested() -> TestResult {
    refwarden_testkit::peers::require_oras();
    let (reg, seeder) = spec_registry(Quirks::default())?;
    let img = seeder.push_image("app", "v1").await?;
    let first = refwarden_testkit::peers::oras_push(&reg.host(), "app", &img.subject())?;
    let sbom = &first["sbom"];
    let sbom_digest = sbom["digest"].as_str().ok_or("sbom digest")?.to_string();
    let on_sbom = Subject::new(
        &sbom_digest,
        sbom["mediaType"].as_str().ok_or("mediaType")?,
        sbom["size"].as_u64().ok_or("size")?,
    );
    let second = refwarden_testkit::peers::oras_push(&reg.host(), "app", &on_sbom)?;
    let r = discover_union(
        &Discoverer::default(),
        &client(&reg.url()),
        "app",
        &img.digest,
        1,
        false,
    )
    .await;
    let mut top: Vec<String> = r.referrers.iter().map(|x| x.digest.clone()).collect();
    top.sort();
    let mut want: Vec<String> = ["sbom", "orphan"]
        .iter()
        .filter_map(|k| first[k]["digest"].as_str().map(str::to_string))
        .collect();
    want.sort();
    assert_eq!(top, want);
    let s = by_digest(&r, &sbom_digest);
    assert_eq!(
        (s.method, s.format),
        (DiscoveryMethod::Native, Format::Spdx)
    );
    let mut nested: Vec<String> = s.referrers.iter().map(|x| x.digest.clone()).collect();
    nested.sort();
    let mut want: Vec<String> = ["sbom", "orphan"]
        .iter()
        .filter_map(|k| second[k]["digest"].as_str().map(str::to_string))
        .collect();
    want.sort();
    assert_eq!(nested, want);
    Ok(())
}

fn refwarden(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_refwarden"))
        .args(args)
        .output()
        .expect("run refwarden")
}

/// `refwarden discover` as a user runs it: cosign 2 tags on a registry with the API are listed
/// under "signatures"; GHCR's redirect elsewhere still answers from the tags (exit 0, found);
/// an index says what it holds even without `--platforms`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discover_cli_lists_every_place() -> TestResult {
    let github = FaultProxy::standalone()?;
    github.set_rules(vec![Rule::any(Action::Respond(Synth::new(429)))]);
    let (reg, seeder) = spec_registry(Quirks::default())?;
    let img = seeder.push_image("app", "cosign2").await?;
    let sig = tools::cosign2_sign(&seeder, "app", &img.digest).await?;
    let bk = tools::buildkit_image(&seeder, "app", "multi", false).await?;
    let image = format!("{}/app:cosign2", reg.host());
    let out = refwarden(&["discover", &image, "--plain-http"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("signatures (1)"), "{text}");
    assert!(
        text.contains(&format!("{sig} cosign-simple-signing")),
        "{text}"
    );
    assert!(
        text.contains("methods: native, tag-schema, cosign-tag"),
        "{text}"
    );

    reg.update_quirks(|q| {
        q.referrers = ReferrersMode::RedirectElsewhere;
        q.redirect_elsewhere = Some(github.url());
    });
    let out = refwarden(&["discover", &image, "--plain-http", "-o", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    assert_eq!(v["result"], "found");
    assert_eq!(v["referrersApi"], false);
    assert_eq!(v["referrers"][0]["digest"], sig.as_str());
    assert_eq!(v["referrers"][0]["format"], "cosign-simple-signing");
    assert!(github.log().is_empty());

    reg.update_quirks(|q| q.referrers = ReferrersMode::Native);
    let out = refwarden(&[
        "discover",
        &format!("{}/app:multi", reg.host()),
        "--plain-http",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("hint: this is an image index with 2 platform manifest(s) (linux/amd64, linux/arm64) and 2 in-index attestation manifest(s): add --platforms"),
        "{text}"
    );
    let out = refwarden(&[
        "discover",
        &format!("{}/app@{}", reg.host(), bk.index.digest),
        "--plain-http",
        "--platforms",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("attestations (2)"), "{text}");
    assert!(
        text.contains("on linux/amd64") && text.contains("on linux/arm64"),
        "{text}"
    );
    assert!(
        text.contains("platforms: linux/amd64, linux/arm64"),
        "{text}"
    );
    assert!(!text.contains("hint:"), "{text}");
    Ok(())
}

/// `refwarden evaluate` (the CI gate) on files: a pod whose image is signed only with cosign 2's
/// `.sig` tag, on a registry with the referrers API, is compliant; an unsigned one is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluate_cli_finds_cosign2_tag_signatures() -> TestResult {
    let (reg, seeder) = spec_registry(Quirks::default())?;
    let host = reg.host();
    let signed = seeder.push_image("app", "signed").await?;
    tools::cosign2_sign(&seeder, "app", &signed.digest).await?;
    let bare = seeder.push_image("app", "bare").await?;
    let dir = tempfile::tempdir()?;
    std::fs::write(
        dir.path().join("policy.yaml"),
        "apiVersion: refwarden.dev/v1alpha1\nkind: ReferrerPolicy\nmetadata: {name: signed}\nspec:\n  require: [{name: signature, preset: signature}]\n  subjectMatch: Exact\n",
    )?;
    let pod = |name: &str, digest: &str| {
        serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "app", "image": format!("{host}/app:{name}")}]},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "app", "image": format!("{host}/app:{name}"),
                "imageID": format!("{host}/app@{digest}"), "ready": true, "restartCount": 0}]},
        })
    };
    std::fs::write(
        dir.path().join("pods.json"),
        serde_json::to_vec(&serde_json::json!({"apiVersion": "v1", "kind": "List",
            "items": [pod("signed", &signed.digest), pod("bare", &bare.digest)]}))?,
    )?;
    let out = refwarden(&[
        "evaluate",
        "-f",
        &dir.path().display().to_string(),
        "--plain-http",
        "-o",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "one violation: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let status = &v["referrerPolicies"][0]["status"];
    assert_eq!(status["summary"]["compliant"], 1, "{status}");
    assert_eq!(status["summary"]["nonCompliant"], 1, "{status}");
    assert_eq!(status["violations"][0]["digest"], bare.digest.as_str());
    Ok(())
}
