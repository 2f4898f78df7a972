//! One discovery run: its state, why it ends Unknown, and the steps from a request (or a
//! narrower cached answer) to the referrers of the digest, its index and its platforms.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::future::join_all;
use parking_lot::Mutex;

use super::Discoverer;
use super::fallback::fallback;
use super::manifests::fetch_manifest;
use super::referrers::{in_index, referrer_from};
use super::walk::tree;
use crate::crd::{DiscoveryMode, EffectiveDiscoveryMode};
use crate::discovery::classify;
use crate::discovery::model::{
    AttachedTo, DiscoveryMethod, DiscoveryOutcome, DiscoveryReport, DiscoveryRequest,
    PlatformManifest, Reach, Referrer,
};
use crate::discovery::strategy::{self, Start, merge_referrers, sort_referrers};
use crate::discovery::tagschema::ListedDescriptor;
use crate::oci;
use crate::reason::Reason;
use crate::registry::{RegistryClient, RegistryError, RegistryRequest, RegistryResponse};

/// Why a discovery is Unknown.
#[derive(Clone, Debug)]
pub(super) struct UnknownCause {
    pub(super) reason: Reason,
    pub(super) message: String,
}

impl UnknownCause {
    pub(super) fn new(reason: Reason, message: impl Into<String>) -> Self {
        UnknownCause {
            reason,
            message: message.into(),
        }
    }

    pub(super) fn from_error(e: &RegistryError) -> Self {
        UnknownCause::new(e.reason(), e.to_string())
    }

    /// A status that is neither success nor a documented "unsupported".
    pub(super) fn from_status(what: &str, resp: &RegistryResponse) -> Self {
        let s = resp.status.as_u16();
        let codes = resp.error_codes();
        let codes_text = if codes.is_empty() {
            String::new()
        } else {
            format!(" ({})", codes.join(", "))
        };
        let reason = resp.failure_reason().unwrap_or(Reason::UnexpectedStatus);
        UnknownCause::new(reason, format!("{what} answered HTTP {s}{codes_text}"))
    }
}

/// State of one discovery run.
pub(super) struct RunContext<'a> {
    pub(super) d: &'a Discoverer,
    pub(super) client: &'a RegistryClient,
    pub(super) registry: String,
    pub(super) repo: String,
    pub(super) mode: DiscoveryMode,
    pub(super) hint: Option<EffectiveDiscoveryMode>,
    pub(super) reach: Reach,
    pub(super) started: Instant,
    pub(super) requests: AtomicU64,
    pub(super) state: Mutex<RunState>,
}

pub(super) struct RunState {
    pub(super) start: Start,
    pub(super) referrers_api: Option<bool>,
    pub(super) methods: Vec<DiscoveryMethod>,
    pub(super) notes: Vec<String>,
    pub(super) visited: HashSet<String>,
    pub(super) subject_media_type: Option<String>,
    pub(super) platforms: Vec<PlatformManifest>,
}

impl RunContext<'_> {
    pub(super) fn st(&self) -> parking_lot::MutexGuard<'_, RunState> {
        self.state.lock()
    }
    pub(super) fn method(&self, m: DiscoveryMethod) {
        let mut st = self.st();
        if !st.methods.contains(&m) {
            st.methods.push(m);
        }
    }
    pub(super) fn note(&self, n: String) {
        let mut st = self.st();
        if !st.notes.contains(&n) && st.notes.len() < 50 {
            st.notes.push(n);
        }
    }
    /// Whether the tag fallbacks are added to what the referrers API answered.
    pub(super) fn union_with_tags(&self) -> bool {
        strategy::union_with_tags(self.mode, self.reach, true)
    }

    pub(super) async fn send(
        &self,
        req: RegistryRequest,
    ) -> Result<RegistryResponse, RegistryError> {
        let sem = self.d.semaphore(&self.registry);
        // The semaphore is never closed; a failed acquire just means no bound.
        let _permit = sem.acquire_owned().await.ok();
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.d.inner.requests.fetch_add(1, Ordering::Relaxed);
        self.client.send(req).await
    }
}

/// The descriptor a referrer was built from (to classify it later).
pub(super) fn descriptor_of(r: &Referrer) -> ListedDescriptor {
    ListedDescriptor {
        media_type: r.media_type.clone(),
        digest: r.digest.clone(),
        size: r.size,
        artifact_type: r.artifact_type.clone(),
        annotations: r.annotations.clone(),
        has_platform: false,
        platform: None,
    }
}

impl Discoverer {
    /// One discovery, uncached.
    pub(super) async fn run(
        &self,
        client: &RegistryClient,
        mode: DiscoveryMode,
        hint: Option<EffectiveDiscoveryMode>,
        req: &DiscoveryRequest,
    ) -> Arc<DiscoveryOutcome> {
        self.inner.misses.fetch_add(1, Ordering::Relaxed);
        let (start, referrers_api) =
            strategy::plan(mode, hint, self.memory_for(&req.registry, &req.repository));
        let ctx = RunContext {
            d: self,
            client,
            registry: req.registry.clone(),
            repo: req.repository.clone(),
            mode,
            hint,
            reach: req.reach,
            started: Instant::now(),
            requests: AtomicU64::new(0),
            state: Mutex::new(RunState {
                start,
                referrers_api,
                methods: Vec::new(),
                notes: Vec::new(),
                visited: HashSet::new(),
                subject_media_type: None,
                platforms: Vec::new(),
            }),
        };
        let result = self.run_inner(&ctx, mode, req).await;
        // Wider answers built on the previous version of this one must not outlive it.
        for (reach, platforms) in [
            (Reach::Listing, true),
            (Reach::Union, false),
            (Reach::Union, true),
            (Reach::Described, false),
            (Reach::Described, true),
        ] {
            if (reach, platforms) > (req.reach, req.platforms) {
                let wider = self.key(req, mode, reach, platforms);
                self.inner.outcomes.invalidate(&wider).await;
            }
        }
        let requests = ctx.requests.load(Ordering::Relaxed);
        let outcome = match result {
            Ok(mut referrers) => {
                sort_referrers(&mut referrers);
                let st = ctx.st();
                DiscoveryOutcome::Found(DiscoveryReport {
                    subject: req.digest.clone(),
                    subject_media_type: st.subject_media_type.clone(),
                    referrers_api: st.referrers_api,
                    methods: st.methods.clone(),
                    platforms: st.platforms.clone(),
                    referrers,
                    requests,
                    notes: st.notes.clone(),
                })
            }
            Err(u) => {
                self.inner.unknown.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(registry = %req.registry, repository = %req.repository,
                    digest = %req.digest, reason = %u.reason, "discovery unknown");
                DiscoveryOutcome::Unknown {
                    reason: u.reason,
                    message: u.message,
                }
            }
        };
        Arc::new(outcome)
    }

    /// Referrers of the requested digest and, when the pod spec pins the index a platform
    /// manifest belongs to, of that index and the BuildKit attestations it holds for the digest.
    pub(super) async fn direct_and_index(
        &self,
        ctx: &RunContext<'_>,
        req: &DiscoveryRequest,
        depth: u32,
        filters: &[String],
    ) -> Result<Vec<Referrer>, UnknownCause> {
        let mut all = tree(
            ctx,
            req.digest.clone(),
            AttachedTo::Requested,
            depth,
            filters,
        )
        .await?;
        if let Some(index) = req.index_digest.as_ref().filter(|i| **i != req.digest) {
            all.extend(tree(ctx, index.clone(), AttachedTo::Index, depth, filters).await?);
            ctx.method(DiscoveryMethod::InIndex);
            match fetch_manifest(ctx, index).await? {
                Some(f) => {
                    if let Some(facts) = f.facts.as_ref() {
                        let atts: Vec<_> = classify::buildkit_attestations(facts)
                            .into_iter()
                            .filter(|(_, target)| *target == req.digest)
                            .collect();
                        all.extend(
                            in_index(ctx, atts, AttachedTo::Requested, depth, filters).await?,
                        );
                    }
                }
                None => ctx.note(format!("index {index} was not found in the repository")),
            }
        }
        Ok(all)
    }

    /// Widens a cached answer of reach `from` to `ctx.reach`: reads the manifests the wider
    /// reach needs (to classify a referrer, or to name its format) and, from a listing, when
    /// the referrers API answered, adds the tag fallbacks of the digest (and of its index).
    pub(super) async fn widen(
        &self,
        ctx: &RunContext<'_>,
        req: &DiscoveryRequest,
        from: Reach,
        listed: Vec<Referrer>,
        filters: &[String],
    ) -> Result<Vec<Referrer>, UnknownCause> {
        let futs = listed.into_iter().map(|r| async move {
            let d = descriptor_of(&r);
            if r.method == DiscoveryMethod::Native
                && classify::must_read_manifest(&d, ctx.reach)
                && !classify::must_read_manifest(&d, from)
            {
                let subject = r.subject.clone();
                let attached = r.attached_to;
                let nested = r.referrers.clone();
                Ok::<_, UnknownCause>(
                    referrer_from(ctx, &subject, attached, DiscoveryMethod::Native, &d, true)
                        .await?
                        .map(|mut x| {
                            x.referrers = nested;
                            x
                        }),
                )
            } else {
                Ok(Some(r))
            }
        });
        let mut all = Vec::new();
        for r in join_all(futs).await {
            all.extend(r?);
        }
        if from < Reach::Union && ctx.st().referrers_api == Some(true) && ctx.union_with_tags() {
            let mut subjects = vec![(req.digest.clone(), AttachedTo::Requested)];
            if let Some(index) = req.index_digest.as_ref().filter(|i| **i != req.digest) {
                subjects.push((index.clone(), AttachedTo::Index));
            }
            for (subject, attached) in subjects {
                let extra = fallback(ctx, &subject, attached, filters).await?;
                merge_referrers(&mut all, extra);
            }
        }
        Ok(all)
    }

    pub(super) async fn run_inner(
        &self,
        ctx: &RunContext<'_>,
        mode: DiscoveryMode,
        req: &DiscoveryRequest,
    ) -> Result<Vec<Referrer>, UnknownCause> {
        if let Err(e) = oci::parse_digest(&req.digest) {
            return Err(UnknownCause::new(
                Reason::InvalidInput,
                format!("digest: {e}"),
            ));
        }
        if let Some(i) = &req.index_digest
            && let Err(e) = oci::parse_digest(i)
        {
            return Err(UnknownCause::new(
                Reason::InvalidInput,
                format!("indexDigest: {e}"),
            ));
        }
        let depth = req.depth.min(self.inner.config.max_depth);
        let filters = &req.artifact_types;
        // A wider ask after a narrower one (policies widen only images that miss a
        // requirement): reuse that answer instead of listing the digest again.
        let mut expanded_platforms = false;
        let mut all = match self.cached_base(mode, req).await {
            Some((base, base_reach, base_platforms)) => {
                {
                    let mut st = ctx.st();
                    // Auto: continue the way the base run learnt works (the remembered mode
                    // may have expired since).
                    if let Start::Native { forced: false, .. } = st.start {
                        match base.referrers_api {
                            Some(true) => {
                                st.start = Start::Native {
                                    forced: false,
                                    known: true,
                                }
                            }
                            Some(false) => st.start = Start::Fallback,
                            None => {}
                        }
                    }
                    st.referrers_api = base.referrers_api.or(st.referrers_api);
                    st.methods = base.methods;
                    st.notes = base.notes;
                    if base_platforms {
                        st.platforms = base.platforms;
                        st.subject_media_type = base.subject_media_type;
                    }
                }
                expanded_platforms = base_platforms;
                if base_reach < req.reach {
                    self.widen(ctx, req, base_reach, base.referrers, filters)
                        .await?
                } else {
                    base.referrers
                }
            }
            None => self.direct_and_index(ctx, req, depth, filters).await?,
        };

        if req.platforms && !expanded_platforms {
            match fetch_manifest(ctx, &req.digest).await? {
                None => {
                    return Err(UnknownCause::new(
                        Reason::SubjectNotFound,
                        format!("{} was not found in {}", req.digest, req.repository),
                    ));
                }
                Some(f) => {
                    let facts = f.facts.as_ref();
                    let mt = facts
                        .and_then(|x| x.media_type.clone())
                        .or(f.content_type.clone());
                    ctx.st().subject_media_type = mt;
                    if let Some(facts) = facts.filter(|x| x.is_index) {
                        ctx.method(DiscoveryMethod::InIndex);
                        let plats: Vec<PlatformManifest> = classify::platform_manifests(facts)
                            .into_iter()
                            .map(|p| PlatformManifest {
                                digest: p.digest,
                                platform: p.platform,
                            })
                            .collect();
                        let futs = plats.iter().map(|p| {
                            tree(ctx, p.digest.clone(), AttachedTo::Platform, depth, filters)
                        });
                        let mut on_platforms = Vec::new();
                        for r in join_all(futs).await {
                            on_platforms.extend(r?);
                        }
                        let atts = classify::buildkit_attestations(facts);
                        on_platforms.extend(
                            in_index(ctx, atts, AttachedTo::Platform, depth, filters).await?,
                        );
                        for r in &mut on_platforms {
                            r.platform = plats
                                .iter()
                                .find(|p| p.digest == r.subject)
                                .and_then(|p| p.platform.clone());
                        }
                        merge_referrers(&mut all, on_platforms);
                        ctx.st().platforms = plats;
                    }
                }
            }
        }
        Ok(all)
    }
}
