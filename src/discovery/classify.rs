//! Pure classification decisions: when a referrer's manifest must be fetched,
//! what a fetched manifest says (config / layer media types, predicate-type
//! annotations, as cosign v3 does), the format a referrer is written in, and
//! client-side `artifactType` filtering.

use std::collections::BTreeMap;

use serde_json::Value;

use super::model::{ArtifactKind, Format, Reach};
use super::presets;
use super::tagschema::{CosignSuffix, ListedDescriptor};
use crate::oci;

/// Annotation keys that carry an in-toto predicate type.
pub const PREDICATE_ANNOTATIONS: [&str; 3] = [
    "predicateType",
    "in-toto.io/predicate-type",
    "dev.sigstore.bundle.predicateType",
];

/// BuildKit: annotation marking an attestation manifest inside an image index.
pub const BUILDKIT_REFERENCE_TYPE: &str = "vnd.docker.reference.type";
/// BuildKit: the platform manifest an attestation manifest describes.
pub const BUILDKIT_REFERENCE_DIGEST: &str = "vnd.docker.reference.digest";
/// BuildKit: value of [`BUILDKIT_REFERENCE_TYPE`] for attestations.
pub const BUILDKIT_ATTESTATION_MANIFEST: &str = "attestation-manifest";

/// What a referrer manifest says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManifestFacts {
    /// `mediaType` of the manifest.
    pub media_type: Option<String>,
    /// `artifactType`.
    pub artifact_type: Option<String>,
    /// `config.mediaType`.
    pub config_media_type: Option<String>,
    /// `layers[].mediaType`.
    pub layer_media_types: Vec<String>,
    /// Predicate types from layer and manifest annotations.
    pub predicate_types: Vec<String>,
    /// `subject.digest`.
    pub subject: Option<String>,
    /// Manifest annotations (string values).
    pub annotations: BTreeMap<String, String>,
    /// Whether it is an index (`manifests` present).
    pub is_index: bool,
    /// For an index: its entries.
    pub manifests: Vec<ListedDescriptor>,
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Predicate types named in annotations.
pub fn predicate_types(annotations: &BTreeMap<String, String>) -> Vec<String> {
    PREDICATE_ANNOTATIONS
        .iter()
        .filter_map(|k| annotations.get(*k))
        .filter(|v| !v.trim().is_empty())
        .cloned()
        .collect()
}

impl ManifestFacts {
    /// Parses a manifest or index body; `None` when it is not a JSON object.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let v: Value = serde_json::from_slice(body).ok()?;
        if !v.is_object() {
            return None;
        }
        let s = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let annotations = string_map(v.get("annotations"));
        let mut predicate_types_all = Vec::new();
        let mut layer_media_types = Vec::new();
        if let Some(layers) = v.get("layers").and_then(Value::as_array) {
            for l in layers {
                if let Some(mt) = l.get("mediaType").and_then(Value::as_str) {
                    layer_media_types.push(mt.to_string());
                }
                for p in predicate_types(&string_map(l.get("annotations"))) {
                    if !predicate_types_all.contains(&p) {
                        predicate_types_all.push(p);
                    }
                }
            }
        }
        for p in predicate_types(&annotations) {
            if !predicate_types_all.contains(&p) {
                predicate_types_all.push(p);
            }
        }
        let manifests = super::tagschema::index_descriptors(&v);
        Some(ManifestFacts {
            media_type: s("/mediaType"),
            artifact_type: s("/artifactType"),
            config_media_type: s("/config/mediaType"),
            layer_media_types,
            predicate_types: predicate_types_all,
            subject: s("/subject/digest"),
            annotations,
            is_index: v.get("manifests").is_some(),
            manifests,
        })
    }
}

fn informative(mt: Option<&str>) -> Option<&str> {
    mt.filter(|m| !presets::is_uninformative(m))
}

/// Kinds judged from a listed descriptor alone (artifact type + annotation predicates).
pub fn descriptor_kinds(d: &ListedDescriptor) -> Vec<ArtifactKind> {
    let preds = predicate_types(&d.annotations);
    let preds: Vec<&str> = preds.iter().map(String::as_str).collect();
    presets::classify(informative(d.artifact_type.as_deref()), None, &[], &preds)
}

/// Whether the referrer manifest must be read for this reach: with [`Reach::Listing`], never
/// (such a referrer stays unclassified and a policy that misses a requirement asks again);
/// with [`Reach::Union`], when [`needs_fetch`] says so (what the referrer is about is open);
/// with [`Reach::Described`], also when the descriptor leaves the format open (a notation
/// envelope, an in-toto envelope).
pub fn must_read_manifest(d: &ListedDescriptor, reach: Reach) -> bool {
    match reach {
        Reach::Listing => false,
        Reach::Union => needs_fetch(d),
        Reach::Described => {
            needs_fetch(d)
                || matches!(
                    descriptor_format(d),
                    Format::Unclassified | Format::Notation
                )
        }
    }
}

/// Whether the referrer manifest must be fetched to classify it: the
/// descriptor's artifact type is missing or uninformative, is a generic
/// in-toto/DSSE type without a predicate annotation, or contradicts the
/// predicate-type annotations.
pub fn needs_fetch(d: &ListedDescriptor) -> bool {
    let Some(at) = informative(d.artifact_type.as_deref()) else {
        return true;
    };
    let by_type = presets::kind_of_media_type(at);
    let preds = predicate_types(&d.annotations);
    if by_type == Some(ArtifactKind::InTotoAttestation) && preds.is_empty() {
        return true;
    }
    if let Some(t) = by_type {
        let pred_kinds: Vec<ArtifactKind> = preds
            .iter()
            .map(|p| presets::kind_of_predicate(p))
            .filter(|k| *k != ArtifactKind::InTotoAttestation)
            .collect();
        // A specific artifact type that none of the specific predicates agree with.
        let generic = matches!(t, ArtifactKind::InTotoAttestation);
        if !generic && !pred_kinds.is_empty() && !pred_kinds.contains(&t) {
            return true;
        }
    }
    false
}

/// Artifact type and kinds of a referrer once its manifest is known.
/// The manifest's own `artifactType` wins, then an informative config media
/// type, then the descriptor's value; kinds come from everything.
pub fn classify_fetched(
    descriptor_artifact_type: Option<&str>,
    facts: &ManifestFacts,
) -> (Option<String>, Vec<ArtifactKind>) {
    let artifact_type = informative(facts.artifact_type.as_deref())
        .or(informative(facts.config_media_type.as_deref()))
        .or(informative(descriptor_artifact_type))
        .or(facts.artifact_type.as_deref())
        .or(descriptor_artifact_type)
        .or(facts.config_media_type.as_deref())
        .map(str::to_string);
    let layers: Vec<&str> = facts.layer_media_types.iter().map(String::as_str).collect();
    let preds: Vec<&str> = facts.predicate_types.iter().map(String::as_str).collect();
    let kinds = presets::classify(
        informative(facts.artifact_type.as_deref()),
        informative(facts.config_media_type.as_deref()),
        &layers,
        &preds,
    );
    (artifact_type, kinds)
}

/// The sigstore bundle version a media type names: `application/vnd.dev.sigstore.bundle.v0.3+json`
/// or `application/vnd.dev.sigstore.bundle+json;version=0.2` (the protobuf-specs spellings).
pub fn bundle_format(media_type: &str) -> Option<Format> {
    let lower = media_type.to_ascii_lowercase();
    let (essence, params) = lower.split_once(';').unwrap_or((lower.as_str(), ""));
    let essence = essence.trim();
    let rest = essence.strip_prefix(oci::SIGSTORE_BUNDLE_PREFIX)?;
    let version = match rest.strip_prefix(".v") {
        Some(v) => v.strip_suffix("+json")?.to_string(),
        None if rest == "+json" => params
            .split(';')
            .filter_map(|p| p.trim().strip_prefix("version="))
            .next()
            .unwrap_or("0.1")
            .trim_matches('"')
            .to_string(),
        None => return None,
    };
    Some(match version.as_str() {
        "0.1" => Format::SigstoreBundleV01,
        "0.2" => Format::SigstoreBundleV02,
        _ => Format::SigstoreBundleV03,
    })
}

fn essence_of(mt: &str) -> String {
    mt.split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Format of a document by its media type (artifact type, config or layer media type).
fn document_format(mt: &str) -> Option<Format> {
    if let Some(f) = bundle_format(mt) {
        return Some(f);
    }
    Some(match essence_of(mt).as_str() {
        oci::COSIGN_ARTIFACT_SIG | oci::COSIGN_SIMPLESIGNING => Format::CosignSimpleSigning,
        oci::COSIGN_ARTIFACT_ATT => Format::CosignAttestation,
        oci::NOTATION_SIGNATURE | "application/vnd.cncf.notary.v2.signature" => Format::Notation,
        oci::NOTATION_JWS => Format::NotationJws,
        oci::NOTATION_COSE => Format::NotationCose,
        oci::BUILDKIT_ATTESTATION_MANIFEST => Format::BuildkitAttestation,
        oci::DSSE_ENVELOPE => Format::InTotoDsse,
        oci::IN_TOTO => Format::InTotoStatement,
        oci::SPDX_JSON | oci::SPDX_JSON_TEXT | "text/spdx" | "application/spdx" => Format::Spdx,
        oci::COSIGN_ARTIFACT_SBOM => Format::Spdx,
        oci::CYCLONEDX_JSON | oci::CYCLONEDX_XML | "application/vnd.cyclonedx" => Format::Cyclonedx,
        oci::SYFT_JSON => Format::SyftJson,
        oci::OPENVEX_JSON => Format::Openvex,
        _ => return None,
    })
}

/// Format of a referrer known only by its listed descriptor. `Unclassified` when the
/// descriptor does not say (no or an uninformative artifact type) or when it names only the
/// statement, not the envelope (`application/vnd.in-toto+json`).
pub fn descriptor_format(d: &ListedDescriptor) -> Format {
    let Some(at) = informative(d.artifact_type.as_deref()) else {
        return Format::Unclassified;
    };
    match document_format(at) {
        Some(Format::InTotoStatement | Format::InTotoDsse) => Format::Unclassified,
        Some(f) => f,
        None if presets::kind_of_media_type(at).is_some() => Format::Unclassified,
        None => Format::Other,
    }
}

/// Format of a referrer once its manifest is known. The envelope decides: a notation
/// signature's layer (JWS or COSE), a DSSE layer (a cosign `.att` tag or another in-toto
/// attestation), a bundle's version, then the document type.
pub fn manifest_format(
    descriptor_artifact_type: Option<&str>,
    facts: &ManifestFacts,
    cosign_suffix: Option<CosignSuffix>,
) -> Format {
    let types: Vec<&str> = facts
        .artifact_type
        .as_deref()
        .into_iter()
        .chain(facts.config_media_type.as_deref())
        .chain(facts.layer_media_types.iter().map(String::as_str))
        .chain(descriptor_artifact_type)
        .collect();
    let formats: Vec<Format> = types.iter().filter_map(|t| document_format(t)).collect();
    if let Some(f) = formats.iter().find(|f| f.is_sigstore_bundle()) {
        return *f;
    }
    if formats.iter().any(Format::is_notation) {
        return formats
            .iter()
            .copied()
            .find(|f| matches!(f, Format::NotationJws | Format::NotationCose))
            .unwrap_or(Format::Notation);
    }
    if formats.contains(&Format::BuildkitAttestation)
        || facts
            .annotations
            .get(BUILDKIT_REFERENCE_TYPE)
            .map(String::as_str)
            == Some(BUILDKIT_ATTESTATION_MANIFEST)
    {
        return Format::BuildkitAttestation;
    }
    if formats.contains(&Format::CosignSimpleSigning) {
        return Format::CosignSimpleSigning;
    }
    if formats.contains(&Format::CosignAttestation)
        || (formats.contains(&Format::InTotoDsse) && cosign_suffix == Some(CosignSuffix::Att))
    {
        return Format::CosignAttestation;
    }
    if formats.contains(&Format::InTotoDsse) {
        return Format::InTotoDsse;
    }
    formats.into_iter().next().unwrap_or(Format::Other)
}

/// The first in-toto predicate type a descriptor's annotations name.
pub fn descriptor_predicate_type(d: &ListedDescriptor) -> Option<String> {
    predicate_types(&d.annotations).into_iter().next()
}

/// Whether the server applied the `artifactType` filter: `OCI-Filters-Applied`
/// lists it, or (pre-GA rc1 form) the index annotation
/// `org.opencontainers.referrers.filtersApplied` does.
pub fn filter_applied(header: Option<&str>, index_annotations: &BTreeMap<String, String>) -> bool {
    let lists = |v: &str| {
        v.split(',')
            .any(|f| f.trim().eq_ignore_ascii_case("artifactType"))
    };
    header.is_some_and(lists)
        || index_annotations
            .get("org.opencontainers.referrers.filtersApplied")
            .is_some_and(|v| lists(v))
}

/// Client-side `artifactType` filter: no filter keeps everything; otherwise the
/// artifact type must equal one of them (media type essence, case-insensitive).
pub fn matches_filter(filters: &[String], artifact_type: Option<&str>) -> bool {
    if filters.is_empty() {
        return true;
    }
    let Some(at) = artifact_type else {
        return false;
    };
    let essence = |s: &str| {
        s.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    let at = essence(at);
    filters.iter().any(|f| essence(f) == at)
}

/// Whether a descriptor can be dropped by the client-side filter without
/// fetching its manifest (its artifact type is informative and does not match).
pub fn filtered_out_early(filters: &[String], d: &ListedDescriptor) -> bool {
    !filters.is_empty()
        && informative(d.artifact_type.as_deref()).is_some()
        && !matches_filter(filters, d.artifact_type.as_deref())
}

/// BuildKit attestation entries of an index: `(attestation descriptor, described platform digest)`.
pub fn buildkit_attestations(index: &ManifestFacts) -> Vec<(ListedDescriptor, String)> {
    index
        .manifests
        .iter()
        .filter(|d| {
            d.annotations
                .get(BUILDKIT_REFERENCE_TYPE)
                .map(String::as_str)
                == Some(BUILDKIT_ATTESTATION_MANIFEST)
        })
        .filter_map(|d| {
            let target = d.annotations.get(BUILDKIT_REFERENCE_DIGEST)?;
            crate::oci::parse_digest(target).ok()?;
            Some((d.clone(), target.clone()))
        })
        .collect()
}

/// Platform manifests of an index (not attestation manifests).
pub fn platform_manifests(index: &ManifestFacts) -> Vec<ListedDescriptor> {
    index
        .manifests
        .iter()
        .filter(|d| !d.annotations.contains_key(BUILDKIT_REFERENCE_TYPE))
        .filter(|d| d.artifact_type.is_none())
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci;
    use ArtifactKind as K;
    use serde_json::json;

    fn d(at: Option<&str>, ann: &[(&str, &str)]) -> ListedDescriptor {
        ListedDescriptor {
            media_type: oci::OCI_MANIFEST.into(),
            digest: oci::digest_sha256(b"x"),
            size: 1,
            artifact_type: at.map(str::to_string),
            annotations: ann
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            has_platform: false,
            platform: None,
        }
    }

    #[test]
    fn fetch_only_when_needed() {
        assert!(!needs_fetch(&d(Some(oci::COSIGN_ARTIFACT_SIG), &[])));
        assert!(!needs_fetch(&d(Some(oci::SPDX_JSON), &[])));
        assert!(!needs_fetch(&d(Some("application/x-unknown"), &[])));
        assert!(needs_fetch(&d(None, &[])));
        assert!(needs_fetch(&d(Some(oci::OCI_EMPTY), &[])));
        assert!(needs_fetch(&d(Some("application/json"), &[])));
        // Generic in-toto without predicate: fetch to learn the predicate.
        assert!(needs_fetch(&d(Some(oci::IN_TOTO), &[])));
        assert!(!needs_fetch(&d(
            Some(oci::IN_TOTO),
            &[("predicateType", "https://slsa.dev/provenance/v1")]
        )));
        // Contradiction: SPDX type, SLSA predicate.
        assert!(needs_fetch(&d(
            Some(oci::SPDX_JSON),
            &[("predicateType", "https://slsa.dev/provenance/v1")]
        )));
        // Bundle with a signature predicate agrees.
        assert!(!needs_fetch(&d(
            Some(oci::SIGSTORE_BUNDLE_V03),
            &[(
                "dev.sigstore.bundle.predicateType",
                "https://sigstore.dev/cosign/sign/v1"
            )]
        )));
    }

    #[test]
    fn classification_fallbacks_from_manifest() {
        // ggcr-written fallback entry: artifactType empty; the manifest's layer tells.
        let body = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": oci::OCI_MANIFEST,
            "config": {"mediaType": oci::OCI_EMPTY, "digest": oci::OCI_EMPTY_DIGEST, "size": 2},
            "layers": [{"mediaType": oci::SIGSTORE_BUNDLE_V03, "digest": oci::digest_sha256(b"l"), "size": 1}],
            "subject": {"mediaType": oci::OCI_MANIFEST, "digest": oci::digest_sha256(b"s"), "size": 1},
        }))
        .unwrap();
        let f = ManifestFacts::parse(&body).unwrap();
        assert_eq!(
            f.subject.as_deref(),
            Some(oci::digest_sha256(b"s").as_str())
        );
        let (at, kinds) = classify_fetched(Some(oci::OCI_EMPTY), &f);
        assert_eq!(at.as_deref(), Some(oci::OCI_EMPTY));
        assert_eq!(kinds, vec![K::SigstoreBundle]);

        // Trivy: type only in config.mediaType.
        let body = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "config": {"mediaType": oci::CYCLONEDX_JSON, "digest": oci::digest_sha256(b"c"), "size": 2},
            "layers": [],
        }))
        .unwrap();
        let f = ManifestFacts::parse(&body).unwrap();
        let (at, kinds) = classify_fetched(None, &f);
        assert_eq!(at.as_deref(), Some(oci::CYCLONEDX_JSON));
        assert_eq!(kinds, vec![K::CyclonedxSbom]);

        // Legacy cosign .att: DSSE layers with predicateType annotation.
        let body = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "config": {"mediaType": oci::OCI_IMAGE_CONFIG, "digest": oci::digest_sha256(b"c"), "size": 2},
            "layers": [{"mediaType": oci::DSSE_ENVELOPE, "digest": oci::digest_sha256(b"l"), "size": 1,
                        "annotations": {"predicateType": "https://spdx.dev/Document"}}],
        }))
        .unwrap();
        let f = ManifestFacts::parse(&body).unwrap();
        let (_, kinds) = classify_fetched(None, &f);
        assert_eq!(kinds, vec![K::SpdxSbom]);
        assert!(ManifestFacts::parse(b"[1,2]").is_none());
        assert!(ManifestFacts::parse(b"<html>").is_none());
    }

    #[test]
    fn client_side_filtering() {
        let f = vec![oci::SPDX_JSON.to_string()];
        assert!(matches_filter(&[], None));
        assert!(matches_filter(
            &f,
            Some("application/SPDX+json; charset=utf-8")
        ));
        assert!(!matches_filter(&f, Some(oci::CYCLONEDX_JSON)));
        assert!(!matches_filter(&f, None));
        assert!(filtered_out_early(&f, &d(Some(oci::CYCLONEDX_JSON), &[])));
        assert!(!filtered_out_early(&f, &d(Some(oci::OCI_EMPTY), &[])));
        assert!(!filtered_out_early(&f, &d(None, &[])));
        assert!(filter_applied(Some("artifactType"), &BTreeMap::new()));
        assert!(filter_applied(
            Some("annotation, artifactType"),
            &BTreeMap::new()
        ));
        assert!(!filter_applied(None, &BTreeMap::new()));
        assert!(!filter_applied(Some("annotation"), &BTreeMap::new()));
        let mut ann = BTreeMap::new();
        ann.insert(
            "org.opencontainers.referrers.filtersApplied".to_string(),
            "artifactType".to_string(),
        );
        assert!(filter_applied(None, &ann));
    }

    #[test]
    fn buildkit_in_index_attestations() {
        let amd = oci::digest_sha256(b"amd64");
        let att = oci::digest_sha256(b"att");
        let body = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": oci::OCI_INDEX,
            "manifests": [
                {"mediaType": oci::OCI_MANIFEST, "digest": amd, "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
                {"mediaType": oci::OCI_MANIFEST, "digest": att, "size": 1, "platform": {"os": "unknown", "architecture": "unknown"},
                 "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": amd}},
            ],
        }))
        .unwrap();
        let f = ManifestFacts::parse(&body).unwrap();
        let atts = buildkit_attestations(&f);
        assert_eq!(atts.len(), 1);
        assert_eq!(atts[0].1, amd);
        let plats = platform_manifests(&f);
        assert_eq!(plats.len(), 1);
        assert_eq!(plats[0].digest, amd);
    }
}
