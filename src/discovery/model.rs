//! What discovery returns. Serialised as-is by `refwarden discover -o json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How a referrer was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiscoveryMethod {
    /// `GET /v2/<name>/referrers/<digest>` (OCI Distribution 1.1).
    Native,
    /// The OCI referrers tag schema index (`sha256-<hex>`).
    TagSchema,
    /// cosign's legacy tags (`sha256-<hex>.sig`, `.att`, `.sbom`).
    CosignTag,
    /// BuildKit attestation manifests inside the image index.
    InIndex,
}

impl DiscoveryMethod {
    /// Stable lowercase label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::TagSchema => "tag-schema",
            Self::CosignTag => "cosign-tag",
            Self::InIndex => "in-index",
        }
    }
}

impl std::fmt::Display for DiscoveryMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where, relative to the digest that was asked about, a referrer is attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttachedTo {
    /// The digest that was asked about.
    Requested,
    /// The image index the requested platform manifest belongs to.
    Index,
    /// A platform manifest of the requested index.
    Platform,
    /// Another referrer (a signature on an SBOM), see `Referrer::referrers`.
    Referrer,
}

/// Artifact kinds a policy can require, from the referrer's types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArtifactKind {
    /// cosign signature (legacy `.sig` or OCI 1.1 `application/vnd.dev.cosign.artifact.sig.v1+json`).
    CosignSignature,
    /// Sigstore bundle (cosign v3 default).
    SigstoreBundle,
    /// Notary Project signature.
    NotationSignature,
    /// SPDX SBOM.
    SpdxSbom,
    /// CycloneDX SBOM.
    CyclonedxSbom,
    /// Syft SBOM.
    SyftSbom,
    /// in-toto attestation (DSSE / statement) other than an SBOM or provenance.
    InTotoAttestation,
    /// SLSA provenance.
    SlsaProvenance,
    /// OpenVEX document.
    Openvex,
    /// Anything else.
    Other,
}

/// One referrer of a subject.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Referrer {
    /// Digest of the referrer manifest.
    pub digest: String,
    /// Media type of the referrer manifest.
    pub media_type: String,
    /// Artifact type: `artifactType`, else the config media type, else classified from the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Kinds this referrer counts as (what presets match on).
    #[serde(default)]
    pub kinds: Vec<ArtifactKind>,
    /// Size of the referrer manifest in bytes.
    pub size: i64,
    /// Annotations of the referrer manifest.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// How it was found.
    pub method: DiscoveryMethod,
    /// The digest it refers to (its `subject`).
    pub subject: String,
    /// Where that subject sits relative to the digest that was asked about.
    pub attached_to: AttachedTo,
    /// For cosign tags, the tag it was found under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// Referrers of this referrer (to the requested depth).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub referrers: Vec<Referrer>,
}

/// What discovery was asked.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct DiscoveryRequest {
    /// Registry label, as `RegistryClient::registry()` (`host:port`).
    pub registry: String,
    /// Repository, e.g. `library/nginx`.
    pub repository: String,
    /// Digest of the subject, e.g. the running image.
    pub digest: String,
    /// Only referrers of these artifact types (empty: all). Applied server-side when the registry can, else client-side.
    pub artifact_types: Vec<String>,
    /// Depth of nested referrers to follow (0: only direct referrers). Bounded by the engine.
    pub depth: u32,
    /// When the subject is an index, also discover referrers of its platform manifests.
    pub platforms: bool,
    /// The index the subject belongs to, when known: its referrers are reported as `AttachedTo::Index`.
    pub index_digest: Option<String>,
}

impl DiscoveryRequest {
    /// A request for the direct referrers of one digest.
    pub fn new(registry: &str, repository: &str, digest: &str) -> Self {
        Self {
            registry: registry.to_string(),
            repository: repository.to_string(),
            digest: digest.to_string(),
            artifact_types: Vec::new(),
            depth: 0,
            platforms: false,
            index_digest: None,
        }
    }
}

/// Result of one discovery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "result")]
pub enum DiscoveryOutcome {
    /// The registry answered; `referrers` is complete for the methods that ran.
    Found(DiscoveryReport),
    /// The registry could not be asked or failed: nothing can be said about referrers.
    Unknown {
        /// Machine-readable cause: `Unreachable`, `Timeout`, `TlsError`, `AuthFailed`,
        /// `InsufficientPermissions`, `RateLimited`, `RegistryError`, `SubjectNotFound`,
        /// `ReferrersApiUnsupported` (Native forced), `InvalidResponse`, `BodyTooLarge`, …
        reason: String,
        /// Human-readable detail (never contains credentials).
        message: String,
    },
}

/// A successful discovery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveryReport {
    /// The digest that was asked about.
    pub subject: String,
    /// Media type of the subject manifest, when it was fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_media_type: Option<String>,
    /// Whether the registry serves the referrers API (None: not determined).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrers_api: Option<bool>,
    /// Methods that ran, in order.
    pub methods: Vec<DiscoveryMethod>,
    /// When the subject is an index and `platforms` was asked: its platform manifests
    /// (attestation manifests excluded). A policy that cannot tell which platform runs
    /// counts a platform referrer only when every platform carries one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    /// All referrers found, direct ones first, sorted by (attachedTo, method, artifactType, digest).
    pub referrers: Vec<Referrer>,
    /// Registry requests this discovery cost (0 when served from cache).
    pub requests: u64,
    /// Remarks worth showing (an ignored fallback tag, a stale index entry, a page cap reached).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}
