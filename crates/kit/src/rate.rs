//! Per-caller rate limits: each caller (a token's subject, or the peer address of a caller
//! without one) may make `per_second` calls a second on average, in bursts of up to `burst`; a
//! call over its caller's limit is refused with the time to wait. GCRA, by the `governor` crate,
//! over a mutex-guarded map (its DashMap store would add a dependency for no gain at these rates);
//! callers idle long enough to be back at a full burst are forgotten every minute.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::HashMapStateStore;
use governor::{Quota, RateLimiter};

/// How often callers back at a full burst are dropped from the map.
const FORGET_EVERY: Duration = Duration::from_secs(60);

/// The rate-limit flags.
#[derive(Debug, Clone, Copy, Default)]
#[cfg_attr(feature = "args", derive(clap::Args))]
pub struct RateConfig {
    /// Calls a second each caller (token subject, or peer address without a token) may make on
    /// average; 0 for no limit.
    #[cfg_attr(
        feature = "args",
        arg(long, env = "ORDERLY_RATE_LIMIT_PER_SECOND", default_value_t = 0)
    )]
    pub rate_limit_per_second: u32,

    /// The most calls a caller may make at once above that rate (at least 1).
    #[cfg_attr(
        feature = "args",
        arg(long, env = "ORDERLY_RATE_LIMIT_BURST", default_value_t = 50)
    )]
    pub rate_limit_burst: u32,
}

/// Who a call is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CallerKey {
    /// An authenticated caller: the token's subject.
    Subject(String),
    /// A caller without a token: the address it called from.
    Peer(std::net::IpAddr),
}

/// The limits of every caller of one server; clones share them.
#[derive(Clone)]
pub struct CallerLimits {
    limiter: Arc<RateLimiter<CallerKey, HashMapStateStore<CallerKey>, DefaultClock>>,
    clock: DefaultClock,
    burst: u32,
}

impl std::fmt::Debug for CallerLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerLimits")
            .field("burst", &self.burst)
            .finish_non_exhaustive()
    }
}

impl CallerLimits {
    /// The limits `config` sets; `None` when it sets none. Starts forgetting idle callers in the
    /// background (needs a Tokio runtime).
    pub fn new(config: RateConfig) -> Option<Self> {
        let per_second = NonZeroU32::new(config.rate_limit_per_second)?;
        let burst = NonZeroU32::new(config.rate_limit_burst).unwrap_or(NonZeroU32::MIN);
        let clock = DefaultClock::default();
        let limiter = Arc::new(RateLimiter::new(
            Quota::per_second(per_second).allow_burst(burst),
            HashMapStateStore::default(),
            clock.clone(),
        ));
        let weak = Arc::downgrade(&limiter);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(FORGET_EVERY).await;
                let Some(limiter) = weak.upgrade() else {
                    return;
                };
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        });
        Some(Self {
            limiter,
            clock,
            burst: burst.get(),
        })
    }

    /// Counts a call of `key`; over its limit, how long until it may call again.
    pub fn check(&self, key: &CallerKey) -> Result<(), Duration> {
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// The burst: what a `RateLimit-Limit` header reports.
    pub fn burst(&self) -> u32 {
        self.burst
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_caller_over_its_burst_waits_while_others_do_not() {
        let limits = CallerLimits::new(RateConfig {
            rate_limit_per_second: 1,
            rate_limit_burst: 3,
        })
        .expect("limits");
        let alice = CallerKey::Subject("alice".into());
        for _ in 0..3 {
            assert_eq!(limits.check(&alice), Ok(()));
        }
        let wait = limits.check(&alice).expect_err("over the burst");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert_eq!(limits.check(&CallerKey::Subject("bob".into())), Ok(()));
        assert!(
            CallerLimits::new(RateConfig::default()).is_none(),
            "no limit by default"
        );
    }
}
