//! Artifacts laid out byte for byte the way each producer writes them (sources in
//! `../shared/reference/formats-in-the-wild.md` §1 and `verification.md` §1–§7), pushed with the
//! [`Seeder`]: cosign 2 `.sig` / `.att` tags, cosign 3 bundle referrers and the fallback index
//! ggcr writes for them, notation signatures (JWS, COSE; notation 1.2–1.3 also writes the tag
//! index), BuildKit indexes with attestation manifests (in the index, and from 0.32 also as
//! referrers), signatures on attestation manifests (docker/github-builder), actions/attest
//! bundles, `oras attach` SBOMs with a signature on the SBOM, and cosign signatures in another
//! repository (`COSIGN_REPOSITORY`).
//!
//! Payloads are shaped like the real ones but not signed: discovery looks at layouts, not
//! signatures.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::seed::{ArtifactSpec, PushedArtifact, PushedIndex, Seeder, Subject, referrers_tag_for};
use super::{Result, digest_of, media};

/// `application/vnd.dev.sigstore.bundle.v0.3+json`.
pub const BUNDLE_V03: &str = media::SIGSTORE_BUNDLE_V03;
/// cosign 3's signature predicate (a DSSE statement inside the bundle).
pub const COSIGN_SIGN_PREDICATE: &str = "https://sigstore.dev/cosign/sign/v1";
/// SLSA provenance v1.
pub const SLSA_V1: &str = "https://slsa.dev/provenance/v1";
/// Notary Project signature artifact type.
pub const NOTATION: &str = "application/vnd.cncf.notary.signature";
/// BuildKit (0.32+) attestation manifest artifact type.
pub const BUILDKIT_ATTESTATION: &str = "application/vnd.docker.attestation.manifest.v1+json";

fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The config blob cosign ≤ 2 writes for `.sig` / `.att` images (an empty image config).
fn cosign_config(layer_digest: &str) -> Vec<u8> {
    json!({
        "architecture": "", "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}], "os": "",
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]}, "config": {},
    })
    .to_string()
    .into_bytes()
}

/// Pushes an image manifest with one config and `layers` (media type, bytes, annotations) under
/// `reference`; returns its digest and bytes.
pub async fn push_layers(
    seeder: &Seeder,
    repo: &str,
    reference: Option<&str>,
    config: (&str, Vec<u8>),
    layers: &[(&str, Vec<u8>, Value)],
    manifest_extra: Value,
) -> Result<(String, Vec<u8>)> {
    let config_digest = seeder.push_blob(repo, &config.1).await?;
    let mut descs = Vec::new();
    for (mt, bytes, ann) in layers {
        let d = seeder.push_blob(repo, bytes).await?;
        let mut desc = json!({"mediaType": mt, "digest": d, "size": bytes.len()});
        if ann.as_object().is_some_and(|o| !o.is_empty()) {
            desc["annotations"] = ann.clone();
        }
        descs.push(desc);
    }
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": config.0, "digest": config_digest, "size": config.1.len()},
        "layers": descs,
    });
    if let (Some(m), Some(extra)) = (manifest.as_object_mut(), manifest_extra.as_object()) {
        for (k, v) in extra {
            m.insert(k.clone(), v.clone());
        }
    }
    let bytes = serde_json::to_vec(&manifest)?;
    let digest = digest_of(&bytes);
    let reference = reference
        .map(str::to_string)
        .unwrap_or_else(|| digest.clone());
    seeder
        .push_manifest(repo, &reference, media::OCI_MANIFEST, &bytes)
        .await?;
    Ok((digest, bytes))
}

/// cosign 1.x/2.x `sign` (default `--registry-referrers-mode legacy`): tag
/// `sha256-<hex>.sig` in `repo` (the image's or `$COSIGN_REPOSITORY`), one simple-signing
/// layer (blob = the payload) with the `dev.cosignproject.cosign/signature` annotation.
pub async fn cosign2_sign(seeder: &Seeder, repo: &str, subject_digest: &str) -> Result<String> {
    let payload = json!({
        "critical": {
            "identity": {"docker-reference": format!("registry.example/{repo}")},
            "image": {"docker-manifest-digest": subject_digest},
            "type": "cosign container image signature",
        },
        "optional": null,
    })
    .to_string()
    .into_bytes();
    let layer_digest = digest_of(&payload);
    let (digest, _) = push_layers(
        seeder,
        repo,
        Some(&format!("{}.sig", referrers_tag_for(subject_digest))),
        (media::OCI_CONFIG, cosign_config(&layer_digest)),
        &[(
            media::COSIGN_SIMPLESIGNING,
            payload,
            json!({"dev.cosignproject.cosign/signature": "MEUCIQDsimulatedsignature=="}),
        )],
        json!({}),
    )
    .await?;
    Ok(digest)
}

/// cosign 2 `sign --key` for real: tag `sha256-<hex>.sig` of `subject_digest` holding one
/// simple-signing layer over `signed_digest` (the subject's own, or another one for a moved
/// signature), signed by `key`. Returns the `.sig` manifest digest and the layer digest.
pub async fn cosign2_sign_with_key(
    seeder: &Seeder,
    repo: &str,
    subject_digest: &str,
    signed_digest: &str,
    key: &crate::sigstore_gen::Key,
) -> Result<(String, String)> {
    let payload = crate::sigstore_docs::simple_signing_payload(signed_digest);
    let signature = crate::sigstore_gen::b64(&key.sign(&payload));
    let layer_digest = digest_of(&payload);
    let (digest, _) = push_layers(
        seeder,
        repo,
        Some(&format!("{}.sig", referrers_tag_for(subject_digest))),
        (media::OCI_CONFIG, cosign_config(&layer_digest)),
        &[(
            media::COSIGN_SIMPLESIGNING,
            payload,
            json!({"dev.cosignproject.cosign/signature": signature}),
        )],
        json!({}),
    )
    .await?;
    Ok((digest, layer_digest))
}

/// cosign 1.x/2.x `attest --type <t>`: tag `sha256-<hex>.att`, one DSSE envelope layer with
/// the `predicateType` annotation and an empty signature annotation.
pub async fn cosign2_attest(
    seeder: &Seeder,
    repo: &str,
    subject_digest: &str,
    predicate_type: &str,
) -> Result<String> {
    use base64::Engine as _;
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": predicate_type,
        "subject": [{"name": format!("registry.example/{repo}"),
                     "digest": {"sha256": subject_digest.trim_start_matches("sha256:")}}],
        "predicate": {},
    });
    let envelope = json!({
        "payloadType": "application/vnd.in-toto+json",
        "payload": base64::engine::general_purpose::STANDARD.encode(statement.to_string()),
        "signatures": [{"keyid": "", "sig": "MEUCIQDsimulated=="}],
    })
    .to_string()
    .into_bytes();
    let layer_digest = digest_of(&envelope);
    let (digest, _) = push_layers(
        seeder,
        repo,
        Some(&format!("{}.att", referrers_tag_for(subject_digest))),
        (media::OCI_CONFIG, cosign_config(&layer_digest)),
        &[(
            media::DSSE_ENVELOPE,
            envelope,
            json!({"dev.cosignproject.cosign/signature": "", "predicateType": predicate_type}),
        )],
        json!({}),
    )
    .await?;
    Ok(digest)
}

/// A sigstore bundle v0.3 referrer as cosign 3 `sign` / `attest` and actions/attest write it
/// (cosign `specs/BUNDLE_SPEC.md`): `artifactType` = the bundle type, empty config, one bundle
/// layer titled `sha256-<hex>.sigstore.json`, manifest annotations `dev.sigstore.bundle.content`,
/// `dev.sigstore.bundle.predicateType`, `org.opencontainers.image.created`.
pub async fn bundle_referrer(
    seeder: &Seeder,
    repo: &str,
    subject: &Subject,
    predicate_type: &str,
) -> Result<PushedArtifact> {
    let bundle = json!({
        "mediaType": BUNDLE_V03,
        "verificationMaterial": {"certificate": {"rawBytes": "MIIC..."}, "tlogEntries": []},
        "dsseEnvelope": {"payloadType": "application/vnd.in-toto+json", "payload": "e30=",
                         "signatures": [{"sig": "MEUCIQ..."}]},
        "predicateType": predicate_type,
        "subject": subject.digest,
    })
    .to_string()
    .into_bytes();
    seeder
        .push_artifact_spec(
            repo,
            &ArtifactSpec {
                subject: Some(subject.clone()),
                artifact_type: Some(BUNDLE_V03.to_string()),
                config: None,
                layer_media_type: BUNDLE_V03.to_string(),
                payload: bundle,
                annotations: annotations(&[
                    ("dev.sigstore.bundle.content", "dsse-envelope"),
                    ("dev.sigstore.bundle.predicateType", predicate_type),
                    ("org.opencontainers.image.created", "2026-11-30T12:00:00Z"),
                ]),
                tag: None,
            },
        )
        .await
}

/// The `sha256-<hex>` index ggcr writes for a bundle referrer on a registry without the API:
/// before ggcr v0.21.6 (cosign ≤ 3.0.6) the descriptor's `artifactType` is
/// `application/vnd.oci.empty.v1+json` and it has no annotations (google/go-containerregistry
/// #2269; NVIDIA/aicr#1957).
pub async fn ggcr_fallback_index_untyped(
    seeder: &Seeder,
    repo: &str,
    subject_digest: &str,
    referrer: &PushedArtifact,
) -> Result<String> {
    let d = json!({
        "mediaType": referrer.media_type,
        "digest": referrer.digest,
        "size": referrer.size,
        "artifactType": media::OCI_EMPTY,
    });
    seeder
        .push_referrers_tag_index(repo, subject_digest, &[d])
        .await
}

/// The `sha256-<hex>` index actions/attest writes (sigstore-js `packages/oci`): typed and
/// annotated descriptors.
pub async fn typed_fallback_index(
    seeder: &Seeder,
    repo: &str,
    subject_digest: &str,
    referrers: &[&PushedArtifact],
) -> Result<String> {
    let ds: Vec<Value> = referrers.iter().map(|r| r.descriptor()).collect();
    seeder
        .push_referrers_tag_index(repo, subject_digest, &ds)
        .await
}

/// Which envelope a notation signature uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Envelope {
    /// `application/jose+json`.
    Jws,
    /// `application/cose`.
    Cose,
}

/// `notation sign` (oci-referrers §2.5): `artifactType` `application/vnd.cncf.notary.signature`,
/// empty config, one envelope layer, annotations `io.cncf.notary.x509chain.thumbprint#S256` and
/// `org.opencontainers.image.created`. With `tag_index` (notation 1.2–1.3's default
/// `--force-referrers-tag=true`, notaryproject/notation#1192) the `sha256-<hex>` index is
/// written too, even on a registry with the API.
pub async fn notation_sign(
    seeder: &Seeder,
    repo: &str,
    subject: &Subject,
    envelope: Envelope,
    tag_index: bool,
) -> Result<PushedArtifact> {
    let (layer_mt, payload) = match envelope {
        Envelope::Jws => (
            "application/jose+json",
            br#"{"payload":"eyJ0YXJnZXRBcnRpZmFjdCI6e319","protected":"eyJhbGciOiJQUzI1NiJ9","header":{"x5c":[]},"signature":"c2ln"}"#.to_vec(),
        ),
        Envelope::Cose => ("application/cose", vec![0xd2, 0x84, 0x40, 0xa0, 0x40, 0x40]),
    };
    let art = seeder
        .push_artifact_spec(
            repo,
            &ArtifactSpec {
                subject: Some(subject.clone()),
                artifact_type: Some(NOTATION.to_string()),
                config: None,
                layer_media_type: layer_mt.to_string(),
                payload,
                annotations: annotations(&[
                    (
                        "io.cncf.notary.x509chain.thumbprint#S256",
                        "[\"a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2\"]",
                    ),
                    ("org.opencontainers.image.created", "2026-11-30T12:00:00Z"),
                ]),
                tag: None,
            },
        )
        .await?;
    if tag_index {
        seeder
            .push_referrers_tag_index(repo, &subject.digest, &[art.descriptor()])
            .await?;
    }
    Ok(art)
}

/// An image built by BuildKit with SBOM and provenance attestations: a two-platform index
/// whose attestation manifests sit inside it (`vnd.docker.reference.type: attestation-manifest`,
/// `vnd.docker.reference.digest: <platform>`, platform `unknown/unknown`, in-toto layers with
/// `in-toto.io/predicate-type`). With `as_referrers` (BuildKit ≥ 0.32 with OCI media types,
/// moby/buildkit 9a16a73) each attestation manifest also carries `artifactType` and `subject` =
/// its platform manifest.
pub struct BuildkitImage {
    pub index: PushedIndex,
    /// Attestation manifest digest per platform (same order as `index.images`).
    pub attestations: Vec<String>,
}

/// See [`BuildkitImage`].
pub async fn buildkit_image(
    seeder: &Seeder,
    repo: &str,
    tag: &str,
    as_referrers: bool,
) -> Result<BuildkitImage> {
    let base = seeder.push_index(repo, &format!("{tag}-platforms")).await?;
    let mut manifests: Vec<Value> = serde_json::from_slice::<Value>(&base.manifest_bytes)?
        .get("manifests")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut attestations = Vec::new();
    for img in &base.images {
        let sbom = json!({"_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://spdx.dev/Document",
            "subject": [{"digest": {"sha256": img.digest.trim_start_matches("sha256:")}}],
            "predicate": {"spdxVersion": "SPDX-2.3"}})
        .to_string()
        .into_bytes();
        let provenance = json!({"_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://slsa.dev/provenance/v0.2",
            "subject": [{"digest": {"sha256": img.digest.trim_start_matches("sha256:")}}],
            "predicate": {"builder": {"id": "https://github.com/docker/buildx"}}})
        .to_string()
        .into_bytes();
        let mut extra = json!({});
        if as_referrers {
            extra = json!({
                "artifactType": BUILDKIT_ATTESTATION,
                "subject": {"mediaType": img.media_type, "digest": img.digest, "size": img.size},
            });
        }
        let (digest, bytes) = push_layers(
            seeder,
            repo,
            None,
            (media::OCI_EMPTY, b"{}".to_vec()),
            &[
                (
                    "application/vnd.in-toto+json",
                    sbom,
                    json!({"in-toto.io/predicate-type": "https://spdx.dev/Document"}),
                ),
                (
                    "application/vnd.in-toto+json",
                    provenance,
                    json!({"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"}),
                ),
            ],
            extra,
        )
        .await?;
        manifests.push(json!({
            "mediaType": media::OCI_MANIFEST,
            "digest": digest,
            "size": bytes.len(),
            "annotations": {
                "vnd.docker.reference.type": "attestation-manifest",
                "vnd.docker.reference.digest": img.digest,
            },
            "platform": {"os": "unknown", "architecture": "unknown"},
        }));
        attestations.push(digest);
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": manifests,
    }))?;
    let digest = seeder
        .push_manifest(repo, tag, media::OCI_INDEX, &index)
        .await?;
    Ok(BuildkitImage {
        index: PushedIndex {
            digest,
            size: index.len() as u64,
            manifest_bytes: index,
            media_type: media::OCI_INDEX.to_string(),
            images: base.images,
        },
        attestations,
    })
}

/// `oras attach --artifact-type application/spdx+json` (oras-go `pack.go`, v2.6): empty config,
/// the artifact type, one SPDX layer, `org.opencontainers.image.created`.
pub async fn oras_attach_sbom(
    seeder: &Seeder,
    repo: &str,
    subject: &Subject,
) -> Result<PushedArtifact> {
    seeder
        .push_artifact_spec(
            repo,
            &ArtifactSpec {
                subject: Some(subject.clone()),
                artifact_type: Some(media::SPDX_JSON.to_string()),
                config: None,
                layer_media_type: media::SPDX_JSON.to_string(),
                payload: br#"{"spdxVersion":"SPDX-2.3","name":"app"}"#.to_vec(),
                annotations: annotations(&[(
                    "org.opencontainers.image.created",
                    "2026-11-30T12:00:00Z",
                )]),
                tag: None,
            },
        )
        .await
}

/// cosign 3 `sign`: `bundle` attached to `subject` as an OCI 1.1 referrer of artifact type
/// `application/vnd.dev.sigstore.bundle.v0.3+json`, annotated as cosign annotates it.
pub async fn push_sigstore_bundle(
    seeder: &Seeder,
    repo: &str,
    subject: Subject,
    bundle: Vec<u8>,
) -> Result<PushedArtifact> {
    seeder
        .push_artifact_spec(
            repo,
            &ArtifactSpec {
                subject: Some(subject),
                artifact_type: Some(media::SIGSTORE_BUNDLE_V03.into()),
                config: None,
                layer_media_type: media::SIGSTORE_BUNDLE_V03.into(),
                payload: bundle,
                annotations: [
                    ("dev.sigstore.bundle.content", "dsse-envelope"),
                    (
                        "dev.sigstore.bundle.predicateType",
                        crate::sigstore_docs::COSIGN_SIGN_V1,
                    ),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
                tag: None,
            },
        )
        .await
}
