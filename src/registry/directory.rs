//! Which client reads each registry host's images: the RegistryProfile for the host, or an
//! implicit client (no profile) built from [`ImplicitAccess`] and the pull credentials known
//! for that host.

use super::reference::{api_host, canonical_registry};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::crd::{DiscoveryMode, EffectiveDiscoveryMode};
use crate::reason::Reason;
use crate::registry::{
    BrokenProfile, Credentials, RegistryClient, RegistryClientConfig, RequestCounters,
};

/// A registry images can be discovered through.
#[derive(Clone)]
pub struct RegistryEntry {
    /// Name of the RegistryProfile, `None` for an implicit anonymous profile.
    pub profile: Option<String>,
    /// The client (credentials, TLS, rate limit of the profile).
    pub client: RegistryClient,
    /// Requested discovery mode.
    pub mode: DiscoveryMode,
    /// Effective mode from the profile's last probe.
    pub hint: Option<EffectiveDiscoveryMode>,
}

impl std::fmt::Debug for RegistryEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryEntry")
            .field("profile", &self.profile)
            .field("registry", &self.client.registry())
            .field("mode", &self.mode)
            .field("hint", &self.hint)
            .finish()
    }
}

/// A profile's registry ([`canonical_registry`] of its host) and its entry (or why it cannot
/// be used).
type ProfileSlot = (String, Result<Arc<RegistryEntry>, BrokenProfile>);

/// Which registries without a RegistryProfile are reached over plain HTTP. Never implied
/// by the address (no loopback exception): only what the user asked for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum PlainHttp {
    /// Always HTTPS.
    #[default]
    Never,
    /// These hosts (`host[:port]` as in image references, e.g. `127.0.0.1:5000`).
    Hosts(BTreeSet<String>),
    /// Every registry without a profile (`refwarden evaluate --plain-http`).
    All,
}

impl PlainHttp {
    /// Whether `host` is reached over plain HTTP.
    pub fn covers(&self, host: &str) -> bool {
        match self {
            PlainHttp::Never => false,
            PlainHttp::All => true,
            PlainHttp::Hosts(hosts) => hosts.iter().any(|h| same_registry(h, host)),
        }
    }
}

/// How a registry without a RegistryProfile is reached: the CLI's connection flags, the
/// controller's `--insecure-registry`. Credentials come per host from
/// [`RegistryDirectory::set_pull_credentials`].
#[derive(Clone, Debug, Default)]
pub struct ImplicitAccess {
    /// Plain HTTP instead of HTTPS.
    pub plain_http: PlainHttp,
    /// Extra CA certificates (PEM) to trust.
    pub ca_bundle_pem: Option<Vec<u8>>,
    /// Skip TLS certificate verification (`--insecure-skip-tls-verify`).
    pub insecure_skip_tls_verify: bool,
    /// Timeout of one request (the client's default when `None`).
    pub timeout: Option<Duration>,
    /// Where implicit clients count their requests (the controller's metrics).
    pub counters: Option<Arc<RequestCounters>>,
}

/// Where each registry host's images are discovered.
#[derive(Default)]
pub struct RegistryDirectory {
    by_name: BTreeMap<String, ProfileSlot>,
    anonymous: Mutex<HashMap<String, Arc<RegistryEntry>>>,
    /// Credentials from pods' imagePullSecrets, by API host, for registries without a profile.
    pull_credentials: Mutex<HashMap<String, (String, Credentials)>>,
    implicit: ImplicitAccess,
}

/// Whether two hosts name one registry (`docker.io` and `registry-1.docker.io`; `:443`).
pub fn same_registry(a: &str, b: &str) -> bool {
    canonical_registry(a) == canonical_registry(b)
}

impl RegistryDirectory {
    /// An empty directory: every image goes through an implicit anonymous profile.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty directory whose implicit clients are built from `implicit`.
    pub fn with_implicit(implicit: ImplicitAccess) -> Self {
        Self {
            implicit,
            ..Self::default()
        }
    }

    /// How implicit clients are built.
    pub fn implicit(&self) -> &ImplicitAccess {
        &self.implicit
    }

    /// Adds a RegistryProfile under `name` for `host` (`host[:port]` of its registryUrl).
    pub fn insert(&mut self, name: &str, host: &str, entry: Result<RegistryEntry, BrokenProfile>) {
        self.by_name.insert(
            name.to_string(),
            (canonical_registry(host), entry.map(Arc::new)),
        );
    }

    /// Registers credentials (from a pod's imagePullSecret `source`, e.g. `ns/name`) for a
    /// registry host that has no RegistryProfile; the first source registered for a host
    /// is kept. They only read referrers (never reach a pod or a status).
    pub fn set_pull_credentials(&self, registry: &str, source: &str, credentials: Credentials) {
        let host = api_host(registry);
        let mut creds = self.pull_credentials.lock();
        // The first Secret that names a host is used for it: several namespaces with
        // different Secrets for one host would otherwise rebuild the client (and lose its
        // token cache) on every evaluation.
        if creds.contains_key(&host) {
            return;
        }
        creds.insert(host.clone(), (source.to_string(), credentials));
        drop(creds);
        self.anonymous.lock().remove(&host);
    }

    /// Names of the profiles.
    pub fn names(&self) -> Vec<String> {
        self.by_name.keys().cloned().collect()
    }

    /// The entry for an image's registry. `allowed`: the policy's `registryProfiles` (empty: any).
    pub fn entry_for(
        &self,
        registry: &str,
        allowed: &[String],
    ) -> Result<Arc<RegistryEntry>, BrokenProfile> {
        let registry_name = canonical_registry(registry);
        let candidate = self.by_name.iter().find(|(name, (host, _))| {
            (allowed.is_empty() || allowed.contains(name)) && *host == registry_name
        });
        if let Some((_, (_, entry))) = candidate {
            return entry.clone();
        }
        if !allowed.is_empty() {
            return Err(BrokenProfile {
                reason: Reason::NoMatchingRegistryProfile,
                message: format!(
                    "none of spec.registryProfiles {allowed:?} is for registry {registry}"
                ),
            });
        }
        let host = api_host(registry);
        let mut anon = self.anonymous.lock();
        if let Some(e) = anon.get(&host) {
            return Ok(e.clone());
        }
        let pulled = self
            .pull_credentials
            .lock()
            .get(&host)
            .map(|(_, c)| c.clone());
        let plain = self.implicit.plain_http.covers(&host);
        let scheme = if plain { "http" } else { "https" };
        let client = RegistryClientConfig::new(&format!("{scheme}://{host}"), plain)
            .map(|mut c| {
                // Named by a pod image, not by an admin: never a link-local or metadata address.
                c.named_by_admin = false;
                if let Some(counters) = &self.implicit.counters {
                    c.counters = counters.clone();
                }
                c.ca_bundle_pem = self.implicit.ca_bundle_pem.clone();
                c.insecure_skip_tls_verify = self.implicit.insecure_skip_tls_verify;
                if let Some(t) = self.implicit.timeout {
                    c.timeout = t;
                }
                if let Some(creds) = pulled {
                    c.credentials = creds;
                }
                c
            })
            .and_then(RegistryClient::new)
            .map_err(|e| BrokenProfile {
                reason: Reason::InvalidRegistry,
                message: e.to_string(),
            })?;
        let entry = Arc::new(RegistryEntry {
            profile: None,
            client,
            mode: DiscoveryMode::Auto,
            hint: None,
        });
        anon.insert(host, entry.clone());
        Ok(entry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_when_asked() {
        // No loopback exception: 127.0.0.1 is HTTPS unless named.
        assert!(!PlainHttp::Never.covers("127.0.0.1:5000"));
        assert!(!PlainHttp::Never.covers("localhost:5000"));
        let hosts =
            PlainHttp::Hosts(["127.0.0.1:5000".to_string(), "docker.io".to_string()].into());
        assert!(hosts.covers("127.0.0.1:5000"));
        assert!(!hosts.covers("127.0.0.1:5001"));
        assert!(hosts.covers("registry-1.docker.io"));
        assert!(PlainHttp::All.covers("ghcr.io"));
    }

    #[test]
    fn implicit_clients_follow_the_access_settings() {
        let plain = RegistryDirectory::with_implicit(ImplicitAccess {
            plain_http: PlainHttp::Hosts(["127.0.0.1:5000".to_string()].into()),
            ..ImplicitAccess::default()
        });
        let e = plain.entry_for("127.0.0.1:5000", &[]).unwrap();
        assert_eq!(e.client.base_url().scheme(), "http");
        let e = plain.entry_for("127.0.0.1:5001", &[]).unwrap();
        assert_eq!(e.client.base_url().scheme(), "https");
        let e = RegistryDirectory::new()
            .entry_for("localhost:5000", &[])
            .unwrap();
        assert_eq!(e.client.base_url().scheme(), "https");
    }

    #[test]
    fn docker_hub_aliases_are_one_registry() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert!(same_registry("index.docker.io", "docker.io"));
        assert!(same_registry("registry-1.docker.io:443", "DOCKER.IO"));
        assert!(!same_registry("ghcr.io", "docker.io"));
    }
}
