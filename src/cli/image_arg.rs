//! The IMAGE argument of `discover` and `verify`: parsed with the scheme hint, and its digest
//! (a tag resolved as a kubelet would).

use std::process::ExitCode;

use super::output::{self, Structured};
use super::{EXIT_BAD_INPUT, hints};
use crate::registry::{ImageReference, RegistryClient, resolve_digest};

/// Why an IMAGE argument gave no digest.
pub enum ImageError {
    /// The argument itself is wrong (exit 2).
    BadInput(String),
    /// The registry could not resolve the tag.
    Registry(String),
}

impl ImageError {
    /// The exit of a command whose IMAGE gave no digest: bad input (exit 2), else the
    /// registry's error (exit `registry_exit`, with a hint when one fits).
    pub fn fail(self, structured: Option<&Structured>, registry_exit: u8) -> ExitCode {
        match self {
            ImageError::BadInput(m) => output::fail(structured, EXIT_BAD_INPUT, "BadInput", &m),
            ImageError::Registry(m) => {
                let code = output::fail(structured, registry_exit, "RegistryError", &m);
                hints::print_for(&m);
                code
            }
        }
    }
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
