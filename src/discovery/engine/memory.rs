//! What discovery remembers per registry and repository (the mode that worked, when the
//! referrers API was last asked) and the feed of registries whose referrers answer changed.

use std::collections::HashMap;
use std::time::Instant;

use super::Discoverer;
use crate::crd::EffectiveDiscoveryMode;
use crate::discovery::strategy::{self, ApiObservation, Memory};

/// What discovery remembers about registries and repositories (Auto mode).
#[derive(Default)]
pub(super) struct ModeMemory {
    pub(super) by_registry: HashMap<String, (EffectiveDiscoveryMode, Instant)>,
    pub(super) by_repository: HashMap<(String, String), (EffectiveDiscoveryMode, Instant)>,
    /// When the referrers API of a registry was last asked.
    pub(super) api_asked: HashMap<String, Instant>,
    /// When a registry was first discovered on.
    pub(super) first_seen: HashMap<String, Instant>,
}

/// Bound of every map in [`ModeMemory`] and of the observations (cleared when exceeded).
pub(super) const MEMORY_BOUND: usize = 10_000;

impl Discoverer {
    pub(super) fn memory(&self) -> parking_lot::MutexGuard<'_, ModeMemory> {
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
    pub(super) fn memory_for(&self, registry: &str, repository: &str) -> Memory {
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

    pub(super) fn remember(&self, registry: &str, repository: &str, mode: EffectiveDiscoveryMode) {
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

    pub(super) fn api_asked(&self, registry: &str) {
        let mut m = self.memory();
        if m.api_asked.len() > MEMORY_BOUND {
            m.api_asked.clear();
        }
        m.api_asked.insert(registry.to_string(), Instant::now());
    }

    /// Records what a registry's referrers API answered; a change (against the previous
    /// answer, or against the profile's probe for a first answer) is queued for
    /// [`Discoverer::take_changed`] and signalled on [`Discoverer::subscribe_changes`].
    pub(super) fn observe(
        &self,
        registry: &str,
        hint: Option<EffectiveDiscoveryMode>,
        now: ApiObservation,
    ) {
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
}
