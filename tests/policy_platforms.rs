//! `subjectMatch: IndexOrPlatform` through `evaluate_policy` against the spec OCI registry:
//! platform manifests are looked at only for images that miss a requirement on their own
//! digest, with the verdicts IndexOrPlatform defines (an index is compliant when every platform
//! carries the artifact, not when one does); request counts come from the registry's access log.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use refwarden::crd::{ReferrerPolicySpec, ReferrerPolicyStatus, SubjectMatch};
use refwarden::discovery::Discoverer;
use refwarden::policy::{PodInfo, PolicyInput, evaluate_policy};
use refwarden::registry::{ImplicitAccess, PlainHttp, RegistryDirectory};
use refwarden_testkit::{OciRegistry, Quirks, SeedAuth, Seeder};

type TestResult = refwarden_testkit::Result<()>;

const SIG: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

fn pod(name: &str, host: &str, repo: &str, digest: &str) -> PodInfo {
    refwarden_testkit::running_pod(
        name,
        format!("{host}/{repo}:v1"),
        format!("{host}/{repo}@{digest}"),
    )
}

/// The spec registry on 127.0.0.1, its seeder and its `host:port`.
fn start() -> refwarden_testkit::Result<(OciRegistry, Seeder, String)> {
    refwarden_testkit::init_tracing();
    refwarden::registry::ensure_crypto_provider();
    let reg = OciRegistry::start(Quirks::default())?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    let host = reg.host();
    Ok((reg, seeder, host))
}

fn spec(subject_match: SubjectMatch) -> ReferrerPolicySpec {
    refwarden_testkit::signature_policy("signature", subject_match)
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
    // Registries without a RegistryProfile, named plain HTTP (as `--plain-http` does).
    let dir = RegistryDirectory::with_implicit(ImplicitAccess {
        plain_http: PlainHttp::All,
        ..ImplicitAccess::default()
    });
    evaluate_policy(
        &input,
        pods.iter(),
        &BTreeMap::new(),
        &dir,
        d,
        &refwarden::policy::Verifier::new(),
        Time(jiff::Timestamp::now()),
    )
    .await
    .status
}

fn violating_digests(s: &ReferrerPolicyStatus) -> Vec<String> {
    let mut v: Vec<String> = s.violations.iter().map(|v| v.digest.clone()).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platforms_are_expanded_only_for_images_missing_a_requirement() -> TestResult {
    let (reg, seeder, host) = start()?;

    // Signed single-platform image; unsigned one; an index whose every platform is signed;
    // an index with only one platform signed.
    let signed = seeder.push_image("signed", "v1").await?;
    seeder
        .push_artifact("signed", Some(&signed.subject()), SIG, b"sig", None)
        .await?;
    let plain = seeder.push_image("plain", "v1").await?;
    let all = seeder.push_index("all", "v1").await?;
    for p in &all.images {
        seeder
            .push_artifact("all", Some(&p.subject()), SIG, p.digest.as_bytes(), None)
            .await?;
    }
    let partial = seeder.push_index("partial", "v1").await?;
    seeder
        .push_artifact(
            "partial",
            Some(&partial.images[0].subject()),
            SIG,
            b"one platform",
            None,
        )
        .await?;
    let pods = vec![
        pod("signed", &host, "signed", &signed.digest),
        pod("plain", &host, "plain", &plain.digest),
        pod("all", &host, "all", &all.digest),
        pod("partial", &host, "partial", &partial.digest),
    ];

    reg.clear_access_log();
    let d = Discoverer::default();
    let status = evaluate(&spec(SubjectMatch::IndexOrPlatform), &pods, &d).await;
    let summary = status.summary.clone();
    assert_eq!(
        (summary.compliant, summary.non_compliant, summary.unknown),
        (2, 2, 0),
        "{status:?}"
    );
    let mut want = vec![plain.digest.clone(), partial.digest.clone()];
    want.sort();
    assert_eq!(violating_digests(&status), want);

    // The signed image cost its one referrers listing: its manifest was never fetched.
    // (Seeded content is deterministic: the repositories share digests, so count per repo.)
    let manifest_gets = |repo: &str, digest: &str| {
        reg.count_requests("GET", &format!("/v2/{repo}/manifests/{digest}"))
    };
    assert_eq!(manifest_gets("signed", &signed.digest), 0);
    for (repo, d) in [
        ("plain", &plain.digest),
        ("all", &all.digest),
        ("partial", &partial.digest),
    ] {
        assert_eq!(
            manifest_gets(repo, d),
            1,
            "{repo}: fetched once to know whether it is an index"
        );
    }
    // Referrers: one listing per running digest (never repeated for the expansion), plus one
    // per platform of the two indexes.
    assert_eq!(reg.count_requests("GET", "/referrers/"), 4 + 2 + 2);
    // The union with the tag fallbacks (cosign ≤ 2 tags) costs each repository whose image
    // misses a requirement one tag list, shared by the expansion; no tag exists, none fetched.
    assert_eq!(reg.count_requests("GET", "/v2/signed/tags/list"), 0);
    for repo in ["plain", "all", "partial"] {
        assert_eq!(
            reg.count_requests("GET", &format!("/v2/{repo}/tags/list")),
            1,
            "{repo}"
        );
    }
    assert_eq!(reg.request_count(), 8 + 3 + 3);

    // A recheck within the TTL: nothing asked again, same verdicts.
    reg.clear_access_log();
    let again = evaluate(&spec(SubjectMatch::IndexOrPlatform), &pods, &d).await;
    assert_eq!(reg.request_count(), 0);
    assert_eq!(violating_digests(&again), violating_digests(&status));

    // Exact never looks at platforms: the fully signed index is a violation too.
    let d = Discoverer::default();
    reg.clear_access_log();
    let exact = evaluate(&spec(SubjectMatch::Exact), &pods, &d).await;
    assert_eq!(reg.count_requests("GET", "/manifests/"), 0);
    assert_eq!(reg.count_requests("GET", "/tags/list"), 3);
    assert_eq!(reg.request_count(), 4 + 3);
    let mut want = vec![plain.digest, all.digest, partial.digest];
    want.sort();
    assert_eq!(violating_digests(&exact), want);
    Ok(())
}

/// An expanded answer is rebuilt when the answer it was built on is: a platform signature pushed
/// after the first expansion is seen once the digest's own listing is refreshed, even though the
/// expanded entry itself has not expired yet. (Bounded sleeps around a 1 s TTL; no timing is
/// asserted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expanded_answers_do_not_outlive_the_listing_they_reuse() -> TestResult {
    let (_reg, seeder, host) = start()?; // the registry lives until the end of the test
    let partial = seeder.push_index("partial", "v1").await?;
    seeder
        .push_artifact(
            "partial",
            Some(&partial.images[0].subject()),
            SIG,
            b"amd64",
            None,
        )
        .await?;
    let pods = vec![pod("partial", &host, "partial", &partial.digest)];
    let d = Discoverer::new(refwarden::discovery::DiscovererConfig {
        ttl: std::time::Duration::from_secs(1),
        ..Default::default()
    });
    // t≈0: the digest's own listing is cached (Exact); t≈0.6 s: the expansion reuses it.
    let exact = evaluate(&spec(SubjectMatch::Exact), &pods, &d).await;
    assert_eq!(exact.summary.non_compliant, 1);
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let before = evaluate(&spec(SubjectMatch::IndexOrPlatform), &pods, &d).await;
    assert_eq!(violating_digests(&before), vec![partial.digest.clone()]);
    // The second platform gets its signature; t≈1.2 s: the listing has expired, the expanded
    // answer (built at 0.6 s) has not.
    seeder
        .push_artifact(
            "partial",
            Some(&partial.images[1].subject()),
            SIG,
            b"arm64",
            None,
        )
        .await?;
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let after = evaluate(&spec(SubjectMatch::IndexOrPlatform), &pods, &d).await;
    assert_eq!(
        (after.summary.compliant, after.summary.non_compliant),
        (1, 0),
        "{after:?}"
    );
    Ok(())
}
