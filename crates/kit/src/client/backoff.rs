//! Exponential backoff with full jitter: attempt `n` waits a random time between zero and
//! `min(max_backoff, initial_backoff × 2ⁿ)`, so that callers who failed together do not retry
//! together. The client library's [`orderly::client::RetryPolicy`], shared: the services retry
//! their downstream calls as Orderly's callers retry theirs.

/// How retries space out: [`orderly::client::RetryPolicy`].
pub use orderly::client::RetryPolicy as Backoff;
