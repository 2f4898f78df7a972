//! Shared pieces of the lifecycle analysis: the sample tag names every family's
//! rules are matched against, and the finding builder.

use crate::crd::{Confidence, FindingKind, LifecycleFinding, RegistryFamily, Severity};

/// Hex part of the digest used in sample referrer tags.
pub const SAMPLE_HEX: &str = "3f1c2a9d8e7b6a5f4e3d2c1b0a99887766554433221100ffeeddccbbaa998877";

/// Tag names of ordinary images, used to tell whether a rule also selects real images.
pub const APP_SAMPLE_TAGS: &[&str] = &[
    "latest",
    "v1.2.3",
    "1.0.0",
    "main",
    "prod",
    "release-2024.01",
    "sha-1a2b3c4",
    "build-1234",
    "main-1a2b3c4d",
];

/// The ways a referrer can be stored, as lifecycle rules see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReferrerShape {
    /// OCI referrers tag schema: an index tagged `sha256-<hex>`.
    FallbackIndex,
    /// Legacy cosign signature tag `sha256-<hex>.sig`.
    CosignSig,
    /// Legacy cosign attestation tag `sha256-<hex>.att`.
    CosignAtt,
    /// Legacy cosign SBOM tag `sha256-<hex>.sbom`.
    CosignSbom,
    /// OCI 1.1 referrer: an untagged manifest with a `subject`.
    Oci11,
}

impl ReferrerShape {
    /// Every shape.
    pub const ALL: [ReferrerShape; 5] = [
        Self::FallbackIndex,
        Self::CosignSig,
        Self::CosignAtt,
        Self::CosignSbom,
        Self::Oci11,
    ];

    /// The sample tag, or `None` for untagged OCI 1.1 referrers.
    pub fn sample_tag(self) -> Option<String> {
        match self {
            Self::FallbackIndex => Some(format!("sha256-{SAMPLE_HEX}")),
            Self::CosignSig => Some(format!("sha256-{SAMPLE_HEX}.sig")),
            Self::CosignAtt => Some(format!("sha256-{SAMPLE_HEX}.att")),
            Self::CosignSbom => Some(format!("sha256-{SAMPLE_HEX}.sbom")),
            Self::Oci11 => None,
        }
    }

    /// Whether the shape is a tag (fallback index or legacy cosign tag).
    pub fn is_tagged(self) -> bool {
        self != Self::Oci11
    }

    /// Short human label.
    pub fn label(self) -> &'static str {
        match self {
            Self::FallbackIndex => "fallback referrers index tags (sha256-<hex>)",
            Self::CosignSig => "cosign signature tags (sha256-<hex>.sig)",
            Self::CosignAtt => "cosign attestation tags (sha256-<hex>.att)",
            Self::CosignSbom => "cosign SBOM tags (sha256-<hex>.sbom)",
            Self::Oci11 => "untagged OCI 1.1 referrers (manifests with a subject)",
        }
    }

    /// Classifies a tag name: `sha256-<64 hex>` with an optional `.sig|.att|.sbom` suffix.
    pub fn of_tag(tag: &str) -> Option<(ReferrerShape, String)> {
        let rest = tag.strip_prefix("sha256-")?;
        let (hex, shape) = match rest.split_once('.') {
            None => (rest, Self::FallbackIndex),
            Some((h, "sig")) => (h, Self::CosignSig),
            Some((h, "att")) => (h, Self::CosignAtt),
            Some((h, "sbom")) => (h, Self::CosignSbom),
            Some(_) => return None,
        };
        if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            Some((shape, format!("sha256:{}", hex.to_ascii_lowercase())))
        } else {
            None
        }
    }
}

/// Joins shape labels for a message.
pub fn labels(shapes: &[ReferrerShape]) -> String {
    shapes
        .iter()
        .map(|s| s.label())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Builds a finding.
pub fn finding(
    registry_family: RegistryFamily,
    rule: impl Into<String>,
    kind: FindingKind,
    severity: Severity,
    confidence: Confidence,
    message: impl Into<String>,
    fix: impl Into<String>,
) -> LifecycleFinding {
    LifecycleFinding {
        registry_family,
        rule: rule.into(),
        kind,
        severity,
        confidence,
        message: message.into(),
        fix: fix.into(),
    }
}

/// An `InvalidPolicy` finding (Medium, Documented: the registry rejects the policy).
pub fn invalid(
    registry_family: RegistryFamily,
    rule: impl Into<String>,
    field: &str,
    problem: &str,
) -> LifecycleFinding {
    finding(
        registry_family,
        rule,
        FindingKind::InvalidPolicy,
        Severity::Medium,
        Confidence::Documented,
        format!("{field}: {problem}"),
        format!(
            "correct {field} as described; the registry rejects or ignores the policy as it is"
        ),
    )
}

/// Anchored regex (`\A(?:re)\z`), as GitLab applies `name_regex`.
pub fn anchored_regex(re: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!(r"\A(?:{re})\z"))
}

/// Parses an age such as `30d`, `12h`, `2w`, `90s` or `2592000s` into seconds.
pub fn parse_age_seconds(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = num.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "y" => 365 * 86_400,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_classify() {
        for s in ReferrerShape::ALL {
            if let Some(t) = s.sample_tag() {
                assert_eq!(ReferrerShape::of_tag(&t).map(|x| x.0), Some(s));
            }
        }
        assert!(ReferrerShape::of_tag("sha256-abc.sig").is_none());
        assert!(ReferrerShape::of_tag("v1.2.3").is_none());
        assert_eq!(parse_age_seconds("30d"), Some(2_592_000));
        assert_eq!(parse_age_seconds("2592000s"), Some(2_592_000));
        assert_eq!(parse_age_seconds("d"), None);
    }
}
