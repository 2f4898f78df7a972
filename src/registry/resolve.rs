//! Resolving a tag to the digest a kubelet would pull.

use super::{Endpoint, RegistryClient, RegistryRequest, Scope};
use crate::oci;
use crate::reason::Reason;

/// Why a reference could not be resolved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct ResolveError {
    /// `TagNotFound`, `AuthFailed`, `InsufficientPermissions`, `RateLimited`, `RegistryError`,
    /// `Unreachable`, …
    pub reason: Reason,
    /// Detail (never credentials).
    pub message: String,
}

fn err(reason: Reason, message: String) -> ResolveError {
    ResolveError { reason, message }
}

/// `HEAD /v2/<repo>/manifests/<tag>` with the manifest Accept header; the
/// `Docker-Content-Digest` header, or GET and hash the body when it is missing.
pub async fn resolve_digest(
    client: &RegistryClient,
    repository: &str,
    tag: &str,
) -> Result<String, ResolveError> {
    let path = format!("/v2/{repository}/manifests/{tag}");
    let send = async |request: RegistryRequest| {
        client
            .send(
                request
                    .accept(oci::manifest_accept_header())
                    .scope(Scope::pull(repository)),
            )
            .await
            .map_err(|e| err(e.reason(), e.to_string()))
    };
    let head = send(RegistryRequest::head(&path, Endpoint::ManifestHead)).await?;
    let status = head.status.as_u16();
    match status {
        200 => {
            if let Some(d) = head
                .header("docker-content-digest")
                .filter(|d| oci::parse_digest(d).is_ok())
            {
                return Ok(d.to_string());
            }
        }
        404 => {
            return Err(err(
                Reason::TagNotFound,
                format!("{repository}:{tag} does not exist in {}", client.registry()),
            ));
        }
        _ => {
            let reason = head.failure_reason().unwrap_or(Reason::UnexpectedStatus);
            let detail = match reason {
                Reason::AuthFailed => " (credentials missing or rejected)",
                Reason::InsufficientPermissions => " (credentials not allowed to pull)",
                Reason::RateLimited => " (rate limited)",
                _ => "",
            };
            return Err(err(
                reason,
                format!("{repository}:{tag}: HEAD answered HTTP {status}{detail}"),
            ));
        }
    }
    let get = send(RegistryRequest::get(&path, Endpoint::ManifestGet)).await?;
    if get.status.as_u16() != 200 {
        return Err(err(
            Reason::RegistryError,
            format!(
                "{repository}:{tag}: GET answered HTTP {} after HEAD answered 200",
                get.status.as_u16()
            ),
        ));
    }
    Ok(oci::digest_sha256(&get.body))
}
