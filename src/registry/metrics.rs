//! Per-registry request counters (every HTTP attempt, including retries and
//! token requests), keyed by registry, endpoint and status.

use parking_lot::Mutex;
use std::collections::BTreeMap;

/// The registry API endpoint a request belongs to (a metrics label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    Base,
    ManifestHead,
    ManifestGet,
    ManifestPut,
    ManifestDelete,
    BlobHead,
    BlobGet,
    BlobUploadStart,
    BlobUploadCancel,
    BlobMount,
    BlobDelete,
    Referrers,
    TagList,
    Options,
    Token,
    Other,
}

impl Endpoint {
    /// snake_case label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Endpoint::Base => "base",
            Endpoint::ManifestHead => "manifest_head",
            Endpoint::ManifestGet => "manifest_get",
            Endpoint::ManifestPut => "manifest_put",
            Endpoint::ManifestDelete => "manifest_delete",
            Endpoint::BlobHead => "blob_head",
            Endpoint::BlobGet => "blob_get",
            Endpoint::BlobUploadStart => "blob_upload_start",
            Endpoint::BlobUploadCancel => "blob_upload_cancel",
            Endpoint::BlobMount => "blob_mount",
            Endpoint::BlobDelete => "blob_delete",
            Endpoint::Referrers => "referrers",
            Endpoint::TagList => "tag_list",
            Endpoint::Options => "options",
            Endpoint::Token => "token",
            Endpoint::Other => "other",
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

type CounterKey = (String, Endpoint, Option<u16>);

/// Thread-safe request counters. `status: None` means a transport error.
#[derive(Default, Debug)]
pub struct RequestCounters {
    counts: Mutex<BTreeMap<CounterKey, u64>>,
}

impl RequestCounters {
    fn lock(&self) -> parking_lot::MutexGuard<'_, BTreeMap<CounterKey, u64>> {
        self.counts.lock()
    }

    /// Counts one attempt.
    pub fn record(&self, registry: &str, endpoint: Endpoint, status: Option<u16>) {
        *self
            .lock()
            .entry((registry.to_string(), endpoint, status))
            .or_insert(0) += 1;
    }

    /// All attempts of all registries.
    pub fn total(&self) -> u64 {
        self.lock().values().sum()
    }

    /// All attempts to one registry (every endpoint and status).
    pub fn total_for(&self, registry: &str) -> u64 {
        self.lock()
            .iter()
            .filter(|((r, _, _), _)| r == registry)
            .map(|(_, n)| *n)
            .sum()
    }

    /// Attempts to one endpoint of one registry, whatever the status.
    pub fn count(&self, registry: &str, endpoint: Endpoint) -> u64 {
        self.lock()
            .iter()
            .filter(|((r, e, _), _)| r == registry && *e == endpoint)
            .map(|(_, n)| *n)
            .sum()
    }

    /// Every (registry, endpoint, status, count), sorted.
    pub fn snapshot(&self) -> Vec<(String, Endpoint, Option<u16>, u64)> {
        self.lock()
            .iter()
            .map(|((r, e, s), n)| (r.clone(), *e, *s, *n))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_and_snapshot() {
        let c = Arc::new(RequestCounters::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        c.record("r:443", Endpoint::ManifestGet, Some(200));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        c.record("r:443", Endpoint::ManifestGet, None);
        c.record("a:5000", Endpoint::Token, Some(401));
        assert_eq!(c.total(), 102);
        assert_eq!(c.count("r:443", Endpoint::ManifestGet), 101);
        assert_eq!(c.count("r:443", Endpoint::Token), 0);
        assert_eq!(c.total_for("r:443"), 101);
        assert_eq!(c.total_for("a:5000"), 1);
        let snap = c.snapshot();
        assert_eq!(
            snap,
            vec![
                ("a:5000".to_string(), Endpoint::Token, Some(401), 1),
                ("r:443".to_string(), Endpoint::ManifestGet, None, 1),
                ("r:443".to_string(), Endpoint::ManifestGet, Some(200), 100),
            ]
        );
        assert_eq!(Endpoint::BlobUploadStart.as_str(), "blob_upload_start");
    }
}
