//! Fault injection, part two: auth traps (token endpoint down, garbage,
//! expired tokens, 401 loops), cross-host redirects (credentials must not
//! follow), faults in front of the REAL registry (distribution 2.8, tag
//! fallback), and faults seen through `evaluate_policy` (status.unknown names
//! the cause, the healthy registry's image stays Compliant, recovery).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use refwarden::crd::{DiscoveryMode, EffectiveDiscoveryMode, SubjectMatch};
use refwarden::discovery::{Discoverer, DiscovererConfig, DiscoveryOutcome, DiscoveryRequest};
use refwarden::policy::{PolicyInput, evaluate_policy};
use refwarden::registry::{Credentials, RegistryClient, RegistryClientConfig, RetryPolicy};
use refwarden::registry::{RegistryDirectory, RegistryEntry};
use refwarden_testkit::faults::{Action, FaultProxy, Rule, Synth};
use refwarden_testkit::{
    DistributionOptions, DistributionRegistry, OciRegistry, Quirks, SeedAuth, Seeder,
};
use secrecy::SecretString;
use serde_json::json;

type TestResult = refwarden_testkit::Result<()>;

const SIG: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const TIMEOUT: Duration = Duration::from_millis(800);
const MAX_RETRIES: u32 = 2;
const NEGATIVE_TTL: Duration = Duration::from_millis(100);
const GUARD: Duration = Duration::from_secs(12);
const PASSWORD: &str = "s3cr3t-Passw0rd-faults";
const GOOD_TOKEN: &str = "good-token-7f1c9e";

fn client_with(url: &str, creds: Credentials) -> RegistryClient {
    refwarden::registry::ensure_crypto_provider();
    let mut cfg = RegistryClientConfig::new(url, true).expect("config");
    cfg.timeout = TIMEOUT;
    cfg.connect_timeout = TIMEOUT;
    cfg.max_body_bytes = 64 * 1024;
    cfg.credentials = creds;
    cfg.retry = RetryPolicy {
        max_retries: MAX_RETRIES,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_secs(3),
    };
    RegistryClient::new(cfg).expect("client")
}

fn basic() -> Credentials {
    Credentials::Basic {
        username: "alice".into(),
        password: SecretString::from(PASSWORD),
    }
}

fn discoverer() -> Discoverer {
    Discoverer::new(DiscovererConfig {
        negative_ttl: NEGATIVE_TTL,
        ttl: Duration::from_millis(1),
        ..DiscovererConfig::default()
    })
}

async fn discover(
    d: &Discoverer,
    c: &RegistryClient,
    digest: &str,
    hint: EffectiveDiscoveryMode,
) -> Arc<DiscoveryOutcome> {
    let req = DiscoveryRequest::new(c.registry(), "app", digest);
    tokio::time::timeout(GUARD, d.discover(c, DiscoveryMode::Auto, Some(hint), &req))
        .await
        .unwrap_or_else(|_| panic!("discovery hung for more than {GUARD:?}"))
}

#[track_caller]
fn assert_found(out: &DiscoveryOutcome, digest: &str, what: &str) {
    match out {
        DiscoveryOutcome::Found(r) => assert!(
            r.referrers.iter().any(|x| x.digest == digest),
            "{what}: {digest} missing from {r:?}"
        ),
        other => panic!("{what}: expected Found, got {other:?}"),
    }
}

#[track_caller]
fn assert_unknown(out: &DiscoveryOutcome, reason: &str, needle: &str, what: &str) {
    match out {
        DiscoveryOutcome::Unknown { reason: r, message } => {
            assert_eq!(r, reason, "{what}: {message}");
            assert!(
                message
                    .to_ascii_lowercase()
                    .contains(&needle.to_ascii_lowercase()),
                "{what}: message {message:?} does not name {needle:?}"
            );
            assert!(!message.contains(PASSWORD) && !message.contains(GOOD_TOKEN));
        }
        other => panic!("{what}: expected Unknown, got {other:?}"),
    }
}

struct Seeded {
    reg: OciRegistry,
    digest: String,
    sig: String,
}

async fn seeded() -> refwarden_testkit::Result<Seeded> {
    let reg = OciRegistry::start(Quirks::default())?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    let img = seeder.push_image("app", "v1").await?;
    let sig = seeder
        .push_artifact("app", Some(&img.subject()), SIG, b"sig", None)
        .await?;
    Ok(Seeded {
        reg,
        digest: img.digest,
        sig: sig.digest,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokenMode {
    Ok,
    Down,
    Garbage,
    Expired,
    Loop401,
}

/// A Docker token flow implemented in the proxy: `/v2/` needs
/// `Bearer GOOD_TOKEN`, the realm is the proxy's `/token` (or a closed port).
fn token_gate(proxy_url: String, closed_port: u16, mode: Arc<Mutex<TokenMode>>) -> Action {
    Action::Dynamic(Arc::new(move |seen| {
        let m = *mode.lock().unwrap_or_else(|p| p.into_inner());
        if seen.path() == "/token" {
            return Some(match m {
                TokenMode::Garbage => Synth::new(200)
                    .header("Content-Type", "text/html")
                    .body("<html>maintenance</html>"),
                TokenMode::Expired => Synth::new(200).json(&json!({
                    "token": "expired-token-0d2b",
                    "expires_in": 60,
                    "issued_at": "2001-01-01T00:00:00Z",
                })),
                _ => Synth::new(200).json(&json!({"token": GOOD_TOKEN, "expires_in": 300})),
            });
        }
        let authorised = seen.header("authorization") == Some(&format!("Bearer {GOOD_TOKEN}"));
        if authorised && m != TokenMode::Loop401 {
            return None;
        }
        let realm = if m == TokenMode::Down {
            format!("http://127.0.0.1:{closed_port}/token")
        } else {
            format!("{proxy_url}/token")
        };
        Some(
            Synth::new(401)
                .header(
                    "WWW-Authenticate",
                    format!(
                        "Bearer realm=\"{realm}\",service=\"faults\",scope=\"repository:app:pull\""
                    ),
                )
                .json(&json!({"errors": [{"code": "UNAUTHORIZED"}]})),
        )
    }))
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_endpoint_traps() -> TestResult {
    refwarden_testkit::init_tracing();
    let s = seeded().await?;
    let proxy = FaultProxy::in_front_of(&s.reg.url())?;
    let healthy = seeded().await?;
    let healthy_client = client_with(&healthy.reg.url(), Credentials::Anonymous);
    let mode = Arc::new(Mutex::new(TokenMode::Ok));
    proxy.set_rules(vec![Rule::any(token_gate(
        proxy.url(),
        closed_port(),
        mode.clone(),
    ))]);
    let c = client_with(&proxy.url(), basic());

    // Works when the token endpoint works (one token for the discovery).
    let d = discoverer();
    let out = discover(&d, &c, &s.digest, EffectiveDiscoveryMode::Native).await;
    assert_found(&out, &s.sig, "token flow");

    for (m, reason, needle, max_token_calls) in [
        (
            TokenMode::Down,
            "AuthFailed",
            "token endpoint unreachable",
            0,
        ),
        (TokenMode::Garbage, "AuthFailed", "token", 1),
        (TokenMode::Expired, "AuthFailed", "401", 1),
        (TokenMode::Loop401, "AuthFailed", "401", 1),
    ] {
        let what = format!("{m:?}");
        // A fresh client: no cached token.
        let c = client_with(&proxy.url(), basic());
        let d = discoverer();
        *mode.lock().unwrap_or_else(|p| p.into_inner()) = m;
        proxy.clear_log();
        let start = Instant::now();
        let (out, other) = tokio::join!(
            discover(&d, &c, &s.digest, EffectiveDiscoveryMode::Native),
            discover(
                &d,
                &healthy_client,
                &healthy.digest,
                EffectiveDiscoveryMode::Native
            ),
        );
        assert!(start.elapsed() < GUARD);
        assert_unknown(&out, reason, needle, &what);
        assert_found(&other, &healthy.sig, &format!("{what} (healthy)"));
        // No 401 loop: one retry with a token at most, bounded token calls.
        let v2 = proxy.count("/referrers/");
        assert!(v2 <= 2, "{what}: {v2} referrers requests");
        assert!(
            proxy.count("/token") <= max_token_calls,
            "{what}: {} token requests",
            proxy.count("/token")
        );
        // Recovery once the token endpoint is fine again.
        *mode.lock().unwrap_or_else(|p| p.into_inner()) = TokenMode::Ok;
        tokio::time::sleep(NEGATIVE_TTL + Duration::from_millis(100)).await;
        let out = discover(&d, &c, &s.digest, EffectiveDiscoveryMode::Native).await;
        assert_found(&out, &s.sig, &format!("{what} (recovery)"));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_do_not_follow_cross_host_redirects() -> TestResult {
    refwarden_testkit::init_tracing();
    let s = seeded().await?;
    // The other host: forwards to the same registry, logs what it gets.
    let other = FaultProxy::in_front_of(&s.reg.url())?;
    let proxy = FaultProxy::in_front_of(&s.reg.url())?;
    let other_url = other.url();
    proxy.set_rules(vec![Rule::any(Action::Dynamic(Arc::new(move |seen| {
        if seen.header("authorization").is_none() {
            return Some(Synth::new(401).header("WWW-Authenticate", "Basic realm=\"faults\""));
        }
        // Manifests are served by "a CDN" on another host (followed, without credentials).
        if seen.target.contains("/manifests/") {
            return Some(Synth::new(307).header("Location", format!("{other_url}{}", seen.target)));
        }
        None
    })))]);
    let c = client_with(&proxy.url(), basic());
    let d = discoverer();
    let mut req = DiscoveryRequest::new(c.registry(), "app", &s.digest);
    req.platforms = true;
    let out = tokio::time::timeout(
        GUARD,
        d.discover(
            &c,
            DiscoveryMode::Auto,
            Some(EffectiveDiscoveryMode::Native),
            &req,
        ),
    )
    .await?;
    assert_found(&out, &s.sig, "cross-host redirect");
    let seen = other.log();
    assert!(!seen.is_empty(), "the redirect was followed");
    for r in &seen {
        assert_eq!(
            r.header("authorization"),
            None,
            "credentials followed a redirect to another host: {}",
            r.target
        );
    }
    assert!(
        proxy
            .log()
            .iter()
            .any(|r| r.header("authorization").is_some()),
        "the registry itself got the credentials"
    );

    // A referrers request redirected to another host is not followed at all: the other host
    // sees nothing, and discovery falls back to the tags (no usable referrers API here).
    other.clear_log();
    let other_url = other.url();
    proxy.set_rules(vec![Rule::any(Action::Dynamic(Arc::new(move |seen| {
        if seen.header("authorization").is_none() {
            return Some(Synth::new(401).header("WWW-Authenticate", "Basic realm=\"faults\""));
        }
        if seen.target.contains("/referrers/") {
            return Some(Synth::new(303).header("Location", format!("{other_url}{}", seen.target)));
        }
        None
    })))]);
    let d = discoverer();
    let out = tokio::time::timeout(
        GUARD,
        d.discover(
            &c,
            DiscoveryMode::Auto,
            None,
            &DiscoveryRequest::new(c.registry(), "app", &s.digest),
        ),
    )
    .await?;
    let DiscoveryOutcome::Found(r) = out.as_ref() else {
        panic!("{out:?}");
    };
    assert_eq!(r.referrers_api, Some(false), "{r:?}");
    assert!(other.log().is_empty(), "{:?}", other.log());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_in_front_of_the_real_registry() -> TestResult {
    refwarden_testkit::init_tracing();
    let dist = DistributionRegistry::start(DistributionOptions::default())?;
    let seeder = Seeder::new(&dist.url(), SeedAuth::None)?;
    let img = seeder.push_image("app", "v1").await?;
    let sig = seeder.push_cosign_tag("app", &img.digest, "sig").await?;
    let proxy = FaultProxy::in_front_of(&dist.url())?;
    let c = client_with(&proxy.url(), Credentials::Anonymous);
    let healthy = seeded().await?;
    let healthy_client = client_with(&healthy.reg.url(), Credentials::Anonymous);

    let cases: Vec<(&str, Rule, &str, &str, usize)> = vec![
        (
            "503 burst on the tag list",
            Rule::on(
                "/tags/list",
                Action::Respond(Synth::new(503).header("Content-Type", "text/plain")),
            ),
            "RegistryError",
            "HTTP 503",
            1 + MAX_RETRIES as usize,
        ),
        (
            "reset mid-body on the cosign tag",
            Rule::on(".sig", Action::ForwardResetAfter(10)),
            "Unreachable",
            "",
            1 + MAX_RETRIES as usize,
        ),
        (
            "no response on the cosign tag",
            Rule::on(".sig", Action::NoResponse),
            "Timeout",
            "did not answer",
            2,
        ),
        (
            "HTML page with 200 as the tag list",
            Rule::on(
                "/tags/list",
                Action::Respond(
                    Synth::new(200)
                        .header("Content-Type", "text/html")
                        .body("<html>oops</html>"),
                ),
            ),
            "InvalidResponse",
            "",
            1,
        ),
    ];
    for (what, rule, reason, needle, count) in cases {
        let d = discoverer();
        let needle_path = rule.path_contains.clone().unwrap_or_default();
        proxy.clear_log();
        proxy.set_rules(vec![rule]);
        let (out, other) = tokio::join!(
            discover(&d, &c, &img.digest, EffectiveDiscoveryMode::TagFallback),
            discover(
                &d,
                &healthy_client,
                &healthy.digest,
                EffectiveDiscoveryMode::Native
            ),
        );
        assert_unknown(&out, reason, needle, what);
        assert_found(&other, &healthy.sig, &format!("{what} (healthy)"));
        assert_eq!(proxy.count(&needle_path), count, "{what}: request count");
        proxy.heal();
        tokio::time::sleep(NEGATIVE_TTL + Duration::from_millis(100)).await;
        let out = discover(&d, &c, &img.digest, EffectiveDiscoveryMode::TagFallback).await;
        assert_found(&out, &sig.digest, &format!("{what} (recovery)"));
    }
    Ok(())
}

use refwarden_testkit::running_pod as pod;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_through_evaluate_policy() -> TestResult {
    refwarden_testkit::init_tracing();
    let s = seeded().await?;
    let proxy = FaultProxy::in_front_of(&s.reg.url())?;
    let healthy = seeded().await?;
    let mut dir = RegistryDirectory::new();
    for (name, host, url) in [
        ("faulty", proxy.host(), proxy.url()),
        ("healthy", healthy.reg.host(), healthy.reg.url()),
    ] {
        dir.insert(
            name,
            &host,
            Ok(RegistryEntry {
                profile: Some(name.into()),
                client: client_with(&url, basic()),
                mode: DiscoveryMode::Auto,
                hint: Some(EffectiveDiscoveryMode::Native),
            }),
        );
    }
    let pods = [
        pod(
            "a",
            format!("{}/app:v1", proxy.host()),
            format!("{}/app@{}", proxy.host(), s.digest),
        ),
        pod(
            "b",
            format!("{}/app:v1", healthy.reg.host()),
            format!("{}/app@{}", healthy.reg.host(), healthy.digest),
        ),
    ];
    let spec = refwarden_testkit::signature_policy("signature", SubjectMatch::Exact);
    let input = PolicyInput {
        name: "p",
        spec: &spec,
        generation: Some(1),
        previous: None,
        trust: &Default::default(),
    };
    let d = discoverer();
    let now = Time(jiff::Timestamp::now());
    let faults: Vec<(&str, Rule, &str)> = vec![
        (
            "503 burst",
            Rule::on("/referrers/", Action::Respond(Synth::new(503))),
            "HTTP 503",
        ),
        (
            "no response",
            Rule::on("/referrers/", Action::NoResponse),
            "did not answer",
        ),
        (
            "endless body",
            Rule::on(
                "/referrers/",
                Action::Respond(
                    Synth::new(200)
                        .header("Content-Type", "application/vnd.oci.image.index.v1+json")
                        .with_body(refwarden_testkit::faults::Body::Endless),
                ),
            ),
            "exceeds the limit",
        ),
    ];
    for (what, rule, needle) in faults {
        proxy.set_rules(vec![rule]);
        // Let the previous (positive, 1 ms TTL) outcome expire.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let result = tokio::time::timeout(
            GUARD,
            evaluate_policy(
                &input,
                pods.iter(),
                &BTreeMap::new(),
                &dir,
                &d,
                &refwarden::policy::Verifier::new(),
                now.clone(),
            ),
        )
        .await?;
        let st = &result.status;
        assert_eq!(st.summary.unknown, 1, "{what}: {st:?}");
        assert_eq!(st.summary.compliant, 1, "{what}: healthy image: {st:?}");
        assert_eq!(
            st.summary.non_compliant, 0,
            "{what}: never a violation: {st:?}"
        );
        assert_eq!(st.unknown.len(), 1);
        let u = &st.unknown[0];
        assert!(u.image.contains(&proxy.host()), "{what}: {u:?}");
        assert!(!u.reason.is_empty());
        assert!(u.message.contains(needle), "{what}: {u:?}");
        proxy.heal();
        tokio::time::sleep(NEGATIVE_TTL + Duration::from_millis(100)).await;
        let result = evaluate_policy(
            &input,
            pods.iter(),
            &BTreeMap::new(),
            &dir,
            &d,
            &refwarden::policy::Verifier::new(),
            now.clone(),
        )
        .await;
        assert_eq!(
            result.status.summary.compliant, 2,
            "{what}: recovery: {:?}",
            result.status
        );
    }
    Ok(())
}
