//! The IMAGE argument of `discover` and `verify`: parsed with the scheme hint, and its digest
//! (a tag resolved as a kubelet would).

use crate::registry::{ImageReference, RegistryClient, resolve_digest};

/// Why an IMAGE argument gave no digest.
pub enum ImageError {
    /// The argument itself is wrong (exit 2).
    BadInput(String),
    /// The registry could not resolve the tag.
    Registry(String),
}

/// Parses IMAGE, refusing a URL scheme with a hint.
pub fn parse(image: &str) -> Result<ImageReference, String> {
    if let Some(e) = super::hints::scheme_in_reference(image) {
        return Err(format!("IMAGE {e}"));
    }
    ImageReference::parse(image).map_err(|e| format!("IMAGE {image:?}: {e}"))
}

/// The digest IMAGE names: its digest, else its tag resolved through `client`.
pub async fn digest(
    client: &RegistryClient,
    reference: &ImageReference,
    image: &str,
) -> Result<String, ImageError> {
    match (&reference.digest, &reference.tag) {
        (Some(d), _) => Ok(d.clone()),
        (None, Some(tag)) => resolve_digest(client, &reference.repository, tag)
            .await
            .map_err(|e| ImageError::Registry(format!("cannot resolve {image}: {e}"))),
        (None, None) => Err(ImageError::BadInput(format!(
            "IMAGE {image:?}: no tag or digest"
        ))),
    }
}
