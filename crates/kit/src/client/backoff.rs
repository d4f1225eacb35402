//! Exponential backoff with full jitter: attempt `n` waits a random time between zero and
//! `min(cap, base × 2ⁿ)`, so that callers who failed together do not retry together.
//!
//! tower's `ExponentialBackoff` lives behind its retry policy machinery; compensation loops and
//! sweeps need only the delays, so this is the few lines of arithmetic on its own.

use std::time::Duration;

/// How retries space out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first retry's delay.
    pub base: Duration,
    /// The largest ceiling of any delay.
    pub cap: Duration,
    /// How many attempts in all, the first included.
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(50),
            cap: Duration::from_secs(2),
            max_attempts: 4,
        }
    }
}

impl Backoff {
    /// The ceiling of the delay before retry `retry` (0 for the first retry).
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A random delay in `[0, ceiling(retry)]` (full jitter).
    pub fn delay(&self, retry: u32) -> Duration {
        self.ceiling(retry).mul_f64(fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
            max_attempts: 10,
        };
        let ceilings: Vec<u128> = (0..6).map(|n| backoff.ceiling(n).as_millis()).collect();
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn delays_are_jittered_below_the_ceiling() {
        let backoff = Backoff::default();
        let delays: Vec<Duration> = (0..100).map(|_| backoff.delay(3)).collect();
        assert!(delays.iter().all(|d| *d <= backoff.ceiling(3)));
        assert!(
            delays.windows(2).any(|w| w[0] != w[1]),
            "jittered, not constant"
        );
    }
}
