//! Per-caller rate limits: each caller may make `per_second` calls a second on average, in bursts
//! of up to `burst`; a call over its caller's limit is refused with the time to wait. GCRA, by the
//! `governor` crate, over a mutex-guarded map (its DashMap store would add a dependency for no
//! gain at these rates); callers idle long enough to be back at a full burst are forgotten every
//! minute.
//!
//! The caller is the *end* caller ([`CallerKey`]): the verified subject a call is made for, or,
//! without a token, the client's address. Anonymous callers are also held, all together, to a
//! budget of their own (ten times one caller's by default), so that a flood of tokenless calls
//! from many addresses spends that budget and never an authenticated caller's allowance.

#[cfg(feature = "server")]
pub mod layer;

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

    /// Calls a second all callers without a token may make together (each address is also held
    /// to the per-caller limit), in bursts of as many times the per-caller burst as this is times
    /// the per-caller rate; by default ten times the per-caller rate.
    #[cfg_attr(
        feature = "args",
        arg(long, env = "ORDERLY_RATE_LIMIT_ANONYMOUS_PER_SECOND")
    )]
    pub rate_limit_anonymous_per_second: Option<u32>,
}

/// How many times one caller's rate all anonymous callers may use together, by default.
const ANONYMOUS_SHARE: u32 = 10;

/// Who a call is counted against: always an end caller, never the service that passes a call on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CallerKey {
    /// An authenticated caller: the token's subject.
    Subject(String),
    /// A caller without a token: the client's address (also counted in the anonymous budget).
    Peer(std::net::IpAddr),
}

type Keyed = RateLimiter<CallerKey, HashMapStateStore<CallerKey>, DefaultClock>;
type Shared = RateLimiter<
    governor::state::NotKeyed,
    governor::state::InMemoryState,
    DefaultClock,
    governor::middleware::NoOpMiddleware<<DefaultClock as Clock>::Instant>,
>;

/// The limits of every caller of one server; clones share them.
#[derive(Clone)]
pub struct CallerLimits {
    limiter: Arc<Keyed>,
    anonymous: Arc<Shared>,
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
        let anonymous_rate = config
            .rate_limit_anonymous_per_second
            .and_then(NonZeroU32::new)
            .unwrap_or(per_second.saturating_mul(NonZeroU32::new(ANONYMOUS_SHARE)?));
        // The shared burst grows with the shared rate, in the per-caller proportion.
        let anonymous_burst =
            u64::from(burst.get()) * u64::from(anonymous_rate.get()) / u64::from(per_second.get());
        let anonymous_burst = NonZeroU32::new(u32::try_from(anonymous_burst).unwrap_or(u32::MAX))
            .unwrap_or(NonZeroU32::MIN);
        let anonymous = Arc::new(RateLimiter::direct_with_clock(
            Quota::per_second(anonymous_rate).allow_burst(anonymous_burst),
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
            anonymous,
            clock,
            burst: burst.get(),
        })
    }

    /// Counts a call of `key`; over its limit (or, for an anonymous caller, over the anonymous
    /// budget), how long until it may call again.
    pub fn check(&self, key: &CallerKey) -> Result<(), Duration> {
        let wait = |not_until: governor::NotUntil<_>| not_until.wait_time_from(self.clock.now());
        self.limiter.check_key(key).map_err(wait)?;
        if matches!(key, CallerKey::Peer(_)) {
            self.anonymous.check().map_err(wait)?;
        }
        Ok(())
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
            ..RateConfig::default()
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

    #[tokio::test]
    async fn anonymous_callers_share_a_budget_that_leaves_subjects_theirs() {
        let limits = CallerLimits::new(RateConfig {
            rate_limit_per_second: 1,
            rate_limit_burst: 2,
            rate_limit_anonymous_per_second: Some(2),
        })
        .expect("limits");
        // Four addresses, two calls each, would be within each address's burst; the anonymous
        // budget (twice one caller's: a burst of four) stops them after four.
        let refused = (1..=4u8)
            .flat_map(|last| [last; 2])
            .map(|last| CallerKey::Peer(std::net::IpAddr::from([192, 0, 2, last])))
            .filter(|key| limits.check(key).is_err())
            .count();
        assert_eq!(refused, 4);
        // An authenticated caller still has the whole of their own burst.
        let alice = CallerKey::Subject("alice".into());
        assert_eq!(limits.check(&alice), Ok(()));
        assert_eq!(limits.check(&alice), Ok(()));
        assert!(limits.check(&alice).is_err());
    }
}
