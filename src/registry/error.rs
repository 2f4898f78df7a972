//! Errors of the registry client.
//!
//! No variant ever carries credentials, tokens, `Authorization` values or URLs
//! with userinfo: the client rejects userinfo in URLs up front and builds every
//! reason string itself.

use crate::reason::Reason;

/// A registry request that did not produce an HTTP response the caller can judge.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Connection refused, DNS failure, connection reset, …
    #[error("registry {registry} unreachable: {reason}")]
    Connect { registry: String, reason: String },
    /// The request (including reading the body) took longer than the timeout.
    #[error("registry {registry} did not answer within {seconds}s")]
    Timeout { registry: String, seconds: u64 },
    /// TLS handshake or certificate verification failed.
    #[error("TLS error talking to registry {registry}: {reason}")]
    Tls { registry: String, reason: String },
    /// The token endpoint failed (down, garbage, refused the credentials).
    #[error("authentication with registry {registry} failed: {reason}")]
    Auth { registry: String, reason: String },
    /// The response body exceeded the configured limit.
    #[error("response body of {url} exceeds the limit of {limit} bytes")]
    BodyTooLarge { url: String, limit: usize },
    /// The response could not be interpreted.
    #[error("invalid response from {url}: {reason}")]
    InvalidResponse { url: String, reason: String },
    /// The client configuration (or a request built by the caller) is invalid.
    #[error("invalid registry client configuration: {field}: {reason}")]
    Config { field: String, reason: String },
    /// Redirect loop, too many redirects or a refused redirect.
    #[error("redirect refused for {url}: {reason}")]
    Redirect { url: String, reason: String },
}

impl RegistryError {
    /// The stable reason, usable in conditions, Events and metric labels.
    pub fn reason(&self) -> Reason {
        match self {
            RegistryError::Connect { .. } => Reason::Unreachable,
            RegistryError::Timeout { .. } => Reason::Timeout,
            RegistryError::Tls { .. } => Reason::TlsError,
            RegistryError::Auth { .. } => Reason::AuthFailed,
            RegistryError::BodyTooLarge { .. } => Reason::BodyTooLarge,
            RegistryError::InvalidResponse { .. } => Reason::InvalidResponse,
            RegistryError::Config { .. } => Reason::InvalidConfig,
            RegistryError::Redirect { .. } => Reason::RedirectRefused,
        }
    }

    pub(crate) fn config(field: &str, reason: impl Into<String>) -> Self {
        RegistryError::Config {
            field: field.to_string(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_stable() {
        let e = RegistryError::Connect {
            registry: "r:443".into(),
            reason: "refused".into(),
        };
        assert_eq!(e.reason(), "Unreachable");
        assert_eq!(e.to_string(), "registry r:443 unreachable: refused");
        assert_eq!(
            RegistryError::config("registryUrl", "bad").to_string(),
            "invalid registry client configuration: registryUrl: bad"
        );
        assert_eq!(
            RegistryError::Redirect {
                url: "u".into(),
                reason: "loop".into()
            }
            .reason(),
            "RedirectRefused"
        );
    }
}
