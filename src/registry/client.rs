//! The registry HTTP client: one connection pool per registry, auth (Basic and
//! the Docker token flow), rate limiting, retries with backoff, bounded bodies
//! and request counters.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use governor::{DefaultDirectRateLimiter, Quota};
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use parking_lot::Mutex;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use url::Url;

use super::auth::{self, Challenge, Credentials, TokenCache, TokenKey, WwwAuthenticate};
use super::backoff_delay::{BackoffJitter, backoff_delay};
use super::egress::{self, Redirect};
use super::error::RegistryError;
use super::metrics::{Endpoint, RequestCounters};
use super::tls;

/// `client_id` sent to token endpoints.
const CLIENT_ID: &str = "refwarden";
/// Response headers accepted per answer (hyper also bounds the header block to ~400 KiB).
const MAX_RESPONSE_HEADERS: usize = 100;

/// Token-bucket rate limit per registry client.
#[derive(Clone, Debug)]
pub struct RateLimit {
    pub requests_per_second: u32,
    /// Bucket size; 0 means "same as requests_per_second".
    pub burst: u32,
}

/// Retries of 429/502/503/504 and transport errors.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter: uniform in `[0, min(max, base·2^retry)]`.
    fn backoff(&self, retry: u32) -> Duration {
        backoff_delay(
            self.base_delay,
            retry,
            self.max_delay,
            BackoffJitter::Full,
            rand::random::<f64>(),
        )
    }
}

/// A token scope: `repository:<repo>:<actions>`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Scope {
    pub repository: String,
    pub actions: Vec<String>,
}

impl Scope {
    /// A scope with arbitrary actions (e.g. `&["delete"]`).
    pub fn new(repository: impl Into<String>, actions: &[&str]) -> Self {
        Scope {
            repository: repository.into(),
            actions: actions.iter().map(|a| a.to_string()).collect(),
        }
    }

    pub fn pull(repository: impl Into<String>) -> Self {
        Scope {
            repository: repository.into(),
            actions: vec!["pull".into()],
        }
    }

    pub fn push_pull(repository: impl Into<String>) -> Self {
        Scope {
            repository: repository.into(),
            actions: vec!["pull".into(), "push".into()],
        }
    }

    /// `repository:<repo>:pull,push`
    pub fn to_scope_string(&self) -> String {
        format!("repository:{}:{}", self.repository, self.actions.join(","))
    }
}

/// Configuration of one [`RegistryClient`].
#[derive(Clone, Debug)]
pub struct RegistryClientConfig {
    /// `scheme://host[:port]` only.
    pub registry_url: Url,
    pub credentials: Credentials,
    pub ca_bundle_pem: Option<Vec<u8>>,
    pub insecure_skip_tls_verify: bool,
    /// Whole request including reading the body.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub rate_limit: Option<RateLimit>,
    pub retry: RetryPolicy,
    /// Bodies (manifests, indexes, token responses) are never buffered beyond this.
    pub max_body_bytes: usize,
    pub counters: Arc<RequestCounters>,
    pub user_agent: String,
    /// Fixed DNS answers by host name (like `curl --resolve`); the metadata-address guard
    /// applies to them too.
    pub resolve: std::collections::BTreeMap<String, Vec<std::net::IpAddr>>,
    /// A cluster admin named this registry (a RegistryProfile, the CLI): it may itself live on a
    /// link-local address. `false` for registries named by pod images (implicit profiles): the
    /// registry itself may not be a link-local or cloud metadata address either.
    pub named_by_admin: bool,
}

impl RegistryClientConfig {
    /// Validates the URL and fills defaults. `http://` requires `plain_http`,
    /// `plain_http` requires `http://`.
    pub fn new(registry_url: &str, plain_http: bool) -> Result<Self, RegistryError> {
        let url = validate_registry_url(registry_url)?;
        match (url.scheme(), plain_http) {
            ("https", false) | ("http", true) => {}
            ("http", false) => {
                return Err(RegistryError::config(
                    "registryUrl",
                    "http:// requires plainHttp: true",
                ));
            }
            _ => {
                return Err(RegistryError::config(
                    "plainHttp",
                    "plainHttp: true requires an http:// registryUrl",
                ));
            }
        }
        Ok(RegistryClientConfig {
            registry_url: url,
            credentials: Credentials::Anonymous,
            ca_bundle_pem: None,
            insecure_skip_tls_verify: false,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            rate_limit: None,
            retry: RetryPolicy::default(),
            max_body_bytes: 4 * 1024 * 1024,
            counters: Arc::new(RequestCounters::default()),
            user_agent: format!("refwarden/{}", env!("CARGO_PKG_VERSION")),
            resolve: Default::default(),
            named_by_admin: true,
        })
    }
}

/// Checks `scheme://host[:port]`; error reasons never echo the input (it may
/// carry a password).
fn validate_registry_url(raw: &str) -> Result<Url, RegistryError> {
    let field = "registryUrl";
    let trimmed = raw.trim();
    let lower = trimmed.to_ascii_lowercase();
    if !lower.starts_with("https://") && !lower.starts_with("http://") {
        return Err(RegistryError::config(
            field,
            "must start with https:// (or http:// with plainHttp: true)",
        ));
    }
    let url = Url::parse(trimmed)
        .map_err(|e| RegistryError::config(field, format!("not a valid URL: {e}")))?;
    check_base_url(&url)?;
    Ok(url)
}

fn check_base_url(url: &Url) -> Result<(), RegistryError> {
    let field = "registryUrl";
    if !matches!(url.scheme(), "https" | "http") {
        return Err(RegistryError::config(field, "scheme must be https or http"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(RegistryError::config(
            field,
            "must not contain credentials (use a pull secret)",
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(RegistryError::config(field, "missing host"));
    }
    if !matches!(url.path(), "" | "/") {
        return Err(RegistryError::config(
            field,
            "must not contain a path (only scheme://host[:port])",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(RegistryError::config(
            field,
            "must not contain a query or fragment",
        ));
    }
    Ok(())
}

/// One request to the registry.
#[derive(Clone, Debug)]
pub struct RegistryRequest {
    pub method: Method,
    /// Starts with `/v2/`, or an absolute URL on the same registry (Location/Link follow-ups).
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    pub scope: Option<Scope>,
    /// More scopes the token must cover (e.g. `pull` on the source of a cross-repository mount).
    pub extra_scopes: Vec<Scope>,
    pub endpoint: Endpoint,
    /// Read (and bound) the response body. `false` for HEAD.
    pub read_body: bool,
}

impl RegistryRequest {
    pub fn new(method: Method, path: impl Into<String>, endpoint: Endpoint) -> Self {
        let read_body = method != Method::HEAD;
        RegistryRequest {
            method,
            path: path.into(),
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: None,
            scope: None,
            extra_scopes: Vec::new(),
            endpoint,
            read_body,
        }
    }
    pub fn get(path: impl Into<String>, endpoint: Endpoint) -> Self {
        Self::new(Method::GET, path, endpoint)
    }
    pub fn head(path: impl Into<String>, endpoint: Endpoint) -> Self {
        Self::new(Method::HEAD, path, endpoint)
    }
    pub fn put(path: impl Into<String>, endpoint: Endpoint) -> Self {
        Self::new(Method::PUT, path, endpoint)
    }
    pub fn post(path: impl Into<String>, endpoint: Endpoint) -> Self {
        Self::new(Method::POST, path, endpoint)
    }
    pub fn delete(path: impl Into<String>, endpoint: Endpoint) -> Self {
        Self::new(Method::DELETE, path, endpoint)
    }
    pub fn options(path: impl Into<String>, endpoint: Endpoint) -> Self {
        Self::new(Method::OPTIONS, path, endpoint)
    }

    /// Sets `Accept`.
    pub fn accept(self, v: &str) -> Self {
        self.header(ACCEPT.as_str(), v)
    }

    /// Sets a header. An invalid name or value is dropped with a warning
    /// (names/values here come from code or from registry responses).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                self.headers.insert(n, v);
            }
            _ => tracing::warn!(header = name, "dropping invalid request header"),
        }
        self
    }

    /// Appends a query parameter (URL-encoded when sent; `+` becomes `%2B`).
    pub fn query(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.query.push((k.into(), v.into()));
        self
    }

    /// Sets the body and its `Content-Type`.
    pub fn body(self, content_type: &str, bytes: impl Into<Bytes>) -> Self {
        let mut s = self.header(CONTENT_TYPE.as_str(), content_type);
        s.body = Some(bytes.into());
        s
    }

    /// Token scope this request needs. Called again, adds a scope (the token must cover all).
    pub fn scope(mut self, s: Scope) -> Self {
        if self.scope.is_none() {
            self.scope = Some(s);
        } else {
            self.extra_scopes.push(s);
        }
        self
    }
}

/// A complete registry answer (body already read and bounded).
#[derive(Clone, Debug)]
pub struct RegistryResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Final URL after redirects.
    pub url: Url,
}

impl RegistryResponse {
    /// A header as text (`None` if absent or not visible ASCII).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Media type without parameters, lowercased and trimmed.
    pub fn content_type(&self) -> Option<&str> {
        let ct = self.header(CONTENT_TYPE.as_str())?;
        let mt = ct.split(';').next().unwrap_or_default().trim();
        if mt.is_empty() {
            return None;
        }
        // Media types are ASCII; lowercase without allocating when already lowercase.
        if mt.bytes().any(|b| b.is_ascii_uppercase()) {
            // Responses from `RegistryClient::send` are already normalised; this
            // only happens for hand-built responses.
            return Some(lowercase_cached(mt));
        }
        Some(mt)
    }

    /// Distribution error codes from `{"errors":[{"code":...}]}`; empty otherwise.
    pub fn error_codes(&self) -> Vec<String> {
        #[derive(serde::Deserialize)]
        struct Errors {
            errors: Vec<ErrorEntry>,
        }
        #[derive(serde::Deserialize)]
        struct ErrorEntry {
            code: Option<String>,
        }
        serde_json::from_slice::<Errors>(&self.body)
            .map(|e| e.errors.into_iter().filter_map(|e| e.code).collect())
            .unwrap_or_default()
    }

    /// Deserialises the body; `InvalidResponse` naming the URL on failure.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, RegistryError> {
        serde_json::from_slice(&self.body).map_err(|e| RegistryError::InvalidResponse {
            url: display_url(&self.url),
            reason: format!("body is not the expected JSON: {e}"),
        })
    }
}

/// Interns lowercased media types so `content_type` can return `&str`
/// (the set of distinct media types a process sees is small).
fn lowercase_cached(mt: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::OnceLock;
    static CACHE: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let lower = mt.to_ascii_lowercase();
    let mut set = CACHE.get_or_init(Default::default).lock();
    if let Some(s) = set.get(lower.as_str()) {
        return s;
    }
    if set.len() >= 1024 {
        // Bounded: never grow without limit.
        return "application/unknown";
    }
    let leaked: &'static str = Box::leak(lower.into_boxed_str());
    set.insert(leaked);
    leaked
}

/// URL for messages: never with userinfo.
fn display_url(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// What kind of Authorization an attempt carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AuthKind {
    None,
    Basic,
    Bearer,
}

#[derive(Clone)]
struct AuthHeader {
    kind: AuthKind,
    value: SecretString,
}

impl fmt::Debug for AuthHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthHeader({:?}, <redacted>)", self.kind)
    }
}

struct Inner {
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
    inner: Arc<Inner>,
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
            inner: Arc::new(Inner {
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

    fn preemptive_auth(&self, scope: Option<&str>) -> Option<AuthHeader> {
        let challenge = self.inner.challenge.lock().clone();
        match challenge? {
            Challenge::Bearer { realm, service, .. } => {
                let key: TokenKey = (
                    realm,
                    service.unwrap_or_default(),
                    scope.unwrap_or_default().to_string(),
                );
                self.inner.tokens.get(&key).map(bearer_header)
            }
            Challenge::Basic { .. } => {
                self.inner
                    .config
                    .credentials
                    .basic_header()
                    .map(|value| AuthHeader {
                        kind: AuthKind::Basic,
                        value,
                    })
            }
            Challenge::Other(_) => None,
        }
    }

    /// Handles a 401: remembers the challenge and returns the Authorization to
    /// retry with, or `None` when a retry cannot help.
    async fn answer_challenge(
        &self,
        resp: &RegistryResponse,
        scope: Option<&str>,
        sent: AuthKind,
    ) -> Result<Option<AuthHeader>, RegistryError> {
        let mut challenges = Vec::new();
        for value in resp.headers.get_all(WWW_AUTHENTICATE) {
            if value.len() > egress::MAX_PARSED_HEADER {
                tracing::debug!(registry = %self.inner.registry, bytes = value.len(), "ignoring an oversized WWW-Authenticate");
                continue;
            }
            match value
                .to_str()
                .map_err(|_| "not ASCII".to_string())
                .and_then(WwwAuthenticate::parse)
            {
                Ok(c) => challenges.extend(c),
                Err(e) => {
                    tracing::debug!(registry = %self.inner.registry, error = %e, "ignoring malformed WWW-Authenticate")
                }
            }
        }
        let Some(challenge) = auth::preferred(&challenges) else {
            return Ok(None);
        };
        *self.inner.challenge.lock() = Some(challenge.clone());
        match challenge {
            Challenge::Bearer {
                realm,
                service,
                scope: challenge_scope,
            } => {
                let service = service.unwrap_or_default();
                let request_key: TokenKey = (
                    realm.clone(),
                    service.clone(),
                    scope.unwrap_or_default().to_string(),
                );
                if sent == AuthKind::Bearer {
                    // The cached token was rejected (expired/revoked/insufficient).
                    self.inner.tokens.remove(&request_key);
                }
                let scopes = auth::join_scopes(challenge_scope.as_deref().into_iter().chain(scope));
                let issued = self.fetch_token(&realm, &service, &scopes).await?;
                let full_key: TokenKey = (realm, service, scopes.join(" "));
                self.inner
                    .tokens
                    .insert(full_key, issued.token.clone(), issued.lifetime);
                self.inner
                    .tokens
                    .insert(request_key, issued.token.clone(), issued.lifetime);
                Ok(Some(bearer_header(issued.token)))
            }
            Challenge::Basic { .. } => {
                if sent == AuthKind::Basic {
                    return Ok(None);
                }
                Ok(self
                    .inner
                    .config
                    .credentials
                    .basic_header()
                    .map(|value| AuthHeader {
                        kind: AuthKind::Basic,
                        value,
                    }))
            }
            Challenge::Other(_) => Ok(None),
        }
    }

    async fn fetch_token(
        &self,
        realm: &str,
        service: &str,
        scopes: &[String],
    ) -> Result<auth::IssuedToken, RegistryError> {
        let auth_err = |reason: String| RegistryError::Auth {
            registry: self.inner.registry.clone(),
            reason,
        };
        let mut url =
            Url::parse(realm).map_err(|_| auth_err("token realm is not a valid URL".into()))?;
        egress::token_realm(&self.inner.config.registry_url, &url)
            .map_err(|reason| auth_err(reason.to_string()))?;
        let creds = &self.inner.config.credentials;
        let request = match creds {
            Credentials::IdentityToken(refresh) => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token");
                form.append_pair("refresh_token", refresh.expose_secret());
                form.append_pair("client_id", CLIENT_ID);
                if !service.is_empty() {
                    form.append_pair("service", service);
                }
                if !scopes.is_empty() {
                    form.append_pair("scope", &scopes.join(" "));
                }
                self.inner
                    .http
                    .post(url.clone())
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(form.finish())
            }
            Credentials::Basic { .. } | Credentials::Anonymous => {
                {
                    let mut pairs = url.query_pairs_mut();
                    if !service.is_empty() {
                        pairs.append_pair("service", service);
                    }
                    for s in scopes {
                        pairs.append_pair("scope", s);
                    }
                }
                let mut rb = self.inner.http.get(url.clone());
                if let Some(h) = creds.basic_header() {
                    let mut v = HeaderValue::from_str(h.expose_secret()).map_err(|_| {
                        auth_err("credentials contain characters not allowed in a header".into())
                    })?;
                    v.set_sensitive(true);
                    rb = rb.header(AUTHORIZATION, v);
                }
                rb
            }
        };
        if let Some(l) = &self.inner.limiter {
            l.until_ready().await;
        }
        let counters = &self.inner.config.counters;
        let mut resp = match request.header(ACCEPT, "application/json").send().await {
            Ok(r) => r,
            Err(e) => {
                counters.record(&self.inner.registry, Endpoint::Token, None);
                let what = if e.is_timeout() {
                    "timed out"
                } else {
                    "unreachable"
                };
                return Err(auth_err(format!("token endpoint {what}: {}", chain(&e))));
            }
        };
        let status = resp.status();
        counters.record(&self.inner.registry, Endpoint::Token, Some(status.as_u16()));
        tracing::debug!(registry = %self.inner.registry, status = status.as_u16(), endpoint = "token", "token request");
        if !status.is_success() {
            return Err(auth_err(format!(
                "token endpoint answered HTTP {}",
                status.as_u16()
            )));
        }
        let limit = egress::MAX_TOKEN_RESPONSE.min(self.inner.config.max_body_bytes);
        let body = read_limited(&mut resp, limit).await.map_err(|e| match e {
            BodyError::TooLarge => auth_err(format!("token response exceeds {limit} bytes")),
            BodyError::Transport(e) => {
                auth_err(format!("reading token response failed: {}", chain(&e)))
            }
        })?;
        let issued = auth::parse_token_response(&body).map_err(auth_err)?;
        if issued.token.expose_secret().len() > egress::MAX_TOKEN_LEN {
            return Err(auth_err(format!(
                "the token endpoint issued a token longer than {} bytes: refused",
                egress::MAX_TOKEN_LEN
            )));
        }
        Ok(issued)
    }

    /// One HTTP exchange, redirects included (each hop counted), following only what
    /// [`egress::redirect`] allows: credentials go to the registry's origin only.
    async fn attempt(
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

    fn map_error(&self, e: &reqwest::Error) -> RegistryError {
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

fn bearer_header(token: SecretString) -> AuthHeader {
    AuthHeader {
        kind: AuthKind::Bearer,
        value: SecretString::from(format!("Bearer {}", token.expose_secret())),
    }
}

/// Lowercases the media type part of `Content-Type` (parameters untouched) so
/// `RegistryResponse::content_type` can borrow it.
fn normalise_content_type(headers: &mut HeaderMap) {
    let Some(v) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return;
    };
    let (mt, rest) = v.split_once(';').map_or((v, ""), |(m, r)| (m, r));
    if !mt.bytes().any(|b| b.is_ascii_uppercase()) {
        return;
    }
    let new = if rest.is_empty() {
        mt.to_ascii_lowercase()
    } else {
        format!("{};{rest}", mt.to_ascii_lowercase())
    };
    if let Ok(v) = HeaderValue::from_str(&new) {
        headers.insert(CONTENT_TYPE, v);
    }
}

fn is_retryable_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 429 | 502 | 503 | 504)
}

/// `Retry-After` as delta-seconds or HTTP-date (a past date means "now").
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(v)
        .ok()?;
    let now = jiff::Timestamp::now();
    if when <= now {
        return Some(Duration::ZERO);
    }
    Duration::try_from(when.duration_since(now)).ok()
}

enum BodyError {
    TooLarge,
    Transport(reqwest::Error),
}

/// Reads at most `limit` bytes; fails as soon as the limit is exceeded
/// (or up front when Content-Length says so).
async fn read_limited(resp: &mut reqwest::Response, limit: usize) -> Result<Bytes, BodyError> {
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
fn chain(e: &reqwest::Error) -> String {
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
fn find_tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
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

#[cfg(test)]
mod tests;
