//! `RegistryProfile.spec.lifecycle` (the registry's retention / cleanup / GC
//! configuration, per registry family) and `status.lifecycleFindings`.
//!
//! The analysis lives in `crate::lifecycle`; these are only the types that
//! appear in the custom resource. Field names follow each vendor's own spelling
//! (camelCase in the CRD; the vendor's snake_case spelling is accepted as an
//! alias so API output can be pasted as is).

use std::collections::BTreeMap;

use kube::KubeSchema;
use serde::{Deserialize, Serialize};

use super::KeyReference;

/// Lifecycle, retention and garbage-collection configuration of the registry, one block per family.
/// refwarden reports which rules would delete, orphan, count or hide referrers.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleSpec {
    /// Amazon ECR lifecycle policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecr: Option<EcrLifecycleSpec>,
    /// CNCF distribution (registry:2 / v3) garbage collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<DistributionLifecycleSpec>,
    /// Harbor tag retention and garbage collection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub harbor: Option<HarborLifecycleSpec>,
    /// Google Artifact Registry cleanup policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gar: Option<GarLifecycleSpec>,
    /// Azure Container Registry retention and `acr purge` tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<AcrLifecycleSpec>,
    /// GitLab container registry cleanup policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gitlab: Option<GitlabCleanupPolicy>,
    /// Quay auto-prune policies and tag expiration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quay: Option<QuayLifecycleSpec>,
}

/// Where an ECR lifecycle policy comes from. Exactly one of `inline`, `configMapKeyRef`, `awsApi`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[x_kube(validation = Rule::new(
    "(has(self.inline) ? 1 : 0) + (has(self.configMapKeyRef) ? 1 : 0) + ((has(self.awsApi) && self.awsApi) ? 1 : 0) == 1"
).message("spec.lifecycle.ecr: set exactly one of inline, configMapKeyRef or awsApi: true"))]
#[serde(rename_all = "camelCase")]
pub struct EcrLifecycleSpec {
    /// The lifecycle policy JSON (`{"rules":[...]}`), as `aws ecr put-lifecycle-policy` takes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
    /// A ConfigMap key holding the lifecycle policy JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_key_ref: Option<KeyReference>,
    /// Read the policy of each repository in `repositories` with `GetLifecyclePolicy` (default AWS
    /// credential chain: IRSA / EKS pod identity; region from the registry host).
    #[serde(default, skip_serializing_if = "is_false")]
    pub aws_api: bool,
    /// Repositories whose policies and images are read through the AWS API.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<String>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Garbage collection of a CNCF distribution registry (`registry garbage-collect`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DistributionLifecycleSpec {
    /// Registry version, e.g. `2.8.3` or `3.0.0`. 2.x also deletes the children of tagged indexes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The garbage collection run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub garbage_collection: Option<DistributionGc>,
}

/// `registry garbage-collect` options.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct DistributionGc {
    /// `--delete-untagged` (`-m`): delete manifests no tag references.
    #[serde(default, alias = "delete_untagged")]
    pub delete_untagged: bool,
}

/// Harbor tag retention policy and GC settings of a project.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HarborLifecycleSpec {
    /// The project's retention policy (`GET /api/v2.0/retentions/{id}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<HarborRetentionPolicy>,
    /// Garbage collection job parameters (`GET /api/v2.0/system/gc/schedule`, `job_parameters`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gc: Option<HarborGc>,
}

/// Harbor `RetentionPolicy`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HarborRetentionPolicy {
    /// Rules (combined with OR: what no rule retains is deleted).
    #[serde(default)]
    pub rules: Vec<HarborRetentionRule>,
}

/// Harbor `RetentionRule`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HarborRetentionRule {
    /// Disabled rules are ignored.
    #[serde(default)]
    pub disabled: bool,
    /// Always `retain`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Template: `latestPushedK`, `latestPulledN`, `nDaysSinceLastPush`, `nDaysSinceLastPull`, `always`, …
    pub template: String,
    /// Template parameters, e.g. `{"latestPushedK": 10}`.
    #[serde(default)]
    pub params: BTreeMap<String, i64>,
    /// Tag selectors (`doublestar`, `matches`|`excludes`).
    #[serde(default, alias = "tag_selectors")]
    pub tag_selectors: Vec<HarborSelector>,
}

/// Harbor `RetentionSelector`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HarborSelector {
    /// `doublestar`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `matches` or `excludes`.
    pub decoration: String,
    /// Doublestar pattern, e.g. `**`, `v*`, `{latest,prod}`.
    pub pattern: String,
    /// JSON string, e.g. `{"untagged":true}`. Absent means untagged artifacts are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extras: Option<String>,
}

/// Harbor GC job parameters.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct HarborGc {
    /// "Allow garbage collection on untagged artifacts".
    #[serde(default, alias = "delete_untagged")]
    pub delete_untagged: bool,
}

/// Google Artifact Registry cleanup policies of a repository.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GarLifecycleSpec {
    /// The policies, as the gcloud policy file (`--policy=FILE`) holds them.
    #[serde(default)]
    pub policies: Vec<GarCleanupPolicy>,
    /// `cleanupPolicyDryRun`: policies are evaluated but nothing is deleted.
    #[serde(default)]
    pub dry_run: bool,
}

/// One GAR cleanup policy (gcloud JSON form).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GarCleanupPolicy {
    /// Policy name (id).
    pub name: String,
    /// `{"type": "Delete"|"Keep"}`.
    pub action: GarAction,
    /// Condition (Delete or conditional Keep).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<GarCondition>,
    /// Keep the most recent versions (Keep only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub most_recent_versions: Option<GarMostRecentVersions>,
}

/// GAR policy action.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
pub struct GarAction {
    /// `Delete` or `Keep` (case-insensitive).
    #[serde(rename = "type")]
    pub type_: String,
}

/// GAR `CleanupPolicyCondition`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GarCondition {
    /// `tagged`, `untagged` or `any` (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag_state: Option<String>,
    /// Tag prefixes (any one matches).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag_prefixes: Vec<String>,
    /// Version name prefixes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub version_name_prefixes: Vec<String>,
    /// Package name prefixes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub package_name_prefixes: Vec<String>,
    /// Age, e.g. `30d` or `2592000s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub older_than: Option<String>,
    /// Age, e.g. `7d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newer_than: Option<String>,
}

/// GAR `CleanupPolicyMostRecentVersions`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GarMostRecentVersions {
    /// Package name prefixes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub package_name_prefixes: Vec<String>,
    /// Versions kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_count: Option<i64>,
}

/// Azure Container Registry retention and purge.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcrLifecycleSpec {
    /// Retention policy for untagged manifests (`az acr config retention`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_policy: Option<AcrRetentionPolicy>,
    /// Scheduled `acr purge` tasks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub purge: Vec<AcrPurge>,
}

/// ACR `retentionPolicy`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcrRetentionPolicy {
    /// `enabled` or `disabled`.
    pub status: String,
    /// Days (0–365) before an untagged manifest is deleted.
    #[serde(default = "default_acr_days")]
    pub days: i64,
}

fn default_acr_days() -> i64 {
    7
}

/// One `acr purge` invocation: either `command` (the command line) or the structured flags.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct AcrPurge {
    /// The whole command, e.g. `acr purge --filter 'app:.*' --ago 30d --untagged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// `--filter repo:tagRegex` values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<String>,
    /// `--ago` duration, e.g. `30d`, `0d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ago: Option<String>,
    /// `--untagged`.
    #[serde(default)]
    pub untagged: bool,
    /// `--untagged-only`.
    #[serde(default)]
    pub untagged_only: bool,
    /// `--keep N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<i64>,
    /// acr-cli version (untagged referrers are skipped from 0.8 on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr_cli_version: Option<String>,
}

/// GitLab `container_expiration_policy_attributes`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitlabCleanupPolicy {
    /// Whether the policy runs.
    #[serde(default)]
    pub enabled: bool,
    /// `1d`, `7d`, `14d`, `1month`, `3month`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cadence: Option<String>,
    /// Tags kept per image name: 1, 5, 10, 25, 50, 100.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "keep_n")]
    pub keep_n: Option<i64>,
    /// `7d`, `14d`, `30d`, `90d`.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "older_than")]
    pub older_than: Option<String>,
    /// RE2 regex of tags to delete (anchored).
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "name_regex")]
    pub name_regex: Option<String>,
    /// RE2 regex of tags to keep (anchored).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "name_regex_keep"
    )]
    pub name_regex_keep: Option<String>,
}

/// Quay auto-prune policies and tag expiration.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuayLifecycleSpec {
    /// Quay version, e.g. `3.15.2`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The Quay build excludes cosign tags from auto-prune (fix PROJQUAY-11682; in no release tag yet).
    #[serde(default)]
    pub cosign_prune_fix: bool,
    /// Auto-prune policies (organisation, repository or registry default).
    #[serde(default, skip_serializing_if = "Vec::is_empty", alias = "auto_prune")]
    pub auto_prune: Vec<QuayAutoPrunePolicy>,
    /// Tags expire (expiration dates, `quay.expires-after` labels or annotations).
    #[serde(default)]
    pub tag_expiration: bool,
}

/// Quay auto-prune policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuayAutoPrunePolicy {
    /// `number_of_tags` or `creation_date`.
    pub method: String,
    /// Number of tags kept, or an age such as `30d`.
    pub value: k8s_openapi::apimachinery::pkg::util::intstr::IntOrString,
    /// Regex of tags the policy applies to (or not, see `tagPatternMatches`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        alias = "tag_pattern"
    )]
    pub tag_pattern: Option<String>,
    /// true: prune tags that match `tagPattern`; false: prune tags that do not.
    #[serde(default = "default_true", alias = "tag_pattern_matches")]
    pub tag_pattern_matches: bool,
}

fn default_true() -> bool {
    true
}

/// One risk found in a registry's lifecycle configuration.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleFinding {
    /// Registry family the rule belongs to.
    pub registry_family: RegistryFamily,
    /// The rule, as the user knows it (ECR `rulePriority 10`, GitLab `name_regex`, Harbor `rules[2]`, …).
    pub rule: String,
    /// What happens to referrers.
    pub kind: FindingKind,
    /// High when deployed images can lose required referrers.
    pub severity: Severity,
    /// How sure the vendor's documentation makes us.
    pub confidence: Confidence,
    /// What happens and why.
    pub message: String,
    /// A concrete change that removes the risk.
    pub fix: String,
}

/// Registry family.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    schemars::JsonSchema,
)]
pub enum RegistryFamily {
    /// Amazon ECR.
    #[serde(rename = "ECR")]
    Ecr,
    /// CNCF distribution.
    Distribution,
    /// Harbor.
    Harbor,
    /// Google Artifact Registry.
    #[serde(rename = "GAR")]
    Gar,
    /// Azure Container Registry.
    #[serde(rename = "ACR")]
    Acr,
    /// GitLab container registry.
    GitLab,
    /// Quay.
    Quay,
}

/// Kind of a lifecycle finding.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    schemars::JsonSchema,
)]
pub enum FindingKind {
    /// A referrer is removed while its subject stays.
    DeletesReferrers,
    /// The subject is removed and its referrers are left behind.
    OrphansReferrers,
    /// Referrers are counted as images, so count-based rules keep fewer real images.
    CountsReferrers,
    /// Referrers are archived, so the referrers API no longer lists them.
    HidesReferrers,
    /// The policy is invalid (the registry rejects it).
    InvalidPolicy,
}

/// Severity of a finding (ordered: Low < Medium < High).
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    schemars::JsonSchema,
)]
pub enum Severity {
    /// Clutter or cost; no verification breaks.
    Low,
    /// Policies act differently from what they say.
    Medium,
    /// Deployed images can lose required referrers.
    High,
}

/// How well the behaviour behind a finding is established.
#[derive(
    Serialize,
    Deserialize,
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    schemars::JsonSchema,
)]
pub enum Confidence {
    /// The vendor documents it (or its grammar implies it directly).
    Documented,
    /// Users report it; the vendor has not confirmed it.
    Reported,
    /// Inferred from source code or from the rule semantics; not documented.
    Inferred,
}

macro_rules! display_as_serde {
    ($($t:ty),*) => {$(
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match serde_json::to_value(self) {
                    Ok(serde_json::Value::String(s)) => f.write_str(&s),
                    _ => write!(f, "{self:?}"),
                }
            }
        }
    )*};
}
display_as_serde!(RegistryFamily, FindingKind, Severity, Confidence);
