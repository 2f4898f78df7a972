//! The registry HTTP client: [`RegistryClient::send`] runs one request with auth, retries with
//! backoff and a rate limit; its parts are the configuration (`config`), the request and
//! answer types (`request`, `response`), the auth flow (`auth_flow`), one HTTP exchange with
//! redirects and bounded bodies (`exchange`) and the retry decisions (`retry`).

mod auth_flow;
mod config;
mod exchange;
mod request;
mod response;
mod retry;

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota};
use http::StatusCode;
use parking_lot::Mutex;
use url::Url;

use super::auth::{Challenge, TokenCache};
use super::egress;
use super::error::RegistryError;
use super::metrics::RequestCounters;
use super::tls;

pub use config::{RateLimit, RegistryClientConfig};
pub use request::{RegistryRequest, Scope};
pub use response::RegistryResponse;
pub use retry::RetryPolicy;

use auth_flow::{AuthHeader, AuthKind};
use config::check_base_url;
use exchange::chain;
use retry::{is_retryable_status, retry_after};

/// Response headers accepted per answer (hyper also bounds the header block to ~400 KiB).
const MAX_RESPONSE_HEADERS: usize = 100;

struct ClientState {
    http: reqwest::Client,
    config: RegistryClientConfig,
    registry: String,
    limiter: Option<DefaultDirectRateLimiter>,
    challenge: Mutex<Option<Challenge>>,
    tokens: TokenCache,
}

/// A client for one registry (cheap to clone; clones share pool, tokens, limiter).
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<ClientState>,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("registry", &self.inner.registry)
            .field("base_url", &self.inner.config.registry_url.as_str())
            .field("credentials", &self.inner.config.credentials)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// Builds the client (TLS config, connection pool, rate limiter).
    pub fn new(config: RegistryClientConfig) -> Result<Self, RegistryError> {
        check_base_url(&config.registry_url)?;
        if config.max_body_bytes == 0 {
            return Err(RegistryError::config("maxBodyBytes", "must be > 0"));
        }
        if config.timeout.is_zero() {
            return Err(RegistryError::config("timeout", "must be > 0"));
        }
        if config.connect_timeout.is_zero() {
            return Err(RegistryError::config("connectTimeout", "must be > 0"));
        }
        let host = config.registry_url.host_str().unwrap_or_default();
        let port = config.registry_url.port_or_known_default().unwrap_or(443);
        let registry = format!("{host}:{port}");
        if !config.named_by_admin && egress::is_metadata_url(&config.registry_url) {
            return Err(RegistryError::config(
                "registryUrl",
                "a registry on a link-local or cloud metadata address is refused for images without a RegistryProfile",
            ));
        }

        let limiter = match &config.rate_limit {
            None => None,
            Some(rl) => {
                let rps = NonZeroU32::new(rl.requests_per_second).ok_or_else(|| {
                    RegistryError::config("rateLimit.requestsPerSecond", "must be > 0")
                })?;
                let burst = NonZeroU32::new(rl.burst).unwrap_or(rps);
                Some(DefaultDirectRateLimiter::direct(
                    Quota::per_second(rps).allow_burst(burst),
                ))
            }
        };

        let tls = tls::client_config(
            config.ca_bundle_pem.as_deref(),
            config.insecure_skip_tls_verify,
            &registry,
        )?;
        // Redirects are followed by `attempt`, hop by hop, under `egress::redirect`; names that
        // resolve to metadata addresses are refused by the resolver.
        let resolver = super::resolver::GuardedResolver::new(
            host.trim_start_matches('[').trim_end_matches(']'),
            config.named_by_admin,
            &config.resolve,
        );
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(resolver))
            .http1_max_headers(MAX_RESPONSE_HEADERS)
            .user_agent(config.user_agent.clone())
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| {
                RegistryError::config("tls", format!("cannot build HTTP client: {}", chain(&e)))
            })?;
        Ok(RegistryClient {
            inner: Arc::new(ClientState {
                http,
                config,
                registry,
                limiter,
                challenge: Mutex::new(None),
                tokens: TokenCache::default(),
            }),
        })
    }

    /// `host:port` label used in counters and errors.
    pub fn registry(&self) -> &str {
        &self.inner.registry
    }

    pub fn base_url(&self) -> &Url {
        &self.inner.config.registry_url
    }

    pub fn counters(&self) -> Arc<RequestCounters> {
        self.inner.config.counters.clone()
    }

    /// Sends a request with auth, retries and a bounded body.
    ///
    /// Any HTTP status is `Ok` (including a final 401/404/429/5xx); `Err` means
    /// no usable answer (transport, TLS, timeout, token endpoint, body limit, …).
    pub async fn send(&self, req: RegistryRequest) -> Result<RegistryResponse, RegistryError> {
        let url = self.build_url(&req)?;
        let scope = req.scope.as_ref().map(|first| {
            std::iter::once(first)
                .chain(req.extra_scopes.iter())
                .map(Scope::to_scope_string)
                .collect::<Vec<_>>()
                .join(" ")
        });
        let retry = &self.inner.config.retry;
        let mut auth_retried = false;
        let mut forced_auth: Option<AuthHeader> = None;
        let mut retries: u32 = 0;
        let mut timeouts: u32 = 0;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let auth = forced_auth
                .clone()
                .or_else(|| self.preemptive_auth(scope.as_deref()));
            let sent = auth.as_ref().map_or(AuthKind::None, |a| a.kind);
            match self.attempt(&req, &url, auth.as_ref(), attempt).await {
                Err(e) => {
                    let retryable = match &e {
                        RegistryError::Connect { .. } => true,
                        RegistryError::Timeout { .. } => {
                            timeouts += 1;
                            timeouts <= 1
                        }
                        _ => false,
                    };
                    if retryable && retries < retry.max_retries {
                        let delay = retry.backoff(retries);
                        tracing::debug!(error = %e, ?delay, attempt, "retrying after transport error");
                        tokio::time::sleep(delay).await;
                        retries += 1;
                        continue;
                    }
                    return Err(e);
                }
                Ok(resp) => {
                    // A challenge is answered only when it came from the registry itself, not
                    // from a host a redirect led to (that host would get the credentials).
                    if resp.status == StatusCode::UNAUTHORIZED
                        && !auth_retried
                        && egress::same_origin(&resp.url, &self.inner.config.registry_url)
                    {
                        auth_retried = true;
                        if let Some(h) =
                            self.answer_challenge(&resp, scope.as_deref(), sent).await?
                        {
                            forced_auth = Some(h);
                            continue;
                        }
                        return Ok(resp);
                    }
                    if is_retryable_status(resp.status) && retries < retry.max_retries {
                        let delay = match retry_after(&resp.headers) {
                            Some(d) if d > retry.max_delay => {
                                tracing::debug!(
                                    status = resp.status.as_u16(),
                                    ?d,
                                    "Retry-After exceeds maxDelay; not retrying"
                                );
                                return Ok(resp);
                            }
                            Some(d) => d,
                            None => retry.backoff(retries),
                        };
                        tracing::debug!(status = resp.status.as_u16(), ?delay, attempt, "retrying");
                        tokio::time::sleep(delay).await;
                        retries += 1;
                        continue;
                    }
                    return Ok(resp);
                }
            }
        }
    }

    fn build_url(&self, req: &RegistryRequest) -> Result<Url, RegistryError> {
        let base = &self.inner.config.registry_url;
        let lower = req.path.get(..8).unwrap_or(&req.path).to_ascii_lowercase();
        let mut url = if lower.starts_with("https://") || lower.starts_with("http://") {
            let u = Url::parse(&req.path)
                .map_err(|e| RegistryError::config("path", format!("not a valid URL: {e}")))?;
            // `Link` next pages and upload `Location`s: the registry's own origin only.
            egress::follow_up(base, &u).map_err(|reason| {
                RegistryError::config(
                    "path",
                    format!("{reason} (registry {})", self.inner.registry),
                )
            })?;
            u
        } else {
            if !req.path.starts_with("/v2/") {
                return Err(RegistryError::config(
                    "path",
                    format!("must start with /v2/ (got {:?})", req.path),
                ));
            }
            base.join(&req.path)
                .map_err(|e| RegistryError::config("path", format!("not a valid path: {e}")))?
        };
        if !url.path().starts_with("/v2/") {
            return Err(RegistryError::config(
                "path",
                "resolved path does not start with /v2/",
            ));
        }
        url.set_fragment(None);
        if !req.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &req.query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests;
