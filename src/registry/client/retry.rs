//! When a request is retried and after how long: the retry policy, its backoff, the retryable
//! statuses and `Retry-After`.

use std::time::Duration;

use http::header::RETRY_AFTER;
use http::{HeaderMap, StatusCode};

use crate::registry::backoff_delay::{BackoffJitter, backoff_delay};

/// Retries of 429/502/503/504 and transport errors.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// Exponential backoff with full jitter: uniform in `[0, min(max, base·2^retry)]`.
    pub(super) fn backoff(&self, retry: u32) -> Duration {
        backoff_delay(
            self.base_delay,
            retry,
            self.max_delay,
            BackoffJitter::Full,
            rand::random::<f64>(),
        )
    }
}

pub(super) fn is_retryable_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 429 | 502 | 503 | 504)
}

/// `Retry-After` as delta-seconds or HTTP-date (a past date means "now").
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(v)
        .ok()?;
    let now = jiff::Timestamp::now();
    if when <= now {
        return Some(Duration::ZERO);
    }
    Duration::try_from(when.duration_since(now)).ok()
}
