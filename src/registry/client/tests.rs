//! Client tests against tiny axum servers on 127.0.0.1.

use super::auth_flow::bearer_header;
use super::retry::retry_after;
use super::*;
use crate::registry::auth::Credentials;
use crate::registry::metrics::Endpoint;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue};
use secrecy::SecretString;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tokio::net::TcpListener;

const PASSWORD: &str = "pa55-secret-xyz";

async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (listener, addr)
}

fn spawn(listener: TcpListener, router: Router) {
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
}

async fn serve(router: Router) -> SocketAddr {
    let (l, a) = bind().await;
    spawn(l, router);
    a
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let (l, a) = bind().await;
    drop(l);
    a.port()
}

fn config(addr: SocketAddr) -> RegistryClientConfig {
    let mut c = RegistryClientConfig::new(&format!("http://{addr}"), true).unwrap();
    c.retry = RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_secs(2),
    };
    c.timeout = Duration::from_secs(5);
    c.connect_timeout = Duration::from_secs(2);
    c
}

fn basic_creds(password: &str) -> Credentials {
    Credentials::Basic {
        username: "alice".into(),
        password: SecretString::from(password.to_string()),
    }
}

fn expected_basic(password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("alice:{password}"))
    )
}

fn auth_of(req: &Request) -> Option<String> {
    req.headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
}

fn resp(status: u16, headers: &[(&str, String)], body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    for (k, v) in headers {
        r.headers_mut().append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    r
}

fn manifest_get(repo: &str) -> RegistryRequest {
    RegistryRequest::get(
        format!("/v2/{repo}/manifests/latest"),
        Endpoint::ManifestGet,
    )
    .accept(crate::oci::manifest_accept_header())
    .scope(Scope::pull(repo))
}

type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// Registry requiring `Bearer tok-1` with a token endpoint at `/token`.
/// The token endpoint demands `required_auth` (if any) and logs every call.
async fn token_registry(required_auth: Option<String>, challenge_scope: bool) -> (SocketAddr, Log) {
    let (listener, addr) = bind().await;
    let log: Log = Arc::default();
    let l = log.clone();
    let router = Router::new().fallback(move |req: Request| {
        let log = l.clone();
        let required_auth = required_auth.clone();
        async move {
            let auth = auth_of(&req);
            let path = req.uri().path().to_string();
            if path == "/token" {
                let method = req.method().clone();
                let query = req.uri().query().unwrap_or_default().to_string();
                let body = axum::body::to_bytes(req.into_body(), 1 << 16)
                    .await
                    .unwrap();
                let entry = format!("{method} {query} {}", String::from_utf8_lossy(&body));
                log.lock().push((entry, auth.clone()));
                if required_auth.is_some() && auth != required_auth {
                    return resp(401, &[], "bad credentials");
                }
                return resp(
                    200,
                    &[("content-type", "application/json".into())],
                    r#"{"token":"tok-1","expires_in":300}"#,
                );
            }
            if auth.as_deref() == Some("Bearer tok-1") && !path.contains("/forbidden/") {
                return resp(
                    200,
                    &[("content-type", "application/json".into())],
                    r#"{"ok":true}"#,
                );
            }
            let repo = path
                .trim_start_matches("/v2/")
                .split("/manifests/")
                .next()
                .unwrap_or_default()
                .to_string();
            let mut challenge = format!(r#"Bearer realm="http://{addr}/token",service="reg""#);
            if challenge_scope {
                challenge.push_str(&format!(r#",scope="repository:{repo}:pull""#));
            }
            resp(
                401,
                &[("www-authenticate", challenge)],
                r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#,
            )
        }
    });
    spawn(listener, router);
    (addr, log)
}

#[tokio::test]
async fn token_flow_then_cached_token_costs_one_request() {
    let (addr, log) = token_registry(None, true).await;
    let client = RegistryClient::new(config(addr)).unwrap();
    let reg = client.registry().to_string();
    assert_eq!(reg, format!("127.0.0.1:{}", addr.port()));
    let c = client.counters();

    let r = client.send(manifest_get("a/b")).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(c.count(&reg, Endpoint::ManifestGet), 2);
    assert_eq!(c.count(&reg, Endpoint::Token), 1);
    assert_eq!(c.total(), 3);
    {
        let log = log.lock();
        assert_eq!(log.len(), 1);
        let (entry, auth) = &log[0];
        assert!(entry.starts_with("GET "), "{entry}");
        assert!(entry.contains("service=reg"), "{entry}");
        assert!(entry.contains("scope=repository%3Aa%2Fb%3Apull"), "{entry}");
        assert_eq!(
            *auth, None,
            "anonymous token request carries no Authorization"
        );
    }

    let r = client.send(manifest_get("a/b")).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(c.total(), 4, "warm token: exactly one request");
    assert_eq!(c.count(&reg, Endpoint::Token), 1);
    assert_eq!(
        c.snapshot(),
        vec![
            (reg.clone(), Endpoint::ManifestGet, Some(200), 2),
            (reg.clone(), Endpoint::ManifestGet, Some(401), 1),
            (reg.clone(), Endpoint::Token, Some(200), 1),
        ]
    );

    // Another repository needs another token.
    client.send(manifest_get("other")).await.unwrap();
    assert_eq!(c.count(&reg, Endpoint::Token), 2);
}

#[tokio::test]
async fn token_flow_without_challenge_scope_uses_request_scope() {
    let (addr, log) = token_registry(None, false).await;
    let client = RegistryClient::new(config(addr)).unwrap();
    client.send(manifest_get("x/y")).await.unwrap();
    client.send(manifest_get("x/y")).await.unwrap();
    assert_eq!(client.counters().total(), 4);
    assert!(log.lock()[0].0.contains("scope=repository%3Ax%2Fy%3Apull"));
}

#[tokio::test]
async fn token_flow_with_basic_credentials_and_identity_token() {
    let (addr, log) = token_registry(Some(expected_basic(PASSWORD)), true).await;
    let mut cfg = config(addr);
    cfg.credentials = basic_creds(PASSWORD);
    let client = RegistryClient::new(cfg).unwrap();
    let r = client.send(manifest_get("a")).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(log.lock()[0].1, Some(expected_basic(PASSWORD)));

    // Wrong password: the token endpoint refuses → Auth error without secrets.
    let mut cfg = config(addr);
    cfg.credentials = basic_creds("wrong-pw-123");
    let client = RegistryClient::new(cfg).unwrap();
    let e = client.send(manifest_get("a")).await.unwrap_err();
    assert_eq!(e.reason(), "AuthFailed");
    let text = format!("{e} {e:?}");
    assert!(text.contains("HTTP 401"), "{text}");
    assert!(!text.contains("wrong-pw-123"), "{text}");

    // Identity token: POST form with grant_type=refresh_token.
    let (addr, log) = token_registry(None, true).await;
    let mut cfg = config(addr);
    cfg.credentials = Credentials::IdentityToken(SecretString::from("refresh-abc"));
    let client = RegistryClient::new(cfg).unwrap();
    assert_eq!(
        client.send(manifest_get("a")).await.unwrap().status,
        StatusCode::OK
    );
    let (entry, _) = log.lock()[0].clone();
    assert!(entry.starts_with("POST "), "{entry}");
    for part in [
        "grant_type=refresh_token",
        "refresh_token=refresh-abc",
        "client_id=refwarden",
        "service=reg",
        "scope=repository%3Aa%3Apull",
    ] {
        assert!(entry.contains(part), "{part} missing in {entry}");
    }
}

#[tokio::test]
async fn still_401_after_token_is_returned_not_retried_again() {
    let (addr, _log) = token_registry(None, true).await;
    let client = RegistryClient::new(config(addr)).unwrap();
    let reg = client.registry().to_string();
    let r = client.send(manifest_get("forbidden/x")).await.unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.error_codes(), vec!["UNAUTHORIZED".to_string()]);
    let c = client.counters();
    assert_eq!(c.count(&reg, Endpoint::ManifestGet), 2);
    assert_eq!(c.count(&reg, Endpoint::Token), 1);
}

#[tokio::test]
async fn token_endpoint_failures_are_auth_errors() {
    let down = closed_port().await;
    let (listener, addr) = bind().await;
    let router = Router::new().fallback(move |req: Request| async move {
        let path = req.uri().path().to_string();
        match path.as_str() {
            "/token-garbage" => resp(200, &[], "<html>not json</html>"),
            "/token-500" => resp(500, &[], "oops"),
            "/token-empty" => resp(200, &[], r#"{"token":""}"#),
            "/token-huge" => resp(200, &[], vec![b' '; 10_000]),
            _ => {
                let kind = path.split('/').nth(2).unwrap_or_default().to_string();
                let realm = if kind == "down" {
                    format!("http://127.0.0.1:{down}/token")
                } else {
                    format!("http://{addr}/token-{kind}")
                };
                resp(
                    401,
                    &[("www-authenticate", format!(r#"Bearer realm="{realm}""#))],
                    "",
                )
            }
        }
    });
    spawn(listener, router);
    let mut cfg = config(addr);
    cfg.credentials = basic_creds(PASSWORD);
    cfg.max_body_bytes = 1000;
    let client = RegistryClient::new(cfg).unwrap();
    for (kind, needle) in [
        ("down", "unreachable"),
        ("garbage", "not the expected JSON"),
        ("500", "HTTP 500"),
        ("empty", "neither"),
        ("huge", "exceeds 1000 bytes"),
    ] {
        let e = client.send(manifest_get(kind)).await.unwrap_err();
        let text = format!("{e} / {e:?}");
        assert!(matches!(e, RegistryError::Auth { .. }), "{kind}: {text}");
        assert!(text.contains(needle), "{kind}: {text}");
        assert!(!text.contains(PASSWORD), "{kind}: {text}");
        assert!(
            !text.contains(&expected_basic(PASSWORD)[6..]),
            "{kind}: {text}"
        );
    }
    let reg = client.registry().to_string();
    let snap = client.counters().snapshot();
    assert!(
        snap.contains(&(reg.clone(), Endpoint::Token, None, 1)),
        "{snap:?}"
    );
    assert_eq!(client.counters().count(&reg, Endpoint::Token), 5);
}

#[tokio::test]
async fn basic_flow_and_preemptive_basic() {
    let want = expected_basic(PASSWORD);
    let router = Router::new().fallback(move |req: Request| {
        let want = want.clone();
        async move {
            if auth_of(&req).as_deref() == Some(want.as_str()) {
                resp(200, &[], "{}")
            } else {
                resp(
                    401,
                    &[("www-authenticate", r#"Basic realm="reg""#.into())],
                    "",
                )
            }
        }
    });
    let addr = serve(router).await;
    let mut cfg = config(addr);
    cfg.credentials = basic_creds(PASSWORD);
    let client = RegistryClient::new(cfg).unwrap();
    let reg = client.registry().to_string();
    assert_eq!(
        client.send(manifest_get("a")).await.unwrap().status,
        StatusCode::OK
    );
    assert_eq!(client.counters().count(&reg, Endpoint::ManifestGet), 2);
    assert_eq!(
        client.send(manifest_get("a")).await.unwrap().status,
        StatusCode::OK
    );
    assert_eq!(
        client.counters().total(),
        3,
        "Basic is sent pre-emptively once the challenge is known"
    );
    assert_eq!(client.counters().count(&reg, Endpoint::Token), 0);

    // Wrong password: one retry with Basic, then the 401 is returned.
    let mut cfg = config(addr);
    cfg.credentials = basic_creds("nope");
    let client = RegistryClient::new(cfg).unwrap();
    let r = client.send(manifest_get("a")).await.unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(client.counters().total(), 2);
    let r = client.send(manifest_get("a")).await.unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        client.counters().total(),
        3,
        "pre-emptive Basic rejected → no second retry"
    );

    // Anonymous client: nothing to answer a Basic challenge with.
    let client = RegistryClient::new(config(addr)).unwrap();
    let r = client.send(manifest_get("a")).await.unwrap();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(client.counters().total(), 1);
}

/// Server answering with `statuses` in order, then 200; counts hits.
async fn sequence_server(
    statuses: Vec<(u16, Vec<(&'static str, String)>)>,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let statuses = Arc::new(statuses);
    let router = Router::new().fallback(move |_req: Request| {
        let hits = h.clone();
        let statuses = statuses.clone();
        async move {
            let n = hits.fetch_add(1, Ordering::SeqCst);
            match statuses.get(n) {
                Some((s, headers)) => {
                    resp(*s, headers, r#"{"errors":[{"code":"TOOMANYREQUESTS"}]}"#)
                }
                None => resp(200, &[], "{}"),
            }
        }
    });
    (serve(router).await, hits)
}

#[tokio::test]
async fn retry_after_429_is_honoured() {
    let (addr, hits) = sequence_server(vec![(429, vec![("retry-after", "1".into())])]).await;
    let client = RegistryClient::new(config(addr)).unwrap();
    let start = Instant::now();
    let r = client.send(manifest_get("a")).await.unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert_eq!(client.counters().total(), 2);
    let reg = client.registry().to_string();
    assert!(
        client
            .counters()
            .snapshot()
            .contains(&(reg, Endpoint::ManifestGet, Some(429), 1))
    );
}

#[tokio::test]
async fn retry_after_longer_than_max_delay_returns_response() {
    let (addr, hits) = sequence_server(vec![(429, vec![("retry-after", "120".into())])]).await;
    let client = RegistryClient::new(config(addr)).unwrap();
    let r = client.send(manifest_get("a")).await.unwrap();
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.error_codes(), vec!["TOOMANYREQUESTS".to_string()]);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    let always = (0..20).map(|_| (503, vec![])).collect();
    let (addr, hits) = sequence_server(always).await;
    let client = RegistryClient::new(config(addr)).unwrap();
    let r = client.send(manifest_get("a")).await.unwrap();
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(hits.load(Ordering::SeqCst), 4, "max_retries + 1");
    assert_eq!(client.counters().total(), 4);

    // 502 then 504 then success.
    let (addr, hits) = sequence_server(vec![(502, vec![]), (504, vec![])]).await;
    let client = RegistryClient::new(config(addr)).unwrap();
    assert_eq!(
        client.send(manifest_get("a")).await.unwrap().status,
        StatusCode::OK
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    for status in [404u16, 400, 403, 405, 500] {
        let (addr, hits) = sequence_server(vec![(status, vec![])]).await;
        let client = RegistryClient::new(config(addr)).unwrap();
        let r = client.send(manifest_get("a")).await.unwrap();
        assert_eq!(r.status.as_u16(), status);
        assert_eq!(hits.load(Ordering::SeqCst), 1, "{status}");
        assert_eq!(client.counters().total(), 1);
    }
}

#[tokio::test]
async fn connection_refused_is_retried_then_connect_error() {
    let port = closed_port().await;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut cfg = config(addr);
    cfg.retry.max_retries = 2;
    let client = RegistryClient::new(cfg).unwrap();
    let e = client.send(manifest_get("a")).await.unwrap_err();
    assert_eq!(e.reason(), "Unreachable", "{e:?}");
    assert!(!e.to_string().contains("http://"), "{e}");
    let reg = client.registry().to_string();
    assert_eq!(
        client.counters().snapshot(),
        vec![(reg, Endpoint::ManifestGet, None, 3)]
    );
}

#[tokio::test]
async fn timeout_is_retried_only_once() {
    let router = Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_secs(3)).await;
        "late"
    });
    let addr = serve(router).await;
    let mut cfg = config(addr);
    cfg.timeout = Duration::from_millis(200);
    let client = RegistryClient::new(cfg).unwrap();
    let e = client.send(manifest_get("a")).await.unwrap_err();
    assert!(
        matches!(e, RegistryError::Timeout { seconds: 1, .. }),
        "{e:?}"
    );
    assert_eq!(client.counters().total(), 2);
}

#[tokio::test]
async fn body_limit_is_enforced() {
    let router = Router::new().fallback(|req: Request| async move {
        match req.uri().path() {
            "/v2/big/manifests/latest" => resp(200, &[], vec![b'x'; 2000]),
            "/v2/exact/manifests/latest" => resp(200, &[], vec![b'x'; 1000]),
            _ => {
                // Chunked, no Content-Length.
                let chunks = (0..10).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'y'; 200])));
                resp(200, &[], Body::from_stream(futures::stream::iter(chunks)))
            }
        }
    });
    let addr = serve(router).await;
    let mut cfg = config(addr);
    cfg.max_body_bytes = 1000;
    let client = RegistryClient::new(cfg).unwrap();
    for repo in ["big", "stream"] {
        let e = client.send(manifest_get(repo)).await.unwrap_err();
        assert!(
            matches!(&e, RegistryError::BodyTooLarge { limit: 1000, url } if url.contains(repo)),
            "{e:?}"
        );
        assert_eq!(e.reason(), "BodyTooLarge");
    }
    let r = client.send(manifest_get("exact")).await.unwrap();
    assert_eq!(r.body.len(), 1000);
    // HEAD never reads a body.
    let r = client
        .send(RegistryRequest::head(
            "/v2/big/manifests/latest",
            Endpoint::ManifestHead,
        ))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty());
    assert_eq!(r.header("content-length"), Some("2000"));
}

#[tokio::test]
async fn cross_host_redirect_strips_authorization() {
    let seen_b: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let sb = seen_b.clone();
    let b = serve(Router::new().fallback(move |req: Request| {
        let sb = sb.clone();
        async move {
            sb.lock().push(auth_of(&req));
            resp(200, &[], "blob-content")
        }
    }))
    .await;
    let want = expected_basic(PASSWORD);
    let seen_a: Log = Arc::default();
    let sa = seen_a.clone();
    let a = serve(Router::new().fallback(move |req: Request| {
        let want = want.clone();
        let sa = sa.clone();
        async move {
            let auth = auth_of(&req);
            let path = req.uri().path().to_string();
            sa.lock().push((path.clone(), auth.clone()));
            if auth.as_deref() != Some(want.as_str()) {
                return resp(
                    401,
                    &[("www-authenticate", r#"Basic realm="a""#.into())],
                    "",
                );
            }
            match path.as_str() {
                "/v2/r/blobs/same" => resp(307, &[("location", "/v2/r/blobs/target".into())], ""),
                "/v2/r/blobs/target" => resp(200, &[], "same-host"),
                _ => resp(
                    307,
                    &[(
                        "location",
                        format!("http://127.0.0.1:{}/data/blob", b.port()),
                    )],
                    "",
                ),
            }
        }
    }))
    .await;
    let mut cfg = config(a);
    cfg.credentials = basic_creds(PASSWORD);
    let client = RegistryClient::new(cfg).unwrap();
    let r = client
        .send(
            RegistryRequest::get("/v2/r/blobs/sha256:abc", Endpoint::BlobGet)
                .scope(Scope::pull("r")),
        )
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], b"blob-content");
    assert_eq!(r.url.port(), Some(b.port()));
    assert_eq!(
        *seen_b.lock(),
        vec![None],
        "Authorization must not cross hosts"
    );
    assert_eq!(
        seen_a.lock().last().unwrap().1.as_deref(),
        Some(expected_basic(PASSWORD).as_str())
    );

    // Same-host redirect keeps Authorization.
    let r = client
        .send(RegistryRequest::get("/v2/r/blobs/same", Endpoint::BlobGet))
        .await
        .unwrap();
    assert_eq!(&r.body[..], b"same-host");
    assert_eq!(r.url.path(), "/v2/r/blobs/target");
}

#[tokio::test]
async fn redirect_loops_and_chains_are_errors() {
    let addr = serve(Router::new().fallback(|req: Request| async move {
        let path = req.uri().path().to_string();
        if path == "/v2/loop" {
            return resp(302, &[("location", "/v2/loop".into())], "");
        }
        let n: u32 = path
            .rsplit('/')
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        resp(302, &[("location", format!("/v2/chain/{}", n + 1))], "")
    }))
    .await;
    let client = RegistryClient::new(config(addr)).unwrap();
    let e = client
        .send(RegistryRequest::get("/v2/loop", Endpoint::Other))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RegistryError::Redirect { reason, .. } if reason == "redirect loop"),
        "{e:?}"
    );
    assert_eq!(e.reason(), "RedirectRefused");
    let e = client
        .send(RegistryRequest::get("/v2/chain/0", Endpoint::Other))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, RegistryError::Redirect { reason, .. } if reason.contains("more than 5")),
        "{e:?}"
    );
    assert_eq!(
        client.counters().total(),
        1 + 1 + egress::MAX_REDIRECTS as u64,
        "every hop is counted; a refused chain is not retried"
    );
}

#[tokio::test]
async fn query_is_url_encoded_and_paths_are_checked() {
    let addr = serve(Router::new().fallback(|req: Request| async move {
        resp(
            200,
            &[(
                "content-type",
                "Application/VND.OCI.Image.Index.v1+json; charset=utf-8".into(),
            )],
            req.uri().query().unwrap_or_default().to_string(),
        )
    }))
    .await;
    let client = RegistryClient::new(config(addr)).unwrap();
    let r = client
        .send(
            RegistryRequest::get(
                format!("/v2/a/referrers/{}", crate::oci::OCI_EMPTY_DIGEST),
                Endpoint::Referrers,
            )
            .query("artifactType", "application/vnd.cyclonedx+json")
            .query("n", "a b&c"),
        )
        .await
        .unwrap();
    assert_eq!(
        std::str::from_utf8(&r.body).unwrap(),
        "artifactType=application%2Fvnd.cyclonedx%2Bjson&n=a+b%26c"
    );
    assert_eq!(
        r.content_type(),
        Some("application/vnd.oci.image.index.v1+json")
    );
    let e = r.json::<serde_json::Value>().unwrap_err();
    assert!(
        matches!(&e, RegistryError::InvalidResponse { url, .. } if url.contains("/v2/a/referrers/")),
        "{e:?}"
    );

    // Absolute URL on the same registry (Location follow-up) merges queries.
    let r = client
        .send(
            RegistryRequest::put(
                format!("http://{addr}/v2/a/blobs/uploads/u1?_state=xyz"),
                Endpoint::Other,
            )
            .query("digest", "sha256:00"),
        )
        .await
        .unwrap();
    assert_eq!(
        std::str::from_utf8(&r.body).unwrap(),
        "_state=xyz&digest=sha256%3A00"
    );

    for bad in [
        "/v1/x".to_string(),
        "v2/x".to_string(),
        "/v2/../etc/passwd".to_string(),
        "http://other.example.com/v2/x".to_string(),
        format!("http://u:{PASSWORD}@{addr}/v2/x"),
    ] {
        let e = client
            .send(RegistryRequest::get(bad.clone(), Endpoint::Other))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, RegistryError::Config { field, .. } if field == "path"),
            "{bad}: {e:?}"
        );
        assert!(!e.to_string().contains(PASSWORD));
    }
    assert_eq!(client.counters().total(), 2);
}

#[tokio::test]
async fn rate_limit_waits_for_permits() {
    let (addr, _) = sequence_server(vec![]).await;
    let mut cfg = config(addr);
    cfg.rate_limit = Some(RateLimit {
        requests_per_second: 20,
        burst: 1,
    });
    let client = RegistryClient::new(cfg).unwrap();
    let start = Instant::now();
    for _ in 0..3 {
        client.send(manifest_get("a")).await.unwrap();
    }
    assert!(
        start.elapsed() >= Duration::from_millis(90),
        "{:?}",
        start.elapsed()
    );

    let mut cfg = config(addr);
    cfg.rate_limit = Some(RateLimit {
        requests_per_second: 0,
        burst: 1,
    });
    let e = RegistryClient::new(cfg).unwrap_err();
    assert!(
        matches!(&e, RegistryError::Config { field, .. } if field == "rateLimit.requestsPerSecond")
    );
}

#[tokio::test]
async fn tls_errors_are_classified() {
    // An https client talking to a plain-HTTP server fails in the TLS layer.
    let (addr, _) = sequence_server(vec![]).await;
    let cfg = RegistryClientConfig::new(&format!("https://{addr}"), false).unwrap();
    let mut cfg = RegistryClientConfig {
        retry: RetryPolicy {
            max_retries: 0,
            ..RetryPolicy::default()
        },
        ..cfg
    };
    cfg.timeout = Duration::from_secs(5);
    let client = RegistryClient::new(cfg).unwrap();
    let e = client.send(manifest_get("a")).await.unwrap_err();
    assert_eq!(e.reason(), "TlsError", "{e:?}");
}

#[test]
fn config_validation() {
    let e = RegistryClientConfig::new("http://localhost:5000", false).unwrap_err();
    assert!(
        matches!(&e, RegistryError::Config { field, reason } if field == "registryUrl" && reason == "http:// requires plainHttp: true"),
        "{e:?}"
    );
    let e = RegistryClientConfig::new("https://localhost:5000", true).unwrap_err();
    assert!(
        matches!(&e, RegistryError::Config { field, .. } if field == "plainHttp"),
        "{e:?}"
    );
    for bad in [
        "localhost:5000",
        "registry.example.com",
        "ftp://x",
        "https://",
        "https://host/v2",
        "https://host/path/",
        "https://host?x=1",
        "https://host#frag",
    ] {
        let e = RegistryClientConfig::new(bad, false).unwrap_err();
        assert!(
            matches!(&e, RegistryError::Config { field, .. } if field == "registryUrl"),
            "{bad}: {e:?}"
        );
        assert_eq!(e.reason(), "InvalidConfig");
    }
    let e =
        RegistryClientConfig::new(&format!("https://alice:{PASSWORD}@host"), false).unwrap_err();
    assert!(!format!("{e} {e:?}").contains(PASSWORD));

    let c = RegistryClientConfig::new("https://Registry.Example.com/", false).unwrap();
    assert_eq!(c.max_body_bytes, 4 * 1024 * 1024);
    assert_eq!(c.timeout, Duration::from_secs(30));
    assert_eq!(c.connect_timeout, Duration::from_secs(10));
    assert!(c.user_agent.starts_with("refwarden/"));
    let client = RegistryClient::new(c).unwrap();
    assert_eq!(client.registry(), "registry.example.com:443");
    assert_eq!(client.base_url().as_str(), "https://registry.example.com/");
    let c = RegistryClientConfig::new("http://127.0.0.1:5000", true).unwrap();
    assert_eq!(RegistryClient::new(c).unwrap().registry(), "127.0.0.1:5000");
    let c = RegistryClientConfig::new("https://[::1]:5000", false).unwrap();
    assert_eq!(RegistryClient::new(c).unwrap().registry(), "[::1]:5000");

    let mut c = RegistryClientConfig::new("https://r.io", false).unwrap();
    c.ca_bundle_pem = Some(b"garbage".to_vec());
    let e = RegistryClient::new(c).unwrap_err();
    assert!(
        matches!(&e, RegistryError::Config { field, .. } if field == "caBundle"),
        "{e:?}"
    );
}

#[test]
fn secrets_never_in_debug() {
    let mut c = RegistryClientConfig::new("https://r.io", false).unwrap();
    c.credentials = basic_creds(PASSWORD);
    let client = RegistryClient::new(c.clone()).unwrap();
    let text = format!("{c:?} {client:?}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(text.contains("alice"));
    c.credentials = Credentials::IdentityToken(SecretString::from(PASSWORD));
    assert!(!format!("{c:?}").contains(PASSWORD));
    let h = bearer_header(SecretString::from(PASSWORD));
    assert!(!format!("{h:?}").contains(PASSWORD));
}

#[test]
fn retry_after_formats_and_backoff() {
    let mut h = HeaderMap::new();
    assert_eq!(retry_after(&h), None);
    h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
    assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
    h.insert(
        RETRY_AFTER,
        HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT"),
    );
    assert_eq!(retry_after(&h), Some(Duration::ZERO));
    let future = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(100);
    let date = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&future)
        .unwrap();
    h.insert(RETRY_AFTER, HeaderValue::from_str(&date).unwrap());
    let d = retry_after(&h).unwrap();
    assert!(
        d > Duration::from_secs(95) && d <= Duration::from_secs(100),
        "{d:?} from {date}"
    );
    h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
    assert_eq!(retry_after(&h), None);

    let p = RetryPolicy {
        max_retries: 10,
        base_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
    };
    for retry in 0..40 {
        let d = p.backoff(retry);
        assert!(d <= Duration::from_millis(100 << retry.min(4)).min(Duration::from_secs(1)));
    }
}

#[test]
fn request_builders() {
    let r = RegistryRequest::head("/v2/a/manifests/x", Endpoint::ManifestHead);
    assert!(!r.read_body);
    let r = RegistryRequest::put("/v2/a/manifests/x", Endpoint::ManifestPut)
        .body(crate::oci::OCI_MANIFEST, Bytes::from_static(b"{}"))
        .header("If-Match", "\"etag\"")
        .header("bad header", "x")
        .scope(Scope::push_pull("a"));
    assert!(r.read_body);
    assert_eq!(
        r.headers.get(CONTENT_TYPE).unwrap(),
        crate::oci::OCI_MANIFEST
    );
    assert_eq!(r.headers.len(), 2);
    assert_eq!(r.scope.unwrap().to_scope_string(), "repository:a:pull,push");
    assert_eq!(
        Scope::new("a", &["delete"]).to_scope_string(),
        "repository:a:delete"
    );
    assert_eq!(
        Scope::pull("localhost:5000/x").to_scope_string(),
        "repository:localhost:5000/x:pull"
    );
}

#[test]
fn response_helpers() {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(" Application/JSON ; charset=UTF-8"),
    );
    let r = RegistryResponse {
        status: StatusCode::NOT_FOUND,
        headers,
        body: Bytes::from_static(
            br#"{"errors":[{"code":"NAME_UNKNOWN","message":"x"},{"message":"no code"}]}"#,
        ),
        url: Url::parse("https://r.io/v2/a/referrers/x").unwrap(),
    };
    assert_eq!(r.content_type(), Some("application/json"));
    assert_eq!(r.error_codes(), vec!["NAME_UNKNOWN".to_string()]);
    let r2 = RegistryResponse {
        body: Bytes::from_static(b"<html>"),
        headers: HeaderMap::new(),
        ..r
    };
    assert!(r2.error_codes().is_empty());
    assert_eq!(r2.content_type(), None);
}

/// A minimal blocking HTTPS server (rustls server side) answering `200 {}`
/// to every connection; `conns` bounds the number of accepted connections.
fn tls_server(conns: usize) -> (SocketAddr, String) {
    tls_server_answering(
        conns,
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_vec(),
    )
}

/// [`tls_server`] answering `answer` (a whole HTTP/1.1 response) to every connection.
fn tls_server_answering(conns: usize, answer: Vec<u8>) -> (SocketAddr, String) {
    use std::io::{Read, Write};
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let pem = ca.pem();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    let cert_der = cert.der().clone();
    let key_der = rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let server = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert_der], key_der)
    .unwrap();
    let server = Arc::new(server);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(conns) {
            let Ok(stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let Ok(conn) = rustls::ServerConnection::new(server.clone()) else {
                continue;
            };
            let mut tls = rustls::StreamOwned::new(conn, stream);
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65536 {
                match tls.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            if buf.is_empty() {
                continue;
            }
            let _ = tls.write_all(&answer);
            let _ = tls.flush();
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    });
    (addr, pem)
}

#[tokio::test]
async fn tls_verification_ca_bundle_and_skip_verify() {
    let (addr, pem) = tls_server(3);
    let url = format!("https://{addr}");
    let no_retry = RetryPolicy {
        max_retries: 0,
        ..RetryPolicy::default()
    };

    // Unknown issuer → TlsError.
    let mut cfg = RegistryClientConfig::new(&url, false).unwrap();
    cfg.retry = no_retry.clone();
    let e = RegistryClient::new(cfg)
        .unwrap()
        .send(manifest_get("a"))
        .await
        .unwrap_err();
    assert_eq!(e.reason(), "TlsError", "{e:?}");

    // Trusted through the extra CA bundle.
    let mut cfg = RegistryClientConfig::new(&url, false).unwrap();
    cfg.retry = no_retry.clone();
    cfg.ca_bundle_pem = Some(pem.into_bytes());
    let r = RegistryClient::new(cfg)
        .unwrap()
        .send(manifest_get("a"))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(&r.body[..], b"{}");

    // insecureSkipTlsVerify accepts the self-signed certificate.
    let mut cfg = RegistryClientConfig::new(&url, false).unwrap();
    cfg.retry = no_retry;
    cfg.insecure_skip_tls_verify = true;
    let r = RegistryClient::new(cfg)
        .unwrap()
        .send(manifest_get("a"))
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
}

/// An https registry may not send its credentials to a plain-HTTP token realm: the token
/// request is never made (the realm's server sees nothing).
#[tokio::test]
async fn https_registry_with_a_plain_http_realm_is_refused() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let realm = serve(Router::new().fallback(move || {
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            resp(200, &[], r#"{"token":"t"}"#)
        }
    }))
    .await;
    let challenge = format!(
        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://127.0.0.1:{}/token\",service=\"r\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        realm.port()
    );
    let (addr, pem) = tls_server_answering(2, challenge.into_bytes());
    for creds in [basic_creds(PASSWORD), Credentials::Anonymous] {
        let mut cfg = RegistryClientConfig::new(&format!("https://{addr}"), false).unwrap();
        cfg.ca_bundle_pem = Some(pem.clone().into_bytes());
        cfg.credentials = creds;
        cfg.retry.max_retries = 0;
        let e = RegistryClient::new(cfg)
            .unwrap()
            .send(manifest_get("a"))
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains("http:// for an https registry"),
            "{e}"
        );
    }
    assert_eq!(hits.load(Ordering::SeqCst), 0);
}
