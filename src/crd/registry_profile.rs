//! The `RegistryProfile` custom resource.
//!
//! The CRD YAML in `crds/` is generated from these types (`refwarden crds`);
//! `tests/crds_drift.rs` fails when the committed files are stale.

// kube's `printcolumn(...)` lists repeat `type_ = …`; clippy reads them as duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};

/// API group of every refwarden resource.
pub const GROUP: &str = "refwarden.dev";
/// API version of every refwarden resource.
pub const VERSION: &str = "v1alpha1";

/// Number of capabilities that make up the probe score.
pub const SCORE_OUT_OF: u32 = 5;

/// A registry that refwarden probes and discovers referrers through.
///
/// Cluster-scoped: one object per registry host.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "refwarden.dev",
    version = "v1alpha1",
    kind = "RegistryProfile",
    plural = "registryprofiles",
    shortname = "regprof",
    status = "RegistryProfileStatus",
    category = "refwarden",
    printcolumn(name = "URL", type_ = "string", json_path = ".spec.registryUrl"),
    printcolumn(
        name = "REFERRERS",
        type_ = "string",
        json_path = ".status.capabilities.referrersApi.state",
        description = "Whether the registry serves the OCI 1.1 referrers API"
    ),
    printcolumn(
        name = "SCORE",
        type_ = "integer",
        json_path = ".status.score",
        description = "Supported capabilities out of 5"
    ),
    printcolumn(
        name = "MODE",
        type_ = "string",
        json_path = ".status.discoveryMode",
        description = "Effective discovery mode"
    ),
    printcolumn(
        name = "READY",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new(
    "!self.registryUrl.startsWith('http://') || (has(self.plainHttp) && self.plainHttp)"
).message("http:// is only allowed together with plainHttp: true").field_path(".registryUrl"))]
#[x_kube(validation = Rule::new(
    "!(has(self.plainHttp) && self.plainHttp) || self.registryUrl.startsWith('http://')"
).message("plainHttp: true requires an http:// registryUrl").field_path(".plainHttp"))]
#[x_kube(validation = Rule::new(
    "!has(self.credentialsProvider) || self.credentialsProvider != 'AwsEcr' || (!has(self.credentialsSecretRef) && self.registryUrl.contains('.dkr.ecr'))"
).message("credentialsProvider AwsEcr needs an ECR registryUrl (<account>.dkr.ecr.<region>.amazonaws.com) and no credentialsSecretRef").field_path(".credentialsProvider"))]
#[x_kube(validation = Rule::new(
    "!(has(self.plainHttp) && self.plainHttp && has(self.caBundle))"
).message("caBundle makes no sense with plainHttp: true").field_path(".caBundle"))]
#[serde(rename_all = "camelCase")]
pub struct RegistryProfileSpec {
    /// Base URL of the registry: `https://host[:port]`, or `http://host[:port]` together with `plainHttp: true`.
    #[schemars(regex(
        pattern = r"^https?://([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?/?$"
    ))]
    pub registry_url: String,

    /// Talk plain HTTP (no TLS). Only for registries on a trusted network; requires an `http://` URL.
    #[serde(default, skip_serializing_if = "is_false")]
    pub plain_http: bool,

    /// Repository of the image the probe resolves (must exist for the referrers verdict).
    #[serde(default = "default_test_repository")]
    #[schemars(
        regex(
            pattern = r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$"
        ),
        length(max = 255)
    )]
    pub test_repository: String,

    /// Tag of the test image.
    #[serde(default = "default_test_tag")]
    #[schemars(regex(pattern = r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$"))]
    pub test_tag: String,

    /// Secret with registry credentials: type `kubernetes.io/dockerconfigjson` or `kubernetes.io/basic-auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret_ref: Option<SecretReference>,

    /// Where credentials come from: `Secret` (credentialsSecretRef, or anonymous without one) or
    /// `AwsEcr` (ECR `GetAuthorizationToken` with the default AWS credential chain — IRSA / pod
    /// identity —, region from the registry host).
    #[serde(default, skip_serializing_if = "CredentialsProvider::is_default")]
    pub credentials_provider: CredentialsProvider,

    /// Extra CA certificates (PEM) to trust for this registry, from a ConfigMap or Secret key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_bundle: Option<CaBundleRef>,

    /// Skip TLS certificate verification. Dangerous; surfaced as a warning condition.
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure_skip_tls_verify: bool,

    /// How referrers are discovered on this registry.
    #[serde(default)]
    pub discovery: DiscoverySpec,

    /// How and how often the registry is probed.
    #[serde(default)]
    pub probe: ProbeSpec,

    /// Timeout of one registry request, in seconds.
    #[serde(default = "default_timeout_seconds")]
    #[schemars(range(min = 1, max = 300))]
    pub timeout_seconds: u32,

    /// Client-side rate limit for requests to this registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitSpec>,

    /// The registry's retention, cleanup and garbage-collection configuration, checked for rules
    /// that delete, orphan, count or hide referrers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<super::LifecycleSpec>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Default of `spec.testRepository`.
pub fn default_test_repository() -> String {
    "library/alpine".to_string()
}

/// Default of `spec.testTag`.
pub fn default_test_tag() -> String {
    "latest".to_string()
}

fn default_timeout_seconds() -> u32 {
    30
}

/// Reference to a Secret in a namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretReference {
    /// Namespace of the Secret.
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        length(min = 1, max = 63)
    )]
    pub namespace: String,
    /// Name of the Secret.
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
        length(min = 1, max = 253)
    )]
    pub name: String,
}

/// Source of registry credentials.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema,
)]
pub enum CredentialsProvider {
    /// `credentialsSecretRef` (anonymous without one).
    #[default]
    Secret,
    /// Amazon ECR `GetAuthorizationToken` with the default AWS credential chain.
    AwsEcr,
}

impl CredentialsProvider {
    fn is_default(&self) -> bool {
        *self == Self::Secret
    }
}

/// A key of a ConfigMap or Secret holding PEM certificates. Exactly one of the two refs.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[x_kube(validation = Rule::new("has(self.configMapRef) != has(self.secretRef)")
    .message("set exactly one of configMapRef or secretRef"))]
#[serde(rename_all = "camelCase")]
pub struct CaBundleRef {
    /// A ConfigMap key holding the PEM bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<KeyReference>,
    /// A Secret key holding the PEM bundle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<KeyReference>,
}

/// A key in a namespaced ConfigMap or Secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyReference {
    /// Namespace of the object.
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"),
        length(min = 1, max = 63)
    )]
    pub namespace: String,
    /// Name of the object.
    #[schemars(
        regex(pattern = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"),
        length(min = 1, max = 253)
    )]
    pub name: String,
    /// Key within the object's data.
    #[schemars(regex(pattern = r"^[-._a-zA-Z0-9]+$"), length(min = 1, max = 253))]
    pub key: String,
}

/// Discovery settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DiscoverySpec {
    /// `Auto` (probe and fall back), `Native` (referrers API only) or `TagFallback` (tag schema and cosign tags only).
    #[serde(default)]
    pub mode: DiscoveryMode,
}

/// Requested discovery mode.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema,
)]
pub enum DiscoveryMode {
    /// Use the referrers API when the registry has it, else the tag fallbacks.
    #[default]
    Auto,
    /// Always use the referrers API.
    Native,
    /// Always use the tag fallbacks (OCI tag schema, cosign tags).
    TagFallback,
}

/// Discovery mode in effect for a registry.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, schemars::JsonSchema)]
pub enum EffectiveDiscoveryMode {
    /// The OCI 1.1 referrers API.
    Native,
    /// The OCI referrers tag schema and cosign tags.
    TagFallback,
}

/// Probe settings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProbeSpec {
    /// How often the registry is probed again (Go duration, e.g. `1h`, `30m`).
    #[serde(default = "default_probe_interval")]
    #[schemars(regex(pattern = r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$"))]
    pub interval: String,
    /// Run the probes that write (blob upload session, cross-repository mount). When false they are reported Unknown.
    #[serde(default = "default_true")]
    pub write_probes: bool,
    /// Repository where write probes act. Default: `<testRepository>-refwarden-probe`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(
        regex(
            pattern = r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$"
        ),
        length(max = 255)
    )]
    pub scratch_repository: Option<String>,
}

impl Default for ProbeSpec {
    fn default() -> Self {
        Self {
            interval: default_probe_interval(),
            write_probes: true,
            scratch_repository: None,
        }
    }
}

fn default_probe_interval() -> String {
    "1h".to_string()
}

fn default_true() -> bool {
    true
}

/// Client-side rate limit.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitSpec {
    /// Sustained requests per second.
    #[schemars(range(min = 1, max = 10000))]
    pub requests_per_second: u32,
    /// Burst size.
    #[schemars(range(min = 1, max = 10000))]
    pub burst: u32,
}

/// Observed state of a RegistryProfile, written by the controller (and printed by `refwarden probe -o json`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegistryProfileStatus {
    /// Generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Conditions: Ready, Reconciling, Stalled (kstatus), Reachable, ReferrersApiSupported.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// Value of the `OCI-Distribution-API-Version` or `Docker-Distribution-API-Version` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution_api_version: Option<String>,
    /// Digest the test image resolved to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_digest: Option<String>,
    /// Probed capabilities.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Number of supported capabilities (distribution version, referrers API, chunked upload, cross-repo mount, delete).
    #[serde(default)]
    pub score: u32,
    /// Maximum score.
    #[serde(default)]
    pub score_out_of: u32,
    /// Discovery mode in effect. Absent when the probe could not decide (discovery then detects per request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_mode: Option<EffectiveDiscoveryMode>,
    /// When the registry was last probed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<Time>,
    /// Lifecycle rules that delete, orphan, count or hide referrers (from `spec.lifecycle`).
    #[serde(default)]
    pub lifecycle_findings: Vec<super::LifecycleFinding>,
}

/// Capability verdicts of one probe.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// `GET /v2/<name>/referrers/<digest>` (OCI Distribution 1.1).
    #[serde(default)]
    pub referrers_api: Capability,
    /// The referrers API applies `?artifactType=` (answers `OCI-Filters-Applied: artifactType`).
    #[serde(default)]
    pub artifact_type_filter: Capability,
    /// Chunked blob upload sessions.
    #[serde(default)]
    pub chunked_upload: Capability,
    /// Cross-repository blob mount.
    #[serde(default)]
    pub cross_repo_mount: Capability,
    /// `DELETE` of manifests.
    #[serde(default)]
    pub delete_manifests: Capability,
    /// `DELETE` of blobs.
    #[serde(default)]
    pub delete_blobs: Capability,
}

/// One capability verdict.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct Capability {
    /// Supported, Unsupported or Unknown.
    pub state: CapabilityState,
    /// Machine-readable reason (CamelCase), e.g. `IndexReturned`, `NotFound`, `InsufficientPermissions`.
    pub reason: String,
    /// HTTP status of the answer the verdict rests on, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Capability {
    /// A Supported verdict.
    pub fn supported(reason: &str, http_status: Option<u16>, message: impl Into<String>) -> Self {
        Self::new(CapabilityState::Supported, reason, http_status, message)
    }
    /// An Unsupported verdict.
    pub fn unsupported(reason: &str, http_status: Option<u16>, message: impl Into<String>) -> Self {
        Self::new(CapabilityState::Unsupported, reason, http_status, message)
    }
    /// An Unknown verdict.
    pub fn unknown(reason: &str, http_status: Option<u16>, message: impl Into<String>) -> Self {
        Self::new(CapabilityState::Unknown, reason, http_status, message)
    }
    fn new(
        state: CapabilityState,
        reason: &str,
        http_status: Option<u16>,
        message: impl Into<String>,
    ) -> Self {
        let message = message.into();
        Self {
            state,
            reason: reason.to_string(),
            http_status,
            message: if message.is_empty() {
                None
            } else {
                Some(message)
            },
        }
    }
    /// Whether the verdict is Supported.
    pub fn is_supported(&self) -> bool {
        self.state == CapabilityState::Supported
    }
}

/// State of one capability.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, schemars::JsonSchema,
)]
pub enum CapabilityState {
    /// The registry has it.
    Supported,
    /// The registry answered that it does not have it.
    Unsupported,
    /// The probe could not tell (no permission, test image missing, registry error, probe skipped).
    #[default]
    Unknown,
}

impl std::fmt::Display for CapabilityState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Supported => "Supported",
            Self::Unsupported => "Unsupported",
            Self::Unknown => "Unknown",
        })
    }
}

impl std::fmt::Display for EffectiveDiscoveryMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Native => "Native",
            Self::TagFallback => "TagFallback",
        })
    }
}
