//! The tag fallbacks of one subject: the OCI tag schema index and cosign's legacy tags, read
//! only when the repository's tag list says they exist.

use futures::future::join_all;

use super::manifests::fetch_manifest;
use super::referrers::{build, cosign_referrer};
use super::run::{RunContext, UnknownCause};
use super::tags::{RepositoryTags, refresh_tag_list, tag_list};
use crate::discovery::classify::{self};
use crate::discovery::model::{AttachedTo, DiscoveryMethod, Referrer};
use crate::discovery::strategy::{self};
use crate::discovery::tagschema::{self, CosignSuffix};

/// The OCI tag schema index and cosign's legacy tags of one subject.
pub(super) async fn fallback(
    ctx: &RunContext<'_>,
    subject: &str,
    attached: AttachedTo,
    filters: &[String],
) -> Result<Vec<Referrer>, UnknownCause> {
    ctx.method(DiscoveryMethod::TagSchema);
    ctx.method(DiscoveryMethod::CosignTag);
    let index_tag = tagschema::fallback_tag(subject);
    let cosign_tags: Vec<(CosignSuffix, String)> = CosignSuffix::ALL
        .into_iter()
        .map(|s| (s, tagschema::cosign_tag(subject, s)))
        .collect();
    let mut tags = tag_list(ctx).await?;
    if let RepositoryTags::Complete { tags: set, read_at } = tags.as_ref() {
        let any = set.contains(&index_tag) || cosign_tags.iter().any(|(_, t)| set.contains(t));
        if !any
            && !strategy::tag_list_proves_absence(
                *read_at,
                ctx.started,
                ctx.d.inner.config.tag_absence_slack,
            )
        {
            // The list is older than this discovery: a tag pushed since would be missed.
            tags = refresh_tag_list(ctx, *read_at).await?;
        }
    }
    let exists = |t: &str| match tags.as_ref() {
        RepositoryTags::Complete { tags, .. } => tags.contains(t),
        RepositoryTags::Unavailable => true,
    };
    let index_present = exists(&index_tag);
    let index_fut = async {
        if !index_present {
            return Ok(Vec::new());
        }
        let Some(f) = fetch_manifest(ctx, &index_tag).await? else {
            return Ok(Vec::new());
        };
        match tagschema::validate_fallback_index(
            subject,
            f.content_type.as_deref(),
            &f.digest,
            &f.body,
        ) {
            Err(rej) => {
                ctx.note(format!("tag {index_tag}: {rej}"));
                Ok(Vec::new())
            }
            Ok(v) => {
                if v.dropped_platform_entries > 0 {
                    ctx.note(format!(
                        "tag {index_tag}: {} platform manifest entries are not referrers: ignored",
                        v.dropped_platform_entries
                    ));
                }
                build(
                    ctx,
                    subject,
                    attached,
                    DiscoveryMethod::TagSchema,
                    v.descriptors,
                    false,
                    filters,
                )
                .await
            }
        }
    };
    let cosign_futs = cosign_tags.into_iter().map(|(suffix, tag)| {
        let present = exists(&tag);
        async move {
            if !present {
                return Ok(None);
            }
            let Some(f) = fetch_manifest(ctx, &tag).await? else {
                return Ok(None);
            };
            if f.digest == subject {
                return Ok(None);
            }
            Ok(cosign_referrer(subject, attached, suffix, &tag, &f)
                .filter(|r| classify::matches_filter(filters, r.artifact_type.as_deref())))
        }
    });
    let (index, cosign) = futures::join!(index_fut, join_all(cosign_futs));
    let mut out: Vec<Referrer> = index?;
    for c in cosign {
        let c: Option<Referrer> = c?;
        out.extend(c);
    }
    Ok(out)
}
