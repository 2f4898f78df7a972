//! Manifests read by digest or tag: the digest checked, cached by digest (immutable).

use std::sync::Arc;

use bytes::Bytes;

use super::run::{RunContext, UnknownCause};
use crate::discovery::classify::ManifestFacts;
use crate::oci;
use crate::reason::Reason;
use crate::registry::{Endpoint, RegistryRequest, Scope};

/// A fetched manifest (immutable once addressed by digest).
#[derive(Debug)]
pub(super) struct FetchedManifest {
    pub(super) digest: String,
    pub(super) content_type: Option<String>,
    pub(super) size: i64,
    pub(super) body: Bytes,
    pub(super) facts: Option<ManifestFacts>,
}

/// GET a manifest by digest or tag. `None` on 404. Cached by digest.
pub(super) async fn fetch_manifest(
    ctx: &RunContext<'_>,
    reference: &str,
) -> Result<Option<Arc<FetchedManifest>>, UnknownCause> {
    let by_digest = reference.contains(':');
    let key = (
        ctx.registry.clone(),
        ctx.repo.clone(),
        reference.to_string(),
    );
    if by_digest && let Some(f) = ctx.d.inner.manifests.get(&key).await {
        return Ok(Some(f));
    }
    let path = format!("/v2/{}/manifests/{reference}", ctx.repo);
    let req = RegistryRequest::get(&path, Endpoint::ManifestGet)
        .accept(oci::manifest_accept_header())
        .scope(Scope::pull(&ctx.repo));
    let resp = ctx
        .send(req)
        .await
        .map_err(|e| UnknownCause::from_error(&e))?;
    match resp.status.as_u16() {
        200 => {}
        404 if !resp.error_codes().iter().any(|c| c == "NAME_UNKNOWN") || !by_digest => {
            return Ok(None);
        }
        _ => {
            return Err(UnknownCause::from_status(
                &format!("manifest {reference}"),
                &resp,
            ));
        }
    }
    let computed = oci::digest_sha256(&resp.body);
    let digest = if by_digest {
        if reference.starts_with("sha256:") && computed != reference {
            return Err(UnknownCause::new(
                Reason::InvalidResponse,
                format!("manifest {reference}: content digest is {computed}"),
            ));
        }
        reference.to_string()
    } else {
        match resp
            .header("docker-content-digest")
            .filter(|d| d.starts_with("sha512:") && oci::parse_digest(d).is_ok())
        {
            Some(d) => d.to_string(),
            None => computed,
        }
    };
    let fetched = Arc::new(FetchedManifest {
        size: i64::try_from(resp.body.len()).unwrap_or(i64::MAX),
        facts: ManifestFacts::parse(&resp.body),
        content_type: resp.content_type().map(str::to_string),
        body: resp.body,
        digest: digest.clone(),
    });
    ctx.d
        .inner
        .manifests
        .insert(
            (ctx.registry.clone(), ctx.repo.clone(), digest),
            fetched.clone(),
        )
        .await;
    Ok(Some(fetched))
}
