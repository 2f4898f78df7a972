//! The discovery engine (I/O): runs the methods against a registry through
//! [`RegistryClient`], with a shared outcome cache (TTL, shorter for Unknown,
//! bounded, request coalescing), a remembered mode per registry and per
//! repository, a per-repository tag-list cache, an immutable manifest cache
//! and a per-registry concurrency bound.
//!
//! Its parts, one job each: `outcome_cache` (key and expiry), `memory` (modes remembered,
//! answer changes), `run` (one discovery), `walk` (a subject's referrer tree), `native` (the
//! referrers API), `fallback` (tag schema and cosign tags), `referrers` (descriptors to
//! referrers), `tags` (tag lists), `manifests` (manifest reads).
//!
//! Decisions are taken by the pure modules ([`super::strategy`], [`super::link`], [`super::page`],
//! [`super::tagschema`], [`super::classify`], [`crate::probe::verdict`]).
//!
//! Cost model: a [`Reach::Listing`] discovery on a registry with the referrers API is one
//! request; a [`Reach::Union`] discovery of the same digest afterwards reuses that answer and
//! adds only the tag fallbacks (the repository's tag list, read once per window and shared by
//! every digest, then only tags that exist) and the manifests of descriptors that do not say
//! what they are.

mod fallback;
mod manifests;
mod memory;
mod native;
mod outcome_cache;
mod referrers;
mod run;
mod tags;
mod walk;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::future::Cache;
use parking_lot::Mutex;
use tokio::sync::Semaphore;

use self::manifests::FetchedManifest;
use self::memory::ModeMemory;
use self::outcome_cache::{CacheKey, OutcomeExpiry};
use self::tags::RepositoryTags;
use super::model::{DiscoveryOutcome, DiscoveryReport, DiscoveryRequest, Reach};
use super::strategy::{self, ApiObservation};
use crate::crd::{DiscoveryMode, EffectiveDiscoveryMode};
use crate::registry::RegistryClient;

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

struct DiscovererState {
    config: DiscovererConfig,
    outcomes: Cache<CacheKey, Arc<DiscoveryOutcome>>,
    manifests: Cache<(String, String, String), Arc<FetchedManifest>>,
    tag_lists: Cache<(String, String), Arc<RepositoryTags>>,
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
    inner: Arc<DiscovererState>,
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
            inner: Arc::new(DiscovererState {
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
}
