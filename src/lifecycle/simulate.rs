//! ECR lifecycle simulation over a `describe-images` inventory.
//!
//! As ECR documents it (lifecycle-gc.md §1.2): every rule is evaluated, then
//! applied by priority; each image is acted on by at most one rule, the first
//! (lowest `rulePriority`) whose tagging requirements it matches in its storage
//! class; count rules sort the images they match newest first (push time, or
//! `lastActivatedAt` after a restore) and act on those after the Nth, counting
//! images a higher rule shields. Referrers (`subjectManifestDigest`) follow an
//! expired or archived subject within 24 h (documented). Legacy cosign and
//! fallback tags do not: they are orphaned.
//!
//! Not modelled: the 24 h delay itself (eligibility times are reported), and
//! images held by a manifest list (DescribeImages does not say which).

use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::ecr::{ActionType, CountType, EcrPolicy, StorageClass, rule_label};
use super::model::{ReferrerShape, finding};
use crate::crd::{Confidence, FindingKind, LifecycleFinding, RegistryFamily, Severity};

/// `imageStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageStatus {
    #[serde(rename = "ACTIVE")]
    Active,
    #[serde(rename = "ARCHIVED")]
    Archived,
    #[serde(rename = "ACTIVATING")]
    Activating,
}

/// One `ImageDetail` of DescribeImages, the fields the simulation needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryImage {
    pub image_digest: String,
    #[serde(default)]
    pub image_tags: Vec<String>,
    pub image_pushed_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_recorded_pull_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_manifest_digest: Option<String>,
    #[serde(default = "active")]
    pub image_status: ImageStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_archived_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activated_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_media_type: Option<String>,
}

fn active() -> ImageStatus {
    ImageStatus::Active
}

/// A malformed inventory file.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InventoryError {
    /// JSON path of the offending field, e.g. `imageDetails[3].imagePushedAt`.
    pub field: String,
    pub message: String,
}

fn parse_time(v: &Value) -> Option<Timestamp> {
    match v {
        Value::Number(n) => {
            let secs = n.as_f64()?;
            let nanos = (secs.fract() * 1e9).round() as i32;
            Timestamp::new(secs.trunc() as i64, nanos).ok()
        }
        Value::String(s) => s.parse::<Timestamp>().ok(),
        _ => None,
    }
}

/// Parses `aws ecr describe-images` output (`{"imageDetails":[...]}` or a bare array).
/// Times may be ISO 8601 strings (AWS CLI v2) or epoch seconds (CLI v1, boto3 JSON dumps).
pub fn parse_describe_images(text: &str) -> Result<Vec<InventoryImage>, InventoryError> {
    let v: Value = serde_json::from_str(text).map_err(|e| InventoryError {
        field: "<root>".into(),
        message: format!("not JSON: {e}"),
    })?;
    let (items, base) = match &v {
        Value::Array(a) => (a, ""),
        Value::Object(o) => match o.get("imageDetails").and_then(Value::as_array) {
            Some(a) => (a, "imageDetails"),
            None => {
                return Err(InventoryError {
                    field: "imageDetails".into(),
                    message: "missing (expected describe-images output)".into(),
                });
            }
        },
        _ => {
            return Err(InventoryError {
                field: "<root>".into(),
                message: "expected {\"imageDetails\": [...]}".into(),
            });
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("{base}[{i}]");
        let err = |f: &str, m: &str| InventoryError {
            field: format!("{path}.{f}"),
            message: m.to_string(),
        };
        let o = item.as_object().ok_or_else(|| InventoryError {
            field: path.clone(),
            message: "not an object".into(),
        })?;
        let digest = o
            .get("imageDigest")
            .and_then(Value::as_str)
            .ok_or_else(|| err("imageDigest", "missing or not a string"))?;
        let tags = match o.get("imageTags") {
            None | Some(Value::Null) => Vec::new(),
            Some(t) => t
                .as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|x| x.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                })
                .ok_or_else(|| err("imageTags", "not an array of strings"))?,
        };
        let time = |f: &str| -> Result<Option<Timestamp>, InventoryError> {
            match o.get(f) {
                None | Some(Value::Null) => Ok(None),
                Some(t) => parse_time(t)
                    .map(Some)
                    .ok_or_else(|| err(f, "not a timestamp (ISO 8601 or epoch seconds)")),
            }
        };
        let pushed = time("imagePushedAt")?.ok_or_else(|| err("imagePushedAt", "missing"))?;
        let status = match o.get("imageStatus").and_then(Value::as_str) {
            None => ImageStatus::Active,
            Some("ACTIVE") => ImageStatus::Active,
            Some("ARCHIVED") => ImageStatus::Archived,
            Some("ACTIVATING") => ImageStatus::Activating,
            Some(_) => return Err(err("imageStatus", "not ACTIVE, ARCHIVED or ACTIVATING")),
        };
        out.push(InventoryImage {
            image_digest: digest.to_string(),
            image_tags: tags,
            image_pushed_at: pushed,
            last_recorded_pull_time: time("lastRecordedPullTime")?,
            subject_manifest_digest: o
                .get("subjectManifestDigest")
                .and_then(Value::as_str)
                .map(str::to_string),
            image_status: status,
            last_archived_at: time("lastArchivedAt")?,
            last_activated_at: time("lastActivatedAt")?,
            artifact_media_type: o
                .get("artifactMediaType")
                .and_then(Value::as_str)
                .map(str::to_string),
        });
    }
    Ok(out)
}

/// What happens to an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SimAction {
    Expire,
    Transition,
}

/// Why an image is acted on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Cause {
    /// A rule selects it.
    Rule { rule_priority: i64 },
    /// Its subject is expired (ECR expires referrers within 24 h).
    SubjectExpired { subject: String, rule_priority: i64 },
    /// Its subject is archived (ECR archives referrers within 24 h).
    SubjectArchived { subject: String, rule_priority: i64 },
}

impl Cause {
    /// The rule behind the action.
    pub fn rule_priority(&self) -> i64 {
        match self {
            Cause::Rule { rule_priority }
            | Cause::SubjectExpired { rule_priority, .. }
            | Cause::SubjectArchived { rule_priority, .. } => *rule_priority,
        }
    }
}

/// One image the policy acts on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageAction {
    pub digest: String,
    pub tags: Vec<String>,
    pub action: SimAction,
    pub cause: Cause,
    /// When the image met the rule's criterion (ECR acts within 24 h after).
    pub eligible_from: Timestamp,
}

/// A referrer of a deployed image that the policy removes or archives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Exposure {
    /// The deployed digest.
    pub subject: String,
    pub referrer_digest: String,
    pub referrer_tags: Vec<String>,
    /// `OCI 1.1` (subjectManifestDigest), `fallback index`, `cosign .sig` …
    pub referrer_kind: String,
    pub action: SimAction,
    pub cause: Cause,
    pub eligible_from: Timestamp,
}

/// A referrer tag left behind by the expiry of its subject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Orphan {
    pub subject: String,
    pub referrer_digest: String,
    pub tag: String,
    /// The rule that expires the subject.
    pub rule_priority: i64,
}

/// Result of a simulation.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimulationReport {
    /// Every image acted on, oldest eligibility first.
    pub actions: Vec<ImageAction>,
    /// Referrers of deployed digests that are expired or archived.
    pub exposures: Vec<Exposure>,
    /// Deployed digests that are themselves expired or archived.
    pub deployed_subjects: Vec<ImageAction>,
    /// Referrer tags whose subject is expired while they stay.
    pub orphans: Vec<Orphan>,
}

const DAY: i64 = 86_400;

fn add_days(t: Timestamp, days: i64) -> Timestamp {
    t.checked_add(SignedDuration::from_secs(days.saturating_mul(DAY)))
        .unwrap_or(Timestamp::MAX)
}

fn normalize(d: &str) -> String {
    d.trim().to_ascii_lowercase()
}

fn referrer_kind(img: &InventoryImage) -> String {
    if img.subject_manifest_digest.is_some() {
        return "OCI 1.1".into();
    }
    for t in &img.image_tags {
        if let Some((shape, _)) = ReferrerShape::of_tag(t) {
            return match shape {
                ReferrerShape::FallbackIndex => "fallback index",
                ReferrerShape::CosignSig => "cosign .sig",
                ReferrerShape::CosignAtt => "cosign .att",
                ReferrerShape::CosignSbom => "cosign .sbom",
                ReferrerShape::Oci11 => "OCI 1.1",
            }
            .into();
        }
    }
    "image".into()
}

/// Subjects an image refers to: its `subjectManifestDigest` and the digests named by referrer tags.
fn subjects_of(img: &InventoryImage) -> Vec<String> {
    let mut s: Vec<String> = img
        .subject_manifest_digest
        .iter()
        .map(|d| normalize(d))
        .collect();
    for t in &img.image_tags {
        if let Some((_, d)) = ReferrerShape::of_tag(t)
            && !s.contains(&d)
        {
            s.push(d);
        }
    }
    s
}

/// Runs the policy over the inventory at `now`. `deployed` are digests (`sha256:<hex>`).
pub fn simulate(
    policy: &EcrPolicy,
    images: &[InventoryImage],
    deployed: &[String],
    now: Timestamp,
) -> SimulationReport {
    let class_of = |img: &InventoryImage| match img.image_status {
        ImageStatus::Active => Some(StorageClass::Standard),
        ImageStatus::Archived => Some(StorageClass::Archive),
        ImageStatus::Activating => None,
    };
    // Owner rule of each image: the first rule (by priority) of its storage class whose
    // tagging requirements it meets.
    let owner: Vec<Option<i64>> = images
        .iter()
        .map(|img| {
            let class = class_of(img)?;
            policy
                .rules
                .iter()
                .find(|r| r.storage_class == class && r.matches_tags(&img.image_tags))
                .map(|r| r.priority)
        })
        .collect();
    let mut direct: BTreeMap<usize, ImageAction> = BTreeMap::new();
    for rule in &policy.rules {
        let candidates: Vec<usize> = (0..images.len())
            .filter(|&i| {
                class_of(&images[i]) == Some(rule.storage_class)
                    && rule.matches_tags(&images[i].image_tags)
            })
            .collect();
        let age_base = |img: &InventoryImage| img.last_activated_at.unwrap_or(img.image_pushed_at);
        let mut selected: Vec<(usize, Timestamp)> = Vec::new();
        let n = rule.count_number;
        match rule.count_type {
            CountType::ImageCountMoreThan => {
                let mut sorted = candidates.clone();
                sorted.sort_by(|a, b| {
                    age_base(&images[*b])
                        .cmp(&age_base(&images[*a]))
                        .then_with(|| images[*a].image_digest.cmp(&images[*b].image_digest))
                });
                let keep = usize::try_from(n).unwrap_or(usize::MAX);
                for (pos, &i) in sorted.iter().enumerate().skip(keep) {
                    // It fell beyond the newest N when the Nth newer image was pushed.
                    let pushed_out_by = sorted[pos - keep];
                    selected.push((i, age_base(&images[pushed_out_by])));
                }
            }
            CountType::SinceImagePushed => {
                for &i in &candidates {
                    let t = add_days(age_base(&images[i]), n);
                    if t <= now {
                        selected.push((i, t));
                    }
                }
            }
            CountType::SinceImagePulled => {
                for &i in &candidates {
                    let img = &images[i];
                    let base = match (img.last_recorded_pull_time, img.last_activated_at) {
                        (Some(p), Some(a)) => p.max(a),
                        (Some(p), None) => p,
                        (None, Some(a)) => a,
                        (None, None) => img.image_pushed_at,
                    };
                    let t = add_days(base, n);
                    if t <= now {
                        selected.push((i, t));
                    }
                }
            }
            CountType::SinceImageTransitioned => {
                for &i in &candidates {
                    if let Some(a) = images[i].last_archived_at {
                        let t = add_days(a, n);
                        if t <= now {
                            selected.push((i, t));
                        }
                    }
                }
            }
        }
        for (i, mut t) in selected {
            if owner[i] != Some(rule.priority) {
                continue; // shielded by a higher-priority rule
            }
            // Archived images cannot be lifecycle-deleted before 90 days in archive.
            if rule.storage_class == StorageClass::Archive
                && let Some(a) = images[i].last_archived_at
            {
                t = t.max(add_days(a, 90));
                if t > now {
                    continue;
                }
            }
            direct.insert(
                i,
                ImageAction {
                    digest: images[i].image_digest.clone(),
                    tags: images[i].image_tags.clone(),
                    action: match rule.action {
                        ActionType::Expire => SimAction::Expire,
                        ActionType::Transition => SimAction::Transition,
                    },
                    cause: Cause::Rule {
                        rule_priority: rule.priority,
                    },
                    eligible_from: t,
                },
            );
        }
    }
    // Cascade: OCI 1.1 referrers follow their subject.
    let by_digest: HashMap<String, usize> = images
        .iter()
        .enumerate()
        .map(|(i, img)| (normalize(&img.image_digest), i))
        .collect();
    let mut all = direct.clone();
    for (i, img) in images.iter().enumerate() {
        if all.contains_key(&i) {
            continue;
        }
        let Some(subject) = img.subject_manifest_digest.as_deref().map(normalize) else {
            continue;
        };
        let Some(sa) = by_digest.get(&subject).and_then(|s| direct.get(s)) else {
            continue;
        };
        let rule_priority = sa.cause.rule_priority();
        let (action, cause) = match sa.action {
            SimAction::Expire => (
                SimAction::Expire,
                Cause::SubjectExpired {
                    subject: subject.clone(),
                    rule_priority,
                },
            ),
            SimAction::Transition => (
                SimAction::Transition,
                Cause::SubjectArchived {
                    subject: subject.clone(),
                    rule_priority,
                },
            ),
        };
        all.insert(
            i,
            ImageAction {
                digest: img.image_digest.clone(),
                tags: img.image_tags.clone(),
                action,
                cause,
                eligible_from: sa.eligible_from,
            },
        );
    }
    let deployed: Vec<String> = deployed.iter().map(|d| normalize(d)).collect();
    let mut report = SimulationReport::default();
    for (i, a) in &all {
        let img = &images[*i];
        if deployed.contains(&normalize(&img.image_digest)) {
            report.deployed_subjects.push(a.clone());
        }
        for s in subjects_of(img) {
            if deployed.contains(&s) {
                report.exposures.push(Exposure {
                    subject: s,
                    referrer_digest: img.image_digest.clone(),
                    referrer_tags: img.image_tags.clone(),
                    referrer_kind: referrer_kind(img),
                    action: a.action,
                    cause: a.cause.clone(),
                    eligible_from: a.eligible_from,
                });
            }
        }
    }
    // Orphans: referrer tags of an expired subject that nothing removes.
    for (i, img) in images.iter().enumerate() {
        if all.contains_key(&i) {
            continue;
        }
        for t in &img.image_tags {
            if let Some((_, subject)) = ReferrerShape::of_tag(t)
                && let Some(sa) = by_digest.get(&subject).and_then(|s| all.get(s))
                && sa.action == SimAction::Expire
            {
                report.orphans.push(Orphan {
                    subject: subject.clone(),
                    referrer_digest: img.image_digest.clone(),
                    tag: t.clone(),
                    rule_priority: sa.cause.rule_priority(),
                });
            }
        }
    }
    report.actions = all.into_values().collect();
    report.actions.sort_by(|a, b| {
        a.eligible_from
            .cmp(&b.eligible_from)
            .then(a.digest.cmp(&b.digest))
    });
    report.exposures.sort_by(|a, b| {
        a.eligible_from
            .cmp(&b.eligible_from)
            .then(a.referrer_digest.cmp(&b.referrer_digest))
    });
    report
}

fn short(d: &str) -> String {
    let hex = d.split_once(':').map(|x| x.1).unwrap_or(d);
    format!("sha256:{}", &hex[..hex.len().min(12)])
}

/// Findings from a simulation: referrers of deployed images removed or archived while the
/// subject stays (grouped per rule), and referrer tags orphaned by expired subjects.
pub fn simulation_findings(
    report: &SimulationReport,
    context: Option<&str>,
) -> Vec<LifecycleFinding> {
    let prefix = context.map(|c| format!("{c}: ")).unwrap_or_default();
    let mut out = Vec::new();
    let mut groups: BTreeMap<(i64, bool), Vec<&Exposure>> = BTreeMap::new();
    for e in &report.exposures {
        if let Cause::Rule { rule_priority } = e.cause {
            groups
                .entry((rule_priority, e.action == SimAction::Expire))
                .or_default()
                .push(e);
        }
    }
    for ((p, expire), list) in groups {
        let items: Vec<String> = list
            .iter()
            .map(|e| {
                format!(
                    "{} ({}{}) of {} from {}",
                    short(&e.referrer_digest),
                    e.referrer_kind,
                    if e.referrer_tags.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", e.referrer_tags.join(","))
                    },
                    short(&e.subject),
                    e.eligible_from
                )
            })
            .collect();
        let only_oci = list.iter().all(|e| e.referrer_kind == "OCI 1.1");
        out.push(finding(
            RegistryFamily::Ecr,
            rule_label(p),
            if expire {
                FindingKind::DeletesReferrers
            } else {
                FindingKind::HidesReferrers
            },
            Severity::High,
            if only_oci {
                Confidence::Reported
            } else {
                Confidence::Inferred
            },
            format!(
                "{prefix}rule {p} would {} {} referrer(s) of deployed images while the images stay (ECR acts within 24 h of the time given): {}",
                if expire { "expire" } else { "archive" },
                list.len(),
                items.join("; ")
            ),
            "Shield the referrer tags with a higher-priority rule matching sha256-* (see the static finding for this rule), or change the rule so its criterion is not met by referrers of running images.",
        ));
    }
    let mut orphan_groups: BTreeMap<i64, Vec<&Orphan>> = BTreeMap::new();
    for o in &report.orphans {
        orphan_groups.entry(o.rule_priority).or_default().push(o);
    }
    for (p, list) in orphan_groups {
        let tags: Vec<&str> = list.iter().take(5).map(|o| o.tag.as_str()).collect();
        out.push(finding(
            RegistryFamily::Ecr,
            rule_label(p),
            FindingKind::OrphansReferrers,
            Severity::Low,
            Confidence::Inferred,
            format!(
                "{prefix}rule {p} expires subjects whose fallback/cosign referrer tags stay behind ({} tag(s), e.g. {}); ECR only cleans up OCI 1.1 referrers (subjectManifestDigest) after their subject.",
                list.len(),
                tags.join(", ")
            ),
            "Delete sha256-<hex>* tags together with their subject (e.g. `aws ecr batch-delete-image --image-ids imageTag=sha256-<hex>.sig`), or sign with OCI 1.1 referrers (cosign v3 bundles, `--registry-referrers-mode=oci-1-1`), which ECR expires with the subject.",
        ));
    }
    out
}
