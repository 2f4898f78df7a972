//! A latency-injecting HTTP proxy in front of each registry, counting the requests it forwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    delay: Duration,
    count: Arc<AtomicU64>,
}

fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "transfer-encoding" | "te" | "trailer" | "upgrade" | "host"
    ) || name == header::PROXY_AUTHORIZATION
}

/// Adds the fixed delay, then forwards the request unchanged to the upstream.
async fn forward(State(s): State<ProxyState>, req: axum::extract::Request) -> Response {
    s.count.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(s.delay).await;
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut rb = s
        .client
        .request(parts.method.clone(), format!("{}{pq}", s.upstream));
    for (k, v) in &parts.headers {
        if !hop_by_hop(k) {
            rb = rb.header(k, v);
        }
    }
    match rb.body(body).send().await {
        Ok(resp) => {
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = resp.bytes().await.unwrap_or_default();
            let mut out = Response::new(Body::from(bytes));
            *out.status_mut() = status;
            for (k, v) in &headers {
                if !hop_by_hop(k) && k != header::CONTENT_LENGTH {
                    out.headers_mut().append(k, v.clone());
                }
            }
            out
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}

pub(crate) struct Proxy {
    server: refwarden_testkit::ServerHandle,
    count: Arc<AtomicU64>,
}

impl Proxy {
    pub(crate) fn start(
        name: &str,
        upstream: &str,
        delay: Duration,
    ) -> refwarden_testkit::Result<Proxy> {
        let count = Arc::new(AtomicU64::new(0));
        let state = ProxyState {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: refwarden_testkit::http_client()?,
            delay,
            count: count.clone(),
        };
        let router = axum::Router::new().fallback(forward).with_state(state);
        Ok(Proxy {
            server: refwarden_testkit::ServerHandle::spawn(name, router)?,
            count,
        })
    }
    pub(crate) fn host(&self) -> String {
        self.server.addr().to_string()
    }
    pub(crate) fn requests(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}
