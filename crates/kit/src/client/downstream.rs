//! One downstream service as its callers see it: a shared channel (one replica or several, see
//! [`crate::client::balance`]) under the [`CallLayer`] (breaker, span and metric per call, keyed by
//! the called method), and a `call` that gives every attempt a deadline and retries what is safe
//! to retry with jittered exponential backoff inside a retry budget. The attempts of one call share
//! a [`CallScope`], so the breaker counts the call once, after its retries.
//!
//! - Breaker: a call takes a [`Permit`] on its first attempt, or is refused at once while the
//!   breaker is open. Work that must not start unless the call can be made takes the permit itself
//!   first ([`Downstream::admit`]) and hands it to [`Downstream::unary_with`].
//!
//! - Deadline: each call has one; an attempt is never started once it passed, and no backoff sleeps
//!   past it.
//! - Retries: UNAVAILABLE, transport failures, and RESOURCE_EXHAUSTED when the server sent
//!   RetryInfo (a shed call), but not when the reason is `RATE_LIMITED`: a caller's own rate limit
//!   is theirs to wait out, and retrying it here would hold their request open and spend the
//!   downstream's capacity on a caller it asked to slow down (the gateway answers 429 with
//!   Retry-After instead). Only calls marked [`Safety::Idempotent`] (reads, or writes that carry an
//!   idempotency key) are retried. A call refused by an open breaker is not retried.
//! - Budget: tower's `TpsBudget` lets retries add at most a fixed share of recent calls, in the
//!   spirit of gRPC's retry throttling, so a failing downstream never sees a retry storm.
//!
//! Metrics: `orderly_client_retries_total`, `orderly_client_retry_budget_exhausted_total` (and the
//! layer's `rpc_client_duration_seconds`).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use orderly::error::Reason;
use tonic::{Code, Status};
use tonic_types::StatusExt;
use tower::Layer;
use tower::retry::budget::{Budget, TpsBudget};

use crate::client::backoff::Backoff;
use crate::client::breaker::{BreakerConfig, Permit, is_open};
use crate::client::call::{Breakers, CallChannel, CallLayer, CallScope, Protected, Scoped};
use crate::client::deadline::Deadline;
use crate::client::{ClientConfig, ClientError, channel};

/// Whether a call may be sent again after a failure whose outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Safety {
    /// Repeating it changes nothing more: a read, or a write with an idempotency key.
    Idempotent,
    /// Repeating it could do the work twice.
    NotIdempotent,
}

/// How a downstream's calls are protected.
#[derive(Debug, Clone)]
pub struct DownstreamConfig {
    /// Connecting and keepalive.
    pub client: ClientConfig,
    /// Spacing and number of attempts.
    pub backoff: Backoff,
    /// Share of recent calls that retries may add, 0 to 1.
    pub retry_ratio: f32,
    /// Retries allowed per second regardless of traffic, so quiet callers can still retry.
    pub min_retries_per_second: u32,
    /// How long a call counts as recent, for the budget.
    pub budget_window: Duration,
    /// When the breaker opens and recovers.
    pub breaker: BreakerConfig,
}

impl Default for DownstreamConfig {
    fn default() -> Self {
        Self {
            client: ClientConfig::default(),
            backoff: Backoff {
                initial_backoff: Duration::from_millis(25),
                max_backoff: Duration::from_secs(1),
                max_attempts: 3,
            },
            retry_ratio: 0.2,
            min_retries_per_second: 5,
            budget_window: Duration::from_secs(10),
            breaker: BreakerConfig::default(),
        }
    }
}

/// The command-line flags of a service's call protection (breakers and retries), shared by every
/// service that calls others; their defaults are [`DownstreamConfig::default`]'s.
#[cfg(feature = "args")]
#[derive(Debug, Clone, clap::Args)]
pub struct CallArgs {
    /// How long a downstream's circuit breaker stays open before it lets probe calls through.
    #[arg(long, env = "ORDERLY_BREAKER_COOL_DOWN", default_value_t = DownstreamConfig::default().breaker.cool_down.into())]
    pub breaker_cool_down: humantime::Duration,

    /// Fewest calls in a breaker's 10 s window before its failure rate can open it.
    #[arg(long, env = "ORDERLY_BREAKER_MINIMUM_CALLS", default_value_t = DownstreamConfig::default().breaker.minimum_calls)]
    pub breaker_minimum_calls: usize,

    /// Share of calls, 0 to 1, that must fail (after retries) within the window to open a breaker.
    #[arg(long, env = "ORDERLY_BREAKER_FAILURE_RATE", default_value_t = DownstreamConfig::default().breaker.failure_rate)]
    pub breaker_failure_rate: f64,

    /// Attempts per downstream call, the first included (retries only where safe).
    #[arg(long, env = "ORDERLY_RETRY_MAX_ATTEMPTS", default_value_t = DownstreamConfig::default().backoff.max_attempts)]
    pub retry_max_attempts: u32,
}

#[cfg(feature = "args")]
impl CallArgs {
    /// The protection these flags ask for.
    pub fn config(&self) -> DownstreamConfig {
        let mut config = DownstreamConfig::default();
        config.breaker.cool_down = self.breaker_cool_down.into();
        config.breaker.minimum_calls = self.breaker_minimum_calls;
        config.breaker.failure_rate = self.breaker_failure_rate;
        config.backoff.max_attempts = self.retry_max_attempts.max(1);
        config
    }
}

#[cfg(feature = "args")]
impl Default for CallArgs {
    fn default() -> Self {
        crate::args::defaults()
    }
}

/// One downstream service: its channel, breakers and retry budget.
#[derive(Clone)]
pub struct Downstream {
    name: &'static str,
    channel: Protected<crate::client::Transport>,
    breakers: Arc<Breakers>,
    budget: Arc<TpsBudget>,
    backoff: Backoff,
}

impl std::fmt::Debug for Downstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Downstream")
            .field("name", &self.name)
            .field("backoff", &self.backoff)
            .finish()
    }
}

/// Whether the kit retries a failed attempt of a call of `safety`: stricter than the client
/// library's `StatusExt::is_retryable` (which says whether trying again later may succeed), since a
/// service retrying for its caller must not retry what the caller should wait out (its own rate
/// limit) or what only this side's breaker refused.
pub fn is_retried(status: &Status, safety: Safety) -> bool {
    if safety == Safety::NotIdempotent || is_open(status) {
        return false;
    }
    match status.code() {
        Code::Unavailable => true,
        Code::ResourceExhausted => {
            status.get_details_retry_info().is_some()
                && orderly::error::StatusExt::reason(status) != Some(Reason::RateLimited)
        }
        // An error made on this side of the wire (a reset or refused connection) has a source;
        // statuses sent by a server do not.
        Code::Unknown | Code::Internal | Code::Cancelled => {
            std::error::Error::source(status).is_some()
        }
        _ => false,
    }
}

impl Downstream {
    /// The downstream `name` (as in breaker metrics and errors) at `address` (one URL, a
    /// comma-separated list, or `dns://host:port`).
    pub fn new(
        name: &'static str,
        address: &str,
        config: &DownstreamConfig,
    ) -> Result<Self, ClientError> {
        let breakers = Arc::new(Breakers::new(name, config.breaker.clone()));
        Ok(Self {
            name,
            channel: CallLayer::new(breakers.clone()).layer(channel(
                name,
                address,
                &config.client,
            )?),
            breakers,
            budget: Arc::new(TpsBudget::new(
                config.budget_window,
                config.min_retries_per_second,
                config.retry_ratio,
            )),
            backoff: config.backoff,
        })
    }

    /// Declares the methods of `service` (its full name) this downstream serves, so that their
    /// breakers and counters (retries, retry-budget exhaustion, breaker refusals and transitions)
    /// are exported at zero from the start, not from their first event: a dashboard or alert on
    /// them then reads 0, not "no data".
    pub fn declare(self, service: &'static str, methods: &[&'static str]) -> Self {
        metrics::counter!("orderly_client_retry_budget_exhausted_total", "rpc_service" => service)
            .absolute(0);
        for method in methods {
            self.breakers.get(method);
            metrics::counter!("orderly_client_retries_total", "rpc_service" => service, "rpc_method" => *method)
                .absolute(0);
        }
        self
    }

    /// Leave to call `method` once, taken before the work that needs the call starts; UNAVAILABLE
    /// (with RetryInfo) while its breaker is open or its probes are taken.
    pub fn admit(&self, method: &'static str) -> Result<Permit, Status> {
        self.breakers.get(method).try_acquire()
    }

    /// The downstream's name, as in metrics and errors.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Makes one call through `attempt`, which makes one try on the channel it is given with the
    /// deadline it is given (stamp it with [`Deadline::bound`]).
    ///
    /// The returned future is boxed: it keeps the compiler's `Send` checks of callers' futures
    /// simple, at the cost of one allocation per call.
    pub fn call<'a, T, F, Fut>(
        &'a self,
        deadline: Deadline,
        safety: Safety,
        attempt: F,
    ) -> Pin<Box<dyn Future<Output = Result<T, Status>> + Send + 'a>>
    where
        F: FnMut(CallChannel, Deadline) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, Status>> + Send + 'static,
        T: Send + 'static,
    {
        Box::pin(self.run(None, deadline, safety, attempt))
    }

    /// Makes one unary call with `message`: each attempt sends a copy of it, stamped with the time
    /// left before `deadline`, through `send`.
    pub fn unary<'a, M, T, F, Fut>(
        &'a self,
        deadline: Deadline,
        safety: Safety,
        message: M,
        send: F,
    ) -> Pin<Box<dyn Future<Output = Result<T, Status>> + Send + 'a>>
    where
        M: Clone + Send + 'a,
        F: FnMut(CallChannel, tonic::Request<M>) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, Status>> + Send + 'static,
        T: Send + 'static,
    {
        self.unary_inner(None, deadline, safety, message, send)
    }

    /// Like [`Downstream::unary`], under a permit taken earlier with [`Downstream::admit`].
    pub fn unary_with<'a, M, T, F, Fut>(
        &'a self,
        permit: Permit,
        deadline: Deadline,
        safety: Safety,
        message: M,
        send: F,
    ) -> Pin<Box<dyn Future<Output = Result<T, Status>> + Send + 'a>>
    where
        M: Clone + Send + 'a,
        F: FnMut(CallChannel, tonic::Request<M>) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, Status>> + Send + 'static,
        T: Send + 'static,
    {
        self.unary_inner(Some(permit), deadline, safety, message, send)
    }

    fn unary_inner<'a, M, T, F, Fut>(
        &'a self,
        permit: Option<Permit>,
        deadline: Deadline,
        safety: Safety,
        message: M,
        mut send: F,
    ) -> Pin<Box<dyn Future<Output = Result<T, Status>> + Send + 'a>>
    where
        M: Clone + Send + 'a,
        F: FnMut(CallChannel, tonic::Request<M>) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T, Status>> + Send + 'static,
        T: Send + 'static,
    {
        let attempt = move |channel, deadline: Deadline| {
            // `run` starts no attempt once the deadline passed, so there is time left to send.
            let mut request = tonic::Request::new(message.clone());
            request.set_timeout(deadline.remaining());
            send(channel, request)
        };
        Box::pin(self.run(permit, deadline, safety, attempt))
    }

    /// One call: its attempts share a scope, which is ended with the final result.
    async fn run<T, F, Fut>(
        &self,
        permit: Option<Permit>,
        deadline: Deadline,
        safety: Safety,
        mut attempt: F,
    ) -> Result<T, Status>
    where
        F: FnMut(CallChannel, Deadline) -> Fut + Send,
        Fut: Future<Output = Result<T, Status>> + Send + 'static,
        T: Send + 'static,
    {
        let scope = CallScope::new(deadline.remaining(), permit);
        let result = self.attempts(&scope, deadline, safety, &mut attempt).await;
        scope.finish(&result);
        result
    }

    /// The attempts of one call, until one succeeds or no retry is allowed.
    async fn attempts<T, F, Fut>(
        &self,
        scope: &CallScope,
        deadline: Deadline,
        safety: Safety,
        attempt: &mut F,
    ) -> Result<T, Status>
    where
        F: FnMut(CallChannel, Deadline) -> Fut + Send,
        Fut: Future<Output = Result<T, Status>> + Send + 'static,
        T: Send + 'static,
    {
        self.budget.deposit();
        let name = self.name;
        let mut retry = 0;
        loop {
            // The downstream is named in the log, not the status, which may travel on to
            // callers who need not know the call graph.
            if deadline.is_expired() {
                tracing::debug!(downstream = name, "deadline exceeded before the call");
                return Err(Status::deadline_exceeded("deadline exceeded"));
            }
            let one = attempt(Scoped::new(self.channel.clone(), scope.clone()), deadline);
            let failure = match one.await {
                Ok(value) => return Ok(value),
                // tonic's own timeout ends a call as CANCELLED; past the deadline, say so.
                Err(status) if status.code() == Code::Cancelled && deadline.is_expired() => {
                    tracing::debug!(downstream = name, "deadline exceeded during the call");
                    Status::deadline_exceeded("deadline exceeded")
                }
                Err(status) => status,
            };
            if !is_retried(&failure, safety) || retry + 1 >= self.backoff.max_attempts {
                return Err(failure);
            }
            let delay = self.backoff.jittered(retry);
            // Other calls opened the breaker meanwhile: this one stops with them.
            if delay >= deadline.remaining() || scope.is_cooling_down() {
                return Err(failure);
            }
            let (service, method) = scope.names().unwrap_or((name, ""));
            if !self.budget.withdraw() {
                metrics::counter!("orderly_client_retry_budget_exhausted_total", "rpc_service" => service).increment(1);
                return Err(failure);
            }
            metrics::counter!("orderly_client_retries_total", "rpc_service" => service, "rpc_method" => method)
                .increment(1);
            tracing::debug!(downstream = name, method, retry, ?delay, status = %failure, "retrying");
            tokio::time::sleep(delay).await;
            retry += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::ErrorDetails;

    use super::*;

    fn exhausted(reason: Option<Reason>) -> Status {
        let mut details = ErrorDetails::with_retry_info(Some(Duration::from_millis(100)));
        if let Some(reason) = reason {
            details.set_error_info(reason.as_str(), "test", []);
        }
        Status::with_error_details(Code::ResourceExhausted, "busy", details)
    }

    #[test]
    fn shed_calls_are_retried_but_a_callers_own_rate_limit_is_not() {
        assert!(is_retried(&exhausted(None), Safety::Idempotent));
        assert!(!is_retried(
            &exhausted(Some(Reason::RateLimited)),
            Safety::Idempotent
        ));
        assert!(!is_retried(&exhausted(None), Safety::NotIdempotent));
        // Without RetryInfo the server gave no sign that waiting helps.
        assert!(!is_retried(
            &Status::resource_exhausted("full"),
            Safety::Idempotent
        ));
    }
}
