//! What one [`RegistryClient`] is built from: the registry URL (checked), credentials, TLS,
//! timeouts, rate limit, retry policy and body bound.

use std::sync::Arc;
use std::time::Duration;

use url::Url;

use super::RetryPolicy;
use crate::registry::auth::Credentials;
use crate::registry::error::RegistryError;
use crate::registry::metrics::RequestCounters;

/// Token-bucket rate limit per registry client.
#[derive(Clone, Debug)]
pub struct RateLimit {
    pub requests_per_second: u32,
    /// Bucket size; 0 means "same as requests_per_second".
    pub burst: u32,
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
pub(super) fn validate_registry_url(raw: &str) -> Result<Url, RegistryError> {
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

pub(super) fn check_base_url(url: &Url) -> Result<(), RegistryError> {
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
