//! Built-in presets: friendly names for the artifact kinds policies require,
//! and the classification of artifact / config / layer media types into kinds.
//!
//! Media types come from the specs and tools (cosign, Sigstore, Notary
//! Project, SPDX, CycloneDX, in-toto, SLSA, OpenVEX); see
//! `../shared/reference/oci-referrers.md` §2.

use super::model::ArtifactKind;
use crate::oci;

/// A named preset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PresetDefinition {
    /// Name used in policies and on the command line.
    pub name: &'static str,
    /// Kinds that satisfy it (any of).
    pub kinds: &'static [ArtifactKind],
    /// One-line description.
    pub description: &'static str,
}

use ArtifactKind as K;

/// Every preset, umbrella presets last.
pub const PRESETS: &[PresetDefinition] = &[
    PresetDefinition {
        name: "cosign-signature",
        kinds: &[K::CosignSignature],
        description: "cosign signature: legacy .sig tag or OCI 1.1 application/vnd.dev.cosign.artifact.sig.v1+json",
    },
    PresetDefinition {
        name: "sigstore-bundle",
        kinds: &[K::SigstoreBundle],
        description: "Sigstore bundle (cosign v3 default): application/vnd.dev.sigstore.bundle*",
    },
    PresetDefinition {
        name: "notation-signature",
        kinds: &[K::NotationSignature],
        description: "Notary Project signature: application/vnd.cncf.notary.signature",
    },
    PresetDefinition {
        name: "spdx-sbom",
        kinds: &[K::SpdxSbom],
        description: "SPDX SBOM (application/spdx+json, text/spdx*, in-toto SPDX predicate)",
    },
    PresetDefinition {
        name: "cyclonedx-sbom",
        kinds: &[K::CyclonedxSbom],
        description: "CycloneDX SBOM (application/vnd.cyclonedx+json|+xml, in-toto CycloneDX predicate)",
    },
    PresetDefinition {
        name: "in-toto-attestation",
        kinds: &[K::InTotoAttestation, K::SlsaProvenance],
        description: "any in-toto attestation (DSSE envelope or statement), whatever its predicate (an SBOM or VEX predicate too, but not a plain SBOM document)",
    },
    PresetDefinition {
        name: "slsa-provenance",
        kinds: &[K::SlsaProvenance],
        description: "SLSA provenance (in-toto predicate https://slsa.dev/provenance/*)",
    },
    PresetDefinition {
        name: "openvex",
        kinds: &[K::Openvex],
        description: "OpenVEX document (application/vnd.openvex+json)",
    },
    PresetDefinition {
        name: "signature",
        kinds: &[K::CosignSignature, K::SigstoreBundle, K::NotationSignature],
        description: "any signature kind",
    },
    PresetDefinition {
        name: "sbom",
        kinds: &[K::SpdxSbom, K::CyclonedxSbom, K::SyftSbom],
        description: "any SBOM kind, including BuildKit's in-index SBOM attestation",
    },
];

/// Finds a preset by name.
pub fn preset(name: &str) -> Option<&'static PresetDefinition> {
    PRESETS.iter().find(|p| p.name == name)
}

/// Names of every preset (for error messages and the CRD enum).
pub fn preset_names() -> Vec<&'static str> {
    PRESETS.iter().map(|p| p.name).collect()
}

/// in-toto predicate type → kind.
pub fn kind_of_predicate(predicate_type: &str) -> ArtifactKind {
    let p = predicate_type.trim();
    if p.starts_with("https://spdx.dev/Document") {
        K::SpdxSbom
    } else if p.starts_with("https://cyclonedx.org/bom") {
        K::CyclonedxSbom
    } else if p.starts_with("https://slsa.dev/provenance/") {
        K::SlsaProvenance
    } else if p.starts_with("https://openvex.dev/ns") {
        K::Openvex
    } else if p == "https://sigstore.dev/cosign/sign/v1" {
        K::SigstoreBundle
    } else {
        K::InTotoAttestation
    }
}

/// Kind of a single media type (artifact type, config media type or layer media type).
/// `None` when the type says nothing (image layers, empty config, generic JSON).
pub fn kind_of_media_type(media_type: &str) -> Option<ArtifactKind> {
    // Media types may carry parameters (`…+json;version=0.3`): compare the essence.
    let mt = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let mt = mt.as_str();
    if mt.starts_with(oci::SIGSTORE_BUNDLE_PREFIX) {
        return Some(K::SigstoreBundle);
    }
    match mt {
        oci::COSIGN_ARTIFACT_SIG | oci::COSIGN_SIMPLESIGNING => Some(K::CosignSignature),
        oci::NOTATION_SIGNATURE | "application/vnd.cncf.notary.v2.signature" => {
            Some(K::NotationSignature)
        }
        oci::SPDX_JSON | oci::SPDX_JSON_TEXT | "text/spdx" | "application/spdx" => {
            Some(K::SpdxSbom)
        }
        oci::CYCLONEDX_JSON | oci::CYCLONEDX_XML | "application/vnd.cyclonedx" => {
            Some(K::CyclonedxSbom)
        }
        oci::SYFT_JSON => Some(K::SyftSbom),
        oci::OPENVEX_JSON => Some(K::Openvex),
        oci::COSIGN_ARTIFACT_SBOM => Some(K::SpdxSbom),
        oci::IN_TOTO | oci::DSSE_ENVELOPE | oci::COSIGN_ARTIFACT_ATT => Some(K::InTotoAttestation),
        _ => None,
    }
}

/// Whether a type is too generic to classify a referrer by (so the manifest must be looked at).
pub fn is_uninformative(media_type: &str) -> bool {
    let mt = media_type.split(';').next().unwrap_or("").trim();
    mt.is_empty()
        || mt == oci::OCI_EMPTY
        || mt == "application/json"
        || mt == "application/octet-stream"
        || mt == oci::OCI_IMAGE_CONFIG
        || mt == oci::DOCKER_IMAGE_CONFIG
        || mt == oci::BUILDKIT_ATTESTATION_MANIFEST
}

/// Classifies a referrer from what is known about it: the artifact type, the
/// config media type, layer media types, and in-toto predicate types (from the
/// `predicateType` / `in-toto.io/predicate-type` / `dev.sigstore.bundle.predicateType`
/// annotations). Later, more specific evidence refines a generic in-toto kind.
pub fn classify(
    artifact_type: Option<&str>,
    config_media_type: Option<&str>,
    layer_media_types: &[&str],
    predicate_types: &[&str],
) -> Vec<ArtifactKind> {
    let mut kinds: Vec<ArtifactKind> = Vec::new();
    let mut push = |k: ArtifactKind| {
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    };
    for mt in artifact_type
        .into_iter()
        .chain(config_media_type)
        .chain(layer_media_types.iter().copied())
    {
        if let Some(k) = kind_of_media_type(mt) {
            push(k);
        }
    }
    let mut attested = false;
    for p in predicate_types {
        let k = kind_of_predicate(p);
        attested |= k != K::SigstoreBundle;
        push(k);
    }
    // A sigstore bundle that carries an attestation (a SLSA statement from actions/attest, a
    // `cosign attest` with cosign 3) is that attestation, not a signature of the image.
    if attested {
        kinds.retain(|k| *k != K::SigstoreBundle);
    }
    // A generic in-toto kind next to a specific one (SBOM, provenance…) says nothing more.
    let specific = kinds.iter().any(|k| {
        matches!(
            k,
            K::SpdxSbom | K::CyclonedxSbom | K::SlsaProvenance | K::Openvex | K::SigstoreBundle
        )
    });
    if specific {
        kinds.retain(|k| *k != K::InTotoAttestation);
    }
    if kinds.is_empty() {
        kinds.push(K::Other);
    }
    kinds.sort();
    kinds
}

/// Whether a referrer of `kinds` satisfies `preset`.
pub fn satisfies(preset: &PresetDefinition, kinds: &[ArtifactKind]) -> bool {
    kinds.iter().any(|k| preset.kinds.contains(k))
}

/// Whether a referrer satisfies `preset`: by its kinds, and for `in-toto-attestation` also any
/// referrer that is an in-toto statement (an attestation format, or an annotated predicate
/// type other than cosign 3's signature predicate) whatever its predicate — an SBOM attached
/// as a plain document is not an attestation.
pub fn referrer_satisfies(preset: &PresetDefinition, r: &super::model::Referrer) -> bool {
    use super::model::Format as F;
    if satisfies(preset, &r.kinds) {
        return true;
    }
    preset.name == "in-toto-attestation"
        && (matches!(
            r.format,
            F::CosignAttestation | F::InTotoDsse | F::InTotoStatement | F::BuildkitAttestation
        ) || r
            .predicate_type
            .as_deref()
            .is_some_and(|p| kind_of_predicate(p) != K::SigstoreBundle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_name_resolves_and_is_unique() {
        let names = preset_names();
        for n in &names {
            assert_eq!(preset(n).map(|p| p.name), Some(*n));
        }
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len());
        assert!(preset("signed").is_none());
    }

    #[test]
    fn classifies_common_artifacts() {
        assert_eq!(
            classify(Some(oci::COSIGN_ARTIFACT_SIG), None, &[], &[]),
            vec![K::CosignSignature]
        );
        // cosign v3 bundle: artifactType is the bundle type; a signature predicate.
        assert_eq!(
            classify(
                Some("application/vnd.dev.sigstore.bundle.v0.3+json"),
                Some(oci::OCI_EMPTY),
                &["application/vnd.dev.sigstore.bundle.v0.3+json"],
                &["https://sigstore.dev/cosign/sign/v1"]
            ),
            vec![K::SigstoreBundle]
        );
        // A bundle carrying a SLSA statement (actions/attest) is provenance, not a signature.
        assert_eq!(
            classify(
                Some("application/vnd.dev.sigstore.bundle.v0.3+json"),
                Some(oci::OCI_EMPTY),
                &["application/vnd.dev.sigstore.bundle.v0.3+json"],
                &["https://slsa.dev/provenance/v1"]
            ),
            vec![K::SlsaProvenance]
        );
        assert_eq!(
            classify(
                Some("application/vnd.dev.sigstore.bundle.v0.3+json"),
                None,
                &[],
                &["https://example.com/custom/v1"]
            ),
            vec![K::InTotoAttestation]
        );
        // Older spelling with a version parameter.
        assert_eq!(
            classify(
                Some("application/vnd.dev.sigstore.bundle+json;version=0.2"),
                None,
                &[],
                &[]
            ),
            vec![K::SigstoreBundle]
        );
        // Trivy referrer plugin: type in config.mediaType only.
        assert_eq!(
            classify(None, Some(oci::CYCLONEDX_JSON), &[], &[]),
            vec![K::CyclonedxSbom]
        );
        // ggcr-written fallback index with the empty type: the layer tells.
        assert_eq!(
            classify(
                Some(oci::OCI_EMPTY),
                Some(oci::OCI_EMPTY),
                &[oci::SPDX_JSON],
                &[]
            ),
            vec![K::SpdxSbom]
        );
        // BuildKit SBOM attestation: in-toto layer with SPDX predicate.
        assert_eq!(
            classify(
                None,
                Some(oci::OCI_IMAGE_CONFIG),
                &[oci::IN_TOTO],
                &["https://spdx.dev/Document"]
            ),
            vec![K::SpdxSbom]
        );
        assert_eq!(
            classify(
                None,
                None,
                &[oci::IN_TOTO],
                &["https://slsa.dev/provenance/v1"]
            ),
            vec![K::SlsaProvenance]
        );
        assert_eq!(
            classify(Some("application/x-unknown"), None, &[], &[]),
            vec![K::Other]
        );
    }

    #[test]
    fn umbrella_presets() {
        let sig = preset("signature").expect("preset");
        let sbom = preset("sbom").expect("preset");
        assert!(satisfies(sig, &[K::NotationSignature]));
        assert!(satisfies(sig, &[K::SigstoreBundle]));
        assert!(!satisfies(sig, &[K::SpdxSbom]));
        assert!(satisfies(sbom, &[K::CyclonedxSbom]));
        assert!(!satisfies(sbom, &[K::SlsaProvenance]));
        assert!(!satisfies(sbom, &[K::Other]));
    }

    #[test]
    fn uninformative_types() {
        assert!(is_uninformative(oci::OCI_EMPTY));
        assert!(is_uninformative(""));
        assert!(!is_uninformative(oci::SPDX_JSON));
    }
}
