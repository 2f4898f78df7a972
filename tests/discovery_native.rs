//! Discovery against the spec OCI registry (`OciRegistry`): native API,
//! pagination, filtering, nesting, quirks of real registries, cache and
//! coalescing (asserted with request counts, never timings).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use refwarden::crd::{DiscoveryMode, EffectiveDiscoveryMode};
use refwarden::discovery::{
    ArtifactKind, AttachedTo, Discoverer, DiscovererConfig, DiscoveryMethod, DiscoveryOutcome,
    DiscoveryReport, DiscoveryRequest, Format, Reach,
};
use refwarden::registry::{RegistryClient, RegistryClientConfig, RetryPolicy};
use refwarden_testkit::seed::ArtifactSpec;
use refwarden_testkit::{OciRegistry, Quirks, ReferrersMode, SeedAuth, Seeder, Subject, media};
use serde_json::json;

type TestResult = refwarden_testkit::Result<()>;

const SIG: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";

fn client(url: &str) -> RegistryClient {
    refwarden::registry::ensure_crypto_provider();
    let mut cfg = RegistryClientConfig::new(url, true).expect("config");
    cfg.retry = RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(5),
    };
    RegistryClient::new(cfg).expect("client")
}

fn found(o: &DiscoveryOutcome) -> &DiscoveryReport {
    match o {
        DiscoveryOutcome::Found(r) => r,
        other => panic!("expected Found, got {other:?}"),
    }
}

fn referrers_calls(reg: &OciRegistry) -> usize {
    reg.count_requests("GET", "/referrers/")
}

struct Env {
    reg: OciRegistry,
    seeder: Seeder,
    client: RegistryClient,
}

fn env(q: Quirks) -> refwarden_testkit::Result<Env> {
    refwarden_testkit::init_tracing();
    let reg = OciRegistry::start(q)?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    let client = client(&reg.url());
    Ok(Env {
        reg,
        seeder,
        client,
    })
}

fn req(e: &Env, repo: &str, digest: &str) -> DiscoveryRequest {
    DiscoveryRequest::new(e.client.registry(), repo, digest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_costs_one_request_and_follows_link_pagination() -> TestResult {
    let e = env(Quirks {
        page_size: 2,
        ..Quirks::default()
    })?;
    let img = e.seeder.push_image("app", "v1").await?;
    let mut pushed = Vec::new();
    for (i, at) in [
        SIG,
        media::SPDX_JSON,
        media::CYCLONEDX_JSON,
        media::OPENVEX_JSON,
        SIG,
    ]
    .iter()
    .enumerate()
    {
        pushed.push(
            e.seeder
                .push_artifact(
                    "app",
                    Some(&img.subject()),
                    at,
                    format!("p{i}").as_bytes(),
                    None,
                )
                .await?
                .digest,
        );
    }
    let d = Discoverer::default();
    e.reg.clear_access_log();
    let mut listing = req(&e, "app", &img.digest);
    listing.reach = Reach::Listing;
    let out = d
        .discover(&e.client, DiscoveryMode::Auto, None, &listing)
        .await;
    let r = found(&out);
    let mut got: Vec<_> = r.referrers.iter().map(|x| x.digest.clone()).collect();
    got.sort();
    pushed.sort();
    assert_eq!(got, pushed);
    assert!(
        r.referrers
            .iter()
            .all(|x| x.method == DiscoveryMethod::Native)
    );
    assert_eq!(r.methods, vec![DiscoveryMethod::Native]);
    assert_eq!(r.referrers_api, Some(true));
    // 5 referrers, 2 per page: 3 pages, nothing else (artifactType informative: no fetch).
    assert_eq!(r.requests, 3);
    assert_eq!(e.reg.request_count(), 3);
    assert_eq!(
        d.remembered_mode(e.client.registry()),
        Some(EffectiveDiscoveryMode::Native)
    );

    // The union of the same digest reuses the listing: one tag-list read, no tag exists.
    e.reg.clear_access_log();
    let out = d
        .discover(
            &e.client,
            DiscoveryMode::Auto,
            None,
            &req(&e, "app", &img.digest),
        )
        .await;
    let r = found(&out);
    assert_eq!(r.referrers.len(), 5);
    assert_eq!(
        r.methods,
        vec![
            DiscoveryMethod::Native,
            DiscoveryMethod::TagSchema,
            DiscoveryMethod::CosignTag
        ]
    );
    assert_eq!(r.requests, 1);
    assert_eq!(e.reg.count_requests("GET", "/tags/list"), 1);
    assert_eq!(e.reg.request_count(), 1);

    // A digest with one page: exactly one request (the tag list is shared by the repository).
    let img2 = e.seeder.push_image("app", "v2").await?;
    e.seeder
        .push_artifact("app", Some(&img2.subject()), SIG, b"s2", None)
        .await?;
    e.reg.clear_access_log();
    let out = d
        .discover(
            &e.client,
            DiscoveryMode::Auto,
            None,
            &req(&e, "app", &img2.digest),
        )
        .await;
    assert_eq!(found(&out).requests, 1);
    assert_eq!(e.reg.request_count(), 1);
    assert_eq!(
        found(&out).referrers[0].kinds,
        vec![ArtifactKind::CosignSignature]
    );
    assert_eq!(d.stats().tag_lists, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifact_type_filter_server_and_client_side() -> TestResult {
    let e = env(Quirks::default())?;
    let img = e.seeder.push_image("app", "v1").await?;
    let sbom = e
        .seeder
        .push_artifact("app", Some(&img.subject()), media::SPDX_JSON, b"sbom", None)
        .await?;
    e.seeder
        .push_artifact("app", Some(&img.subject()), SIG, b"sig", None)
        .await?;
    let d = Discoverer::default();
    let mut r = req(&e, "app", &img.digest);
    r.artifact_types = vec![media::SPDX_JSON.to_string()];
    let out = d.discover(&e.client, DiscoveryMode::Native, None, &r).await;
    let rep = found(&out);
    assert_eq!(rep.referrers.len(), 1);
    assert_eq!(rep.referrers[0].digest, sbom.digest);
    // The query is URL-encoded (`+` as %2B).
    assert_eq!(
        e.reg
            .count_requests("GET", "artifactType=application%2Fspdx%2Bjson"),
        1
    );

    // Harbor 2.8: filter ignored, no OCI-Filters-Applied -> filtered client-side.
    e.reg.update_quirks(|q| q.filters_applied_header = false);
    let d = Discoverer::default();
    let out = d.discover(&e.client, DiscoveryMode::Native, None, &r).await;
    let rep = found(&out);
    assert_eq!(rep.referrers.len(), 1, "{rep:?}");
    assert_eq!(rep.referrers[0].digest, sbom.digest);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_with_empty_index_means_no_referrers() -> TestResult {
    let e = env(Quirks {
        referrers: ReferrersMode::NotFoundWithEmptyIndex,
        ..Quirks::default()
    })?;
    let img = e.seeder.push_image("app", "v1").await?;
    let d = Discoverer::default();
    let mut r = req(&e, "app", &img.digest);
    r.reach = Reach::Listing;
    let out = d.discover(&e.client, DiscoveryMode::Auto, None, &r).await;
    let rep = found(&out);
    assert!(rep.referrers.is_empty());
    assert_eq!(rep.referrers_api, Some(true));
    assert_eq!(rep.requests, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_referrers_to_depth() -> TestResult {
    let e = env(Quirks::default())?;
    let img = e.seeder.push_image("app", "v1").await?;
    let sbom = e
        .seeder
        .push_artifact("app", Some(&img.subject()), media::SPDX_JSON, b"sbom", None)
        .await?;
    let sbom_subject = Subject::new(&sbom.digest, &sbom.media_type, sbom.size);
    let sig = e
        .seeder
        .push_artifact("app", Some(&sbom_subject), SIG, b"sig-on-sbom", None)
        .await?;
    let d = Discoverer::default();
    let mut r = req(&e, "app", &img.digest);
    let out = d.discover(&e.client, DiscoveryMode::Auto, None, &r).await;
    assert!(found(&out).referrers[0].referrers.is_empty());
    r.depth = 1;
    let out = d.discover(&e.client, DiscoveryMode::Auto, None, &r).await;
    let rep = found(&out);
    assert_eq!(rep.referrers.len(), 1);
    let nested = &rep.referrers[0].referrers;
    assert_eq!(nested.len(), 1);
    assert_eq!(nested[0].digest, sig.digest);
    assert_eq!(nested[0].attached_to, AttachedTo::Referrer);
    assert_eq!(nested[0].subject, sbom.digest);
    // Depth is capped (no panic, no unbounded walk).
    r.depth = 1000;
    let out = d.discover(&e.client, DiscoveryMode::Auto, None, &r).await;
    assert_eq!(found(&out).referrers[0].referrers.len(), 1);
    Ok(())
}

/// Pushes a fallback-tag index and a cosign `.sig` tag for `img`; returns the artifact digest.
async fn seed_fallback(
    e: &Env,
    img: &refwarden_testkit::PushedImage,
) -> refwarden_testkit::Result<String> {
    let art = e
        .seeder
        .push_artifact("app", Some(&img.subject()), media::SPDX_JSON, b"sbom", None)
        .await?;
    e.seeder
        .push_referrers_tag_index("app", &img.digest, &[art.descriptor()])
        .await?;
    e.seeder.push_cosign_tag("app", &img.digest, "sig").await?;
    Ok(art.digest)
}

async fn fallback_quirk(mode: ReferrersMode) -> TestResult {
    let e = env(Quirks {
        referrers: mode,
        ..Quirks::default()
    })?;
    let img = e.seeder.push_image("app", "v1").await?;
    let art = seed_fallback(&e, &img).await?;
    let d = Discoverer::default();
    e.reg.clear_access_log();
    let out = d
        .discover(
            &e.client,
            DiscoveryMode::Auto,
            None,
            &req(&e, "app", &img.digest),
        )
        .await;
    let rep = found(&out);
    assert_eq!(rep.referrers_api, Some(false), "{mode:?}");
    let ts: Vec<_> = rep
        .referrers
        .iter()
        .filter(|r| r.method == DiscoveryMethod::TagSchema)
        .collect();
    assert_eq!(ts.len(), 1, "{mode:?}: {rep:?}");
    assert_eq!(ts[0].digest, art);
    let cs: Vec<_> = rep
        .referrers
        .iter()
        .filter(|r| r.method == DiscoveryMethod::CosignTag)
        .collect();
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].kinds, vec![ArtifactKind::CosignSignature]);
    assert_eq!(
        d.remembered_mode(e.client.registry()),
        Some(EffectiveDiscoveryMode::TagFallback)
    );
    // The next digest does not ask the API again (remembered), and the tag list is reused.
    let img2 = e.seeder.push_image("app", "v2").await?;
    e.reg.clear_access_log();
    let out = d
        .discover(
            &e.client,
            DiscoveryMode::Auto,
            None,
            &req(&e, "app", &img2.digest),
        )
        .await;
    assert!(found(&out).referrers.is_empty());
    assert_eq!(referrers_calls(&e.reg), 0);
    assert_eq!(
        found(&out).requests,
        0,
        "tag list cached, no fallback tags exist"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ghcr_404_falls_back_to_tags() -> TestResult {
    fallback_quirk(ReferrersMode::NotFoundPlain).await
}

/// Harbor ≤ 2.9 answers the referrers index with `application/json; charset=utf-8`
/// (goharbor/harbor#19212, fixed in 2.10): the index is used, not thrown away, and a note says
/// the registry is not conformant; the union still adds the tags.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn harbor_json_content_type_is_used_natively() -> TestResult {
    let e = env(Quirks {
        referrers: ReferrersMode::WrongContentTypeJson,
        ..Quirks::default()
    })?;
    let img = e.seeder.push_image("app", "v1").await?;
    let art = seed_fallback(&e, &img).await?;
    let d = Discoverer::default();
    e.reg.clear_access_log();
    let mut listing = req(&e, "app", &img.digest);
    listing.reach = Reach::Listing;
    let out = d
        .discover(&e.client, DiscoveryMode::Auto, None, &listing)
        .await;
    let rep = found(&out);
    assert_eq!(rep.referrers_api, Some(true));
    assert_eq!(rep.requests, 1, "{rep:?}");
    assert_eq!(rep.referrers.len(), 1);
    assert_eq!(rep.referrers[0].digest, art);
    assert_eq!(rep.referrers[0].method, DiscoveryMethod::Native);
    assert!(
        rep.notes.iter().any(|n| n.contains("Harbor")),
        "{:?}",
        rep.notes
    );
    let out = d
        .discover(
            &e.client,
            DiscoveryMode::Auto,
            None,
            &req(&e, "app", &img.digest),
        )
        .await;
    let rep = found(&out);
    // The SBOM is in the API answer and the tag-schema index: found once, by the API.
    assert_eq!(rep.referrers.len(), 2, "{rep:?}");
    assert_eq!(
        rep.referrers
            .iter()
            .find(|r| r.digest == art)
            .map(|r| r.method),
        Some(DiscoveryMethod::Native)
    );
    assert!(
        rep.referrers
            .iter()
            .any(|r| r.method == DiscoveryMethod::CosignTag)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_self_resolving_tag_is_not_a_referrer() -> TestResult {
    let e = env(Quirks {
        referrers: ReferrersMode::NotFoundHtml,
        dash_tag_resolves_digest: true,
        ..Quirks::default()
    })?;
    let index = e.seeder.push_index("app", "multi").await?;
    let d = Discoverer::default();
    let out = d
        .discover(
            &e.client,
            DiscoveryMode::Auto,
            None,
            &req(&e, "app", &index.digest),
        )
        .await;
    let rep = found(&out);
    assert!(
        rep.referrers.is_empty(),
        "platform manifests reported as referrers: {rep:?}"
    );
    assert_eq!(rep.referrers_api, Some(false));
    // Forced tag fallback on a repository whose tags cannot help: still nothing.
    let d = Discoverer::default();
    let out = d
        .discover(
            &e.client,
            DiscoveryMode::TagFallback,
            None,
            &req(&e, "app", &index.digest),
        )
        .await;
    assert!(found(&out).referrers.is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quay_400_for_unknown_subject() -> TestResult {
    let e = env(Quirks {
        referrers: ReferrersMode::UnknownSubject400,
        ..Quirks::default()
    })?;
    let img = e.seeder.push_image("app", "v1").await?;
    let sig = e
        .seeder
        .push_artifact("app", Some(&img.subject()), SIG, b"sig", None)
        .await?;
    let d = Discoverer::default();
    let out = d
        .discover(
            &e.client,
            DiscoveryMode::Auto,
            None,
            &req(&e, "app", &img.digest),
        )
        .await;
    assert_eq!(found(&out).referrers[0].digest, sig.digest);
    // Unknown subject on a registry known to be native: no referrers, mode kept.
    let missing = refwarden_testkit::digest_of(b"not pushed");
    let out = d
        .discover(
            &e.client,
            DiscoveryMode::Auto,
            None,
            &req(&e, "app", &missing),
        )
        .await;
    let rep = found(&out);
    assert!(rep.referrers.is_empty());
    assert_eq!(rep.requests, 1);
    assert_eq!(
        d.remembered_mode(e.client.registry()),
        Some(EffectiveDiscoveryMode::Native)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_hub_429_is_retried_then_answers() -> TestResult {
    let e = env(Quirks::default())?;
    let img = e.seeder.push_image("app", "v1").await?;
    e.seeder
        .push_artifact("app", Some(&img.subject()), SIG, b"sig", None)
        .await?;
    e.reg
        .update_quirks(|q| q.rate_limit_429 = Some((1, Some("1".into()))));
    let d = Discoverer::default();
    let out = d
        .discover(
            &e.client,
            DiscoveryMode::Auto,
            None,
            &req(&e, "app", &img.digest),
        )
        .await;
    assert_eq!(found(&out).referrers.len(), 1);
    let statuses: Vec<u16> = e
        .reg
        .access_log()
        .iter()
        .filter(|l| l.path.contains("/referrers/"))
        .map(|l| l.status)
        .collect();
    assert_eq!(statuses, vec![429, 200]);
    // Persistent 429 (retries exhausted) -> Unknown RateLimited, never "no referrers".
    e.reg
        .update_quirks(|q| q.rate_limit_429 = Some((100, Some("0".into()))));
    let img2 = e.seeder.with_auth(SeedAuth::None);
    drop(img2);
    let other = refwarden_testkit::digest_of(b"other");
    let out = d
        .discover(
            &e.client,
            DiscoveryMode::Auto,
            None,
            &req(&e, "app", &other),
        )
        .await;
    match out.as_ref() {
        DiscoveryOutcome::Unknown { reason, .. } => assert_eq!(reason, "RateLimited"),
        o => panic!("expected Unknown, got {o:?}"),
    }
    e.reg.update_quirks(|q| q.rate_limit_429 = None);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_failure_is_unknown_and_cached_shorter() -> TestResult {
    let e = env(Quirks::default())?;
    let img = e.seeder.push_image("app", "v1").await?;
    e.reg
        .update_quirks(|q| q.require_basic_auth = Some(("u".into(), "p".into())));
    let d = Discoverer::new(DiscovererConfig {
        negative_ttl: Duration::from_secs(1),
        ..DiscovererConfig::default()
    });
    let r = req(&e, "app", &img.digest);
    let out = d.discover(&e.client, DiscoveryMode::Auto, None, &r).await;
    match out.as_ref() {
        DiscoveryOutcome::Unknown { reason, .. } => assert_eq!(reason, "AuthFailed"),
        o => panic!("expected Unknown, got {o:?}"),
    }
    let n = e.reg.request_count();
    let _ = d.discover(&e.client, DiscoveryMode::Auto, None, &r).await;
    assert_eq!(e.reg.request_count(), n, "Unknown is cached");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _ = d.discover(&e.client, DiscoveryMode::Auto, None, &r).await;
    assert!(
        e.reg.request_count() > n,
        "Unknown expires after negative_ttl"
    );
    assert_eq!(d.stats().unknown, 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_modes() -> TestResult {
    let e = env(Quirks {
        referrers: ReferrersMode::NotFoundPlain,
        ..Quirks::default()
    })?;
    let img = e.seeder.push_image("app", "v1").await?;
    seed_fallback(&e, &img).await?;
    let d = Discoverer::default();
    let out = d
        .discover(
            &e.client,
            DiscoveryMode::Native,
            None,
            &req(&e, "app", &img.digest),
        )
        .await;
    match out.as_ref() {
        DiscoveryOutcome::Unknown { reason, .. } => assert_eq!(reason, "ReferrersApiUnsupported"),
        o => panic!("expected Unknown, got {o:?}"),
    }
    e.reg.update_quirks(|q| q.referrers = ReferrersMode::Native);
    e.reg.clear_access_log();
    let out = d
        .discover(
            &e.client,
            DiscoveryMode::TagFallback,
            None,
            &req(&e, "app", &img.digest),
        )
        .await;
    assert_eq!(found(&out).referrers.len(), 2);
    assert_eq!(
        referrers_calls(&e.reg),
        0,
        "TagFallback never calls the API"
    );
    // Hint TagFallback in Auto: no API call either.
    let d = Discoverer::default();
    e.reg.clear_access_log();
    let out = d
        .discover(
            &e.client,
            DiscoveryMode::Auto,
            Some(EffectiveDiscoveryMode::TagFallback),
            &req(&e, "app", &img.digest),
        )
        .await;
    assert_eq!(found(&out).referrers.len(), 2);
    assert_eq!(found(&out).referrers_api, Some(false));
    assert_eq!(referrers_calls(&e.reg), 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_and_coalescing_by_request_counts() -> TestResult {
    let e = env(Quirks::default())?;
    let mut digests = Vec::new();
    for i in 0..50 {
        let img = e.seeder.push_image("app", &format!("v{i}")).await?;
        e.seeder
            .push_artifact(
                "app",
                Some(&img.subject()),
                SIG,
                format!("s{i}").as_bytes(),
                None,
            )
            .await?;
        digests.push(img.digest);
    }
    let d = Discoverer::default();
    let client = e.client.clone();
    let counters = client.counters();
    let before = counters.total();
    e.reg.clear_access_log();
    // 1,000 asks over 50 digests, all at once.
    let tasks: Vec<_> = (0..1000)
        .map(|i| {
            let d = d.clone();
            let client = client.clone();
            let r = DiscoveryRequest::new(client.registry(), "app", &digests[i % 50]);
            tokio::spawn(async move { d.discover(&client, DiscoveryMode::Auto, None, &r).await })
        })
        .collect();
    let outs = futures::future::join_all(tasks).await;
    for o in &outs {
        let o = o.as_ref().map_err(|e| e.to_string())?;
        assert_eq!(found(o).referrers.len(), 1);
    }
    // One referrers request per digest, and one tag list for the whole repository (the union
    // looks for cosign tags; none exist, so no tag is fetched).
    assert_eq!(referrers_calls(&e.reg), 50);
    assert_eq!(e.reg.count_requests("GET", "/tags/list"), 1);
    assert_eq!(e.reg.request_count(), 51);
    assert_eq!(counters.total() - before, 51);
    let s = d.stats();
    assert_eq!((s.asks, s.misses, s.hits), (1000, 50, 950));
    assert_eq!(s.tag_lists, 1);
    let fresh: u64 = outs
        .iter()
        .filter_map(|o| o.as_ref().ok())
        .map(|o| found(o).requests)
        .sum();
    assert_eq!(
        fresh, 51,
        "requests are reported once per discovery, 0 for cache hits"
    );

    // Warm cache: zero requests.
    e.reg.clear_access_log();
    for dg in &digests {
        let out = d
            .discover(
                &client,
                DiscoveryMode::Auto,
                None,
                &DiscoveryRequest::new(client.registry(), "app", dg),
            )
            .await;
        assert_eq!(found(&out).requests, 0);
    }
    assert_eq!(e.reg.request_count(), 0);

    // Two concurrent asks for a new digest: one discovery.
    let img = e.seeder.push_image("app", "new").await?;
    e.reg.clear_access_log();
    let r = DiscoveryRequest::new(client.registry(), "app", &img.digest);
    let (a, b) = tokio::join!(
        d.discover(&client, DiscoveryMode::Auto, None, &r),
        d.discover(&client, DiscoveryMode::Auto, None, &r)
    );
    assert!(Arc::ptr_eq(&a, &b) || found(&a).referrers == found(&b).referrers);
    assert_eq!(e.reg.request_count(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_arch_platforms_index_and_buildkit_attestations() -> TestResult {
    let e = env(Quirks::default())?;
    let idx = e.seeder.push_index("app", "multi").await?;
    let amd = idx.images[0].clone();
    // A BuildKit-style attestation manifest for amd64 (in-toto layer with predicate annotation).
    let config =
        br#"{"architecture":"unknown","os":"unknown","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = e.seeder.push_blob("app", config).await?;
    let payload = br#"{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document"}"#;
    let layer_digest = e.seeder.push_blob("app", payload).await?;
    let att = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.in-toto+json", "digest": layer_digest, "size": payload.len(),
                    "annotations": {"in-toto.io/predicate-type": "https://spdx.dev/Document"}}],
    }))?;
    let att_digest = e
        .seeder
        .push_manifest(
            "app",
            &refwarden_testkit::digest_of(&att),
            media::OCI_MANIFEST,
            &att,
        )
        .await?;
    let mut manifests: Vec<serde_json::Value> = idx
        .images
        .iter()
        .map(|i| json!({"mediaType": i.media_type, "digest": i.digest, "size": i.size,
                        "platform": {"os": "linux", "architecture": i.platform.split('/').nth(1).unwrap_or("amd64")}}))
        .collect();
    manifests.push(json!({"mediaType": media::OCI_MANIFEST, "digest": att_digest, "size": att.len(),
        "platform": {"os": "unknown", "architecture": "unknown"},
        "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": amd.digest}}));
    let index = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": manifests}),
    )?;
    let index_digest = e
        .seeder
        .push_manifest("app", "bk", media::OCI_INDEX, &index)
        .await?;
    let index_subject = Subject::new(&index_digest, media::OCI_INDEX, index.len() as u64);
    let idx_sig = e
        .seeder
        .push_artifact("app", Some(&index_subject), SIG, b"index-sig", None)
        .await?;
    let amd_sig = e
        .seeder
        .push_artifact("app", Some(&amd.subject()), SIG, b"amd-sig", None)
        .await?;

    let d = Discoverer::default();
    let mut r = req(&e, "app", &index_digest);
    r.platforms = true;
    let out = d.discover(&e.client, DiscoveryMode::Auto, None, &r).await;
    let rep = found(&out);
    let by: BTreeMap<_, _> = rep
        .referrers
        .iter()
        .map(|x| (x.digest.clone(), x))
        .collect();
    assert_eq!(by.len(), 3, "{rep:?}");
    assert_eq!(by[&idx_sig.digest].attached_to, AttachedTo::Requested);
    assert_eq!(by[&amd_sig.digest].attached_to, AttachedTo::Platform);
    assert_eq!(by[&amd_sig.digest].subject, amd.digest);
    let a = by[&att_digest];
    assert_eq!(
        (a.method, a.attached_to),
        (DiscoveryMethod::InIndex, AttachedTo::Platform)
    );
    assert_eq!(a.subject, amd.digest);
    assert_eq!(a.kinds, vec![ArtifactKind::SpdxSbom]);
    assert_eq!(rep.subject_media_type.as_deref(), Some(media::OCI_INDEX));

    // From the platform manifest, told the index.
    let mut r = req(&e, "app", &amd.digest);
    r.index_digest = Some(index_digest.clone());
    let out = d.discover(&e.client, DiscoveryMode::Auto, None, &r).await;
    let rep = found(&out);
    let by: BTreeMap<_, _> = rep
        .referrers
        .iter()
        .map(|x| (x.digest.clone(), x))
        .collect();
    assert_eq!(by.len(), 3, "{rep:?}");
    assert_eq!(by[&amd_sig.digest].attached_to, AttachedTo::Requested);
    assert_eq!(by[&idx_sig.digest].attached_to, AttachedTo::Index);
    assert_eq!(by[&att_digest].attached_to, AttachedTo::Requested);
    let _ = ArtifactSpec {
        subject: None,
        artifact_type: None,
        config: None,
        layer_media_type: String::new(),
        payload: Vec::new(),
        annotations: BTreeMap::new(),
        tag: None,
    };
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classification_fetches_only_uninformative_referrers() -> TestResult {
    let e = env(Quirks::default())?;
    let img = e.seeder.push_image("app", "v1").await?;
    // Trivy-style: no artifactType, config media type CycloneDX -> informative descriptor.
    let trivy = e
        .seeder
        .push_artifact_spec(
            "app",
            &ArtifactSpec {
                subject: Some(img.subject()),
                artifact_type: None,
                config: Some((media::CYCLONEDX_JSON.to_string(), b"{}".to_vec())),
                layer_media_type: media::CYCLONEDX_JSON.to_string(),
                payload: b"{\"bomFormat\":\"CycloneDX\"}".to_vec(),
                annotations: BTreeMap::new(),
                tag: None,
            },
        )
        .await?;
    // Uninformative: artifactType = empty type, the layer is a Sigstore bundle.
    let bundle = e
        .seeder
        .push_artifact_spec(
            "app",
            &ArtifactSpec {
                subject: Some(img.subject()),
                artifact_type: Some(media::OCI_EMPTY.to_string()),
                config: None,
                layer_media_type: media::SIGSTORE_BUNDLE_V03.to_string(),
                payload: b"{\"bundle\":1}".to_vec(),
                annotations: BTreeMap::new(),
                tag: None,
            },
        )
        .await?;
    let d = Discoverer::default();
    e.reg.clear_access_log();
    // The listing alone classifies what the descriptors say and leaves the rest open.
    let mut listing = req(&e, "app", &img.digest);
    listing.reach = Reach::Listing;
    let out = d
        .discover(&e.client, DiscoveryMode::Auto, None, &listing)
        .await;
    let rep = found(&out);
    assert_eq!(rep.requests, 1);
    let by: BTreeMap<_, _> = rep
        .referrers
        .iter()
        .map(|x| (x.digest.clone(), x))
        .collect();
    assert_eq!(by[&trivy.digest].kinds, vec![ArtifactKind::CyclonedxSbom]);
    assert_eq!(by[&trivy.digest].format, Format::Cyclonedx);
    assert!(by[&bundle.digest].kinds.is_empty());
    assert_eq!(by[&bundle.digest].format, Format::Unclassified);
    // The union reads the manifest of the uninformative one (and the tag list).
    let out = d
        .discover(
            &e.client,
            DiscoveryMode::Auto,
            None,
            &req(&e, "app", &img.digest),
        )
        .await;
    let rep = found(&out);
    let by: BTreeMap<_, _> = rep
        .referrers
        .iter()
        .map(|x| (x.digest.clone(), x))
        .collect();
    assert_eq!(by[&trivy.digest].kinds, vec![ArtifactKind::CyclonedxSbom]);
    assert_eq!(by[&bundle.digest].kinds, vec![ArtifactKind::SigstoreBundle]);
    assert_eq!(by[&bundle.digest].format, Format::SigstoreBundleV03);
    // 1 referrers page + 1 manifest fetch (only the uninformative one) + 1 tag list.
    assert_eq!(e.reg.request_count(), 3);
    assert_eq!(
        e.reg
            .count_requests("GET", &format!("/manifests/{}", bundle.digest)),
        1
    );
    assert_eq!(
        e.reg
            .count_requests("GET", &format!("/manifests/{}", trivy.digest)),
        0
    );
    Ok(())
}

/// The native method finds the same referrers (digests and artifact types) as an
/// independent client, the `oci-client` crate's `pull_referrers`, on the same registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_matches_oci_client() -> TestResult {
    let e = env(Quirks::default())?;
    let img = e.seeder.push_image("peer/app", "v1").await?;
    let mut pushed = BTreeMap::new();
    for (t, payload) in [
        (SIG, b"sig".as_slice()),
        (
            media::SPDX_JSON,
            b"{\"spdxVersion\":\"SPDX-2.3\"}".as_slice(),
        ),
        ("application/vnd.in-toto+json", b"{}".as_slice()),
    ] {
        let a = e
            .seeder
            .push_artifact("peer/app", Some(&img.subject()), t, payload, None)
            .await?;
        pushed.insert(a.digest.clone(), t.to_string());
    }
    let out = Discoverer::default()
        .discover(
            &e.client,
            DiscoveryMode::Native,
            None,
            &DiscoveryRequest::new(e.client.registry(), "peer/app", &img.digest),
        )
        .await;
    let ours: BTreeMap<String, String> = found(&out)
        .referrers
        .iter()
        .map(|r| {
            (
                r.digest.clone(),
                r.artifact_type.clone().unwrap_or_default(),
            )
        })
        .collect();
    let oc = oci_client::Client::new(oci_client::client::ClientConfig {
        protocol: oci_client::client::ClientProtocol::Http,
        ..Default::default()
    });
    let reference = oci_client::Reference::with_digest(
        e.reg.host(),
        "peer/app".to_string(),
        img.digest.clone(),
    );
    let index = oc
        .pull_referrers(&reference, None)
        .await
        .map_err(|err| format!("oci-client pull_referrers: {err}"))?;
    let theirs: BTreeMap<String, String> = index
        .manifests
        .iter()
        .map(|m| {
            (
                m.digest.clone(),
                m.artifact_type.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(ours, theirs);
    assert_eq!(ours, pushed);
    Ok(())
}

/// A registry whose referrers answer changes is reported, so its RegistryProfile is probed again
/// before its interval: Harbor's upgrade from 2.9 (JSON Content-Type) to 2.10 (conformant), and
/// a registry the profile believed without the API that gained it (asked again once the mode
/// memory expires, even with a TagFallback hint).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_answer_changes_are_reported() -> TestResult {
    let e = env(Quirks {
        referrers: ReferrersMode::WrongContentTypeJson,
        ..Quirks::default()
    })?;
    let d = Discoverer::new(DiscovererConfig {
        mode_ttl: Duration::from_millis(200),
        ..DiscovererConfig::default()
    });
    let one = e.seeder.push_image("app", "one").await?;
    let mut r = req(&e, "app", &one.digest);
    r.reach = Reach::Listing;
    let out = d
        .discover(
            &e.client,
            DiscoveryMode::Auto,
            Some(EffectiveDiscoveryMode::Native),
            &r,
        )
        .await;
    assert_eq!(found(&out).referrers_api, Some(true));
    assert!(
        d.take_changed().is_empty(),
        "the first answer agrees with the probe"
    );
    // The upgrade: the same API, now with the spec's Content-Type.
    e.reg.update_quirks(|q| q.referrers = ReferrersMode::Native);
    let two = e.seeder.push_image("app", "two").await?;
    let mut r = req(&e, "app", &two.digest);
    r.reach = Reach::Listing;
    d.discover(
        &e.client,
        DiscoveryMode::Auto,
        Some(EffectiveDiscoveryMode::Native),
        &r,
    )
    .await;
    assert_eq!(d.take_changed(), vec![e.client.registry().to_string()]);
    assert!(d.take_changed().is_empty(), "taken once");

    // A profile that says TagFallback: trusted at first (no API request) …
    let g = env(Quirks::default())?;
    let d = Discoverer::new(DiscovererConfig {
        mode_ttl: Duration::from_millis(200),
        ..DiscovererConfig::default()
    });
    let img = g.seeder.push_image("app", "v1").await?;
    g.reg.clear_access_log();
    let fallback = Some(EffectiveDiscoveryMode::TagFallback);
    let out = d
        .discover(
            &g.client,
            DiscoveryMode::Auto,
            fallback,
            &req(&g, "app", &img.digest),
        )
        .await;
    assert_eq!(found(&out).referrers_api, Some(false));
    assert_eq!(referrers_calls(&g.reg), 0);
    // … and once the re-learn window has passed, the API is asked again: it answers.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let img2 = g.seeder.push_image("app", "v2").await?;
    let out = d
        .discover(
            &g.client,
            DiscoveryMode::Auto,
            fallback,
            &req(&g, "app", &img2.digest),
        )
        .await;
    assert_eq!(found(&out).referrers_api, Some(true));
    assert_eq!(referrers_calls(&g.reg), 1);
    assert_eq!(d.take_changed(), vec![g.client.registry().to_string()]);
    Ok(())
}
