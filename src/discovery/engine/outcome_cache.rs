//! The outcome cache's key (a request normalised: filters sorted, depth bounded) and its
//! expiry (Unknown outcomes shorter).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::crd::DiscoveryMode;
use crate::discovery::model::{DiscoveryOutcome, DiscoveryRequest, Reach};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct CacheKey {
    pub(super) registry: String,
    pub(super) repository: String,
    pub(super) digest: String,
    pub(super) artifact_types: Vec<String>,
    pub(super) depth: u32,
    pub(super) platforms: bool,
    pub(super) index_digest: Option<String>,
    pub(super) mode: u8,
    pub(super) reach: Reach,
}

impl CacheKey {
    pub(super) fn new(req: &DiscoveryRequest, mode: DiscoveryMode, max_depth: u32) -> Self {
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

pub(super) fn mode_code(m: DiscoveryMode) -> u8 {
    match m {
        DiscoveryMode::Auto => 0,
        DiscoveryMode::Native => 1,
        DiscoveryMode::TagFallback => 2,
    }
}

pub(super) struct OutcomeExpiry {
    pub(super) ttl: Duration,
    pub(super) negative_ttl: Duration,
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
}
