//! Reads the bytes a referrer's verification needs from the registry.
//!
//! Given a discovered [`Referrer`], [`read`] GETs its manifest and the blob(s) that hold
//! what is signed (`../shared/reference/verification.md` §1, §2, §5, §7):
//! - cosign simple signing (a `.sig` tag or an OCI 1.1 cosign signature artifact): every
//!   `application/vnd.dev.cosign.simplesigning.v1+json` layer, with that layer's annotations
//!   (signature, certificate, chain, Rekor bundle) — one [`OwnedEvidence`] per layer, since
//!   cosign appends each signature as one more layer;
//! - cosign attestations (`.att`) and other DSSE referrers: every
//!   `application/vnd.dsse.envelope.v1+json` layer with its annotations;
//! - sigstore bundles: the `application/vnd.dev.sigstore.bundle…` layer;
//! - Notation: the `application/jose+json` (JWS) or `application/cose` (COSE) envelope layer.
//!
//! Costs one manifest GET plus one blob GET per signature. Every body is bounded by the
//! client's body limit (`RegistryClientConfig::max_body_bytes`, enforced by
//! [`RegistryClient::send`]); layers that declare more than [`MAX_EVIDENCE_BYTES`] are refused
//! before they are asked for. Every byte is checked against the digest that named it.
//!
//! A registry that does not hand the bytes over is [`EvidenceError::Unreadable`] (the caller
//! reports Unknown); an artifact whose (digest-checked) bytes hold nothing verifiable is
//! [`EvidenceError::Malformed`] (the caller reports it unverified).

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::Deserialize;

use crate::discovery::{Format, Referrer};
use crate::oci;
use crate::reason::Reason;
use crate::registry::{Endpoint, RegistryClient, RegistryRequest, RegistryResponse, Scope};
use crate::verify::{Evidence, Subject};

/// Largest evidence layer asked for (the registry client's default body limit; the client
/// also enforces its own limit whatever a descriptor declares).
pub const MAX_EVIDENCE_BYTES: u64 = 4 * 1024 * 1024;

/// Most evidence layers read from one referrer manifest.
pub const MAX_EVIDENCE_LAYERS: usize = 64;

/// Which verifier a layer's bytes go to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvidenceKind {
    /// A simple-signing payload (blob) and its layer's annotations.
    CosignSimpleSigning,
    /// A DSSE envelope (blob) and its layer's annotations.
    CosignAttestation,
    /// A sigstore bundle (blob).
    SigstoreBundle,
    /// A Notation JWS envelope (blob).
    NotationJws,
    /// A Notation COSE envelope (blob).
    NotationCose,
}

/// What the layers of a referrer of `format` must look like to be read, or `None` when the
/// format carries no signature (SBOMs, unsigned statements, …).
fn wanted_layers(format: Format) -> Option<fn(&str) -> Option<EvidenceKind>> {
    fn simple(mt: &str) -> Option<EvidenceKind> {
        (mt == oci::COSIGN_SIMPLESIGNING).then_some(EvidenceKind::CosignSimpleSigning)
    }
    fn dsse(mt: &str) -> Option<EvidenceKind> {
        (mt == oci::DSSE_ENVELOPE).then_some(EvidenceKind::CosignAttestation)
    }
    fn bundle(mt: &str) -> Option<EvidenceKind> {
        mt.starts_with(oci::SIGSTORE_BUNDLE_PREFIX)
            .then_some(EvidenceKind::SigstoreBundle)
    }
    fn notation(mt: &str) -> Option<EvidenceKind> {
        match mt {
            oci::NOTATION_JWS => Some(EvidenceKind::NotationJws),
            oci::NOTATION_COSE => Some(EvidenceKind::NotationCose),
            _ => None,
        }
    }
    match format {
        Format::CosignSimpleSigning => Some(simple),
        Format::CosignAttestation | Format::InTotoDsse => Some(dsse),
        f if f.is_sigstore_bundle() => Some(bundle),
        f if f.is_notation() => Some(notation),
        _ => None,
    }
}

/// Whether a referrer of this format can be verified (it carries a signature).
pub fn is_verifiable(format: Format) -> bool {
    wanted_layers(format).is_some()
}

/// The bytes of one signature, owned; [`OwnedEvidence::evidence`] lends them to
/// [`crate::verify::verify`].
#[derive(Clone, Debug)]
pub struct OwnedEvidence {
    /// Which verifier the bytes go to.
    pub kind: EvidenceKind,
    /// Digest of the layer blob.
    pub layer_digest: String,
    /// The layer's media type.
    pub media_type: String,
    /// The blob.
    pub bytes: Bytes,
    /// The layer descriptor's annotations (string values).
    pub annotations: BTreeMap<String, String>,
}

impl OwnedEvidence {
    /// The borrowed form the verifier takes.
    pub fn evidence(&self) -> Evidence<'_> {
        match self.kind {
            EvidenceKind::CosignSimpleSigning => Evidence::CosignSimpleSigning {
                payload: &self.bytes,
                annotations: &self.annotations,
            },
            EvidenceKind::CosignAttestation => Evidence::CosignAttestation {
                envelope: &self.bytes,
                annotations: &self.annotations,
            },
            EvidenceKind::SigstoreBundle => Evidence::SigstoreBundle { json: &self.bytes },
            EvidenceKind::NotationJws => Evidence::NotationJws {
                envelope: &self.bytes,
            },
            EvidenceKind::NotationCose => Evidence::NotationCose {
                envelope: &self.bytes,
            },
        }
    }
}

impl<'a> From<&'a OwnedEvidence> for Evidence<'a> {
    fn from(e: &'a OwnedEvidence) -> Self {
        e.evidence()
    }
}

/// Why the evidence of a referrer was not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// The registry did not hand the bytes over (or handed over others): nothing can be said.
    #[error("{reason}: {message}")]
    Unreadable {
        /// Why (the registry's failure, `ReferrerNotFound`, `ContentDigestMismatch`,
        /// `BodyTooLarge`, `TooManyLayers`, …).
        reason: Reason,
        /// Detail (never credentials).
        message: String,
    },
    /// The referrer's own (digest-checked) bytes hold no evidence of its format.
    #[error("{message}")]
    Malformed {
        /// What is missing or unparsable.
        message: String,
    },
    /// The referrer's format carries no signature.
    #[error("format {0} carries no signature")]
    NotASignature(Format),
}

fn unreadable(reason: Reason, message: impl Into<String>) -> EvidenceError {
    EvidenceError::Unreadable {
        reason,
        message: message.into(),
    }
}

/// The evidence of one referrer and the requests it cost.
#[derive(Clone, Debug)]
pub struct ReferrerEvidence {
    /// One entry per signature layer, in manifest order.
    pub items: Vec<OwnedEvidence>,
    /// Registry GETs sent for it (one manifest, one per signature layer; a GET the client
    /// retried counts once). Counted here, not from the client's shared counters, which other
    /// concurrent reads also move.
    pub requests: u64,
    /// The manifest's own `subject` descriptor (OCI 1.1 referrers), when it names one: what
    /// Notation signs besides the digest (media type and size). Cosign tags have none.
    pub subject: Option<Subject>,
}

#[derive(Deserialize)]
struct ManifestLayers {
    #[serde(default)]
    layers: Vec<LayerDescriptor>,
    #[serde(default)]
    subject: Option<SubjectDescriptor>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubjectDescriptor {
    #[serde(default)]
    media_type: String,
    digest: String,
    size: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayerDescriptor {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: BTreeMap<String, serde_json::Value>,
}

/// Reads the evidence of `referrer`, found for a subject in `repository` (the referrer's own
/// `repository`, when discovery found it elsewhere, wins).
pub async fn read(
    client: &RegistryClient,
    repository: &str,
    referrer: &Referrer,
) -> Result<ReferrerEvidence, EvidenceError> {
    let Some(select) = wanted_layers(referrer.format) else {
        return Err(EvidenceError::NotASignature(referrer.format));
    };
    let repo = referrer.repository.as_deref().unwrap_or(repository);
    let mut requests = 0;
    let result = read_layers(client, repo, referrer, select, &mut requests).await;
    result.map(|(items, subject)| ReferrerEvidence {
        items,
        requests,
        subject,
    })
}

async fn read_layers(
    client: &RegistryClient,
    repo: &str,
    referrer: &Referrer,
    select: fn(&str) -> Option<EvidenceKind>,
    requests: &mut u64,
) -> Result<(Vec<OwnedEvidence>, Option<Subject>), EvidenceError> {
    let what = format!("referrer manifest {}", referrer.digest);
    if oci::parse_digest(&referrer.digest).is_err() {
        return Err(unreadable(
            Reason::InvalidResponse,
            format!("{what}: not a digest, not asked for"),
        ));
    }
    *requests += 1;
    let manifest = get(client, repo, Endpoint::ManifestGet, &referrer.digest, &what).await?;
    let parsed: ManifestLayers =
        serde_json::from_slice(&manifest.body).map_err(|e| EvidenceError::Malformed {
            message: format!("{what} is not an image manifest: {e}"),
        })?;
    let subject = parsed.subject.map(|d| Subject {
        digest: d.digest,
        media_type: d.media_type,
        size: d.size,
    });
    // cosign reads every layer of a `.sig` manifest as a signature whatever its media type
    // (`SignedImage.Signatures()`); so does this, when no layer says it is simple signing, so
    // that an attachment that is not a signature fails as cosign's does (an invalid payload).
    let any_simple = parsed
        .layers
        .iter()
        .any(|l| select(&l.media_type).is_some());
    let chosen: Vec<(EvidenceKind, LayerDescriptor)> =
        if !any_simple && referrer.format == Format::CosignSimpleSigning {
            parsed
                .layers
                .into_iter()
                .map(|l| (EvidenceKind::CosignSimpleSigning, l))
                .collect()
        } else {
            parsed
                .layers
                .into_iter()
                .filter_map(|l| select(&l.media_type).map(|k| (k, l)))
                .collect()
        };
    if chosen.is_empty() {
        return Err(EvidenceError::Malformed {
            message: format!(
                "{what} ({}) has no signature layer of the media types its format uses",
                referrer.format
            ),
        });
    }
    if chosen.len() > MAX_EVIDENCE_LAYERS {
        return Err(unreadable(
            Reason::TooManyLayers,
            format!(
                "{what} has {} signature layers, more than the {MAX_EVIDENCE_LAYERS} read",
                chosen.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(chosen.len());
    for (kind, layer) in chosen {
        let blob_what = format!("layer {} of {}", layer.digest, referrer.digest);
        if oci::parse_digest(&layer.digest).is_err() {
            return Err(EvidenceError::Malformed {
                message: format!("{what}: layer digest {:?} is not a digest", layer.digest),
            });
        }
        if layer.size > MAX_EVIDENCE_BYTES {
            return Err(unreadable(
                Reason::BodyTooLarge,
                format!(
                    "{blob_what} declares {} bytes, over the {MAX_EVIDENCE_BYTES}-byte limit: not read",
                    layer.size
                ),
            ));
        }
        *requests += 1;
        let blob = get(client, repo, Endpoint::BlobGet, &layer.digest, &blob_what).await?;
        let annotations = layer
            .annotations
            .into_iter()
            .filter_map(|(k, v)| match v {
                serde_json::Value::String(s) => Some((k, s)),
                _ => None,
            })
            .collect();
        out.push(OwnedEvidence {
            kind,
            layer_digest: layer.digest,
            media_type: layer.media_type,
            bytes: blob.body,
            annotations,
        });
    }
    Ok((out, subject))
}

/// The subject's descriptor, which Notation signs along with the digest (media type and size):
/// one GET of its manifest, digest-checked.
pub async fn subject(
    client: &RegistryClient,
    repository: &str,
    digest: &str,
) -> Result<Subject, EvidenceError> {
    let what = format!("subject manifest {digest}");
    let resp = get(client, repository, Endpoint::ManifestGet, digest, &what).await?;
    let media_type = serde_json::from_slice::<serde_json::Value>(&resp.body)
        .ok()
        .and_then(|v| v.get("mediaType")?.as_str().map(str::to_string))
        .or_else(|| resp.content_type().map(str::to_string))
        .unwrap_or_default();
    Ok(Subject {
        digest: digest.to_string(),
        media_type,
        size: resp.body.len() as u64,
    })
}

/// GET of the manifest (`Endpoint::ManifestGet`) or blob (`Endpoint::BlobGet`) `digest` of
/// `repo`, with the status mapped to a reason; 200 only, and the bytes must match the digest.
async fn get(
    client: &RegistryClient,
    repo: &str,
    endpoint: Endpoint,
    digest: &str,
    what: &str,
) -> Result<RegistryResponse, EvidenceError> {
    let path = if endpoint == Endpoint::BlobGet {
        format!("/v2/{repo}/blobs/{digest}")
    } else {
        format!("/v2/{repo}/manifests/{digest}")
    };
    let mut req = RegistryRequest::get(path, endpoint).scope(Scope::pull(repo));
    if endpoint == Endpoint::ManifestGet {
        req = req.accept(oci::manifest_accept_header());
    }
    let resp = client
        .send(req)
        .await
        .map_err(|e| unreadable(e.reason(), format!("{what}: {e}")))?;
    let status = resp.status.as_u16();
    let reason = match (status, resp.failure_reason()) {
        (200, _) => {
            check_digest(digest, &resp.body, what)?;
            return Ok(resp);
        }
        // A listed referrer (or one of its blobs) that is gone: deleted or garbage-collected
        // after the listing was read, or an orphaned listing entry.
        (404, Some(Reason::UnexpectedStatus)) => Reason::ReferrerNotFound,
        (_, Some(reason)) => reason,
        (_, None) => Reason::UnexpectedStatus,
    };
    Err(unreadable(
        reason,
        format!("{what}: {} answered HTTP {status}", client.registry()),
    ))
}

/// The bytes must be the ones the digest names (only sha256 is checked; other algorithms are
/// refused rather than trusted).
fn check_digest(digest: &str, body: &[u8], what: &str) -> Result<(), EvidenceError> {
    if !digest.starts_with("sha256:") {
        return Err(unreadable(
            Reason::UnsupportedDigest,
            format!("{what}: only sha256 digests are checked"),
        ));
    }
    let computed = oci::digest_sha256(body);
    if computed != digest {
        return Err(unreadable(
            Reason::ContentDigestMismatch,
            format!("{what}: the registry sent content with digest {computed}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_by_format() {
        let s = wanted_layers(Format::CosignSimpleSigning).map(|f| f(oci::COSIGN_SIMPLESIGNING));
        assert_eq!(s, Some(Some(EvidenceKind::CosignSimpleSigning)));
        let b = wanted_layers(Format::SigstoreBundleV01)
            .map(|f| f("application/vnd.dev.sigstore.bundle+json;version=0.1"));
        assert_eq!(b, Some(Some(EvidenceKind::SigstoreBundle)));
        let n =
            wanted_layers(Format::Notation).map(|f| (f(oci::NOTATION_JWS), f(oci::NOTATION_COSE)));
        assert_eq!(
            n,
            Some((
                Some(EvidenceKind::NotationJws),
                Some(EvidenceKind::NotationCose)
            ))
        );
        assert!(!is_verifiable(Format::Spdx));
        assert!(!is_verifiable(Format::InTotoStatement));
        assert!(is_verifiable(Format::InTotoDsse));
    }

    #[test]
    fn digests_are_checked() {
        let d = oci::digest_sha256(b"x");
        assert!(check_digest(&d, b"x", "blob").is_ok());
        assert!(matches!(
            check_digest(&d, b"y", "blob"),
            Err(EvidenceError::Unreadable { reason, .. }) if reason == Reason::ContentDigestMismatch
        ));
        assert!(check_digest("sha512:00", b"x", "blob").is_err());
    }
}
