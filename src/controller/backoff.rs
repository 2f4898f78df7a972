//! Per-object exponential backoff with jitter and a cap, for transient errors
//! (Kubernetes API failures, registries that leave images Unknown).

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;

use crate::registry::{BackoffJitter, backoff_delay};

/// Delay after `failures` consecutive failures: `base * 2^(failures-1)`, capped
/// at `cap`, then jittered into `[delay/2, delay]` with `jitter` in `[0, 1]`.
pub fn delay(failures: u32, base: Duration, cap: Duration, jitter: f64) -> Duration {
    backoff_delay(
        base,
        failures.saturating_sub(1),
        cap,
        BackoffJitter::Equal,
        jitter,
    )
}

/// Failure counts per object key.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// A backoff starting at `base`, never longer than `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records a failure of `key` and returns how long to wait.
    pub fn fail(&self, key: &str) -> Duration {
        let n = {
            let mut f = self.failures.lock();
            if f.len() > 100_000 {
                f.clear();
            }
            let n = f.entry(key.to_string()).or_insert(0);
            *n = n.saturating_add(1);
            *n
        };
        delay(n, self.base, self.cap, rand::random::<f64>())
    }

    /// Forgets the failures of `key` (after a success).
    pub fn reset(&self, key: &str) {
        self.failures.lock().remove(key);
    }

    /// Consecutive failures of `key`.
    pub fn failures(&self, key: &str) -> u32 {
        self.failures.lock().get(key).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_jitters() {
        let b = Duration::from_secs(5);
        let cap = Duration::from_secs(300);
        assert_eq!(delay(1, b, cap, 1.0), Duration::from_secs(5));
        assert_eq!(delay(1, b, cap, 0.0), Duration::from_secs_f64(2.5));
        assert_eq!(delay(3, b, cap, 1.0), Duration::from_secs(20));
        assert_eq!(delay(20, b, cap, 1.0), cap);
        assert_eq!(delay(u32::MAX, b, cap, 1.0), cap);
        for n in 1..40 {
            for j in [0.0, 0.3, 1.0, 7.0, -1.0] {
                let d = delay(n, b, cap, j);
                assert!(
                    d <= cap && d >= Duration::from_secs_f64(1.25),
                    "{n} {j} {d:?}"
                );
            }
        }
    }

    #[test]
    fn per_object_counts_reset() {
        let bo = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        assert!(bo.fail("a") <= Duration::from_secs(1));
        bo.fail("a");
        assert_eq!(bo.failures("a"), 2);
        assert_eq!(bo.failures("b"), 0);
        bo.reset("a");
        assert_eq!(bo.failures("a"), 0);
    }
}
