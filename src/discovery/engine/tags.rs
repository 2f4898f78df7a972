//! A repository's tag list: read through the shared `Link` pagination, cached per repository,
//! coalesced, refreshed when too old to prove a tag absent.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use moka::ops::compute::Op;

use super::run::{RunContext, UnknownCause};
use crate::discovery::link::{self, LinkPagination, PageStep};
use crate::discovery::page::TagListPage;
use crate::discovery::strategy::TagListAnswer;
use crate::discovery::strategy::{self};
use crate::reason::Reason;
use crate::registry::{Endpoint, RegistryRequest, Scope};
use url::Url;

/// A repository's tags, or the fact that they cannot be listed.
#[derive(Debug)]
pub(super) enum RepositoryTags {
    Complete {
        tags: BTreeSet<String>,
        read_at: Instant,
    },
    Unavailable,
}

/// The repository's tags (cached per (registry, repository) for `tag_list_ttl`;
/// concurrent listings coalesce). `Unavailable` when listing is not possible
/// or too large: the fallbacks then GET their tags directly.
pub(super) async fn tag_list(ctx: &RunContext<'_>) -> Result<Arc<RepositoryTags>, UnknownCause> {
    let key = (ctx.registry.clone(), ctx.repo.clone());
    ctx.d
        .inner
        .tag_lists
        .try_get_with(key, list_tags(ctx))
        .await
        .map_err(|e: Arc<UnknownCause>| (*e).clone())
}

/// Reads the repository's tag list again unless someone already did after `stale` was read
/// (concurrent refreshes of one repository share one listing).
pub(super) async fn refresh_tag_list(
    ctx: &RunContext<'_>,
    stale: Instant,
) -> Result<Arc<RepositoryTags>, UnknownCause> {
    let key = (ctx.registry.clone(), ctx.repo.clone());
    let result = ctx
        .d
        .inner
        .tag_lists
        .entry(key)
        .and_try_compute_with(|current| async move {
            if let Some(e) = current
                && let RepositoryTags::Complete { read_at, .. } = e.value().as_ref()
                && *read_at > stale
            {
                return Ok::<_, UnknownCause>(Op::Nop);
            }
            Ok(Op::Put(list_tags(ctx).await?))
        })
        .await?;
    match result.into_entry() {
        Some(e) => Ok(e.into_value()),
        None => tag_list(ctx).await,
    }
}

/// Reads the repository's tag list, page by page through the shared `Link` pagination.
pub(super) async fn list_tags(ctx: &RunContext<'_>) -> Result<Arc<RepositoryTags>, UnknownCause> {
    let cfg = &ctx.d.inner.config;
    ctx.d.inner.tag_list_reads.fetch_add(1, Ordering::Relaxed);
    let read_at = Instant::now();
    let mut tags = BTreeSet::new();
    let mut next: Option<Url> = None;
    let mut pagination = LinkPagination::new(cfg.max_tag_pages);
    for page in 0..cfg.max_tag_pages {
        let req = match &next {
            None => RegistryRequest::get(format!("/v2/{}/tags/list", ctx.repo), Endpoint::TagList)
                .query("n", cfg.tag_page_size.to_string()),
            Some(url) => RegistryRequest::get(url.as_str(), Endpoint::TagList),
        }
        .accept("application/json")
        .scope(Scope::pull(&ctx.repo));
        let resp = ctx
            .send(req)
            .await
            .map_err(|e| UnknownCause::from_error(&e))?;
        match strategy::tag_list_answer(resp.status.as_u16(), &resp.error_codes(), page == 0) {
            TagListAnswer::Page => {}
            TagListAnswer::Unavailable => return Ok(Arc::new(RepositoryTags::Unavailable)),
            TagListAnswer::Failed => return Err(UnknownCause::from_status("tag list", &resp)),
        }
        let body: TagListPage = resp
            .json()
            .map_err(|e| UnknownCause::new(Reason::InvalidResponse, e.to_string()))?;
        let got = body.tags.unwrap_or_default();
        let candidate = link::next_tag_page(
            &resp.headers,
            &resp.url,
            cfg.tag_page_size,
            got.len(),
            got.last().map(String::as_str),
        );
        tags.extend(got);
        match pagination.step(candidate) {
            PageStep::Complete => return Ok(Arc::new(RepositoryTags::Complete { tags, read_at })),
            PageStep::Loop(_) => {
                // A looping tag list may hide fallback tags: fetch them directly instead.
                ctx.note(format!(
                    "repository {}: the tag list pagination loops; fallback tags fetched directly",
                    ctx.repo
                ));
                return Ok(Arc::new(RepositoryTags::Unavailable));
            }
            PageStep::Limit { .. } => break,
            PageStep::Follow(url) => next = Some(url),
        }
    }
    ctx.note(format!(
        "repository {} has more than {} tag pages: fallback tags fetched directly",
        ctx.repo, cfg.max_tag_pages
    ));
    Ok(Arc::new(RepositoryTags::Unavailable))
}
