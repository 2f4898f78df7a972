//! The `ReferrerPolicy` custom resource: which running images must carry which
//! referrers, and the compliance the controller observed.
//!
//! A requirement is met when a referrer of the required kind is present, and,
//! when the requirement carries `verify`, when that referrer verifies
//! cryptographically under the trust it names (keys, keyless identities, a
//! Notation trust store).

// kube's `printcolumn(...)` lists repeat `type_ = …`; clippy reads them as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::CustomResource;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::{CaBundleRef, KeyReference};

/// Glob on a normalised repository (`ghcr.io/acme/**`): segments of `[a-z0-9._-]`
/// with `*` (within a segment) and `?`, or a whole `**` segment; the first segment
/// may carry a `:port`.
pub const GLOB_PATTERN: &str = r"^(\*\*|[a-z0-9._?*-]+(:[0-9*?]+)?)(/(\*\*|[a-z0-9._?*-]+))*$";

/// Which running images must carry which referrers.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "refwarden.dev",
    version = "v1alpha1",
    kind = "ReferrerPolicy",
    plural = "referrerpolicies",
    shortname = "refpol",
    status = "ReferrerPolicyStatus",
    category = "refwarden",
    printcolumn(
        name = "COMPLIANT",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Compliant\")].status"
    ),
    printcolumn(name = "PODS", type_ = "integer", json_path = ".status.summary.pods"),
    printcolumn(
        name = "VIOLATIONS",
        type_ = "integer",
        json_path = ".status.summary.nonCompliant",
        description = "Images missing required referrers"
    ),
    printcolumn(
        name = "UNKNOWN",
        type_ = "integer",
        json_path = ".status.summary.unknown",
        description = "Images whose referrers could not be discovered"
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct ReferrerPolicySpec {
    /// Namespaces whose pods are checked (empty: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Pods that are checked (empty: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// Which images (by normalised repository, e.g. `docker.io/library/nginx`) are checked.
    #[serde(default)]
    pub images: ImageFilter,
    /// What every selected image must carry. At least one requirement.
    #[schemars(length(min = 1, max = 32))]
    pub require: Vec<Requirement>,
    /// `IndexOrPlatform` (default): a referrer on the running digest, its index, or its platform
    /// manifests counts. `Exact`: only on the running digest.
    #[serde(default)]
    pub subject_match: SubjectMatch,
    /// RegistryProfiles to use (names). Default: the profile whose host matches the image's, else
    /// an implicit anonymous profile with auto-detection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub registry_profiles: Vec<String>,
    /// How often compliance is re-evaluated even without changes (Go duration).
    #[serde(default = "default_recheck_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub recheck_interval: String,
    /// Maximum number of violations listed in the status (the counts are always complete).
    #[serde(default = "default_max_reported")]
    #[schemars(range(min = 1, max = 500))]
    pub max_reported_violations: u32,
}

fn default_recheck_interval() -> String {
    "10m".to_string()
}

fn default_max_reported() -> u32 {
    50
}

/// Image include/exclude globs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageFilter {
    /// Repositories to check (empty: all), as `registry/path` globs (`docker.io/library/nginx`,
    /// `ghcr.io/acme/**`): `*` matches within a path segment, `**` across segments. A glob that
    /// matches none of the images the selected pods run sets `Ready=False`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[schemars(inner(regex(
        pattern = r"^(\*\*|(\*\*|[a-z0-9._?*-]+(:[0-9*?]+)?)(/(\*\*|[a-z0-9._?*-]+))+)$"
    )))]
    pub include: Vec<String>,
    /// Repositories to skip, applied after `include`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    #[schemars(inner(regex(
        pattern = r"^(\*\*|(\*\*|[a-z0-9._?*-]+(:[0-9*?]+)?)(/(\*\*|[a-z0-9._?*-]+))+)$"
    )))]
    pub exclude: Vec<String>,
}

/// One thing every selected image must carry.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new(
    "has(self.preset) || (has(self.artifactTypes) && size(self.artifactTypes) > 0) || (has(self.legacyTagSuffixes) && size(self.legacyTagSuffixes) > 0) || (has(self.formats) && size(self.formats) > 0)"
).message("set preset, artifactTypes, legacyTagSuffixes or formats"))]
#[serde(rename_all = "camelCase")]
pub struct Requirement {
    /// Name shown in violations (`missing: [signature]`).
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        length(min = 1, max = 63)
    )]
    pub name: String,
    /// A built-in preset: signature, sbom, cosign-signature, sigstore-bundle, notation-signature,
    /// spdx-sbom, cyclonedx-sbom, in-toto-attestation, slsa-provenance, openvex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preset: Option<Preset>,
    /// Artifact types that satisfy the requirement (any of), matched exactly (parameters ignored).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    #[schemars(inner(regex(
        pattern = r"^[a-zA-Z0-9][a-zA-Z0-9!#$&^_.+-]*/[a-zA-Z0-9][a-zA-Z0-9!#$&^_.+-]*$"
    )))]
    pub artifact_types: Vec<String>,
    /// Legacy cosign tag suffixes that satisfy it (`sig`, `att`, `sbom`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 3))]
    pub legacy_tag_suffixes: Vec<LegacySuffix>,
    /// How many distinct referrers must satisfy it.
    #[serde(default = "default_min_count")]
    #[schemars(range(min = 1, max = 100))]
    pub min_count: u32,
    /// Formats a referrer must be written in to count (any of; empty: any format), e.g.
    /// `[sigstore-bundle-v0.3]` for cosign 3 bundles only. With nothing else set, any referrer
    /// in one of these formats satisfies the requirement.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub formats: Vec<crate::discovery::Format>,
    /// Another repository where this requirement's referrers may live (`registry/path`, e.g.
    /// `ghcr.io/acme/signatures`: cosign's `COSIGN_REPOSITORY`, Kyverno's `repository`). When
    /// the image's own repository does not meet the requirement, the same digest is looked up
    /// there (referrers API and tags) through that registry's RegistryProfile and credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(
        pattern = r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+$"
    ))]
    pub repository: Option<String>,
    /// Cryptographic verification: when set, only referrers that verify under this trust count
    /// (a valid signature over another digest, by an untrusted key or identity, or without the
    /// required transparency-log proof does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifySpec>,
}

fn default_min_count() -> u32 {
    1
}

fn default_signer_count() -> u32 {
    1
}

/// What a referrer must verify under to count (Kyverno `attestors`, sigstore policy-controller
/// `authorities`, cosign / notation `verify` flags). Any of `keys`, `keyless`, `notation` may
/// be set; a referrer counts when it verifies under one of them.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new(
    "(has(self.keys) && size(self.keys) > 0) || has(self.keyless) || has(self.notation)"
).message("set keys, keyless or notation"))]
#[x_kube(validation = Rule::new("!has(self.keyless) || has(self.trustedRootRef)")
    .message("keyless needs trustedRootRef (the sigstore trusted_root.json)"))]
#[serde(rename_all = "camelCase")]
pub struct VerifySpec {
    /// Trusted public keys (PEM: ECDSA P-256/P-384, Ed25519, RSA), as cosign `--key`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub keys: Vec<KeySource>,
    /// How many distinct keys or identities must have signed (Kyverno's attestor `count`).
    #[serde(default = "default_signer_count")]
    #[schemars(range(min = 1, max = 16))]
    pub count: u32,
    /// Keyless (Fulcio certificate) signers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keyless: Option<KeylessSpec>,
    /// Notary Project (Notation) signatures: x509 trust store and trusted identities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notation: Option<NotationSpec>,
    /// A ConfigMap key holding a sigstore `trusted_root.json` (Fulcio CAs, Rekor and CT log
    /// keys). Needed for keyless, and for the transparency-log proof of key signatures.
    /// refwarden never fetches TUF: refresh the ConfigMap yourself (the chart can ship the
    /// public-good root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_root_ref: Option<KeyReference>,
    /// Accept signatures without a verified transparency-log entry (cosign
    /// `--insecure-ignore-tlog`, Kyverno `rekor.ignoreTlog`). Default false: a SET or an
    /// inclusion proof with its checkpoint must verify against the trusted root's Rekor keys.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_tlog: bool,
    /// Accept Fulcio certificates without a verified SCT (cosign `--insecure-ignore-sct`,
    /// Kyverno `ctlog.ignoreSCT`). Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ignore_sct: bool,
    /// For in-toto attestations: the predicate type the statement must carry (exact), e.g.
    /// `https://slsa.dev/provenance/v1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub predicate_type: Option<String>,
}

/// One trusted public key: inline PEM, or a key of a ConfigMap or Secret. Exactly one.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new(
    "(has(self.pem) ? 1 : 0) + (has(self.configMapRef) ? 1 : 0) + (has(self.secretRef) ? 1 : 0) == 1"
).message("set exactly one of pem, configMapRef or secretRef"))]
#[serde(rename_all = "camelCase")]
pub struct KeySource {
    /// The public key, PEM (`-----BEGIN PUBLIC KEY-----`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16384))]
    pub pem: Option<String>,
    /// A ConfigMap key holding the PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<KeyReference>,
    /// A Secret key holding the PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<KeyReference>,
}

/// Keyless signers: certificates chaining to the trusted root's Fulcio CAs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeylessSpec {
    /// Any one must match (cosign `--certificate-identity(-regexp)` and
    /// `--certificate-oidc-issuer(-regexp)`).
    #[schemars(length(min = 1, max = 16))]
    pub identities: Vec<IdentitySpec>,
}

/// A keyless identity: the certificate's OIDC issuer and subject (SAN), each exact or a regular
/// expression. Regular expressions are anchored: `subjectRegExp: https://github.com/acme/.*`
/// matches the whole SAN, never a substring (cosign's match substrings; write `.*` to mean it).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.issuer) != has(self.issuerRegExp)")
    .message("set exactly one of issuer or issuerRegExp"))]
#[x_kube(validation = Rule::new("has(self.subject) != has(self.subjectRegExp)")
    .message("set exactly one of subject or subjectRegExp"))]
#[serde(rename_all = "camelCase")]
pub struct IdentitySpec {
    /// OIDC issuer, exact (`https://token.actions.githubusercontent.com`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// OIDC issuer, anchored regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_reg_exp: Option<String>,
    /// Subject alternative name, exact (an email, or a workflow URI
    /// `https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Subject alternative name, anchored regular expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_reg_exp: Option<String>,
    /// GitHub Actions claims the certificate must carry (Fulcio extensions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub github: Option<GithubClaims>,
}

/// GitHub workflow claims of a Fulcio certificate, exact (cosign
/// `--certificate-github-workflow-repository`, `-ref`, `-name`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GithubClaims {
    /// `owner/name` (extension 1.3.6.1.4.1.57264.1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// `refs/heads/main`, `refs/tags/v1` (extension 1.3.6.1.4.1.57264.1.6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// The workflow's name (extension 1.3.6.1.4.1.57264.1.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<String>,
}

/// Notation trust: the `ca` trust store and the trust policy's trusted identities.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotationSpec {
    /// A ConfigMap or Secret key holding the trust store's root certificates (PEM).
    pub trust_store: CaBundleRef,
    /// `*`, or `x509.subject: C=US, ST=WA, O=Acme` (Notation's `trustedIdentities`).
    #[schemars(length(min = 1, max = 16))]
    pub trusted_identities: Vec<String>,
}

/// Built-in presets (see `refwarden::discovery::presets`).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Preset {
    /// Any signature kind.
    Signature,
    /// Any SBOM kind.
    Sbom,
    /// cosign signature.
    CosignSignature,
    /// Sigstore bundle.
    SigstoreBundle,
    /// Notary Project signature.
    NotationSignature,
    /// SPDX SBOM.
    SpdxSbom,
    /// CycloneDX SBOM.
    CyclonedxSbom,
    /// in-toto attestation.
    InTotoAttestation,
    /// SLSA provenance.
    SlsaProvenance,
    /// OpenVEX.
    Openvex,
}

impl Preset {
    /// The preset's name as in policies.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Signature => "signature",
            Self::Sbom => "sbom",
            Self::CosignSignature => "cosign-signature",
            Self::SigstoreBundle => "sigstore-bundle",
            Self::NotationSignature => "notation-signature",
            Self::SpdxSbom => "spdx-sbom",
            Self::CyclonedxSbom => "cyclonedx-sbom",
            Self::InTotoAttestation => "in-toto-attestation",
            Self::SlsaProvenance => "slsa-provenance",
            Self::Openvex => "openvex",
        }
    }
}

/// Legacy cosign tag suffix.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LegacySuffix {
    /// `sha256-<hex>.sig`
    Sig,
    /// `sha256-<hex>.att`
    Att,
    /// `sha256-<hex>.sbom`
    Sbom,
}

impl LegacySuffix {
    /// The suffix without the dot.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Sig => "sig",
            Self::Att => "att",
            Self::Sbom => "sbom",
        }
    }
}

/// Where a referrer may be attached to count.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema,
)]
pub enum SubjectMatch {
    /// Only the running digest.
    Exact,
    /// The running digest, the index it belongs to, or its platform manifests.
    #[default]
    IndexOrPlatform,
}

/// Observed compliance, written by the controller (and printed by `refwarden evaluate`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReferrerPolicyStatus {
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Reconciling, Stalled (kstatus) and Compliant.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// When compliance was last evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_evaluation_time: Option<Time>,
    /// Counts over every selected image.
    #[serde(default)]
    pub summary: ComplianceSummary,
    /// Images missing required referrers (bounded by maxReportedViolations, sorted, stable).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub violations: Vec<PolicyViolation>,
    /// Images whose referrers could not be discovered (bounded like violations).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<UnknownImage>,
    /// Compliant images whose `verify` requirements verified, and by whom (bounded like
    /// violations).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verified: Vec<VerifiedImage>,
}

/// Compliance counts.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComplianceSummary {
    /// Selected pods.
    pub pods: u32,
    /// Distinct images (repository + digest) run by them.
    pub images: u32,
    /// Images carrying every required referrer.
    pub compliant: u32,
    /// Images missing at least one required referrer.
    pub non_compliant: u32,
    /// Images whose referrers could not be discovered.
    pub unknown: u32,
    /// Compliant images whose `verify` requirements verified (a part of `compliant`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub verified: u32,
    /// Non-compliant images with a required referrer present but not verifying (a part of
    /// `nonCompliant`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unverified: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A workload: the top-level owner of a pod.
#[derive(
    Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, KubeSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRef {
    /// Namespace.
    pub namespace: String,
    /// Deployment, StatefulSet, DaemonSet, CronJob, Job, ReplicaSet or Pod.
    pub kind: String,
    /// Name.
    pub name: String,
}

/// An image that misses required referrers.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyViolation {
    /// Normalised repository, e.g. `ghcr.io/acme/app`.
    pub image: String,
    /// The image as a pod names it (first seen), with its tag: `ghcr.io/acme/app:1.4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// The running digest.
    pub digest: String,
    /// Selected pods running it (replicas, not workloads).
    #[serde(default)]
    pub pods: u32,
    /// Names of the requirements not met.
    pub missing: Vec<String>,
    /// Workloads running it (bounded to 10).
    pub workloads: Vec<WorkloadRef>,
    /// How referrers were discovered for it (native, tag-schema, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_method: Option<String>,
    /// Referrers that are present but did not verify, with why (bounded to 5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unverified: Vec<UnverifiedReferrer>,
}

impl PolicyViolation {
    /// What is missing, each requirement with why its referrers did not verify when that is the
    /// reason (`signature (unverified: NoSignatureByTrustedKey)`): what Events and tables say.
    pub fn missing_labels(&self) -> Vec<String> {
        self.missing
            .iter()
            .map(|name| {
                let mut reasons: Vec<&str> = self
                    .unverified
                    .iter()
                    .filter(|u| &u.requirement == name)
                    .map(|u| u.reason.as_str())
                    .collect();
                reasons.dedup();
                if reasons.is_empty() {
                    name.clone()
                } else {
                    format!("{name} (unverified: {})", reasons.join(", "))
                }
            })
            .collect()
    }
}

/// A referrer a `verify` requirement counted that did not verify.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnverifiedReferrer {
    /// The requirement's name.
    pub requirement: String,
    /// The referrer's manifest digest.
    pub referrer: String,
    /// Its format (`cosign-simple-signing`, `sigstore-bundle-v0.3`, `notation-jws`, …).
    pub format: String,
    /// `NoSignatureByTrustedKey`, `IdentityMismatch`, `DigestMismatch`,
    /// `CertificateExpiredAtSigningTime`, `TransparencyLogProofMissing`, `UntrustedRoot`, …
    pub reason: String,
    /// What did not match.
    pub message: String,
}

/// A compliant image and the referrers that verified for its `verify` requirements.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedImage {
    /// Normalised repository.
    pub image: String,
    /// The running digest.
    pub digest: String,
    /// One entry per verified referrer (bounded to 5).
    pub referrers: Vec<VerifiedReferrer>,
}

/// A referrer that verified.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerifiedReferrer {
    /// The requirement's name.
    pub requirement: String,
    /// The referrer's manifest digest.
    pub referrer: String,
    /// Its format.
    pub format: String,
    /// Who signed: `key sha256:…` (the key's fingerprint), `identity ISSUER SUBJECT`, or
    /// `certificate SUBJECT-DN`.
    pub signer: String,
    /// The transparency log's entry index, when one verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_index: Option<i64>,
}

/// An image whose compliance is Unknown.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnknownImage {
    /// The image as the pod names it (or the normalised repository).
    pub image: String,
    /// The running digest, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Why: `RegistryUnavailable`, `AuthFailed`, `ImageNotFound`, `DigestNotResolvable`, … (the
    /// README's "Why an image is Unknown").
    pub reason: String,
    /// Detail.
    pub message: String,
    /// Selected pods running it (replicas, not workloads).
    #[serde(default)]
    pub pods: u32,
    /// Workloads running it (bounded to 10).
    pub workloads: Vec<WorkloadRef>,
}
