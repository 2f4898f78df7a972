//! The discovery engine (I/O): runs the methods against a registry through
//! [`RegistryClient`], with a shared outcome cache (TTL, shorter for Unknown,
//! bounded, request coalescing), a per-registry remembered mode, a per
//! repository tag-list cache, an immutable manifest cache and a per-registry
//! concurrency bound.
//!
//! Decisions are taken by the pure modules ([`super::link`],
//! [`super::tagschema`], [`super::classify`], [`crate::probe::verdict`]).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt as _, join_all};
use http::header::LINK;
use moka::future::Cache;
use tokio::sync::Semaphore;

use super::classify::{self, ManifestFacts};
use super::link;
use super::model::{
    AttachedTo, DiscoveryMethod, DiscoveryOutcome, DiscoveryReport, DiscoveryRequest, Referrer,
};
use super::tagschema::{self, CosignSuffix, ListedDescriptor};
use crate::crd::{CapabilityState, DiscoveryMode, EffectiveDiscoveryMode};
use crate::oci;
use crate::probe::verdict::{self, Observation};
use crate::registry::{
    Endpoint, RegistryClient, RegistryError, RegistryRequest, RegistryResponse, Scope,
};

/// Settings of a [`Discoverer`].
#[derive(Clone, Debug)]
pub struct DiscovererConfig {
    /// How long a successful discovery is reused.
    pub ttl: Duration,
    /// How long an Unknown outcome is reused (shorter: registry errors are transient).
    pub negative_ttl: Duration,
    /// Maximum cached outcomes.
    pub capacity: u64,
    /// How long the mode that worked for a registry is remembered (Auto without a hint).
    pub mode_ttl: Duration,
    /// Concurrent requests per registry.
    pub per_registry_concurrency: usize,
    /// How long a repository's tag list is reused by the tag fallbacks.
    pub tag_list_ttl: Duration,
    /// Referrers API pages followed per subject.
    pub max_pages: usize,
    /// Tag list pages read per repository (`n` tags each) before giving up listing.
    pub max_tag_pages: usize,
    /// `n` of a tag list page.
    pub tag_page_size: u32,
    /// Upper bound of `DiscoveryRequest::depth`.
    pub max_depth: u32,
    /// Maximum cached referrer manifests (immutable, keyed by digest).
    pub manifest_capacity: u64,
}

impl Default for DiscovererConfig {
    fn default() -> Self {
        DiscovererConfig {
            ttl: Duration::from_secs(600),
            negative_ttl: Duration::from_secs(60),
            capacity: 10_000,
            mode_ttl: Duration::from_secs(300),
            per_registry_concurrency: 8,
            tag_list_ttl: Duration::from_secs(60),
            max_pages: 64,
            max_tag_pages: 20,
            tag_page_size: 1000,
            max_depth: 4,
            manifest_capacity: 10_000,
        }
    }
}

/// Counters for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscoveryStats {
    /// Calls of [`Discoverer::discover`].
    pub asks: u64,
    /// Answered from the cache (including asks coalesced onto a running discovery).
    pub hits: u64,
    /// Discoveries actually run.
    pub misses: u64,
    /// Discoveries that ended Unknown.
    pub unknown: u64,
    /// Registry requests made by discoveries.
    pub requests: u64,
    /// Outcomes currently cached (approximate).
    pub cached: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CacheKey {
    registry: String,
    repository: String,
    digest: String,
    artifact_types: Vec<String>,
    depth: u32,
    platforms: bool,
    index_digest: Option<String>,
    mode: u8,
}

impl CacheKey {
    fn new(req: &DiscoveryRequest, mode: DiscoveryMode, max_depth: u32) -> Self {
        let mut artifact_types = req.artifact_types.clone();
        artifact_types.sort();
        artifact_types.dedup();
        CacheKey {
            registry: req.registry.clone(),
            repository: req.repository.clone(),
            digest: req.digest.clone(),
            artifact_types,
            depth: req.depth.min(max_depth),
            platforms: req.platforms,
            index_digest: req.index_digest.clone(),
            mode: mode_code(mode),
        }
    }
}

fn mode_code(m: DiscoveryMode) -> u8 {
    match m {
        DiscoveryMode::Auto => 0,
        DiscoveryMode::Native => 1,
        DiscoveryMode::TagFallback => 2,
    }
}

struct OutcomeExpiry {
    ttl: Duration,
    negative_ttl: Duration,
}

impl moka::Expiry<CacheKey, Arc<DiscoveryOutcome>> for OutcomeExpiry {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        value: &Arc<DiscoveryOutcome>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(match value.as_ref() {
            DiscoveryOutcome::Found(_) => self.ttl,
            DiscoveryOutcome::Unknown { .. } => self.negative_ttl,
        })
    }
}

/// A fetched manifest (immutable once addressed by digest).
#[derive(Debug)]
struct Fetched {
    digest: String,
    content_type: Option<String>,
    size: i64,
    body: Bytes,
    facts: Option<ManifestFacts>,
}

/// A repository's tags, or the fact that they cannot be listed.
#[derive(Debug)]
enum TagList {
    Complete(BTreeSet<String>),
    Unavailable,
}

struct Inner {
    config: DiscovererConfig,
    outcomes: Cache<CacheKey, Arc<DiscoveryOutcome>>,
    manifests: Cache<(String, String, String), Arc<Fetched>>,
    tag_lists: Cache<(String, String), Arc<TagList>>,
    modes: Mutex<HashMap<String, (EffectiveDiscoveryMode, Instant)>>,
    semaphores: Mutex<HashMap<String, Arc<Semaphore>>>,
    asks: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    unknown: AtomicU64,
    requests: AtomicU64,
}

/// Shared referrer discovery (cheap to clone; clones share caches).
#[derive(Clone)]
pub struct Discoverer {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Discoverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discoverer")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Default for Discoverer {
    fn default() -> Self {
        Self::new(DiscovererConfig::default())
    }
}

/// Why a discovery is Unknown.
#[derive(Clone, Debug)]
struct Unk {
    reason: String,
    message: String,
}

impl Unk {
    fn new(reason: &str, message: impl Into<String>) -> Self {
        Unk {
            reason: reason.to_string(),
            message: message.into(),
        }
    }

    fn from_error(e: &RegistryError) -> Self {
        Unk::new(e.reason(), e.to_string())
    }

    /// A status that is neither success nor a documented "unsupported".
    fn from_status(what: &str, resp: &RegistryResponse) -> Self {
        let s = resp.status.as_u16();
        let codes = resp.error_codes();
        let codes_text = if codes.is_empty() {
            String::new()
        } else {
            format!(" ({})", codes.join(", "))
        };
        let reason = match s {
            401 => "AuthFailed",
            403 => "InsufficientPermissions",
            429 => "RateLimited",
            500..=599 => "RegistryError",
            404 if codes.iter().any(|c| c == "NAME_UNKNOWN") => "RepositoryNotFound",
            _ => "UnexpectedStatus",
        };
        Unk::new(reason, format!("{what} answered HTTP {s}{codes_text}"))
    }
}

/// How the first native answer turned out.
enum NativeAnswer {
    Listed {
        descriptors: Vec<ListedDescriptor>,
        server_filtered: bool,
    },
    Unsupported {
        http_status: Option<u16>,
        /// The verdict's reason (`NotFound`, `InvalidIndex`, `HtmlInsteadOfIndex`, …).
        reason: String,
        message: String,
    },
}

/// The method chosen for one discovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resolved {
    /// Native; fall back on Unsupported (Auto) or not (forced).
    Native { forced: bool, known: bool },
    /// Tag fallbacks only.
    Fallback,
}

/// Picks how to start (pure): forced modes win; Auto uses the hint, then the
/// remembered mode, then tries native.
fn plan(
    mode: DiscoveryMode,
    hint: Option<EffectiveDiscoveryMode>,
    remembered: Option<EffectiveDiscoveryMode>,
) -> (Resolved, Option<bool>) {
    match mode {
        DiscoveryMode::Native => (
            Resolved::Native {
                forced: true,
                known: false,
            },
            None,
        ),
        DiscoveryMode::TagFallback => {
            let known = hint.or(remembered);
            (
                Resolved::Fallback,
                (known == Some(EffectiveDiscoveryMode::TagFallback)).then_some(false),
            )
        }
        DiscoveryMode::Auto => match hint.or(remembered) {
            Some(EffectiveDiscoveryMode::Native) => (
                Resolved::Native {
                    forced: false,
                    known: true,
                },
                None,
            ),
            Some(EffectiveDiscoveryMode::TagFallback) => (Resolved::Fallback, Some(false)),
            None => (
                Resolved::Native {
                    forced: false,
                    known: false,
                },
                None,
            ),
        },
    }
}

/// State of one discovery run.
struct Ctx<'a> {
    d: &'a Discoverer,
    client: &'a RegistryClient,
    registry: String,
    repo: String,
    requests: AtomicU64,
    state: Mutex<RunState>,
}

struct RunState {
    resolved: Resolved,
    referrers_api: Option<bool>,
    methods: Vec<DiscoveryMethod>,
    notes: Vec<String>,
    visited: HashSet<String>,
    subject_media_type: Option<String>,
    platforms: Vec<String>,
}

impl Ctx<'_> {
    fn st(&self) -> std::sync::MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    fn method(&self, m: DiscoveryMethod) {
        let mut st = self.st();
        if !st.methods.contains(&m) {
            st.methods.push(m);
        }
    }
    fn note(&self, n: String) {
        let mut st = self.st();
        if !st.notes.contains(&n) && st.notes.len() < 50 {
            st.notes.push(n);
        }
    }

    async fn send(&self, req: RegistryRequest) -> Result<RegistryResponse, RegistryError> {
        let sem = self.d.semaphore(&self.registry);
        // The semaphore is never closed; a failed acquire just means no bound.
        let _permit = sem.acquire_owned().await.ok();
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.d.inner.requests.fetch_add(1, Ordering::Relaxed);
        self.client.send(req).await
    }
}

use crate::probe::to_answer;

fn link_headers(r: &RegistryResponse) -> Vec<&str> {
    r.headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

fn sort_referrers(v: &mut [Referrer]) {
    v.sort_by(|a, b| {
        (
            a.attached_to,
            a.method,
            &a.artifact_type,
            &a.digest,
            &a.subject,
        )
            .cmp(&(
                b.attached_to,
                b.method,
                &b.artifact_type,
                &b.digest,
                &b.subject,
            ))
    });
}

impl Discoverer {
    /// A discoverer with its own caches.
    pub fn new(config: DiscovererConfig) -> Self {
        let outcomes = Cache::builder()
            .max_capacity(config.capacity)
            .expire_after(OutcomeExpiry {
                ttl: config.ttl,
                negative_ttl: config.negative_ttl,
            })
            .build();
        let manifests = Cache::builder()
            .max_capacity(config.manifest_capacity)
            .time_to_idle(Duration::from_secs(3600))
            .build();
        let tag_lists = Cache::builder()
            .max_capacity(config.capacity)
            .time_to_live(config.tag_list_ttl)
            .build();
        Discoverer {
            inner: Arc::new(Inner {
                config,
                outcomes,
                manifests,
                tag_lists,
                modes: Mutex::new(HashMap::new()),
                semaphores: Mutex::new(HashMap::new()),
                asks: AtomicU64::new(0),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                unknown: AtomicU64::new(0),
                requests: AtomicU64::new(0),
            }),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &DiscovererConfig {
        &self.inner.config
    }

    /// Counters for metrics.
    pub fn stats(&self) -> DiscoveryStats {
        let i = &self.inner;
        DiscoveryStats {
            asks: i.asks.load(Ordering::Relaxed),
            hits: i.hits.load(Ordering::Relaxed),
            misses: i.misses.load(Ordering::Relaxed),
            unknown: i.unknown.load(Ordering::Relaxed),
            requests: i.requests.load(Ordering::Relaxed),
            cached: i.outcomes.entry_count(),
        }
    }

    /// The mode remembered for a registry (`host:port`), if still fresh.
    pub fn remembered_mode(&self, registry: &str) -> Option<EffectiveDiscoveryMode> {
        let modes = self.inner.modes.lock().unwrap_or_else(|p| p.into_inner());
        modes
            .get(registry)
            .filter(|(_, at)| at.elapsed() < self.inner.config.mode_ttl)
            .map(|(m, _)| *m)
    }

    fn remember(&self, registry: &str, mode: EffectiveDiscoveryMode) {
        let mut modes = self.inner.modes.lock().unwrap_or_else(|p| p.into_inner());
        if modes.len() > 10_000 {
            modes.clear();
        }
        modes.insert(registry.to_string(), (mode, Instant::now()));
    }

    /// Drops every cached outcome, tag list and remembered mode (manifests stay: immutable).
    pub fn invalidate_all(&self) {
        self.inner.outcomes.invalidate_all();
        self.inner.tag_lists.invalidate_all();
        self.inner
            .modes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    fn semaphore(&self, registry: &str) -> Arc<Semaphore> {
        let mut sems = self
            .inner
            .semaphores
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        sems.entry(registry.to_string())
            .or_insert_with(|| {
                Arc::new(Semaphore::new(
                    self.inner.config.per_registry_concurrency.max(1),
                ))
            })
            .clone()
    }

    /// Discovers the referrers of `req.digest` in `req.repository` on the
    /// registry `client` talks to.
    ///
    /// `mode`: `Auto` uses `hint` (the RegistryProfile's effective mode), else
    /// the mode remembered for the registry, else tries native and falls back
    /// to the tag schema and cosign tags on an Unsupported answer. Results are
    /// cached per (registry, repository, digest, options); concurrent asks for
    /// the same key share one discovery. A registry error is
    /// `DiscoveryOutcome::Unknown`, never an empty result.
    pub async fn discover(
        &self,
        client: &RegistryClient,
        mode: DiscoveryMode,
        hint: Option<EffectiveDiscoveryMode>,
        req: &DiscoveryRequest,
    ) -> Arc<DiscoveryOutcome> {
        self.inner.asks.fetch_add(1, Ordering::Relaxed);
        let key = self.key(req, mode, req.platforms);
        let entry = self
            .inner
            .outcomes
            .entry(key)
            .or_insert_with(self.run(client, mode, hint, req))
            .await;
        if entry.is_fresh() {
            return entry.into_value();
        }
        self.inner.hits.fetch_add(1, Ordering::Relaxed);
        let value = entry.into_value();
        match value.as_ref() {
            DiscoveryOutcome::Found(r) if r.requests != 0 => {
                let mut r = r.clone();
                r.requests = 0;
                Arc::new(DiscoveryOutcome::Found(r))
            }
            _ => value,
        }
    }

    /// One discovery, uncached.
    async fn run(
        &self,
        client: &RegistryClient,
        mode: DiscoveryMode,
        hint: Option<EffectiveDiscoveryMode>,
        req: &DiscoveryRequest,
    ) -> Arc<DiscoveryOutcome> {
        self.inner.misses.fetch_add(1, Ordering::Relaxed);
        let (resolved, referrers_api) = plan(mode, hint, self.remembered_mode(&req.registry));
        let ctx = Ctx {
            d: self,
            client,
            registry: req.registry.clone(),
            repo: req.repository.clone(),
            requests: AtomicU64::new(0),
            state: Mutex::new(RunState {
                resolved,
                referrers_api,
                methods: Vec::new(),
                notes: Vec::new(),
                visited: HashSet::new(),
                subject_media_type: None,
                platforms: Vec::new(),
            }),
        };
        let result = self.run_inner(&ctx, mode, req).await;
        if !req.platforms {
            // An expanded answer built on the previous base must not outlive it.
            let expanded = self.key(req, mode, true);
            self.inner.outcomes.invalidate(&expanded).await;
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

    /// The cache key of `req` with or without platform expansion.
    fn key(&self, req: &DiscoveryRequest, mode: DiscoveryMode, platforms: bool) -> CacheKey {
        let mut key = CacheKey::new(req, mode, self.inner.config.max_depth);
        key.platforms = platforms;
        key
    }

    /// The fresh cached outcome of `req` without platform expansion, when there is one.
    async fn cached_without_platforms(
        &self,
        mode: DiscoveryMode,
        req: &DiscoveryRequest,
    ) -> Option<DiscoveryReport> {
        let key = self.key(req, mode, false);
        match self.inner.outcomes.get(&key).await?.as_ref() {
            DiscoveryOutcome::Found(r) => Some(r.clone()),
            DiscoveryOutcome::Unknown { .. } => None,
        }
    }

    /// Referrers of the requested digest and, when the pod spec pins the index a platform
    /// manifest belongs to, of that index and the BuildKit attestations it holds for the digest.
    async fn direct_and_index(
        &self,
        ctx: &Ctx<'_>,
        req: &DiscoveryRequest,
        depth: u32,
        filters: &[String],
    ) -> Result<Vec<Referrer>, Unk> {
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
                        all.extend(in_index(ctx, atts, AttachedTo::Requested, filters).await?);
                    }
                }
                None => ctx.note(format!("index {index} was not found in the repository")),
            }
        }
        Ok(all)
    }

    async fn run_inner(
        &self,
        ctx: &Ctx<'_>,
        mode: DiscoveryMode,
        req: &DiscoveryRequest,
    ) -> Result<Vec<Referrer>, Unk> {
        if let Err(e) = oci::parse_digest(&req.digest) {
            return Err(Unk::new("InvalidInput", format!("digest: {e}")));
        }
        if let Some(i) = &req.index_digest
            && let Err(e) = oci::parse_digest(i)
        {
            return Err(Unk::new("InvalidInput", format!("indexDigest: {e}")));
        }
        let depth = req.depth.min(self.inner.config.max_depth);
        let filters = &req.artifact_types;
        // Platform expansion is asked for after the same request without it (policies expand
        // only images that miss a requirement on their own digest): reuse that answer instead
        // of listing the digest's (and its index's) referrers again.
        let base = match req.platforms {
            true => self.cached_without_platforms(mode, req).await,
            false => None,
        };
        let mut all = match base {
            Some(base) => {
                let mut st = ctx.st();
                // Auto: list the platforms the way the base run learnt works (the remembered
                // mode may have expired since).
                if let Resolved::Native { forced: false, .. } = st.resolved {
                    match base.referrers_api {
                        Some(true) => {
                            st.resolved = Resolved::Native {
                                forced: false,
                                known: true,
                            }
                        }
                        Some(false) => st.resolved = Resolved::Fallback,
                        None => {}
                    }
                }
                st.referrers_api = base.referrers_api.or(st.referrers_api);
                st.methods = base.methods;
                st.notes = base.notes;
                base.referrers
            }
            None => self.direct_and_index(ctx, req, depth, filters).await?,
        };

        if req.platforms {
            match fetch_manifest(ctx, &req.digest).await? {
                None => {
                    return Err(Unk::new(
                        "SubjectNotFound",
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
                        let plats = classify::platform_manifests(facts);
                        ctx.st().platforms = plats.iter().map(|p| p.digest.clone()).collect();
                        let futs = plats.iter().map(|p| {
                            tree(ctx, p.digest.clone(), AttachedTo::Platform, depth, filters)
                        });
                        for r in join_all(futs).await {
                            all.extend(r?);
                        }
                        let atts = classify::buildkit_attestations(facts);
                        all.extend(in_index(ctx, atts, AttachedTo::Platform, filters).await?);
                    }
                }
            }
        }
        Ok(all)
    }
}

/// Referrers of `subject` and, to `depth`, their referrers (nested, unfiltered).
fn tree<'a>(
    ctx: &'a Ctx<'a>,
    subject: String,
    attached: AttachedTo,
    depth: u32,
    filters: &'a [String],
) -> BoxFuture<'a, Result<Vec<Referrer>, Unk>> {
    async move {
        if !ctx.st().visited.insert(format!("{subject}|{attached:?}")) {
            return Ok(Vec::new());
        }
        let mut direct = list_direct(ctx, &subject, attached, filters).await?;
        if depth > 0 {
            let futs = direct
                .iter()
                .map(|r| tree(ctx, r.digest.clone(), AttachedTo::Referrer, depth - 1, &[]));
            let nested = join_all(futs).await;
            for (r, n) in direct.iter_mut().zip(nested) {
                let mut n = n?;
                sort_referrers(&mut n);
                r.referrers = n;
            }
        }
        Ok(direct)
    }
    .boxed()
}

/// Direct referrers of one subject with the method of this run.
async fn list_direct(
    ctx: &Ctx<'_>,
    subject: &str,
    attached: AttachedTo,
    filters: &[String],
) -> Result<Vec<Referrer>, Unk> {
    let resolved = ctx.st().resolved;
    let (forced, known) = match resolved {
        Resolved::Fallback => return fallback(ctx, subject, attached, filters).await,
        Resolved::Native { forced, known } => (forced, known),
    };
    match native(ctx, subject, filters).await? {
        NativeAnswer::Listed {
            descriptors,
            server_filtered,
        } => {
            ctx.method(DiscoveryMethod::Native);
            {
                let mut st = ctx.st();
                st.referrers_api = Some(true);
                st.resolved = Resolved::Native {
                    forced,
                    known: true,
                };
            }
            if !forced && !known {
                ctx.d
                    .remember(&ctx.registry, EffectiveDiscoveryMode::Native);
            }
            build(
                ctx,
                subject,
                attached,
                DiscoveryMethod::Native,
                descriptors,
                server_filtered,
                filters,
            )
            .await
        }
        NativeAnswer::Unsupported {
            http_status,
            reason,
            message,
        } => {
            // A 200 that claims to be an OCI index but is not one, or any 200
            // that is not an index from a registry known to serve the API, is a
            // broken answer (an error page, a truncated proxy reply): Unknown,
            // not "no referrers API" (which would fall back and report nothing).
            if http_status == Some(200) && (known || reason == "InvalidIndex") {
                return Err(Unk::new(
                    "InvalidResponse",
                    format!("referrers API answered a malformed index ({reason}): {message}"),
                ));
            }
            if forced {
                return Err(Unk::new(
                    "ReferrersApiUnsupported",
                    format!("mode Native, but the registry has no referrers API: {message}"),
                ));
            }
            if http_status == Some(400) && known {
                // Quay answers 400 for a subject it does not hold: no referrers.
                ctx.method(DiscoveryMethod::Native);
                ctx.note(format!(
                    "referrers API answered 400 for {subject} (subject unknown to the registry): no referrers"
                ));
                return Ok(Vec::new());
            }
            if http_status != Some(400) {
                // 404/405/406/wrong content type: the registry has no referrers API.
                ctx.d
                    .remember(&ctx.registry, EffectiveDiscoveryMode::TagFallback);
                let mut st = ctx.st();
                st.referrers_api = Some(false);
                st.resolved = Resolved::Fallback;
            }
            ctx.note(format!(
                "referrers API unsupported ({message}): used the tag fallbacks"
            ));
            fallback(ctx, subject, attached, filters).await
        }
    }
}

/// `GET /v2/<name>/referrers/<digest>` with pagination.
async fn native(ctx: &Ctx<'_>, subject: &str, filters: &[String]) -> Result<NativeAnswer, Unk> {
    let path = format!("/v2/{}/referrers/{subject}", ctx.repo);
    let mut req = RegistryRequest::get(&path, Endpoint::Referrers)
        .accept(oci::OCI_INDEX)
        .scope(Scope::pull(&ctx.repo));
    // The spec defines one artifactType filter; with several, filter client-side.
    let sent_filter = filters.len() == 1;
    if sent_filter {
        req = req.query("artifactType", &filters[0]);
    }
    let resp = ctx.send(req).await.map_err(|e| Unk::from_error(&e))?;
    let cap = verdict::referrers_api(&Observation::Answered(to_answer(&resp)));
    match cap.state {
        CapabilityState::Supported => {}
        CapabilityState::Unsupported => {
            return Ok(NativeAnswer::Unsupported {
                http_status: cap.http_status,
                reason: cap.reason.clone(),
                message: format!("{}: {}", cap.reason, cap.message.unwrap_or_default()),
            });
        }
        CapabilityState::Unknown => {
            return Err(match resp.status.as_u16() {
                401 | 403 | 429 | 500..=599 | 404 => Unk::from_status("referrers API", &resp),
                _ => Unk::new(&cap.reason, cap.message.unwrap_or_default()),
            });
        }
    }
    let mut descriptors = Vec::new();
    let page = parse_page(&resp)?;
    let mut server_filtered =
        sent_filter && classify::filter_applied(resp.header("oci-filters-applied"), &page.1);
    descriptors.extend(page.0);
    let mut visited: HashSet<String> = HashSet::new();
    visited.insert(resp.url.to_string());
    let mut next = link::next_link(link_headers(&resp), &resp.url);
    let mut pages = 1usize;
    while let Some(url) = next.take() {
        if !visited.insert(url.to_string()) {
            // A looping list may miss a required referrer: Unknown, not a violation.
            return Err(Unk::new(
                "PaginationLoop",
                format!(
                    "referrers of {subject}: the Link pagination loops at {url}; the list is incomplete"
                ),
            ));
        }
        if pages >= ctx.d.inner.config.max_pages {
            // A truncated list could miss a required referrer: Unknown, not a violation.
            return Err(Unk::new(
                "TooManyPages",
                format!(
                    "referrers of {subject}: more than {pages} pages (limit); the list is incomplete"
                ),
            ));
        }
        pages += 1;
        let req = RegistryRequest::get(url.as_str(), Endpoint::Referrers)
            .accept(oci::OCI_INDEX)
            .scope(Scope::pull(&ctx.repo));
        let resp = ctx.send(req).await.map_err(|e| Unk::from_error(&e))?;
        if resp.status.as_u16() != 200 {
            return Err(Unk::from_status("referrers API (next page)", &resp));
        }
        let page = parse_page(&resp)?;
        server_filtered = server_filtered
            && classify::filter_applied(resp.header("oci-filters-applied"), &page.1);
        descriptors.extend(page.0);
        next = link::next_link(link_headers(&resp), &resp.url);
    }
    Ok(NativeAnswer::Listed {
        descriptors,
        server_filtered,
    })
}

type Page = (
    Vec<ListedDescriptor>,
    std::collections::BTreeMap<String, String>,
);

fn parse_page(resp: &RegistryResponse) -> Result<Page, Unk> {
    let v: serde_json::Value = serde_json::from_slice(&resp.body).map_err(|e| {
        Unk::new(
            "InvalidResponse",
            format!("referrers page {} is not JSON: {e}", resp.url),
        )
    })?;
    let annotations = v
        .get("annotations")
        .and_then(serde_json::Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default();
    Ok((tagschema::index_descriptors(&v), annotations))
}

/// Turns listed descriptors into referrers: client-side filter, fetch and
/// classify where needed, check fetched manifests' `subject`.
async fn build(
    ctx: &Ctx<'_>,
    subject: &str,
    attached: AttachedTo,
    method: DiscoveryMethod,
    descriptors: Vec<ListedDescriptor>,
    server_filtered: bool,
    filters: &[String],
) -> Result<Vec<Referrer>, Unk> {
    let mut seen = HashSet::new();
    let candidates: Vec<ListedDescriptor> = descriptors
        .into_iter()
        .filter(|d| d.digest != subject && seen.insert(d.digest.clone()))
        .filter(|d| server_filtered || !classify::filtered_out_early(filters, d))
        .collect();
    let futs = candidates.into_iter().map(|d| async move {
        // Entries of a fallback tag index are written by clients, not the registry: each
        // must really have this subject, so its manifest is always checked (cached by digest).
        let verify = method == DiscoveryMethod::TagSchema;
        let (artifact_type, kinds, media_type) = if verify || classify::needs_fetch(&d) {
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
            (at, kinds, mt.unwrap_or_default())
        } else {
            (
                d.artifact_type.clone(),
                classify::descriptor_kinds(&d),
                d.media_type.clone(),
            )
        };
        if !server_filtered && !classify::matches_filter(filters, artifact_type.as_deref()) {
            return Ok(None);
        }
        Ok(Some(Referrer {
            digest: d.digest.clone(),
            media_type,
            artifact_type,
            kinds,
            size: d.size,
            annotations: d.annotations.clone(),
            method,
            subject: subject.to_string(),
            attached_to: attached,
            tag: None,
            referrers: Vec::new(),
        }))
    });
    let mut out = Vec::new();
    for r in join_all(futs).await {
        if let Some(r) = r? {
            out.push(r);
        }
    }
    Ok(out)
}

/// The OCI tag schema index and cosign's legacy tags of one subject.
async fn fallback(
    ctx: &Ctx<'_>,
    subject: &str,
    attached: AttachedTo,
    filters: &[String],
) -> Result<Vec<Referrer>, Unk> {
    ctx.method(DiscoveryMethod::TagSchema);
    ctx.method(DiscoveryMethod::CosignTag);
    let tags = tag_list(ctx).await?;
    let exists = |t: &str| match tags.as_ref() {
        TagList::Complete(set) => set.contains(t),
        TagList::Unavailable => true,
    };
    let index_tag = tagschema::fallback_tag(subject);
    let index_fut = async {
        if !exists(&index_tag) {
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
    let cosign_futs = CosignSuffix::ALL.into_iter().map(|suffix| {
        let tag = tagschema::cosign_tag(subject, suffix);
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

/// A referrer from a cosign legacy tag.
fn cosign_referrer(
    subject: &str,
    attached: AttachedTo,
    suffix: CosignSuffix,
    tag: &str,
    f: &Fetched,
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
    if kinds == [crate::discovery::model::ArtifactKind::Other] {
        kinds = vec![suffix.default_kind()];
    }
    if suffix == CosignSuffix::Sig
        && !kinds.contains(&crate::discovery::model::ArtifactKind::CosignSignature)
    {
        kinds.push(crate::discovery::model::ArtifactKind::CosignSignature);
        kinds.sort();
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
        size: f.size,
        annotations: facts.annotations.clone().into_iter().collect(),
        method: DiscoveryMethod::CosignTag,
        subject: subject.to_string(),
        attached_to: attached,
        tag: Some(tag.to_string()),
        referrers: Vec::new(),
    })
}

/// BuildKit attestation manifests inside an index, as referrers of the platform manifest they describe.
async fn in_index(
    ctx: &Ctx<'_>,
    atts: Vec<(ListedDescriptor, String)>,
    attached: AttachedTo,
    filters: &[String],
) -> Result<Vec<Referrer>, Unk> {
    let futs = atts.into_iter().map(|(d, target)| async move {
        let fetched = fetch_manifest(ctx, &d.digest).await?;
        let facts = fetched.as_ref().and_then(|f| f.facts.as_ref());
        let (artifact_type, kinds) = match facts {
            Some(facts) => {
                let (_, kinds) = classify::classify_fetched(None, facts);
                let at = facts
                    .artifact_type
                    .clone()
                    .or_else(|| facts.layer_media_types.first().cloned())
                    .unwrap_or_else(|| oci::IN_TOTO.to_string());
                (Some(at), kinds)
            }
            None => (
                Some(oci::IN_TOTO.to_string()),
                vec![crate::discovery::model::ArtifactKind::InTotoAttestation],
            ),
        };
        if !classify::matches_filter(filters, artifact_type.as_deref()) {
            return Ok::<_, Unk>(None);
        }
        Ok(Some(Referrer {
            digest: d.digest.clone(),
            media_type: d.media_type.clone(),
            artifact_type,
            kinds,
            size: d.size,
            annotations: d.annotations.clone(),
            method: DiscoveryMethod::InIndex,
            subject: target,
            attached_to: attached,
            tag: None,
            referrers: Vec::new(),
        }))
    });
    let mut out = Vec::new();
    for r in join_all(futs).await {
        out.extend(r?);
    }
    Ok(out)
}

/// GET a manifest by digest or tag. `None` on 404. Cached by digest.
async fn fetch_manifest(ctx: &Ctx<'_>, reference: &str) -> Result<Option<Arc<Fetched>>, Unk> {
    let by_digest = reference.contains(':');
    let key = (
        ctx.registry.clone(),
        ctx.repo.clone(),
        reference.to_string(),
    );
    if by_digest && let Some(f) = ctx.d.inner.manifests.get(&key).await {
        return Ok(Some(f));
    }
    let path = format!("/v2/{}/manifests/{reference}", ctx.repo);
    let req = RegistryRequest::get(&path, Endpoint::ManifestGet)
        .accept(oci::manifest_accept_header())
        .scope(Scope::pull(&ctx.repo));
    let resp = ctx.send(req).await.map_err(|e| Unk::from_error(&e))?;
    match resp.status.as_u16() {
        200 => {}
        404 if !resp.error_codes().iter().any(|c| c == "NAME_UNKNOWN") || !by_digest => {
            return Ok(None);
        }
        _ => return Err(Unk::from_status(&format!("manifest {reference}"), &resp)),
    }
    let computed = oci::digest_sha256(&resp.body);
    let digest = if by_digest {
        if reference.starts_with("sha256:") && computed != reference {
            return Err(Unk::new(
                "InvalidResponse",
                format!("manifest {reference}: content digest is {computed}"),
            ));
        }
        reference.to_string()
    } else {
        match resp
            .header("docker-content-digest")
            .filter(|d| d.starts_with("sha512:") && oci::parse_digest(d).is_ok())
        {
            Some(d) => d.to_string(),
            None => computed,
        }
    };
    let fetched = Arc::new(Fetched {
        size: i64::try_from(resp.body.len()).unwrap_or(i64::MAX),
        facts: ManifestFacts::parse(&resp.body),
        content_type: resp.content_type().map(str::to_string),
        body: resp.body,
        digest: digest.clone(),
    });
    ctx.d
        .inner
        .manifests
        .insert(
            (ctx.registry.clone(), ctx.repo.clone(), digest),
            fetched.clone(),
        )
        .await;
    Ok(Some(fetched))
}

/// The repository's tags (cached per (registry, repository) for `tag_list_ttl`;
/// concurrent listings coalesce). `Unavailable` when listing is not possible
/// or too large: the fallbacks then GET their tags directly.
async fn tag_list(ctx: &Ctx<'_>) -> Result<Arc<TagList>, Unk> {
    let key = (ctx.registry.clone(), ctx.repo.clone());
    ctx.d
        .inner
        .tag_lists
        .try_get_with(key, list_tags(ctx))
        .await
        .map_err(|e: Arc<Unk>| (*e).clone())
}

async fn list_tags(ctx: &Ctx<'_>) -> Result<Arc<TagList>, Unk> {
    let cfg = &ctx.d.inner.config;
    let mut tags = BTreeSet::new();
    let mut next: Option<String> = None;
    let mut visited = HashSet::new();
    for page in 0..cfg.max_tag_pages {
        let req = match &next {
            None => RegistryRequest::get(format!("/v2/{}/tags/list", ctx.repo), Endpoint::TagList)
                .query("n", cfg.tag_page_size.to_string()),
            Some(url) => RegistryRequest::get(url.as_str(), Endpoint::TagList),
        }
        .accept("application/json")
        .scope(Scope::pull(&ctx.repo));
        let resp = ctx.send(req).await.map_err(|e| Unk::from_error(&e))?;
        match resp.status.as_u16() {
            200 => {}
            404 if resp.error_codes().iter().any(|c| c == "NAME_UNKNOWN") => {
                return Err(Unk::from_status("tag list", &resp));
            }
            404 | 405 | 400 | 406 if page == 0 => return Ok(Arc::new(TagList::Unavailable)),
            _ => return Err(Unk::from_status("tag list", &resp)),
        }
        #[derive(serde::Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let body: Tags = resp
            .json()
            .map_err(|e| Unk::new("InvalidResponse", e.to_string()))?;
        let got = body.tags.unwrap_or_default();
        let full_page = got.len() >= cfg.tag_page_size as usize;
        let last = got.last().cloned();
        tags.extend(got);
        next = match link::next_link(link_headers(&resp), &resp.url) {
            Some(u) => Some(u.to_string()),
            // No Link: a full page may still have a successor (`last=`).
            None if full_page => last.map(|l| {
                let mut u = resp.url.clone();
                u.query_pairs_mut()
                    .clear()
                    .append_pair("n", &cfg.tag_page_size.to_string())
                    .append_pair("last", &l);
                u.to_string()
            }),
            None => None,
        };
        match &next {
            None => return Ok(Arc::new(TagList::Complete(tags))),
            Some(n) if !visited.insert(n.clone()) => {
                // A looping tag list may hide fallback tags: fetch them directly instead.
                ctx.note(format!(
                    "repository {}: the tag list pagination loops; fallback tags fetched directly",
                    ctx.repo
                ));
                return Ok(Arc::new(TagList::Unavailable));
            }
            Some(_) => {}
        }
    }
    ctx.note(format!(
        "repository {} has more than {} tag pages: fallback tags fetched directly",
        ctx.repo, cfg.max_tag_pages
    ));
    Ok(Arc::new(TagList::Unavailable))
}

#[cfg(test)]
mod tests {
    use super::*;
    use EffectiveDiscoveryMode as E;

    #[test]
    fn plan_follows_mode_hint_and_memory() {
        let native_unknown = Resolved::Native {
            forced: false,
            known: false,
        };
        let native_known = Resolved::Native {
            forced: false,
            known: true,
        };
        assert_eq!(
            plan(DiscoveryMode::Auto, None, None),
            (native_unknown, None)
        );
        assert_eq!(
            plan(DiscoveryMode::Auto, Some(E::Native), Some(E::TagFallback)),
            (native_known, None)
        );
        assert_eq!(
            plan(DiscoveryMode::Auto, None, Some(E::TagFallback)),
            (Resolved::Fallback, Some(false))
        );
        assert_eq!(
            plan(DiscoveryMode::Auto, Some(E::TagFallback), None),
            (Resolved::Fallback, Some(false))
        );
        assert_eq!(
            plan(DiscoveryMode::Native, Some(E::TagFallback), None).0,
            Resolved::Native {
                forced: true,
                known: false
            }
        );
        assert_eq!(
            plan(DiscoveryMode::TagFallback, Some(E::Native), None),
            (Resolved::Fallback, None)
        );
        assert_eq!(
            plan(DiscoveryMode::TagFallback, None, Some(E::TagFallback)),
            (Resolved::Fallback, Some(false))
        );
    }

    #[test]
    fn cache_key_normalises_filters_and_depth() {
        let mut a = DiscoveryRequest::new("r:443", "a/b", "sha256:x");
        a.artifact_types = vec!["b".into(), "a".into(), "a".into()];
        a.depth = 99;
        let mut b = a.clone();
        b.artifact_types = vec!["a".into(), "b".into()];
        b.depth = 4;
        assert_eq!(
            CacheKey::new(&a, DiscoveryMode::Auto, 4),
            CacheKey::new(&b, DiscoveryMode::Auto, 4)
        );
        assert_ne!(
            CacheKey::new(&a, DiscoveryMode::Auto, 4),
            CacheKey::new(&a, DiscoveryMode::Native, 4)
        );
    }
}
