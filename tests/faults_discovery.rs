//! Fault injection through `Discoverer::discover`: a `FaultProxy` in front of
//! the spec registry (and, for some faults, the real distribution 2.8
//! registry) injects transport faults, timeouts, status bursts, rate limits,
//! malformed answers and pagination traps. For each fault: no panic, no hang
//! beyond the configured timeout (guarded by `tokio::time::timeout`), the
//! image is Unknown with a reason naming the cause, a second healthy registry
//! discovered in the same run is unaffected, and the next attempt after the
//! fault stops (negative cache expired) succeeds. Request counts prove the
//! retry cap, the backoff and `Retry-After`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use refwarden::crd::{DiscoveryMode, EffectiveDiscoveryMode};
use refwarden::discovery::{Discoverer, DiscovererConfig, DiscoveryOutcome, DiscoveryRequest};
use refwarden::registry::{RegistryClient, RegistryClientConfig, RetryPolicy};
use refwarden_testkit::faults::{Action, Body, FaultProxy, Rule, Synth};
use refwarden_testkit::{OciRegistry, Quirks, SeedAuth, Seeder};
use serde_json::json;

type TestResult = refwarden_testkit::Result<()>;

const SIG: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Per-request timeout of the faulted client.
const TIMEOUT: Duration = Duration::from_millis(800);
const MAX_RETRIES: u32 = 2;
const NEGATIVE_TTL: Duration = Duration::from_millis(100);
/// No discovery may take longer than this (timeouts are retried once, 429s wait ≤ 3 s).
const GUARD: Duration = Duration::from_secs(12);

fn client_cfg(url: &str) -> RegistryClientConfig {
    refwarden::registry::ensure_crypto_provider();
    let plain = url.starts_with("http://");
    let mut cfg = RegistryClientConfig::new(url, plain).expect("config");
    cfg.timeout = TIMEOUT;
    cfg.connect_timeout = TIMEOUT;
    cfg.max_body_bytes = 64 * 1024;
    cfg.retry = RetryPolicy {
        max_retries: MAX_RETRIES,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_secs(3),
    };
    cfg
}

fn client(url: &str) -> RegistryClient {
    RegistryClient::new(client_cfg(url)).expect("client")
}

fn discoverer(max_pages: usize) -> Discoverer {
    Discoverer::new(DiscovererConfig {
        negative_ttl: NEGATIVE_TTL,
        ttl: Duration::from_millis(1),
        max_pages,
        ..DiscovererConfig::default()
    })
}

/// A seeded registry: image `app:v1` with one cosign signature referrer.
struct Seeded {
    reg: OciRegistry,
    digest: String,
    sig: String,
    index_body: String,
}

async fn seeded() -> refwarden_testkit::Result<Seeded> {
    let reg = OciRegistry::start(Quirks::default())?;
    let seeder = Seeder::new(&reg.url(), SeedAuth::None)?;
    let img = seeder.push_image("app", "v1").await?;
    let sig = seeder
        .push_artifact("app", Some(&img.subject()), SIG, b"sig", None)
        .await?;
    let index_body = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [sig.descriptor()],
    })
    .to_string();
    Ok(Seeded {
        reg,
        digest: img.digest,
        sig: sig.digest,
        index_body,
    })
}

/// A faulted registry (behind the proxy) and a healthy one.
struct Env {
    faulty: Seeded,
    proxy: FaultProxy,
    client: RegistryClient,
    healthy: Seeded,
    healthy_client: RegistryClient,
}

async fn env() -> refwarden_testkit::Result<Env> {
    refwarden_testkit::init_tracing();
    let faulty = seeded().await?;
    let proxy = FaultProxy::in_front_of(&faulty.reg.url())?;
    let faulty_client = client(&proxy.url());
    let healthy = seeded().await?;
    let healthy_client = client(&healthy.reg.url());
    Ok(Env {
        faulty,
        proxy,
        client: faulty_client,
        healthy,
        healthy_client,
    })
}

fn request(client: &RegistryClient, digest: &str) -> DiscoveryRequest {
    let mut r = DiscoveryRequest::new(client.registry(), "app", digest);
    // Also GET the subject manifest, so manifest faults are exercised.
    r.platforms = true;
    r
}

async fn discover(
    d: &Discoverer,
    c: &RegistryClient,
    digest: &str,
) -> (Arc<DiscoveryOutcome>, Duration) {
    let start = Instant::now();
    let req = request(c, digest);
    let out = tokio::time::timeout(
        GUARD,
        d.discover(
            c,
            DiscoveryMode::Auto,
            Some(EffectiveDiscoveryMode::Native),
            &req,
        ),
    )
    .await
    .unwrap_or_else(|_| panic!("discovery hung for more than {GUARD:?}"));
    (out, start.elapsed())
}

#[track_caller]
fn assert_found_sig(out: &DiscoveryOutcome, sig: &str, what: &str) {
    match out {
        DiscoveryOutcome::Found(r) => assert!(
            r.referrers.iter().any(|x| x.digest == sig),
            "{what}: signature missing from {r:?}"
        ),
        other => panic!("{what}: expected Found, got {other:?}"),
    }
}

#[track_caller]
fn unknown(out: &DiscoveryOutcome, what: &str) -> (String, String) {
    match out {
        DiscoveryOutcome::Unknown { reason, message } => (reason.to_string(), message.clone()),
        other => panic!("{what}: expected Unknown, got {other:?}"),
    }
}

/// Runs one fault: the faulted image is Unknown with `reason` and a message
/// containing one of `needles`; the healthy registry is discovered in the
/// same run; after healing, the next attempt finds the signature. Returns the
/// faulted discovery's duration and the proxy's count of `count_needle`
/// requests during the fault.
async fn case(
    e: &Env,
    what: &str,
    rules: Vec<Rule>,
    reason: &str,
    needles: &[&str],
    count_needle: &str,
) -> (Duration, usize) {
    let d = discoverer(20);
    e.proxy.clear_log();
    e.proxy.set_rules(rules);
    let ((out, took), (healthy, _)) = tokio::join!(
        discover(&d, &e.client, &e.faulty.digest),
        discover(&d, &e.healthy_client, &e.healthy.digest),
    );
    let count = e.proxy.count(count_needle);
    let (r, m) = unknown(&out, what);
    assert_eq!(r, reason, "{what}: reason (message: {m})");
    let lower = m.to_ascii_lowercase();
    assert!(
        needles
            .iter()
            .any(|n| lower.contains(&n.to_ascii_lowercase())),
        "{what}: message {m:?} names none of {needles:?}"
    );
    assert_found_sig(
        &healthy,
        &e.healthy.sig,
        &format!("{what} (healthy registry)"),
    );
    // Still Unknown from the negative cache right away, no new request …
    let before = e.proxy.log().len();
    let (again, _) = discover(&d, &e.client, &e.faulty.digest).await;
    unknown(&again, what);
    assert_eq!(e.proxy.log().len(), before, "{what}: negative cache");
    // … and recovered once the fault stops and the negative TTL passed.
    e.proxy.heal();
    tokio::time::sleep(NEGATIVE_TTL + Duration::from_millis(100)).await;
    let (after, _) = discover(&d, &e.client, &e.faulty.digest).await;
    assert_found_sig(&after, &e.faulty.sig, &format!("{what} (recovery)"));
    (took, count)
}

const REF: &str = "/referrers/";
const MAN: &str = "/manifests/";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_faults() -> TestResult {
    let e = env().await?;

    // Connection refused: retried MAX_RETRIES times with backoff, then Unreachable.
    let d = discoverer(20);
    e.proxy.set_refuse(true);
    let ((out, took), (healthy, _)) = tokio::join!(
        discover(&d, &e.client, &e.faulty.digest),
        discover(&d, &e.healthy_client, &e.healthy.digest),
    );
    let (r, m) = unknown(&out, "refused");
    assert_eq!(r, "Unreachable", "{m}");
    assert!(m.to_ascii_lowercase().contains("refused"), "{m}");
    assert!(took < TIMEOUT * 3, "refused took {took:?}");
    assert_found_sig(&healthy, &e.healthy.sig, "refused (healthy)");
    e.proxy.set_refuse(false);
    tokio::time::sleep(NEGATIVE_TTL + Duration::from_millis(100)).await;
    let (after, _) = discover(&d, &e.client, &e.faulty.digest).await;
    assert_found_sig(&after, &e.faulty.sig, "refused (recovery)");

    // Reset mid-body (transport error: retried, then Unreachable).
    let (_, n) = case(
        &e,
        "reset mid-body",
        vec![Rule::on(REF, Action::ForwardResetAfter(20))],
        "Unreachable",
        &["reset", "body", "connection", "closed", "incomplete"],
        REF,
    )
    .await;
    assert_eq!(n, 1 + MAX_RETRIES as usize, "reset: retry cap");

    // Reset right after the request.
    let (_, n) = case(
        &e,
        "reset",
        vec![Rule::on(MAN, Action::Reset)],
        "Unreachable",
        &["reset", "closed", "connection"],
        MAN,
    )
    .await;
    assert_eq!(n, 1 + MAX_RETRIES as usize, "reset: retry cap");

    // Not HTTP at all (a TLS alert, as when talking http to a TLS port).
    case(
        &e,
        "non-HTTP answer",
        vec![Rule::on(
            REF,
            Action::Raw(vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]),
        )],
        "Unreachable",
        &["http", "parse", "invalid"],
        REF,
    )
    .await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_bounded() -> TestResult {
    let e = env().await?;
    // No response: a timeout is retried once only.
    let (took, n) = case(
        &e,
        "no response",
        vec![Rule::on(REF, Action::NoResponse)],
        "Timeout",
        &["did not answer"],
        REF,
    )
    .await;
    assert_eq!(n, 2, "timeouts are retried exactly once");
    assert!(took >= TIMEOUT * 2 && took < TIMEOUT * 4, "took {took:?}");

    // Headers, then a stalled body (slowloris).
    let (took, n) = case(
        &e,
        "stalled body",
        vec![Rule::on(
            REF,
            Action::Respond(Synth::new(200).header("Content-Type", OCI_INDEX).with_body(
                Body::Stall {
                    declared: 1000,
                    sent: b"{\"schemaVersion\":".to_vec(),
                },
            )),
        )],
        "Timeout",
        &["did not answer"],
        REF,
    )
    .await;
    assert_eq!(n, 2);
    assert!(took < TIMEOUT * 4, "took {took:?}");

    // A body trickled byte by byte: the whole-request timeout still applies.
    let (took, _) = case(
        &e,
        "trickled body",
        vec![Rule::on(
            REF,
            Action::ForwardTrickle(Duration::from_millis(40)),
        )],
        "Timeout",
        &["did not answer"],
        REF,
    )
    .await;
    assert!(took < TIMEOUT * 4, "took {took:?}");

    // A trickled synthetic index on the manifest fetch.
    let (took, _) = case(
        &e,
        "trickled manifest",
        vec![Rule::on(
            MAN,
            Action::Respond(
                Synth::new(200)
                    .header("Content-Type", OCI_INDEX)
                    .with_body(Body::Trickle(vec![b' '; 200], Duration::from_millis(30))),
            ),
        )],
        "Timeout",
        &["did not answer"],
        MAN,
    )
    .await;
    assert!(took < TIMEOUT * 4, "took {took:?}");
    Ok(())
}

fn status(code: u16) -> Action {
    Action::Respond(Synth::new(code).json(&json!({"errors": [{"code": "UNAVAILABLE"}]})))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_bursts_and_rate_limits() -> TestResult {
    let e = env().await?;

    // 500 is not retried.
    let (_, n) = case(
        &e,
        "500",
        vec![Rule::on(REF, status(500))],
        "RegistryError",
        &["HTTP 500"],
        REF,
    )
    .await;
    assert_eq!(n, 1, "500 is not retried");

    // 502/503 bursts longer than the retry budget: capped retries, then RegistryError.
    for code in [502u16, 503] {
        let (_, n) = case(
            &e,
            &format!("{code} burst"),
            vec![Rule::on(REF, status(code)).times(50)],
            "RegistryError",
            &[&format!("HTTP {code}")],
            REF,
        )
        .await;
        assert_eq!(n, 1 + MAX_RETRIES as usize, "{code}: retry cap");
    }

    // A short burst within the retry budget is absorbed: Found, with backoff between tries.
    let d = discoverer(20);
    e.proxy.clear_log();
    e.proxy
        .set_rules(vec![Rule::on(REF, status(503)).times(MAX_RETRIES)]);
    let (out, _) = discover(&d, &e.client, &e.faulty.digest).await;
    assert_found_sig(&out, &e.faulty.sig, "short 503 burst");
    assert_eq!(e.proxy.count(REF), 1 + MAX_RETRIES as usize);
    e.proxy.heal();

    // 429 without Retry-After: exponential backoff, capped, then RateLimited.
    let (_, n) = case(
        &e,
        "429 without Retry-After",
        vec![Rule::on(REF, status(429)).times(50)],
        "RateLimited",
        &["HTTP 429"],
        REF,
    )
    .await;
    assert_eq!(n, 1 + MAX_RETRIES as usize);

    // 429 with `ratelimit-remaining: 0` (no Retry-After): same, nothing more.
    let (_, n) = case(
        &e,
        "429 ratelimit-remaining 0",
        vec![
            Rule::on(
                REF,
                Action::Respond(
                    Synth::new(429)
                        .header("RateLimit-Remaining", "0")
                        .header("RateLimit-Limit", "100;w=21600")
                        .json(&json!({"errors": [{"code": "TOOMANYREQUESTS"}]})),
                ),
            )
            .times(50),
        ],
        "RateLimited",
        &["HTTP 429"],
        REF,
    )
    .await;
    assert_eq!(n, 1 + MAX_RETRIES as usize);

    // A 200 carrying `ratelimit-remaining: 0` is a normal answer.
    let d = discoverer(20);
    e.proxy.set_rules(vec![Rule::on(
        REF,
        Action::ForwardMangle(Arc::new(|_, s| s.header("RateLimit-Remaining", "0"))),
    )]);
    let (out, _) = discover(&d, &e.client, &e.faulty.digest).await;
    assert_found_sig(&out, &e.faulty.sig, "200 with ratelimit-remaining: 0");
    e.proxy.heal();

    // Retry-After longer than maxDelay: not waited for, RateLimited at once.
    let (took, n) = case(
        &e,
        "429 Retry-After 3600",
        vec![Rule::on(
            REF,
            Action::Respond(Synth::new(429).header("Retry-After", "3600")),
        )],
        "RateLimited",
        &["HTTP 429"],
        REF,
    )
    .await;
    assert_eq!(n, 1);
    assert!(took < Duration::from_secs(2), "took {took:?}");

    // Retry-After in seconds is honoured (one retry, ≥ 1 s later), then Found.
    let d = discoverer(20);
    e.proxy.clear_log();
    e.proxy.set_rules(vec![
        Rule::on(
            REF,
            Action::Respond(Synth::new(429).header("Retry-After", "1")),
        )
        .times(1),
    ]);
    let (out, _) = discover(&d, &e.client, &e.faulty.digest).await;
    assert_found_sig(&out, &e.faulty.sig, "429 Retry-After: 1");
    let t = e.proxy.times_of(REF);
    assert_eq!(t.len(), 2, "one retry");
    assert!(
        t[1] - t[0] >= Duration::from_millis(990),
        "Retry-After: 1 not honoured: {:?}",
        t[1] - t[0]
    );

    // Retry-After as an HTTP-date (≥ 1 s ahead; HTTP-dates have 1 s resolution).
    let d = discoverer(20);
    e.proxy.clear_log();
    let when = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(2);
    let date = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&when)
        .expect("http date");
    e.proxy.set_rules(vec![
        Rule::on(
            REF,
            Action::Respond(Synth::new(429).header("Retry-After", date)),
        )
        .times(1),
    ]);
    let (out, _) = discover(&d, &e.client, &e.faulty.digest).await;
    assert_found_sig(&out, &e.faulty.sig, "429 Retry-After HTTP-date");
    let t = e.proxy.times_of(REF);
    assert_eq!(t.len(), 2, "one retry");
    assert!(
        t[1] - t[0] >= Duration::from_millis(900),
        "Retry-After HTTP-date not honoured: {:?}",
        t[1] - t[0]
    );
    e.proxy.heal();
    Ok(())
}

fn respond_index(ct: &str, body: impl Into<Vec<u8>>) -> Action {
    Action::Respond(Synth::new(200).header("Content-Type", ct).body(body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_answers() -> TestResult {
    let e = env().await?;
    case(
        &e,
        "invalid JSON",
        vec![Rule::on(
            REF,
            respond_index(OCI_INDEX, "{\"schemaVersion\": 2, \"manifests\": ["),
        )],
        "InvalidResponse",
        &["malformed"],
        REF,
    )
    .await;
    case(
        &e,
        "index with wrong types",
        vec![Rule::on(
            REF,
            respond_index(
                OCI_INDEX,
                json!({"schemaVersion": "two", "mediaType": OCI_INDEX, "manifests": [{"digest": 5, "size": "big"}]})
                    .to_string(),
            ),
        )],
        "InvalidResponse",
        &["malformed"],
        REF,
    )
    .await;
    case(
        &e,
        "HTML page with 200",
        vec![Rule::on(
            REF,
            respond_index("text/html", "<html><body>Please log in</body></html>"),
        )],
        "InvalidResponse",
        &["html"],
        REF,
    )
    .await;
    let body = e.faulty.index_body.clone();
    case(
        &e,
        "wrong Content-Type",
        vec![Rule::on(
            REF,
            respond_index("application/octet-stream", body),
        )],
        "InvalidResponse",
        &["content-type"],
        REF,
    )
    .await;
    // The manifest body does not hash to the digest it was fetched by.
    case(
        &e,
        "digest mismatch",
        vec![Rule::on(
            MAN,
            Action::ForwardMangle(Arc::new(|_, mut s| {
                if let Body::Full(b) = &mut s.body {
                    b.push(b'\n');
                }
                s
            })),
        )],
        "InvalidResponse",
        &["content digest"],
        MAN,
    )
    .await;
    // A lying Docker-Content-Digest header alone is ignored: the body is verified.
    let d = discoverer(20);
    e.proxy.set_rules(vec![Rule::on(
        MAN,
        Action::ForwardMangle(Arc::new(|_, mut s| {
            s.headers
                .retain(|(k, _)| !k.eq_ignore_ascii_case("docker-content-digest"));
            s.header(
                "Docker-Content-Digest",
                format!("sha256:{}", "0".repeat(64)),
            )
        })),
    )]);
    let (out, _) = discover(&d, &e.client, &e.faulty.digest).await;
    assert_found_sig(&out, &e.faulty.sig, "lying digest header");
    e.proxy.heal();

    // Over the body limit: declared by Content-Length …
    case(
        &e,
        "index over the size limit",
        vec![Rule::on(
            REF,
            respond_index(OCI_INDEX, vec![b' '; 256 * 1024]),
        )],
        "BodyTooLarge",
        &["exceeds the limit"],
        REF,
    )
    .await;
    // … and an endless chunked body (memory stays bounded: the read stops at the limit).
    let (took, n) = case(
        &e,
        "endless body",
        vec![Rule::on(
            REF,
            Action::Respond(
                Synth::new(200)
                    .header("Content-Type", OCI_INDEX)
                    .with_body(Body::Endless),
            ),
        )],
        "BodyTooLarge",
        &["exceeds the limit"],
        REF,
    )
    .await;
    assert_eq!(n, 1, "a body over the limit is not retried");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    Ok(())
}

/// Referrers pages: page `p` (query `p`, default 0) holds the signature on
/// page 0 only; `next(p)` gives the next page number, `None` for the last.
fn pages(body: String, next: fn(u32) -> Option<u32>) -> Action {
    let empty = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).to_string();
    Action::Dynamic(Arc::new(move |seen| {
        let p: u32 = seen
            .query_param("p")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut s = Synth::new(200)
            .header("Content-Type", OCI_INDEX)
            .body(if p == 0 { body.clone() } else { empty.clone() });
        if let Some(n) = next(p) {
            s = s.header("Link", format!("<{}?p={n}>; rel=\"next\"", seen.path()));
        }
        Some(s)
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagination_traps() -> TestResult {
    let e = env().await?;
    let body = e.faulty.index_body.clone();

    // A Link pointing to the page itself: read once, not followed again, and Unknown
    // (a looping list may hide a required referrer: no verdict on it).
    let self_link = {
        let body = body.clone();
        Action::Dynamic(Arc::new(move |seen| {
            Some(
                Synth::new(200)
                    .header("Content-Type", OCI_INDEX)
                    .header("Link", format!("<{}>; rel=\"next\"", seen.target))
                    .body(body.clone()),
            )
        }))
    };
    let (_, n) = case(
        &e,
        "self link",
        vec![Rule::on(REF, self_link)],
        "PaginationLoop",
        &["loops"],
        REF,
    )
    .await;
    assert_eq!(n, 1, "self link is not followed");

    // A cycle 0 -> 1 -> 2 -> 1: each page read once, then Unknown.
    let (_, n) = case(
        &e,
        "link cycle",
        vec![Rule::on(
            REF,
            pages(body.clone(), |p| Some(if p == 2 { 1 } else { p + 1 })),
        )],
        "PaginationLoop",
        &["loops"],
        REF,
    )
    .await;
    assert_eq!(n, 3, "cycle: each page once");

    // Thousands of pages: stopped at max_pages, Unknown (an incomplete list is not a verdict).
    let (_, n) = case(
        &e,
        "thousands of pages",
        vec![Rule::on(REF, pages(body, |p| (p < 5000).then_some(p + 1)))],
        "TooManyPages",
        &["incomplete"],
        REF,
    )
    .await;
    assert_eq!(n, 20, "max_pages");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_tls_and_redirect_loops() -> TestResult {
    let e = env().await?;
    let d = discoverer(20);

    // DNS failure: the name cannot resolve (no traffic leaves the machine).
    let dns = client("http://refwarden-nonexistent.invalid:5000");
    let (out, took) = discover(&d, &dns, &e.faulty.digest).await;
    let (r, m) = unknown(&out, "dns");
    assert_eq!(r, "Unreachable", "{m}");
    assert!(m.to_ascii_lowercase().contains("dns"), "{m}");
    assert!(took < GUARD);

    // TLS handshake failure: https to a plain HTTP port.
    let tls = client(&format!("https://{}", e.proxy.host()));
    let (out, _) = discover(&d, &tls, &e.faulty.digest).await;
    let (r, m) = unknown(&out, "tls");
    assert_eq!(r, "TlsError", "{m}");

    // Redirect loop.
    let (_, n) = case(
        &e,
        "redirect loop",
        vec![Rule::on(
            REF,
            Action::Dynamic(Arc::new(|seen| {
                Some(Synth::new(302).header("Location", seen.target.clone()))
            })),
        )],
        "RedirectRefused",
        &["loop"],
        REF,
    )
    .await;
    assert!(n <= 2, "loop detected at once: {n}");

    // An endless chain of redirects: capped.
    let (_, n) = case(
        &e,
        "redirect chain",
        vec![Rule::on(
            REF,
            Action::Dynamic(Arc::new(|seen| {
                let hop: u32 = seen
                    .query_param("hop")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                Some(Synth::new(307).header("Location", format!("{}?hop={}", seen.path(), hop + 1)))
            })),
        )],
        "RedirectRefused",
        &["redirect"],
        REF,
    )
    .await;
    assert!(n <= 8, "redirects are capped: {n}");
    Ok(())
}
