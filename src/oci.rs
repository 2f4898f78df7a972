//! OCI / Docker media types, digest helpers and re-exported OCI types.
//!
//! The structured manifest/index types come from `oci-spec`; this module only
//! adds the string constants and small helpers the rest of the crate needs.

use sha2::{Digest as _, Sha256};

pub use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};

/// OCI image index (also the referrers API response type).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Alias of [`OCI_INDEX`].
pub const MEDIA_TYPE_OCI_INDEX: &str = OCI_INDEX;
/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker manifest list (multi-arch).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image manifest v2 schema 2.
pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The OCI empty descriptor media type (`{}`), used as config of artifacts.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// Digest of the two-byte empty JSON object `{}`.
pub const OCI_EMPTY_DIGEST: &str =
    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
/// Content of the OCI empty blob.
pub const OCI_EMPTY_CONTENT: &[u8] = b"{}";
/// Plain OCI image config.
pub const OCI_IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// Docker image config.
pub const DOCKER_IMAGE_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Sigstore bundle as written by cosign v3 (artifactType of the referrer).
pub const SIGSTORE_BUNDLE_V03: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// Prefix shared by every Sigstore bundle media type spelling.
pub const SIGSTORE_BUNDLE_PREFIX: &str = "application/vnd.dev.sigstore.bundle";
/// cosign experimental OCI 1.1 signature artifact.
pub const COSIGN_ARTIFACT_SIG: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// cosign experimental OCI 1.1 SBOM artifact.
pub const COSIGN_ARTIFACT_SBOM: &str = "application/vnd.dev.cosign.artifact.sbom.v1+json";
/// cosign experimental OCI 1.1 attestation artifact.
pub const COSIGN_ARTIFACT_ATT: &str = "application/vnd.dev.cosign.artifact.att.v1+json";
/// Legacy cosign `.sig` tag layer.
pub const COSIGN_SIMPLESIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Notary Project JWS envelope (the signature layer's media type).
pub const NOTATION_JWS: &str = "application/jose+json";
/// Notary Project COSE envelope (the signature layer's media type).
pub const NOTATION_COSE: &str = "application/cose";
/// BuildKit (0.32+) attestation manifests' `artifactType` when pushed as referrers.
pub const BUILDKIT_ATTESTATION_MANIFEST: &str =
    "application/vnd.docker.attestation.manifest.v1+json";
/// Notary Project (notation) signature artifact.
pub const NOTATION_SIGNATURE: &str = "application/vnd.cncf.notary.signature";
/// in-toto statement.
pub const IN_TOTO: &str = "application/vnd.in-toto+json";
/// DSSE envelope (legacy cosign `.att` layers).
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
/// SPDX JSON SBOM.
pub const SPDX_JSON: &str = "application/spdx+json";
/// SPDX JSON as written by legacy `cosign attach sbom`.
pub const SPDX_JSON_TEXT: &str = "text/spdx+json";
/// CycloneDX JSON SBOM.
pub const CYCLONEDX_JSON: &str = "application/vnd.cyclonedx+json";
/// CycloneDX XML SBOM.
pub const CYCLONEDX_XML: &str = "application/vnd.cyclonedx+xml";
/// Syft native SBOM.
pub const SYFT_JSON: &str = "application/vnd.syft+json";
/// OpenVEX (de facto; no registered media type).
pub const OPENVEX_JSON: &str = "application/vnd.openvex+json";

/// `Accept` value for manifest requests: OCI index, OCI manifest, Docker list, Docker v2.
pub fn manifest_accept_header() -> &'static str {
    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"
}

/// `"sha256:<lowercase hex>"` of `bytes`.
pub fn digest_sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A digest string that is not `sha256:<64 hex>` or `sha512:<128 hex>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {input:?}: {reason}")]
pub struct DigestError {
    /// The offending input (digests are never secret).
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Splits and validates a digest into `(algorithm, encoded)`.
///
/// Only `sha256` (64 lowercase hex characters) and `sha512` (128) are accepted.
pub fn parse_digest(digest: &str) -> Result<(&str, &str), DigestError> {
    let err = |reason| DigestError {
        input: truncate(digest, 200),
        reason,
    };
    let (alg, hex) = digest
        .split_once(':')
        .ok_or_else(|| err("missing ':' between algorithm and encoded part"))?;
    let expected = match alg {
        "sha256" => 64,
        "sha512" => 128,
        "" => return Err(err("empty algorithm")),
        _ => return Err(err("unsupported algorithm (expected sha256 or sha512)")),
    };
    if hex.len() != expected {
        return Err(err(if alg == "sha256" {
            "sha256 digest must have 64 hex characters"
        } else {
            "sha512 digest must have 128 hex characters"
        }));
    }
    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(err("encoded part must be lowercase hex"));
    }
    Ok((alg, hex))
}

/// `s`, cut to at most `max` bytes (at a character boundary) and marked `…` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_digest_matches_constant() {
        assert_eq!(digest_sha256(OCI_EMPTY_CONTENT), OCI_EMPTY_DIGEST);
    }

    #[test]
    fn parse_digest_valid_and_invalid() {
        let d = digest_sha256(b"x");
        let (alg, hex) = parse_digest(&d).unwrap();
        assert_eq!(alg, "sha256");
        assert_eq!(hex.len(), 64);
        let d512 = format!("sha512:{}", "a".repeat(128));
        assert_eq!(parse_digest(&d512).unwrap().0, "sha512");
        for bad in [
            "",
            "sha256",
            "sha256:",
            ":abc",
            "md5:abcd",
            &format!("sha256:{}", "A".repeat(64)),
            &format!("sha256:{}", "a".repeat(63)),
            &format!("sha256:{}", "g".repeat(64)),
            &format!("sha512:{}", "a".repeat(64)),
        ] {
            assert!(parse_digest(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn accept_header_lists_four_types() {
        let parts: Vec<_> = manifest_accept_header().split(", ").collect();
        assert_eq!(
            parts,
            [
                OCI_INDEX,
                OCI_MANIFEST,
                DOCKER_MANIFEST_LIST,
                DOCKER_MANIFEST_V2
            ]
        );
    }
}
