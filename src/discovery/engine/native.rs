//! The referrers API listing of one subject (`GET /v2/<name>/referrers/<digest>`), its pages
//! followed through the shared `Link` pagination.

use super::run::{RunContext, UnknownCause};
use crate::crd::CapabilityState;
use crate::discovery::classify::{self};
use crate::discovery::link::{self, LinkPagination, PageStep};
use crate::discovery::page::IndexPage;
use crate::discovery::strategy::NativeVerdict;
use crate::discovery::tagschema::ListedDescriptor;
use crate::oci;
use crate::probe::to_answer;
use crate::probe::verdict::{self, Observation};
use crate::reason::Reason;
use crate::registry::{Endpoint, RegistryRequest, RegistryResponse, Scope};

/// How the first native answer turned out.
pub(super) enum NativeAnswer {
    Listed {
        descriptors: Vec<ListedDescriptor>,
        server_filtered: bool,
        /// The answer's `Content-Type` was the OCI index one (Harbor ≤ 2.9 sends `application/json`).
        conformant: bool,
    },
    Unsupported {
        verdict: NativeVerdict,
        message: String,
    },
}

/// `GET /v2/<name>/referrers/<digest>` with pagination.
pub(super) async fn native(
    ctx: &RunContext<'_>,
    subject: &str,
    filters: &[String],
) -> Result<NativeAnswer, UnknownCause> {
    let path = format!("/v2/{}/referrers/{subject}", ctx.repo);
    let mut req = RegistryRequest::get(&path, Endpoint::Referrers)
        .accept(oci::OCI_INDEX)
        .scope(Scope::pull(&ctx.repo));
    // The spec defines one artifactType filter; with several, filter client-side.
    let sent_filter = filters.len() == 1;
    if sent_filter {
        req = req.query("artifactType", &filters[0]);
    }
    let resp = ctx
        .send(req)
        .await
        .map_err(|e| UnknownCause::from_error(&e))?;
    let cap = verdict::referrers_api(&Observation::Answered(to_answer(&resp)));
    match cap.state {
        CapabilityState::Supported => {}
        CapabilityState::Unsupported => {
            return Ok(NativeAnswer::Unsupported {
                verdict: NativeVerdict {
                    state: cap.state,
                    reason: cap.reason.clone(),
                    http_status: cap.http_status,
                },
                message: format!("{}: {}", cap.reason, cap.message.unwrap_or_default()),
            });
        }
        CapabilityState::Unknown => {
            return Err(match resp.status.as_u16() {
                401 | 403 | 429 | 500..=599 | 404 => {
                    UnknownCause::from_status("referrers API", &resp)
                }
                _ => UnknownCause::new(
                    Reason::parse(&cap.reason).unwrap_or(Reason::UnexpectedStatus),
                    cap.message.unwrap_or_default(),
                ),
            });
        }
    }
    let conformant = cap.reason != verdict::NON_CONFORMANT_CONTENT_TYPE;
    let page = decode_page(&resp)?;
    let mut server_filtered = sent_filter
        && classify::filter_applied(resp.header("oci-filters-applied"), &page.annotations);
    let mut descriptors = page.descriptors();
    let mut pagination = LinkPagination::new(ctx.d.inner.config.max_pages).first_page_at(&resp.url);
    let mut next = link::next_page(&resp.headers, &resp.url);
    loop {
        let url = match pagination.step(next.take()) {
            PageStep::Complete => break,
            PageStep::Follow(url) => url,
            PageStep::Loop(url) => {
                // A looping list may miss a required referrer: Unknown, not a violation.
                return Err(UnknownCause::new(
                    Reason::PaginationLoop,
                    format!(
                        "referrers of {subject}: the Link pagination loops at {url}; the list is incomplete"
                    ),
                ));
            }
            PageStep::Limit { pages } => {
                // A truncated list could miss a required referrer: Unknown, not a violation.
                return Err(UnknownCause::new(
                    Reason::TooManyPages,
                    format!(
                        "referrers of {subject}: more than {pages} pages (limit); the list is incomplete"
                    ),
                ));
            }
        };
        let req = RegistryRequest::get(url.as_str(), Endpoint::Referrers)
            .accept(oci::OCI_INDEX)
            .scope(Scope::pull(&ctx.repo));
        let resp = ctx
            .send(req)
            .await
            .map_err(|e| UnknownCause::from_error(&e))?;
        if resp.status.as_u16() != 200 {
            return Err(UnknownCause::from_status(
                "referrers API (next page)",
                &resp,
            ));
        }
        let page = decode_page(&resp)?;
        server_filtered = server_filtered
            && classify::filter_applied(resp.header("oci-filters-applied"), &page.annotations);
        descriptors.extend(page.descriptors());
        next = link::next_page(&resp.headers, &resp.url);
    }
    Ok(NativeAnswer::Listed {
        descriptors,
        server_filtered,
        conformant,
    })
}

/// One referrers page, decoded leniently ([`IndexPage`]); `InvalidResponse` when not JSON.
fn decode_page(resp: &RegistryResponse) -> Result<IndexPage, UnknownCause> {
    IndexPage::decode(&resp.body).map_err(|e| {
        UnknownCause::new(
            Reason::InvalidResponse,
            format!("referrers page {} is not JSON: {e}", resp.url),
        )
    })
}
