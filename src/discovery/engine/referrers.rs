//! Listed descriptors, cosign tags and in-index attestations turned into [`Referrer`]s
//! (client-side filter, manifests read and classified where needed).

use std::collections::HashSet;

use futures::future::join_all;

use super::manifests::{FetchedManifest, fetch_manifest};
use super::run::{RunContext, UnknownCause};
use super::walk::nest;
use crate::discovery::classify::{self};
use crate::discovery::model::{ArtifactKind, AttachedTo, DiscoveryMethod, Format, Referrer};
use crate::discovery::tagschema::{CosignSuffix, ListedDescriptor};
use crate::oci;

/// One referrer from a listed descriptor. `read`: fetch its manifest (cached by digest) to
/// classify it and check its `subject`; otherwise it is judged by the descriptor, and left
/// [`Format::Unclassified`] (no kinds) when the descriptor does not say what it is.
/// `None`: the descriptor is not a referrer of `subject` after all (manifest gone, not JSON,
/// another subject).
pub(super) async fn referrer_from(
    ctx: &RunContext<'_>,
    subject: &str,
    attached: AttachedTo,
    method: DiscoveryMethod,
    d: &ListedDescriptor,
    read: bool,
) -> Result<Option<Referrer>, UnknownCause> {
    let base = |artifact_type, kinds, media_type, format, predicate_type| Referrer {
        digest: d.digest.clone(),
        media_type,
        artifact_type,
        kinds,
        format,
        predicate_type,
        size: d.size,
        annotations: d.annotations.clone(),
        method,
        subject: subject.to_string(),
        attached_to: attached,
        tag: None,
        repository: None,
        platform: None,
        referrers: Vec::new(),
    };
    if !read {
        if classify::needs_fetch(d) {
            return Ok(Some(base(
                d.artifact_type.clone(),
                Vec::new(),
                d.media_type.clone(),
                Format::Unclassified,
                classify::descriptor_predicate_type(d),
            )));
        }
        return Ok(Some(base(
            d.artifact_type.clone(),
            classify::descriptor_kinds(d),
            d.media_type.clone(),
            classify::descriptor_format(d),
            classify::descriptor_predicate_type(d),
        )));
    }
    let Some(f) = fetch_manifest(ctx, &d.digest).await? else {
        ctx.note(format!(
            "{} is listed as a referrer of {subject} but its manifest is gone: ignored",
            d.digest
        ));
        return Ok(None);
    };
    let Some(facts) = f.facts.as_ref() else {
        ctx.note(format!("{} is not a JSON manifest: ignored", d.digest));
        return Ok(None);
    };
    let has_subject = facts.subject.as_deref() == Some(subject);
    if !has_subject && (facts.subject.is_some() || method == DiscoveryMethod::TagSchema) {
        ctx.note(format!(
            "{} is listed for {subject} but its manifest's subject is {}: ignored",
            d.digest,
            facts.subject.as_deref().unwrap_or("missing")
        ));
        return Ok(None);
    }
    let (at, kinds) = classify::classify_fetched(d.artifact_type.as_deref(), facts);
    let mt = if d.media_type.is_empty() {
        facts.media_type.clone().or(f.content_type.clone())
    } else {
        Some(d.media_type.clone())
    };
    let format = classify::manifest_format(d.artifact_type.as_deref(), facts, None);
    let predicate = facts
        .predicate_types
        .first()
        .cloned()
        .or_else(|| classify::descriptor_predicate_type(d));
    let mut r = base(at, kinds, mt.unwrap_or_default(), format, predicate);
    for (k, v) in &facts.annotations {
        r.annotations.entry(k.clone()).or_insert_with(|| v.clone());
    }
    Ok(Some(r))
}

/// Turns listed descriptors into referrers: client-side filter, fetch and
/// classify where needed, check fetched manifests' `subject`.
pub(super) async fn build(
    ctx: &RunContext<'_>,
    subject: &str,
    attached: AttachedTo,
    method: DiscoveryMethod,
    descriptors: Vec<ListedDescriptor>,
    server_filtered: bool,
    filters: &[String],
) -> Result<Vec<Referrer>, UnknownCause> {
    let mut seen = HashSet::new();
    let candidates: Vec<ListedDescriptor> = descriptors
        .into_iter()
        .filter(|d| d.digest != subject && seen.insert(d.digest.clone()))
        .filter(|d| server_filtered || !classify::filtered_out_early(filters, d))
        .collect();
    let futs = candidates.into_iter().map(|d| async move {
        // Entries of a fallback tag index are written by clients, not the registry: each
        // must really have this subject, so its manifest is always checked (cached by digest).
        // A client-side filter needs to know what an uninformative descriptor is.
        let read = method == DiscoveryMethod::TagSchema
            || classify::must_read_manifest(&d, ctx.reach)
            || (!filters.is_empty() && !server_filtered && classify::needs_fetch(&d));
        let Some(r) = referrer_from(ctx, subject, attached, method, &d, read).await? else {
            return Ok::<_, UnknownCause>(None);
        };
        if !server_filtered && !classify::matches_filter(filters, r.artifact_type.as_deref()) {
            return Ok(None);
        }
        Ok(Some(r))
    });
    let mut out = Vec::new();
    for r in join_all(futs).await {
        if let Some(r) = r? {
            out.push(r);
        }
    }
    Ok(out)
}

/// A referrer from a cosign legacy tag.
pub(super) fn cosign_referrer(
    subject: &str,
    attached: AttachedTo,
    suffix: CosignSuffix,
    tag: &str,
    f: &FetchedManifest,
) -> Option<Referrer> {
    let facts = f.facts.as_ref()?;
    let informative_layer = facts
        .layer_media_types
        .iter()
        .find(|m| !crate::discovery::presets::is_uninformative(m))
        .cloned();
    let artifact_type = facts
        .artifact_type
        .clone()
        .or(informative_layer)
        .unwrap_or_else(|| suffix.default_artifact_type().to_string());
    let (_, mut kinds) = classify::classify_fetched(None, facts);
    if kinds == [ArtifactKind::Other] {
        kinds = vec![suffix.default_kind()];
    }
    if suffix == CosignSuffix::Sig && !kinds.contains(&ArtifactKind::CosignSignature) {
        kinds.push(ArtifactKind::CosignSignature);
        kinds.sort();
    }
    let mut format = classify::manifest_format(None, facts, Some(suffix));
    if suffix == CosignSuffix::Sig && format == Format::Other {
        format = Format::CosignSimpleSigning;
    }
    Some(Referrer {
        digest: f.digest.clone(),
        media_type: facts
            .media_type
            .clone()
            .or(f.content_type.clone())
            .unwrap_or_default(),
        artifact_type: Some(artifact_type),
        kinds,
        format,
        predicate_type: facts.predicate_types.first().cloned(),
        size: f.size,
        annotations: facts.annotations.clone().into_iter().collect(),
        method: DiscoveryMethod::CosignTag,
        subject: subject.to_string(),
        attached_to: attached,
        tag: Some(tag.to_string()),
        repository: None,
        platform: None,
        referrers: Vec::new(),
    })
}

/// BuildKit attestation manifests inside an index, as referrers of the platform manifest they
/// describe; to `depth`, their own referrers (buildx signs attestation manifests).
pub(super) async fn in_index(
    ctx: &RunContext<'_>,
    atts: Vec<(ListedDescriptor, String)>,
    attached: AttachedTo,
    depth: u32,
    filters: &[String],
) -> Result<Vec<Referrer>, UnknownCause> {
    let futs = atts.into_iter().map(|(d, target)| async move {
        let fetched = fetch_manifest(ctx, &d.digest).await?;
        let facts = fetched.as_ref().and_then(|f| f.facts.as_ref());
        let (artifact_type, kinds, predicate_type) = match facts {
            Some(facts) => {
                let (_, kinds) = classify::classify_fetched(None, facts);
                let at = facts
                    .artifact_type
                    .clone()
                    .or_else(|| facts.layer_media_types.first().cloned())
                    .unwrap_or_else(|| oci::IN_TOTO.to_string());
                (Some(at), kinds, facts.predicate_types.first().cloned())
            }
            None => (
                Some(oci::IN_TOTO.to_string()),
                vec![ArtifactKind::InTotoAttestation],
                None,
            ),
        };
        if !classify::matches_filter(filters, artifact_type.as_deref()) {
            return Ok::<_, UnknownCause>(None);
        }
        Ok(Some(Referrer {
            digest: d.digest.clone(),
            media_type: d.media_type.clone(),
            artifact_type,
            kinds,
            format: Format::BuildkitAttestation,
            predicate_type,
            size: d.size,
            annotations: d.annotations.clone(),
            method: DiscoveryMethod::InIndex,
            subject: target,
            attached_to: attached,
            tag: None,
            repository: None,
            platform: None,
            referrers: Vec::new(),
        }))
    });
    let mut out = Vec::new();
    for r in join_all(futs).await {
        out.extend(r?);
    }
    if depth > 0 {
        nest(ctx, &mut out, depth - 1).await?;
    }
    Ok(out)
}
