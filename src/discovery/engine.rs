//! The discovery engine (I/O): runs the methods against a registry through
//! [`RegistryClient`], with a shared outcome cache (TTL, shorter for Unknown,
//! bounded, request coalescing), a remembered mode per registry and per
//! repository, a per-repository tag-list cache, an immutable manifest cache
//! and a per-registry concurrency bound.
//!
//! Decisions are taken by the pure modules ([`super::strategy`], [`super::link`],
//! [`super::tagschema`], [`super::classify`], [`crate::probe::verdict`]).
//!
//! Cost model: a [`Reach::Listing`] discovery on a registry with the referrers API is one
//! request; a [`Reach::Union`] discovery of the same digest afterwards reuses that answer and
//! adds only the tag fallbacks (the repository's tag list, read once per window and shared by
//! every digest, then only tags that exist) and the manifests of descriptors that do not say
//! what they are.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt as _, join_all};
use http::header::LINK;
use moka::future::Cache;
use moka::ops::compute::Op;
use parking_lot::Mutex;
use tokio::sync::Semaphore;

use super::classify::{self, ManifestFacts};
use super::link;
use super::model::{
    AttachedTo, DiscoveryMethod, DiscoveryOutcome, DiscoveryReport, DiscoveryRequest, Format,
    PlatformManifest, Reach, Referrer,
};
use super::strategy::{self, ApiObservation, Memory, NativeDecision, NativeVerdict, Start};
use super::tagschema::{self, CosignSuffix, ListedDescriptor};
use crate::crd::{CapabilityState, DiscoveryMode, EffectiveDiscoveryMode};
use crate::oci;
use crate::probe::verdict::{self, Observation};
use crate::reason::{self, Reason};
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
    /// How long the mode that worked for a registry (or repository) is remembered, and how
    /// often a registry believed to lack the referrers API is asked again in Auto mode.
    pub mode_ttl: Duration,
    /// Concurrent requests per registry.
    pub per_registry_concurrency: usize,
    /// How long a repository's tag list is reused by the tag fallbacks.
    pub tag_list_ttl: Duration,
    /// A tag list is trusted to say a digest's tags are absent only by discoveries that began
    /// at most this long after it was read; later ones read it again (a signature pushed since
    /// would be missed otherwise).
    pub tag_absence_slack: Duration,
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
            tag_list_ttl: Duration::from_secs(600),
            tag_absence_slack: strategy::ABSENCE_SLACK,
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
    /// Tag lists read (first pages), over every repository.
    pub tag_lists: u64,
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
    reach: Reach,
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
            reach: req.reach,
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
    Complete {
        tags: BTreeSet<String>,
        read_at: Instant,
    },
    Unavailable,
}

/// What discovery remembers about registries and repositories (Auto mode).
#[derive(Default)]
struct ModeMemory {
    by_registry: HashMap<String, (EffectiveDiscoveryMode, Instant)>,
    by_repository: HashMap<(String, String), (EffectiveDiscoveryMode, Instant)>,
    /// When the referrers API of a registry was last asked.
    api_asked: HashMap<String, Instant>,
    /// When a registry was first discovered on.
    first_seen: HashMap<String, Instant>,
}

/// Bound of every map in [`ModeMemory`] and of the observations (cleared when exceeded).
const MEMORY_BOUND: usize = 10_000;

struct Inner {
    config: DiscovererConfig,
    outcomes: Cache<CacheKey, Arc<DiscoveryOutcome>>,
    manifests: Cache<(String, String, String), Arc<Fetched>>,
    tag_lists: Cache<(String, String), Arc<TagList>>,
    memory: Mutex<ModeMemory>,
    observations: Mutex<HashMap<String, ApiObservation>>,
    changed: Mutex<BTreeSet<String>>,
    changes: tokio::sync::watch::Sender<u64>,
    semaphores: Mutex<HashMap<String, Arc<Semaphore>>>,
    asks: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    unknown: AtomicU64,
    requests: AtomicU64,
    tag_list_reads: AtomicU64,
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
    reason: Reason,
    message: String,
}

impl Unk {
    fn new(reason: Reason, message: impl Into<String>) -> Self {
        Unk {
            reason,
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
        let challenge = resp
            .headers
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok());
        let reason = reason::classify(s, &codes, challenge).unwrap_or(Reason::UnexpectedStatus);
        Unk::new(reason, format!("{what} answered HTTP {s}{codes_text}"))
    }
}

/// How the first native answer turned out.
enum NativeAnswer {
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

/// State of one discovery run.
struct Ctx<'a> {
    d: &'a Discoverer,
    client: &'a RegistryClient,
    registry: String,
    repo: String,
    mode: DiscoveryMode,
    hint: Option<EffectiveDiscoveryMode>,
    reach: Reach,
    started: Instant,
    requests: AtomicU64,
    state: Mutex<RunState>,
}

struct RunState {
    start: Start,
    referrers_api: Option<bool>,
    methods: Vec<DiscoveryMethod>,
    notes: Vec<String>,
    visited: HashSet<String>,
    subject_media_type: Option<String>,
    platforms: Vec<PlatformManifest>,
}

impl Ctx<'_> {
    fn st(&self) -> parking_lot::MutexGuard<'_, RunState> {
        self.state.lock()
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
    /// Whether the tag fallbacks are added to what the referrers API answered.
    fn union_with_tags(&self) -> bool {
        strategy::union_with_tags(self.mode, self.reach, true)
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

/// `Link` header values short enough to parse ([`crate::registry::egress::MAX_PARSED_HEADER`]).
fn link_headers(r: &RegistryResponse) -> Vec<&str> {
    r.headers
        .get_all(LINK)
        .iter()
        .filter(|v| v.len() <= crate::registry::egress::MAX_PARSED_HEADER)
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

/// Adds `extra` to `into`, merged by digest: a referrer already found (by the same subject and
/// attachment) keeps the method that found it first.
fn merge(into: &mut Vec<Referrer>, extra: Vec<Referrer>) {
    for r in extra {
        if !into.iter().any(|x| {
            x.digest == r.digest && x.subject == r.subject && x.attached_to == r.attached_to
        }) {
            into.push(r);
        }
    }
}

/// The descriptor a referrer was built from (to classify it later).
fn descriptor_of(r: &Referrer) -> ListedDescriptor {
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
    /// A discoverer with its own caches.
    pub fn new(config: DiscovererConfig) -> Self {
        let outcomes = Cache::builder()
            .max_capacity(config.capacity)
            .expire_after(OutcomeExpiry {
                ttl: config.ttl,
                negative_ttl: config.negative_ttl,
            })
            .support_invalidation_closures()
            .build();
        let manifests = Cache::builder()
            .max_capacity(config.manifest_capacity)
            .time_to_idle(Duration::from_secs(3600))
            .build();
        let tag_lists = Cache::builder()
            .max_capacity(config.capacity)
            .time_to_live(config.tag_list_ttl)
            .support_invalidation_closures()
            .build();
        Discoverer {
            inner: Arc::new(Inner {
                config,
                outcomes,
                manifests,
                tag_lists,
                memory: Mutex::new(ModeMemory::default()),
                observations: Mutex::new(HashMap::new()),
                changed: Mutex::new(BTreeSet::new()),
                changes: tokio::sync::watch::channel(0).0,
                semaphores: Mutex::new(HashMap::new()),
                asks: AtomicU64::new(0),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                unknown: AtomicU64::new(0),
                requests: AtomicU64::new(0),
                tag_list_reads: AtomicU64::new(0),
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
            tag_lists: i.tag_list_reads.load(Ordering::Relaxed),
            cached: i.outcomes.entry_count(),
        }
    }

    fn memory(&self) -> parking_lot::MutexGuard<'_, ModeMemory> {
        self.inner.memory.lock()
    }

    /// The mode remembered for a registry (`host:port`), if still fresh.
    pub fn remembered_mode(&self, registry: &str) -> Option<EffectiveDiscoveryMode> {
        let ttl = self.inner.config.mode_ttl;
        self.memory()
            .by_registry
            .get(registry)
            .filter(|(_, at)| at.elapsed() < ttl)
            .map(|(m, _)| *m)
    }

    /// The mode remembered for one repository of a registry, if still fresh.
    pub fn remembered_repository_mode(
        &self,
        registry: &str,
        repository: &str,
    ) -> Option<EffectiveDiscoveryMode> {
        let ttl = self.inner.config.mode_ttl;
        self.memory()
            .by_repository
            .get(&(registry.to_string(), repository.to_string()))
            .filter(|(_, at)| at.elapsed() < ttl)
            .map(|(m, _)| *m)
    }

    /// What the plan of a discovery in (`registry`, `repository`) starts from.
    fn memory_for(&self, registry: &str, repository: &str) -> Memory {
        let ttl = self.inner.config.mode_ttl;
        let now = Instant::now();
        let mut m = self.memory();
        if m.first_seen.len() > MEMORY_BOUND {
            m.first_seen.clear();
        }
        let first_seen = *m.first_seen.entry(registry.to_string()).or_insert(now);
        let fresh = |e: Option<&(EffectiveDiscoveryMode, Instant)>| {
            e.filter(|(_, at)| now.duration_since(*at) < ttl)
                .map(|(m, _)| *m)
        };
        let last_asked = m.api_asked.get(registry).copied().unwrap_or(first_seen);
        Memory {
            repository: fresh(
                m.by_repository
                    .get(&(registry.to_string(), repository.to_string())),
            ),
            registry: fresh(m.by_registry.get(registry)),
            relearn_due: now.duration_since(last_asked.max(first_seen)) >= ttl,
        }
    }

    fn remember(&self, registry: &str, repository: &str, mode: EffectiveDiscoveryMode) {
        let now = Instant::now();
        let mut m = self.memory();
        if m.by_registry.len() > MEMORY_BOUND {
            m.by_registry.clear();
        }
        if m.by_repository.len() > MEMORY_BOUND {
            m.by_repository.clear();
        }
        m.by_registry.insert(registry.to_string(), (mode, now));
        m.by_repository
            .insert((registry.to_string(), repository.to_string()), (mode, now));
    }

    fn api_asked(&self, registry: &str) {
        let mut m = self.memory();
        if m.api_asked.len() > MEMORY_BOUND {
            m.api_asked.clear();
        }
        m.api_asked.insert(registry.to_string(), Instant::now());
    }

    /// Records what a registry's referrers API answered; a change (against the previous
    /// answer, or against the profile's probe for a first answer) is queued for
    /// [`Discoverer::take_changed`] and signalled on [`Discoverer::subscribe_changes`].
    fn observe(&self, registry: &str, hint: Option<EffectiveDiscoveryMode>, now: ApiObservation) {
        let before = {
            let mut obs = self.inner.observations.lock();
            if obs.len() > MEMORY_BOUND {
                obs.clear();
            }
            obs.insert(registry.to_string(), now)
        };
        if strategy::answer_changed(before, hint, now) {
            tracing::info!(
                registry,
                api = now.api,
                conformant = now.conformant,
                "the registry's referrers answer changed"
            );
            self.inner.changed.lock().insert(registry.to_string());
            self.inner.changes.send_modify(|n| *n += 1);
        }
    }

    /// Registries (`host:port`) whose referrers answer changed since the last call.
    pub fn take_changed(&self) -> Vec<String> {
        std::mem::take(&mut *self.inner.changed.lock())
            .into_iter()
            .collect()
    }

    /// Bumped whenever [`Discoverer::take_changed`] has something new.
    pub fn subscribe_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Drops every cached outcome, tag list, remembered mode and observation (manifests
    /// stay: immutable).
    pub fn invalidate_all(&self) {
        self.inner.outcomes.invalidate_all();
        self.inner.tag_lists.invalidate_all();
        *self.memory() = ModeMemory::default();
        self.inner.observations.lock().clear();
    }

    /// Drops what is cached for one registry (`host:port`): its outcomes, tag lists and
    /// remembered modes. Its RegistryProfile changed (other credentials see other things) or was
    /// deleted.
    pub fn invalidate_registry(&self, registry: &str) {
        let r = registry.to_string();
        let _ = self
            .inner
            .outcomes
            .invalidate_entries_if(move |k, _| k.registry == r);
        let r = registry.to_string();
        let _ = self
            .inner
            .tag_lists
            .invalidate_entries_if(move |k, _| k.0 == r);
        let mut m = self.memory();
        m.by_registry.remove(registry);
        m.by_repository.retain(|(reg, _), _| reg != registry);
    }

    fn semaphore(&self, registry: &str) -> Arc<Semaphore> {
        let mut sems = self.inner.semaphores.lock();
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
    /// `mode`: `Auto` uses what the repository answered last, else `hint` (the
    /// RegistryProfile's effective mode), else what the registry answered last, else tries
    /// native and falls back to the tag schema and cosign tags on an Unsupported answer; with
    /// [`Reach::Union`] it also looks at the tags when the API answered. Results are cached
    /// per (registry, repository, digest, options); concurrent asks for the same key share one
    /// discovery; a wider ask reuses a narrower cached answer. A registry error is
    /// `DiscoveryOutcome::Unknown`, never an empty result.
    pub async fn discover(
        &self,
        client: &RegistryClient,
        mode: DiscoveryMode,
        hint: Option<EffectiveDiscoveryMode>,
        req: &DiscoveryRequest,
    ) -> Arc<DiscoveryOutcome> {
        self.inner.asks.fetch_add(1, Ordering::Relaxed);
        let key = self.key(req, mode, req.reach, req.platforms);
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
        let (start, referrers_api) =
            strategy::plan(mode, hint, self.memory_for(&req.registry, &req.repository));
        let ctx = Ctx {
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
                    reason: u.reason.as_str().to_string(),
                    message: u.message,
                }
            }
        };
        Arc::new(outcome)
    }

    /// The cache key of `req` with the given reach and platform expansion.
    fn key(
        &self,
        req: &DiscoveryRequest,
        mode: DiscoveryMode,
        reach: Reach,
        platforms: bool,
    ) -> CacheKey {
        let mut key = CacheKey::new(req, mode, self.inner.config.max_depth);
        key.reach = reach;
        key.platforms = platforms;
        key
    }

    /// A fresh cached answer a wider `req` can start from: the same reach without platform
    /// expansion, or (at depth 0) the listing. Returns it with its (reach, platforms).
    async fn cached_base(
        &self,
        mode: DiscoveryMode,
        req: &DiscoveryRequest,
    ) -> Option<(DiscoveryReport, Reach, bool)> {
        let mut candidates = Vec::new();
        if req.platforms {
            candidates.push((req.reach, false));
        }
        if req.depth == 0 {
            for narrower in [Reach::Union, Reach::Listing] {
                if narrower < req.reach {
                    candidates.push((narrower, false));
                }
            }
        }
        for (reach, platforms) in candidates {
            let key = self.key(req, mode, reach, platforms);
            if let Some(v) = self.inner.outcomes.get(&key).await
                && let DiscoveryOutcome::Found(r) = v.as_ref()
            {
                return Some((r.clone(), reach, platforms));
            }
        }
        None
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
    async fn widen(
        &self,
        ctx: &Ctx<'_>,
        req: &DiscoveryRequest,
        from: Reach,
        listed: Vec<Referrer>,
        filters: &[String],
    ) -> Result<Vec<Referrer>, Unk> {
        let futs = listed.into_iter().map(|r| async move {
            let d = descriptor_of(&r);
            if r.method == DiscoveryMethod::Native
                && classify::must_read_manifest(&d, ctx.reach)
                && !classify::must_read_manifest(&d, from)
            {
                let subject = r.subject.clone();
                let attached = r.attached_to;
                let nested = r.referrers.clone();
                Ok::<_, Unk>(
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
                merge(&mut all, extra);
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
            return Err(Unk::new(Reason::InvalidInput, format!("digest: {e}")));
        }
        if let Some(i) = &req.index_digest
            && let Err(e) = oci::parse_digest(i)
        {
            return Err(Unk::new(Reason::InvalidInput, format!("indexDigest: {e}")));
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
                    return Err(Unk::new(
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
                        merge(&mut all, on_platforms);
                        ctx.st().platforms = plats;
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
            nest(ctx, &mut direct, depth - 1).await?;
        }
        Ok(direct)
    }
    .boxed()
}

/// Fills `referrers` of each of `items` (to `depth` more levels).
async fn nest(ctx: &Ctx<'_>, items: &mut [Referrer], depth: u32) -> Result<(), Unk> {
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
async fn list_direct(
    ctx: &Ctx<'_>,
    subject: &str,
    attached: AttachedTo,
    filters: &[String],
) -> Result<Vec<Referrer>, Unk> {
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
                merge(&mut found, tags);
            }
            Ok(found)
        }
        NativeAnswer::Unsupported { verdict, message } => {
            match strategy::decide_native(&verdict, start) {
                NativeDecision::Use => unreachable_use(),
                NativeDecision::Unknown(reason) => Err(Unk::new(
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
                NativeDecision::Error => Err(Unk::new(
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
fn unreachable_use() -> Result<Vec<Referrer>, Unk> {
    Err(Unk::new(
        Reason::InvalidResponse,
        "the referrers API answer could not be read",
    ))
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
                401 | 403 | 429 | 500..=599 | 404 => Unk::from_status("referrers API", &resp),
                _ => Unk::new(
                    Reason::parse(&cap.reason).unwrap_or(Reason::UnexpectedStatus),
                    cap.message.unwrap_or_default(),
                ),
            });
        }
    }
    let conformant = cap.reason != verdict::NON_CONFORMANT_CONTENT_TYPE;
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
                Reason::PaginationLoop,
                format!(
                    "referrers of {subject}: the Link pagination loops at {url}; the list is incomplete"
                ),
            ));
        }
        if pages >= ctx.d.inner.config.max_pages {
            // A truncated list could miss a required referrer: Unknown, not a violation.
            return Err(Unk::new(
                Reason::TooManyPages,
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
        conformant,
    })
}

type Page = (
    Vec<ListedDescriptor>,
    std::collections::BTreeMap<String, String>,
);

fn parse_page(resp: &RegistryResponse) -> Result<Page, Unk> {
    let v: serde_json::Value = serde_json::from_slice(&resp.body).map_err(|e| {
        Unk::new(
            Reason::InvalidResponse,
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

/// One referrer from a listed descriptor. `read`: fetch its manifest (cached by digest) to
/// classify it and check its `subject`; otherwise it is judged by the descriptor, and left
/// [`Format::Unclassified`] (no kinds) when the descriptor does not say what it is.
/// `None`: the descriptor is not a referrer of `subject` after all (manifest gone, not JSON,
/// another subject).
async fn referrer_from(
    ctx: &Ctx<'_>,
    subject: &str,
    attached: AttachedTo,
    method: DiscoveryMethod,
    d: &ListedDescriptor,
    read: bool,
) -> Result<Option<Referrer>, Unk> {
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
        // A client-side filter needs to know what an uninformative descriptor is.
        let read = method == DiscoveryMethod::TagSchema
            || classify::must_read_manifest(&d, ctx.reach)
            || (!filters.is_empty() && !server_filtered && classify::needs_fetch(&d));
        let Some(r) = referrer_from(ctx, subject, attached, method, &d, read).await? else {
            return Ok::<_, Unk>(None);
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

/// The OCI tag schema index and cosign's legacy tags of one subject.
async fn fallback(
    ctx: &Ctx<'_>,
    subject: &str,
    attached: AttachedTo,
    filters: &[String],
) -> Result<Vec<Referrer>, Unk> {
    ctx.method(DiscoveryMethod::TagSchema);
    ctx.method(DiscoveryMethod::CosignTag);
    let index_tag = tagschema::fallback_tag(subject);
    let cosign_tags: Vec<(CosignSuffix, String)> = CosignSuffix::ALL
        .into_iter()
        .map(|s| (s, tagschema::cosign_tag(subject, s)))
        .collect();
    let mut tags = tag_list(ctx).await?;
    if let TagList::Complete { tags: set, read_at } = tags.as_ref() {
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
        TagList::Complete { tags, .. } => tags.contains(t),
        TagList::Unavailable => true,
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
async fn in_index(
    ctx: &Ctx<'_>,
    atts: Vec<(ListedDescriptor, String)>,
    attached: AttachedTo,
    depth: u32,
    filters: &[String],
) -> Result<Vec<Referrer>, Unk> {
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
                vec![crate::discovery::model::ArtifactKind::InTotoAttestation],
                None,
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
                Reason::InvalidResponse,
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

/// Reads the repository's tag list again unless someone already did after `stale` was read
/// (concurrent refreshes of one repository share one listing).
async fn refresh_tag_list(ctx: &Ctx<'_>, stale: Instant) -> Result<Arc<TagList>, Unk> {
    let key = (ctx.registry.clone(), ctx.repo.clone());
    let result = ctx
        .d
        .inner
        .tag_lists
        .entry(key)
        .and_try_compute_with(|current| async move {
            if let Some(e) = current
                && let TagList::Complete { read_at, .. } = e.value().as_ref()
                && *read_at > stale
            {
                return Ok::<_, Unk>(Op::Nop);
            }
            Ok(Op::Put(list_tags(ctx).await?))
        })
        .await?;
    match result.into_entry() {
        Some(e) => Ok(e.into_value()),
        None => tag_list(ctx).await,
    }
}

async fn list_tags(ctx: &Ctx<'_>) -> Result<Arc<TagList>, Unk> {
    let cfg = &ctx.d.inner.config;
    ctx.d.inner.tag_list_reads.fetch_add(1, Ordering::Relaxed);
    let read_at = Instant::now();
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
            .map_err(|e| Unk::new(Reason::InvalidResponse, e.to_string()))?;
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
            None => return Ok(Arc::new(TagList::Complete { tags, read_at })),
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
        b.reach = Reach::Listing;
        assert_ne!(
            CacheKey::new(&a, DiscoveryMode::Auto, 4),
            CacheKey::new(&b, DiscoveryMode::Auto, 4)
        );
    }

    #[test]
    fn merge_keeps_the_first_finder() {
        let r = |digest: &str, method| Referrer {
            digest: digest.into(),
            media_type: String::new(),
            artifact_type: None,
            kinds: vec![],
            format: Format::Other,
            predicate_type: None,
            size: 1,
            annotations: Default::default(),
            method,
            subject: "sha256:s".into(),
            attached_to: AttachedTo::Requested,
            tag: None,
            repository: None,
            platform: None,
            referrers: vec![],
        };
        let mut all = vec![r("sha256:a", DiscoveryMethod::Native)];
        merge(
            &mut all,
            vec![
                r("sha256:a", DiscoveryMethod::TagSchema),
                r("sha256:b", DiscoveryMethod::CosignTag),
            ],
        );
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].method, DiscoveryMethod::Native);
        assert_eq!(all[1].method, DiscoveryMethod::CosignTag);
    }
}
