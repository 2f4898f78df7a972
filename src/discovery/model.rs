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

// The format says how an artifact is written (what a verifier must parse); `ArtifactKind`
// says what it is about (signature, SBOM, provenance…). A sigstore bundle that carries a SLSA
// statement (GitHub artifact attestations, `cosign attest` with cosign 3) has format
// `sigstore-bundle-v0.3` and kind `slsa-provenance`; who made it is only known from its
// certificate.
/// The envelope or document format of a referrer, as the tool that wrote it names it.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// cosign simple signing: a `.sig` tag (cosign ≤ 2) or an OCI 1.1 cosign signature artifact.
    CosignSimpleSigning,
    /// cosign attestation: DSSE envelopes in the layers of a `.att` tag (cosign ≤ 2).
    CosignAttestation,
    /// Sigstore bundle v0.1 (`application/vnd.dev.sigstore.bundle+json;version=0.1`).
    #[serde(rename = "sigstore-bundle-v0.1")]
    SigstoreBundleV01,
    /// Sigstore bundle v0.2.
    #[serde(rename = "sigstore-bundle-v0.2")]
    SigstoreBundleV02,
    /// Sigstore bundle v0.3 (cosign 3, GitHub artifact attestations).
    #[serde(rename = "sigstore-bundle-v0.3")]
    SigstoreBundleV03,
    /// Notary Project signature in a JWS envelope (`application/jose+json`).
    NotationJws,
    /// Notary Project signature in a COSE envelope (`application/cose`).
    NotationCose,
    /// Notary Project signature whose envelope was not read (the descriptor alone).
    Notation,
    /// An in-toto statement in a DSSE envelope (an OCI artifact other than a cosign tag).
    InTotoDsse,
    /// An unsigned in-toto statement (`application/vnd.in-toto+json`).
    InTotoStatement,
    /// BuildKit attestation manifest (SPDX / SLSA statements inside), in the index or, from
    /// BuildKit 0.32, also as a referrer of the platform manifest.
    BuildkitAttestation,
    /// A plain SPDX document.
    Spdx,
    /// A plain CycloneDX document.
    Cyclonedx,
    /// A Syft JSON document.
    SyftJson,
    /// A plain OpenVEX document.
    Openvex,
    /// Anything else.
    Other,
    /// Not determined: the descriptor does not say and its manifest was not read (only in a
    /// [`Reach::Listing`] answer).
    #[schemars(skip)]
    Unclassified,
}

impl Format {
    /// Every format a requirement may ask for (all but `Unclassified`).
    pub const NAMED: [Format; 16] = [
        Format::CosignSimpleSigning,
        Format::CosignAttestation,
        Format::SigstoreBundleV01,
        Format::SigstoreBundleV02,
        Format::SigstoreBundleV03,
        Format::NotationJws,
        Format::NotationCose,
        Format::Notation,
        Format::InTotoDsse,
        Format::InTotoStatement,
        Format::BuildkitAttestation,
        Format::Spdx,
        Format::Cyclonedx,
        Format::SyftJson,
        Format::Openvex,
        Format::Other,
    ];

    /// Stable label (the serde name).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::CosignSimpleSigning => "cosign-simple-signing",
            Self::CosignAttestation => "cosign-attestation",
            Self::SigstoreBundleV01 => "sigstore-bundle-v0.1",
            Self::SigstoreBundleV02 => "sigstore-bundle-v0.2",
            Self::SigstoreBundleV03 => "sigstore-bundle-v0.3",
            Self::NotationJws => "notation-jws",
            Self::NotationCose => "notation-cose",
            Self::Notation => "notation",
            Self::InTotoDsse => "in-toto-dsse",
            Self::InTotoStatement => "in-toto-statement",
            Self::BuildkitAttestation => "buildkit-attestation",
            Self::Spdx => "spdx",
            Self::Cyclonedx => "cyclonedx",
            Self::SyftJson => "syft-json",
            Self::Openvex => "openvex",
            Self::Other => "other",
            Self::Unclassified => "unclassified",
        }
    }

    /// Whether this is a sigstore bundle (any version).
    pub fn is_sigstore_bundle(&self) -> bool {
        matches!(
            self,
            Self::SigstoreBundleV01 | Self::SigstoreBundleV02 | Self::SigstoreBundleV03
        )
    }

    /// Whether this is a Notary Project signature (any envelope).
    pub fn is_notation(&self) -> bool {
        matches!(
            self,
            Self::NotationJws | Self::NotationCose | Self::Notation
        )
    }

    /// Whether `self` satisfies a requirement asking for `wanted` (`notation` accepts either
    /// envelope; an envelope asked for is met only when it was read).
    pub fn satisfies(&self, wanted: Format) -> bool {
        *self == wanted || (wanted == Format::Notation && self.is_notation())
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far one discovery looks.
///
/// Policies ask [`Reach::Listing`] first (an image whose required referrers are in the native
/// answer costs one request), [`Reach::Union`] only for an image that misses a requirement, and
/// [`Reach::Described`] only when a requirement asks for formats the answer left open;
/// `refwarden discover` asks `Described`. Each wider answer reuses the cached narrower one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Reach {
    /// What the first method that answers lists: the referrers API on a registry that has it
    /// (descriptors that do not say what they are stay [`Format::Unclassified`]), the tag
    /// fallbacks elsewhere.
    Listing,
    /// Everywhere real tools put referrers: in Auto mode, also the OCI tag-schema index and
    /// cosign's `.sig/.att/.sbom` tags when the referrers API answered (cosign ≤ 2 writes tags
    /// even there), and every descriptor that does not say what it is classified from its
    /// manifest.
    Union,
    /// The union, and the manifest of every descriptor whose format it leaves open (a notation
    /// signature's envelope, an in-toto statement's envelope) read to name it.
    #[default]
    Described,
}

/// A platform manifest of an image index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlatformManifest {
    /// Its digest.
    pub digest: String,
    /// `os/architecture[/variant]` from the index entry, when it says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
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
    /// Kinds this referrer counts as (what presets match on). Empty while unclassified.
    #[serde(default)]
    pub kinds: Vec<ArtifactKind>,
    /// The envelope or document format.
    pub format: Format,
    /// The in-toto predicate type, when an annotation or the manifest says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
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
    /// The repository it was found in, when not the subject's own (`COSIGN_REPOSITORY`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// For a referrer of a platform manifest: `os/architecture[/variant]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
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
    /// How far to look (see [`Reach`]).
    pub reach: Reach,
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
            reach: Reach::Described,
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
        reason: crate::reason::Reason,
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
    pub platforms: Vec<PlatformManifest>,
    /// All referrers found, direct ones first, sorted by (attachedTo, method, artifactType, digest).
    pub referrers: Vec<Referrer>,
    /// Registry requests this discovery cost (0 when served from cache).
    pub requests: u64,
    /// Remarks worth showing (an ignored fallback tag, a stale index entry, a page cap reached).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}
