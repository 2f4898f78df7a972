//! Registry client: image references, auth (Basic / Docker token flow),
//! dockerconfigjson, TLS, retries, bounded bodies, request counters.

pub mod auth;
pub mod backoff_delay;
pub mod client;
pub mod credential_helper;
pub mod directory;
pub mod docker_config;
pub mod egress;
pub mod error;
pub mod metrics;
pub mod profile_clients;
pub mod profile_config;
pub mod reference;
pub mod resolve;
pub mod resolver;
pub mod tls;

pub use auth::{Challenge, Credentials, WwwAuthenticate};
pub use backoff_delay::{BackoffJitter, backoff_delay};
pub use client::{
    RateLimit, RegistryClient, RegistryClientConfig, RegistryRequest, RegistryResponse,
    RetryPolicy, Scope,
};
pub use directory::{ImplicitAccess, PlainHttp, RegistryDirectory, RegistryEntry};
pub use docker_config::{DockerConfig, DockerConfigError};
pub use error::RegistryError;
pub use metrics::{Endpoint, RequestCounters};
pub use profile_clients::RegistryProfileClients;
pub use profile_config::BrokenProfile;
pub use reference::{ImageReference, ReferenceError};
pub use resolve::{ResolveError, resolve_digest};
pub use tls::ensure_crypto_provider;
