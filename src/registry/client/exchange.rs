//! One HTTP exchange: redirects followed hop by hop under the egress policy, bounded bodies,
//! transport errors mapped to [`RegistryError`].

use bytes::{Bytes, BytesMut};
use http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Method, StatusCode};
use secrecy::ExposeSecret;
use url::Url;

use super::auth_flow::AuthHeader;
use super::response::{display_url, normalise_content_type};
use super::{RegistryClient, RegistryRequest, RegistryResponse};
use crate::registry::egress::{self, Redirect};
use crate::registry::error::RegistryError;

impl RegistryClient {
    /// One HTTP exchange, redirects included (each hop counted), following only what
    /// [`egress::redirect`] allows: credentials go to the registry's origin only.
    pub(super) async fn attempt(
        &self,
        req: &RegistryRequest,
        url: &Url,
        auth: Option<&AuthHeader>,
        attempt: u32,
    ) -> Result<RegistryResponse, RegistryError> {
        let inner = &self.inner;
        let base = &inner.config.registry_url;
        let mut current = url.clone();
        let mut method = req.method.clone();
        let mut with_body = true;
        let mut credentials = true;
        let mut hops: Vec<Url> = vec![url.clone()];
        loop {
            if let Some(l) = &inner.limiter {
                l.until_ready().await;
            }
            let mut headers = req.headers.clone();
            if credentials && let Some(a) = auth {
                let mut v = HeaderValue::from_str(a.value.expose_secret()).map_err(|_| {
                    RegistryError::Auth {
                        registry: inner.registry.clone(),
                        reason: "credentials contain characters not allowed in a header".into(),
                    }
                })?;
                v.set_sensitive(true);
                headers.insert(AUTHORIZATION, v);
            }
            if !with_body {
                headers.remove(CONTENT_TYPE);
            }
            let mut rb = inner
                .http
                .request(method.clone(), current.clone())
                .headers(headers);
            if with_body && let Some(body) = &req.body {
                rb = rb.body(body.clone());
            }
            let mut resp = match rb.send().await {
                Ok(r) => r,
                Err(e) => {
                    inner
                        .config
                        .counters
                        .record(&inner.registry, req.endpoint, None);
                    tracing::debug!(
                        method = %method, path = current.path(), endpoint = req.endpoint.as_str(),
                        attempt, error = %chain(&e), "registry request failed"
                    );
                    return Err(self.map_error(&e));
                }
            };
            let status = resp.status();
            inner
                .config
                .counters
                .record(&inner.registry, req.endpoint, Some(status.as_u16()));
            tracing::debug!(
                method = %method, path = current.path(), status = status.as_u16(),
                endpoint = req.endpoint.as_str(), attempt, "registry request"
            );
            if status.is_redirection()
                && let Some(next) = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| current.join(l).ok())
            {
                match egress::redirect(req.endpoint, &method, base, &current, &next) {
                    Redirect::Follow { credentials: c } => {
                        if hops.len() > egress::MAX_REDIRECTS {
                            return Err(RegistryError::Redirect {
                                url: display_url(&current),
                                reason: format!("more than {} redirects", egress::MAX_REDIRECTS),
                            });
                        }
                        if hops.contains(&next) {
                            return Err(RegistryError::Redirect {
                                url: display_url(&current),
                                reason: "redirect loop".into(),
                            });
                        }
                        credentials = c;
                        if status == StatusCode::SEE_OTHER && method != Method::HEAD {
                            method = Method::GET;
                            with_body = false;
                        }
                        hops.push(next.clone());
                        current = next;
                        continue;
                    }
                    Redirect::Refuse(reason) => {
                        return Err(RegistryError::Redirect {
                            url: display_url(&next),
                            reason: reason.to_string(),
                        });
                    }
                    Redirect::Return => {}
                }
            }
            let mut headers = resp.headers().clone();
            normalise_content_type(&mut headers);
            let body = if req.read_body && method != Method::HEAD {
                read_limited(&mut resp, inner.config.max_body_bytes)
                    .await
                    .map_err(|e| match e {
                        BodyError::TooLarge => RegistryError::BodyTooLarge {
                            url: display_url(&current),
                            limit: inner.config.max_body_bytes,
                        },
                        BodyError::Transport(e) => self.map_error(&e),
                    })?
            } else {
                Bytes::new()
            };
            return Ok(RegistryResponse {
                status,
                headers,
                body,
                url: current,
            });
        }
    }

    pub(super) fn map_error(&self, e: &reqwest::Error) -> RegistryError {
        let registry = self.inner.registry.clone();
        if e.is_timeout() {
            let t = if e.is_connect() {
                self.inner.config.connect_timeout
            } else {
                self.inner.config.timeout
            };
            return RegistryError::Timeout {
                registry,
                seconds: t.as_secs_f64().ceil() as u64,
            };
        }
        if let Some(tls) = find_tls_error(e) {
            return RegistryError::Tls {
                registry,
                reason: tls.to_string(),
            };
        }
        RegistryError::Connect {
            registry,
            reason: chain(e),
        }
    }
}

pub(super) enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads at most `limit` bytes; fails as soon as the limit is exceeded
/// (or up front when Content-Length says so).
pub(super) async fn read_limited(
    resp: &mut reqwest::Response,
    limit: usize,
) -> Result<Bytes, BodyError> {
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut buf = BytesMut::with_capacity(declared.map_or(8 * 1024, |n| n as usize).min(limit));
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        if buf.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// The source chain of an error without the top level (reqwest's top level
/// names the URL); consecutive duplicates removed.
pub(super) fn chain(e: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = std::error::Error::source(e);
    while let Some(s) = cur {
        let text = s.to_string();
        if parts.last() != Some(&text) && !text.is_empty() {
            parts.push(text);
        }
        cur = s.source();
    }
    if parts.is_empty() {
        let kind = if e.is_connect() {
            "connection failed"
        } else if e.is_body() || e.is_decode() {
            "error reading response body"
        } else if e.is_request() {
            "error sending request"
        } else {
            "request failed"
        };
        return kind.to_string();
    }
    parts.join(": ")
}

/// A rustls error anywhere in the chain (also wrapped in `io::Error`, whose
/// `source()` skips the wrapped error itself).
pub(super) fn find_tls_error<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a rustls::Error> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    // Bounded walk (error chains are short; guard against cycles anyway).
    for _ in 0..32 {
        let err = cur?;
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return Some(t);
        }
        cur = match err.downcast_ref::<std::io::Error>() {
            // io::Error::source() skips the wrapped error itself; descend into it.
            Some(io) => match io.get_ref() {
                Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
                None => None,
            },
            None => err.source(),
        };
    }
    None
}
