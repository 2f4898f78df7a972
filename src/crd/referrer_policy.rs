//! The `ReferrerPolicy` custom resource: which running images must carry which
//! referrers, and the compliance the controller observed.
//!
//! A requirement is met when a referrer of the required kind is **present**;
//! refwarden does not verify signatures cryptographically.

// kube's `printcolumn(...)` lists repeat `type_ = …`; clippy reads them as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use kube::CustomResource;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

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
}

fn default_min_count() -> u32 {
    1
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
    /// Why: `RegistryUnavailable`, `AuthFailed`, `DigestNotResolvable`, `RateLimited`, …
    pub reason: String,
    /// Detail.
    pub message: String,
    /// Selected pods running it (replicas, not workloads).
    #[serde(default)]
    pub pods: u32,
    /// Workloads running it (bounded to 10).
    pub workloads: Vec<WorkloadRef>,
}
