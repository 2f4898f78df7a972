//! The walk of a subject's referrer tree: which method lists one subject (native first, the
//! tag fallbacks on an Unsupported answer, both for a union) and nesting to the depth asked.

use futures::future::{BoxFuture, FutureExt as _, join_all};

use super::fallback::fallback;
use super::native::{NativeAnswer, native};
use super::referrers::build;
use super::run::{RunContext, UnknownCause};
use crate::crd::EffectiveDiscoveryMode;
use crate::discovery::model::{AttachedTo, DiscoveryMethod, Referrer};
use crate::discovery::strategy::{
    self, ApiObservation, NativeDecision, Start, merge_referrers, sort_referrers,
};
use crate::reason::Reason;

/// Referrers of `subject` and, to `depth`, their referrers (nested, unfiltered).
pub(super) fn tree<'a>(
    ctx: &'a RunContext<'a>,
    subject: String,
    attached: AttachedTo,
    depth: u32,
    filters: &'a [String],
) -> BoxFuture<'a, Result<Vec<Referrer>, UnknownCause>> {
    async move {
        if !ctx.st().visited.insert(format!("{subject}|{attached:?}")) {
            return Ok(Vec::new());
        }
        let mut direct = list_direct(ctx, &subject, attached, filters).await?;
        if depth > 0 {
            nest(ctx, &mut direct, depth - 1).await?;
        }
        Ok(direct)
    }
    .boxed()
}

/// Fills `referrers` of each of `items` (to `depth` more levels).
pub(super) async fn nest(
    ctx: &RunContext<'_>,
    items: &mut [Referrer],
    depth: u32,
) -> Result<(), UnknownCause> {
    let futs = items
        .iter()
        .map(|r| tree(ctx, r.digest.clone(), AttachedTo::Referrer, depth, &[]));
    let nested = join_all(futs).await;
    for (r, n) in items.iter_mut().zip(nested) {
        let mut n = n?;
        sort_referrers(&mut n);
        r.referrers = n;
    }
    Ok(())
}

/// Direct referrers of one subject with the method of this run (and, for a union, the tags).
pub(super) async fn list_direct(
    ctx: &RunContext<'_>,
    subject: &str,
    attached: AttachedTo,
    filters: &[String],
) -> Result<Vec<Referrer>, UnknownCause> {
    let start = ctx.st().start;
    let Start::Native { forced, .. } = start else {
        return fallback(ctx, subject, attached, filters).await;
    };
    ctx.d.api_asked(&ctx.registry);
    match native(ctx, subject, filters).await? {
        NativeAnswer::Listed {
            descriptors,
            server_filtered,
            conformant,
        } => {
            ctx.method(DiscoveryMethod::Native);
            {
                let mut st = ctx.st();
                st.referrers_api = Some(true);
                st.start = Start::Native {
                    forced,
                    known: true,
                };
            }
            ctx.d.observe(
                &ctx.registry,
                ctx.hint,
                ApiObservation {
                    api: true,
                    conformant,
                },
            );
            if !conformant {
                ctx.note(format!(
                    "the referrers API answered with Content-Type {:?}, not an OCI image index (Harbor before 2.10): used anyway",
                    "application/json"
                ));
            }
            if !forced {
                ctx.d
                    .remember(&ctx.registry, &ctx.repo, EffectiveDiscoveryMode::Native);
            }
            let mut found = build(
                ctx,
                subject,
                attached,
                DiscoveryMethod::Native,
                descriptors,
                server_filtered,
                filters,
            )
            .await?;
            if ctx.union_with_tags() {
                let tags = fallback(ctx, subject, attached, filters).await?;
                merge_referrers(&mut found, tags);
            }
            Ok(found)
        }
        NativeAnswer::Unsupported { verdict, message } => {
            match strategy::decide_native(&verdict, start) {
                NativeDecision::Use => unreachable_use(),
                NativeDecision::Unknown(reason) => Err(UnknownCause::new(
                    reason,
                    match reason {
                        Reason::ReferrersApiUnsupported => {
                            format!("mode Native, but the registry has no referrers API: {message}")
                        }
                        _ => format!(
                            "referrers API answered a malformed index ({}): {message}",
                            verdict.reason
                        ),
                    },
                )),
                NativeDecision::Error => Err(UnknownCause::new(
                    Reason::parse(&verdict.reason).unwrap_or(Reason::UnexpectedStatus),
                    message,
                )),
                NativeDecision::NoReferrers => {
                    // Quay answers 400 for a subject it does not hold: no referrers from the API.
                    ctx.method(DiscoveryMethod::Native);
                    ctx.note(format!(
                        "referrers API answered 400 for {subject} (subject unknown to the registry): no referrers"
                    ));
                    if ctx.union_with_tags() {
                        return fallback(ctx, subject, attached, filters).await;
                    }
                    Ok(Vec::new())
                }
                NativeDecision::Fallback { remember } => {
                    if remember {
                        ctx.d.remember(
                            &ctx.registry,
                            &ctx.repo,
                            EffectiveDiscoveryMode::TagFallback,
                        );
                        ctx.d.observe(
                            &ctx.registry,
                            ctx.hint,
                            ApiObservation {
                                api: false,
                                conformant: true,
                            },
                        );
                        let mut st = ctx.st();
                        st.referrers_api = Some(false);
                        st.start = Start::Fallback;
                    }
                    ctx.note(format!(
                        "referrers API unsupported ({message}): used the tag fallbacks"
                    ));
                    fallback(ctx, subject, attached, filters).await
                }
            }
        }
    }
}

/// `decide_native` says `Use` only for a Supported verdict, which `native` lists itself.
pub(super) fn unreachable_use() -> Result<Vec<Referrer>, UnknownCause> {
    Err(UnknownCause::new(
        Reason::InvalidResponse,
        "the referrers API answer could not be read",
    ))
}
