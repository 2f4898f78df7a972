//! The OCI referrers tag schema and cosign's legacy tags (pure).
//!
//! - [`fallback_tag`][]: `<alg>-<encoded>` with the truncation rule of the
//!   distribution-spec (algorithm ≤ 32, encoded ≤ 64 characters, characters
//!   outside `[a-zA-Z0-9._-]` replaced by `-`).
//! - [`cosign_tag`][]: `sha256-<hex>.sig|.att|.sbom`.
//! - [`validate_fallback_index`][]: what a fallback tag holds must be an OCI
//!   index, not the subject itself (GitLab resolves `sha256-<hex>` to the
//!   manifest with that digest), and its entries must be referrers, not
//!   platform manifests.

use serde_json::Value;

use super::model::ArtifactKind;
use super::page::IndexPage;
use crate::oci;

/// Maximum length of the algorithm part of a fallback tag.
pub const MAX_ALGORITHM_LEN: usize = 32;
/// Maximum length of the encoded part of a fallback tag.
pub const MAX_ENCODED_LEN: usize = 64;

fn clean(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The referrers tag schema tag of a subject digest.
///
/// `sha256:<hex>` → `sha256-<hex>`; `sha512:<128 hex>` → `sha512-<first 64 hex>`.
/// A digest without `:` is treated as all-encoded under an empty algorithm.
pub fn fallback_tag(digest: &str) -> String {
    let (alg, enc) = digest.split_once(':').unwrap_or(("", digest));
    format!(
        "{}-{}",
        clean(alg, MAX_ALGORITHM_LEN),
        clean(enc, MAX_ENCODED_LEN)
    )
}

/// cosign's legacy tag suffixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CosignSuffix {
    /// `.sig`: signatures (simplesigning layers).
    Sig,
    /// `.att`: attestations (DSSE envelopes with `predicateType`).
    Att,
    /// `.sbom`: SBOMs attached with `cosign attach sbom`.
    Sbom,
}

impl CosignSuffix {
    /// All suffixes, in lookup order.
    pub const ALL: [CosignSuffix; 3] = [CosignSuffix::Sig, CosignSuffix::Att, CosignSuffix::Sbom];

    /// `sig`, `att` or `sbom`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Sig => "sig",
            Self::Att => "att",
            Self::Sbom => "sbom",
        }
    }

    /// The artifact type reported when the manifest names none.
    pub fn default_artifact_type(&self) -> &'static str {
        match self {
            Self::Sig => oci::COSIGN_SIMPLESIGNING,
            Self::Att => oci::DSSE_ENVELOPE,
            Self::Sbom => oci::SPDX_JSON,
        }
    }

    /// The kind a tag of this suffix counts as when its content says nothing more.
    pub fn default_kind(&self) -> ArtifactKind {
        match self {
            Self::Sig => ArtifactKind::CosignSignature,
            Self::Att => ArtifactKind::InTotoAttestation,
            Self::Sbom => ArtifactKind::SpdxSbom,
        }
    }
}

/// `sha256-<hex>.<suffix>`.
pub fn cosign_tag(digest: &str, suffix: CosignSuffix) -> String {
    format!("{}.{}", fallback_tag(digest), suffix.as_str())
}

/// Why a fallback tag's content is not a referrers index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FallbackRejection {
    /// The tag resolved to the subject itself (GitLab normalises `sha256-<hex>` to a digest).
    ResolvesToSubject,
    /// Not an OCI image index (media type or body).
    NotAnIndex(String),
    /// The body is not JSON.
    NotJson,
}

impl std::fmt::Display for FallbackRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ResolvesToSubject => f.write_str(
                "the tag resolves to the subject itself (registry normalises the tag to a digest): ignored",
            ),
            Self::NotAnIndex(mt) => write!(f, "the tag holds {mt}, not an OCI image index: ignored"),
            Self::NotJson => f.write_str("the tag's content is not JSON: ignored"),
        }
    }
}

/// A descriptor listed in a referrers index (API page or fallback tag).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ListedDescriptor {
    /// `mediaType`.
    pub media_type: String,
    /// `digest`.
    pub digest: String,
    /// `size` (0 when missing or invalid).
    pub size: i64,
    /// `artifactType`.
    pub artifact_type: Option<String>,
    /// `annotations` (string values only).
    pub annotations: std::collections::BTreeMap<String, String>,
    /// Whether the descriptor has a `platform` field.
    pub has_platform: bool,
    /// `os/architecture[/variant]` of that field.
    pub platform: Option<String>,
}

impl ListedDescriptor {
    /// A platform manifest of an image index, not a referrer: a `platform`
    /// field and no artifact type.
    pub fn is_platform_manifest(&self) -> bool {
        self.has_platform && self.artifact_type.is_none()
    }
}

/// Descriptors of an index body (`manifests`); entries without a usable digest are skipped
/// (decoded leniently by [`IndexPage`]).
pub fn index_descriptors(body: &Value) -> Vec<ListedDescriptor> {
    IndexPage::from_value(body).descriptors()
}

/// What a valid fallback tag index lists.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ValidatedIndex {
    /// Candidate referrers (still to be checked against their manifest's `subject` when fetched).
    pub descriptors: Vec<ListedDescriptor>,
    /// Entries dropped because they are platform manifests, not referrers.
    pub dropped_platform_entries: usize,
}

/// Validates what the fallback tag of `subject_digest` holds.
///
/// `content_type` is the response media type (without parameters), `body_digest`
/// the digest of the body (`Docker-Content-Digest` or computed).
pub fn validate_fallback_index(
    subject_digest: &str,
    content_type: Option<&str>,
    body_digest: &str,
    body: &[u8],
) -> Result<ValidatedIndex, FallbackRejection> {
    if body_digest == subject_digest {
        return Err(FallbackRejection::ResolvesToSubject);
    }
    let page = IndexPage::decode(body).map_err(|_| FallbackRejection::NotJson)?;
    let mt = page
        .media_type
        .as_deref()
        .or(content_type)
        .unwrap_or("<none>");
    if mt != oci::OCI_INDEX || page.manifests.is_none() {
        return Err(FallbackRejection::NotAnIndex(mt.to_string()));
    }
    let all = page.descriptors();
    let total = all.len();
    let descriptors: Vec<ListedDescriptor> = all
        .into_iter()
        .filter(|d| !d.is_platform_manifest() && d.digest != subject_digest)
        .collect();
    Ok(ValidatedIndex {
        dropped_platform_entries: total - descriptors.len(),
        descriptors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn fallback_tag_sha256() {
        assert_eq!(
            fallback_tag(&format!("sha256:{HEX}")),
            format!("sha256-{HEX}")
        );
    }

    #[test]
    fn fallback_tag_truncates_sha512_and_long_algorithms() {
        let enc = format!("{HEX}{HEX}");
        assert_eq!(
            fallback_tag(&format!("sha512:{enc}")),
            format!("sha512-{HEX}")
        );
        let alg = "a".repeat(40);
        let t = fallback_tag(&format!("{alg}:{HEX}"));
        assert_eq!(t, format!("{}-{HEX}", "a".repeat(32)));
        assert!(t.len() <= 32 + 1 + 64);
    }

    #[test]
    fn fallback_tag_replaces_odd_characters() {
        assert_eq!(
            fallback_tag("sha256+b64u:abc=+/x_y.z-"),
            "sha256-b64u-abc---x_y.z-"
        );
        assert_eq!(fallback_tag("nocolon"), "-nocolon");
        assert_eq!(fallback_tag("sha256:é"), "sha256--");
    }

    #[test]
    fn cosign_tags() {
        let d = format!("sha256:{HEX}");
        assert_eq!(
            cosign_tag(&d, CosignSuffix::Sig),
            format!("sha256-{HEX}.sig")
        );
        assert_eq!(
            cosign_tag(&d, CosignSuffix::Att),
            format!("sha256-{HEX}.att")
        );
        assert_eq!(
            cosign_tag(&d, CosignSuffix::Sbom),
            format!("sha256-{HEX}.sbom")
        );
    }

    fn desc(d: &str, at: Option<&str>, platform: bool) -> Value {
        let mut v = json!({"mediaType": oci::OCI_MANIFEST, "digest": d, "size": 10});
        if let Some(at) = at {
            v["artifactType"] = json!(at);
        }
        if platform {
            v["platform"] = json!({"os": "linux", "architecture": "amd64"});
        }
        v
    }

    /// [`validate_fallback_index`] of `body`, served as `content_type` under its own digest,
    /// for the subject `sha256:HEX`.
    fn validate_at_own_digest(
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<ValidatedIndex, FallbackRejection> {
        let subject = format!("sha256:{HEX}");
        validate_fallback_index(&subject, content_type, &oci::digest_sha256(body), body)
    }

    #[test]
    fn rejects_self_resolving_tag_gitlab() {
        let subject = format!("sha256:{HEX}");
        // GitLab: the tag resolves to the subject (an index of platform manifests).
        let body = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": oci::OCI_INDEX,
            "manifests": [desc(&oci::digest_sha256(b"a"), None, true)],
        }))
        .unwrap();
        assert_eq!(
            validate_fallback_index(&subject, Some(oci::OCI_INDEX), &subject, &body),
            Err(FallbackRejection::ResolvesToSubject)
        );
    }

    #[test]
    fn rejects_image_manifest_at_tag() {
        let subject = format!("sha256:{HEX}");
        let body = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": oci::OCI_MANIFEST,
            "config": {"mediaType": oci::OCI_IMAGE_CONFIG, "digest": oci::digest_sha256(b"c"), "size": 1},
            "layers": [],
        }))
        .unwrap();
        let r = validate_at_own_digest(Some(oci::OCI_MANIFEST), &body);
        assert!(matches!(r, Err(FallbackRejection::NotAnIndex(_))), "{r:?}");
        let r = validate_fallback_index(&subject, None, &oci::digest_sha256(b"x"), b"<html>");
        assert_eq!(r, Err(FallbackRejection::NotJson));
    }

    #[test]
    fn drops_platform_entries_of_an_index() {
        let sig = oci::digest_sha256(b"sig");
        let body = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": oci::OCI_INDEX,
            "manifests": [
                desc(&oci::digest_sha256(b"amd64"), None, true),
                desc(&sig, Some(oci::COSIGN_ARTIFACT_SIG), false),
                {"digest": "not-a-digest"},
            ],
        }))
        .unwrap();
        let v = validate_at_own_digest(Some(oci::OCI_INDEX), &body).unwrap();
        assert_eq!(v.descriptors.len(), 1);
        assert_eq!(v.descriptors[0].digest, sig);
        assert_eq!(v.dropped_platform_entries, 1);
    }

    #[test]
    fn empty_index_is_valid() {
        let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        let v = validate_at_own_digest(None, body).unwrap();
        assert!(v.descriptors.is_empty());
    }
}
