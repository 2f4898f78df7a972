//! The one exponential backoff delay (pure): `base · 2^doublings`, capped, then jittered;
//! registry retries use full jitter, the controller's requeues equal jitter.

use std::time::Duration;

/// How a capped delay `d` is spread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackoffJitter {
    /// Uniform in `[0, d]` (retries of one request: spreads a burst of clients the most).
    Full,
    /// Uniform in `[d/2, d]` (requeues: never much sooner than the backoff says).
    Equal,
}

/// `base · 2^doublings`, at most `cap`, spread by `jitter` with `sample` in `[0, 1]` (clamped;
/// a random number in production, fixed in tests). Saturates instead of overflowing.
pub fn backoff_delay(
    base: Duration,
    doublings: u32,
    cap: Duration,
    jitter: BackoffJitter,
    sample: f64,
) -> Duration {
    let capped = base
        .saturating_mul(2u32.saturating_pow(doublings.min(31)))
        .min(cap);
    let sample = if sample.is_nan() {
        0.0
    } else {
        sample.clamp(0.0, 1.0)
    };
    let factor = match jitter {
        BackoffJitter::Full => sample,
        BackoffJitter::Equal => 0.5 + 0.5 * sample,
    };
    capped.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_caps_and_saturates() {
        let b = Duration::from_millis(100);
        let cap = Duration::from_secs(1);
        assert_eq!(backoff_delay(b, 0, cap, BackoffJitter::Full, 1.0), b);
        assert_eq!(
            backoff_delay(b, 2, cap, BackoffJitter::Full, 1.0),
            Duration::from_millis(400)
        );
        assert_eq!(backoff_delay(b, 4, cap, BackoffJitter::Full, 1.0), cap);
        assert_eq!(
            backoff_delay(b, u32::MAX, cap, BackoffJitter::Equal, 1.0),
            cap
        );
        assert_eq!(
            backoff_delay(b, 0, cap, BackoffJitter::Full, 0.0),
            Duration::ZERO
        );
        assert_eq!(
            backoff_delay(b, 0, cap, BackoffJitter::Equal, 0.0),
            Duration::from_millis(50)
        );
        assert_eq!(
            backoff_delay(b, 0, cap, BackoffJitter::Full, f64::NAN),
            Duration::ZERO
        );
        assert_eq!(
            backoff_delay(Duration::ZERO, 3, cap, BackoffJitter::Full, 1.0),
            Duration::ZERO
        );
    }
}
